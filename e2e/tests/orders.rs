//! Orders end to end over HTTP, through `cargo lambda watch`, against the real databases.

mod common;

use common::{Reply, api, call, unique};
use serde_json::{Value, json};

fn product(price: &str, stock: i64) -> i64 {
    let name = unique("e2e");
    let r = call(
        "POST",
        "/api/products",
        Some(&format!(
            r#"{{"name":"{name}","price":{price},"stock":{stock}}}"#
        )),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    r.json()["id"].as_i64().unwrap()
}

fn stock(id: i64) -> i64 {
    call("GET", &format!("/api/products/{id}"), None).json()["stock"]
        .as_i64()
        .unwrap()
}

fn user() -> i64 {
    (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        % 1_000_000_000_000_000) as i64
}

fn place(product: i64, quantity: i64, user: i64) -> Reply {
    call(
        "POST",
        "/api/orders",
        Some(&format!(
            r#"{{"product_id":{product},"quantity":{quantity},"user_id":{user}}}"#
        )),
    )
}

#[test]
fn an_order_over_http_from_placement_to_cancel() {
    let p = product("999.99", 50);
    let u = user();
    let r = place(p, 5, u);
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(r.text.contains(r#""total_price":4999.95"#), "{}", r.text);
    let order = r.json();
    let id = order["id"].as_i64().unwrap();
    assert_eq!(order["status"], "confirmed");
    assert_eq!(stock(p), 45);

    assert_eq!(
        call("GET", &format!("/api/orders/{id}"), None).json(),
        order
    );
    let mine = call("GET", &format!("/api/orders/user/{u}"), None);
    assert_eq!(mine.status, 200);
    assert_eq!(mine.json(), json!([order]));
    let all = call("GET", "/api/orders?limit=1000", None);
    assert!(all.json().as_array().unwrap().iter().any(|o| o["id"] == id));

    let cancelled = call("POST", &format!("/api/orders/{id}/cancel"), Some("{}"));
    assert_eq!(cancelled.status, 200, "{}", cancelled.text);
    assert_eq!(cancelled.json()["status"], "cancelled");
    assert_eq!(stock(p), 50);
    let again = call("POST", &format!("/api/orders/{id}/cancel"), Some("{}"));
    assert_eq!(again.status, 409);
    assert_eq!(again.error_code(), "order_not_confirmed");
}

#[test]
fn bulk_over_http_is_all_or_nothing() {
    let a = product("1.00", 3);
    let b = product("2.00", 3);
    let ok = call(
        "POST",
        "/api/orders/bulk",
        Some(&format!(
            r#"{{"items":[{{"product_id":{a},"quantity":1}},{{"product_id":{b},"quantity":2}}]}}"#
        )),
    );
    assert_eq!(ok.status, 201, "{}", ok.text);
    assert_eq!(ok.json().as_array().unwrap().len(), 2);
    let refused = call(
        "POST",
        "/api/orders/bulk",
        Some(&format!(
            r#"{{"items":[{{"product_id":{a},"quantity":1}},{{"product_id":{b},"quantity":2}}]}}"#
        )),
    );
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert_eq!(refused.json()["error"]["field"], "items[1]");
    assert_eq!(refused.json()["error"]["details"]["available"], 1);
    assert_eq!((stock(a), stock(b)), (2, 1));
    let empty = call("POST", "/api/orders/bulk", Some(r#"{"items":[]}"#));
    assert_eq!(empty.status, 422);
}

#[test]
fn idempotent_retries_over_http() {
    let p = product("3.00", 10);
    let key = unique("e2e-key");
    let body = format!(r#"{{"product_id":{p},"quantity":2}}"#);
    let first = api().call(
        "POST",
        "/api/orders",
        Some(&body),
        &[("Idempotency-Key", &key)],
    );
    assert_eq!(first.status, 201, "{}", first.text);
    let retry = api().call(
        "POST",
        "/api/orders",
        Some(&body),
        &[("Idempotency-Key", &key)],
    );
    assert_eq!(retry.status, 201);
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(retry.json()["id"], first.json()["id"]);
    assert_eq!(stock(p), 8);
    let other = api().call(
        "POST",
        "/api/orders",
        Some(&format!(r#"{{"product_id":{p},"quantity":1}}"#)),
        &[("Idempotency-Key", &key)],
    );
    assert_eq!(other.status, 422);
    assert_eq!(other.error_code(), "idempotency_key_reused");
}

#[test]
fn forty_buyers_over_http_get_exactly_ten_units() {
    let p = product("5.00", 10);
    let buyers: Vec<_> = (0..40)
        .map(|i| std::thread::spawn(move || place(p, 1, i)))
        .collect();
    let mut statuses: Vec<u16> = buyers
        .into_iter()
        .map(|b| b.join().unwrap().status)
        .collect();
    statuses.sort();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        30,
        "{statuses:?}"
    );
    assert_eq!(stock(p), 0);
}

#[test]
fn order_errors_over_http() {
    let p = product("1.00", 1);
    let r = place(p, 0, 1);
    assert_eq!(r.status, 422);
    assert_eq!(r.json()["error"]["field"], "quantity");
    let r = place(999_999_999_999, 1, 1);
    assert_eq!(r.status, 404);
    let r = place(p, 2, 1);
    assert_eq!(r.status, 409);
    assert_eq!(r.json()["error"]["details"]["available"], 1);
    assert_eq!(call("GET", "/api/orders/999999999999", None).status, 404);
    assert_eq!(
        call("GET", "/api/orders/bulk", None).status,
        404,
        "as API Gateway: GET /api/orders/{{id}}"
    );
    let r = call("DELETE", "/api/orders/1", None);
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET"));
}

/// Invokes a scheduled function the way EventBridge does; returns its JSON result.
fn invoke_scheduled(function: &str) -> Value {
    let event = stockroom_test_support::handler::SCHEDULED_EVENT;
    let reply = call(
        "POST",
        &format!("/2015-03-31/functions/{function}/invocations"),
        Some(event),
    );
    assert_eq!(reply.status, 200, "{function}: {}", reply.text);
    reply.json()
}

#[test]
fn the_reconciler_runs_on_its_scheduled_event() {
    let report = invoke_scheduled("orders-reconciler");
    for field in [
        "confirmed",
        "failed",
        "cancelled",
        "released",
        "expired_keys",
    ] {
        assert!(report[field].is_u64(), "{field} in {report}");
    }
}

#[test]
fn the_relay_runs_on_its_scheduled_event() {
    let report = invoke_scheduled("events-relay");
    for field in [
        "inventory_events",
        "order_events",
        "inventory_pruned",
        "order_pruned",
    ] {
        assert!(report[field].is_u64(), "{field} in {report}");
    }
}
