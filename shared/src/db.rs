//! One PostgreSQL connection per Lambda execution environment.
//!
//! An environment handles one request at a time, so a pool would only hold idle sockets against
//! RDS's connection limit. The connection is opened during init (which Lambda runs at full CPU) and
//! reopened whenever it is found dead: when an environment thaws after minutes frozen, the server
//! or a NAT may have dropped the socket. Statements go through `query_typed`, which uses unnamed
//! statements, and nothing sets session state, so RDS Proxy can multiplex without pinning.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{Mutex, MutexGuard};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, Transaction};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::config::{ConfigError, Vars};

pub mod iam;
pub mod tls;
pub mod url;

/// Environment variable holding the inventory database's connection URL.
pub const INVENTORY_DATABASE_URL: &str = "INVENTORY_DATABASE_URL";
/// Environment variable holding the order database's connection URL.
pub const ORDER_DATABASE_URL: &str = "ORDER_DATABASE_URL";
/// Environment variable holding the notification database's connection URL.
pub const NOTIFICATION_DATABASE_URL: &str = "NOTIFICATION_DATABASE_URL";
/// Environment variable holding the URL through which the order functions reach inventory_db's
/// stock reservation functions (as the role `stockroom_orders`, which may do nothing else).
pub const STOCK_RESERVATION_DATABASE_URL: &str = "STOCK_RESERVATION_DATABASE_URL";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection unused for longer than this is checked before use.
const IDLE_CHECK_AFTER: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database cannot be reached or dropped the connection: worth a retry later (503).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database answered with an error (a bug of ours, or a constraint we map ourselves).
    #[error("database error")]
    Query(#[source] tokio_postgres::Error),
    /// The URL cannot be used (a deployment mistake): no retry mends it.
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
}

impl DbError {
    /// Whether `err` means the database could not be reached or went away (worth a retry), rather
    /// than an answer to a statement.
    pub fn is_unavailable(err: &tokio_postgres::Error) -> bool {
        let unavailable_state = err.code().is_some_and(|code| {
            [
                SqlState::ADMIN_SHUTDOWN,
                SqlState::CRASH_SHUTDOWN,
                SqlState::CANNOT_CONNECT_NOW,
                SqlState::TOO_MANY_CONNECTIONS,
            ]
            .contains(code)
        });
        let io_failure = std::error::Error::source(err)
            .is_some_and(|source| source.downcast_ref::<std::io::Error>().is_some());
        err.is_closed() || unavailable_state || io_failure
    }
}

impl From<tokio_postgres::Error> for DbError {
    fn from(err: tokio_postgres::Error) -> Self {
        if Self::is_unavailable(&err) {
            Self::Unavailable(err.to_string())
        } else {
            Self::Query(err)
        }
    }
}

/// The connection of this execution environment, reopened on demand. A clone is another handle
/// to the same connection: a reference count, so cloning copies no configuration.
#[derive(Clone)]
pub struct Db(Arc<Inner>);

struct Inner {
    config: Config,
    tls: MakeRustlsConnect,
    /// Whether each connection presents a fresh IAM token as its password.
    iam: bool,
    slot: Mutex<Slot>,
    /// `<database>_query_duration_seconds`: `inventory_db_query_duration_seconds` and so on, the
    /// original system's names.
    query_metric: String,
}

#[derive(Default)]
struct Slot {
    client: Option<Client>,
    last_used: Option<SystemTime>,
}

/// Exclusive use of the live connection for one request. Pass every database result through
/// [`Conn::check`], which turns errors into [`DbError`] and discards a connection that proved dead.
pub struct Conn<'a> {
    slot: MutexGuard<'a, Slot>,
}

/// The connection driver of a client from [`open`].
pub type Connection = tokio_postgres::Connection<
    tokio_postgres::Socket,
    <MakeRustlsConnect as tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket>>::Stream,
>;

/// One connection to `url`, as the functions connect (TLS, `auth=iam`), for tools that need a
/// client of their own (`stockroom-migrate`).
pub async fn open(url: &str) -> Result<(Client, Connection), DbError> {
    let target = url::target(url).map_err(DbError::InvalidUrl)?;
    let config = signed_in(&target.config, target.iam)?;
    connect_bounded(&config, target.tls).await
}

