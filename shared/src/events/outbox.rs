//! Events: the transactional outbox, and publishing it.
//!
//! Triggers in inventory_db and order_db write every change's events into an `outbox` table in the
//! same transaction as the change (migrations `inventory_db/0003` and `order_db/0002`), so a
//! committed change always has its events and a rolled-back one never does. No request publishes:
//! the relay ([`relay`], run continuously by `events-relay`) sends them in batches, in order.
//! Delivery is at least once: consumers dedupe by `event_id`. The broker client lives in the
//! `stockroom-kafka` crate, behind [`Publish`], so only the relay (and the tools) link it.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use uuid::Uuid;

use tokio_postgres::types::Type;

use crate::db::{Db, DbError};
use crate::events;
use crate::events::store::Outbox;

pub use crate::events::{INVENTORY_TOPIC, ORDER_TOPIC};

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
pub type PublishFuture<'a> = Pin<Box<dyn Future<Output = Result<(), PublishError>> + Send + 'a>>;

/// Why events were not published; they stay in the outbox either way.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("could not create the producer: {0}")]
    Producer(String),
    /// Some events were not delivered (or not even queued); `delivered` were acknowledged.
    #[error("event {event_id} not delivered: {reason}")]
    Delivery {
        event_id: Uuid,
        reason: String,
        delivered: Vec<Uuid>,
    },
}

/// Sends events to the broker; `Ok` only once every event is acknowledged.
pub trait Publish: Send + Sync {
    fn publish<'a>(&'a self, events: &'a [OutboxEvent]) -> PublishFuture<'a>;
}

/// The events of `sent` the broker acknowledged, by the outcome of publishing them: all, some (a
/// delivery failed part way), or none.
fn acknowledged(outcome: &Result<(), PublishError>, sent: &[OutboxEvent]) -> Vec<OutboxEvent> {
    let taken = |event: &&OutboxEvent| match outcome {
        Ok(()) => true,
        Err(PublishError::Delivery { delivered, .. }) => delivered.contains(&event.event_id),
        Err(_) => false,
    };
    sent.iter().filter(taken).cloned().collect()
}

/// Why the outbox was not (all) published.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("publishing failed: {0}")]
    Publish(#[from] PublishError),
}

/// The advisory lock that makes relays take turns on a database: in AWS an invocation overlaps
/// the next scheduled one for a few seconds, and reserved concurrency (the other way to have one
/// at a time) is not available in a small account.
pub const RELAY_LOCK: i64 = 0x5354_4f43_4b52_4f4f; // "STOCKROO"

/// One pass of the relay over one outbox: publishes its oldest unpublished events, at most
/// `batch`, and marks what the broker acknowledged, in one transaction holding [`RELAY_LOCK`]. So
/// relays take turns, and one product's or order's events reach its partition in the order they
/// were written. Returns how many it published; `None` when another relay holds the lock. Events
/// the broker did not take stay unpublished for the next pass.
pub async fn relay_batch(
    db: &Db,
    outbox: Outbox,
    publisher: &dyn Publish,
    batch: i64,
) -> Result<Option<usize>, OutboxError> {
    let sent = db.transaction("relay_batch", async |tx| {
        // One round trip: a relay that does not get the lock ignores what it read.
        let (locked, events) = futures_util::future::join(
            tx.query_typed_one(
                "SELECT pg_try_advisory_xact_lock($1)",
                &[(&RELAY_LOCK, Type::INT8)],
            ),
            events::store::unpublished(tx, outbox, batch),
        )
        .await;
        if !locked?.get::<_, bool>(0) {
            return Ok(Ok(None));
        }
        let events = events?;
        if events.is_empty() {
            return Ok(Ok(Some(0)));
        }
        let outcome = publisher.publish(&events).await;
        // On failure only what the broker took is marked.
        events::store::mark_published(tx, &acknowledged(&outcome, &events)).await?;
        Ok(outcome.map(|()| Some(events.len())))
    });
    sent.await?.map_err(OutboxError::Publish)
}

/// Deletes `db`'s published events older than `retention` ([`events::store::prune`]), in a
/// transaction holding [`RELAY_LOCK`], as a relay pass does; `None` when another relay holds it.
pub async fn prune(db: &Db, retention: Duration) -> Result<Option<u64>, DbError> {
    db.transaction("prune_outbox", async |tx| {
        let locked: bool = tx
            .query_typed_one(
                "SELECT pg_try_advisory_xact_lock($1)",
                &[(&RELAY_LOCK, Type::INT8)],
            )
            .await?
            .get(0);
        if !locked {
            return Ok(None);
        }
        Ok(Some(events::store::prune(tx, retention).await?))
    })
    .await
}
