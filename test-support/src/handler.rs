//! Calling handlers with the events AWS delivers (HTTP API payload 2.0, MSK, EventBridge), against
//! the real PostgreSQL that `localstack/test` starts.

use std::collections::HashMap;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};
use stockroom::db::{Db, INVENTORY_DATABASE_URL, ORDER_DATABASE_URL};

/// A captured HTTP API request event, as AWS documents it; each test rewrites the route parts.
const FIXTURE: &str = include_str!("../fixtures/apigw-v2-request.json");
/// The scheduled event EventBridge delivers, as AWS documents it.
pub const SCHEDULED_EVENT: &str = include_str!("../fixtures/eventbridge-scheduled-event.json");

pub fn database_url() -> String {
    std::env::var(INVENTORY_DATABASE_URL).unwrap_or_else(|_| {
        panic!("{INVENTORY_DATABASE_URL} is not set: run the tests with localstack/test")
    })
}

pub async fn db() -> Db {
    Db::new(&database_url()).expect("valid database URL")
}

/// An HTTP API event for `method path` matched by `route` (e.g. `GET /api/products/{id}`).
pub struct Event {
    value: Value,
}

impl Event {
    pub fn new(method: &str, route: &str, path: &str) -> Self {
        let mut value: Value = serde_json::from_str(FIXTURE).expect("fixture is JSON");
        value["routeKey"] = json!(format!("{method} {route}"));
        value["requestContext"]["routeKey"] = json!(format!("{method} {route}"));
        value["rawPath"] = json!(path);
        value["requestContext"]["http"]["method"] = json!(method);
        value["requestContext"]["http"]["path"] = json!(path);
        value["rawQueryString"] = json!("");
        value["pathParameters"] = json!({});
        value["queryStringParameters"] = json!({});
        value["body"] = Value::Null;
        Self { value }
    }

    pub fn path_param(mut self, name: &str, value: &str) -> Self {
        self.value["pathParameters"][name] = json!(value);
        self
    }

    pub fn query(mut self, params: &[(&str, &str)]) -> Self {
        let map: HashMap<&str, &str> = params.iter().copied().collect();
        self.value["queryStringParameters"] = json!(map);
        self.value["rawQueryString"] = json!(
            params
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&")
        );
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.value["headers"][name] = json!(value);
        self
    }

    /// What API Gateway's JWT authorizer adds for a verified token: its claims, flattened to
    /// strings, under `requestContext.authorizer.jwt` (`scopes` is null unless the route lists
    /// authorization scopes).
    pub fn claims(mut self, claims: &[(&str, &str)]) -> Self {
        let claims: HashMap<&str, &str> = claims.iter().copied().collect();
        self.value["requestContext"]["authorizer"] =
            json!({ "jwt": { "claims": claims, "scopes": null } });
        self
    }

    /// The claims of a user's token (`sub` = `user_id`), with the `admin` scope when `admin`.
    pub fn user(self, user_id: &str, admin: bool) -> Self {
        let scope = if admin { "openid admin" } else { "openid" };
        self.claims(&[
            ("sub", user_id),
            ("scope", scope),
            ("iss", "https://issuer.example"),
            ("aud", "stockroom"),
            ("exp", "4102444800"),
        ])
    }

    pub fn json_body(self, body: &str) -> Self {
        self.header("content-type", "application/json")
            .raw_body(body)
    }

    pub fn raw_body(mut self, body: &str) -> Self {
        self.value["body"] = json!(body);
        self
    }

    /// A body as API Gateway sends one it does not treat as text: base64, `isBase64Encoded`.
    pub fn base64_body(mut self, bytes: &[u8]) -> Self {
        use base64::Engine;
        self.value["body"] = json!(base64::engine::general_purpose::STANDARD.encode(bytes));
        self.value["isBase64Encoded"] = json!(true);
        self
    }

    /// The event as API Gateway sends it to Lambda (JSON).
    pub fn event_json(&self) -> String {
        self.value.to_string()
    }

