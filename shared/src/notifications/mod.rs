//! Notifications: what the notifications function makes of each event it consumes.
//!
//! An event is validated strictly (a consumer must not guess): anything unusable is refused with a
//! reason, which goes to the dead-letter queue, and never stops the rest of the batch.

pub mod store;

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use uuid::Uuid;

use crate::events::{Event, EventKind};

pub use crate::events::EventType;

impl EventType {
    /// Whether downstream senders (email, purchasing) get it through the alerts queue.
    pub fn forwarded(self) -> bool {
        matches!(self, Self::LowStockAlert | Self::OrderCreated)
    }
}

/// A validated event, ready to record.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub event_id: Uuid,
    pub event_type: EventType,
    pub message: String,
    pub product_id: Option<i64>,
    pub order_id: Option<i64>,
    /// The event as received.
    pub event: String,
}

/// Validates one event (the record's value, [`Event::parse`]) and renders its message; `Err`
/// carries the reason.
pub fn parse(value: &[u8]) -> Result<Notification, String> {
    let event = Event::parse(value)?;
    let (product_id, order_id, message) = match &event.kind {
        EventKind::ProductCreated(p)
        | EventKind::ProductUpdated(p)
        | EventKind::ProductDeleted(p) => {
            let verb = match event.kind.event_type() {
                EventType::ProductCreated => "created",
                EventType::ProductUpdated => "updated",
                _ => "deleted",
            };
            let (id, name, stock) = (p.product_id, &p.name, p.stock);
            (
                Some(id),
                None,
                format!("Product {verb}: {name} (id {id}), stock {stock}"),
            )
        }
        EventKind::LowStockAlert(l) => {
            let threshold = l
                .threshold
                .map(|t| format!(" (threshold {t})"))
                .unwrap_or_default();
            let (id, name, stock) = (l.product_id, &l.name, l.stock);
            (
                Some(id),
                None,
                format!("Low stock: {name} (id {id}) has {stock} left{threshold}"),
            )
        }
        EventKind::OrderCreated(o) => {
            let total = o
                .total_price
                .map_or_else(|| "?".to_owned(), |t| t.to_string());
            let message = format!(
                "Order {} created: {} x product {}, total {total}",
                o.order_id, o.quantity, o.product_id
            );
            (Some(o.product_id), Some(o.order_id), message)
        }
        EventKind::OrderCancelled(o) => {
            let message = format!(
                "Order {} cancelled: {} x product {} back in stock",
                o.order_id, o.quantity, o.product_id
            );
            (Some(o.product_id), Some(o.order_id), message)
        }
    };
    Ok(Notification {
        event_id: event.event_id,
        event_type: event.kind.event_type(),
        message,
        product_id,
        order_id,
        event: String::from_utf8_lossy(value).into_owned(),
    })
}

/// The two queues the notifications function sends to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queue {
    /// `low_stock_alert` and `order_created` notifications, for downstream senders.
    Alerts,
    /// Records that could not be handled, with the reason.
    DeadLetters,
}

impl Queue {
    /// The name `sqs_outbox.queue` stores.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Alerts => "alerts",
            Self::DeadLetters => "dead_letters",
        }
    }

    pub fn from_stored(name: &str) -> Option<Self> {
        [Self::Alerts, Self::DeadLetters]
            .into_iter()
            .find(|q| q.as_str() == name)
    }
}

/// What a batch send achieved: the ids of the messages the queue accepted, why the others were
/// not (timeout, endpoint down), if any were not, and how many requests it made (SQS bills each).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Sent {
    pub accepted: Vec<i64>,
    pub error: Option<String>,
    pub requests: usize,
}

impl Sent {
    /// Adds what another send achieved; the first error is kept.
    pub fn add(&mut self, other: Sent) {
        self.accepted.extend(other.accepted);
        self.error = self.error.take().or(other.error);
        self.requests += other.requests;
    }
}

pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Sent> + Send + 'a>>;
pub type SendOneFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// Sends messages to a queue. Implemented with aws-sdk-sqs (`SendMessageBatch`, ten per request,
/// every call bounded by a timeout) in the `stockroom-sqs` crate.
pub trait Queues: Send + Sync {
    /// Sends `(id, body)` messages; the ids only identify them in the answer. No request starts
    /// after `deadline`: what is left is simply not accepted (not an error).
    fn send_batch<'a>(
        &'a self,
        queue: Queue,
        messages: &'a [(i64, String)],
        deadline: Instant,
    ) -> SendFuture<'a>;

    /// Sends one message; `Ok` once the queue accepted it.
    fn send<'a>(&'a self, queue: Queue, body: String) -> SendOneFuture<'a> {
        Box::pin(async move {
            let message = [(0, body)];
            // One request: the client's own timeouts bound it.
            let sent = self.send_batch(queue, &message, Instant::now()).await;
            match sent.error {
                _ if sent.accepted == [0] => Ok(()),
                Some(err) => Err(err),
                None => Err("the queue did not accept the message".into()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "2a7fbcd0-946c-4eda-ad01-7119eddeacdf";

    #[test]
    fn renders_each_type() {
        let n = parse(format!(r#"{{"event_id":"{ID}","event_type":"low_stock_alert","product_id":3,"name":"Pen","stock":9,"threshold":10}}"#).as_bytes()).unwrap();
        assert_eq!(n.message, "Low stock: Pen (id 3) has 9 left (threshold 10)");
        assert!(n.event_type.forwarded());
        let n = parse(format!(r#"{{"event_id":"{ID}","event_type":"order_created","order_id":7,"product_id":3,"quantity":5,"total_price":4999.50}}"#).as_bytes()).unwrap();
        assert_eq!(n.message, "Order 7 created: 5 x product 3, total 4999.50");
        assert_eq!((n.order_id, n.product_id), (Some(7), Some(3)));
        let n = parse(format!(r#"{{"event_id":"{ID}","event_type":"product_deleted","product_id":3,"name":"Pen","stock":0}}"#).as_bytes()).unwrap();
        assert_eq!(n.message, "Product deleted: Pen (id 3), stock 0");
        assert!(!n.event_type.forwarded());
    }

    #[test]
    fn refuses_what_it_cannot_handle_with_a_reason() {
        for (value, reason) in [
            ("not json".to_owned(), "value is not JSON"),
            ("[1]".to_owned(), "value is not a JSON object"),
            (format!(r#"{{"event_id":"{ID}","product_id":3}}"#), "missing event_type"),
            (format!(r#"{{"event_id":"{ID}","event_type":"price_changed"}}"#), "unknown event_type \"price_changed\""),
            (r#"{"event_type":"product_created","product_id":3,"name":"a","stock":1}"#.to_owned(), "missing event_id"),
            (r#"{"event_id":"x","event_type":"product_created","product_id":3,"name":"a","stock":1}"#.to_owned(), "event_id is not a UUID"),
            (format!(r#"{{"event_id":"{ID}","event_type":"product_created","product_id":"3","name":"a","stock":1}}"#), "product_id must be an integer"),
            (format!(r#"{{"event_id":"{ID}","event_type":"order_created","product_id":3,"quantity":1}}"#), "missing order_id"),
        ] {
            let err = parse(value.as_bytes()).unwrap_err();
            assert!(err.starts_with(reason), "{value}: {err}");
        }
        assert_eq!(parse(&[0xff, 0xfe]).unwrap_err(), "value is not UTF-8");
    }
}
