//! Events against the real broker, delivered by the relay of the running test stack (the only
//! publisher): every committed change yields exactly its events (matched by `event_id` between
//! the outbox and the topic), a rolled-back change none, and what waited while the relay could
//! not run is delivered once when it can.

use stockroom_test_support::handler;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use lambda_http::http::StatusCode;
use serde_json::Value;
use stockroom::db::{Db, INVENTORY_DATABASE_URL, NOTIFICATION_DATABASE_URL, ORDER_DATABASE_URL};
use stockroom::events;
use stockroom::events::store::Outbox;
use stockroom::http::request_body::JsonObject;
use stockroom::orders;
use stockroom::orders::OrderRequest;
use stockroom_kafka::{KAFKA_BROKERS, KafkaPublisher};
use stockroom_test_support::handler::{
    Event, admin_query, age, answer, order_dbs, pause_relay, product_with_stock, single_order,
    unique,
};

fn brokers() -> String {
    std::env::var(KAFKA_BROKERS).unwrap_or_else(|_| {
        panic!("{KAFKA_BROKERS} is not set: run the tests with localstack/test")
    })
}

/// A test that pauses the relay holds this exclusively: the others wait for the relay.
static RELAY: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// Outbox rows of one database for a product (inventory_db) or order (order_db):
/// `(event_id, event_type, published)` in order.
async fn outbox(var: &str, key: i64) -> Vec<(String, String, bool)> {
    let column = if var == INVENTORY_DATABASE_URL {
        "product_id"
    } else {
        "order_id"
    };
    admin_query(
        var,
        &format!(
            "SELECT event_id::text, event_type, published_at IS NOT NULL \
             FROM outbox WHERE {column} = {key} ORDER BY id"
        ),
    )
    .await
    .iter()
    .map(|row| (row.get(0), row.get(1), row.get(2)))
    .collect()
}

