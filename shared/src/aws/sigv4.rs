//! AWS Signature Version 4. The query-string form ("presigned" requests, [`presign`]) makes the
//! tokens that stand in for passwords: RDS IAM authentication ([`crate::db::iam`]) and MSK IAM
//! (stockroom-kafka). The header form ([`sign`]) signs the AWS API calls the functions make
//! without an SDK ([`crate::aws::api`]): the database's master secret ([`crate::aws::secrets`])
//! and a cluster's brokers ([`crate::aws::msk`]). Written out with the
//! hmac and sha2 the crate already links rather than pulling the AWS SDK's signing crates into
//! every function; the tests check both against AWS's own signer (botocore).

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
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
    pub fn from_env() -> Result<Self, crate::config::ConfigError> {
        Self::from_vars(crate::config::env)
    }

    /// From those variables as `var` gives them.
    pub fn from_vars(
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, crate::config::ConfigError> {
        use crate::config::Vars as _;
        let need = |name: &str| {
            var.required(name).map_err(|err| {
                err.note("IAM authentication needs it; Lambda sets it for the function's role")
            })
        };
        Ok(Self {
            access_key_id: need("AWS_ACCESS_KEY_ID")?,
            secret_access_key: need("AWS_SECRET_ACCESS_KEY")?,
            session_token: var.optional("AWS_SESSION_TOKEN"),
            region: need("AWS_REGION")?,
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
    let signature = signature(credentials, service, &scope, &timestamp, &canonical_request);
    format!("{query}&X-Amz-Signature={signature}")
}

/// An HTTPS request to sign with headers: no query string; `path` as sent (already encoded);
/// `host` and every header given are signed.
pub struct Request<'a> {
    pub method: &'a str,
    pub host: &'a str,
    pub path: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

/// The headers that sign `request` for `service`, as of `now`: `x-amz-date`,
/// `x-amz-security-token` with session credentials, and `authorization`.
pub fn sign(
    credentials: &Credentials,
    service: &str,
    request: &Request<'_>,
    now: DateTime<Utc>,
) -> Vec<(&'static str, String)> {
    let timestamp = now.format("%Y%m%dT%H%M%SZ").to_string();
    let scope = format!(
        "{}/{}/{service}/aws4_request",
        now.format("%Y%m%d"),
        credentials.region
    );
    let mut added = vec![("x-amz-date", timestamp.clone())];
    if let Some(token) = &credentials.session_token {
        added.push(("x-amz-security-token", token.clone()));
    }
    let mut signed: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value.trim().to_owned()))
        .chain([("host".to_owned(), request.host.to_owned())])
        .chain(added.iter().map(|(n, v)| ((*n).to_owned(), v.clone())))
        .collect();
    signed.sort();
    let names = signed
        .iter()
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_headers: String = signed
        .iter()
        .map(|(name, value)| format!("{name}:{value}\n"))
        .collect();
    // Every service but S3 signs the path encoded once more than it is sent.
    let path = request
        .path
        .split('/')
        .map(uri_encode)
        .collect::<Vec<_>>()
        .join("/");
    let canonical_request = format!(
        "{}\n{path}\n\n{canonical_headers}\n{names}\n{}",
        request.method,
        hex(&Sha256::digest(request.body))
    );
    let signature = signature(credentials, service, &scope, &timestamp, &canonical_request);
    added.push((
        "authorization",
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={names}, Signature={signature}",
            credentials.access_key_id
        ),
    ));
    added
}

/// The signature of a canonical request: the string to sign, keyed by date, region and service.
fn signature(
    credentials: &Credentials,
    service: &str,
    scope: &str,
    timestamp: &str,
    canonical_request: &str,
) -> String {
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{timestamp}\n{scope}\n{}",
        hex(&Sha256::digest(canonical_request.as_bytes()))
    );
    let date = &timestamp[..8];
    let key = [credentials.region.as_str(), service, "aws4_request"]
        .iter()
        .fold(
            hmac(
                format!("AWS4{}", credentials.secret_access_key).as_bytes(),
                date,
            ),
            |key, part| hmac(&key, part),
        );
    hex(&hmac(&key, &string_to_sign))
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
    const RESERVED: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    utf8_percent_encode(value, RESERVED).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    // What botocore 1.43's SigV4Auth (the AWS CLI's signer) produced for the same requests,
    // credentials and time, 2026-12-01T10:30:00Z.
    #[test]
    fn a_path_is_signed_encoded_twice_as_aws_does() {
        let now = DateTime::parse_from_rfc3339("2026-12-01T10:30:00Z")
            .unwrap()
            .to_utc();
        let credentials = Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: Some("session/token+example=".into()),
            region: "eu-west-1".into(),
        };
        let arn = "arn:aws:kafka:eu-west-1:123456789012:cluster/stockroom/0a1b2c3d-4e5f-6789-abcd-ef0123456789-s1";
        let path = format!("/v1/clusters/{}/bootstrap-brokers", uri_encode(arn));
        let request = Request {
            method: "GET",
            host: "kafka.eu-west-1.amazonaws.com",
            path: &path,
            headers: &[],
            body: b"",
        };
        let signed = sign(&credentials, "kafka", &request, now);
        assert_eq!(
            signed[2].1,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261201/eu-west-1/kafka/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=1be53e12733396896de4f53b4b09808c124d3110e60aae5dd92bb60de0b39d18"
        );
    }

    #[test]
    fn every_byte_but_the_unreserved_is_encoded_in_upper_case() {
        assert_eq!(uri_encode("aZ09-_.~"), "aZ09-_.~");
        assert_eq!(uri_encode("a b/c:d+é"), "a%20b%2Fc%3Ad%2B%C3%A9");
    }

    #[test]
    fn header_signatures_match_the_aws_reference_implementation() {
        let now = DateTime::parse_from_rfc3339("2026-12-01T10:30:00Z")
            .unwrap()
            .to_utc();
        let body = br#"{"SecretId":"arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-1234-AbCdEf"}"#;
        let headers = [
            ("Content-Type", "application/x-amz-json-1.1"),
            ("X-Amz-Target", "secretsmanager.GetSecretValue"),
        ];
        let signed = |session_token: Option<&str>| {
            let credentials = Credentials {
                access_key_id: "AKIDEXAMPLE".into(),
                secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
                session_token: session_token.map(str::to_owned),
                region: "eu-west-1".into(),
            };
            let request = Request {
                method: "POST",
                host: "secretsmanager.eu-west-1.amazonaws.com",
                path: "/",
                headers: &headers,
                body,
            };
            sign(&credentials, "secretsmanager", &request, now)
        };
        assert_eq!(
            signed(Some("session/token+example=")),
            [
                ("x-amz-date", "20261201T103000Z".to_owned()),
                ("x-amz-security-token", "session/token+example=".to_owned()),
                (
                    "authorization",
                    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261201/eu-west-1/secretsmanager/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, Signature=7d8e898ba1b2843df16c3d4dd7b3b6f44095487a6d669351e25a8e6ff2cb0113".to_owned()
                ),
            ]
        );
        assert_eq!(
            signed(None),
            [
                ("x-amz-date", "20261201T103000Z".to_owned()),
                (
                    "authorization",
                    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261201/eu-west-1/secretsmanager/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=83d210a08186ca99fdb03e9d680d50d86c14953d93c453d0cd135962eb1a2de7".to_owned()
                ),
            ]
        );
    }
}
