//! moto (the local SQS endpoint) serving HTTPS with the local test server certificate (for
//! `localhost`, signed by the CA `STOCKROOM_PG_CA` names), on a port of its own.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Moto {
    child: Child,
    port: u16,
}

impl Moto {
    /// Starts moto with TLS, and makes the certificate file `roots` (in the test CA's folder) the
    /// roots this process trusts.
    pub fn start(roots: &str) -> Self {
        let ca =
            std::env::var("STOCKROOM_PG_CA").expect("STOCKROOM_PG_CA (localstack/test sets it)");
        let dir = PathBuf::from(ca)
            .parent()
            .expect("the test CA's folder")
            .to_owned();
        let moto =
            std::env::var("STOCKROOM_MOTO").expect("STOCKROOM_MOTO (localstack/test sets it)");
        // SAFETY: set before any thread of the test reads the environment.
        unsafe { std::env::set_var("SSL_CERT_FILE", dir.join(roots)) };
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(moto)
            .args(["-H", "127.0.0.1", "-p", &port.to_string(), "-c"])
            .arg(dir.join("server.crt"))
            .arg("-k")
            .arg(dir.join("server.key"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting moto");
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "moto did not listen"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Self { child, port }
    }

    /// An SQS client with Stockroom's configuration, pointed at this endpoint by name (the
    /// certificate is for `localhost`).
    pub async fn client(&self) -> aws_sdk_sqs::Client {
        let config = aws_sdk_sqs::config::Builder::from(&stockroom_sqs::sdk_config().await)
            .endpoint_url(format!("https://localhost:{}", self.port))
            .build();
        aws_sdk_sqs::Client::from_conf(config)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
