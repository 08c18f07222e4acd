//! Kafka consumer (MSK event source): records each event once, forwards alerts to SQS and sends
//! records it cannot handle to the dead-letter queue.
use lambda_runtime::{Error, run, service_fn};
use stockroom::db::{Db, NOTIFICATION_DATABASE_URL};
use stockroom::handlers::notifications;
use stockroom_sqs::{HANDLER_BACKOFF, SqsQueues};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    stockroom::telemetry::init(env!("CARGO_BIN_NAME"));
    let db = Db::from_env(NOTIFICATION_DATABASE_URL).await?;
    // After an SQS failure, batches are recorded without waiting on SQS; the forwarder sends.
    let queues = SqsQueues::from_env().await?.with_backoff(HANDLER_BACKOFF);
    run(service_fn(|event| {
        notifications::handle(&db, &queues, event)
    }))
    .await
}
