//! GET /api/orders: orders newest first, all or one keyset page.
use lambda_http::Error;
use stockroom::http::{Endpoint, Service, serve};
use stockroom::{db::Db, handlers};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    stockroom::telemetry::init(env!("CARGO_BIN_NAME"));
    let orders = Db::from_env(stockroom::db::ORDER_DATABASE_URL).await?;
    serve(Endpoint::new(Service::Order, "/api/orders"), |request| {
        handlers::orders::list(&orders, request)
    })
    .await
}
