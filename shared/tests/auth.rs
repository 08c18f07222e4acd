//! Who may do what, through the handlers, with the claims API Gateway's JWT authorizer puts in a
//! real HTTP API event; and the local mode that verifies a development token into the same place.

use lambda_http::http::StatusCode;
use serde_json::Value;
use stockroom::auth::dev_token::Verifier;
use stockroom::auth::{Caller, Config, Mode};
use stockroom::db::{INVENTORY_DATABASE_URL, ORDER_DATABASE_URL};
use stockroom::handlers::{orders, products};
use stockroom::orders::saga::OrderContext;
use stockroom_test_support::handler::{
    Answer, Event, admin_query, answer, db, order_dbs, product_with_stock, stock_of, unique,
};

const USER_A: &str = "7001";
const USER_B: &str = "7002";

fn as_user(event: Event, user: Option<(&str, bool)>) -> Event {
    match user {
        Some((id, admin)) => event.user(id, admin),
        None => event,
    }
}

async fn place(ctx: &OrderContext, user: &str, body: &str) -> Answer {
    let event = Event::new("POST", "/api/orders", "/api/orders")
        .json_body(body)
        .user(user, false);
    answer(orders::create(ctx, event.request()).await)
}

/// A product with `stock` units and user A's confirmed order of 2 of them: `(product, order)`.
async fn order_of_user_a(ctx: &OrderContext, stock: i32) -> (i64, i64) {
    let product = product_with_stock("4.00", stock).await;
    let body = format!(r#"{{"product_id":{product},"quantity":2}}"#);
    let placed = place(ctx, USER_A, &body).await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.text);
    (product, placed.json()["id"].as_i64().unwrap())
}

async fn get_order(ctx: &OrderContext, id: i64, user: (&str, bool)) -> Answer {
    let path = format!("/api/orders/{id}");
    let event = Event::new("GET", "/api/orders/{id}", &path)
        .path_param("id", &id.to_string())
        .user(user.0, user.1);
    answer(orders::get(&ctx.orders, event.request()).await)
}

async fn cancel(ctx: &OrderContext, id: i64, user: (&str, bool)) -> Answer {
    let path = format!("/api/orders/{id}/cancel");
    let event = Event::new("POST", "/api/orders/{id}/cancel", &path)
        .path_param("id", &id.to_string())
        .user(user.0, user.1);
    answer(orders::cancel(ctx, event.request()).await)
}

async fn list_orders(ctx: &OrderContext, user: (&str, bool)) -> Vec<i64> {
    let event = Event::new("GET", "/api/orders", "/api/orders").user(user.0, user.1);
    let a = answer(orders::list(&ctx.orders, event.request()).await);
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    ids(&a.json())
}

fn ids(list: &Value) -> Vec<i64> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_i64().unwrap())
        .collect()
}

fn assert_error(a: &Answer, status: StatusCode, code: &str) {
    assert_eq!(a.status, status, "{}", a.text);
    assert_eq!(a.error().0, code, "{}", a.text);
}

