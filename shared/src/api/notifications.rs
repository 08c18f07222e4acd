//! Notifications: the Kafka consumer (`notifications`, fed by MSK's event source mapping or, locally,
//! `stockroom-kafka-trigger`) and `GET /api/notifications`.

use aws_lambda_events::kafka::{KafkaEvent, KafkaRecord};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use lambda_http::{LambdaEvent, Request};
use serde::Serialize;
use serde_json::json;

use crate::ApiError;
use crate::db::{Db, DbError};
use crate::http::{HandlerResult, list_reply, page};
use crate::notification::{self, Queue, Queues};
use crate::notification_store::{self, NotificationView};

/// What one batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Handled {
    pub recorded: usize,
    pub duplicates: usize,
    pub forwarded: usize,
    pub dead_lettered: usize,
}

#[derive(Debug)]
pub enum HandleError {
    Db(DbError),
    Queue(String),
}

impl std::fmt::Display for HandleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Db(err) => err.fmt(f),
            Self::Queue(err) => write!(f, "queue: {err}"),
        }
    }
}

impl std::error::Error for HandleError {}

impl From<DbError> for HandleError {
    fn from(err: DbError) -> Self {
        Self::Db(err)
    }
}

fn source(record: &KafkaRecord) -> String {
    format!(
        "{}/{}/{}",
        record.topic.as_deref().unwrap_or("?"),
        record.partition,
        record.offset
    )
}

/// Handles a batch as Lambda's Kafka event source delivers it: records grouped by
/// `"topic-partition"`, values base64. Each event is recorded once (by `event_id`) and logged;
/// alerts go to the alerts queue; a record that cannot be handled goes to the dead-letter queue
/// with its reason and the rest of the batch goes on. Only an outage (database or queue) fails the
/// invocation, so the event source retries the batch, and recording is idempotent.
pub async fn handle(
    db: &Db,
    queues: &dyn Queues,
    event: LambdaEvent<KafkaEvent>,
) -> Result<Handled, lambda_http::Error> {
    Ok(handle_batch(db, queues, &event.payload).await?)
}

async fn handle_batch(
    db: &Db,
    queues: &dyn Queues,
    event: &KafkaEvent,
) -> Result<Handled, HandleError> {
    let mut handled = Handled::default();
    let mut partitions: Vec<_> = event.records.iter().collect();
    partitions.sort_by(|a, b| a.0.cmp(b.0));
    for (_, records) in partitions {
        for record in records {
            handle_record(db, queues, record, &mut handled).await?;
        }
    }
    tracing::info!(?handled, "batch handled");
    Ok(handled)
}

async fn handle_record(
    db: &Db,
    queues: &dyn Queues,
    record: &KafkaRecord,
    handled: &mut Handled,
) -> Result<(), HandleError> {
    let value = record
        .value
        .as_deref()
        .ok_or_else(|| "record has no value".to_owned())
        .and_then(|v| {
            BASE64
                .decode(v)
                .map_err(|_| "value is not base64".to_owned())
        });
    let parsed = value.and_then(|bytes| notification::parse(&bytes));
    let n = match parsed {
        Ok(n) => n,
        Err(reason) => {
            tracing::warn!(%reason, source = %source(record), "dead-lettering a record");
            let letter = json!({
                "reason": reason,
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "key": record.key,
                "value": record.value,
            });
            queues
                .send(Queue::DeadLetters, letter.to_string())
                .await
                .map_err(HandleError::Queue)?;
            handled.dead_lettered += 1;
            return Ok(());
        }
    };
    let recorded = {
        let mut conn = db.conn().await?;
        let recorded = notification_store::record(&*conn, &n, &source(record)).await;
        conn.check(recorded)?
    };
    if recorded.new {
        handled.recorded += 1;
        tracing::info!(
            event_id = %n.event_id,
            event_type = n.event_type.as_str(),
            product_id = n.product_id,
            order_id = n.order_id,
            message = %n.message,
            "notification"
        );
    } else {
        handled.duplicates += 1;
    }
    // Checked on redeliveries too: a send that failed last time is made now.
    if n.event_type.forwarded() && !recorded.forwarded {
        queues
            .send(Queue::Alerts, n.event.clone())
            .await
            .map_err(HandleError::Queue)?;
        let mut conn = db.conn().await?;
        let marked = notification_store::mark_forwarded(&*conn, recorded.id).await;
        conn.check(marked)?;
        handled.forwarded += 1;
    }
    Ok(())
}

/// `GET /api/notifications` → recorded notifications, newest first, all or one keyset page.
pub async fn list(db: &Db, request: Request) -> HandlerResult {
    let listed = async {
        let page = page(&request)?;
        let mut conn = db.conn().await?;
        let found = notification_store::list(&*conn, page).await;
        Ok::<_, ApiError>((page, conn.check(found)?))
    };
    list_reply(&request, listed.await, |n: &NotificationView| n.id)
}
