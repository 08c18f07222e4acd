//! `stockroom-migrate <database> [url]`: applies the embedded migrations of one of Stockroom's
//! databases. The URL defaults to the database's environment variable (`INVENTORY_DATABASE_URL`
//! for `inventory_db`). For inventory_db, `LOW_STOCK_THRESHOLD` (when set) is then stored as the
//! low-stock threshold the products trigger uses.

use std::process::ExitCode;
use stockroom::deploy;

use stockroom::deploy::migrate::{DATABASES, LOW_STOCK_THRESHOLD};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let names: Vec<&str> = DATABASES.iter().map(|db| db.name).collect();
    let Some(database) = args.next().as_deref().and_then(deploy::migrate::database) else {
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
    let threshold = match std::env::var(LOW_STOCK_THRESHOLD) {
        Ok(text) if database.name == "inventory_db" => match text.parse::<i32>() {
            Ok(t) if t >= 0 => Some(t),
            _ => {
                eprintln!("{LOW_STOCK_THRESHOLD} must be a whole number >= 0, not {text:?}");
                return ExitCode::from(2);
            }
        },
        _ => None,
    };
    let applied = match deploy::migrate::apply_url(&url, database.migrations).await {
        Ok(applied) => applied,
        Err(err) => {
            eprintln!("{}: {}", database.name, stockroom::error::chain(&err));
            return ExitCode::FAILURE;
        }
    };
    if applied.is_empty() {
        println!("{}: up to date", database.name);
    } else {
        println!("{}: applied migrations {applied:?}", database.name);
    }
    if let Some(threshold) = threshold {
        if let Err(err) = deploy::migrate::set_low_stock_threshold(&url, threshold).await {
            eprintln!("{}: {}", database.name, stockroom::error::chain(&err));
            return ExitCode::FAILURE;
        }
        println!("{}: low-stock threshold {threshold}", database.name);
    }
    ExitCode::SUCCESS
}
