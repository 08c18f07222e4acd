//! How the producer encrypts and authenticates, from the environment. Locally nothing is set and
//! the producer speaks plaintext to tansu; MSK Serverless takes only TLS with IAM; a self-managed
//! cluster may take TLS with SCRAM.
//!
//! | variable | values | default |
//! |---|---|---|
//! | `KAFKA_SECURITY_PROTOCOL` | `plaintext`, `ssl`, `sasl_ssl` | `plaintext` |
//! | `KAFKA_SASL_MECHANISM` | `AWS_MSK_IAM`, `SCRAM-SHA-512`, `SCRAM-SHA-256` (with `sasl_ssl` only) | |
//! | `KAFKA_SASL_USERNAME`, `KAFKA_SASL_PASSWORD` | SCRAM's credentials | |
//! | `KAFKA_SSL_CA_LOCATION` | a PEM file or directory, or `probe` | `probe`: the system's usual places |
//!
//! `AWS_MSK_IAM` is SASL/OAUTHBEARER with a token signed by the function's role
//! ([`crate::msk_iam`]), so no Kafka password exists at all. `sasl_plaintext` is refused: it would
//! send credentials in clear.

use rdkafka::ClientConfig;
use stockroom::config::{ConfigError, Vars as _};

pub const KAFKA_SECURITY_PROTOCOL: &str = "KAFKA_SECURITY_PROTOCOL";
pub const KAFKA_SASL_MECHANISM: &str = "KAFKA_SASL_MECHANISM";
pub const KAFKA_SASL_USERNAME: &str = "KAFKA_SASL_USERNAME";
pub const KAFKA_SASL_PASSWORD: &str = "KAFKA_SASL_PASSWORD";
pub const KAFKA_SSL_CA_LOCATION: &str = "KAFKA_SSL_CA_LOCATION";

