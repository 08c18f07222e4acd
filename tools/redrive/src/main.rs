//! `stockroom-redrive [QUEUE_URL] [--dry-run]`: after the cause of dead letters is fixed (a bug in
//! the notifications function, a database that was down longer than the retries), publishes each
//! dead-lettered record to its topic again, with its key, and deletes the letter once the broker
//! acknowledged it. The records then take the normal path; notifications records each event once,
//! so re-driving a letter whose event was recorded meanwhile does no harm.
//!
//! The queue defaults to `DEAD_LETTER_QUEUE_URL`; the broker is `KAFKA_BROKERS`. A letter is the
//! record's `topic`, `key` and `value` (base64, as the event source delivered them) and its
//! `reason`, as the notifications function and the local Kafka trigger write it. A letter without
//! them (Lambda's on-failure record, which holds only offsets) is listed and left in the queue:
//! read those offsets from the topic instead.

use std::process::ExitCode;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::Value;

/// What to publish for one letter: topic, key, value.
fn record_of(letter: &Value) -> Option<(String, Option<Vec<u8>>, Vec<u8>)> {
    let decode = |field: &str| letter[field].as_str().and_then(|v| BASE64.decode(v).ok());
    Some((
        letter["topic"].as_str()?.to_owned(),
        decode("key"),
        decode("value")?,
    ))
}

async fn redrive(queue: &str, dry_run: bool) -> Result<(usize, usize), String> {
    let sqs = aws_sdk_sqs::Client::new(&stockroom_sqs::sdk_config().await);
    let brokers = std::env::var("KAFKA_BROKERS").map_err(|_| "KAFKA_BROKERS is not set")?;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("enable.idempotence", "true")
        .create()
        .map_err(|e| e.to_string())?;
    let (mut redriven, mut kept) = (0, 0);
    loop {
        let received = sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            // Letters left in the queue stay invisible for the rest of this run.
            .visibility_timeout(300)
            .send()
            .await
            .map_err(|e| format!("receiving from {queue}: {e}"))?;
        if received.messages().is_empty() {
            return Ok((redriven, kept));
        }
        for message in received.messages() {
            let body = message.body().unwrap_or_default();
            let letter: Value = serde_json::from_str(body).unwrap_or_default();
            let reason = letter["reason"].as_str().unwrap_or("?");
            let Some((topic, key, value)) = record_of(&letter) else {
                println!("kept (no record to publish): {body}");
                kept += 1;
                continue;
            };
            println!("{topic} ← letter ({reason})");
            if dry_run {
                kept += 1;
                continue;
            }
            let mut record = FutureRecord::to(&topic).payload(&value);
            if let Some(key) = &key {
                record = record.key(key);
            }
            producer
                .send(record, Duration::from_secs(10))
                .await
                .map_err(|(e, _)| format!("publishing to {topic}: {e}"))?;
            sqs.delete_message()
                .queue_url(queue)
                .receipt_handle(message.receipt_handle().unwrap_or_default())
                .send()
                .await
                .map_err(|e| format!("deleting a re-driven letter: {e}"))?;
            redriven += 1;
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dry_run = args.iter().any(|a| a == "--dry-run");
    let Some(queue) = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .cloned()
        .or_else(|| std::env::var(stockroom_sqs::DEAD_LETTER_QUEUE_URL).ok())
    else {
        eprintln!(
            "usage: stockroom-redrive [QUEUE_URL] [--dry-run] (or set DEAD_LETTER_QUEUE_URL)"
        );
        return ExitCode::from(2);
    };
    match redrive(&queue, dry_run).await {
        Ok((redriven, kept)) => {
            println!("re-driven {redriven}, left in the queue {kept}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
