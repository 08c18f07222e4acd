//! GET /api/notifications: recorded notifications, newest first, all or one keyset page.
use lambda_http::Error;
use stockroom::http::{Endpoint, Service, serve};
use stockroom::{db::Db, handlers};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    stockroom::telemetry::init(env!("CARGO_BIN_NAME"));
    let db = Db::from_env(stockroom::db::NOTIFICATION_DATABASE_URL).await?;
    serve(
        Endpoint::new(Service::Notification, "/api/notifications"),
        |request| handlers::notifications::list(&db, request),
    )
    .await
}
