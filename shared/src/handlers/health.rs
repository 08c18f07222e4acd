//! `GET /health`: the state of each dependency, 503 when one is down; which one, never why.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::json;

use crate::db::Db;
use crate::http::json_response;

pub async fn check(db: &Db, _request: Request) -> Response<Body> {
    let (status, database) = match db.ping().await {
        Ok(()) => (StatusCode::OK, json!({ "status": "ok" })),
        Err(err) => {
            // The cause goes to the log; any caller may read /health, and the database's error
            // text (host names, users) is not for them.
            tracing::warn!(error = %crate::error::chain(&err), "health: database unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({ "status": "unavailable" }),
            )
        }
    };
    let overall = if status == StatusCode::OK {
        "ok"
    } else {
        "unavailable"
    };
    json_response(
        status,
        &json!({ "status": overall, "checks": { "database": database } }),
    )
}
