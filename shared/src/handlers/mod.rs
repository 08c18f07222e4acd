//! The HTTP handlers, one per Lambda function. Each takes the clients its `main` built once and
//! the request API Gateway (or `cargo lambda watch`) delivered.

pub mod fallback;
pub mod health;
pub mod janitor;
pub mod kafka_brokers;
pub mod migrations;
pub mod notifications;
pub mod orders;
pub mod products;
pub mod reconciler;
pub mod relay;
pub mod stock_levels;
