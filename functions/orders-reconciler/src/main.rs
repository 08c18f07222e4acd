//! Scheduled (EventBridge): settles orders and reservations that crashed or timed-out requests
//! left behind.
use lambda_runtime::{Error, run, service_fn};
use stockroom::api::reconciler;
use stockroom::ordering::OrderDbs;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    stockroom::telemetry::init();
    let pending_timeout = reconciler::pending_timeout_from_env()?;
    let dbs = OrderDbs::from_env().await?;
    run(service_fn(|event| {
        reconciler::run(&dbs, pending_timeout, event)
    }))
    .await
}
