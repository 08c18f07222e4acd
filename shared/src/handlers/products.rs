//! The product catalogue: `/api/products` and `/api/products/{id}`.

use lambda_http::http::{StatusCode, header};
use lambda_http::{Body, Request, Response};

use crate::ApiError;
use crate::auth;
use crate::db::Db;
use crate::http::{error_response, json_body, list_reply, no_content, page, path_id, reply};
use crate::products;
use crate::products::STOCK_MAX;
use crate::products::store::{Adjusted, Replaced};
use crate::products::{Product, ProductInput};

fn missing(id: i64) -> ApiError {
    ApiError::not_found(format!("no product with id {id}"))
}

/// `POST /api/products` → 201 with the product.
pub async fn create(db: &Db, request: Request) -> Response<Body> {
    let written = async {
        auth::require_admin(&request)?;
        let input = ProductInput::from_json(&json_body(&request)?)?;
        Ok(db
            .run("insert_product", async |c| {
                products::store::insert(c, &input).await
            })
            .await?)
    };
    tagged(StatusCode::CREATED, written.await)
}

/// The product with its `ETag`, or the error.
fn tagged(status: StatusCode, outcome: Result<Product, ApiError>) -> Response<Body> {
    let etag = outcome.as_ref().ok().map(Product::etag);
    let mut response = reply(status, outcome);
    if let Some(value) = etag.and_then(|etag| etag.parse().ok()) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

/// The versions an `If-Match` header names: `None` without the header or with `*` (any version
/// of an existing product); strong tags only, as RFC 9110 requires for `If-Match` (a weak or
/// malformed tag matches nothing).
fn if_match(request: &Request) -> Option<Vec<i64>> {
    let header = request.headers().get(header::IF_MATCH)?;
    let text = header.to_str().unwrap_or_default().trim();
    if text == "*" {
        return None;
    }
    Some(
        text.split(',')
            .filter_map(|tag| {
                tag.trim()
                    .strip_prefix('"')?
                    .strip_suffix('"')?
                    .parse()
                    .ok()
            })
            .collect(),
    )
}

/// `GET /api/products` → 200 with every product, or one keyset page with `?limit=&after=`. A full
/// page carries a `Link: <...>; rel="next"` header.
pub async fn list(db: &Db, request: Request) -> Response<Body> {
    let listed = async {
        let page = page(&request)?;
        let products = db
            .run("list_products", async |c| {
                products::store::list(c, page).await
            })
            .await?;
        Ok((page, products))
    };
    list_reply(&request, listed.await, |p: &Product| p.id)
}

/// `GET /api/products/{id}` → 200 with the product, 404 when there is none.
pub async fn get(db: &Db, request: Request) -> Response<Body> {
    let id = match path_id(&request, "id", "product") {
        Ok(id) => id,
        Err(err) => return error_response(&err),
    };
    tagged(StatusCode::OK, find(db, id).await)
}

async fn find(db: &Db, id: i64) -> Result<Product, ApiError> {
    db.run("get_product", async |c| products::store::get(c, id).await)
        .await?
        .ok_or_else(|| missing(id))
}

/// `PUT /api/products/{id}` replaces name, description, price and stock → 200 with the product.
/// With `If-Match: "<ETag>"` only if the product is still that version, 412 otherwise: a restock
/// computed from an old read must not erase the sales made since. Without it, as the original
/// clients send it, the last write wins.
pub async fn update(db: &Db, request: Request) -> Response<Body> {
    let written = async {
        auth::require_admin(&request)?;
        let id = path_id(&request, "id", "product")?;
        let input = ProductInput::from_json(&json_body(&request)?)?;
        let versions = if_match(&request);
        let replaced = db
            .run("update_product", async |c| {
                products::store::replace(c, id, &input, versions.as_deref()).await
            })
            .await?;
        match replaced {
            Replaced::Done(product) => Ok(product),
            Replaced::NotFound => Err(missing(id)),
            Replaced::Stale => Err(ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "precondition_failed",
                "the product changed since it was read (If-Match); read it again and retry",
            )),
        }
    };
    tagged(StatusCode::OK, written.await)
}

/// `POST /api/products/{id}/stock` with `{"delta": n}` adds `n` to the stock (a negative `n` takes
/// away) → 200 with the product. A restock or a count correction without reading first, so it
/// can never erase a concurrent sale; 409 `insufficient_stock` below zero, 422 past the largest
/// stock a write may set.
pub async fn adjust_stock(db: &Db, request: Request) -> Response<Body> {
    let written = async {
        auth::require_admin(&request)?;
        let id = path_id(&request, "id", "product")?;
        let body = json_body(&request)?;
        let delta = body.required_integer("delta", -STOCK_MAX..=STOCK_MAX)?;
        if delta == 0 {
            return Err(ApiError::validation("delta", "delta must not be 0"));
        }
        let adjusted = db
            .run("adjust_stock", async |c| {
                products::store::adjust_stock(c, id, delta).await
            })
            .await?;
        match adjusted {
            Adjusted::Done(product) => Ok(product),
            Adjusted::NotFound => Err(missing(id)),
            Adjusted::Insufficient { available } => Err(ApiError::conflict(
                "insufficient_stock",
                format!(
                    "product {id} has {available} in stock; cannot take {}",
                    -delta
                ),
            )
            .with_field("delta")
            .with_details(serde_json::json!({
                "product_id": id, "requested": -delta, "available": available
            }))),
            Adjusted::TooMuch { available } => Err(ApiError::validation(
                "delta",
                format!("stock would exceed {STOCK_MAX} (it is {available})"),
            )),
        }
    };
    tagged(StatusCode::OK, written.await)
}

/// `DELETE /api/products/{id}` → 204, 404 when there is none.
pub async fn delete(db: &Db, request: Request) -> Response<Body> {
    let written = async {
        auth::require_admin(&request)?;
        let id = path_id(&request, "id", "product")?;
        let deleted = db
            .run("delete_product", async |c| {
                products::store::delete(c, id).await
            })
            .await?;
        if deleted { Ok(()) } else { Err(missing(id)) }
    };
    match written.await {
        Ok(()) => no_content(),
        Err(err) => error_response(&err),
    }
}
