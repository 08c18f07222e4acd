//! Calling the API over HTTP, as a client would ([`stockroom_test_support::http`]).

#![allow(dead_code)] // each test binary uses a different part

pub use stockroom_test_support::http::{Client, Reply};

pub mod template;

/// The API under test (`STOCKROOM_E2E_URL`).
pub fn api() -> Client {
    Client::from_var("STOCKROOM_E2E_URL")
}

/// `method path` against the API under test, with an optional JSON body.
pub fn call(method: &str, path: &str, body: Option<&str>) -> Reply {
    api().call(method, path, body, &[])
}

/// The monitoring stack's Prometheus (`PROMETHEUS_URL`).
pub fn prometheus() -> Client {
    Client::from_var("PROMETHEUS_URL")
}

pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{nanos}")
}

/// A function's binary as `localstack/test` builds it (`cargo build --workspace --bins`).
pub fn binary(name: &str) -> std::path::PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../target").into());
    let path = target.join("debug").join(name);
    assert!(
        path.exists(),
        "{} is not built: localstack/test builds every function (cargo build --workspace --bins)",
        path.display()
    );
    path
}
