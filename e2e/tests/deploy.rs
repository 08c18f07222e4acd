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
            "RelaySettings::from_env",
            &["RELAY_RUN_SECONDS", "RELAY_POLL_MILLISECONDS"],
        ),
        (
            "migrations::handle",
            &[
                "INVENTORY_DATABASE_URL",
                "ORDER_DATABASE_URL",
                "NOTIFICATION_DATABASE_URL",
                "DATABASE_BOOTSTRAP_SECRET_ARN",
                "DATABASE_BOOTSTRAP_URL",
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

/// A nested stack's template, parsed.
fn nested(path: &str) -> Yaml {
    serde_yaml::from_str(&std::fs::read_to_string(repo().join(path)).unwrap()).unwrap()
}

/// The items of `!If [condition, then, else]`, if `value` is one.
fn if_of(value: &Yaml) -> Option<(String, Yaml, Yaml)> {
    match value {
        Yaml::Tagged(tagged) if tagged.tag == "If" => {
            let items = tagged.value.as_sequence()?;
            Some((
                items[0].as_str()?.to_owned(),
                items[1].clone(),
                items[2].clone(),
            ))
        }
        _ => None,
    }
}

fn tagged(value: &Yaml, tag: &str) -> Option<String> {
    match value {
        Yaml::Tagged(t) if t.tag == tag => t.value.as_str().map(str::to_owned),
        _ => None,
    }
}

/// With no database brought, every database URL a function gets is the created proxy's, as the
/// user whose login policy the function has; with one brought, the parameter.
#[test]
fn with_the_created_database_every_function_logs_in_through_the_proxy_with_iam() {
    let database = nested("deploy/database.yaml");
    let doc = document();
    assert_eq!(
        doc["Resources"]["Database"]["Properties"]["Location"],
        "deploy/database.yaml"
    );
    let url_vars = [
        (
            "INVENTORY_DATABASE_URL",
            "InventoryDatabaseUrl",
            "DatabaseOwnerLogin",
            "stockroom",
        ),
        (
            "ORDER_DATABASE_URL",
            "OrderDatabaseUrl",
            "DatabaseOwnerLogin",
            "stockroom",
        ),
        (
            "NOTIFICATION_DATABASE_URL",
            "NotificationDatabaseUrl",
            "DatabaseOwnerLogin",
            "stockroom",
        ),
        (
            "STOCK_RESERVATION_DATABASE_URL",
            "StockReservationDatabaseUrl",
            "StockReservationLogin",
            "stockroom_orders",
        ),
    ];
    for (_, output, _, user) in url_vars {
        let url = tagged(&database["Outputs"][output]["Value"], "Sub").expect(output);
        assert!(
            url.starts_with(&format!("postgres://{user}@${{Proxy.Endpoint}}:5432/"))
                && url.ends_with("?sslmode=verify-full&sslrootcert=system&auth=iam"),
            "{output}: {url}"
        );
    }
    for policy in ["DatabaseOwnerLogin", "StockReservationLogin"] {
        let resource =
            &doc["Resources"][policy]["Properties"]["PolicyDocument"]["Statement"][0]["Resource"];
        let user = if policy == "DatabaseOwnerLogin" {
            "stockroom"
        } else {
            "stockroom_orders"
        };
        assert!(
            tagged(resource, "Sub").is_some_and(|arn| arn.ends_with(&format!(
                "dbuser:${{Database.Outputs.ProxyResourceId}}/{user}"
            ))),
            "{policy}: {resource:?}"
        );
    }
    for (binary, properties) in functions() {
        let vars = &properties["Environment"]["Variables"];
        let policies: Vec<String> = properties["Policies"]
            .as_sequence()
            .map(|list| {
                list.iter()
                    .filter_map(if_of)
                    .filter(|(condition, _, _)| condition == "CreateDatabase")
                    .filter_map(|(_, then, _)| tagged(&then, "Ref"))
                    .collect()
            })
            .unwrap_or_default();
        for (var, parameter, policy, _) in url_vars {
            let value = &vars[var];
            if value.is_null() {
                continue;
            }
            let (condition, created, brought) =
                if_of(value).unwrap_or_else(|| panic!("{binary}: {var} is not an !If: {value:?}"));
            assert_eq!(condition, "CreateDatabase", "{binary}: {var}");
            assert_eq!(
                tagged(&created, "GetAtt").as_deref(),
                Some(format!("Database.Outputs.{parameter}").as_str()),
                "{binary}: {var}"
            );
            assert_eq!(
                tagged(&brought, "Ref").as_deref(),
                Some(parameter),
                "{binary}: {var}"
            );
            assert!(
                policies.iter().any(|p| p == policy),
                "{binary} reads {var} but may not log in as its user ({policy}): {policies:?}"
            );
        }
    }
}

/// The nested stacks' outputs the parent reads exist.
#[test]
fn every_nested_output_the_template_reads_exists() {
    let text = std::fs::read_to_string(repo().join("template.yaml")).unwrap();
    for (stack, path) in [
        ("Network", "deploy/network.yaml"),
        ("Database", "deploy/database.yaml"),
    ] {
        let outputs = nested(path)["Outputs"].clone();
        let prefix = format!("{stack}.Outputs.");
        let read: BTreeSet<&str> = text
            .match_indices(&prefix)
            .map(|(at, _)| {
                let rest = &text[at + prefix.len()..];
                let end = rest
                    .find(|c: char| !c.is_ascii_alphanumeric())
                    .unwrap_or(rest.len());
                &rest[..end]
            })
            .collect();
        assert!(!read.is_empty(), "the template reads {stack}'s outputs");
        for output in read {
            assert!(!outputs[output].is_null(), "{path} has no output {output}");
        }
    }
}

/// Every publisher gets the brokers from KafkaTopics (so after its topics exist) and may write to
/// them; KafkaTopics creates exactly the topics the code publishes to, with the brokers
/// KafkaLookup found, and the consumers' mappings wait for it.
#[test]
fn every_publisher_gets_its_brokers_from_the_kafka_setup() {
    let doc = document();
    let topics: BTreeSet<&str> = doc["Resources"]["KafkaTopics"]["Properties"]["Topics"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(
        topics,
        BTreeSet::from([
            stockroom::events::INVENTORY_TOPIC,
            stockroom::events::ORDER_TOPIC
        ])
    );
    for trigger in ["NotificationsInventoryTrigger", "NotificationsOrderTrigger"] {
        assert_eq!(
            doc["Resources"][trigger]["DependsOn"], "KafkaTopics",
            "{trigger}"
        );
    }
    let mut publishers = 0;
    for (binary, properties) in functions() {
        let brokers = &properties["Environment"]["Variables"]["KAFKA_BROKERS"];
        if brokers.is_null() {
            continue;
        }
        publishers += 1;
        assert_eq!(
            tagged(brokers, "GetAtt").as_deref(),
            Some("KafkaTopics.BootstrapBrokers"),
            "{binary}"
        );
        let policies = properties["Policies"].as_sequence().unwrap();
        assert!(
            policies
                .iter()
                .any(|p| tagged(p, "Ref").as_deref() == Some("KafkaProducerPolicy")),
            "{binary} publishes but may not write: {policies:?}"
        );
    }
    assert_eq!(publishers, 1, "the relay alone publishes");
    assert_eq!(
        tagged(
            &doc["Resources"]["KafkaTopics"]["Properties"]["BootstrapBrokers"],
            "GetAtt"
        )
        .as_deref(),
        Some("KafkaLookup.BootstrapBrokers")
    );
}
