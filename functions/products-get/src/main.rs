//! GET /api/products/{id}: one product.
use lambda_http::{Error, run, service_fn};
use stockroom::{api, db::Db};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    stockroom::telemetry::init();
    let db = Db::from_env(stockroom::db::INVENTORY_DATABASE_URL).await?;
    run(service_fn(|request| api::products::get(&db, request))).await
}
