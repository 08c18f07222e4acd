//! Versioned SQL migrations, embedded in the binary and applied by `stockroom-migrate`.
//!
//! Each database has an ordered list of SQL files under `shared/migrations/<database>/`, every one
//! of them embedded (`shared/build.rs` derives the list from the folder). Applying
//! takes an advisory lock (two deploys cannot migrate at once), runs every missing migration and
//! records it in `schema_migrations` with a checksum, all in one transaction: PostgreSQL DDL is
//! transactional, so a failed migration leaves the schema as it was. A migration edited after it
//! was applied is refused rather than silently skipped.

use tokio_postgres::Client;
use tokio_postgres::types::Type;

use crate::db::{INVENTORY_DATABASE_URL, NOTIFICATION_DATABASE_URL, ORDER_DATABASE_URL};

pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// A database Stockroom owns, with the environment variable that holds its URL.
pub struct Database {
    pub name: &'static str,
    pub url_var: &'static str,
    pub migrations: &'static [Migration],
}

// INVENTORY_DB, ORDER_DB, NOTIFICATION_DB: every file of `shared/migrations/<database>/`, in
// version order (shared/build.rs).
include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

pub const DATABASES: &[Database] = &[
    Database {
        name: "inventory_db",
        url_var: INVENTORY_DATABASE_URL,
        migrations: INVENTORY_DB,
    },
    Database {
        name: "order_db",
        url_var: ORDER_DATABASE_URL,
        migrations: ORDER_DB,
    },
    Database {
        name: "notification_db",
        url_var: NOTIFICATION_DATABASE_URL,
        migrations: NOTIFICATION_DB,
    },
];

pub fn database(name: &str) -> Option<&'static Database> {
    DATABASES.iter().find(|db| db.name == name)
}

/// Any fixed number: it only has to be the same for every migrator.
const LOCK_KEY: i64 = 0x5354_4f43_4b52_4f4f;

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("migration failed")]
    Db(#[from] tokio_postgres::Error),
    #[error(transparent)]
    Connect(#[from] crate::db::DbError),
    #[error(
        "migration {version} ({name}) was edited after it was applied; add a new migration instead"
    )]
    Changed { version: i32, name: &'static str },
}

impl MigrateError {
    /// The database could not be reached or went away: another try may succeed.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Db(err) => crate::db::DbError::is_unavailable(err),
            Self::Connect(err) => matches!(err, crate::db::DbError::Unavailable(_)),
            Self::Changed { .. } => false,
        }
    }
}

/// FNV-1a: enough to notice an edited file. Fixed for good: another function would make every
/// applied migration look edited.
pub fn checksum(sql: &str) -> String {
    let hash = sql.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}

/// Connects to `url` and [`apply`]s the migrations.
pub async fn apply_url(url: &str, migrations: &[Migration]) -> Result<Vec<i32>, MigrateError> {
    let (mut client, connection) = crate::db::open(url).await?;
    let driver = tokio::spawn(connection);
    let applied = apply(&mut client, migrations).await;
    drop(client);
    let _ = driver.await;
    applied
}

/// Environment variable read by `stockroom-migrate` for inventory_db: the stock level below
/// which a product's stock counts as low (`low_stock_alert`). Stored in `inventory_settings`,
/// where the products trigger reads it, so every writer uses the same threshold.
pub const LOW_STOCK_THRESHOLD: &str = "LOW_STOCK_THRESHOLD";

/// Stores the low-stock threshold in inventory_db.
pub async fn set_low_stock_threshold(url: &str, threshold: i32) -> Result<(), MigrateError> {
    let (client, connection) = crate::db::open(url).await?;
    let driver = tokio::spawn(connection);
    client
        .execute_typed(
            "UPDATE inventory_settings SET low_stock_threshold = $1",
            &[(&threshold, Type::INT4)],
        )
        .await?;
    drop(client);
    let _ = driver.await;
    Ok(())
}

/// Server-side bounds for every session of the database, set by each migration run. No statement
/// may outlive the functions' 15 s timeout, and a transaction left open by an environment that
/// froze or died mid-request must not hold its row locks (a hot product's, say) until the server
/// notices the dead socket. Set on the database, not per session, so RDS Proxy never pins.
const SESSION_BOUNDS: &str = "DO $$ BEGIN
    EXECUTE format('ALTER DATABASE %I SET statement_timeout = %L', current_database(), '10s');
    EXECUTE format('ALTER DATABASE %I SET idle_in_transaction_session_timeout = %L', current_database(), '15s');
END $$";

/// Applies the migrations not yet applied; returns the versions it applied, in order.
pub async fn apply(
    client: &mut Client,
    migrations: &[Migration],
) -> Result<Vec<i32>, MigrateError> {
    let tx = client.transaction().await?;
    // Migrations may take long on a big table; the bounds are for the functions' sessions.
    tx.batch_execute("SET LOCAL statement_timeout = 0").await?;
    tx.query_typed(
        "SELECT pg_advisory_xact_lock($1)",
        &[(&LOCK_KEY, Type::INT8)],
    )
    .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT NOT NULL,
             checksum   TEXT NOT NULL,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let applied: Vec<(i32, String)> = tx
        .query_typed("SELECT version, checksum FROM schema_migrations", &[])
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let mut done = Vec::new();
    for migration in migrations {
        let sum = checksum(migration.sql);
        match applied
            .iter()
            .find(|(version, _)| *version == migration.version)
        {
            Some((_, recorded)) if *recorded == sum => continue,
            Some(_) => {
                return Err(MigrateError::Changed {
                    version: migration.version,
                    name: migration.name,
                });
            }
            None => {}
        }
        tx.batch_execute(migration.sql).await?;
        tx.query_typed(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
            &[
                (&migration.version, Type::INT4),
                (&migration.name, Type::TEXT),
                (&sum, Type::TEXT),
            ],
        )
        .await?;
        done.push(migration.version);
    }
    tx.batch_execute(SESSION_BOUNDS).await?;
    tx.commit().await?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_strictly_increasing() {
        for db in DATABASES {
            let versions: Vec<i32> = db.migrations.iter().map(|m| m.version).collect();
            assert!(
                versions.windows(2).all(|w| w[0] < w[1]),
                "{}: {versions:?}",
                db.name
            );
            assert_eq!(versions.first(), Some(&1), "{}", db.name);
        }
    }

    #[test]
    fn every_file_of_a_database_folder_is_embedded_with_its_content() {
        for db in DATABASES {
            let dir = format!("{}/migrations/{}", env!("CARGO_MANIFEST_DIR"), db.name);
            let mut files: Vec<String> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|entry| entry.unwrap().file_name().into_string().unwrap())
                .filter(|name| name.ends_with(".sql"))
                .collect();
            files.sort();
            let embedded: Vec<String> = db
                .migrations
                .iter()
                .map(|m| format!("{:04}_{}.sql", m.version, m.name))
                .collect();
            assert_eq!(embedded, files, "{}", db.name);
            for (migration, file) in db.migrations.iter().zip(&files) {
                let on_disk = std::fs::read_to_string(format!("{dir}/{file}")).unwrap();
                assert_eq!(migration.sql, on_disk, "{file}");
            }
        }
    }

    #[test]
    fn checksum_notices_any_edit() {
        assert_eq!(checksum("CREATE TABLE a ()"), checksum("CREATE TABLE a ()"));
        assert_ne!(
            checksum("CREATE TABLE a ()"),
            checksum("CREATE TABLE a  ()")
        );
    }
}
