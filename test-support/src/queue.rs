//! What reached an SQS queue.

use serde_json::Value;

/// Receives and deletes every message on the queue at `url`; their bodies as JSON (`null` for a
/// body that is not JSON).
pub async fn drain(client: &aws_sdk_sqs::Client, url: &str) -> Vec<Value> {
    let mut bodies = Vec::new();
    loop {
        let received = client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap_or_else(|e| panic!("receiving from {url}: {e}"));
        if received.messages().is_empty() {
            return bodies;
        }
        for m in received.messages() {
            bodies.push(serde_json::from_str(m.body().unwrap_or_default()).unwrap_or(Value::Null));
            client
                .delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .unwrap();
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
