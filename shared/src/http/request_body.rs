//! Reading request bodies field by field, exactly.
//!
//! Bodies are parsed into raw JSON values first, so a number keeps its original text (`999.99` never
//! passes through `f64`) and every type or range problem is reported against the field it is in.

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::str::FromStr;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::value::RawValue;

use crate::ApiError;

/// A JSON object whose values are still raw JSON text.
#[derive(Debug)]
pub struct JsonObject {
    fields: HashMap<String, Box<RawValue>>,
    /// Prepended to field names in errors, e.g. `items[2].` for an object inside an array.
    prefix: String,
}

impl JsonObject {
    /// Parses a request body that must be one JSON object (400 otherwise).
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        if text.trim().is_empty() {
            return Err(ApiError::bad_request(
                "missing_body",
                "a JSON object body is required",
            ));
        }
        serde_json::from_str(text)
            .map(|fields| Self {
                fields,
                prefix: String::new(),
            })
            .map_err(|err| match err.classify() {
                serde_json::error::Category::Data => {
                    ApiError::bad_request("invalid_body", "the request body must be a JSON object")
                }
                _ => ApiError::bad_request("malformed_json", format!("malformed JSON: {err}")),
            })
    }

    /// The name of `field` as the client sees it in errors.
    fn name(&self, field: &str) -> String {
        format!("{}{field}", self.prefix)
    }

    /// A required, non-empty array of at most `max` objects, each readable like this one.
    pub fn required_objects(
        &self,
        field: &'static str,
        max: usize,
    ) -> Result<Vec<JsonObject>, ApiError> {
        let name = self.name(field);
        let raw = self
            .raw(field)
            .ok_or_else(|| ApiError::validation(&name, format!("{name} is required")))?;
        let items: Vec<&RawValue> = serde_json::from_str(raw)
            .map_err(|_| ApiError::validation(&name, format!("{name} must be an array")))?;
        if items.is_empty() {
            return Err(ApiError::validation(
                &name,
                format!("{name} must not be empty"),
            ));
        }
        if items.len() > max {
            return Err(ApiError::validation(
                &name,
                format!("{name} must have at most {max} entries"),
            ));
        }
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let item_name = format!("{name}[{i}]");
                serde_json::from_str(item.get())
                    .map(|fields| JsonObject {
                        fields,
                        prefix: format!("{item_name}."),
                    })
                    .map_err(|_| {
                        ApiError::validation(&item_name, format!("{item_name} must be an object"))
                    })
            })
            .collect()
    }

    /// Whether the body gives `field` a value (`null` counts as absent).
    pub fn has(&self, field: &str) -> bool {
        self.raw(field).is_some()
    }

    /// The raw text of a field; `None` when it is absent or `null`.
    fn raw(&self, field: &str) -> Option<&str> {
        self.fields
            .get(field)
            .map(|raw| raw.get())
            .filter(|text| *text != "null")
    }

    /// A required, non-blank string of at most `max_chars` characters, trimmed.
    pub fn required_string(
        &self,
        field: &'static str,
        max_chars: usize,
    ) -> Result<String, ApiError> {
        let name = self.name(field);
        let value = self
            .optional_string(field, max_chars)?
            .ok_or_else(|| ApiError::validation(&name, format!("{name} is required")))?;
        if value.is_empty() {
            return Err(ApiError::validation(
                &name,
                format!("{name} must not be empty"),
            ));
        }
        Ok(value)
    }

    /// An optional string of at most `max_chars` characters, trimmed.
    pub fn optional_string(
        &self,
        field: &'static str,
        max_chars: usize,
    ) -> Result<Option<String>, ApiError> {
        let Some(raw) = self.raw(field) else {
            return Ok(None);
        };
        let name = self.name(field);
        let value: String = serde_json::from_str(raw)
            .map_err(|_| ApiError::validation(&name, format!("{name} must be a string")))?;
        let value = value.trim();
        // PostgreSQL refuses NUL in text, and no name or description needs a control character
        // other than tab and line breaks.
        if value
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
        {
            return Err(ApiError::validation(
                &name,
                format!(
                    "{name} must not contain control characters other than tab and line breaks"
                ),
            ));
        }
        if value.chars().count() > max_chars {
            return Err(ApiError::validation(
                &name,
                format!("{name} must be at most {max_chars} characters"),
            ));
        }
        Ok(Some(value.to_owned()))
    }

    /// A required JSON number, read exactly as written.
    pub fn required_decimal(&self, field: &'static str) -> Result<Decimal, ApiError> {
        let name = self.name(field);
        let raw = self
            .raw(field)
            .ok_or_else(|| ApiError::validation(&name, format!("{name} is required")))?;
        parse_number(raw).map_err(|problem| problem.into_error(&name))
    }

    /// A required whole number within `range`. `10` and `10.0` are both ten; `10.5` is refused.
    pub fn required_integer(
        &self,
        field: &'static str,
        range: RangeInclusive<i64>,
    ) -> Result<i64, ApiError> {
        let value = self.required_decimal(field)?;
        let name = self.name(field);
        let out_of_range = || {
            ApiError::validation(
                &name,
                format!(
                    "{name} must be between {} and {}",
                    range.start(),
                    range.end()
                ),
            )
        };
        if !value.fract().is_zero() {
            return Err(ApiError::validation(
                &name,
                format!("{name} must be an integer"),
            ));
        }
        let value = value.to_i64().ok_or_else(out_of_range)?;
        if range.contains(&value) {
            Ok(value)
        } else {
            Err(out_of_range())
        }
    }

    /// Like [`Self::required_integer`], with a default when the field is absent or `null`.
    pub fn optional_integer(
        &self,
        field: &'static str,
        range: RangeInclusive<i64>,
        default: i64,
    ) -> Result<i64, ApiError> {
        match self.raw(field) {
            None => Ok(default),
            Some(_) => self.required_integer(field, range),
        }
    }
}

