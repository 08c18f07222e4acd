//! `stockroom-bench`: the release benchmark (`localstack/bench` runs it; BENCHMARKS.md shows its
//! last run). Levels, each at concurrency 1, 8 and 32:
//!
//! 1. in process: the handlers called with real HTTP API events by N simulated execution
//!    environments ([`inprocess`]);
//! 2. end to end: HTTP through `cargo lambda watch --release`, loaded by wrk ([`wrk`]);
//! 3. the local stack as `localstack/up` runs it: a burst of orders through its gateway and
//!    router while everything else of it runs, how soon each event was on the topic and every
//!    one recorded by notifications ([`local_stack`]; `stockroom-bench stack`, run before the
//!    script pauses the stack for the other levels);
//! 4. the limit: pgbench's one-transaction order in the same run ([`pgbench`]);
//!
//! then what one order costs ([`cost`]), and each HTTP function's cold start, peak memory and
//! size under a Runtime API of its own ([`coldstart`]). After every scenario the stock invariant
//! is checked across both databases. Writes `bench/results.json`, `BENCHMARKS.md` and its
//! pictures ([`plots`]).

mod artifacts;
mod coldstart;
mod cost;
mod inprocess;
mod local_stack;
mod pgbench;
mod plots;
mod replay;
mod report;
mod scenario;
mod stats;
mod trips;
mod wrk;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use scenario::{Products, Scenario};
use stats::Measured;
use stockroom::db::{INVENTORY_DATABASE_URL, ORDER_DATABASE_URL};
use stockroom_test_support::handler::admin_query;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    pub scenario: Scenario,
    pub concurrency: usize,
    pub measured: Measured,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    pub date: String,
    pub cores: usize,
    pub seconds: u64,
    pub in_process: Vec<Row>,
    pub end_to_end: Vec<Row>,
    /// The local stack as `localstack/up` runs it (`stockroom-bench stack`).
    pub local_stack: Option<local_stack::LocalStack>,
    pub pgbench: Vec<pgbench::PgbenchResult>,
    /// pgbench replaying one order's own statements (absent from runs before 2026-12-02).
    #[serde(default)]
    pub replay: Vec<replay::ReplayResult>,
    pub cost: cost::Cost,
    #[serde(default)]
    pub cold_starts: Vec<coldstart::ColdStart>,
    /// The arm64 bootstraps of the last `sam build`, if any.
    #[serde(default)]
    pub arm64: Vec<artifacts::Artifact>,
    /// Scenarios after which the stock invariant did not hold, with what was wrong.
    pub violations: Vec<String>,
}

