//! The templates' `Rules`, which CloudFormation checks before it creates a change set. In them it
//! accepts only `Ref` and the rule functions; anything else (an `Fn::Join`, say) is a template
//! format error at change-set creation that cfn-lint does not report. And what they refuse: the
//! parameter sets that could not deploy, evaluated here over a parameter map.

mod common;

use std::collections::BTreeMap;

use common::template::{all_templates, each_node, intrinsic, scalar_text};
use serde_yaml::Value as Yaml;

/// What CloudFormation takes in a rule's condition and assertions.
const RULE_FUNCTIONS: [&str; 11] = [
    "Ref",
    "Fn::And",
    "Fn::Contains",
    "Fn::EachMemberEquals",
    "Fn::EachMemberIn",
    "Fn::Equals",
    "Fn::Not",
    "Fn::Or",
    "Fn::RefAll",
    "Fn::ValueOf",
    "Fn::ValueOfAll",
];

/// A rule's expressions, each with where it sits: its `RuleCondition` and every `Assert`.
fn expressions(rule: &Yaml) -> Vec<(String, &Yaml)> {
    let mut found = Vec::new();
    if !rule["RuleCondition"].is_null() {
        found.push(("RuleCondition".to_owned(), &rule["RuleCondition"]));
    }
    for (i, assertion) in rule["Assertions"]
        .as_sequence()
        .into_iter()
        .flatten()
        .enumerate()
    {
        found.push((format!("Assertions[{i}]"), &assertion["Assert"]));
    }
    found
}

/// Every function in `expression` that rules do not take.
fn foreign_functions(expression: &Yaml) -> Vec<String> {
    let mut foreign = Vec::new();
    each_node(expression, &mut |node| {
        if let Some((name, _)) = intrinsic(node) {
            if !RULE_FUNCTIONS.contains(&name.as_str()) {
                foreign.push(name);
            }
        }
    });
    foreign
}

#[test]
fn rules_use_only_ref_and_the_rule_functions() {
    let mut checked = 0;
    let mut problems = Vec::new();
    for (path, doc) in all_templates() {
        let Some(rules) = doc["Rules"].as_mapping() else {
            continue;
        };
        for (name, rule) in rules {
            let name = name.as_str().unwrap_or_default();
            for (place, expression) in expressions(rule) {
                checked += 1;
                for function in foreign_functions(expression) {
                    problems.push(format!("{path}: rule {name}, {place}: {function}"));
                }
            }
        }
    }
    assert!(checked > 0, "no rules found");
    assert!(
        problems.is_empty(),
        "rules may use only {RULE_FUNCTIONS:?}:\n{}",
        problems.join("\n")
    );
}

/// A value while evaluating a rule.
#[derive(Clone, Debug, PartialEq)]
enum Value {
    Text(String),
    List(Vec<String>),
    Bool(bool),
}

impl Value {
    fn text(self) -> String {
        match self {
            Value::Text(text) => text,
            other => panic!("not a string: {other:?}"),
        }
    }
    fn list(self) -> Vec<String> {
        match self {
            Value::List(items) => items,
            other => panic!("not a list: {other:?}"),
        }
    }
    fn bool(self) -> bool {
        match self {
            Value::Bool(b) => b,
            other => panic!("not a boolean: {other:?}"),
        }
    }
}

type Parameters = BTreeMap<String, Value>;

/// The template's parameters with `given` over their defaults, as CloudFormation hands them to
/// rules: a list parameter's value split at commas (so an empty one is `[""]`).
fn parameters(doc: &Yaml, given: &[(&str, &str)]) -> Parameters {
    let declared = doc["Parameters"].as_mapping().unwrap();
    for (name, _) in given {
        assert!(!declared[*name].is_null(), "no parameter {name}");
    }
    declared
        .iter()
        .map(|(name, declaration)| {
            let name = name.as_str().unwrap();
            let text = given
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
                .or_else(|| scalar_text(&declaration["Default"]))
                .unwrap_or_else(|| panic!("{name} has no default: give it"));
            let kind = declaration["Type"].as_str().unwrap();
            let value = if kind == "CommaDelimitedList" || kind.starts_with("List<") {
                Value::List(text.split(',').map(str::to_owned).collect())
            } else {
                Value::Text(text)
            };
            (name.to_owned(), value)
        })
        .collect()
}

/// The arguments of a function that takes a list of them.
fn arguments(argument: &Yaml) -> &[Yaml] {
    argument.as_sequence().expect("a list of arguments")
}

/// Evaluates a rule expression: `Ref` and the rule functions this template uses.
fn eval(expression: &Yaml, params: &Parameters) -> Value {
    let Some((function, argument)) = intrinsic(expression) else {
        return literal(expression);
    };
    let arg = |i: usize| eval(&arguments(argument)[i], params);
    let all = || arguments(argument).iter().map(|a| eval(a, params).bool());
    match function.as_str() {
        "Ref" => {
            let name = argument.as_str().unwrap();
            params[name].clone()
        }
        "Fn::Equals" => Value::Bool(arg(0).text() == arg(1).text()),
        "Fn::Not" => Value::Bool(!arg(0).bool()),
        "Fn::And" => Value::Bool(all().all(|b| b)),
        "Fn::Or" => Value::Bool(all().any(|b| b)),
        "Fn::EachMemberEquals" => {
            let wanted = arg(1).text();
            Value::Bool(arg(0).list().iter().all(|member| *member == wanted))
        }
        "Fn::EachMemberIn" => {
            let allowed = arg(1).list();
            Value::Bool(arg(0).list().iter().all(|member| allowed.contains(member)))
        }
        "Fn::Contains" => Value::Bool(arg(0).list().contains(&arg(1).text())),
        other => panic!("this evaluator does not know {other}"),
    }
}

