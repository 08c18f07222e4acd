//! CloudFormation custom resource `KafkaTopics`: creates the events' topics on every deploy.
use lambda_runtime::{Error, run, service_fn};
use stockroom::deploy::custom_resource::PresignedPut;
use stockroom_kafka::setup;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    stockroom::telemetry::init(env!("CARGO_BIN_NAME"));
    run(service_fn(|event| setup::handle(event, &PresignedPut))).await
}
