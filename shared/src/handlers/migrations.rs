//! The `migrate` function, behind the template's `Migrations` custom resource: CloudFormation
//! invokes it on every create and update of the stack, before the functions that need the schema
//! (they depend on the resource), so a deploy never serves a schema older than its code. It
//! applies every database's pending migrations (`crate::migrate`, the same code as the
//! `stockroom-migrate` command) and answers CloudFormation on the request's presigned URL:
//! `SUCCESS` with what was applied, or `FAILED` with the reason, which the stack's events show
//! and which rolls the deploy back. Deleting the stack leaves the databases alone.
//!
//! For a database server the stack created, the template also sets [`BOOTSTRAP_SECRET_ARN`] and
//! [`BOOTSTRAP_URL`]: first, as the server's administrator, the function creates the roles and
//! databases ([`crate::bootstrap`]), then applies the migrations as usual.

use std::collections::BTreeMap;

use aws_lambda_events::event::cloudformation::CloudFormationCustomResourceRequest;
use lambda_http::LambdaEvent;
use serde_json::Value;

use crate::custom_resource;
pub use crate::custom_resource::{PresignedPut, Respond, Response};

use crate::migrate::{self, DATABASES};

/// The Secrets Manager secret (RDS's shape: `username`, `password`) of the server's administrator.
pub const BOOTSTRAP_SECRET_ARN: &str = "DATABASE_BOOTSTRAP_SECRET_ARN";
/// `postgres://host:port/postgres?sslmode=…` of the server itself (not the proxy), without a login.
pub const BOOTSTRAP_URL: &str = "DATABASE_BOOTSTRAP_URL";

/// The same on every create and update.
pub const PHYSICAL_ID: &str = "stockroom-migrations";

/// Handles one custom-resource request; `env` gives the environment's variables (the databases'
/// URLs, the bootstrap's, AWS's). Fails only when the answer could not be delivered.
pub async fn handle(
    event: LambdaEvent<CloudFormationCustomResourceRequest>,
    env: impl Fn(&str) -> Option<String>,
    respond: &impl Respond,
) -> Result<Response, String> {
    // A delete leaves the databases alone.
    custom_resource::handle(event.payload, PHYSICAL_ID, respond, async |properties| {
        set_up(&env, &properties).await
    })
    .await
}

/// The bootstrap, where configured, then every database's pending migrations.
async fn set_up(
    env: &impl Fn(&str) -> Option<String>,
    properties: &Value,
) -> Result<BTreeMap<String, String>, String> {
    let created = match env(BOOTSTRAP_SECRET_ARN).filter(|arn| !arn.is_empty()) {
        Some(arn) => Some(bootstrap(env, &arn).await?),
        None => None,
    };
    let mut applied = apply_all(env, properties).await?;
    if let Some(created) = created {
        applied.insert("created_databases".into(), format!("{created:?}"));
    }
    Ok(applied)
}

/// Creates the roles and databases as the administrator `secret_arn` holds the login of.
async fn bootstrap(
    env: &impl Fn(&str) -> Option<String>,
    secret_arn: &str,
) -> Result<Vec<String>, String> {
    let url = env(BOOTSTRAP_URL)
        .ok_or_else(|| format!("{BOOTSTRAP_SECRET_ARN} needs {BOOTSTRAP_URL}"))?;
    let login = crate::secrets::database_login(secret_arn, env).await?;
    let fail = |err: &dyn std::error::Error| format!("bootstrap: {}", crate::error::chain(err));
    let (client, connection) = crate::db::open_as(&url, &login.username, &login.password)
        .await
        .map_err(|err| fail(&err))?;
    let driver = tokio::spawn(connection);
    let created = crate::bootstrap::bootstrap(&client, &crate::bootstrap::LAYOUT)
        .await
        .map_err(|err| fail(&err));
    drop(client);
    let _ = driver.await;
    let created = created?;
    tracing::info!(?created, "roles and databases in place");
    Ok(created)
}

/// Every database's pending migrations, in order; per database, what was applied.
async fn apply_all(
    url_of: &impl Fn(&str) -> Option<String>,
    properties: &Value,
) -> Result<BTreeMap<String, String>, String> {
    let threshold = match &properties["LowStockThreshold"] {
        Value::Null => None,
        value => Some(
            value
                .as_str()
                .and_then(|text| text.parse::<i32>().ok())
                .or_else(|| value.as_i64().and_then(|n| i32::try_from(n).ok()))
                .filter(|n| *n >= 0)
                .ok_or_else(|| {
                    format!("LowStockThreshold must be a whole number >= 0, not {value}")
                })?,
        ),
    };
    let mut applied = BTreeMap::new();
    for database in DATABASES {
        let url = url_of(database.url_var)
            .ok_or_else(|| format!("{}: {} is not set", database.name, database.url_var))?;
        let fail = |err: migrate::MigrateError| {
            format!("{}: {}", database.name, crate::error::chain(&err))
        };
        let versions = migrate::apply_url(&url, database.migrations)
            .await
            .map_err(fail)?;
        if let (Some(threshold), "inventory_db") = (threshold, database.name) {
            migrate::set_low_stock_threshold(&url, threshold)
                .await
                .map_err(fail)?;
        }
        tracing::info!(database = database.name, ?versions, "migrations applied");
        applied.insert(database.name.to_owned(), format!("{versions:?}"));
    }
    Ok(applied)
}
