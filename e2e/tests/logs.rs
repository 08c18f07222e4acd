//! Logs as an operator reads them: one JSON line per request (Lambda's JSON log format, as in
//! template.yaml), with the request id and X-Ray trace id from the runtime's span, the function,
//! route template, status, latency and cold-start flag; never the request body.

mod common;

use std::time::{Duration, Instant};

use common::{call, unique};
use serde_json::Value;
use stockroom_test_support::watch_log::json_lines;

fn watch_log() -> String {
    std::env::var("STOCKROOM_WATCH_LOG").unwrap_or_else(|_| {
        panic!("STOCKROOM_WATCH_LOG is not set: run the tests with localstack/test")
    })
}

/// The JSON request lines of `function` written to the log after byte `from`.
fn request_lines(from: usize, function: &str) -> Vec<Value> {
    let log = std::fs::read(watch_log()).unwrap();
    json_lines(&String::from_utf8_lossy(&log[from.min(log.len())..]))
        .filter(|line| {
            line["fields"]["message"] == "request" && line["fields"]["function"] == function
        })
        .collect()
}

#[test]
fn each_request_logs_one_json_line_with_its_context_and_no_body() {
    let from = std::fs::metadata(watch_log()).unwrap().len() as usize;
    let secret = unique("do-not-log-me");
    let created = call(
        "POST",
        "/api/products",
        Some(&format!(r#"{{"name":"{secret}","price":1.00,"stock":3}}"#)),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.json()["id"].as_i64().unwrap();
    assert_eq!(
        call("GET", &format!("/api/products/{id}"), None).status,
        200
    );
    assert_eq!(call("GET", "/api/products/999999999999", None).status, 404);

    let deadline = Instant::now() + Duration::from_secs(10);
    let lines = loop {
        let lines = request_lines(from, "products-get");
        if lines.len() >= 2 || Instant::now() > deadline {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let statuses: Vec<_> = lines
        .iter()
        .map(|l| l["fields"]["status"].as_u64())
        .collect();
    assert_eq!(statuses, [Some(200), Some(404)], "{lines:#?}");
    for line in &lines {
        let fields = &line["fields"];
        assert_eq!(line["level"], "INFO");
        assert_eq!(fields["method"], "GET");
        assert_eq!(
            fields["route"], "/api/products/{id}",
            "a template, not the raw path"
        );
        assert!(
            fields["latency_ms"].as_f64().is_some_and(|ms| ms > 0.0),
            "{line}"
        );
        assert!(fields["cold_start"].is_boolean(), "{line}");
        let span = &line["span"];
        assert!(
            span["requestId"].as_str().is_some_and(|id| !id.is_empty()),
            "{line}"
        );
        assert!(
            span["xrayTraceId"]
                .as_str()
                .is_some_and(|id| id.starts_with("Root=")),
            "{line}"
        );
    }
    let request_ids: Vec<_> = lines.iter().map(|l| &l["span"]["requestId"]).collect();
    assert_ne!(request_ids[0], request_ids[1], "one request id per request");

    let created_lines = request_lines(from, "products-create");
    assert_eq!(created_lines.len(), 1, "{created_lines:#?}");
    assert_eq!(created_lines[0]["fields"]["status"], 201);
    // The notifications function logs each notification's text, which names the product: that
    // is its job. No other line may carry what the client sent.
    let log = std::fs::read(watch_log()).unwrap();
    let leaks: Vec<_> = String::from_utf8_lossy(&log[from..])
        .lines()
        .filter(|line| line.contains(&secret))
        .filter(|line| {
            json_lines(line)
                .next()
                .is_none_or(|l| l["fields"]["message"] != "notification")
        })
        .map(str::to_owned)
        .collect();
    assert!(
        leaks.is_empty(),
        "a request body reached the log: {leaks:#?}"
    );
}
