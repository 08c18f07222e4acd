//! The outbox relay: the only publisher. An EventBridge schedule starts it every minute; each
//! invocation polls both outboxes every [`RelaySettings::poll_every`] for
//! [`RelaySettings::run_for`] (a little longer than the schedule's period, so the next invocation
//! has started before this one ends), publishing what the requests committed in batches, and
//! then deletes published events past the retention ([`events::store::retention_from_env`]).
//! Overlapping invocations take turns through an advisory lock ([`outbox::relay_batch`]).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_http::LambdaEvent;
use serde::Serialize;

use crate::config::{ConfigError, Vars};
use crate::db::{Db, INVENTORY_DATABASE_URL, ORDER_DATABASE_URL};
use crate::error::RunError;
use crate::events;
use crate::events::outbox::{self, OutboxError, Publish};
use crate::events::store::Outbox;

/// Events sent per batch (per transaction).
const BATCH: i64 = 500;
/// How long a pass waits after a failure (broker or database down) before it tries again.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// How often the outbox gauges (events waiting, the oldest one's age) are measured, and the
/// metrics flushed, while relaying.
const GAUGE_EVERY: Duration = Duration::from_secs(5);
/// Time an invocation leaves itself before Lambda's deadline: a pass in flight (the broker's 5 s
/// delivery bound) and the pruning.
const DEADLINE_MARGIN: Duration = Duration::from_secs(10);

/// Seconds one invocation relays (`RELAY_RUN_SECONDS`): the schedule's period and a few seconds of
/// overlap with the next invocation.
pub const RUN_SECONDS_VAR: &str = "RELAY_RUN_SECONDS";
/// Milliseconds between polls of an outbox that had nothing to send (`RELAY_POLL_MILLISECONDS`).
pub const POLL_MILLISECONDS_VAR: &str = "RELAY_POLL_MILLISECONDS";

/// How long an invocation relays, and how often it polls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelaySettings {
    pub run_for: Duration,
    pub poll_every: Duration,
}

impl RelaySettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(crate::config::env)
    }

    fn from_vars(vars: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let seconds = vars.parsed_with(RUN_SECONDS_VAR, "1 to 900 seconds", |text| {
            text.parse::<u64>().ok().filter(|s| (1..=900).contains(s))
        })?;
        let millis =
            vars.parsed_with(POLL_MILLISECONDS_VAR, "10 to 10000 milliseconds", |text| {
                text.parse::<u64>()
                    .ok()
                    .filter(|ms| (10..=10_000).contains(ms))
            })?;
        Ok(Self {
            run_for: Duration::from_secs(seconds.unwrap_or(65)),
            poll_every: Duration::from_millis(millis.unwrap_or(200)),
        })
    }
}

/// Both outboxes, with owner rights, and how long their published events are kept.
pub struct Outboxes {
    pub inventory: Db,
    pub orders: Db,
    pub retention: Duration,
}

