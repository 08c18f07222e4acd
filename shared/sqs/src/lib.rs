//! Sends Stockroom's notifications and dead letters to SQS with aws-sdk-sqs. The endpoint comes from
//! the standard AWS configuration, so `AWS_ENDPOINT_URL_SQS` points it at moto or LocalStack locally.
//!
//! Messages go ten to a `SendMessageBatch` request (SQS bills per request), up to [`IN_FLIGHT`]
//! requests at once when the endpoint answers fast, and every call is bounded: an endpoint that
//! accepts connections but never answers costs at most [`OPERATION_TIMEOUT`], after which the
//! messages stay in notification_db's outbox for the forwarder. After a failure the notifications
//! function does not try again for [`HANDLER_BACKOFF`], so an outage costs one timeout, not one
//! per batch.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::SharedHttpClient;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use aws_smithy_http_client::tls;
use futures_util::{StreamExt, stream};
use stockroom::config::{ConfigError, Vars as _, env};
use stockroom::notifications::{Queue, Queues, SendFuture, Sent};

/// Queue URL of the alerts queue (`low_stock_alert`, `order_created`).
pub const ALERTS_QUEUE_URL: &str = "ALERTS_QUEUE_URL";
/// Queue URL of the dead-letter queue (records that could not be handled, with the reason).
pub const DEAD_LETTER_QUEUE_URL: &str = "DEAD_LETTER_QUEUE_URL";

/// Longest a single SQS call may take, retries included: well inside the functions' timeout.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(5);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long the notifications function leaves sending to the forwarder after SQS failed.
pub const HANDLER_BACKOFF: Duration = Duration::from_secs(30);
/// SQS's limits for one `SendMessageBatch`: ten entries, and a total size we keep well below its
/// 256 KiB so one large dead letter never makes a whole request fail.
const BATCH_ENTRIES: usize = 10;
const BATCH_BYTES: usize = 200 * 1024;
/// `SendMessageBatch` requests one send keeps open at once, when the endpoint answered its first
/// within [`FAST_REQUEST`].
const IN_FLIGHT: usize = 8;
const FAST_REQUEST: Duration = Duration::from_millis(100);

/// The SDK's HTTP client: HTTPS through rustls with ring (the crypto PostgreSQL's TLS uses), the
/// system's root certificates; plain HTTP to a local endpoint.
pub fn https_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

/// The environment's AWS configuration with Stockroom's HTTP client, timeouts and retries.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(2))
        .load()
        .await
}

pub struct SqsQueues {
    client: Client,
    alerts: String,
    dead_letters: String,
    backoff: Duration,
    down_since: Mutex<Option<Instant>>,
}

impl SqsQueues {
    /// Queues that try SQS on every send.
    pub fn new(client: Client, alerts: String, dead_letters: String) -> Self {
        Self {
            client,
            alerts,
            dead_letters,
            backoff: Duration::ZERO,
            down_since: Mutex::new(None),
        }
    }

    /// After a failed send, sends fail at once for `backoff` (the messages stay queued).
    pub fn with_backoff(mut self, backoff: Duration) -> Self {
        self.backoff = backoff;
        self
    }

