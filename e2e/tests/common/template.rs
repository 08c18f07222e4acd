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
