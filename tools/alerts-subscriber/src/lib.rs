//! The local stack's subscriber of the alerts queue: in production something reads
//! `low_stock_alert` and `order_created` messages off the queue (a pager, a fulfilment system);
//! locally this does, so the queue does not grow without bound and slow the SQS endpoint down
//! (moto's requests get slower with the queue's size). It receives up to ten at a time with a long
//! poll, prints one line per message as an operator would read it, and deletes what it printed.

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;

/// One message (an event, as the notifications function forwards it) as a log line: its type,
/// the message the notifications service renders for it, and its id.
pub fn line(body: &str) -> String {
    match stockroom::notifications::parse(body.as_bytes()) {
        Ok(n) => format!(
            "{}: {} (event {})",
            n.event_type.as_str(),
            n.message,
            n.event_id
        ),
        Err(reason) => format!("unrecognised message ({reason}): {body}"),
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
        let id = "0b7e3a52-3f1c-4a53-9a57-1d5c2f6f0a11";
        let body = format!(
            r#"{{"event_id":"{id}","event_type":"low_stock_alert","product_id":3,"name":"Pen","stock":9,"threshold":10}}"#
        );
        let line = line(&body);
        assert!(line.starts_with("low_stock_alert: "), "{line}");
        assert!(line.contains("Pen") && line.contains('9'), "{line}");
        assert!(line.ends_with(&format!("(event {id})")), "{line}");
        assert!(super::line("not json").starts_with("unrecognised message ("));
    }
}
