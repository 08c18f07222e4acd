//! Calling the API over HTTP, as a client would.

#![allow(dead_code)] // each test binary uses a different part

use serde_json::Value;
use ureq::Agent;

pub mod template;

pub fn base() -> String {
    std::env::var("STOCKROOM_E2E_URL").unwrap_or_else(|_| {
        panic!("STOCKROOM_E2E_URL is not set: run the tests with localstack/test")
    })
}

pub fn agent() -> Agent {
    Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(60)))
        .build()
        .into()
}

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn error_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error code: {}", self.text))
            .to_owned()
    }
}

pub fn call(method: &str, path: &str, body: Option<&str>) -> Reply {
    call_with(method, path, body, &[])
}

/// Like [`call`], with extra request headers.
pub fn call_with(method: &str, path: &str, body: Option<&str>, headers: &[(&str, &str)]) -> Reply {
    call_at(&base(), method, path, body, headers)
}

/// Like [`call_with`], against the API at `base`.
pub fn call_at(
    base: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> Reply {
    let url = format!("{base}{path}");
    let agent = agent();
    let with_headers = |mut request: ureq::RequestBuilder<ureq::typestate::WithBody>| {
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.header("content-type", "application/json")
    };
    let without_body = |mut request: ureq::RequestBuilder<ureq::typestate::WithoutBody>| {
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.call()
    };
    let response = match (method, body) {
        ("GET", _) => without_body(agent.get(&url)),
        ("DELETE", _) => without_body(agent.delete(&url)),
        ("PATCH", _) => with_headers(agent.patch(&url)).send(body.unwrap_or("{}")),
        ("POST", Some(body)) => with_headers(agent.post(&url)).send(body),
        ("PUT", Some(body)) => with_headers(agent.put(&url)).send(body),
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

pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{nanos}")
}
