//! Events end to end: a change over HTTP is published by its function, consumed from the broker by
//! the local Kafka trigger, handled by the notifications function, and shows up in
//! `GET /api/notifications`.

mod common;

use common::{call, unique};
use serde_json::Value;

/// Waits (at most 90 s) until `GET /api/notifications` holds `count` notifications matching `pick`.
fn wait_for(pick: impl Fn(&Value) -> bool, count: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let listed = call("GET", "/api/notifications?limit=1000", None);
        assert_eq!(listed.status, 200, "{}", listed.text);
        let found: Vec<Value> = listed
            .json()
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| pick(n))
            .cloned()
            .collect();
        if found.len() >= count || std::time::Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

#[test]
fn an_order_and_a_low_stock_crossing_reach_the_notifications() {
    let name = unique("notified");
    let created = call(
        "POST",
        "/api/products",
        Some(&format!(r#"{{"name":"{name}","price":3.00,"stock":11}}"#)),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    let product = created.json()["id"].as_i64().unwrap();
    let order = call(
        "POST",
        "/api/orders",
        Some(&format!(r#"{{"product_id":{product},"quantity":2}}"#)),
    );
    assert_eq!(order.status, 201, "{}", order.text);
    let order_id = order.json()["id"].as_i64().unwrap();
    let more = call(
        "POST",
        "/api/orders",
        Some(&format!(r#"{{"product_id":{product},"quantity":1}}"#)),
    );
    assert_eq!(more.status, 201);

    // Recorded first, then sent to SQS (a moment later, or by the forwarder): wait for both.
    let order_notes = wait_for(
        |n| {
            n["event_type"] == "order_created"
                && n["order_id"] == order_id
                && n["forwarded"] == true
        },
        1,
    );
    assert_eq!(
        order_notes.len(),
        1,
        "recorded once and sent to the alerts queue"
    );
    assert_eq!(order_notes[0]["event"]["total_price"].as_f64(), Some(6.0));

    // Stock 11 → 9 → 8: one crossing of the threshold (10), one alert.
    let alerts = wait_for(
        |n| {
            n["event_type"] == "low_stock_alert"
                && n["product_id"] == product
                && n["forwarded"] == true
        },
        1,
    );
    let product_notes = wait_for(
        |n| n["product_id"] == product && n["event_type"] != "order_created",
        4,
    );
    assert_eq!(
        alerts.len(),
        1,
        "one alert, and it reached the SQS alerts queue"
    );
    assert_eq!(alerts[0]["event"]["stock"], 9);
    assert_eq!(
        product_notes
            .iter()
            .filter(|n| n["event_type"] == "low_stock_alert")
            .count(),
        1
    );
    assert_eq!(
        product_notes.len(),
        4,
        "created, two stock updates, one alert: {product_notes:?}"
    );
}
