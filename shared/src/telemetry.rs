//! Logs and metrics shared by every function.
//!
//! Metrics are recorded through the `metrics` facade and leave the process through one of two
//! backends, chosen by `METRICS_BACKEND` ([`choose`]):
//!
//! - **cloudwatch**: CloudWatch Embedded Metric Format lines on stdout when each invocation ends
//!   ([`emf`]); no network call and no server. What a deploy without a pushgateway uses.
//! - **pushgateway**: each environment keeps its metrics in process (a Prometheus text renderer)
//!   and pushes them to a Prometheus pushgateway after each invocation, as the group
//!   `job="stockroom"`, `function=<binary>`, `instance=<one id per environment>`. Each environment
//!   owns its group and replaces it whole (`PUT`) with its cumulative counters, so concurrent
//!   environments never overwrite one another, and a push that fails loses nothing: the next one
//!   carries the same totals. The push runs in a background task after the handler returned, so
//!   no client waits for it, at most one at a time, each bounded by [`PUSH_TIMEOUT`].
//!
//! Either way, what an environment recorded after its last flush goes out when Lambda shuts it
//! down ([`shutdown`]). docs/observability.md explains the model.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::events::store::Backlog;

pub mod emf;
mod shutdown;

/// Environment variable choosing where metrics go: `cloudwatch`, `pushgateway` or `off`
/// ([`choose`]).
pub const METRICS_BACKEND: &str = "METRICS_BACKEND";
/// Environment variable with the CloudWatch namespace of the EMF metrics ([`emf::DEFAULT_NAMESPACE`]
/// when unset).
pub const METRICS_NAMESPACE: &str = "METRICS_NAMESPACE";

/// Environment variable with the pushgateway's base URL (`http://host:port`).
pub const PUSHGATEWAY_URL: &str = "PUSHGATEWAY_URL";
/// Longest a push may take; a slow or dead pushgateway costs a background task this long.
pub const PUSH_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest the push at shutdown may take: Lambda kills the process 500 ms after `SIGTERM`.
const LAST_PUSH_TIMEOUT: Duration = Duration::from_millis(300);
/// Longest any other pushgateway call may take (the janitor's and `stock-levels`' calls, whose
/// listing of every group can be large): below the functions' 15 s.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Shortest time between the starts of two pushes of one environment.
pub const PUSH_EVERY: Duration = Duration::from_secs(1);
/// Histogram buckets (seconds), with 1 s among them for the p95 > 1 s alert.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

struct Pusher {
    handle: PrometheusHandle,
    gateway: Pushgateway,
    /// The same pushgateway, with the shutdown's shorter timeout.
    last_gateway: Pushgateway,
    /// This environment's group.
    path: String,
    /// A push task is pending or in flight.
    busy: AtomicBool,
    /// A push was asked for since the running one rendered: that task pushes again.
    wanted: AtomicBool,
    /// When the last push started.
    last_push: Mutex<Option<Instant>>,
}

/// The pushgateway job of `inventory_stock_levels`: one group, replaced whole by `stock-levels`.
pub const STOCK_JOB: &str = "stockroom_stock";

/// One product's stock, as `inventory_stock_levels` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockLevel {
    pub product_id: i64,
    pub name: String,
    pub stock: i64,
}

/// Where this process's metrics go; unset: metrics off.
enum Backend {
    Pushgateway(Pusher),
    CloudWatch(emf::Recorder),
}

/// What [`choose`] picked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    Off,
    CloudWatch,
    /// With the pushgateway's URL.
    Pushgateway(String),
}

