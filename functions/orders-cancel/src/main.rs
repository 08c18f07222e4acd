//! POST /api/orders/{id}/cancel: cancels a confirmed order and returns its stock.
use lambda_http::Error;
use stockroom::http::{Endpoint, Service, serve};
use stockroom::{handlers, orders::saga::OrderContext};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    stockroom::telemetry::init(env!("CARGO_BIN_NAME"));
    let ctx = OrderContext::from_env().await?;
    serve(
        Endpoint::new(Service::Order, "/api/orders/{id}/cancel"),
        |request| handlers::orders::cancel(&ctx, request),
    )
    .await
}
