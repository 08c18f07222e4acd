//! Who may do what (docs/security.md).
//!
//! In AWS, API Gateway's JWT authorizer verifies a caller's bearer token (signature, issuer,
//! audience, expiry) and passes its claims in `requestContext.authorizer.jwt.claims`; the
//! functions decide from those claims alone. The local router has no authorizer, so with
//! `AUTH_MODE=local` [`crate::http::serve`] verifies a development token itself ([`dev_token`])
//! and puts its claims in the same place: the same rules run on the same input.
//!
//! | `AUTH_MODE` | identity | where |
//! |---|---|---|
//! | `off` (default) | none: anyone may do anything; an order's `user_id` comes from its body | the original clients, `localstack/up` |
//! | `jwt` | the claims API Gateway's authorizer verified | template.yaml |
//! | `local` | the claims of a development token the function verified | `localstack/up` with `STOCKROOM_AUTH=local`, the tests |
//!
//! The rules, with authentication on: product writes and the notification log need the admin
//! scope; an order belongs to the token's user; a user sees and cancels only their own orders,
//! an administrator all of them.

pub mod dev_token;

use std::collections::HashMap;
use std::sync::OnceLock;

use aws_lambda_events::apigw::{
    ApiGatewayRequestAuthorizer, ApiGatewayRequestAuthorizerJwtDescription,
};
use lambda_http::http::{StatusCode, header};
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};

use crate::ApiError;
use crate::config::{self, ConfigError, Vars};

pub const AUTH_MODE: &str = "AUTH_MODE";
pub const AUTH_ADMIN_SCOPE: &str = "AUTH_ADMIN_SCOPE";
pub const AUTH_USER_ID_CLAIM: &str = "AUTH_USER_ID_CLAIM";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Off,
    Jwt,
    Local(dev_token::Verifier),
}

/// How callers are identified; read once per execution environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub mode: Mode,
    /// The scope that makes a caller an administrator (`admin`; with Cognito's resource-server
    /// scopes, e.g. `stockroom/admin`).
    pub admin_scope: String,
    /// The claim holding the caller's numeric user id (`sub`).
    pub user_id_claim: String,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(config::env)
    }

    /// From the settings as `vars` gives them; unset or empty ones take their defaults.
    pub fn from_vars(vars: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mode = match vars.optional(AUTH_MODE).as_deref().unwrap_or("off") {
            "off" => Mode::Off,
            "jwt" => Mode::Jwt,
            "local" => {
                let need = |name| {
                    let needed = format!("{AUTH_MODE}=local needs it");
                    vars.required(name).map_err(|err| err.note(needed))
                };
                Mode::Local(dev_token::Verifier::new(
                    need(dev_token::AUTH_LOCAL_SECRET)?,
                    need(dev_token::AUTH_ISSUER)?,
                    need(dev_token::AUTH_AUDIENCE)?,
                ))
            }
            other => {
                return Err(ConfigError::invalid(
                    AUTH_MODE,
                    other,
                    "one of off, jwt, local",
                ));
            }
        };
        Ok(Self {
            mode,
            admin_scope: vars
                .optional(AUTH_ADMIN_SCOPE)
                .unwrap_or_else(|| "admin".to_owned()),
            user_id_claim: vars
                .optional(AUTH_USER_ID_CLAIM)
                .unwrap_or_else(|| "sub".to_owned()),
        })
    }

    /// Who sent `request`: the verified claims in its context; without claims, [`Caller::Anyone`]
    /// when authentication is off, else 401.
    pub fn caller(&self, request: &Request) -> Result<Caller, ApiError> {
        if let Some(jwt) = jwt_of(request) {
            let user_id = jwt
                .claims
                .get(&self.user_id_claim)
                .and_then(|id| id.parse::<i64>().ok())
                .filter(|id| *id >= 0);
            let admin = scopes(jwt).any(|scope| scope == self.admin_scope);
            return Ok(Caller::Token { user_id, admin });
        }
        if let Some(TokenRejected(reason)) = request.extensions().get::<TokenRejected>() {
            return Err(unauthorized(reason.to_string()));
        }
        match self.mode {
            Mode::Off => Ok(Caller::Anyone),
            Mode::Jwt | Mode::Local(_) => Err(unauthorized(
                "this route needs a bearer token (Authorization: Bearer <token>)",
            )),
        }
    }

    /// With `AUTH_MODE=local`: verifies the request's bearer token as API Gateway's authorizer
    /// would and puts its claims in the request context. A token that fails is remembered, so a
    /// route that needs one answers 401 with the reason; routes that need none ignore it, as
    /// routes without an authorizer do in AWS.
    pub fn authenticate_locally(&self, request: Request, now: i64) -> Request {
        let Mode::Local(verifier) = &self.mode else {
            return request;
        };
        let Some(token) = bearer_token(&request) else {
            return request;
        };
        match verifier.verify(token, now) {
            Ok(claims) => with_claims(request, claims),
            Err(reason) => {
                let mut request = request;
                request.extensions_mut().insert(TokenRejected(reason));
                request
            }
        }
    }
}

