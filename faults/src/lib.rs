//! Harness for the fault tests: order load over HTTP, the real parts of the test stack stopped,
//! restarted or frozen through `localstack/ctl`, and the checks that nothing was lost, duplicated
//! or oversold. `localstack/test` runs these tests alone, after the others, against its own stack.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use stockroom_test_support::http::Client;

pub fn env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run the fault tests with localstack/test"))
}

/// The local gateway's bound on an API request (`localstack/lib.sh`'s GATEWAY_TIMEOUT): a request
/// whose function instance died gets its 504 after this long.
pub fn gateway_timeout() -> Duration {
    Duration::from_secs(env("STOCKROOM_GATEWAY_TIMEOUT").parse().expect("seconds"))
}

/// `POST path` with a JSON body: `(status, body)` (`null` when not JSON), or why no answer came
/// within the gateway's bound and 10 s more.
pub fn try_post(path: &str, body: &str) -> Result<(u16, Value), String> {
    let reply = Client::from_var("STOCKROOM_E2E_URL")
        .timeout(gateway_timeout() + Duration::from_secs(10))
        .try_call("POST", path, Some(body), &[])?;
    let json = serde_json::from_str(&reply.text).unwrap_or(Value::Null);
    Ok((reply.status, json))
}

/// [`try_post`], `None` when no answer came.
pub fn post(path: &str, body: &str) -> Option<(u16, Value)> {
    try_post(path, body).ok()
}

/// Creates a product over HTTP; returns its id.
pub fn product(stock: i32) -> i64 {
    let name = format!("fault-{}", uuid::Uuid::new_v4());
    let (status, body) = post(
        "/api/products",
        &format!(r#"{{"name":"{name}","price":2.50,"stock":{stock}}}"#),
    )
    .expect("the API answers");
    assert_eq!(status, 201, "{body}");
    body["id"].as_i64().unwrap()
}

/// Runs `localstack/ctl ACTION PART` against the test stack (whose settings it inherits).
pub fn ctl(action: &str, part: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../localstack/ctl");
    let status = Command::new(script)
        .args([action, part])
        .status()
        .expect("localstack/ctl runs");
    assert!(status.success(), "localstack/ctl {action} {part} failed");
}

/// The functions behind the router with no live instance left (`localstack/ctl check router`, the
/// watchdog's test).
pub fn dead_functions() -> Vec<String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../localstack/ctl");
    let out = Command::new(script)
        .args(["check", "router"])
        .output()
        .expect("localstack/ctl runs");
    assert!(out.status.success(), "localstack/ctl check router failed");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// Each load client places at most one order per this interval: a steady load the debug-built
/// local pipeline keeps up with (8 clients: 40 orders, about 120 events a second), so what a test
/// measures is recovery, not a backlog of saturation.
const PACE: Duration = Duration::from_millis(200);

/// Clients placing one-unit orders of one product in a loop, until stopped.
pub struct Load {
    stop: Arc<AtomicBool>,
    outcomes: Arc<Mutex<Vec<Outcome>>>,
    clients: Vec<JoinHandle<()>>,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: Option<u16>,
    pub order_id: Option<i64>,
    /// The error code of a JSON error, or why no answer came.
    pub error: Option<String>,
    pub at: Instant,
    pub took: Duration,
}

impl Load {
    pub fn start(product: i64, clients: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let clients = (0..clients)
            .map(|_| {
                let (stop, outcomes) = (stop.clone(), outcomes.clone());
                std::thread::spawn(move || {
                    let body = format!(r#"{{"product_id":{product},"quantity":1}}"#);
                    while !stop.load(Ordering::Relaxed) {
                        let started = Instant::now();
                        let answer = try_post("/api/orders", &body);
                        let outcome = Outcome {
                            status: answer.as_ref().ok().map(|(s, _)| *s),
                            order_id: answer.as_ref().ok().and_then(|(_, b)| b["id"].as_i64()),
                            error: match &answer {
                                Ok((_, b)) => b["error"]["code"].as_str().map(str::to_owned),
                                Err(e) => Some(e.clone()),
                            },
                            at: Instant::now(),
                            took: started.elapsed(),
                        };
                        outcomes.lock().unwrap().push(outcome);
                        std::thread::sleep(PACE.saturating_sub(started.elapsed()));
                    }
                })
            })
            .collect();
        Self {
            stop,
            outcomes,
            clients,
        }
    }

    /// Orders answered so far.
    pub fn count(&self) -> usize {
        self.outcomes.lock().unwrap().len()
    }

    pub fn stop(self) -> Vec<Outcome> {
        self.stop.store(true, Ordering::Relaxed);
        for client in self.clients {
            client.join().unwrap();
        }
        Arc::try_unwrap(self.outcomes)
            .unwrap()
            .into_inner()
            .unwrap()
    }
}

/// How many answers of each kind: `status error` → count, for assertion messages.
pub fn tally(outcomes: &[Outcome]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for o in outcomes {
        let kind = format!("{:?} {}", o.status, o.error.as_deref().unwrap_or(""));
        *counts.entry(kind).or_default() += 1;
    }
    counts
}

/// The ids of the orders that were placed (201).
pub fn placed(outcomes: &[Outcome]) -> Vec<i64> {
    outcomes
        .iter()
        .filter(|o| o.status == Some(201))
        .map(|o| o.order_id.expect("a 201 carries the order"))
        .collect()
}

/// Runs SQL with full rights on the database in `var`, retrying while it restarts.
pub fn sql(var: &str, query: &str) -> Vec<tokio_postgres::Row> {
    let url = env(var);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("{var}: {e}"));
        tokio::spawn(connection);
        client
            .query(query, &[])
            .await
            .unwrap_or_else(|e| panic!("{query}: {e}"))
    })
}

