//! The order service's side of the stock reservation contract: calls to the SECURITY DEFINER
//! functions in inventory_db (see `migrations/inventory_db/0002_stock_reservations.sql`), made as
//! the role `stockroom_orders`, which can do nothing else there.

use std::time::Duration;

use rust_decimal::Decimal;
use serde_json::json;
use tokio_postgres::types::Type;
use uuid::Uuid;

use crate::Money;
use crate::db::{Db, DbError};
use crate::orders::OrderLine;

/// A reserved line: one order, its product, quantity and the unit price at reservation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReservedLine {
    pub line: i64,
    pub product_id: i64,
    pub quantity: i32,
    pub unit_price: Money,
}

#[derive(Debug, thiserror::Error)]
pub enum ReserveError {
    #[error("no product with id {product_id}")]
    UnknownProduct { product_id: i64 },
    #[error("product {product_id} has {available} in stock; {requested} requested")]
    InsufficientStock {
        product_id: i64,
        requested: i64,
        available: i64,
    },
    /// The reference was given up (by the reconciler) before this reservation got through.
    #[error("the reservation was voided")]
    Voided,
    #[error(transparent)]
    Db(#[from] DbError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReservationState {
    Reserved,
    Void,
}

/// The SQLSTATE and JSON details of an error raised by `reserve_stock`.
fn contract_error(err: &tokio_postgres::Error) -> Option<ReserveError> {
    let db = err.as_db_error()?;
    let detail: serde_json::Value = db
        .detail()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or_default();
    let int = |key: &str| detail[key].as_i64().unwrap_or_default();
    match db.code().code() {
        "SR001" => Some(ReserveError::UnknownProduct {
            product_id: int("product_id"),
        }),
        "SR002" => Some(ReserveError::InsufficientStock {
            product_id: int("product_id"),
            requested: int("requested"),
            available: int("available"),
        }),
        "SR003" => Some(ReserveError::Voided),
        _ => None,
    }
}

fn reserved_line(row: &tokio_postgres::Row) -> ReservedLine {
    ReservedLine {
        line: row.get("line"),
        product_id: row.get("product_id"),
        quantity: row.get("quantity"),
        unit_price: Money::from_stored(row.get::<_, Decimal>("unit_price")),
    }
}

/// Reserves the lines `$2` (JSON text: `[{"line", "product_id", "quantity"}]`) under the order
/// reference `$1` ([`reserve`]).
pub const RESERVE: &str =
    "SELECT line, product_id, quantity, unit_price FROM reserve_stock($1, $2::jsonb)";

/// Reserves every line (keyed by its order id) or none, in one statement (its own transaction,
/// one round trip). Idempotent by `order_ref`: called again, it returns what was reserved the
/// first time. The inventory events it causes (stock changes, low-stock alerts) are in the outbox
/// with it, for the relay.
pub async fn reserve(
    db: &Db,
    order_ref: Uuid,
    lines: &[(i64, OrderLine)],
) -> Result<Vec<ReservedLine>, ReserveError> {
    let payload = serde_json::Value::from(
        lines
            .iter()
            .map(
                |(id, l)| json!({ "line": id, "product_id": l.product_id, "quantity": l.quantity }),
            )
            .collect::<Vec<_>>(),
    )
    .to_string();
    let reserved = db.run("reserve_stock", async |c| {
        c.query_typed(RESERVE, &[(&order_ref, Type::UUID), (&payload, Type::TEXT)])
            .await
    });
    match reserved.await {
        Ok(rows) => Ok(rows.iter().map(reserved_line).collect()),
        Err(DbError::Query(err)) => {
            Err(contract_error(&err).unwrap_or(ReserveError::Db(DbError::Query(err))))
        }
        Err(err) => Err(ReserveError::Db(err)),
    }
}

/// Returns the stock of one order (`line`) or of the whole reference, at most once, in one
/// statement. Returns how many lines it released.
pub async fn release(db: &Db, order_ref: Uuid, line: Option<i64>) -> Result<i32, DbError> {
    let row = db
        .run("release_stock", async |c| {
            c.query_typed_one(
                "SELECT release_stock($1, $2)",
                &[(&order_ref, Type::UUID), (&line, Type::INT8)],
            )
            .await
        })
        .await?;
    Ok(row.get(0))
}

/// Makes sure a reference can no longer reserve if it has not yet; tells which it is.
pub async fn void(db: &Db, order_ref: Uuid) -> Result<ReservationState, DbError> {
    let row = db
        .run("void_reservation", async |c| {
            c.query_typed_one("SELECT void_reservation($1)", &[(&order_ref, Type::UUID)])
                .await
        })
        .await?;
    let status: String = row.get(0);
    Ok(if status == "reserved" {
        ReservationState::Reserved
    } else {
        ReservationState::Void
    })
}

/// The lines of a reservation that still hold stock.
pub async fn held_lines(db: &Db, order_ref: Uuid) -> Result<Vec<ReservedLine>, DbError> {
    let rows = db
        .run("reservation_lines", async |c| {
            c.query_typed(
                "SELECT line, product_id, quantity, unit_price FROM reservation_lines($1) WHERE NOT released",
                &[(&order_ref, Type::UUID)],
            )
            .await
        })
        .await?;
    Ok(rows.iter().map(reserved_line).collect())
}

/// Records that the reconciler has checked a reservation, so it is not listed again.
pub async fn mark_checked(db: &Db, order_ref: Uuid) -> Result<(), DbError> {
    db.run("reservation_checked", async |c| {
        c.query_typed(
            "SELECT reservation_checked($1)",
            &[(&order_ref, Type::UUID)],
        )
        .await
    })
    .await?;
    Ok(())
}

/// Reservations older than `age` that the reconciler has not checked yet.
pub async fn stale(db: &Db, age: Duration) -> Result<Vec<Uuid>, DbError> {
    let seconds = i64::try_from(age.as_secs()).unwrap_or(i64::MAX);
    let rows = db
        .run("stale_reservations", async |c| {
            c.query_typed(
                "SELECT stale_reservations($1 * interval '1 second')",
                &[(&seconds, Type::INT8)],
            )
            .await
        })
        .await?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}
