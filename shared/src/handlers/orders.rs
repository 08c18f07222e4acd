//! Orders: `/api/orders`, `/api/orders/bulk`, `/api/orders/{id}`, `/api/orders/{id}/cancel`,
//! `/api/orders/user/{user_id}`.

use lambda_http::http::{StatusCode, header};
use lambda_http::{Body, Request, RequestExt, Response};

use crate::ApiError;
use crate::auth::{self, Caller};
use crate::db::Db;
use crate::http::request_body::JsonObject;
use crate::http::{error_response, json_body, list_reply, page, path_id, reply};
use crate::orders;
use crate::orders::saga::OrderContext;
use crate::orders::{Order, OrderRequest};

/// Response header telling a client its keyed request was answered from the first attempt.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// `POST /api/orders` → 201 with the order.
pub async fn create(ctx: &OrderContext, request: Request) -> Response<Body> {
    place(ctx, &request, OrderRequest::single).await
}

/// `POST /api/orders/bulk` → 201 with one order per item, all or nothing.
pub async fn bulk(ctx: &OrderContext, request: Request) -> Response<Body> {
    place(ctx, &request, OrderRequest::bulk).await
}

async fn place(
    ctx: &OrderContext,
    request: &Request,
    parse: fn(&JsonObject) -> Result<OrderRequest, ApiError>,
) -> Response<Body> {
    let read = || {
        let caller = auth::caller(request)?;
        let key = idempotency_key(request)?;
        let body = json_body(request)?;
        let mut order = parse(&body)?;
        let named = body.has("user_id").then_some(order.user_id);
        if let Some(user_id) = caller.orderer(named)? {
            order.user_id = user_id;
        }
        Ok::<_, ApiError>((key, order))
    };
    let (key, order) = match read() {
        Ok(read) => read,
        Err(err) => return error_response(&err),
    };
    let placed = orders::saga::place(ctx, &order, key.as_deref()).await;
    let mut response = Response::builder()
        .status(placed.status)
        .header(header::CONTENT_TYPE, "application/json");
    if placed.replayed {
        response = response.header(REPLAYED_HEADER, "true");
    }
    response
        .body(Body::Text(placed.body))
        .expect("valid status and headers")
}

fn idempotency_key(request: &Request) -> Result<Option<String>, ApiError> {
    let Some(value) = request.headers().get("idempotency-key") else {
        return Ok(None);
    };
    let key = value.to_str().unwrap_or_default();
    orders::saga::validate_key(key)?;
    Ok(Some(key.to_owned()))
}

/// `GET /api/orders` → every order, newest first, or one keyset page (with authentication, a
/// user's own orders only). Reads need only `order_db`.
pub async fn list(orders: &Db, request: Request) -> Response<Body> {
    let owner = auth::caller(&request).and_then(Caller::order_owner);
    list_orders(orders, &request, owner).await
}

/// `GET /api/orders/user/{user_id}` → that user's orders, newest first (with authentication,
/// only the caller's own, unless an administrator asks).
pub async fn list_by_user(orders: &Db, request: Request) -> Response<Body> {
    let user = || {
        let owner = auth::caller(&request)?.order_owner()?;
        let params = request.path_parameters();
        let raw = params.first("user_id").unwrap_or_default();
        let user_id = raw
            .parse::<i64>()
            .ok()
            .filter(|id| *id >= 0)
            .ok_or_else(|| ApiError::not_found(format!("no user with id '{raw}'")))?;
        match owner {
            Some(own) if own != user_id => {
                Err(auth::forbidden("you may only list your own orders"))
            }
            _ => Ok(Some(user_id)),
        }
    };
    list_orders(orders, &request, user()).await
}

async fn list_orders(
    db: &Db,
    request: &Request,
    user_id: Result<Option<i64>, ApiError>,
) -> Response<Body> {
    let listed = async {
        let user_id = user_id?;
        let page = page(request)?;
        let orders = db
            .run("list_orders", async |c| {
                orders::store::list(c, page, user_id).await
            })
            .await?;
        Ok((page, orders))
    };
    list_reply(request, listed.await, |o: &Order| o.id)
}

/// `GET /api/orders/{id}` → the order, 404 when there is none (or, with authentication, when it
/// is another user's: its existence is not theirs to learn).
pub async fn get(orders: &Db, request: Request) -> Response<Body> {
    let found = async {
        let owner = auth::caller(&request)?.order_owner()?;
        let id = path_id(&request, "id", "order")?;
        find(orders, id, owner).await
    };
    reply(StatusCode::OK, found.await)
}

async fn find(db: &Db, id: i64, owner: Option<i64>) -> Result<Order, ApiError> {
    db.run("get_order", async |c| orders::store::get(c, id).await)
        .await?
        .filter(|order| owner.is_none_or(|own| order.user_id == own))
        .ok_or_else(|| ApiError::not_found(format!("no order with id {id}")))
}

/// `POST /api/orders/{id}/cancel` → 200 with the cancelled order; 409 unless it was confirmed.
/// With authentication, only the caller's own order (another user's is 404), unless an
/// administrator cancels it.
pub async fn cancel(ctx: &OrderContext, request: Request) -> Response<Body> {
    let cancelled = async {
        let owner = auth::caller(&request)?.order_owner()?;
        let id = path_id(&request, "id", "order")?;
        orders::saga::cancel(ctx, id, owner).await
    };
    reply(StatusCode::OK, cancelled.await)
}
