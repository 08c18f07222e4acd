//! Stockroom's domain crate.
//!
//! Every Lambda function under `functions/` is a thin `main` that builds its clients once and hands
//! requests to a handler in [`handlers`]. Everything else lives here: the product model and its
//! validation, exact money, the JSON error shape, keyset pagination, the PostgreSQL connection that
//! survives a frozen execution environment, the store's SQL and the schema migrations.

pub mod after_response;
pub mod auth;
pub mod aws_api;
pub mod bootstrap;
pub mod custom_resource;
pub mod db;
pub mod error;
pub mod events;
pub mod handlers;
pub mod http;
pub mod migrate;
pub mod money;
pub mod msk_api;
pub mod notification;
pub mod notification_store;
pub mod order;
pub mod order_saga;
pub mod order_store;
pub mod outbox;
pub mod outbox_store;
pub mod pagination;
pub mod product;
pub mod product_store;
pub mod request_body;
pub mod reservation;
pub mod secrets;
pub mod sigv4;
pub mod telemetry;

pub use error::ApiError;
pub use money::Money;
