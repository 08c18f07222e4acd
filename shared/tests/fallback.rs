//! The not-found function, and a check that every function binary's handler is exercised here.

use lambda_http::http::StatusCode;
use stockroom::handlers::fallback;
use stockroom_test_support::handler::{Event, answer};

#[tokio::test]
async fn unknown_paths_are_a_json_404() {
    let event = Event::new("GET", "$default", "/api/nothing/here");
    let a = answer(fallback::not_found(event.request()).await);
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.error().0, "route_not_found");
}

/// A known path with a trailing slash is not routed to its function (neither by API Gateway nor
/// by the local router); the answer used to be a 405 naming the method it refused.
#[tokio::test]
async fn a_trailing_slash_with_an_allowed_method_is_404_not_405() {
    for (method, path) in [
        ("GET", "/api/products/"),
        ("PUT", "/api/products/1/"),
        ("POST", "/api/orders/5/cancel/"),
        ("GET", "/health/"),
    ] {
        let event = Event::new(method, "$default", path);
        let a = answer(fallback::not_found(event.request()).await);
        assert_eq!(
            a.status,
            StatusCode::NOT_FOUND,
            "{method} {path}: {}",
            a.text
        );
        assert_eq!(a.error().0, "route_not_found");
    }
    let event = Event::new("DELETE", "$default", "/api/products/");
    let a = answer(fallback::not_found(event.request()).await);
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED, "{}", a.text);
}

#[tokio::test]
async fn other_methods_on_known_paths_are_405_with_allow() {
    let event = Event::new("PATCH", "$default", "/api/products/12");
    let a = answer(fallback::not_found(event.request()).await);
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(a.headers["allow"], "GET, PUT, DELETE");
    assert_eq!(a.error().0, "method_not_allowed");
}

/// Each function binary and the handler its `main` hands events to. The test files of this
/// directory (and of shared/kafka/tests, for the Kafka crate's) call these handlers with the events AWS delivers (HTTP API, EventBridge schedule, MSK,
/// CloudFormation custom resource); a new function must be added here (and
/// tested) or this fails.
const FUNCTIONS: &[(&str, &str)] = &[
    ("events-relay", "relay::run"),
    ("health", "handlers::health::check"),
    ("kafka-brokers", "kafka_brokers::handle"),
    ("kafka-topics", "setup::handle"),
    ("metrics-janitor", "janitor::run"),
    ("migrate", "migrations::handle"),
    ("not-found", "handlers::fallback::not_found"),
    ("notifications", "notifications::handle"),
    ("notifications-forwarder", "notifications::forward"),
    ("notifications-list", "handlers::notifications::list"),
    ("orders-bulk", "handlers::orders::bulk"),
    ("orders-cancel", "handlers::orders::cancel"),
    ("orders-create", "handlers::orders::create"),
    ("orders-get", "handlers::orders::get"),
    ("orders-list", "handlers::orders::list"),
    ("orders-list-by-user", "handlers::orders::list_by_user"),
    ("orders-reconciler", "reconciler::run"),
    ("products-adjust-stock", "handlers::products::adjust_stock"),
    ("products-create", "handlers::products::create"),
    ("products-delete", "handlers::products::delete"),
    ("products-get", "handlers::products::get"),
    ("products-list", "handlers::products::list"),
    ("products-update", "handlers::products::update"),
    ("stock-levels", "stock_levels::run"),
];

#[test]
fn every_function_runs_a_handler_tested_here() {
    let functions = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../functions");
    let mut found: Vec<String> = std::fs::read_dir(&functions)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    found.sort();
    let listed: Vec<&str> = FUNCTIONS.iter().map(|(f, _)| *f).collect();
    assert_eq!(found, listed);
    for (function, handler) in FUNCTIONS {
        let main = std::fs::read_to_string(functions.join(function).join("src/main.rs")).unwrap();
        assert!(main.contains(handler), "{function} does not run {handler}");
    }
}
