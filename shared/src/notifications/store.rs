//! SQL on `notification_db`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::value::RawValue;
use tokio_postgres::types::Type;
use tokio_postgres::{Error, GenericClient};
use uuid::Uuid;

use crate::events;
use crate::events::store::Backlog;
use crate::http::pagination::Page;
use crate::notifications::{Notification, Queue};

/// A record that could not be handled, on its way to the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// `topic/partition/offset/timestamp`: a redelivered record is dead-lettered once.
    pub source: String,
    /// The letter: the record's fields and the reason.
    pub body: String,
}

/// A message waiting in `sqs_outbox`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub id: i64,
    pub queue: Queue,
    pub body: String,
}

/// What recording a batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordedBatch {
    /// Events recorded now (the others had been recorded before: redeliveries).
    pub new: Vec<Uuid>,
    /// Messages queued for SQS by this batch.
    pub outgoing: Vec<Outgoing>,
}

/// Records a batch in one statement per table: each notification once per `event_id`, with an
/// alert queued for those that are forwarded, and each dead letter once per source. Commit it
/// before sending `outgoing` ([`lock_unsent_of`]): recording must not wait on SQS.
pub async fn record_batch(
    client: &impl GenericClient,
    notifications: &[(Notification, String)],
    letters: &[DeadLetter],
) -> Result<RecordedBatch, Error> {
    let column = |f: fn(&(Notification, String)) -> String| -> Vec<String> {
        notifications.iter().map(f).collect()
    };
    let event_ids: Vec<Uuid> = notifications.iter().map(|(n, _)| n.event_id).collect();
    let product_ids: Vec<Option<i64>> = notifications.iter().map(|(n, _)| n.product_id).collect();
    let order_ids: Vec<Option<i64>> = notifications.iter().map(|(n, _)| n.order_id).collect();
    let forwarded: Vec<bool> = notifications
        .iter()
        .map(|(n, _)| n.event_type.forwarded())
        .collect();
    let alerts = Queue::Alerts.as_str();
    // DO NOTHING skips a redelivered event (and a second copy within the batch); only new rows
    // come back, so only new alerts are queued.
    let rows = client
        .query_typed(
            "WITH new AS ( \
                 INSERT INTO notifications (event_id, event_type, message, product_id, order_id, event, source) \
                 SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int8[], $5::int8[], $6::text[], $7::text[]) \
                 ON CONFLICT (event_id) DO NOTHING \
                 RETURNING id, event_id, event \
             ), queued AS ( \
                 INSERT INTO sqs_outbox (queue, dedupe_key, body, notification_id) \
                 SELECT $9, new.event_id::text, new.event, new.id \
                 FROM new JOIN unnest($1::uuid[], $8::bool[]) AS f (event_id, forwarded) USING (event_id) \
                 WHERE f.forwarded \
                 ON CONFLICT (queue, dedupe_key) DO NOTHING \
                 RETURNING id, body \
             ) \
             SELECT new.event_id, NULL::int8, NULL::text FROM new \
             UNION ALL SELECT NULL, id, body FROM queued",
            &[
                (&event_ids, Type::UUID_ARRAY),
                (&column(|(n, _)| n.event_type.as_str().to_owned()), Type::TEXT_ARRAY),
                (&column(|(n, _)| n.message.clone()), Type::TEXT_ARRAY),
                (&product_ids, Type::INT8_ARRAY),
                (&order_ids, Type::INT8_ARRAY),
                (&column(|(n, _)| n.event.clone()), Type::TEXT_ARRAY),
                (&column(|(_, source)| source.clone()), Type::TEXT_ARRAY),
                (&forwarded, Type::BOOL_ARRAY),
                (&alerts, Type::TEXT),
            ],
        )
        .await?;
    // One row per new notification (its event_id), then one per queued alert (its message).
    let mut batch = RecordedBatch::default();
    for row in &rows {
        match row.get::<_, Option<Uuid>>(0) {
            Some(event_id) => batch.new.push(event_id),
            None => batch.outgoing.push(Outgoing {
                id: row.get(1),
                queue: Queue::Alerts,
                body: row.get(2),
            }),
        }
    }
    if !letters.is_empty() {
        let sources: Vec<&str> = letters.iter().map(|l| l.source.as_str()).collect();
        let bodies: Vec<&str> = letters.iter().map(|l| l.body.as_str()).collect();
        let dead = Queue::DeadLetters.as_str();
        let rows = client
            .query_typed(
                "INSERT INTO sqs_outbox (queue, dedupe_key, body) \
                 SELECT $1, * FROM unnest($2::text[], $3::text[]) \
                 ON CONFLICT (queue, dedupe_key) DO NOTHING RETURNING id, body",
                &[
                    (&dead, Type::TEXT),
                    (&sources, Type::TEXT_ARRAY),
                    (&bodies, Type::TEXT_ARRAY),
                ],
            )
            .await?;
        batch.outgoing.extend(rows.iter().map(|row| Outgoing {
            id: row.get(0),
            queue: Queue::DeadLetters,
            body: row.get(1),
        }));
    }
    Ok(batch)
}

