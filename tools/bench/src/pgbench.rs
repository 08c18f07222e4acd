//! The limit, in the same run: pgbench placing the simplest possible order, one transaction of
//! a conditional stock decrement and an insert, on tables of its own in `bench_db`.

use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};

const SCHEMA: &str = "
DROP TABLE IF EXISTS bench_products, bench_orders;
CREATE TABLE bench_products (id BIGINT PRIMARY KEY, price NUMERIC(12, 2) NOT NULL,
                             stock BIGINT NOT NULL CHECK (stock >= 0));
CREATE TABLE bench_orders (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                           product_id BIGINT NOT NULL, quantity INTEGER NOT NULL,
                           unit_price NUMERIC(12, 2) NOT NULL, total_price NUMERIC(20, 2) NOT NULL,
                           status TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT now());
INSERT INTO bench_products SELECT i, 9.99, 1000000000 FROM generate_series(1, 1000) i;
";

const ORDER: &str = "\\set pid random(1, 1000)
BEGIN;
UPDATE bench_products SET stock = stock - 1 WHERE id = :pid AND stock >= 1;
INSERT INTO bench_orders (product_id, quantity, unit_price, total_price, status)
  VALUES (:pid, 1, 9.99, 9.99, 'confirmed');
END;
";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PgbenchResult {
    pub clients: usize,
    pub tps: f64,
    pub latency_ms: f64,
}

/// `psql`/`pgbench` arguments reaching the stack's PostgreSQL as `postgres`.
pub fn connection(port: u16) -> [String; 6] {
    ["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"].map(str::to_owned)
}

/// Creates `bench_db` and its tables afresh.
pub fn prepare(bin: &str, port: u16, dir: &std::path::Path) {
    let psql = |db: &str, sql: &str| {
        let status = Command::new(format!("{bin}/psql"))
            .args(connection(port))
            .args(["-q", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql])
            .status()
            .expect("psql runs");
        status.success()
    };
    // CREATE DATABASE cannot run in a transaction, and fails when it exists: that is fine.
    psql("postgres", "CREATE DATABASE bench_db");
    assert!(psql("bench_db", SCHEMA), "creating pgbench's tables");
    std::fs::write(dir.join("order.sql"), ORDER).expect("writing the pgbench script");
}

pub fn run(
    bin: &str,
    port: u16,
    dir: &std::path::Path,
    clients: usize,
    seconds: Duration,
) -> PgbenchResult {
    let output = Command::new(format!("{bin}/pgbench"))
        .args(connection(port))
        .args(["-n", "-M", "prepared"])
        .arg(format!("--client={clients}"))
        .arg(format!("--jobs={}", clients.min(2)))
        .arg(format!("--time={}", seconds.as_secs()))
        .arg(format!("--file={}", dir.join("order.sql").display()))
        .arg("bench_db")
        .output()
        .expect("pgbench runs");
    PgbenchResult {
        clients,
        tps: number_after(&output, "tps ="),
        latency_ms: number_after(&output, "latency average ="),
    }
}

/// The transactions per second pgbench printed.
pub fn tps_of(output: std::process::Output) -> f64 {
    number_after(&output, "tps =")
}

/// The number pgbench printed after `prefix`.
fn number_after(output: &std::process::Output, prefix: &str) -> f64 {
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find_map(|l| l.trim().strip_prefix(prefix))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or_else(|| {
            panic!(
                "pgbench printed no `{prefix}`: {text}{}",
                String::from_utf8_lossy(&output.stderr)
            )
        })
}
