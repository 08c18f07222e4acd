//! Scheduled (EventBridge, every minute): the only publisher. Polls both outboxes for a little
//! over a minute and publishes what the requests committed, in batches, taking turns with an
//! overlapping invocation.
use lambda_runtime::{Error, run, service_fn};
use stockroom::handlers::relay::{self, Outboxes, RelaySettings};
use stockroom_kafka::KafkaPublisher;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    stockroom::telemetry::init(env!("CARGO_BIN_NAME"));
    // KAFKA_BROKERS unset or empty (the template's default without a cluster) fails init, saying
    // so, rather than every run waiting for a broker that is not there.
    let publisher = KafkaPublisher::relay_from_env()?;
    let settings = RelaySettings::from_env()?;
    let outboxes = Outboxes::from_env().await?;
    run(service_fn(|event| {
        relay::run(&outboxes, &publisher, settings, event)
    }))
    .await
}
