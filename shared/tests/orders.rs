//! The order functions' handlers, called with real HTTP API events against the real order_db and
//! inventory_db (the latter through the restricted stockroom_orders role).

use lambda_http::http::StatusCode;
use serde_json::{Value, json};
use stockroom::db::{INVENTORY_DATABASE_URL, ORDER_DATABASE_URL};
use stockroom::handlers::orders;
use stockroom::orders::saga::OrderContext;
use stockroom_test_support::handler::{
    Answer, Event, admin_query, answer, order_dbs, product_with_stock, stock_of, unique,
};

async fn post(ctx: &OrderContext, path: &str, body: &str, key: Option<&str>) -> Answer {
    let route = if path.ends_with("/bulk") {
        "/api/orders/bulk"
    } else {
        "/api/orders"
    };
    let mut event = Event::new("POST", route, path).json_body(body);
    if let Some(key) = key {
        event = event.header("idempotency-key", key);
    }
    let response = if path.ends_with("/bulk") {
        orders::bulk(ctx, event.request()).await
    } else {
        orders::create(ctx, event.request()).await
    };
    answer(response)
}

async fn order(ctx: &OrderContext, product_id: i64, quantity: i64, user_id: i64) -> Answer {
    post(
        ctx,
        "/api/orders",
        &format!(r#"{{"product_id":{product_id},"quantity":{quantity},"user_id":{user_id}}}"#),
        None,
    )
    .await
}

async fn get(ctx: &OrderContext, id: i64) -> Answer {
    let event = Event::new("GET", "/api/orders/{id}", &format!("/api/orders/{id}"))
        .path_param("id", &id.to_string());
    answer(orders::get(&ctx.orders, event.request()).await)
}

async fn cancel(ctx: &OrderContext, id: i64) -> Answer {
    let event = Event::new(
        "POST",
        "/api/orders/{id}/cancel",
        &format!("/api/orders/{id}/cancel"),
    )
    .path_param("id", &id.to_string());
    answer(orders::cancel(ctx, event.request()).await)
}

async fn by_user(ctx: &OrderContext, user_id: i64, query: &[(&str, &str)]) -> Answer {
    let event = Event::new(
        "GET",
        "/api/orders/user/{user_id}",
        &format!("/api/orders/user/{user_id}"),
    )
    .path_param("user_id", &user_id.to_string())
    .query(query);
    answer(orders::list_by_user(&ctx.orders, event.request()).await)
}

/// A user id no other test uses, so per-user lists show only this test's orders.
fn fresh_user() -> i64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    (nanos % 1_000_000_000_000) as i64 + i64::from(rand_u16()) * 1_000_000_000_000
}

fn rand_u16() -> u16 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::Instant::now()) as u16
}

