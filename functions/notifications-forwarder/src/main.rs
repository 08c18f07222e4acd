//! Scheduled (EventBridge): sends the alerts and dead letters SQS did not take when they were
//! recorded, from notification_db's outbox.
use lambda_runtime::{Error, run, service_fn};
use stockroom::db::{Db, NOTIFICATION_DATABASE_URL};
use stockroom::handlers::notifications;
use stockroom_sqs::SqsQueues;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    stockroom::telemetry::init(env!("CARGO_BIN_NAME"));
    let retention = stockroom::events::store::retention_from_env()?;
    let db = Db::from_env(NOTIFICATION_DATABASE_URL).await?;
    let queues = SqsQueues::from_env().await?;
    run(service_fn(|event| {
        notifications::forward(&db, &queues, retention, event)
    }))
    .await
}
