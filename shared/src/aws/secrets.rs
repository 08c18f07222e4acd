//! Reads a database login from AWS Secrets Manager: the master user's secret RDS keeps for an
//! instance the stack created (`ManageMasterUserPassword`), which only the `migrate` function
//! reads, once per deploy, to create the roles and databases (`crate::deploy::bootstrap`): one signed
//! `GetSecretValue` call ([`crate::aws::api`]).

use serde::Deserialize;

use crate::aws;

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

/// The login held by `secret_id` (a JSON secret with `username` and `password`, RDS's shape),
/// signed with the credentials and region `var` gives (the environment, in Lambda).
pub async fn database_login(
    secret_id: &str,
    var: impl Fn(&str) -> Option<String>,
) -> Result<Login, String> {
    let body = serde_json::json!({ "SecretId": secret_id }).to_string();
    let call = aws::api::Call {
        service: "secretsmanager",
        endpoint_var: "AWS_ENDPOINT_URL_SECRETS_MANAGER",
        method: "POST",
        path: "/",
        headers: &[
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", "secretsmanager.GetSecretValue"),
        ],
        body: body.as_bytes(),
    };
    let answer = aws::api::send_json(call, var, "Secrets Manager", "GetSecretValue")
        .await
        .map_err(|err| format!("reading secret {secret_id}: {err}"))?;
    login(answer).map_err(|err| format!("secret {secret_id}: {err}"))
}

/// A `GetSecretValue` answer (what of it is read).
#[derive(Deserialize)]
struct Answer {
    #[serde(rename = "SecretString")]
    secret_string: Option<String>,
}

/// The login in a `GetSecretValue` answer.
fn login(answer: Answer) -> Result<Login, String> {
    let text = answer
        .secret_string
        .ok_or("holds no SecretString (a binary secret)")?;
    serde_json::from_str(&text)
        .map_err(|_| "is not JSON with a username and a password (RDS's shape)".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The login in the text of a `GetSecretValue` answer.
    fn parse(answer: &str) -> Result<Login, String> {
        login(aws::api::parse_json(answer, "GetSecretValue")?)
    }

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
}