/// The backend the variables `var` gives call for: `METRICS_BACKEND` (`cloudwatch`,
/// `pushgateway` with `PUSHGATEWAY_URL`, or `off`); unset or empty, the pushgateway when
/// `PUSHGATEWAY_URL` is set and off otherwise, as before there was a choice (the local stack and
/// the tests set only the URL). The template sets it for every function.
pub fn choose(var: impl Fn(&str) -> Option<String>) -> Result<Choice, String> {
    let given = |name: &str| {
        var(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let url = given(PUSHGATEWAY_URL);
    match (given(METRICS_BACKEND).as_deref(), url) {
        (Some("off"), _) | (None, None) => Ok(Choice::Off),
        (Some("cloudwatch"), _) => Ok(Choice::CloudWatch),
        (Some("pushgateway") | None, Some(url)) => Ok(Choice::Pushgateway(url)),
        (Some("pushgateway"), None) => Err(format!(
            "{METRICS_BACKEND}=pushgateway needs {PUSHGATEWAY_URL}"
        )),
        (Some(other), _) => Err(format!(
            "{METRICS_BACKEND} must be cloudwatch, pushgateway or off, not {other:?}"
        )),
    }
}

static BACKEND: OnceLock<Backend> = OnceLock::new();
static FUNCTION: OnceLock<String> = OnceLock::new();
static INVOKED: AtomicBool = AtomicBool::new(false);

/// The function's name as given to [`init`] (its binary's name), for logs.
pub fn function() -> &'static str {
    FUNCTION.get().map_or("?", String::as_str)
}

/// True for the first invocation of this execution environment (a cold start), then false.
pub fn first_invocation() -> bool {
    !INVOKED.swap(true, Ordering::Relaxed)
}

/// Structured logs to stdout, which Lambda ships to CloudWatch (level from `AWS_LAMBDA_LOG_LEVEL`
/// or `RUST_LOG`, JSON with `AWS_LAMBDA_LOG_FORMAT=JSON`), and metrics through the backend
/// [`choose`] picks, flushed at shutdown too. `function` names the binary
/// (`env!("CARGO_BIN_NAME")`): in AWS the function's own name is generated by CloudFormation.
pub fn init(function: &str) {
    lambda_http::tracing::init_default_subscriber();
    let _ = FUNCTION.set(function.to_owned());
    let backend = match choose(|name| std::env::var(name).ok()) {
        Ok(Choice::Off) => return,
        Ok(Choice::CloudWatch) => {
            let namespace = std::env::var(METRICS_NAMESPACE)
                .ok()
                .filter(|n| !n.trim().is_empty());
            let namespace = namespace.as_deref().unwrap_or(emf::DEFAULT_NAMESPACE);
            let recorder = emf::Recorder::new(namespace, function);
            let installed = metrics::set_global_recorder(recorder.clone()).is_ok();
            installed.then_some(Backend::CloudWatch(recorder))
        }
        Ok(Choice::Pushgateway(url)) => start_pushgateway(function, &url),
        Err(err) => {
            tracing::warn!(%err, "metrics are off");
            return;
        }
    };
    let Some(backend) = backend else {
        return;
    };
    let pushes = matches!(backend, Backend::Pushgateway(_));
    if BACKEND.set(backend).is_err() {
        return;
    }
    if pushes {
        declare_counters();
    }
    metrics::counter!("stockroom_cold_starts_total").increment(1);
    if pushes {
        // At once, before the first event: see `declare_counters`.
        flush();
    }
    shutdown::flush_on_sigterm();
}

/// The pushgateway backend, its recorder installed; `None` (metrics off) when the URL is not one
/// or a recorder is already installed.
fn start_pushgateway(function: &str, url: &str) -> Option<Backend> {
    let gateways = Pushgateway::within(url, PUSH_TIMEOUT)
        .and_then(|g| Ok((g, Pushgateway::within(url, LAST_PUSH_TIMEOUT)?)));
    let (gateway, last_gateway) = match gateways {
        Ok(gateways) => gateways,
        Err(err) => {
            tracing::warn!(%err, "metrics are off");
            return None;
        }
    };
    let recorder = PrometheusBuilder::new()
        .set_buckets(BUCKETS)
        .expect("buckets are not empty")
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).ok()?;
    let instance = uuid::Uuid::new_v4().to_string();
    let group = [
        ("job", "stockroom"),
        ("function", function),
        ("instance", &instance),
    ];
    let path = group_path(&group).expect("the group has a job");
    tracing::info!(group = path, "metrics go to the pushgateway");
    Some(Backend::Pushgateway(Pusher {
        handle,
        gateway,
        last_gateway,
        path,
        busy: AtomicBool::new(false),
        wanted: AtomicBool::new(false),
        last_push: Mutex::new(None),
    }))
}

/// Whether metrics go to CloudWatch (EMF), where the stock levels are recorded as gauges.
pub fn cloudwatch() -> bool {
    matches!(BACKEND.get(), Some(Backend::CloudWatch(_)))
}

