//! The metrics janitor against the real pushgateway: it deletes the groups of its job that have not
//! been pushed for longer than the idle time, keeps the fresh ones, and never touches another job.

use std::time::Duration;

use stockroom::handlers::janitor::{Swept, sweep};
use stockroom::telemetry::Pushgateway;

fn group(job: &str, function: &str) -> Vec<(String, String)> {
    [("job", job), ("function", function), ("instance", "1")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn push(gateway: &Pushgateway, labels: &[(String, String)]) {
    let path: String = labels.iter().map(|(k, v)| format!("/{k}/{v}")).collect();
    gateway
        .call("PUT", &format!("/metrics{path}"), "janitor_test_total 1\n")
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_groups_of_its_job_go_and_everything_else_stays() {
    let gateway = Pushgateway::from_env()
        .unwrap()
        .expect("PUSHGATEWAY_URL: run the tests with localstack/test");
    let job = format!("janitor-test-{}", uuid::Uuid::new_v4().simple());
    let other_job = format!("{job}-stock");
    let (gone, fresh, other) = (
        group(&job, "gone"),
        group(&job, "fresh"),
        group(&other_job, "gone"),
    );
    push(&gateway, &gone).await;
    push(&gateway, &other).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    push(&gateway, &fresh).await;

    let swept = sweep(&gateway, &job, Duration::from_secs(2)).await.unwrap();
    assert_eq!(
        swept,
        Swept {
            kept: 1,
            deleted: 1,
            metrics_off: false,
        }
    );
    let left: Vec<_> = gateway.groups(&job).await.unwrap();
    assert_eq!(left.len(), 1);
    assert!(
        left[0].0.contains(&("function".into(), "fresh".into())),
        "{left:?}"
    );
    assert_eq!(
        gateway.groups(&other_job).await.unwrap().len(),
        1,
        "another job untouched"
    );

    gateway.delete(&fresh).await.unwrap();
    gateway.delete(&other).await.unwrap();
    assert!(gateway.groups(&job).await.unwrap().is_empty());
}

/// The template's default leaves `PUSHGATEWAY_URL` empty: a scheduled run then succeeds at once
/// (it failed init on every run before).
#[tokio::test]
async fn with_metrics_off_a_run_sweeps_nothing_and_succeeds() {
    let swept =
        stockroom::handlers::janitor::run(None, stockroom_test_support::handler::scheduled_event())
            .await
            .unwrap();
    assert_eq!(
        swept,
        Swept {
            metrics_off: true,
            ..Swept::default()
        }
    );
}
