//! Every function of template.yaml started as Lambda would start it with the template's defaults
//! (the environment its Globals and its own entry give, parameters at their defaults:
//! `METRICS_BACKEND=cloudwatch`, `PUSHGATEWAY_URL` empty, `AUTH_MODE=jwt`, …) and given one event
//! of the kind AWS sends it must answer that event: no init failure, no failed invocation. A
//! setting whose default a function cannot start with (an empty pushgateway that failed two
//! schedules' init on every run) fails here, offline, instead of in an account.
//!
//! What the stack would create is the local test stack's: the databases, the broker (plaintext,
//! where MSK takes TLS with IAM), the queues. The binaries are those `localstack/test` builds
//! (`cargo build --workspace --bins`), run under a Runtime API of our own
//! (`stockroom_test_support::runtime_api`), with nothing of this process's environment.

use std::collections::BTreeMap;
use std::time::Duration;

use common::template::{document, intrinsic, scalar_text};
use serde_json::{Value, json};
use serde_yaml::Value as Yaml;
use stockroom_test_support::handler::{Event, SCHEDULED_EVENT};
use stockroom_test_support::runtime_api::{Posted, Run};

mod common;

/// Variables whose value the stack creates (or the operator brings): the local stack's stand-ins.
const STAND_INS: &[&str] = &[
    "INVENTORY_DATABASE_URL",
    "ORDER_DATABASE_URL",
    "STOCK_RESERVATION_DATABASE_URL",
    "NOTIFICATION_DATABASE_URL",
    "KAFKA_BROKERS",
    "ALERTS_QUEUE_URL",
    "DEAD_LETTER_QUEUE_URL",
];

/// What Lambda itself gives every function, and the local SQS endpoint in place of AWS's.
const FROM_LAMBDA: &[&str] = &[
    "AWS_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_ENDPOINT_URL_SQS",
];

fn local(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| panic!("{var} is not set: run with localstack/test"))
}

/// The argument of `value` if it calls the intrinsic `function` (`Ref`, `Fn::If`, …).
fn call<'a>(value: &'a Yaml, function: &str) -> Option<&'a Yaml> {
    intrinsic(value)
        .filter(|(name, _)| name == function)
        .map(|(_, argument)| argument)
}

/// A template value at the parameters' defaults, as text; `None` for `AWS::NoValue`. With the
/// database brought (the local one), `!If [CreateDatabase, …]` takes its second branch.
fn resolve(doc: &Yaml, value: &Yaml) -> Option<String> {
    if let Some(text) = scalar_text(value) {
        return Some(text);
    }
    if let Some(name) = call(value, "Ref").and_then(Yaml::as_str) {
        if name == "AWS::NoValue" {
            return None;
        }
        let default = &doc["Parameters"][name]["Default"];
        assert!(
            !default.is_null(),
            "!Ref {name}: not a parameter with a default"
        );
        return resolve(doc, default);
    }
    if let Some(items) = call(value, "Fn::If").and_then(Yaml::as_sequence) {
        let name = items[0].as_str().unwrap();
        // The database is brought (the local one); the other conditions at the defaults.
        let holds = name != "CreateDatabase" && condition(doc, &doc["Conditions"][name]);
        return resolve(doc, &items[if holds { 1 } else { 2 }]);
    }
    if let Some(text) = call(value, "Fn::Sub").and_then(Yaml::as_str) {
        return Some(text.replace("${AWS::StackName}", "stockroom"));
    }
    panic!("no local meaning for {value:?}: teach template_defaults.rs")
}

/// Whether a condition (`!Equals`, `!Not`) holds at the parameters' defaults.
fn condition(doc: &Yaml, value: &Yaml) -> bool {
    if let Some(items) = call(value, "Fn::Equals").and_then(Yaml::as_sequence) {
        return resolve(doc, &items[0]) == resolve(doc, &items[1]);
    }
    if let Some(items) = call(value, "Fn::Not").and_then(Yaml::as_sequence) {
        return !condition(doc, &items[0]);
    }
    panic!("no local meaning for the condition {value:?}: teach template_defaults.rs")
}

/// The environment Lambda would give `resource` (a function of the template).
fn environment(doc: &Yaml, resource: &Yaml) -> Vec<(String, String)> {
    let mut vars = BTreeMap::new();
    let mut entries = Vec::new();
    if resource["Type"] == "AWS::Serverless::Function" {
        entries.push(&doc["Globals"]["Function"]["Environment"]["Variables"]);
    }
    entries.push(&resource["Properties"]["Environment"]["Variables"]);
    for entry in entries.into_iter().filter_map(Yaml::as_mapping) {
        for (name, value) in entry {
            let name = name.as_str().unwrap().to_owned();
            let value = if STAND_INS.contains(&name.as_str()) {
                Some(local(&name))
            } else {
                resolve(doc, value)
            };
            match value {
                Some(value) => vars.insert(name, value),
                None => vars.remove(&name),
            };
        }
    }
    // The local broker speaks plaintext; MSK's TLS with IAM is proven in shared/kafka's tests.
    vars.insert("KAFKA_SECURITY_PROTOCOL".into(), "plaintext".into());
    vars.remove("KAFKA_SASL_MECHANISM");
    // `LoggingConfig: LogFormat: JSON`, as Lambda passes it on.
    vars.insert("AWS_LAMBDA_LOG_FORMAT".into(), "JSON".into());
    for var in FROM_LAMBDA {
        vars.insert((*var).to_owned(), local(var));
    }
    vars.into_iter().collect()
}

