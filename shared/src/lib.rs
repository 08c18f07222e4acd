//! Stockroom's domain crate.
//!
//! Every Lambda function under `functions/` is a thin `main` that builds its clients once and hands
//! its events to an entry point in [`handlers`]. Everything else lives here, one module per area:
//! [`products`], [`orders`], [`events`] (the schema and the outbox), [`notifications`], [`http`]
//! (request and response plumbing), [`auth`], [`db`] (the connection that survives a frozen
//! execution environment), [`aws`] (AWS's APIs without an SDK), [`deploy`] (custom resources and
//! migrations), and the JSON error shape, exact money and telemetry.

pub mod auth;
pub mod aws;
pub mod config;
pub mod db;
pub mod deploy;
pub mod error;
pub mod events;
pub mod handlers;
pub mod http;
pub mod money;
pub mod notifications;
pub mod orders;
pub mod products;
pub mod telemetry;

pub use error::ApiError;
pub use money::Money;
