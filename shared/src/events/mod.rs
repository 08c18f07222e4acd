//! The events Stockroom publishes, as one typed schema (docs/events.md).
//!
//! The SQL triggers of `inventory_db` and `order_db` write them (migrations `inventory_db/0003`,
//! `order_db/0002`); the notifications function reads them with [`Event::parse`]. Serialising an
//! [`Event`] gives back the JSON the triggers wrote, field for field: `tests/event_schema.rs`
//! checks it for every event type against the real triggers, and against docs/events.md, so the
//! schema is written down once, here. Fields the consumer does not need are optional, so events
//! of older producers (the original system's) still parse.

pub mod outbox;
pub mod store;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::Money;
use crate::http::request_body::parse_number;

pub const INVENTORY_TOPIC: &str = "inventory-events";
pub const ORDER_TOPIC: &str = "order-events";

/// One event: the envelope every event shares, and its type's fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub event_id: Uuid,
    /// Schema version, 1; bumped by a change that removes or retypes a field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// When the change's transaction started (RFC 3339, UTC, microseconds), as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<String>,
    /// The same instant in unix seconds (the original's field).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// The event types and their fields; `event_type` is the tag.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event_type", rename_all = "snake_case")]
pub enum EventKind {
    /// The product after the change.
    ProductCreated(ProductFields),
    /// The product after the change: a `PUT`, or stock taken or returned by orders.
    ProductUpdated(ProductFields),
    /// The product before it was deleted.
    ProductDeleted(ProductFields),
    /// A change took the stock from at or above the threshold to below it.
    LowStockAlert(LowStockFields),
    OrderCreated(OrderFields),
    OrderCancelled(OrderFields),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductFields {
    pub product_id: i64,
    pub name: String,
    pub stock: i64,
    #[serde(
        default,
        deserialize_with = "money",
        skip_serializing_if = "Option::is_none"
    )]
    pub price: Option<Money>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LowStockFields {
    pub product_id: i64,
    pub name: String,
    pub stock: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderFields {
    pub order_id: i64,
    pub product_id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<i64>,
    pub quantity: i64,
    #[serde(
        default,
        deserialize_with = "money",
        skip_serializing_if = "Option::is_none"
    )]
    pub unit_price: Option<Money>,
    #[serde(
        default,
        deserialize_with = "money",
        skip_serializing_if = "Option::is_none"
    )]
    pub total_price: Option<Money>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// The envelope's optional fields.
#[derive(Deserialize)]
struct Envelope {
    version: Option<u32>,
    occurred_at: Option<String>,
    timestamp: Option<i64>,
}

/// Money from the JSON number's own text, never through `f64`.
fn money<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Money>, D::Error> {
    let raw: Option<&RawValue> = Option::deserialize(deserializer)?;
    let Some(raw) = raw.filter(|raw| raw.get() != "null") else {
        return Ok(None);
    };
    let amount = parse_number(raw.get())
        .ok()
        .filter(|amount| amount.scale() <= 2 && !amount.is_sign_negative());
    amount
        .map(|amount| Some(Money::from_stored(amount)))
        .ok_or_else(|| {
            serde::de::Error::custom(format!(
                "must be an amount with at most two decimals, got {}",
                raw.get()
            ))
        })
}

/// The `event_type` tag alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    ProductCreated,
    ProductUpdated,
    ProductDeleted,
    LowStockAlert,
    OrderCreated,
    OrderCancelled,
}

impl EventType {
    pub const ALL: [Self; 6] = [
        Self::ProductCreated,
        Self::ProductUpdated,
        Self::ProductDeleted,
        Self::LowStockAlert,
        Self::OrderCreated,
        Self::OrderCancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ProductCreated => "product_created",
            Self::ProductUpdated => "product_updated",
            Self::ProductDeleted => "product_deleted",
            Self::LowStockAlert => "low_stock_alert",
            Self::OrderCreated => "order_created",
            Self::OrderCancelled => "order_cancelled",
        }
    }
}

impl EventKind {
    pub fn event_type(&self) -> EventType {
        match self {
            Self::ProductCreated(_) => EventType::ProductCreated,
            Self::ProductUpdated(_) => EventType::ProductUpdated,
            Self::ProductDeleted(_) => EventType::ProductDeleted,
            Self::LowStockAlert(_) => EventType::LowStockAlert,
            Self::OrderCreated(_) => EventType::OrderCreated,
            Self::OrderCancelled(_) => EventType::OrderCancelled,
        }
    }
}