/// The custom resource whose `ServiceToken` is `function`'s, if any.
fn custom_resource_of<'a>(doc: &'a Yaml, function: &str) -> Option<&'a Yaml> {
    doc["Resources"].as_mapping()?.values().find(|resource| {
        let token = &resource["Properties"]["ServiceToken"];
        let target = call(token, "Fn::GetAtt")
            .or_else(|| call(token, "Ref"))
            .and_then(Yaml::as_str)
            .unwrap_or_default();
        target.split('.').next() == Some(function)
    })
}

/// What a function is given: an HTTP API request for its first route (no token), a scheduled
/// event, a custom resource's request (its answer PUT back to `answer_url`), or an MSK batch.
fn event_for(doc: &Yaml, logical_id: &str, resource: &Yaml, answer_url: &str) -> String {
    if let Some(events) = resource["Properties"]["Events"].as_mapping() {
        let event = events.values().next().unwrap();
        if event["Type"] == "Schedule" {
            return SCHEDULED_EVENT.to_owned();
        }
        assert_eq!(
            event["Type"], "HttpApi",
            "{logical_id}: an event kind to teach"
        );
        let method = event["Properties"]["Method"].as_str().unwrap_or("GET");
        let route = event["Properties"]["Path"]
            .as_str()
            .unwrap_or("/not-a-route");
        let path = route.replace("{id}", "1").replace("{user_id}", "1");
        let mut request = Event::new(method, route, &path);
        for param in ["id", "user_id"] {
            if route.contains(&format!("{{{param}}}")) {
                request = request.path_param(param, "1");
            }
        }
        return request.event_json();
    }
    if let Some(custom) = custom_resource_of(doc, logical_id) {
        let mut properties = serde_json::Map::new();
        for (name, value) in custom["Properties"].as_mapping().unwrap() {
            let name = name.as_str().unwrap();
            let value = match (name, value) {
                ("ServiceToken", _) => continue,
                // What KafkaLookup answers, and a cluster brought with its brokers.
                ("BootstrapBrokers", _) => json!(local("KAFKA_BROKERS")),
                (_, Yaml::Sequence(items)) => json!(
                    items
                        .iter()
                        .filter_map(|item| resolve(doc, item))
                        .collect::<Vec<_>>()
                ),
                // A literal or a parameter as it is; a resource's ARN or version, any text.
                (_, Yaml::String(_) | Yaml::Number(_) | Yaml::Bool(_)) => {
                    json!(resolve(doc, value))
                }
                (_, value) => json!(resolve_parameter(doc, value).unwrap_or("local".into())),
            };
            properties.insert(name.to_owned(), value);
        }
        let mut request: Value = serde_json::from_str(include_str!(
            "../../test-support/fixtures/cloudformation-create-event.json"
        ))
        .unwrap();
        request["ResponseURL"] = json!(answer_url);
        request["ResourceProperties"] = Value::Object(properties);
        return request.to_string();
    }
    // The notifications consumer: fed by the MSK event source mappings, here an empty batch.
    let mut batch: Value = serde_json::from_str(include_str!(
        "../../test-support/fixtures/msk-kafka-event.json"
    ))
    .unwrap();
    batch["records"] = json!({});
    batch.to_string()
}

/// `Some(default)` if `value` is `!Ref` of a parameter.
fn resolve_parameter(doc: &Yaml, value: &Yaml) -> Option<String> {
    let name = call(value, "Ref")?.as_str()?;
    doc["Parameters"].get(name)?;
    resolve(doc, value)
}

#[test]
fn every_function_answers_its_event_with_the_templates_default_environment() {
    let doc = document();
    let mut checked = Vec::new();
    for (logical_id, resource) in doc["Resources"].as_mapping().unwrap() {
        let Some(name) = resource["Metadata"]["BuildProperties"]["Binary"].as_str() else {
            continue;
        };
        let logical_id = logical_id.as_str().unwrap();
        let env = environment(&doc, resource);
        let mut run = Run::start(
            &common::binary(name),
            name,
            |api| event_for(&doc, logical_id, resource, &format!("http://{api}/answer")),
            &env,
            true,
        );

        match run.wait(Duration::from_secs(60)) {
            Some(Posted::Response(_, body)) => {
                let status = serde_json::from_str::<Value>(&body)
                    .ok()
                    .and_then(|answer| answer["statusCode"].as_u64());
                assert!(
                    status.is_none_or(|status| status < 500),
                    "{name} answered {body}"
                );
            }
            other => panic!("{name} with the template's defaults: {other:?}\nenvironment: {env:?}"),
        }
        if custom_resource_of(&doc, logical_id).is_some() {
            let answers = run.other_requests();
            let [(method, _, answer)] = &answers[..] else {
                panic!("{name}: one answer to CloudFormation, not {answers:?}");
            };
            assert_eq!(method, "PUT");
            let answer: Value = serde_json::from_str(answer).unwrap();
            assert_eq!(answer["Status"], "SUCCESS", "{name} answered {answer}");
        }
        checked.push(name.to_owned());
    }
    for must in [
        "stock-levels",
        "metrics-janitor",
        "migrate",
        "notifications",
        "products-create",
    ] {
        assert!(
            checked.iter().any(|name| name == must),
            "{must} checked: {checked:?}"
        );
    }
}
