//! Faults on the real parts of the test stack, each under order load over HTTP: the broker
//! frozen or restarted, the SQS endpoint stopped or frozen, PostgreSQL restarted. After each: every placed
//! order's event is on the topic (twice only where the outage left its delivery in doubt) and
//! recorded exactly once, alerts reach SQS, and stock agrees with the orders. Run one at a time (`--test-threads=1`), after the other tests.

use std::collections::{BTreeMap, BTreeSet};
use std::thread::sleep;
use std::time::{Duration, Instant};

use stockroom_faults::*;

const INITIAL: i32 = 1_000_000;

/// Waits until every order's `order_created` is published and recorded once, within `limit`;
/// returns the event ids.
fn delivered(orders: &[i64], limit: Duration) -> BTreeSet<String> {
    let ids = wait_for("every order_created published", limit, || {
        let events = order_events(orders);
        (events.len() == orders.len() && events.values().all(|(_, published)| *published)).then(
            || {
                events
                    .into_values()
                    .map(|(id, _)| id)
                    .collect::<BTreeSet<_>>()
            },
        )
    });
    let counts = wait_for("every order_created recorded", limit, || {
        let (counts, _) = recorded(&ids);
        (counts.len() == ids.len()).then_some(counts)
    });
    assert!(
        counts.values().all(|&n| n == 1),
        "recorded twice: {counts:?}"
    );
    ids
}

/// Every one of `ids` is on `order-events`; returns those that are there more than once.
fn on_topic_copies(orders: &[i64], ids: &BTreeSet<String>) -> Vec<(String, usize)> {
    let seen = on_topic("order-events", orders, ids.len());
    let keys: BTreeSet<String> = seen.keys().cloned().collect();
    assert_eq!(&keys, ids, "the topic holds exactly the orders' events");
    seen.into_iter().filter(|(_, n)| *n > 1).collect()
}

fn alerts_of(ids: &BTreeSet<String>) -> Vec<String> {
    drain_queue(&env("ALERTS_QUEUE_URL"))
        .into_iter()
        .filter_map(|m| m["event_id"].as_str().map(str::to_owned))
        .filter(|id| ids.contains(id))
        .collect()
}

