//! Placing and cancelling orders across two databases without a distributed transaction.
//!
//! Orders live in `order_db`, stock in `inventory_db`; the order side never touches product rows.
//! Placing is a saga whose every step is idempotent by the request's order reference:
//!
//! 1. `order_db`: claim the `Idempotency-Key` (if any) and write the orders `pending`, in one
//!    transaction.
//! 2. `inventory_db`: `reserve_stock(order_ref, lines)` takes all the stock or none, in one
//!    statement and transaction (a conditional decrement, so it can never oversell).
//! 3. `order_db`: confirm the orders with the reserved prices (or mark them `failed` when the
//!    stock or the product was missing), and store the response for the key.
//!
//! Without a key that is three round trips and three commits, and nothing after the answer: the
//! events of steps 2 and 3 are in each database's outbox with their change, and the relay
//! (`events-relay`) publishes them.
//!
//! A crash or timeout between steps leaves `pending` orders; [`reconcile`] settles them later:
//! it voids the reference in inventory (from then on it can never reserve) and confirms the orders
//! if their stock was reserved after all, or fails them if not. `docs/architecture.md` walks
//! through every failure case.

use std::time::Duration;

use lambda_http::http::StatusCode;
use serde::Serialize;
use uuid::Uuid;

use crate::ApiError;
use crate::config::ConfigError;
use crate::db::{Db, DbError, ORDER_DATABASE_URL, STOCK_RESERVATION_DATABASE_URL};
use crate::orders;
use crate::orders::reservation::{ReservationState, ReserveError};
use crate::orders::store::{CancelStart, Claim};
use crate::orders::{Order, OrderKind, OrderLine, OrderRequest, OrderStatus};

/// How long an `Idempotency-Key` is remembered.
pub const IDEMPOTENCY_KEY_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// Longest accepted `Idempotency-Key`.
pub const IDEMPOTENCY_KEY_MAX_CHARS: usize = 255;

/// What the order functions hold: `order_db`, and inventory's reservation contract.
pub struct OrderContext {
    pub orders: Db,
    pub stock: Db,
}

impl OrderContext {
    /// Connects to both databases at once: a connection's set-up (TLS, authentication, a new
    /// backend) is most of a cold start's wait.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let (orders, stock) = futures_util::future::join(
            Db::from_env(ORDER_DATABASE_URL),
            Db::from_env(STOCK_RESERVATION_DATABASE_URL),
        )
        .await;
        Ok(Self {
            orders: orders?,
            stock: stock?,
        })
    }
}

/// The HTTP answer to an order request: fresh, or replayed for a repeated `Idempotency-Key`.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: String,
    pub replayed: bool,
}

impl Reply {
    fn error(err: &ApiError) -> Self {
        Self {
            status: err.status,
            body: err.body().to_string(),
            replayed: false,
        }
    }
}

/// Checks an `Idempotency-Key` header value: 1 to 255 visible ASCII characters.
pub fn validate_key(key: &str) -> Result<(), ApiError> {
    let fine = !key.is_empty()
        && key.len() <= IDEMPOTENCY_KEY_MAX_CHARS
        && key.bytes().all(|b| b.is_ascii_graphic());
    if fine {
        Ok(())
    } else {
        Err(ApiError::validation(
            "Idempotency-Key",
            format!(
                "Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX_CHARS} visible ASCII characters"
            ),
        ))
    }
}

/// Where step 1 left a request.
enum Begun {
    /// The orders are pending under this reference (new, or left by an earlier try with the key).
    Pending(Uuid, Vec<(i64, OrderLine)>),
    /// The key already has a settled response.
    Replay(u16, String),
}

/// Step 1: claim the key (if any) and write the pending orders, atomically.
async fn begin(
    ctx: &OrderContext,
    request: &OrderRequest,
    key: Option<&str>,
) -> Result<Begun, ApiError> {
    let order_ref = Uuid::new_v4();
    let Some(key) = key else {
        // Without a key, step 1 is one statement, so one round trip and its own transaction.
        let lines = ctx.orders.run("begin_order", async |c| {
            orders::store::insert_pending(c, order_ref, request).await
        });
        return Ok(Begun::Pending(order_ref, lines.await?));
    };
    let begun = ctx.orders.transaction("begin_order", async |tx| {
        match orders::store::claim_key(
            tx,
            key,
            &request.canonical(),
            order_ref,
            IDEMPOTENCY_KEY_TTL,
        )
        .await?
        {
            Claim::New => {}
            Claim::Used { request: used, .. } if used != request.canonical() => {
                return Ok(Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "idempotency_key_reused",
                    "this Idempotency-Key was used with a different request",
                )
                .with_field("Idempotency-Key")));
            }
            Claim::Used {
                response: Some((status, body)),
                ..
            } => return Ok(Ok(Begun::Replay(status, body))),
            Claim::Used { order_ref, .. } => {
                let lines = orders::store::lines_of(tx, order_ref).await?;
                return Ok(Ok(Begun::Pending(order_ref, lines)));
            }
        }
        let lines = orders::store::insert_pending(tx, order_ref, request).await?;
        Ok(Ok(Begun::Pending(order_ref, lines)))
    });
    // A refusal or a replay commits too: claim_key then changed nothing.
    begun.await?
}