static CONFIG: OnceLock<Config> = OnceLock::new();

/// Reads the configuration at cold start: a function configured wrongly fails to start, loudly,
/// instead of answering requests with the wrong rules.
pub fn init() -> Result<&'static Config, ConfigError> {
    if let Some(config) = CONFIG.get() {
        return Ok(config);
    }
    let config = Config::from_env()?;
    Ok(CONFIG.get_or_init(|| config))
}

/// This environment's configuration ([`init`] has read it; handler tests read it here).
pub fn config() -> &'static Config {
    CONFIG.get_or_init(|| Config::from_env().expect("a valid AUTH_MODE configuration"))
}

/// Who sent `request`, under this environment's configuration.
pub fn caller(request: &Request) -> Result<Caller, ApiError> {
    config().caller(request)
}

/// 401 or 403 unless the caller may write products and read the notification log.
pub fn require_admin(request: &Request) -> Result<(), ApiError> {
    caller(request)?.require_admin()
}

/// Who is calling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// Authentication is off: anyone may do anything, and an order names its user in its body.
    Anyone,
    /// A verified token: the user id its claim holds (when that is a non-negative integer) and
    /// whether it carries the admin scope.
    Token { user_id: Option<i64>, admin: bool },
}

impl Caller {
    /// Product writes and the notification log: administrators only.
    pub fn require_admin(self) -> Result<(), ApiError> {
        match self {
            Self::Anyone | Self::Token { admin: true, .. } => Ok(()),
            Self::Token { .. } => Err(forbidden("this needs the admin scope")),
        }
    }

    /// Whose orders this caller may read and cancel: `None` for everyone's (an administrator, or
    /// no authentication), else only their own.
    pub fn order_owner(self) -> Result<Option<i64>, ApiError> {
        match self {
            Self::Anyone | Self::Token { admin: true, .. } => Ok(None),
            Self::Token {
                user_id: Some(id), ..
            } => Ok(Some(id)),
            Self::Token { user_id: None, .. } => Err(no_user_id()),
        }
    }

    /// The user a new order belongs to: the body's `named` user without authentication (`None`
    /// keeps it); with it, the token's user, and a body naming anyone else is 403.
    pub fn orderer(self, named: Option<i64>) -> Result<Option<i64>, ApiError> {
        match self {
            Self::Anyone => Ok(None),
            Self::Token { user_id: None, .. } => Err(no_user_id()),
            Self::Token {
                user_id: Some(id), ..
            } => match named {
                Some(other) if other != id => Err(forbidden(
                    "user_id must be your own (the token's user) or left out",
                )
                .with_field("user_id")),
                _ => Ok(Some(id)),
            },
        }
    }
}

/// A development token that did not verify (see [`Config::authenticate_locally`]).
#[derive(Debug, Clone)]
struct TokenRejected(dev_token::Rejected);

fn unauthorized(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

/// 403 `forbidden`: the caller is known but may not do this.
pub fn forbidden(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
}

fn no_user_id() -> ApiError {
    forbidden("the token names no user: its user id claim is not a non-negative integer")
}

fn jwt_of(request: &Request) -> Option<&ApiGatewayRequestAuthorizerJwtDescription> {
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV2(context) => context.authorizer.as_ref()?.jwt.as_ref(),
        _ => None,
    }
}

