//! Cold start and memory per function, without cargo or a router: the release binary is started
//! under a Lambda Runtime API of our own (`stockroom_test_support::runtime_api`) and timed from
//! exec to its first response posted (init, including the database connection, plus one real
//! request); then its peak RSS (`VmHWM`), and the size of the stripped binary.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use stockroom_test_support::runtime_api::{Posted, Run};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ColdStart {
    pub function: String,
    /// Exec → the first response posted to the Runtime API, median of the runs (metrics off).
    pub cold_ms: f64,
    /// The same with metrics on, pushing to a real pushgateway (the recorder is built and the
    /// first push starts during init), if one was given.
    #[serde(default)]
    pub cold_ms_metrics_on: Option<f64>,
    pub runs: usize,
    /// Peak resident memory after answering, largest of the runs.
    pub peak_rss_kb: u64,
    /// The release binary as built for this host (stripped, fat LTO).
    pub binary_bytes: u64,
    /// The status code of the answer (the check that the request really ran).
    pub status: u16,
}

/// Peak resident set of `pid` in kB (`VmHWM` in /proc).
fn peak_rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status.lines().find_map(|l| {
                l.strip_prefix("VmHWM:")
                    .and_then(|v| v.split_whitespace().next()?.parse().ok())
            })
        })
        .unwrap_or(0)
}

/// One start of `binary` answering `event`: (exec → response, peak RSS, status).
fn once(
    binary: &Path,
    function: &str,
    event: &str,
    pushgateway: Option<&str>,
) -> (Duration, u64, u16) {
    let mut env: Vec<(String, String)> = std::env::vars().collect();
    env.extend([
        ("AWS_LAMBDA_LOG_LEVEL".to_owned(), "warn".to_owned()),
        (
            "PUSHGATEWAY_URL".to_owned(),
            pushgateway.unwrap_or_default().to_owned(),
        ),
    ]);
    let mut run = Run::start(binary, function, |_| event.to_owned(), &env, false);
    let posted = run.wait(Duration::from_secs(30));
    let rss = peak_rss_kb(run.pid());
    let started = run.started;
    drop(run);
    match posted {
        Some(Posted::Response(at, body)) => {
            let status = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["statusCode"].as_u64())
                .unwrap_or(0) as u16;
            (at - started, rss, status)
        }
        Some(failed) => panic!("{function} failed its cold start: {failed:?}"),
        None => panic!("{function} did not answer within 30 s of its start"),
    }
}

/// `runs` cold starts of the release binary `function` (in `target/release`) answering `event`,
/// with metrics off, and as many with metrics pushed to `pushgateway`, if given.
pub fn measure(
    release_dir: &Path,
    function: &str,
    event: &str,
    runs: usize,
    pushgateway: Option<&str>,
) -> ColdStart {
    let binary = release_dir.join(function);
    let (mut peak, mut status) = (0, 0);
    let mut median = |metrics: Option<&str>| {
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            let (took, rss, code) = once(&binary, function, event, metrics);
            times.push(took.as_secs_f64() * 1000.0);
            peak = peak.max(rss);
            status = code;
        }
        times.sort_by(f64::total_cmp);
        times[times.len() / 2]
    };
    let cold_ms = median(None);
    let cold_ms_metrics_on = pushgateway.map(|url| median(Some(url)));
    ColdStart {
        function: function.to_owned(),
        cold_ms,
        cold_ms_metrics_on,
        runs,
        peak_rss_kb: peak,
        binary_bytes: std::fs::metadata(&binary).map_or(0, |m| m.len()),
        status,
    }
}
