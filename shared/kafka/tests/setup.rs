//! The `kafka-topics` function through real CloudFormation custom-resource events, against the test
//! broker: topics created once with their partitions, the brokers handed back for the publishers,
//! and bad properties failing the deploy with the reason.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::json;
use stockroom_kafka::{KAFKA_BROKERS, setup};
use stockroom_test_support::handler::{Kept, custom_resource_event, unique};

fn brokers() -> String {
    std::env::var(KAFKA_BROKERS).unwrap_or_else(|_| {
        panic!("{KAFKA_BROKERS} is not set: run the tests with localstack/test")
    })
}

/// The partitions of `topic` on the test broker, as its metadata says.
fn partitions(topic: &str) -> usize {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .unwrap();
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    metadata.topics()[0].partitions().len()
}

#[tokio::test]
async fn create_makes_the_topics_once_and_answers_the_brokers() {
    let topics = [unique("setup-inventory"), unique("setup-orders")];
    let properties = json!({
        "BootstrapBrokers": brokers(),
        "Topics": topics,
        "Partitions": "3",
    });
    let kept = Kept::default();
    let event = custom_resource_event("Create", "https://s3.example/answer", properties.clone());
    setup::handle(event, &kept).await.unwrap();
    let (_, answer) = kept.only();
    assert_eq!(answer["Status"], "SUCCESS", "{answer}");
    assert_eq!(answer["PhysicalResourceId"], setup::PHYSICAL_ID);
    assert_eq!(answer["Data"]["BootstrapBrokers"], brokers());
    assert_eq!(
        answer["Data"]["CreatedTopics"],
        format!("{topics:?}"),
        "{answer}"
    );
    for topic in &topics {
        assert_eq!(partitions(topic), 3, "{topic}");
    }
    // An update finds them there and creates nothing.
    let kept = Kept::default();
    let event = custom_resource_event("Update", "https://s3.example/again", properties);
    setup::handle(event, &kept).await.unwrap();
    let (_, answer) = kept.only();
    assert_eq!(answer["Status"], "SUCCESS", "{answer}");
    assert_eq!(answer["Data"]["CreatedTopics"], "[]");
}

#[tokio::test]
async fn bad_properties_fail_the_deploy_with_the_reason() {
    let cases = [
        (
            json!({"BootstrapBrokers": brokers(), "Topics": [], "Partitions": "3"}),
            "Topics",
        ),
        (
            json!({"BootstrapBrokers": brokers(), "Topics": ["t"], "Partitions": "0"}),
            "Partitions",
        ),
        (
            json!({"BootstrapBrokers": "", "Topics": ["t"], "Partitions": "3"}),
            "BootstrapBrokers must be given",
        ),
    ];
    for (properties, says) in cases {
        let kept = Kept::default();
        let event = custom_resource_event("Create", "https://s3.example/answer", properties);
        setup::handle(event, &kept).await.unwrap();
        let (_, answer) = kept.only();
        assert_eq!(answer["Status"], "FAILED", "{answer}");
        assert!(
            answer["Reason"].as_str().unwrap().contains(says),
            "{answer}"
        );
    }
}

#[tokio::test]
async fn delete_leaves_the_topics_alone_and_succeeds() {
    let kept = Kept::default();
    let event = custom_resource_event("Delete", "https://s3.example/answer", json!({}));
    setup::handle(event, &kept).await.unwrap();
    assert_eq!(kept.only().1["Status"], "SUCCESS");
}
