//! Scheduled (EventBridge): publishes outbox events the functions left behind, oldest first.
use std::time::Duration;

use lambda_runtime::{Error, run, service_fn};
use stockroom::handlers::relay::{self, Outboxes};
use stockroom_kafka::{KAFKA_BROKERS, KafkaPublisher};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    stockroom::telemetry::init(env!("CARGO_BIN_NAME"));
    // Empty is unset (the template's default without a cluster): every run then fails at init,
    // saying so, rather than waiting 5 s for a broker that is not there.
    let brokers = std::env::var(KAFKA_BROKERS)
        .ok()
        .filter(|brokers| !brokers.trim().is_empty())
        .ok_or_else(|| format!("{KAFKA_BROKERS} is not set: no Kafka cluster to relay to"))?;
    // No back-off: the relay is the fallback, so every scheduled run tries the broker.
    let publisher = KafkaPublisher::with_backoff(&brokers, Duration::ZERO)?;
    let outboxes = Outboxes::from_env().await?;
    run(service_fn(|event| relay::run(&outboxes, &publisher, event))).await
}
