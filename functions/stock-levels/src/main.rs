//! Scheduled (EventBridge): pushes every product's stock as `inventory_stock_levels`.
use lambda_runtime::{Error, run, service_fn};
use stockroom::db::{Db, INVENTORY_DATABASE_URL};
use stockroom::handlers::stock_levels;
use stockroom::telemetry::Pushgateway;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    stockroom::telemetry::init(env!("CARGO_BIN_NAME"));
    let db = Db::from_env(INVENTORY_DATABASE_URL).await?;
    let gateway = Pushgateway::from_env()?;
    run(service_fn(|event| {
        stock_levels::run(&db, gateway.as_ref(), event)
    }))
    .await
}