/// Sorted first of the fault tests (libtest runs them by name). No request talks to the broker
/// (the relay is the only publisher), so a frozen broker delays events, never answers.
#[test]
fn a_broker_frozen_mid_order_holds_up_no_answer_and_loses_no_event() {
    const ORDERS: usize = 4;
    let product = product(INITIAL);
    let body = format!(r#"{{"product_id":{product},"quantity":1}}"#);
    // Every environment of orders-create warm and idle first (a few clients at once start them
    // all), and the relay's producer connected: the warm-up orders' events are published.
    let warming = Load::start(product, 4);
    sleep(Duration::from_secs(3));
    let warm = placed(&warming.stop());
    assert!(!warm.is_empty(), "no warm-up order was placed");
    wait_for(
        "the warm-up orders' events published",
        Duration::from_secs(30),
        || {
            order_events(&warm)
                .values()
                .all(|(_, published)| *published)
                .then_some(())
        },
    );
    ctl("freeze", "broker");
    let mut answers = Vec::new();
    for _ in 0..ORDERS {
        let started = Instant::now();
        let answer = post("/api/orders", &body).expect("the API answers");
        answers.push((answer, started.elapsed()));
    }
    // Longer than the relay's 5 s wait for the broker: its pass has given up by now.
    sleep(Duration::from_secs(7));
    ctl("thaw", "broker");
    let thawed = Instant::now();
    for ((status, body), _) in &answers {
        assert_eq!(*status, 201, "{body}");
    }
    // The broker is not on the order path: when requests published, the first order after the
    // freeze took the publisher's whole 5 s wait. The bound is on the typical answer, and no
    // answer may take the relay's whole wait.
    let mut took: Vec<Duration> = answers.iter().map(|(_, took)| *took).collect();
    took.sort();
    let first = answers[0].1;
    assert!(
        took[took.len() / 2] < Duration::from_secs(1) && took.iter().all(|t| t.as_secs() < 5),
        "orders waited for the frozen broker: {took:?}"
    );
    let mut orders: Vec<i64> = answers
        .iter()
        .map(|((_, body), _)| body["id"].as_i64().unwrap())
        .collect();
    orders.extend(&warm);
    let ids = delivered(&orders, Duration::from_secs(90));
    eprintln!(
        "first order answered in {:.0} ms with the broker frozen; all {} delivered {:.1} s after it thawed",
        first.as_secs_f64() * 1000.0,
        orders.len(),
        thawed.elapsed().as_secs_f64()
    );
    // The frozen broker reads a produce the relay gave up on once it thaws: that event is in
    // doubt and the relay's next pass sends it again (at most once more).
    let copies = on_topic_copies(&orders, &ids);
    assert!(
        copies.len() <= ORDERS && copies.iter().all(|(_, n)| *n == 2),
        "more copies than the orders placed during the freeze: {copies:?}"
    );
    assert_stock_invariant(product, INITIAL.into());
}

#[test]
fn a_broker_restart_under_load_loses_no_event_and_records_each_once() {
    const CLIENTS: usize = 8;
    let product = product(INITIAL);
    let load = Load::start(product, CLIENTS);
    wait_for("orders flowing", Duration::from_secs(60), || {
        (load.count() >= 50).then_some(())
    });
    ctl("stop", "broker");
    sleep(Duration::from_secs(15));
    ctl("start", "broker");
    let recovered = Instant::now();
    sleep(Duration::from_secs(5));
    let outcomes = load.stop();
    let orders = placed(&outcomes);
    assert_eq!(
        orders.len(),
        outcomes.len(),
        "the broker is not on the order path: every order placed: {:?}",
        tally(&outcomes)
    );
    let ids = delivered(
        &orders,
        // Measured 19–42 s from the broker's return when the relay ran every 5 s (most of it the
        // trigger's consumer rejoining its group): 90 s leaves CI's slower runs room.
        Duration::from_secs(90).saturating_sub(recovered.elapsed()),
    );
    eprintln!(
        "{} orders, all delivered {:.1} s after the broker came back",
        orders.len(),
        recovered.elapsed().as_secs_f64()
    );
    // A produce the broker wrote just as it stopped, but never acknowledged, is in doubt: the
    // relay's next pass sends it again (outbox → broker is at least once; `delivered` showed
    // each recorded once). One batch is in flight at the stop, and nothing is sent more than
    // twice.
    let copies = on_topic_copies(&orders, &ids);
    assert!(
        copies.len() <= CLIENTS && copies.iter().all(|(_, n)| *n == 2),
        "more copies than the events in flight at the stop: {copies:?}"
    );
    eprintln!("{} events sent twice across the restart", copies.len());
    assert_stock_invariant(product, INITIAL.into());
}

#[test]
fn an_sqs_outage_under_load_delays_alerts_and_loses_none() {
    quiet_alerts();
    let product = product(INITIAL);
    // moto keeps queues in memory: stopping it first means every alert of the test is sent after
    // it restarts, so the queue shows how often each arrived.
    ctl("stop", "sqs");
    let load = Load::start(product, 8);
    sleep(Duration::from_secs(30));
    ctl("start", "sqs");
    let recovered = Instant::now();
    sleep(Duration::from_secs(3));
    let outcomes = load.stop();
    let orders = placed(&outcomes);
    assert_eq!(
        orders.len(),
        outcomes.len(),
        "SQS is not on the order path: {:?}",
        tally(&outcomes)
    );
    assert!(orders.len() >= 50, "under load: {} orders", orders.len());
    let ids = delivered(&orders, Duration::from_secs(60));
    // Measured 14–49 s, and over 60 s once (2026-12-01): the forwarder sends what accumulated
    // (some 1,400 alerts) through moto, which takes about 1 ms of CPU a request and slows as the
    // queue fills. The bound is for recovery, not speed: 120 s leaves slower runs room.
    wait_for("every alert forwarded", Duration::from_secs(120), || {
        (recorded(&ids).1 == ids.len()).then_some(())
    });
    eprintln!(
        "{} orders; every alert forwarded {:.1} s after SQS came back",
        orders.len(),
        recovered.elapsed().as_secs_f64()
    );
    let mut alerts = alerts_of(&ids);
    alerts.sort();
    let distinct: BTreeSet<String> = alerts.iter().cloned().collect();
    assert_eq!(
        distinct, ids,
        "every order_created reached the alerts queue"
    );
    // SQS takes a batch at least once: moto, catching up on the backlog on a busy machine, has
    // answered a SendMessageBatch after the SDK's 2 s attempt timeout, and the SDK's retry sent
    // the batch again (20 of 1,351 on 2026-12-04 and 20 of 1,441 on 2026-12-06, both with the
    // development stack running beside the tests; docs/events.md). So: none lost, none sent more
    // than twice, and the duplicates counted.
    let mut copies: BTreeMap<&String, usize> = BTreeMap::new();
    for alert in &alerts {
        *copies.entry(alert).or_default() += 1;
    }
    let twice = copies.values().filter(|n| **n == 2).count();
    assert!(
        copies.values().all(|n| *n <= 2),
        "an alert arrived more than twice: {copies:?}"
    );
    eprintln!("{twice} of {} alerts arrived twice", ids.len());
    let letters = drain_queue(&env("DEAD_LETTER_QUEUE_URL"));
    assert!(
        letters.is_empty(),
        "valid events dead-lettered: {letters:?}"
    );
    assert_stock_invariant(product, INITIAL.into());
}

#[test]
fn an_sqs_endpoint_that_never_answers_stalls_nothing_longer_than_its_timeout() {
    quiet_alerts();
    let product = product(INITIAL);
    let frozen = Frozen::new("sqs");
    // One call to the frozen endpoint gives up within the client's bound.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (took, sent) = runtime.block_on(async {
        use stockroom::notifications::{Queue, Queues};
        let queues = stockroom_sqs::SqsQueues::from_env().await.unwrap();
        let started = Instant::now();
        let sent = queues.send(Queue::Alerts, "{}".into()).await;
        (started.elapsed(), sent)
    });
    assert!(sent.is_err(), "a frozen endpoint accepted a message");
    assert!(
        took < stockroom_sqs::OPERATION_TIMEOUT + Duration::from_secs(1),
        "a send to a frozen endpoint took {took:?}"
    );
    // Orders placed meanwhile are recorded while SQS is still frozen.
    let load = Load::start(product, 4);
    sleep(Duration::from_secs(5));
    let outcomes = load.stop();
    let orders = placed(&outcomes);
    assert_eq!(orders.len(), outcomes.len(), "{:?}", tally(&outcomes));
    let placed_at = Instant::now();
    let ids = delivered(&orders, Duration::from_secs(20));
    eprintln!(
        "{} orders recorded {:.1} s after the last, SQS frozen throughout",
        orders.len(),
        placed_at.elapsed().as_secs_f64()
    );
    assert_eq!(recorded(&ids).1, 0, "nothing can have been forwarded yet");
    drop(frozen);
    wait_for(
        "every alert forwarded after the thaw",
        Duration::from_secs(60),
        || (recorded(&ids).1 == ids.len()).then_some(()),
    );
    // A frozen endpoint may still act on requests it had accepted, so an alert can arrive twice
    // here (at least once); the stopped-endpoint test above shows exactly once.
    let alerts: BTreeSet<String> = alerts_of(&ids).into_iter().collect();
    assert_eq!(alerts, ids, "every order_created reached the alerts queue");
    assert_stock_invariant(product, INITIAL.into());
}

