//! Orders: `/api/orders`, `/api/orders/bulk`, `/api/orders/{id}`, `/api/orders/{id}/cancel`,
//! `/api/orders/user/{user_id}`.

use lambda_http::http::{StatusCode, header};
use lambda_http::{Body, Request, RequestExt, Response};

use crate::ApiError;
use crate::db::Db;
use crate::http::{HandlerResult, error_response, json_body, list_reply, page, path_id, reply};
use crate::order::{Order, OrderRequest};
use crate::order_saga::{self, OrderContext};
use crate::order_store;
use crate::request_body::JsonObject;

/// Response header telling a client its keyed request was answered from the first attempt.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// `POST /api/orders` → 201 with the order.
pub async fn create(dbs: &OrderContext, request: Request) -> HandlerResult {
    place(dbs, &request, OrderRequest::single).await
}

/// `POST /api/orders/bulk` → 201 with one order per item, all or nothing.
pub async fn bulk(dbs: &OrderContext, request: Request) -> HandlerResult {
    place(dbs, &request, OrderRequest::bulk).await
}

async fn place(
    dbs: &OrderContext,
    request: &Request,
    parse: fn(&JsonObject) -> Result<OrderRequest, ApiError>,
) -> HandlerResult {
    let key = match idempotency_key(request) {
        Ok(key) => key,
        Err(err) => return Ok(error_response(&err)),
    };
    let order = match json_body(request).and_then(|body| parse(&body)) {
        Ok(order) => order,
        Err(err) => return Ok(error_response(&err)),
    };
    let placed = order_saga::place(dbs, &order, key.as_deref()).await;
    let mut response = Response::builder()
        .status(placed.status)
        .header(header::CONTENT_TYPE, "application/json");
    if placed.replayed {
        response = response.header(REPLAYED_HEADER, "true");
    }
    Ok(response
        .body(Body::Text(placed.body))
        .expect("valid status and headers"))
}

fn idempotency_key(request: &Request) -> Result<Option<String>, ApiError> {
    let Some(value) = request.headers().get("idempotency-key") else {
        return Ok(None);
    };
    let key = value.to_str().unwrap_or_default();
    order_saga::validate_key(key)?;
    Ok(Some(key.to_owned()))
}

/// `GET /api/orders` → every order, newest first, or one keyset page. Reads need only `order_db`.
pub async fn list(orders: &Db, request: Request) -> HandlerResult {
    list_orders(orders, &request, None).await
}

/// `GET /api/orders/user/{user_id}` → that user's orders, newest first.
pub async fn list_by_user(orders: &Db, request: Request) -> HandlerResult {
    let params = request.path_parameters();
    let raw = params.first("user_id").unwrap_or_default();
    match raw.parse::<i64>().ok().filter(|id| *id >= 0) {
        Some(user_id) => list_orders(orders, &request, Some(user_id)).await,
        None => Ok(error_response(&ApiError::not_found(format!(
            "no user with id '{raw}'"
        )))),
    }
}

async fn list_orders(db: &Db, request: &Request, user_id: Option<i64>) -> HandlerResult {
    let listed = async {
        let page = page(request)?;
        let orders = db
            .run("list_orders", async |c| {
                order_store::list(c, page, user_id).await
            })
            .await?;
        Ok((page, orders))
    };
    list_reply(request, listed.await, |o: &Order| o.id)
}

/// `GET /api/orders/{id}` → the order, 404 when there is none.
pub async fn get(orders: &Db, request: Request) -> HandlerResult {
    let id = match path_id(&request, "id", "order") {
        Ok(id) => id,
        Err(err) => return Ok(error_response(&err)),
    };
    reply(StatusCode::OK, find(orders, id).await)
}

async fn find(db: &Db, id: i64) -> Result<Order, ApiError> {
    db.run("get_order", async |c| order_store::get(c, id).await)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no order with id {id}")))
}

/// `POST /api/orders/{id}/cancel` → 200 with the cancelled order; 409 unless it was confirmed.
pub async fn cancel(dbs: &OrderContext, request: Request) -> HandlerResult {
    let id = match path_id(&request, "id", "order") {
        Ok(id) => id,
        Err(err) => return Ok(error_response(&err)),
    };
    reply(StatusCode::OK, order_saga::cancel(dbs, id).await)
}
