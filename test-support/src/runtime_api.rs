//! A Lambda Runtime API of our own: a function's real binary started as Lambda starts it
//! (`AWS_LAMBDA_RUNTIME_API` and the variables Lambda sets, plus the caller's), given one event,
//! and what it posted back: its response, an invocation error or an init error. No cargo and no
//! router in between, so a test sees exactly what the runtime does with the environment it got.
//! An extension may register (the graceful-shutdown helper's), and then waits for an event that
//! never comes. Any other request to the same address (a custom resource's answer PUT to its
//! `ResponseURL`) is answered 200 and kept.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the function posted to the Runtime API, and when.
#[derive(Debug, Clone)]
pub enum Posted {
    /// `POST /runtime/invocation/{id}/response`: the answer's body.
    Response(Instant, String),
    /// `POST /runtime/invocation/{id}/error`: the handler failed this invocation.
    InvocationError(String),
    /// `POST /runtime/init/error`: the function could not start.
    InitError(String),
    /// The process exited without posting anything: its exit status.
    Exited(String),
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

/// What every connection of one run shares.
struct Shared {
    event: String,
    function: String,
    served: AtomicBool,
    /// The function asked for a second event: its first invocation is over, after-response work
    /// included.
    done: AtomicBool,
    registered: AtomicBool,
    posted: Mutex<mpsc::Sender<Posted>>,
    other: Mutex<Vec<(String, String, String)>>,
}

/// Serves one connection: the first `next` gets the event, later ones are never answered (the
/// process is killed while it waits, as Lambda would freeze it).
fn serve(stream: TcpStream, shared: &Shared) {
    let mut writer = stream.try_clone().expect("a socket clone");
    let mut reader = BufReader::new(stream);
    while let Some((method, path, body)) = read_request(&mut reader) {
        let text = String::from_utf8_lossy(&body).into_owned();
        if method == "POST" && path.contains("/extension/register") {
            shared.registered.store(true, Ordering::SeqCst);
            let headers = [("lambda-extension-identifier", "extension-1".to_owned())];
            let body = format!(
                r#"{{"functionName":"{}","functionVersion":"$LATEST","handler":"bootstrap"}}"#,
                shared.function
            );
            write_response(&mut writer, "200 OK", &headers, body.as_bytes());
            continue;
        }
        if method == "GET" && path.ends_with("/extension/event/next") {
            // No event an extension could subscribe to ever comes here.
            let _ = reader.read(&mut [0; 1]);
            return;
        }
        if method == "GET" && path.ends_with("/runtime/invocation/next") {
            if shared.served.swap(true, Ordering::SeqCst) {
                shared.done.store(true, Ordering::SeqCst);
                // Held until the process is killed and the socket closes.
                let _ = reader.read(&mut [0; 1]);
                return;
            }
            let deadline = deadline_ms(30_000);
            let headers = [
                ("lambda-runtime-aws-request-id", "runtime-api-1".to_owned()),
                ("lambda-runtime-deadline-ms", deadline.to_string()),
                (
                    "lambda-runtime-invoked-function-arn",
                    format!(
                        "arn:aws:lambda:us-east-1:000000000000:function:{}",
                        shared.function
                    ),
                ),
                ("content-type", "application/json".to_owned()),
            ];
            write_response(&mut writer, "200 OK", &headers, shared.event.as_bytes());
            continue;
        }
        let at = Instant::now();
        let posted = if path.contains("/runtime/invocation/") && path.ends_with("/response") {
            Some(Posted::Response(at, text))
        } else if path.contains("/runtime/invocation/") && path.ends_with("/error") {
            Some(Posted::InvocationError(text))
        } else if path.ends_with("/runtime/init/error") {
            Some(Posted::InitError(text))
        } else {
            shared.other.lock().unwrap().push((method, path, text));
            None
        };
        let status = if posted.is_some() {
            "202 Accepted"
        } else {
            "200 OK"
        };
        write_response(&mut writer, status, &[], br#"{"status":"OK"}"#);
        if let Some(posted) = posted {
            let _ = shared.posted.lock().unwrap().send(posted);
        }
    }
}

/// Milliseconds since the epoch, `ahead` from now.
fn deadline_ms(ahead: u64) -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    now.as_millis() as u64 + ahead
}

/// A function process under this Runtime API, with one event to answer.
pub struct Run {
    /// When the process was started.
    pub started: Instant,
    child: Child,
    address: SocketAddr,
    posted: mpsc::Receiver<Posted>,
    shared: Arc<Shared>,
    finished: Arc<AtomicBool>,
    accepting: Option<JoinHandle<()>>,
    /// What it wrote to stdout and stderr, when started with [`Run::start_captured`].
    output: Option<(JoinHandle<String>, JoinHandle<String>)>,
}

/// How a run's output is handled.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Output {
    Inherit,
    Drop,
    Capture,
}

/// Reads a child's stream to its end on a thread of its own.
fn collect(stream: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = BufReader::new(stream).read_to_string(&mut text);
        text
    })
}

