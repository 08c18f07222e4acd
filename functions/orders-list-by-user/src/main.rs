//! GET /api/orders/user/{user_id}: one user's orders, newest first.
use lambda_http::Error;
use stockroom::http::{Endpoint, Service, serve};
use stockroom::{db::Db, handlers};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    stockroom::telemetry::init(env!("CARGO_BIN_NAME"));
    let orders = Db::from_env(stockroom::db::ORDER_DATABASE_URL).await?;
    serve(
        Endpoint::new(Service::Order, "/api/orders/user/{user_id}"),
        |request| handlers::orders::list_by_user(&orders, request),
    )
    .await
}
