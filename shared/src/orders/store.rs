//! SQL on `order_db`: orders and idempotency keys. Every statement is a `query_typed` call.

use std::time::Duration;

use rust_decimal::Decimal;
use tokio_postgres::types::Type;
use tokio_postgres::{Error, GenericClient, Row};
use uuid::Uuid;

use crate::Money;
use crate::http::pagination::Page;
use crate::orders::reservation::ReservedLine;
use crate::orders::{Order, OrderLine, OrderRequest, OrderStatus, total};

const COLUMNS: &str =
    "id, user_id, product_id, quantity, unit_price, total_price, status, created_at";

/// [`COLUMNS`] of the table aliased `o`, for an `UPDATE orders o … RETURNING`.
fn columns_of_o() -> String {
    COLUMNS
        .split(", ")
        .map(|c| format!("o.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn order(row: &Row) -> Order {
    let status: String = row.get("status");
    Order {
        id: row.get("id"),
        user_id: row.get("user_id"),
        product_id: row.get("product_id"),
        quantity: row.get("quantity"),
        unit_price: row
            .get::<_, Option<Decimal>>("unit_price")
            .map(Money::from_stored),
        total_price: row
            .get::<_, Option<Decimal>>("total_price")
            .map(Money::from_stored),
        status: OrderStatus::parse(&status).expect("the schema only allows known statuses"),
        created_at: row.get("created_at"),
    }
}

fn seconds(age: Duration) -> i64 {
    i64::try_from(age.as_secs()).unwrap_or(i64::MAX)
}

/// The pending orders of reference `$1` for user `$2`, one per line (`$3` products, `$4`
/// quantities), their ids in request order ([`insert_pending`]).
pub const INSERT_PENDING: &str = "INSERT INTO orders (order_ref, user_id, product_id, quantity) \
     SELECT $1, $2, product_id, quantity \
     FROM unnest($3::bigint[], $4::integer[]) WITH ORDINALITY AS l(product_id, quantity, n) \
     ORDER BY n RETURNING id";

/// Writes one pending order per line under `order_ref`, in one statement whatever the number of
/// lines; returns `(order id, line)` in request order.
pub async fn insert_pending(
    client: &impl GenericClient,
    order_ref: Uuid,
    request: &OrderRequest,
) -> Result<Vec<(i64, OrderLine)>, Error> {
    let products: Vec<i64> = request.lines.iter().map(|l| l.product_id).collect();
    let quantities: Vec<i32> = request.lines.iter().map(|l| l.quantity).collect();
    // Rows are inserted in the SELECT's order, so their identities ascend in request order.
    let mut ids: Vec<i64> = client
        .query_typed(
            INSERT_PENDING,
            &[
                (&order_ref, Type::UUID),
                (&request.user_id, Type::INT8),
                (&products, Type::INT8_ARRAY),
                (&quantities, Type::INT4_ARRAY),
            ],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    ids.sort_unstable();
    Ok(ids.into_iter().zip(request.lines.iter().copied()).collect())
}

/// The pending lines of a reference (when a retry resumes a request that did not finish).
pub async fn lines_of(
    client: &impl GenericClient,
    order_ref: Uuid,
) -> Result<Vec<(i64, OrderLine)>, Error> {
    let rows = client
        .query_typed(
            "SELECT id, product_id, quantity FROM orders WHERE order_ref = $1 ORDER BY id",
            &[(&order_ref, Type::UUID)],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| {
            (
                row.get(0),
                OrderLine {
                    product_id: row.get(1),
                    quantity: row.get(2),
                },
            )
        })
        .collect())
}

/// The `UPDATE` that confirms the pending orders of `order_ref` at the prices their reservation
/// fixed, all lines in one statement ($2–$4: order ids, unit and total prices).
const CONFIRM: &str = "UPDATE orders o SET status = 'confirmed', unit_price = l.unit_price, \
     total_price = l.total_price, updated_at = now() \
     FROM unnest($2::bigint[], $3::numeric[], $4::numeric[]) AS l(id, unit_price, total_price) \
     WHERE o.id = l.id AND o.order_ref = $1 AND o.status = 'pending'";

fn confirm_params(reserved: &[ReservedLine]) -> (Vec<i64>, Vec<Decimal>, Vec<Decimal>) {
    (
        reserved.iter().map(|l| l.line).collect(),
        reserved.iter().map(|l| l.unit_price.amount()).collect(),
        reserved
            .iter()
            .map(|l| total(l.unit_price, l.quantity).amount())
            .collect(),
    )
}

/// The statement of [`confirm_returning`]: `$1` the reference, `$2`–`$4` order ids, unit and
/// total prices.
pub fn confirm_returning_sql() -> String {
    // The outer query cannot see the CTE's update (one snapshot): confirmed rows come from its
    // RETURNING, the others (settled before) from the table.
    let returning = columns_of_o();
    format!(
        "WITH confirmed AS ({CONFIRM} RETURNING {returning}) \
         SELECT * FROM ( \
             SELECT * FROM confirmed \
             UNION ALL \
             SELECT {COLUMNS} FROM orders WHERE order_ref = $1 AND id NOT IN (SELECT id FROM confirmed) \
         ) AS settled ORDER BY id"
    )
}

/// Confirms the pending orders of `order_ref` with the prices their reservation fixed (orders
/// already settled, by a concurrent retry or the reconciler, are left as they are), in one
/// statement that also returns every order of the reference as it now is: one round trip. The
/// `order_created` events it causes are in the outbox with it, for the relay.
pub async fn confirm_returning(
    client: &impl GenericClient,
    order_ref: Uuid,
    reserved: &[ReservedLine],
) -> Result<Vec<Order>, Error> {
    let (ids, units, totals) = confirm_params(reserved);
    let rows = client
        .query_typed(
            &confirm_returning_sql(),
            &[
                (&order_ref, Type::UUID),
                (&ids, Type::INT8_ARRAY),
                (&units, Type::NUMERIC_ARRAY),
                (&totals, Type::NUMERIC_ARRAY),
            ],
        )
        .await?;
    let orders: Vec<Order> = rows.iter().map(order).collect();
    if orders.iter().all(|o| o.status == OrderStatus::Confirmed) {
        return Ok(orders);
    }
    // The statement's snapshot predates a concurrent confirmation (a retry with the same key)
    // that it waited for: a new statement sees how that one settled them.
    by_ref(client, order_ref).await
}

/// Marks the still-pending orders of `order_ref` as never placed.
pub async fn fail(client: &impl GenericClient, order_ref: Uuid) -> Result<u64, Error> {
    client
        .execute_typed(
            "UPDATE orders SET status = 'failed', updated_at = now() WHERE order_ref = $1 AND status = 'pending'",
            &[(&order_ref, Type::UUID)],
        )
        .await
}

/// The orders of one reference, in request order.
pub async fn by_ref(client: &impl GenericClient, order_ref: Uuid) -> Result<Vec<Order>, Error> {
    let sql = format!("SELECT {COLUMNS} FROM orders WHERE order_ref = $1 ORDER BY id");
    let rows = client
        .query_typed(&sql, &[(&order_ref, Type::UUID)])
        .await?;
    Ok(rows.iter().map(order).collect())
}

/// One order; orders that were never placed (`failed`) do not exist for clients.
pub async fn get(client: &impl GenericClient, id: i64) -> Result<Option<Order>, Error> {
    let sql = format!("SELECT {COLUMNS} FROM orders WHERE id = $1 AND status <> 'failed'");
    let row = client.query_typed_opt(&sql, &[(&id, Type::INT8)]).await?;
    Ok(row.as_ref().map(order))
}

/// Orders newest first, optionally of one user: all of them or one keyset page.
pub async fn list(
    client: &impl GenericClient,
    page: Page,
    user_id: Option<i64>,
) -> Result<Vec<Order>, Error> {
    let (after, limit) = (page.after().unwrap_or(i64::MAX), page.limit());
    let sql = format!(
        "SELECT {COLUMNS} FROM orders \
         WHERE status <> 'failed' AND id < $1 AND ($2::bigint IS NULL OR user_id = $2) \
         ORDER BY id DESC LIMIT $3"
    );
    let rows = client
        .query_typed(
            &sql,
            &[
                (&after, Type::INT8),
                (&user_id, Type::INT8),
                (&limit, Type::INT8),
            ],
        )
        .await?;
    Ok(rows.iter().map(order).collect())
}

/// What `begin_cancel` found.
#[derive(Debug, PartialEq, Eq)]
pub enum CancelStart {
    /// The order is now `cancelling`; its stock is reserved under this reference.
    Started(Uuid),
    NotFound,
    NotConfirmed(OrderStatus),
}

/// First step of a cancel: `confirmed` (or a cancel that did not finish) becomes `cancelling`.
/// With an `owner`, only an order of that user; another's is [`CancelStart::NotFound`].
pub async fn begin_cancel(
    client: &impl GenericClient,
    id: i64,
    owner: Option<i64>,
) -> Result<CancelStart, Error> {
    let started = client
        .query_typed_opt(
            "UPDATE orders SET status = 'cancelling', updated_at = now() \
             WHERE id = $1 AND status IN ('confirmed', 'cancelling') \
             AND ($2::bigint IS NULL OR user_id = $2) RETURNING order_ref",
            &[(&id, Type::INT8), (&owner, Type::INT8)],
        )
        .await?;
    if let Some(row) = started {
        return Ok(CancelStart::Started(row.get(0)));
    }
    Ok(match get(client, id).await? {
        Some(order) if owner.is_none_or(|own| order.user_id == own) => {
            CancelStart::NotConfirmed(order.status)
        }
        _ => CancelStart::NotFound,
    })
}

/// Last step of a cancel, once the stock is back: `cancelling` becomes `cancelled`, in one
/// statement that also returns the order as it now is: one round trip. The `order_cancelled`
/// event it causes is in the outbox with it, for the relay.
pub async fn finish_cancel_returning(
    client: &impl GenericClient,
    id: i64,
) -> Result<Option<Order>, Error> {
    let returning = columns_of_o();
    // As in `confirm_returning`: the outer query cannot see the CTE's update.
    let sql = format!(
        "WITH done AS (UPDATE orders o SET status = 'cancelled', updated_at = now() \
             WHERE o.id = $1 AND o.status = 'cancelling' RETURNING {returning}) \
         SELECT * FROM done \
         UNION ALL \
         SELECT {COLUMNS} FROM orders WHERE id = $1 AND status <> 'failed' \
             AND NOT EXISTS (SELECT 1 FROM done)"
    );
    let rows = client.query_typed(&sql, &[(&id, Type::INT8)]).await?;
    let found = rows.first().map(order);
    if found
        .as_ref()
        .is_none_or(|o| o.status == OrderStatus::Cancelled)
    {
        return Ok(found);
    }
    // A concurrent retry finished it while this statement waited: a new statement sees it.
    get(client, id).await
}

/// References with orders still `pending` after `age`: requests that died or timed out.
pub async fn stale_pending(client: &impl GenericClient, age: Duration) -> Result<Vec<Uuid>, Error> {
    let rows = client
        .query_typed(
            "SELECT DISTINCT order_ref FROM orders \
             WHERE status = 'pending' AND updated_at < now() - $1 * interval '1 second' LIMIT 500",
            &[(&seconds(age), Type::INT8)],
        )
        .await?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

/// Orders still `cancelling` after `age`, with their reference.
pub async fn stale_cancelling(
    client: &impl GenericClient,
    age: Duration,
) -> Result<Vec<(i64, Uuid)>, Error> {
    let rows = client
        .query_typed(
            "SELECT id, order_ref FROM orders \
             WHERE status = 'cancelling' AND updated_at < now() - $1 * interval '1 second' LIMIT 500",
            &[(&seconds(age), Type::INT8)],
        )
        .await?;
    Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
}

/// Whether any order of the reference holds (or is about to hold) stock.
pub async fn holds_stock(client: &impl GenericClient, order_ref: Uuid) -> Result<bool, Error> {
    let row = client
        .query_typed_one(
            "SELECT EXISTS (SELECT 1 FROM orders WHERE order_ref = $1 AND status IN ('pending', 'confirmed', 'cancelling'))",
            &[(&order_ref, Type::UUID)],
        )
        .await?;
    Ok(row.get(0))
}

/// What an `Idempotency-Key` holds when a request arrives with it.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// The key was free: it now belongs to this request and `order_ref`.
    New,
    /// The key was used before with this canonical request, reference and (once settled) response.
    Used {
        request: String,
        order_ref: Uuid,
        response: Option<(u16, String)>,
    },
}

/// Claims `key` for a request, or reports its earlier use. A concurrent claim of the same key
/// waits on the primary key until the first commits, so exactly one request gets `New`.
pub async fn claim_key(
    client: &impl GenericClient,
    key: &str,
    request: &str,
    order_ref: Uuid,
    ttl: Duration,
) -> Result<Claim, Error> {
    let ttl = seconds(ttl);
    client
        .execute_typed(
            "DELETE FROM idempotency_keys WHERE key = $1 AND expires_at <= now()",
            &[(&key, Type::TEXT)],
        )
        .await?;
    let inserted = client
        .execute_typed(
            "INSERT INTO idempotency_keys (key, request, order_ref, expires_at) \
             VALUES ($1, $2, $3, now() + $4 * interval '1 second') ON CONFLICT (key) DO NOTHING",
            &[
                (&key, Type::TEXT),
                (&request, Type::TEXT),
                (&order_ref, Type::UUID),
                (&ttl, Type::INT8),
            ],
        )
        .await?;
    if inserted == 1 {
        return Ok(Claim::New);
    }
    let row = client
        .query_typed_one(
            "SELECT request, order_ref, response_status, response_body FROM idempotency_keys WHERE key = $1",
            &[(&key, Type::TEXT)],
        )
        .await?;
    let status: Option<i16> = row.get(2);
    let body: Option<String> = row.get(3);
    Ok(Claim::Used {
        request: row.get(0),
        order_ref: row.get(1),
        response: status.zip(body).map(|(s, b)| (s as u16, b)),
    })
}

/// Records the settled response of a keyed request, for replays.
pub async fn store_response(
    client: &impl GenericClient,
    key: &str,
    status: u16,
    body: &str,
) -> Result<(), Error> {
    let status = status as i16;
    client
        .execute_typed(
            "UPDATE idempotency_keys SET response_status = $2, response_body = $3 WHERE key = $1",
            &[
                (&key, Type::TEXT),
                (&status, Type::INT2),
                (&body, Type::TEXT),
            ],
        )
        .await?;
    Ok(())
}

/// Deletes expired keys; returns how many.
pub async fn expire_keys(client: &impl GenericClient) -> Result<u64, Error> {
    client
        .execute_typed(
            "DELETE FROM idempotency_keys WHERE expires_at <= now()",
            &[],
        )
        .await
}
