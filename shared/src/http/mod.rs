//! Request and response plumbing shared by every HTTP function.
//!
//! Handlers never return `Err` to the runtime: API Gateway would turn that into a bare 500. Every
//! outcome, including a database outage, becomes a JSON response with the right status.

pub mod pagination;
pub mod request_body;

use std::future::Future;
use std::time::Instant;

use lambda_http::http::{StatusCode, header};
use lambda_http::{Body, Request, RequestExt, Response, service_fn};
use serde::Serialize;

use crate::ApiError;
use crate::http::pagination::{Page, WHOLE_LIST_BYTES};
use crate::http::request_body::JsonObject;

/// The service an endpoint belongs to: the prefix of the original system's metric names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Inventory,
    Order,
    Notification,
    /// The `$default` route's fallback.
    Gateway,
}

impl Service {
    fn requests_metric(self) -> &'static str {
        match self {
            Self::Inventory => "inventory_http_requests_total",
            Self::Order => "order_http_requests_total",
            Self::Notification => "notification_http_requests_total",
            Self::Gateway => "gateway_http_requests_total",
        }
    }

    fn duration_metric(self) -> &'static str {
        match self {
            Self::Inventory => "inventory_http_request_duration_seconds",
            Self::Order => "order_http_request_duration_seconds",
            Self::Notification => "notification_http_request_duration_seconds",
            Self::Gateway => "gateway_http_request_duration_seconds",
        }
    }
}

/// What a function serves: its service and its route template (`/api/products/{id}`, as in
/// template.yaml; never the raw path, so the metrics' series do not grow with every id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    pub service: Service,
    pub route: &'static str,
}

impl Endpoint {
    pub const fn new(service: Service, route: &'static str) -> Self {
        Self { service, route }
    }
}

/// Runs an HTTP function: every request goes to `handler`, and is counted and timed here, once
/// for every function (`<service>_http_requests_total{method,endpoint,status}` and
/// `<service>_http_request_duration_seconds{method,endpoint}`); the metrics are then flushed
/// ([`crate::telemetry::flush`]: EMF lines written with the request's log line, or a push in the
/// background). With `AUTH_MODE=local` the caller's development token is verified here first
/// ([`crate::auth`]).
pub async fn serve<F, Fut>(endpoint: Endpoint, handler: F) -> Result<(), lambda_http::Error>
where
    F: Fn(Request) -> Fut + Sync,
    Fut: Future<Output = Response<Body>> + Send,
{
    let auth = crate::auth::init()?;
    let handler = service_fn(|request: Request| {
        let now = chrono::Utc::now().timestamp();
        observed(endpoint, &handler, auth.authenticate_locally(request, now))
    });
    lambda_http::run(handler).await
}

/// The handler's response, counted, timed and logged. Never an error: every outcome of a handler,
/// a database outage included, is a JSON response (an error here would be API Gateway's bare 500).
async fn observed<F, Fut>(
    endpoint: Endpoint,
    handler: &F,
    request: Request,
) -> Result<Response<Body>, lambda_http::Error>
where
    F: Fn(Request) -> Fut,
    Fut: Future<Output = Response<Body>>,
{
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = handler(request).await;
    let latency = started.elapsed();
    let status = response.status().as_u16();
    // One line per request; inside the runtime's span, so it carries the request id and the X-Ray
    // trace id. Never the body: it may hold anything a client sent.
    tracing::info!(
        function = crate::telemetry::function(),
        method,
        route = endpoint.route,
        status,
        latency_ms = latency.as_secs_f64() * 1000.0,
        cold_start = crate::telemetry::first_invocation(),
        "request"
    );
    metrics::counter!(endpoint.service.requests_metric(),
        "method" => method.clone(), "endpoint" => endpoint.route, "status" => status.to_string())
    .increment(1);
    metrics::histogram!(endpoint.service.duration_metric(),
        "method" => method, "endpoint" => endpoint.route)
    .record(latency.as_secs_f64());
    crate::telemetry::flush();
    Ok(response)
}

pub fn json_response<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    match serde_json::to_string(value) {
        Ok(body) => Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::Text(body))
            .expect("static status and header are valid"),
        Err(err) => {
            tracing::error!(%err, "response did not serialise");
            error_response(&ApiError::internal())
        }
    }
}

