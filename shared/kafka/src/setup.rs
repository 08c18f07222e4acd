//! The `kafka-topics` function, behind the template's `KafkaTopics` custom resource: on every
//! create and update it creates the topics the events go to where missing (MSK Serverless creates
//! none by itself: `auto.create.topics.enable` is off), with Kafka's admin API, then answers with
//! the brokers, which the template hands to the publishers as `KAFKA_BROKERS` (so no publisher
//! starts before its topic exists). Deleting the stack leaves the topics (and their events) alone.
//!
//! Properties: `BootstrapBrokers` (from `KafkaLookup`, stockroom's `handlers::kafka_brokers`);
//! `Topics` (names); `Partitions`.

use std::collections::BTreeMap;
use std::ffi::{CStr, CString};
use std::time::Duration;
use stockroom::deploy;

use aws_lambda_events::event::cloudformation::CloudFormationCustomResourceRequest;
use lambda_runtime::LambdaEvent;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::bindings::rd_kafka_oauthbearer_set_token;
use rdkafka::client::{Client, OAuthToken};
use rdkafka::types::{RDKafkaErrorCode, RDKafkaRespErr};
use serde_json::Value;
use stockroom::aws::sigv4::EXPIRES_SECONDS;
use stockroom::deploy::custom_resource::{Respond, Response};

use crate::{IamContext, Vars, client_config_with, env_var};

/// The same on every create and update.
pub const PHYSICAL_ID: &str = "stockroom-kafka-topics";
const TIMEOUT: Duration = Duration::from_secs(30);
/// The function's `Timeout` in template.yaml: no call lasts longer.
const FUNCTION_TIMEOUT: Duration = Duration::from_secs(120);
// The one token `admin_client` sets serves a whole call: librdkafka asks for the next only after
// 80% of its lifetime (rd_kafka_oauthbearer_set_token0), and uses it until it expires.
const _: () = assert!(FUNCTION_TIMEOUT.as_secs() < EXPIRES_SECONDS as u64 * 4 / 5);

/// Creates `topics` with `partitions` each where missing (the cluster's replication); returns
/// those it created.
pub async fn ensure_topics(
    brokers: &str,
    topics: &[String],
    partitions: i32,
) -> Result<Vec<String>, String> {
    let admin = admin_client(brokers, env_var)?;
    // The cluster's default replication: MSK Serverless fixes it at 3, a broker of one at 1.
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|name| NewTopic::new(name, partitions, TopicReplication::Fixed(-1)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(TIMEOUT));
    let results = admin
        .create_topics(&new, &options)
        .await
        .map_err(|err| format!("creating topics on {brokers}: {err}"))?;
    let mut created = Vec::new();
    for result in results {
        match result {
            Ok(name) => created.push(name),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => return Err(format!("creating topic {name}: {code}")),
        }
    }
    Ok(created)
}

/// An admin client for `brokers`, configured by `vars` as [`crate::client_config`] says, holding
/// its MSK IAM token if it needs one.
///
/// rdkafka 0.39's admin client polls only its own queue, never the main one where librdkafka asks
/// for a token (rust-rdkafka#757), so it would never authenticate: it gets its token here, once
/// (see [`FUNCTION_TIMEOUT`]). The refresh requests nobody serves stay queued, harmless.
fn admin_client(brokers: &str, vars: Vars) -> Result<AdminClient<IamContext>, String> {
    let failed = |err| format!("a Kafka admin client for {brokers}: {err}");
    let config = client_config_with(brokers, vars).map_err(failed)?;
    let admin: AdminClient<IamContext> = config
        .create_with_context(IamContext::new(vars))
        .map_err(failed)?;
    if config.get("sasl.mechanism") == Some("OAUTHBEARER") {
        let token = admin.inner().context().token()?;
        set_token(admin.inner(), token)?;
    }
    Ok(admin)
}

/// Hands `token` to librdkafka for `client`'s connections, as rdkafka does with the tokens its
/// producers and consumers ask for.
fn set_token(client: &Client<IamContext>, token: OAuthToken) -> Result<(), String> {
    let value = CString::new(token.token).map_err(|err| format!("the MSK IAM token: {err}"))?;
    let principal =
        CString::new(token.principal_name).map_err(|err| format!("the principal: {err}"))?;
    let mut errstr = [0u8; 512];
    // SAFETY: `client` keeps its handle alive for the call; both strings are NUL-terminated and
    // outlive it (librdkafka copies them); no extensions (null, 0); `errstr` is writable for the
    // length given.
    let code = unsafe {
        rd_kafka_oauthbearer_set_token(
            client.native_ptr(),
            value.as_ptr(),
            token.lifetime_ms,
            principal.as_ptr(),
            std::ptr::null_mut(),
            0,
            errstr.as_mut_ptr().cast(),
            errstr.len(),
        )
    };
    if code == RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR {
        return Ok(());
    }
    let reason = CStr::from_bytes_until_nul(&errstr).map_or("".into(), CStr::to_string_lossy);
    Err(format!(
        "librdkafka refused the MSK IAM token: {}: {reason}",
        RDKafkaErrorCode::from(code)
    ))
}

