//! What template.yaml deploys (its functions, their HttpApi routes), for the tests that compare it
//! with the local router, the OpenAPI contract and the code.

use serde_yaml::Value as Yaml;

/// HttpApi events of template.yaml as `(method, path, binary)`; `None` for the `$default` route.
pub fn http_routes() -> Vec<(Option<(String, String)>, String)> {
    http_events()
        .into_iter()
        .map(|(route, binary, _)| (route, binary))
        .collect()
}

/// The `(METHOD, path)` routes whose events put them behind the JWT authorizer.
pub fn protected_routes() -> std::collections::BTreeSet<(String, String)> {
    http_events()
        .into_iter()
        .filter(|(_, _, authorizer)| authorizer.as_deref() == Some("Jwt"))
        .filter_map(|(route, _, _)| route)
        .collect()
}

/// One HttpApi event: its route (`None` for `$default`), its function's binary, its authorizer.
type HttpEvent = (Option<(String, String)>, String, Option<String>);

/// template.yaml, parsed.
pub fn document() -> Yaml {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

/// Every function resource (SAM's, and the one plain Lambda function, kafka-brokers): its binary
/// (`Metadata.BuildProperties.Binary`) and its properties.
pub fn functions() -> Vec<(String, Yaml)> {
    document()["Resources"]
        .as_mapping()
        .unwrap()
        .values()
        .filter(|resource| {
            resource["Type"] == "AWS::Serverless::Function"
                || resource["Type"] == "AWS::Lambda::Function"
        })
        .map(|resource| {
            let binary = resource["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .expect("Binary");
            (binary.to_owned(), resource["Properties"].clone())
        })
        .collect()
}

fn http_events() -> Vec<HttpEvent> {
    let mut routes = Vec::new();
    for (binary, properties) in functions() {
        let Some(events) = properties["Events"].as_mapping() else {
            continue;
        };
        for (_, event) in events {
            if event["Type"] != "HttpApi" {
                continue;
            }
            let props = &event["Properties"];
            let route = match (props["Method"].as_str(), props["Path"].as_str()) {
                (Some(method), Some(path)) => Some((method.to_uppercase(), path.to_owned())),
                (None, None) => None,
                other => panic!("{binary}: Method and Path go together: {other:?}"),
            };
            let authorizer = props["Auth"]["Authorizer"].as_str().map(str::to_owned);
            routes.push((route, binary.clone(), authorizer));
        }
    }
    routes
}

/// Every template a deploy uses, `(path, parsed)`: template.yaml and its nested stacks,
/// deploy/*.yaml. `STOCKROOM_TEMPLATES_DIR` reads them from another tree instead (an older
/// commit's, say, to see a check fail on what it was written against).
pub fn all_templates() -> Vec<(String, Yaml)> {
    let root = std::env::var("STOCKROOM_TEMPLATES_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/..").into());
    let mut paths = vec!["template.yaml".to_owned()];
    let mut nested: Vec<String> = std::fs::read_dir(root.join("deploy"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".yaml"))
        .map(|name| format!("deploy/{name}"))
        .collect();
    nested.sort();
    paths.extend(nested);
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(root.join(&path)).unwrap();
            let doc = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
            (path, doc)
        })
        .collect()
}

/// An intrinsic function call: its long name (`Ref`, `Condition`, `Fn::Sub`, …) and its argument,
/// written either as a tag (`!Sub x`) or as a one-key mapping (`Fn::Sub: x`).
pub fn intrinsic(value: &Yaml) -> Option<(String, &Yaml)> {
    match value {
        Yaml::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let short = tag.trim_start_matches('!');
            let name = match short {
                "Ref" | "Condition" => short.to_owned(),
                _ => format!("Fn::{short}"),
            };
            Some((name, &tagged.value))
        }
        Yaml::Mapping(mapping) if mapping.len() == 1 => {
            let (key, argument) = mapping.iter().next()?;
            let key = key.as_str()?;
            (key == "Ref" || key == "Condition" || key.starts_with("Fn::"))
                .then(|| (key.to_owned(), argument))
        }
        _ => None,
    }
}

/// Calls `visit` on `value` and on every value inside it, tagged ones included.
pub fn each_node<'a>(value: &'a Yaml, visit: &mut impl FnMut(&'a Yaml)) {
    visit(value);
    match value {
        Yaml::Tagged(tagged) => each_node(&tagged.value, visit),
        Yaml::Sequence(items) => items.iter().for_each(|item| each_node(item, visit)),
        Yaml::Mapping(mapping) => mapping.values().for_each(|item| each_node(item, visit)),
        _ => {}
    }
}

