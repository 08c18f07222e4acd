//! The scheduled outbox relay: an EventBridge schedule invokes it; it publishes every event the
//! functions could not (broker down, function died after commit), oldest first.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_http::LambdaEvent;
use serde::Serialize;

use crate::db::{Db, DbError, INVENTORY_DATABASE_URL, ORDER_DATABASE_URL};
use crate::error::RunError;
use crate::outbox::{self, Publish};

/// Events sent per batch (per transaction holding their rows).
const BATCH: i64 = 500;

/// Both outboxes, with owner rights.
pub struct Outboxes {
    pub inventory: Db,
    pub orders: Db,
}

impl Outboxes {
    pub async fn from_env() -> Result<Self, DbError> {
        Ok(Self {
            inventory: Db::from_env(INVENTORY_DATABASE_URL).await?,
            orders: Db::from_env(ORDER_DATABASE_URL).await?,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RelayReport {
    pub inventory_events: usize,
    pub order_events: usize,
}

/// Relays both outboxes; a failure on one does not stop the other, but fails the invocation.
pub async fn run(
    outboxes: &Outboxes,
    publisher: &dyn Publish,
    event: LambdaEvent<EventBridgeEvent>,
) -> Result<RelayReport, RunError> {
    tracing::debug!(schedule = ?event.payload.resources, "relaying outboxes");
    let inventory =
        outbox::relay(&outboxes.inventory, publisher, BATCH, outbox::RELAY_MIN_AGE).await;
    let orders = outbox::relay(&outboxes.orders, publisher, BATCH, outbox::RELAY_MIN_AGE).await;
    for (database, relayed) in [("inventory_db", &inventory), ("order_db", &orders)] {
        if let Ok(relayed) = relayed {
            metrics::counter!("stockroom_events_published_total", "database" => database, "by" => "relay")
                .increment(relayed.published as u64);
            crate::telemetry::outbox_backlog(database, relayed.backlog);
        }
    }
    let outcome = match (inventory, orders) {
        (Ok(inventory), Ok(orders)) => {
            let report = RelayReport {
                inventory_events: inventory.published,
                order_events: orders.published,
            };
            tracing::info!(?report, "relayed");
            Ok(report)
        }
        (Err(err), _) | (_, Err(err)) => Err(err.into()),
    };
    crate::telemetry::finish_run(&outcome);
    outcome
}
