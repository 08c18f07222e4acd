//! A letter the local trigger wrote for a valid event (its batch failed every retry while the
//! database was down) is re-driven: the event reaches the topic again, the running trigger and
//! notifications function record it, and the letter leaves the queue.

use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::json;

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run localstack/test"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_lettered_event_is_recorded_after_a_redrive() {
    let sqs = aws_sdk_sqs::Client::new(&stockroom_sqs::sdk_config().await);
    let queue = sqs
        .create_queue()
        .queue_name(format!("redrive-{}", uuid::Uuid::new_v4()))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    let event_id = uuid::Uuid::new_v4();
    let event = json!({"event_id": event_id, "event_type": "product_updated", "version": 1,
        "timestamp": 1795582948, "occurred_at": "2026-11-25T05:02:28.962174Z",
        "product_id": 424242, "name": "Redriven", "stock": 12, "price": 1.00});
    let letter = json!({"reason": "invocation failed: status 500", "topic": "inventory-events",
        "partition": 0, "offset": 7, "key": BASE64.encode("424242"),
        "value": BASE64.encode(event.to_string())});
    sqs.send_message()
        .queue_url(&queue)
        .message_body(letter.to_string())
        .send()
        .await
        .unwrap();
    sqs.send_message()
        .queue_url(&queue)
        .message_body(r#"{"requestContext":{"condition":"RetryAttemptsExhausted"}}"#)
        .send()
        .await
        .unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_stockroom-redrive"))
        .arg(&queue)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("re-driven 1, left in the queue 1"),
        "{stdout}"
    );

    let (client, connection) =
        tokio_postgres::connect(&var("NOTIFICATION_DATABASE_URL"), tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(connection);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rows = client
            .query(
                "SELECT message FROM notifications WHERE event_id = $1",
                &[&event_id],
            )
            .await
            .unwrap();
        if let Some(row) = rows.first() {
            assert_eq!(
                row.get::<_, String>(0),
                "Product updated: Redriven (id 424242), stock 12"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the re-driven event was not recorded"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
