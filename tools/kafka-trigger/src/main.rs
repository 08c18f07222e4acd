//! What Lambda's Kafka event source mappings do in AWS, for the local stack: as template.yaml has
//! one mapping per topic, each with its own consumer group, this runs one consumer per topic
//! (groups `<group>-inventory` and `<group>-orders`), each of which gathers a batch, invokes the
//! notifications function with a `KafkaEvent` (records grouped by `"topic-partition"`, base64 keys
//! and values) through cargo lambda's invoke endpoint, and commits the offsets only after the
//! invocation succeeded. The two invoke independently, so one topic's batches never wait for the
//! other's.
//!
//! Like the event source mapping (`MaximumRetryAttempts` in template.yaml), a failed invocation is
//! retried with back-off, up to `STOCKROOM_TRIGGER_ATTEMPTS` times (default 20, about eight
//! minutes: the function fails only while its database is unreachable, and a restart takes
//! seconds); only then do the batch's records go to the dead-letter queue, so one broken batch
//! never stops the stream. A broker outage never stops the trigger: it keeps polling, and
//! librdkafka reconnects when the broker is back.
//!
//! Configuration: `KAFKA_BROKERS`, `STOCKROOM_INVOKE_URL` (the function's invocations URL),
//! `STOCKROOM_TRIGGER_GROUP` (the groups' prefix, default `notifications`),
//! `STOCKROOM_TRIGGER_ATTEMPTS`,
//! `STOCKROOM_TRIGGER_START` (where a group without offsets starts: `earliest`, the default, as
//! the template's `StartingPosition: TRIM_HORIZON`, or `latest`),
//! `DEAD_LETTER_QUEUE_URL` and the AWS variables of `stockroom-sqs`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::{ClientConfig, Message};
use serde_json::{Value, json};
use stockroom::events::outbox::{INVENTORY_TOPIC, ORDER_TOPIC};
use stockroom::notifications::{Queue, Queues};
use stockroom_sqs::SqsQueues;

const BATCH_SIZE: usize = 100;
const BATCH_WINDOW: Duration = Duration::from_millis(500);
/// Longest pause between two invocations of a failing batch.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Pause after a polling error, so a broker outage does not spin the loop.
const POLL_PAUSE: Duration = Duration::from_millis(500);
const METADATA_TIMEOUT: Duration = Duration::from_secs(5);
/// The notifications function's own bound is its timeout; this one only guards against a wedged
/// local router. Generous, because the function compiles on its first invocation.
const INVOKE_TIMEOUT: Duration = Duration::from_secs(120);

fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(1 << attempt.min(5)).min(MAX_BACKOFF)
}

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}

/// One record as the event source mapping renders it.
fn record(message: &BorrowedMessage<'_>) -> Value {
    let headers: Vec<Value> = message
        .headers()
        .map(|headers| {
            headers
                .iter()
                .map(|h| {
                    let bytes: Vec<i8> = h
                        .value
                        .unwrap_or_default()
                        .iter()
                        .map(|b| *b as i8)
                        .collect();
                    json!({ h.key: bytes })
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "topic": message.topic(),
        "partition": message.partition(),
        "offset": message.offset(),
        "timestamp": message.timestamp().to_millis().unwrap_or_default(),
        "timestampType": "CREATE_TIME",
        "key": message.key().map(|k| BASE64.encode(k)),
        "value": message.payload().map(|v| BASE64.encode(v)),
        "headers": headers,
    })
}

fn kafka_event(brokers: &str, records: &[Value]) -> Value {
    let mut grouped: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for r in records {
        let key = format!(
            "{}-{}",
            r["topic"].as_str().unwrap_or_default(),
            r["partition"]
        );
        grouped.entry(key).or_default().push(r.clone());
    }
    json!({ "eventSource": "SelfManagedKafka", "bootstrapServers": brokers, "records": grouped })
}

/// Invokes the function; its answer, or `Err` with the reason unless it answered 200 without a
/// function error.
fn invoke(url: &str, event: &Value) -> Result<String, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(INVOKE_TIMEOUT))
        .build()
        .into();
    let mut response = agent
        .post(url)
        .header("content-type", "application/json")
        .send(event.to_string())
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().unwrap_or_default();
    if status == 200 && !body.contains("\"errorType\"") {
        Ok(body)
    } else {
        Err(format!("status {status}: {body}"))
    }
}

