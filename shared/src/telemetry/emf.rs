//! Metrics as CloudWatch Embedded Metric Format (EMF) log lines: the backend of a deploy without a
//! Prometheus. Each invocation's counts, gauges and samples are kept in process and written to
//! stdout as JSON documents when the invocation ends ([`Recorder::flush`]); CloudWatch Logs
//! extracts them into metrics. Writing a line cannot fail or slow a request the way a network
//! call can, and there is no server to run.
//!
//! The mapping, the same names and labels as the pushgateway's:
//! - a counter is written as what it counted since the last flush (CloudWatch sums them); nothing
//!   when that is zero;
//! - a gauge is written when it was set since the last flush (its last value);
//! - a histogram as the array of its samples (CloudWatch keeps the distribution: p95, p99);
//! - the dimensions are `function` (the binary, as the pushgateway's grouping key has it) and the
//!   metric's labels; a few metrics that alarms watch across all their series also get a rollup
//!   without dimensions ([`ROLLUPS`]).
//!
//! In one document every dimension is one member of the root, so metrics whose labels disagree
//! (a 201 request and a `confirmed` order both have `status`) go in separate documents: usually
//! one line per invocation, a few when labels clash. docs/observability.md says what it costs.

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata,
    SharedString, Unit,
};
use serde_json::{Map, Value, json};

/// The namespace of the metrics, unless `METRICS_NAMESPACE` says otherwise.
pub const DEFAULT_NAMESPACE: &str = "Stockroom";

/// Metrics that also get a rollup without dimensions, one series over all of theirs, for an alarm
/// that must watch every route, product or database (an alarm cannot search dimensions): the
/// slowest service's p95, the lowest stock, the oldest outbox event.
pub const ROLLUPS: &[&str] = &[
    "inventory_http_request_duration_seconds",
    "order_http_request_duration_seconds",
    "notification_http_request_duration_seconds",
    "gateway_http_request_duration_seconds",
    "inventory_stock_levels",
    "stockroom_outbox_oldest_event_age_seconds",
];

/// The specification's limits: metrics per directive, values per metric.
const MAX_METRICS: usize = 100;
const MAX_VALUES: usize = 100;

#[derive(Default)]
struct Count(AtomicU64);

impl CounterFn for Count {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::Relaxed);
    }

    /// Only ever used to declare a counter at zero (for the pushgateway): here, what is pending.
    fn absolute(&self, value: u64) {
        self.0.store(value, Ordering::Relaxed);
    }
}

/// A gauge's value, and whether it was set since the last flush.
#[derive(Default)]
struct Level(Mutex<(f64, bool)>);

impl Level {
    fn update(&self, change: impl FnOnce(f64) -> f64) {
        let mut level = self.0.lock().expect("not poisoned");
        *level = (change(level.0), true);
    }
}

impl GaugeFn for Level {
    fn increment(&self, value: f64) {
        self.update(|v| v + value);
    }

    fn decrement(&self, value: f64) {
        self.update(|v| v - value);
    }

    fn set(&self, value: f64) {
        self.update(|_| value);
    }
}

#[derive(Default)]
struct Samples(Mutex<Vec<f64>>);

impl HistogramFn for Samples {
    fn record(&self, value: f64) {
        self.0.lock().expect("not poisoned").push(value);
    }
}

/// The series of one process, by kind.
#[derive(Default)]
struct Series {
    counters: Mutex<HashMap<Key, Arc<Count>>>,
    gauges: Mutex<HashMap<Key, Arc<Level>>>,
    histograms: Mutex<HashMap<Key, Arc<Samples>>>,
}

fn handle<T: Default>(map: &Mutex<HashMap<Key, Arc<T>>>, key: &Key) -> Arc<T> {
    map.lock()
        .expect("not poisoned")
        .entry(key.clone())
        .or_default()
        .clone()
}

/// The `metrics` recorder that writes EMF; cheap to clone, every clone shares the series.
#[derive(Clone)]
pub struct Recorder {
    series: Arc<Series>,
    namespace: String,
    function: String,
}

impl metrics::Recorder for Recorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(handle(&self.series.counters, key))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(handle(&self.series.gauges, key))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(handle(&self.series.histograms, key))
    }
}

/// One metric's value to write: its name, labels (the `function` first), unit and value.
struct Datum {
    name: String,
    labels: Vec<(String, String)>,
    unit: &'static str,
    value: Value,
}

impl Recorder {
    /// For the function `function`, in `namespace`.
    pub fn new(namespace: &str, function: &str) -> Self {
        Self {
            series: Arc::default(),
            namespace: namespace.to_owned(),
            function: function.to_owned(),
        }
    }

    /// Writes what was recorded since the last flush to stdout, one document a line; nothing when
    /// nothing was recorded. Each line goes out whole, with one write of a locked stdout, so it
    /// never interleaves with a log line.
    pub fn flush(&self) {
        let mut text = String::new();
        for document in self.documents(now_ms()) {
            text.push_str(&document.to_string());
            text.push('\n');
        }
        if !text.is_empty() {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
        }
    }