fn ids(answer: &Answer) -> Vec<i64> {
    answer
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn an_order_reserves_stock_and_prices_exactly() {
    let ctx = order_dbs().await;
    let product = product_with_stock("999.99", 50).await;
    let user = fresh_user();
    let a = order(&ctx, product, 5, user).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert!(
        a.text
            .contains(r#""unit_price":999.99,"total_price":4999.95,"#),
        "{}",
        a.text
    );
    let o = a.json();
    assert_eq!(o["product_id"], product);
    assert_eq!(o["quantity"], 5);
    assert_eq!(o["user_id"], user);
    assert_eq!(o["status"], "confirmed");
    assert!(o["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(stock_of(product).await, 45);
    let id = o["id"].as_i64().unwrap();
    assert_eq!(get(&ctx, id).await.json(), o);
    let second = order(&ctx, product, 1, user).await.json();
    let mine = by_user(&ctx, user, &[]).await;
    assert_eq!(
        ids(&mine),
        [second["id"].as_i64().unwrap(), id],
        "newest first"
    );
}

#[tokio::test]
async fn user_id_defaults_to_zero() {
    let ctx = order_dbs().await;
    let product = product_with_stock("1.00", 5).await;
    let a = post(
        &ctx,
        "/api/orders",
        &format!(r#"{{"product_id":{product},"quantity":1}}"#),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert_eq!(a.json()["user_id"], 0);
}

#[tokio::test]
async fn bad_quantities_are_422_and_reserve_nothing() {
    let ctx = order_dbs().await;
    let product = product_with_stock("2.00", 10).await;
    let user = fresh_user();
    for quantity in ["0", "-3", "1.5", "99999999999", "\"2\""] {
        let a = post(
            &ctx,
            "/api/orders",
            &format!(r#"{{"product_id":{product},"quantity":{quantity},"user_id":{user}}}"#),
            None,
        )
        .await;
        assert_eq!(
            a.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{quantity}: {}",
            a.text
        );
        assert_eq!(
            a.error(),
            ("validation_failed".into(), Some("quantity".into()))
        );
    }
    let a = post(
        &ctx,
        "/api/orders",
        &format!(r#"{{"quantity":1,"user_id":{user}}}"#),
        None,
    )
    .await;
    assert_eq!(a.error().1.as_deref(), Some("product_id"));
    let a = post(&ctx, "/api/orders", "{\"product_id\":", None).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(stock_of(product).await, 10);
    assert!(ids(&by_user(&ctx, user, &[]).await).is_empty());
}

#[tokio::test]
async fn unknown_products_are_404_and_leave_no_order() {
    let ctx = order_dbs().await;
    let user = fresh_user();
    let a = order(&ctx, 999_999_999_999, 1, user).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.text);
    assert_eq!(a.error(), ("not_found".into(), Some("product_id".into())));
    assert!(ids(&by_user(&ctx, user, &[]).await).is_empty());
}

#[tokio::test]
async fn not_enough_stock_is_409_with_the_quantity_available() {
    let ctx = order_dbs().await;
    let product = product_with_stock("3.00", 4).await;
    let user = fresh_user();
    let a = order(&ctx, product, 5, user).await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.text);
    assert_eq!(a.error().0, "insufficient_stock");
    assert_eq!(
        a.json()["error"]["details"],
        json!({"product_id": product, "requested": 5, "available": 4})
    );
    assert_eq!(stock_of(product).await, 4);
    assert!(ids(&by_user(&ctx, user, &[]).await).is_empty());
}

#[tokio::test]
async fn bulk_places_one_order_per_item() {
    let ctx = order_dbs().await;
    let a = product_with_stock("10.00", 10).await;
    let b = product_with_stock("0.10", 10).await;
    let user = fresh_user();
    let body = format!(
        r#"{{"user_id":{user},"items":[{{"product_id":{a},"quantity":2}},{{"product_id":{b},"quantity":3}},{{"product_id":{a},"quantity":1}}]}}"#
    );
    let r = post(&ctx, "/api/orders/bulk", &body, None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let placed = r.json();
    let placed = placed.as_array().unwrap();
    assert_eq!(placed.len(), 3);
    let summary: Vec<(i64, i64, &str)> = placed
        .iter()
        .map(|o| {
            (
                o["product_id"].as_i64().unwrap(),
                o["quantity"].as_i64().unwrap(),
                o["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (a, 2, "confirmed"),
            (b, 3, "confirmed"),
            (a, 1, "confirmed")
        ]
    );
    assert!(r.text.contains(r#""total_price":0.30,"#), "{}", r.text);
    assert_eq!((stock_of(a).await, stock_of(b).await), (7, 7));
}

#[tokio::test]
async fn bulk_is_all_or_nothing_and_names_the_item() {
    let ctx = order_dbs().await;
    let a = product_with_stock("1.00", 10).await;
    let b = product_with_stock("1.00", 5).await;
    let user = fresh_user();
    // The same product twice counts together: 3 + 3 > 5.
    let body = format!(
        r#"{{"user_id":{user},"items":[{{"product_id":{a},"quantity":4}},{{"product_id":{b},"quantity":3}},{{"product_id":{b},"quantity":3}}]}}"#
    );
    let r = post(&ctx, "/api/orders/bulk", &body, None).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert_eq!(
        r.error(),
        ("insufficient_stock".into(), Some("items[1]".into()))
    );
    assert_eq!(
        r.json()["error"]["details"],
        json!({"product_id": b, "requested": 6, "available": 5})
    );
    assert_eq!(
        (stock_of(a).await, stock_of(b).await),
        (10, 5),
        "nothing reserved"
    );
    assert!(ids(&by_user(&ctx, user, &[]).await).is_empty());

    let body = format!(
        r#"{{"user_id":{user},"items":[{{"product_id":{a},"quantity":1}},{{"product_id":999999999999,"quantity":1}}]}}"#
    );
    let r = post(&ctx, "/api/orders/bulk", &body, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    assert_eq!(r.error().1.as_deref(), Some("items[1]"));
    assert_eq!(stock_of(a).await, 10);

    for body in [
        r#"{"items":[]}"#.to_owned(),
        format!(
            r#"{{"items":[{}]}}"#,
            vec![format!(r#"{{"product_id":{a},"quantity":1}}"#); 101].join(",")
        ),
    ] {
        let r = post(&ctx, "/api/orders/bulk", &body, None).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.error().1.as_deref(), Some("items"));
    }
    assert_eq!(stock_of(a).await, 10);
}

#[tokio::test]
async fn cancel_returns_the_stock_once() {
    let ctx = order_dbs().await;
    let product = product_with_stock("5.00", 10).await;
    let placed = order(&ctx, product, 4, fresh_user()).await.json();
    let id = placed["id"].as_i64().unwrap();
    assert_eq!(stock_of(product).await, 6);
    let a = cancel(&ctx, id).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.json()["status"], "cancelled");
    assert_eq!(stock_of(product).await, 10);
    let again = cancel(&ctx, id).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.error().0, "order_not_confirmed");
    assert_eq!(again.json()["error"]["details"]["status"], "cancelled");
    assert_eq!(stock_of(product).await, 10, "not returned twice");
    assert_eq!(get(&ctx, id).await.json()["status"], "cancelled");
    assert_eq!(
        cancel(&ctx, 999_999_999_999).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn cancelling_one_order_of_a_bulk_returns_only_its_stock() {
    let ctx = order_dbs().await;
    let a = product_with_stock("1.00", 10).await;
    let body = format!(
        r#"{{"items":[{{"product_id":{a},"quantity":2}},{{"product_id":{a},"quantity":3}}]}}"#
    );
    let placed = post(&ctx, "/api/orders/bulk", &body, None).await.json();
    assert_eq!(stock_of(a).await, 5);
    let second = placed[1]["id"].as_i64().unwrap();
    assert_eq!(cancel(&ctx, second).await.status, StatusCode::OK);
    assert_eq!(stock_of(a).await, 8);
    assert_eq!(
        get(&ctx, placed[0]["id"].as_i64().unwrap()).await.json()["status"],
        "confirmed"
    );
}

#[tokio::test]
async fn orders_list_newest_first_with_keyset_pages() {
    let ctx = order_dbs().await;
    let product = product_with_stock("1.00", 100).await;
    let user = fresh_user();
    let mut placed = Vec::new();
    for _ in 0..5 {
        placed.push(
            order(&ctx, product, 1, user).await.json()["id"]
                .as_i64()
                .unwrap(),
        );
    }
    placed.reverse();
    assert_eq!(ids(&by_user(&ctx, user, &[]).await), placed);
    let first = by_user(&ctx, user, &[("limit", "2")]).await;
    assert_eq!(ids(&first), placed[..2]);
    let link = first.headers["link"].to_str().unwrap().to_owned();
    assert_eq!(
        link,
        format!(
            "</api/orders/user/{user}?limit=2&after={}>; rel=\"next\"",
            placed[1]
        )
    );
    let next = by_user(
        &ctx,
        user,
        &[("limit", "2"), ("after", &placed[1].to_string())],
    )
    .await;
    assert_eq!(ids(&next), placed[2..4]);
    let all = answer(
        orders::list(
            &ctx.orders,
            Event::new("GET", "/api/orders", "/api/orders")
                .query(&[("limit", "1000")])
                .request(),
        )
        .await,
    );
    let all = ids(&all);
    assert!(all.windows(2).all(|w| w[0] > w[1]), "newest first");
    assert_eq!(
        by_user(&ctx, user, &[("limit", "0")]).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
}

#[tokio::test]
async fn an_idempotent_retry_returns_the_original_orders_and_reserves_nothing_more() {
    let ctx = order_dbs().await;
    let product = product_with_stock("2.50", 10).await;
    let key = unique("key");
    let body = format!(r#"{{"product_id":{product},"quantity":3}}"#);
    let first = post(&ctx, "/api/orders", &body, Some(&key)).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    assert!(first.headers.get("idempotent-replayed").is_none());
    // Same request, formatted differently.
    let retry = post(
        &ctx,
        "/api/orders",
        &format!(r#"{{ "quantity": 3, "product_id": {product} }}"#),
        Some(&key),
    )
    .await;
    assert_eq!(retry.status, StatusCode::CREATED);
    assert_eq!(retry.headers["idempotent-replayed"], "true");
    assert_eq!(retry.json(), first.json());
    assert_eq!(stock_of(product).await, 7);

    let other = post(
        &ctx,
        "/api/orders",
        &format!(r#"{{"product_id":{product},"quantity":4}}"#),
        Some(&key),
    )
    .await;
    assert_eq!(
        other.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        other.text
    );
    assert_eq!(
        other.error(),
        (
            "idempotency_key_reused".into(),
            Some("Idempotency-Key".into())
        )
    );
    let bulk = post(
        &ctx,
        "/api/orders/bulk",
        &format!(r#"{{"items":[{{"product_id":{product},"quantity":3}}]}}"#),
        Some(&key),
    )
    .await;
    assert_eq!(
        bulk.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "same key on another endpoint"
    );
    assert_eq!(stock_of(product).await, 7);

    let refused = post(&ctx, "/api/orders", &body, Some(&"k".repeat(256))).await;
    assert_eq!(refused.error().1.as_deref(), Some("Idempotency-Key"));
}

#[tokio::test]
async fn a_failed_keyed_request_replays_its_failure() {
    let ctx = order_dbs().await;
    let product = product_with_stock("1.00", 1).await;
    let key = unique("key");
    let body = format!(r#"{{"product_id":{product},"quantity":2}}"#);
    let first = post(&ctx, "/api/orders", &body, Some(&key)).await;
    assert_eq!(first.status, StatusCode::CONFLICT);
    let retry = post(&ctx, "/api/orders", &body, Some(&key)).await;
    assert_eq!(retry.status, StatusCode::CONFLICT);
    assert_eq!(retry.json(), first.json());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn identical_keyed_requests_at_the_same_moment_give_one_order() {
    let product = product_with_stock("1.00", 100).await;
    let key = unique("key");
    let body = format!(
        r#"{{"items":[{{"product_id":{product},"quantity":2}},{{"product_id":{product},"quantity":1}}]}}"#
    );
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (key, body) = (key.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let ctx = order_dbs().await;
            post(&ctx, "/api/orders/bulk", &body, Some(&key)).await
        }));
    }
    let mut bodies = Vec::new();
    for task in tasks {
        let a = task.await.unwrap();
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        bodies.push(ids(&a));
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");
    assert_eq!(stock_of(product).await, 97, "reserved once");
    let rows = admin_query(
        ORDER_DATABASE_URL,
        &format!("SELECT count(*) FROM orders WHERE product_id = {product}"),
    )
    .await;
    assert_eq!(rows[0].get::<_, i64>(0), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forty_buyers_racing_for_ten_units_never_oversell() {
    let product = product_with_stock("19.99", 10).await;
    let mut buyers = Vec::new();
    for buyer in 0..40 {
        buyers.push(tokio::spawn(async move {
            // Each buyer is its own execution environment, with its own connections.
            let ctx = order_dbs().await;
            order(&ctx, product, 1, buyer).await
        }));
    }
    let (mut created, mut conflicts) = (0, 0);
    for buyer in buyers {
        let a = buyer.await.unwrap();
        match a.status {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT => {
                assert_eq!(a.error().0, "insufficient_stock");
                conflicts += 1;
            }
            other => panic!("unexpected {other}: {}", a.text),
        }
    }
    assert_eq!((created, conflicts), (10, 30));
    assert_eq!(stock_of(product).await, 0);
    let rows = admin_query(
        ORDER_DATABASE_URL,
        &format!("SELECT count(*), coalesce(sum(quantity), 0)::int FROM orders WHERE product_id = {product} AND status = 'confirmed'"),
    )
    .await;
    assert_eq!(
        (rows[0].get::<_, i64>(0), rows[0].get::<_, i32>(1)),
        (10, 10)
    );
}

/// Confirmed, uncancelled quantity per product according to order_db.
async fn confirmed_quantity(product: i64) -> i64 {
    admin_query(
        ORDER_DATABASE_URL,
        &format!("SELECT coalesce(sum(quantity), 0)::bigint FROM orders WHERE product_id = {product} AND status = 'confirmed'"),
    )
    .await[0]
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn random_concurrent_orders_bulks_and_cancels_keep_stock_consistent() {
    const INITIAL: i32 = 60;
    let products = [
        product_with_stock("1.00", INITIAL).await,
        product_with_stock("2.00", INITIAL).await,
        product_with_stock("3.00", INITIAL).await,
    ];
    let confirmed: std::sync::Arc<tokio::sync::Mutex<Vec<i64>>> = Default::default();
    let mut workers = Vec::new();
    for worker in 0..12u64 {
        let confirmed = confirmed.clone();
        workers.push(tokio::spawn(async move {
            let ctx = order_dbs().await;
            // A small deterministic generator per worker: reproducible, no extra dependency.
            let mut seed = 0x9e37_79b9_7f4a_7c15_u64 ^ (worker + 1);
            let mut next = move |n: u64| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed % n
            };
            for _ in 0..30 {
                let answer = match next(3) {
                    0 => order(&ctx, products[next(3) as usize], next(6) as i64 + 1, 7).await,
                    1 => {
                        let items: Vec<Value> = (0..=next(3))
                            .map(|_| json!({"product_id": products[next(3) as usize], "quantity": next(5) + 1}))
                            .collect();
                        post(&ctx, "/api/orders/bulk", &json!({"items": items}).to_string(), None).await
                    }
                    _ => {
                        let victim = {
                            let mut ids = confirmed.lock().await;
                            if ids.is_empty() {
                                continue;
                            }
                            let pick = next(ids.len() as u64) as usize;
                            ids.swap_remove(pick)
                        };
                        let a = cancel(&ctx, victim).await;
                        assert!(a.status == StatusCode::OK || a.status == StatusCode::CONFLICT, "{}", a.text);
                        continue;
                    }
                };
                match answer.status {
                    StatusCode::CREATED => {
                        let body = answer.json();
                        let placed = body.as_array().cloned().unwrap_or_else(|| vec![body.clone()]);
                        confirmed.lock().await.extend(placed.iter().map(|o| o["id"].as_i64().unwrap()));
                    }
                    StatusCode::CONFLICT => assert_eq!(answer.error().0, "insufficient_stock"),
                    other => panic!("unexpected {other}: {}", answer.text),
                }
            }
        }));
    }
    for worker in workers {
        worker.await.unwrap();
    }
    for product in products {
        let stock = stock_of(product).await;
        assert!(stock >= 0);
        assert_eq!(
            i64::from(INITIAL),
            stock + confirmed_quantity(product).await,
            "product {product}: initial = current + confirmed and not cancelled"
        );
        let held: i64 = admin_query(
            INVENTORY_DATABASE_URL,
            &format!("SELECT coalesce(sum(quantity), 0)::bigint FROM stock_reservation_lines WHERE product_id = {product} AND released_at IS NULL"),
        )
        .await[0]
            .get(0);
        assert_eq!(
            held,
            confirmed_quantity(product).await,
            "reservations agree with orders"
        );
    }
}

/// A restock to the largest stock a write accepts, then a cancel: the returned stock goes past
/// 2147483647. With an INTEGER column the release failed (500), the order stayed `cancelling` and
/// every reconciler run failed on it; now the cancel succeeds and the stock is exact.
#[tokio::test]
async fn a_cancel_can_return_stock_past_the_largest_writable_stock() {
    let ctx = order_dbs().await;
    let product = product_with_stock("5.00", 10).await;
    let placed = order(&ctx, product, 3, fresh_user()).await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.text);
    let id = placed.json()["id"].as_i64().unwrap();
    let max = stockroom::products::STOCK_MAX;
    admin_query(
        INVENTORY_DATABASE_URL,
        &format!("UPDATE products SET stock = {max} WHERE id = {product}"),
    )
    .await;
    let cancelled = cancel(&ctx, id).await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.text);
    assert_eq!(cancelled.json()["status"], "cancelled");
    assert_eq!(stock_of(product).await, max + 3);
}

/// The attack report saw a Latin-1 `Idempotency-Key` answered with 500 while the order was placed
/// anyway; that 500 was the local emulator's. As API Gateway delivers such a header (a string that
/// is not visible ASCII), the function refuses the key with 422 before it writes anything.
#[tokio::test]
async fn a_key_that_is_not_visible_ascii_is_422_and_places_nothing() {
    let ctx = order_dbs().await;
    let product = product_with_stock("1.00", 10).await;
    let body = format!(r#"{{"product_id":{product},"quantity":1}}"#);
    for key in ["café-1", "tab\tkey", "ключ"] {
        let a = post(&ctx, "/api/orders", &body, Some(key)).await;
        assert_eq!(
            a.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{key:?}: {}",
            a.text
        );
        assert_eq!(a.error().1.as_deref(), Some("Idempotency-Key"), "{key:?}");
    }
    assert_eq!(stock_of(product).await, 10, "nothing reserved");
    let rows = admin_query(
        ORDER_DATABASE_URL,
        &format!("SELECT count(*) FROM orders WHERE product_id = {product}"),
    )
    .await;
    assert_eq!(rows[0].get::<_, i64>(0), 0, "nothing written");
}
