//! The product catalogue's model and the validation of what clients send.

pub mod store;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::http::request_body::JsonObject;
use crate::{ApiError, Money};

pub const NAME_MAX_CHARS: usize = 200;
pub const DESCRIPTION_MAX_CHARS: usize = 2000;
/// Stock is a PostgreSQL `INTEGER`.
pub const STOCK_MAX: i64 = i32::MAX as i64;

/// A product as stored and as returned by the API (the original system's field names).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Product {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub price: Money,
    /// At most [`STOCK_MAX`] when written; stock returned by cancels can take it past that
    /// (`BIGINT` column).
    pub stock: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Moved by every change of the product (inventory_db migration 6); sent as its `ETag`.
    #[serde(skip)]
    pub version: i64,
}

impl Product {
    /// The product's entity tag: its version, as a strong HTTP `ETag` (`"7"`).
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.version)
    }
}

/// What `POST /api/products` creates and `PUT /api/products/{id}` replaces: already validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductInput {
    pub name: String,
    pub description: String,
    pub price: Money,
    pub stock: i32,
}

impl ProductInput {
    /// Validates a request body. Fields are checked in a fixed order and the first problem is
    /// reported; unknown fields (such as `id` or `created_at` echoed back by a client) are ignored.
    pub fn from_json(body: &JsonObject) -> Result<Self, ApiError> {
        let name = body.required_string("name", NAME_MAX_CHARS)?;
        let description = body
            .optional_string("description", DESCRIPTION_MAX_CHARS)?
            .unwrap_or_default();
        let price = Money::from_json(body, "price")?;
        let stock = body.required_integer("stock", 0..=STOCK_MAX)?;
        Ok(Self {
            name,
            description,
            price,
            stock: i32::try_from(stock).expect("range checked above"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(body: &str) -> Result<ProductInput, ApiError> {
        ProductInput::from_json(&JsonObject::parse(body)?)
    }

    #[test]
    fn accepts_the_original_clients_body() {
        let p = input(r#"{"name":"Laptop","description":"x","price":999.99,"stock":50}"#).unwrap();
        assert_eq!(p.name, "Laptop");
        assert_eq!(p.description, "x");
        assert_eq!(p.price.to_string(), "999.99");
        assert_eq!(p.stock, 50);
    }

    #[test]
    fn description_is_optional() {
        let p = input(r#"{"name":"Pen","price":1,"stock":0}"#).unwrap();
        assert_eq!(p.description, "");
    }

    #[test]
    fn each_invalid_field_is_named() {
        let cases = [
            (r#"{"price":1,"stock":1}"#, "name"),
            (r#"{"name":"","price":1,"stock":1}"#, "name"),
            (
                &format!(
                    r#"{{"name":"{}","price":1,"stock":1}}"#,
                    "n".repeat(NAME_MAX_CHARS + 1)
                ),
                "name",
            ),
            (
                r#"{"name":"a","description":7,"price":1,"stock":1}"#,
                "description",
            ),
            (r#"{"name":"a","stock":1}"#, "price"),
            (r#"{"name":"a","price":-1,"stock":1}"#, "price"),
            (r#"{"name":"a","price":1.999,"stock":1}"#, "price"),
            (r#"{"name":"a","price":"1.00","stock":1}"#, "price"),
            (r#"{"name":"a","price":1e20,"stock":1}"#, "price"),
            (r#"{"name":"a","price":1}"#, "stock"),
            (r#"{"name":"a","price":1,"stock":-1}"#, "stock"),
            (r#"{"name":"a","price":1,"stock":1.5}"#, "stock"),
            (r#"{"name":"a","price":1,"stock":"5"}"#, "stock"),
            (r#"{"name":"a","price":1,"stock":2147483648}"#, "stock"),
        ];
        for (body, field) in cases {
            let err = input(body).unwrap_err();
            assert_eq!(err.code, "validation_failed", "{body}");
            assert_eq!(err.field.as_deref(), Some(field), "{body}");
        }
    }
}
