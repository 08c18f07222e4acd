//! Exact money: a non-negative amount with at most two decimal places that fits PostgreSQL's
//! `NUMERIC(12,2)`. Never an `f64`: read from the JSON text, stored as NUMERIC, written back as a
//! JSON number with exactly two decimals.

use rust_decimal::Decimal;
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

use crate::ApiError;
use crate::http::request_body::JsonObject;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(Decimal);

impl Money {
    /// The largest amount `NUMERIC(12,2)` holds: ten integer digits and two decimals.
    pub const MAX: Decimal = {
        const CENTS: u64 = 999_999_999_999;
        Decimal::from_parts(CENTS as u32, (CENTS >> 32) as u32, 0, false, 2)
    };

    /// Validates an amount: not negative, at most two decimals (never rounded), at most [`Self::MAX`].
    pub fn new(field: &'static str, amount: Decimal) -> Result<Self, ApiError> {
        let amount = amount.normalize();
        if amount.is_sign_negative() && !amount.is_zero() {
            return Err(ApiError::validation(
                field,
                format!("{field} must not be negative"),
            ));
        }
        if amount.scale() > 2 {
            return Err(ApiError::validation(
                field,
                format!("{field} must have at most two decimal places"),
            ));
        }
        if amount > Self::MAX {
            return Err(ApiError::validation(
                field,
                format!("{field} must be at most {}", Self::MAX),
            ));
        }
        Ok(Self::from_stored(amount))
    }

    /// Reads a money field of a request body.
    pub fn from_json(body: &JsonObject, field: &'static str) -> Result<Self, ApiError> {
        Self::new(field, body.required_decimal(field)?)
    }

    /// Wraps an amount read back from a `NUMERIC(12,2)` column.
    pub fn from_stored(amount: Decimal) -> Self {
        let mut amount = amount;
        amount.rescale(2);
        Self(amount)
    }

    pub fn amount(self) -> Decimal {
        self.0
    }
}

impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Serialises as a JSON *number* written from the decimal's own digits (`999.99`, `10.00`), so no
/// binary floating point is ever involved.
impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        RawValue::from_string(self.0.to_string())
            .map_err(serde::ser::Error::custom)?
            .serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn money(text: &str) -> Result<Money, ApiError> {
        Money::new("price", Decimal::from_str(text).unwrap())
    }

    #[test]
    fn max_is_numeric_12_2() {
        assert_eq!(Money::MAX.to_string(), "9999999999.99");
    }

    #[test]
    fn keeps_cents_exactly_and_writes_two_decimals() {
        let m = money("999.99").unwrap();
        assert_eq!(serde_json::to_string(&m).unwrap(), "999.99");
        assert_eq!(
            serde_json::to_string(&money("10").unwrap()).unwrap(),
            "10.00"
        );
        assert_eq!(
            serde_json::to_string(&money("0.1").unwrap()).unwrap(),
            "0.10"
        );
        assert_eq!(
            serde_json::to_string(&money("-0").unwrap()).unwrap(),
            "0.00"
        );
    }

    #[test]
    fn trailing_zeros_do_not_count_as_decimals() {
        assert_eq!(money("1.500").unwrap().amount().to_string(), "1.50");
    }

    #[test]
    fn refuses_fractions_of_a_cent_instead_of_rounding() {
        let err = money("1.005").unwrap_err();
        assert_eq!(err.field.as_deref(), Some("price"));
        assert_eq!(err.message, "price must have at most two decimal places");
    }

    #[test]
    fn refuses_negative_and_too_large() {
        assert_eq!(
            money("-0.01").unwrap_err().message,
            "price must not be negative"
        );
        assert!(money("9999999999.99").is_ok());
        assert_eq!(
            money("10000000000").unwrap_err().message,
            "price must be at most 9999999999.99"
        );
    }

    #[test]
    fn serialises_inside_a_struct_as_a_number() {
        #[derive(Serialize)]
        struct P {
            price: Money,
        }
        let json = serde_json::to_string(&P {
            price: money("999.99").unwrap(),
        })
        .unwrap();
        assert_eq!(json, r#"{"price":999.99}"#);
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert!(back["price"].is_number());
    }
}
