//! Deregistration on reload: a target that a new config drops gets no new requests, shows as
//! `draining` (`Target.DeregistrationInProgress`), and finishes what it has within
//! `deregistration_delay_seconds`; a request still running when the delay ends gets 502, and a
//! response still streaming is cut. The delay passes by moving the balancer's clock.

use crate::kit;

use kit::*;
use std::time::Duration;

/// A target that answers its name after `?ms=` milliseconds; `/stream` sends a first chunk at
/// once and the rest after `?ms=`.
async fn slow_target(name: &'static str) -> u16 {
    use axum::extract::Query;
    use std::collections::HashMap;
    let app = axum::Router::new()
        .route(
            "/d/stream",
            axum::routing::get(move |q: Query<HashMap<String, u64>>| async move {
                let ms = q.get("ms").copied().unwrap_or(0);
                axum::body::Body::new(TwoChunks::new(name, Duration::from_millis(ms)))
            }),
        )
        .fallback(move |q: Query<HashMap<String, u64>>| async move {
            tokio::time::sleep(Duration::from_millis(q.get("ms").copied().unwrap_or(0))).await;
            name
        });
    serve_target(app).await
}

/// A body of two chunks `gap` apart.
struct TwoChunks {
    a: Option<bytes::Bytes>,
    b: Option<bytes::Bytes>,
    sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl TwoChunks {
    fn new(name: &str, gap: Duration) -> TwoChunks {
        TwoChunks {
            a: Some(bytes::Bytes::from(format!("{name}:first;"))),
            b: Some(bytes::Bytes::from_static(b"second")),
            sleep: Box::pin(tokio::time::sleep(gap)),
        }
    }
}

impl hyper::body::Body for TwoChunks {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<bytes::Bytes>, Self::Error>>> {
        use std::task::Poll;
        if let Some(a) = self.a.take() {
            return Poll::Ready(Some(Ok(hyper::body::Frame::data(a))));
        }
        if self.b.is_none() {
            return Poll::Ready(None);
        }
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(self.b.take().map(|b| Ok(hyper::body::Frame::data(b)))),
            Poll::Pending => Poll::Pending,
        }
    }
}

fn group(name: &str, delay: u64, ports: &[u16]) -> String {
    let targets: Vec<String> = ports
        .iter()
        .map(|p| format!("{{ id = \"127.0.0.1\", port = {p} }}"))
        .collect();
    format!(
        "[[target_groups]]\nname = \"{name}\"\nderegistration_delay_seconds = {delay}\nhealth_check = {{ enabled = false }}\ntargets = [{}]\n",
        targets.join(", ")
    )
}

/// A kit whose `/d/*` forwards to the group `group_toml` defines (named `d`).
async fn start_with_group(group_toml: &str) -> Kit {
    Kit::builder().toml(&format!(
        "[[listeners.rules]]\npriority = 40\nconditions = [{{ field = \"path-pattern\", values = [\"/d/*\"] }}]\nactions = [{{ type = \"forward\", target_group = \"d\" }}]\n\n{group_toml}"
    )).start()
    .await
}

#[tokio::test]
async fn a_removed_target_finishes_its_requests_and_gets_no_new_ones() {
    let (old, new) = (slow_target("old").await, slow_target("new").await);
    let before = group("d", 30, &[old]);
    let kit = start_with_group(&before).await;
    let c = plain();
    assert_eq!(c.get(kit.url("/d/x")).fetch_text().await, "old");

    // A request that takes 1.5 s is under way when the reload removes its target.
    let running = tokio::spawn({
        let (c, url) = (c.clone(), kit.url("/d/slow?ms=1500"));
        async move {
            let r = c.get(url).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    kit.reload_replacing(&before, &group("d", 30, &[new])).await;

    // New requests go to the remaining target only.
    for _ in 0..10 {
        assert_eq!(c.get(kit.url("/d/x")).fetch_text().await, "new");
    }
    let health = kit.target_health().await;
    let drained = health["d"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == format!("127.0.0.1:{old}"))
        .unwrap_or_else(|| panic!("{health}"));
    assert_eq!(drained["state"], "draining", "{health}");
    assert_eq!(drained["reason"], "Target.DeregistrationInProgress");
    // The request in flight finished on its old target.
    assert_eq!(running.await.unwrap(), (200, "old".to_string()));
    kit.app.shutdown().await;
}

#[tokio::test]
async fn requests_past_the_deregistration_delay_get_502() {
    let (old, new) = (slow_target("old").await, slow_target("new").await);
    let before = group("d", 60, &[old]);
    let kit = start_with_group(&before).await;
    let c = plain();
    // One request waits 5 s for its answer; another has its head and is still streaming.
    let waiting = tokio::spawn({
        let (c, url) = (c.clone(), kit.url("/d/slow?ms=5000"));
        async move { c.get(url).send().await.unwrap().status().as_u16() }
    });
    let streaming = c.get(kit.url("/d/stream?ms=5000")).send().await.unwrap();
    assert_eq!(streaming.status(), 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t0 = std::time::Instant::now();
    kit.reload_replacing(&before, &group("d", 60, &[new])).await;

    // The 60 s delay, passed on the balancer's clock, ends both long before the target would
    // have finished (in real time only the clock's move can end them this soon).
    kit.app.lb.shared.clock.advance_ms(60_000);
    assert_eq!(waiting.await.unwrap(), 502);
    let body = streaming.text().await;
    assert!(
        body.is_err(),
        "the cut stream must not look complete: {body:?}"
    );
    assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());
    kit.log_line(&["/d/slow?ms=5000", " 502 "]).await;
    // After the delay the target is no longer listed.
    let health = kit.target_health().await;
    assert_eq!(health["d"].as_array().unwrap().len(), 1, "{health}");
    kit.app.shutdown().await;
}

#[tokio::test]
async fn a_target_re_added_while_draining_serves_again() {
    let (a, b) = (slow_target("a").await, slow_target("b").await);
    let both = group("d", 60, &[a, b]);
    let kit = start_with_group(&both).await;
    let only_b = group("d", 60, &[b]);
    kit.reload_replacing(&both, &only_b).await;
    kit.reload_replacing(&only_b, &both).await;
    // Past the first removal's delay (the clock moved; its cutoff fires at the latest while the
    // first request runs), a request to the re-added target is not cut.
    kit.app.lb.shared.clock.advance_ms(60_000);
    let c = plain();
    let mut seen = std::collections::HashMap::new();
    for _ in 0..6 {
        let r = c.get(kit.url("/d/x?ms=500")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        *seen.entry(r.text().await.unwrap()).or_insert(0) += 1;
    }
    assert_eq!(seen.get("a"), Some(&3), "{seen:?}");
    kit.app.shutdown().await;
}
