//! SQL on `notification_db`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::value::RawValue;
use tokio_postgres::types::Type;
use tokio_postgres::{Error, GenericClient};
use uuid::Uuid;

use crate::notification::Notification;
use crate::pagination::Page;

/// What recording an event found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    pub id: i64,
    /// `false` when the event had been recorded before (a redelivery).
    pub new: bool,
    pub forwarded: bool,
}

/// Records a notification once per `event_id`.
pub async fn record(
    client: &impl GenericClient,
    n: &Notification,
    source: &str,
) -> Result<Recorded, Error> {
    let event_type = n.event_type.as_str();
    // DO UPDATE (a no-op) rather than DO NOTHING, so a redelivery still returns the row.
    let row = client
        .query_typed_one(
            "INSERT INTO notifications (event_id, event_type, message, product_id, order_id, event, source) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (event_id) DO UPDATE SET event_id = EXCLUDED.event_id \
             RETURNING id, xmax = 0 AS new, forwarded_at IS NOT NULL AS forwarded",
            &[
                (&n.event_id, Type::UUID),
                (&event_type, Type::TEXT),
                (&n.message, Type::TEXT),
                (&n.product_id, Type::INT8),
                (&n.order_id, Type::INT8),
                (&n.event, Type::TEXT),
                (&source, Type::TEXT),
            ],
        )
        .await?;
    Ok(Recorded {
        id: row.get(0),
        new: row.get(1),
        forwarded: row.get(2),
    })
}

pub async fn mark_forwarded(client: &impl GenericClient, id: i64) -> Result<(), Error> {
    client
        .execute_typed(
            "UPDATE notifications SET forwarded_at = now() WHERE id = $1",
            &[(&id, Type::INT8)],
        )
        .await?;
    Ok(())
}

/// A recorded notification as `GET /api/notifications` returns it.
#[derive(Debug, Serialize)]
pub struct NotificationView {
    pub id: i64,
    pub event_id: Uuid,
    pub event_type: String,
    pub message: String,
    pub product_id: Option<i64>,
    pub order_id: Option<i64>,
    pub forwarded: bool,
    pub received_at: DateTime<Utc>,
    /// The event exactly as it arrived.
    pub event: Box<RawValue>,
}

/// Newest first; all or one keyset page.
pub async fn list(client: &impl GenericClient, page: Page) -> Result<Vec<NotificationView>, Error> {
    let (after, limit) = match page {
        Page::All => (i64::MAX, i64::MAX),
        Page::Keyset { after, limit } => (after.unwrap_or(i64::MAX), limit),
    };
    let rows = client
        .query_typed(
            "SELECT id, event_id, event_type, message, product_id, order_id, forwarded_at IS NOT NULL, \
             received_at, event FROM notifications WHERE id < $1 ORDER BY id DESC LIMIT $2",
            &[(&after, Type::INT8), (&limit, Type::INT8)],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| NotificationView {
            id: row.get(0),
            event_id: row.get(1),
            event_type: row.get(2),
            message: row.get(3),
            product_id: row.get(4),
            order_id: row.get(5),
            forwarded: row.get(6),
            received_at: row.get(7),
            // Recorded only after it parsed as a JSON object.
            event: RawValue::from_string(row.get(8)).expect("stored events are JSON"),
        })
        .collect())
}
