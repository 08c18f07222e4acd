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
    let mut seen: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) if message.key().is_some_and(|k| keys.contains(k)) => {
                let payload: Value = serde_json::from_slice(message.payload().unwrap()).unwrap();
                let event_id = payload["event_id"].as_str().unwrap().to_owned();
                seen.entry(event_id).or_default().push(payload);
            }
            Some(Ok(_)) => {}
            Some(Err(err)) => panic!("reading {topic}: {err}"),
            None if seen.len() >= expected => break,
            None => {}
        }
    }
    seen
}
