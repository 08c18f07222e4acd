//! Logging set-up shared by every function.

/// Structured logs to stdout, which Lambda ships to CloudWatch. The level comes from
/// `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG` (default INFO); `AWS_LAMBDA_LOG_FORMAT=JSON` gives JSON lines.
pub fn init() {
    lambda_http::tracing::init_default_subscriber();
}
