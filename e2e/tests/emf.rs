//! The CloudWatch backend after real traffic. localstack/test serves a third router
//! (`STOCKROOM_E2E_EMF_URL`) whose functions run with `METRICS_BACKEND=cloudwatch`, as a default
//! deploy does, and write their Embedded Metric Format lines to its log (`STOCKROOM_E2E_EMF_LOG`).
//! After requests of every kind and a run of each scheduled function: every line satisfies the
//! EMF specification, the values are what the traffic did, and every metric template.yaml's
//! dashboard and alarms read is among them with the same dimensions.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::template::{cloudwatch_metric_refs, document};
use common::{Client, unique};
use serde_json::{Value, json};
use stockroom_test_support::watch_log::json_lines;

fn api() -> Client {
    Client::from_var("STOCKROOM_E2E_EMF_URL")
}

fn log_path() -> String {
    std::env::var("STOCKROOM_E2E_EMF_LOG")
        .unwrap_or_else(|_| panic!("STOCKROOM_E2E_EMF_LOG is not set: run with localstack/test"))
}

fn call(method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let reply = api().call(method, path, body, &[]);
    let json = serde_json::from_str(&reply.text).unwrap_or(Value::Null);
    (reply.status, json)
}

/// CloudWatch's units (the `Unit` of a MetricDefinition).
const UNITS: &[&str] = &[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// Checks `doc` against the EMF specification
/// (docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html);
/// the reasons it does not satisfy it.
fn violations(doc: &Value) -> Vec<String> {
    let mut wrong = Vec::new();
    let root = doc.as_object().expect("a JSON object");
    let aws = &doc["_aws"];
    if !aws["Timestamp"].is_u64() {
        wrong.push("_aws.Timestamp is not a number of milliseconds".to_owned());
    }
    let Some(directives) = aws["CloudWatchMetrics"].as_array() else {
        wrong.push("_aws.CloudWatchMetrics is not an array".to_owned());
        return wrong;
    };
    for directive in directives {
        let namespace = directive["Namespace"].as_str().unwrap_or_default();
        if namespace.is_empty() || namespace.len() > 255 {
            wrong.push(format!("bad Namespace {:?}", directive["Namespace"]));
        }
        for set in directive["Dimensions"].as_array().into_iter().flatten() {
            let keys = set.as_array().cloned().unwrap_or_default();
            if keys.len() > 30 {
                wrong.push(format!("over 30 dimensions: {set}"));
            }
            for key in keys {
                let value = key
                    .as_str()
                    .and_then(|k| root.get(k))
                    .and_then(Value::as_str);
                let fine =
                    value.is_some_and(|v| !v.trim().is_empty() && v.len() <= 1024 && v.is_ascii());
                if !fine {
                    wrong.push(format!(
                        "dimension {key} is not a member with an ASCII string"
                    ));
                }
            }
        }
        if directive["Dimensions"].as_array().is_none() {
            wrong.push("Dimensions is not an array".to_owned());
        }
        let metrics = directive["Metrics"].as_array().cloned().unwrap_or_default();
        if metrics.is_empty() || metrics.len() > 100 {
            wrong.push(format!("{} metric definitions", metrics.len()));
        }
        for metric in metrics {
            let name = metric["Name"].as_str().unwrap_or_default();
            if name.is_empty() || name.len() > 1024 {
                wrong.push(format!("bad Name {:?}", metric["Name"]));
            }
            if let Some(unit) = metric.get("Unit")
                && !unit.as_str().is_some_and(|u| UNITS.contains(&u))
            {
                wrong.push(format!("{name}: unknown unit {unit}"));
            }
            let fine = match root.get(name) {
                Some(Value::Number(_)) => true,
                Some(Value::Array(values)) => {
                    !values.is_empty() && values.len() <= 100 && values.iter().all(Value::is_number)
                }
                _ => false,
            };
            if !fine {
                wrong.push(format!("{name} is not a number or an array of up to 100"));
            }
        }
    }
    wrong
}

/// The EMF documents written to the log after byte `from`.
fn documents(from: usize) -> Vec<Value> {
    let log = std::fs::read(log_path()).unwrap();
    json_lines(&String::from_utf8_lossy(&log[from.min(log.len())..]))
        .filter(|doc| doc.get("_aws").is_some())
        .collect()
}

/// The sum of what `documents` say of `name` where their dimensions include `labels`: the
/// values' sum for counters, the number of samples for histograms.
fn total(documents: &[Value], name: &str, labels: &[(&str, &str)]) -> f64 {
    documents
        .iter()
        .filter(|d| labels.iter().all(|(k, v)| d[*k] == *v))
        .map(|d| match &d[name] {
            Value::Number(n) => n.as_f64().unwrap(),
            Value::Array(values) => values.len() as f64,
            _ => 0.0,
        })
        .sum()
}

/// Every metric the documents make, as CloudWatch counts them: each name with each dimension set
/// and the values the document gives those dimensions.
fn extracted(documents: &[Value]) -> BTreeSet<(String, Vec<(String, String)>)> {
    let mut metrics = BTreeSet::new();
    for doc in documents {
        for directive in doc["_aws"]["CloudWatchMetrics"].as_array().unwrap() {
            for set in directive["Dimensions"].as_array().unwrap() {
                let dimensions: Vec<(String, String)> = set
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|k| k.as_str().unwrap())
                    .map(|k| (k.to_owned(), doc[k].as_str().unwrap().to_owned()))
                    .collect();
                for metric in directive["Metrics"].as_array().unwrap() {
                    let name = metric["Name"].as_str().unwrap().to_owned();
                    metrics.insert((name, dimensions.clone()));
                }
            }
        }
    }
    metrics
}

