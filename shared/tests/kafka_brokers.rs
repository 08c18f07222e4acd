//! The `kafka-brokers` function through real CloudFormation custom-resource events: given brokers
//! are answered as they are; a lookup goes to MSK's API (here the local AWS endpoint, which has no
//! MSK) and its failure fails the deploy with the reason.

use serde_json::json;
use stockroom::handlers::kafka_brokers;
use stockroom_test_support::handler::{Kept, custom_resource_event};

fn env(var: &str) -> Option<String> {
    std::env::var(var).ok()
}

#[tokio::test]
async fn given_brokers_are_answered_as_they_are() {
    let kept = Kept::default();
    let properties = json!({"ClusterArn": "arn:aws:kafka:us-east-1:1:cluster/c/u", "BootstrapBrokers": "b-1:9098,b-2:9098"});
    let event = custom_resource_event("Create", "https://s3.example/answer", properties);
    kafka_brokers::handle(event, env, &kept).await.unwrap();
    let (_, answer) = kept.only();
    assert_eq!(answer["Status"], "SUCCESS", "{answer}");
    assert_eq!(answer["PhysicalResourceId"], kafka_brokers::PHYSICAL_ID);
    assert_eq!(answer["Data"]["BootstrapBrokers"], "b-1:9098,b-2:9098");
}

#[tokio::test]
async fn a_failed_lookup_or_no_cluster_fails_the_deploy_with_the_reason() {
    // The local AWS endpoint (moto) answers for every service on one port, but has no MSK API.
    let arn = "arn:aws:kafka:us-east-1:123456789012:cluster/stockroom/0a1b2c3d-s1";
    let lookup = |var: &str| match var {
        "AWS_ENDPOINT_URL_KAFKA" => env("AWS_ENDPOINT_URL_SQS"),
        _ => env(var),
    };
    let kept = Kept::default();
    let event = custom_resource_event(
        "Create",
        "https://s3.example/answer",
        json!({"ClusterArn": arn, "BootstrapBrokers": ""}),
    );
    kafka_brokers::handle(event, lookup, &kept).await.unwrap();
    let (_, answer) = kept.only();
    assert_eq!(answer["Status"], "FAILED", "{answer}");
    let reason = answer["Reason"].as_str().unwrap();
    assert!(
        reason.contains(arn) && reason.contains("MSK answered"),
        "{reason}"
    );

    let kept = Kept::default();
    let event = custom_resource_event("Create", "https://s3.example/answer", json!({}));
    kafka_brokers::handle(event, env, &kept).await.unwrap();
    let (_, answer) = kept.only();
    assert_eq!(answer["Status"], "FAILED");
    assert_eq!(
        answer["Reason"],
        "ClusterArn or BootstrapBrokers must be given"
    );
}

#[tokio::test]
async fn delete_succeeds_without_a_lookup() {
    let kept = Kept::default();
    let event = custom_resource_event("Delete", "https://s3.example/answer", json!({}));
    kafka_brokers::handle(event, |_: &str| None, &kept)
        .await
        .unwrap();
    assert_eq!(kept.only().1["Status"], "SUCCESS");
}
