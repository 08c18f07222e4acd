//! The `kafka-topics` function, behind the template's `KafkaTopics` custom resource: on every
//! create and update it creates the topics the events go to where missing (MSK Serverless creates
//! none by itself: `auto.create.topics.enable` is off), with Kafka's admin API, then answers with
//! the brokers, which the template hands to the publishers as `KAFKA_BROKERS` (so no publisher
//! starts before its topic exists). Deleting the stack leaves the topics (and their events) alone.
//!
//! Properties: `BootstrapBrokers` (from `KafkaLookup`, stockroom's `handlers::kafka_brokers`);
//! `Topics` (names); `Partitions`.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_lambda_events::event::cloudformation::CloudFormationCustomResourceRequest;
use lambda_runtime::LambdaEvent;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::types::RDKafkaErrorCode;
use serde_json::Value;
use stockroom::custom_resource::{self, Respond, Response};

use crate::{IamContext, client_config};

/// The same on every create and update.
pub const PHYSICAL_ID: &str = "stockroom-kafka-topics";
const TIMEOUT: Duration = Duration::from_secs(30);

/// Creates `topics` with `partitions` each where missing (the cluster's replication); returns
/// those it created.
pub async fn ensure_topics(
    brokers: &str,
    topics: &[String],
    partitions: i32,
) -> Result<Vec<String>, String> {
    let admin: AdminClient<IamContext> = client_config(brokers)
        .and_then(|config| config.create_with_context(IamContext))
        .map_err(|err| format!("a Kafka admin client for {brokers}: {err}"))?;
    // The cluster's default replication: MSK Serverless fixes it at 3, a broker of one at 1.
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|name| NewTopic::new(name, partitions, TopicReplication::Fixed(-1)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(TIMEOUT));
    let results = admin
        .create_topics(&new, &options)
        .await
        .map_err(|err| format!("creating topics on {brokers}: {err}"))?;
    let mut created = Vec::new();
    for result in results {
        match result {
            Ok(name) => created.push(name),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => return Err(format!("creating topic {name}: {code}")),
        }
    }
    Ok(created)
}

/// Handles one custom-resource request. Fails only when the answer could not be delivered.
pub async fn handle(
    event: LambdaEvent<CloudFormationCustomResourceRequest>,
    respond: &impl Respond,
) -> Result<Response, String> {
    custom_resource::handle(event.payload, PHYSICAL_ID, respond, async |properties| {
        set_up(&properties).await
    })
    .await
}

async fn set_up(properties: &Value) -> Result<BTreeMap<String, String>, String> {
    let text = |name: &str| properties[name].as_str().unwrap_or_default().trim();
    let topics: Vec<String> = properties["Topics"]
        .as_array()
        .map(|names| {
            names
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if topics.is_empty() {
        return Err("Topics must list the topics to create".into());
    }
    let partitions: i32 = text("Partitions")
        .parse()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| {
            format!(
                "Partitions must be a whole number >= 1, not {:?}",
                text("Partitions")
            )
        })?;
    let brokers = match text("BootstrapBrokers") {
        "" => return Err("BootstrapBrokers must be given".into()),
        given => given.to_owned(),
    };
    let created = ensure_topics(&brokers, &topics, partitions).await?;
    tracing::info!(%brokers, ?created, "topics in place");
    Ok(BTreeMap::from([
        ("BootstrapBrokers".to_owned(), brokers),
        ("CreatedTopics".to_owned(), format!("{created:?}")),
    ]))
}