impl Run {
    /// Starts `binary` as the function `function`, with the variables Lambda sets, then `env`
    /// (and nothing else of this process's environment but `PATH` and `HOME`), to answer the
    /// event `event` makes of the Runtime API's address (where a custom resource's answer can be
    /// sent). Its output is inherited when `show_output`, else dropped.
    pub fn start(
        binary: &Path,
        function: &str,
        event: impl FnOnce(SocketAddr) -> String,
        env: &[(String, String)],
        show_output: bool,
    ) -> Self {
        let output = if show_output {
            Output::Inherit
        } else {
            Output::Drop
        };
        Self::launch(binary, function, event, env, output)
    }

    /// Like [`Run::start`], keeping what the process writes to stdout and stderr for
    /// [`Run::terminate`].
    pub fn start_captured(
        binary: &Path,
        function: &str,
        event: impl FnOnce(SocketAddr) -> String,
        env: &[(String, String)],
    ) -> Self {
        Self::launch(binary, function, event, env, Output::Capture)
    }

    fn launch(
        binary: &Path,
        function: &str,
        event: impl FnOnce(SocketAddr) -> String,
        env: &[(String, String)],
        output: Output,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port for the Runtime API");
        let address = listener.local_addr().expect("its address");
        let (tx, posted) = mpsc::channel();
        let shared = Arc::new(Shared {
            event: event(address),
            function: function.to_owned(),
            served: AtomicBool::new(false),
            done: AtomicBool::new(false),
            registered: AtomicBool::new(false),
            posted: Mutex::new(tx),
            other: Mutex::new(Vec::new()),
        });
        let finished = Arc::new(AtomicBool::new(false));
        let accepting = {
            let (finished, shared) = (finished.clone(), shared.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming().flatten() {
                    if finished.load(Ordering::SeqCst) {
                        return;
                    }
                    let shared = shared.clone();
                    std::thread::spawn(move || serve(stream, &shared));
                }
            })
        };
        let mut command = Command::new(binary);
        command
            .env_clear()
            .envs(
                ["PATH", "HOME"]
                    .iter()
                    .filter_map(|k| Some((k, std::env::var(k).ok()?))),
            )
            .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", function)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .envs(env.iter().map(|(k, v)| (k, v)));
        match output {
            Output::Inherit => {}
            Output::Drop => {
                command.stdout(Stdio::null()).stderr(Stdio::null());
            }
            Output::Capture => {
                command.stdout(Stdio::piped()).stderr(Stdio::piped());
            }
        }
        let started = Instant::now();
        let mut child = command
            .spawn()
            .unwrap_or_else(|err| panic!("starting {}: {err}", binary.display()));
        let output = (output == Output::Capture).then(|| {
            let stdout = child.stdout.take().expect("piped stdout");
            let stderr = child.stderr.take().expect("piped stderr");
            (collect(stdout), collect(stderr))
        });
        Self {
            started,
            child,
            address,
            posted,
            shared,
            finished,
            accepting: Some(accepting),
            output,
        }
    }

    /// Whether an extension registered (before the runtime asked for its event, or it would
    /// have been refused in Lambda).
    pub fn extension_registered(&self) -> bool {
        self.shared.registered.load(Ordering::SeqCst)
    }

    /// Waits at most `limit` until the function asks for its next event: the invocation is over,
    /// including what the runtime runs after posting the response. Whether it did.
    pub fn wait_until_idle(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while !self.shared.done.load(Ordering::SeqCst) {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }

    /// Sends `SIGTERM`, as Lambda does when it retires an environment, and waits at most `limit`
    /// for the process to exit: its exit status (`None` if it did not exit in time, when it is
    /// killed), and its stdout and stderr if they were captured.
    pub fn terminate(
        &mut self,
        limit: Duration,
    ) -> (Option<std::process::ExitStatus>, String, String) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM failed");
        let deadline = Instant::now() + limit;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                _ if Instant::now() > deadline => break None,
                _ => std::thread::sleep(Duration::from_millis(10)),
            }
        };
        if status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let (stdout, stderr) = match self.output.take() {
            Some((stdout, stderr)) => (stdout.join().unwrap(), stderr.join().unwrap()),
            None => Default::default(),
        };
        (status, stdout, stderr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the function posted first, waiting at most `limit`; `None` if nothing came in time.
    /// A process that exits without posting (`main` returned an error before the runtime ran,
    /// which Lambda reports as `Runtime.ExitError`) is [`Posted::Exited`] at once.
    pub fn wait(&mut self, limit: Duration) -> Option<Posted> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(posted) = self.posted.recv_timeout(Duration::from_millis(50)) {
                return Some(posted);
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // What it posted just before exiting comes first.
                return Some(
                    self.posted
                        .try_recv()
                        .unwrap_or(Posted::Exited(status.to_string())),
                );
            }
        }
        None
    }

    /// The other requests it sent here: `(method, path, body)`.
    pub fn other_requests(&self) -> Vec<(String, String, String)> {
        self.shared.other.lock().unwrap().clone()
    }
}

impl Drop for Run {
    /// Kills the process (as Lambda ends an environment) and closes the Runtime API.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Wake the accept loop so it sees the run is over and closes the listener; the connection
        // threads end with the child's sockets.
        self.finished.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.address);
        if let Some(accepting) = self.accepting.take() {
            let _ = accepting.join();
        }
    }
}