/// A scalar's text: a string as it is, a number or a boolean as YAML writes it.
pub fn scalar_text(value: &Yaml) -> Option<String> {
    match value {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The namespace the functions write their EMF metrics to, as template.yaml's Globals set it
/// (`METRICS_NAMESPACE`, a `!Sub` of the stack name).
pub const METRICS_NAMESPACE: &str = "Stockroom/${AWS::StackName}";

/// One metric the CloudWatch dashboard or an alarm reads from the functions' namespace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MetricRef {
    /// Where: `MetricsDashboard: <widget title>` or the alarm's logical id.
    pub place: String,
    pub name: String,
    /// Its dimension keys (the SEARCH schema's, or the alarm's), empty for a rollup.
    pub dimensions: std::collections::BTreeSet<String>,
    /// The dimension values an alarm fixes (`function` = `notifications`, …).
    pub values: Vec<(String, String)>,
}

/// `MetricsDashboard`'s body, its `!Sub` variables given stand-in values, parsed.
pub fn dashboard_body(doc: &Yaml) -> serde_json::Value {
    let body = &doc["Resources"]["MetricsDashboard"]["Properties"]["DashboardBody"];
    let (function, text) = intrinsic(body).expect("DashboardBody is a !Sub");
    assert_eq!(function, "Fn::Sub");
    let mut text = text.as_str().expect("a !Sub of one string").to_owned();
    // `${X}` stand-ins: a name for the stack, 10 for the threshold, an ARN for an alarm.
    while let Some(start) = text.find("${") {
        let end = start + text[start..].find('}').expect("a closed ${...}");
        let stand_in = match &text[start + 2..end] {
            "AWS::StackName" => "stack".to_owned(),
            "AWS::Region" => "us-east-1".to_owned(),
            "LowStockThreshold" => "10".to_owned(),
            other => format!("arn:aws:cloudwatch:us-east-1:000000000000:alarm:{other}"),
        };
        text.replace_range(start..=end, &stand_in);
    }
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("DashboardBody: {e}\n{text}"))
}

/// Every metric of the functions' namespace that `MetricsDashboard` and the alarms read.
pub fn cloudwatch_metric_refs(doc: &Yaml) -> Vec<MetricRef> {
    let namespace = METRICS_NAMESPACE.replace("${AWS::StackName}", "stack");
    let mut refs = Vec::new();
    for widget in dashboard_body(doc)["widgets"].as_array().unwrap() {
        let place = format!("MetricsDashboard: {}", widget["properties"]["title"]);
        let metrics = widget["properties"]["metrics"].as_array().cloned();
        for metric in metrics.unwrap_or_default() {
            let metric = metric.as_array().unwrap();
            if let Some(expression) = metric[0]["expression"].as_str() {
                // Math over other ids (`100 * SUM(errors) / SUM(responses)`) reads nothing itself.
                if expression.contains("SEARCH(") {
                    refs.extend(searched(expression, &namespace, &place));
                }
            } else {
                assert_eq!(metric[0], namespace.as_str(), "{place}: {metric:?}");
                let pairs: Vec<_> = metric[2..]
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect();
                refs.push(MetricRef {
                    place: place.clone(),
                    name: metric[1].as_str().unwrap().to_owned(),
                    dimensions: pairs.chunks(2).map(|p| p[0].clone()).collect(),
                    values: pairs
                        .chunks(2)
                        .map(|p| (p[0].clone(), p[1].clone()))
                        .collect(),
                });
            }
        }
    }
    for (id, resource) in doc["Resources"].as_mapping().unwrap() {
        if resource["Type"] != "AWS::CloudWatch::Alarm" {
            continue;
        }
        let place = id.as_str().unwrap().to_owned();
        let properties = &resource["Properties"];
        let mut metrics = vec![properties];
        if let Some(queries) = properties["Metrics"].as_sequence() {
            metrics.extend(queries.iter().map(|q| &q["MetricStat"]["Metric"]));
        }
        for metric in metrics {
            let Some(name) = metric["MetricName"].as_str() else {
                continue;
            };
            let in_ours = intrinsic(&metric["Namespace"]).is_some_and(|(f, text)| {
                f == "Fn::Sub" && text.as_str() == Some(METRICS_NAMESPACE)
            });
            if !in_ours {
                continue;
            }
            let values: Vec<(String, String)> = metric["Dimensions"]
                .as_sequence()
                .map(|dims| {
                    dims.iter()
                        .map(|d| {
                            let text = |k: &str| scalar_text(&d[k]).expect("a literal dimension");
                            (text("Name"), text("Value"))
                        })
                        .collect()
                })
                .unwrap_or_default();
            refs.push(MetricRef {
                place: place.clone(),
                name: name.to_owned(),
                dimensions: values.iter().map(|(k, _)| k.clone()).collect(),
                values,
            });
        }
    }
    refs
}

/// The metrics a dashboard `SEARCH('{namespace,key,...} MetricName="x" ...', ...)` finds.
fn searched(expression: &str, namespace: &str, place: &str) -> Vec<MetricRef> {
    let mut refs = Vec::new();
    let mut rest = expression;
    while let Some(start) = rest.find("SEARCH('{") {
        let search = &rest[start + "SEARCH('{".len()..];
        let close = search.find('}').expect("a closed schema");
        let mut schema = search[..close].split(',').map(str::trim);
        assert_eq!(schema.next(), Some(namespace), "{place}: {expression}");
        let dimensions: std::collections::BTreeSet<String> = schema.map(str::to_owned).collect();
        let terms = &search[close..search.find("',").expect("a closed search")];
        for name in terms.split("MetricName=\"").skip(1) {
            refs.push(MetricRef {
                place: place.to_owned(),
                name: name[..name.find('"').unwrap()].to_owned(),
                dimensions: dimensions.clone(),
                values: Vec::new(),
            });
        }
        rest = &search[close..];
    }
    assert!(!refs.is_empty(), "{place}: no metric in {expression}");
    refs
}
