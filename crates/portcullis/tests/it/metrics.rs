//! ALB's CloudWatch metrics as Prometheus text at `<admin>/metrics`: request counts by who answered
//! and by class, target response time, connections, and the `ELBAuth*` family (success, refresh,
//! failure, latency), each driven by real traffic here.

use crate::kit;

use kit::*;
use std::collections::HashMap;

async fn metrics(kit: &Kit) -> HashMap<String, f64> {
    let text = kit.metrics().await;
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

#[tokio::test]
async fn alb_metrics_follow_the_traffic() {
    let kit = Kit::builder().start().await;
    let c = plain();
    // Two forwarded requests (target 2xx), one fixed response (the listener's 404 default).
    for p in ["/open/a", "/open/b"] {
        assert_eq!(c.get(kit.url(p)).send().await.unwrap().status(), 200);
    }
    assert_eq!(
        c.get(kit.url("/nothing")).send().await.unwrap().status(),
        404
    );
    // A callback with a forged state: an authentication failure.
    let r = c
        .get(kit.url("/oauth2/idpresponse?code=x&state=forged"))
        .header("cookie", "AWSALBAuthNonce=abc")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // A login (success) and a refresh once the access token has expired.
    let (_, r) = login_to_callback(&kit, "/tasks").await;
    let cookie = session_cookie_of(&r);
    let (stale, _) = kit.with_access_expired(&cookie);
    let r = c
        .get(kit.url("/tasks"))
        .header("cookie", stale)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let m = metrics(&kit).await;
    let get = |k: &str| {
        m.get(k)
            .copied()
            .unwrap_or_else(|| panic!("no {k} in {m:#?}"))
    };
    assert!(get("portcullis_requests_total") >= 6.0);
    assert_eq!(
        get(r#"portcullis_target_responses_total{target_group="echo",code="2xx"}"#),
        3.0
    );
    assert!(get(r#"portcullis_elb_responses_total{code="4xx"}"#) >= 2.0);
    assert!(get("portcullis_fixed_responses_total") >= 1.0);
    assert_eq!(
        get(r#"portcullis_target_response_time_seconds_count{target_group="echo"}"#),
        3.0
    );
    assert_eq!(get("portcullis_auth_success_total"), 1.0);
    assert_eq!(get("portcullis_auth_refresh_token_success_total"), 1.0);
    assert!(get("portcullis_auth_failure_total") >= 1.0);
    assert_eq!(get("portcullis_auth_latency_seconds_count"), 2.0);
    assert!(
        get("portcullis_new_connections_total") >= 1.0,
        "clients keep connections alive"
    );
    assert!(get("portcullis_active_connections") >= 0.0);
    kit.app.shutdown().await;
}