/// As [`open`], logging in as `user` with `password` rather than as the URL says (a login read
/// from a secret: `crate::deploy::bootstrap`).
pub async fn open_as(
    url: &str,
    user: &str,
    password: &str,
) -> Result<(Client, Connection), DbError> {
    let target = url::target(url).map_err(DbError::InvalidUrl)?;
    let mut config = target.config;
    config.user(user).password(password);
    connect_bounded(&config, target.tls).await
}

/// Connects within [`CONNECT_TIMEOUT`], TLS and login included: a server that accepts the TCP
/// connection and then says nothing (one still starting, say) must not hold the caller until its
/// own timeout.
async fn connect_bounded(
    config: &Config,
    tls: MakeRustlsConnect,
) -> Result<(Client, Connection), DbError> {
    tokio::time::timeout(CONNECT_TIMEOUT, config.connect(tls))
        .await
        .map_err(|_| DbError::Unavailable("timed out connecting".into()))?
        .map_err(DbError::from)
}

/// The configuration to connect with: with `auth=iam`, a fresh token as the password.
fn signed_in(config: &Config, iam: bool) -> Result<Cow<'_, Config>, DbError> {
    if !iam {
        return Ok(Cow::Borrowed(config));
    }
    let credentials =
        iam::Credentials::from_env().map_err(|err| DbError::Unavailable(err.to_string()))?;
    let host = match config.get_hosts() {
        [tokio_postgres::config::Host::Tcp(host), ..] => host.clone(),
        _ => return Err(DbError::Unavailable("auth=iam needs a TCP host".into())),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("postgres");
    let mut signed = config.clone();
    signed.password(iam::auth_token(
        &credentials,
        &host,
        port,
        user,
        chrono::Utc::now(),
    ));
    Ok(Cow::Owned(signed))
}

impl Db {
    /// Parses a `postgres://` URL (with libpq's `sslmode` and `sslrootcert`, and `auth=iam`; see
    /// [`url`]); does not connect.
    pub fn new(url: &str) -> Result<Self, DbError> {
        Self::parse(url).map_err(DbError::InvalidUrl)
    }

