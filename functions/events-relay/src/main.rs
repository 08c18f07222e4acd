//! Scheduled (EventBridge): publishes outbox events the functions left behind, oldest first.
use lambda_runtime::{Error, run, service_fn};
use stockroom::api::relay::{self, Outboxes};
use stockroom_kafka::{KAFKA_BROKERS, KafkaPublisher};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    stockroom::telemetry::init();
    let publisher = KafkaPublisher::from_env()?.ok_or(format!("{KAFKA_BROKERS} is not set"))?;
    let outboxes = Outboxes::from_env().await?;
    run(service_fn(|event| relay::run(&outboxes, &publisher, event))).await
}