    /// The request exactly as lambda_http decodes the event.
    pub fn request(&self) -> Request {
        lambda_http::request::from_str(&self.value.to_string()).expect("a valid HTTP API event")
    }
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: lambda_http::http::HeaderMap,
    pub text: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|err| panic!("response is not JSON ({err}): {}", self.text))
    }

    /// Asserts the shared error shape and returns `(code, field)`.
    pub fn error(&self) -> (String, Option<String>) {
        let body = self.json();
        let error = body["error"]
            .as_object()
            .unwrap_or_else(|| panic!("no error object: {body}"));
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
        (
            error["code"].as_str().expect("code").to_owned(),
            error
                .get("field")
                .and_then(Value::as_str)
                .map(str::to_owned),
        )
    }
}

pub fn answer(response: Response<Body>) -> Answer {
    let (parts, body) = response.into_parts();
    let text = match body {
        Body::Empty => String::new(),
        Body::Text(text) => text,
        Body::Binary(bytes) => String::from_utf8(bytes).expect("UTF-8 body"),
        _ => unreachable!("no other body kinds"),
    };
    Answer {
        status: parts.status,
        headers: parts.headers,
        text,
    }
}

/// A name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{nanos}-{}", N.fetch_add(1, Ordering::Relaxed))
}

/// The order functions' connections, as their `main` builds them.
pub async fn order_dbs() -> stockroom::orders::saga::OrderContext {
    let url = |var: &str| {
        std::env::var(var)
            .unwrap_or_else(|_| panic!("{var} is not set: run the tests with localstack/test"))
    };
    stockroom::orders::saga::OrderContext {
        orders: Db::new(&url(ORDER_DATABASE_URL)).unwrap(),
        stock: Db::new(&url(stockroom::db::STOCK_RESERVATION_DATABASE_URL)).unwrap(),
    }
}

