//! The `migrate` function, behind the template's `Migrations` custom resource: CloudFormation
//! invokes it on every create and update of the stack, before the functions that need the schema
//! (they depend on the resource), so a deploy never serves a schema older than its code. It
//! applies every database's pending migrations (`crate::deploy::migrate`, the same code as the
//! `stockroom-migrate` command) and answers CloudFormation on the request's presigned URL:
//! `SUCCESS` with what was applied, or `FAILED` with the reason, which the stack's events show
//! and which rolls the deploy back. Deleting the stack leaves the databases alone.
//!
//! For a database server the stack created, the template also sets [`BOOTSTRAP_SECRET_ARN`] and
//! [`BOOTSTRAP_URL`]: first, as the server's administrator, the function creates the roles and
//! databases ([`crate::deploy::bootstrap`]), then applies the migrations as usual.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_lambda_events::event::cloudformation::CloudFormationCustomResourceRequest;
use lambda_http::LambdaEvent;
use serde_json::Value;

use crate::config::Vars;
use crate::db::DbError;
use crate::deploy;
pub use crate::deploy::custom_resource::{PresignedPut, Respond, Response};

use crate::deploy::migrate::DATABASES;

/// The Secrets Manager secret (RDS's shape: `username`, `password`) of the server's administrator.
pub const BOOTSTRAP_SECRET_ARN: &str = "DATABASE_BOOTSTRAP_SECRET_ARN";
/// `postgres://host:port/postgres?sslmode=…` of the server itself (not the proxy), without a login.
pub const BOOTSTRAP_URL: &str = "DATABASE_BOOTSTRAP_URL";

/// The same on every create and update.
pub const PHYSICAL_ID: &str = "stockroom-migrations";

/// How a step that could not reach its database is tried again. A server the stack has just
/// created may refuse or stall connections for a while after CloudFormation calls it ready (the
/// proxy registering its target, say); one such error must not fail, and roll back, the deploy.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Tries in all, the first included.
    pub attempts: u32,
    /// The pause before the second try; each later pause is twice the one before.
    pub first_pause: Duration,
}

impl Retry {
    /// Five tries over about 30 s of pauses; with the 5 s connect timeout, under a minute per step,
    /// so the four steps stay within the function's 300 s.
    pub const DEPLOY: Self = Self {
        attempts: 5,
        first_pause: Duration::from_secs(2),
    };

    /// Runs `step` until it succeeds, fails for a reason a retry cannot mend, or has been tried
    /// `attempts` times; each failure is logged.
    async fn run<T>(
        self,
        what: &str,
        mut step: impl AsyncFnMut() -> Result<T, Failure>,
    ) -> Result<T, String> {
        let mut pause = self.first_pause;
        for attempt in 1.. {
            match step().await {
                Ok(done) => return Ok(done),
                Err(Failure::Transient(reason)) if attempt < self.attempts => {
                    tracing::warn!(what, attempt, %reason, "database unreachable; trying again");
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
                Err(Failure::Transient(reason) | Failure::Final(reason)) => return Err(reason),
            }
        }
        unreachable!("the loop returns")
    }
}

/// Why a step failed: a database that could not be reached (worth another try), or anything else.
enum Failure {
    Transient(String),
    Final(String),
}

impl Failure {
    /// Transient when the database was `unavailable`, final otherwise.
    fn new(unavailable: bool, reason: String) -> Self {
        if unavailable {
            Self::Transient(reason)
        } else {
            Self::Final(reason)
        }
    }
}

/// Handles one custom-resource request; `env` gives the environment's variables (the databases'
/// URLs, the bootstrap's, AWS's). Fails only when the answer could not be delivered.
pub async fn handle(
    event: LambdaEvent<CloudFormationCustomResourceRequest>,
    env: impl Fn(&str) -> Option<String>,
    respond: &impl Respond,
) -> Result<Response, String> {
    handle_retrying(event, env, respond, Retry::DEPLOY).await
}

/// [`handle`], with `retry` for the steps that could not reach their database.
pub async fn handle_retrying(
    event: LambdaEvent<CloudFormationCustomResourceRequest>,
    env: impl Fn(&str) -> Option<String>,
    respond: &impl Respond,
    retry: Retry,
) -> Result<Response, String> {
    // A delete leaves the databases alone.
    deploy::custom_resource::handle(event.payload, PHYSICAL_ID, respond, async |properties| {
        set_up(&env, &properties, retry).await
    })
    .await
}

/// The bootstrap, where configured, then every database's pending migrations.
async fn set_up(
    env: &impl Fn(&str) -> Option<String>,
    properties: &Value,
    retry: Retry,
) -> Result<BTreeMap<String, String>, String> {
    let created = match env.optional(BOOTSTRAP_SECRET_ARN) {
        Some(arn) => Some(bootstrap(env, &arn, retry).await?),
        None => None,
    };
    let mut applied = apply_all(env, properties, retry).await?;
    if let Some(created) = created {
        applied.insert("created_databases".into(), format!("{created:?}"));
    }
    Ok(applied)
}

/// Creates the roles and databases as the administrator `secret_arn` holds the login of.
async fn bootstrap(
    env: &impl Fn(&str) -> Option<String>,
    secret_arn: &str,
    retry: Retry,
) -> Result<Vec<String>, String> {
    let url = env
        .required(BOOTSTRAP_URL)
        .map_err(|err| err.note(format!("{BOOTSTRAP_SECRET_ARN} needs it")))?;
    let login = crate::aws::secrets::database_login(secret_arn, env).await?;
    let fail = |err: &dyn std::error::Error| format!("bootstrap: {}", crate::error::chain(err));
    let created = retry
        .run("bootstrap", async || {
            let (client, connection) = crate::db::open_as(&url, &login.username, &login.password)
                .await
                .map_err(|err| Failure::new(matches!(err, DbError::Unavailable(_)), fail(&err)))?;
            let driver = tokio::spawn(connection);
            let created =
                crate::deploy::bootstrap::bootstrap(&client, &crate::deploy::bootstrap::LAYOUT)
                    .await
                    .map_err(|err| Failure::new(err.is_unavailable(), fail(&err)));
            drop(client);
            let _ = driver.await;
            created
        })
        .await?;
    tracing::info!(?created, "roles and databases in place");
    Ok(created)
}

/// Every database's pending migrations, in order; per database, what was applied.
async fn apply_all(
    url_of: &impl Fn(&str) -> Option<String>,
    properties: &Value,
    retry: Retry,
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
        let url = url_of
            .required(database.url_var)
            .map_err(|err| format!("{}: {err}", database.name))?;
        let fail = |err: deploy::migrate::MigrateError| {
            let reason = format!("{}: {}", database.name, crate::error::chain(&err));
            Failure::new(err.is_unavailable(), reason)
        };
        // Trying again is safe: the migrations apply in one transaction, so a failed try left nothing.
        let versions = retry
            .run(database.name, async || {
                let versions = deploy::migrate::apply_url(&url, database.migrations)
                    .await
                    .map_err(fail)?;
                if let (Some(threshold), "inventory_db") = (threshold, database.name) {
                    deploy::migrate::set_low_stock_threshold(&url, threshold)
                        .await
                        .map_err(fail)?;
                }
                Ok(versions)
            })
            .await?;
        tracing::info!(database = database.name, ?versions, "migrations applied");
        applied.insert(database.name.to_owned(), format!("{versions:?}"));
    }
    Ok(applied)
}
