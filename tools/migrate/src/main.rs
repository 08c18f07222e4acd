//! `stockroom-migrate <database> [url]`: applies the embedded migrations of one of Stockroom's
//! databases. The URL defaults to the database's environment variable (`INVENTORY_DATABASE_URL`
//! for `inventory_db`).

use std::process::ExitCode;

use stockroom::migrate::{self, DATABASES};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let names: Vec<&str> = DATABASES.iter().map(|db| db.name).collect();
    let Some(database) = args.next().as_deref().and_then(migrate::database) else {
        eprintln!(
            "usage: stockroom-migrate <{}> [postgres-url]",
            names.join("|")
        );
        return ExitCode::from(2);
    };
    let Some(url) = args.next().or_else(|| std::env::var(database.url_var).ok()) else {
        eprintln!("no URL given and {} is not set", database.url_var);
        return ExitCode::from(2);
    };
    match migrate::apply_url(&url, database.migrations).await {
        Ok(applied) if applied.is_empty() => {
            println!("{}: up to date", database.name);
            ExitCode::SUCCESS
        }
        Ok(applied) => {
            println!("{}: applied migrations {applied:?}", database.name);
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("{}: {err}", database.name);
            ExitCode::FAILURE
        }
    }
}
