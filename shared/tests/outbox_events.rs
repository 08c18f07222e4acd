//! The outbox against the real databases: the triggers write each change's events as typed rows,
//! in order, and nothing for a change that failed; the relay's reading of them gives the JSON the
//! consumers read (docs/events.md); pruning deletes only published events past the retention.

use serde_json::{Value, json};
use stockroom::db::{INVENTORY_DATABASE_URL, ORDER_DATABASE_URL};
use stockroom::events;
use stockroom::events::store::Outbox;
use stockroom::http::request_body::JsonObject;
use stockroom::orders;
use stockroom::orders::OrderRequest;
use stockroom_test_support::handler::{admin_query, db, order_dbs, pause_relay, unique};

/// The events of one product or order, as the relay sends them: `(event_type, JSON, its text)`.
async fn sent(var: &str, outbox: Outbox, key: i64) -> Vec<(String, Value, String)> {
    let db = stockroom::db::Db::new(&std::env::var(var).unwrap()).unwrap();
    let events = db
        .run("test", async |c| {
            events::store::of_key(c, outbox, key).await
        })
        .await
        .unwrap();
    events
        .iter()
        .map(|e| {
            assert_eq!(e.key, key.to_string());
            let value: Value = serde_json::from_str(&e.payload).unwrap();
            assert_eq!(value["event_id"], e.event_id.to_string());
            let event_type = value["event_type"].as_str().unwrap().to_owned();
            (event_type, value, e.payload.clone())
        })
        .collect()
}

fn threshold_of(rows: &[tokio_postgres::Row]) -> i64 {
    i64::from(rows[0].get::<_, i32>(0))
}

#[tokio::test]
async fn a_product_created_low_yields_created_then_its_alert_with_exact_fields() {
    let threshold = threshold_of(
        &admin_query(
            INVENTORY_DATABASE_URL,
            "SELECT low_stock_threshold FROM inventory_settings",
        )
        .await,
    );
    let name = unique("typed outbox");
    let stock = threshold - 1;
    let id: i64 = admin_query(
        INVENTORY_DATABASE_URL,
        &format!("INSERT INTO products (name, price, stock) VALUES ('{name}', 2.50, {stock}) RETURNING id"),
    )
    .await[0]
        .get(0);
    let events = sent(INVENTORY_DATABASE_URL, Outbox::Inventory, id).await;
    let types: Vec<&str> = events.iter().map(|(t, _, _)| t.as_str()).collect();
    assert_eq!(types, ["product_created", "low_stock_alert"]);
    let (_, created, text) = &events[0];
    assert_eq!(created["product_id"], id);
    assert_eq!(created["name"], name.as_str());
    assert_eq!(created["stock"], stock);
    // Money as a JSON number with its two decimals, never through a float.
    assert!(text.contains(r#""price":2.50"#), "{text}");
    assert_eq!(created["version"], 1);
    let (_, alert, _) = &events[1];
    assert_eq!(alert["threshold"], threshold);
    assert_eq!(alert.get("price"), None);
    // occurred_at is the change's transaction start, with microseconds; timestamp the same second.
    let occurred = created["occurred_at"].as_str().unwrap();
    let at = chrono::DateTime::parse_from_rfc3339(occurred).unwrap();
    assert_eq!(
        occurred.len(),
        "2026-01-01T00:00:00.000000Z".len(),
        "{occurred}"
    );
    assert_eq!(created["timestamp"], at.timestamp());
    assert_ne!(created["event_id"], alert["event_id"]);
}

#[tokio::test]
async fn a_change_that_fails_writes_no_event() {
    let name = unique("refused");
    let url = std::env::var(INVENTORY_DATABASE_URL).unwrap();
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    // The row is written (and its trigger runs), then the statement fails on the next row.
    let failed = client
        .batch_execute(&format!(
            "INSERT INTO products (name, price, stock) VALUES ('{name}', 1.00, 5), ('{name}', 1.00, -1)"
        ))
        .await;
    assert!(failed.is_err());
    let rows = admin_query(
        INVENTORY_DATABASE_URL,
        &format!("SELECT count(*) FROM outbox WHERE name = '{name}'"),
    )
    .await;
    assert_eq!(rows[0].get::<_, i64>(0), 0);
}

#[tokio::test]
async fn a_bulk_order_yields_one_order_created_per_line_and_a_cancel_its_cancelled() {
    let product = stockroom_test_support::handler::product_with_stock("3.10", 100).await;
    let body = json!({"user_id": 4, "items": [
        {"product_id": product, "quantity": 1},
        {"product_id": product, "quantity": 2},
        {"product_id": product, "quantity": 3},
    ]});
    let request = OrderRequest::bulk(&JsonObject::parse(&body.to_string()).unwrap()).unwrap();
    let ctx = order_dbs().await;
    let placed = orders::saga::place(&ctx, &request, None).await;
    assert_eq!(placed.status, 201, "{}", placed.body);
    let placed: Vec<Value> = serde_json::from_str(&placed.body).unwrap();
    for (order, quantity) in placed.iter().zip(1..) {
        let id = order["id"].as_i64().unwrap();
        let events = sent(ORDER_DATABASE_URL, Outbox::Orders, id).await;
        assert_eq!(events.len(), 1, "{events:?}");
        let (event_type, event, text) = &events[0];
        assert_eq!(event_type, "order_created");
        assert_eq!(event["quantity"], quantity);
        assert_eq!(event["user_id"], 4);
        assert_eq!(event["status"], "confirmed");
        assert!(text.contains(r#""unit_price":3.10"#), "{text}");
        let total = format!(
            r#""total_price":{}"#,
            ["3.10", "6.20", "9.30"][quantity - 1]
        );
        assert!(text.contains(&total), "{text}");
    }
    let first = placed[0]["id"].as_i64().unwrap();
    orders::saga::cancel(&ctx, first, None).await.unwrap();
    let types: Vec<String> = sent(ORDER_DATABASE_URL, Outbox::Orders, first)
        .await
        .into_iter()
        .map(|(t, _, _)| t)
        .collect();
    assert_eq!(types, ["order_created", "order_cancelled"]);
}

/// Published events past the retention are deleted; younger or unpublished ones stay.
#[tokio::test]
async fn pruning_deletes_published_events_past_the_retention_only() {
    // The stack's relay would publish (and prune) the old unpublished event first.
    let _paused = pause_relay(INVENTORY_DATABASE_URL).await;
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
                 WHERE product_id = {id}"
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
                &format!("SELECT count(*) FROM outbox WHERE product_id = {key}"),
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
            "UPDATE outbox SET published_at = now() WHERE product_id = {}",
            keys[1]
        ),
    )
    .await;
}
