//! The seed scenario end to end: protected URL → hosted UI → sign-in → callback → the target gets
//! headers whose `x-amzn-oidc-data` verifies against the public-key endpoint and whose access token
//! carries `tasks/read` and verifies against the pool's JWKS. Then every bad path.

use crate::kit;

use base64::Engine;
use kit::*;
use portcullis_auth::AuthKeys;
use serde_json::Value;

async fn json(client: &reqwest::Client, url: &str) -> (u16, Value) {
    let r = client
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn login_and_verified_headers_reach_the_target() {
    let kit = Kit::builder().start().await;
    let client = login(&kit, "/tasks?page=2").await;

    // The callback sent us back to the original URI; the session works without the IdP now.
    let r = client.get(kit.url("/tasks?page=2")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let echo: Value = r.json().await.unwrap();
    assert_eq!(echo["uri"], "/tasks?page=2");
    let h = &echo["headers"];
    let data = h["x-amzn-oidc-data"].as_str().expect("x-amzn-oidc-data");
    let identity = h["x-amzn-oidc-identity"].as_str().expect("identity");
    let access = h["x-amzn-oidc-accesstoken"].as_str().expect("access token");
    // (The pool's `cognito` cookie may pass: both sides are localhost here, and cookies ignore ports.)
    let cookie = h.get("cookie").and_then(Value::as_str).unwrap_or("");
    assert!(
        !cookie.contains("AWSELBAuthSessionCookie") && !cookie.contains("AWSALBAuthNonce"),
        "the balancer's cookies never reach the target: {cookie}"
    );
    assert_eq!(h["x-forwarded-proto"], "https");
    assert_eq!(h["x-forwarded-port"], kit.lb_port.to_string());
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert!(
        h["x-amzn-trace-id"]
            .as_str()
            .unwrap()
            .starts_with("Root=1-")
    );

    // The signed value is cached per session: a second request carries the same bytes.
    let again: Value = client.get(kit.url("/tasks")).fetch_json().await;
    assert_eq!(
        again["headers"]["x-amzn-oidc-data"].as_str(),
        Some(data),
        "no signature per request"
    );

    // Every segment padded base64url, as ALB.
    let segs: Vec<&str> = data.split('.').collect();
    assert_eq!(segs.len(), 3);
    assert!(segs[2].ends_with('='), "padded signature segment");

    // Verify as a backend would: key by kid from the public-key endpoint, signer pinned.
    let kid = portcullis_verify::peek_header(data).unwrap().kid;
    assert_eq!(kid, kit.app.lb.kid);
    let pem = reqwest::get(format!("http://{}/public-keys/{kid}", kit.admin))
        .await
        .unwrap();
    assert_eq!(pem.status(), 200);
    let pem = pem.text().await.unwrap();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"));
    let key = portcullis_verify::PublicKey::from_pem(&pem).unwrap();
    let pool = kit.pool();
    let now = portcullis_core::now();
    let claims = portcullis_verify::AlbVerifier::new(&kit.app.lb.signer_arn)
        .expect_client("tasks-web")
        .expect_issuer(pool.issuer.clone())
        .verify(data, &key, now)
        .unwrap();
    assert!(
        claims.header.signer.starts_with(
            "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/test/"
        )
    );
    assert!(
        claims.header.exp > now && claims.header.exp <= now + 121,
        "exp about two minutes ahead"
    );
    assert_eq!(claims.claims["exp"], claims.header.exp);
    assert_eq!(claims.claims["iss"], pool.issuer.as_str());
    assert_eq!(claims.sub(), Some(identity));
    assert_eq!(claims.claims["username"], "alice");
    assert_eq!(claims.claims["email"], "alice@example.com");
    assert_eq!(
        claims.claims["email_verified"], "true",
        "Cognito's userinfo booleans are strings"
    );
    assert_eq!(claims.claims["custom:team"], "blue");

    // The access token carries tasks/read and verifies against the pool's JWKS.
    let jwks: jsonwebtoken::jwk::JwkSet =
        reqwest::get(format!("{}/.well-known/jwks.json", pool.issuer))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let header = jsonwebtoken::decode_header(access).unwrap();
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("access key in JWKS");
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.set_issuer(&[&pool.issuer]);
    v.validate_aud = false;
    let at = jsonwebtoken::decode::<serde_json::Map<String, Value>>(
        access,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
        &v,
    )
    .unwrap()
    .claims;
    assert_eq!(at["token_use"], "access");
    assert_eq!(at["client_id"], "tasks-web");
    assert_eq!(at["version"], 2);
    assert_eq!(at["username"], "alice");
    assert_eq!(at["sub"], identity);
    let scopes: Vec<&str> = at["scope"].as_str().unwrap().split(' ').collect();
    assert!(
        scopes.contains(&"tasks/read") && scopes.contains(&"openid"),
        "{scopes:?}"
    );
    for claim in ["jti", "origin_jti", "event_id", "auth_time", "iat", "exp"] {
        assert!(at.get(claim).is_some(), "access token has {claim}");
    }
    assert!(at.get("aud").is_none(), "Cognito access tokens have no aud");
    assert_eq!(
        at["cognito:groups"],
        serde_json::json!(["admins", "readers", "zeta"]),
        "by precedence, unranked last"
    );

    // An implementation that is not ours verifies the header too (AWS's documented procedure).
    let dir = tempfile::tempdir().unwrap();
    let pem_file = dir.path().join("key.pem");
    std::fs::write(&pem_file, &pem).unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../e2e/verify_alb_header.py"
    );
    let out = std::process::Command::new("python3")
        .args([
            script,
            data,
            pem_file.to_str().unwrap(),
            &kit.app.lb.signer_arn,
            "tasks-web",
            &pool.issuer,
        ])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python verification failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("verified"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let line = kit
        .log_line(&["\"authenticate,forward\"", "/tasks?page=2", " 200 200 "])
        .await;
    assert!(
        line.starts_with("h2 ") || line.starts_with("https "),
        "{line}"
    );
    assert!(line.contains(":targetgroup/echo/"), "{line}");
    kit.app.shutdown().await;
}

#[tokio::test]
async fn the_bundled_tasks_app_verifies_and_shows_scopes() {
    let kit = Kit::builder().start().await;
    let client = login(&kit, "/tasks").await;
    // Point a tasks app at this Portcullis and call it with the headers the balancer sends.
    let r = client.get(kit.url("/tasks")).send().await.unwrap();
    let echo: Value = r.json().await.unwrap();
    let pool = kit.pool();
    let app = std::sync::Arc::new(portcullis::tasks_app::TasksApp::new(
        &kit.app.lb.signer_arn,
        "tasks-web",
        format!("http://{}", kit.admin),
        format!("{}/.well-known/jwks.json", pool.issuer),
        pool.issuer.clone(),
    ));
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    tokio::spawn(portcullis::tasks_app::serve(
        tcp,
        app,
        std::future::pending(),
    ));
    let plain = reqwest::Client::new();
    let mut req = plain
        .get(format!("http://{addr}/tasks"))
        .header("accept", "application/json");
    for h in [
        "x-amzn-oidc-data",
        "x-amzn-oidc-identity",
        "x-amzn-oidc-accesstoken",
    ] {
        req = req.header(h, echo["headers"][h].as_str().unwrap());
    }
    let body: Value = req.fetch_json().await;
    assert_eq!(body["verified"], true, "{body}");
    assert_eq!(body["username"], "alice");
    assert!(
        body["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "tasks/read")
    );
    assert_eq!(body["tasks"].as_array().unwrap().len(), 3);
    // The same app refuses a forged header and a request without one.
    let (status, body) = json(&plain, &format!("http://{addr}/tasks")).await;
    assert_eq!(
        (status, body["verified"].clone()),
        (401, Value::Bool(false))
    );
    let forged = echo["headers"]["x-amzn-oidc-data"]
        .as_str()
        .unwrap()
        .replacen('.', ".eyJzdWIiOiJldmUifQ==.", 1);
    let r = plain
        .get(format!("http://{addr}/tasks"))
        .header("accept", "application/json")
        .header("x-amzn-oidc-data", forged)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    kit.app.shutdown().await;
}

/// Logs in and returns the raw session cookie pairs (`AWSELBAuthSessionCookie-N=...`).
async fn session_pairs(kit: &Kit) -> Vec<(String, String)> {
    let client = browser();
    let p = login_until_callback(kit, &client, "/tasks", PASSWORD).await;
    let r = client.get(&p.callback).send().await.unwrap();
    session_cookie_of(&r)
        .split("; ")
        .map(|pair| {
            let (n, v) = pair.split_once('=').unwrap();
            (n.to_string(), v.to_string())
        })
        .collect()
}

#[tokio::test]
async fn tampered_truncated_or_oversharded_cookies_mean_a_new_login() {
    let kit = Kit::builder().start().await;
    let pairs = session_pairs(&kit).await;
    assert_eq!(pairs.len(), 1, "one shard for a small session");
    assert_eq!(pairs[0].0, "AWSELBAuthSessionCookie-0");
    let plain = plain();
    let get = |cookie: String| plain.get(kit.url("/tasks")).header("cookie", cookie).send();

    let good = format!("{}={}", pairs[0].0, pairs[0].1);
    assert_eq!(
        get(good.clone()).await.unwrap().status(),
        200,
        "the untouched cookie works"
    );

    let v = &pairs[0].1;
    let mid = v.len() / 2;
    let flipped = if &v[mid..mid + 1] == "A" { "B" } else { "A" };
    let tampered = format!(
        "AWSELBAuthSessionCookie-0={}{}{}",
        &v[..mid],
        flipped,
        &v[mid + 1..]
    );
    let truncated = format!("AWSELBAuthSessionCookie-0={}", &v[..v.len() - 10]);
    let garbage = "AWSELBAuthSessionCookie-0=%%%not-base64".to_string();
    let five = format!(
        "{good}; AWSELBAuthSessionCookie-1=x; AWSELBAuthSessionCookie-2=x; AWSELBAuthSessionCookie-3=x; AWSELBAuthSessionCookie-4=x"
    );
    for cookie in [tampered, truncated, garbage, five] {
        let r = get(cookie.clone()).await.unwrap();
        assert_eq!(r.status(), 302, "{cookie:.60}: a new login, not an error");
        assert!(location(&r).contains("/oauth2/authorize?"));
        let cleared: Vec<_> = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter(|v| v.starts_with("AWSELBAuthSessionCookie-") && v.contains("Max-Age=0"))
            .collect();
        assert!(!cleared.is_empty(), "the bad shards are expired");
    }
    kit.log_line(&["\"AuthInvalidCookie\""]).await;
    kit.app.shutdown().await;
}

#[tokio::test]
async fn nonce_is_checked_before_the_code_is_spent() {
    let kit = Kit::builder().start().await;
    let client = browser();
    let p = login_until_callback(&kit, &client, "/tasks", PASSWORD).await;
    let stranger = plain();

    // No nonce cookie: 401, AuthMissingAWSALBAuthNonce.
    let r = stranger.get(&p.callback).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("401 Authorization Required")
    );
    kit.log_line(&["AuthMissingAWSALBAuthNonce", " 401 "]).await;

    // Another browser's nonce: 401, AuthInvalidAWSALBAuthNonce.
    let r = stranger
        .get(&p.callback)
        .header("cookie", "AWSALBAuthNonce=AAAAAAAAAAAAAAAA")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    kit.log_line(&["AuthInvalidAWSALBAuthNonce"]).await;

    // The code was not spent: the right browser still completes the login with it.
    let r = client.get(&p.callback).send().await.unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(location(&r), "/tasks");
    let cookies: Vec<String> = set_cookies(&r);
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("AWSELBAuthSessionCookie-0=")
                && c.contains("Secure")
                && c.contains("HttpOnly"))
    );
    assert!(
        cookies.iter().any(|c| c.starts_with("AWSALBAuthNonce=;")),
        "nonce cookie expired after success"
    );
    assert_eq!(
        client.get(kit.url("/tasks")).send().await.unwrap().status(),
        200
    );

    // Replaying the same callback (code already used) fails at the IdP: invalid_grant.
    let r = stranger
        .get(&p.callback)
        .header("cookie", format!("AWSALBAuthNonce={}", p.nonce))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 561);
    kit.log_line(&["AuthInvalidGrantError", " 561 "]).await;
    kit.app.shutdown().await;
}

