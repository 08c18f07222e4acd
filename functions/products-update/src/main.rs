//! PUT /api/products/{id}: replaces a product's name, description, price and stock.
use lambda_http::{Error, run, service_fn};
use stockroom::{api, db::Db};
use stockroom_kafka::KafkaPublisher;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    stockroom::telemetry::init();
    let db = Db::from_env(stockroom::db::INVENTORY_DATABASE_URL).await?;
    let events = KafkaPublisher::boxed_from_env()?;
    run(service_fn(|request| {
        api::products::update(&db, events.as_deref(), request)
    }))
    .await
}
