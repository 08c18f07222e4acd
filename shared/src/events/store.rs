//! The `outbox` table of inventory_db and order_db (migrations `inventory_db/0003` and `0008`,
//! `order_db/0002` and `0004`): the oldest unpublished events, marking them sent, pruning them,
//! and how far behind publishing is. Only the relay, with the owner's rights, reads or marks
//! them.
//!
//! A trigger writes each event's fields into typed columns and nothing more; the event's JSON is
//! written here, from the typed schema ([`Event`]), by the relay: serialising it in the trigger
//! (`jsonb_build_object`, `to_char`) cost the database, the one part that does not scale out, on
//! every change.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use tokio_postgres::types::Type;
use tokio_postgres::{Error, GenericClient, Row};

use crate::Money;
use crate::config::{ConfigError, Vars};
use crate::events::outbox::OutboxEvent;
use crate::events::{
    Event, EventKind, INVENTORY_TOPIC, LowStockFields, ORDER_TOPIC, OrderFields, ProductFields,
};

/// The two outboxes: what their rows hold, and the topic their events go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outbox {
    /// inventory_db: product changes and low-stock alerts, keyed by product id.
    Inventory,
    /// order_db: orders placed and cancelled, keyed by order id.
    Orders,
}

impl Outbox {
    /// The columns an event is built from ([`Self::event`]).
    fn columns(self) -> &'static str {
        match self {
            Self::Inventory => {
                "id, event_id, event_type, created_at, product_id, name, stock, price, threshold"
            }
            Self::Orders => {
                "id, event_id, event_type, created_at, order_id, product_id, user_id, quantity, \
                 unit_price, total_price, status"
            }
        }
    }

    /// The column holding the event's message key: the product's or the order's id.
    fn key_column(self) -> &'static str {
        match self {
            Self::Inventory => "product_id",
            Self::Orders => "order_id",
        }
    }

    /// One row's event, as the consumers read it ([`Event`], docs/events.md).
    fn event(self, row: &Row) -> OutboxEvent {
        let created_at: DateTime<Utc> = row.get("created_at");
        let money = |column: &str| Some(Money::from_stored(row.get::<_, Decimal>(column)));
        let event_type: &str = row.get("event_type");
        let (topic, key, kind) = match self {
            Self::Inventory => {
                let product_id: i64 = row.get("product_id");
                let product = || ProductFields {
                    product_id,
                    name: row.get("name"),
                    stock: row.get("stock"),
                    price: money("price"),
                };
                let kind = match event_type {
                    "product_created" => EventKind::ProductCreated(product()),
                    "product_updated" => EventKind::ProductUpdated(product()),
                    "product_deleted" => EventKind::ProductDeleted(product()),
                    "low_stock_alert" => EventKind::LowStockAlert(LowStockFields {
                        product_id,
                        name: row.get("name"),
                        stock: row.get("stock"),
                        threshold: Some(row.get::<_, i32>("threshold").into()),
                    }),
                    other => unreachable!("outbox_event_type's CHECK refuses {other:?}"),
                };
                (INVENTORY_TOPIC, product_id, kind)
            }
            Self::Orders => {
                let order_id: i64 = row.get("order_id");
                let order = OrderFields {
                    order_id,
                    product_id: row.get("product_id"),
                    user_id: Some(row.get("user_id")),
                    quantity: row.get::<_, i32>("quantity").into(),
                    unit_price: money("unit_price"),
                    total_price: money("total_price"),
                    status: Some(row.get("status")),
                };
                let kind = match event_type {
                    "order_created" => EventKind::OrderCreated(order),
                    "order_cancelled" => EventKind::OrderCancelled(order),
                    other => unreachable!("outbox_event_type's CHECK refuses {other:?}"),
                };
                (ORDER_TOPIC, order_id, kind)
            }
        };
        let event = Event {
            event_id: row.get("event_id"),
            version: Some(1),
            occurred_at: Some(created_at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()),
            timestamp: Some(created_at.timestamp()),
            kind,
        };
        OutboxEvent {
            id: row.get("id"),
            event_id: event.event_id,
            topic: topic.to_owned(),
            key: key.to_string(),
            payload: serde_json::to_string(&event).expect("events serialise"),
        }
    }
}

/// Marks the events `$1` (`bigint[]`) published, once: a row already marked keeps its time.
const MARK_PUBLISHED: &str =
    "UPDATE outbox SET published_at = now() WHERE id = ANY ($1) AND published_at IS NULL";

/// The oldest `limit` unpublished events of `outbox`, in the order they were written (for one
/// product or order, the order of its changes: the trigger writes while the changed row is
/// locked), as the consumers will read them.
pub async fn unpublished(
    client: &impl GenericClient,
    outbox: Outbox,
    limit: i64,
) -> Result<Vec<OutboxEvent>, Error> {
    let sql = format!(
        "SELECT {} FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT $1",
        outbox.columns()
    );
    let rows = client.query_typed(&sql, &[(&limit, Type::INT8)]).await?;
    Ok(rows.iter().map(|row| outbox.event(row)).collect())
}

