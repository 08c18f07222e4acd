//! Crashes between the saga's steps, and the scheduled reconciler (called with the EventBridge
//! event AWS delivers) settling what they left. Each "crash" runs the real steps a function runs,
//! then stops, as a process killed at that point would.

use stockroom_test_support::handler;

use std::time::Duration;

use stockroom::db::{INVENTORY_DATABASE_URL, ORDER_DATABASE_URL};
use stockroom::handlers::reconciler;
use stockroom::orders::OrderRequest;
use stockroom::orders::reservation::ReserveError;
use stockroom::orders::saga::OrderContext;
use stockroom::{orders, orders::saga::Reconciled};
use stockroom_test_support::handler::{
    admin_query, age, order_dbs, product_with_stock, scheduled_event, single_order, stock_of,
};

use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(60);

/// Step 1 of placing, then the process dies: pending orders, nothing reserved.
async fn crash_after_pending(
    ctx: &OrderContext,
    request: &OrderRequest,
) -> (Uuid, Vec<(i64, stockroom::orders::OrderLine)>) {
    let order_ref = Uuid::new_v4();
    let conn = ctx.orders.conn().await.unwrap();
    let lines = orders::store::insert_pending(&*conn, order_ref, request)
        .await
        .unwrap();
    (order_ref, lines)
}

async fn run_reconciler(ctx: &OrderContext) -> Reconciled {
    reconciler::run(ctx, TIMEOUT, scheduled_event())
        .await
        .expect("reconciler run")
}

async fn statuses(order_ref: Uuid) -> Vec<String> {
    admin_query(
        ORDER_DATABASE_URL,
        &format!("SELECT status FROM orders WHERE order_ref = '{order_ref}' ORDER BY id"),
    )
    .await
    .iter()
    .map(|row| row.get(0))
    .collect()
}

#[tokio::test]
async fn died_after_writing_pending_the_order_fails_and_stock_is_untouched() {
    let ctx = order_dbs().await;
    let product = product_with_stock("4.00", 10).await;
    let (order_ref, _) = crash_after_pending(&ctx, &single_order(product, 3)).await;
    age(order_ref).await;
    // Reconcilers of other tests may run at the same time and settle it first: that is safe
    // (every step is idempotent), so only the outcome is checked.
    run_reconciler(&ctx).await;
    assert_eq!(statuses(order_ref).await, ["failed"]);
    assert_eq!(stock_of(product).await, 10);
    // The reference is void: a request that wakes up now cannot reserve with it.
    let late = orders::reservation::reserve(&ctx.stock, order_ref, &[]).await;
    assert!(matches!(late, Err(ReserveError::Voided)), "{late:?}");
}

#[tokio::test]
async fn died_after_reserving_the_order_is_confirmed_with_its_price() {
    let ctx = order_dbs().await;
    let product = product_with_stock("4.25", 10).await;
    let (order_ref, lines) = crash_after_pending(&ctx, &single_order(product, 2)).await;
    orders::reservation::reserve(&ctx.stock, order_ref, &lines)
        .await
        .unwrap();
    assert_eq!(stock_of(product).await, 8);
    age(order_ref).await;
    // Reconcilers of other tests may run at the same time and settle it first: that is safe
    // (every step is idempotent), so only the outcome is checked.
    run_reconciler(&ctx).await;
    assert_eq!(statuses(order_ref).await, ["confirmed"]);
    let row = &admin_query(
        ORDER_DATABASE_URL,
        &format!(
            "SELECT unit_price::text, total_price::text FROM orders WHERE order_ref = '{order_ref}'"
        ),
    )
    .await[0];
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, String>(1)),
        ("4.25".into(), "8.50".into())
    );
    assert_eq!(stock_of(product).await, 8);
}

#[tokio::test]
async fn a_slow_request_overtaken_by_the_reconciler_reserves_nothing() {
    let ctx = order_dbs().await;
    let product = product_with_stock("1.00", 5).await;
    let (order_ref, lines) = crash_after_pending(&ctx, &single_order(product, 1)).await;
    age(order_ref).await;
    run_reconciler(&ctx).await;
    // The request was only slow: it now tries to reserve.
    let late = orders::reservation::reserve(&ctx.stock, order_ref, &lines).await;
    assert!(matches!(late, Err(ReserveError::Voided)), "{late:?}");
    assert_eq!(stock_of(product).await, 5);
    assert_eq!(statuses(order_ref).await, ["failed"]);
}

#[tokio::test]
async fn a_retry_with_the_key_finishes_what_a_crash_left() {
    let ctx = order_dbs().await;
    let product = product_with_stock("1.00", 5).await;
    let key = handler::unique("key");
    let req = single_order(product, 2);
    // Step 1 with the key, then reserve, then the process dies before confirming.
    let order_ref = Uuid::new_v4();
    let lines = {
        let mut conn = ctx.orders.conn().await.unwrap();
        let tx = conn.transaction().await.unwrap();
        orders::store::claim_key(
            &tx,
            &key,
            &req.canonical(),
            order_ref,
            orders::saga::IDEMPOTENCY_KEY_TTL,
        )
        .await
        .unwrap();
        let lines = orders::store::insert_pending(&tx, order_ref, &req)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        lines
    };
    orders::reservation::reserve(&ctx.stock, order_ref, &lines)
        .await
        .unwrap();
    let reply = orders::saga::place(&ctx, &req, Some(&key)).await;
    assert_eq!(reply.status.as_u16(), 201, "{}", reply.body);
    let order: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(order["id"], lines[0].0);
    assert_eq!(stock_of(product).await, 3, "reserved once");
}

