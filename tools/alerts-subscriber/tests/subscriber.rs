//! The subscriber against the test stack's real SQS endpoint (moto): what it prints is what was
//! on the queue, and it leaves the queue empty.

use stockroom_alerts_subscriber::receive_once;

#[tokio::test]
async fn it_prints_every_alert_once_and_empties_the_queue() {
    let client = aws_sdk_sqs::Client::new(&stockroom_sqs::sdk_config().await);
    let (queue, _) = stockroom_test_support::queue::fresh_pair(&client).await;
    let ids: Vec<String> = (0..13)
        .map(|i| format!("{i:08}-0000-4000-8000-000000000000"))
        .collect();
    let bodies: Vec<String> = ids
        .iter()
        .map(|id| {
            format!(
                r#"{{"event_id":"{id}","event_type":"low_stock_alert","product_id":3,"name":"Pen","stock":9,"threshold":10}}"#
            )
        })
        .collect();
    for body in &bodies {
        client
            .send_message()
            .queue_url(&queue)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
    let mut printed = Vec::new();
    loop {
        let lines = receive_once(&client, &queue, 1).await.unwrap();
        if lines.is_empty() {
            break;
        }
        assert!(lines.len() <= 10, "one receive takes at most ten");
        printed.extend(lines);
    }
    // Each message printed once, as its own event.
    let mut seen: Vec<&str> = printed
        .iter()
        .map(|line| {
            assert!(line.starts_with("low_stock_alert: "), "{line}");
            let id = line.rsplit("(event ").next().unwrap();
            id.trim_end_matches(')')
        })
        .collect();
    seen.sort();
    assert_eq!(seen, ids);
    let left = client
        .get_queue_attributes()
        .queue_url(&queue)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap();
    let count = left
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages))
        .cloned();
    assert_eq!(count.as_deref(), Some("0"), "deleted what it printed");
}
