//! The scheduled stock exporter: every product's stock as `inventory_stock_levels`. To a
//! pushgateway, one group (`job="stockroom_stock"`) replaced whole on every run, so a deleted
//! product's series goes with the next run; to CloudWatch, one gauge per product in the run's EMF
//! lines, so a deleted product's metric just stops.
//!
//! Why a schedule rather than a push per change: the pushgateway checks every push against every
//! series it holds, so a push costs time in proportion to them (measured on the 2-core machine:
//! 1.7 ms with no stock series, 12 ms with 2,000, 80 ms with 5,000). A push per stock change (one
//! per order) into a group per product made that cost grow with both the order rate and the
//! catalogue, and wedged the local pushgateway under load. One push a minute of one group costs the
//! same series once, and the orders no longer push anything but their environment's group.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_http::LambdaEvent;
use serde::Serialize;

use crate::db::Db;
use crate::error::RunError;
use crate::products;
use crate::telemetry::{self, Pushgateway, STOCK_JOB};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Exported {
    /// Products in the group pushed.
    pub products: usize,
    /// Groups of the earlier layout (one per product, `product_id` in the grouping key) deleted:
    /// their series would clash with the new group's, and the pushgateway refuses a clash.
    pub old_groups_deleted: usize,
    /// Metrics are off (no pushgateway, no CloudWatch): the run did nothing, successfully.
    pub metrics_off: bool,
}

/// Reads every product's stock and replaces the stock group with it.
pub async fn export(db: &Db, gateway: &Pushgateway) -> Result<Exported, RunError> {
    let levels = db
        .run("stock_levels", async |c| {
            products::store::stock_levels(c).await
        })
        .await?;
    let mut exported = Exported {
        products: levels.len(),
        ..Exported::default()
    };
    for (labels, _) in gateway
        .groups(STOCK_JOB)
        .await
        .map_err(RunError::Pushgateway)?
    {
        if labels.iter().any(|(k, _)| k == "product_id") {
            gateway
                .delete(&labels)
                .await
                .map_err(RunError::Pushgateway)?;
            exported.old_groups_deleted += 1;
        }
    }
    gateway
        .call(
            "PUT",
            &format!("/metrics/job/{STOCK_JOB}"),
            &telemetry::stock_group(&levels),
        )
        .await
        .map_err(RunError::Pushgateway)?;
    Ok(exported)
}

/// Reads every product's stock and records it as gauges, which the CloudWatch backend writes with
/// the run's other metrics.
pub async fn record(db: &Db) -> Result<Exported, RunError> {
    let levels = db
        .run("stock_levels", async |c| {
            products::store::stock_levels(c).await
        })
        .await?;
    telemetry::record_stock_levels(&levels);
    Ok(Exported {
        products: levels.len(),
        ..Exported::default()
    })
}

/// Handles one scheduled event: to the pushgateway, or to CloudWatch. With metrics off there is
/// nowhere to export to: the run reads nothing and succeeds, so a stack deployed with metrics off
/// has no failing schedule.
pub async fn run(
    db: &Db,
    gateway: Option<&Pushgateway>,
    event: LambdaEvent<EventBridgeEvent>,
) -> Result<Exported, RunError> {
    tracing::debug!(schedule = ?event.payload.resources, "exporting stock levels");
    let exported = match gateway {
        Some(gateway) => export(db, gateway).await,
        None if telemetry::cloudwatch() => record(db).await,
        None => Ok(Exported {
            metrics_off: true,
            ..Exported::default()
        }),
    };
    if let Ok(exported) = &exported {
        tracing::info!(?exported, "stock levels exported");
    }
    telemetry::finish_run(&exported);
    exported
}
