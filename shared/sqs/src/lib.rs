//! Sends Stockroom's notifications and dead letters to SQS with aws-sdk-sqs. The endpoint comes from
//! the standard AWS configuration, so `AWS_ENDPOINT_URL_SQS` points it at moto or LocalStack locally.

use aws_sdk_sqs::Client;
use stockroom::events::PublishFuture;
use stockroom::notification::{Queue, Queues};

/// Queue URL of the alerts queue (`low_stock_alert`, `order_created`).
pub const ALERTS_QUEUE_URL: &str = "ALERTS_QUEUE_URL";
/// Queue URL of the dead-letter queue (records that could not be handled, with the reason).
pub const DEAD_LETTER_QUEUE_URL: &str = "DEAD_LETTER_QUEUE_URL";

pub struct SqsQueues {
    client: Client,
    alerts: String,
    dead_letters: String,
}

impl SqsQueues {
    pub fn new(client: Client, alerts: String, dead_letters: String) -> Self {
        Self {
            client,
            alerts,
            dead_letters,
        }
    }

    /// The client from the environment's AWS configuration and the two queue URLs.
    pub async fn from_env() -> Result<Self, String> {
        let var = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set"));
        let (alerts, dead_letters) = (var(ALERTS_QUEUE_URL)?, var(DEAD_LETTER_QUEUE_URL)?);
        let config = aws_config::load_from_env().await;
        Ok(Self::new(Client::new(&config), alerts, dead_letters))
    }

    pub fn client(&self) -> &Client {
        &self.client
    }
}

impl Queues for SqsQueues {
    fn send<'a>(&'a self, queue: Queue, body: String) -> PublishFuture<'a> {
        Box::pin(async move {
            let url = match queue {
                Queue::Alerts => &self.alerts,
                Queue::DeadLetters => &self.dead_letters,
            };
            self.client
                .send_message()
                .queue_url(url)
                .message_body(body)
                .send()
                .await
                .map(drop)
                .map_err(|err| {
                    format!(
                        "sending to {url}: {}",
                        aws_sdk_sqs::error::DisplayErrorContext(err)
                    )
                })
        })
    }
}
