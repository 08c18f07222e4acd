//! No count lost when Lambda retires an environment. A function's real binary runs under a Lambda
//! Runtime API of our own (`stockroom_test_support::runtime_api`; `cargo lambda watch` forwards no
//! signal, and an instance killed under it stays in its pool), against the local stack's database,
//! broker and pushgateway. After one invocation it gets `SIGTERM`, as Lambda sends it to a process
//! with an extension registered, and must flush what it had not sent yet, within Lambda's 500 ms.

mod common;

use std::time::{Duration, Instant};

use serde_json::Value;
use stockroom_test_support::handler::{Event, SCHEDULED_EVENT, unique};
use stockroom_test_support::runtime_api::{Posted, Run};

/// Lambda's time between `SIGTERM` and `SIGKILL`.
const SHUTDOWN_BUDGET: Duration = Duration::from_millis(500);

fn var(name: &str) -> (String, String) {
    let value = std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run the tests with localstack/test"));
    (name.to_owned(), value)
}

/// Runs `function` on `event` with `env`, waits until the invocation is over (its background
/// work included), sends `SIGTERM`: its stdout and stderr, and when the signal was sent.
fn invoke_then_terminate(
    function: &str,
    event: String,
    env: &[(String, String)],
) -> (String, String, Duration) {
    let mut run = Run::start_captured(&common::binary(function), function, |_| event, env);
    match run.wait(Duration::from_secs(60)) {
        Some(Posted::Response(..)) => {}
        other => panic!("{function}: {other:?}"),
    }
    assert!(
        run.wait_until_idle(Duration::from_secs(30)),
        "{function} never asked for its next event"
    );
    assert!(
        run.extension_registered(),
        "{function} registered no extension: Lambda would send it no SIGTERM"
    );
    let sent_after = run.started.elapsed();
    let signalled = Instant::now();
    let (status, stdout, stderr) = run.terminate(Duration::from_secs(5));
    let took = signalled.elapsed();
    assert!(
        status.is_some_and(|s| s.success()),
        "{function}: {status:?}\n{stderr}"
    );
    assert!(
        took < SHUTDOWN_BUDGET,
        "{function} took {took:?} to exit after SIGTERM"
    );
    assert!(stderr.contains("SIGTERM received"), "{stderr}");
    (stdout, stderr, sent_after)
}

#[test]
fn the_pushgateway_gets_the_last_invocations_counts_at_sigterm() {
    let env = [var("PUSHGATEWAY_URL")];
    let (stdout, _, sent_after) =
        invoke_then_terminate("metrics-janitor", SCHEDULED_EVENT.to_owned(), &env);
    // Pushes are a second apart: SIGTERM within the first second of the environment comes
    // before the run's own push, so only the flush at shutdown can have sent its count.
    if sent_after >= Duration::from_secs(1) {
        eprintln!(
            "SIGTERM came {sent_after:?} after the start: the regular push may have gone first"
        );
    }
    let marker = "/metrics/job/stockroom/function/metrics-janitor/instance/";
    let at = stdout
        .find(marker)
        .unwrap_or_else(|| panic!("no group in the log: {stdout}"));
    let instance: String = stdout[at + marker.len()..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit() || *c == '-')
        .collect();
    let gateway = common::Client::from_var("PUSHGATEWAY_URL");
    let text = gateway.call("GET", "/metrics", None, &[]).text;
    let ran: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.starts_with("stockroom_scheduled_runs_total{")
                && l.contains(&format!("instance=\"{instance}\""))
        })
        .filter(|l| l.contains("outcome=\"ok\""))
        .collect();
    let group = format!("{marker}{instance}");
    gateway.call("DELETE", &group, None, &[]);
    assert_eq!(ran.len(), 1, "{instance}: {ran:?}");
    assert!(ran[0].ends_with(" 1"), "the run was counted: {}", ran[0]);
}

/// With EMF, an invocation's own line carries everything it counted (nothing is recorded after
/// its response since no request publishes), so `SIGTERM` must write nothing twice: counters are
/// written as what they counted since the last line, and the flush at shutdown must not repeat
/// them (CloudWatch would count the request twice).
#[test]
fn at_sigterm_the_emf_backend_writes_no_count_twice() {
    let env = [
        var("INVENTORY_DATABASE_URL"),
        ("METRICS_BACKEND".to_owned(), "cloudwatch".to_owned()),
        ("AWS_LAMBDA_LOG_FORMAT".to_owned(), "JSON".to_owned()),
    ];
    let body = format!(
        r#"{{"name":"{}","price":1.25,"stock":40}}"#,
        unique("shutdown")
    );
    let event = Event::new("POST", "/api/products", "/api/products")
        .json_body(&body)
        .event_json();
    let (stdout, _, _) = invoke_then_terminate("products-create", event, &env);
    let documents: Vec<Value> = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|doc| doc.get("_aws").is_some())
        .collect();
    let requests: Vec<&Value> = documents
        .iter()
        .filter(|d| d.get("inventory_http_requests_total").is_some())
        .collect();
    assert_eq!(
        requests.len(),
        1,
        "one line counts the request: {documents:#?}"
    );
    assert_eq!(
        (
            &requests[0]["inventory_http_requests_total"],
            &requests[0]["status"]
        ),
        (&Value::from(1), &Value::from("201")),
        "{documents:#?}"
    );
    let queries: usize = documents
        .iter()
        .filter_map(|d| d.get("inventory_db_query_duration_seconds"))
        .map(|samples| samples.as_array().map_or(1, Vec::len))
        .sum();
    assert_eq!(queries, 1, "the insert timed once: {documents:#?}");
}
