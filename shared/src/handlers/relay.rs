//! The scheduled outbox relay: an EventBridge schedule invokes it; it publishes every event the
//! functions could not (broker down, function died after commit), oldest first, then deletes
//! published events past the retention ([`events::store::retention_from_env`]).

use std::time::Duration;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_http::LambdaEvent;
use serde::Serialize;

use crate::config::ConfigError;
use crate::db::{Db, INVENTORY_DATABASE_URL, ORDER_DATABASE_URL};
use crate::error::RunError;
use crate::events;
use crate::events::outbox::{OutboxError, Publish, Relayed};

/// Events sent per batch (per transaction holding their rows).
const BATCH: i64 = 500;

/// Both outboxes, with owner rights, and how long their published events are kept.
pub struct Outboxes {
    pub inventory: Db,
    pub orders: Db,
    pub retention: Duration,
}

impl Outboxes {
    pub async fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            retention: events::store::retention_from_env()?,
            inventory: Db::from_env(INVENTORY_DATABASE_URL).await?,
            orders: Db::from_env(ORDER_DATABASE_URL).await?,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RelayReport {
    pub inventory_events: usize,
    pub order_events: usize,
    /// Published events past the retention, deleted.
    pub inventory_pruned: u64,
    pub order_pruned: u64,
}

/// Relays one outbox, then prunes it.
async fn relay_and_prune(
    db: &Db,
    publisher: &dyn Publish,
    retention: Duration,
) -> Result<(Relayed, u64), OutboxError> {
    let relayed =
        events::outbox::relay(db, publisher, BATCH, events::outbox::RELAY_MIN_AGE).await?;
    let pruned = db
        .run("prune_outbox", async |c| {
            events::store::prune(c, retention).await
        })
        .await?;
    Ok((relayed, pruned))
}

/// Relays both outboxes; a failure on one does not stop the other, but fails the invocation.
pub async fn run(
    outboxes: &Outboxes,
    publisher: &dyn Publish,
    event: LambdaEvent<EventBridgeEvent>,
) -> Result<RelayReport, RunError> {
    tracing::debug!(schedule = ?event.payload.resources, "relaying outboxes");
    let inventory = relay_and_prune(&outboxes.inventory, publisher, outboxes.retention).await;
    let orders = relay_and_prune(&outboxes.orders, publisher, outboxes.retention).await;
    for (database, relayed) in [("inventory_db", &inventory), ("order_db", &orders)] {
        if let Ok((relayed, pruned)) = relayed {
            metrics::counter!("stockroom_outbox_pruned_total", "database" => database)
                .increment(*pruned);
            metrics::counter!("stockroom_events_published_total", "database" => database, "by" => "relay")
                .increment(relayed.published as u64);
            crate::telemetry::outbox_backlog(database, relayed.backlog);
        }
    }
    let outcome = match (inventory, orders) {
        (Ok((inventory, inventory_pruned)), Ok((orders, order_pruned))) => {
            let report = RelayReport {
                inventory_events: inventory.published,
                order_events: orders.published,
                inventory_pruned,
                order_pruned,
            };
            tracing::info!(?report, "relayed");
            Ok(report)
        }
        (Err(err), _) | (_, Err(err)) => Err(err.into()),
    };
    crate::telemetry::finish_run(&outcome);
    outcome
}
