//! The `kafka-brokers` function, behind the template's `KafkaLookup` custom resource: tells
//! CloudFormation the IAM bootstrap brokers of the stack's MSK cluster, which
//! `AWS::MSK::ServerlessCluster` does not return, from MSK's `GetBootstrapBrokers`
//! ([`crate::aws::msk`]). It runs outside the VPC, because that API has no VPC endpoint for new
//! connections to count on; it touches no data. A cluster of your own whose brokers are given
//! (`BootstrapBrokers`) is not looked up. Properties: `ClusterArn`, `BootstrapBrokers`.

use std::collections::BTreeMap;

use aws_lambda_events::event::cloudformation::CloudFormationCustomResourceRequest;
use lambda_http::LambdaEvent;
use serde_json::Value;

use crate::deploy;
use crate::deploy::custom_resource::{Respond, Response};

/// The same on every create and update.
pub const PHYSICAL_ID: &str = "stockroom-kafka-brokers";

/// Handles one custom-resource request; `env` gives the environment's variables (AWS's, for the
/// lookup). Fails only when the answer could not be delivered.
pub async fn handle(
    event: LambdaEvent<CloudFormationCustomResourceRequest>,
    env: impl Fn(&str) -> Option<String>,
    respond: &impl Respond,
) -> Result<Response, String> {
    deploy::custom_resource::handle(event.payload, PHYSICAL_ID, respond, async |properties| {
        brokers(&properties, env).await
    })
    .await
}

async fn brokers(
    properties: &Value,
    env: impl Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, String>, String> {
    let text = |name: &str| properties[name].as_str().unwrap_or_default().trim();
    let brokers = match (text("BootstrapBrokers"), text("ClusterArn")) {
        ("", "") => return Err("ClusterArn or BootstrapBrokers must be given".into()),
        ("", arn) => crate::aws::msk::bootstrap_brokers(arn, env).await?,
        (given, _) => given.to_owned(),
    };
    tracing::info!(%brokers, "the cluster's brokers");
    Ok(BTreeMap::from([("BootstrapBrokers".to_owned(), brokers)]))
}