/// Every `(metric, dimension keys)` the documents declare.
fn declared(documents: &[Value]) -> BTreeSet<(String, BTreeSet<String>)> {
    extracted(documents)
        .into_iter()
        .map(|(name, dimensions)| (name, dimensions.into_iter().map(|(k, _)| k).collect()))
        .collect()
}

/// A day of the shop through the EMF router: returns the products created and their stock.
fn drive_traffic() -> (i64, i64) {
    let product = |stock: i32| {
        let body = format!(
            r#"{{"name":"{}","price":2.50,"stock":{stock}}}"#,
            unique("emf")
        );
        let (status, product) = call("POST", "/api/products", Some(&body));
        assert_eq!(status, 201, "{product}");
        product["id"].as_i64().unwrap()
    };
    let (plenty, scarce) = (product(100), product(11));
    for _ in 0..3 {
        assert_eq!(call("GET", &format!("/api/products/{plenty}"), None).0, 200);
    }
    assert_eq!(call("GET", "/api/products/999999999999", None).0, 404);
    let order = |product: i64, quantity: i32| {
        let body = format!(r#"{{"product_id":{product},"quantity":{quantity}}}"#);
        call("POST", "/api/orders", Some(&body))
    };
    let (status, placed) = order(plenty, 1);
    assert_eq!(status, 201, "{placed}");
    assert_eq!(order(scarce, 2).0, 201, "9 left: below the threshold");
    assert_eq!(order(scarce, 50).0, 409, "refused: not enough stock");
    let cancel = format!("/api/orders/{}/cancel", placed["id"]);
    assert_eq!(call("POST", &cancel, Some("{}")).0, 200);
    assert_eq!(call("GET", "/api/nothing-here", None).0, 404);
    assert_eq!(call("GET", "/api/notifications?limit=5", None).0, 200);
    let invoke = |function: &str, event: &str| {
        let path = format!("/2015-03-31/functions/{function}/invocations");
        let (status, answer) = call("POST", &path, Some(event));
        assert_eq!(status, 200, "{function}: {answer}");
        assert!(answer.get("errorType").is_none(), "{function}: {answer}");
    };
    for function in [
        "stock-levels",
        "events-relay",
        "notifications-forwarder",
        "orders-reconciler",
    ] {
        invoke(function, stockroom_test_support::handler::SCHEDULED_EVENT);
    }
    let created = json!({"event_id": fresh_uuid(), "event_type": "product_created", "version": 1,
        "timestamp": 1795582948, "occurred_at": "2026-11-25T05:02:28.962174Z",
        "product_id": plenty, "name": "emf", "stock": 100, "price": 2.50});
    let batch = stockroom_test_support::handler::kafka_event(
        "inventory-events",
        &[created.to_string().into_bytes()],
    );
    invoke(
        "notifications",
        &serde_json::to_string(&batch.payload).unwrap(),
    );
    (plenty, scarce)
}

/// A random UUID v4, from the kernel.
fn fresh_uuid() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .unwrap()
        .trim()
        .to_owned()
}

