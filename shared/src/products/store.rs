//! The products table in `inventory_db`. Every statement is a `query_typed` call: parameters carry
//! their types, so no named statement is prepared (RDS Proxy would pin the session for one).

use rust_decimal::Decimal;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Error, GenericClient, Row};

use crate::Money;
use crate::http::pagination::Page;
use crate::products::{Product, ProductInput};
use crate::telemetry::StockLevel;

const COLUMNS: &str = "id, name, description, price, stock, created_at, updated_at, version";

fn product(row: &Row) -> Product {
    Product {
        id: row.get("id"),
        name: row.get("name"),
        description: row.get("description"),
        price: Money::from_stored(row.get::<_, Decimal>("price")),
        stock: row.get("stock"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
        version: row.get("version"),
    }
}

fn input_params<'a>(
    input: &'a ProductInput,
    price: &'a Decimal,
) -> [(&'a (dyn ToSql + Sync), Type); 4] {
    [
        (&input.name, Type::TEXT),
        (&input.description, Type::TEXT),
        (price, Type::NUMERIC),
        (&input.stock, Type::INT4),
    ]
}

pub async fn insert(client: &impl GenericClient, input: &ProductInput) -> Result<Product, Error> {
    let price = input.price.amount();
    let sql = format!(
        "INSERT INTO products (name, description, price, stock) VALUES ($1, $2, $3, $4) \
         RETURNING {COLUMNS}"
    );
    let row = client
        .query_typed_one(&sql, &input_params(input, &price))
        .await?;
    Ok(product(&row))
}

pub async fn get(client: &impl GenericClient, id: i64) -> Result<Option<Product>, Error> {
    let sql = format!("SELECT {COLUMNS} FROM products WHERE id = $1");
    let row = client.query_typed_opt(&sql, &[(&id, Type::INT8)]).await?;
    Ok(row.as_ref().map(product))
}

/// Products in ascending id order: the whole list (as far as it fits), or one keyset page.
pub async fn list(client: &impl GenericClient, page: Page) -> Result<Vec<Product>, Error> {
    let (after, limit) = (page.after().unwrap_or(0), page.limit());
    let sql = format!("SELECT {COLUMNS} FROM products WHERE id > $1 ORDER BY id LIMIT $2");
    let rows = client
        .query_typed(&sql, &[(&after, Type::INT8), (&limit, Type::INT8)])
        .await?;
    Ok(rows.iter().map(product).collect())
}

/// What [`replace`] did.
#[derive(Debug)]
pub enum Replaced {
    Done(Product),
    NotFound,
    /// The product is at another version than any the caller named.
    Stale,
}

/// Replaces a product's editable fields, only if its version is one of `versions` when given
/// (`If-Match`).
pub async fn replace(
    client: &impl GenericClient,
    id: i64,
    input: &ProductInput,
    versions: Option<&[i64]>,
) -> Result<Replaced, Error> {
    let price = input.price.amount();
    let sql = format!(
        "UPDATE products SET name = $2, description = $3, price = $4, stock = $5, updated_at = now() \
         WHERE id = $1 AND ($6::bigint[] IS NULL OR version = ANY ($6)) \
         RETURNING {COLUMNS}"
    );
    let [name, description, price, stock] = input_params(input, &price);
    let versions = versions.map(<[i64]>::to_vec);
    let row = client
        .query_typed_opt(
            &sql,
            &[
                (&id, Type::INT8),
                name,
                description,
                price,
                stock,
                (&versions, Type::INT8_ARRAY),
            ],
        )
        .await?;
    if let Some(row) = row {
        return Ok(Replaced::Done(product(&row)));
    }
    let exists = client
        .query_typed_opt("SELECT 1 FROM products WHERE id = $1", &[(&id, Type::INT8)])
        .await?
        .is_some();
    Ok(if exists && versions.is_some() {
        Replaced::Stale
    } else {
        Replaced::NotFound
    })
}

/// What [`adjust_stock`] did.
#[derive(Debug)]
pub enum Adjusted {
    Done(Product),
    NotFound,
    /// Taking `delta` away would leave less than nothing: `available` is the stock now.
    Insufficient {
        available: i64,
    },
    /// Adding it would go past what a write may set ([`crate::products::STOCK_MAX`]).
    TooMuch {
        available: i64,
    },
}

/// Adds `delta` (negative: takes away) to a product's stock in one statement, so concurrent
/// sales and other adjustments are never lost, and never below zero or above
/// [`crate::products::STOCK_MAX`].
pub async fn adjust_stock(
    client: &impl GenericClient,
    id: i64,
    delta: i64,
) -> Result<Adjusted, Error> {
    let max = crate::products::STOCK_MAX;
    let sql = format!(
        "UPDATE products SET stock = stock + $2, updated_at = now() \
         WHERE id = $1 AND stock + $2 >= 0 AND stock + $2 <= $3 \
         RETURNING {COLUMNS}"
    );
    let row = client
        .query_typed_opt(
            &sql,
            &[(&id, Type::INT8), (&delta, Type::INT8), (&max, Type::INT8)],
        )
        .await?;
    if let Some(row) = row {
        return Ok(Adjusted::Done(product(&row)));
    }
    let stock = client
        .query_typed_opt(
            "SELECT stock FROM products WHERE id = $1",
            &[(&id, Type::INT8)],
        )
        .await?
        .map(|row| row.get::<_, i64>(0));
    Ok(match stock {
        None => Adjusted::NotFound,
        Some(available) if delta < 0 => Adjusted::Insufficient { available },
        Some(available) => Adjusted::TooMuch { available },
    })
}

/// Deletes a product; false when there was no such product.
pub async fn delete(client: &impl GenericClient, id: i64) -> Result<bool, Error> {
    let deleted = client
        .execute_typed("DELETE FROM products WHERE id = $1", &[(&id, Type::INT8)])
        .await?;
    Ok(deleted > 0)
}

/// Every product's stock, by id, for `inventory_stock_levels` (the `stock-levels` function).
pub async fn stock_levels(client: &impl GenericClient) -> Result<Vec<StockLevel>, Error> {
    let rows = client
        .query_typed("SELECT id, name, stock FROM products ORDER BY id", &[])
        .await?;
    Ok(rows
        .iter()
        .map(|row| StockLevel {
            product_id: row.get("id"),
            name: row.get("name"),
            stock: row.get("stock"),
        })
        .collect())
}
