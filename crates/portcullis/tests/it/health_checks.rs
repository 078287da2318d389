//! Health checks with real targets: a target that starts failing is taken out after
//! unhealthy-threshold × interval and no client sees its 5xx after that; it comes back after the
//! healthy threshold; when every target is unhealthy the group fails open. The balancer's clock
//! is moved one interval per round instead of sleeping.

use crate::kit;

use kit::*;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A target that answers its name, or 500 to everything (health checks included) when failing.
async fn target(name: &'static str) -> (SocketAddr, Arc<AtomicBool>) {
    let failing = Arc::new(AtomicBool::new(false));
    let f = failing.clone();
    let app = axum::Router::new().fallback(move || {
        let f = f.clone();
        async move {
            if f.load(Ordering::Relaxed) {
                (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "broken")
            } else {
                (axum::http::StatusCode::OK, name)
            }
        }
    });
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(tcp, app).await.unwrap() });
    (addr, failing)
}

/// The group's check interval: long, so that only the test's moves of the clock start rounds.
const INTERVAL_SECONDS: i64 = 300;

/// Waits for the health-check rounds of group `name` to reach `n`.
async fn rounds_reach(kit: &Kit, name: &str, n: u64) {
    let tg = kit.app.lb.shared.snapshot.load().target_groups[name].clone();
    let mut rounds = tg.health_rounds();
    tokio::time::timeout(Duration::from_secs(10), rounds.wait_for(|r| *r >= n))
        .await
        .unwrap_or_else(|_| panic!("{name}: no health-check round {n}"))
        .unwrap();
}

/// Moves the balancer's clock one interval and waits for the round of checks that starts.
async fn next_round(kit: &Kit, name: &str) {
    let tg = kit.app.lb.shared.snapshot.load().target_groups[name].clone();
    let done = *tg.health_rounds().borrow();
    tg.clock().advance_ms(INTERVAL_SECONDS * 1000);
    rounds_reach(kit, name, done + 1).await;
}

async fn tally(kit: &Kit, n: usize) -> HashMap<String, usize> {
    let c = plain();
    let mut seen = HashMap::new();
    for _ in 0..n {
        let r = c.get(kit.url("/hc/x")).send().await.unwrap();
        let key = format!("{} {}", r.status().as_u16(), r.text().await.unwrap());
        *seen.entry(key).or_default() += 1;
    }
    seen
}

#[tokio::test]
async fn failing_targets_leave_and_return_and_all_unhealthy_fails_open() {
    let (a, a_fail) = target("a").await;
    let (b, b_fail) = target("b").await;
    let rules = format!(
        r#"
[[listeners.rules]]
priority = 7
conditions = [{{ field = "path-pattern", values = ["/hc/*"] }}]
actions = [{{ type = "forward", target_group = "pair" }}]

[[target_groups]]
name = "pair"
targets = [{{ id = "127.0.0.1", port = {} }}, {{ id = "127.0.0.1", port = {} }}]
health_check = {{ path = "/health", interval_seconds = {INTERVAL_SECONDS}, timeout_seconds = 1, healthy_threshold_count = 2, unhealthy_threshold_count = 2, matcher = "200-299" }}
"#,
        a.port(),
        b.port()
    );
    let kit = Kit::builder().toml(&rules).start().await;
    // The first round runs at start.
    rounds_reach(&kit, "pair", 1).await;
    let both = tally(&kit, 20).await;
    assert_eq!(both.get("200 a"), Some(&10), "{both:?}");
    assert_eq!(both.get("200 b"), Some(&10), "{both:?}");

    // a fails: one failed check is under the threshold, so a still takes its turns.
    a_fail.store(true, Ordering::Relaxed);
    next_round(&kit, "pair").await;
    let one_failure = tally(&kit, 20).await;
    assert_eq!(one_failure.get("500 broken"), Some(&10), "{one_failure:?}");
    // After 2 failed checks an interval apart, no client sees it.
    next_round(&kit, "pair").await;
    let only_b = tally(&kit, 30).await;
    assert_eq!(only_b.get("200 b"), Some(&30), "a is out: {only_b:?}");
    // The admin listener reports it, as DescribeTargetHealth and HealthyHostCount would.
    let health: serde_json::Value = reqwest::get(format!("http://{}/target-health", kit.admin))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let states: Vec<(&str, &str)> = health["pair"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["state"].as_str().unwrap(), t["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        [
            ("unhealthy", "Target.ResponseCodeMismatch"),
            ("healthy", "")
        ]
    );
    let metrics = reqwest::get(format!("http://{}/metrics", kit.admin))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("portcullis_healthy_hosts{target_group=\"pair\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("portcullis_unhealthy_hosts{target_group=\"pair\"} 1"),
        "{metrics}"
    );

    // a recovers: still out after 1 passing check, back after 2.
    a_fail.store(false, Ordering::Relaxed);
    next_round(&kit, "pair").await;
    let one_pass = tally(&kit, 10).await;
    assert_eq!(one_pass.get("200 b"), Some(&10), "{one_pass:?}");
    next_round(&kit, "pair").await;
    let again = tally(&kit, 20).await;
    assert_eq!(again.get("200 a"), Some(&10), "a is back: {again:?}");

    // Both fail: every target unhealthy, so the group fails open and requests reach both.
    a_fail.store(true, Ordering::Relaxed);
    b_fail.store(true, Ordering::Relaxed);
    next_round(&kit, "pair").await;
    next_round(&kit, "pair").await;
    let open = tally(&kit, 10).await;
    assert_eq!(
        open.get("500 broken"),
        Some(&10),
        "fail-open forwards: {open:?}"
    );
    let health = kit.app.lb.shared.snapshot.load().target_groups["pair"].health();
    assert!(
        health.iter().all(
            |(_, s, r, _)| *s == portcullis_lb::target_group::HealthState::Unhealthy
                && *r == "Target.ResponseCodeMismatch"
        ),
        "{health:?}"
    );
    kit.app.shutdown().await;
}