#[tokio::test]
async fn a_replayed_code_gets_invalid_grant_from_the_token_endpoint() {
    let kit = Kit::builder().start().await;
    let client = browser();
    let p = login_until_callback(&kit, &client, "/tasks", PASSWORD).await;
    let code = p.code();
    let secret = kit.pool().client_secret("tasks-web").unwrap().to_string();
    let redirect_uri = kit.url("/oauth2/idpresponse");
    let verifier = p.verifier();
    let token = |code: String| {
        reqwest::Client::new()
            .post(format!("{}/oauth2/token", kit.pool_url))
            .basic_auth("tasks-web", Some(secret.clone()))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", redirect_uri.as_str()),
                ("code_verifier", verifier.as_str()),
            ])
            .send()
    };
    let first = token(code.clone()).await.unwrap();
    assert_eq!(first.status(), 200);
    let body: Value = first.json().await.unwrap();
    assert!(body["id_token"].is_string() && body["refresh_token"].is_string());
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let replay = token(code).await.unwrap();
    assert_eq!(replay.status(), 400);
    let body: Value = replay.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    // A wrong secret is invalid_client, and the secret is compared, not logged.
    let r = reqwest::Client::new()
        .post(format!("{}/oauth2/token", kit.pool_url))
        .basic_auth("tasks-web", Some("wrong"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("redirect_uri", redirect_uri.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");
    kit.app.shutdown().await;
}

#[tokio::test]
async fn tampered_expired_or_missing_state_is_401() {
    let kit = Kit::builder().start().await;
    let client = browser();
    let p = login_until_callback(&kit, &client, "/tasks", PASSWORD).await;
    let (base, query) = p.callback.split_once('?').unwrap();
    let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let code = &params.iter().find(|(k, _)| k == "code").unwrap().1;
    let state = &params.iter().find(|(k, _)| k == "state").unwrap().1;
    let nonce_cookie = format!("AWSALBAuthNonce={}", p.nonce);
    let stranger = plain();
    let call = |q: String| {
        stranger
            .get(format!("{base}?{q}"))
            .header("cookie", nonce_cookie.clone())
            .send()
    };
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();

    // Tampered.
    let mut raw = base64::engine::general_purpose::STANDARD
        .decode(state)
        .unwrap();
    raw[30] ^= 1;
    let tampered = base64::engine::general_purpose::STANDARD.encode(raw);
    let r = call(format!("code={code}&state={}", enc(&tampered)))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    kit.log_line(&["AuthInvalidStateParam"]).await;

    // Older than 15 minutes, sealed with the balancer's own keys.
    let keys = AuthKeys::load_or_generate(&kit.state_dir.join("lb")).unwrap();
    let old = portcullis_auth::state::seal(
        &keys.ring,
        "/tasks",
        "1/10",
        &p.nonce,
        portcullis_core::now() - 901,
    )
    .unwrap();
    let r = call(format!("code={code}&state={}", enc(&old)))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // The same state made 14 minutes ago is still accepted (proves the 401 above is the age).
    let fresh = portcullis_auth::state::seal(
        &keys.ring,
        "/tasks",
        "1/10",
        &p.nonce,
        portcullis_core::now() - 840,
    )
    .unwrap();

    // Missing state, missing code.
    let r = call(format!("code={code}")).await.unwrap();
    assert_eq!(r.status(), 401);
    kit.log_line(&["AuthMissingStateParam"]).await;
    let r = call(format!("state={}", enc(state))).await.unwrap();
    assert_eq!(r.status(), 401);
    kit.log_line(&["AuthMissingCodeParam"]).await;

    // The IdP said no.
    let r = call(format!("error=access_denied&state={}", enc(state)))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let r = call(format!("code={code}&state={}", enc(&fresh)))
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        302,
        "a 14-minute-old state with an unspent code completes"
    );
    kit.app.shutdown().await;
}

#[tokio::test]
async fn client_sent_oidc_headers_never_reach_a_target() {
    let kit = Kit::builder().start().await;
    let forged = [
        ("x-amzn-oidc-data", "forged"),
        ("x-amzn-oidc-identity", "admin"),
        ("X-Amzn-Oidc-AccessToken", "t"),
        ("x-amzn-oidc-anything", "1"),
    ];
    let plain = reqwest::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    // A rule without authentication, on HTTPS and on plain HTTP.
    for url in [
        kit.url("/open/x"),
        format!("http://127.0.0.1:{}/y", kit.http_port),
    ] {
        let mut req = plain.get(&url);
        for (k, v) in forged {
            req = req.header(k, v);
        }
        let echo: Value = req.fetch_json().await;
        let names: Vec<&String> = echo["headers"].as_object().unwrap().keys().collect();
        assert!(
            !names.iter().any(|n| n.starts_with("x-amzn-oidc-")),
            "{url}: {names:?}"
        );
    }
    // An authenticated rule: the target sees the balancer's values, not the client's.
    let client = login(&kit, "/tasks").await;
    let mut req = client.get(kit.url("/tasks"));
    for (k, v) in forged {
        req = req.header(k, v);
    }
    let echo: Value = req.fetch_json().await;
    let h = &echo["headers"];
    assert_ne!(h["x-amzn-oidc-data"], "forged");
    assert_ne!(h["x-amzn-oidc-identity"], "admin");
    assert!(h.get("x-amzn-oidc-anything").is_none());
    kit.app.shutdown().await;
}

#[tokio::test]
async fn deny_answers_401_without_a_session() {
    let kit = Kit::builder().start().await;
    let plain = plain();
    let r = plain.get(kit.url("/api/items")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["server"], "awselb/2.0");
    // With a session from the same client and pool, deny forwards with claims.
    let client = login(&kit, "/tasks").await;
    let r = client.get(kit.url("/api/items")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let echo: Value = r.json().await.unwrap();
    assert!(echo["headers"]["x-amzn-oidc-data"].is_string());
    kit.app.shutdown().await;
}

#[tokio::test]
async fn redirects_outside_this_host_are_refused() {
    let kit = Kit::builder()
        .authenticated_rule(40, "/*", r#"scope = "openid""#)
        .start()
        .await;
    // The IdP refuses an unregistered redirect_uri with an error page, never a redirect.
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = plain
        .get(format!("{}/oauth2/authorize?client_id=tasks-web&response_type=code&scope=openid&redirect_uri=https%3A%2F%2Fevil.example%2Fcb", kit.pool_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    assert!(r.text().await.unwrap().contains("redirect_mismatch"));

    // After login the balancer sends the browser only to a path on this host.
    let (_, r) = login_to_callback(&kit, "//evil.example/x").await;
    assert_eq!(r.status(), 302);
    let back = location(&r);
    assert!(back.starts_with('/') && !back.starts_with("//"), "{back}");
    kit.app.shutdown().await;
}

#[tokio::test]
async fn wrong_password_shows_an_error_page() {
    let kit = Kit::builder().start().await;
    let client = browser();
    let login_url = sign_in_page(&kit, &client).await;
    let r = post_sign_in(&client, &login_url, "alice", "nope").await;
    assert_eq!(r.status(), 401);
    let html = r.text().await.unwrap();
    assert!(html.contains("Incorrect username or password."));
    // An unknown user gets the same words.
    let r = post_sign_in_form(&client, &login_url, &csrf(&html), "mallory", "nope").await;
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Incorrect username or password.")
    );
    // A form without the CSRF cookie's value is refused.
    let r = post_sign_in_form(&client, &login_url, "forged", "alice", PASSWORD).await;
    assert_eq!(r.status(), 403);
    kit.app.shutdown().await;
}

#[tokio::test]
async fn load_balancer_status_pages_and_routing() {
    let kit = Kit::builder().start().await;
    let plain = plain();
    let r = plain.get(kit.url("/nothing")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.text().await.unwrap(), "no route");
    let r = plain
        .request(reqwest::Method::TRACE, kit.url("/open/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let xff = (0..31)
        .map(|i| format!("10.0.0.{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let r = plain
        .get(kit.url("/open/x"))
        .header("x-forwarded-for", xff)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 463);
    // HTTP/2 is negotiated by ALPN on the HTTPS listener.
    let r = plain.get(kit.url("/open/x")).send().await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    kit.app.shutdown().await;
}

#[tokio::test]
async fn session_cookies_are_stripped_unless_configured_otherwise() {
    // The jar also holds the pool's `cognito` cookie (same host here): a credential of the pool,
    // removed whatever `forward_auth_cookies` says (issue 10, item 9).
    let kit = Kit::builder()
        .lb("forward_auth_cookies = true")
        .start()
        .await;
    let client = login(&kit, "/tasks").await;
    let echo: Value = client.get(kit.url("/tasks")).fetch_json().await;
    let cookie = echo["headers"]["cookie"].as_str().unwrap();
    assert!(
        cookie.contains("AWSELBAuthSessionCookie-0=") && !cookie.contains("cognito="),
        "the session as behind ALB, never the pool's cookie: {cookie}"
    );
    kit.app.shutdown().await;

    let kit = Kit::builder().start().await;
    let client = login(&kit, "/tasks").await;
    let echo: Value = client.get(kit.url("/tasks")).fetch_json().await;
    // The jar holds only credentials here (session shards, the pool's `cognito` and `XSRF-TOKEN`):
    // none reaches the target.
    let cookie = echo["headers"]["cookie"].as_str().unwrap_or("");
    assert!(
        !cookie.contains("cognito=") && !cookie.contains("AWSELBAuthSessionCookie"),
        "{cookie}"
    );
    kit.app.shutdown().await;
}
