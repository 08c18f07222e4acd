//! Level 2: end to end over HTTP through `cargo lambda watch --release`, loaded by wrk (Debian's
//! package) with a Lua script per scenario that reports its own percentiles as JSON.

use std::process::Command;
use std::time::Duration;

use crate::scenario::{BULK_ITEMS, CATALOGUE, Products, Scenario};
use crate::stats::Measured;

/// The Lua script that makes `scenario`'s requests and prints one `BENCH {json}` line.
fn script(scenario: Scenario, products: Products) -> Option<String> {
    let first = products.first;
    let request = match scenario {
        Scenario::ProductGet => format!(
            r#"return wrk.format("GET", "/api/products/" .. ({first} + math.random(0, {last})))"#,
            last = CATALOGUE - 1
        ),
        Scenario::ProductList => r#"return wrk.format("GET", "/api/products?limit=100")"#.into(),
        Scenario::SingleOrder => format!(
            r#"return order({first} + math.random(0, {last}))"#,
            last = CATALOGUE - 1
        ),
        Scenario::HotProduct => format!("return order({})", products.hot),
        Scenario::Bulk20 => format!(
            r#"local n = math.random(0, {last})
            local items = {{}}
            for k = 0, {items} do
              items[#items + 1] = '{{"product_id":' .. ({first} + (n + 37 * k) % {catalogue}) .. ',"quantity":1}}'
            end
            return wrk.format("POST", "/api/orders/bulk", json, '{{"items":[' .. table.concat(items, ",") .. ']}}')"#,
            last = CATALOGUE - 1,
            items = BULK_ITEMS - 1,
            catalogue = CATALOGUE,
        ),
        // A cancel needs an order placed just before it: the in-process level measures it.
        Scenario::Cancel => return None,
    };
    Some(format!(
        r#"json = {{ ["content-type"] = "application/json" }}
function order(id)
  return wrk.format("POST", "/api/orders", json, '{{"product_id":' .. id .. ',"quantity":1}}')
end
function init(args) math.randomseed(seed) end
request = function()
  {request}
end
bad = 0
response = function(status, headers, body)
  if status ~= {expected} then bad = bad + 1 end
end
threads = {{}}
function setup(thread) table.insert(threads, thread); thread:set("seed", math.random(1, 1000000)) end
done = function(summary, latency, requests)
  local unexpected = 0
  for _, t in ipairs(threads) do unexpected = unexpected + t:get("bad") end
  local e = summary.errors
  io.write(string.format('BENCH {{"requests":%d,"micros":%d,"p50":%d,"p95":%d,"p99":%d,"max":%d,"unexpected":%d}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max, unexpected + e.connect + e.read + e.write + e.timeout))
end
"#,
        expected = if matches!(scenario, Scenario::ProductGet | Scenario::ProductList) {
            200
        } else {
            201
        },
    ))
}

/// Runs wrk against `base` with `connections` for `seconds`; `None` for a scenario it cannot run.
pub fn run(
    base: &str,
    scenario: Scenario,
    products: Products,
    connections: usize,
    seconds: Duration,
    dir: &std::path::Path,
) -> Option<Measured> {
    let script = script(scenario, products)?;
    let path = dir.join(format!("{scenario:?}.lua"));
    std::fs::write(&path, script).expect("writing the wrk script");
    let output = Command::new("wrk")
        .arg(format!("--threads={}", connections.min(2)))
        .arg(format!("--connections={connections}"))
        .arg(format!("--duration={}s", seconds.as_secs()))
        .arg("--timeout=10s")
        .arg(format!("--script={}", path.display()))
        .arg(base)
        .output()
        .expect("wrk runs (apt-get install wrk)");
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("BENCH "))
        .unwrap_or_else(|| {
            panic!(
                "wrk printed no result: {text}{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    let v: serde_json::Value = serde_json::from_str(line).expect("wrk's JSON line");
    let ms = |key: &str| v[key].as_f64().unwrap_or_default() / 1000.0;
    let secs = v["micros"].as_f64().unwrap_or_default() / 1e6;
    let requests = v["requests"].as_u64().unwrap_or_default();
    Some(Measured {
        requests,
        unexpected: v["unexpected"].as_u64().unwrap_or_default(),
        seconds: secs,
        per_second: requests as f64 / secs.max(f64::EPSILON),
        p50_ms: ms("p50"),
        p95_ms: ms("p95"),
        p99_ms: ms("p99"),
        max_ms: ms("max"),
    })
}