    /// The EMF documents of what was recorded since the last call, at `timestamp` (ms since the
    /// epoch), and resets it.
    pub fn documents(&self, timestamp: u64) -> Vec<Value> {
        let mut documents: Vec<Document> = Vec::new();
        for datum in self.take() {
            match documents.iter_mut().find(|d| d.fits(&datum)) {
                Some(document) => document.add(datum),
                None => {
                    let mut document = Document::default();
                    document.add(datum);
                    documents.push(document);
                }
            }
        }
        documents
            .into_iter()
            .map(|document| document.into_json(&self.namespace, timestamp))
            .collect()
    }

    /// Everything recorded since the last call, in a stable order (by name, then labels).
    fn take(&self) -> Vec<Datum> {
        let mut data = Vec::new();
        for (key, count) in self.series.counters.lock().expect("not poisoned").iter() {
            let delta = count.0.swap(0, Ordering::Relaxed);
            if delta > 0 {
                data.push(self.datum(key, "Count", json!(delta)));
            }
        }
        for (key, level) in self.series.gauges.lock().expect("not poisoned").iter() {
            let mut level = level.0.lock().expect("not poisoned");
            if std::mem::replace(&mut level.1, false) {
                data.push(self.datum(key, unit(key.name(), "None"), number(level.0)));
            }
        }
        for (key, samples) in self.series.histograms.lock().expect("not poisoned").iter() {
            let samples = std::mem::take(&mut *samples.0.lock().expect("not poisoned"));
            for chunk in samples.chunks(MAX_VALUES) {
                let values = chunk.iter().map(|v| number(*v)).collect();
                let unit = unit(key.name(), "None");
                data.push(self.datum(key, unit, Value::Array(values)));
            }
        }
        data.sort_by(|a, b| (&a.name, &a.labels).cmp(&(&b.name, &b.labels)));
        data
    }

    fn datum(&self, key: &Key, unit: &'static str, value: Value) -> Datum {
        let mut labels = vec![("function".to_owned(), self.function.clone())];
        let mut own: Vec<_> = key
            .labels()
            .filter(|label| label.key() != "function")
            .map(|label| (label.key().to_owned(), dimension_value(label.value())))
            .collect();
        own.sort();
        labels.extend(own);
        Datum {
            name: key.name().to_owned(),
            labels,
            unit,
            value,
        }
    }
}

/// One document being built: its root members and its directives (dimension sets, metrics).
#[derive(Default)]
struct Document {
    root: BTreeMap<String, Value>,
    directives: Vec<(Vec<Vec<String>>, Vec<Value>)>,
}

impl Document {
    /// Whether `datum` can join: its name is not taken and its dimensions agree with the root's.
    fn fits(&self, datum: &Datum) -> bool {
        !self.root.contains_key(&datum.name)
            && datum.labels.iter().all(|(key, value)| {
                self.root
                    .get(key)
                    .is_none_or(|present| present.as_str() == Some(value))
            })
    }

    fn add(&mut self, datum: Datum) {
        let keys: Vec<String> = datum.labels.iter().map(|(k, _)| k.clone()).collect();
        let mut sets = vec![keys];
        if ROLLUPS.contains(&datum.name.as_str()) {
            sets.push(Vec::new());
        }
        for (key, value) in datum.labels {
            self.root.insert(key, Value::String(value));
        }
        let definition = json!({ "Name": datum.name, "Unit": datum.unit });
        self.root.insert(datum.name, datum.value);
        match self
            .directives
            .iter_mut()
            .find(|(s, metrics)| *s == sets && metrics.len() < MAX_METRICS)
        {
            Some((_, metrics)) => metrics.push(definition),
            None => self.directives.push((sets, vec![definition])),
        }
    }

    fn into_json(self, namespace: &str, timestamp: u64) -> Value {
        let directives: Vec<Value> = self
            .directives
            .into_iter()
            .map(|(sets, metrics)| {
                json!({ "Namespace": namespace, "Dimensions": sets, "Metrics": metrics })
            })
            .collect();
        let mut root: Map<String, Value> = self.root.into_iter().collect();
        root.insert(
            "_aws".to_owned(),
            json!({ "Timestamp": timestamp, "CloudWatchMetrics": directives }),
        );
        Value::Object(root)
    }
}