impl Event {
    /// Reads and validates one event (a Kafka record's value). `Err` says why, naming the field:
    /// it goes to the dead-letter queue with the record.
    pub fn parse(value: &[u8]) -> Result<Self, String> {
        let text = std::str::from_utf8(value).map_err(|_| "value is not UTF-8".to_owned())?;
        let json: serde_json::Value =
            serde_json::from_str(text).map_err(|err| format!("value is not JSON: {err}"))?;
        let object = json.as_object().ok_or("value is not a JSON object")?;
        let string = |field: &str| match object.get(field) {
            None | Some(serde_json::Value::Null) => Err(format!("missing {field}")),
            Some(value) => value
                .as_str()
                .ok_or_else(|| format!("{field} must be a string, got {value}")),
        };
        let event_type = string("event_type")?;
        let event_id = Uuid::parse_str(string("event_id")?)
            .map_err(|_| "event_id is not a UUID".to_owned())?;
        let event_type = EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == event_type)
            .ok_or_else(|| format!("unknown event_type {event_type:?}"))?;
        let kind = match event_type {
            EventType::ProductCreated => EventKind::ProductCreated(fields(text)?),
            EventType::ProductUpdated => EventKind::ProductUpdated(fields(text)?),
            EventType::ProductDeleted => EventKind::ProductDeleted(fields(text)?),
            EventType::LowStockAlert => EventKind::LowStockAlert(fields(text)?),
            EventType::OrderCreated => EventKind::OrderCreated(fields(text)?),
            EventType::OrderCancelled => EventKind::OrderCancelled(fields(text)?),
        };
        let envelope: Envelope = fields(text)?;
        Ok(Self {
            event_id,
            version: envelope.version,
            occurred_at: envelope.occurred_at,
            timestamp: envelope.timestamp,
            kind,
        })
    }
}

/// Deserialises a type's fields from the whole event (other fields are ignored), with errors
/// that name the field as `Event::parse` promises.
fn fields<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let field = err.path().to_string();
        // serde_json appends the position; the field name says more.
        let inner = err.inner().to_string();
        let message = inner.split(" at line ").next().unwrap_or_default();
        if let Some(missing) = message.strip_prefix("missing field ") {
            return format!("missing {}", missing.trim_matches('`'));
        }
        match message.strip_prefix("invalid type: ") {
            Some(rest) if rest.starts_with("null,") => format!("missing {field}"),
            Some(rest) => {
                let (got, expected) = rest.split_once(", expected ").unwrap_or((rest, ""));
                let wanted = match expected {
                    "i64" | "u32" => "an integer",
                    "a string" => "a string",
                    other => other,
                };
                format!("{field} must be {wanted}, got {got}")
            }
            None => format!("{field} {message}"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "2a7fbcd0-946c-4eda-ad01-7119eddeacdf";

    fn order_created(extra: &str) -> String {
        format!(
            r#"{{"event_id":"{ID}","event_type":"order_created","order_id":7,"product_id":3,"quantity":2{extra}}}"#
        )
    }

    #[test]
    fn money_is_read_from_the_number_s_text() {
        let event =
            Event::parse(order_created(r#","total_price":0.10,"unit_price":0.05"#).as_bytes())
                .unwrap();
        let EventKind::OrderCreated(order) = &event.kind else {
            panic!("{event:?}")
        };
        assert_eq!(order.total_price.unwrap().to_string(), "0.10");
        assert_eq!(order.unit_price.unwrap().to_string(), "0.05");
        let text = serde_json::to_string(&event).unwrap();
        assert!(text.contains(r#""total_price":0.10"#), "{text}");
    }

    #[test]
    fn errors_name_the_field() {
        for (extra, reason) in [
            (
                r#","total_price":1.234"#,
                "total_price must be an amount with at most two decimals, got 1.234",
            ),
            (
                r#","total_price":"1.00""#,
                "total_price must be an amount with at most two decimals, got \"1.00\"",
            ),
            (
                r#","user_id":"x""#,
                "user_id must be an integer, got string \"x\"",
            ),
            (r#","status":5"#, "status must be a string, got integer `5`"),
        ] {
            assert_eq!(
                Event::parse(order_created(extra).as_bytes()).unwrap_err(),
                reason,
                "{extra}"
            );
        }
        let no_quantity = order_created("").replace(r#","quantity":2"#, "");
        assert_eq!(
            Event::parse(no_quantity.as_bytes()).unwrap_err(),
            "missing quantity"
        );
        let null_quantity = order_created("").replace(r#""quantity":2"#, r#""quantity":null"#);
        assert_eq!(
            Event::parse(null_quantity.as_bytes()).unwrap_err(),
            "missing quantity"
        );
    }

    #[test]
    fn optional_fields_may_be_absent_and_stay_absent() {
        let event = Event::parse(order_created("").as_bytes()).unwrap();
        assert_eq!((event.version, event.timestamp), (None, None));
        let back: serde_json::Value = serde_json::to_value(&event).unwrap();
        let written: serde_json::Value = serde_json::from_str(&order_created("")).unwrap();
        assert_eq!(back, written);
    }
}
