//! GET /api/notifications: recorded notifications, newest first, all or one keyset page.
use lambda_http::{Error, run, service_fn};
use stockroom::{api, db::Db};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    stockroom::telemetry::init();
    let db = Db::from_env(stockroom::db::NOTIFICATION_DATABASE_URL).await?;
    run(service_fn(|request| api::notifications::list(&db, request))).await
}
