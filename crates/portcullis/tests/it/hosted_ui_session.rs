//! The hosted UI's one-hour session: a second app's login needs no password, `prompt=login`
//! forces one, and `/logout` (both Cognito forms) ends it.

use crate::kit;

use kit::*;
use serde_json::Value;

#[tokio::test]
async fn second_login_is_silent_until_logout() {
    let kit = Kit::builder().start().await;
    let client = login(&kit, "/tasks").await;

    // Another app (another client) on the same pool: the authorize step answers with a code at once.
    let r = client.get(kit.url("/oidc/page")).send().await.unwrap();
    let authorize = location(&r);
    let r = client.get(&authorize).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let callback = location(&r);
    assert!(
        callback.starts_with(&kit.url("/oauth2/idpresponse?code=")),
        "no sign-in form: {callback}"
    );
    assert_eq!(client.get(&callback).send().await.unwrap().status(), 302);
    assert_eq!(
        client
            .get(kit.url("/oidc/page"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // prompt=login shows the form even with a session.
    let r = client
        .get(format!("{authorize}&prompt=login"))
        .send()
        .await
        .unwrap();
    assert!(location(&r).starts_with("/login?"), "{}", location(&r));

    // Logout with a registered logout_uri: the session cookie is expired and the session ended.
    let signed_out = kit.url("/signed-out");
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let r = client
        .get(format!(
            "{}/logout?client_id=tasks-web&logout_uri={}",
            kit.pool_url,
            enc(&signed_out)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(location(&r), signed_out);
    assert!(
        set_cookies(&r)
            .iter()
            .any(|c| c.starts_with("cognito=;") && c.contains("Max-Age=0"))
    );
    let r = client.get(&authorize).send().await.unwrap();
    assert!(
        location(&r).starts_with("/login?"),
        "after logout the form is back"
    );

    // An unregistered logout_uri is an error page, never a redirect.
    let r = client
        .get(format!(
            "{}/logout?client_id=tasks-web&logout_uri={}",
            kit.pool_url,
            enc("https://evil.example/")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());

    // The second form: sign out and show the sign-in page for these parameters.
    let q = format!(
        "client_id=tasks-web&response_type=code&scope=openid&redirect_uri={}",
        enc(&kit.url("/oauth2/idpresponse"))
    );
    let r = client
        .get(format!("{}/logout?{q}", kit.pool_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(location(&r), format!("/login?{q}"));

    let d: Value = reqwest::get(format!("{}/.well-known/openid-configuration", kit.pool_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        d["end_session_endpoint"],
        format!("{}/logout", kit.pool_url)
    );
    assert_eq!(
        d["revocation_endpoint"],
        format!("{}/oauth2/revoke", kit.pool_url)
    );
    kit.app.shutdown().await;
}

#[tokio::test]
async fn a_stolen_or_made_up_session_cookie_does_nothing() {
    let kit = Kit::builder().start().await;
    let client = browser();
    let r = client.get(kit.url("/tasks")).send().await.unwrap();
    let authorize = location(&r);
    let r = client
        .get(&authorize)
        .header("cookie", "cognito=made-up-value")
        .send()
        .await
        .unwrap();
    assert!(location(&r).starts_with("/login?"));
    let r = client
        .get(&authorize)
        .header("cookie", format!("cognito={}", "x".repeat(5000)))
        .send()
        .await
        .unwrap();
    assert!(location(&r).starts_with("/login?"));
    kit.app.shutdown().await;
}

#[tokio::test]
async fn five_failures_lock_the_user_and_success_resets_the_count() {
    let kit = Kit::builder().start().await;
    let client = browser();
    let login_url = sign_in_page(&kit, &client).await;
    let attempt = |password: &'static str| {
        let (client, login_url) = (client.clone(), login_url.clone());
        async move { submit_sign_in(&client, &login_url, "alice", password).await }
    };
    for i in 0..5 {
        let (status, body) = attempt("wrong").await;
        assert_eq!(status, 401, "attempt {i}");
        assert!(
            body.contains("Incorrect username or password."),
            "attempt {i}"
        );
    }
    // The fifth failure locks for 1 s (whole seconds). The pool's clock moves past it (nothing
    // sleeps), then a sixth counted failure locks for 2 s, and the next attempt comes inside that.
    kit.pool().clock().advance_ms(1100);
    let (status, body) = attempt("wrong").await;
    assert_eq!(status, 401);
    assert!(
        body.contains("Incorrect username or password."),
        "the sixth failure is counted"
    );
    // Locked: the right password is refused too (unknown names lock alike, so this reveals nobody).
    let (status, body) = attempt(PASSWORD).await;
    assert_eq!(status, 401);
    assert!(body.contains("Password attempts exceeded"), "{body}");
    kit.pool().clock().advance_ms(3100);
    let (status, _) = attempt(PASSWORD).await;
    assert_eq!(status, 302, "the lock ends and the right password works");
    // Success cleared the count: four new failures do not lock.
    for _ in 0..4 {
        assert_eq!(attempt("wrong").await.0, 401);
    }
    let (status, _) = attempt(PASSWORD).await;
    assert_eq!(status, 302);
    kit.app.shutdown().await;
}

#[tokio::test]
async fn implicit_flow_returns_tokens_in_the_fragment() {
    let kit = Kit::builder().start().await;
    let client = browser();
    let authorize = format!(
        "{}/oauth2/authorize?client_id=spa&response_type=token&scope=openid%20email&redirect_uri=http%3A%2F%2Flocalhost%2Fspa&state=s1&nonce=n1",
        kit.pool_url
    );
    let r = client.get(&authorize).send().await.unwrap();
    let login = format!("{}{}", kit.pool_url, location(&r));
    let r = post_sign_in(&client, &login, "alice", PASSWORD).await;
    assert_eq!(r.status(), 302);
    let loc = location(&r);
    let (base, fragment) = loc
        .split_once('#')
        .expect("tokens in the fragment, never the query");
    assert_eq!(base, "http://localhost/spa");
    let f: std::collections::HashMap<String, String> = form_urlencoded::parse(fragment.as_bytes())
        .into_owned()
        .collect();
    assert_eq!(f["token_type"], "Bearer");
    assert_eq!(f["expires_in"], "3600");
    assert_eq!(f["state"], "s1");
    assert!(!f.contains_key("refresh_token") && !f.contains_key("code"));
    let id: serde_json::Map<String, Value> =
        jsonwebtoken::dangerous::insecure_decode_claims(&f["id_token"]).unwrap();
    assert_eq!(
        (id["aud"].as_str(), id["nonce"].as_str()),
        (Some("spa"), Some("n1"))
    );
    let at: serde_json::Map<String, Value> =
        jsonwebtoken::dangerous::insecure_decode_claims(&f["access_token"]).unwrap();
    assert_eq!(at["client_id"], "spa");
    // With the session, the next authorize answers with tokens at once.
    let r = client.get(&authorize).send().await.unwrap();
    assert!(
        location(&r).starts_with("http://localhost/spa#"),
        "{}",
        location(&r)
    );
    kit.app.shutdown().await;
}

#[tokio::test]
async fn balancer_logout_ends_everything_and_a_copied_cookie_dies_at_once() {
    let kit = Kit::builder().start().await;
    // Sign in, keeping a copy of the session cookie as a thief would.
    let (client, r) = login_to_callback(&kit, "/tasks").await;
    let copied = session_cookie_of(&r);
    assert!(!copied.is_empty());
    assert_eq!(
        client.get(kit.url("/tasks")).send().await.unwrap().status(),
        200
    );

    // Logout at the balancer: shards expired, refresh token revoked, on to the pool's /logout.
    let r = client.get(kit.url("/tasks/logout")).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let cleared = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter(|v| v.to_str().unwrap().contains("Max-Age=0"))
        .count();
    assert_eq!(cleared, 4, "every shard is expired");
    let to_pool = location(&r);
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    assert_eq!(
        to_pool,
        format!(
            "{}/logout?client_id=tasks-web&logout_uri={}",
            kit.pool_url,
            enc(&kit.url("/signed-out"))
        )
    );
    let r = client.get(&to_pool).send().await.unwrap();
    assert_eq!(location(&r), kit.url("/signed-out"));
    // The next visit asks for a password again (hosted-UI session ended too).
    let r = client.get(kit.url("/tasks")).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let r = client.get(location(&r)).send().await.unwrap();
    assert!(location(&r).starts_with("/login?"));

    // At ALB the copied cookie would open until its access token expires. Here the pool's
    // /logout ended the sign-in session, so the balancer refuses the copy at once (issue 13),
    // with its access token alive or expired (no refresh is even tried).
    for (cookie, what) in [
        (copied.clone(), "alive"),
        (kit.with_access_expired(&copied).0, "expired"),
    ] {
        let r = plain()
            .get(kit.url("/tasks"))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            302,
            "a copied cookie, access token {what}, no longer works"
        );
        assert!(location(&r).contains("/oauth2/authorize?"));
    }
    kit.log_line(&["\"AuthSessionRevoked\""]).await;
    kit.app.shutdown().await;
}

#[tokio::test]
async fn an_expired_access_token_is_refreshed_and_the_session_rewritten() {
    let kit = Kit::builder().start().await;
    let (_, r) = login_to_callback(&kit, "/tasks").await;
    let cookie = session_cookie_of(&r);
    // The same session with its access token expired (sealed with the balancer's keys).
    let (stale, old_access) = kit.with_access_expired(&cookie);

    let r = plain()
        .get(kit.url("/tasks"))
        .header("cookie", stale)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "refreshed, not sent to the IdP");
    let rewritten: Vec<String> = set_cookies(&r);
    assert!(
        rewritten
            .iter()
            .any(|c| c.starts_with("AWSELBAuthSessionCookie-0=") && !c.contains("Max-Age=0")),
        "{rewritten:?}"
    );
    let echo: Value = r.json().await.unwrap();
    let new_access = echo["headers"]["x-amzn-oidc-accesstoken"].as_str().unwrap();
    assert_ne!(
        new_access, old_access,
        "a fresh access token from the refresh grant"
    );
    let at: serde_json::Map<String, Value> =
        jsonwebtoken::dangerous::insecure_decode_claims(new_access).unwrap();
    assert!(at["exp"].as_u64().unwrap() > portcullis_core::now());
    kit.app.shutdown().await;
}
