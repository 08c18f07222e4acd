//! Local stand-in for API Gateway's integration timeout, in front of `cargo lambda watch`.
//!
//! The router holds a request whose function instance died for ever, and its own `--timeout`
//! (cargo-lambda 1.9.2) cannot be used: it also cuts the long poll of every idle instance on the
//! Runtime API, whose 408 lacks the request id header, so lambda_runtime panics and the instance
//! dies (docs/local-and-aws.md). This proxy passes every request through unchanged and answers
//! 504 itself when no whole answer came within the bound: 30 s for API routes (API Gateway's
//! integration timeout), longer for the Lambda invoke API, which carries the scheduled functions
//! and the Kafka trigger's invocations. It outlives the router: while the watchdog restarts
//! cargo lambda watch, a request that cannot connect is tried again until the router is back or
//! the bound is reached, so clients see a slower answer instead of a refused connection.
//!
//! Settings: STOCKROOM_GATEWAY_LISTEN and STOCKROOM_GATEWAY_ROUTER (host:port),
//! STOCKROOM_GATEWAY_TIMEOUT and STOCKROOM_GATEWAY_INVOKE_TIMEOUT (seconds).

use std::convert::Infallible;
use std::time::Duration;

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::TRANSFER_ENCODING;
use hyper::http::request::Parts;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

/// Where the Lambda invoke API lives (`POST /2015-03-31/functions/NAME/invocations`).
const INVOKE_PREFIX: &str = "/2015-03-31/functions/";

struct Gateway {
    router: String,
    client: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
    invoke_timeout: Duration,
}

type Answer = Response<BoxBody<Bytes, hyper::Error>>;

fn setting(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

fn seconds(name: &str) -> Duration {
    Duration::from_secs(
        setting(name)
            .parse()
            .unwrap_or_else(|_| panic!("{name}: seconds")),
    )
}

fn own_answer(status: StatusCode, message: &str) -> Answer {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(
            Full::new(Bytes::from(format!(r#"{{"message":"{message}"}}"#)))
                .map_err(|never| match never {})
                .boxed(),
        )
        .expect("a valid answer")
}

impl Gateway {
    async fn pass(&self, request: Request<Incoming>) -> Result<Answer, Infallible> {
        let bound = if request.uri().path().starts_with(INVOKE_PREFIX) {
            self.invoke_timeout
        } else {
            self.timeout
        };
        let (mut parts, body) = request.into_parts();
        let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        parts.uri = match format!("http://{}{target}", self.router).parse() {
            Ok(uri) => uri,
            Err(_) => return Ok(own_answer(StatusCode::BAD_REQUEST, "Bad Request")),
        };
        // The whole answer within the bound, body included: the router has been seen to send an
        // answer's head and never its body.
        let whole = async {
            // Kept whole (Lambda takes at most 6 MB), so that it can be sent again.
            let body = body.collect().await?.to_bytes();
            let answer = self.send(&parts, body).await?;
            let (mut parts, body) = answer.into_parts();
            let body = body.collect().await?.to_bytes();
            parts.headers.remove(TRANSFER_ENCODING);
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(Response::from_parts(
                parts,
                Full::new(body).map_err(|never| match never {}).boxed(),
            ))
        };
        Ok(match tokio::time::timeout(bound, whole).await {
            Ok(Ok(answer)) => answer,
            // The router dropped the request (it was stopped while serving it).
            Ok(Err(_)) => own_answer(StatusCode::BAD_GATEWAY, "Bad Gateway"),
            Err(_) => own_answer(StatusCode::GATEWAY_TIMEOUT, "Endpoint request timed out"),
        })
    }
}

impl Gateway {
    /// Sends the request to the router; while the router does not accept connections (it is
    /// being restarted), tries again every 200 ms: the request never reached it, so sending it
    /// again places nothing twice.
    async fn send(
        &self,
        parts: &Parts,
        body: Bytes,
    ) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
        loop {
            let mut request = Request::new(Full::new(body.clone()));
            *request.method_mut() = parts.method.clone();
            *request.uri_mut() = parts.uri.clone();
            *request.version_mut() = parts.version;
            *request.headers_mut() = parts.headers.clone();
            match self.client.request(request).await {
                Err(e) if e.is_connect() => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                answer => return answer,
            }
        }
    }
}

#[tokio::main]
async fn main() {
    let gateway: &'static Gateway = Box::leak(Box::new(Gateway {
        router: setting("STOCKROOM_GATEWAY_ROUTER"),
        client: Client::builder(TokioExecutor::new()).build_http(),
        timeout: seconds("STOCKROOM_GATEWAY_TIMEOUT"),
        invoke_timeout: seconds("STOCKROOM_GATEWAY_INVOKE_TIMEOUT"),
    }));
    let listen = setting("STOCKROOM_GATEWAY_LISTEN");
    let listener = TcpListener::bind(&listen)
        .await
        .unwrap_or_else(|e| panic!("cannot listen on {listen}: {e}"));
    eprintln!(
        "gateway on {listen} for {}: {:?} for API routes, {:?} for invocations",
        gateway.router, gateway.timeout, gateway.invoke_timeout
    );
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let service = service_fn(move |request| gateway.pass(request));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
