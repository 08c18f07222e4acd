//! MSK IAM authentication: the SASL/OAUTHBEARER token is a SigV4-presigned
//! `kafka-cluster:Connect` request for the cluster's region, signed with the function's role
//! credentials, base64url-encoded, the format of AWS's `aws-msk-iam-sasl-signer` libraries. The
//! broker checks it and the role's `kafka-cluster:*` permissions; no Kafka password exists.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use stockroom::aws;
use stockroom::aws::sigv4::{Credentials, EXPIRES_SECONDS};

/// Sent unsigned beside the signature, as AWS's signers do: it names the client in MSK's logs.
const USER_AGENT: &str = concat!("stockroom/", env!("CARGO_PKG_VERSION"));

/// The token as of `now`, and when it expires (milliseconds since the epoch), which tells
/// librdkafka when to ask for the next one.
pub fn token(credentials: &Credentials, now: DateTime<Utc>) -> (String, i64) {
    let authority = format!("kafka.{}.amazonaws.com", credentials.region);
    let query = aws::sigv4::presign(
        credentials,
        "kafka-cluster",
        &authority,
        &[("Action", "kafka-cluster:Connect")],
        now,
    );
    let url = format!(
        "https://{authority}/?{query}&User-Agent={}",
        aws::sigv4::uri_encode(USER_AGENT)
    );
    let expires_ms = (now.timestamp() + i64::from(EXPIRES_SECONDS)) * 1000;
    (URL_SAFE_NO_PAD.encode(url), expires_ms)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    // What aws-msk-iam-sasl-signer-python 1.0.2 produced for these credentials at
    // 2026-12-01T10:30:00Z, decoded. Parameter order and the User-Agent (unsigned) may differ;
    // the broker reads the parameters as a set.
    const REFERENCE: &str = "https://kafka.eu-west-1.amazonaws.com/?Action=kafka-cluster%3AConnect&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20261201%2Feu-west-1%2Fkafka-cluster%2Faws4_request&X-Amz-Date=20261201T103000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Security-Token=session%2Ftoken%2Bexample%3D&X-Amz-Signature=653f435b091e8d71deba8b1532998a6bd3e01f2cb8f664bb5008205888258421&User-Agent=aws-msk-iam-sasl-signer-python%2F1.0.2";

    fn signed_params(url: &str) -> (&str, BTreeSet<&str>) {
        let (base, query) = url.split_once('?').unwrap();
        let params = query
            .split('&')
            .filter(|p| !p.starts_with("User-Agent="))
            .collect();
        (base, params)
    }

    #[test]
    fn the_token_matches_awss_signer() {
        let credentials = Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: Some("session/token+example=".into()),
            region: "eu-west-1".into(),
        };
        let now = DateTime::parse_from_rfc3339("2026-12-01T10:30:00Z")
            .unwrap()
            .to_utc();
        let (token, expires_ms) = token(&credentials, now);
        assert!(!token.contains('='), "no padding");
        let url = String::from_utf8(URL_SAFE_NO_PAD.decode(&token).unwrap()).unwrap();
        assert_eq!(signed_params(&url), signed_params(REFERENCE));
        assert!(url.ends_with(&format!(
            "&User-Agent=stockroom%2F{}",
            env!("CARGO_PKG_VERSION")
        )));
        // The reference signer's expiry for the same time.
        assert_eq!(expires_ms, 1_796_121_900_000);
    }
}
