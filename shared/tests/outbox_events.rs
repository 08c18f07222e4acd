//! `events::store::with_events` against the real inventory_db: one writing statement and the read
//! of the events its transaction wrote, in one round trip, and a failed statement leaves nothing
//! behind, not even an open transaction.

use stockroom::db::INVENTORY_DATABASE_URL;
use stockroom::events;
use stockroom_test_support::handler::{admin_query, db, unique};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;

const INSERT: &str = "INSERT INTO products (name, price, stock) VALUES ($1, 2.50, $2) RETURNING id";

/// Whether the session holds no transaction that wrote: inside a block still open after a write,
/// the transaction has an id; inside an aborted one, this statement fails.
const IDLE: &str = "SELECT pg_current_xact_id_if_assigned() IS NULL";

#[tokio::test]
async fn a_statement_comes_back_with_exactly_the_events_its_transaction_wrote() {
    let db = db().await;
    let name = unique("with events");
    let stock = 7_i32;
    let (rows, events) = db
        .run("test", async |c| {
            events::store::with_events(c, INSERT, &[(&name, Type::TEXT), (&stock, Type::INT4)])
                .await
        })
        .await
        .unwrap();
    let id: i64 = rows[0].get("id");
    let stored: Vec<String> = admin_query(
        INVENTORY_DATABASE_URL,
        &format!("SELECT event_id::text FROM outbox WHERE message_key = '{id}' ORDER BY id"),
    )
    .await
    .iter()
    .map(|r| r.get(0))
    .collect();
    let returned: Vec<String> = events.iter().map(|e| e.event_id.to_string()).collect();
    assert_eq!(returned, stored, "the events of the insert, and only those");
    // A product of 7 is below the low-stock threshold: created, then the alert.
    let types: Vec<String> = events
        .iter()
        .map(|e| {
            serde_json::from_str::<serde_json::Value>(&e.payload).unwrap()["event_type"].to_string()
        })
        .collect();
    assert_eq!(types, ["\"product_created\"", "\"low_stock_alert\""]);
    assert!(events.iter().all(|e| e.key == id.to_string()));
    // Committed: another session sees the product.
    let seen = admin_query(
        INVENTORY_DATABASE_URL,
        &format!("SELECT count(*) FROM products WHERE id = {id}"),
    )
    .await;
    assert_eq!(seen[0].get::<_, i64>(0), 1);
    let idle: bool = db
        .run("test", async |c| c.query_typed_one(IDLE, &[]).await)
        .await
        .unwrap()
        .get(0);
    assert!(idle, "the transaction is over");
}

#[tokio::test]
async fn a_failed_statement_returns_its_own_error_and_leaves_no_transaction_open() {
    let db = db().await;
    let name = unique("negative stock");
    let stock = -1_i32;
    let failed = db
        .run("test", async |c| {
            events::store::with_events(c, INSERT, &[(&name, Type::TEXT), (&stock, Type::INT4)])
                .await
        })
        .await;
    let err = match failed {
        Err(stockroom::db::DbError::Query(err)) => err,
        other => panic!(
            "expected the check's error, got {:?}",
            other.map(|(r, e)| (r.len(), e))
        ),
    };
    assert_eq!(err.code(), Some(&SqlState::CHECK_VIOLATION), "{err}");
    let written = admin_query(
        INVENTORY_DATABASE_URL,
        &format!("SELECT count(*) FROM products WHERE name = '{name}'"),
    )
    .await;
    assert_eq!(written[0].get::<_, i64>(0), 0);
    // The same connection goes on, outside any transaction block.
    let idle: bool = db
        .run("test", async |c| c.query_typed_one(IDLE, &[]).await)
        .await
        .unwrap()
        .get(0);
    assert!(idle, "the aborted transaction was ended");
}

/// Published events past the retention are deleted; younger or unpublished ones stay.
#[tokio::test]
async fn pruning_deletes_published_events_past_the_retention_only() {
    let db = db().await;
    let week = std::time::Duration::from_secs(7 * 24 * 3600);
    // One product each: old and published, old and unpublished, young and published.
    let mut keys = Vec::new();
    for (age, published) in [("8 days", true), ("8 days", false), ("6 days", true)] {
        let id: i64 = admin_query(
            INVENTORY_DATABASE_URL,
            &format!(
                "INSERT INTO products (name, price, stock) VALUES ('{}', 1.00, 100) RETURNING id",
                unique("pruned")
            ),
        )
        .await[0]
            .get(0);
        let published = if published { "now()" } else { "NULL" };
        admin_query(
            INVENTORY_DATABASE_URL,
            &format!(
                "UPDATE outbox SET created_at = now() - interval '{age}', published_at = {published} \
                 WHERE message_key = '{id}'"
            ),
        )
        .await;
        keys.push(id);
    }
    let pruned = db
        .run("test", async |c| events::store::prune(c, week).await)
        .await
        .unwrap();
    assert!(pruned >= 1, "{pruned}");
    let mut left = Vec::new();
    for key in &keys {
        left.push(
            admin_query(
                INVENTORY_DATABASE_URL,
                &format!("SELECT count(*) FROM outbox WHERE message_key = '{key}'"),
            )
            .await[0]
                .get::<_, i64>(0),
        );
    }
    assert_eq!(left, [0, 1, 1], "only the old published event is gone");
    // The unpublished one is not this test's to leave behind for a relay.
    admin_query(
        INVENTORY_DATABASE_URL,
        &format!(
            "UPDATE outbox SET published_at = now() WHERE message_key = '{}'",
            keys[1]
        ),
    )
    .await;
}