/// The JSON error response. Not logged here: the cause was logged where it happened, and the
/// request's own line ([`serve`]) has the status.
pub fn error_response(err: &ApiError) -> Response<Body> {
    json_response(err.status, &err.body())
}

/// The response for a handler's outcome: `status` with the value, or the error's JSON.
pub fn reply<T: Serialize>(status: StatusCode, outcome: Result<T, ApiError>) -> Response<Body> {
    match outcome {
        Ok(value) => json_response(status, &value),
        Err(err) => error_response(&err),
    }
}

pub fn no_content() -> Response<Body> {
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Body::Empty)
        .expect("static status is valid")
}

/// The largest request body a function reads: far above any real product or order (a bulk order
/// of the most items is a few kilobytes), far below Lambda's 6 MB invocation limit, which the local
/// router does not enforce.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The body as one JSON object. A declared content type other than JSON is refused with 415; a
/// missing one is accepted, as the original service did. A body over [`MAX_BODY_BYTES`] is 413
/// before anything reads it.
pub fn json_body(request: &Request) -> Result<JsonObject, ApiError> {
    let size = match request.body() {
        Body::Text(text) => text.len(),
        Body::Binary(bytes) => bytes.len(),
        _ => 0,
    };
    if size > MAX_BODY_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body must be at most {MAX_BODY_BYTES} bytes"),
        ));
    }
    if let Some(content_type) = request.headers().get(header::CONTENT_TYPE) {
        let media_type = content_type
            .to_str()
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if media_type != "application/json" && !media_type.ends_with("+json") {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the request body must be application/json",
            ));
        }
    }
    let text = match request.body() {
        Body::Empty => "",
        Body::Text(text) => text.as_str(),
        Body::Binary(bytes) => std::str::from_utf8(bytes).map_err(|_| {
            ApiError::bad_request("malformed_json", "the request body is not UTF-8 text")
        })?,
        _ => {
            return Err(ApiError::bad_request(
                "invalid_body",
                "unsupported body encoding",
            ));
        }
    };
    JsonObject::parse(text)
}

/// The positive integer id in the path parameter `name`. Anything else names no resource: 404.
pub fn path_id(request: &Request, name: &str, resource: &str) -> Result<i64, ApiError> {
    let params = request.path_parameters();
    let raw = params.first(name).unwrap_or_default();
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::not_found(format!("no {resource} with id '{raw}'")))
}

/// The page a list request asks for (`?limit=N&after=ID`).
pub fn page(request: &Request) -> Result<Page, ApiError> {
    Page::from_query(
        query_param(request, "limit").as_deref(),
        query_param(request, "after").as_deref(),
    )
}

/// 200 with a listed page (or the error). A full keyset page carries
/// `Link: <path?limit=N&after=LAST>; rel="next"`.
pub fn list_reply<T: Serialize>(
    request: &Request,
    listed: Result<(Page, Vec<T>), ApiError>,
    id_of: fn(&T) -> i64,
) -> Response<Body> {
    let (page, mut items) = match listed {
        Ok(listed) => listed,
        Err(err) => return error_response(&err),
    };
    let cut = page == Page::All && fit_whole_list(&mut items);
    let mut response = json_response(StatusCode::OK, &items);
    let last = items.last().map(id_of);
    let next = if cut {
        last
    } else {
        page.next_after(items.len(), last)
    };
    if let Some(after) = next {
        let link = format!(
            "<{}?limit={}&after={after}>; rel=\"next\"",
            request.raw_http_path(),
            page.next_limit()
        );
        if let Ok(value) = link.parse() {
            response.headers_mut().insert(header::LINK, value);
        }
    }
    response
}

/// Keeps the longest prefix of a whole list whose JSON fits in [`WHOLE_LIST_BYTES`]; whether
/// it had to cut.
fn fit_whole_list<T: Serialize>(items: &mut Vec<T>) -> bool {
    let mut size = 2; // the brackets
    for (kept, item) in items.iter().enumerate() {
        size += serde_json::to_vec(item).map_or(0, |json| json.len()) + 1;
        if size > WHOLE_LIST_BYTES {
            items.truncate(kept);
            return true;
        }
    }
    false
}

/// A query-string parameter, if present.
pub fn query_param(request: &Request, name: &str) -> Option<String> {
    request
        .query_string_parameters_ref()
        .and_then(|params| params.first(name))
        .map(str::to_owned)
}
