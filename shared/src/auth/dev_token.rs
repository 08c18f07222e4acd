//! Development tokens: JWTs signed with HS256 and a shared secret, which the functions verify
//! themselves when `AUTH_MODE=local`, because the local router has no authorizer. Never used in
//! AWS: there API Gateway's JWT authorizer verifies the identity provider's tokens.
//!
//! A token is checked as API Gateway checks one: the signature (only `HS256`; `none` and every
//! other algorithm are refused), `iss`, `aud`, `exp` (required) and `nbf`. Its claims then reach the
//! handlers flattened to strings, as API Gateway passes them (`["a","b"]` becomes `[a b]`).

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Map, Value, json};
use sha2::Sha256;

pub const AUTH_LOCAL_SECRET: &str = "AUTH_LOCAL_SECRET";
pub const AUTH_ISSUER: &str = "AUTH_ISSUER";
pub const AUTH_AUDIENCE: &str = "AUTH_AUDIENCE";

/// Why a token was refused; the text is the 401's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error("the bearer token is not a JWT")]
    Malformed,
    #[error("the token's algorithm must be HS256")]
    Algorithm,
    #[error("the token's signature does not verify")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued by another issuer")]
    Issuer,
    #[error("the token is meant for another audience")]
    Audience,
}

/// Signs and checks development tokens for one issuer and audience.
#[derive(Clone, PartialEq, Eq)]
pub struct Verifier {
    secret: Vec<u8>,
    issuer: String,
    audience: String,
}

impl std::fmt::Debug for Verifier {
    // Never the secret, even in a debug print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    pub fn new(
        secret: impl Into<Vec<u8>>,
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> Self {
        Self {
            secret: secret.into(),
            issuer: issuer.into(),
            audience: audience.into(),
        }
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes keys of any length")
    }

    /// A token for `subject` with `scopes` (space-separated in `scope`, as OAuth 2.0 has it),
    /// valid from `now` (seconds since the epoch) for `ttl_seconds`.
    pub fn mint(&self, subject: &str, scopes: &[&str], now: i64, ttl_seconds: i64) -> String {
        let header = json!({ "alg": "HS256", "typ": "JWT" });
        let claims = json!({
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "scope": scopes.join(" "),
            "iat": now,
            "exp": now + ttl_seconds,
        });
        self.sign(&header, &claims)
    }

    /// Signs any header and claims: tests use it to forge what a client might send.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut mac = self.mac();
        mac.update(signed.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signed}.{signature}")
    }

    /// The token's claims, flattened as API Gateway passes them, if it verifies at `now`.
    pub fn verify(&self, token: &str, now: i64) -> Result<HashMap<String, String>, Rejected> {
        let mut parts = token.split('.');
        let (Some(header_part), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Rejected::Malformed);
        };
        let header = decode_object(header_part)?;
        if header.get("alg").and_then(Value::as_str) != Some("HS256") {
            return Err(Rejected::Algorithm);
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| Rejected::Malformed)?;
        let mut mac = self.mac();
        mac.update(&token.as_bytes()[..header_part.len() + 1 + payload.len()]);
        // A constant-time comparison.
        mac.verify_slice(&signature)
            .map_err(|_| Rejected::Signature)?;
        let claims = decode_object(payload)?;
        let time = |name: &str| claims.get(name).and_then(Value::as_i64);
        match time("exp") {
            Some(exp) if exp > now => {}
            _ => return Err(Rejected::Expired),
        }
        if time("nbf").is_some_and(|nbf| nbf > now) {
            return Err(Rejected::NotYetValid);
        }
        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err(Rejected::Issuer);
        }
        let audience_matches = match claims.get("aud") {
            Some(Value::String(aud)) => *aud == self.audience,
            Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(&self.audience)),
            _ => false,
        };
        if !audience_matches {
            return Err(Rejected::Audience);
        }
        Ok(claims
            .into_iter()
            .map(|(name, value)| (name, flatten(value)))
            .collect())
    }
}

fn decode_object(part: &str) -> Result<Map<String, Value>, Rejected> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| Rejected::Malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Rejected::Malformed),
    }
}

