//! Prepares a new PostgreSQL server for Stockroom, as its administrator: the login roles the
//! functions use and the three databases, owned by the first. Locally `localstack/lib.sh` does this
//! as the superuser; in AWS, for an instance the stack created, the `migrate` function does it on
//! every deploy, as RDS's master user (its login read from Secrets Manager), before applying the
//! migrations as the owner. Idempotent: what exists is left as it is.
//!
//! Where RDS's `rds_iam` role exists, both roles get it, so they log in with IAM tokens through
//! RDS Proxy's end-to-end IAM authentication and have no password at all.

use tokio_postgres::Client;
use tokio_postgres::types::Type;

/// Who owns the databases and everything in them: the inventory, order and notification functions
/// log in as it.
pub const OWNER: &str = "stockroom";
/// The order functions' role in inventory_db, which may only call the stock reservation functions
/// (migration `inventory_db/0002` grants them).
pub const ORDERS_ROLE: &str = "stockroom_orders";

/// The roles and databases to create.
pub struct Layout<'a> {
    pub owner: &'a str,
    pub orders_role: &'a str,
    pub databases: &'a [&'a str],
}

/// Stockroom's own.
pub const LAYOUT: Layout<'static> = Layout {
    owner: OWNER,
    orders_role: ORDERS_ROLE,
    databases: &["inventory_db", "order_db", "notification_db"],
};

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("{0:?} is not a plain lower-case identifier")]
    Name(String),
    #[error(transparent)]
    Db(#[from] tokio_postgres::Error),
}

impl BootstrapError {
    /// The server could not be reached or went away: another try may succeed.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Db(err) if crate::db::DbError::is_unavailable(err))
    }
}

/// Identifiers are spliced into DDL, which takes no parameters: only plain ones are accepted.
fn ident(name: &str) -> Result<String, BootstrapError> {
    let plain = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if plain {
        Ok(format!("\"{name}\""))
    } else {
        Err(BootstrapError::Name(name.to_owned()))
    }
}

async fn exists(admin: &Client, sql: &str, name: &str) -> Result<bool, tokio_postgres::Error> {
    Ok(!admin
        .query_typed(sql, &[(&name, Type::TEXT)])
        .await?
        .is_empty())
}

async fn role_exists(admin: &Client, role: &str) -> Result<bool, tokio_postgres::Error> {
    exists(admin, "SELECT FROM pg_roles WHERE rolname = $1", role).await
}

/// Creates what `layout` names and is missing; returns the databases it created.
pub async fn bootstrap(admin: &Client, layout: &Layout<'_>) -> Result<Vec<String>, BootstrapError> {
    let iam = role_exists(admin, "rds_iam").await?;
    for role in [layout.owner, layout.orders_role] {
        let quoted = ident(role)?;
        if role_exists(admin, role).await? {
            admin
                .batch_execute(&format!("ALTER ROLE {quoted} LOGIN"))
                .await?;
        } else {
            admin
                .batch_execute(&format!("CREATE ROLE {quoted} LOGIN"))
                .await?;
        }
        if iam {
            admin
                .batch_execute(&format!("GRANT rds_iam TO {quoted}"))
                .await?;
        }
    }
    // RDS's master user is no superuser: to create a database owned by another role it must be
    // able to act as that role.
    let owner = ident(layout.owner)?;
    admin
        .batch_execute(&format!("GRANT {owner} TO CURRENT_USER"))
        .await?;
    let mut created = Vec::new();
    for database in layout.databases {
        let quoted = ident(database)?;
        if !exists(
            admin,
            "SELECT FROM pg_database WHERE datname = $1",
            database,
        )
        .await?
        {
            // CREATE DATABASE cannot run in a transaction: each is its own statement.
            admin
                .batch_execute(&format!("CREATE DATABASE {quoted} OWNER {owner}"))
                .await?;
            created.push((*database).to_owned());
        }
    }
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_identifiers_reach_the_ddl() {
        assert_eq!(ident("stockroom_orders").unwrap(), "\"stockroom_orders\"");
        for bad in ["", "Stockroom", "a\"b", "x; DROP DATABASE y", "a-b"] {
            assert!(ident(bad).is_err(), "{bad}");
        }
    }
}