/// The counters whose every increase the rules must see, present at zero from the first push.
/// `rate()` and `increase()` need two samples: a counter that first appears at 1 (this
/// environment's first order failed, say) would never be counted. Declared in every function,
/// so every environment's group has them; a zero series costs nothing in a sum.
fn declare_counters() {
    for status in ["confirmed", "failed", "rejected", "cancelled"] {
        metrics::counter!("order_orders_total", "status" => status).absolute(0);
    }
    for outcome in ["ok", "error"] {
        metrics::counter!("stockroom_scheduled_runs_total", "outcome" => outcome).absolute(0);
    }
    for action in ["confirmed", "failed", "cancelled", "released"] {
        metrics::counter!("stockroom_reconciler_actions_total", "action" => action).absolute(0);
    }
    metrics::counter!("stockroom_dead_letters_total").absolute(0);
    metrics::counter!("stockroom_alerts_forwarded_total").absolute(0);
}

/// Sends what this invocation recorded: with CloudWatch, writes its EMF lines now (no network
/// call); with a pushgateway, pushes in the background ([`push_soon`]). Call it when an
/// invocation is done; the caller never waits for the network.
pub fn flush() {
    match BACKEND.get() {
        Some(Backend::CloudWatch(recorder)) => recorder.flush(),
        Some(Backend::Pushgateway(pusher)) => push_soon(pusher),
        None => {}
    }
}

/// What [`flush`] would send, sent before the process exits (on `SIGTERM`): the EMF lines, or one
/// last push bounded by [`LAST_PUSH_TIMEOUT`], not spaced from the previous one.
async fn flush_now() {
    match BACKEND.get() {
        Some(Backend::CloudWatch(recorder)) => recorder.flush(),
        Some(Backend::Pushgateway(pusher)) => {
            pusher.handle.run_upkeep();
            let body = pusher.handle.render();
            if let Err(err) = pusher.last_gateway.call("PUT", &pusher.path, &body).await {
                tracing::warn!(%err, "the last metrics push failed");
            }
        }
        None => {}
    }
}

/// Pushes this environment's metrics in the background. At most one push is pending or in flight, and pushes start at least
/// [`PUSH_EVERY`] apart: under load one push carries many invocations, so the push (which shares
/// the environment's thread) delays at most one request in that interval, and a quiet function
/// still pushes right after each invocation. A push asked for while one is in flight is not
/// dropped: the running task pushes once more, so the last invocation's values always go out
/// (the cold start's push, still in flight when the first run ended, once hid that run's gauges).
/// A push that waits when Lambda freezes the environment goes out when it thaws, or at
/// `SIGTERM` if Lambda retires it instead ([`shutdown`]).
fn push_soon(pusher: &'static Pusher) {
    pusher.wanted.store(true, Ordering::Release);
    if pusher.busy.swap(true, Ordering::AcqRel) {
        return;
    }
    tokio::spawn(async move {
        loop {
            push_once(pusher).await;
            pusher.busy.store(false, Ordering::Release);
            // Asked for again while pushing: push again, unless a new task took it meanwhile.
            if !pusher.wanted.load(Ordering::Acquire) || pusher.busy.swap(true, Ordering::AcqRel) {
                return;
            }
        }
    });
}

/// One push, [`PUSH_EVERY`] after the last one started.
async fn push_once(pusher: &Pusher) {
    let last = *pusher.last_push.lock().expect("not poisoned");
    if let Some(wait) = last.map(|at| PUSH_EVERY.saturating_sub(at.elapsed())) {
        tokio::time::sleep(wait).await;
    }
    *pusher.last_push.lock().expect("not poisoned") = Some(Instant::now());
    // What is recorded from here on is for the next push.
    pusher.wanted.store(false, Ordering::Release);
    pusher.handle.run_upkeep();
    let body = pusher.handle.render();
    // The pusher's gateway gives up after PUSH_TIMEOUT (its agent's timeout, which also ends the
    // blocking thread; a tokio timeout here would not).
    if let Err(err) = pusher.gateway.call("PUT", &pusher.path, &body).await {
        tracing::debug!(%err, "metrics push failed or timed out; the next one carries them");
    }
}

/// The `inventory_stock_levels` group of every product, in the pushgateway's text format: one
/// series per product, labelled with its id and name.
pub fn stock_group(levels: &[StockLevel]) -> String {
    let mut text = String::from("# TYPE inventory_stock_levels gauge\n");
    for level in levels {
        let name = level
            .name
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        text.push_str(&format!(
            "inventory_stock_levels{{product_id=\"{}\",product_name=\"{name}\"}} {}\n",
            level.product_id, level.stock
        ));
    }
    text
}