/// A claim as API Gateway's JWT authorizer hands it to a function: strings as they are, arrays as
/// `[a b]`, anything else as its JSON text.
fn flatten(value: Value) -> String {
    match value {
        Value::String(text) => text,
        Value::Array(items) => format!(
            "[{}]",
            items.into_iter().map(flatten).collect::<Vec<_>>().join(" ")
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn verifier() -> Verifier {
        Verifier::new("s3cret", "https://issuer.local", "stockroom")
    }

    fn claims(extra: Value) -> Value {
        let mut claims = json!({ "iss": "https://issuer.local", "aud": "stockroom", "sub": "7", "exp": NOW + 60 });
        claims
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        claims
    }

    fn hs256() -> Value {
        json!({ "alg": "HS256", "typ": "JWT" })
    }

    #[test]
    fn a_minted_token_verifies_with_its_claims_flattened() {
        let token = verifier().mint("7", &["admin", "orders"], NOW, 60);
        let verified = verifier().verify(&token, NOW).unwrap();
        assert_eq!(verified["sub"], "7");
        assert_eq!(verified["scope"], "admin orders");
        assert_eq!(verified["exp"], (NOW + 60).to_string());
        let listed = verifier().sign(&hs256(), &claims(json!({ "groups": ["a", "b"] })));
        assert_eq!(verifier().verify(&listed, NOW).unwrap()["groups"], "[a b]");
    }

    #[test]
    fn expiry_and_not_before_are_enforced() {
        let token = verifier().mint("7", &[], NOW, 60);
        assert_eq!(verifier().verify(&token, NOW + 60), Err(Rejected::Expired));
        let no_exp = verifier().sign(
            &hs256(),
            &json!({ "iss": "https://issuer.local", "aud": "stockroom" }),
        );
        assert_eq!(verifier().verify(&no_exp, NOW), Err(Rejected::Expired));
        let later = verifier().sign(&hs256(), &claims(json!({ "nbf": NOW + 10 })));
        assert_eq!(verifier().verify(&later, NOW), Err(Rejected::NotYetValid));
    }

    #[test]
    fn another_secret_issuer_or_audience_is_refused() {
        let token =
            Verifier::new("other", "https://issuer.local", "stockroom").mint("7", &[], NOW, 60);
        assert_eq!(verifier().verify(&token, NOW), Err(Rejected::Signature));
        let token = Verifier::new("s3cret", "https://evil", "stockroom").mint("7", &[], NOW, 60);
        assert_eq!(verifier().verify(&token, NOW), Err(Rejected::Issuer));
        let token =
            Verifier::new("s3cret", "https://issuer.local", "other").mint("7", &[], NOW, 60);
        assert_eq!(verifier().verify(&token, NOW), Err(Rejected::Audience));
        let listed = verifier().sign(&hs256(), &claims(json!({ "aud": ["x", "stockroom"] })));
        assert!(verifier().verify(&listed, NOW).is_ok());
    }

    #[test]
    fn unsigned_and_other_algorithms_are_refused() {
        let token = verifier().mint("7", &["admin"], NOW, 60);
        let (signed, _) = token.rsplit_once('.').unwrap();
        assert_eq!(
            verifier().verify(&format!("{signed}."), NOW),
            Err(Rejected::Signature)
        );
        let none = verifier().sign(&json!({ "alg": "none" }), &claims(json!({})));
        assert_eq!(verifier().verify(&none, NOW), Err(Rejected::Algorithm));
        // A payload changed after signing (a user making themselves admin).
        let forged = format!(
            "{}.{}.{}",
            token.split('.').next().unwrap(),
            URL_SAFE_NO_PAD.encode(claims(json!({ "scope": "admin" })).to_string()),
            token.rsplit('.').next().unwrap()
        );
        assert_eq!(verifier().verify(&forged, NOW), Err(Rejected::Signature));
        for junk in ["", "a.b", "a.b.c.d", "!!.!!.!!", "e30.e30.e30"] {
            assert!(verifier().verify(junk, NOW).is_err(), "{junk}");
        }
    }
}
