//! The scheduled metrics janitor: deletes the pushgateway groups of execution environments that
//! are gone, so they do not pile up. An environment pushes after every invocation; one whose group
//! has not been pushed for [`IDLE`] is frozen for good or reclaimed. Deleting it only after that
//! long keeps `sum(rate(x[5m]))` right: its series stopped changing long before they vanish.
//! Groups of other jobs (the per-product stock levels) are never touched.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_http::LambdaEvent;
use serde::Serialize;

use crate::error::RunError;
use crate::telemetry::{self, Pushgateway};

/// How long a group may go without a push before it counts as gone.
pub const IDLE: Duration = Duration::from_secs(15 * 60);
/// The functions' job in the grouping key.
pub const JOB: &str = "stockroom";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Swept {
    pub kept: usize,
    pub deleted: usize,
    /// No pushgateway is configured (`PUSHGATEWAY_URL` empty): nothing to sweep.
    pub metrics_off: bool,
}

/// Deletes every group of `job` whose last push is older than `idle`.
pub async fn sweep(gateway: &Pushgateway, job: &str, idle: Duration) -> Result<Swept, String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    let mut swept = Swept::default();
    for (labels, pushed) in gateway.groups(job).await? {
        if now - pushed > idle.as_secs_f64() {
            gateway.delete(&labels).await?;
            swept.deleted += 1;
        } else {
            swept.kept += 1;
        }
    }
    Ok(swept)
}

/// Handles one scheduled event. Without a pushgateway nothing piles up: the run succeeds at once.
pub async fn run(
    gateway: Option<&Pushgateway>,
    event: LambdaEvent<EventBridgeEvent>,
) -> Result<Swept, RunError> {
    tracing::debug!(schedule = ?event.payload.resources, "sweeping pushgateway groups");
    let swept = match gateway {
        Some(gateway) => sweep(gateway, JOB, IDLE).await,
        None => Ok(Swept {
            metrics_off: true,
            ..Swept::default()
        }),
    };
    if let Ok(swept) = &swept {
        tracing::info!(?swept, "swept");
    }
    telemetry::finish_run(&swept);
    swept.map_err(RunError::Pushgateway)
}
