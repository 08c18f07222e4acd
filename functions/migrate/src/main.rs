//! CloudFormation custom resource `Migrations`: applies every database's migrations on each deploy.
use lambda_runtime::{Error, run, service_fn};
use stockroom::handlers::migrations::{self, PresignedPut};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    stockroom::telemetry::init(env!("CARGO_BIN_NAME"));
    run(service_fn(|event| {
        migrations::handle(event, stockroom::config::env, &PresignedPut)
    }))
    .await
}
