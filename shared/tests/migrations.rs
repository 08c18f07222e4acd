//! The `migrate` function through real CloudFormation custom-resource events: migrations applied
//! to real databases, the answer CloudFormation would read, and the PUT of that answer to an S3
//! endpoint (moto, the local stack's AWS endpoint).

use std::sync::Mutex;

use serde_json::{Value, json};
use stockroom::handlers::migrations::{self, PresignedPut, Respond};
use stockroom_test_support::handler::{admin_query, custom_resource_event, unique};

/// Keeps what would have been sent, for the tests that read the answer itself.
#[derive(Default)]
struct Kept(Mutex<Vec<(String, Value)>>);

impl Respond for Kept {
    async fn respond(&self, url: &str, body: String) -> Result<(), String> {
        let body = serde_json::from_str(&body).map_err(|e| e.to_string())?;
        self.0.lock().unwrap().push((url.to_owned(), body));
        Ok(())
    }
}

impl Kept {
    fn only(&self) -> (String, Value) {
        let sent = self.0.lock().unwrap();
        assert_eq!(sent.len(), 1, "one answer per request: {sent:?}");
        sent[0].clone()
    }
}

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
    assert_eq!(
        answer["Data"]["inventory_db"], "[1, 2, 3, 4, 5, 6]",
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