/// Every event still kept of one product (inventory) or order, published or not, as sent: for
/// looking into a delivery after the fact. It reads the whole outbox (no index on the key).
pub async fn of_key(
    client: &impl GenericClient,
    outbox: Outbox,
    key: i64,
) -> Result<Vec<OutboxEvent>, Error> {
    let sql = format!(
        "SELECT {} FROM outbox WHERE {} = $1 ORDER BY id",
        outbox.columns(),
        outbox.key_column()
    );
    let rows = client.query_typed(&sql, &[(&key, Type::INT8)]).await?;
    Ok(rows.iter().map(|row| outbox.event(row)).collect())
}

/// Marks events published, in one statement.
pub async fn mark_published(
    client: &impl GenericClient,
    events: &[OutboxEvent],
) -> Result<(), Error> {
    let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
    client
        .execute_typed(MARK_PUBLISHED, &[(&ids, Type::INT8_ARRAY)])
        .await?;
    Ok(())
}

/// How long published events (and sent SQS messages) are kept before the scheduled runs delete
/// them, in hours: long enough to look into a delivery after the fact, short enough that the
/// outboxes do not grow without bound (the development inventory outbox reached 1.65 million rows,
/// 645 MB, and its autovacuum slowed a benchmark).
pub const RETENTION_HOURS_VAR: &str = "OUTBOX_RETENTION_HOURS";
const DEFAULT_RETENTION_HOURS: u64 = 7 * 24;
/// Rows one pruning statement deletes at most, and statements per run: 50,000 rows a minute.
const PRUNE_BATCH: i64 = 5_000;
const PRUNE_BATCHES: usize = 10;

/// The retention [`RETENTION_HOURS_VAR`] sets (a week when unset or empty).
pub fn retention_from_env() -> Result<Duration, ConfigError> {
    retention_from(crate::config::env)
}

/// [`retention_from_env`] with the settings as `vars` gives them.
fn retention_from(vars: impl Fn(&str) -> Option<String>) -> Result<Duration, ConfigError> {
    let hours = vars.parsed_with(RETENTION_HOURS_VAR, "a whole number of hours", |text| {
        text.parse::<u64>().ok()?.checked_mul(3600)
    })?;
    Ok(Duration::from_secs(
        hours.unwrap_or(DEFAULT_RETENTION_HOURS * 3600),
    ))
}

/// Deletes published events older than `retention`; returns how many.
pub async fn prune(client: &impl GenericClient, retention: Duration) -> Result<u64, Error> {
    prune_of(client, "outbox", "published_at", retention).await
}

/// Deletes the rows of an outbox-shaped table whose `done` column is set and that are older than
/// `retention`, in bounded statements. The age is found through the table's BRIN index on
/// `created_at` (migrations `*_retention`), so a run with nothing old enough reads almost nothing
/// however large the table is.
pub(crate) async fn prune_of(
    client: &impl GenericClient,
    table: &'static str,
    done: &'static str,
    retention: Duration,
) -> Result<u64, Error> {
    let sql = format!(
        "DELETE FROM {table} WHERE id IN (SELECT id FROM {table} \
         WHERE created_at < now() - make_interval(secs => $2) AND {done} IS NOT NULL LIMIT $1)"
    );
    let mut deleted = 0;
    for _ in 0..PRUNE_BATCHES {
        let n = client
            .execute_typed(
                &sql,
                &[
                    (&PRUNE_BATCH, Type::INT8),
                    (&retention.as_secs_f64(), Type::FLOAT8),
                ],
            )
            .await?;
        deleted += n;
        if n < PRUNE_BATCH as u64 {
            break;
        }
    }
    Ok(deleted)
}

/// How far behind publishing is: unpublished events, and the age of the oldest in seconds (0
/// when there is none).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Backlog {
    pub pending: i64,
    pub oldest_age_seconds: f64,
}

/// The outbox's [`Backlog`] (owner rights; served by the `published_at IS NULL` index).
pub async fn backlog(client: &impl GenericClient) -> Result<Backlog, Error> {
    backlog_of(client, "outbox", "published_at").await
}

/// The [`Backlog`] of any outbox-shaped table: rows whose `done` column is still NULL, by their
/// `created_at`.
pub(crate) async fn backlog_of(
    client: &impl GenericClient,
    table: &'static str,
    done: &'static str,
) -> Result<Backlog, Error> {
    let sql = format!(
        "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8 \
         FROM {table} WHERE {done} IS NULL"
    );
    let row = client.query_typed_one(&sql, &[]).await?;
    Ok(Backlog {
        pending: row.get(0),
        oldest_age_seconds: row.get(1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retention_is_a_week_unless_set_to_whole_hours() {
        let retention = |value: Option<&'static str>| {
            retention_from(move |name: &str| {
                assert_eq!(name, RETENTION_HOURS_VAR);
                value.map(str::to_owned)
            })
        };
        let week = Duration::from_secs(7 * 24 * 3600);
        assert_eq!(retention(None), Ok(week));
        assert_eq!(retention(Some("")), Ok(week));
        assert_eq!(retention(Some(" 2 ")), Ok(Duration::from_secs(7200)));
        let err = retention(Some("1w")).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"OUTBOX_RETENTION_HOURS is not a whole number of hours: "1w""#
        );
        assert!(
            retention(Some("18446744073709551615")).is_err(),
            "overflows"
        );
    }
}