/// Polls `check` every half second until it returns `Some`, or panics with `what` after `limit`.
pub fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(done) = check() {
            return done;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The order_created events of these orders as the order_db outbox holds them:
/// `order id → (event_id, published)`.
pub fn order_events(orders: &[i64]) -> BTreeMap<i64, (String, bool)> {
    let keys: Vec<String> = orders.iter().map(|id| format!("'{id}'")).collect();
    sql(
        "ORDER_DATABASE_URL",
        &format!(
            "SELECT order_id, event_id::text, published_at IS NOT NULL FROM outbox \
             WHERE event_type = 'order_created' AND order_id IN ({})",
            keys.join(",")
        ),
    )
    .iter()
    .map(|row| (row.get(0), (row.get(1), row.get(2))))
    .collect()
}

/// How many times each of `event_ids` was recorded in notification_db, and forwarded.
pub fn recorded(event_ids: &BTreeSet<String>) -> (BTreeMap<String, i64>, usize) {
    let ids: Vec<String> = event_ids.iter().map(|id| format!("'{id}'")).collect();
    let rows = sql(
        "NOTIFICATION_DATABASE_URL",
        &format!(
            "SELECT event_id::text, count(*), bool_and(forwarded_at IS NOT NULL) FROM notifications \
             WHERE event_id::text IN ({}) GROUP BY event_id",
            ids.join(",")
        ),
    );
    let forwarded = rows.iter().filter(|r| r.get::<_, bool>(2)).count();
    (
        rows.iter().map(|r| (r.get(0), r.get(1))).collect(),
        forwarded,
    )
}

/// Every message on `topic` whose key is one of `keys`: `event_id → copies`, read until `expected`
/// distinct events were seen and the topic has nothing more (or 30 s passed).
pub fn on_topic(topic: &str, keys: &[i64], expected: usize) -> BTreeMap<String, usize> {
    stockroom_test_support::topic::consume(&env("KAFKA_BROKERS"), topic, keys, expected)
        .into_iter()
        .map(|(event_id, copies)| (event_id, copies.len()))
        .collect()
}

/// Stock and orders agree for `product`, created with `initial` units: stock never negative, and
/// what left the stock is exactly what confirmed orders hold. No order stays pending.
pub fn assert_stock_invariant(product: i64, initial: i64) {
    let stock: i64 = sql(
        "INVENTORY_DATABASE_URL",
        &format!("SELECT stock FROM products WHERE id = {product}"),
    )[0]
    .get(0);
    let rows = sql(
        "ORDER_DATABASE_URL",
        &format!(
            "SELECT coalesce(sum(quantity) FILTER (WHERE status = 'confirmed'), 0)::int8, \
             count(*) FILTER (WHERE status = 'pending') FROM orders WHERE product_id = {product}"
        ),
    );
    let (confirmed, pending): (i64, i64) = (rows[0].get(0), rows[0].get(1));
    assert!(stock >= 0, "negative stock {stock}");
    assert_eq!(
        initial - stock,
        confirmed,
        "stock taken equals confirmed quantity"
    );
    assert_eq!(pending, 0, "orders left pending");
}

/// Receives and deletes every message on an SQS queue; returns their bodies as JSON.
pub fn drain_queue(url: &str) -> Vec<Value> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = aws_sdk_sqs::Client::new(&stockroom_sqs::sdk_config().await);
        stockroom_test_support::queue::drain(&client, url).await
    })
}

/// Starts an SQS test from a quiet queue: empties the alerts queue, waits until notification_db
/// has nothing left to forward from the tests before (their alerts are not this test's), and
/// drains it. The test stack has no subscriber (the tests read the queue themselves), and
/// moto's requests slow down with a queue's length: thousands of earlier alerts made forwarding
/// this test's take over a minute.
pub fn quiet_alerts() {
    let url = env("ALERTS_QUEUE_URL");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client =
        runtime.block_on(async { aws_sdk_sqs::Client::new(&stockroom_sqs::sdk_config().await) });
    // At most one purge a minute (SQS's rule, which moto keeps): when the test before purged,
    // the drain below empties the queue instead.
    let _ = runtime.block_on(client.purge_queue().queue_url(&url).send());
    wait_for(
        "the earlier tests' alerts forwarded",
        Duration::from_secs(120),
        || {
            let left: i64 = sql(
                "NOTIFICATION_DATABASE_URL",
                "SELECT count(*) FROM sqs_outbox WHERE sent_at IS NULL",
            )[0]
            .get(0);
            (left == 0).then_some(())
        },
    );
    drain_queue(&url);
}

/// Invokes a scheduled function once through the local router, as EventBridge would.
pub fn run_scheduled(function: &str) {
    let event = stockroom_test_support::handler::SCHEDULED_EVENT;
    let answer = post(
        &format!("/2015-03-31/functions/{function}/invocations"),
        event,
    );
    assert!(
        matches!(&answer, Some((200, body)) if body.get("errorType").is_none()),
        "{function} invocation failed: {answer:?}"
    );
}

/// Thaws a frozen part when dropped, so a failing test never leaves the stack frozen.
pub struct Frozen(pub &'static str);

impl Frozen {
    pub fn new(part: &'static str) -> Self {
        ctl("freeze", part);
        Self(part)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        ctl("thaw", self.0);
    }
}
