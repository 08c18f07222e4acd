//! Answers requests no route matches: JSON 404, or 405 with `Allow` when the path has other methods.
use lambda_http::Error;
use stockroom::handlers;
use stockroom::http::{Endpoint, Service, serve};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    stockroom::telemetry::init(env!("CARGO_BIN_NAME"));
    serve(
        Endpoint::new(Service::Gateway, "$default"),
        handlers::fallback::not_found,
    )
    .await
}
