//! IAM database authentication (RDS, RDS Proxy): instead of a password, the connection presents a
//! token that is a SigV4-presigned `connect` request for its host, port and user, signed with the
//! function's own role credentials, which Lambda puts in the environment. No password lives in the
//! template, the environment or a secret the function reads; the role's `rds-db:connect`
//! permission decides.

use chrono::{DateTime, Utc};

pub use crate::aws::sigv4::Credentials;

/// The token to send as the password when connecting as `user` to `host:port`, as of `now`.
pub fn auth_token(
    credentials: &Credentials,
    host: &str,
    port: u16,
    user: &str,
    now: DateTime<Utc>,
) -> String {
    let authority = format!("{host}:{port}");
    let query = crate::aws::sigv4::presign(
        credentials,
        "rds-db",
        &authority,
        &[("Action", "connect"), ("DBUser", user)],
        now,
    );
    format!("{authority}/?{query}")
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
