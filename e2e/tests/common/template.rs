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
