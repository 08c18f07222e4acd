//! What one order costs: round trips, statements and commits per database, rows written, and
//! CPU, measured over a run of sequential single orders in process.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use stockroom::db::{Db, INVENTORY_DATABASE_URL, ORDER_DATABASE_URL};
use stockroom::events::outbox::{OutboxEvent, Publish, PublishFuture, relay_batch};
use stockroom::events::store::Outbox;
use stockroom_test_support::handler::admin_query;

use crate::inprocess::{Environment, one, order_event};
use crate::scenario::{Products, Rng, Scenario};
use crate::trips::TripCounter;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Cost {
    pub orders: u64,
    /// Statements per order, by database (pg_stat_statements: `BEGIN` and `COMMIT` count).
    pub statements: BTreeMap<String, f64>,
    /// Round trips per order, by database, counted on the wire ([`TripCounter`]): pipelined
    /// statements share one.
    #[serde(default)]
    pub round_trips: BTreeMap<String, f64>,
    /// Committed transactions per order, by database (a statement outside a transaction block
    /// commits on its own).
    pub commits: BTreeMap<String, f64>,
    /// Rows added per order, by table.
    pub rows: BTreeMap<String, f64>,
    /// PostgreSQL's CPU for the requests.
    pub postgres_cpu_ms: f64,
    /// PostgreSQL's CPU for relaying the orders' events afterwards, per order: the relay's
    /// passes of [`RELAY_BATCH`] events (read, then marked), with a publisher that acknowledges
    /// at once, so only the database's share is counted.
    pub relay_postgres_cpu_ms: f64,
    /// The relay's transactions per order (each pass is one).
    pub relay_commits: f64,
    /// The handlers' own CPU (this process), per order, without building the test events.
    pub function_cpu_ms: f64,
    /// The statements one order runs, with their calls per order (from pg_stat_statements).
    pub top_statements: Vec<(String, String, f64)>,
    /// Why some figures are missing, if they are.
    pub note: Option<String>,
}

impl Cost {
    /// PostgreSQL's CPU per order in all: the request's and the relay's.
    pub fn postgres_cpu_total_ms(&self) -> f64 {
        self.postgres_cpu_ms + self.relay_postgres_cpu_ms
    }
}

/// Rows of the tables an order writes, by `db.table`.
async fn row_counts() -> BTreeMap<String, i64> {
    let mut counts = BTreeMap::new();
    for (db, var, table) in [
        ("inventory_db", INVENTORY_DATABASE_URL, "outbox"),
        ("inventory_db", INVENTORY_DATABASE_URL, "stock_reservations"),
        (
            "inventory_db",
            INVENTORY_DATABASE_URL,
            "stock_reservation_lines",
        ),
        ("order_db", ORDER_DATABASE_URL, "orders"),
        ("order_db", ORDER_DATABASE_URL, "outbox"),
    ] {
        let n: i64 = admin_query(var, &format!("SELECT count(*) FROM {table}")).await[0].get(0);
        counts.insert(format!("{db}.{table}"), n);
    }
    counts
}

/// Events a relay pass takes when orders come at about 250 a second and it polls every 200 ms.
pub const RELAY_BATCH: i64 = 50;

/// A broker that acknowledges every event at once.
struct Acknowledging;

impl Publish for Acknowledging {
    fn publish<'a>(&'a self, _: &'a [OutboxEvent]) -> PublishFuture<'a> {
        Box::pin(async { Ok(()) })
    }
}

/// The relay's connections, one to each outbox's database.
async fn relay_connections() -> [(Outbox, Db); 2] {
    let db = async |var| Db::from_env(var).await.expect("the relay's database");
    [
        (Outbox::Inventory, db(INVENTORY_DATABASE_URL).await),
        (Outbox::Orders, db(ORDER_DATABASE_URL).await),
    ]
}

/// Relays everything unpublished in both outboxes, as `events-relay` does, in passes of
/// [`RELAY_BATCH`]; returns the passes.
async fn relay_all(relay: &[(Outbox, Db)]) -> u64 {
    let mut passes = 0;
    for (outbox, db) in relay {
        loop {
            let sent = relay_batch(db, *outbox, &Acknowledging, RELAY_BATCH)
                .await
                .expect("a relay pass");
            passes += 1;
            match sent {
                Some(n) if n > 0 => continue,
                Some(_) => break,
                None => {
                    panic!("another relay holds the outbox's lock: is the stack's paused mid-pass?")
                }
            }
        }
    }
    passes
}

async fn commits() -> BTreeMap<String, i64> {
    admin_query(
        INVENTORY_DATABASE_URL,
        "SELECT datname::text, xact_commit FROM pg_stat_database \
         WHERE datname IN ('inventory_db', 'order_db')",
    )
    .await
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

/// CPU seconds (user + system) of the processes whose `comm` is `name`, or of this process.
pub fn cpu_seconds(name: Option<&str>) -> f64 {
    let ticks = 100.0; // USER_HZ on Linux
    let read = |stat: &str| -> f64 {
        // Fields after the `(comm)`: state is 3rd; utime and stime are the 14th and 15th.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after.split_whitespace().collect();
        let get = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (get(11) + get(12)) / ticks
    };
    let Some(name) = name else {
        return read(&std::fs::read_to_string("/proc/self/stat").unwrap_or_default());
    };
    let mut total = 0.0;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let dir = entry.path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim() == name {
            total += read(&std::fs::read_to_string(dir.join("stat")).unwrap_or_default());
        }
    }
    total
}