/// Runs one SQL statement with full rights on a database (to set up or inspect what the API hides).
pub async fn admin_query(var: &str, sql: &str) -> Vec<tokio_postgres::Row> {
    let url = std::env::var(var).unwrap_or_else(|_| panic!("{var} is not set"));
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client.simple_query("SELECT 1").await.unwrap();
    client
        .query(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Holds the relay's advisory lock on one database until the returned connection is dropped: the
/// stack's relay then waits its turn, so a test can look at unpublished events (or prune) without
/// the relay taking them first.
pub async fn pause_relay(var: &str) -> tokio_postgres::Client {
    let url = std::env::var(var).unwrap_or_else(|_| panic!("{var} is not set"));
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .query(
            "SELECT pg_advisory_lock($1)",
            &[&stockroom::events::outbox::RELAY_LOCK],
        )
        .await
        .unwrap();
    client
}

/// Creates a product with `stock` units at `price`; returns its id.
pub async fn product_with_stock(price: &str, stock: i32) -> i64 {
    let name = unique("stocked");
    let rows = admin_query(
        INVENTORY_DATABASE_URL,
        &format!("INSERT INTO products (name, price, stock) VALUES ('{name}', {price}, {stock}) RETURNING id"),
    )
    .await;
    rows[0].get(0)
}

pub async fn stock_of(product_id: i64) -> i64 {
    admin_query(
        INVENTORY_DATABASE_URL,
        &format!("SELECT stock FROM products WHERE id = {product_id}"),
    )
    .await[0]
        .get(0)
}

/// Makes an order reference's rows look older than the reconciler's timeout, as if the request
/// that wrote them had died long ago.
pub async fn age(order_ref: uuid::Uuid) {
    admin_query(ORDER_DATABASE_URL, &format!("UPDATE orders SET updated_at = now() - interval '1 hour' WHERE order_ref = '{order_ref}'")).await;
    admin_query(INVENTORY_DATABASE_URL, &format!("UPDATE stock_reservations SET created_at = now() - interval '10 years' WHERE order_ref = '{order_ref}'")).await;
}

/// The scheduled event EventBridge delivers to the reconciler.
pub fn scheduled_event()
-> lambda_http::LambdaEvent<aws_lambda_events::eventbridge::EventBridgeEvent> {
    let payload = serde_json::from_str(SCHEDULED_EVENT).expect("fixture");
    lambda_http::LambdaEvent::new(payload, lambda_http::Context::default())
}

/// A CloudFormation custom-resource request (`Create`, `Update` or `Delete`) answered at
/// `response_url`, built from the AWS-shaped fixture with `properties` as its resource properties.
/// A custom resource's answers, kept instead of PUT to S3, for the tests that read them.
#[derive(Default)]
pub struct Kept(std::sync::Mutex<Vec<(String, Value)>>);

impl stockroom::deploy::custom_resource::Respond for Kept {
    async fn respond(&self, url: &str, body: String) -> Result<(), String> {
        let body = serde_json::from_str(&body).map_err(|e| e.to_string())?;
        self.0.lock().unwrap().push((url.to_owned(), body));
        Ok(())
    }
}

impl Kept {
    /// The one answer sent: its URL and body.
    pub fn only(&self) -> (String, Value) {
        let sent = self.0.lock().unwrap();
        assert_eq!(sent.len(), 1, "one answer per request: {sent:?}");
        sent[0].clone()
    }
}

pub fn custom_resource_event(
    request_type: &str,
    response_url: &str,
    properties: Value,
) -> lambda_http::LambdaEvent<aws_lambda_events::cloudformation::CloudFormationCustomResourceRequest>
{
    let mut fixture: Value =
        serde_json::from_str(include_str!("../fixtures/cloudformation-create-event.json"))
            .expect("fixture");
    fixture["RequestType"] = json!(request_type);
    fixture["ResponseURL"] = json!(response_url);
    fixture["ResourceProperties"] = properties;
    if request_type != "Create" {
        fixture["PhysicalResourceId"] = json!("stockroom-migrations");
    }
    if request_type == "Update" {
        fixture["OldResourceProperties"] = json!({});
    }
    lambda_http::LambdaEvent::new(
        serde_json::from_value(fixture).expect("the AWS shape"),
        lambda_http::Context::default(),
    )
}

/// The event Lambda's MSK event source delivers for `values` on partition 0 of `topic`, built from
/// the AWS-shaped fixture (so the real `KafkaEvent` deserialiser reads it). Like real records, the
/// records of two calls never share an offset.
pub fn kafka_event(
    topic: &str,
    values: &[Vec<u8>],
) -> lambda_http::LambdaEvent<aws_lambda_events::kafka::KafkaEvent> {
    use base64::Engine;
    let mut fixture: Value =
        serde_json::from_str(include_str!("../fixtures/msk-kafka-event.json")).expect("fixture");
    let template = fixture["records"]["inventory-events-0"][0].clone();
    static NEXT_OFFSET: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let first = NEXT_OFFSET.fetch_add(values.len() as u64, std::sync::atomic::Ordering::Relaxed)
        + now.as_secs();
    let records: Vec<Value> = values
        .iter()
        .enumerate()
        .map(|(i, value)| {
            let mut r = template.clone();
            r["topic"] = json!(topic);
            r["offset"] = json!(first + i as u64);
            r["timestamp"] = json!(now.as_millis() as u64);
            r["value"] = json!(base64::engine::general_purpose::STANDARD.encode(value));
            r
        })
        .collect();
    fixture["records"] = json!({ format!("{topic}-0"): records });
    lambda_http::LambdaEvent::new(
        serde_json::from_value(fixture).expect("the AWS shape"),
        lambda_http::Context::default(),
    )
}

/// A validated single-order request, as `POST /api/orders` builds it.
pub fn single_order(product: i64, quantity: i32) -> stockroom::orders::OrderRequest {
    let body = format!(r#"{{"product_id":{product},"quantity":{quantity}}}"#);
    stockroom::orders::OrderRequest::single(
        &stockroom::http::request_body::JsonObject::parse(&body).unwrap(),
    )
    .unwrap()
}
