//! The event schema exists once, in `stockroom::events`: for every event type, what the relay
//! sends for what the real triggers wrote parses into the typed `Event` and serialises back to
//! the same JSON, field for field, and docs/events.md lists exactly those fields.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use stockroom::db::{INVENTORY_DATABASE_URL, ORDER_DATABASE_URL};
use stockroom::events;
use stockroom::events::store::Outbox;
use stockroom::events::{Event, EventType};
use stockroom::orders;
use stockroom_test_support::handler::{admin_query, order_dbs, product_with_stock, single_order};

/// The events of one product or order, as the relay sends them, in order.
async fn payloads(var: &str, key: i64) -> Vec<String> {
    let outbox = if var == INVENTORY_DATABASE_URL {
        Outbox::Inventory
    } else {
        Outbox::Orders
    };
    let db = stockroom::db::Db::new(&std::env::var(var).unwrap()).unwrap();
    db.run("test", async |c| {
        events::store::of_key(c, outbox, key).await
    })
    .await
    .unwrap()
    .into_iter()
    .map(|event| event.payload)
    .collect()
}

/// One event of each type, as the triggers wrote them: a product created low (created + alert),
/// updated by an order (updated; order created), the order cancelled (cancelled; updated), the
/// product deleted.
async fn one_of_each() -> BTreeMap<&'static str, String> {
    let product = product_with_stock("12.50", 5).await;
    let ctx = order_dbs().await;
    let placed = orders::saga::place(&ctx, &single_order(product, 2), None).await;
    assert_eq!(placed.status, 201, "{}", placed.body);
    let order: Value = serde_json::from_str(&placed.body).unwrap();
    let order_id = order["id"].as_i64().unwrap();
    orders::saga::cancel(&ctx, order_id, None).await.unwrap();
    admin_query(
        INVENTORY_DATABASE_URL,
        &format!("DELETE FROM products WHERE id = {product}"),
    )
    .await;
    let mut by_type = BTreeMap::new();
    for payload in payloads(INVENTORY_DATABASE_URL, product)
        .await
        .into_iter()
        .chain(payloads(ORDER_DATABASE_URL, order_id).await)
    {
        let value: Value = serde_json::from_str(&payload).unwrap();
        let event_type = EventType::ALL
            .into_iter()
            .find(|t| value["event_type"] == t.as_str())
            .unwrap_or_else(|| panic!("an event type the schema lacks: {payload}"));
        by_type.entry(event_type.as_str()).or_insert(payload);
    }
    by_type
}

#[tokio::test]
async fn every_event_the_triggers_write_round_trips_through_the_typed_schema() {
    let events = one_of_each().await;
    let types: Vec<_> = EventType::ALL.iter().map(|t| t.as_str()).collect();
    assert_eq!(
        events.keys().copied().collect::<Vec<_>>().len(),
        types.len(),
        "{events:#?}"
    );
    for (event_type, payload) in &events {
        let event = Event::parse(payload.as_bytes())
            .unwrap_or_else(|err| panic!("{event_type} does not parse: {err}: {payload}"));
        assert_eq!(event.kind.event_type().as_str(), *event_type);
        let written: Value = serde_json::from_str(payload).unwrap();
        let typed = serde_json::to_value(&event).unwrap();
        assert_eq!(
            typed, written,
            "{event_type}: the type drops or changes a field"
        );
        // Money stays exact, as the database wrote it: two decimals from the decimal's digits.
        let text = serde_json::to_string(&event).unwrap();
        for money in [
            "\"price\":12.50",
            "\"unit_price\":12.50",
            "\"total_price\":25.00",
        ] {
            let field = money.split(':').next().unwrap();
            if payload.contains(field) {
                assert!(text.contains(money), "{field}: {text}");
            }
        }
    }
}

/// The field names of docs/events.md's "Envelope" and "Fields by type" tables.
fn documented() -> (BTreeSet<String>, BTreeMap<String, BTreeSet<String>>) {
    let doc = include_str!("../../docs/events.md");
    let names = |cell: &str| -> BTreeSet<String> {
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    };
    let section = |title: &str| -> Vec<Vec<String>> {
        let start = doc
            .find(title)
            .unwrap_or_else(|| panic!("no {title} in docs/events.md"));
        doc[start..]
            .lines()
            .skip_while(|line| !line.starts_with('|'))
            .take_while(|line| line.starts_with('|'))
            .skip(2)
            .map(|line| line.split('|').map(str::trim).map(str::to_owned).collect())
            .collect()
    };
    let envelope = section("## Envelope")
        .iter()
        .flat_map(|row| names(&row[1]))
        .collect();
    let mut by_type = BTreeMap::new();
    for row in section("## Fields by type") {
        for event_type in names(&row[1]) {
            // The fields, not the remark in parentheses after them.
            let fields = row[2].split(" (").next().unwrap_or_default();
            by_type.insert(event_type, names(fields));
        }
    }
    (envelope, by_type)
}

#[tokio::test]
async fn docs_events_md_lists_exactly_the_fields_of_each_type() {
    let (envelope, documented) = documented();
    let events = one_of_each().await;
    let documented_types: BTreeSet<&str> = documented.keys().map(String::as_str).collect();
    let written_types: BTreeSet<&str> = events.keys().copied().collect();
    assert_eq!(
        documented_types, written_types,
        "docs/events.md documents other event types"
    );
    for (event_type, payload) in &events {
        let event = Event::parse(payload.as_bytes()).unwrap();
        let typed = serde_json::to_value(&event).unwrap();
        let fields: BTreeSet<String> = typed.as_object().unwrap().keys().cloned().collect();
        let expected: BTreeSet<String> = envelope
            .iter()
            .chain(&documented[*event_type])
            .cloned()
            .collect();
        assert_eq!(
            fields, expected,
            "{event_type}: docs/events.md and the schema differ"
        );
    }
}