/// Places `orders` single orders one after another from one environment, on a runtime of its own
/// that is single-threaded like the functions' (`current_thread`): the requests a function
/// pipelines leave together, as they do in Lambda. Two passes: through round-trip counters in
/// front of PostgreSQL (on `pg_port`); directly, for everything else (the counters' copying would
/// count as the function's CPU).
pub async fn measure(products: Products, orders: u64, pg_port: u16) -> Cost {
    tokio::task::spawn_blocking(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(async move {
                let round_trips = round_trips(products, orders, pg_port).await;
                let mut cost = measure_direct(products, orders).await;
                cost.round_trips = round_trips;
                cost
            })
    })
    .await
    .expect("the cost run")
}

/// Round trips per order, by database, counted on the wire.
async fn round_trips(products: Products, orders: u64, pg_port: u16) -> BTreeMap<String, f64> {
    let (stock_trips, order_trips) = (
        TripCounter::start(pg_port).await,
        TripCounter::start(pg_port).await,
    );
    let env = Environment::relayed(pg_port, stock_trips.port, order_trips.port).await;
    let mut rng = Rng::new(11);
    // Warm the connections, so connecting is not counted.
    one(&env, Scenario::SingleOrder, products, &mut rng).await;
    let before = [stock_trips.trips(), order_trips.trips()];
    for _ in 0..orders {
        one(&env, Scenario::SingleOrder, products, &mut rng).await;
    }
    let after = [stock_trips.trips(), order_trips.trips()];
    [("inventory_db", 0), ("order_db", 1)]
        .into_iter()
        .map(|(db, i)| (db.to_owned(), (after[i] - before[i]) as f64 / orders as f64))
        .collect()
}

/// Everything but the round trips.
async fn measure_direct(products: Products, orders: u64) -> Cost {
    let envs = Arc::new(vec![Environment::new().await]);
    let mut rng = Rng::new(7);
    // Warm the connections, so connecting is not counted.
    one(&envs[0], Scenario::SingleOrder, products, &mut rng).await;

    let stats_on = admin_query(
        INVENTORY_DATABASE_URL,
        "SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'",
    )
    .await[0]
        .get::<_, i64>(0)
        > 0;
    // What earlier measurements left unpublished is not this run's to relay. The relay's
    // backends stay open until their CPU is read: an ended process's time is gone from /proc.
    let relay = relay_connections().await;
    relay_all(&relay).await;
    let (rows_before, commits_before) = (row_counts().await, commits().await);
    let (pg_before, own_before) = (cpu_seconds(Some("postgres")), cpu_seconds(None));
    // Reset last, read first: the counts hold the orders' statements and nothing of the measuring.
    let statements_on = stats_on && simple_query_ok("SELECT pg_stat_statements_reset()").await;
    for _ in 0..orders {
        one(&envs[0], Scenario::SingleOrder, products, &mut rng).await;
    }
    let statements = if statements_on {
        admin_query(
            INVENTORY_DATABASE_URL,
            "SELECT d.datname::text, s.query, s.calls FROM pg_stat_statements s \
             JOIN pg_database d ON d.oid = s.dbid \
             WHERE d.datname IN ('inventory_db', 'order_db') ORDER BY s.calls DESC",
        )
        .await
    } else {
        Vec::new()
    };
    let (pg_after, own_after) = (cpu_seconds(Some("postgres")), cpu_seconds(None));
    // Building each test event (parsing the captured fixture) is the harness's work, not the
    // function's: measured alone and taken off.
    let building = cpu_seconds(None);
    for n in 0..orders {
        std::hint::black_box(order_event(products.nth(n)));
    }
    let building = cpu_seconds(None) - building;
    // The backends report their commit counts when they end: close this environment's.
    drop(envs);
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let per = |n: i64| n as f64 / orders as f64;
    let commits_after = commits().await;
    let relay_before = cpu_seconds(Some("postgres"));
    let passes = relay_all(&relay).await;
    let relay_cpu = cpu_seconds(Some("postgres")) - relay_before;
    drop(relay);
    let rows_after = row_counts().await;
    let mut cost = Cost {
        orders,
        rows: rows_after
            .iter()
            .map(|(table, n)| (table.clone(), per(n - rows_before[table])))
            .collect(),
        commits: commits_after
            .iter()
            .map(|(db, n)| {
                (
                    db.clone(),
                    per(n - commits_before.get(db).copied().unwrap_or(*n)),
                )
            })
            .collect(),
        postgres_cpu_ms: (pg_after - pg_before) * 1000.0 / orders as f64,
        relay_postgres_cpu_ms: relay_cpu * 1000.0 / orders as f64,
        relay_commits: passes as f64 / orders as f64,
        function_cpu_ms: (own_after - own_before - building).max(0.0) * 1000.0 / orders as f64,
        note: (!statements_on).then(|| {
            "pg_stat_statements is not loaded: restart PostgreSQL (localstack/down, then \
             localstack/up; lib.sh preloads it) for statement counts"
                .to_owned()
        }),
        ..Cost::default()
    };
    for row in statements {
        let (db, query, calls): (String, String, i64) = (row.get(0), row.get(1), row.get(2));
        // The reset itself; whatever else the stack ran meanwhile (its schedules) is a call now
        // and then, far below one per order.
        if query.contains("pg_stat_statements_reset") {
            continue;
        }
        *cost.statements.entry(db.clone()).or_default() += per(calls);
        if per(calls) >= 0.5 {
            let short = query.split_whitespace().collect::<Vec<_>>().join(" ");
            cost.top_statements
                .push((db, short.chars().take(110).collect(), per(calls)));
        }
    }
    cost
}

async fn simple_query_ok(sql: &str) -> bool {
    let url = std::env::var(INVENTORY_DATABASE_URL).expect("INVENTORY_DATABASE_URL");
    let Ok((client, connection)) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await
    else {
        return false;
    };
    tokio::spawn(connection);
    client.simple_query(sql).await.is_ok()
}
