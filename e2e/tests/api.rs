//! End to end over HTTP: requests to `cargo lambda watch` (started by `localstack/test`), routed to
//! the function binaries exactly as API Gateway routes them, against the real PostgreSQL.

use serde_json::{Value, json};
use ureq::Agent;

fn base() -> String {
    std::env::var("STOCKROOM_E2E_URL").unwrap_or_else(|_| {
        panic!("STOCKROOM_E2E_URL is not set: run the tests with localstack/test")
    })
}

fn agent() -> Agent {
    Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(60)))
        .build()
        .into()
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    fn error_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error code: {}", self.text))
            .to_owned()
    }
}

fn call(method: &str, path: &str, body: Option<&str>) -> Reply {
    let url = format!("{}{path}", base());
    let agent = agent();
    let response = match (method, body) {
        ("GET", _) => agent.get(&url).call(),
        ("DELETE", _) => agent.delete(&url).call(),
        ("PATCH", _) => agent
            .patch(&url)
            .header("content-type", "application/json")
            .send(body.unwrap_or("{}")),
        ("POST", Some(body)) => agent
            .post(&url)
            .header("content-type", "application/json")
            .send(body),
        ("PUT", Some(body)) => agent
            .put(&url)
            .header("content-type", "application/json")
            .send(body),
        other => panic!("unsupported {other:?}"),
    };
    let mut response = response.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                v.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let text = response.body_mut().read_to_string().unwrap();
    Reply {
        status,
        headers,
        text,
    }
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{nanos}")
}

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
