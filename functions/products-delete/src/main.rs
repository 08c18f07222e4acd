//! DELETE /api/products/{id}: deletes a product.
use lambda_http::Error;
use stockroom::http::{Endpoint, Service, serve};
use stockroom::{db::Db, handlers};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    stockroom::telemetry::init(env!("CARGO_BIN_NAME"));
    let db = Db::from_env(stockroom::db::INVENTORY_DATABASE_URL).await?;
    serve(
        Endpoint::new(Service::Inventory, "/api/products/{id}"),
        |request| handlers::products::delete(&db, request),
    )
    .await
}
