//! One signed call to an AWS API over HTTPS, for the two the functions make without an SDK:
//! Secrets Manager's `GetSecretValue` ([`crate::aws::secrets`]) and MSK's `GetBootstrapBrokers`
//! ([`crate::aws::msk`], for the `kafka-brokers` custom resource). ureq (blocking, on a blocking thread) is already linked for the custom
//! resources' answers; the SDK would add its runtime to the domain crate every function links.
//! The same blocking send ([`run`]) carries the pushgateway's calls ([`crate::telemetry::Pushgateway`]).

use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::aws;
use crate::aws::sigv4::Credentials;

const TIMEOUT: Duration = Duration::from_secs(10);
/// The longest answer read: the pushgateway's listing of every group can be large.
const ANSWER_LIMIT: u64 = 64 * 1024 * 1024;

/// What to call: `service` is both the signing name and the host's first label.
pub struct Call<'a> {
    pub service: &'a str,
    /// The SDKs' variable that points this service elsewhere (`AWS_ENDPOINT_URL_SECRETS_MANAGER`).
    pub endpoint_var: &'a str,
    pub method: &'a str,
    /// As sent: already percent-encoded.
    pub path: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

/// An HTTP agent that gives up after `timeout` and hands every status back to the caller.
pub(crate) fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .new_agent()
}

/// Where the service answers: `endpoint_var`, else `AWS_ENDPOINT_URL`, else the region's.
pub fn endpoint(call: &Call<'_>, var: &impl Fn(&str) -> Option<String>, region: &str) -> String {
    var(call.endpoint_var)
        .or_else(|| var("AWS_ENDPOINT_URL"))
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| format!("https://{}.{region}.amazonaws.com", call.service))
        .trim_end_matches('/')
        .to_owned()
}

/// Sends `call`, signed with the credentials and region `var` gives (the environment, in
/// Lambda); the status and body of the answer.
pub async fn send(
    call: Call<'_>,
    var: impl Fn(&str) -> Option<String>,
) -> Result<(u16, String), String> {
    let credentials = Credentials::from_vars(&var)?;
    let base = endpoint(&call, &var, &credentials.region);
    let host = base
        .split_once("://")
        .map_or(base.as_str(), |(_, rest)| rest);
    let request = aws::sigv4::Request {
        method: call.method,
        host,
        path: call.path,
        headers: call.headers,
        body: call.body,
    };
    let signed = aws::sigv4::sign(&credentials, call.service, &request, chrono::Utc::now());
    let mut request = ureq::http::Request::builder()
        .method(call.method)
        .uri(format!("{base}{}", call.path));
    for (name, value) in call
        .headers
        .iter()
        .map(|(n, v)| (*n, (*v).to_owned()))
        .chain(signed)
    {
        request = request.header(name, value);
    }
    let request = request
        .body(call.body.to_vec())
        .map_err(|err| err.to_string())?;
    run(agent(TIMEOUT), request).await
}

/// Sends `call` ([`send`]) and reads its 200 answer as `T` ([`parse_json`]); any other status
/// is an error naming `service` (`MSK answered 404: …`) with the answer.
pub async fn send_json<T: DeserializeOwned>(
    call: Call<'_>,
    var: impl Fn(&str) -> Option<String>,
    service: &str,
    operation: &str,
) -> Result<T, String> {
    match send(call, var).await? {
        (200, text) => parse_json(&text, operation),
        (status, text) => Err(format!("{service} answered {status}: {text}")),
    }
}

/// The JSON answer of `operation` (`GetSecretValue`) as `T`.
pub(crate) fn parse_json<T: DeserializeOwned>(answer: &str, operation: &str) -> Result<T, String> {
    serde_json::from_str(answer).map_err(|err| format!("not a {operation} answer: {err}"))
}

/// Sends `request` with `agent` on a blocking thread (ureq blocks): the status and body of the
/// answer, or why none came.
pub(crate) async fn run(
    agent: ureq::Agent,
    request: ureq::http::Request<Vec<u8>>,
) -> Result<(u16, String), String> {
    let sent = tokio::task::spawn_blocking(move || {
        let mut answer = agent.run(request).map_err(|err| err.to_string())?;
        let status = answer.status().as_u16();
        let text = answer
            .body_mut()
            .with_config()
            .limit(ANSWER_LIMIT)
            .read_to_string()
            .map_err(|err| err.to_string())?;
        Ok((status, text))
    });
    sent.await.map_err(|err| err.to_string())?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_is_the_sdks_choice() {
        let call = Call {
            service: "secretsmanager",
            endpoint_var: "AWS_ENDPOINT_URL_SECRETS_MANAGER",
            method: "POST",
            path: "/",
            headers: &[],
            body: b"",
        };
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(
            endpoint(&call, &vars(&[]), "eu-west-1"),
            "https://secretsmanager.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            endpoint(
                &call,
                &vars(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:4566/")]),
                "x"
            ),
            "http://127.0.0.1:4566"
        );
        assert_eq!(
            endpoint(
                &call,
                &vars(&[
                    ("AWS_ENDPOINT_URL", "http://a"),
                    ("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://b")
                ]),
                "x"
            ),
            "http://b"
        );
    }
}
