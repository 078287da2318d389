//! How a target is chosen beyond round robin: application-cookie stickiness (`AWSALBAPP-N`),
//! slow start for a target added by a reload, anomaly mitigation under `weighted_random`, and
//! the next target when one refuses the connection (with the stickiness cookies naming the
//! target that answered), each with real targets.

use crate::kit;

use kit::*;
use std::collections::HashMap;

/// A target that answers its name; `/sel/login` also sets the application's cookie, and
/// `/sel/fail` answers 500 from a target named `bad*`.
async fn named(name: &'static str) -> u16 {
    let app = axum::Router::new()
        .route(
            "/sel/login",
            axum::routing::get(move || async move {
                (
                    [(axum::http::header::SET_COOKIE, "APPSESSION=s1; Path=/")],
                    name,
                )
            }),
        )
        .route("/health", axum::routing::get(|| async { "ok" }))
        .fallback(move || async move {
            if name.starts_with("bad") {
                (axum::http::StatusCode::INTERNAL_SERVER_ERROR, name)
            } else {
                (axum::http::StatusCode::OK, name)
            }
        });
    serve_target(app).await
}

#[tokio::test]
async fn application_cookie_stickiness() {
    let (a, b) = (named("a").await, named("b").await);
    let kit = Kit::builder()
        .forward(40, "/sel/*", "app")
        .target_group(
            "app",
            &[a, b],
            "health_check = { enabled = false }\n\
             stickiness = { enabled = true, type = \"app_cookie\", cookie_name = \"APPSESSION\", duration_seconds = 600 }",
        )
        .start()
        .await;
    let c = plain();
    // Until the application sets its cookie there is no stickiness: no cookie, round robin.
    let mut seen = std::collections::HashSet::new();
    for _ in 0..4 {
        let r = c.get(kit.url("/sel/page")).send().await.unwrap();
        assert!(
            !set_cookies(&r).iter().any(|c| c.starts_with("AWSALBAPP")),
            "{:?}",
            set_cookies(&r)
        );
        seen.insert(r.text().await.unwrap());
    }
    assert_eq!(seen.len(), 2);
    // The application sets its cookie: the balancer adds AWSALBAPP-0 (and clears -1..-3).
    let r = c.get(kit.url("/sel/login")).send().await.unwrap();
    let cookies = set_cookies(&r);
    let first = r.text().await.unwrap();
    assert!(
        cookies.iter().any(|c| c.starts_with("APPSESSION=s1")),
        "{cookies:?}"
    );
    let app0 = cookies
        .iter()
        .find(|c| c.starts_with("AWSALBAPP-0="))
        .unwrap_or_else(|| panic!("{cookies:?}"));
    assert!(
        app0.contains("; Expires=") && !app0.contains("Max-Age"),
        "{app0}"
    );
    for i in 1..4 {
        assert!(
            cookies
                .iter()
                .any(|c| c.starts_with(&format!("AWSALBAPP-{i}=_remove_;"))),
            "{cookies:?}"
        );
    }
    let value = app0["AWSALBAPP-0=".len()..]
        .split(';')
        .next()
        .unwrap()
        .to_string();
    // A client sending it back stays on that target, and the cookie is renewed each time.
    for _ in 0..20 {
        let r = c
            .get(kit.url("/sel/page"))
            .header("cookie", format!("APPSESSION=s1; AWSALBAPP-0={value}"))
            .send()
            .await
            .unwrap();
        assert!(
            set_cookies(&r)
                .iter()
                .any(|c| c.starts_with("AWSALBAPP-0=")),
            "renewed"
        );
        assert_eq!(r.text().await.unwrap(), first);
    }
    // A tampered or expired value is ignored (no error, a fresh choice).
    let forged = format!("1-{}", &value[value.find('-').unwrap() + 1..]);
    let r = c
        .get(kit.url("/sel/page"))
        .header("cookie", format!("AWSALBAPP-0={forged}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    kit.app.shutdown().await;
}

async fn tally(c: &reqwest::Client, url: &str, n: usize) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for _ in 0..n {
        let body = c.get(url).send().await.unwrap().text().await.unwrap();
        *seen.entry(body).or_insert(0) += 1;
    }
    seen
}

async fn wait_healthy(kit: &Kit, group: &str, n: usize) {
    let healthy = |h: &serde_json::Value| {
        h[group]
            .as_array()
            .map_or(0, |a| a.iter().filter(|t| t["state"] == "healthy").count())
    };
    let h = kit.target_health_until(|h| healthy(h) == n).await;
    assert_eq!(healthy(&h), n, "{group} never had {n} healthy targets: {h}");
}

#[tokio::test]
async fn a_new_target_slow_starts() {
    let (old1, new1, old2, new2) = (
        named("old").await,
        named("new").await,
        named("old").await,
        named("new").await,
    );
    let hc = "health_check = { path = \"/health\", interval_seconds = 1, timeout_seconds = 1 }";
    let rules = format!(
        r#"
[[listeners.rules]]
priority = 40
conditions = [{{ field = "path-pattern", values = ["/slow/*"] }}]
actions = [{{ type = "forward", target_group = "ramped" }}]

[[listeners.rules]]
priority = 41
conditions = [{{ field = "path-pattern", values = ["/plain/*"] }}]
actions = [{{ type = "forward", target_group = "unramped" }}]

[[target_groups]]
name = "ramped"
slow_start_seconds = 30
{hc}
{}

[[target_groups]]
name = "unramped"
{hc}
{}
"#,
        targets(&[old1]),
        targets(&[old2])
    );
    let kit = Kit::builder().toml(&rules).start().await;
    wait_healthy(&kit, "ramped", 1).await;
    wait_healthy(&kit, "unramped", 1).await;
    // The first targets of a group do not slow-start: all traffic goes to them.
    let c = plain();
    assert_eq!(
        tally(&c, &kit.url("/slow/x"), 20).await.get("old"),
        Some(&20)
    );
    // Both groups gain a target by reload; only one group has slow start.
    kit.reload_replacing(&targets(&[old1]), &targets(&[old1, new1]))
        .await;
    kit.reload_replacing(&targets(&[old2]), &targets(&[old2, new2]))
        .await;
    wait_healthy(&kit, "ramped", 2).await;
    wait_healthy(&kit, "unramped", 2).await;
    // Two seconds into a 30 s ramp (the balancer's clock moved, not slept), the new target
    // takes about 7% of its turns.
    kit.app.lb.shared.clock.advance_ms(2_000);
    let ramped = tally(&c, &kit.url("/slow/x"), 400).await;
    let plain_split = tally(&c, &kit.url("/plain/x"), 400).await;
    // Without slow start the new target takes half at once; with it, a small share, not none.
    assert_eq!(plain_split.get("new"), Some(&200), "{plain_split:?}");
    let new = *ramped.get("new").unwrap_or(&0);
    assert!((2..60).contains(&new), "slow start: {ramped:?}");
    assert_eq!(ramped.values().sum::<usize>(), 400);
    // Past the 30 s ramp the new target takes its full half.
    kit.app.lb.shared.clock.advance_ms(28_000);
    let ramped_up = tally(&c, &kit.url("/slow/x"), 400).await;
    assert_eq!(ramped_up.get("new"), Some(&200), "{ramped_up:?}");
    kit.app.shutdown().await;
}

#[tokio::test]
async fn anomaly_mitigation_sends_less_to_a_failing_target() {
    let (g1, g2, bad) = (
        named("good-1").await,
        named("good-2").await,
        named("bad").await,
    );
    let hc = "health_check = { path = \"/health\", interval_seconds = 1, timeout_seconds = 1 }";
    let rules = format!(
        r#"
[[listeners.rules]]
priority = 40
conditions = [{{ field = "path-pattern", values = ["/sel/*"] }}]
actions = [{{ type = "forward", target_group = "mitigated" }}]

[[target_groups]]
name = "mitigated"
load_balancing_algorithm = "weighted_random"
anomaly_mitigation = true
{hc}
{}
"#,
        targets(&[g1, g2, bad])
    );
    let kit = Kit::builder().toml(&rules).start().await;
    wait_healthy(&kit, "mitigated", 3).await;
    let c = plain();
    // Warm-up: the failing target's error rate builds up.
    tally(&c, &kit.url("/sel/x"), 300).await;
    let after = tally(&c, &kit.url("/sel/x"), 600).await;
    let bad_share = *after.get("bad").unwrap_or(&0) as f64 / 600.0;
    assert!(
        bad_share < 0.10,
        "mitigated share {bad_share:.3}: {after:?}"
    );
    assert!(after.get("good-1").unwrap_or(&0) > &200 && after.get("good-2").unwrap_or(&0) > &200);
    // Health checks still pass (it answers /health): the target is healthy but anomalous.
    let h = kit.target_health().await;
    let bad_entry = h["mitigated"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == format!("127.0.0.1:{bad}"))
        .unwrap();
    assert_eq!(bad_entry["state"], "healthy", "{h}");
    assert_eq!(bad_entry["anomaly_detection"], "anomalous", "{h}");
    assert!(
        h["mitigated"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["anomaly_detection"] == "normal")
            .count()
            == 2,
        "{h}"
    );
    let metrics = kit.metrics().await;
    for gauge in ["portcullis_anomalous_hosts", "portcullis_mitigated_hosts"] {
        assert!(
            metrics.contains(&format!("{gauge}{{target_group=\"mitigated\"}} 1")),
            "{gauge}: {metrics}"
        );
    }
    kit.app.shutdown().await;
}

/// A target that refuses connections (it died; health checks have not noticed yet) costs no
/// request a 502: no byte reached it, so the next routable target gets the request, once, and
/// the metric counts it. A target that closes its kept-alive connections after every answer
/// (without saying so) costs none either: the pooled connection's close is seen, or the request
/// is sent again on a new connection.
#[tokio::test]
async fn a_refused_connection_is_tried_on_the_next_target() {
    let live = named("live").await;
    // A port that was bound and released: connecting to it is refused.
    let dead = free_port();
    // A target that answers one request per connection and closes it, keep-alive or not.
    let (closer, _) = tcp_target(|mut s| async move {
        use tokio::io::AsyncWriteExt;
        if read_head(&mut s).await.is_some() {
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\ncloser")
                .await;
        }
    })
    .await;
    let rules = format!(
        r#"
[[listeners.rules]]
priority = 40
conditions = [{{ field = "path-pattern", values = ["/sel/*"] }}]
actions = [{{ type = "forward", target_group = "two" }}]

[[listeners.rules]]
priority = 41
conditions = [{{ field = "path-pattern", values = ["/closer/*"] }}]
actions = [{{ type = "forward", target_group = "closer" }}]

[[target_groups]]
name = "two"
{}
health_check = {{ enabled = false }}

[[target_groups]]
name = "closer"
{}
health_check = {{ enabled = false }}
"#,
        targets(&[dead, live]),
        targets(&[closer]),
    );
    let kit = Kit::builder().toml(&rules).start().await;
    let c = plain();
    for i in 0..20 {
        let r = c.get(kit.url(&format!("/sel/{i}"))).send().await.unwrap();
        assert_eq!(r.status(), 200, "request {i}");
        assert_eq!(r.text().await.unwrap(), "live");
    }
    let metrics = kit.metrics().await;
    let retries: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("portcullis_target_retries_total "))
        .expect("the retry counter")
        .parse()
        .unwrap();
    assert!(
        retries >= 9.0,
        "round robin sent half to the dead target: {retries}"
    );
    for i in 0..20 {
        let r = c
            .get(kit.url(&format!("/closer/{i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "request {i}");
        assert_eq!(r.text().await.unwrap(), "closer");
    }
    kit.app.shutdown().await;
}

/// The balancer's count of requests sent to a second target.
async fn retries(kit: &Kit) -> f64 {
    kit.metrics()
        .await
        .lines()
        .find_map(|l| l.strip_prefix("portcullis_target_retries_total "))
        .map_or(0.0, |v| v.parse().unwrap())
}

/// The value of the cookie `name` that a response sets.
fn cookie_set(r: &reqwest::Response, name: &str) -> Option<String> {
    set_cookies(r).iter().find_map(|c| {
        let v = c.strip_prefix(name)?.strip_prefix('=')?;
        Some(v.split(';').next().unwrap_or_default().to_string())
    })
}

/// A target that answers `kill` (and sets the application's cookie on `*/login`), one request
/// per connection, until its task is aborted: then its port refuses connections.
async fn killable() -> (u16, tokio::task::JoinHandle<()>) {
    use tokio::io::AsyncWriteExt;
    tcp_target(|mut s| async move {
        let Some(got) = read_head(&mut s).await else {
            return;
        };
        let line = String::from_utf8_lossy(&got);
        let cookie = if line.lines().next().unwrap_or("").contains("/login ") {
            "set-cookie: APPSESSION=k1; Path=/\r\n"
        } else {
            ""
        };
        let answer = format!(
            "HTTP/1.1 200 OK\r\nconnection: close\r\n{cookie}content-length: 4\r\n\r\nkill"
        );
        let _ = s.write_all(answer.as_bytes()).await;
    })
    .await
}

/// After a refused connection sends a request to the next target, the stickiness cookie names
/// the target that answered, not the one that refused: sent back, it keeps the client there
/// with no further retry. `lb_cookie` sets it on every fresh choice; a client stuck with
/// `app_cookie` to a target that died is stuck to the new one from that response on, as at ALB.
#[tokio::test]
async fn after_a_retry_the_stickiness_cookie_names_the_target_that_answered() {
    let (live, other) = (named("live").await, named("other").await);
    let dead = free_port();
    let (kill, killer) = killable().await;
    let rules = format!(
        r#"
[[listeners.rules]]
priority = 40
conditions = [{{ field = "path-pattern", values = ["/lbs/*"] }}]
actions = [{{ type = "forward", target_group = "lbs" }}]

[[listeners.rules]]
priority = 41
conditions = [{{ field = "path-pattern", values = ["/apps/*"] }}]
actions = [{{ type = "forward", target_group = "apps" }}]

[[target_groups]]
name = "lbs"
{}
health_check = {{ enabled = false }}
stickiness = {{ enabled = true, type = "lb_cookie", duration_seconds = 600 }}

[[target_groups]]
name = "apps"
{}
health_check = {{ enabled = false }}
stickiness = {{ enabled = true, type = "app_cookie", cookie_name = "APPSESSION", duration_seconds = 600 }}
"#,
        targets(&[dead, live]),
        targets(&[kill, other]),
    );
    let kit = Kit::builder().toml(&rules).start().await;
    let c = plain();

    // lb_cookie: round robin sends every other fresh request to the dead target first.
    for i in 0..4 {
        let r = c.get(kit.url(&format!("/lbs/{i}"))).send().await.unwrap();
        let awsalb = cookie_set(&r, "AWSALB").unwrap_or_else(|| panic!("{:?}", set_cookies(&r)));
        assert_eq!(r.text().await.unwrap(), "live", "request {i}");
        let before = retries(&kit).await;
        for j in 0..3 {
            let r = c
                .get(kit.url(&format!("/lbs/{i}/{j}")))
                .header("cookie", format!("AWSALB={awsalb}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.text().await.unwrap(), "live");
        }
        assert_eq!(
            retries(&kit).await,
            before,
            "the cookie of request {i} names the target that refused"
        );
    }
    assert!(retries(&kit).await >= 2.0, "no request was retried");

    // app_cookie: a client stuck to `kill`, which then dies.
    let stuck = loop {
        let r = c.get(kit.url("/apps/login")).send().await.unwrap();
        let app = cookie_set(&r, "AWSALBAPP-0");
        if r.text().await.unwrap() == "kill" {
            break app.expect("AWSALBAPP-0 once the application sets its cookie");
        }
    };
    let page = |cookie: String| {
        c.get(kit.url("/apps/page"))
            .header("cookie", format!("APPSESSION=k1; AWSALBAPP-0={cookie}"))
            .send()
    };
    assert_eq!(
        page(stuck.clone()).await.unwrap().text().await.unwrap(),
        "kill"
    );
    killer.abort();
    let _ = killer.await;
    let before = retries(&kit).await;
    let r = page(stuck).await.unwrap();
    let moved = cookie_set(&r, "AWSALBAPP-0").expect("the stuck client's cookie, renewed");
    assert_eq!(r.text().await.unwrap(), "other");
    assert_eq!(retries(&kit).await, before + 1.0);
    for _ in 0..3 {
        let r = page(moved.clone()).await.unwrap();
        assert_eq!(r.text().await.unwrap(), "other");
    }
    assert_eq!(
        retries(&kit).await,
        before + 1.0,
        "the renewed cookie names the target that refused"
    );
    kit.app.shutdown().await;
}
