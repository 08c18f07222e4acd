//! A small HTTP client for the tests that call the stack as a client would (e2e, faults): ureq,
//! every status handed back, the base URL from a variable `localstack/test` sets.

use std::time::Duration;

use serde_json::Value;
use ureq::Agent;
use ureq::http::Response;

/// How long a call may take, unless [`Client::timeout`] says otherwise.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// Calls to the paths of one base URL (`http://host:port`).
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    agent: Agent,
}

/// An answer: its status, headers (names in lower case) and body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub text: String,
}

impl Client {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            agent: agent(TIMEOUT),
        }
    }

    /// At the URL in the environment variable `var`; panics when it is unset.
    pub fn from_var(var: &str) -> Self {
        let base = std::env::var(var)
            .unwrap_or_else(|_| panic!("{var} is not set: run the tests with localstack/test"));
        Self::new(&base)
    }

    /// The same, each call giving up after `timeout`.
    pub fn timeout(self, timeout: Duration) -> Self {
        Self {
            agent: agent(timeout),
            ..self
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// `method path` with `headers` and `body` (sent as JSON unless `headers` name a content
    /// type): the reply, or why none came.
    pub fn try_call(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Result<Reply, String> {
        let url = format!("{}{path}", self.base);
        let fail = |err: String| format!("{method} {url}: {err}");
        let mut request = ureq::http::Request::builder().method(method).uri(&url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let typed = headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"));
        if body.is_some() && !typed {
            request = request.header("content-type", "application/json");
        }
        let sent = match body {
            Some(body) => request.body(body.to_owned()).map(|r| self.agent.run(r)),
            // An empty body where the method expects one (ureq would send it chunked).
            None if matches!(method, "POST" | "PUT" | "PATCH") => {
                request.body(String::new()).map(|r| self.agent.run(r))
            }
            None => request.body(()).map(|r| self.agent.run(r)),
        };
        let response = sent
            .map_err(|err| fail(err.to_string()))?
            .map_err(|err| fail(err.to_string()))?;
        reply(response).map_err(fail)
    }

    /// [`Self::try_call`]; panics when no answer came.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Reply {
        self.try_call(method, path, body, headers)
            .unwrap_or_else(|err| panic!("{err}"))
    }

    /// `GET path` with the parameters `query` (encoded here): the JSON of a 200 answer; panics
    /// otherwise.
    pub fn get_json(&self, path: &str, query: &[(&str, &str)]) -> Value {
        let url = format!("{}{path}", self.base);
        let mut request = self.agent.get(&url);
        for (key, value) in query {
            request = request.query(*key, *value);
        }
        let answer = request
            .call()
            .map_err(|err| err.to_string())
            .and_then(reply)
            .unwrap_or_else(|err| panic!("GET {url}: {err}"));
        assert_eq!(answer.status, 200, "GET {url} {query:?}: {}", answer.text);
        answer.json()
    }
}

impl Reply {
    /// The body as JSON; panics, quoting it, when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// The value of the header `name` (in lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `code` of Stockroom's JSON error; panics when the body has none.
    pub fn error_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error code: {}", self.text))
            .to_owned()
    }
}

fn agent(timeout: Duration) -> Agent {
    Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .into()
}

fn reply(mut response: Response<ureq::Body>) -> Result<Reply, String> {
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
    let text = response
        .body_mut()
        .read_to_string()
        .map_err(|err| err.to_string())?;
    Ok(Reply {
        status,
        headers,
        text,
    })
}
