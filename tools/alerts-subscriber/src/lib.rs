//! The local stack's subscriber of the alerts queue: in production something reads
//! `low_stock_alert` and `order_created` messages off the queue (a pager, a fulfilment system);
//! locally this does, so the queue does not grow without bound and slow the SQS endpoint down
//! (moto's requests get slower with the queue's size). It receives up to ten at a time with a long
//! poll, prints one line per message as an operator would read it, and deletes what it printed.

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
use serde_json::Value;

/// One message as a log line: its type and message, or the body as it came.
pub fn line(body: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|v| v[name].as_str().map(str::to_owned))
    };
    match (field("event_type"), field("message")) {
        (Some(kind), Some(message)) => {
            let id = field("event_id").unwrap_or_default();
            format!("{kind}: {message} (event {id})")
        }
        _ => format!("unrecognised message: {body}"),
    }
}

/// Receives one batch (waiting up to `wait_seconds` for it), and deletes it once its lines are
/// returned; an empty batch is an empty list.
pub async fn receive_once(
    client: &Client,
    queue_url: &str,
    wait_seconds: i32,
) -> Result<Vec<String>, String> {
    let received = client
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .wait_time_seconds(wait_seconds)
        .send()
        .await
        .map_err(|e| format!("receiving: {}", aws_sdk_sqs::error::DisplayErrorContext(&e)))?;
    let messages = received.messages();
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    let lines = messages
        .iter()
        .map(|m| line(m.body().unwrap_or_default()))
        .collect();
    let entries = messages
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(m.receipt_handle()?)
                .build()
                .ok()
        })
        .collect();
    client
        .delete_message_batch()
        .queue_url(queue_url)
        .set_entries(Some(entries))
        .send()
        .await
        .map_err(|e| format!("deleting: {}", aws_sdk_sqs::error::DisplayErrorContext(&e)))?;
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_what_an_operator_reads() {
        let body = r#"{"event_id":"e1","event_type":"low_stock_alert","message":"Low stock: Pen (id 3), stock 9 (threshold 10)"}"#;
        assert_eq!(
            line(body),
            "low_stock_alert: Low stock: Pen (id 3), stock 9 (threshold 10) (event e1)"
        );
        assert_eq!(line("not json"), "unrecognised message: not json");
    }
}