/// Sets `security.protocol`, `sasl.*` and `ssl.ca.location` on `config` from `var` (the
/// environment, in production); unset and empty settings take their defaults. Returns whether the
/// connection needs MSK IAM tokens.
pub fn configure(
    config: &mut ClientConfig,
    var: impl Fn(&str) -> Option<String>,
) -> Result<bool, ConfigError> {
    let protocol = var
        .optional(KAFKA_SECURITY_PROTOCOL)
        .unwrap_or_else(|| "plaintext".into())
        .to_lowercase();
    let mechanism = match protocol.as_str() {
        "plaintext" | "ssl" => match var.optional(KAFKA_SASL_MECHANISM) {
            None => None,
            Some(_) => {
                return Err(
                    ConfigError::invalid(KAFKA_SECURITY_PROTOCOL, &protocol, "sasl_ssl")
                        .note(format!("{KAFKA_SASL_MECHANISM} is set, and needs it")),
                );
            }
        },
        "sasl_ssl" => Some(
            var.required(KAFKA_SASL_MECHANISM)
                .map_err(|err| err.note(format!("{KAFKA_SECURITY_PROTOCOL}=sasl_ssl needs it")))?,
        ),
        other => {
            return Err(ConfigError::invalid(
                KAFKA_SECURITY_PROTOCOL,
                other,
                "one of plaintext, ssl, sasl_ssl",
            ));
        }
    };
    config.set("security.protocol", &protocol);
    if protocol == "plaintext" {
        return Ok(false);
    }
    config.set(
        "ssl.ca.location",
        var.optional(KAFKA_SSL_CA_LOCATION)
            .unwrap_or_else(|| "probe".into()),
    );
    match mechanism.as_deref() {
        None => Ok(false),
        Some("AWS_MSK_IAM") => {
            config.set("sasl.mechanism", "OAUTHBEARER");
            Ok(true)
        }
        Some(scram @ ("SCRAM-SHA-512" | "SCRAM-SHA-256")) => {
            let needed = |name| {
                var.required(name)
                    .map_err(|err| err.note(format!("{scram} needs it")))
            };
            config
                .set("sasl.mechanism", scram)
                .set("sasl.username", needed(KAFKA_SASL_USERNAME)?)
                .set("sasl.password", needed(KAFKA_SASL_PASSWORD)?);
            Ok(false)
        }
        Some(other) => Err(ConfigError::invalid(
            KAFKA_SASL_MECHANISM,
            other,
            "one of AWS_MSK_IAM, SCRAM-SHA-512, SCRAM-SHA-256",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configured(vars: &[(&str, &str)]) -> Result<(ClientConfig, bool), String> {
        let mut config = ClientConfig::new();
        let iam = configure(&mut config, |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })?;
        Ok((config, iam))
    }

    #[test]
    fn nothing_set_is_plaintext_as_locally() {
        let (config, iam) = configured(&[]).unwrap();
        assert_eq!(config.get("security.protocol"), Some("plaintext"));
        assert_eq!(config.get("sasl.mechanism"), None);
        assert!(!iam);
    }

    #[test]
    fn msk_iam_is_oauthbearer_over_tls_with_the_system_roots() {
        let (config, iam) = configured(&[
            (KAFKA_SECURITY_PROTOCOL, "SASL_SSL"),
            (KAFKA_SASL_MECHANISM, "AWS_MSK_IAM"),
        ])
        .unwrap();
        assert_eq!(config.get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(config.get("sasl.mechanism"), Some("OAUTHBEARER"));
        assert_eq!(config.get("ssl.ca.location"), Some("probe"));
        assert!(iam);
    }

    #[test]
    fn scram_takes_its_credentials_and_refuses_without_them() {
        let (config, iam) = configured(&[
            (KAFKA_SECURITY_PROTOCOL, "sasl_ssl"),
            (KAFKA_SASL_MECHANISM, "SCRAM-SHA-512"),
            (KAFKA_SASL_USERNAME, "stockroom"),
            (KAFKA_SASL_PASSWORD, "s3cret"),
            (KAFKA_SSL_CA_LOCATION, "/opt/ca.pem"),
        ])
        .unwrap();
        assert_eq!(config.get("sasl.username"), Some("stockroom"));
        assert_eq!(config.get("ssl.ca.location"), Some("/opt/ca.pem"));
        assert!(!iam);
        let err = configured(&[
            (KAFKA_SECURITY_PROTOCOL, "sasl_ssl"),
            (KAFKA_SASL_MECHANISM, "SCRAM-SHA-512"),
        ])
        .err()
        .unwrap();
        assert!(err.contains(KAFKA_SASL_USERNAME), "{err}");
    }

    #[test]
    fn librdkafka_is_built_with_tls_and_oauthbearer() {
        // librdkafka refuses at creation what it was built without ("OpenSSL not available at
        // build time"); creating connects to nothing yet.
        for vars in [
            &[
                (KAFKA_SECURITY_PROTOCOL, "sasl_ssl"),
                (KAFKA_SASL_MECHANISM, "AWS_MSK_IAM"),
            ][..],
            &[
                (KAFKA_SECURITY_PROTOCOL, "sasl_ssl"),
                (KAFKA_SASL_MECHANISM, "SCRAM-SHA-512"),
                (KAFKA_SASL_USERNAME, "u"),
                (KAFKA_SASL_PASSWORD, "p"),
            ][..],
        ] {
            let (mut config, _) = configured(vars).unwrap();
            config.set("bootstrap.servers", "127.0.0.1:9");
            let producer: Result<rdkafka::producer::FutureProducer<crate::IamContext>, _> =
                config.create_with_context(crate::IamContext::default());
            assert!(producer.is_ok(), "{vars:?}: {:?}", producer.err());
        }
    }

    #[test]
    fn a_refusal_names_the_setting_and_what_is_wrong() {
        let err = configured(&[(KAFKA_SECURITY_PROTOCOL, "sasl_ssl")])
            .err()
            .unwrap();
        assert_eq!(
            err,
            "KAFKA_SASL_MECHANISM is not set (KAFKA_SECURITY_PROTOCOL=sasl_ssl needs it)"
        );
        let err = configured(&[(KAFKA_SECURITY_PROTOCOL, "sasl_plaintext")])
            .err()
            .unwrap();
        assert_eq!(
            err,
            r#"KAFKA_SECURITY_PROTOCOL is not one of plaintext, ssl, sasl_ssl: "sasl_plaintext""#
        );
        // Empty is unset, as the template leaves what a stack does not use.
        let (config, iam) =
            configured(&[(KAFKA_SECURITY_PROTOCOL, ""), (KAFKA_SASL_MECHANISM, "")]).unwrap();
        assert_eq!(config.get("security.protocol"), Some("plaintext"));
        assert!(!iam);
    }

    #[test]
    fn credentials_in_clear_and_unknown_values_are_refused() {
        for vars in [
            &[
                (KAFKA_SECURITY_PROTOCOL, "sasl_plaintext"),
                (KAFKA_SASL_MECHANISM, "AWS_MSK_IAM"),
            ][..],
            &[(KAFKA_SASL_MECHANISM, "AWS_MSK_IAM")][..],
            &[(KAFKA_SECURITY_PROTOCOL, "sasl_ssl")][..],
            &[
                (KAFKA_SECURITY_PROTOCOL, "sasl_ssl"),
                (KAFKA_SASL_MECHANISM, "GSSAPI"),
            ][..],
        ] {
            assert!(configured(vars).is_err(), "{vars:?} was accepted");
        }
    }
}
