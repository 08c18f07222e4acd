//! docs/openapi.yaml, the API's contract, must describe exactly the routes template.yaml deploys,
//! and describe each of them completely enough to be checked (`localstack/fuzz` checks the running
//! API against it). Pure file checks: no running stack needed.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_yaml::Value as Yaml;

/// `(METHOD, path template)`
type Route = (String, String);

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];
const ERROR_SCHEMA: &str = "#/components/schemas/Error";

/// Error responses whose body is deliberately not an `Error`: `/health` answers 503 with its own
/// report, naming the failing check.
const NOT_ERROR_SHAPED: &[(&str, &str, &str, &str)] =
    &[("GET", "/health", "503", "#/components/schemas/Health")];

/// A 401 may also be API Gateway's own answer (its JWT authorizer's `{"message":"Unauthorized"}`),
/// which no function shapes: the schema allows both.
const UNAUTHORIZED_SCHEMA: &str = "#/components/schemas/Unauthorized";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn load(relative: &str) -> Yaml {
    let path = repo().join(relative);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("reading {}: {err}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|err| panic!("parsing {relative}: {err}"))
}

fn spec() -> Yaml {
    load("docs/openapi.yaml")
}

/// The HttpApi routes template.yaml deploys, without the `$default` catch-all.
fn deployed_routes() -> BTreeSet<Route> {
    common::template::http_routes()
        .into_iter()
        .filter_map(|(route, _)| route)
        .collect()
}

/// Every operation of the spec: `(METHOD, path) -> operation object`.
fn operations(spec: &Yaml) -> BTreeMap<Route, &Yaml> {
    let mut found = BTreeMap::new();
    for (path, item) in spec["paths"].as_mapping().expect("paths") {
        let path = path.as_str().expect("path is a string");
        for method in METHODS {
            if let Some(operation) = item.get(method) {
                found.insert((method.to_uppercase(), path.to_owned()), operation);
            }
        }
    }
    found
}

/// The value a local reference (`#/components/...`) points to.
fn resolve<'a>(spec: &'a Yaml, reference: &str) -> Option<&'a Yaml> {
    let pointer = reference.strip_prefix("#/")?;
    pointer.split('/').try_fold(spec, |node, token| {
        let token = token.replace("~1", "/").replace("~0", "~");
        match node {
            Yaml::Mapping(map) => map.get(token.as_str()),
            Yaml::Sequence(items) => items.get(token.parse::<usize>().ok()?),
            _ => None,
        }
    })
}

/// Follows `$ref`s until a value that is not a reference.
fn deref<'a>(spec: &'a Yaml, mut node: &'a Yaml) -> &'a Yaml {
    for _ in 0..32 {
        match node.get("$ref").and_then(Yaml::as_str) {
            Some(reference) => {
                node = resolve(spec, reference)
                    .unwrap_or_else(|| panic!("unresolvable reference {reference}"));
            }
            None => return node,
        }
    }
    panic!("reference cycle")
}

/// Whether `schema` is the Error schema, or a refinement of it: a reference to one, an `allOf`
/// one of whose members is one, or a `oneOf`/`anyOf` all of whose members are.
fn is_error_schema(spec: &Yaml, schema: &Yaml) -> bool {
    if let Some(reference) = schema.get("$ref").and_then(Yaml::as_str) {
        return reference == ERROR_SCHEMA
            || resolve(spec, reference).is_some_and(|target| is_error_schema(spec, target));
    }
    let members = |key: &str| schema.get(key).and_then(Yaml::as_sequence);
    if members("allOf").is_some_and(|all| all.iter().any(|m| is_error_schema(spec, m))) {
        return true;
    }
    ["oneOf", "anyOf"].iter().any(|key| {
        members(key)
            .is_some_and(|any| !any.is_empty() && any.iter().all(|m| is_error_schema(spec, m)))
    })
}

/// Every `$ref` string anywhere in `node`.
fn references(node: &Yaml, out: &mut Vec<String>) {
    match node {
        Yaml::Mapping(map) => {
            for (key, value) in map {
                if let (true, Some(reference)) = (key == "$ref", value.as_str()) {
                    out.push(reference.to_owned());
                }
                references(value, out);
            }
        }
        Yaml::Sequence(items) => items.iter().for_each(|item| references(item, out)),
        _ => {}
    }
}

#[test]
fn the_spec_has_exactly_the_deployed_routes() {
    let spec = spec();
    assert!(
        spec["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1.")),
        "docs/openapi.yaml must be OpenAPI 3.1"
    );
    let documented: BTreeSet<Route> = operations(&spec).into_keys().collect();
    let deployed = deployed_routes();
    assert!(
        !deployed.is_empty(),
        "template.yaml deploys no HttpApi route?"
    );
    let undocumented: Vec<_> = deployed.difference(&documented).collect();
    let not_deployed: Vec<_> = documented.difference(&deployed).collect();
    assert!(
        undocumented.is_empty() && not_deployed.is_empty(),
        "docs/openapi.yaml and template.yaml disagree\n  \
         deployed but not in the spec: {undocumented:?}\n  \
         in the spec but not deployed: {not_deployed:?}"
    );
}

