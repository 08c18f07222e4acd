//! The `migrate` function through real CloudFormation custom-resource events: migrations applied
//! to real databases, the answer CloudFormation would read, and the PUT of that answer to an S3
//! endpoint (moto, the local stack's AWS endpoint).

use serde_json::{Value, json};
use stockroom::handlers::migrations::{self, PresignedPut};
use stockroom_test_support::handler::{Kept, admin_query, custom_resource_event, unique};

/// A new, empty database on the test server; its URL.
async fn empty_database() -> String {
    let name = unique("migrations").replace('-', "_");
    admin_query("INVENTORY_DATABASE_URL", &format!("CREATE DATABASE {name}")).await;
    let url = std::env::var("INVENTORY_DATABASE_URL").unwrap();
    format!("{}/{name}", url.rsplit_once('/').unwrap().0)
}

fn env(var: &str) -> Option<String> {
    std::env::var(var).ok()
}

/// The test databases' URLs, with inventory_db's replaced by `inventory`.
fn with_inventory(inventory: &str) -> impl Fn(&str) -> Option<String> + '_ {
    move |var| {
        if var == "INVENTORY_DATABASE_URL" {
            Some(inventory.to_owned())
        } else {
            env(var)
        }
    }
}

#[tokio::test]
async fn create_applies_every_pending_migration_and_answers_success() {
    let fresh = empty_database().await;
    let kept = Kept::default();
    let event = custom_resource_event(
        "Create",
        "https://s3.example/answer",
        json!({"LowStockThreshold": "7"}),
    );
    migrations::handle(event, with_inventory(&fresh), &kept)
        .await
        .unwrap();
    let (url, answer) = kept.only();
    assert_eq!(url, "https://s3.example/answer");
    assert_eq!(answer["Status"], "SUCCESS", "{answer}");
    assert_eq!(answer["PhysicalResourceId"], migrations::PHYSICAL_ID);
    assert_eq!(answer["RequestId"], "7c2a0bde-4b9b-4a3b-9a38-2b5d5e3c6f11");
    assert_eq!(answer["LogicalResourceId"], "Migrations");
    assert!(
        answer["StackId"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:cloudformation:")
    );
    // Every migration of a fresh database, in order.
    let all: Vec<i32> = stockroom::deploy::migrate::database("inventory_db")
        .unwrap()
        .migrations
        .iter()
        .map(|m| m.version)
        .collect();
    assert_eq!(
        answer["Data"]["inventory_db"],
        format!("{all:?}"),
        "{answer}"
    );
    // The other databases were migrated by the stack already: nothing pending.
    assert_eq!(answer["Data"]["order_db"], "[]");
    let (client, connection) = tokio_postgres::connect(&fresh, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let threshold: i32 = client
        .query_one("SELECT low_stock_threshold FROM inventory_settings", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(threshold, 7);

    // An update runs again and finds nothing to do, under the same physical id.
    let kept = Kept::default();
    let event = custom_resource_event("Update", "https://s3.example/again", json!({}));
    migrations::handle(event, with_inventory(&fresh), &kept)
        .await
        .unwrap();
    let (_, answer) = kept.only();
    assert_eq!(answer["Status"], "SUCCESS");
    assert_eq!(answer["PhysicalResourceId"], migrations::PHYSICAL_ID);
    assert_eq!(answer["Data"]["inventory_db"], "[]");
}

#[tokio::test]
async fn a_database_that_cannot_be_migrated_fails_the_deploy_with_its_reason() {
    let kept = Kept::default();
    let missing = |var: &str| (var != "ORDER_DATABASE_URL").then(|| env(var)).flatten();
    let event = custom_resource_event("Create", "https://s3.example/answer", json!({}));
    migrations::handle(event, missing, &kept).await.unwrap();
    let (_, answer) = kept.only();
    assert_eq!(answer["Status"], "FAILED");
    assert_eq!(answer["Reason"], "order_db: ORDER_DATABASE_URL is not set");

    let kept = Kept::default();
    let event = custom_resource_event(
        "Create",
        "https://s3.example/answer",
        json!({"LowStockThreshold": "-1"}),
    );
    migrations::handle(event, env, &kept).await.unwrap();
    let (_, answer) = kept.only();
    assert_eq!(answer["Status"], "FAILED");
    assert!(
        answer["Reason"]
            .as_str()
            .unwrap()
            .contains("LowStockThreshold"),
        "{answer}"
    );
}

#[tokio::test]
async fn delete_leaves_the_databases_alone_and_succeeds() {
    let kept = Kept::default();
    // No database URL at all: a delete must not need one.
    let event = custom_resource_event("Delete", "https://s3.example/answer", json!({}));
    migrations::handle(event, |_: &str| None, &kept)
        .await
        .unwrap();
    let (_, answer) = kept.only();
    assert_eq!(answer["Status"], "SUCCESS");
    assert_eq!(answer["PhysicalResourceId"], migrations::PHYSICAL_ID);
}

/// The S3 endpoint of the local stack (moto answers every AWS service on one port).
fn s3_url(path: &str) -> String {
    let endpoint = env("AWS_ENDPOINT_URL_SQS")
        .expect("the local AWS endpoint: run the tests with localstack/test");
    format!("{endpoint}/{path}")
}

#[tokio::test]
async fn the_answer_is_put_to_the_presigned_url_and_a_refusal_is_an_error() {
    let bucket = unique("cfn-responses");
    let created = ureq::put(&s3_url(&bucket))
        .send_empty()
        .expect("bucket created");
    assert_eq!(created.status(), 200);
    let event = custom_resource_event(
        "Delete",
        &s3_url(&format!("{bucket}/stack/request")),
        json!({}),
    );
    let answer = migrations::handle(event, |_: &str| None, &PresignedPut)
        .await
        .unwrap();
    assert_eq!(answer.status, "SUCCESS");
    // A URL S3 refuses (no such bucket): CloudFormation would never hear back, so the invocation
    // fails and says why.
    let event = custom_resource_event(
        "Delete",
        &s3_url(&format!("{}/stack/request", unique("no-such-bucket"))),
        json!({}),
    );
    let err = migrations::handle(event, |_: &str| None, &PresignedPut)
        .await
        .unwrap_err();
    assert!(err.contains("404"), "{err}");
}

/// A plain lower-case identifier for the test's own roles and databases.
fn unique_ident(prefix: &str) -> String {
    unique(prefix).replace('-', "_").to_lowercase()
}

/// The test server's administrative URL: its `postgres` database, without a login.
fn server_url(query: &str) -> String {
    let url = env("INVENTORY_DATABASE_URL").unwrap();
    let (server, _) = url.rsplit_once('/').unwrap();
    let server = server.replacen("postgres://postgres@", "postgres://", 1);
    format!("{server}/postgres{query}")
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    tokio::spawn(connection);
    client
}

#[tokio::test]
async fn the_bootstrap_creates_login_roles_and_owned_databases_once() {
    use stockroom::deploy::bootstrap::{Layout, bootstrap};
    let (owner, orders) = (unique_ident("owner"), unique_ident("orders"));
    let databases = [unique_ident("boot_a"), unique_ident("boot_b")];
    let databases: Vec<&str> = databases.iter().map(String::as_str).collect();
    let layout = Layout {
        owner: &owner,
        orders_role: &orders,
        databases: &databases,
    };
    let admin = connect(&server_url("?user=postgres")).await;
    // As migration inventory_db/0002 leaves it: the role exists but may not log in.
    admin
        .batch_execute(&format!("CREATE ROLE {orders} NOLOGIN"))
        .await
        .unwrap();
    assert_eq!(bootstrap(&admin, &layout).await.unwrap(), databases);
    for database in &databases {
        let row = admin
            .query_one(
                "SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = $1",
                &[database],
            )
            .await
            .unwrap();
        assert_eq!(
            row.get::<_, String>(0),
            owner,
            "{database} owned by the owner"
        );
    }
    for role in [&owner, &orders] {
        let row = admin
            .query_one(
                "SELECT rolcanlogin FROM pg_roles WHERE rolname = $1",
                &[role],
            )
            .await
            .unwrap();
        assert!(row.get::<_, bool>(0), "{role} may log in");
    }
    // The owner can build its schema in its database (PostgreSQL 15+ gives `public` to it).
    let as_owner = connect(
        &server_url(&format!("?user={owner}"))
            .replace("/postgres?", &format!("/{}?", databases[0])),
    )
    .await;
    as_owner
        .batch_execute("CREATE TABLE made_by_the_owner (id INT)")
        .await
        .unwrap();
    // A second run finds everything in place.
    assert!(bootstrap(&admin, &layout).await.unwrap().is_empty());
}

/// Stores `secret` in the local stack's Secrets Manager (moto); returns its ARN.
fn stored_secret(secret: &Value) -> String {
    let endpoint = env("AWS_ENDPOINT_URL_SQS").unwrap();
    let body = json!({"Name": unique("rds-master"), "SecretString": secret.to_string()});
    let mut answer = ureq::post(&format!("{endpoint}/"))
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", "secretsmanager.CreateSecret")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=local/20261201/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=0",
        )
        .send(body.to_string().as_bytes())
        .expect("secret stored");
    let answer: Value = serde_json::from_str(&answer.body_mut().read_to_string().unwrap()).unwrap();
    answer["ARN"].as_str().unwrap().to_owned()
}

/// The environment with a bootstrap configured: the administrator's login in `secret_arn`.
fn with_bootstrap(secret_arn: &str) -> impl Fn(&str) -> Option<String> + '_ {
    move |var| match var {
        "DATABASE_BOOTSTRAP_SECRET_ARN" => Some(secret_arn.to_owned()),
        "DATABASE_BOOTSTRAP_URL" => Some(server_url("?sslmode=require")),
        "AWS_ENDPOINT_URL_SECRETS_MANAGER" => env("AWS_ENDPOINT_URL_SQS"),
        _ => env(var),
    }
}

#[tokio::test]
async fn with_a_bootstrap_the_administrator_login_comes_from_secrets_manager() {
    // The local server trusts loopback, so any password passes; the user name is what counts.
    let arn = stored_secret(&json!({"username": "postgres", "password": "p@ss:w/rd"}));
    let kept = Kept::default();
    let event = custom_resource_event("Create", "https://s3.example/answer", json!({}));
    migrations::handle(event, with_bootstrap(&arn), &kept)
        .await
        .unwrap();
    let (_, answer) = kept.only();
    assert_eq!(answer["Status"], "SUCCESS", "{answer}");
    // The stack's databases exist already: none created, and the migrations ran as usual.
    assert_eq!(answer["Data"]["created_databases"], "[]", "{answer}");
    assert_eq!(answer["Data"]["order_db"], "[]", "{answer}");
    let owner = admin_query(
        "INVENTORY_DATABASE_URL",
        "SELECT rolcanlogin FROM pg_roles WHERE rolname = 'stockroom'",
    )
    .await;
    assert!(
        owner[0].get::<_, bool>(0),
        "the owner role was created and may log in"
    );

    // A secret that is not there fails the deploy, saying which and why.
    let kept = Kept::default();
    let missing = format!("{arn}-gone");
    let event = custom_resource_event("Create", "https://s3.example/answer", json!({}));
    migrations::handle(event, with_bootstrap(&missing), &kept)
        .await
        .unwrap();
    let (_, answer) = kept.only();
    assert_eq!(answer["Status"], "FAILED");
    let reason = answer["Reason"].as_str().unwrap();
    assert!(
        reason.contains(&missing) && reason.contains("ResourceNotFoundException"),
        "{reason}"
    );
}

/// A URL that cannot be used is a deployment mistake, not an outage: the deploy fails at once
/// with the reason, instead of retrying it for half a minute.
#[tokio::test]
async fn an_unusable_database_url_fails_the_deploy_at_once() {
    use std::time::{Duration, Instant};
    let kept = Kept::default();
    let unusable = |var: &str| {
        if var == "INVENTORY_DATABASE_URL" {
            Some("postgres://stockroom@127.0.0.1:1/inventory_db?sslmode=sometimes".to_owned())
        } else {
            env(var)
        }
    };
    let event = custom_resource_event("Create", "https://s3.example/answer", json!({}));
    let started = Instant::now();
    let retry = migrations::Retry {
        attempts: 5,
        first_pause: Duration::from_secs(10),
    };
    migrations::handle_retrying(event, unusable, &kept, retry)
        .await
        .unwrap();
    let (_, answer) = kept.only();
    assert_eq!(answer["Status"], "FAILED");
    let reason = answer["Reason"].as_str().unwrap();
    assert!(reason.contains("invalid database URL"), "{reason}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "retried: {reason}"
    );
}
