//! Every product function's handler, called with a real HTTP API event against real PostgreSQL.

use stockroom_test_support::handler;

use lambda_http::http::StatusCode;
use serde_json::{Value, json};
use stockroom::db::Db;
use stockroom::handlers::products;
use stockroom_test_support::handler::{Answer, Event, answer, db, unique};

async fn create(db: &Db, body: &str) -> Answer {
    let event = Event::new("POST", "/api/products", "/api/products").json_body(body);
    answer(products::create(db, event.request()).await)
}

async fn get(db: &Db, id: &str) -> Answer {
    let event = Event::new("GET", "/api/products/{id}", &format!("/api/products/{id}"))
        .path_param("id", id);
    answer(products::get(db, event.request()).await)
}

async fn list(db: &Db, query: &[(&str, &str)]) -> Answer {
    let event = Event::new("GET", "/api/products", "/api/products").query(query);
    answer(products::list(db, event.request()).await)
}

async fn update(db: &Db, id: &str, body: &str) -> Answer {
    let event = Event::new("PUT", "/api/products/{id}", &format!("/api/products/{id}"))
        .path_param("id", id)
        .json_body(body);
    answer(products::update(db, event.request()).await)
}

async fn delete(db: &Db, id: &str) -> Answer {
    let event = Event::new(
        "DELETE",
        "/api/products/{id}",
        &format!("/api/products/{id}"),
    )
    .path_param("id", id);
    answer(products::delete(db, event.request()).await)
}

