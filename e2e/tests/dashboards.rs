//! No decorative panels: after real traffic through the local stack (products, orders that
//! succeed, fail and get cancelled, a low stock, notifications, every scheduled function), every
//! query of every panel in `dashboards/` returns at least one series from the real Prometheus.

mod common;

use std::time::{Duration, Instant};

use common::{call, unique};
use serde_json::Value;

/// Every PromQL query of every panel, as `(dashboard title, panel title, expr)`, with the
/// dashboards' template variables set to "all".
fn panel_queries() -> Vec<(String, String, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../dashboards");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    let mut queries = Vec::new();
    for file in files {
        let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let title = dashboard["title"].as_str().unwrap().to_owned();
        for panel in dashboard["panels"].as_array().unwrap() {
            let targets = panel["targets"].as_array().cloned().unwrap_or_default();
            if panel["type"] != "row" {
                assert!(
                    !targets.is_empty(),
                    "{title}: panel {} has no query",
                    panel["title"]
                );
            }
            for target in targets {
                let expr = target["expr"].as_str().unwrap().replace("$function", ".*");
                assert!(!expr.contains('$'), "{title}: an unset variable in {expr}");
                queries.push((
                    title.clone(),
                    panel["title"].as_str().unwrap().to_owned(),
                    expr,
                ));
            }
        }
    }
    queries
}

fn series_count(expr: &str) -> usize {
    let body = common::prometheus().get_json("/api/v1/query", &[("query", expr)]);
    assert_eq!(body["status"], "success", "{expr}: {body}");
    body["data"]["result"].as_array().map_or(0, Vec::len)
}

fn ok(reply: &common::Reply, status: u16) -> Value {
    assert_eq!(reply.status, status, "{}", reply.text);
    reply.json()
}

/// What a day in the shop looks like, compressed: every kind of request, a refusal, a cancel, a
/// product running low, a 404, and one run of each scheduled function (as EventBridge would).
fn drive_traffic() {
    let product = |stock: i32| {
        let body = format!(
            r#"{{"name":"{}","price":2.50,"stock":{stock}}}"#,
            unique("dashboard")
        );
        ok(&call("POST", "/api/products", Some(&body)), 201)["id"]
            .as_i64()
            .unwrap()
    };
    let (plenty, scarce) = (product(100), product(11));
    ok(&call("GET", &format!("/api/products/{plenty}"), None), 200);
    ok(&call("GET", "/api/products?limit=5", None), 200);
    let body = format!(
        r#"{{"name":"{}","price":3.00,"stock":90}}"#,
        unique("dashboard")
    );
    ok(
        &call("PUT", &format!("/api/products/{plenty}"), Some(&body)),
        200,
    );
    let order = |product: i64, quantity: i32| {
        call(
            "POST",
            "/api/orders",
            Some(&format!(
                r#"{{"product_id":{product},"quantity":{quantity}}}"#
            )),
        )
    };
    let placed = ok(&order(plenty, 1), 201)["id"].as_i64().unwrap();
    ok(&order(scarce, 2), 201); // 9 left: below the low-stock threshold of 10
    assert_eq!(order(scarce, 50).status, 409, "refused: not enough stock");
    let bulk = format!(
        r#"{{"items":[{{"product_id":{plenty},"quantity":1}},{{"product_id":{plenty},"quantity":2}}]}}"#
    );
    ok(&call("POST", "/api/orders/bulk", Some(&bulk)), 201);
    ok(
        &call("POST", &format!("/api/orders/{placed}/cancel"), Some("{}")),
        200,
    );
    ok(&call("GET", &format!("/api/orders/{placed}"), None), 200);
    ok(&call("GET", "/api/orders?limit=5", None), 200);
    ok(&call("GET", "/api/orders/user/0?limit=5", None), 200);
    ok(&call("GET", "/api/notifications?limit=5", None), 200);
    assert_eq!(call("GET", "/api/nothing-here", None).status, 404);
    let event = stockroom_test_support::handler::SCHEDULED_EVENT;
    for function in [
        "orders-reconciler",
        "events-relay",
        "notifications-forwarder",
        "metrics-janitor",
        "stock-levels",
    ] {
        let path = format!("/2015-03-31/functions/{function}/invocations");
        let answer = call("POST", &path, Some(event));
        assert_eq!(answer.status, 200, "{function}: {}", answer.text);
        assert!(
            answer.json().get("errorType").is_none(),
            "{function}: {}",
            answer.text
        );
    }
}

#[test]
fn every_panel_shows_data_after_real_traffic() {
    let queries = panel_queries();
    assert!(
        queries.len() >= 40,
        "only {} panel queries found",
        queries.len()
    );
    drive_traffic();
    // Pushes follow each invocation; Prometheus scrapes the pushgateway every 5 s and evaluates
    // the recording rules every 5 s; rate() needs two samples.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let empty: Vec<_> = queries
            .iter()
            .filter(|(_, _, expr)| series_count(expr) == 0)
            .collect();
        if empty.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            let list: Vec<String> = empty
                .iter()
                .map(|(dashboard, panel, expr)| format!("{dashboard} / {panel}: {expr}"))
                .collect();
            panic!("panels without data:\n{}", list.join("\n"));
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}
