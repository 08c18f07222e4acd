//! Alerting end to end, through the real monitoring stack of `localstack/monitoring.sh`: a metric
//! pushed to the pushgateway is scraped by Prometheus (with the pushed labels kept), makes one of
//! the repository's own rules (`monitoring/rules/stockroom.rules.yml`) fire, and Alertmanager
//! delivers the alert to a webhook, which this test serves itself.
//!
//! Needs `PUSHGATEWAY_URL`, `PROMETHEUS_URL`, `ALERTMANAGER_URL` and `STOCKROOM_ALERT_WEBHOOK_PORT`
//! (the port of Alertmanager's webhook URL), which `start_monitoring` exports.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use stockroom_test_support::http::Client;

/// The alert that any increase of `stockroom_dead_letters_total` fires, with no `for`.
const ALERT: &str = "StockroomDeadLetters";

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run the tests with localstack/test, or start the monitoring stack \
             (localstack/monitoring.sh: start_monitoring) and export PUSHGATEWAY_URL, PROMETHEUS_URL, \
             ALERTMANAGER_URL and STOCKROOM_ALERT_WEBHOOK_PORT"
        )
    })
}

/// A client of the monitoring stack's part at `url`.
fn client(url: &str) -> Client {
    Client::new(url).timeout(Duration::from_secs(10))
}

/// One pushgateway group, as a function's execution environment pushes it; deleted when dropped,
/// as the janitor deletes the groups of environments that are gone.
struct Group {
    pushgateway: Client,
    path: String,
}

impl Group {
    fn new(pushgateway: &str, function: &str, instance: &str) -> Group {
        Group {
            pushgateway: client(pushgateway),
            path: format!("/metrics/job/stockroom/function/{function}/instance/{instance}"),
        }
    }

    /// Replaces the group's metrics (PUT), as each push of an environment does.
    fn push(&self, exposition: &str) {
        let content_type = ("content-type", "text/plain; version=0.0.4");
        let reply = self
            .pushgateway
            .call("PUT", &self.path, Some(exposition), &[content_type]);
        assert!(
            reply.status == 200 || reply.status == 202,
            "the pushgateway refused the push ({}): {}",
            reply.status,
            reply.text
        );
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if let Err(e) = self.pushgateway.try_call("DELETE", &self.path, None, &[]) {
            eprintln!("could not delete the pushed group: {e}");
        }
    }
}

/// Serves Alertmanager's webhook: every POST body, parsed as JSON, is sent to the receiver.
fn serve_webhook(listener: TcpListener) -> Receiver<Result<Value, String>> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let received = match stream {
                Ok(stream) => read_post(stream),
                Err(e) => Err(format!("accept: {e}")),
            };
            if sender.send(received).is_err() {
                return;
            }
        }
    });
    receiver
}

/// Reads one HTTP request (Alertmanager sends a Content-Length) and answers 200.
fn read_post(mut stream: TcpStream) -> Result<Value, String> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
    let mut request_line = String::new();
    reader
        .read_line(&mut request_line)
        .map_err(|e| format!("reading the request line: {e}"))?;
    let mut length = None;
    loop {
        let mut line = String::new();
        reader
            .read_line(&mut line)
            .map_err(|e| format!("reading the headers: {e}"))?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse::<usize>().ok();
            }
        }
    }
    let Some(length) = length else {
        let _ = stream.write_all(
            b"HTTP/1.1 411 Length Required\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        );
        return Err(format!(
            "{} without a Content-Length",
            request_line.trim_end()
        ));
    };
    let mut body = vec![0; length];
    reader
        .read_exact(&mut body)
        .map_err(|e| format!("reading the body: {e}"))?;
    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    if !request_line.starts_with("POST ") {
        return Err(format!("expected a POST, got {}", request_line.trim_end()));
    }
    serde_json::from_slice(&body).map_err(|e| {
        format!(
            "webhook body is not JSON ({e}): {}",
            String::from_utf8_lossy(&body)
        )
    })
}