    /// The client from [`sdk_config`] and the two queue URLs from the environment.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let (alerts, dead_letters) = (
            env.required(ALERTS_QUEUE_URL)?,
            env.required(DEAD_LETTER_QUEUE_URL)?,
        );
        Ok(Self::new(
            Client::new(&sdk_config().await),
            alerts,
            dead_letters,
        ))
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    fn url(&self, queue: Queue) -> &str {
        match queue {
            Queue::Alerts => &self.alerts,
            Queue::DeadLetters => &self.dead_letters,
        }
    }

    /// One `SendMessageBatch`; adds the accepted ids to `sent`, `Err` if the request failed.
    async fn send_request(
        &self,
        url: &str,
        chunk: &[(i64, String)],
        sent: &mut Sent,
    ) -> Result<(), String> {
        let entries = chunk
            .iter()
            .map(|(id, body)| {
                SendMessageBatchRequestEntry::builder()
                    .id(id.to_string())
                    .message_body(body)
                    .build()
                    .map_err(|err| err.to_string())
            })
            .collect::<Result<Vec<_>, _>>()?;
        // SQS bills per request: what batching saves shows here (and in the benchmark).
        metrics::counter!("stockroom_sqs_requests_total", "operation" => "SendMessageBatch")
            .increment(1);
        sent.requests += 1;
        let answer = self
            .client
            .send_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|err| {
                format!(
                    "sending to {url}: {}",
                    aws_sdk_sqs::error::DisplayErrorContext(err)
                )
            })?;
        sent.accepted.extend(
            answer
                .successful()
                .iter()
                .filter_map(|s| s.id().parse::<i64>().ok()),
        );
        if let Some(failed) = answer.failed().first() {
            sent.error.get_or_insert_with(|| {
                format!(
                    "{url} refused {} messages: {}",
                    answer.failed().len(),
                    failed.message().unwrap_or(failed.code())
                )
            });
        }
        Ok(())
    }

    /// One request of a send, unless it should not start: a slow endpoint keeps the caller's rows
    /// locked, so none starts after the deadline (the first always goes) and what is left stays
    /// queued, not an error; and an endpoint that failed one request will likely fail the next,
    /// so after a failure the rest waits rather than spend another timeout on each.
    async fn send_chunk(
        &self,
        url: &str,
        chunk: &[(i64, String)],
        first: bool,
        deadline: Instant,
        failed: &AtomicBool,
    ) -> Sent {
        let mut part = Sent::default();
        if failed.load(Ordering::Relaxed) || (!first && Instant::now() >= deadline) {
            return part;
        }
        if let Err(err) = self.send_request(url, chunk, &mut part).await {
            failed.store(true, Ordering::Relaxed);
            part.error = Some(err);
        }
        part
    }
}

/// Splits messages into requests SQS accepts: at most ten, and at most [`BATCH_BYTES`] each.
fn chunks(messages: &[(i64, String)]) -> Vec<&[(i64, String)]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, (_, body)) in messages.iter().enumerate() {
        let full = i - start == BATCH_ENTRIES || (i > start && bytes + body.len() > BATCH_BYTES);
        if full {
            out.push(&messages[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += body.len();
    }
    if start < messages.len() {
        out.push(&messages[start..]);
    }
    out
}

impl Queues for SqsQueues {
    fn send_batch<'a>(
        &'a self,
        queue: Queue,
        messages: &'a [(i64, String)],
        deadline: Instant,
    ) -> SendFuture<'a> {
        Box::pin(async move {
            let url = self.url(queue);
            let mut sent = Sent::default();
            let down_since = *self.down_since.lock().expect("not poisoned");
            if down_since.is_some_and(|at| at.elapsed() < self.backoff) {
                sent.error = Some("SQS failed moments ago; left to the forwarder".into());
                return sent;
            }
            let chunks = chunks(messages);
            let Some((first, rest)) = chunks.split_first() else {
                return sent;
            };
            // The first request goes alone, whatever the deadline; how long it took says whether
            // the endpoint takes more at once. A fast one (SQS: tens of milliseconds) gets the
            // rest IN_FLIGHT at a time, so a batch's sends take about one request's latency, not
            // the sum; a slow one (moto under load: hundreds, one at a time) gets them one after
            // another, since requests queued behind each other there would outlive their timeout.
            let started = Instant::now();
            let failed = AtomicBool::new(false);
            sent.add(self.send_chunk(url, first, true, deadline, &failed).await);
            let in_flight = if started.elapsed() < FAST_REQUEST {
                IN_FLIGHT
            } else {
                1
            };
            let requests: Vec<_> = rest
                .iter()
                .map(|chunk| self.send_chunk(url, chunk, false, deadline, &failed))
                .collect();
            let mut parts = stream::iter(requests).buffer_unordered(in_flight);
            while let Some(part) = parts.next().await {
                sent.add(part);
            }
            *self.down_since.lock().expect("not poisoned") =
                sent.error.is_some().then(Instant::now);
            sent
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_hold_at_most_ten_messages_and_stay_under_the_size_limit() {
        let small: Vec<(i64, String)> = (0..23).map(|i| (i, "x".repeat(10))).collect();
        let sizes: Vec<usize> = chunks(&small).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, [10, 10, 3]);
        let big: Vec<(i64, String)> = (0..3).map(|i| (i, "x".repeat(120 * 1024))).collect();
        let sizes: Vec<usize> = chunks(&big).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, [1, 1, 1]);
        assert!(chunks(&[]).is_empty());
    }
}
