//! TLS to PostgreSQL with rustls, chosen by the connection URL's `sslmode` and `sslrootcert` as
//! libpq reads them, so the URL a user already has for `psql` works unchanged:
//!
//! | `sslmode` | encrypted | certificate checked | host name checked |
//! |---|---|---|---|
//! | `disable` | no | | |
//! | `prefer` (the default) | when the server offers it | no | no |
//! | `require` | yes | no | no |
//! | `verify-ca` | yes | against `sslrootcert` | no |
//! | `verify-full` | yes | against `sslrootcert` | yes |
//!
//! `sslrootcert` is a PEM file (the RDS CA bundle for RDS itself) or `system`, the Mozilla roots
//! compiled in, which include the Amazon roots that sign RDS Proxy's certificates. tokio-postgres
//! itself knows only `disable`, `prefer` and `require`, so the two `verify-` modes are taken out
//! of the URL ([`super::url`]) and reach it as `require`, with a verifier that does the checking.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub(super) fn parse(value: &str) -> Result<Self, String> {
        Ok(match value {
            "disable" => Self::Disable,
            // libpq's `allow` tries without TLS first; nothing here needs that, so it is `prefer`.
            "allow" | "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            other => {
                return Err(format!(
                    "sslmode {other:?} is not one of disable, allow, prefer, require, verify-ca, verify-full"
                ));
            }
        })
    }

    /// What tokio-postgres is told: whether TLS may, must or must not be used.
    pub(super) fn negotiation(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require | Self::VerifyCa | Self::VerifyFull => "require",
        }
    }
}

pub(super) fn client_config(
    mode: SslMode,
    root_cert: Option<&str>,
) -> Result<ClientConfig, String> {
    // Explicit: binaries that also link the AWS SDK have aws-lc-rs too, and rustls refuses to
    // guess between two providers.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|err| err.to_string())?;
    let algorithms = provider.signature_verification_algorithms;
    let config = match mode {
        SslMode::Disable | SslMode::Prefer | SslMode::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NameIgnored {
                chain: None,
                algorithms,
            })),
        SslMode::VerifyCa => {
            let roots = roots(root_cert, mode)?;
            let chain = WebPkiServerVerifier::builder_with_provider(roots.into(), provider)
                .build()
                .map_err(|err| err.to_string())?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NameIgnored {
                    chain: Some(chain),
                    algorithms,
                }))
        }
        SslMode::VerifyFull => builder.with_root_certificates(roots(root_cert, mode)?),
    };
    Ok(config.with_no_client_auth())
}

fn roots(root_cert: Option<&str>, mode: SslMode) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    match root_cert {
        None => {
            return Err(format!(
                "sslmode={} needs sslrootcert: a PEM file, or `system` for the built-in roots",
                if mode == SslMode::VerifyCa {
                    "verify-ca"
                } else {
                    "verify-full"
                }
            ));
        }
        Some("system") => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|err| format!("sslrootcert {path}: {err}"))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!("sslrootcert {path}: no certificate in it"));
            }
        }
    }
    Ok(roots)
}

/// The verifier of every mode but `verify-full`, which is rustls's own. It never compares the
/// host name. With `chain` (`verify-ca`), the certificate must lead to a trusted root; without
/// (`prefer`, `require`: libpq's meaning), any certificate will do. Either way the handshake's
/// signatures are checked, so the peer holds the certificate's key.
#[derive(Debug)]
struct NameIgnored {
    chain: Option<Arc<WebPkiServerVerifier>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for NameIgnored {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        // webpki checks the chain before the name, so a name error means the chain is good.
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