/// Polls `probe` every 250 ms until it returns Some, at most `limit`.
fn wait_for<T>(limit: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(found) = probe() {
            return Some(found);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn a_dead_letter_pushed_to_the_pushgateway_reaches_the_alert_webhook() {
    let started = Instant::now();
    let pushgateway = env("PUSHGATEWAY_URL");
    let prometheus = env("PROMETHEUS_URL");
    let alertmanager = env("ALERTMANAGER_URL");
    let port: u16 = env("STOCKROOM_ALERT_WEBHOOK_PORT")
        .parse()
        .expect("STOCKROOM_ALERT_WEBHOOK_PORT is not a port number");
    // Listen before anything can fire, so that no delivery is missed.
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap_or_else(|e| {
        panic!("cannot listen on the alert webhook port 127.0.0.1:{port} ({e}): is another run of this test going?")
    });
    let deliveries = serve_webhook(listener);

    // The stack is up, and Prometheus evaluates the repository's rule (not some other copy of it).
    let ready = client(&alertmanager)
        .try_call("GET", "/-/ready", None, &[])
        .unwrap_or_else(|e| panic!("Alertmanager at {alertmanager}: {e}"));
    assert_eq!(ready.status, 200, "Alertmanager is not ready");
    let prometheus_api = client(&prometheus);
    let rules = prometheus_api.get_json("/api/v1/rules", &[("type", "alert")]);
    let rule = rules["data"]["groups"]
        .as_array()
        .expect("rule groups")
        .iter()
        .flat_map(|group| group["rules"].as_array().cloned().unwrap_or_default())
        .find(|rule| rule["name"] == ALERT)
        .unwrap_or_else(|| panic!("Prometheus at {prometheus} has no rule {ALERT}: {rules}"));
    let repository: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../monitoring/rules/stockroom.rules.yml"
        ))
        .expect("monitoring/rules/stockroom.rules.yml"),
    )
    .expect("monitoring/rules/stockroom.rules.yml is not YAML");
    let repository_rule = repository["groups"]
        .as_sequence()
        .expect("groups")
        .iter()
        .flat_map(|group| group["rules"].as_sequence().cloned().unwrap_or_default())
        .find(|rule| rule["alert"].as_str() == Some(ALERT))
        .unwrap_or_else(|| panic!("monitoring/rules/stockroom.rules.yml has no alert {ALERT}"));
    for field in ["summary", "description"] {
        assert_eq!(
            rule["annotations"][field].as_str(),
            repository_rule["annotations"][field].as_str(),
            "Prometheus's {ALERT} is not the repository's ({field} differs): reload it"
        );
    }

    // A function of its own (the alert is per function, so an earlier run's alert, still firing
    // for up to 5 minutes, cannot stand in for this one) and an environment of its own.
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let function = format!("e2e-alerting-{}-{nanos}", std::process::id());
    let instance = format!("env-{nanos}");
    let group = Group::new(&pushgateway, &function, &instance);
    let exposition = |dead_letters: u32| {
        format!(
            "# TYPE stockroom_dead_letters_total counter\nstockroom_dead_letters_total {dead_letters}\n"
        )
    };

    // First push of the environment, no dead letter yet: Prometheus sees the series with the
    // grouping key's labels (honor_labels), and nothing fires.
    group.push(&exposition(0));
    let selector = format!(r#"stockroom_dead_letters_total{{function="{function}"}}"#);
    let series = wait_for(Duration::from_secs(20), || {
        let answer = prometheus_api.get_json("/api/v1/query", &[("query", &selector)]);
        assert_eq!(answer["status"], "success", "{selector}: {answer}");
        answer["data"]["result"]
            .as_array()
            .and_then(|result| result.first().cloned())
    })
    .unwrap_or_else(|| {
        panic!("the pushed series {selector} did not show up in Prometheus within 20 s")
    });
    assert_eq!(
        series["metric"]["job"], "stockroom",
        "the pushed job label was not kept (honor_labels): {series}"
    );
    assert_eq!(
        series["metric"]["instance"],
        instance.as_str(),
        "the pushed instance label was not kept (honor_labels): {series}"
    );
    assert_eq!(series["value"][1], "0", "{series}");

    // The environment sends a record to the dead-letter queue and pushes again.
    group.push(&exposition(1));
    let limit = Duration::from_secs(40);
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    let delivered = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let payload = match deliveries.recv_timeout(left) {
            Ok(Ok(payload)) => payload,
            Ok(Err(e)) => panic!("Alertmanager's webhook call was not understood: {e}"),
            Err(RecvTimeoutError::Timeout) => break None,
            Err(RecvTimeoutError::Disconnected) => panic!("the webhook listener stopped"),
        };
        let ours = payload["alerts"].as_array().and_then(|alerts| {
            alerts
                .iter()
                .find(|alert| {
                    alert["labels"]["alertname"] == ALERT
                        && alert["labels"]["function"] == function.as_str()
                })
                .cloned()
        });
        match ours {
            Some(alert) => break Some((payload, alert)),
            None => seen.push(
                payload["alerts"]
                    .as_array()
                    .map(|alerts| {
                        alerts
                            .iter()
                            .map(|a| {
                                format!("{}{}", a["labels"]["alertname"], a["labels"]["function"])
                            })
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default(),
            ),
        }
    };
    let (payload, alert) = delivered.unwrap_or_else(|| {
        panic!(
            "no {ALERT} alert for function {function} reached the webhook on port {port} within {} s \
             (other deliveries: {seen:?}); see {prometheus}/alerts and {alertmanager}",
            limit.as_secs()
        )
    });
    assert_eq!(alert["status"], "firing", "{alert}");
    assert_eq!(alert["labels"]["severity"], "warning", "{alert}");
    assert_eq!(
        alert["annotations"]["summary"],
        format!("{function} sent records to the dead-letter queue").as_str(),
        "{alert}"
    );
    assert_eq!(
        payload["version"], "4",
        "not an Alertmanager webhook payload: {payload}"
    );
    assert_eq!(payload["receiver"], "webhook", "{payload}");
    drop(group);
    eprintln!(
        "{ALERT} for {function} reached the webhook {:.1} s after the test started",
        started.elapsed().as_secs_f64()
    );
}