#[test]
fn every_operation_documents_a_success_and_error_shaped_errors() {
    let spec = spec();
    let mut operation_ids = BTreeSet::new();
    for ((method, path), operation) in operations(&spec) {
        let route = format!("{method} {path}");
        let id = operation["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{route} has no operationId"));
        assert!(
            operation_ids.insert(id.to_owned()),
            "operationId {id} is used twice"
        );
        let responses = operation["responses"]
            .as_mapping()
            .unwrap_or_else(|| panic!("{route} documents no responses"));
        let statuses: Vec<&str> = responses
            .keys()
            .map(|status| {
                status
                    .as_str()
                    .unwrap_or_else(|| panic!("{route}: quote status codes: {status:?}"))
            })
            .collect();
        assert!(
            statuses.iter().any(|s| s.starts_with('2')),
            "{route} documents no 2xx response"
        );
        for status in statuses {
            assert!(
                status.len() == 3 && status.bytes().all(|b| b.is_ascii_digit()),
                "{route}: {status} is not a status code (no ranges, no `default`)"
            );
            if !(status.starts_with('4') || status.starts_with('5')) {
                continue;
            }
            let response = deref(&spec, &responses[status]);
            let schema = &response["content"]["application/json"]["schema"];
            assert!(
                !schema.is_null(),
                "{route} {status}: no application/json schema"
            );
            let exception = NOT_ERROR_SHAPED
                .iter()
                .find(|(m, p, s, _)| *m == method && *p == path && *s == status);
            match exception {
                _ if status == "401" => {
                    assert_eq!(
                        schema["$ref"].as_str(),
                        Some(UNAUTHORIZED_SCHEMA),
                        "{route} 401"
                    )
                }
                Some((_, _, _, expected)) => {
                    assert_eq!(schema["$ref"].as_str(), Some(*expected), "{route} {status}")
                }
                None => assert!(
                    is_error_schema(&spec, schema),
                    "{route} {status}: the body must be the Error schema (or an allOf refining it)"
                ),
            }
        }
    }
}

#[test]
fn every_path_parameter_is_declared_and_every_reference_resolves() {
    let spec = spec();
    let mut refs = Vec::new();
    references(&spec, &mut refs);
    for reference in &refs {
        assert!(
            resolve(&spec, reference).is_some(),
            "unresolvable reference {reference}"
        );
    }
    let operation_ids: BTreeSet<&str> = operations(&spec)
        .values()
        .filter_map(|operation| operation["operationId"].as_str())
        .collect();
    for (path, item) in spec["paths"].as_mapping().unwrap() {
        let path = path.as_str().unwrap();
        let in_template: BTreeSet<&str> = path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        for method in METHODS {
            let Some(operation) = item.get(method) else {
                continue;
            };
            let declared: BTreeSet<&str> = [&item["parameters"], &operation["parameters"]]
                .into_iter()
                .filter_map(Yaml::as_sequence)
                .flatten()
                .map(|parameter| deref(&spec, parameter))
                .filter(|parameter| parameter["in"] == "path")
                .map(|parameter| {
                    assert_eq!(
                        parameter["required"].as_bool(),
                        Some(true),
                        "{method} {path}: path parameters are required"
                    );
                    parameter["name"].as_str().expect("parameter name")
                })
                .collect();
            assert_eq!(declared, in_template, "{method} {path}: path parameters");
            // Links (used by the fuzzer's stateful phase) must name real operations.
            for response in operation["responses"].as_mapping().unwrap().values() {
                let response = deref(&spec, response);
                for link in response["links"]
                    .as_mapping()
                    .into_iter()
                    .flat_map(|l| l.values())
                {
                    let target = link["operationId"].as_str().expect("link operationId");
                    assert!(
                        operation_ids.contains(target),
                        "{method} {path}: link to unknown operation {target}"
                    );
                }
            }
        }
    }
}

/// The operations that need a token are exactly the routes template.yaml puts behind the JWT
/// authorizer, and each documents what a missing token (401) and a refused one (403) get.
#[test]
fn the_secured_operations_are_the_routes_behind_the_authorizer() {
    let spec = spec();
    let secured: BTreeSet<Route> = operations(&spec)
        .into_iter()
        .filter(|(_, operation)| {
            operation["security"]
                .as_sequence()
                .is_some_and(|schemes| schemes.iter().any(|s| !s["bearer"].is_null()))
        })
        .map(|(route, operation)| {
            for status in ["401", "403"] {
                assert!(
                    !operation["responses"][status].is_null(),
                    "{route:?} needs a token but documents no {status}"
                );
            }
            route
        })
        .collect();
    assert_eq!(
        spec["security"].as_sequence().map(Vec::len),
        Some(0),
        "public by default"
    );
    assert_eq!(secured, common::template::protected_routes());
}
