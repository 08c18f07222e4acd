//! The notifications function's handler, fed a `KafkaEvent` in the shape AWS delivers, against the
//! real notification_db and a real SQS endpoint (moto locally).

use stockroom_test_support::handler;

use serde_json::{Value, json};
use stockroom::db::{Db, NOTIFICATION_DATABASE_URL};
use stockroom::handlers::notifications::{self, Handled};
use stockroom_sqs::SqsQueues;
use stockroom_test_support::handler::{Event, answer, kafka_event};
use uuid::Uuid;

/// Queues of this test alone, so what arrives in them can be counted.
async fn queues() -> (SqsQueues, String, String) {
    let client = aws_sdk_sqs::Client::new(&stockroom_sqs::sdk_config().await);
    let (alerts, dead) = stockroom_test_support::queue::fresh_pair(&client).await;
    (
        SqsQueues::new(client, alerts.clone(), dead.clone()),
        alerts,
        dead,
    )
}

/// Every message on a queue, as JSON.
async fn drain(queues: &SqsQueues, url: &str) -> Vec<Value> {
    stockroom_test_support::queue::drain(queues.client(), url).await
}

fn event(kind: &str, fields: Value) -> (Uuid, Vec<u8>) {
    let id = Uuid::new_v4();
    let mut e = json!({"event_id": id, "event_type": kind, "version": 1, "timestamp": 1795582948, "occurred_at": "2026-11-25T05:02:28.962174Z"});
    e.as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    (id, e.to_string().into_bytes())
}

