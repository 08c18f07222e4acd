//! POST /api/orders/{id}/cancel: cancels a confirmed order and returns its stock.
use lambda_http::{Error, run, service_fn};
use stockroom::{api, ordering::OrderDbs};
use stockroom_kafka::KafkaPublisher;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    stockroom::telemetry::init();
    let dbs = OrderDbs::from_env(KafkaPublisher::boxed_from_env()?).await?;
    run(service_fn(|request| api::orders::cancel(&dbs, request))).await
}