/// Why a raw JSON value is not a usable number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberProblem {
    NotANumber,
    OutOfRange,
}

impl NumberProblem {
    fn into_error(self, field: &str) -> ApiError {
        match self {
            Self::NotANumber => ApiError::validation(field, format!("{field} must be a number")),
            Self::OutOfRange => ApiError::validation(field, format!("{field} is out of range")),
        }
    }
}

/// Parses the text of a JSON number into an exact decimal. Strings such as `"12"` are not numbers.
pub fn parse_number(raw: &str) -> Result<Decimal, NumberProblem> {
    let starts_like_number = raw
        .bytes()
        .next()
        .is_some_and(|b| b == b'-' || b.is_ascii_digit());
    if !starts_like_number {
        return Err(NumberProblem::NotANumber);
    }
    let parsed = if raw.contains(['e', 'E']) {
        Decimal::from_scientific(raw)
    } else {
        Decimal::from_str_exact(raw)
    };
    // The text came out of a JSON parser, so it is a well-formed number: failing here means it
    // does not fit a 96-bit decimal (too large, or more fractional digits than can be exact).
    parsed.map_err(|_| NumberProblem::OutOfRange)
}

/// Parses a query-string value that must be a whole number within `range`.
pub fn parse_query_integer(
    field: &'static str,
    value: &str,
    range: RangeInclusive<i64>,
) -> Result<i64, ApiError> {
    i64::from_str(value)
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            ApiError::validation(
                field,
                format!(
                    "{field} must be an integer between {} and {}",
                    range.start(),
                    range.end()
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::http::StatusCode;

    fn obj(text: &str) -> JsonObject {
        JsonObject::parse(text).expect("valid object")
    }

    #[test]
    fn malformed_and_non_object_bodies_are_400() {
        for (body, code) in [
            ("", "missing_body"),
            ("{\"name\":", "malformed_json"),
            ("not json", "malformed_json"),
            ("[1,2]", "invalid_body"),
            ("\"text\"", "invalid_body"),
            ("42", "invalid_body"),
        ] {
            let err = JsonObject::parse(body).unwrap_err();
            assert_eq!(err.status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(err.code, code, "{body}");
        }
    }

    #[test]
    fn numbers_are_read_exactly() {
        let o = obj(r#"{"a": 999.99, "b": 0.1, "c": 1e2, "d": 12345678901234567890.12}"#);
        assert_eq!(o.required_decimal("a").unwrap().to_string(), "999.99");
        assert_eq!(o.required_decimal("b").unwrap().to_string(), "0.1");
        assert_eq!(o.required_decimal("c").unwrap(), Decimal::from(100));
        assert_eq!(
            o.required_decimal("d").unwrap().to_string(),
            "12345678901234567890.12"
        );
    }

    #[test]
    fn a_number_in_a_string_is_not_a_number() {
        let err = obj(r#"{"price": "10.00"}"#)
            .required_decimal("price")
            .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("price"));
        assert_eq!(err.message, "price must be a number");
    }

    #[test]
    fn huge_numbers_are_out_of_range_not_errors() {
        let err = obj(r#"{"n": 1e400}"#).required_decimal("n").unwrap_err();
        assert_eq!(err.message, "n is out of range");
        let err = obj(r#"{"n": 99999999999999999999999999999999}"#)
            .required_decimal("n")
            .unwrap_err();
        assert_eq!(err.message, "n is out of range");
    }

    #[test]
    fn integers_accept_whole_values_only() {
        let o = obj(r#"{"a": 10, "b": 10.0, "c": 10.5, "d": -1, "e": 3000000000, "f": true}"#);
        assert_eq!(o.required_integer("a", 0..=100).unwrap(), 10);
        assert_eq!(o.required_integer("b", 0..=100).unwrap(), 10);
        assert_eq!(
            o.required_integer("c", 0..=100).unwrap_err().message,
            "c must be an integer"
        );
        assert_eq!(
            o.required_integer("d", 0..=100).unwrap_err().message,
            "d must be between 0 and 100"
        );
        assert_eq!(
            o.required_integer("e", 0..=i64::from(i32::MAX))
                .unwrap_err()
                .message,
            "e must be between 0 and 2147483647"
        );
        assert_eq!(
            o.required_integer("f", 0..=1).unwrap_err().message,
            "f must be a number"
        );
    }

    #[test]
    fn absent_and_null_are_the_same() {
        let o = obj(r#"{"a": null}"#);
        assert_eq!(o.optional_integer("a", 0..=5, 3).unwrap(), 3);
        assert_eq!(o.optional_integer("b", 0..=5, 4).unwrap(), 4);
        assert_eq!(o.optional_string("a", 5).unwrap(), None);
        assert_eq!(
            o.required_string("a", 5).unwrap_err().message,
            "a is required"
        );
    }

    #[test]
    fn strings_are_trimmed_and_bounded_in_characters() {
        let o = obj(r#"{"a": "  x  ", "b": "   ", "c": "ééé", "d": 5}"#);
        assert_eq!(o.required_string("a", 1).unwrap(), "x");
        assert_eq!(
            o.required_string("b", 10).unwrap_err().message,
            "b must not be empty"
        );
        assert_eq!(o.required_string("c", 3).unwrap(), "ééé");
        assert_eq!(
            o.required_string("c", 2).unwrap_err().message,
            "c must be at most 2 characters"
        );
        assert_eq!(
            o.required_string("d", 2).unwrap_err().message,
            "d must be a string"
        );
    }

    #[test]
    fn control_characters_are_refused_naming_the_field() {
        for raw in [
            r#"{"name":"a\u0000b"}"#,
            r#"{"name":"bell\u0007"}"#,
            r#"{"name":"del\u007f"}"#,
        ] {
            let err = obj(raw).optional_string("name", 100).unwrap_err();
            assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY, "{raw}");
            assert_eq!(err.field.as_deref(), Some("name"), "{raw}");
        }
        let text = obj(r#"{"d":"line one\nline two\tand a tab\r\n"}"#)
            .optional_string("d", 100)
            .unwrap();
        assert_eq!(text.as_deref(), Some("line one\nline two\tand a tab"));
    }

    #[test]
    fn query_integers_are_bounded() {
        assert_eq!(parse_query_integer("limit", "5", 1..=10).unwrap(), 5);
        for bad in ["0", "11", "-1", "x", "1.5", ""] {
            let err = parse_query_integer("limit", bad, 1..=10).unwrap_err();
            assert_eq!(err.field.as_deref(), Some("limit"), "{bad}");
            assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY);
        }
    }
}
