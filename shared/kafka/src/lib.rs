//! Publishes Stockroom's outbox events to Kafka (MSK in AWS, tansu locally) with rdkafka.
//!
//! The producer is idempotent (`enable.idempotence`, which implies `acks=all`), so a retried send
//! never duplicates or reorders a partition's messages; [`Publish::publish`] returns only once the
//! broker acknowledged every event, which is what lets the relay mark them published.
//!
//! A warm execution environment lives for hours, across broker restarts and failovers. An
//! idempotent producer that lost its session there can stay broken for good (fenced, or
//! `UnknownProducerId` after the broker forgot it), so any failed delivery discards the producer
//! and the next publish builds a fresh one, with a new producer id and new connections.
//!
//! TLS and authentication (MSK IAM, SCRAM) come from the environment: [`security`].

use std::error::Error;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::client::{ClientContext, OAuthToken};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use stockroom::config::{ConfigError, Vars as _};
use stockroom::events::outbox::{OutboxEvent, Publish, PublishError, PublishFuture};

pub mod msk_iam;
pub mod security;
pub mod setup;

/// Environment variable with the brokers' `host:port` list (required by the relay).
pub const KAFKA_BROKERS: &str = "KAFKA_BROKERS";
/// How long a send may wait for the broker before the batch stays in the outbox for the relay's
/// next pass.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads a setting by name: [`env_var`] in production. Tests pass their own rather than change
/// the environment every test in the process shares.
pub type Vars = fn(&str) -> Option<String>;

/// The process environment, as [`Vars`].
pub fn env_var(name: &str) -> Option<String> {
    stockroom::config::env(name)
}

/// librdkafka asks it for a token whenever `sasl.mechanism` is OAUTHBEARER (MSK IAM), shortly
/// before the last one expires; with any other mechanism it is never asked.
pub struct IamContext {
    /// Where the role's credentials come from.
    vars: Vars,
    /// How many tokens it signed, logged with each: shows whether a client got one at all.
    issued: Arc<AtomicUsize>,
}

impl Default for IamContext {
    /// Signs with the credentials Lambda puts in the environment.
    fn default() -> Self {
        Self::new(env_var)
    }
}

impl IamContext {
    pub fn new(vars: Vars) -> Self {
        Self {
            vars,
            issued: Arc::default(),
        }
    }

    /// The count of tokens signed, still readable once the context moved into a client.
    pub fn issued(&self) -> Arc<AtomicUsize> {
        self.issued.clone()
    }

    /// A token signed now with the role's credentials.
    pub fn token(&self) -> Result<OAuthToken, String> {
        let credentials = stockroom::aws::sigv4::Credentials::from_vars(self.vars)?;
        let (token, lifetime_ms) = msk_iam::token(&credentials, chrono::Utc::now());
        let issued = self.issued.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::info!(issued, "signed an MSK IAM token");
        Ok(OAuthToken {
            token,
            // MSK takes the principal from the signature, not from here.
            principal_name: String::new(),
            lifetime_ms,
        })
    }
}

impl ClientContext for IamContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(&self, _config: Option<&str>) -> Result<OAuthToken, Box<dyn Error>> {
        Ok(self.token()?)
    }
}

type Producer = FutureProducer<IamContext>;

/// What every client of the cluster shares: the brokers, a bounded connection set-up, and TLS and
/// authentication from the environment ([`security`]).
pub fn client_config(brokers: &str) -> Result<ClientConfig, KafkaError> {
    client_config_with(brokers, env_var)
}

/// [`client_config`] with the settings as `vars` gives them.
pub(crate) fn client_config_with(brokers: &str, vars: Vars) -> Result<ClientConfig, KafkaError> {
    settings(brokers, vars).map_err(|err| KafkaError::ClientCreation(err.to_string()))
}

/// [`client_config_with`], failing with the setting that is wrong.
fn settings(brokers: &str, vars: Vars) -> Result<ClientConfig, ConfigError> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("socket.connection.setup.timeout.ms", "3000");
    security::configure(&mut config, vars)?;
    Ok(config)
}

/// What building a publisher from the environment fails with: a [`ConfigError`] naming the
/// setting that is missing or wrong, or the [`KafkaError`] of a producer librdkafka refused.
pub type InitError = Box<dyn Error + Send + Sync>;