/// Sets the outbox gauges of one database: `stockroom_outbox_pending_events` and
/// `stockroom_outbox_oldest_event_age_seconds` (0 when nothing waits).
pub fn outbox_backlog(database: &str, backlog: Backlog) {
    metrics::gauge!("stockroom_outbox_pending_events", "database" => database.to_owned())
        .set(backlog.pending as f64);
    metrics::gauge!("stockroom_outbox_oldest_event_age_seconds", "database" => database.to_owned())
        .set(backlog.oldest_age_seconds);
}

/// Records every product's stock as `inventory_stock_levels{product_id}` gauges, for CloudWatch:
/// a pushgateway gets them as one group of their own instead ([`stock_group`]). No product name:
/// CloudWatch takes only ASCII dimension values, and a rename would start a new metric.
pub fn record_stock_levels(levels: &[StockLevel]) {
    for level in levels {
        metrics::gauge!("inventory_stock_levels", "product_id" => level.product_id.to_string())
            .set(level.stock as f64);
    }
}

/// Ends an invocation of a scheduled or event-driven function: counts it by outcome
/// (`stockroom_scheduled_runs_total{outcome="ok"|"error"}`) and flushes the metrics.
pub fn finish_run<T, E>(result: &Result<T, E>) {
    let outcome = if result.is_ok() { "ok" } else { "error" };
    metrics::counter!("stockroom_scheduled_runs_total", "outcome" => outcome).increment(1);
    flush();
}

/// A pushgateway's HTTP API, through ureq on a blocking thread ([`crate::aws::api::run`]), each
/// call bounded by the agent's timeout.
#[derive(Debug, Clone)]
pub struct Pushgateway {
    /// `http://host:port`.
    base: String,
    agent: ureq::Agent,
}

impl Pushgateway {
    /// From an `http://host:port` URL.
    pub fn new(url: &str) -> Result<Self, String> {
        Self::within(url, CALL_TIMEOUT)
    }

    /// Like [`Self::new`], each call giving up after `timeout`.
    fn within(url: &str, timeout: Duration) -> Result<Self, String> {
        let address = url
            .trim()
            .strip_prefix("http://")
            .map(|rest| rest.trim_end_matches('/'))
            .filter(|rest| !rest.is_empty())
            .ok_or_else(|| format!("the pushgateway URL must be http://host:port, not {url:?}"))?;
        Ok(Self {
            base: format!("http://{address}"),
            agent: crate::aws::api::agent(timeout),
        })
    }

    /// From `PUSHGATEWAY_URL`; `None` when it is unset or empty (metrics off, as the template's
    /// default leaves it), an error when it is not an `http://host:port` URL.
    pub fn from_env() -> Result<Option<Self>, crate::config::ConfigError> {
        use crate::config::{ConfigError, Vars as _};
        let Some(url) = crate::config::env.optional(PUSHGATEWAY_URL) else {
            return Ok(None);
        };
        Self::new(&url)
            .map(Some)
            .map_err(|_| ConfigError::invalid(PUSHGATEWAY_URL, &url, "an http://host:port URL"))
    }

    /// One request; the body of a 2xx answer, or why not.
    pub async fn call(&self, method: &str, path: &str, body: &str) -> Result<String, String> {
        let fail = |err: String| format!("{method} {path}: {err}");
        let request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("content-type", "text/plain; version=0.0.4")
            .body(body.as_bytes().to_vec())
            .map_err(|err| fail(err.to_string()))?;
        match crate::aws::api::run(self.agent.clone(), request).await {
            Ok((200..=299, text)) => Ok(text),
            Ok((status, text)) => Err(fail(format!(
                "the pushgateway answered {status}: {}",
                text.trim()
            ))),
            Err(err) => Err(fail(err)),
        }
    }

    /// Every group of `job` with the time of its last push (unix seconds).
    pub async fn groups(&self, job: &str) -> Result<Vec<(Vec<(String, String)>, f64)>, String> {
        let body = self.call("GET", "/api/v1/metrics", "").await?;
        let parsed: serde_json::Value =
            serde_json::from_str(&body).map_err(|e| format!("pushgateway metrics: {e}"))?;
        let groups = parsed["data"].as_array().cloned().unwrap_or_default();
        Ok(groups
            .iter()
            .filter(|g| g["labels"]["job"] == job)
            .map(|g| {
                let labels = g["labels"]
                    .as_object()
                    .map(|l| {
                        l.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                            .collect()
                    })
                    .unwrap_or_default();
                let pushed = g["push_time_seconds"]["metrics"][0]["value"]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0.0);
                (labels, pushed)
            })
            .collect())
    }

    /// Deletes one group, named by its grouping labels (as [`Self::groups`] gives them).
    pub async fn delete(&self, labels: &[(String, String)]) -> Result<(), String> {
        self.call("DELETE", &group_path(labels)?, "")
            .await
            .map(drop)
    }
}

