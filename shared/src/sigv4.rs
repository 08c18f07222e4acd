//! SigV4's query-string form ("presigned" requests), which AWS uses for the tokens that stand in
//! for passwords: RDS IAM authentication ([`crate::db::iam`]) and MSK IAM (stockroom-kafka). Written
//! out with the hmac and sha2 the crate already links rather than pulling the AWS SDK's signing
//! crates into every function; each caller's test checks its token against AWS's own signer.

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// How long a token is good for (the most RDS and MSK accept: 15 minutes). Only connecting uses
/// it; an open connection outlives it.
pub const EXPIRES_SECONDS: u32 = 900;

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
                    format!(
                        "IAM authentication needs {name} (Lambda sets it for the function's role)"
                    )
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

/// The signed query string of `GET https://{authority}/?{params}` for `service`, as of `now`:
/// the parameters, SigV4's own, and `X-Amz-Signature` last.
pub fn presign(
    credentials: &Credentials,
    service: &str,
    authority: &str,
    params: &[(&str, &str)],
    now: DateTime<Utc>,
) -> String {
    let date = now.format("%Y%m%d").to_string();
    let timestamp = now.format("%Y%m%dT%H%M%SZ").to_string();
    let scope = format!("{date}/{}/{service}/aws4_request", credentials.region);
    let mut all: Vec<(&str, String)> = params.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
    all.extend([
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256".to_owned()),
        (
            "X-Amz-Credential",
            format!("{}/{scope}", credentials.access_key_id),
        ),
        ("X-Amz-Date", timestamp.clone()),
        ("X-Amz-Expires", EXPIRES_SECONDS.to_string()),
        ("X-Amz-SignedHeaders", "host".to_owned()),
    ]);
    if let Some(token) = &credentials.session_token {
        all.push(("X-Amz-Security-Token", token.clone()));
    }
    all.sort();
    let query = all
        .iter()
        .map(|(name, value)| format!("{name}={}", uri_encode(value)))
        .collect::<Vec<_>>()
        .join("&");
    // The body of a GET is empty: its hash is that of no bytes.
    let canonical_request = format!(
        "GET\n/\n{query}\nhost:{authority}\n\nhost\n{}",
        hex(&Sha256::digest(b""))
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{timestamp}\n{scope}\n{}",
        hex(&Sha256::digest(canonical_request.as_bytes()))
    );
    let key = [credentials.region.as_str(), service, "aws4_request"]
        .iter()
        .fold(
            hmac(
                format!("AWS4{}", credentials.secret_access_key).as_bytes(),
                &date,
            ),
            |key, part| hmac(&key, part),
        );
    format!(
        "{query}&X-Amz-Signature={}",
        hex(&hmac(&key, &string_to_sign))
    )
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
pub fn uri_encode(value: &str) -> String {
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
