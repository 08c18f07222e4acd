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
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use uuid::Uuid;

use crate::db::{Db, DbError};
use crate::events;
use crate::events::store::Backlog;

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
    /// The broker failed moments ago: this publisher leaves the events to the relay for a while.
    #[error("the broker was unreachable moments ago; left to the relay")]
    BackingOff,
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

/// The environment's publisher, shared with the work that runs after the response.
pub type Publisher = Arc<dyn Publish>;

/// After a commit: publishes the events transaction `txid` wrote and marks them published. Never
/// fails the request: if the broker or the database is unavailable, the events stay in the outbox
/// and the relay publishes them. In a function this runs after the response is posted
/// ([`events::after_response`]): the caller does not wait for the broker.
pub async fn publish_transaction(db: &Db, publisher: Option<&Publisher>, txid: i64) {
    if publisher.is_none() {
        return;
    }
    let db = db.clone();
    defer(publisher, async move {
        let events = db
            .run("outbox_unpublished", async |c| {
                events::store::unpublished_of(c, txid).await
            })
            .await?;
        Ok(vec![(db, events)])
    })
    .await;
}

/// As [`publish_transaction`], for events a request already read in the transactions that wrote
/// them ([`events::store::with_events`]), in whichever databases: one batch to the broker, so one
/// wait for its acknowledgement (an order commits in inventory_db and in order_db), then each
/// database's events are marked published. No reads left, only the publish and the marks.
pub async fn publish_events(publisher: Option<&Publisher>, written: Vec<(&Db, Vec<OutboxEvent>)>) {
    let nothing = written.iter().all(|(_, events)| events.is_empty());
    if nothing || publisher.is_none() {
        return;
    }
    let found: Vec<(Db, Vec<OutboxEvent>)> = written
        .into_iter()
        .map(|(db, events)| (db.clone(), events))
        .collect();
    defer(publisher, async move { Ok(found) }).await;
}

/// Hands the work of publishing to [`events::after_response::later`]: `find` the events, then
/// [`publish_found`]; a failure leaves them to the relay.
async fn defer(
    publisher: Option<&Publisher>,
    find: impl Future<Output = Result<Vec<(Db, Vec<OutboxEvent>)>, DbError>> + Send + 'static,
) {
    let publisher = publisher.cloned();
    events::after_response::later(async move {
        let published = match find.await {
            Ok(found) => publish_found(publisher.as_deref(), &found).await,
            Err(err) => Err(err.into()),
        };
        if let Err(err) = published {
            tracing::warn!(error = %crate::error::chain(&err), "events left to the relay");
        }
    })
    .await;
}

/// Publishes each database's events in one batch, then marks each database's at once (they are on
/// different connections).
async fn publish_found(
    publisher: Option<&dyn Publish>,
    found: &[(Db, Vec<OutboxEvent>)],
) -> Result<(), OutboxError> {
    let batch: Vec<OutboxEvent> = found
        .iter()
        .flat_map(|(_, events)| events.clone())
        .collect();
    let Some(publisher) = publisher.filter(|_| !batch.is_empty()) else {
        return Ok(());
    };
    let outcome = publisher.publish(&batch).await;
    // What the broker took is marked even when the rest failed: the relay sends only the rest.
    let marks = found.iter().map(|(db, events)| {
        let events = acknowledged(&outcome, events);
        async move {
            if events.is_empty() {
                return Ok(());
            }
            metrics::counter!("stockroom_events_published_total", "database" => db.name().to_owned(), "by" => "request")
                .increment(events.len() as u64);
            db.run("outbox_mark_published", async |c| {
                events::store::mark_published(c, &events).await
            })
            .await
        }
    });
    for marked in join_all(marks).await {
        marked?;
    }
    Ok(outcome?)
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

/// How old an unpublished event must be before the relay sends it: longer than a request's own
/// publish may take (the Kafka publisher gives up after 5 s), so the relay never sends an event
/// whose function is still waiting for the broker's acknowledgement (a duplicate on the topic,
/// seen across a broker restart, when the first produce after it was slow).
pub const RELAY_MIN_AGE: Duration = Duration::from_secs(6);

/// What a relay run found and did on one database.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Relayed {
    pub published: usize,
    /// What is left once the run is done (events written meanwhile, or locked by another relay).
    #[serde(skip)]
    pub backlog: Backlog,
}

/// Why the outbox was not (all) published.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("publishing failed: {0}")]
    Publish(#[from] PublishError),
}

/// Publishes every unpublished event of `db`'s outbox at least `min_age` old, oldest first, `batch`
/// at a time. The rows of a batch stay locked while they are sent (`FOR UPDATE SKIP LOCKED`), so
/// overlapping relays never send the same batch twice; a batch the broker refuses stays
/// unpublished for the next run.
pub async fn relay(
    db: &Db,
    publisher: &dyn Publish,
    batch: i64,
    min_age: Duration,
) -> Result<Relayed, OutboxError> {
    let mut done = Relayed::default();
    loop {
        let sent = db.transaction("relay_batch", async |tx| {
            let events = events::store::lock_oldest(tx, batch, min_age).await?;
            if events.is_empty() {
                return Ok(Ok(0));
            }
            // On failure only what the broker took is marked; the commit unlocks the rest for the
            // next run.
            let outcome = publisher.publish(&events).await;
            events::store::mark_published(tx, &acknowledged(&outcome, &events)).await?;
            Ok(outcome.map(|()| events.len()))
        });
        let sent = sent.await?.map_err(OutboxError::Publish)?;
        done.published += sent;
        if (sent as i64) < batch {
            done.backlog = db
                .run("outbox_backlog", async |c| events::store::backlog(c).await)
                .await?;
            return Ok(done);
        }
    }
}
