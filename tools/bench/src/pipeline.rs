//! Level 3, the full pipeline: a burst of single orders end to end through the router while the
//! broker, a Kafka trigger, the notifications function and SQS all run; then how long after the
//! burst every order's `order_created` is recorded in notification_db, how many SQS requests each
//! forwarded alert cost, and how many notification_db commits each recorded event.

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use stockroom::db::{NOTIFICATION_DATABASE_URL, ORDER_DATABASE_URL};
use stockroom_test_support::handler::admin_query;

use crate::scenario::{Products, Scenario};
use crate::stats::Measured;
use crate::wrk;

/// How long the notifications side may take to catch up after the burst before the level gives up.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(180);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pipeline {
    pub connections: usize,
    pub burst_seconds: f64,
    /// The orders the burst placed, as wrk saw them.
    pub measured: Measured,
    pub orders: u64,
    /// Seconds from the burst's end until every order's `order_created` was recorded; `None`
    /// when they were not all recorded within [`CATCH_UP_LIMIT`].
    pub recorded_after_s: Option<f64>,
    pub recorded: u64,
    /// `SendMessageBatch` requests per alert forwarded, from the notifications function's answers
    /// (the trigger logs each), if any alert was forwarded.
    pub sqs_requests_per_alert: Option<f64>,
    /// notification_db commits per event recorded during the level (the benchmark's own queries
    /// subtracted).
    pub notification_commits_per_event: f64,
    /// Events per invocation of the notifications function (the trigger's batches).
    #[serde(default)]
    pub events_per_invocation: Option<f64>,
}

/// The stack's Kafka trigger binary feeding this router's notifications function, from the end of
/// the benchmark's topics under a consumer group of its own; stopped when dropped
/// (a panic included), so it never outlives the benchmark's broker.
struct Trigger(Child);

impl Trigger {
    /// Its errors go to `log`, and each invocation's answer to `answers`.
    fn start(binary: &Path, base: &str, group: &str, log: &Path, answers: &Path) -> Self {
        let log = std::fs::File::create(log).expect("the trigger's log");
        let answers = std::fs::File::create(answers).expect("the trigger's answers");
        let child = Command::new(binary)
            .env(
                "STOCKROOM_INVOKE_URL",
                format!("{base}/2015-03-31/functions/notifications/invocations"),
            )
            .env("STOCKROOM_TRIGGER_GROUP", group)
            // Only what comes after it: the topics hold every earlier level's events.
            .env("STOCKROOM_TRIGGER_START", "latest")
            .stdout(answers)
            .stderr(log)
            .spawn()
            .unwrap_or_else(|err| panic!("starting {}: {err}", binary.display()));
        Self(child)
    }
}

impl Drop for Trigger {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn count(var: &str, sql: &str) -> i64 {
    admin_query(var, sql).await[0].get(0)
}

async fn notification_commits() -> i64 {
    count(
        NOTIFICATION_DATABASE_URL,
        "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
    )
    .await
}

/// What the notifications function's answers add up to, from the trigger's lines
/// `delivered N records: {"recorded":..,"forwarded":..,"sqs_requests":..}`.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Answers {
    invocations: u64,
    recorded: u64,
    forwarded: u64,
    sqs_requests: u64,
}

fn answers(log: &str) -> Answers {
    let mut sum = Answers::default();
    for answer in log.lines().filter_map(|l| l.split_once(" records: ")) {
        let Ok(answer) = serde_json::from_str::<serde_json::Value>(answer.1) else {
            continue;
        };
        let field = |name: &str| answer[name].as_u64().unwrap_or(0);
        sum.invocations += 1;
        sum.recorded += field("recorded");
        sum.forwarded += field("forwarded");
        sum.sqs_requests += field("sqs_requests");
    }
    sum
}