fn literal(value: &Yaml) -> Value {
    match value {
        Yaml::Bool(b) => Value::Bool(*b),
        Yaml::Sequence(items) => Value::List(
            items
                .iter()
                .map(|item| scalar_text(item).expect("a scalar"))
                .collect(),
        ),
        other => Value::Text(scalar_text(other).expect("a scalar")),
    }
}

/// The `AssertDescription`s of every assertion that fails where its rule applies.
fn refusals(doc: &Yaml, params: &Parameters) -> Vec<String> {
    let mut refused = Vec::new();
    for (_, rule) in doc["Rules"].as_mapping().into_iter().flatten() {
        let applies =
            rule["RuleCondition"].is_null() || eval(&rule["RuleCondition"], params).bool();
        if !applies {
            continue;
        }
        for assertion in rule["Assertions"].as_sequence().into_iter().flatten() {
            if !eval(&assertion["Assert"], params).bool() {
                refused.push(assertion["AssertDescription"].as_str().unwrap().to_owned());
            }
        }
    }
    refused
}

/// The two parameters without defaults, as a Cognito setup gives them.
const JWT: [(&str, &str); 2] = [
    (
        "JwtIssuer",
        "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example",
    ),
    ("JwtAudience", "shopclientid,adminclientid"),
];

fn refused_with(given: &[(&str, &str)]) -> Vec<String> {
    let mut all = JWT.to_vec();
    all.retain(|(name, _)| !given.iter().any(|(n, _)| n == name));
    all.extend_from_slice(given);
    let doc = parent();
    refusals(&doc, &parameters(&doc, &all))
}

/// template.yaml (from `STOCKROOM_TEMPLATES_DIR` if set, as every check here).
fn parent() -> Yaml {
    all_templates()
        .into_iter()
        .find(|(path, _)| path == "template.yaml")
        .unwrap()
        .1
}

fn assert_refused(given: &[(&str, &str)], saying: &str) {
    let refused = refused_with(given);
    assert!(
        refused
            .iter()
            .any(|description| description.contains(saying)),
        "{given:?} should be refused with {saying:?}; refusals: {refused:?}"
    );
}

const SUBNETS: (&str, &str) = ("SubnetIds", "subnet-0a,subnet-0b");
const GROUPS: (&str, &str) = ("SecurityGroupIds", "sg-0a");
const VPC: (&str, &str) = ("VpcId", "vpc-0a");
const DATABASE: [(&str, &str); 4] = [
    (
        "InventoryDatabaseUrl",
        "postgres://db.internal/inventory_db",
    ),
    ("OrderDatabaseUrl", "postgres://db.internal/order_db"),
    (
        "StockReservationDatabaseUrl",
        "postgres://stockroom_orders@db.internal/inventory_db",
    ),
    (
        "NotificationDatabaseUrl",
        "postgres://db.internal/notification_db",
    ),
];
const CLUSTER: (&str, &str) = (
    "MskClusterArn",
    "arn:aws:kafka:us-east-1:123456789012:cluster/own/abc",
);

#[test]
fn the_defaults_pass_the_rules() {
    assert_eq!(refused_with(&[]), Vec::<String>::new());
}

#[test]
fn a_network_of_your_own_comes_whole() {
    assert_refused(&[SUBNETS], "SecurityGroupIds must be set");
    assert_refused(&[SUBNETS], "VpcId (their VPC");
    assert_refused(&[SUBNETS, GROUPS], "VpcId (their VPC");
    assert_refused(&[VPC], "VpcId goes with SubnetIds");
    assert_refused(&[GROUPS], "SecurityGroupIds go with SubnetIds");
    assert_eq!(refused_with(&[SUBNETS, GROUPS, VPC]), Vec::<String>::new());
}

#[test]
fn the_created_network_reaches_no_database_or_cluster_of_your_own() {
    assert_refused(&DATABASE, "A database of your own needs SubnetIds");
    assert_refused(
        &[CLUSTER],
        "A cluster of your own (MskClusterArn) needs SubnetIds",
    );
}

#[test]
fn a_database_of_your_own_comes_with_all_four_urls() {
    assert_refused(
        &[DATABASE[0], SUBNETS, GROUPS, VPC],
        "OrderDatabaseUrl, StockReservationDatabaseUrl and NotificationDatabaseUrl",
    );
}

#[test]
fn brokers_come_with_their_cluster() {
    assert_refused(&[("KafkaBrokers", "b-1.own:9098")], "set MskClusterArn too");
}

#[test]
fn an_audience_is_required() {
    assert_refused(&[("JwtAudience", "")], "JwtAudience needs at least one");
}

#[test]
fn everything_brought_passes_the_rules() {
    let mut given = DATABASE.to_vec();
    given.extend([
        SUBNETS,
        GROUPS,
        VPC,
        CLUSTER,
        ("KafkaBrokers", "b-1.own:9098"),
    ]);
    assert_eq!(refused_with(&given), Vec::<String>::new());
}
