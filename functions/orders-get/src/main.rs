//! GET /api/orders/{id}: one order.
use lambda_http::Error;
use stockroom::http::{Endpoint, Service, serve};
use stockroom::{db::Db, handlers};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    stockroom::telemetry::init(env!("CARGO_BIN_NAME"));
    let orders = Db::from_env(stockroom::db::ORDER_DATABASE_URL).await?;
    serve(
        Endpoint::new(Service::Order, "/api/orders/{id}"),
        |request| handlers::orders::get(&orders, request),
    )
    .await
}
