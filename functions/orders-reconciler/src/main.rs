//! Scheduled (EventBridge): settles orders and reservations that crashed or timed-out requests
//! left behind.
use lambda_runtime::{Error, run, service_fn};
use stockroom::handlers::reconciler;
use stockroom::orders::saga::OrderContext;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    stockroom::telemetry::init(env!("CARGO_BIN_NAME"));
    let pending_timeout = reconciler::pending_timeout_from_env()?;
    // It publishes nothing itself: what it settles reaches the outbox, and the relay sends it.
    let ctx = OrderContext::from_env().await?;
    run(service_fn(|event| {
        reconciler::run(&ctx, pending_timeout, event)
    }))
    .await
}
