//! The scenarios, the products they run on, and the invariant checked after each.

use serde::{Deserialize, Serialize};
use stockroom::db::{INVENTORY_DATABASE_URL, ORDER_DATABASE_URL};
use stockroom_test_support::handler::{Event, admin_query};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// `GET /api/products/{id}`, a random one of the catalogue.
    ProductGet,
    /// `GET /api/products?limit=100`.
    ProductList,
    /// `POST /api/orders` of one unit of a random product of the catalogue.
    SingleOrder,
    /// `POST /api/orders` of one unit, every buyer on the same product.
    HotProduct,
    /// `POST /api/orders/bulk` of 20 distinct products, one unit each.
    Bulk20,
    /// `POST /api/orders/{id}/cancel` of an order placed just before (the placing is not timed).
    Cancel,
}

impl Scenario {
    pub const ALL: [Scenario; 6] = [
        Self::ProductGet,
        Self::ProductList,
        Self::SingleOrder,
        Self::HotProduct,
        Self::Bulk20,
        Self::Cancel,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Self::ProductGet => "product get",
            Self::ProductList => "product list (100)",
            Self::SingleOrder => "single order (1,000 products)",
            Self::HotProduct => "hot product (one product)",
            Self::Bulk20 => "bulk order (20 items)",
            Self::Cancel => "cancel",
        }
    }

    pub fn places_orders(self) -> bool {
        matches!(
            self,
            Self::SingleOrder | Self::HotProduct | Self::Bulk20 | Self::Cancel
        )
    }
}

pub const CATALOGUE: i64 = 1000;
pub const BULK_ITEMS: i64 = 20;
const STOCK: i64 = 1_000_000_000;

/// This run's products: `CATALOGUE` consecutive ids, and the hot one.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Products {
    pub first: i64,
    pub hot: i64,
}

impl Products {
    /// Creates this run's products, each with more stock than any run can sell.
    pub async fn create(run: &str) -> Self {
        let rows = admin_query(
            INVENTORY_DATABASE_URL,
            &format!(
                "INSERT INTO products (name, price, stock) \
                 SELECT 'bench-{run}-' || i, 9.99, {STOCK} FROM generate_series(0, {CATALOGUE}) i \
                 RETURNING id"
            ),
        )
        .await;
        let mut ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
        ids.sort_unstable();
        assert!(
            ids.windows(2).all(|w| w[1] == w[0] + 1),
            "the catalogue's ids are consecutive"
        );
        Self {
            first: ids[0],
            hot: ids[CATALOGUE as usize],
        }
    }

    /// The `n`th product of the catalogue (wrapping).
    pub fn nth(self, n: u64) -> i64 {
        self.first + (n % CATALOGUE as u64) as i64
    }

    /// 20 distinct products starting at `n` (37 is prime to 1000, so no two coincide).
    pub fn bulk(self, n: u64) -> Vec<i64> {
        (0..BULK_ITEMS as u64)
            .map(|k| self.nth(n + 37 * k))
            .collect()
    }

    /// No stock below zero, nothing left pending, and every unit sold belongs to exactly one
    /// confirmed order: the stock invariant, checked across both databases.
    pub async fn check(self) -> Result<(), String> {
        let last = self.hot;
        let inventory = admin_query(
            INVENTORY_DATABASE_URL,
            &format!(
                "SELECT count(*) FILTER (WHERE stock < 0), \
                        coalesce(sum({STOCK} - stock), 0)::bigint \
                 FROM products WHERE id BETWEEN {} AND {last}",
                self.first
            ),
        )
        .await;
        let (negative, sold): (i64, i64) = (inventory[0].get(0), inventory[0].get(1));
        let orders = admin_query(
            ORDER_DATABASE_URL,
            &format!(
                "SELECT coalesce(sum(quantity) FILTER (WHERE status = 'confirmed'), 0)::bigint, \
                        count(*) FILTER (WHERE status IN ('pending', 'cancelling')) \
                 FROM orders WHERE product_id BETWEEN {} AND {last}",
                self.first
            ),
        )
        .await;
        let (confirmed, unsettled): (i64, i64) = (orders[0].get(0), orders[0].get(1));
        if negative > 0 {
            return Err(format!("{negative} products have negative stock"));
        }
        if unsettled > 0 {
            return Err(format!(
                "{unsettled} orders are still pending or cancelling"
            ));
        }
        if sold != confirmed {
            return Err(format!(
                "stock sold {sold} but confirmed orders hold {confirmed}"
            ));
        }
        Ok(())
    }
}

/// A small, fast, seeded generator: each simulated client gets its own sequence.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// The HTTP functions whose cold start is measured, each with a real event it answers.
pub fn cold_start_events(products: Products) -> Vec<(&'static str, String)> {
    let id = products.nth(0).to_string();
    let order = format!(r#"{{"product_id":{},"quantity":1}}"#, products.nth(1));
    let bulk = format!(
        r#"{{"items":[{}]}}"#,
        products
            .bulk(2)
            .iter()
            .map(|id| format!(r#"{{"product_id":{id},"quantity":1}}"#))
            .collect::<Vec<_>>()
            .join(",")
    );
    vec![
        (
            "health",
            Event::new("GET", "/health", "/health").event_json(),
        ),
        (
            "products-get",
            Event::new("GET", "/api/products/{id}", &format!("/api/products/{id}"))
                .path_param("id", &id)
                .event_json(),
        ),
        (
            "products-list",
            Event::new("GET", "/api/products", "/api/products")
                .query(&[("limit", "100")])
                .event_json(),
        ),
        (
            "orders-create",
            Event::new("POST", "/api/orders", "/api/orders")
                .json_body(&order)
                .event_json(),
        ),
        (
            "orders-bulk",
            Event::new("POST", "/api/orders/bulk", "/api/orders/bulk")
                .json_body(&bulk)
                .event_json(),
        ),
    ]
}
