//! The answer for requests no route matches: the JSON error shape, 405 with `Allow` when the path
//! exists under other methods, 404 otherwise. API Gateway sends them here through its `$default`
//! route, and `cargo lambda watch` through a catch-all route.

use lambda_http::http::{StatusCode, header};
use lambda_http::{Body, Request, RequestExt, Response};

use crate::ApiError;
use crate::http::error_response;

/// Every route of the HTTP API as `(method, path template)`; `e2e/tests/routes.rs` checks that it
/// matches `template.yaml` and the local router.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/health"),
    ("GET", "/api/products"),
    ("POST", "/api/products"),
    ("GET", "/api/products/{id}"),
    ("PUT", "/api/products/{id}"),
    ("DELETE", "/api/products/{id}"),
    ("POST", "/api/products/{id}/stock"),
    ("GET", "/api/orders"),
    ("POST", "/api/orders"),
    ("POST", "/api/orders/bulk"),
    ("GET", "/api/orders/{id}"),
    ("POST", "/api/orders/{id}/cancel"),
    ("GET", "/api/orders/user/{user_id}"),
    ("GET", "/api/notifications"),
];

/// Whether `path` fits `template`, where a `{name}` segment matches any one non-empty segment.
pub fn path_matches(template: &str, path: &str) -> bool {
    let path = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    let mut wanted = template.split('/');
    let mut given = path.split('/');
    loop {
        match (wanted.next(), given.next()) {
            (None, None) => return true,
            (Some(w), Some(g)) if w.starts_with('{') && !g.is_empty() => {}
            (Some(w), Some(g)) if w == g => {}
            _ => return false,
        }
    }
}

/// The methods the API accepts on `path`.
pub fn allowed_methods(path: &str) -> Vec<&'static str> {
    ROUTES
        .iter()
        .filter(|(_, template)| path_matches(template, path))
        .map(|(method, _)| *method)
        .collect()
}

pub async fn not_found(request: Request) -> Response<Body> {
    let path = request.raw_http_path();
    let method = request.method().as_str();
    let allowed = allowed_methods(path);
    // The method is allowed, so the route exists, but not in this form (a trailing slash): no
    // route, rather than a 405 that names the very method it refuses.
    if allowed.is_empty() || allowed.contains(&method) {
        return error_response(&ApiError::new(
            StatusCode::NOT_FOUND,
            "route_not_found",
            format!("no route for {method} {path}"),
        ));
    }
    let mut response = error_response(&ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{method} is not allowed on {path}; use {}",
            allowed.join(", ")
        ),
    ));
    if let Ok(value) = allowed.join(", ").parse() {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_whole_segments() {
        assert!(path_matches("/api/products/{id}", "/api/products/7"));
        assert!(path_matches("/api/products/{id}", "/api/products/abc/"));
        assert!(path_matches("/api/products", "/api/products/"));
        assert!(!path_matches("/api/products/{id}", "/api/products/"));
        assert!(!path_matches("/api/products/{id}", "/api/products/7/x"));
        assert!(!path_matches("/api/products", "/api/productsx"));
    }

    #[test]
    fn allowed_methods_follow_the_route_table() {
        assert_eq!(allowed_methods("/api/products"), ["GET", "POST"]);
        assert_eq!(allowed_methods("/api/products/3"), ["GET", "PUT", "DELETE"]);
        assert!(allowed_methods("/api/nothing").is_empty());
    }
}
