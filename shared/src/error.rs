//! The one JSON error shape every endpoint answers with:
//! `{"error":{"code":"validation_failed","message":"...","field":"price"}}`.

use lambda_http::http::StatusCode;
use serde::Serialize;

use crate::db::DbError;

/// An error a client can act on: an HTTP status, a stable machine-readable `code`, a human message
/// and, for validation failures, the offending field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// The request field at fault, e.g. `price` or `items[2].quantity`.
    pub field: Option<String>,
    /// Facts a client can act on, e.g. `{"product_id": 3, "requested": 5, "available": 2}`.
    pub details: Option<serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            details: None,
        }
    }

    /// 400: the request could not be read (malformed JSON, a body that is not an object).
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 422: the request was read but a field's value is not acceptable.
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            ..Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                message,
            )
        }
    }

    /// 409: the request is valid but conflicts with the current state (stock, order status).
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 503: a dependency is down; the client may retry.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            message,
        )
    }

    /// 500: a bug or an unexpected database answer. The detail goes to the log, not to the client.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "internal error; the request was not applied",
        )
    }

    /// The JSON body of this error.
    pub fn body(&self) -> serde_json::Value {
        #[derive(Serialize)]
        struct Inner<'a> {
            code: &'a str,
            message: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            field: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            details: Option<&'a serde_json::Value>,
        }
        serde_json::json!({ "error": Inner {
            code: self.code,
            message: &self.message,
            field: self.field.as_deref(),
            details: self.details.as_ref(),
        } })
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

/// An error with its causes, `outer: inner: innermost`, for one log line.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

impl From<DbError> for ApiError {
    fn from(err: DbError) -> Self {
        match err {
            DbError::Unavailable(reason) => {
                tracing::warn!(%reason, "database unavailable");
                Self::unavailable("the database is unavailable; retry later")
            }
            DbError::Query(err) => {
                tracing::error!(error = %crate::error::chain(&err), "database query failed");
                Self::internal()
            }
            DbError::InvalidUrl(reason) => {
                tracing::error!(%reason, "invalid database URL");
                Self::internal()
            }
        }
    }
}

/// Why an event-driven or scheduled invocation (the relay, the reconciler, the janitor, the
/// notifications consumer and its forwarder) failed. Lambda reports it as the invocation's
/// `errorType`, which says whether trying again can help, `Retryable.…` (an outage: the database,
/// the broker, SQS or the pushgateway did not answer; the event source or the next schedule
/// retries) or `Bug.…` (the database refused a statement: retrying the same thing fails the same
/// way), so alarms and log queries can tell an outage from a bug.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("the broker did not take the events")]
    Broker(#[source] crate::events::outbox::PublishError),
    #[error("SQS did not take the messages: {0}")]
    Queue(String),
    #[error("the pushgateway did not answer: {0}")]
    Pushgateway(String),
}

impl RunError {
    pub fn retryable(&self) -> bool {
        !matches!(self, Self::Db(DbError::Query(_) | DbError::InvalidUrl(_)))
    }

    /// `Retryable.DatabaseUnavailable`, `Bug.DatabaseQuery`, `Retryable.Broker`, ...
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Db(DbError::Unavailable(_)) => "Retryable.DatabaseUnavailable",
            Self::Db(DbError::Query(_)) => "Bug.DatabaseQuery",
            Self::Db(DbError::InvalidUrl(_)) => "Bug.DatabaseUrl",
            Self::Broker(_) => "Retryable.Broker",
            Self::Queue(_) => "Retryable.Queue",
            Self::Pushgateway(_) => "Retryable.Pushgateway",
        }
    }
}

impl From<crate::events::outbox::OutboxError> for RunError {
    fn from(err: crate::events::outbox::OutboxError) -> Self {
        match err {
            crate::events::outbox::OutboxError::Db(err) => Self::Db(err),
            crate::events::outbox::OutboxError::Publish(reason) => Self::Broker(reason),
        }
    }
}

impl From<RunError> for lambda_http::lambda_runtime::Diagnostic {
    fn from(err: RunError) -> Self {
        Self {
            error_type: err.error_type().to_owned(),
            error_message: chain(&err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_is_retryable_and_says_so_to_lambda() {
        use lambda_http::lambda_runtime::Diagnostic;
        let outage = RunError::Db(DbError::Unavailable("connection refused".into()));
        assert!(outage.retryable());
        let diagnostic = Diagnostic::from(outage);
        assert_eq!(diagnostic.error_type, "Retryable.DatabaseUnavailable");
        assert_eq!(
            diagnostic.error_message,
            "database unavailable: connection refused"
        );
        let relay = RunError::from(crate::events::outbox::OutboxError::Publish(
            crate::events::outbox::PublishError::Producer("no brokers".into()),
        ));
        let relay = Diagnostic::from(relay);
        assert_eq!(relay.error_type, "Retryable.Broker");
        assert_eq!(
            relay.error_message,
            "the broker did not take the events: could not create the producer: no brokers"
        );
        let queue = Diagnostic::from(RunError::Queue("timed out".into()));
        assert_eq!(
            (queue.error_type.as_str(), queue.error_message.as_str()),
            (
                "Retryable.Queue",
                "SQS did not take the messages: timed out"
            )
        );
    }

    #[test]
    fn a_chain_names_every_cause_once() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("could not reserve")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let err = Outer(std::io::Error::other("connection reset"));
        assert_eq!(chain(&err), "could not reserve: connection reset");
        assert_eq!(chain(&std::io::Error::other("alone")), "alone");
    }

    #[test]
    fn validation_error_names_its_field() {
        let body = ApiError::validation("price", "price must not be negative").body();
        assert_eq!(
            body,
            serde_json::json!({"error": {"code": "validation_failed", "message": "price must not be negative", "field": "price"}})
        );
    }

    #[test]
    fn errors_without_a_field_omit_it() {
        let err = ApiError::not_found("no product with id 7");
        assert_eq!(err.status, StatusCode::NOT_FOUND);
        assert_eq!(
            err.body(),
            serde_json::json!({"error": {"code": "not_found", "message": "no product with id 7"}})
        );
    }
}