const CONCURRENCY: [usize; 3] = [1, 8, 32];

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Waits (up to a minute) until no order of this run is pending: requests a load generator gave
/// up on may still be finishing in their function.
async fn settled(products: Products) {
    for _ in 0..60 {
        if products.check().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn checked(products: Products, what: &str, violations: &mut Vec<String>) {
    settled(products).await;
    if let Err(problem) = products.check().await {
        eprintln!("    INVARIANT BROKEN after {what}: {problem}");
        violations.push(format!("{what}: {problem}"));
    }
}

/// The databases whose outboxes the order scenarios fill.
const OUTBOXES: [&str; 2] = [INVENTORY_DATABASE_URL, ORDER_DATABASE_URL];

/// The last outbox row of each database, before the benchmark wrote any.
async fn outbox_ends() -> Vec<i64> {
    let mut ends = Vec::new();
    for var in OUTBOXES {
        ends.push(admin_query(var, "SELECT COALESCE(max(id), 0) FROM outbox").await[0].get(0));
    }
    ends
}

/// Marks published, without sending, what the measurements left in the outboxes since `start`
/// while the development stack's relay was paused: the benchmark's own events, for nobody. Left
/// to it they would reach the development stack's broker once it resumes: on 2026-12-01 336,000
/// of them, an hour of its relay, its notifications and SQS. Then vacuums the outboxes, so the dead row versions the
/// update leaves do not wait for an autovacuum in the middle of a later measurement.
async fn discard_unpublished(start: &[i64]) {
    for (var, from) in OUTBOXES.iter().zip(start) {
        admin_query(
            var,
            &format!(
                "UPDATE outbox SET published_at = now() WHERE published_at IS NULL AND id > {from}"
            ),
        )
        .await;
        admin_query(var, "VACUUM (ANALYZE) outbox").await;
    }
}

/// BENCHMARKS.md and its pictures from `results`.
fn write_report(repo: &std::path::Path, results: &Results) {
    let font = env("STOCKROOM_BENCH_FONT")
        .unwrap_or_else(|| "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf".into());
    stockroom_render_dashboards::fonts::load(std::path::Path::new(&font)).expect("the font");
    for (file, title, unit, lines) in report::pictures(results) {
        plots::lines(
            &repo.join("bench").join(file),
            &title,
            unit,
            &CONCURRENCY,
            &lines,
        )
        .unwrap_or_else(|err| panic!("drawing bench/{file}: {err}"));
    }
    std::fs::write(repo.join("BENCHMARKS.md"), report::markdown(results)).expect("BENCHMARKS.md");
}

/// Names this run's products apart from every earlier run's.
fn run_id() -> String {
    chrono::Utc::now().format("%Y%m%d%H%M%S").to_string()
}

/// The stack's PostgreSQL port.
fn pg_port() -> u16 {
    env("STOCKROOM_PG_PORT").map_or(55432, |p| p.parse().expect("port"))
}

/// Each HTTP function's cold start, with metrics off and (when the stack's pushgateway is named)
/// on.
fn cold_starts(repo: &std::path::Path, products: Products) -> Vec<coldstart::ColdStart> {
    println!("==> Cold starts: each HTTP function's release binary under a Runtime API of its own");
    let release = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| repo.join("target"), PathBuf::from)
        .join("release");
    // The functions' metrics go to this pushgateway (the stack's), for the starts with metrics on.
    let pushgateway = env("STOCKROOM_BENCH_PUSHGATEWAY").filter(|url| !url.is_empty());
    scenario::cold_start_events(products)
        .into_iter()
        .map(|(function, event)| {
            let cold = coldstart::measure(&release, function, &event, 5, pushgateway.as_deref());
            println!(
                "    {function:<16} {:.1} ms ({} with metrics on), peak RSS {} kB, {:.1} MB, answered {}",
                cold.cold_ms,
                cold.cold_ms_metrics_on
                    .map_or("not measured".to_owned(), |ms| format!("{ms:.1} ms")),
                cold.peak_rss_kb,
                cold.binary_bytes as f64 / 1e6,
                cold.status
            );
            cold
        })
        .collect()
}

/// The arm64 bootstraps the last `sam build` left in the target directory.
fn arm64(repo: &std::path::Path) -> Vec<artifacts::Artifact> {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo.join("target"), PathBuf::from);
    artifacts::measure(repo, &target.join("lambda"))
}

