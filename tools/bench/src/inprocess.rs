//! Level 1: the handlers themselves, called with real HTTP API events by N simulated execution
//! environments at once (each with its own connections, as in Lambda), against PostgreSQL (no
//! request publishes: the relay does). No router, no process boundary. Latency is until the
//! answer, as a caller sees it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request};
use stockroom::db::{
    Db, INVENTORY_DATABASE_URL, ORDER_DATABASE_URL, STOCK_RESERVATION_DATABASE_URL,
};
use stockroom::handlers::{orders, products};
use stockroom::orders::saga::OrderContext;
use stockroom_test_support::handler::Event;

use crate::scenario::{Products, Rng, Scenario};
use crate::stats::Measured;

/// One simulated execution environment: the clients a function's `main` builds once.
pub struct Environment {
    inventory: Db,
    orders: OrderContext,
}

impl Environment {
    pub async fn new() -> Self {
        Self {
            inventory: Db::from_env(INVENTORY_DATABASE_URL)
                .await
                .expect("inventory_db"),
            orders: OrderContext::from_env().await.expect("order_db"),
        }
    }

    /// An environment whose order connections reach PostgreSQL (on `pg_port`)
    /// through other ports: inventory_db's through `stock_port`, order_db's through `order_port`.
    pub async fn relayed(pg_port: u16, stock_port: u16, order_port: u16) -> Self {
        let url = |var: &str, port: u16| {
            let url = std::env::var(var).unwrap_or_else(|_| panic!("{var} is not set"));
            let (from, to) = (format!(":{pg_port}/"), format!(":{port}/"));
            assert!(url.contains(&from), "{var} does not name port {pg_port}");
            Db::new(&url.replace(&from, &to)).expect("a database URL")
        };
        Self {
            inventory: Db::from_env(INVENTORY_DATABASE_URL)
                .await
                .expect("inventory_db"),
            orders: OrderContext {
                orders: url(ORDER_DATABASE_URL, order_port),
                stock: url(STOCK_RESERVATION_DATABASE_URL, stock_port),
            },
        }
    }
}

/// A single order's HTTP API event, as the benchmark builds it.
pub fn order_event(product_id: i64) -> Request {
    Event::new("POST", "/api/orders", "/api/orders")
        .json_body(&format!(r#"{{"product_id":{product_id},"quantity":1}}"#))
        .request()
}

fn id_of(response: &lambda_http::Response<Body>) -> Option<i64> {
    let Body::Text(text) = response.body() else {
        return None;
    };
    serde_json::from_str::<serde_json::Value>(text).ok()?["id"].as_i64()
}

/// One request of `scenario`: its status and how long the handler took.
pub async fn one(
    env: &Environment,
    scenario: Scenario,
    products: Products,
    rng: &mut Rng,
) -> (StatusCode, Duration) {
    let n = rng.next();
    let request = match scenario {
        Scenario::ProductGet => {
            let id = products.nth(n).to_string();
            Event::new("GET", "/api/products/{id}", &format!("/api/products/{id}"))
                .path_param("id", &id)
                .request()
        }
        Scenario::ProductList => Event::new("GET", "/api/products", "/api/products")
            .query(&[("limit", "100")])
            .request(),
        Scenario::SingleOrder => order_event(products.nth(n)),
        Scenario::HotProduct => order_event(products.hot),
        Scenario::Bulk20 => {
            let items: Vec<String> = products
                .bulk(n)
                .iter()
                .map(|id| format!(r#"{{"product_id":{id},"quantity":1}}"#))
                .collect();
            Event::new("POST", "/api/orders/bulk", "/api/orders/bulk")
                .json_body(&format!(r#"{{"items":[{}]}}"#, items.join(",")))
                .request()
        }
        Scenario::Cancel => {
            // Place the order to cancel first; only the cancel is timed.
            let placed = orders::create(&env.orders, order_event(products.nth(n))).await;
            let Some(id) = id_of(&placed) else {
                return (placed.status(), Duration::ZERO);
            };
            let path = format!("/api/orders/{id}/cancel");
            Event::new("POST", "/api/orders/{id}/cancel", &path)
                .path_param("id", &id.to_string())
                .request()
        }
    };
    let started = Instant::now();
    let response = match scenario {
        Scenario::ProductGet => products::get(&env.inventory, request).await,
        Scenario::ProductList => products::list(&env.inventory, request).await,
        Scenario::SingleOrder | Scenario::HotProduct => orders::create(&env.orders, request).await,
        Scenario::Bulk20 => orders::bulk(&env.orders, request).await,
        Scenario::Cancel => orders::cancel(&env.orders, request).await,
    };
    (response.status(), started.elapsed())
}

fn expected(scenario: Scenario) -> StatusCode {
    match scenario {
        Scenario::SingleOrder | Scenario::HotProduct | Scenario::Bulk20 => StatusCode::CREATED,
        _ => StatusCode::OK,
    }
}

/// Runs `scenario` from `envs.len()` environments at once for `seconds` (after `warmup`). Each
/// environment is a task: one request at a time, as a Lambda execution environment serves them.
pub async fn run(
    envs: &Arc<Vec<Environment>>,
    scenario: Scenario,
    products: Products,
    warmup: Duration,
    seconds: Duration,
) -> Measured {
    let started = Instant::now();
    let measure_from = started + warmup;
    let until = measure_from + seconds;
    let tasks: Vec<_> = (0..envs.len())
        .map(|i| {
            let envs = Arc::clone(envs);
            tokio::spawn(async move {
                let env = &envs[i];
                let mut rng = Rng::new(i as u64 + 1 + started.elapsed().as_nanos() as u64);
                let (mut latencies, mut unexpected) = (Vec::new(), 0u64);
                loop {
                    let now = Instant::now();
                    if now >= until {
                        break;
                    }
                    let (status, took) = one(env, scenario, products, &mut rng).await;
                    if now < measure_from {
                        continue;
                    }
                    if status == expected(scenario) {
                        latencies.push(took.as_micros() as u64);
                    } else {
                        unexpected += 1;
                    }
                }
                (latencies, unexpected)
            })
        })
        .collect();
    let (mut all, mut unexpected) = (Vec::new(), 0);
    for task in tasks {
        let (latencies, bad) = task.await.expect("a client task panicked");
        all.extend(latencies);
        unexpected += bad;
    }
    Measured::from_latencies(all, unexpected, seconds.as_secs_f64())
}
