//! The local router (`[workspace.metadata.lambda.watch.router]` in Cargo.toml), the deployed routes
//! (HttpApi events in template.yaml) and the fallback's route table must describe the same API.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// `(METHOD, path, function)`
type Route = (String, String, String);

const FALLBACK: &str = "not-found";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// Routes of the local router; `(None, path)` for method-less (catch-all) entries.
fn router() -> Vec<(Option<String>, String, String)> {
    let manifest: toml::Table = std::fs::read_to_string(repo().join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let router = manifest["workspace"]["metadata"]["lambda"]["watch"]["router"]
        .as_table()
        .expect("router table");
    let mut routes = Vec::new();
    for (path, target) in router {
        match target {
            toml::Value::String(function) => routes.push((None, path.clone(), function.clone())),
            toml::Value::Array(entries) => {
                for entry in entries {
                    let method = entry["method"].as_str().expect("method").to_uppercase();
                    let function = entry["function"].as_str().expect("function").to_owned();
                    routes.push((Some(method), path.clone(), function));
                }
            }
            other => panic!("unexpected router entry for {path}: {other:?}"),
        }
    }
    routes
}

/// The binary of every function in template.yaml, whatever triggers it.
fn deployed_binaries() -> BTreeSet<String> {
    common::template::functions()
        .into_iter()
        .map(|(binary, _)| binary)
        .collect()
}

fn api_routes_of_router() -> BTreeSet<Route> {
    router()
        .into_iter()
        .filter(|(_, _, function)| function != FALLBACK)
        .map(|(method, path, function)| (method.expect("API routes name a method"), path, function))
        .collect()
}

#[test]
fn router_and_template_route_the_same_requests_to_the_same_functions() {
    let deployed: BTreeSet<Route> = common::template::http_routes()
        .into_iter()
        .filter_map(|(route, binary)| route.map(|(method, path)| (method, path, binary)))
        .collect();
    assert!(!deployed.is_empty());
    let local = api_routes_of_router();
    for route in &deployed {
        assert!(
            local.contains(route),
            "{route:?} is deployed but not routed locally"
        );
    }
    // A local route that is not deployed must be one API Gateway resolves the same way: a
    // deployed route of the same method and function whose template matches the local path
    // (GET /api/orders/bulk reaches GET /api/orders/{id}).
    for (method, path, function) in local.difference(&deployed) {
        assert!(
            deployed.iter().any(|(m, template, f)| m == method
                && f == function
                && stockroom::handlers::fallback::path_matches(template, path)),
            "{method} {path} -> {function} is routed locally but not deployed"
        );
    }
}

#[test]
fn unmatched_requests_reach_the_fallback_in_both() {
    let defaults: Vec<String> = common::template::http_routes()
        .into_iter()
        .filter(|(route, _)| route.is_none())
        .map(|(_, b)| b)
        .collect();
    assert_eq!(defaults, [FALLBACK], "template.yaml's $default route");
    let router = router();
    assert!(
        router.contains(&(None, "/{*path}".into(), FALLBACK.into())),
        "catch-all route"
    );
    // The fallback entries the router needs for other methods of our paths must never shadow a real route.
    let api = api_routes_of_router();
    for (method, path, function) in router
        .iter()
        .filter(|(m, _, f)| f == FALLBACK && m.is_some())
    {
        let method = method.as_ref().unwrap();
        assert!(
            api.iter().any(|(_, p, _)| p == path),
            "{function} entry for unknown path {path}"
        );
        assert!(
            !api.iter().any(|(m, p, _)| m == method && p == path),
            "{method} {path} is shadowed"
        );
    }
}

#[test]
fn the_fallback_knows_every_route() {
    let known: BTreeSet<(String, String)> = stockroom::handlers::fallback::ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    let deployed: BTreeSet<(String, String)> = common::template::http_routes()
        .into_iter()
        .filter_map(|(route, _)| route)
        .collect();
    assert_eq!(known, deployed);
}

#[test]
fn every_function_crate_is_deployed_and_every_deployed_function_exists() {
    let crates: BTreeSet<String> = std::fs::read_dir(repo().join("functions"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    let deployed = deployed_binaries();
    assert_eq!(crates, deployed);
    for (_, _, function) in router() {
        assert!(
            crates.contains(&function),
            "router names unknown function {function}"
        );
    }
}

/// The route each HTTP function's `main.rs` names in its `Endpoint` (the `endpoint` label of its
/// metrics and log lines), read from the source.
fn endpoint_route_of(binary: &str) -> Option<String> {
    let main = std::fs::read_to_string(repo().join(format!("functions/{binary}/src/main.rs")))
        .unwrap_or_else(|err| panic!("{binary}: {err}"));
    let call = main.split("Endpoint::new(").nth(1)?;
    let quoted = call
        .split('"')
        .nth(1)
        .expect("a route string in Endpoint::new");
    Some(quoted.to_owned())
}

/// A metric's `endpoint` label is the route a request matched, so it must be the template's
/// route for that function (`$default` for the fallback): a route renamed in one place only would
/// file its requests under a route that does not exist.
#[test]
fn every_functions_endpoint_names_its_template_route() {
    let routes = common::template::http_routes();
    let mut checked = 0;
    for (route, binary) in &routes {
        let expected = route
            .as_ref()
            .map_or("$default".to_owned(), |(_, path)| path.clone());
        assert_eq!(
            endpoint_route_of(binary).as_deref(),
            Some(expected.as_str()),
            "{binary}: its Endpoint's route against template.yaml"
        );
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} HTTP functions found");
    // And no function outside the HTTP API claims a route.
    let http: BTreeSet<&String> = routes.iter().map(|(_, binary)| binary).collect();
    for binary in deployed_binaries() {
        if !http.contains(&binary) {
            assert_eq!(
                endpoint_route_of(&binary),
                None,
                "{binary} is not on the HTTP API"
            );
        }
    }
}