/// The error for a reservation the inventory refused, naming the request item.
fn refusal(request: &OrderRequest, err: &ReserveError) -> Option<ApiError> {
    let field_of = |product_id: i64| {
        let index = request
            .lines
            .iter()
            .position(|l| l.product_id == product_id)
            .unwrap_or(0);
        request.line_field(index)
    };
    match *err {
        ReserveError::UnknownProduct { product_id } => Some(
            ApiError::not_found(format!("no product with id {product_id}"))
                .with_field(field_of(product_id))
                .with_details(serde_json::json!({ "product_id": product_id })),
        ),
        ReserveError::InsufficientStock {
            product_id,
            requested,
            available,
        } => Some(
            ApiError::conflict(
                "insufficient_stock",
                format!("product {product_id} has {available} in stock; {requested} requested"),
            )
            .with_field(field_of(product_id))
            .with_details(serde_json::json!({
                "product_id": product_id, "requested": requested, "available": available
            })),
        ),
        ReserveError::Voided => Some(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "order_abandoned",
            "the order took too long and was not placed; nothing was charged to stock",
        )),
        ReserveError::Db(_) => None,
    }
}

fn body_of(kind: OrderKind, orders: &[Order]) -> String {
    match kind {
        OrderKind::Single => serde_json::to_string(&orders[0]),
        OrderKind::Bulk => serde_json::to_string(orders),
    }
    .expect("orders serialise")
}

/// Places an order request (steps 1–3). Never oversells; on any failure nothing stays reserved,
/// or the reconciler will release it.
pub async fn place(ctx: &OrderContext, request: &OrderRequest, key: Option<&str>) -> Reply {
    let started = std::time::Instant::now();
    let reply = place_unmeasured(ctx, request, key).await;
    if !reply.replayed {
        // confirmed: orders placed; rejected: refused (unknown product, no stock, a reused key);
        // failed: the request could not finish (503), and a retry or the reconciler settles it.
        let (status, count) = match reply.status.as_u16() {
            201 => ("confirmed", request.lines.len()),
            500.. => ("failed", 1),
            _ => ("rejected", 1),
        };
        metrics::counter!("order_orders_total", "status" => status).increment(count as u64);
        metrics::histogram!("order_processing_duration_seconds")
            .record(started.elapsed().as_secs_f64());
    }
    reply
}

async fn place_unmeasured(ctx: &OrderContext, request: &OrderRequest, key: Option<&str>) -> Reply {
    let (order_ref, lines) = match begin(ctx, request, key).await {
        Ok(Begun::Pending(order_ref, lines)) => (order_ref, lines),
        Ok(Begun::Replay(status, body)) => {
            return Reply {
                status: StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
                body,
                replayed: true,
            };
        }
        Err(err) => return Reply::error(&err),
    };
    let settled = match orders::reservation::reserve(&ctx.stock, order_ref, &lines).await {
        Ok(reserved) => confirm(ctx, order_ref, &reserved)
            .await
            .and_then(placed)
            .map(|orders| Reply {
                status: StatusCode::CREATED,
                body: body_of(request.kind, &orders),
                replayed: false,
            }),
        Err(ReserveError::Db(err)) => Err(err.into()),
        Err(refused) => {
            let error = refusal(request, &refused).expect("not a database error");
            fail(ctx, order_ref).await.map(|()| Reply::error(&error))
        }
    };
    let reply = match settled {
        Ok(reply) => reply,
        // Unsettled: the orders stay pending; a retry with the key, or the reconciler, settles them.
        Err(err) => return Reply::error(&err),
    };
    if let Some(key) = key {
        let stored = ctx.orders.run("store_response", async |c| {
            orders::store::store_response(c, key, reply.status.as_u16(), &reply.body).await
        });
        if let Err(err) = stored.await {
            // The orders are settled; only the replay record is missing, and a retry rebuilds it.
            tracing::warn!(%err, "could not store the idempotent response");
        }
    }
    reply
}

/// Step 3: confirm with the reserved prices; the orders as they now are.
async fn confirm(
    ctx: &OrderContext,
    order_ref: Uuid,
    reserved: &[orders::reservation::ReservedLine],
) -> Result<Vec<Order>, ApiError> {
    let confirmed = ctx.orders.run("confirm_orders", async |c| {
        orders::store::confirm_returning(c, order_ref, reserved).await
    });
    Ok(confirmed.await?)
}