async fn recorded(db: &Db, ids: &[Uuid]) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    for id in ids {
        let conn = db.conn().await.unwrap();
        let rows = conn
            .query_typed(
                "SELECT event_type, forwarded_at IS NOT NULL FROM notifications WHERE event_id = $1",
                &[(id, tokio_postgres::types::Type::UUID)],
            )
            .await
            .unwrap();
        out.extend(rows.iter().map(|r| (r.get(0), r.get(1))));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_event_is_recorded_once_alerts_are_forwarded_and_poison_is_dead_lettered() {
    let db = Db::new(&std::env::var(NOTIFICATION_DATABASE_URL).unwrap()).unwrap();
    let (queues, alerts, dead) = queues().await;
    let (created, created_bytes) = event(
        "product_created",
        json!({"product_id": 5, "name": "Pen", "stock": 40, "price": 1.50}),
    );
    let (low, low_bytes) = event(
        "low_stock_alert",
        json!({"product_id": 5, "name": "Pen", "stock": 9, "threshold": 10}),
    );
    let (order, order_bytes) = event(
        "order_created",
        json!({"order_id": 77, "product_id": 5, "user_id": 0, "quantity": 31, "unit_price": 1.50, "total_price": 46.50, "status": "confirmed"}),
    );
    let batch = vec![
        created_bytes,
        b"{not json".to_vec(),
        low_bytes.clone(),
        event("price_changed", json!({"product_id": 5})).1,
        order_bytes,
    ];

    let delivery = kafka_event("inventory-events", &batch);
    let handled = notifications::handle(&db, &queues, delivery.clone())
        .await
        .unwrap();
    assert_eq!(
        handled,
        Handled {
            recorded: 3,
            duplicates: 0,
            forwarded: 2,
            dead_lettered: 2,
            left_to_forwarder: 0,
            // One SendMessageBatch to each queue.
            sqs_requests: 2,
        }
    );
    assert_eq!(
        recorded(&db, &[created, low, order]).await,
        [
            ("product_created".into(), false),
            ("low_stock_alert".into(), true),
            ("order_created".into(), true)
        ]
    );
    let forwarded = drain(&queues, &alerts).await;
    let forwarded_ids: Vec<&str> = forwarded
        .iter()
        .map(|m| m["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(forwarded_ids.len(), 2);
    assert!(
        forwarded_ids.contains(&low.to_string().as_str())
            && forwarded_ids.contains(&order.to_string().as_str())
    );
    let letters = drain(&queues, &dead).await;
    let mut reasons: Vec<&str> = letters
        .iter()
        .map(|l| l["reason"].as_str().unwrap())
        .collect();
    reasons.sort();
    assert!(
        reasons[0].starts_with("unknown event_type \"price_changed\""),
        "{reasons:?}"
    );
    assert!(reasons[1].starts_with("value is not JSON"), "{reasons:?}");
    assert!(
        letters
            .iter()
            .all(|l| l["topic"] == "inventory-events" && l["offset"].is_i64())
    );

    // The event source redelivers the batch (say the invocation timed out): nothing twice.
    let again = notifications::handle(&db, &queues, delivery).await.unwrap();
    assert_eq!(
        (again.recorded, again.duplicates, again.forwarded),
        (0, 3, 0)
    );
    assert!(
        drain(&queues, &alerts).await.is_empty(),
        "no alert sent twice"
    );
    assert!(
        drain(&queues, &dead).await.is_empty(),
        "no record dead-lettered twice"
    );
    assert_eq!(recorded(&db, &[low]).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_batch_is_forwarded_in_requests_of_ten_sent_at_once_each_alert_once() {
    let db = Db::new(&std::env::var(NOTIFICATION_DATABASE_URL).unwrap()).unwrap();
    let (queues, alerts, _) = queues().await;
    let events: Vec<(Uuid, Vec<u8>)> = (0..95)
        .map(|i| {
            event(
                "order_created",
                json!({"order_id": 9_000 + i, "product_id": 5, "user_id": 0, "quantity": 1, "unit_price": 1.50, "total_price": 1.50, "status": "confirmed"}),
            )
        })
        .collect();
    let values: Vec<Vec<u8>> = events.iter().map(|(_, v)| v.clone()).collect();
    let handled = notifications::handle(&db, &queues, kafka_event("order-events", &values))
        .await
        .unwrap();
    assert_eq!(handled.recorded, 95);
    // A slow endpoint may leave some to the forwarder (the send is bounded in time); what was
    // sent went ten to a request, nine of ten and a last of five.
    assert_eq!(handled.forwarded + handled.left_to_forwarder, 95);
    assert!(handled.forwarded > 0, "{handled:?}");
    assert_eq!(
        handled.sqs_requests,
        handled.forwarded.div_ceil(10),
        "{handled:?}"
    );
    let arrived: Vec<String> = drain(&queues, &alerts)
        .await
        .iter()
        .map(|m| m["event_id"].as_str().unwrap().to_owned())
        .collect();
    let unique: std::collections::BTreeSet<&String> = arrived.iter().collect();
    assert_eq!(arrived.len(), handled.forwarded, "each alert once");
    assert_eq!(unique.len(), arrived.len());
    let ids: Vec<Uuid> = events.iter().map(|(id, _)| *id).collect();
    assert!(
        arrived
            .iter()
            .all(|a| ids.iter().any(|id| id.to_string() == *a))
    );
    let marked = recorded(&db, &ids)
        .await
        .iter()
        .filter(|(_, forwarded)| *forwarded)
        .count();
    assert_eq!(
        marked, handled.forwarded,
        "what SQS took is marked forwarded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_notifications_are_listed_newest_first() {
    let db = Db::new(&std::env::var(NOTIFICATION_DATABASE_URL).unwrap()).unwrap();
    let (queues, _, _) = queues().await;
    let (first, a) = event(
        "product_updated",
        json!({"product_id": 8, "name": "Ink", "stock": 3, "price": 2.00}),
    );
    let (second, b) = event(
        "order_cancelled",
        json!({"order_id": 9, "product_id": 8, "user_id": 1, "quantity": 2, "unit_price": 2.00, "total_price": 4.00, "status": "cancelled"}),
    );
    notifications::handle(&db, &queues, kafka_event("inventory-events", &[a, b]))
        .await
        .unwrap();
    let list = answer(
        notifications::list(
            &db,
            Event::new("GET", "/api/notifications", "/api/notifications")
                .query(&[("limit", "1000")])
                .request(),
        )
        .await,
    );
    assert_eq!(list.status.as_u16(), 200);
    let items = list.json();
    let items = items.as_array().unwrap();
    let position = |id: Uuid| {
        items
            .iter()
            .position(|n| n["event_id"] == id.to_string())
            .unwrap()
    };
    assert!(position(second) < position(first), "newest first");
    let cancelled = &items[position(second)];
    assert_eq!(
        cancelled["message"],
        "Order 9 cancelled: 2 x product 8 back in stock"
    );
    assert_eq!(cancelled["event"]["order_id"], 9);
    assert_eq!(cancelled["order_id"], 9);
}

/// Lambda cannot return more than 6 MB: 26,478 notifications (14.4 MB) made the original
/// unparameterised list fail in AWS. Without parameters the list is still whole while it fits;
/// past 4 MiB it answers with its newest part and a `Link` to the rest.
#[tokio::test]
async fn a_whole_list_too_large_for_lambda_is_cut_with_a_link_to_the_rest() {
    let db = Db::new(&std::env::var(NOTIFICATION_DATABASE_URL).unwrap()).unwrap();
    // About 6.5 MB of notifications, newer than any other.
    handler::admin_query(
        NOTIFICATION_DATABASE_URL,
        "INSERT INTO notifications (event_id, event_type, message, product_id, event, source) \
         SELECT gen_random_uuid(), 'product_updated', 'filler', 1, \
                json_build_object('event_type', 'product_updated', 'filler', repeat('x', 1200))::text, 'test' \
         FROM generate_series(1, 5000)",
    )
    .await;
    let list = |query: &[(&str, &str)]| {
        let request = Event::new("GET", "/api/notifications", "/api/notifications")
            .query(query)
            .request();
        let db = &db;
        async move { answer(notifications::list(db, request).await) }
    };
    let whole = list(&[]).await;
    assert_eq!(whole.status.as_u16(), 200);
    assert!(
        whole.text.len() <= stockroom::http::pagination::WHOLE_LIST_BYTES,
        "{} bytes",
        whole.text.len()
    );
    let items = whole.json();
    let ids: Vec<i64> = items
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_i64().unwrap())
        .collect();
    assert!(ids.len() > 1000 && ids.len() < 5000, "{} items", ids.len());
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first");
    let last = *ids.last().unwrap();
    let link = whole.headers["link"].to_str().unwrap();
    assert_eq!(
        link,
        format!("</api/notifications?limit=1000&after={last}>; rel=\"next\"")
    );
    let next = list(&[("limit", "1000"), ("after", &last.to_string())]).await;
    let next_first = next.json()[0]["id"].as_i64().unwrap();
    assert!(
        next_first < last,
        "the link continues where the cut list ended"
    );
}
