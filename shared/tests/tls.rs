//! TLS to PostgreSQL against the local server, which localstack/lib.sh starts with `ssl=on` and a
//! certificate for `localhost` only, signed by its own CA (`STOCKROOM_PG_CA`); beside it lies a
//! second CA that signed nothing. A function is called through its real event over each kind of
//! connection, and the server says whether that connection is encrypted.

use stockroom_test_support::handler;

use lambda_http::http::StatusCode;
use stockroom::db::Db;
use stockroom::handlers::products;
use stockroom_test_support::handler::{Event, answer, database_url, product_with_stock};

fn ca() -> String {
    std::env::var("STOCKROOM_PG_CA")
        .expect("STOCKROOM_PG_CA (the local PostgreSQL's CA): run the tests with localstack/test")
}

fn other_ca() -> String {
    ca().replace("ca.crt", "other-ca.crt")
}

/// The test database's URL with its host replaced and `params` appended.
fn url(host: &str, params: &str) -> String {
    let url = database_url().replace("@127.0.0.1:", &format!("@{host}:"));
    assert!(url.contains(host), "{url}");
    format!("{url}{}{params}", if url.contains('?') { '&' } else { '?' })
}

/// Whether the server sees this connection as encrypted (`pg_stat_ssl`).
async fn encrypted(db: &Db) -> bool {
    db.run("tls", async |client| {
        client
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
    })
    .await
    .unwrap()
    .get(0)
}

/// GET /api/products/{id} of `product` through its real event, over `db`.
async fn get_product(db: &Db, product: i64) -> handler::Answer {
    let id = product.to_string();
    let event = Event::new("GET", "/api/products/{id}", &format!("/api/products/{id}"))
        .path_param("id", &id);
    answer(products::get(db, event.request()).await)
}

#[tokio::test]
async fn verify_full_with_the_servers_ca_and_name_reads_over_tls() {
    let product = product_with_stock("4.20", 3).await;
    let db = Db::new(&url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={}", ca()),
    ))
    .unwrap();
    let a = get_product(&db, product).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.json()["id"], product);
    assert!(encrypted(&db).await, "verify-full connected without TLS");
}

#[tokio::test]
async fn verify_full_refuses_a_name_the_certificate_does_not_carry() {
    let product = product_with_stock("1.00", 1).await;
    // The certificate names `localhost`; 127.0.0.1 is the same server under another name.
    let db = Db::new(&url(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={}", ca()),
    ))
    .unwrap();
    let a = get_product(&db, product).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.text);
    assert_eq!(a.error().0, "service_unavailable");
    // verify-ca checks the chain only, so the same address is accepted.
    let db = Db::new(&url(
        "127.0.0.1",
        &format!("sslmode=verify-ca&sslrootcert={}", ca()),
    ))
    .unwrap();
    assert_eq!(get_product(&db, product).await.status, StatusCode::OK);
    assert!(encrypted(&db).await);
}

#[tokio::test]
async fn verification_against_a_ca_that_did_not_sign_the_certificate_fails() {
    let product = product_with_stock("1.00", 1).await;
    for mode in ["verify-full", "verify-ca"] {
        let db = Db::new(&url(
            "localhost",
            &format!("sslmode={mode}&sslrootcert={}", other_ca()),
        ))
        .unwrap();
        let a = get_product(&db, product).await;
        assert_eq!(
            a.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{mode}: {}",
            a.text
        );
    }
    // The built-in roots do not know a local CA either.
    let db = Db::new(&url("localhost", "sslmode=verify-full&sslrootcert=system")).unwrap();
    assert_eq!(
        get_product(&db, product).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn require_and_the_default_encrypt_and_disable_does_not() {
    for (params, tls) in [
        ("sslmode=require", true),
        ("", true),
        ("sslmode=disable", false),
    ] {
        let db = Db::new(&url("127.0.0.1", params)).unwrap();
        assert_eq!(encrypted(&db).await, tls, "{params:?}");
    }
}
