//! The CloudWatch side of the metrics, offline: a deploy with the template's defaults writes EMF
//! lines into the namespace its dashboard and alarms read; they read only metrics the code writes
//! (e2e/tests/emf.rs checks their dimensions against what the functions write after real
//! traffic); and each of the seven Prometheus alerts has its alarm.

use std::collections::BTreeSet;

use common::template::{METRICS_NAMESPACE, cloudwatch_metric_refs, document, functions, intrinsic};
use serde_yaml::Value as Yaml;
use stockroom::telemetry::{self, Choice, emf::ROLLUPS};

mod common;

/// The argument of a `!Sub` or `!Ref` etc. named `function`, if `value` is that call.
fn argument<'a>(value: &'a Yaml, function: &str) -> &'a Yaml {
    match intrinsic(value) {
        Some((name, argument)) if name == function => argument,
        other => panic!("expected {function}, found {other:?}"),
    }
}

#[test]
fn a_default_deploy_writes_emf_into_the_namespace_its_dashboard_and_alarms_read() {
    let doc = document();
    let env = &doc["Globals"]["Function"]["Environment"]["Variables"];
    let namespace = argument(&env[telemetry::METRICS_NAMESPACE], "Fn::Sub");
    assert_eq!(namespace.as_str(), Some(METRICS_NAMESPACE));

    // METRICS_BACKEND: !If [HasPushgateway, pushgateway, cloudwatch], with HasPushgateway true
    // when PushgatewayUrl is not empty.
    let choice = argument(&env[telemetry::METRICS_BACKEND], "Fn::If");
    let condition = choice[0].as_str().unwrap();
    let test = argument(&doc["Conditions"][condition], "Fn::Not");
    let equals = argument(&test[0], "Fn::Equals");
    assert_eq!(argument(&equals[0], "Ref").as_str(), Some("PushgatewayUrl"));
    assert_eq!(equals[1].as_str(), Some(""));
    let default = doc["Parameters"]["PushgatewayUrl"]["Default"]
        .as_str()
        .unwrap();
    let backend = if default.is_empty() {
        &choice[2]
    } else {
        &choice[1]
    };
    let with_url = |url: &str| {
        let backend = (if url.is_empty() {
            &choice[2]
        } else {
            &choice[1]
        })
        .as_str()
        .unwrap();
        telemetry::choose(|name| match name {
            telemetry::METRICS_BACKEND => Some(backend.to_owned()),
            telemetry::PUSHGATEWAY_URL => Some(url.to_owned()),
            _ => None,
        })
    };
    assert_eq!(backend.as_str(), Some("cloudwatch"), "the default deploy");
    assert_eq!(with_url(default), Ok(Choice::CloudWatch));
    assert_eq!(
        with_url("http://10.0.0.5:9091"),
        Ok(Choice::Pushgateway("http://10.0.0.5:9091".into()))
    );
}

/// Every `.rs` file of the code that records metrics, as one text.
fn metric_sources() -> String {
    let mut text = String::new();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared");
    let mut dirs = vec![std::path::PathBuf::from(root)];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() && !["tests", "target", "migrations"].contains(&name.as_str()) {
                dirs.push(path);
            } else if name.ends_with(".rs") {
                text.push_str(&std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    text
}

#[test]
fn the_dashboard_and_the_alarms_read_only_metrics_the_code_writes() {
    let doc = document();
    let refs = cloudwatch_metric_refs(&doc);
    assert!(
        refs.len() >= 20,
        "only {} metric references: {refs:#?}",
        refs.len()
    );
    let sources = metric_sources();
    let binaries: BTreeSet<String> = functions().into_iter().map(|(binary, _)| binary).collect();
    for r in &refs {
        assert!(
            sources.contains(&format!("\"{}\"", r.name)),
            "{}: no code writes {}",
            r.place,
            r.name
        );
        if r.dimensions.is_empty() {
            assert!(
                ROLLUPS.contains(&r.name.as_str()),
                "{}: {} has no rollup without dimensions (telemetry::emf::ROLLUPS)",
                r.place,
                r.name
            );
        } else {
            assert!(
                r.dimensions.contains("function"),
                "{}: every metric's dimensions start with function: {r:?}",
                r.place
            );
        }
        for (key, value) in &r.values {
            if key == "function" {
                assert!(binaries.contains(value), "{}: no function {value}", r.place);
            }
        }
    }
    let dashboard: BTreeSet<&str> = refs
        .iter()
        .filter(|r| r.place.starts_with("MetricsDashboard"))
        .map(|r| r.name.as_str())
        .collect();
    for shown in [
        "inventory_http_requests_total",
        "order_http_request_duration_seconds",
        "order_orders_total",
        "inventory_stock_levels",
        "notification_notifications_sent_total",
        "stockroom_outbox_oldest_event_age_seconds",
    ] {
        assert!(dashboard.contains(shown), "the dashboard shows {shown}");
    }
}

#[test]
fn each_prometheus_alert_has_its_cloudwatch_alarm() {
    let rules = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../monitoring/rules/stockroom.rules.yml"
    ))
    .unwrap();
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- alert: "))
        .collect();
    assert_eq!(alerts.len(), 7, "{alerts:?}");
    let doc = document();
    let descriptions: Vec<String> = doc["Resources"]
        .as_mapping()
        .unwrap()
        .values()
        .filter(|r| r["Type"] == "AWS::CloudWatch::Alarm")
        .filter_map(|r| {
            r["Properties"]["AlarmDescription"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    for alert in alerts {
        let alarms = descriptions
            .iter()
            .filter(|d| d.starts_with(&format!("{alert} - ")))
            .count();
        assert_eq!(alarms, 1, "one alarm described as \"{alert} - …\"");
    }
}

/// With a pushgateway no EMF metric arrives: what reads them exists only when the functions write
/// them (an alarm on a silent metric, `ScheduledSilentAlarm`, would fire for ever).
#[test]
fn what_reads_emf_metrics_exists_only_when_the_functions_write_them() {
    let doc = document();
    let condition = argument(&doc["Conditions"]["CloudWatchMetrics"], "Fn::Equals");
    assert_eq!(
        argument(&condition[0], "Ref").as_str(),
        Some("PushgatewayUrl")
    );
    assert_eq!(condition[1].as_str(), Some(""));
    let readers: BTreeSet<String> = cloudwatch_metric_refs(&doc)
        .into_iter()
        .map(|r| r.place.split(':').next().unwrap().to_owned())
        .collect();
    assert!(readers.len() >= 7, "{readers:?}");
    for reader in readers {
        assert_eq!(
            doc["Resources"][reader.as_str()]["Condition"].as_str(),
            Some("CloudWatchMetrics"),
            "{reader}"
        );
    }
    let output = &doc["Outputs"]["MetricsDashboard"];
    assert_eq!(output["Condition"].as_str(), Some("CloudWatchMetrics"));
}
