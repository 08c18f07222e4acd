//! What reached a Kafka topic.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde_json::Value;

/// Every message on `topic` (all three partitions, from the beginning) whose key is one of
/// `keys`, grouped by `event_id`: each copy's payload, so "exactly once" can be asserted. Reads
/// until `expected` distinct events arrived and the topic has nothing more, or 30 s passed.
pub fn consume(
    brokers: &str,
    topic: &str,
    keys: &[i64],
    expected: usize,
) -> BTreeMap<String, Vec<Value>> {
    consume_text(brokers, topic, keys, expected)
        .into_iter()
        .map(|(event_id, copies)| {
            let copies = copies
                .iter()
                .map(|text| serde_json::from_str(text).unwrap())
                .collect();
            (event_id, copies)
        })
        .collect()
}

/// The text of every message on `topic` with key `key`, as the broker has it (money's digits as
/// sent), once at least one arrived.
pub fn raw(brokers: &str, topic: &str, key: i64) -> Vec<String> {
    consume_text(brokers, topic, &[key], 1)
        .into_values()
        .flatten()
        .collect()
}

/// [`consume`], each copy as its text.
fn consume_text(
    brokers: &str,
    topic: &str,
    keys: &[i64],
    expected: usize,
) -> BTreeMap<String, Vec<String>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("test-{}", uuid::Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut partitions = TopicPartitionList::new();
    for partition in 0..3 {
        partitions
            .add_partition_offset(topic, partition, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&partitions).unwrap();
    let keys: BTreeSet<Vec<u8>> = keys.iter().map(|k| k.to_string().into_bytes()).collect();
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) if message.key().is_some_and(|k| keys.contains(k)) => {
                let text = String::from_utf8(message.payload().unwrap().to_vec()).unwrap();
                let payload: Value = serde_json::from_str(&text).unwrap();
                let event_id = payload["event_id"].as_str().unwrap().to_owned();
                seen.entry(event_id).or_default().push(text);
            }
            Some(Ok(_)) => {}
            Some(Err(err)) => panic!("reading {topic}: {err}"),
            None if seen.len() >= expected => break,
            None => {}
        }
    }
    seen
}
