//! The stock exporter against the real inventory_db and pushgateway, through the scheduled event
//! EventBridge delivers: one group with every product's stock, replaced whole, so a deleted
//! product's series goes; the per-product groups of the earlier layout are deleted on the way.
//! For CloudWatch, a gauge per product in the run's EMF lines.

use stockroom::db::INVENTORY_DATABASE_URL;
use stockroom::handlers::stock_levels;
use stockroom::telemetry::{Pushgateway, STOCK_JOB, emf};
use stockroom_test_support::handler::{admin_query, db, product_with_stock, scheduled_event};

/// The pushed `inventory_stock_levels` of `product`, from the pushgateway's own exposition.
async fn pushed_level(gateway: &Pushgateway, product: i64) -> Vec<String> {
    let text = gateway.call("GET", "/metrics", "").await.unwrap();
    let label = format!("product_id=\"{product}\"");
    text.lines()
        .filter(|l| l.starts_with("inventory_stock_levels{") && l.contains(&label))
        .map(|l| l.rsplit(' ').next().unwrap().to_owned())
        .collect()
}

/// Held by the tests that create products and compare a run with the count of every product:
/// run side by side, each would count the other's.
static COUNTING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn products() -> usize {
    let rows = admin_query(INVENTORY_DATABASE_URL, "SELECT count(*) FROM products").await;
    rows[0].get::<_, i64>(0) as usize
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_product_has_its_stock_in_one_group_and_a_deleted_one_goes() {
    let _counting = COUNTING.lock().await;
    let gateway = Pushgateway::from_env()
        .unwrap()
        .expect("PUSHGATEWAY_URL: run the tests with localstack/test");
    let db = db().await;
    let (kept, deleted) = (
        product_with_stock("1.00", 12).await,
        product_with_stock("1.00", 3).await,
    );
    // A group of the earlier layout, as a function pushed it after a stock change.
    gateway
        .call(
            "PUT",
            &format!("/metrics/job/{STOCK_JOB}/product_id/{kept}"),
            "# TYPE inventory_stock_levels gauge\ninventory_stock_levels{product_name=\"old\"} 99\n",
        )
        .await
        .unwrap();

    let exported = stock_levels::run(&db, Some(&gateway), scheduled_event())
        .await
        .unwrap();
    assert_eq!(exported.products, products().await);
    assert!(exported.old_groups_deleted >= 1, "{exported:?}");
    let groups = gateway.groups(STOCK_JOB).await.unwrap();
    assert_eq!(groups.len(), 1, "one group: {groups:?}");
    assert!(
        !groups[0].0.iter().any(|(k, _)| k == "product_id"),
        "{groups:?}"
    );
    assert_eq!(pushed_level(&gateway, kept).await, ["12"]);
    assert_eq!(pushed_level(&gateway, deleted).await, ["3"]);

    for sql in [
        format!("UPDATE products SET stock = 11 WHERE id = {kept}"),
        format!("DELETE FROM products WHERE id = {deleted}"),
    ] {
        admin_query(INVENTORY_DATABASE_URL, &sql).await;
    }
    let again = stock_levels::run(&db, Some(&gateway), scheduled_event())
        .await
        .unwrap();
    assert_eq!(again.old_groups_deleted, 0);
    assert_eq!(pushed_level(&gateway, kept).await, ["11"]);
    assert!(
        pushed_level(&gateway, deleted).await.is_empty(),
        "gone with the product"
    );
}

/// With metrics off (no backend), every scheduled run must succeed without doing anything (it
/// failed init on each run before), and push nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_metrics_off_a_run_does_nothing_and_succeeds() {
    let db = db().await;
    let exported = stock_levels::run(&db, None, scheduled_event())
        .await
        .unwrap();
    assert_eq!(
        exported,
        stock_levels::Exported {
            metrics_off: true,
            ..Default::default()
        }
    );
}

/// What `documents` (EMF lines) say of `product`'s `inventory_stock_levels`.
fn written_level(documents: &[serde_json::Value], product: i64) -> Vec<serde_json::Value> {
    documents
        .iter()
        .filter(|d| d["product_id"] == product.to_string().as_str())
        .map(|d| d["inventory_stock_levels"].clone())
        .collect()
}

#[tokio::test(flavor = "current_thread")]
async fn for_cloudwatch_each_product_is_a_gauge_and_a_deleted_one_is_not_written() {
    let _counting = COUNTING.lock().await;
    let db = db().await;
    let (kept, deleted) = (
        product_with_stock("1.00", 12).await,
        product_with_stock("1.00", 3).await,
    );
    // This thread's recorder: what the run records goes to it.
    let recorder = emf::Recorder::new("Test", "stock-levels");
    let _local = metrics::set_default_local_recorder(&recorder);

    let exported = stock_levels::record(&db).await.unwrap();
    assert_eq!(exported.products, products().await);
    let levels = recorder.documents(0);
    assert_eq!(written_level(&levels, kept), [serde_json::json!(12.0)]);
    assert_eq!(written_level(&levels, deleted), [serde_json::json!(3.0)]);
    assert!(levels.iter().all(|d| d["function"] == "stock-levels"));

    for sql in [
        format!("UPDATE products SET stock = 11 WHERE id = {kept}"),
        format!("DELETE FROM products WHERE id = {deleted}"),
    ] {
        admin_query(INVENTORY_DATABASE_URL, &sql).await;
    }
    stock_levels::record(&db).await.unwrap();
    let again = recorder.documents(0);
    assert_eq!(written_level(&again, kept), [serde_json::json!(11.0)]);
    assert!(
        written_level(&again, deleted).is_empty(),
        "gone with the product"
    );
}
