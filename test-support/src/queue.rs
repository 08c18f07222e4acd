//! What reached an SQS queue.

use std::time::{Duration, Instant};

use serde_json::Value;

/// How long a reader keeps asking an endpoint that answers slowly. An endpoint just thawed from a
/// freeze answers the requests it queued first, so one receive can outlast the client's timeout;
/// the reader's patience is not what a test checks.
const PATIENCE: Duration = Duration::from_secs(60);

/// Receives and deletes every message on the queue at `url`; their bodies as JSON (`null` for a
/// body that is not JSON).
pub async fn drain(client: &aws_sdk_sqs::Client, url: &str) -> Vec<Value> {
    let mut bodies = Vec::new();
    let mut failing_since: Option<Instant> = None;
    loop {
        let received = match client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
        {
            Ok(received) => received,
            Err(e) => {
                let since = *failing_since.get_or_insert_with(Instant::now);
                assert!(since.elapsed() < PATIENCE, "receiving from {url}: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        failing_since = None;
        if received.messages().is_empty() {
            return bodies;
        }
        for m in received.messages() {
            bodies.push(serde_json::from_str(m.body().unwrap_or_default()).unwrap_or(Value::Null));
            let started = Instant::now();
            while let Err(e) = client
                .delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
            {
                // Deleting twice with one receipt handle is harmless, so a timed-out delete is
                // simply sent again.
                assert!(started.elapsed() < PATIENCE, "deleting from {url}: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// Two new queues of one test alone (an alerts queue and a dead-letter queue, in that order), so
/// what arrives in them can be counted; their URLs.
pub async fn fresh_pair(client: &aws_sdk_sqs::Client) -> (String, String) {
    let mut urls = Vec::new();
    for kind in ["alerts", "dead"] {
        let created = client
            .create_queue()
            .queue_name(crate::handler::unique(kind))
            .send()
            .await
            .expect("an SQS endpoint (run the tests with localstack/test)");
        urls.push(created.queue_url().unwrap_or_default().to_owned());
    }
    (urls.remove(0), urls.remove(0))
}
