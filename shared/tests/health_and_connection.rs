//! The health function, and what a function does when the database is down or its connection died.

use stockroom_test_support::handler;

use lambda_http::http::StatusCode;
use stockroom::db::Db;
use stockroom::handlers::{health, products};
use stockroom_test_support::handler::{Event, answer, database_url, db};

async fn health_of(db: &Db) -> handler::Answer {
    answer(health::check(db, Event::new("GET", "/health", "/health").request()).await)
}

/// A URL to this machine where nothing listens.
fn dead_database_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("postgres://postgres@127.0.0.1:{port}/inventory_db")
}

#[tokio::test]
async fn health_is_200_when_the_database_answers() {
    let a = health_of(&db().await).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let body = a.json();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["checks"]["database"]["status"], "ok");
}

#[tokio::test]
async fn health_is_503_when_the_database_is_unreachable() {
    let db = Db::new(&dead_database_url()).unwrap();
    let a = health_of(&db).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.text);
    let body = a.json();
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["checks"]["database"]["status"], "unavailable");
    assert_eq!(
        body["checks"]["database"].as_object().unwrap().len(),
        1,
        "only the status, never the database's error text: {body}"
    );
    assert!(!a.text.contains("127.0.0.1"), "{}", a.text);
}

#[tokio::test]
async fn requests_get_a_json_503_not_a_crash_when_the_database_is_down() {
    let db = Db::new(&dead_database_url()).unwrap();
    let event = Event::new("GET", "/api/products/{id}", "/api/products/1").path_param("id", "1");
    let a = answer(products::get(&db, event.request()).await);
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(a.error().0, "service_unavailable");
}

#[tokio::test]
async fn a_connection_killed_while_frozen_is_replaced_transparently() {
    let db = db().await;
    let pid: i32 = {
        let conn = db.conn().await.unwrap();
        conn.query_typed_one("SELECT pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0)
    };
    // What a thawed environment finds: the server side of its connection is gone.
    let (admin, connection) = tokio_postgres::connect(&database_url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let killed: bool = admin
        .query_typed_one(
            "SELECT pg_terminate_backend($1)",
            &[(&pid, tokio_postgres::types::Type::INT4)],
        )
        .await
        .unwrap()
        .get(0);
    assert!(killed);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    let a = health_of(&db).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let new_pid: i32 = {
        let conn = db.conn().await.unwrap();
        conn.query_typed_one("SELECT pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0)
    };
    assert_ne!(new_pid, pid, "a new session was opened");
}
