//! A connection URL as libpq reads it, plus Stockroom's `auth=iam`: `postgres://user@host:port/db
//! ?sslmode=verify-full&sslrootcert=system&auth=iam`. The parameters tokio-postgres does not know
//! are taken out here; the rest is its own.

use tokio_postgres::Config;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::tls::{SslMode, client_config};

/// A parsed connection URL: what to connect to, how strictly, and the TLS connector to do it with.
pub struct Target {
    pub config: Config,
    pub mode: SslMode,
    pub tls: MakeRustlsConnect,
    /// Connect with an IAM authentication token as the password ([`super::iam`]).
    pub iam: bool,
}

/// Parses a `postgres://` URL with libpq's `sslmode` and `sslrootcert`, and `auth` (`password`,
/// the default, or `iam`); reads the root file.
pub fn target(url: &str) -> Result<Target, String> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut mode = SslMode::Prefer;
    let mut root_cert = None;
    let mut iam = false;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        match pair.split_once('=') {
            Some(("sslmode", value)) => mode = SslMode::parse(&percent_decode(value)?)?,
            Some(("sslrootcert", value)) => root_cert = Some(percent_decode(value)?),
            Some(("auth", "iam")) => iam = true,
            Some(("auth", "password")) => iam = false,
            Some(("auth", other)) => {
                return Err(format!("auth {other:?} is not one of password, iam"));
            }
            _ => kept.push(pair),
        }
    }
    if iam && matches!(mode, SslMode::Disable | SslMode::Prefer) {
        // The token is a credential for 15 minutes: never in clear text (RDS refuses it anyway).
        return Err("auth=iam needs sslmode=require, verify-ca or verify-full".into());
    }
    let negotiation = format!("sslmode={}", mode.negotiation());
    kept.push(&negotiation);
    let config: Config = format!("{base}?{}", kept.join("&"))
        .parse()
        .map_err(|err| format!("invalid database URL: {err}"))?;
    let tls = MakeRustlsConnect::new(client_config(mode, root_cert.as_deref())?);
    Ok(Target {
        config,
        mode,
        tls,
        iam,
    })
}

/// `%2F` and the like, as a URL may carry a file path. An escape that is not `%` and two hex
/// digits is refused (libpq refuses it too), not passed through.
fn percent_decode(value: &str) -> Result<String, String> {
    let escapes_ok = value.split('%').skip(1).all(|after| {
        after
            .get(..2)
            .is_some_and(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
    });
    if !escapes_ok {
        return Err(format!("bad percent escape in {value:?}"));
    }
    percent_encoding::percent_decode_str(value)
        .decode_utf8()
        .map(String::from)
        .map_err(|_| format!("{value:?} is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_modes_reach_tokio_postgres_as_require() {
        let target = target("postgres://u@db.example:5432/inventory_db?sslmode=verify-ca&sslrootcert=system&application_name=x").unwrap();
        assert_eq!(target.mode, SslMode::VerifyCa);
        assert_eq!(
            target.config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
        assert_eq!(target.config.get_application_name(), Some("x"));
        assert_eq!(target.config.get_dbname(), Some("inventory_db"));
    }

    #[test]
    fn no_sslmode_is_prefer_as_in_libpq() {
        let target = target("postgres://u@127.0.0.1/db").unwrap();
        assert_eq!(target.mode, SslMode::Prefer);
        assert_eq!(
            target.config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Prefer
        );
        let disabled = super::target("postgres://u@127.0.0.1/db?sslmode=disable").unwrap();
        assert_eq!(
            disabled.config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Disable
        );
    }

    #[test]
    fn verifying_without_roots_or_with_an_unknown_mode_is_refused() {
        let err = target("postgres://u@h/db?sslmode=verify-full")
            .err()
            .unwrap();
        assert!(err.contains("needs sslrootcert"), "{err}");
        let err = target("postgres://u@h/db?sslmode=require&auth=iam").map(|t| t.iam);
        assert_eq!(err, Ok(true));
        let err = target("postgres://u@h/db?auth=iam").err().unwrap();
        assert!(err.contains("needs sslmode"), "{err}");
        let err = target("postgres://u@h/db?sslmode=strict").err().unwrap();
        assert!(err.contains("\"strict\""), "{err}");
        let err = target("postgres://u@h/db?sslmode=verify-full&sslrootcert=%2Fno%2Fsuch.pem")
            .err()
            .unwrap();
        assert!(err.contains("/no/such.pem"), "{err}");
    }

    #[test]
    fn escapes_decode_to_utf_8_and_malformed_ones_are_refused() {
        assert_eq!(
            percent_decode("%2Fetc%2Fr%C3%A9seau%20ca.pem").unwrap(),
            "/etc/réseau ca.pem"
        );
        assert_eq!(percent_decode("verify-full").unwrap(), "verify-full");
        let err = target("postgres://u@h/db?sslmode=verify-full&sslrootcert=%2Fno%2F%E2%82%AC.pem")
            .err()
            .unwrap();
        assert!(err.contains("/no/€.pem"), "{err}");
        // `%+1` once decoded to byte 1: `u8::from_str_radix` takes a sign.
        for bad in ["%+1", "%2", "a%", "%zz", "%é0", "%FF", "%C3"] {
            assert!(percent_decode(bad).is_err(), "{bad}");
        }
    }
}
