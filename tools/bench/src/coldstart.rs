//! Cold start and memory per function, without cargo or a router: the release binary is started
//! under a Lambda Runtime API of this module's own and timed from exec to its first response
//! posted (init, including the database connection, plus one real request); then its peak RSS
//! (`VmHWM`), and the size of the stripped binary.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

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

/// What the Runtime API saw of one process.
enum Seen {
    Response(Instant, String),
    Failed(String),
}

/// One HTTP/1.1 request from a keep-alive connection: method, path, body.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(String, String, Vec<u8>)> {
    let mut line = String::new();
    reader.read_line(&mut line).ok().filter(|&n| n > 0)?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut length = 0;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((method, path, body))
}

fn write_response(stream: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) {
    let mut head = format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\n", body.len());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
}

/// Serves one connection: the first `next` gets the event, later ones are never answered (the
/// process is killed while it waits, as Lambda would freeze it).
fn serve(
    stream: TcpStream,
    event: &str,
    function: &str,
    seen: &mpsc::Sender<Seen>,
    served: &AtomicBool,
) {
    let mut writer = stream.try_clone().expect("a socket clone");
    let mut reader = BufReader::new(stream);
    while let Some((method, path, body)) = read_request(&mut reader) {
        if method == "GET" && path.ends_with("/runtime/invocation/next") {
            if served.swap(true, Ordering::SeqCst) {
                // Held until the process is killed and the socket closes.
                let _ = reader.read(&mut [0; 1]);
                return;
            }
            let deadline = chrono::Utc::now().timestamp_millis() + 30_000;
            let headers = [
                (
                    "lambda-runtime-aws-request-id",
                    "bench-cold-start".to_owned(),
                ),
                ("lambda-runtime-deadline-ms", deadline.to_string()),
                (
                    "lambda-runtime-invoked-function-arn",
                    format!("arn:aws:lambda:us-east-1:000000000000:function:{function}"),
                ),
                ("content-type", "application/json".to_owned()),
            ];
            write_response(&mut writer, "200 OK", &headers, event.as_bytes());
            continue;
        }
        let answered = Instant::now();
        write_response(&mut writer, "202 Accepted", &[], br#"{"status":"OK"}"#);
        let text = String::from_utf8_lossy(&body).into_owned();
        let _ = seen.send(if path.ends_with("/response") {
            Seen::Response(answered, text)
        } else {
            Seen::Failed(format!("{path}: {text}"))
        });
    }
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
    let listener = TcpListener::bind("127.0.0.1:0").expect("a port for the Runtime API");
    let address = listener.local_addr().expect("its address");
    let (tx, rx) = mpsc::channel();
    let event = event.to_owned();
    let name = function.to_owned();
    let served = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicBool::new(false));
    let accepting = {
        let finished = finished.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                if finished.load(Ordering::SeqCst) {
                    return;
                }
                let (tx, event, name, served) =
                    (tx.clone(), event.clone(), name.clone(), served.clone());
                std::thread::spawn(move || serve(stream, &event, &name, &tx, &served));
            }
        })
    };
    let started = Instant::now();
    let mut child = Command::new(binary)
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", function)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_LEVEL", "warn")
        .env("PUSHGATEWAY_URL", pushgateway.unwrap_or_default())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|err| panic!("starting {}: {err}", binary.display()));
    let seen = rx.recv_timeout(Duration::from_secs(30));
    let rss = peak_rss_kb(child.id());
    let _ = child.kill();
    let _ = child.wait();
    // Wake the accept loop so it sees the run is over and closes the listener; the connection
    // threads end with the child's sockets.
    finished.store(true, Ordering::SeqCst);
    let _ = TcpStream::connect(address);
    let _ = accepting.join();
    match seen {
        Ok(Seen::Response(at, body)) => {
            let status = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["statusCode"].as_u64())
                .unwrap_or(0) as u16;
            (at - started, rss, status)
        }
        Ok(Seen::Failed(why)) => panic!("{function} failed its cold start: {why}"),
        Err(_) => panic!("{function} did not answer within 30 s of its start"),
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
