//! The `outbox` table of inventory_db and order_db (migrations `inventory_db/0003`,
//! `order_db/0002`): the events a transaction wrote, which one to send next, marking them sent,
//! and how far behind publishing is. Rows are only ever marked through `outbox_mark_published`,
//! the function the order functions' restricted role may call too.

use std::time::Duration;

use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Error, GenericClient, Row};

use crate::config::{ConfigError, Vars};
use crate::events::outbox::OutboxEvent;

fn outbox_event(row: &Row) -> OutboxEvent {
    OutboxEvent {
        id: row.get("id"),
        event_id: row.get("event_id"),
        topic: row.get("topic"),
        key: row.get("message_key"),
        payload: row.get("payload"),
    }
}

/// The unpublished events transaction `txid` wrote, in order.
pub async fn unpublished_of(
    client: &impl GenericClient,
    txid: i64,
) -> Result<Vec<OutboxEvent>, Error> {
    let rows = client
        .query_typed(
            "SELECT id, event_id, topic, message_key, payload FROM outbox_unpublished($1)",
            &[(&txid, Type::INT8)],
        )
        .await?;
    Ok(rows.iter().map(outbox_event).collect())
}

/// The events the current transaction wrote so far, unpublished ([`with_events`]).
pub const EVENTS_OF_THIS_TRANSACTION: &str = "SELECT id, event_id, topic, message_key, payload \
     FROM outbox_unpublished(txid_current())";
/// Marks the events `$1` (`bigint[]`) published ([`mark_published`]).
pub const MARK_PUBLISHED: &str = "SELECT outbox_mark_published($1)";

/// Runs one writing statement and reads the events its transaction wrote, as one transaction in
/// one round trip: `BEGIN`, the statement, the outbox read and `COMMIT` go out together
/// (tokio-postgres sends a request when it is first polled, and `join4` polls them in this
/// order, before any answer is awaited). The triggers' outbox rows are invisible to the statement
/// that fired them, not to the next statement of its transaction. When the statement fails, its
/// error is returned and the `COMMIT` ends the aborted transaction as a rollback, so the session
/// is left idle.
pub async fn with_events(
    client: &Client,
    sql: &str,
    params: &[(&(dyn ToSql + Sync), Type)],
) -> Result<(Vec<Row>, Vec<OutboxEvent>), Error> {
    let (begun, rows, events, committed) = futures_util::future::join4(
        client.batch_execute("BEGIN"),
        client.query_typed(sql, params),
        client.query_typed(EVENTS_OF_THIS_TRANSACTION, &[]),
        client.batch_execute("COMMIT"),
    )
    .await;
    begun?;
    let rows = rows?;
    let events = events?;
    committed?;
    Ok((rows, events.iter().map(outbox_event).collect()))
}

/// The oldest `limit` unpublished events written at least `min_age` ago, locked until the
/// transaction ends; rows another transaction holds are skipped, so overlapping relays never send
/// the same events twice.
pub async fn lock_oldest(
    client: &impl GenericClient,
    limit: i64,
    min_age: Duration,
) -> Result<Vec<OutboxEvent>, Error> {
    let rows = client
        .query_typed(
            "SELECT id, event_id, topic, message_key, payload FROM outbox \
             WHERE published_at IS NULL AND created_at <= now() - make_interval(secs => $2) \
             ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
            &[(&limit, Type::INT8), (&min_age.as_secs_f64(), Type::FLOAT8)],
        )
        .await?;
    Ok(rows.iter().map(outbox_event).collect())
}

/// Marks events published (once: a row already marked keeps its time).
pub async fn mark_published(
    client: &impl GenericClient,
    events: &[OutboxEvent],
) -> Result<(), Error> {
    let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
    client
        .query_typed(MARK_PUBLISHED, &[(&ids, Type::INT8_ARRAY)])
        .await?;
    Ok(())
}

