//! End to end over HTTP: requests to `cargo lambda watch` (started by `localstack/test`), routed to
//! the function binaries exactly as API Gateway routes them, against the real PostgreSQL.

use serde_json::json;

mod common;

use common::{call, unique};

#[test]
fn health_reports_the_database() {
    let r = call("GET", "/health", None);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["checks"]["database"]["status"], "ok");
}

#[test]
fn the_product_lifecycle_over_http() {
    let name = unique("Laptop");
    let created = call(
        "POST",
        "/api/products",
        Some(&format!(
            r#"{{"name":"{name}","description":"x","price":999.99,"stock":50}}"#
        )),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    assert!(
        created.text.contains(r#""price":999.99,"#),
        "{}",
        created.text
    );
    assert_eq!(created.header("content-type"), Some("application/json"));
    let product = created.json();
    let id = product["id"].as_i64().unwrap();
    assert_eq!(product["name"], json!(name));
    assert_eq!(product["stock"], 50);

    let fetched = call("GET", &format!("/api/products/{id}"), None);
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.json(), product);

    let all = call("GET", "/api/products", None);
    assert_eq!(all.status, 200);
    let ids: Vec<i64> = all
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect();
    assert!(ids.contains(&id));
    assert!(ids.windows(2).all(|w| w[0] < w[1]));

    let page = call(
        "GET",
        &format!("/api/products?limit=1&after={}", id - 1),
        None,
    );
    assert_eq!(page.status, 200, "{}", page.text);
    assert_eq!(page.json()[0]["id"], id);
    assert_eq!(
        page.header("link"),
        Some(format!("</api/products?limit=1&after={id}>; rel=\"next\"").as_str())
    );

    let updated = call(
        "PUT",
        &format!("/api/products/{id}"),
        Some(&format!(
            r#"{{"name":"{name}","description":"y","price":1049.50,"stock":45}}"#
        )),
    );
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert!(
        updated.text.contains(r#""price":1049.50,"#),
        "{}",
        updated.text
    );
    assert_eq!(updated.json()["stock"], 45);
    assert_eq!(
        call("GET", &format!("/api/products/{id}"), None).json(),
        updated.json()
    );

    let deleted = call("DELETE", &format!("/api/products/{id}"), None);
    assert_eq!(deleted.status, 204);
    assert!(deleted.text.is_empty());
    let gone = call("GET", &format!("/api/products/{id}"), None);
    assert_eq!(gone.status, 404);
    assert_eq!(gone.error_code(), "not_found");
}

#[test]
fn bad_input_gets_json_errors_with_the_right_status() {
    let r = call("POST", "/api/products", Some(r#"{"name":"a","price":"#));
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.error_code(), "malformed_json");

    let r = call(
        "POST",
        "/api/products",
        Some(r#"{"name":"a","price":1.999,"stock":1}"#),
    );
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.json()["error"]["field"], "price");

    let r = call(
        "POST",
        "/api/products",
        Some(r#"{"name":"a","price":1,"stock":-1}"#),
    );
    assert_eq!(r.status, 422);
    assert_eq!(r.json()["error"]["field"], "stock");

    let r = call("GET", "/api/products?limit=0", None);
    assert_eq!(r.status, 422);
    assert_eq!(r.json()["error"]["field"], "limit");

    let r = call("GET", "/api/products/not-a-number", None);
    assert_eq!(r.status, 404);
    assert_eq!(r.error_code(), "not_found");
}

#[test]
fn unknown_routes_and_methods_are_json_404_and_405() {
    let r = call("GET", "/api/unknown", None);
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(r.error_code(), "route_not_found");

    let r = call("PATCH", "/api/products/1", None);
    assert_eq!(r.status, 405, "{}", r.text);
    assert_eq!(r.header("allow"), Some("GET, PUT, DELETE"));
    assert_eq!(r.error_code(), "method_not_allowed");

    let r = call("DELETE", "/api/products", None);
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, POST"));
}