/// Handles one custom-resource request. Fails only when the answer could not be delivered.
pub async fn handle(
    event: LambdaEvent<CloudFormationCustomResourceRequest>,
    respond: &impl Respond,
) -> Result<Response, String> {
    deploy::custom_resource::handle(event.payload, PHYSICAL_ID, respond, async |properties| {
        set_up(&properties).await
    })
    .await
}

async fn set_up(properties: &Value) -> Result<BTreeMap<String, String>, String> {
    let text = |name: &str| properties[name].as_str().unwrap_or_default().trim();
    let topics: Vec<String> = properties["Topics"]
        .as_array()
        .map(|names| {
            names
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if topics.is_empty() {
        return Err("Topics must list the topics to create".into());
    }
    let partitions: i32 = text("Partitions")
        .parse()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| {
            format!(
                "Partitions must be a whole number >= 1, not {:?}",
                text("Partitions")
            )
        })?;
    let brokers = match text("BootstrapBrokers") {
        "" => return Err("BootstrapBrokers must be given".into()),
        given => given.to_owned(),
    };
    let created = ensure_topics(&brokers, &topics, partitions).await?;
    tracing::info!(%brokers, ?created, "topics in place");
    Ok(BTreeMap::from([
        ("BootstrapBrokers".to_owned(), brokers),
        ("CreatedTopics".to_owned(), format!("{created:?}")),
    ]))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::time::Instant;

    use rdkafka::producer::FutureProducer;

    use super::*;
    use crate::security::{KAFKA_SASL_MECHANISM, KAFKA_SECURITY_PROTOCOL};

    /// Nothing listens there: the clients get no further than asking for their token.
    const NOWHERE: &str = "127.0.0.1:9";

    /// MSK IAM as the template configures it, with the role's credentials made up.
    fn msk_iam(name: &str) -> Option<String> {
        let value = match name {
            KAFKA_SECURITY_PROTOCOL => "sasl_ssl",
            KAFKA_SASL_MECHANISM => "AWS_MSK_IAM",
            "AWS_ACCESS_KEY_ID" => "AKIDEXAMPLE",
            "AWS_SECRET_ACCESS_KEY" => "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "AWS_REGION" => "eu-west-1",
            _ => return None,
        };
        Some(value.to_owned())
    }

    #[test]
    fn the_admin_client_gets_a_token_as_the_producer_does() {
        // The producer gets its token by polling the main queue, as rdkafka means it to: the
        // control that tokens asked for are seen here.
        let context = IamContext::new(msk_iam);
        let producer_tokens = context.issued();
        let _producer: FutureProducer<IamContext> = client_config_with(NOWHERE, msk_iam)
            .unwrap()
            .create_with_context(context)
            .unwrap();
        // Ok only if librdkafka took the token.
        let admin = admin_client(NOWHERE, msk_iam).unwrap();
        let admin_tokens = admin.inner().context().issued();
        let deadline = Instant::now() + Duration::from_secs(5);
        let issued = || {
            (
                producer_tokens.load(Ordering::Relaxed),
                admin_tokens.load(Ordering::Relaxed),
            )
        };
        while (issued().0 == 0 || issued().1 == 0) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let (producer, admin) = issued();
        assert!(producer >= 1, "the producer got no token");
        assert!(admin >= 1, "the admin client got no token");
    }

    #[test]
    fn a_token_librdkafka_refuses_fails_with_its_reason() {
        let admin = admin_client(NOWHERE, msk_iam).unwrap();
        let expired = OAuthToken {
            token: "token".into(),
            principal_name: String::new(),
            lifetime_ms: 1,
        };
        let err = set_token(admin.inner(), expired).unwrap_err();
        assert!(err.contains("unexpired token"), "{err}");
    }

    #[test]
    fn a_plaintext_admin_client_needs_no_token() {
        let admin = admin_client(NOWHERE, |_| None).unwrap();
        assert_eq!(admin.inner().context().issued().load(Ordering::Relaxed), 0);
    }
}
