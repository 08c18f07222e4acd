//! Orders: the model, and the validation of single and bulk order requests.

pub mod reservation;
pub mod saga;
pub mod store;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::http::request_body::JsonObject;
use crate::{ApiError, Money};

/// The largest quantity one order line may ask for: far beyond any real basket, far below where
/// totals or stock arithmetic could overflow.
pub const MAX_QUANTITY: i64 = 1_000_000;
/// The most items one bulk request may carry.
pub const MAX_BULK_ITEMS: usize = 100;

/// An order as returned by the API. `unit_price` and `total_price` are `null` only while the order
/// is `pending` (its stock not yet reserved).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Order {
    pub id: i64,
    pub user_id: i64,
    pub product_id: i64,
    pub quantity: i32,
    pub unit_price: Option<Money>,
    pub total_price: Option<Money>,
    pub status: OrderStatus,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    Pending,
    Confirmed,
    Failed,
    Cancelling,
    Cancelled,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Confirmed => "confirmed",
            Self::Failed => "failed",
            Self::Cancelling => "cancelling",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Confirmed,
            Self::Failed,
            Self::Cancelling,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// One item asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OrderLine {
    pub product_id: i64,
    pub quantity: i32,
}

/// A validated order request: one line (`POST /api/orders`) or several (`POST /api/orders/bulk`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderRequest {
    pub kind: OrderKind,
    pub user_id: i64,
    pub lines: Vec<OrderLine>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderKind {
    Single,
    Bulk,
}

fn line(item: &JsonObject) -> Result<OrderLine, ApiError> {
    let product_id = item.required_integer("product_id", 1..=i64::MAX)?;
    let quantity = item.required_integer("quantity", 1..=MAX_QUANTITY)?;
    Ok(OrderLine {
        product_id,
        quantity: i32::try_from(quantity).expect("bounded by MAX_QUANTITY"),
    })
}

fn user_id(body: &JsonObject) -> Result<i64, ApiError> {
    body.optional_integer("user_id", 0..=i64::MAX, 0)
}

impl OrderRequest {
    /// `{"product_id": int, "quantity": int, "user_id": int (optional, default 0)}`
    pub fn single(body: &JsonObject) -> Result<Self, ApiError> {
        let line = line(body)?;
        Ok(Self {
            kind: OrderKind::Single,
            user_id: user_id(body)?,
            lines: vec![line],
        })
    }

    /// `{"user_id": int (optional), "items": [{"product_id", "quantity"}, ...]}`
    pub fn bulk(body: &JsonObject) -> Result<Self, ApiError> {
        let user_id = user_id(body)?;
        let lines = body
            .required_objects("items", MAX_BULK_ITEMS)?
            .iter()
            .map(line)
            .collect::<Result<_, _>>()?;
        Ok(Self {
            kind: OrderKind::Bulk,
            user_id,
            lines,
        })
    }

    /// The request in a canonical text form: an `Idempotency-Key` may only be reused with the
    /// same canonical request (formatting and field order of the body do not matter).
    pub fn canonical(&self) -> String {
        serde_json::to_string(self).expect("plain data serialises")
    }

    /// The request field naming line `index`, for errors about one item.
    pub fn line_field(&self, index: usize) -> String {
        match self.kind {
            OrderKind::Single => "product_id".into(),
            OrderKind::Bulk => format!("items[{index}]"),
        }
    }
}

/// `unit × quantity`, exactly.
pub fn total(unit: Money, quantity: i32) -> Money {
    Money::from_stored(unit.amount() * rust_decimal::Decimal::from(quantity))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn single(text: &str) -> Result<OrderRequest, ApiError> {
        OrderRequest::single(&JsonObject::parse(text)?)
    }

    fn bulk(text: &str) -> Result<OrderRequest, ApiError> {
        OrderRequest::bulk(&JsonObject::parse(text)?)
    }

    #[test]
    fn total_is_exact() {
        let unit = Money::new("p", "999.99".parse().unwrap()).unwrap();
        assert_eq!(total(unit, 5).to_string(), "4999.95");
        let unit = Money::new("p", "0.10".parse().unwrap()).unwrap();
        assert_eq!(total(unit, 3).to_string(), "0.30");
    }

    #[test]
    fn single_orders_default_to_user_zero() {
        let r = single(r#"{"product_id": 3, "quantity": 2}"#).unwrap();
        assert_eq!(r.user_id, 0);
        assert_eq!(
            r.lines,
            [OrderLine {
                product_id: 3,
                quantity: 2
            }]
        );
    }

    #[test]
    fn quantities_must_be_positive_whole_and_sane() {
        for (q, why) in [
            ("0", "between"),
            ("-1", "between"),
            ("1.5", "integer"),
            ("1000001", "between"),
            ("1e30", "range"),
            ("\"2\"", "number"),
        ] {
            let err = single(&format!(r#"{{"product_id": 3, "quantity": {q}}}"#)).unwrap_err();
            assert_eq!(err.status.as_u16(), 422, "{q}");
            assert_eq!(err.field.as_deref(), Some("quantity"), "{q}");
            assert!(err.message.contains(why), "{q}: {}", err.message);
        }
    }

    #[test]
    fn bulk_errors_name_the_item() {
        let err = bulk(
            r#"{"items": [{"product_id": 1, "quantity": 1}, {"product_id": 1, "quantity": 0}]}"#,
        )
        .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("items[1].quantity"));
        let err = bulk(r#"{"items": [{"product_id": 1, "quantity": 1}, 7]}"#).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("items[1]"));
    }

    #[test]
    fn bulk_must_have_between_one_and_the_maximum_items() {
        for body in [
            r#"{"items": []}"#.to_owned(),
            r#"{}"#.to_owned(),
            r#"{"items": {}}"#.to_owned(),
            {
                let items = vec![r#"{"product_id":1,"quantity":1}"#; MAX_BULK_ITEMS + 1].join(",");
                format!(r#"{{"items": [{items}]}}"#)
            },
        ] {
            let err = bulk(&body).unwrap_err();
            assert_eq!(err.field.as_deref(), Some("items"), "{body}");
        }
        let items = vec![r#"{"product_id":1,"quantity":1}"#; MAX_BULK_ITEMS].join(",");
        assert_eq!(
            bulk(&format!(r#"{{"items": [{items}]}}"#))
                .unwrap()
                .lines
                .len(),
            MAX_BULK_ITEMS
        );
    }

    #[test]
    fn canonical_form_ignores_formatting_but_not_content() {
        let a = single(r#"{"product_id": 3, "quantity": 2}"#).unwrap();
        let b = single(r#"{ "quantity":2.0,"product_id":3 ,"user_id":0}"#).unwrap();
        let c = single(r#"{"product_id": 3, "quantity": 3}"#).unwrap();
        let d = bulk(r#"{"items": [{"product_id": 3, "quantity": 2}]}"#).unwrap();
        assert_eq!(a.canonical(), b.canonical());
        assert_ne!(a.canonical(), c.canonical());
        assert_ne!(a.canonical(), d.canonical(), "single and bulk differ");
    }
}