#[tokio::main(worker_threads = 2)]
async fn main() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    // `stockroom-bench report`: BENCHMARKS.md again from the last results (after editing
    // bench/analysis.md, or after a `sam build`, whose arm64 bootstraps it reads again), without
    // measuring anything else.
    if std::env::args().nth(1).as_deref() == Some("report") {
        let json =
            std::fs::read_to_string(repo.join("bench/results.json")).expect("bench/results.json");
        let mut results: Results = serde_json::from_str(&json).expect("results.json parses");
        let arm64 = arm64(&repo);
        if !arm64.is_empty() {
            results.arm64 = arm64;
            let json = serde_json::to_string_pretty(&results).expect("results serialise");
            std::fs::write(repo.join("bench/results.json"), json).expect("bench/results.json");
        }
        write_report(&repo, &results);
        return;
    }
    // `stockroom-bench cost [ORDERS]`: only what one order costs (to profile: under `perf record`).
    if std::env::args().nth(1).as_deref() == Some("cost") {
        let orders = std::env::args()
            .nth(2)
            .map_or(500, |n| n.parse().expect("orders"));
        let run = run_id();
        let port = pg_port();
        let cost = cost::measure(Products::create(&run).await, orders, port).await;
        println!(
            "{}",
            serde_json::to_string_pretty(&cost).expect("cost serialises")
        );
        return;
    }
    // `stockroom-bench coldstart`: only the cold starts (after `cargo build --release`).
    if std::env::args().nth(1).as_deref() == Some("coldstart") {
        let run = run_id();
        cold_starts(&repo, Products::create(&run).await);
        return;
    }
    let seconds = env("STOCKROOM_BENCH_SECONDS").map_or(10, |s| s.parse().expect("seconds"));
    let work = std::env::temp_dir().join("stockroom-bench");
    std::fs::create_dir_all(&work).expect("a scratch folder");
    let stack_result = work.join("local-stack.json");
    // `stockroom-bench stack URL TRIGGER_LOG`: only the local stack's level, into the scratch
    // folder, where the full run (with the stack paused) finds it.
    if std::env::args().nth(1).as_deref() == Some("stack") {
        let args: Vec<String> = std::env::args().skip(2).collect();
        let [base, trigger_log] = args.as_slice() else {
            panic!("usage: stockroom-bench stack URL TRIGGER_LOG");
        };
        let _ = std::fs::remove_file(&stack_result);
        println!(
            "==> Level 3, the local stack at {base}: a burst of single orders, the events after it"
        );
        let products = Products::create(&format!("{}-stack", run_id())).await;
        let burst = Duration::from_secs(2 * seconds);
        let level = local_stack::run(base, products, trigger_log.as_ref(), &work, 32, burst).await;
        println!(
            "    {} orders in {:.0} s ({}); on the topic p50 {:.0} ms, p99 {:.0} ms; all recorded {}",
            level.orders,
            level.burst_seconds,
            report::line(&level.measured),
            level.event_latency.p50_ms,
            level.event_latency.p99_ms,
            level
                .recorded_after_s
                .map_or("NOT within the limit".to_owned(), |s| format!(
                    "{s:.1} s after the burst"
                )),
        );
        if let Err(problem) = products.check().await {
            panic!("the stock invariant after the local stack's level: {problem}");
        }
        let json = serde_json::to_string_pretty(&level).expect("the level serialises");
        std::fs::write(&stack_result, json).expect("the level's result");
        return;
    }
    let warmup = Duration::from_secs(2);
    let measure = Duration::from_secs(seconds);
    let out = repo.join("bench");
    std::fs::create_dir_all(&out).expect("bench/");

    let run = run_id();
    let products = Products::create(&run).await;
    println!(
        "==> {} products from id {} (hot: {})",
        scenario::CATALOGUE,
        products.first,
        products.hot
    );
    let mut violations = Vec::new();

    println!("==> Level 1, in process: handlers with real HTTP API events");
    let outbox_start = outbox_ends().await;
    let mut in_process = Vec::new();
    for &c in &CONCURRENCY {
        let mut envs = Vec::with_capacity(c);
        for _ in 0..c {
            envs.push(inprocess::Environment::new().await);
        }
        let envs = Arc::new(envs);
        for scenario in Scenario::ALL {
            let measured = inprocess::run(&envs, scenario, products, warmup, measure).await;
            println!(
                "    {:<30} c={c:<3} {}",
                scenario.title(),
                report::line(&measured)
            );
            let what = format!("in process, {}, c={c}", scenario.title());
            checked(products, &what, &mut violations).await;
            in_process.push(Row {
                scenario,
                concurrency: c,
                measured,
            });
        }
    }
    discard_unpublished(&outbox_start).await;

    let mut end_to_end = Vec::new();
    match env("STOCKROOM_BENCH_URL") {
        Some(base) => {
            println!("==> Level 2, end to end: {base} (cargo lambda watch --release), wrk");
            for scenario in Scenario::ALL {
                // The router starts an instance per concurrent request, each through `cargo run`
                // (seconds each while 32 wait for cargo's lock): warm up until they all answer.
                for _ in 0..8 {
                    let warm =
                        wrk::run(&base, scenario, products, 32, Duration::from_secs(5), &work);
                    if warm.is_none_or(|w| w.max_ms < 1000.0) {
                        break;
                    }
                }
                settled(products).await;
                for &c in &CONCURRENCY {
                    let Some(measured) = wrk::run(&base, scenario, products, c, measure, &work)
                    else {
                        continue;
                    };
                    println!(
                        "    {:<30} c={c:<3} {}",
                        scenario.title(),
                        report::line(&measured)
                    );
                    checked(
                        products,
                        &format!("end to end, {}, c={c}", scenario.title()),
                        &mut violations,
                    )
                    .await;
                    end_to_end.push(Row {
                        scenario,
                        concurrency: c,
                        measured,
                    });
                }
            }
        }
        None => println!("==> Level 2 skipped: STOCKROOM_BENCH_URL is not set"),
    }

    println!("==> The limit: pgbench's one-transaction order");
    let bin = env("STOCKROOM_PG_BIN").unwrap_or_else(|| "/usr/lib/postgresql/15/bin".into());
    let port = pg_port();
    pgbench::prepare(&bin, port, &work);
    let pgbench: Vec<_> = CONCURRENCY
        .iter()
        .map(|&c| {
            let r = pgbench::run(&bin, port, &work, c, measure);
            println!(
                "    clients={c:<3} {:.0} TPS, {:.2} ms average",
                r.tps, r.latency_ms
            );
            r
        })
        .collect();

    println!("==> The limit for the order as it is: pgbench replaying its statements");
    // Products of its own: its reservations have no orders, which the invariant would count.
    let scripts = replay::prepare(&work, Products::create(&format!("{run}-replay")).await);
    let replay: Vec<_> = CONCURRENCY
        .iter()
        .map(|&c| {
            let r = replay::run(&bin, port, &scripts, c, measure);
            println!(
                "    clients={c:<3} inventory_db {:.0} TPS, order_db {:.0} TPS: {:.0} orders/s",
                r.inventory_tps,
                r.order_tps,
                r.orders_per_second()
            );
            r
        })
        .collect();
    discard_unpublished(&outbox_start).await;

    println!("==> What one order costs (500 single orders, one environment)");
    let cost = cost::measure(products, 500, port).await;
    discard_unpublished(&outbox_start).await;
    checked(products, "the cost run", &mut violations).await;

    let cold_starts = cold_starts(&repo, products);
    checked(products, "the cold starts", &mut violations).await;
    let arm64 = arm64(&repo);
    println!(
        "==> arm64 bootstraps from the last sam build: {}",
        arm64.len()
    );

    let local_stack = std::fs::read_to_string(&stack_result)
        .ok()
        .map(|json| serde_json::from_str(&json).expect("the local stack's result parses"));
    if local_stack.is_none() {
        println!(
            "==> Level 3 missing: `stockroom-bench stack` left no {}",
            stack_result.display()
        );
    }

    let results = Results {
        date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        seconds,
        in_process,
        end_to_end,
        local_stack,
        pgbench,
        replay,
        cost,
        cold_starts,
        arm64,
        violations,
    };
    let json = serde_json::to_string_pretty(&results).expect("results serialise");
    std::fs::write(out.join("results.json"), json).expect("bench/results.json");
    write_report(&repo, &results);
    println!("==> Wrote bench/results.json, BENCHMARKS.md and bench/*.png");
    if !results.violations.is_empty() {
        eprintln!("the stock invariant did not hold: {:?}", results.violations);
        std::process::exit(1);
    }
}
