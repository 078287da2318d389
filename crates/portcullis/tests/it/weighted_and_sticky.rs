//! Weighted forwarding to several target groups (exact proportions over 10,000 requests), group
//! stickiness (`AWSALBTG`) and target stickiness (`AWSALB`), with real targets.

use crate::kit;

use kit::*;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

async fn named(name: &'static str) -> u16 {
    let app = axum::Router::new().fallback(move || async move { name });
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(tcp, app).await.unwrap() });
    port
}

async fn kit() -> Kit {
    let (b1, b2, g1) = (
        named("blue-1").await,
        named("blue-2").await,
        named("green-1").await,
    );
    let rules = format!(
        r#"
[[listeners.rules]]
priority = 8
conditions = [{{ field = "path-pattern", values = ["/w/*"] }}]
actions = [{{ type = "forward", target_groups = [{{ name = "blue", weight = 70 }}, {{ name = "green", weight = 30 }}] }}]

[[listeners.rules]]
priority = 9
conditions = [{{ field = "path-pattern", values = ["/sticky/*"] }}]
actions = [{{ type = "forward", target_groups = [{{ name = "blue", weight = 50 }}, {{ name = "green", weight = 50 }}],
              stickiness = {{ enabled = true, duration_seconds = 600 }} }}]

[[target_groups]]
name = "blue"
targets = [{{ id = "127.0.0.1", port = {b1} }}, {{ id = "127.0.0.1", port = {b2} }}]
stickiness = {{ enabled = true, type = "lb_cookie", duration_seconds = 300 }}

[[target_groups]]
name = "green"
targets = [{{ id = "127.0.0.1", port = {g1} }}]
"#
    );
    Kit::builder().toml(&rules).start().await
}

#[tokio::test]
async fn weights_hold_over_ten_thousand_requests() {
    let kit = kit().await;
    let c = plain();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (c, url) = (c.clone(), kit.url("/w/x"));
        tasks.push(tokio::spawn(async move {
            let mut seen: HashMap<String, u32> = HashMap::new();
            for _ in 0..500 {
                let body = c.get(&url).fetch_text().await;
                *seen.entry(body).or_default() += 1;
            }
            seen
        }));
    }
    let mut total: HashMap<String, u32> = HashMap::new();
    for t in tasks {
        for (k, v) in t.await.unwrap() {
            *total.entry(k).or_default() += v;
        }
    }
    let blue = total.get("blue-1").unwrap_or(&0) + total.get("blue-2").unwrap_or(&0);
    let green = *total.get("green-1").unwrap_or(&0);
    assert_eq!(blue + green, 10_000, "{total:?}");
    let share = f64::from(blue) / 10_000.0;
    assert!(
        (share - 0.70).abs() <= 0.02,
        "blue got {share:.3} of the traffic: {total:?}"
    );
    // Without an AWSALB cookie the blue group still balances its two targets.
    let (b1, b2) = (total["blue-1"], total["blue-2"]);
    assert!(b1.abs_diff(b2) <= 100, "{total:?}");
    kit.app.shutdown().await;
}

#[tokio::test]
async fn group_and_target_stickiness_hold() {
    let kit = kit().await;
    // A browser keeps AWSALBTG (group) and AWSALB (target): every request lands where the first did.
    let client = browser();
    let first = client.get(kit.url("/sticky/a")).send().await.unwrap();
    let cookies: Vec<String> = set_cookies(&first);
    let first = first.text().await.unwrap();
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("AWSALBTG=") && c.contains("Max-Age=600")),
        "{cookies:?}"
    );
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("AWSALBTGCORS=") && c.contains("SameSite=None; Secure")),
        "{cookies:?}"
    );
    if first.starts_with("blue") {
        // ALB's shape: the cookie lives 7 days (`Expires`, never `Max-Age`); the 300 s
        // stickiness duration is carried inside the value.
        let awsalb = cookies
            .iter()
            .find(|c| c.starts_with("AWSALB="))
            .unwrap_or_else(|| panic!("{cookies:?}"));
        assert!(
            awsalb.contains("; Expires=") && !awsalb.contains("Max-Age"),
            "{awsalb}"
        );
        let inside: u64 = awsalb["AWSALB=".len()..]
            .split('-')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!((295..=305).contains(&(inside - now)), "{awsalb}");
    }
    for _ in 0..40 {
        let body = client.get(kit.url("/sticky/b")).fetch_text().await;
        assert_eq!(body, first, "sticky");
    }
    // Without cookies, requests spread over both groups and both blue targets.
    let c = plain();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..40 {
        seen.insert(c.get(kit.url("/sticky/c")).fetch_text().await);
    }
    assert_eq!(seen.len(), 3, "{seen:?}");
    // A forged or foreign cookie is ignored, not trusted.
    let r = c
        .get(kit.url("/sticky/d"))
        .header("cookie", "AWSALBTG=deadbeef; AWSALB=00")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    kit.app.shutdown().await;
}