#[test]
fn a_postgres_restart_under_load_keeps_stock_orders_and_events_right() {
    let product = product(INITIAL);
    let load = Load::start(product, 8);
    wait_for("orders flowing", Duration::from_secs(60), || {
        (load.count() >= 50).then_some(())
    });
    ctl("restart", "postgres");
    let restarted = Instant::now();
    sleep(Duration::from_secs(5));
    let outcomes = load.stop();
    let after: Vec<_> = outcomes.iter().filter(|o| o.at > restarted).collect();
    assert!(
        after.iter().any(|o| o.status == Some(201)),
        "orders are placed again after the restart"
    );
    let failures: BTreeSet<Option<u16>> = outcomes
        .iter()
        .map(|o| o.status)
        .filter(|s| *s != Some(201))
        .collect();
    assert!(
        failures.iter().all(|s| *s == Some(503)),
        "an outage answers 503, nothing else: {:?}",
        tally(&outcomes)
    );
    // What the outage left unsettled, the reconciler settles (its pending timeout is 5 s here).
    sleep(Duration::from_secs(6));
    run_scheduled("orders-reconciler");
    let confirmed: Vec<i64> = sql(
        "ORDER_DATABASE_URL",
        &format!("SELECT id FROM orders WHERE product_id = {product} AND status = 'confirmed'"),
    )
    .iter()
    .map(|row| row.get(0))
    .collect();
    let placed = placed(&outcomes);
    assert!(
        placed.iter().all(|id| confirmed.contains(id)),
        "every 201 is a confirmed order"
    );
    let ids = delivered(&confirmed, Duration::from_secs(60));
    // A relay pass that published a batch but could not mark it (the database went down in
    // between) leaves it unpublished, and a later pass sends it again: outbox → broker is at
    // least once, and `delivered` showed each recorded exactly once all the same.
    let copies = on_topic_copies(&confirmed, &ids);
    assert!(
        copies.iter().all(|(_, n)| *n == 2),
        "an event sent more than twice: {copies:?}"
    );
    eprintln!(
        "{} confirmed orders, {} requests answered 503; {} events sent twice across the outage",
        confirmed.len(),
        outcomes.iter().filter(|o| o.status == Some(503)).count(),
        copies.len()
    );
    assert_stock_invariant(product, INITIAL.into());
}