/// Creates a product and returns its JSON.
async fn new_product(db: &Db, price: &str, stock: i64) -> Value {
    let name = unique("item");
    let a = create(
        db,
        &format!(r#"{{"name":"{name}","description":"d","price":{price},"stock":{stock}}}"#),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    a.json()
}

async fn count_named(db: &Db, name: &str) -> i64 {
    let conn = db.conn().await.unwrap();
    conn.query_typed_one(
        "SELECT count(*) FROM products WHERE name = $1",
        &[(&name, tokio_postgres::types::Type::TEXT)],
    )
    .await
    .unwrap()
    .get(0)
}

#[tokio::test]
async fn create_answers_201_with_the_product_and_exact_price() {
    let db = db().await;
    let name = unique("Laptop");
    let a = create(
        &db,
        &format!(r#"{{"name":"{name}","description":"x","price":999.99,"stock":50}}"#),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert_eq!(a.headers["content-type"], "application/json");
    // The price is written from the decimal's digits, not from a float.
    assert!(a.text.contains(r#""price":999.99,"#), "{}", a.text);
    let p = a.json();
    assert!(p["id"].as_i64().is_some_and(|id| id > 0));
    assert_eq!(p["name"], json!(name));
    assert_eq!(p["description"], "x");
    assert_eq!(p["stock"], 50);
    for field in ["created_at", "updated_at"] {
        let ts = p[field].as_str().unwrap();
        assert!(ts.ends_with('Z'), "{field} is UTC: {ts}");
        chrono::DateTime::parse_from_rfc3339(ts).expect("RFC 3339");
    }
    let stored = get(&db, &p["id"].to_string()).await;
    assert_eq!(stored.status, StatusCode::OK);
    assert_eq!(stored.json(), p);
}

#[tokio::test]
async fn prices_survive_the_round_trip_to_the_cent() {
    let db = db().await;
    for (sent, returned) in [
        ("0.1", "0.10"),
        ("19.99", "19.99"),
        ("9999999999.99", "9999999999.99"),
        ("5", "5.00"),
        ("1.10", "1.10"),
    ] {
        let p = new_product(&db, sent, 1).await;
        let a = get(&db, &p["id"].to_string()).await;
        assert!(
            a.text.contains(&format!(r#""price":{returned},"#)),
            "{sent}: {}",
            a.text
        );
    }
}

#[tokio::test]
async fn invalid_products_are_422_naming_the_field_and_write_nothing() {
    let db = db().await;
    // NAME stands for a name no other test uses, so "nothing written" can be checked by name.
    let cases = [
        (r#"{"price":1,"stock":1}"#, "name"),
        (r#"{"name":"   ","price":1,"stock":1}"#, "name"),
        (
            r#"{"name":"NAME","description":["x"],"price":1,"stock":1}"#,
            "description",
        ),
        (r#"{"name":"NAME","price":-0.01,"stock":1}"#, "price"),
        (r#"{"name":"NAME","price":10.001,"stock":1}"#, "price"),
        (r#"{"name":"NAME","price":"10","stock":1}"#, "price"),
        (r#"{"name":"NAME","price":10000000000,"stock":1}"#, "price"),
        (r#"{"name":"NAME","price":1,"stock":-1}"#, "stock"),
        (r#"{"name":"NAME","price":1,"stock":2.5}"#, "stock"),
        (r#"{"name":"NAME","price":1,"stock":99999999999}"#, "stock"),
        (r#"{"name":"NAME","price":1}"#, "stock"),
        // PostgreSQL refuses NUL in text: it was a 500 after validation passed.
        (r#"{"name":"NAME\u0000","price":1,"stock":1}"#, "name"),
        (
            r#"{"name":"NAME","description":"a\u0000b","price":1,"stock":1}"#,
            "description",
        ),
        (r#"{"name":"NAME\u001b[31m","price":1,"stock":1}"#, "name"),
    ];
    for (template, field) in cases {
        let name = unique("invalid");
        let body = template.replace("NAME", &name);
        let a = create(&db, &body).await;
        assert_eq!(
            a.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            a.text
        );
        assert_eq!(
            a.error(),
            ("validation_failed".into(), Some(field.into())),
            "{body}"
        );
        assert_eq!(count_named(&db, &name).await, 0, "{body} wrote a row");
    }
    let long = "n".repeat(201);
    let a = create(&db, &format!(r#"{{"name":"{long}","price":1,"stock":1}}"#)).await;
    assert_eq!(a.error(), ("validation_failed".into(), Some("name".into())));
    assert_eq!(count_named(&db, &long).await, 0);
}

#[tokio::test]
async fn unreadable_bodies_are_400_and_wrong_media_types_415() {
    let db = db().await;
    for (body, code) in [
        ("{\"name\":", "malformed_json"),
        ("[]", "invalid_body"),
        ("", "missing_body"),
    ] {
        let a = create(&db, body).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body:?}");
        assert_eq!(a.error().0, code);
    }
    let event = Event::new("POST", "/api/products", "/api/products")
        .header("content-type", "text/plain")
        .raw_body(r#"{"name":"a","price":1,"stock":1}"#);
    let a = answer(products::create(&db, event.request()).await);
    assert_eq!(a.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(a.error().0, "unsupported_media_type");
}

#[tokio::test]
async fn get_unknown_or_malformed_ids_is_404() {
    let db = db().await;
    for id in ["999999999999", "abc", "0", "-3", "1.5"] {
        let a = get(&db, id).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{id}");
        assert_eq!(a.error().0, "not_found");
    }
}

#[tokio::test]
async fn list_without_parameters_returns_every_product_by_id() {
    let db = db().await;
    let a = new_product(&db, "1", 1).await["id"].as_i64().unwrap();
    let b = new_product(&db, "2", 2).await["id"].as_i64().unwrap();
    let listed = list(&db, &[]).await;
    assert_eq!(listed.status, StatusCode::OK);
    let ids: Vec<i64> = listed
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ascending: {ids:?}");
    assert!(ids.contains(&a) && ids.contains(&b));
    assert!(listed.headers.get("link").is_none());
}

#[tokio::test]
async fn keyset_pages_walk_the_list_without_gaps_or_repeats() {
    let db = db().await;
    let mine: Vec<i64> = {
        let mut ids = Vec::new();
        for _ in 0..5 {
            ids.push(new_product(&db, "3.50", 7).await["id"].as_i64().unwrap());
        }
        ids
    };
    // Start just before our products; others may be created concurrently, so only ours are checked.
    let mut after = (mine[0] - 1).to_string();
    let mut seen: Vec<i64> = Vec::new();
    while seen.len() < 5 {
        let page = list(&db, &[("limit", "2"), ("after", &after)]).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        let items = page.json();
        let ids: Vec<i64> = items
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_i64().unwrap())
            .collect();
        assert!(!ids.is_empty() && ids.len() <= 2, "{ids:?}");
        assert!(ids[0] > after.parse::<i64>().unwrap());
        let link = page
            .headers
            .get("link")
            .map(|v| v.to_str().unwrap().to_owned());
        if ids.len() == 2 {
            let last = ids[1];
            assert_eq!(
                link.unwrap(),
                format!("</api/products?limit=2&after={last}>; rel=\"next\"")
            );
        }
        seen.extend(ids.iter().filter(|id| mine.contains(id)).copied());
        after = ids.last().unwrap().to_string();
    }
    assert_eq!(seen, mine);
}

#[tokio::test]
async fn bad_pagination_parameters_are_422() {
    let db = db().await;
    for (query, field) in [
        (vec![("limit", "0")], "limit"),
        (vec![("limit", "100000")], "limit"),
        (vec![("limit", "x")], "limit"),
        (vec![("after", "-5")], "after"),
    ] {
        let a = list(&db, &query).await;
        assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{query:?}");
        assert_eq!(a.error().1.as_deref(), Some(field));
    }
}

#[tokio::test]
async fn update_replaces_the_product_and_returns_it() {
    let db = db().await;
    let p = new_product(&db, "10.00", 5).await;
    let id = p["id"].to_string();
    let name = unique("renamed");
    let a = update(
        &db,
        &id,
        &format!(r#"{{"name":"{name}","description":"new","price":12.34,"stock":9}}"#),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert!(a.text.contains(r#""price":12.34,"#));
    let u = a.json();
    assert_eq!(u["id"], p["id"]);
    assert_eq!(u["name"], json!(name));
    assert_eq!(u["description"], "new");
    assert_eq!(u["stock"], 9);
    assert_eq!(u["created_at"], p["created_at"]);
    assert!(u["updated_at"].as_str().unwrap() > p["updated_at"].as_str().unwrap());
    assert_eq!(get(&db, &id).await.json(), u);
}

#[tokio::test]
async fn invalid_or_unknown_updates_change_nothing() {
    let db = db().await;
    let p = new_product(&db, "10.00", 5).await;
    let id = p["id"].to_string();
    let a = update(&db, &id, r#"{"name":"x","price":1.234,"stock":1}"#).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(a.error().1.as_deref(), Some("price"));
    let a = update(&db, &id, r#"{"name":"x","price":1,"stock":-4}"#).await;
    assert_eq!(a.error().1.as_deref(), Some("stock"));
    assert_eq!(get(&db, &id).await.json(), p, "unchanged");
    let a = update(&db, "999999999999", r#"{"name":"x","price":1,"stock":1}"#).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn delete_answers_204_then_the_product_is_gone() {
    let db = db().await;
    let id = new_product(&db, "1", 1).await["id"].to_string();
    let a = delete(&db, &id).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert!(a.text.is_empty());
    assert_eq!(get(&db, &id).await.status, StatusCode::NOT_FOUND);
    let again = delete(&db, &id).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    assert_eq!(again.error().0, "not_found");
}

/// Control characters (NUL among them) are refused on update too; tab and line breaks are text.
#[tokio::test]
async fn nul_and_control_characters_are_422_naming_the_field() {
    let db = db().await;
    let p = new_product(&db, "10.00", 5).await;
    let id = p["id"].to_string();
    let a = update(&db, &id, r#"{"name":"x\u0000","price":1,"stock":1}"#).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.text);
    assert_eq!(a.error().1.as_deref(), Some("name"));
    assert_eq!(get(&db, &id).await.json(), p, "unchanged");
    let kept = create(
        &db,
        &format!(
            r#"{{"name":"{}","description":"two\nlines\tand a tab","price":1,"stock":1}}"#,
            unique("lines")
        ),
    )
    .await;
    assert_eq!(kept.status, StatusCode::CREATED, "{}", kept.text);
}

/// Lambda refuses invocations over 6 MB; the local router does not. Every function refuses a body
/// over 1 MiB itself, with the JSON error shape, before reading it.
#[tokio::test]
async fn an_oversized_body_is_413_and_writes_nothing() {
    let db = db().await;
    let name = unique("huge");
    let padding = "x".repeat(stockroom::http::MAX_BODY_BYTES);
    let body = format!(r#"{{"name":"{name}","description":"{padding}","price":1,"stock":1}}"#);
    let a = create(&db, &body).await;
    assert_eq!(
        a.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        &a.text[..a.text.len().min(200)]
    );
    assert_eq!(a.error().0, "payload_too_large");
    assert_eq!(count_named(&db, &name).await, 0);
    let fits = format!(r#"{{"name":"{}","price":1,"stock":1}}"#, unique("small"));
    assert_eq!(create(&db, &fits).await.status, StatusCode::CREATED);
}

async fn update_if_match(db: &Db, id: &str, body: &str, etag: &str) -> Answer {
    let event = Event::new("PUT", "/api/products/{id}", &format!("/api/products/{id}"))
        .path_param("id", id)
        .header("if-match", etag)
        .json_body(body);
    answer(products::update(db, event.request()).await)
}

/// The lost update: a client reads a product (stock 100), orders sell 20, the client PUTs its
/// edit with stock 100, and the sales are gone. With `If-Match` the stale PUT is 412 and changes
/// nothing; with the ETag read after the sales it goes through. Without `If-Match` (the original
/// clients) the last write still wins.
#[tokio::test]
async fn a_put_with_a_stale_etag_is_412_and_erases_no_sale() {
    let db = db().await;
    let id = new_product(&db, "3.00", 100).await["id"].to_string();
    let read = get(&db, &id).await;
    let etag = read.headers["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");

    let ctx = handler::order_dbs().await;
    let request = handler::single_order(id.parse().unwrap(), 20);
    let sold = stockroom::orders::saga::place(&ctx, &request, None).await;
    assert_eq!(sold.status, StatusCode::CREATED, "{}", sold.body);

    let restock = r#"{"name":"restocked","price":3.00,"stock":100}"#;
    let stale = update_if_match(&db, &id, restock, &etag).await;
    assert_eq!(
        stale.status,
        StatusCode::PRECONDITION_FAILED,
        "{}",
        stale.text
    );
    assert_eq!(stale.error().0, "precondition_failed");
    let now = get(&db, &id).await;
    assert_eq!(now.json()["stock"], 80, "the sale stands");
    let fresh = now.headers["etag"].to_str().unwrap().to_owned();
    assert_ne!(fresh, etag, "a sale moves the version");

    let weak = update_if_match(&db, &id, restock, &format!("W/{fresh}")).await;
    assert_eq!(
        weak.status,
        StatusCode::PRECONDITION_FAILED,
        "weak tags never match"
    );
    let done = update_if_match(&db, &id, restock, &format!("\"0\", {fresh}")).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    assert_eq!(done.json()["stock"], 100);
    assert_ne!(done.headers["etag"].to_str().unwrap(), fresh);
    assert_eq!(
        update_if_match(&db, &id, restock, "*").await.status,
        StatusCode::OK
    );
    assert_eq!(
        update(&db, &id, restock).await.status,
        StatusCode::OK,
        "no If-Match: last write wins"
    );
    let gone = update_if_match(&db, "999999999999", restock, &fresh).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

async fn adjust(db: &Db, id: &str, body: &str) -> Answer {
    let event = Event::new(
        "POST",
        "/api/products/{id}/stock",
        &format!("/api/products/{id}/stock"),
    )
    .path_param("id", id)
    .json_body(body);
    answer(products::adjust_stock(db, event.request()).await)
}

/// Restocking by a delta never erases a sale: 20 orders of 1 and 10 restocks of 5, all at once,
/// leave exactly 100 − 20 + 50.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stock_adjustments_and_sales_at_the_same_moment_all_count() {
    let db = db().await;
    let product = new_product(&db, "2.00", 100).await["id"].as_i64().unwrap();
    let mut tasks = Vec::new();
    for i in 0..30 {
        tasks.push(tokio::spawn(async move {
            if i % 3 == 0 {
                let db = handler::db().await;
                let a = adjust(&db, &product.to_string(), r#"{"delta":5}"#).await;
                assert_eq!(a.status, StatusCode::OK, "{}", a.text);
            } else {
                let ctx = handler::order_dbs().await;
                let request = handler::single_order(product, 1);
                let sold = stockroom::orders::saga::place(&ctx, &request, None).await;
                assert_eq!(sold.status, StatusCode::CREATED, "{}", sold.body);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(handler::stock_of(product).await, 100 - 20 + 50);
}

#[tokio::test]
async fn a_stock_adjustment_never_goes_below_zero_or_past_the_maximum() {
    let db = db().await;
    let p = new_product(&db, "2.00", 7).await;
    let id = p["id"].to_string();
    let taken = adjust(&db, &id, r#"{"delta":-3}"#).await;
    assert_eq!(taken.status, StatusCode::OK, "{}", taken.text);
    assert_eq!(taken.json()["stock"], 4);
    assert!(taken.headers.get("etag").is_some());
    let short = adjust(&db, &id, r#"{"delta":-5}"#).await;
    assert_eq!(short.status, StatusCode::CONFLICT, "{}", short.text);
    assert_eq!(
        short.error(),
        ("insufficient_stock".into(), Some("delta".into()))
    );
    assert_eq!(short.json()["error"]["details"]["available"], 4);
    for body in [
        r#"{"delta":0}"#,
        r#"{"delta":1.5}"#,
        r#"{"delta":"5"}"#,
        r#"{}"#,
        r#"{"delta":2147483647}"#,
    ] {
        let a = adjust(&db, &id, body).await;
        assert_eq!(
            a.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            a.text
        );
        assert_eq!(a.error().1.as_deref(), Some("delta"), "{body}");
    }
    assert_eq!(
        get(&db, &id).await.json()["stock"],
        4,
        "refusals change nothing"
    );
    let missing = adjust(&db, "999999999999", r#"{"delta":1}"#).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

/// The attack report's 500s for bodies that are not UTF-8 came from the local emulator, which
/// cannot put them in an event. API Gateway does: base64, `isBase64Encoded`. Built that way, a
/// Latin-1 body and a UTF-16 one reach the function, which answers 400 and writes nothing.
#[tokio::test]
async fn bodies_that_are_not_utf8_are_400_as_api_gateway_delivers_them() {
    let db = db().await;
    let name = unique("latin1");
    let latin1: Vec<u8> = format!(r#"{{"name":"{name}-caf"#)
        .into_bytes()
        .into_iter()
        .chain([0xe9])
        .chain(br#"","price":1,"stock":1}"#.iter().copied())
        .collect();
    let utf16: Vec<u8> = format!(r#"{{"name":"{name}","price":1,"stock":1}}"#)
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    for body in [latin1, utf16] {
        let event = Event::new("POST", "/api/products", "/api/products")
            .header("content-type", "application/json")
            .base64_body(&body);
        let a = answer(products::create(&db, event.request()).await);
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
        assert_eq!(a.error().0, "malformed_json");
    }
    assert_eq!(count_named(&db, &name).await, 0);
}

/// A `Content-Type` that is not visible ASCII: the local emulator answers 500 itself; API Gateway
/// delivers it, and the function refuses it as a type it does not take.
#[tokio::test]
async fn a_content_type_that_is_not_ascii_is_415_as_api_gateway_delivers_it() {
    let db = db().await;
    let name = unique("odd-type");
    let event = Event::new("POST", "/api/products", "/api/products")
        .raw_body(&format!(r#"{{"name":"{name}","price":1,"stock":1}}"#))
        .header("content-type", "application/j\u{e9}son");
    let a = answer(products::create(&db, event.request()).await);
    assert_eq!(a.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", a.text);
    assert_eq!(count_named(&db, &name).await, 0);
}