/// An order of `quantity` placed, then the first step of its cancel (`cancelling`), as if the
/// process died there: its id and order reference.
async fn placed_then_cancel_begun(ctx: &OrderContext, product: i64, quantity: i32) -> (i64, Uuid) {
    let reply = orders::saga::place(ctx, &single_order(product, quantity), None).await;
    let id = serde_json::from_str::<serde_json::Value>(&reply.body).unwrap()["id"]
        .as_i64()
        .unwrap();
    let conn = ctx.orders.conn().await.unwrap();
    match orders::store::begin_cancel(&*conn, id, None).await.unwrap() {
        orders::store::CancelStart::Started(order_ref) => (id, order_ref),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_interrupted_cancel_is_finished_and_returns_the_stock_once() {
    let ctx = order_dbs().await;
    let product = product_with_stock("1.00", 5).await;
    let (_, order_ref) = placed_then_cancel_begun(&ctx, product, 3).await;
    assert_eq!(stock_of(product).await, 2);
    age(order_ref).await;
    // Reconcilers of other tests may run at the same time and settle it first: that is safe
    // (every step is idempotent), so only the outcome is checked.
    run_reconciler(&ctx).await;
    assert_eq!(statuses(order_ref).await, ["cancelled"]);
    assert_eq!(stock_of(product).await, 5);
    run_reconciler(&ctx).await;
    assert_eq!(stock_of(product).await, 5, "released once");
}

#[tokio::test]
async fn a_cancel_that_died_after_its_release_is_finished_without_a_second_release() {
    let ctx = order_dbs().await;
    let product = product_with_stock("1.00", 5).await;
    // The first two steps of the cancel, then the process dies.
    let (id, order_ref) = placed_then_cancel_begun(&ctx, product, 3).await;
    let released = orders::reservation::release(&ctx.stock, order_ref, Some(id))
        .await
        .unwrap();
    assert_eq!((released, stock_of(product).await), (1, 5));
    age(order_ref).await;
    run_reconciler(&ctx).await;
    assert_eq!(statuses(order_ref).await, ["cancelled"]);
    assert_eq!(stock_of(product).await, 5, "the stock came back once");
}

#[tokio::test]
async fn a_reservation_without_an_order_is_released() {
    let ctx = order_dbs().await;
    let product = product_with_stock("1.00", 5).await;
    let order_ref = Uuid::new_v4();
    let line = stockroom::orders::OrderLine {
        product_id: product,
        quantity: 4,
    };
    orders::reservation::reserve(&ctx.stock, order_ref, &[(i64::MAX, line)])
        .await
        .unwrap();
    assert_eq!(stock_of(product).await, 1);
    age(order_ref).await;
    // Reconcilers of other tests may run at the same time and settle it first: that is safe
    // (every step is idempotent), so only the outcome is checked.
    run_reconciler(&ctx).await;
    assert_eq!(stock_of(product).await, 5);
}

#[tokio::test]
async fn fresh_work_is_left_alone() {
    let ctx = order_dbs().await;
    let product = product_with_stock("1.00", 5).await;
    let (order_ref, _) = crash_after_pending(&ctx, &single_order(product, 1)).await;
    run_reconciler(&ctx).await;
    assert_eq!(
        statuses(order_ref).await,
        ["pending"],
        "younger than the timeout"
    );
}

#[tokio::test]
async fn the_order_role_can_only_call_the_reservation_contract() {
    let url = std::env::var(stockroom::db::STOCK_RESERVATION_DATABASE_URL).unwrap();
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    for sql in [
        "UPDATE products SET stock = 1000000",
        "SELECT * FROM products",
        "DELETE FROM stock_reservations",
        "SELECT * FROM stock_reservation_lines",
    ] {
        let err = client.simple_query(sql).await.unwrap_err();
        assert_eq!(
            err.code(),
            Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE),
            "{sql}"
        );
    }
}

#[tokio::test]
async fn the_reservation_of_a_live_order_is_checked_once_and_kept() {
    let ctx = order_dbs().await;
    let product = product_with_stock("1.00", 5).await;
    let reply = orders::saga::place(&ctx, &single_order(product, 2), None).await;
    assert_eq!(reply.status.as_u16(), 201, "{}", reply.body);
    let id = serde_json::from_str::<serde_json::Value>(&reply.body).unwrap()["id"]
        .as_i64()
        .unwrap();
    let order_ref: Uuid = admin_query(
        ORDER_DATABASE_URL,
        &format!("SELECT order_ref FROM orders WHERE id = {id}"),
    )
    .await[0]
        .get(0);
    age(order_ref).await;
    run_reconciler(&ctx).await;
    assert_eq!(statuses(order_ref).await, ["confirmed"]);
    assert_eq!(stock_of(product).await, 3, "still reserved");
    let checked: bool = admin_query(
        INVENTORY_DATABASE_URL,
        &format!(
            "SELECT checked_at IS NOT NULL FROM stock_reservations WHERE order_ref = '{order_ref}'"
        ),
    )
    .await[0]
        .get(0);
    assert!(checked, "not examined again by later runs");
}
