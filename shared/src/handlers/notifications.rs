//! Notifications: the Kafka consumer (`notifications`, fed by MSK's event source mapping or, locally,
//! `stockroom-kafka-trigger`), the scheduled `notifications-forwarder`, and `GET /api/notifications`.

use std::time::{Duration, Instant};

use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::kafka::{KafkaEvent, KafkaRecord};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use lambda_http::{Body, LambdaEvent, Request, Response};
use serde::Serialize;
use serde_json::json;

use crate::ApiError;
use crate::db::Db;
use crate::error::RunError;
use crate::http::{list_reply, page};
use crate::notifications::store::{DeadLetter, NotificationView, Outgoing};
use crate::notifications::{self, Notification, Queue, Queues, Sent};

/// Messages the forwarder sends per transaction.
const FORWARD_BATCH: i64 = 500;

/// What one batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Handled {
    /// Events recorded now.
    pub recorded: usize,
    /// Events recorded before (a redelivery).
    pub duplicates: usize,
    /// Alerts the alerts queue accepted during this invocation.
    pub forwarded: usize,
    /// Records that could not be handled, queued for the dead-letter queue.
    pub dead_lettered: usize,
    /// Queued messages SQS did not accept now: `notifications-forwarder` sends them later.
    pub left_to_forwarder: usize,
    /// Requests made to SQS (`SendMessageBatch`, up to ten messages each).
    pub sqs_requests: usize,
}

fn source(record: &KafkaRecord) -> String {
    format!(
        "{}/{}/{}",
        record.topic.as_deref().unwrap_or("?"),
        record.partition,
        record.offset
    )
}

/// Validates one record; a record that cannot be handled becomes a dead letter with the reason.
fn read_record(record: &KafkaRecord) -> Result<Notification, DeadLetter> {
    let value = record
        .value
        .as_deref()
        .ok_or_else(|| "record has no value".to_owned())
        .and_then(|v| {
            BASE64
                .decode(v)
                .map_err(|_| "value is not base64".to_owned())
        });
    value
        .and_then(|bytes| notifications::parse(&bytes))
        .map_err(|reason| {
            tracing::warn!(%reason, source = %source(record), "dead-lettering a record");
            let letter = json!({
                "reason": reason,
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "key": record.key,
                "value": record.value,
            });
            DeadLetter {
                // Offsets start again if a topic is recreated; with the timestamp, the key names
                // one record for good.
                source: format!(
                    "{}/{}",
                    source(record),
                    record.timestamp.0.timestamp_millis()
                ),
                body: letter.to_string(),
            }
        })
}

/// How long the forwarder may spend sending to SQS before it stops starting requests; one request
/// may take up to 5 s more. The rows stay locked in a transaction meanwhile, and notification_db
/// ends a session idle in a transaction for 15 s (`stockroom-migrate`), which would roll back
/// the marking of what was sent; the functions' timeout is 15 s too. What is left waits for its
/// next run.
const SEND_BUDGET: Duration = Duration::from_secs(8);
/// The same for the notifications function, after its batch is recorded, and shorter: the next
/// batch of the partition waits for this invocation, so a slow SQS must not slow recording (the
/// consumer's throughput); the forwarder sends what it leaves. In AWS a batch's requests, sent
/// at once, take tens of milliseconds, so this only matters when SQS struggles.
const RECORDING_SEND_BUDGET: Duration = Duration::from_millis(500);

/// Sends queued messages, each queue's in batches; what was not accepted stays queued.
async fn send(queues: &dyn Queues, outgoing: &[Outgoing], deadline: Instant) -> Sent {
    let mut sent = Sent::default();
    for queue in [Queue::Alerts, Queue::DeadLetters] {
        let messages: Vec<(i64, String)> = outgoing
            .iter()
            .filter(|m| m.queue == queue)
            .map(|m| (m.id, m.body.clone()))
            .collect();
        if messages.is_empty() {
            continue;
        }
        sent.add(queues.send_batch(queue, &messages, deadline).await);
    }
    if let Some(err) = &sent.error {
        tracing::warn!(%err, "SQS did not take every message; the forwarder sends the rest");
    }
    sent
}

