//! Scheduled (EventBridge): deletes the pushgateway groups of execution environments that are gone.
use lambda_runtime::{Error, run, service_fn};
use stockroom::handlers::janitor;
use stockroom::telemetry::Pushgateway;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    stockroom::telemetry::init(env!("CARGO_BIN_NAME"));
    let gateway = Pushgateway::from_env()?;
    run(service_fn(|event| janitor::run(gateway.as_ref(), event))).await
}
