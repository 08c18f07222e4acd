//! POST /api/orders: places one order, reserving its stock.
use lambda_http::Error;
use stockroom::http::{Endpoint, Service, serve};
use stockroom::{handlers, orders::saga::OrderContext};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    stockroom::telemetry::init(env!("CARGO_BIN_NAME"));
    let ctx = OrderContext::from_env().await?;
    serve(Endpoint::new(Service::Order, "/api/orders"), |request| {
        handlers::orders::create(&ctx, request)
    })
    .await
}
