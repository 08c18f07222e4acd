//! Answers requests no route matches: JSON 404, or 405 with `Allow` when the path has other methods.
use lambda_http::{Error, run, service_fn};
use stockroom::api;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    stockroom::telemetry::init();
    run(service_fn(api::fallback::not_found)).await
}
