//! Reads a database login from AWS Secrets Manager: the master user's secret RDS keeps for an
//! instance the stack created (`ManageMasterUserPassword`), which only the `migrate` function
//! reads, once per deploy, to create the roles and databases (`crate::bootstrap`). One signed
//! `GetSecretValue` call over HTTPS (ureq, already linked for the custom resource's answer), rather
//! than the AWS SDK in the `stockroom` crate, which every function links.

use std::time::Duration;

use serde::Deserialize;

use crate::sigv4::{self, Credentials};

const TIMEOUT: Duration = Duration::from_secs(10);

/// A user name and password; `Debug` leaves the password out.
#[derive(Deserialize)]
pub struct Login {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Where Secrets Manager answers: `AWS_ENDPOINT_URL_SECRETS_MANAGER`, else `AWS_ENDPOINT_URL`
/// (the SDKs' own variables, so a local endpoint works the same way), else the region's.
fn endpoint(var: &impl Fn(&str) -> Option<String>, region: &str) -> String {
    var("AWS_ENDPOINT_URL_SECRETS_MANAGER")
        .or_else(|| var("AWS_ENDPOINT_URL"))
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| format!("https://secretsmanager.{region}.amazonaws.com"))
        .trim_end_matches('/')
        .to_owned()
}

/// The login held by `secret_id` (a JSON secret with `username` and `password`, RDS's shape),
/// signed with the credentials and region `var` gives (the environment, in Lambda).
pub async fn database_login(
    secret_id: &str,
    var: impl Fn(&str) -> Option<String>,
) -> Result<Login, String> {
    let credentials = Credentials::from_vars(&var)?;
    let url = endpoint(&var, &credentials.region);
    let host = url
        .split_once("://")
        .map_or(url.as_str(), |(_, rest)| rest)
        .to_owned();
    let body = serde_json::json!({ "SecretId": secret_id }).to_string();
    let headers = [
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", "secretsmanager.GetSecretValue"),
    ];
    let request = sigv4::Request {
        method: "POST",
        host: &host,
        path: "/",
        headers: &headers,
        body: body.as_bytes(),
    };
    let signed = sigv4::sign(&credentials, "secretsmanager", &request, chrono::Utc::now());
    let id = secret_id.to_owned();
    let read = tokio::task::spawn_blocking(move || {
        let secret_id = id;
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(TIMEOUT))
            .http_status_as_error(false)
            .build()
            .new_agent();
        let mut request = agent.post(format!("{url}/"));
        for (name, value) in headers
            .iter()
            .map(|(n, v)| (*n, (*v).to_owned()))
            .chain(signed)
        {
            request = request.header(name, value);
        }
        let mut answer = request
            .send(body.as_bytes())
            .map_err(|err| format!("reading secret {secret_id}: {err}"))?;
        let status = answer.status().as_u16();
        let text = answer
            .body_mut()
            .read_to_string()
            .map_err(|err| format!("reading secret {secret_id}: {err}"))?;
        if status != 200 {
            return Err(format!(
                "reading secret {secret_id}: Secrets Manager answered {status}: {text}"
            ));
        }
        parse(&text).map_err(|err| format!("secret {secret_id}: {err}"))
    });
    read.await
        .map_err(|err| format!("reading secret {secret_id}: {err}"))?
}

/// The login in a `GetSecretValue` answer.
fn parse(answer: &str) -> Result<Login, String> {
    #[derive(Deserialize)]
    struct Answer {
        #[serde(rename = "SecretString")]
        secret_string: Option<String>,
    }
    let answer: Answer = serde_json::from_str(answer)
        .map_err(|err| format!("not a GetSecretValue answer: {err}"))?;
    let text = answer
        .secret_string
        .ok_or("holds no SecretString (a binary secret)")?;
    serde_json::from_str(&text)
        .map_err(|_| "is not JSON with a username and a password (RDS's shape)".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_is_read_from_rds_shaped_secrets_only() {
        let login = parse(
            r#"{"ARN":"arn:x","Name":"rds!db-1","SecretString":"{\"username\":\"stockroom_admin\",\"password\":\"p@ss:w/rd\"}"}"#,
        )
        .unwrap();
        assert_eq!(login.username, "stockroom_admin");
        assert_eq!(login.password, "p@ss:w/rd");
        assert!(
            !format!("{login:?}").contains("p@ss"),
            "Debug shows no password"
        );
        for bad in [
            r#"{"SecretBinary":"AAAA"}"#,
            r#"{"SecretString":"just a password"}"#,
            r#"{"SecretString":"{\"username\":\"u\"}"}"#,
            "<html>",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_endpoint_is_the_sdks_choice() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(
            endpoint(&vars(&[]), "eu-west-1"),
            "https://secretsmanager.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            endpoint(
                &vars(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:4566/")]),
                "x"
            ),
            "http://127.0.0.1:4566"
        );
        assert_eq!(
            endpoint(
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
