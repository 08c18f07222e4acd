//! The products table in `inventory_db`. Every statement is a `query_typed` call: parameters carry
//! their types, so no named statement is prepared (RDS Proxy would pin the session for one).

use rust_decimal::Decimal;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Error, GenericClient, Row};

use crate::Money;
use crate::pagination::Page;
use crate::product::{Product, ProductInput};

const COLUMNS: &str = "id, name, description, price, stock, created_at, updated_at";

fn product(row: &Row) -> Product {
    Product {
        id: row.get("id"),
        name: row.get("name"),
        description: row.get("description"),
        price: Money::from_stored(row.get::<_, Decimal>("price")),
        stock: row.get("stock"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
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

/// Every write returns the id of its transaction (`txid_current()`), whose outbox events the
/// caller publishes once it has committed.
pub type Txid = i64;

pub async fn insert(
    client: &impl GenericClient,
    input: &ProductInput,
) -> Result<(Product, Txid), Error> {
    let price = input.price.amount();
    let sql = format!(
        "INSERT INTO products (name, description, price, stock) VALUES ($1, $2, $3, $4) \
         RETURNING {COLUMNS}, txid_current() AS txid"
    );
    let row = client
        .query_typed_one(&sql, &input_params(input, &price))
        .await?;
    Ok((product(&row), row.get("txid")))
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

/// Replaces a product's editable fields; `None` when there is no such product.
pub async fn replace(
    client: &impl GenericClient,
    id: i64,
    input: &ProductInput,
) -> Result<Option<(Product, Txid)>, Error> {
    let price = input.price.amount();
    let sql = format!(
        "UPDATE products SET name = $2, description = $3, price = $4, stock = $5, updated_at = now() \
         WHERE id = $1 RETURNING {COLUMNS}, txid_current() AS txid"
    );
    let [name, description, price, stock] = input_params(input, &price);
    let row = client
        .query_typed_opt(&sql, &[(&id, Type::INT8), name, description, price, stock])
        .await?;
    Ok(row.map(|row| (product(&row), row.get("txid"))))
}

/// Deletes a product; `None` when there was no such product.
pub async fn delete(client: &impl GenericClient, id: i64) -> Result<Option<Txid>, Error> {
    let row = client
        .query_typed_opt(
            "DELETE FROM products WHERE id = $1 RETURNING txid_current()",
            &[(&id, Type::INT8)],
        )
        .await?;
    Ok(row.map(|row| row.get(0)))
}