/// Sends what a batch queued, within [`RECORDING_SEND_BUDGET`], and marks what SQS accepted. The
/// rows are locked first: those a forwarder took since the recording committed are left to it.
/// A database failure here does not fail the invocation, which has recorded its batch: the
/// forwarder sends what is left (a message SQS accepted but that could not be marked is sent
/// again, as after any crash between the two).
async fn send_recorded(db: &Db, queues: &dyn Queues, outgoing: &[Outgoing]) -> Sent {
    if outgoing.is_empty() {
        return Sent::default();
    }
    let ids: Vec<i64> = outgoing.iter().map(|m| m.id).collect();
    let deadline = Instant::now() + RECORDING_SEND_BUDGET;
    let sent = db.transaction("send_batch", async |tx| {
        let locked = notifications::store::lock_unsent_of(tx, &ids).await?;
        let mine: Vec<Outgoing> = outgoing
            .iter()
            .filter(|m| locked.contains(&m.id))
            .cloned()
            .collect();
        let sent = send(queues, &mine, deadline).await;
        notifications::store::mark_sent(tx, &sent.accepted).await?;
        Ok(sent)
    });
    sent.await.unwrap_or_else(|err| {
        tracing::warn!(%err, "could not mark what was sent; the forwarder sends the rest");
        Sent::default()
    })
}

/// Handles a batch as Lambda's Kafka event source delivers it: records grouped by
/// `"topic-partition"`, values base64. In one notification_db transaction, every valid event is
/// recorded once (by `event_id`), with its alert queued if it is forwarded, and every record that
/// cannot be handled is queued as a dead letter with its reason; after the commit the queued
/// messages are sent to SQS for at most [`RECORDING_SEND_BUDGET`] and marked sent. Recording never
/// depends on SQS: what SQS does not take now, `notifications-forwarder` sends later. Only a
/// database outage while recording fails the invocation, so the event source retries the batch,
/// and recording is idempotent.
pub async fn handle(
    db: &Db,
    queues: &dyn Queues,
    event: LambdaEvent<KafkaEvent>,
) -> Result<Handled, RunError> {
    let started = std::time::Instant::now();
    let handled = handle_batch(db, queues, &event.payload).await;
    if let Ok(handled) = &handled {
        metrics::counter!("stockroom_dead_letters_total").increment(handled.dead_lettered as u64);
        metrics::counter!("stockroom_alerts_forwarded_total").increment(handled.forwarded as u64);
        metrics::histogram!("notification_message_processing_duration_seconds")
            .record(started.elapsed().as_secs_f64());
    }
    crate::telemetry::finish_run(&handled);
    handled
}

async fn handle_batch(
    db: &Db,
    queues: &dyn Queues,
    event: &KafkaEvent,
) -> Result<Handled, RunError> {
    let mut partitions: Vec<_> = event.records.iter().collect();
    partitions.sort_by(|a, b| a.0.cmp(b.0));
    let (mut valid, mut letters) = (Vec::new(), Vec::new());
    for record in partitions.into_iter().flat_map(|(_, records)| records) {
        match read_record(record) {
            Ok(n) => valid.push((n, source(record))),
            Err(letter) => letters.push(letter),
        }
    }
    // Recording commits first, so it never waits on SQS; the sends that follow are best effort.
    let batch = db
        .transaction("record_batch", async |tx| {
            notifications::store::record_batch(tx, &valid, &letters).await
        })
        .await?;
    let sent = send_recorded(db, queues, &batch.outgoing).await;
    for (n, _) in valid
        .iter()
        .filter(|(n, _)| batch.new.contains(&n.event_id))
    {
        metrics::counter!("notification_notifications_sent_total", "event_type" => n.event_type.as_str())
            .increment(1);
        tracing::info!(
            event_id = %n.event_id,
            event_type = n.event_type.as_str(),
            product_id = n.product_id,
            order_id = n.order_id,
            message = %n.message,
            "notification"
        );
    }
    let queued_letters = batch
        .outgoing
        .iter()
        .filter(|m| m.queue == Queue::DeadLetters)
        .count();
    let forwarded = batch
        .outgoing
        .iter()
        .filter(|m| m.queue == Queue::Alerts && sent.accepted.contains(&m.id))
        .count();
    let handled = Handled {
        recorded: batch.new.len(),
        duplicates: valid.len() - batch.new.len(),
        forwarded,
        dead_lettered: queued_letters,
        left_to_forwarder: batch.outgoing.len() - sent.accepted.len(),
        sqs_requests: sent.requests,
    };
    tracing::info!(?handled, "batch handled");
    Ok(handled)
}

