//! Who may do what, over HTTP, against the test stack's second router, whose functions verify
//! development tokens (`AUTH_MODE=local`) as API Gateway's JWT authorizer verifies real ones.

mod common;

use common::{Client, Reply, unique};
use stockroom::auth::dev_token::{AUTH_AUDIENCE, AUTH_ISSUER, AUTH_LOCAL_SECRET, Verifier};

/// The API with local tokens on (`STOCKROOM_E2E_AUTH_URL`).
fn api() -> Client {
    Client::from_var("STOCKROOM_E2E_AUTH_URL")
}

fn verifier() -> Verifier {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    Verifier::new(var(AUTH_LOCAL_SECRET), var(AUTH_ISSUER), var(AUTH_AUDIENCE))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn token(user_id: &str, admin: bool) -> String {
    let scopes: &[&str] = if admin { &["admin"] } else { &[] };
    verifier().mint(user_id, scopes, now(), 300)
}

fn call(method: &str, path: &str, body: Option<&str>, token: Option<&str>) -> Reply {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = bearer
        .iter()
        .map(|b| ("authorization", b.as_str()))
        .collect();
    api().call(method, path, body, &headers)
}

fn assert_error(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.text);
    assert_eq!(reply.error_code(), code, "{}", reply.text);
}

fn new_product(stock: i64) -> i64 {
    let body = format!(
        r#"{{"name":"{}","price":3.00,"stock":{stock}}}"#,
        unique("guarded")
    );
    let created = call(
        "POST",
        "/api/products",
        Some(&body),
        Some(&token("1", true)),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    created.json()["id"].as_i64().unwrap()
}

#[test]
fn writing_products_needs_a_token_with_the_admin_scope() {
    let body = format!(
        r#"{{"name":"{}","price":3.00,"stock":5}}"#,
        unique("guarded")
    );
    assert_error(
        &call("POST", "/api/products", Some(&body), None),
        401,
        "unauthorized",
    );
    let user = token("8001", false);
    assert_error(
        &call("POST", "/api/products", Some(&body), Some(&user)),
        403,
        "forbidden",
    );
    let id = new_product(5);
    let path = format!("/api/products/{id}");
    assert_error(&call("DELETE", &path, None, Some(&user)), 403, "forbidden");
    assert_error(
        &call(
            "POST",
            &format!("{path}/stock"),
            Some(r#"{"delta":5}"#),
            Some(&user),
        ),
        403,
        "forbidden",
    );
    // Reading needs nothing, as the web shop browses without signing in.
    let read = call("GET", &path, None, None);
    assert_eq!(read.status, 200, "{}", read.text);
    assert_eq!(
        read.json()["stock"],
        5,
        "the refused writes changed nothing"
    );
}

#[test]
fn a_token_that_does_not_verify_is_401_with_the_reason() {
    let expired = verifier().mint("8001", &["admin"], now() - 600, 300);
    let reply = call("GET", "/api/orders", None, Some(&expired));
    assert_error(&reply, 401, "unauthorized");
    assert!(reply.text.contains("expired"), "{}", reply.text);
    let var = |name: &str| std::env::var(name).unwrap();
    let forged = Verifier::new("a guess", var(AUTH_ISSUER), var(AUTH_AUDIENCE)).mint(
        "8001",
        &["admin"],
        now(),
        300,
    );
    assert_error(
        &call("GET", "/api/orders", None, Some(&forged)),
        401,
        "unauthorized",
    );
    assert_error(
        &call("GET", "/api/orders", None, Some("not-a-jwt")),
        401,
        "unauthorized",
    );
}

#[test]
fn a_user_cannot_read_or_cancel_another_users_order() {
    let product = new_product(4);
    let (alice, bob) = (token("8101", false), token("8102", false));
    let body = format!(r#"{{"product_id":{product},"quantity":2}}"#);
    assert_error(
        &call("POST", "/api/orders", Some(&body), None),
        401,
        "unauthorized",
    );
    let placed = call("POST", "/api/orders", Some(&body), Some(&alice));
    assert_eq!(placed.status, 201, "{}", placed.text);
    assert_eq!(
        placed.json()["user_id"],
        8101,
        "the order is the token's user's"
    );
    let id = placed.json()["id"].as_i64().unwrap();
    let path = format!("/api/orders/{id}");

    assert_error(&call("GET", &path, None, Some(&bob)), 404, "not_found");
    assert_error(
        &call("POST", &format!("{path}/cancel"), Some("{}"), Some(&bob)),
        404,
        "not_found",
    );
    assert_error(
        &call("GET", "/api/orders/user/8101", None, Some(&bob)),
        403,
        "forbidden",
    );
    let bobs = call("GET", "/api/orders", None, Some(&bob));
    assert_eq!(bobs.status, 200, "{}", bobs.text);
    assert!(
        bobs.json()
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["user_id"] == 8102)
    );

    let still = call("GET", &path, None, Some(&alice));
    assert_eq!(still.json()["status"], "confirmed", "{}", still.text);
    let stock = call("GET", &format!("/api/products/{product}"), None, None);
    assert_eq!(stock.json()["stock"], 2, "bob's cancel returned nothing");
    let cancelled = call("POST", &format!("{path}/cancel"), Some("{}"), Some(&alice));
    assert_eq!(cancelled.status, 200, "{}", cancelled.text);

    // The notification log is for administrators.
    assert_error(
        &call("GET", "/api/notifications?limit=1", None, Some(&alice)),
        403,
        "forbidden",
    );
    let admin = call(
        "GET",
        "/api/notifications?limit=1",
        None,
        Some(&token("1", true)),
    );
    assert_eq!(admin.status, 200, "{}", admin.text);
}