/// [`outbox`] once every row is marked published (the relay marks right after the broker's
/// acknowledgement), or as it is after 10 s.
async fn published(var: &str, key: i64) -> Vec<(String, String, bool)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows = outbox(var, key).await;
        if rows.iter().all(|(_, _, published)| *published) || Instant::now() > deadline {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every message on `topic` whose key is one of `keys`, as `event_id → payload` (the first copy),
/// and how many messages there were, duplicates included, so "each event exactly once" can be
/// asserted.
fn consume(topic: &str, keys: &[i64], expected: usize) -> (BTreeMap<String, Value>, usize) {
    let seen = stockroom_test_support::topic::consume(&brokers(), topic, keys, expected);
    let messages = seen.values().map(Vec::len).sum();
    let firsts = seen
        .into_iter()
        .map(|(event_id, mut copies)| (event_id, copies.swap_remove(0)))
        .collect();
    (firsts, messages)
}

/// Queues of one test alone on the SQS endpoint.
async fn sqs_queues() -> stockroom_sqs::SqsQueues {
    let client = aws_sdk_sqs::Client::new(&stockroom_sqs::sdk_config().await);
    let (alerts, dead) = stockroom_test_support::queue::fresh_pair(&client).await;
    stockroom_sqs::SqsQueues::new(client, alerts, dead)
}

fn ids(rows: &[(String, String, bool)]) -> BTreeSet<String> {
    rows.iter().map(|(id, _, _)| id.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_product_change_yields_exactly_its_events() {
    let _relayed = RELAY.read().await;
    let db = Db::new(&std::env::var(INVENTORY_DATABASE_URL).unwrap()).unwrap();
    let name = unique("evented");
    let request = Event::new("POST", "/api/products", "/api/products")
        .json_body(&format!(r#"{{"name":"{name}","price":12.50,"stock":20}}"#))
        .request();
    let created = answer(stockroom::handlers::products::create(&db, request).await);
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.json()["id"].as_i64().unwrap();
    let path = format!("/api/products/{id}");
    let update = Event::new("PUT", "/api/products/{id}", &path)
        .path_param("id", &id.to_string())
        .json_body(&format!(r#"{{"name":"{name}","price":12.50,"stock":5}}"#))
        .request();
    assert_eq!(
        answer(stockroom::handlers::products::update(&db, update).await).status,
        StatusCode::OK
    );
    // Refused: no change, so no event.
    let refused = Event::new("PUT", "/api/products/{id}", &path)
        .path_param("id", &id.to_string())
        .json_body(r#"{"name":"x","price":-1,"stock":5}"#)
        .request();
    assert_eq!(
        answer(stockroom::handlers::products::update(&db, refused).await).status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let delete = Event::new("DELETE", "/api/products/{id}", &path)
        .path_param("id", &id.to_string())
        .request();
    assert_eq!(
        answer(stockroom::handlers::products::delete(&db, delete).await).status,
        StatusCode::NO_CONTENT
    );

    let (seen, messages) = consume("inventory-events", &[id], 4);
    let rows = published(INVENTORY_DATABASE_URL, id).await;
    let types: Vec<&str> = rows.iter().map(|(_, t, _)| t.as_str()).collect();
    assert_eq!(
        types,
        [
            "product_created",
            "product_updated",
            "low_stock_alert",
            "product_deleted"
        ]
    );
    assert!(
        rows.iter().all(|(_, _, published)| *published),
        "published by the relay: {rows:?}"
    );
    assert_eq!(seen.keys().cloned().collect::<BTreeSet<_>>(), ids(&rows));
    assert_eq!(messages, rows.len(), "each event once");
    for payload in seen.values() {
        assert_eq!(
            payload["product_id"], id,
            "an integer product_id: {payload}"
        );
        assert_eq!(payload["version"], 1);
        assert!(
            payload["timestamp"].is_i64()
                && payload["occurred_at"].as_str().unwrap().ends_with('Z')
        );
        assert_eq!(payload["name"], name.as_str());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_yield_order_and_stock_events() {
    let _relayed = RELAY.read().await;
    let ctx = order_dbs().await;
    let product = product_with_stock("7.00", 30).await;
    let placed = orders::saga::place(&ctx, &single_order(product, 4), None).await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.body);
    let order_id = serde_json::from_str::<Value>(&placed.body).unwrap()["id"]
        .as_i64()
        .unwrap();
    orders::saga::cancel(&ctx, order_id, None).await.unwrap();

    let (seen, messages) = consume("order-events", &[order_id], 2);
    let order_rows = published(ORDER_DATABASE_URL, order_id).await;
    let types: Vec<&str> = order_rows.iter().map(|(_, t, _)| t.as_str()).collect();
    assert_eq!(types, ["order_created", "order_cancelled"]);
    assert!(
        order_rows.iter().all(|(_, _, published)| *published),
        "{order_rows:?}"
    );
    assert_eq!(
        seen.keys().cloned().collect::<BTreeSet<_>>(),
        ids(&order_rows)
    );
    assert_eq!(messages, 2);
    let created = seen
        .values()
        .find(|p| p["event_type"] == "order_created")
        .unwrap();
    assert_eq!(
        (
            created["order_id"].as_i64(),
            created["product_id"].as_i64(),
            created["quantity"].as_i64()
        ),
        (Some(order_id), Some(product), Some(4))
    );
    // Money travels as the database's exact decimal text.
    let raw = stockroom_test_support::topic::raw(&brokers(), "order-events", order_id);
    assert!(
        raw.iter().any(|m| m.contains(r#""total_price":28.00"#)),
        "{raw:?}"
    );

    // The reservation and the release changed stock: inventory events, published by the relay.
    consume("inventory-events", &[product], 3);
    let stock_rows = published(INVENTORY_DATABASE_URL, product).await;
    let types: Vec<&str> = stock_rows.iter().map(|(_, t, _)| t.as_str()).collect();
    assert_eq!(
        types,
        ["product_created", "product_updated", "product_updated"]
    );
    assert!(stock_rows[1..].iter().all(|(_, _, published)| *published));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_reconciler_settles_reaches_the_topic_through_the_relay() {
    let _relayed = RELAY.read().await;
    let ctx = order_dbs().await;
    let product = product_with_stock("2.00", 10).await;
    // A placement that died after reserving: pending orders, stock reserved.
    let order_ref = uuid::Uuid::new_v4();
    let lines = {
        let conn = ctx.orders.conn().await.unwrap();
        orders::store::insert_pending(&*conn, order_ref, &single_order(product, 2))
            .await
            .unwrap()
    };
    orders::reservation::reserve(&ctx.stock, order_ref, &lines)
        .await
        .unwrap();
    let placed = lines[0].0;
    // A cancel that died after its first step.
    let reply = orders::saga::place(&ctx, &single_order(product, 1), None).await;
    let cancelled = serde_json::from_str::<Value>(&reply.body).unwrap()["id"]
        .as_i64()
        .unwrap();
    let cancel_ref = {
        let conn = ctx.orders.conn().await.unwrap();
        match orders::store::begin_cancel(&*conn, cancelled, None)
            .await
            .unwrap()
        {
            orders::store::CancelStart::Started(order_ref) => order_ref,
            other => panic!("{other:?}"),
        }
    };
    age(order_ref).await;
    age(cancel_ref).await;
    // The stack's own reconciler may settle them first: either way the relay sends the events.
    orders::saga::reconcile(&ctx, Duration::from_secs(60))
        .await
        .unwrap();
    let (seen, messages) = consume("order-events", &[placed, cancelled], 3);

    let rows = [
        published(ORDER_DATABASE_URL, placed).await,
        published(ORDER_DATABASE_URL, cancelled).await,
    ];
    let types: Vec<Vec<&str>> = rows
        .iter()
        .map(|r| r.iter().map(|(_, t, _)| t.as_str()).collect())
        .collect();
    assert_eq!(
        types,
        [
            vec!["order_created"],
            vec!["order_created", "order_cancelled"]
        ]
    );
    assert!(
        rows.iter().flatten().all(|(_, _, published)| *published),
        "{rows:?}"
    );
    let expected: BTreeSet<String> = rows.iter().flat_map(|r| ids(r)).collect();
    assert_eq!(seen.keys().cloned().collect::<BTreeSet<_>>(), expected);
    assert_eq!(messages, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_change_yields_no_event() {
    let _relayed = RELAY.read().await;
    let ctx = order_dbs().await;
    let plenty = product_with_stock("1.00", 50).await;
    let scarce = product_with_stock("1.00", 1).await;
    let bulk = OrderRequest::bulk(&JsonObject::parse(&format!(
        r#"{{"items":[{{"product_id":{plenty},"quantity":2}},{{"product_id":{scarce},"quantity":2}}]}}"#
    )).unwrap()).unwrap();
    let refused = orders::saga::place(&ctx, &bulk, None).await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    // reserve_stock lowered `plenty` before finding `scarce` short, then rolled back: no event.
    let types: Vec<String> = outbox(INVENTORY_DATABASE_URL, plenty)
        .await
        .into_iter()
        .map(|(_, t, _)| t)
        .collect();
    assert_eq!(types, ["product_created"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn low_stock_alerts_once_per_crossing() {
    let _relayed = RELAY.read().await;
    let ctx = order_dbs().await;
    let product = product_with_stock("1.00", 12).await;
    let mut orders = Vec::new();
    for _ in 0..6 {
        let placed = orders::saga::place(&ctx, &single_order(product, 1), None).await;
        orders.push(
            serde_json::from_str::<Value>(&placed.body).unwrap()["id"]
                .as_i64()
                .unwrap(),
        );
    }
    let alerts = |rows: Vec<(String, String, bool)>| {
        rows.into_iter()
            .filter(|(_, t, _)| t == "low_stock_alert")
            .count()
    };
    assert_eq!(
        alerts(outbox(INVENTORY_DATABASE_URL, product).await),
        1,
        "12 → 6 crosses 10 once"
    );
    for id in &orders[..4] {
        orders::saga::cancel(&ctx, *id, None).await.unwrap();
    }
    orders::saga::place(&ctx, &single_order(product, 3), None).await;
    assert_eq!(
        alerts(outbox(INVENTORY_DATABASE_URL, product).await),
        2,
        "back to 10, then below again"
    );
    let (seen, _) = consume("inventory-events", &[product], 2);
    assert_eq!(
        seen.values()
            .filter(|p| p["event_type"] == "low_stock_alert")
            .count(),
        2
    );
}

/// While no relay can run (its lock held here, as a relay that is down or busy would leave
/// them), orders succeed and their events wait in the outbox; a relay pass that does not get its
/// turn sends nothing; once the lock is free the stack's relay sends every event once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn what_waits_while_no_relay_runs_is_delivered_once_after() {
    let _paused_tests = RELAY.write().await;
    let paused = [
        pause_relay(INVENTORY_DATABASE_URL).await,
        pause_relay(ORDER_DATABASE_URL).await,
    ];
    let product = product_with_stock("2.00", 1000).await;
    let ctx = std::sync::Arc::new(order_dbs().await);
    let mut tasks = Vec::new();
    for worker in 0..10 {
        let ctx = ctx.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for _ in 0..10 {
                let placed = orders::saga::place(&ctx, &single_order(product, 1), None).await;
                assert_eq!(
                    placed.status,
                    StatusCode::CREATED,
                    "worker {worker}: {}",
                    placed.body
                );
                ids.push(
                    serde_json::from_str::<Value>(&placed.body).unwrap()["id"]
                        .as_i64()
                        .unwrap(),
                );
            }
            ids
        }));
    }
    let mut order_ids = Vec::new();
    for task in tasks {
        order_ids.extend(task.await.unwrap());
    }
    assert_eq!(order_ids.len(), 100);
    for id in &order_ids {
        let rows = outbox(ORDER_DATABASE_URL, *id).await;
        assert_eq!(rows.len(), 1);
        assert!(!rows[0].2, "unpublished while no relay runs");
    }
    // A relay without its turn publishes nothing.
    let orders_db = Db::new(&std::env::var(ORDER_DATABASE_URL).unwrap()).unwrap();
    let kafka = KafkaPublisher::new(&brokers()).unwrap();
    let pass = events::outbox::relay_batch(&orders_db, Outbox::Orders, &kafka, 500)
        .await
        .unwrap();
    assert_eq!(pass, None, "the lock is held: not this relay's turn");
    assert!(!outbox(ORDER_DATABASE_URL, order_ids[0]).await[0].2);

    // The relay's turn again: the stack's relay sends everything left behind, once.
    drop(paused);
    let (seen, messages) = consume("order-events", &order_ids, 100);
    let mut expected = BTreeSet::new();
    for id in &order_ids {
        let rows = published(ORDER_DATABASE_URL, *id).await;
        assert!(rows[0].2, "order {id} published by the relay");
        expected.extend(ids(&rows));
    }
    assert_eq!(seen.keys().cloned().collect::<BTreeSet<_>>(), expected);
    assert_eq!(messages, 100, "each order's event once");

    // The notifications function records each of them once, even when the batch is redelivered.
    let notifications = Db::new(&std::env::var(NOTIFICATION_DATABASE_URL).unwrap()).unwrap();
    let queues = sqs_queues().await;
    let values: Vec<Vec<u8>> = seen.values().map(|p| p.to_string().into_bytes()).collect();
    let batch = handler::kafka_event("order-events", &values);
    // The local trigger of the running stack may record them first: either way, once each.
    let handled =
        stockroom::handlers::notifications::handle(&notifications, &queues, batch.clone())
            .await
            .unwrap();
    assert_eq!(handled.recorded + handled.duplicates, 100);
    assert_eq!(handled.dead_lettered, 0);
    // Whichever recorded an event forwards its alert at once, or, when SQS is slow (the stack's
    // invocation has 2 s for it), leaves it to the forwarder: its scheduled run, now.
    stockroom::handlers::notifications::forward(
        &notifications,
        &queues,
        std::time::Duration::from_secs(7 * 24 * 3600),
        handler::scheduled_event(),
    )
    .await
    .unwrap();
    let event_ids: Vec<String> = seen.keys().cloned().collect();
    let rows = admin_query(
        NOTIFICATION_DATABASE_URL,
        &format!(
            "SELECT count(*), count(*) FILTER (WHERE forwarded_at IS NOT NULL) FROM notifications \
             WHERE event_id::text IN ('{}')",
            event_ids.join("','")
        ),
    )
    .await;
    assert_eq!(
        (rows[0].get::<_, i64>(0), rows[0].get::<_, i64>(1)),
        (100, 100),
        "recorded and forwarded once each"
    );
    let again = stockroom::handlers::notifications::handle(&notifications, &queues, batch)
        .await
        .unwrap();
    assert_eq!(
        (again.recorded, again.duplicates, again.forwarded),
        (0, 100, 0)
    );
    consume("inventory-events", &[product], 101);
    let stock_rows = published(INVENTORY_DATABASE_URL, product).await;
    assert_eq!(
        stock_rows.len(),
        101,
        "created + one stock change per order"
    );
    assert!(stock_rows.iter().all(|(_, _, published)| *published));
}
