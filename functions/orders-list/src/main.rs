//! GET /api/orders: orders newest first, all or one keyset page.
use lambda_http::{Error, run, service_fn};
use stockroom::{api, db::Db};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    stockroom::telemetry::init();
    let orders = Db::from_env(stockroom::db::ORDER_DATABASE_URL).await?;
    run(service_fn(|request| api::orders::list(&orders, request))).await
}
