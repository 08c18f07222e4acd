//! What Lambda's Kafka event source mapping does in AWS, for the local stack: consume the topics
//! with a consumer group, gather a batch, invoke the notifications function with a `KafkaEvent`
//! (records grouped by `"topic-partition"`, base64 keys and values) through cargo lambda's invoke
//! endpoint, and commit the offsets only after the invocation succeeded. A batch that keeps failing
//! is retried with back-off, then each of its records goes to the dead-letter queue and the
//! offsets move on, so one bad batch never stops the stream.
//!
//! Configuration: `KAFKA_BROKERS`, `STOCKROOM_INVOKE_URL` (the function's invocations URL),
//! `STOCKROOM_TRIGGER_GROUP` (default `notifications`), `DEAD_LETTER_QUEUE_URL` and the AWS
//! variables of `stockroom-sqs`.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::{ClientConfig, Message};
use serde_json::{Value, json};
use stockroom::events::{INVENTORY_TOPIC, ORDER_TOPIC};
use stockroom::notification::{Queue, Queues};
use stockroom_sqs::SqsQueues;

const BATCH_SIZE: usize = 100;
const BATCH_WINDOW: Duration = Duration::from_millis(500);
const ATTEMPTS: u32 = 4;

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

/// Invokes the function; `Err` with the reason unless it answered 200 without a function error.
fn invoke(url: &str, event: &Value) -> Result<(), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
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
        Ok(())
    } else {
        Err(format!("status {status}: {body}"))
    }
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let brokers = env("KAFKA_BROKERS")?;
    let url = env("STOCKROOM_INVOKE_URL")?;
    let group = std::env::var("STOCKROOM_TRIGGER_GROUP").unwrap_or_else(|_| "notifications".into());
    let queues = SqsQueues::from_env().await?;
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        // A trigger that died is noticed within seconds, so a restarted one gets its partitions.
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "1000")
        .create()
        .map_err(|e| e.to_string())?;
    consumer
        .subscribe(&[INVENTORY_TOPIC, ORDER_TOPIC])
        .map_err(|e| e.to_string())?;
    println!("consuming {INVENTORY_TOPIC}, {ORDER_TOPIC} as group {group}; invoking {url}");
    let mut stop = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    loop {
        let mut records = Vec::new();
        // On SIGTERM, leave the group cleanly (dropping the consumer) so a new trigger starts at once.
        let first = tokio::select! {
            message = consumer.recv() => message.map_err(|e| e.to_string())?,
            _ = stop.recv() => {
                println!("stopping");
                return Ok(());
            }
        };
        records.push(record(&first));
        let window = tokio::time::sleep(BATCH_WINDOW);
        tokio::pin!(window);
        while records.len() < BATCH_SIZE {
            tokio::select! {
                message = consumer.recv() => records.push(record(&message.map_err(|e| e.to_string())?)),
                _ = &mut window => break,
            }
        }
        let event = kafka_event(&brokers, &records);
        let mut outcome = Err(String::new());
        for attempt in 0..ATTEMPTS {
            outcome = invoke(&url, &event);
            if outcome.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1 << attempt)).await;
        }
        match outcome {
            Ok(()) => println!("delivered {} records", records.len()),
            Err(reason) => {
                eprintln!(
                    "batch of {} records failed {ATTEMPTS} times ({reason}); dead-lettering it",
                    records.len()
                );
                for r in &records {
                    let letter =
                        json!({ "reason": format!("invocation failed: {reason}"), "record": r });
                    // Offsets move on only once every record is safe somewhere: wait for the queue.
                    while let Err(err) = queues.send(Queue::DeadLetters, letter.to_string()).await {
                        eprintln!("dead-letter queue unavailable ({err}); retrying in 5 s");
                        tokio::time::sleep(Duration::from_secs(5)).await;
                    }
                }
            }
        }
        consumer
            .commit_consumer_state(CommitMode::Sync)
            .map_err(|e| e.to_string())?;
    }
}