#[test]
fn the_cloudwatch_backend_writes_valid_emf_with_the_traffics_values_and_what_the_template_reads() {
    let from = std::fs::metadata(log_path()).unwrap().len() as usize;
    let (_, scarce) = drive_traffic();
    // The lines are written before each response; the watch's log gets them later, after its
    // own buffering (a request's line was seen to arrive after the scheduled runs' lines): wait
    // for the last of what the traffic counted, not only for the runs.
    let deadline = Instant::now() + Duration::from_secs(20);
    // Wait for every function's share of the traffic, counted by its own request counter.
    let arrived = |docs: &[Value]| {
        let requests_of = |function: &str| -> f64 {
            let counted = |d: &Value| -> f64 {
                let members = d.as_object().into_iter().flatten();
                members
                    .filter(|(name, _)| name.ends_with("_http_requests_total"))
                    .filter_map(|(_, value)| value.as_f64())
                    .sum()
            };
            let mine = docs.iter().filter(|d| d["function"] == function);
            mine.map(counted).sum()
        };
        let requests = [
            ("products-create", 2),
            ("products-get", 4),
            ("orders-create", 3),
            ("orders-cancel", 1),
            ("not-found", 1),
        ];
        requests
            .iter()
            .all(|(function, n)| requests_of(function) >= f64::from(*n))
            && total(docs, "stockroom_scheduled_runs_total", &[]) >= 5.0
    };
    let docs = loop {
        let docs = documents(from);
        if arrived(&docs) || Instant::now() > deadline {
            break docs;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(!docs.is_empty(), "no EMF line in {}", log_path());

    let wrong: BTreeMap<String, Vec<String>> = docs
        .iter()
        .map(|d| (d.to_string(), violations(d)))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    assert!(
        wrong.is_empty(),
        "lines that break the EMF specification: {wrong:#?}"
    );

    let get = [
        ("function", "products-get"),
        ("endpoint", "/api/products/{id}"),
        ("method", "GET"),
    ];
    let requests = |labels: &[(&str, &str)], status: &str| {
        let mut labels = labels.to_vec();
        labels.push(("status", status));
        total(&docs, "inventory_http_requests_total", &labels)
    };
    assert_eq!(requests(&get, "200"), 3.0);
    assert_eq!(requests(&get, "404"), 1.0);
    let create = [("function", "products-create"), ("method", "POST")];
    assert_eq!(requests(&create, "201"), 2.0);
    assert_eq!(
        total(&docs, "inventory_http_request_duration_seconds", &get),
        4.0,
        "one latency sample per request"
    );
    // By the functions the requests reached: the reconciler's run may settle orders other tests
    // left, and counts those under its own name.
    let orders = |function: &str, status: &str| {
        let labels = [("function", function), ("status", status)];
        total(&docs, "order_orders_total", &labels)
    };
    assert_eq!(
        (
            orders("orders-create", "confirmed"),
            orders("orders-create", "rejected"),
            orders("orders-cancel", "cancelled")
        ),
        (2.0, 1.0, 1.0)
    );
    let gateway = [("function", "not-found"), ("status", "404")];
    assert_eq!(total(&docs, "gateway_http_requests_total", &gateway), 1.0);
    let scarce = scarce.to_string();
    let levels: Vec<&Value> = docs
        .iter()
        .filter(|d| d["product_id"] == scarce.as_str())
        .map(|d| &d["inventory_stock_levels"])
        .collect();
    assert_eq!(
        levels,
        [&json!(9.0)],
        "the stock after the order of 2 of 11"
    );
    for function in [
        "stock-levels",
        "events-relay",
        "notifications-forwarder",
        "orders-reconciler",
        "notifications",
    ] {
        let ran = [("function", function), ("outcome", "ok")];
        assert_eq!(
            total(&docs, "stockroom_scheduled_runs_total", &ran),
            1.0,
            "{function}"
        );
    }
    let sent = [("event_type", "product_created")];
    assert_eq!(
        total(&docs, "notification_notifications_sent_total", &sent),
        1.0
    );

    // Each name with one set of dimension values is one CloudWatch metric, billed by the month.
    eprintln!(
        "{} EMF lines, {} CloudWatch metrics",
        docs.len(),
        extracted(&docs).len()
    );

    // What the dashboard and the alarms read is written, with the same dimensions. Two are
    // written only when something goes wrong (a dead letter, a failed run): their dimension
    // keys are checked against what the code writes, template_metrics.rs checks their names.
    let declared = declared(&docs);
    let only_on_failure = ["stockroom_dead_letters_total"];
    let missing: Vec<String> = cloudwatch_metric_refs(&document())
        .into_iter()
        .filter(|r| !only_on_failure.contains(&r.name.as_str()))
        .filter(|r| !declared.contains(&(r.name.clone(), r.dimensions.clone())))
        .map(|r| format!("{}: {} by {:?}", r.place, r.name, r.dimensions))
        .collect();
    assert!(
        missing.is_empty(),
        "read by template.yaml but not written after real traffic:\n{}\nwritten: {declared:#?}",
        missing.join("\n")
    );
}