/// The confirmed orders, or an error if the reconciler settled them otherwise first.
fn placed(orders: Vec<Order>) -> Result<Vec<Order>, ApiError> {
    if orders.iter().all(|o| o.status == OrderStatus::Confirmed) {
        Ok(orders)
    } else {
        Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "order_abandoned",
            "the order took too long and was not placed; nothing was charged to stock",
        ))
    }
}

async fn fail(ctx: &OrderContext, order_ref: Uuid) -> Result<(), ApiError> {
    ctx.orders
        .run("fail_orders", async |c| {
            orders::store::fail(c, order_ref).await
        })
        .await?;
    Ok(())
}

/// Cancels a confirmed order and returns its stock: `cancelling` → release → `cancelled`. A
/// cancel interrupted after the first step is finished by a retry or by the reconciler. With an
/// `owner`, only that user's order (another's is not found).
pub async fn cancel(ctx: &OrderContext, id: i64, owner: Option<i64>) -> Result<Order, ApiError> {
    let start = ctx
        .orders
        .run("begin_cancel", async |c| {
            orders::store::begin_cancel(c, id, owner).await
        })
        .await?;
    let order_ref = match start {
        CancelStart::Started(order_ref) => order_ref,
        CancelStart::NotFound => return Err(ApiError::not_found(format!("no order with id {id}"))),
        CancelStart::NotConfirmed(status) => {
            return Err(ApiError::conflict(
                "order_not_confirmed",
                format!(
                    "order {id} is {}; only confirmed orders can be cancelled",
                    status.as_str()
                ),
            )
            .with_details(serde_json::json!({ "status": status })));
        }
    };
    orders::reservation::release(&ctx.stock, order_ref, Some(id)).await?;
    let order = ctx
        .orders
        .run("finish_cancel", async |c| {
            orders::store::finish_cancel_returning(c, id).await
        })
        .await?;
    metrics::counter!("order_orders_total", "status" => "cancelled").increment(1);
    order.ok_or_else(|| ApiError::not_found(format!("no order with id {id}")))
}

/// What one reconciler run did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Reconciled {
    /// Order references whose request died after reserving: now confirmed.
    pub confirmed: usize,
    /// Order references whose request died before reserving: now failed, never to reserve.
    pub failed: usize,
    /// Orders whose cancel was interrupted: stock returned, now cancelled.
    pub cancelled: usize,
    /// Reservations without a live order: stock returned.
    pub released: usize,
    /// Idempotency keys past their expiry, deleted.
    pub expired_keys: u64,
}

/// Settles everything left unsettled for longer than `after`: run on a schedule. It publishes
/// nothing itself, as no request does: what it settles is in the outboxes with its change, and
/// the relay sends it.
pub async fn reconcile(ctx: &OrderContext, after: Duration) -> Result<Reconciled, DbError> {
    let mut done = Reconciled::default();

    let orders = &ctx.orders;
    let pending = orders
        .run("stale_pending", async |c| {
            orders::store::stale_pending(c, after).await
        })
        .await?;
    for order_ref in pending {
        match orders::reservation::void(&ctx.stock, order_ref).await? {
            ReservationState::Reserved => {
                let held = orders::reservation::held_lines(&ctx.stock, order_ref).await?;
                orders
                    .run("confirm_orders", async |c| {
                        orders::store::confirm_returning(c, order_ref, &held).await
                    })
                    .await?;
                done.confirmed += 1;
            }
            ReservationState::Void => {
                orders
                    .run("fail_orders", async |c| {
                        orders::store::fail(c, order_ref).await
                    })
                    .await?;
                done.failed += 1;
            }
        }
    }

    let cancelling = orders
        .run("stale_cancelling", async |c| {
            orders::store::stale_cancelling(c, after).await
        })
        .await?;
    for (id, order_ref) in cancelling {
        orders::reservation::release(&ctx.stock, order_ref, Some(id)).await?;
        orders
            .run("finish_cancel", async |c| {
                orders::store::finish_cancel_returning(c, id).await
            })
            .await?;
        done.cancelled += 1;
    }

    for order_ref in orders::reservation::stale(&ctx.stock, after).await? {
        let holds = orders
            .run("holds_stock", async |c| {
                orders::store::holds_stock(c, order_ref).await
            })
            .await?;
        if !holds {
            let lines = orders::reservation::release(&ctx.stock, order_ref, None).await?;
            done.released += usize::from(lines > 0);
        }
        orders::reservation::mark_checked(&ctx.stock, order_ref).await?;
    }

    done.expired_keys = orders
        .run("expire_keys", async |c| orders::store::expire_keys(c).await)
        .await?;
    Ok(done)
}