/// CloudWatch's unit for a metric: seconds by the Prometheus naming convention, else `other`.
fn unit(name: &str, other: &'static str) -> &'static str {
    if name.ends_with("_seconds") {
        "Seconds"
    } else {
        other
    }
}

/// A JSON number; a value JSON cannot hold (NaN, infinity) as 0.
fn number(value: f64) -> Value {
    serde_json::Number::from_f64(value).map_or(json!(0), Value::Number)
}

/// CloudWatch takes dimension values of printable ASCII, not empty: anything else is replaced.
fn dimension_value(value: &str) -> String {
    if value.trim().is_empty() {
        return "none".to_owned();
    }
    value
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics::with_local_recorder;

    fn record(recorder: &Recorder, what: impl FnOnce()) {
        with_local_recorder(recorder, what);
    }

    #[test]
    fn counters_are_written_as_what_they_counted_since_the_last_flush() {
        let recorder = Recorder::new("Test", "orders-create");
        record(&recorder, || {
            metrics::counter!("order_orders_total", "status" => "confirmed").increment(2);
            metrics::counter!("order_orders_total", "status" => "confirmed").increment(1);
        });
        let documents = recorder.documents(1_700_000_000_000);
        assert_eq!(
            documents,
            [json!({
                "_aws": {
                    "Timestamp": 1_700_000_000_000_u64,
                    "CloudWatchMetrics": [{
                        "Namespace": "Test",
                        "Dimensions": [["function", "status"]],
                        "Metrics": [{ "Name": "order_orders_total", "Unit": "Count" }],
                    }],
                },
                "function": "orders-create",
                "status": "confirmed",
                "order_orders_total": 3,
            })]
        );
        assert!(recorder.documents(1).is_empty(), "nothing new: no line");
        record(&recorder, || {
            metrics::counter!("order_orders_total", "status" => "confirmed").increment(1);
        });
        assert_eq!(recorder.documents(2)[0]["order_orders_total"], 1);
    }

    #[test]
    fn labels_that_agree_share_a_document_and_clashing_ones_do_not() {
        let recorder = Recorder::new("Test", "orders-create");
        record(&recorder, || {
            metrics::counter!("order_http_requests_total",
                "method" => "POST", "endpoint" => "/api/orders", "status" => "201")
            .increment(1);
            metrics::histogram!("order_http_request_duration_seconds",
                "method" => "POST", "endpoint" => "/api/orders")
            .record(0.012);
            metrics::histogram!("order_db_query_duration_seconds", "operation" => "insert_order")
                .record(0.002);
            metrics::histogram!("order_db_query_duration_seconds", "operation" => "insert_order")
                .record(0.003);
            metrics::counter!("order_orders_total", "status" => "confirmed").increment(1);
        });
        let documents = recorder.documents(5);
        assert_eq!(documents.len(), 2, "{documents:#?}");
        let first = &documents[0];
        assert_eq!(
            first["order_db_query_duration_seconds"],
            json!([0.002, 0.003])
        );
        assert_eq!(first["order_http_requests_total"], 1);
        assert_eq!(first["order_http_request_duration_seconds"], json!([0.012]));
        assert_eq!(first["status"], "201");
        assert_eq!(first["operation"], "insert_order");
        assert_eq!(
            first["_aws"]["CloudWatchMetrics"],
            json!([
                {
                    "Namespace": "Test",
                    "Dimensions": [["function", "operation"]],
                    "Metrics": [{ "Name": "order_db_query_duration_seconds", "Unit": "Seconds" }],
                },
                {
                    "Namespace": "Test",
                    "Dimensions": [["function", "endpoint", "method"], []],
                    "Metrics": [{ "Name": "order_http_request_duration_seconds", "Unit": "Seconds" }],
                },
                {
                    "Namespace": "Test",
                    "Dimensions": [["function", "endpoint", "method", "status"]],
                    "Metrics": [{ "Name": "order_http_requests_total", "Unit": "Count" }],
                },
            ])
        );
        assert_eq!(documents[1]["status"], "confirmed");
        assert_eq!(documents[1]["order_orders_total"], 1);
    }

    #[test]
    fn a_gauge_is_written_when_it_was_set_since_the_last_flush() {
        let recorder = Recorder::new("Test", "stock-levels");
        record(&recorder, || {
            metrics::gauge!("inventory_stock_levels", "product_id" => "7").set(12.0);
            metrics::gauge!("inventory_stock_levels", "product_id" => "8").set(3.0);
        });
        let documents = recorder.documents(5);
        let stock: Vec<_> = documents
            .iter()
            .map(|d| (d["product_id"].clone(), d["inventory_stock_levels"].clone()))
            .collect();
        assert_eq!(stock, [(json!("7"), json!(12.0)), (json!("8"), json!(3.0))]);
        assert_eq!(
            documents[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["function", "product_id"], []]),
            "a rollup for the lowest stock"
        );
        assert!(
            recorder.documents(6).is_empty(),
            "not set again: not written"
        );
    }

    #[test]
    fn a_histogram_of_more_than_a_hundred_samples_spans_documents() {
        let recorder = Recorder::new("Test", "notifications");
        record(&recorder, || {
            for i in 0..150 {
                metrics::histogram!("notification_message_processing_duration_seconds")
                    .record(f64::from(i));
            }
        });
        let documents = recorder.documents(5);
        let lengths: Vec<_> = documents
            .iter()
            .map(|d| {
                d["notification_message_processing_duration_seconds"]
                    .as_array()
                    .unwrap()
                    .len()
            })
            .collect();
        assert_eq!(lengths, [100, 50]);
    }

    #[test]
    fn dimension_values_are_printable_ascii_and_never_empty() {
        assert_eq!(dimension_value("/api/products/{id}"), "/api/products/{id}");
        assert_eq!(dimension_value("Café\n"), "Caf??");
        assert_eq!(dimension_value(" "), "none");
    }
}