/// The token's scopes: API Gateway's `scopes`, OAuth's space-separated `scope` claim, and the
/// `scp` array some providers send (flattened by API Gateway to `[a b]`).
fn scopes(jwt: &ApiGatewayRequestAuthorizerJwtDescription) -> impl Iterator<Item = &str> {
    let listed = jwt.scopes.iter().flatten().map(String::as_str);
    let claimed = ["scope", "scp"]
        .into_iter()
        .filter_map(|name| jwt.claims.get(name))
        .flat_map(|value| value.trim_matches(['[', ']']).split_whitespace());
    listed.chain(claimed)
}

fn bearer_token(request: &Request) -> Option<&str> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

fn with_claims(request: Request, claims: HashMap<String, String>) -> Request {
    let Some(RequestContext::ApiGatewayV2(mut context)) = request.request_context_ref().cloned()
    else {
        return request;
    };
    let mut jwt = ApiGatewayRequestAuthorizerJwtDescription::default();
    jwt.claims = claims;
    let mut authorizer = context
        .authorizer
        .take()
        .unwrap_or_else(ApiGatewayRequestAuthorizer::default);
    authorizer.jwt = Some(jwt);
    context.authorizer = Some(authorizer);
    request.with_request_context(RequestContext::ApiGatewayV2(context))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(user_id: Option<i64>, admin: bool) -> Caller {
        Caller::Token { user_id, admin }
    }

    #[test]
    fn only_administrators_and_unauthenticated_stacks_write_products() {
        assert!(Caller::Anyone.require_admin().is_ok());
        assert!(token(None, true).require_admin().is_ok());
        let err = token(Some(7), false).require_admin().unwrap_err();
        assert_eq!((err.status, err.code), (StatusCode::FORBIDDEN, "forbidden"));
    }

    #[test]
    fn users_see_their_own_orders_and_administrators_all() {
        assert_eq!(Caller::Anyone.order_owner().unwrap(), None);
        assert_eq!(token(Some(7), true).order_owner().unwrap(), None);
        assert_eq!(token(Some(7), false).order_owner().unwrap(), Some(7));
        assert_eq!(
            token(None, false).order_owner().unwrap_err().status,
            StatusCode::FORBIDDEN
        );
    }

    #[test]
    fn an_order_belongs_to_the_tokens_user() {
        assert_eq!(Caller::Anyone.orderer(Some(3)).unwrap(), None);
        assert_eq!(token(Some(7), false).orderer(None).unwrap(), Some(7));
        assert_eq!(token(Some(7), false).orderer(Some(7)).unwrap(), Some(7));
        let err = token(Some(7), true).orderer(Some(3)).unwrap_err();
        assert_eq!(
            (err.status, err.field.as_deref()),
            (StatusCode::FORBIDDEN, Some("user_id"))
        );
        assert_eq!(
            token(None, true).orderer(None).unwrap_err().status,
            StatusCode::FORBIDDEN
        );
    }

    fn config_of(table: &'static [(&'static str, &'static str)]) -> Result<Config, ConfigError> {
        Config::from_vars(|name: &str| {
            table
                .iter()
                .find(|(var, _)| *var == name)
                .map(|(_, value)| (*value).to_owned())
        })
    }

    #[test]
    fn unset_or_empty_settings_take_their_defaults() {
        for table in [
            &[][..],
            &[
                (AUTH_MODE, ""),
                (AUTH_ADMIN_SCOPE, ""),
                (AUTH_USER_ID_CLAIM, ""),
            ],
        ] {
            let config = config_of(table).unwrap();
            assert_eq!(config.mode, Mode::Off);
            assert_eq!(
                (config.admin_scope.as_str(), config.user_id_claim.as_str()),
                ("admin", "sub")
            );
        }
    }

    #[test]
    fn a_wrong_mode_or_a_local_mode_without_its_secret_fails_naming_the_variable() {
        let err = config_of(&[(AUTH_MODE, "JWT!")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"AUTH_MODE is not one of off, jwt, local: "JWT!""#
        );
        let err =
            config_of(&[(AUTH_MODE, "local"), (dev_token::AUTH_LOCAL_SECRET, "")]).unwrap_err();
        assert_eq!(err.var(), dev_token::AUTH_LOCAL_SECRET);
        assert_eq!(
            err.to_string(),
            "AUTH_LOCAL_SECRET is empty (AUTH_MODE=local needs it)"
        );
    }
}