/// One run of the `migrate` custom resource against the test databases, as CloudFormation sends
/// it on a deploy; its answer's status and how long it took.
fn migrate_once(retry: stockroom::handlers::migrations::Retry) -> (String, Duration) {
    use stockroom::handlers::migrations;
    use stockroom_test_support::handler::{Kept, custom_resource_event};
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let kept = Kept::default();
    let event = custom_resource_event("Update", "https://s3.example/answer", serde_json::json!({}));
    let started = Instant::now();
    runtime
        .block_on(migrations::handle_retrying(
            event,
            |var| std::env::var(var).ok(),
            &kept,
            retry,
        ))
        .unwrap();
    let (_, answer) = kept.only();
    let status = answer["Status"].as_str().unwrap_or_default().to_owned();
    eprintln!("migrate answered {answer} after {:?}", started.elapsed());
    (status, started.elapsed())
}

/// A server that is not up yet (just created, restarting) when CloudFormation calls `migrate`
/// must not fail the deploy: the deploy's retry waits it out. One that accepts connections and
/// says nothing (frozen) fails a try within the connect timeout instead of holding it for ever.
#[test]
fn the_migrate_custom_resource_waits_out_a_postgres_that_is_down_or_frozen() {
    use stockroom::handlers::migrations::Retry;
    ctl("stop", "postgres");
    let starter = std::thread::spawn(|| {
        sleep(Duration::from_secs(4));
        ctl("start", "postgres");
    });
    let (status, took) = migrate_once(Retry::DEPLOY);
    starter.join().unwrap();
    assert_eq!(status, "SUCCESS", "migrated once PostgreSQL came back");
    assert!(
        took >= Duration::from_secs(4),
        "it waited for PostgreSQL: {took:?}"
    );

    let frozen = Frozen::new("postgres");
    let (status, took) = migrate_once(Retry {
        attempts: 1,
        first_pause: Duration::ZERO,
    });
    assert_eq!(status, "FAILED", "a single try on a frozen server fails");
    assert!(
        took < Duration::from_secs(8),
        "bounded by the connect timeout: {took:?}"
    );
    let thaw = std::thread::spawn(move || {
        sleep(Duration::from_secs(6));
        drop(frozen);
    });
    let (status, _) = migrate_once(Retry::DEPLOY);
    thaw.join().unwrap();
    assert_eq!(status, "SUCCESS", "migrated once PostgreSQL was thawed");
}