/// A target that answers its name after `delay_ms`.
async fn slow(name: &'static str, delay_ms: u64) -> u16 {
    let app = axum::Router::new().fallback(move || async move {
        tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
        name
    });
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(tcp, app).await.unwrap() });
    port
}

/// A target that holds every request for `/lor/*` until `release` is notified (health checks are
/// answered at once); `held` counts what it holds.
async fn holding(name: &'static str) -> (u16, Arc<AtomicUsize>, Arc<tokio::sync::Notify>) {
    let held = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(tokio::sync::Notify::new());
    let (h, r) = (held.clone(), release.clone());
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let (h, r) = (h.clone(), r.clone());
        async move {
            if !uri.path().starts_with("/lor/") {
                return name;
            }
            let released = r.notified();
            h.fetch_add(1, Ordering::SeqCst);
            released.await;
            name
        }
    });
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(tcp, app).await.unwrap() });
    (port, held, release)
}

#[tokio::test]
async fn least_outstanding_requests_avoids_the_busy_target() {
    let (slow_port, held, release) = holding("slow").await;
    let fast_port = slow("fast", 0).await;
    let (r1, r2) = (slow("r1", 0).await, slow("r2", 0).await);
    let kit = Kit::builder()
        .forward(8, "/lor/*", "lor")
        .forward(9, "/rand/*", "rand")
        .target_group(
            "lor",
            &[slow_port, fast_port],
            r#"load_balancing_algorithm = "least_outstanding_requests""#,
        )
        .target_group(
            "rand",
            &[r1, r2],
            r#"load_balancing_algorithm = "weighted_random""#,
        )
        .start()
        .await;
    let c = plain();
    // The busy target holds what it gets. Each request is sent once the one before has settled
    // (answered by the free target, or held by the busy one), so every choice sees the busy
    // target's outstanding requests: it gets at most the first (a tie), where round robin would
    // give it half. No timing is involved.
    let mut tasks = Vec::new();
    let answered = Arc::new(AtomicUsize::new(0));
    for i in 0..40 {
        let (c, url, done) = (c.clone(), kit.url("/lor/x"), answered.clone());
        tasks.push(tokio::spawn(async move {
            let body = c.get(&url).fetch_text().await;
            done.fetch_add(1, Ordering::SeqCst);
            body
        }));
        let settled = || answered.load(Ordering::SeqCst) + held.load(Ordering::SeqCst) > i;
        for _ in 0..5000 {
            if settled() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        assert!(settled(), "request {i} neither answered nor held");
    }
    let slow_count = held.load(Ordering::SeqCst);
    release.notify_waiters();
    let mut bodies = HashMap::new();
    for t in tasks {
        *bodies.entry(t.await.unwrap()).or_insert(0) += 1;
    }
    assert!(slow_count <= 1, "the busy target got {slow_count} of 40");
    assert_eq!(
        bodies.get("fast").copied().unwrap_or(0),
        40 - slow_count,
        "{bodies:?}"
    );

    // weighted_random spreads over both targets.
    let mut seen = HashMap::new();
    for _ in 0..200 {
        let b = c.get(kit.url("/rand/x")).fetch_text().await;
        *seen.entry(b).or_insert(0) += 1;
    }
    assert!(
        seen.get("r1").copied().unwrap_or(0) > 50 && seen.get("r2").copied().unwrap_or(0) > 50,
        "{seen:?}"
    );
    kit.app.shutdown().await;
}
