//! `stockroom-alerts-subscriber`: drains `ALERTS_QUEUE_URL` for the local stack, printing each
//! alert (see the library). SQS being down is waited out: it keeps trying every 2 s.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::timeout::TimeoutConfig;

/// A short wait per receive; and a generous bound on each call: moto answers slowly when its queue
/// is long, and a subscriber that gave up on every slow receive would never drain it.
const WAIT_SECONDS: i32 = 1;
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
const IDLE_PAUSE: Duration = Duration::from_secs(1);
const RETRY_PAUSE: Duration = Duration::from_secs(2);

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let url = std::env::var("ALERTS_QUEUE_URL").expect("ALERTS_QUEUE_URL is not set");
    let config = aws_config::defaults(BehaviorVersion::latest())
        .http_client(stockroom_sqs::https_client())
        .timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(CALL_TIMEOUT)
                .build(),
        )
        .load()
        .await;
    let client = aws_sdk_sqs::Client::new(&config);
    eprintln!("subscribed to {url}");
    let mut failing = false;
    loop {
        match stockroom_alerts_subscriber::receive_once(&client, &url, WAIT_SECONDS).await {
            Ok(lines) => {
                failing = false;
                if lines.is_empty() {
                    tokio::time::sleep(IDLE_PAUSE).await;
                }
                for line in lines {
                    println!("{line}");
                }
            }
            Err(err) => {
                // One line per outage, not one per retry.
                if !failing {
                    eprintln!("SQS unavailable, retrying every 2 s: {err}");
                }
                failing = true;
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
    }
}
