//! GET /health: reports whether each dependency (the inventory database) is reachable.
use lambda_http::{Error, run, service_fn};
use stockroom::{api, db::Db};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    stockroom::telemetry::init();
    let db = Db::from_env(stockroom::db::INVENTORY_DATABASE_URL).await?;
    run(service_fn(|request| api::health::check(&db, request))).await
}