#[tokio::test]
async fn product_writes_need_the_admin_scope_and_a_refused_write_changes_nothing() {
    let db = db().await;
    let id = product_with_stock("5.00", 10).await;
    let path = format!("/api/products/{id}");
    let name = unique("guarded");
    let body = format!(r#"{{"name":"{name}","price":1.00,"stock":99}}"#);
    for user in [Some((USER_A, false)), Some((USER_A, true))] {
        let create = as_user(
            Event::new("POST", "/api/products", "/api/products").json_body(&body),
            user,
        );
        let update = as_user(
            Event::new("PUT", "/api/products/{id}", &path)
                .path_param("id", &id.to_string())
                .json_body(&body),
            user,
        );
        let adjust = as_user(
            Event::new("POST", "/api/products/{id}/stock", &format!("{path}/stock"))
                .path_param("id", &id.to_string())
                .json_body(r#"{"delta": 5}"#),
            user,
        );
        let answers = [
            answer(products::create(&db, create.request()).await),
            answer(products::update(&db, update.request()).await),
            answer(products::adjust_stock(&db, adjust.request()).await),
        ];
        let admin = user.is_some_and(|(_, admin)| admin);
        for a in &answers {
            if admin {
                assert!(a.status.is_success(), "{}", a.text);
            } else {
                assert_error(a, StatusCode::FORBIDDEN, "forbidden");
            }
        }
        if !admin {
            // Nothing was written: no product by that name, the stock as it was.
            let named = admin_query(
                INVENTORY_DATABASE_URL,
                &format!("SELECT count(*) FROM products WHERE name = '{name}'"),
            )
            .await[0]
                .get::<_, i64>(0);
            assert_eq!(named, 0);
            assert_eq!(stock_of(id).await, 10);
        }
    }
    assert_eq!(
        stock_of(id).await,
        99 + 5,
        "the admin's update and adjustment applied"
    );

    let delete = |user: (&str, bool)| {
        Event::new("DELETE", "/api/products/{id}", &path)
            .path_param("id", &id.to_string())
            .user(user.0, user.1)
            .request()
    };
    let refused = answer(products::delete(&db, delete((USER_A, false))).await);
    assert_error(&refused, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(stock_of(id).await, 104, "still there");
    let deleted = answer(products::delete(&db, delete((USER_B, true))).await);
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
}

#[tokio::test]
async fn reading_products_needs_no_token() {
    let db = db().await;
    let id = product_with_stock("5.00", 3).await;
    let event = Event::new("GET", "/api/products/{id}", &format!("/api/products/{id}"))
        .path_param("id", &id.to_string());
    let a = answer(products::get(&db, event.request()).await);
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
}

#[tokio::test]
async fn an_order_belongs_to_the_tokens_user_and_naming_another_reserves_nothing() {
    let ctx = order_dbs().await;
    let product = product_with_stock("2.50", 5).await;
    let mine = place(
        &ctx,
        USER_A,
        &format!(r#"{{"product_id":{product},"quantity":1}}"#),
    )
    .await;
    assert_eq!(mine.status, StatusCode::CREATED, "{}", mine.text);
    assert_eq!(mine.json()["user_id"], 7001);
    let same = place(
        &ctx,
        USER_A,
        &format!(r#"{{"product_id":{product},"quantity":1,"user_id":{USER_A}}}"#),
    )
    .await;
    assert_eq!(same.status, StatusCode::CREATED, "{}", same.text);

    let other = place(
        &ctx,
        USER_A,
        &format!(r#"{{"product_id":{product},"quantity":1,"user_id":{USER_B}}}"#),
    )
    .await;
    assert_error(&other, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(other.error().1.as_deref(), Some("user_id"));
    assert_eq!(
        stock_of(product).await,
        3,
        "only the two own orders reserved stock"
    );

    let bulk = Event::new("POST", "/api/orders/bulk", "/api/orders/bulk")
        .json_body(&format!(
            r#"{{"user_id":{USER_B},"items":[{{"product_id":{product},"quantity":1}}]}}"#
        ))
        .user(USER_A, false);
    let a = answer(orders::bulk(&ctx, bulk.request()).await);
    assert_error(&a, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(stock_of(product).await, 3);

    // A token whose subject is not a user id (a machine client's) cannot order.
    let machine = Event::new("POST", "/api/orders", "/api/orders")
        .json_body(&format!(r#"{{"product_id":{product},"quantity":1}}"#))
        .claims(&[("sub", "3f1c0a7e-client"), ("scope", "admin")]);
    let a = answer(orders::create(&ctx, machine.request()).await);
    assert_error(&a, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(stock_of(product).await, 3);
}

#[tokio::test]
async fn a_user_cannot_read_list_or_cancel_another_users_order() {
    let ctx = order_dbs().await;
    let (product, id) = order_of_user_a(&ctx, 5).await;

    assert_error(
        &get_order(&ctx, id, (USER_B, false)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_eq!(
        get_order(&ctx, id, (USER_A, false)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        get_order(&ctx, id, (USER_B, true)).await.status,
        StatusCode::OK
    );

    assert!(!list_orders(&ctx, (USER_B, false)).await.contains(&id));
    let own = list_orders(&ctx, (USER_A, false)).await;
    assert!(own.contains(&id));
    let users: Vec<String> = admin_query(
        ORDER_DATABASE_URL,
        &format!(
            "SELECT DISTINCT user_id::text FROM orders WHERE id IN ({})",
            own.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
        ),
    )
    .await
    .iter()
    .map(|row| row.get(0))
    .collect();
    assert_eq!(users, [USER_A], "a user's list holds only their orders");

    let by_user = |caller: &str, listed: &str| {
        Event::new(
            "GET",
            "/api/orders/user/{user_id}",
            &format!("/api/orders/user/{listed}"),
        )
        .path_param("user_id", listed)
        .user(caller, false)
        .request()
    };
    let a = answer(orders::list_by_user(&ctx.orders, by_user(USER_B, USER_A)).await);
    assert_error(&a, StatusCode::FORBIDDEN, "forbidden");
    let a = answer(orders::list_by_user(&ctx.orders, by_user(USER_A, USER_A)).await);
    assert!(ids(&a.json()).contains(&id));

    assert_error(
        &cancel(&ctx, id, (USER_B, false)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_eq!(
        stock_of(product).await,
        3,
        "the refused cancel returned nothing"
    );
    assert_eq!(
        get_order(&ctx, id, (USER_A, false)).await.json()["status"],
        "confirmed"
    );
    let cancelled = cancel(&ctx, id, (USER_A, false)).await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.text);
    assert_eq!(stock_of(product).await, 5);
}

#[tokio::test]
async fn another_users_idempotency_key_replays_nothing_of_the_first_order() {
    let ctx = order_dbs().await;
    let product = product_with_stock("1.00", 5).await;
    let key = unique("key");
    let keyed = |user: &str| {
        Event::new("POST", "/api/orders", "/api/orders")
            .json_body(&format!(r#"{{"product_id":{product},"quantity":1}}"#))
            .header("idempotency-key", &key)
            .user(user, false)
            .request()
    };
    let first = answer(orders::create(&ctx, keyed(USER_A)).await);
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let other = answer(orders::create(&ctx, keyed(USER_B)).await);
    assert_error(
        &other,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    );
    assert_eq!(stock_of(product).await, 4);
}

#[tokio::test]
async fn an_administrator_cancels_any_order() {
    let ctx = order_dbs().await;
    let (product, id) = order_of_user_a(&ctx, 2).await;
    let a = cancel(&ctx, id, (USER_B, true)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(stock_of(product).await, 2);
}

fn config(mode: Mode) -> Config {
    Config {
        mode,
        admin_scope: "admin".into(),
        user_id_claim: "sub".into(),
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn without_claims_a_caller_is_anyone_only_when_authentication_is_off() {
    let request = Event::new("GET", "/api/orders", "/api/orders").request();
    assert_eq!(config(Mode::Off).caller(&request).unwrap(), Caller::Anyone);
    let err = config(Mode::Jwt).caller(&request).unwrap_err();
    assert_eq!(
        (err.status, err.code),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    // Claims decide whatever the mode: they exist only where an authorizer verified a token.
    let request = Event::new("GET", "/api/orders", "/api/orders")
        .user("12", true)
        .request();
    let expected = Caller::Token {
        user_id: Some(12),
        admin: true,
    };
    assert_eq!(config(Mode::Off).caller(&request).unwrap(), expected);
    assert_eq!(config(Mode::Jwt).caller(&request).unwrap(), expected);
}

#[test]
fn the_local_mode_verifies_a_development_token_into_the_authorizers_claims() {
    let verifier = Verifier::new("local-secret", "https://stockroom.local", "stockroom");
    let local = config(Mode::Local(verifier.clone()));
    let with = |token: &str| {
        let request = Event::new("GET", "/api/orders", "/api/orders")
            .header("authorization", &format!("Bearer {token}"))
            .request();
        local.caller(&local.authenticate_locally(request, now()))
    };
    let good = verifier.mint("42", &["admin"], now(), 300);
    assert_eq!(
        with(&good).unwrap(),
        Caller::Token {
            user_id: Some(42),
            admin: true
        }
    );
    let user = verifier.mint("43", &[], now(), 300);
    assert_eq!(
        with(&user).unwrap(),
        Caller::Token {
            user_id: Some(43),
            admin: false
        }
    );

    let expired = verifier.mint("42", &["admin"], now() - 600, 300);
    let err = with(&expired).unwrap_err();
    assert_eq!(err.status, StatusCode::UNAUTHORIZED);
    assert!(err.message.contains("expired"), "{}", err.message);
    let forged = Verifier::new("guess", "https://stockroom.local", "stockroom").mint(
        "42",
        &["admin"],
        now(),
        300,
    );
    assert_eq!(with(&forged).unwrap_err().status, StatusCode::UNAUTHORIZED);

    let no_token = Event::new("GET", "/api/orders", "/api/orders").request();
    let err = local
        .caller(&local.authenticate_locally(no_token, now()))
        .unwrap_err();
    assert_eq!(err.status, StatusCode::UNAUTHORIZED);

    // In another mode the functions never read the header: only an authorizer's claims count.
    let request = Event::new("GET", "/api/orders", "/api/orders")
        .header("authorization", &format!("Bearer {good}"))
        .request();
    let jwt = config(Mode::Jwt);
    assert_eq!(
        jwt.caller(&jwt.authenticate_locally(request, now()))
            .unwrap_err()
            .status,
        StatusCode::UNAUTHORIZED
    );
}

/// The identity setup docs/deploy.md gives for Cognito, with the template's defaults
/// (`UserIdClaim=custom:user_id`, `AdminScope=stockroom/admin`): claims as API Gateway's JWT
/// authorizer passes them for Cognito's tokens. A user's ID token names the user by its custom
/// attribute (its `sub` is a UUID, which no order can belong to); the admin client's
/// client-credentials access token carries the admin scope and no user.
#[test]
fn cognito_tokens_name_their_user_by_the_custom_attribute_and_the_admin_by_scope() {
    let cognito = Config {
        mode: Mode::Jwt,
        admin_scope: "stockroom/admin".into(),
        user_id_claim: "custom:user_id".into(),
    };
    let issuer = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123";
    let id_token = [
        ("sub", "4f1c2a7e-0b5d-4c1e-9a7b-2d3e4f5a6b7c"),
        ("custom:user_id", "7001"),
        ("cognito:username", "alice"),
        ("email", "alice@example.com"),
        ("aud", "5abcdefghij1234567890klmno"),
        ("iss", issuer),
        ("token_use", "id"),
        ("auth_time", "1733300000"),
        ("exp", "4102444800"),
    ];
    let request = |claims: &[(&str, &str)]| {
        Event::new("POST", "/api/orders", "/api/orders")
            .claims(claims)
            .request()
    };
    assert_eq!(
        cognito.caller(&request(&id_token)).unwrap(),
        Caller::Token {
            user_id: Some(7001),
            admin: false
        }
    );
    let admin_token = [
        ("sub", "1example23456789admin0client"),
        ("client_id", "1example23456789admin0client"),
        ("scope", "stockroom/admin"),
        ("iss", issuer),
        ("token_use", "access"),
        ("exp", "4102444800"),
    ];
    assert_eq!(
        cognito.caller(&request(&admin_token)).unwrap(),
        Caller::Token {
            user_id: None,
            admin: true
        }
    );
    // The claim `sub` would leave every Cognito user without an id: orders refused, clearly.
    let by_sub = Config {
        user_id_claim: "sub".into(),
        ..cognito
    };
    let caller = by_sub.caller(&request(&id_token)).unwrap();
    assert_eq!(
        caller,
        Caller::Token {
            user_id: None,
            admin: false
        }
    );
    let refused = caller.orderer(None).unwrap_err();
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
}