pub struct KafkaPublisher {
    config: ClientConfig,
    /// The live producer; `None` after a failure, until the next publish builds a new one.
    producer: Mutex<Option<Producer>>,
}

impl KafkaPublisher {
    /// A publisher for `brokers`, TLS and authentication from the environment.
    pub fn new(brokers: &str) -> Result<Self, KafkaError> {
        Self::build(client_config(brokers)?)
    }

    fn build(mut config: ClientConfig) -> Result<Self, KafkaError> {
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set(
                "message.timeout.ms",
                DELIVERY_TIMEOUT.as_millis().to_string(),
            )
            // The relay queues its whole batch before it awaits any delivery: nothing more to
            // wait for.
            .set("linger.ms", "0")
            // Small produce requests, answered at once: Nagle's algorithm would hold them back.
            .set("socket.nagle.disable", "true");
        // Build once now, so a bad configuration fails init rather than the first request.
        let producer = config.create_with_context(IamContext::default())?;
        Ok(Self {
            config,
            producer: Mutex::new(Some(producer)),
        })
    }

    /// The relay's publisher: `KAFKA_BROKERS` is required (unset or empty, every run would fail,
    /// so init fails and says so, rather than waiting for a broker that is not there).
    pub fn relay_from_env() -> Result<Self, InitError> {
        let brokers = env_var
            .required(KAFKA_BROKERS)
            .map_err(|err| err.note("no Kafka cluster to relay to"))?;
        Ok(Self::build(settings(&brokers, env_var)?)?)
    }

    /// The live producer, built anew if the last one was discarded.
    fn producer(&self) -> Result<Producer, String> {
        let mut slot = self.producer.lock().expect("not poisoned");
        if let Some(producer) = slot.as_ref() {
            return Ok(producer.clone());
        }
        let producer: Producer = self
            .config
            .create_with_context(IamContext::default())
            .map_err(|err| format!("could not build a producer: {err}"))?;
        tracing::info!("built a new Kafka producer");
        *slot = Some(producer.clone());
        Ok(producer)
    }

    /// Drops the producer after a failure. Dropping purges and flushes for up to 500 ms, so it
    /// happens off the runtime's thread.
    fn discard(&self) {
        if let Some(producer) = self.producer.lock().expect("not poisoned").take() {
            tokio::task::spawn_blocking(move || drop(producer));
        }
    }

    async fn send_all(&self, events: &[OutboxEvent]) -> Result<(), PublishError> {
        let producer = self.producer().map_err(PublishError::Producer)?;
        // Queue every event first (they are batched and sent in order), then await every delivery:
        // on a failure the caller still learns which events the broker took, so it marks those
        // and the relay does not send them again.
        let mut deliveries = Vec::with_capacity(events.len());
        let mut failure = None;
        for event in events {
            let event_id = event.event_id.to_string();
            let record = FutureRecord::to(&event.topic)
                .key(&event.key)
                .payload(&event.payload)
                .headers(OwnedHeaders::new().insert(Header {
                    key: "event_id",
                    value: Some(&event_id),
                }));
            match producer.send_result(record) {
                Ok(delivery) => deliveries.push((event.event_id, delivery)),
                Err((err, _)) => {
                    failure = Some((event.event_id, err.to_string()));
                    break;
                }
            }
        }
        let mut delivered = Vec::with_capacity(deliveries.len());
        for (event_id, delivery) in deliveries {
            match delivery.await {
                Ok(Ok(_)) => delivered.push(event_id),
                Ok(Err((err, _))) => {
                    failure.get_or_insert((event_id, err.to_string()));
                }
                Err(_) => {
                    failure.get_or_insert((event_id, "the producer went away".to_owned()));
                }
            }
        }
        match failure {
            None => Ok(()),
            Some((event_id, reason)) => Err(PublishError::Delivery {
                event_id,
                reason,
                delivered,
            }),
        }
    }
}

impl Publish for KafkaPublisher {
    fn publish<'a>(&'a self, events: &'a [OutboxEvent]) -> PublishFuture<'a> {
        Box::pin(async move {
            let started = Instant::now();
            let sent = self.send_all(events).await;
            metrics::histogram!("stockroom_kafka_publish_duration_seconds")
                .record(started.elapsed().as_secs_f64());
            if sent.is_err() {
                self.discard();
            }
            sent
        })
    }
}
