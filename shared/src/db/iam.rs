//! IAM database authentication (RDS, RDS Proxy): instead of a password, the connection presents a
//! token that is a SigV4-presigned `connect` request, signed with the function's own role
//! credentials, which Lambda puts in the environment. No password lives in the template, the
//! environment or a secret the function reads; the role's `rds-db:connect` permission decides.
//!
//! The signing is SigV4's query-string form, written out here (hmac and sha2 are already linked)
//! rather than pulling the AWS SDK's signing crates into every function.

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// How long a token is good for connecting (RDS accepts at most 15 minutes). Only the connection
/// attempt uses it; an open connection outlives it.
const EXPIRES_SECONDS: u32 = 900;
const SERVICE: &str = "rds-db";

/// The role credentials and region of this environment.
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    pub region: String,
}

impl Credentials {
    /// From the standard variables Lambda sets for the function's role.
    pub fn from_env() -> Result<Self, String> {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|value| !value.is_empty())
                .ok_or_else(|| {
                    format!("auth=iam needs {name} (set by Lambda for the function's role)")
                })
        };
        Ok(Self {
            access_key_id: var("AWS_ACCESS_KEY_ID")?,
            secret_access_key: var("AWS_SECRET_ACCESS_KEY")?,
            session_token: var("AWS_SESSION_TOKEN").ok(),
            region: var("AWS_REGION")?,
        })
    }
}

/// The token to send as the password when connecting as `user` to `host:port`, as of `now`.
pub fn auth_token(
    credentials: &Credentials,
    host: &str,
    port: u16,
    user: &str,
    now: DateTime<Utc>,
) -> String {
    let date = now.format("%Y%m%d").to_string();
    let timestamp = now.format("%Y%m%dT%H%M%SZ").to_string();
    let scope = format!("{date}/{}/{SERVICE}/aws4_request", credentials.region);
    let mut params = vec![
        ("Action", "connect".to_owned()),
        ("DBUser", user.to_owned()),
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256".to_owned()),
        (
            "X-Amz-Credential",
            format!("{}/{scope}", credentials.access_key_id),
        ),
        ("X-Amz-Date", timestamp.clone()),
        ("X-Amz-Expires", EXPIRES_SECONDS.to_string()),
        ("X-Amz-SignedHeaders", "host".to_owned()),
    ];
    if let Some(token) = &credentials.session_token {
        params.push(("X-Amz-Security-Token", token.clone()));
    }
    params.sort();
    let query = params
        .iter()
        .map(|(name, value)| format!("{name}={}", uri_encode(value)))
        .collect::<Vec<_>>()
        .join("&");
    let authority = format!("{host}:{port}");
    // The body of a GET is empty: its hash is that of no bytes.
    let canonical_request = format!(
        "GET\n/\n{query}\nhost:{authority}\n\nhost\n{}",
        hex(&Sha256::digest(b""))
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{timestamp}\n{scope}\n{}",
        hex(&Sha256::digest(canonical_request.as_bytes()))
    );
    let key = [credentials.region.as_str(), SERVICE, "aws4_request"]
        .iter()
        .fold(
            hmac(
                format!("AWS4{}", credentials.secret_access_key).as_bytes(),
                &date,
            ),
            |key, part| hmac(&key, part),
        );
    let signature = hex(&hmac(&key, &string_to_sign));
    format!("{authority}/?{query}&X-Amz-Signature={signature}")
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// SigV4's encoding: every byte but the unreserved characters, as upper-case `%XX`.
fn uri_encode(value: &str) -> String {
    value
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn credentials(session_token: Option<&str>) -> Credentials {
        Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: session_token.map(str::to_owned),
            region: "eu-west-1".into(),
        }
    }

    fn params(token: &str) -> BTreeSet<&str> {
        token.split_once("/?").unwrap().1.split('&').collect()
    }

    // The expected tokens are what botocore 1.43's `generate_db_auth_token` (the reference the AWS
    // CLI uses) produced for the same credentials, endpoint and time, 2026-12-01T10:30:00Z. It
    // orders the parameters differently; the server reads them as a set.
    #[test]
    fn tokens_match_the_aws_reference_implementation() {
        let now = DateTime::parse_from_rfc3339("2026-12-01T10:30:00Z")
            .unwrap()
            .to_utc();
        let with_session = auth_token(
            &credentials(Some("session/token+example=")),
            "stockroom.proxy-abc.eu-west-1.rds.amazonaws.com",
            5432,
            "stockroom_inventory",
            now,
        );
        let expected = "stockroom.proxy-abc.eu-west-1.rds.amazonaws.com:5432/?Action=connect&DBUser=stockroom_inventory&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20261201%2Feu-west-1%2Frds-db%2Faws4_request&X-Amz-Date=20261201T103000Z&X-Amz-SignedHeaders=host&X-Amz-Expires=900&X-Amz-Security-Token=session%2Ftoken%2Bexample%3D&X-Amz-Signature=b3f8be27c3d02cfe92fb6ed5cce80c4aacda9cce077e61e8444a501ba9a30414";
        assert!(with_session.starts_with("stockroom.proxy-abc.eu-west-1.rds.amazonaws.com:5432/?"));
        assert_eq!(params(&with_session), params(expected));

        let without = auth_token(&credentials(None), "db.example", 5432, "app", now);
        let expected = "db.example:5432/?Action=connect&DBUser=app&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20261201%2Feu-west-1%2Frds-db%2Faws4_request&X-Amz-Date=20261201T103000Z&X-Amz-SignedHeaders=host&X-Amz-Expires=900&X-Amz-Signature=2b4e995c70c933a5d6591c2a6e552f264f4235428e39777477d97602a82247f9";
        assert_eq!(params(&without), params(expected));
    }

    #[test]
    fn a_token_signs_its_user_host_and_time() {
        let now = DateTime::parse_from_rfc3339("2026-12-01T10:30:00Z")
            .unwrap()
            .to_utc();
        let signature = |token: String| token.rsplit_once('=').unwrap().1.to_owned();
        let base = signature(auth_token(
            &credentials(None),
            "db.example",
            5432,
            "app",
            now,
        ));
        for other in [
            auth_token(&credentials(None), "db.example", 5432, "admin", now),
            auth_token(&credentials(None), "db.example", 5433, "app", now),
            auth_token(&credentials(None), "db2.example", 5432, "app", now),
            auth_token(
                &credentials(None),
                "db.example",
                5432,
                "app",
                now + chrono::Duration::seconds(1),
            ),
        ] {
            assert_ne!(signature(other), base);
        }
    }
}
