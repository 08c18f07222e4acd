//! What the templates' resources do on the first deploy and at the end: a failed first deploy
//! rolls back to nothing, a stack delete keeps the data without keeping anything that needs what
//! it deletes, every security group says its egress, and every name fits whatever the stack's
//! name. Offline: they read the YAML (`STOCKROOM_TEMPLATES_DIR` reads another tree's).

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::template::{all_templates, each_node, intrinsic};
use serde_yaml::Value as Yaml;

/// The two ways resources go away without anyone asking for one in particular.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Situation {
    /// The rollback of a failed stack creation.
    FailedCreate,
    /// `sam delete` / `aws cloudformation delete-stack`.
    StackDelete,
}

fn resources(doc: &Yaml) -> Vec<(String, &Yaml)> {
    doc["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .map(|(name, resource)| (name.as_str().unwrap().to_owned(), resource))
        .collect()
}

fn is_literal_true(value: &Yaml) -> bool {
    value.as_bool() == Some(true) || value.as_str() == Some("true")
}

/// A resource CloudFormation cannot delete while it is protected (RDS refuses).
fn protected(resource: &Yaml) -> bool {
    is_literal_true(&resource["Properties"]["DeletionProtection"])
}

/// Whether `resource` outlives `situation`: its DeletionPolicy keeps it, or its deletion fails.
fn kept(resource: &Yaml, situation: Situation) -> bool {
    protected(resource)
        || match resource["DeletionPolicy"].as_str() {
            Some("Retain") => true,
            Some("RetainExceptOnCreate") => situation == Situation::StackDelete,
            _ => false,
        }
}

/// The names `${X}` and `${X.Y}` in an `Fn::Sub` string refer to (`X`); `${!X}` is literal.
fn sub_names(template: &str) -> Vec<String> {
    template
        .split("${")
        .skip(1)
        .filter(|rest| !rest.starts_with('!'))
        .filter_map(|rest| rest.split('}').next())
        .map(|name| name.split('.').next().unwrap().trim().to_owned())
        .collect()
}

/// The names an intrinsic refers to: `Ref`, `Fn::GetAtt`, `Fn::Sub` (without its own variables).
fn referred_names(node: &Yaml) -> Vec<String> {
    let Some((function, argument)) = intrinsic(node) else {
        return Vec::new();
    };
    match (function.as_str(), argument) {
        ("Ref", Yaml::String(name)) => vec![name.clone()],
        ("Fn::GetAtt", Yaml::String(path)) => vec![path.split('.').next().unwrap().to_owned()],
        ("Fn::GetAtt", Yaml::Sequence(items)) => {
            items[0].as_str().map(str::to_owned).into_iter().collect()
        }
        ("Fn::Sub", Yaml::String(template)) => sub_names(template),
        ("Fn::Sub", Yaml::Sequence(items)) => {
            let own = items.get(1).and_then(Yaml::as_mapping);
            sub_names(items[0].as_str().unwrap())
                .into_iter()
                .filter(|name| !own.is_some_and(|vars| vars.contains_key(name.as_str())))
                .collect()
        }
        _ => Vec::new(),
    }
}

/// The resources of the same template `resource` needs, at any depth of its properties, and by
/// DependsOn.
fn dependencies(resource: &Yaml, names: &BTreeSet<String>) -> BTreeSet<String> {
    let mut needs = BTreeSet::new();
    match &resource["DependsOn"] {
        Yaml::String(name) => {
            needs.insert(name.clone());
        }
        Yaml::Sequence(items) => {
            needs.extend(items.iter().filter_map(|i| i.as_str().map(str::to_owned)))
        }
        _ => {}
    }
    each_node(&resource["Properties"], &mut |node| {
        needs.extend(referred_names(node));
    });
    needs.retain(|name| names.contains(name));
    needs
}

/// Every kept resource that needs one deleted in the same situation, as a sentence each.
/// Custom resources are left out: they leave nothing behind, whatever their policy.
fn kept_needing_deleted(path: &str, doc: &Yaml, situation: Situation) -> Vec<String> {
    let all = resources(doc);
    let names: BTreeSet<String> = all.iter().map(|(name, _)| name.clone()).collect();
    let by_name: BTreeMap<&str, &Yaml> = all.iter().map(|(n, r)| (n.as_str(), *r)).collect();
    let mut problems = Vec::new();
    for (name, resource) in &all {
        let custom = resource["Type"].as_str().unwrap().starts_with("Custom::");
        if custom || !kept(resource, situation) {
            continue;
        }
        for need in dependencies(resource, &names) {
            if !kept(by_name[need.as_str()], situation) {
                problems.push(format!(
                    "{path}, {situation:?}: {name} is kept but needs {need}, which is deleted"
                ));
            }
        }
    }
    problems
}

#[test]
fn neither_a_failed_first_deploy_nor_a_delete_keeps_what_needs_what_it_deletes() {
    let mut problems = Vec::new();
    for (path, doc) in all_templates() {
        for situation in [Situation::FailedCreate, Situation::StackDelete] {
            problems.extend(kept_needing_deleted(&path, &doc, situation));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_failed_first_deploy_keeps_no_database_and_a_delete_keeps_it_with_its_network() {
    let (_, parent) = all_templates().into_iter().next().unwrap();
    let resources = &parent["Resources"];
    for stack in ["Database", "Network"] {
        assert!(!kept(&resources[stack], Situation::FailedCreate), "{stack}");
        assert!(kept(&resources[stack], Situation::StackDelete), "{stack}");
    }
}

#[test]
fn deletion_protection_is_never_fixed_on() {
    let mut protected_resources = Vec::new();
    for (path, doc) in all_templates() {
        for (name, resource) in resources(&doc) {
            if protected(resource) {
                protected_resources.push(format!("{path}: {name}"));
            }
        }
    }
    assert!(
        protected_resources.is_empty(),
        "a failed first deploy could not roll these back (DeletionProtection: true); make it a \
         parameter, off by default: {protected_resources:?}"
    );
    // The parameter that turns it on after the first deploy, off by default, reaches the server.
    let parent = template("template.yaml");
    let parameter = &parent["Parameters"]["DatabaseDeletionProtection"];
    assert_eq!(parameter["Default"], "false");
    let passed = &parent["Resources"]["Database"]["Properties"]["Parameters"]["DeletionProtection"];
    assert_eq!(
        referred_names(passed),
        ["DatabaseDeletionProtection"],
        "{passed:?}"
    );
}

/// EC2 gives a security group created without egress rules an allow-all one, which separate
/// `AWS::EC2::SecurityGroupEgress` resources add to rather than replace.
#[test]
fn every_security_group_declares_its_egress_inline() {
    let mut open = Vec::new();
    for (path, doc) in all_templates() {
        for (name, resource) in resources(&doc) {
            if resource["Type"] != "AWS::EC2::SecurityGroup" {
                continue;
            }
            let egress = &resource["Properties"]["SecurityGroupEgress"];
            if egress.as_sequence().is_none_or(|rules| rules.is_empty()) {
                open.push(format!("{path}: {name}"));
            }
        }
    }
    assert!(
        open.is_empty(),
        "these groups keep EC2's allow-all egress: {open:?}"
    );
}

fn mentions_stack_name(value: &Yaml) -> bool {
    let mut found = false;
    each_node(value, &mut |node| {
        found |= referred_names(node).iter().any(|n| n == "AWS::StackName");
    });
    found
}

/// Properties whose limit no stack name reaches (stack names end at 128 characters): log group
/// names at 512, tag values at 256, CloudWatch namespaces (`Stockroom/<stack>`, in an alarm's
/// `Namespace` or `Metrics`, and in the dashboard's body) at 255.
const ROOMY: [&str; 5] = [
    "LogGroupName",
    "Tags",
    "Namespace",
    "Metrics",
    "DashboardBody",
];

#[test]
fn no_length_limited_name_is_built_from_the_stack_name() {
    let mut problems = Vec::new();
    for (path, doc) in all_templates() {
        for (name, resource) in resources(&doc) {
            for (property, value) in resource["Properties"].as_mapping().into_iter().flatten() {
                let property = property.as_str().unwrap();
                if !ROOMY.contains(&property) && mentions_stack_name(value) {
                    problems.push(format!("{path}: {name}.{property}"));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "built from AWS::StackName, which a nested stack makes long: {problems:?}"
    );
}

/// Resolves a name built from pseudo parameters: `Ref`, `Fn::Join`, `Fn::Select`, `Fn::Split`,
/// `Fn::Sub`.
fn resolve(value: &Yaml, pseudo: &BTreeMap<&str, String>) -> Vec<String> {
    let Some((function, argument)) = intrinsic(value) else {
        return match value {
            Yaml::Sequence(items) => items.iter().flat_map(|i| resolve(i, pseudo)).collect(),
            other => vec![scalar(other)],
        };
    };
    let items = || argument.as_sequence().unwrap();
    let one = |v: &Yaml| resolve(v, pseudo).concat();
    match function.as_str() {
        "Ref" => vec![pseudo[argument.as_str().unwrap()].clone()],
        "Fn::Join" => vec![resolve(&items()[1], pseudo).join(&one(&items()[0]))],
        "Fn::Select" => {
            let index: usize = one(&items()[0]).parse().unwrap();
            vec![resolve(&items()[1], pseudo)[index].clone()]
        }
        "Fn::Split" => one(&items()[1])
            .split(one(&items()[0]).as_str())
            .map(str::to_owned)
            .collect(),
        "Fn::Sub" => vec![substitute(argument, pseudo)],
        other => panic!("cannot resolve {other}"),
    }
}

fn scalar(value: &Yaml) -> String {
    match value {
        Yaml::String(s) => s.clone(),
        Yaml::Number(n) => n.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

fn substitute(argument: &Yaml, pseudo: &BTreeMap<&str, String>) -> String {
    let (template, own) = match argument {
        Yaml::Sequence(items) => (items[0].as_str().unwrap(), items[1].as_mapping()),
        other => (other.as_str().unwrap(), None),
    };
    let mut text = template.to_owned();
    for name in sub_names(template) {
        let value = match own.and_then(|vars| vars.get(name.as_str())) {
            Some(expression) => resolve(expression, pseudo).concat(),
            None => pseudo[name.as_str()].clone(),
        };
        text = text.replace(&format!("${{{name}}}"), &value);
    }
    text
}

const UUID: &str = "51af3dc0-da77-11e4-872e-1234567db123";

/// The pseudo parameters of a nested stack, its parent named `parent`.
fn pseudo(parent: &str, nested: &str) -> BTreeMap<&'static str, String> {
    let name = format!("{parent}-{nested}-1A2B3C4D5E6F7");
    BTreeMap::from([
        ("AWS::StackName", name.clone()),
        (
            "AWS::StackId",
            format!("arn:aws:cloudformation:us-east-1:123456789012:stack/{name}/{UUID}"),
        ),
        ("AWS::Region", "us-east-1".to_owned()),
    ])
}

/// RDS's rule for instance identifiers and proxy names: a letter first, letters, digits and
/// hyphens, no two hyphens in a row, none last, at most 63.
fn fits_rds_naming(name: &str) -> bool {
    name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.contains("--")
        && !name.ends_with('-')
}

/// MSK's: a letter or digit first, then letters, digits and hyphens, at most 64.
fn fits_msk_naming(name: &str) -> bool {
    name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

fn template(path: &str) -> Yaml {
    all_templates()
        .into_iter()
        .find(|(p, _)| p == path)
        .unwrap_or_else(|| panic!("no {path}"))
        .1
}

/// The name `property` of `resource` resolves to under a short and a 128-character parent stack
/// name, checked to be the same: it must not depend on the name.
fn created_name(doc: &Yaml, resource: &str, property: &str, nested: &str) -> String {
    let value = &doc["Resources"][resource]["Properties"][property];
    assert!(!value.is_null(), "{resource}.{property} is set");
    let short = resolve(value, &pseudo("stockroom", nested)).concat();
    let long = resolve(value, &pseudo(&"s".repeat(128), nested)).concat();
    assert_eq!(
        short, long,
        "{resource}.{property} depends on the stack's name"
    );
    short
}

#[test]
fn the_created_names_fit_whatever_the_stack_name() {
    let database = template("deploy/database.yaml");
    for (resource, property) in [("Server", "DBInstanceIdentifier"), ("Proxy", "DBProxyName")] {
        let name = created_name(&database, resource, property, "Database");
        assert!(fits_rds_naming(&name), "{resource}.{property}: {name}");
    }
    let kafka = template("deploy/kafka.yaml");
    let cluster = created_name(&kafka, "Cluster", "ClusterName", "Kafka");
    assert!(fits_msk_naming(&cluster), "Cluster.ClusterName: {cluster}");
}

/// RDS writes each exported log to `/aws/rds/instance/<identifier>/<log>` and makes the group,
/// without retention, unless it exists: the template makes each, with retention, first.
#[test]
fn every_exported_database_log_has_a_group_with_retention_made_first() {
    let database = template("deploy/database.yaml");
    let pseudo = pseudo("stockroom", "Database");
    let server = &database["Resources"]["Server"];
    let identifier = created_name(&database, "Server", "DBInstanceIdentifier", "Database");
    let names: BTreeSet<String> = resources(&database)
        .iter()
        .map(|(name, _)| name.clone())
        .collect();
    let made_first = dependencies(server, &names);
    for log in server["Properties"]["EnableCloudwatchLogsExports"]
        .as_sequence()
        .unwrap()
    {
        let wanted = format!("/aws/rds/instance/{identifier}/{}", scalar(log));
        let group = resources(&database).into_iter().find(|(_, r)| {
            r["Type"] == "AWS::Logs::LogGroup"
                && resolve(&r["Properties"]["LogGroupName"], &pseudo).concat() == wanted
        });
        let (name, group) = group.unwrap_or_else(|| panic!("no log group {wanted}"));
        assert!(
            !group["Properties"]["RetentionInDays"].is_null(),
            "{name} has a retention"
        );
        assert!(made_first.contains(&name), "Server depends on {name}");
    }
}
