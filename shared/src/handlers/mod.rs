//! The entry points of the Lambda functions: the HTTP API's routes, the Kafka consumer, the
//! schedules and the custom resources. Each takes the clients its `main` built once and the event
//! Lambda delivered (an HTTP API request, an MSK batch, a scheduled or a CloudFormation event).

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