/// Places an order over HTTP and waits a few seconds for its `order_created` to be recorded, until
/// one is: the whole pipeline flows (the trigger reads from the end of the topics, so an order
/// placed before it had its offsets is never seen; the next one is).
async fn flowing(base: &str, products: Products) {
    let body = format!(r#"{{"product_id":{},"quantity":1}}"#, products.nth(0));
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < CATCH_UP_LIMIT,
            "no probe order's event was recorded: see the trigger's log"
        );
        let answer: serde_json::Value = ureq::post(&format!("{base}/api/orders"))
            .header("content-type", "application/json")
            .send(body.as_str())
            .expect("the probe order")
            .into_body()
            .read_json()
            .expect("the probe order's answer");
        let id = answer["id"].as_i64().expect("the probe order's id");
        let sql = format!(
            "SELECT count(*) FROM notifications WHERE event_type = 'order_created' \
             AND order_id = {id}"
        );
        let asked = Instant::now();
        while asked.elapsed() < Duration::from_secs(5) {
            if count(NOTIFICATION_DATABASE_URL, &sql).await > 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

pub async fn run(
    base: &str,
    products: Products,
    trigger: &Path,
    work: &Path,
    connections: usize,
    burst: Duration,
) -> Pipeline {
    let group = format!("bench-{}", products.first);
    let answers_log = work.join("trigger.answers");
    let trigger = Trigger::start(
        trigger,
        base,
        &group,
        &work.join("trigger.log"),
        &answers_log,
    );
    flowing(base, products).await;
    // Warm the router's order instances (each starts through `cargo run`).
    for _ in 0..8 {
        let warm = wrk::run(
            base,
            Scenario::SingleOrder,
            products,
            32,
            Duration::from_secs(5),
            work,
        );
        if warm.is_none_or(|w| w.max_ms < 1000.0) {
            break;
        }
    }
    let since: String = admin_query(ORDER_DATABASE_URL, "SELECT now()::text").await[0].get(0);
    let commits_before = notification_commits().await;
    let answered_before = answers(&std::fs::read_to_string(&answers_log).unwrap_or_default());
    // The benchmark's own notification_db statements from here on, each a commit of its own.
    let mut own_queries = 1;
    let recorded_before = count(
        NOTIFICATION_DATABASE_URL,
        "SELECT count(*) FROM notifications",
    )
    .await;
    let measured = wrk::run(
        base,
        Scenario::SingleOrder,
        products,
        connections,
        burst,
        work,
    )
    .expect("wrk runs the single order");
    let ended = Instant::now();
    let ids: Vec<i64> = admin_query(
        ORDER_DATABASE_URL,
        &format!(
            "SELECT id FROM orders WHERE created_at >= '{since}' AND status = 'confirmed' \
             AND product_id BETWEEN {} AND {}",
            products.first, products.hot
        ),
    )
    .await
    .iter()
    .map(|r| r.get(0))
    .collect();
    let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let recorded_sql = format!(
        "SELECT count(*) FROM notifications WHERE event_type = 'order_created' \
         AND order_id IN ({})",
        if list.is_empty() { "NULL" } else { &list }
    );
    let (mut recorded, mut recorded_after_s) = (0, None);
    while ended.elapsed() < CATCH_UP_LIMIT {
        recorded = count(NOTIFICATION_DATABASE_URL, &recorded_sql).await;
        own_queries += 1;
        if recorded as usize >= ids.len() {
            recorded_after_s = Some(ended.elapsed().as_secs_f64());
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // PostgreSQL reports its statistics at most every second: let the last commits show.
    tokio::time::sleep(Duration::from_secs(3)).await;
    own_queries += 1;
    let events = count(
        NOTIFICATION_DATABASE_URL,
        "SELECT count(*) FROM notifications",
    )
    .await
        - recorded_before;
    let commits = notification_commits().await - commits_before - own_queries;
    drop(trigger);
    let answered = answers(&std::fs::read_to_string(&answers_log).unwrap_or_default());
    let (invocations, alerts, requests) = (
        answered.invocations - answered_before.invocations,
        answered.forwarded - answered_before.forwarded,
        answered.sqs_requests - answered_before.sqs_requests,
    );
    Pipeline {
        connections,
        burst_seconds: burst.as_secs_f64(),
        measured,
        orders: ids.len() as u64,
        recorded_after_s,
        recorded: recorded as u64,
        sqs_requests_per_alert: (alerts > 0).then(|| requests as f64 / alerts as f64),
        notification_commits_per_event: commits.max(0) as f64 / (events.max(1) as f64),
        events_per_invocation: (invocations > 0).then(|| events as f64 / invocations as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_add_up_the_functions_counts_and_skip_other_lines() {
        let log = "consuming inventory-events, order-events as group g; invoking u\n\
            delivered 12 records: {\"recorded\":12,\"duplicates\":0,\"forwarded\":9,\"dead_lettered\":0,\"left_to_forwarder\":0,\"sqs_requests\":1}\n\
            delivered 3 records: {\"recorded\":2,\"duplicates\":1,\"forwarded\":2,\"dead_lettered\":0,\"left_to_forwarder\":0,\"sqs_requests\":1}\n\
            delivered 1 records: not json\n";
        assert_eq!(
            answers(log),
            Answers {
                invocations: 2,
                recorded: 14,
                forwarded: 11,
                sqs_requests: 2
            }
        );
    }
}
