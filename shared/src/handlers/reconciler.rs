//! The scheduled reconciler: an EventBridge schedule invokes it; it settles what crashed or
//! timed-out requests left behind (see [`crate::orders::saga::reconcile`]).

use std::time::Duration;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_http::LambdaEvent;

use crate::config::{ConfigError, Vars};
use crate::error::RunError;
use crate::orders;
use crate::orders::saga::{OrderContext, Reconciled};

/// Environment variable: seconds an order may stay `pending` or `cancelling` before the
/// reconciler settles it. Must exceed the order functions' timeout, so a live request is never
/// overtaken.
pub const PENDING_TIMEOUT_VAR: &str = "ORDER_PENDING_TIMEOUT_SECONDS";
pub const DEFAULT_PENDING_TIMEOUT: Duration = Duration::from_secs(60);

/// The timeout [`PENDING_TIMEOUT_VAR`] sets; [`DEFAULT_PENDING_TIMEOUT`] when unset or empty.
pub fn pending_timeout_from_env() -> Result<Duration, ConfigError> {
    pending_timeout_from(crate::config::env)
}

fn pending_timeout_from(vars: impl Fn(&str) -> Option<String>) -> Result<Duration, ConfigError> {
    let seconds = vars.parsed::<u64>(PENDING_TIMEOUT_VAR, "a whole number of seconds")?;
    Ok(seconds.map_or(DEFAULT_PENDING_TIMEOUT, Duration::from_secs))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pending_timeout_defaults_and_refuses_what_is_not_seconds() {
        let timeout = |value: &'static str| pending_timeout_from(move |_: &str| Some(value.into()));
        assert_eq!(
            pending_timeout_from(|_: &str| None),
            Ok(DEFAULT_PENDING_TIMEOUT)
        );
        assert_eq!(timeout(""), Ok(DEFAULT_PENDING_TIMEOUT));
        assert_eq!(timeout("90"), Ok(Duration::from_secs(90)));
        let err = timeout("1m").unwrap_err();
        assert_eq!(err.var(), PENDING_TIMEOUT_VAR);
        assert_eq!(
            err.to_string(),
            r#"ORDER_PENDING_TIMEOUT_SECONDS is not a whole number of seconds: "1m""#
        );
    }
}