/// How long published events (and sent SQS messages) are kept before the scheduled runs delete
/// them, in hours: long enough to look into a delivery after the fact, short enough that the
/// outboxes do not grow without bound (the development inventory outbox reached 1.65 million rows,
/// 645 MB, and its autovacuum slowed a benchmark).
pub const RETENTION_HOURS_VAR: &str = "OUTBOX_RETENTION_HOURS";
const DEFAULT_RETENTION_HOURS: u64 = 7 * 24;
/// Rows one pruning statement deletes at most, and statements per run: 50,000 rows a minute.
const PRUNE_BATCH: i64 = 5_000;
const PRUNE_BATCHES: usize = 10;

/// The retention [`RETENTION_HOURS_VAR`] sets (a week when unset or empty).
pub fn retention_from_env() -> Result<Duration, ConfigError> {
    retention_from(crate::config::env)
}

/// [`retention_from_env`] with the settings as `vars` gives them.
fn retention_from(vars: impl Fn(&str) -> Option<String>) -> Result<Duration, ConfigError> {
    let hours = vars.parsed_with(RETENTION_HOURS_VAR, "a whole number of hours", |text| {
        text.parse::<u64>().ok()?.checked_mul(3600)
    })?;
    Ok(Duration::from_secs(
        hours.unwrap_or(DEFAULT_RETENTION_HOURS * 3600),
    ))
}

/// Deletes published events older than `retention`; returns how many.
pub async fn prune(client: &impl GenericClient, retention: Duration) -> Result<u64, Error> {
    prune_of(client, "outbox", "published_at", retention).await
}

/// Deletes the rows of an outbox-shaped table whose `done` column is set and that are older than
/// `retention`, in bounded statements. The age is found through the table's BRIN index on
/// `created_at` (migrations `*_retention`), so a run with nothing old enough reads almost nothing
/// however large the table is.
pub(crate) async fn prune_of(
    client: &impl GenericClient,
    table: &'static str,
    done: &'static str,
    retention: Duration,
) -> Result<u64, Error> {
    let sql = format!(
        "DELETE FROM {table} WHERE id IN (SELECT id FROM {table} \
         WHERE created_at < now() - make_interval(secs => $2) AND {done} IS NOT NULL LIMIT $1)"
    );
    let mut deleted = 0;
    for _ in 0..PRUNE_BATCHES {
        let n = client
            .execute_typed(
                &sql,
                &[
                    (&PRUNE_BATCH, Type::INT8),
                    (&retention.as_secs_f64(), Type::FLOAT8),
                ],
            )
            .await?;
        deleted += n;
        if n < PRUNE_BATCH as u64 {
            break;
        }
    }
    Ok(deleted)
}

/// How far behind publishing is: unpublished events, and the age of the oldest in seconds (0
/// when there is none).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Backlog {
    pub pending: i64,
    pub oldest_age_seconds: f64,
}

/// The outbox's [`Backlog`] (owner rights; served by the `published_at IS NULL` index).
pub async fn backlog(client: &impl GenericClient) -> Result<Backlog, Error> {
    backlog_of(client, "outbox", "published_at").await
}

/// The [`Backlog`] of any outbox-shaped table: rows whose `done` column is still NULL, by their
/// `created_at`.
pub(crate) async fn backlog_of(
    client: &impl GenericClient,
    table: &'static str,
    done: &'static str,
) -> Result<Backlog, Error> {
    let sql = format!(
        "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8 \
         FROM {table} WHERE {done} IS NULL"
    );
    let row = client.query_typed_one(&sql, &[]).await?;
    Ok(Backlog {
        pending: row.get(0),
        oldest_age_seconds: row.get(1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retention_is_a_week_unless_set_to_whole_hours() {
        let retention = |value: Option<&'static str>| {
            retention_from(move |name: &str| {
                assert_eq!(name, RETENTION_HOURS_VAR);
                value.map(str::to_owned)
            })
        };
        let week = Duration::from_secs(7 * 24 * 3600);
        assert_eq!(retention(None), Ok(week));
        assert_eq!(retention(Some("")), Ok(week));
        assert_eq!(retention(Some(" 2 ")), Ok(Duration::from_secs(7200)));
        let err = retention(Some("1w")).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"OUTBOX_RETENTION_HOURS is not a whole number of hours: "1w""#
        );
        assert!(
            retention(Some("18446744073709551615")).is_err(),
            "overflows"
        );
    }
}
