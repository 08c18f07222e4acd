//! The soak behind `localstack/soak`: mixed load through the running stack's router (products,
//! single and bulk orders, reads, cancels) for a bounded time, one fault of each kind on the real
//! parts while it runs (through `localstack/ctl`, which the watchdog leaves alone while it acts),
//! then a report in Markdown: requests by status, latency, orders against events and alerts,
//! stock against orders, and anything that never answered.
//!
//!     soak [MINUTES] [REPORT]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::Value;
use stockroom_faults::{ctl, sql, wait_for};
use stockroom_test_support::http::Client;

/// Load clients, each at most one request per [`PACE`]: 24 requests a second, which the debug
/// build of the stack serves on 2 cores with room for recovery.
const CLIENTS: usize = 6;
const PACE: Duration = Duration::from_millis(250);
const PRODUCTS: usize = 8;
const INITIAL: i64 = 1_000_000;
/// A client waits longer than the local gateway's bound (STOCKROOM_GATEWAY_TIMEOUT, 30 s), so a
/// request without an answer here is one the stack never answered.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

struct Call {
    op: &'static str,
    status: Option<u16>,
    took: Duration,
    at: Duration,
}

/// A small xorshift generator: the load needs variety, not quality.
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

struct Shared {
    products: Mutex<Vec<i64>>,
    orders: Mutex<Vec<i64>>,
    calls: Mutex<Vec<Call>>,
    stop: AtomicBool,
    started: Instant,
}

fn client(shared: Arc<Shared>, seed: u64) {
    let api = Client::from_var("STOCKROOM_E2E_URL").timeout(CLIENT_TIMEOUT);
    let mut dice = Dice(seed | 1);
    let user = seed % 1000;
    while !shared.stop.load(Ordering::Relaxed) {
        let began = Instant::now();
        let products = shared.products.lock().unwrap().clone();
        let product = products[dice.below(products.len())];
        let roll = dice.below(100);
        let (op, method, path, body): (&str, &str, String, Option<String>) = match roll {
            0..40 => (
                "order",
                "POST",
                "/api/orders".into(),
                Some(format!(
                    r#"{{"product_id":{product},"quantity":{},"user_id":{user}}}"#,
                    1 + dice.below(3)
                )),
            ),
            40..50 => {
                let other = products[dice.below(products.len())];
                (
                    "bulk order",
                    "POST",
                    "/api/orders/bulk".into(),
                    Some(format!(
                        r#"{{"user_id":{user},"items":[{{"product_id":{product},"quantity":1}},{{"product_id":{other},"quantity":2}}]}}"#
                    )),
                )
            }
            50..58 => {
                let order = {
                    let mut orders = shared.orders.lock().unwrap();
                    (!orders.is_empty()).then(|| {
                        let i = dice.below(orders.len());
                        orders.swap_remove(i)
                    })
                };
                match order {
                    Some(id) => ("cancel", "POST", format!("/api/orders/{id}/cancel"), None),
                    None => (
                        "read product",
                        "GET",
                        format!("/api/products/{product}"),
                        None,
                    ),
                }
            }
            58..75 => (
                "read product",
                "GET",
                format!("/api/products/{product}"),
                None,
            ),
            75..85 => (
                "list products",
                "GET",
                "/api/products?limit=20".into(),
                None,
            ),
            85..93 => (
                "list orders",
                "GET",
                format!("/api/orders/user/{user}?limit=20"),
                None,
            ),
            93..97 => (
                "list notifications",
                "GET",
                "/api/notifications?limit=20".into(),
                None,
            ),
            _ => (
                "create product",
                "POST",
                "/api/products".into(),
                Some(new_product_body()),
            ),
        };
        let reply = api.try_call(method, &path, body.as_deref(), &[]);
        let took = began.elapsed();
        let status = reply.as_ref().ok().map(|r| r.status);
        if let Ok(reply) = &reply {
            let json: Value = serde_json::from_str(&reply.text).unwrap_or(Value::Null);
            match (op, reply.status) {
                ("order", 201) => shared.orders.lock().unwrap().extend(json["id"].as_i64()),
                ("bulk order", 201) => shared.orders.lock().unwrap().extend(
                    json.as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|o| o["id"].as_i64()),
                ),
                ("create product", 201) => {
                    shared.products.lock().unwrap().extend(json["id"].as_i64())
                }
                _ => {}
            }
        } else if let Err(why) = &reply {
            eprintln!("no answer: {why}");
        }
        shared.calls.lock().unwrap().push(Call {
            op,
            status,
            took,
            at: shared.started.elapsed(),
        });
        sleep(PACE.saturating_sub(began.elapsed()));
    }
}