/// Up to `limit` unsent messages, oldest first, locked until the transaction ends so that two
/// forwarders never send the same message (`SKIP LOCKED`: rows another one holds are left to it).
pub async fn lock_unsent(client: &impl GenericClient, limit: i64) -> Result<Vec<Outgoing>, Error> {
    let rows = client
        .query_typed(
            "SELECT id, queue, body FROM sqs_outbox WHERE sent_at IS NULL \
             ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
            &[(&limit, Type::INT8)],
        )
        .await?;
    Ok(rows
        .iter()
        .filter_map(|row| {
            Some(Outgoing {
                id: row.get(0),
                queue: Queue::from_stored(row.get(1))?,
                body: row.get(2),
            })
        })
        .collect())
}

/// Of `ids`, those still unsent, locked until the transaction ends; rows a forwarder holds are
/// skipped (left to it), so a message is never sent by both.
pub async fn lock_unsent_of(client: &impl GenericClient, ids: &[i64]) -> Result<Vec<i64>, Error> {
    let rows = client
        .query_typed(
            "SELECT id FROM sqs_outbox WHERE id = ANY($1) AND sent_at IS NULL \
             ORDER BY id FOR UPDATE SKIP LOCKED",
            &[(&ids, Type::INT8_ARRAY)],
        )
        .await?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

/// The SQS outbox's backlog: messages not sent yet, and the age of the oldest.
pub async fn backlog(client: &impl GenericClient) -> Result<Backlog, Error> {
    events::store::backlog_of(client, "sqs_outbox", "sent_at").await
}

/// Deletes sent messages older than `retention` (the notifications they forwarded stay).
pub async fn prune_sent(client: &impl GenericClient, retention: Duration) -> Result<u64, Error> {
    events::store::prune_of(client, "sqs_outbox", "sent_at", retention).await
}

/// Marks messages sent, and the notifications they forward as forwarded.
pub async fn mark_sent(client: &impl GenericClient, ids: &[i64]) -> Result<(), Error> {
    if ids.is_empty() {
        return Ok(());
    }
    client
        .execute_typed(
            "WITH sent AS (UPDATE sqs_outbox SET sent_at = now() WHERE id = ANY($1) RETURNING notification_id) \
             UPDATE notifications SET forwarded_at = now() FROM sent WHERE notifications.id = sent.notification_id",
            &[(&ids, Type::INT8_ARRAY)],
        )
        .await?;
    Ok(())
}

/// A recorded notification as `GET /api/notifications` returns it.
#[derive(Debug, Serialize)]
pub struct NotificationView {
    pub id: i64,
    pub event_id: Uuid,
    pub event_type: String,
    pub message: String,
    pub product_id: Option<i64>,
    pub order_id: Option<i64>,
    pub forwarded: bool,
    pub received_at: DateTime<Utc>,
    /// The event exactly as it arrived.
    pub event: Box<RawValue>,
}

/// Newest first; all or one keyset page.
pub async fn list(client: &impl GenericClient, page: Page) -> Result<Vec<NotificationView>, Error> {
    let (after, limit) = (page.after().unwrap_or(i64::MAX), page.limit());
    let rows = client
        .query_typed(
            "SELECT id, event_id, event_type, message, product_id, order_id, forwarded_at IS NOT NULL, \
             received_at, event FROM notifications WHERE id < $1 ORDER BY id DESC LIMIT $2",
            &[(&after, Type::INT8), (&limit, Type::INT8)],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| NotificationView {
            id: row.get(0),
            event_id: row.get(1),
            event_type: row.get(2),
            message: row.get(3),
            product_id: row.get(4),
            order_id: row.get(5),
            forwarded: row.get(6),
            received_at: row.get(7),
            // Recorded only after it parsed as a JSON object.
            event: RawValue::from_string(row.get(8)).expect("stored events are JSON"),
        })
        .collect())
}
