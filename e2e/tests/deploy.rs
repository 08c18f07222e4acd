//! What template.yaml deploys, checked against the code: every function gets the environment its
//! entry point reads, and the reserved concurrency keeps the database connections in budget.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use common::template::{document, functions};
use serde_yaml::Value as Yaml;

mod common;

fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The variables a function's template entry sets (its own, not the Globals).
fn env_of(properties: &Yaml) -> BTreeSet<String> {
    properties["Environment"]["Variables"]
        .as_mapping()
        .map(|vars| {
            vars.keys()
                .map(|k| k.as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The variables an entry point reads, from what it builds: each constructor below reads a fixed
/// set (see its `from_env`).
fn env_read_by(binary: &str) -> BTreeSet<String> {
    let main =
        std::fs::read_to_string(repo().join(format!("functions/{binary}/src/main.rs"))).unwrap();
    let reads: &[(&str, &[&str])] = &[
        ("INVENTORY_DATABASE_URL", &["INVENTORY_DATABASE_URL"]),
        ("NOTIFICATION_DATABASE_URL", &["NOTIFICATION_DATABASE_URL"]),
        (
            "OrderContext::from_env",
            &["ORDER_DATABASE_URL", "STOCK_RESERVATION_DATABASE_URL"],
        ),
        ("ORDER_DATABASE_URL", &["ORDER_DATABASE_URL"]),
        (
            "Outboxes::from_env",
            &["INVENTORY_DATABASE_URL", "ORDER_DATABASE_URL"],
        ),
        ("KafkaPublisher", &["KAFKA_BROKERS"]),
        (
            "migrations::handle",
            &[
                "INVENTORY_DATABASE_URL",
                "ORDER_DATABASE_URL",
                "NOTIFICATION_DATABASE_URL",
            ],
        ),
        (
            "SqsQueues::from_env",
            &["ALERTS_QUEUE_URL", "DEAD_LETTER_QUEUE_URL"],
        ),
    ];
    reads
        .iter()
        .filter(|(marker, _)| main.contains(marker))
        .flat_map(|(_, vars)| vars.iter().map(|v| (*v).to_owned()))
        .collect()
}

#[test]
fn every_function_gets_exactly_the_environment_its_entry_point_reads() {
    let doc = document();
    // Read through the shared plumbing by every function; the Globals set them once.
    let global = env_of(&doc["Globals"]["Function"]);
    for var in [
        "PUSHGATEWAY_URL",
        "AUTH_MODE",
        "AUTH_ADMIN_SCOPE",
        "AUTH_USER_ID_CLAIM",
    ] {
        assert!(global.contains(var), "Globals set {var}");
    }
    for (binary, properties) in functions() {
        let mut set = env_of(&properties);
        // The reconciler's own knob has a default; the template sets it to say what it is.
        set.remove("ORDER_PENDING_TIMEOUT_SECONDS");
        assert_eq!(
            set,
            env_read_by(&binary),
            "{binary}: template environment vs main.rs"
        );
    }
}

/// A function's reserved concurrency when reservations are on (`!If [Reserve, N, …]`).
fn reserved(value: &Yaml) -> Option<u64> {
    match value {
        Yaml::Tagged(tagged) if tagged.tag == "If" => tagged.value[1].as_u64(),
        _ => None,
    }
}

#[test]
fn reserved_concurrency_keeps_database_connections_within_budget() {
    let doc = document();
    let default = reserved(&doc["Globals"]["Function"]["ReservedConcurrentExecutions"])
        .expect("a default reservation in Globals");
    let mut total = 0;
    // One connection per environment and database URL it holds; all three databases live on
    // one PostgreSQL instance, so they share its max_connections.
    let mut connections: BTreeMap<String, u64> = BTreeMap::new();
    for (binary, properties) in functions() {
        let n = reserved(&properties["ReservedConcurrentExecutions"]).unwrap_or(default);
        total += n;
        for var in env_read_by(&binary)
            .iter()
            .filter(|v| v.ends_with("_DATABASE_URL"))
        {
            *connections.entry(var.clone()).or_default() += n;
        }
    }
    let all: u64 = connections.values().sum();
    // docs/deploy.md: without RDS Proxy's multiplexing, a db.t4g.small allows about 225
    // connections; 25 stay for migrations and people.
    assert!(
        all <= 200,
        "{all} connections at full concurrency: {connections:?}"
    );
    let description = doc["Parameters"]["ReserveConcurrency"]["Description"]
        .as_str()
        .unwrap();
    assert!(
        description.contains(&format!("total {total} "))
            && description.contains(&format!("at least {}", total + 100)),
        "ReserveConcurrency's description states the total ({total}): {description}"
    );
    let guide = std::fs::read_to_string(repo().join("docs/deploy.md")).unwrap();
    assert!(
        guide.contains(&format!("| **total** | **{total}** | **{all}** |")),
        "docs/deploy.md's budget table states {total} reserved, {all} connections"
    );
}
