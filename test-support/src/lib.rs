//! Helpers shared by Stockroom's tests (a dev-dependency only; nothing here ships):
//!
//! - [`handler`]: handlers called with the events AWS delivers, built from the captured fixtures in
//!   `fixtures/`, and the databases `localstack/test` starts;
//! - [`topic`]: what reached a Kafka topic;
//! - [`queue`]: what reached an SQS queue;
//! - [`runtime_api`]: a function's real binary under a Lambda Runtime API of our own;
//! - [`http`]: calls to the stack over HTTP, as a client makes them;
//! - [`watch_log`]: the JSON lines of a `cargo lambda watch`'s log.

pub mod handler;
pub mod http;
pub mod queue;
pub mod runtime_api;
pub mod topic;
pub mod watch_log;