/// A function instance killed (SIGKILL, as the kernel's OOM killer does) while it serves orders:
/// cargo lambda watch never replaces it. Every request still gets an answer within the local
/// gateway's bound: the one the dead instance held gets 504, later ones are served by the
/// function's other instances. Once every instance is dead, each request waits out the bound for
/// a 504, `localstack/ctl check router` names the function (the watchdog's test), and a restart of
/// the router serves it again.
#[test]
fn a_killed_function_instance_leaves_no_request_without_an_answer() {
    let bound = gateway_timeout() + Duration::from_secs(5);
    let product = product(INITIAL);
    let load = Load::start(product, 8);
    wait_for("orders flowing", Duration::from_secs(60), || {
        (load.count() >= 50).then_some(())
    });
    assert!(dead_functions().is_empty(), "{:?}", dead_functions());
    ctl("kill", "orders-create");
    let killed = Instant::now();
    sleep(Duration::from_secs(5));
    let served = load.count();
    sleep(Duration::from_secs(5));
    assert!(
        load.count() > served,
        "the function's other instances go on serving"
    );
    assert!(dead_functions().is_empty(), "other instances live");
    ctl("kill-all", "orders-create");
    let all_killed = Instant::now();
    sleep(Duration::from_secs(5));
    // Waits for the requests in flight: each gets its answer within the bound.
    let outcomes = load.stop();
    assert_eq!(dead_functions(), ["orders-create"]);
    let unanswered: Vec<_> = outcomes.iter().filter(|o| o.status.is_none()).collect();
    assert!(
        unanswered.is_empty(),
        "requests without an answer: {unanswered:?}"
    );
    let slowest = outcomes.iter().map(|o| o.took).max().unwrap();
    assert!(slowest <= bound, "an answer took {slowest:?}");
    let timed_out: Vec<&Outcome> = outcomes.iter().filter(|o| o.status == Some(504)).collect();
    let after_one = timed_out
        .iter()
        .filter(|o| o.at - o.took < all_killed)
        .count();
    eprintln!(
        "{} requests; {} answered 504 after {:?}–{:?}, {after_one} of them sent before every instance was killed; others: {:?}",
        outcomes.len(),
        timed_out.len(),
        timed_out.iter().map(|o| o.took).min().unwrap_or_default(),
        timed_out.iter().map(|o| o.took).max().unwrap_or_default(),
        tally(&outcomes)
    );
    assert!(
        outcomes.iter().all(|o| matches!(o.status, Some(201 | 504))),
        "{:?}",
        tally(&outcomes)
    );
    assert!(
        outcomes.iter().any(|o| o.status == Some(201)
            && o.at > killed + Duration::from_secs(1)
            && o.at < all_killed),
        "orders placed between the two kills"
    );
    ctl("restart", "router");
    let (status, body) = post(
        "/api/orders",
        &format!(r#"{{"product_id":{product},"quantity":1}}"#),
    )
    .expect("the restarted router answers");
    assert_eq!(status, 201, "{body}");
    // A killed request may have left its order pending: the reconciler settles it (pending
    // timeout 5 s here), and stock agrees with what was confirmed.
    sleep(Duration::from_secs(6));
    run_scheduled("orders-reconciler");
    assert_stock_invariant(product, INITIAL.into());
}
