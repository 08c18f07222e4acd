//! `stockroom-dev-token USER_ID [--admin] [--ttl SECONDS]`: prints a development token for a local
//! stack whose functions verify them (`STOCKROOM_AUTH=local localstack/up`; `localstack/token`
//! passes the stack's secret). Send it as `Authorization: Bearer <token>`.

use std::process::ExitCode;

use stockroom::auth::dev_token::{AUTH_AUDIENCE, AUTH_ISSUER, AUTH_LOCAL_SECRET, Verifier};

const USAGE: &str = "usage: stockroom-dev-token USER_ID [--admin] [--ttl SECONDS]";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut user, mut admin, mut ttl) = (None, false, 3600);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--admin" => admin = true,
            "--ttl" => match args.next().and_then(|t| t.parse().ok()) {
                Some(seconds) => ttl = seconds,
                None => return fail(USAGE),
            },
            _ if user.is_none() && arg.parse::<u64>().is_ok() => user = Some(arg),
            _ => return fail(USAGE),
        }
    }
    let Some(user) = user else {
        return fail(USAGE);
    };
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (Some(secret), Some(issuer), Some(audience)) =
        (var(AUTH_LOCAL_SECRET), var(AUTH_ISSUER), var(AUTH_AUDIENCE))
    else {
        return fail(&format!(
            "{AUTH_LOCAL_SECRET}, {AUTH_ISSUER} and {AUTH_AUDIENCE} must be set (localstack/token sets them)"
        ));
    };
    let scopes: &[&str] = if admin { &["admin"] } else { &[] };
    let now = chrono::Utc::now().timestamp();
    println!(
        "{}",
        Verifier::new(secret, issuer, audience).mint(&user, scopes, now, ttl)
    );
    ExitCode::SUCCESS
}

fn fail(message: &str) -> ExitCode {
    eprintln!("{message}");
    ExitCode::from(2)
}