/// What one forwarder run sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Forwarded {
    pub sent: usize,
    /// Sent messages past the retention, deleted.
    pub pruned: u64,
}

/// Sends every message in notification_db's SQS outbox that is not sent yet, oldest first (the
/// scheduled `notifications-forwarder`). The rows of a batch stay locked while they are sent, so
/// overlapping runs, and the notifications function, never send one twice. Fails the run (after
/// marking what was sent) when SQS refused or timed out, so the failure shows in the metrics; a
/// slow SQS only makes it stop after [`SEND_BUDGET`] and leave the rest to the next run. Then
/// deletes sent messages older than `retention` ([`crate::events::store::retention_from_env`]).
pub async fn forward(
    db: &Db,
    queues: &dyn Queues,
    retention: Duration,
    event: LambdaEvent<EventBridgeEvent>,
) -> Result<Forwarded, RunError> {
    tracing::debug!(schedule = ?event.payload.resources, "forwarding");
    let forwarded = forward_all(db, queues, retention).await;
    crate::telemetry::finish_run(&forwarded);
    forwarded
}

async fn forward_all(
    db: &Db,
    queues: &dyn Queues,
    retention: Duration,
) -> Result<Forwarded, RunError> {
    let deadline = Instant::now() + SEND_BUDGET;
    let mut done = Forwarded::default();
    loop {
        let forwarded = db.transaction("forward_batch", async |tx| {
            let outgoing = notifications::store::lock_unsent(tx, FORWARD_BATCH).await?;
            let sent = send(queues, &outgoing, deadline).await;
            notifications::store::mark_sent(tx, &sent.accepted).await?;
            Ok((outgoing.len(), sent))
        });
        let (locked, sent) = forwarded.await?;
        done.sent += sent.accepted.len();
        if let Some(err) = sent.error {
            return Err(RunError::Queue(format!(
                "sent {} messages, then: {err}",
                done.sent
            )));
        }
        let all_sent = sent.accepted.len() == locked && (locked as i64) < FORWARD_BATCH;
        if all_sent || Instant::now() >= deadline {
            let backlog = db
                .run("sqs_outbox_backlog", async |c| {
                    notifications::store::backlog(c).await
                })
                .await?;
            crate::telemetry::outbox_backlog(db.name(), backlog);
            done.pruned = db
                .run("prune_sqs_outbox", async |c| {
                    notifications::store::prune_sent(c, retention).await
                })
                .await?;
            tracing::info!(?done, "forwarded");
            return Ok(done);
        }
    }
}

/// `GET /api/notifications` → recorded notifications, newest first, all or one keyset page.
pub async fn list(db: &Db, request: Request) -> Response<Body> {
    let listed = async {
        crate::auth::require_admin(&request)?;
        let page = page(&request)?;
        let found = db
            .run("list_notifications", async |c| {
                notifications::store::list(c, page).await
            })
            .await?;
        Ok::<_, ApiError>((page, found))
    };
    list_reply(&request, listed.await, |n: &NotificationView| n.id)
}