/// A consumer of every partition of `topic`, each from the offset `group` committed. It assigns
/// the partitions itself rather than joining the group: the local stack runs one trigger, and a
/// group member that outlived a broker restart can wait minutes to rejoin (tansu keeps the old
/// membership), while an assigned consumer simply reconnects. Retries until the broker answers.
async fn subscribe(brokers: &str, group: &str, topic: &str) -> StreamConsumer {
    loop {
        match try_subscribe(brokers, group, topic) {
            Ok(consumer) => return consumer,
            Err(err) => {
                eprintln!("cannot reach the broker yet ({err}); trying again");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// `STOCKROOM_TRIGGER_START`: `latest` for a group that only wants what comes after it starts (the
/// benchmark's), `earliest` otherwise.
fn start_position() -> &'static str {
    match std::env::var("STOCKROOM_TRIGGER_START").as_deref() {
        Ok("latest") => "latest",
        _ => "earliest",
    }
}

fn try_subscribe(brokers: &str, group: &str, topic: &str) -> Result<StreamConsumer, KafkaError> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", start_position())
        .set("reconnect.backoff.max.ms", "2000")
        .create()?;
    let mut partitions = TopicPartitionList::new();
    let metadata = consumer.fetch_metadata(Some(topic), METADATA_TIMEOUT)?;
    for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
        partitions.add_partition(topic, partition.id());
    }
    // Offsets never committed stay unset, so `auto.offset.reset` decides where those start.
    let committed = consumer.committed_offsets(partitions, METADATA_TIMEOUT)?;
    consumer.assign(&committed)?;
    Ok(consumer)
}

/// What both mappings share.
struct Settings {
    brokers: String,
    url: String,
    attempts: u32,
    queues: SqsQueues,
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let group = std::env::var("STOCKROOM_TRIGGER_GROUP").unwrap_or_else(|_| "notifications".into());
    let settings = Arc::new(Settings {
        brokers: env("KAFKA_BROKERS")?,
        url: env("STOCKROOM_INVOKE_URL")?,
        attempts: std::env::var("STOCKROOM_TRIGGER_ATTEMPTS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20),
        queues: SqsQueues::from_env().await?,
    });
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mappings: Vec<_> = [(INVENTORY_TOPIC, "inventory"), (ORDER_TOPIC, "orders")]
        .into_iter()
        .map(|(topic, suffix)| {
            let group = format!("{group}-{suffix}");
            tokio::spawn(mapping(settings.clone(), topic, group, stopped.clone()))
        })
        .collect();
    terminate.recv().await;
    println!("stopping");
    let _ = stop.send(true);
    // Each mapping stops between batches: every batch handled so far has its offsets committed.
    for mapping in mappings {
        let _ = mapping.await;
    }
    Ok(())
}

/// One event source mapping: `topic` under consumer group `group`, until `stopped` turns true.
async fn mapping(
    settings: Arc<Settings>,
    topic: &'static str,
    group: String,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let Settings {
        brokers,
        url,
        attempts,
        queues,
    } = &*settings;
    let attempts = *attempts;
    let consumer = subscribe(brokers, &group, topic).await;
    println!("consuming {topic} as group {group}; invoking {url}");
    let mut last_error: Option<String> = None;
    loop {
        let mut records = Vec::new();
        let first = tokio::select! {
            message = consumer.recv() => message,
            _ = stopped.wait_for(|stop| *stop) => return,
        };
        match first {
            Ok(message) => records.push(record(&message)),
            Err(err) => {
                // librdkafka reports a broker that is down or restarting through the stream, and
                // reconnects by itself: log each new kind of error once, and keep polling.
                let err = err.to_string();
                if last_error.as_ref() != Some(&err) {
                    eprintln!("polling {topic}: {err}; still polling");
                    last_error = Some(err);
                }
                tokio::time::sleep(POLL_PAUSE).await;
                continue;
            }
        }
        if last_error.take().is_some() {
            println!("polling works again");
        }
        let window = tokio::time::sleep(BATCH_WINDOW);
        tokio::pin!(window);
        while records.len() < BATCH_SIZE {
            tokio::select! {
                message = consumer.recv() => match message {
                    Ok(message) => records.push(record(&message)),
                    // Send what was gathered; the next poll deals with the broker.
                    Err(_) => break,
                },
                _ = &mut window => break,
            }
        }
        let event = kafka_event(brokers, &records);
        let mut outcome = Err(String::new());
        for attempt in 0..attempts {
            // ureq blocks: off the runtime's threads, so the other mapping goes on meanwhile.
            let (url, sent) = (url.clone(), event.clone());
            outcome = tokio::task::spawn_blocking(move || invoke(&url, &sent))
                .await
                .unwrap_or_else(|err| Err(err.to_string()));
            match &outcome {
                Ok(_) => break,
                Err(reason) if attempt + 1 < attempts => {
                    let pause = backoff(attempt);
                    eprintln!(
                        "invocation {} of {attempts} failed ({reason}); retrying in {} s",
                        attempt + 1,
                        pause.as_secs()
                    );
                    tokio::time::sleep(pause).await;
                }
                Err(_) => {}
            }
        }
        match outcome {
            // The function's answer says what it did (the benchmark counts SQS requests in it).
            Ok(answer) => println!("delivered {} records: {answer}", records.len()),
            Err(reason) => {
                eprintln!(
                    "batch of {} records failed {attempts} times ({reason}); dead-lettering it",
                    records.len()
                );
                for r in &records {
                    // The notifications function's dead-letter shape: the record's fields and why.
                    let mut letter = r.clone();
                    letter["reason"] = json!(format!("invocation failed: {reason}"));
                    // Offsets move on only once every record is safe somewhere: wait for the queue.
                    while let Err(err) = queues.send(Queue::DeadLetters, letter.to_string()).await {
                        eprintln!("dead-letter queue unavailable ({err}); retrying in 5 s");
                        tokio::time::sleep(Duration::from_secs(5)).await;
                    }
                }
            }
        }
        // A failed commit only means the batch is delivered again: notifications dedupes.
        let committed =
            tokio::task::block_in_place(|| consumer.commit_consumer_state(CommitMode::Sync));
        if let Err(err) = committed {
            eprintln!("committing offsets failed ({err}); the batch may be delivered again");
        }
    }
}