fn new_product_body() -> String {
    format!(
        r#"{{"name":"soak-{}","price":3.25,"stock":{INITIAL}}}"#,
        uuid::Uuid::new_v4()
    )
}

/// A fault: when (its share of the run), what, and how (through `localstack/ctl`).
type Fault = (f64, &'static str, Box<dyn Fn() + Send>);

/// The faults, in order.
fn faults() -> Vec<Fault> {
    let outage = |part: &'static str, how: &'static str, back: &'static str, secs: u64| {
        Box::new(move || {
            ctl(how, part);
            sleep(Duration::from_secs(secs));
            ctl(back, part);
        }) as Box<dyn Fn() + Send>
    };
    vec![
        (
            0.10,
            "broker stopped 20 s, started",
            outage("broker", "stop", "start", 20),
        ),
        (
            0.22,
            "SQS endpoint stopped 20 s, started (empty)",
            outage("sqs", "stop", "start", 20),
        ),
        (
            0.34,
            "SQS endpoint frozen 15 s, thawed",
            outage("sqs", "freeze", "thaw", 15),
        ),
        (
            0.46,
            "broker frozen 10 s, thawed",
            outage("broker", "freeze", "thaw", 10),
        ),
        (
            0.58,
            "PostgreSQL restarted",
            Box::new(|| ctl("restart", "postgres")),
        ),
        (
            0.70,
            "one orders-create instance killed (SIGKILL)",
            Box::new(|| ctl("kill", "orders-create")),
        ),
        (
            0.78,
            "every products-get instance killed (SIGKILL); the watchdog must replace them",
            Box::new(|| ctl("kill-all", "products-get")),
        ),
    ]
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn list(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let minutes: f64 = args.get(1).map_or(30.0, |m| m.parse().expect("MINUTES"));
    let report_path = args.get(2).cloned();
    let run = Duration::from_secs_f64(minutes * 60.0);
    let api = Client::from_var("STOCKROOM_E2E_URL").timeout(CLIENT_TIMEOUT);

    let products: Vec<i64> = (0..PRODUCTS)
        .map(|_| {
            let reply = api.call("POST", "/api/products", Some(&new_product_body()), &[]);
            assert_eq!(reply.status, 201, "{}", reply.text);
            reply.json()["id"].as_i64().unwrap()
        })
        .collect();
    let shared = Arc::new(Shared {
        products: Mutex::new(products),
        orders: Mutex::new(Vec::new()),
        calls: Mutex::new(Vec::new()),
        stop: AtomicBool::new(false),
        started: Instant::now(),
    });
    eprintln!("soak: {minutes} min, {CLIENTS} clients");
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let shared = shared.clone();
            let seed = uuid::Uuid::new_v4().as_u128() as u64 ^ i as u64;
            std::thread::spawn(move || client(shared, seed))
        })
        .collect();

    let mut done_faults = Vec::new();
    for (share, what, action) in faults() {
        let at = run.mul_f64(share);
        sleep(at.saturating_sub(shared.started.elapsed()));
        let began = shared.started.elapsed();
        eprintln!("soak: {:.0} s: {what}", began.as_secs_f64());
        action();
        done_faults.push((began, shared.started.elapsed(), what));
    }
    sleep(run.saturating_sub(shared.started.elapsed()));
    shared.stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().unwrap();
    }
    let load_ended = shared.started.elapsed();
    eprintln!("soak: load stopped; waiting for every order to settle and every event to arrive");

    let products = shared.products.lock().unwrap().clone();
    let in_products = list(&products);
    // What a request left unsettled (pending, cancelling) the reconciler settles once it is
    // older than ORDER_PENDING_TIMEOUT_SECONDS (60 s in the development stack).
    let settle = Instant::now();
    let unsettled = || -> i64 {
        sql(
            "ORDER_DATABASE_URL",
            &format!(
                "SELECT count(*) FROM orders WHERE product_id IN ({in_products}) \
                 AND status IN ('pending', 'cancelling')"
            ),
        )[0]
        .get(0)
    };
    let settled = std::panic::catch_unwind(|| {
        wait_for("orders settled", Duration::from_secs(240), || {
            (unsettled() == 0).then_some(())
        })
    })
    .is_ok();
    let settle_took = settle.elapsed();
    let orders: Vec<(i64, String)> = sql(
        "ORDER_DATABASE_URL",
        &format!("SELECT id, status FROM orders WHERE product_id IN ({in_products})"),
    )
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect();
    let order_ids: Vec<i64> = orders.iter().map(|(id, _)| *id).collect();
    let keys = order_ids
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let events = || -> Vec<(String, String, bool)> {
        if keys.is_empty() {
            return Vec::new();
        }
        sql(
            "ORDER_DATABASE_URL",
            &format!(
                "SELECT event_id::text, event_type, published_at IS NOT NULL \
                 FROM outbox WHERE order_id IN ({keys})"
            ),
        )
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
    };
    let recorded = |ids: &BTreeSet<String>| -> (usize, usize) {
        if ids.is_empty() {
            return (0, 0);
        }
        let list = ids
            .iter()
            .map(|id| format!("'{id}'"))
            .collect::<Vec<_>>()
            .join(",");
        let row = &sql(
            "NOTIFICATION_DATABASE_URL",
            &format!(
                "SELECT count(*), count(forwarded_at) FROM notifications \
                 WHERE event_id::text IN ({list})"
            ),
        )[0];
        (row.get::<_, i64>(0) as usize, row.get::<_, i64>(1) as usize)
    };
    let deliver = Instant::now();
    let mut last = (Vec::new(), (0, 0));
    let delivered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for(
            "every event published, recorded and forwarded",
            Duration::from_secs(300),
            || {
                let ev = events();
                let ids: BTreeSet<String> = ev.iter().map(|(id, _, _)| id.clone()).collect();
                let created = ev.iter().filter(|(_, t, _)| t == "order_created").count();
                let counts = recorded(&ids);
                let done =
                    ev.iter().all(|(_, _, p)| *p) && counts.0 == ids.len() && counts.1 == created;
                last = (ev, counts);
                done.then_some(())
            },
        )
    }))
    .is_ok();
    let deliver_took = deliver.elapsed();
    let (ev, (recorded_n, forwarded_n)) = last;

    // Stock against orders, product by product: what left the stock is what confirmed orders hold.
    let stock: BTreeMap<i64, i64> = sql(
        "INVENTORY_DATABASE_URL",
        &format!("SELECT id, stock FROM products WHERE id IN ({in_products})"),
    )
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect();
    let taken: BTreeMap<i64, i64> = sql(
        "ORDER_DATABASE_URL",
        &format!(
            "SELECT product_id, coalesce(sum(quantity) FILTER (WHERE status = 'confirmed'), 0)::int8 \
             FROM orders WHERE product_id IN ({in_products}) GROUP BY product_id"
        ),
    )
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect();
    let wrong_stock: Vec<String> = products
        .iter()
        .filter_map(|p| {
            let (s, t) = (stock[p], taken.get(p).copied().unwrap_or(0));
            (INITIAL - s != t || s < 0).then(|| format!("product {p}: stock {s}, confirmed {t}"))
        })
        .collect();

    let calls = std::mem::take(&mut *shared.calls.lock().unwrap());
    let mut report = String::new();
    let w = &mut report;
    let _ = writeln!(w, "### Soak of {minutes} min\n");
    let _ = writeln!(
        w,
        "{CLIENTS} clients, each at most 4 requests a second, through the router; {} requests.\n",
        calls.len()
    );
    let _ = writeln!(w, "| at | fault | back after |\n|---|---|---|");
    for (began, ended, what) in &done_faults {
        let _ = writeln!(
            w,
            "| {:.0} s | {what} | {:.0} s |",
            began.as_secs_f64(),
            (*ended - *began).as_secs_f64()
        );
    }
    let _ = writeln!(
        w,
        "\n| request | count | answers by status | p50 | p99 | max |\n|---|---|---|---|---|---|"
    );
    let mut ops: BTreeMap<&str, Vec<&Call>> = BTreeMap::new();
    for c in &calls {
        ops.entry(c.op).or_default().push(c);
    }
    let mut all: Vec<Duration> = calls.iter().map(|c| c.took).collect();
    all.sort();
    for (op, cs) in &ops {
        let mut by: BTreeMap<String, usize> = BTreeMap::new();
        for c in cs {
            let key = c.status.map_or("no answer".into(), |s| s.to_string());
            *by.entry(key).or_default() += 1;
        }
        let mut took: Vec<Duration> = cs.iter().map(|c| c.took).collect();
        took.sort();
        let by = by
            .iter()
            .map(|(s, n)| format!("{s}: {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            w,
            "| {op} | {} | {by} | {} | {} | {} |",
            cs.len(),
            ms(percentile(&took, 0.5)),
            ms(percentile(&took, 0.99)),
            ms(*took.last().unwrap())
        );
    }
    let _ = writeln!(
        w,
        "| all | {} | | {} | {} | {} |",
        calls.len(),
        ms(percentile(&all, 0.5)),
        ms(percentile(&all, 0.99)),
        ms(all.last().copied().unwrap_or_default())
    );
    let unanswered = calls.iter().filter(|c| c.status.is_none()).count();
    let slow: Vec<String> = calls
        .iter()
        .filter(|c| c.took > Duration::from_secs(35))
        .map(|c| {
            format!(
                "{} at {:.0} s: {} after {:.1} s",
                c.op,
                c.at.as_secs_f64(),
                c.status.map_or("no answer".into(), |s| s.to_string()),
                c.took.as_secs_f64()
            )
        })
        .collect();
    let by_status = |s: &str| orders.iter().filter(|(_, st)| st == s).count();
    let created = ev.iter().filter(|(_, t, _)| t == "order_created").count();
    let cancelled_ev = ev.iter().filter(|(_, t, _)| t == "order_cancelled").count();
    let published = ev.iter().filter(|(_, _, p)| *p).count();
    let placed_201: usize = calls
        .iter()
        .filter(|c| c.status == Some(201) && (c.op == "order" || c.op == "bulk order"))
        .count();
    let _ = writeln!(w, "\n| check | result |\n|---|---|");
    let _ = writeln!(
        w,
        "| requests without an answer within {} s | {unanswered} |",
        CLIENT_TIMEOUT.as_secs()
    );
    let _ = writeln!(
        w,
        "| requests answered after more than 35 s (the gateway bound is 30 s) | {} |",
        if slow.is_empty() {
            "none".into()
        } else {
            slow.join("; ")
        }
    );
    let _ = writeln!(
        w,
        "| orders in order_db | {} ({} confirmed, {} cancelled, {} failed, {} still pending or cancelling); order requests answered 201: {placed_201} (a bulk answer holds several) |",
        orders.len(),
        by_status("confirmed"),
        by_status("cancelled"),
        by_status("failed"),
        by_status("pending") + by_status("cancelling")
    );
    let _ = writeln!(
        w,
        "| orders settled after the load | {} |",
        if settled {
            format!("yes, {:.0} s after it stopped", settle_took.as_secs_f64())
        } else {
            "no, within 240 s".into()
        }
    );
    let _ = writeln!(
        w,
        "| order events in the outbox | {} ({created} order_created, {cancelled_ev} order_cancelled); {published} published |",
        ev.len()
    );
    let _ = writeln!(
        w,
        "| events recorded in notification_db | {recorded_n} of {} ({}) |",
        ev.len(),
        if delivered {
            format!(
                "all, {:.0} s after the orders settled",
                deliver_took.as_secs_f64()
            )
        } else {
            "NOT all within 300 s".into()
        }
    );
    let _ = writeln!(
        w,
        "| alerts forwarded to SQS (order_created) | {forwarded_n} of {created} |"
    );
    let _ = writeln!(
        w,
        "| confirmed orders with an order_created event | {} |",
        if created >= by_status("confirmed") + by_status("cancelled") {
            "all"
        } else {
            "NOT all"
        }
    );
    let _ = writeln!(
        w,
        "| stock = initial − confirmed quantity, per product ({} products) | {} |",
        products.len(),
        if wrong_stock.is_empty() {
            "holds for every product".into()
        } else {
            wrong_stock.join("; ")
        }
    );
    let _ = writeln!(w, "| load ran | {:.0} s |", load_ended.as_secs_f64());
    print!("{report}");
    if let Some(path) = report_path {
        std::fs::write(&path, &report).expect("report written");
    }
    let ok = unanswered == 0
        && settled
        && delivered
        && wrong_stock.is_empty()
        && created >= by_status("confirmed") + by_status("cancelled");
    if !ok {
        std::process::exit(1);
    }
}
