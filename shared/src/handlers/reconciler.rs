//! The scheduled reconciler: an EventBridge schedule invokes it; it settles what crashed or
//! timed-out requests left behind (see [`crate::orders::saga::reconcile`]).

use std::time::Duration;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_http::LambdaEvent;

use crate::error::RunError;
use crate::orders;
use crate::orders::saga::{OrderContext, Reconciled};

/// Environment variable: seconds an order may stay `pending` or `cancelling` before the
/// reconciler settles it. Must exceed the order functions' timeout, so a live request is never
/// overtaken.
pub const PENDING_TIMEOUT_VAR: &str = "ORDER_PENDING_TIMEOUT_SECONDS";
pub const DEFAULT_PENDING_TIMEOUT: Duration = Duration::from_secs(60);

pub fn pending_timeout_from_env() -> Result<Duration, String> {
    match std::env::var(PENDING_TIMEOUT_VAR) {
        Err(_) => Ok(DEFAULT_PENDING_TIMEOUT),
        Ok(text) => text.parse().map(Duration::from_secs).map_err(|_| {
            format!("{PENDING_TIMEOUT_VAR} must be a whole number of seconds, not {text:?}")
        }),
    }
}

/// Handles one scheduled event; the summary is the invocation's result (and its log line). A
/// database failure fails the invocation, and the next schedule tries again.
pub async fn run(
    ctx: &OrderContext,
    pending_timeout: Duration,
    event: LambdaEvent<EventBridgeEvent>,
) -> Result<Reconciled, RunError> {
    tracing::info!(schedule = ?event.payload.resources, "reconciling orders");
    let done = orders::saga::reconcile(ctx, pending_timeout).await;
    if let Ok(done) = &done {
        tracing::info!(?done, "reconciled");
        for (action, count) in [
            ("confirmed", done.confirmed),
            ("failed", done.failed),
            ("cancelled", done.cancelled),
            ("released", done.released),
        ] {
            metrics::counter!("stockroom_reconciler_actions_total", "action" => action)
                .increment(count as u64);
        }
    }
    crate::telemetry::finish_run(&done);
    Ok(done?)
}
