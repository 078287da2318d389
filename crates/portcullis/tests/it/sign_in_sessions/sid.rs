//! `sid` in tokens: one per browser session, kept across refresh.

use super::*;

#[tokio::test]
async fn sid_is_shared_by_a_browser_session_and_kept_across_refresh() {
    let s = serve(None, "").await;
    let b = browser();
    let code_a = hosted_sign_in(&s, &b, "web-a", "alice").await;
    let code_b = silent_code(&s, &b, "web-b").await;
    let a = redeem(&s, "web-a", &code_a).await;
    let bt = redeem(&s, "web-b", &code_b).await;
    let sid = sid_of(a["id_token"].as_str().unwrap());
    assert!(sid.len() >= 22, "at least 128 bits: {sid}");
    assert_eq!(
        sid,
        sid_of(bt["id_token"].as_str().unwrap()),
        "one browser session, one sid"
    );
    assert_eq!(
        sid,
        sid_of(a["access_token"].as_str().unwrap()),
        "access tokens carry it too"
    );
    let rec = s
        .pool
        .sign_in_session(&sid)
        .await
        .unwrap()
        .expect("recorded");
    assert_eq!(rec.clients, vec!["web-a".to_string(), "web-b".to_string()]);
    assert!(rec.ended_at.is_none());
    // Refresh keeps the sid.
    let (status, r) = refresh_status(&s, "web-a", a["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(sid_of(r["id_token"].as_str().unwrap()), sid);
    // Another browser: another session.
    let other = hosted_sign_in(&s, &browser(), "web-a", "alice").await;
    let o = redeem(&s, "web-a", &other).await;
    assert_ne!(sid_of(o["id_token"].as_str().unwrap()), sid);
    // Each API sign-in is a session of its own, kept across its refresh.
    let t1 = api_sign_in(&s, "alice").await;
    let t2 = api_sign_in(&s, "alice").await;
    let sid1 = sid_of(t1["IdToken"].as_str().unwrap());
    assert_ne!(sid1, sid_of(t2["IdToken"].as_str().unwrap()));
    assert_ne!(sid1, sid);
    let (status, r) = api_refresh(&s, t1["RefreshToken"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(
        sid_of(r["AuthenticationResult"]["IdToken"].as_str().unwrap()),
        sid1
    );
    let d: Value = well_known(&s, "openid-configuration").await;
    assert_eq!(d["backchannel_logout_supported"], true);
    assert_eq!(d["backchannel_logout_session_supported"], true);
}