    /// [`Db::new`], with why `url` is unusable.
    fn parse(url: &str) -> Result<Self, String> {
        let url::Target {
            mut config,
            tls,
            iam,
            ..
        } = url::target(url)?;
        config
            .connect_timeout(CONNECT_TIMEOUT)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30));
        if config.get_application_name().is_none() {
            config.application_name(
                crate::config::env
                    .optional("AWS_LAMBDA_FUNCTION_NAME")
                    .as_deref()
                    .unwrap_or("stockroom"),
            );
        }
        let query_metric = format!(
            "{}_query_duration_seconds",
            config.get_dbname().unwrap_or("stockroom_db")
        );
        Ok(Self(Arc::new(Inner {
            config,
            tls,
            iam,
            slot: Mutex::new(Slot::default()),
            query_metric,
        })))
    }

    /// Reads the URL from `var` and connects eagerly, during init. A missing, empty or invalid URL
    /// is a deployment mistake and fails init with a [`ConfigError`] naming `var` (the URL itself
    /// is not repeated: it may hold a password); an unreachable database does not: requests answer
    /// 503 and the next one tries again.
    pub async fn from_env(var: &str) -> Result<Self, ConfigError> {
        let url = crate::config::env.required(var)?;
        let db = Self::parse(&url).map_err(|reason| {
            ConfigError::invalid_secret(var, "a usable PostgreSQL URL").note(reason)
        })?;
        if let Err(err) = db.conn().await {
            tracing::warn!(%err, "could not connect during init; will retry per request");
        }
        Ok(db)
    }

    /// The live connection. One that is closed is replaced; one idle for a while (the environment
    /// may have been frozen, and the server or a NAT may have dropped the socket without our
    /// noticing) is first checked with an empty query, so no statement is ever sent down a dead
    /// socket and no request has to be retried.
    pub async fn conn(&self) -> Result<Conn<'_>, DbError> {
        let mut slot = self.0.slot.lock().await;
        let idle = slot.last_used.is_none_or(|at| {
            at.elapsed().is_ok_and(|idle| idle > IDLE_CHECK_AFTER) || at > SystemTime::now()
        });
        let usable = match &slot.client {
            Some(client) if client.is_closed() => false,
            Some(client) if idle => tokio::time::timeout(CONNECT_TIMEOUT, client.simple_query(""))
                .await
                .is_ok_and(|answer| answer.is_ok()),
            Some(_) => true,
            None => false,
        };
        if !usable {
            slot.client = None;
            slot.client = Some(self.connect().await?);
        }
        slot.last_used = Some(SystemTime::now());
        Ok(Conn { slot })
    }

    async fn connect(&self) -> Result<Client, DbError> {
        let config = signed_in(&self.0.config, self.0.iam)?;
        let (client, connection) =
            tokio::time::timeout(CONNECT_TIMEOUT, config.connect(self.0.tls.clone()))
                .await
                .map_err(|_| DbError::Unavailable("timed out connecting".into()))??;
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::warn!(%err, "database connection ended");
            }
        });
        Ok(client)
    }

    /// The database's name (`inventory_db`), for metrics and logs.
    pub fn name(&self) -> &str {
        self.0.config.get_dbname().unwrap_or("?")
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), DbError> {
        self.run("ping", async |client| client.simple_query("SELECT 1").await)
            .await
            .map(drop)
    }

    /// Runs `work` on the live connection: the one way statements reach the database. Its errors
    /// become [`DbError`]s (a connection that proved dead is dropped), and its duration is
    /// recorded as `<database>_query_duration_seconds{operation}`.
    pub async fn run<T>(
        &self,
        operation: &'static str,
        work: impl AsyncFnOnce(&Client) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, DbError> {
        let mut conn = self.conn().await?;
        let started = Instant::now();
        let result = work(&conn).await;
        self.observe(operation, started);
        conn.check(result)
    }

    /// Runs `work` in a transaction, committed when `work` succeeds (rolled back when it fails or
    /// the connection drops), as one timed operation, like [`Db::run`].
    pub async fn transaction<T>(
        &self,
        operation: &'static str,
        work: impl AsyncFnOnce(&Transaction<'_>) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, DbError> {
        let mut conn = self.conn().await?;
        let started = Instant::now();
        let result = async {
            let tx = conn.transaction().await?;
            let value = work(&tx).await?;
            tx.commit().await?;
            Ok(value)
        }
        .await;
        self.observe(operation, started);
        conn.check(result)
    }

    fn observe(&self, operation: &'static str, started: Instant) {
        metrics::histogram!(self.0.query_metric.clone(), "operation" => operation)
            .record(started.elapsed().as_secs_f64());
    }
}

impl Conn<'_> {
    /// Converts a database result, dropping the connection when the error shows it is unusable,
    /// so the next request starts on a new session (the server rolls back anything abandoned).
    pub fn check<T>(&mut self, result: Result<T, tokio_postgres::Error>) -> Result<T, DbError> {
        result.map_err(|err| self.fail(err))
    }

    /// Converts a database error, dropping the connection when the error shows it is unusable.
    pub fn fail(&mut self, err: tokio_postgres::Error) -> DbError {
        let err = DbError::from(err);
        if matches!(err, DbError::Unavailable(_)) {
            self.slot.client = None;
        }
        err
    }
}

impl std::ops::Deref for Conn<'_> {
    type Target = Client;

    fn deref(&self) -> &Client {
        self.slot
            .client
            .as_ref()
            .expect("a Conn always holds a client")
    }
}

impl std::ops::DerefMut for Conn<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        self.slot
            .client
            .as_mut()
            .expect("a Conn always holds a client")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_url_fails_init_with_a_config_error_naming_it() {
        let err = Db::from_env("STOCKROOM_TEST_NEVER_SET_DATABASE_URL")
            .await
            .err()
            .unwrap();
        assert_eq!(err.var(), "STOCKROOM_TEST_NEVER_SET_DATABASE_URL");
        assert_eq!(
            err.to_string(),
            "STOCKROOM_TEST_NEVER_SET_DATABASE_URL is not set"
        );
    }
}
