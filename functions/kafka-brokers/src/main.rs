//! CloudFormation custom resource `KafkaLookup`: the MSK cluster's bootstrap brokers.
use lambda_runtime::{Error, run, service_fn};
use stockroom::deploy::custom_resource::PresignedPut;
use stockroom::handlers::kafka_brokers;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    stockroom::telemetry::init(env!("CARGO_BIN_NAME"));
    run(service_fn(|event| {
        kafka_brokers::handle(event, |var| std::env::var(var).ok(), &PresignedPut)
    }))
    .await
}
