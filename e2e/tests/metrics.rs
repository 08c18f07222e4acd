//! Metrics end to end: requests over HTTP are counted by the functions, pushed to the real
//! pushgateway after each invocation, scraped by the real Prometheus, and queryable there, with
//! route templates (never raw ids) as `endpoint`.

mod common;

use std::time::{Duration, Instant};

use common::{call, unique};
use serde_json::Value;

/// The result vector of an instant query.
fn query(promql: &str) -> Vec<Value> {
    let body = common::prometheus().get_json("/api/v1/query", &[("query", promql)]);
    assert_eq!(body["status"], "success", "{promql}: {body}");
    body["data"]["result"].as_array().unwrap().clone()
}

/// The single value of a query that sums to one sample; 0 when there is no series yet.
fn scalar(promql: &str) -> f64 {
    query(promql)
        .first()
        .and_then(|s| s["value"][1].as_str())
        .map_or(0.0, |v| v.parse().unwrap())
}

#[test]
fn orders_placed_over_http_show_up_in_prometheus() {
    let confirmed = r#"sum(order_orders_total{status="confirmed"})"#;
    let before = scalar(confirmed);
    let created = call(
        "POST",
        "/api/products",
        Some(&format!(
            r#"{{"name":"{}","price":4.00,"stock":50}}"#,
            unique("metered")
        )),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    let product = created.json()["id"].as_i64().unwrap();
    for _ in 0..3 {
        let placed = call(
            "POST",
            "/api/orders",
            Some(&format!(r#"{{"product_id":{product},"quantity":1}}"#)),
        );
        assert_eq!(placed.status, 201, "{}", placed.text);
    }
    let got = call("GET", &format!("/api/products/{product}"), None);
    assert_eq!(got.status, 200);

    // Prometheus scrapes the pushgateway every 5 s locally.
    let deadline = Instant::now() + Duration::from_secs(60);
    while scalar(confirmed) < before + 3.0 {
        assert!(
            Instant::now() < deadline,
            "order_orders_total did not grow by 3 (from {before})"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let by_template = query(
        r#"inventory_http_requests_total{method="GET",endpoint="/api/products/{id}",status="200"}"#,
    );
    assert!(
        !by_template.is_empty(),
        "GET /api/products/{{id}} not counted"
    );
    assert!(
        by_template
            .iter()
            .all(|s| s["metric"]["job"] == "stockroom" && s["metric"]["function"] == "products-get"),
        "grouped by function and environment: {by_template:?}"
    );
    assert!(
        query(r#"{__name__=~".+_http_requests_total",endpoint=~".*/[0-9]+.*"}"#).is_empty(),
        "a raw path became a label"
    );
    assert!(scalar(r#"sum(stockroom_cold_starts_total{function="orders-create"})"#) >= 1.0);
    assert!(
        !query(r#"order_http_request_duration_seconds_bucket{endpoint="/api/orders",le="1"}"#)
            .is_empty(),
        "the latency histogram has a 1 s bucket"
    );
}

/// Runs the scheduled `stock-levels` function through the router, as its EventBridge schedule
/// does in AWS (the test stack runs no schedules during these tests).
fn export_stock_levels() {
    let path = "/2015-03-31/functions/stock-levels/invocations";
    let answer = call(
        "POST",
        path,
        Some(stockroom_test_support::handler::SCHEDULED_EVENT),
    );
    assert_eq!(answer.status, 200, "stock-levels: {}", answer.text);
    assert!(
        answer.json().get("errorType").is_none(),
        "stock-levels: {}",
        answer.text
    );
}

/// Exports the stock levels, then waits until `inventory_stock_levels` of `product` satisfies
/// `ok` in Prometheus, or fails saying what it was.
fn wait_for_stock_level(product: i64, what: &str, ok: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    export_stock_levels();
    let promql = format!(r#"inventory_stock_levels{{product_id="{product}"}}"#);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let series = query(&promql);
        if ok(&series) {
            return series;
        }
        assert!(Instant::now() < deadline, "{what}: {series:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn level(series: &[Value]) -> Option<f64> {
    match series {
        [one] => one["value"][1].as_str().and_then(|v| v.parse().ok()),
        _ => None,
    }
}

#[test]
fn stock_levels_follow_every_change_and_go_with_the_product() {
    let name = unique("gauged \"mug\"");
    let created = call(
        "POST",
        "/api/products",
        Some(&serde_json::json!({"name": name, "price": 4.00, "stock": 12}).to_string()),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    let product = created.json()["id"].as_i64().unwrap();
    let series = wait_for_stock_level(product, "created with 12", |s| level(s) == Some(12.0));
    assert_eq!(series[0]["metric"]["product_name"], name.as_str());
    assert_eq!(series[0]["metric"]["job"], "stockroom_stock");

    // Reservations by orders-create and orders-bulk.
    let single = call(
        "POST",
        "/api/orders",
        Some(&format!(r#"{{"product_id":{product},"quantity":2}}"#)),
    );
    assert_eq!(single.status, 201, "{}", single.text);
    let bulk = call(
        "POST",
        "/api/orders/bulk",
        Some(&format!(
            r#"{{"items":[{{"product_id":{product},"quantity":2}}]}}"#
        )),
    );
    assert_eq!(bulk.status, 201, "{}", bulk.text);
    wait_for_stock_level(product, "two orders of 2", |s| level(s) == Some(8.0));
    assert!(
        !query(&format!(
            r#"min by (product_id) (inventory_stock_levels{{product_id="{product}"}}) < 10"#
        ))
        .is_empty(),
        "8 is a low stock"
    );

    // A cancel returns stock; a PUT sets it.
    let order = single.json()["id"].as_i64().unwrap();
    let cancelled = call("POST", &format!("/api/orders/{order}/cancel"), Some("{}"));
    assert_eq!(cancelled.status, 200, "{}", cancelled.text);
    wait_for_stock_level(product, "cancelled 2", |s| level(s) == Some(10.0));
    let replaced = call(
        "PUT",
        &format!("/api/products/{product}"),
        Some(&serde_json::json!({"name": name, "price": 4.00, "stock": 40}).to_string()),
    );
    assert_eq!(replaced.status, 200, "{}", replaced.text);
    wait_for_stock_level(product, "set to 40", |s| level(s) == Some(40.0));

    let deleted = call("DELETE", &format!("/api/products/{product}"), None);
    assert_eq!(deleted.status, 204);
    wait_for_stock_level(product, "deleted", |s| s.is_empty());
}
