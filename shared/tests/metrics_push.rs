//! The push after an invocation against the real pushgateway: a push asked for while another is
//! in flight still goes out, so an environment's last values always reach Prometheus. (A cold
//! start's push was once in flight when the first run ended, and that run's outbox gauges were
//! never pushed: the dashboards test saw the panels empty whenever the machine was busy.)

use std::time::{Duration, Instant};

use stockroom::telemetry::{self, Pushgateway};
use stockroom_test_support::handler::unique;

#[tokio::test(flavor = "current_thread")]
async fn a_push_asked_for_while_one_is_in_flight_still_goes_out() {
    let gateway = Pushgateway::from_env()
        .unwrap()
        .expect("PUSHGATEWAY_URL: run the tests with localstack/test");
    let function = unique("push-test");
    // Spawns the cold start's push; one yield lets it render and start sending.
    telemetry::init(&function);
    tokio::task::yield_now().await;
    metrics::gauge!("stockroom_push_test_value").set(42.0);
    telemetry::flush();

    let label = format!("function=\"{function}\"");
    let deadline = Instant::now() + Duration::from_secs(10);
    let pushed = loop {
        let text = gateway.call("GET", "/metrics", "").await.unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with("stockroom_push_test_value{") && l.contains(&label))
            .map(str::to_owned);
        if line.is_some() || Instant::now() > deadline {
            break line;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let groups = gateway.groups("stockroom").await.unwrap();
    for (labels, _) in groups.iter().filter(|(labels, _)| {
        labels
            .iter()
            .any(|(k, v)| k == "function" && *v == function)
    }) {
        gateway.delete(labels).await.unwrap();
    }
    let pushed = pushed.expect("the value recorded after the first push started was pushed");
    assert!(pushed.ends_with(" 42"), "{pushed}");
}
