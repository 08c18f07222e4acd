//! GET /api/notifications: recorded notifications, newest first, all or one keyset page.
use lambda_http::Error;
use stockroom::http::{Endpoint, Service, serve};
use stockroom::{api, db::Db};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    stockroom::telemetry::init(env!("CARGO_BIN_NAME"));
    let db = Db::from_env(stockroom::db::NOTIFICATION_DATABASE_URL).await?;
    serve(
        Endpoint::new(Service::Notification, "/api/notifications"),
        |request| api::notifications::list(&db, request),
    )
    .await
}
