//! The limit for the order as it is: pgbench replaying the statements one single order sends,
//! their SQL taken from the domain crate (so it cannot drift), grouped into round trips as the
//! functions send them. An order touches two databases, and a pgbench script only one, so two
//! scripts run side by side for the same time with the same number of clients: inventory_db's
//! reservation (`reserve_stock`, one statement), and order_db's pending insert and confirmation
//! (one statement each). Each order needs both, so the lower rate is the orders' limit. No request
//! reads or marks its events (the relay does, in batches): that is not replayed here.
//!
//! pgbench cannot pipeline a statement whose results it keeps (`\aset`), so a round trip of
//! several statements is sent as one simple-protocol message (`\;`): one round trip too, and,
//! like the functions' unnamed `query_typed` statements, parsed each time.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use stockroom::orders;

use crate::pgbench::connection;
use crate::scenario::Products;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReplayResult {
    pub clients: usize,
    pub inventory_tps: f64,
    pub order_tps: f64,
}

impl ReplayResult {
    /// Orders per second both databases sustain.
    pub fn orders_per_second(&self) -> f64 {
        self.inventory_tps.min(self.order_tps)
    }
}

/// `sql` with its parameters `$1`, `$2`, … replaced by pgbench expressions (highest first, so
/// `$1` never eats the start of `$10`).
fn bind(sql: &str, values: &[&str]) -> String {
    let mut out = sql.to_owned();
    for (i, value) in values.iter().enumerate().rev() {
        out = out.replace(&format!("${}", i + 1), value);
    }
    assert!(!out.contains('$'), "a parameter left unbound in {out}");
    out
}

/// Statements sent together, as one round trip, keeping every result's columns as variables.
fn together(statements: &[&str]) -> String {
    format!("{} \\aset\n", statements.join(" \\; "))
}

/// A fresh order reference per transaction: `:r` is drawn anew each time.
const REFERENCE: &str = "md5(:client_id::text || '-' || :r::text)::uuid";

fn draws(products: Products) -> String {
    format!(
        "\\set pid random({}, {})\n\\set r random(1, 1000000000000000)\n",
        products.nth(0),
        products.nth(crate::scenario::CATALOGUE as u64 - 1)
    )
}

/// inventory_db's part of one order of one item.
fn inventory_script(products: Products) -> String {
    let lines = "('[{\"line\": ' || :r || ', \"product_id\": ' || :pid || ', \"quantity\": 1}]')";
    draws(products) + &together(&[&bind(orders::reservation::RESERVE, &[REFERENCE, lines])])
}

/// order_db's part of the same order.
fn order_script(products: Products) -> String {
    draws(products)
        + &bind(
            orders::store::INSERT_PENDING,
            &[REFERENCE, ":client_id", "ARRAY[:pid]", "ARRAY[1]"],
        )
        + " \\gset\n"
        + &together(&[&bind(
            &orders::store::confirm_returning_sql(),
            &[REFERENCE, "ARRAY[:id]", "ARRAY[9.99]", "ARRAY[9.99]"],
        )])
}

/// Writes the two scripts into `dir`.
pub fn prepare(dir: &Path, products: Products) -> [PathBuf; 2] {
    let scripts = [
        ("replay-inventory.sql", inventory_script(products)),
        ("replay-order.sql", order_script(products)),
    ];
    scripts.map(|(name, text)| {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("writing a replay script");
        path
    })
}

fn start(bin: &str, port: u16, script: &Path, db: &str, clients: usize, time: Duration) -> Child {
    Command::new(format!("{bin}/pgbench"))
        .args(connection(port))
        .args(["-n", "-M", "simple"])
        .arg(format!("--client={clients}"))
        .arg(format!("--jobs={}", clients.min(2)))
        .arg(format!("--time={}", time.as_secs()))
        .arg(format!("--file={}", script.display()))
        .arg(db)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pgbench runs")
}

/// Both scripts at once, `clients` each.
pub fn run(
    bin: &str,
    port: u16,
    scripts: &[PathBuf; 2],
    clients: usize,
    time: Duration,
) -> ReplayResult {
    let inventory = start(bin, port, &scripts[0], "inventory_db", clients, time);
    let order = start(bin, port, &scripts[1], "order_db", clients, time);
    let tps = |child: Child| crate::pgbench::tps_of(child.wait_with_output().expect("pgbench"));
    let (inventory_tps, order_tps) = (tps(inventory), tps(order));
    ReplayResult {
        clients,
        inventory_tps,
        order_tps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_bound_highest_first_and_none_is_left() {
        assert_eq!(
            bind("f($1, $2::int[])", &["a", "ARRAY[1]"]),
            "f(a, ARRAY[1]::int[])"
        );
        let script = order_script(Products {
            first: 10,
            hot: 1010,
        });
        assert!(!script.contains('$'), "{script}");
        assert!(
            script.starts_with("\\set pid random(10, 1009)\n"),
            "{script}"
        );
        // Two round trips, one statement each: the insert, the confirmation.
        assert_eq!(script.lines().count(), 2 + 2, "{script}");
        assert_eq!(
            inventory_script(Products {
                first: 10,
                hot: 1010
            })
            .lines()
            .count(),
            2 + 1,
            "one round trip: the reservation"
        );
    }
}