impl Outboxes {
    pub async fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            retention: events::store::retention_from_env()?,
            inventory: Db::from_env(INVENTORY_DATABASE_URL).await?,
            orders: Db::from_env(ORDER_DATABASE_URL).await?,
        })
    }

    fn each(&self) -> [(&Db, Outbox, &'static str); 2] {
        [
            (&self.inventory, Outbox::Inventory, "inventory_db"),
            (&self.orders, Outbox::Orders, "order_db"),
        ]
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RelayReport {
    pub inventory_events: usize,
    pub order_events: usize,
    /// Passes that found another relay holding the lock.
    pub turns_waited: usize,
    /// Passes that failed (broker or database unavailable), each retried after a second.
    pub failed_passes: usize,
    /// Published events past the retention, deleted.
    pub inventory_pruned: u64,
    pub order_pruned: u64,
}

/// When the invocation must stop relaying: after `run_for`, and well before Lambda's deadline. A
/// deadline already past when the invocation starts is none: Lambda's is always ahead, and
/// `cargo lambda watch` 1.9 sends the constant 600000 (a few minutes into 1970; its
/// `functions_router.rs`), so locally the run's own length bounds it.
fn stop_at(settings: RelaySettings, deadline_ms: u64) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    if deadline_ms <= now_ms {
        return Instant::now() + settings.run_for;
    }
    let left = Duration::from_millis(deadline_ms - now_ms);
    Instant::now() + settings.run_for.min(left.saturating_sub(DEADLINE_MARGIN))
}

/// Relays both outboxes until [`stop_at`], then prunes them. The invocation fails when its last
/// pass on either outbox failed (the broker or a database still down), so the schedule's failure
/// alarm sees an outage that outlasts an invocation.
pub async fn run(
    outboxes: &Outboxes,
    publisher: &dyn Publish,
    settings: RelaySettings,
    event: LambdaEvent<EventBridgeEvent>,
) -> Result<RelayReport, RunError> {
    tracing::debug!(schedule = ?event.payload.resources, "relaying outboxes");
    let until = stop_at(settings, event.context.deadline);
    let mut report = RelayReport::default();
    let mut last_failure: [Option<OutboxError>; 2] = [None, None];
    let mut gauged: Option<Instant> = None;
    loop {
        let passes = futures_util::future::join_all(
            outboxes
                .each()
                .map(|(db, outbox, _)| outbox::relay_batch(db, outbox, publisher, BATCH)),
        )
        .await;
        let (mut full, mut failed) = (false, false);
        for (i, ((_, _, database), pass)) in outboxes.each().iter().zip(passes).enumerate() {
            match &pass {
                Ok(Some(sent)) => {
                    full |= *sent as i64 == BATCH;
                    if i == 0 {
                        report.inventory_events += sent;
                    } else {
                        report.order_events += sent;
                    }
                    if *sent > 0 {
                        metrics::counter!("stockroom_events_published_total", "database" => *database)
                            .increment(*sent as u64);
                    }
                }
                Ok(None) => report.turns_waited += 1,
                Err(err) => {
                    tracing::warn!(database, error = %crate::error::chain(err), "relay pass failed");
                    report.failed_passes += 1;
                    failed = true;
                }
            }
            last_failure[i] = pass.err();
        }
        // Every few seconds, the gauges and what was counted so far go out (an EMF line, or a
        // push), not only at the invocation's end, a minute later.
        if gauged.is_none_or(|at| at.elapsed() >= GAUGE_EVERY) {
            gauge(outboxes).await;
            crate::telemetry::flush();
            gauged = Some(Instant::now());
        }
        if Instant::now() >= until {
            break;
        }
        // A full batch means more is waiting: go on at once.
        match (full, failed) {
            (true, false) => {}
            (_, true) => tokio::time::sleep(RETRY_AFTER).await,
            (false, false) => tokio::time::sleep(settings.poll_every).await,
        }
    }
    let outcome = finish(outboxes, &mut report, last_failure).await;
    crate::telemetry::finish_run(&outcome);
    outcome.map(|()| report)
}

/// Sets the outbox gauges of both databases; one that cannot be read keeps its last value.
async fn gauge(outboxes: &Outboxes) {
    for (db, _, database) in outboxes.each() {
        let backlog = db
            .run("outbox_backlog", async |c| events::store::backlog(c).await)
            .await;
        if let Ok(backlog) = backlog {
            crate::telemetry::outbox_backlog(database, backlog);
        }
    }
}

/// After the loop: the pruning, the gauges, and the invocation's outcome.
async fn finish(
    outboxes: &Outboxes,
    report: &mut RelayReport,
    last_failure: [Option<OutboxError>; 2],
) -> Result<(), RunError> {
    for (i, (db, _, database)) in outboxes.each().into_iter().enumerate() {
        // A relay holding the lock prunes at its own end.
        let pruned = outbox::prune(db, outboxes.retention)
            .await?
            .unwrap_or_default();
        metrics::counter!("stockroom_outbox_pruned_total", "database" => database)
            .increment(pruned);
        if i == 0 {
            report.inventory_pruned = pruned;
        } else {
            report.order_pruned = pruned;
        }
    }
    gauge(outboxes).await;
    tracing::info!(?report, "relayed");
    match last_failure {
        [Some(err), _] | [_, Some(err)] => Err(err.into()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_settings_default_to_a_minute_and_some_overlap_and_refuse_nonsense() {
        let settings = |run: Option<&'static str>, poll: Option<&'static str>| {
            RelaySettings::from_vars(move |name: &str| match name {
                RUN_SECONDS_VAR => run.map(str::to_owned),
                POLL_MILLISECONDS_VAR => poll.map(str::to_owned),
                other => panic!("read {other}"),
            })
        };
        assert_eq!(
            settings(None, None),
            Ok(RelaySettings {
                run_for: Duration::from_secs(65),
                poll_every: Duration::from_millis(200),
            })
        );
        assert_eq!(
            settings(Some("12"), Some("50")),
            Ok(RelaySettings {
                run_for: Duration::from_secs(12),
                poll_every: Duration::from_millis(50),
            })
        );
        for (run, poll) in [(Some("0"), None), (Some("901"), None), (None, Some("5"))] {
            assert!(settings(run, poll).is_err(), "{run:?} {poll:?}");
        }
    }

    #[test]
    fn an_invocation_stops_well_before_its_deadline() {
        let settings = RelaySettings {
            run_for: Duration::from_secs(65),
            poll_every: Duration::from_millis(200),
        };
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        // 30 s left: stops 10 s before the deadline, not after 65 s.
        let stop = stop_at(settings, now_ms + 30_000) - Instant::now();
        assert!(
            stop <= Duration::from_secs(20) && stop > Duration::from_secs(19),
            "{stop:?}"
        );
        // 5 minutes left: the run's own length.
        let stop = stop_at(settings, now_ms + 300_000) - Instant::now();
        assert!(
            stop <= Duration::from_secs(65) && stop > Duration::from_secs(64),
            "{stop:?}"
        );
        // Less than the margin left: at once.
        assert!(stop_at(settings, now_ms + 5_000) <= Instant::now());
        // A deadline before the invocation began is none: what cargo lambda watch sends.
        let stop = stop_at(settings, 600_000) - Instant::now();
        assert!(
            stop <= Duration::from_secs(65) && stop > Duration::from_secs(64),
            "{stop:?}"
        );
    }
}