/// The path of a group, named by its grouping labels: `/metrics/job/<job>`, then the others in
/// order. A value that is not a plain path segment (empty, `.`, `..`, or with any character but
/// `A-Z a-z 0-9 - _ . ~`) goes in the pushgateway's documented form `/<label>@base64/<value>`, as
/// base64url (`=` for the empty value).
fn group_path<K: AsRef<str>, V: AsRef<str>>(labels: &[(K, V)]) -> Result<String, String> {
    let is_job = |(name, _): &&(K, V)| name.as_ref() == "job";
    let job = labels.iter().find(is_job).ok_or("a group has a job")?;
    let others = labels.iter().filter(|label| !is_job(label));
    let mut path = String::from("/metrics");
    for (name, value) in std::iter::once(job).chain(others) {
        let (name, value) = (name.as_ref(), value.as_ref());
        let plain = !matches!(value, "" | "." | "..")
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b));
        match value {
            _ if plain => path.push_str(&format!("/{name}/{value}")),
            "" => path.push_str(&format!("/{name}@base64/=")),
            _ => path.push_str(&format!("/{name}@base64/{}", URL_SAFE.encode(value))),
        }
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backend_is_what_metrics_backend_says_and_else_the_pushgateway_if_there_is_one() {
        let choose_from = |vars: &[(&str, &str)]| {
            choose(|name| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            })
        };
        let url = "http://127.0.0.1:9091";
        assert_eq!(choose_from(&[]), Ok(Choice::Off));
        assert_eq!(choose_from(&[(METRICS_BACKEND, " ")]), Ok(Choice::Off));
        assert_eq!(
            choose_from(&[(PUSHGATEWAY_URL, url)]),
            Ok(Choice::Pushgateway(url.into()))
        );
        assert_eq!(
            choose_from(&[(METRICS_BACKEND, "cloudwatch"), (PUSHGATEWAY_URL, url)]),
            Ok(Choice::CloudWatch)
        );
        assert_eq!(
            choose_from(&[(METRICS_BACKEND, "pushgateway"), (PUSHGATEWAY_URL, url)]),
            Ok(Choice::Pushgateway(url.into()))
        );
        assert_eq!(
            choose_from(&[(METRICS_BACKEND, "off"), (PUSHGATEWAY_URL, url)]),
            Ok(Choice::Off)
        );
        assert!(choose_from(&[(METRICS_BACKEND, "pushgateway")]).is_err());
        assert!(choose_from(&[(METRICS_BACKEND, "prometheus")]).is_err());
    }

    #[test]
    fn a_stock_group_has_a_series_per_product_and_escapes_names() {
        let levels = [
            StockLevel {
                product_id: 7,
                name: "a \"quoted\" \\ name\nwith a line".into(),
                stock: 12,
            },
            StockLevel {
                product_id: 8,
                name: "Mug".into(),
                stock: 0,
            },
        ];
        assert_eq!(
            stock_group(&levels),
            "# TYPE inventory_stock_levels gauge\n\
             inventory_stock_levels{product_id=\"7\",product_name=\"a \\\"quoted\\\" \\\\ name\\nwith a line\"} 12\n\
             inventory_stock_levels{product_id=\"8\",product_name=\"Mug\"} 0\n"
        );
        assert_eq!(stock_group(&[]), "# TYPE inventory_stock_levels gauge\n");
    }

    #[test]
    fn grouping_labels_that_are_not_plain_path_segments_go_in_base64url() {
        let plain = [
            ("function", "orders-create"),
            ("job", "stockroom"),
            ("instance", "0b1c_2d.e~"),
        ];
        assert_eq!(
            group_path(&plain).unwrap(),
            "/metrics/job/stockroom/function/orders-create/instance/0b1c_2d.e~"
        );
        let odd = [
            ("job", "a/b"),
            ("function", ""),
            ("instance", "é?x"),
            ("path", ".."),
        ];
        assert_eq!(
            group_path(&odd).unwrap(),
            "/metrics/job@base64/YS9i/function@base64/=/instance@base64/w6k_eA==/path@base64/Li4="
        );
        assert!(group_path(&[("function", "x")]).is_err());
    }
}
