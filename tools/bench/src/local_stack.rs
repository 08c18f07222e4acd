//! The local stack as `localstack/up` runs it: a burst of single orders over HTTP through its
//! gateway and router (debug builds, as a developer has them) while everything else of the stack
//! runs, its durable broker, relay, Kafka trigger, notifications and SQS included. Then how soon
//! after its commit each order's `order_created` was on the topic (the relay marks an event
//! published once the broker acknowledged it), how long until every one was recorded in
//! notification_db, and what the notifications side spent on them.

use std::path::Path;
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
pub struct LocalStack {
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
    pub events_per_invocation: Option<f64>,
    /// From each order's commit to its `order_created` acknowledged by the broker.
    pub event_latency: EventLatency,
}

/// Milliseconds from an event's transaction start (`created_at`, a moment before its commit) to
/// its `published_at`, which the relay sets once the broker acknowledged it: an upper bound of
/// commit to topic.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EventLatency {
    pub events: i64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
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
/// one is: the whole pipeline flows.
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

/// The level, against the stack at `base`; `answers_log` is its Kafka trigger's log, where each
/// invocation's answer is a line.
pub async fn run(
    base: &str,
    products: Products,
    answers_log: &Path,
    work: &Path,
    connections: usize,
    burst: Duration,
) -> LocalStack {
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
    let answered_before = answers(&std::fs::read_to_string(answers_log).unwrap_or_default());
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
    let answered = answers(&std::fs::read_to_string(answers_log).unwrap_or_default());
    let event_latency = event_latency(&list).await;
    let (invocations, alerts, requests) = (
        answered.invocations - answered_before.invocations,
        answered.forwarded - answered_before.forwarded,
        answered.sqs_requests - answered_before.sqs_requests,
    );
    LocalStack {
        connections,
        burst_seconds: burst.as_secs_f64(),
        measured,
        orders: ids.len() as u64,
        recorded_after_s,
        recorded: recorded as u64,
        sqs_requests_per_alert: (alerts > 0).then(|| requests as f64 / alerts as f64),
        notification_commits_per_event: commits.max(0) as f64 / (events.max(1) as f64),
        events_per_invocation: (invocations > 0).then(|| events as f64 / invocations as f64),
        event_latency,
    }
}

/// [`EventLatency`] of the `order_created` events of the orders `ids` (a comma-separated list).
async fn event_latency(ids: &str) -> EventLatency {
    if ids.is_empty() {
        return EventLatency::default();
    }
    let row = &admin_query(
        ORDER_DATABASE_URL,
        &format!(
            "WITH waited AS (SELECT extract(epoch FROM published_at - created_at) * 1000 AS ms \
             FROM outbox WHERE event_type = 'order_created' AND order_id IN ({ids}) \
             AND published_at IS NOT NULL) \
             SELECT count(*), \
                    coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms), 0)::float8, \
                    coalesce(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms), 0)::float8, \
                    coalesce(max(ms), 0)::float8 FROM waited"
        ),
    )
    .await[0];
    EventLatency {
        events: row.get(0),
        p50_ms: row.get(1),
        p99_ms: row.get(2),
        max_ms: row.get(3),
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
