//! Events: the transactional outbox, and publishing it.
//!
//! Triggers in inventory_db and order_db write every change's events into an `outbox` table in the
//! same transaction as the change (migrations `inventory_db/0003` and `order_db/0002`), so a
//! committed change always has its events and a rolled-back one never does. After committing, a
//! function publishes the events of its own transaction ([`publish_transaction`]); the scheduled
//! relay publishes whatever is left ([`relay`]), in order. Delivery is at least once: consumers
//! dedupe by `event_id`. The broker client lives in the `stockroom-kafka` crate, behind
//! [`Publish`], so only the functions that publish link it.

use std::future::Future;
use std::pin::Pin;

use tokio_postgres::types::Type;
use uuid::Uuid;

use crate::db::{Db, DbError};

pub const INVENTORY_TOPIC: &str = "inventory-events";
pub const ORDER_TOPIC: &str = "order-events";

/// One outbox row: an event ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEvent {
    pub id: i64,
    pub event_id: Uuid,
    pub topic: String,
    /// The product or order id: one entity's events share a partition, so they stay in order.
    pub key: String,
    pub payload: String,
}

/// A boxed future, so publishers can be used as trait objects.
pub type PublishFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// Sends events to the broker; `Ok` only once every event is acknowledged.
pub trait Publish: Send + Sync {
    fn publish<'a>(&'a self, events: &'a [OutboxEvent]) -> PublishFuture<'a>;
}

/// The id of the current transaction: pass it to [`publish_transaction`] after the commit.
pub async fn current_txid(
    client: &impl tokio_postgres::GenericClient,
) -> Result<i64, tokio_postgres::Error> {
    Ok(client
        .query_typed_one("SELECT txid_current()", &[])
        .await?
        .get(0))
}

fn outbox_event(row: &tokio_postgres::Row) -> OutboxEvent {
    OutboxEvent {
        id: row.get("id"),
        event_id: row.get("event_id"),
        topic: row.get("topic"),
        key: row.get("message_key"),
        payload: row.get("payload"),
    }
}

/// After a commit: publishes the events transaction `txid` wrote and marks them published. Never
/// fails the request: if the broker or the database is unavailable, the events stay in the outbox
/// and the relay publishes them.
pub async fn publish_transaction(db: &Db, publisher: Option<&dyn Publish>, txid: i64) {
    let Some(publisher) = publisher else {
        return;
    };
    if let Err(err) = try_publish_transaction(db, publisher, txid).await {
        tracing::warn!(%err, txid, "events left to the relay");
    }
}

async fn try_publish_transaction(
    db: &Db,
    publisher: &dyn Publish,
    txid: i64,
) -> Result<(), String> {
    let events = {
        let mut conn = db.conn().await.map_err(|e| e.to_string())?;
        let rows = conn
            .query_typed(
                "SELECT id, event_id, topic, message_key, payload FROM outbox_unpublished($1)",
                &[(&txid, Type::INT8)],
            )
            .await;
        conn.check(rows)
            .map_err(|e| e.to_string())?
            .iter()
            .map(outbox_event)
            .collect::<Vec<_>>()
    };
    if events.is_empty() {
        return Ok(());
    }
    publisher.publish(&events).await?;
    metrics::counter!("stockroom_events_published_total", "database" => db.name().to_owned(), "by" => "request")
        .increment(events.len() as u64);
    mark_published(db, &events).await.map_err(|e| e.to_string())
}

async fn mark_published(db: &Db, events: &[OutboxEvent]) -> Result<(), DbError> {
    let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
    let mut conn = db.conn().await?;
    let marked = conn
        .query_typed(
            "SELECT outbox_mark_published($1)",
            &[(&ids, Type::INT8_ARRAY)],
        )
        .await;
    conn.check(marked)?;
    Ok(())
}

/// What a relay run found and did on one database.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Relayed {
    pub published: usize,
}

#[derive(Debug)]
pub enum RelayError {
    Db(DbError),
    Publish(String),
}

impl std::fmt::Display for RelayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Db(err) => err.fmt(f),
            Self::Publish(err) => write!(f, "publishing failed: {err}"),
        }
    }
}

impl std::error::Error for RelayError {}

impl From<DbError> for RelayError {
    fn from(err: DbError) -> Self {
        Self::Db(err)
    }
}

/// Publishes every unpublished event of `db`'s outbox, oldest first, `batch` at a time. The rows
/// of a batch stay locked while they are sent (`FOR UPDATE SKIP LOCKED`), so overlapping relays
/// never send the same batch twice; a batch the broker refuses stays unpublished for the next run.
pub async fn relay(db: &Db, publisher: &dyn Publish, batch: i64) -> Result<Relayed, RelayError> {
    let mut done = Relayed::default();
    loop {
        let mut conn = db.conn().await?;
        let sent = async {
            let tx = conn.transaction().await?;
            let rows = tx
                .query_typed(
                    "SELECT id, event_id, topic, message_key, payload FROM outbox \
                     WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
                    &[(&batch, Type::INT8)],
                )
                .await?;
            let events: Vec<OutboxEvent> = rows.iter().map(outbox_event).collect();
            if events.is_empty() {
                return Ok(Ok(0));
            }
            // On failure the transaction is dropped: the rows are unlocked, still unpublished.
            if let Err(err) = publisher.publish(&events).await {
                return Ok(Err(err));
            }
            let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
            tx.execute_typed(
                "UPDATE outbox SET published_at = now() WHERE id = ANY($1)",
                &[(&ids, Type::INT8_ARRAY)],
            )
            .await?;
            tx.commit().await?;
            Ok(Ok(events.len()))
        }
        .await;
        let sent = conn.check(sent)?.map_err(RelayError::Publish)?;
        done.published += sent;
        if (sent as i64) < batch {
            return Ok(done);
        }
    }
}
