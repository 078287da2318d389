//! Load-balancer behaviour around the scenario: authenticate-oidc with client_secret_post,
//! `allow`, host-header routing, redirects, round robin, ALB's 502/503/504, and the status codes
//! and access-log reasons of spec §2.10 that an IdP's failures produce.

use crate::kit;

use kit::fake_idp::{self, TokenReply, Userinfo};
use kit::*;
use serde_json::Value;

#[tokio::test]
async fn authenticate_oidc_with_explicit_endpoints_and_client_secret_post() {
    let kit = Kit::builder().start().await;
    let (client, r) = login_to_callback(&kit, "/oidc/page").await;
    assert_eq!(r.status(), 302);
    let cookies: Vec<String> = set_cookies(&r);
    assert!(
        cookies.iter().any(|c| c.starts_with("OidcSession-0=")),
        "its own cookie name: {cookies:?}"
    );
    let echo: Value = client.get(kit.url("/oidc/page")).fetch_json().await;
    let data = echo["headers"]["x-amzn-oidc-data"].as_str().unwrap();
    let h = portcullis_verify::peek_header(data).unwrap();
    assert_eq!(h.client, "oidc-web");
    assert_eq!(
        h.iss,
        "http://localhost:".to_string()
            + kit.pool_url.rsplit(':').next().unwrap()
            + "/us-east-1_Kit12345"
    );
    // Independent sessions: the /tasks rule (another cookie name) still asks for a login.
    let r = client.get(kit.url("/tasks")).send().await.unwrap();
    assert_eq!(r.status(), 302);
    kit.app.shutdown().await;
}

#[tokio::test]
async fn allow_forwards_without_claims_and_with_them_after_login() {
    let kit = Kit::builder().start().await;
    let r = plain().get(kit.url("/allow/x")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let echo: Value = r.json().await.unwrap();
    assert!(echo["headers"].get("x-amzn-oidc-data").is_none());
    let client = login(&kit, "/tasks").await;
    let echo: Value = client.get(kit.url("/allow/x")).fetch_json().await;
    assert!(echo["headers"]["x-amzn-oidc-identity"].is_string());
    kit.app.shutdown().await;
}

#[tokio::test]
async fn host_header_rules_redirects_and_round_robin() {
    let (b1, b2) = (echo_backend().await, echo_backend().await);
    let kit = Kit::builder().toml(&format!(
        r#"
[[listeners.rules]]
priority = 5
conditions = [{{ field = "host-header", values = ["api.*.test"] }}, {{ field = "path-pattern", values = ["/*"] }}]
actions = [{{ type = "fixed-response", status_code = 200, content_type = "application/json", message_body = "{{\"api\":true}}" }}]

[[listeners.rules]]
priority = 6
conditions = [{{ field = "path-pattern", values = ["/old/*"] }}]
actions = [{{ type = "redirect", status_code = "HTTP_301", path = "/new/#{{path}}", query = "from=old&#{{query}}" }}]

[[listeners.rules]]
priority = 7
conditions = [{{ field = "path-pattern", values = ["/pair/*"] }}]
actions = [{{ type = "forward", target_group = "pair" }}]

[[target_groups]]
name = "pair"
targets = [{{ id = "127.0.0.1", port = {p1} }}, {{ id = "127.0.0.1", port = {p2} }}]
"#,
        p1 = b1.port(),
        p2 = b2.port(),
    )).start()
    .await;
    let c = plain();
    // Host rule: case-insensitive wildcard on the name without the port; resolve api.x.test locally.
    let api = reqwest::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .resolve(
            "API.Blue.test",
            format!("127.0.0.1:{}", kit.lb_port).parse().unwrap(),
        )
        .build()
        .unwrap();
    let r = api
        .get(format!("https://API.Blue.test:{}/anything", kit.lb_port))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.text().await.unwrap(), "{\"api\":true}");
    // Redirect keeps host and port, rewrites path and query.
    let r = c.get(kit.url("/old/a/b?x=1")).send().await.unwrap();
    assert_eq!(r.status(), 301);
    assert_eq!(
        location(&r),
        format!("https://localhost:{}/new/old/a/b?from=old&x=1", kit.lb_port)
    );
    kit.log_line(&["\"redirect\"", "/new/old/a/b"]).await;
    // Round robin over the group's targets, on pooled connections.
    let mut backends = Vec::new();
    let mut hosts = Vec::new();
    for _ in 0..6 {
        let echo: Value = c.get(kit.url("/pair/x")).fetch_json().await;
        backends.push(echo["backend"].as_str().unwrap().to_string());
        hosts.push(echo["headers"]["host"].as_str().unwrap().to_string());
    }
    assert_ne!(backends[0], backends[1], "{backends:?}");
    assert!(
        backends.iter().step_by(2).all(|b| b == &backends[0]),
        "{backends:?}"
    );
    assert!(
        backends
            .iter()
            .skip(1)
            .step_by(2)
            .all(|b| b == &backends[1]),
        "{backends:?}"
    );
    let pair = [b1.to_string(), b2.to_string()];
    assert!(backends.iter().all(|b| pair.contains(b)));
    // The Host header is the client's, as ALB keeps it.
    assert!(
        hosts
            .iter()
            .all(|h| h == &format!("localhost:{}", kit.lb_port)),
        "{hosts:?}"
    );
    kit.app.shutdown().await;
}

#[tokio::test]
async fn alb_status_codes_for_targets() {
    // A port with nothing listening, a target that never answers, and an empty group.
    let closed = free_port();
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            if let Ok((s, _)) = silent.accept().await {
                held.push(s)
            }
        }
    });
    let kit = Kit::builder()
        .toml(&format!(
            r#"
[[listeners.rules]]
priority = 60
conditions = [{{ field = "path-pattern", values = ["/refused"] }}]
actions = [{{ type = "forward", target_group = "refused" }}]
[[listeners.rules]]
priority = 61
conditions = [{{ field = "path-pattern", values = ["/silent"] }}]
actions = [{{ type = "forward", target_group = "silent" }}]
[[listeners.rules]]
priority = 62
conditions = [{{ field = "path-pattern", values = ["/empty"] }}]
actions = [{{ type = "forward", target_group = "empty" }}]
[[target_groups]]
name = "refused"
targets = [{{ id = "127.0.0.1", port = {closed} }}]
[[target_groups]]
name = "silent"
targets = [{{ id = "127.0.0.1", port = {silent_port} }}]
[[target_groups]]
name = "empty"
"#
        ))
        .lb("idle_timeout_seconds = 1")
        .start()
        .await;
    let c = plain();
    let r = c.get(kit.url("/refused")).send().await.unwrap();
    assert_eq!(r.status(), 502);
    assert_eq!(r.headers()["server"], "awselb/2.0");
    assert!(r.text().await.unwrap().contains("502 Bad Gateway"));
    assert_eq!(
        c.get(kit.url("/silent")).send().await.unwrap().status(),
        504
    );
    assert_eq!(c.get(kit.url("/empty")).send().await.unwrap().status(), 503);
    kit.log_line(&["/refused", " 502 - "]).await;
    kit.log_line(&["/silent", " 504 - "]).await;
    kit.app.shutdown().await;
}

/// Starts a login against the fake IdP and returns the callback URL with `state` and a code.
async fn fake_callback(kit: &Kit, client: &reqwest::Client) -> String {
    fake_callback_at(kit, client, "/fake/x").await
}

async fn fake_callback_at(kit: &Kit, client: &reqwest::Client, path: &str) -> String {
    let r = client.get(kit.url(path)).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let loc = location(&r);
    let state = query_param(&loc, "state");
    kit.url(&format!("/oauth2/idpresponse?code=fake-code&state={state}"))
}

#[tokio::test]
async fn idp_failures_map_to_alb_status_codes_and_reasons() {
    let (addr, fake) = fake_idp::start().await;
    let kit = Kit::builder().toml(&fake_idp::rule(addr)).start().await;
    let cases: [(TokenReply, Userinfo, u16, &str); 8] = [
        (
            TokenReply::Status(500),
            Userinfo::Ok,
            561,
            "AuthTokenEpRequestFailed",
        ),
        (
            TokenReply::InvalidGrant,
            Userinfo::Ok,
            561,
            "AuthInvalidGrantError",
        ),
        (
            TokenReply::WithoutIdTokenField,
            Userinfo::Ok,
            401,
            "AuthInvalidTokenResponse",
        ),
        (
            TokenReply::Garbage,
            Userinfo::Ok,
            401,
            "AuthInvalidTokenResponse",
        ),
        (
            TokenReply::Ok,
            Userinfo::Status(503),
            561,
            "AuthUserinfoEpRequestFailed",
        ),
        (
            TokenReply::Ok,
            Userinfo::Huge,
            500,
            "AuthUserinfoResponseSizeExceeded",
        ),
        (
            TokenReply::Ok,
            Userinfo::NoSub,
            401,
            "AuthInvalidUserinfoResponse",
        ),
        (TokenReply::Ok, Userinfo::Ok, 302, "-"),
    ];
    for (token, userinfo, status, reason) in cases {
        {
            let mut g = fake.lock().unwrap();
            g.token = token;
            g.userinfo = userinfo;
        }
        let client = browser();
        let cb = fake_callback(&kit, &client).await;
        let r = client.get(&cb).send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{token:?}/{userinfo:?}");
        if reason != "-" {
            kit.log_line(&[&format!("\"{reason}\""), &format!(" {status} ")])
                .await;
        }
    }
    assert_eq!(
        fake.lock().unwrap().last_token_auth.as_deref(),
        Some("basic"),
        "client_secret_basic is the default"
    );
    // The successful fake login forwards the fake's claims.
    kit.app.shutdown().await;
}

#[tokio::test]
async fn unreachable_token_endpoint_is_500() {
    let closed = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    let kit = Kit::builder().toml(&fake_idp::rule(closed)).start().await;
    let client = browser();
    let cb = fake_callback(&kit, &client).await;
    let r = client.get(&cb).send().await.unwrap();
    assert_eq!(r.status(), 500);
    kit.log_line(&["\"AuthTokenEpRequestTimeout\"", " 500 "])
        .await;
    kit.app.shutdown().await;
}

#[tokio::test]
async fn token_endpoint_contract() {
    let kit = Kit::builder().start().await;
    let client = browser();
    let p = login_until_callback(&kit, &client, "/oidc/x", PASSWORD).await;
    let code = p.code();
    let token_url = format!("{}/oauth2/token", kit.pool_url);
    let c = reqwest::Client::new();
    let redirect_uri = kit.url("/oauth2/idpresponse");
    // redirect_uri must match the authorization request's.
    let r = c
        .post(&token_url)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", "https://localhost/other"),
            ("client_id", "oidc-web"),
            ("client_secret", OIDC_SECRET),
            ("code_verifier", p.verifier().as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");
    // Wrong content type, unknown grant, missing grant.
    let r = c
        .post(&token_url)
        .body("grant_type=x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request");
    let r = c
        .post(&token_url)
        .form(&[
            ("grant_type", "password"),
            ("client_id", "oidc-web"),
            ("client_secret", OIDC_SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "unsupported_grant_type"
    );
    // A fresh code with client_secret_post gives Cognito-shaped tokens.
    let p = login_until_callback(&kit, &browser(), "/oidc/x", PASSWORD).await;
    let code = p.code();
    let r = c
        .post(&token_url)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect_uri.as_str()),
            ("client_id", "oidc-web"),
            ("client_secret", OIDC_SECRET),
            ("code_verifier", p.verifier().as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let t: Value = r.json().await.unwrap();
    let id: serde_json::Map<String, Value> =
        jsonwebtoken::dangerous::insecure_decode_claims(t["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(id["token_use"], "id");
    assert_eq!(id["aud"], "oidc-web");
    assert_eq!(id["cognito:username"], "alice");
    assert_eq!(id["email_verified"], true, "a real boolean in tokens");
    assert_eq!(
        id["cognito:groups"],
        serde_json::json!(["admins", "readers", "zeta"])
    );
    // This client's validities (minutes) and read attributes.
    assert_eq!(t["expires_in"], 1800);
    assert_eq!(
        id["exp"].as_u64().unwrap() - id["iat"].as_u64().unwrap(),
        600
    );
    assert!(
        id.get("custom:team").is_none(),
        "not in the client's read_attributes"
    );
    assert!(id.contains_key("auth_time") && id.contains_key("jti"));
    // userInfo: booleans as strings; a bad token is 401 with WWW-Authenticate.
    let r = c
        .get(format!("{}/oauth2/userInfo", kit.pool_url))
        .bearer_auth(t["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let u: Value = r.json().await.unwrap();
    assert_eq!(u["email_verified"], "true");
    assert!(
        u.get("custom:team").is_none(),
        "userInfo honours read_attributes"
    );
    assert_eq!(u["username"], "alice");
    let r = c
        .get(format!("{}/oauth2/userInfo", kit.pool_url))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    // The refresh grant mints a new access token for the same user.
    let r = c
        .post(&token_url)
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
            ("client_id", "oidc-web"),
            ("client_secret", OIDC_SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r2: Value = r.json().await.unwrap();
    assert!(r2["access_token"].is_string());
    // This client rotates refresh tokens (grace 0): a new one comes back, and the old one used
    // again is a reuse that revokes the whole family, the new one too (RFC 9700 §4.14.2).
    let rotated = r2["refresh_token"]
        .as_str()
        .expect("a new refresh token")
        .to_string();
    assert_ne!(rotated, t["refresh_token"].as_str().unwrap());
    let refresh_with = |rt: String| {
        c.post(&token_url)
            .form(&[
                ("grant_type", "refresh_token".to_string()),
                ("refresh_token", rt),
                ("client_id", "oidc-web".into()),
                ("client_secret", OIDC_SECRET.into()),
            ])
            .send()
    };
    let old = refresh_with(t["refresh_token"].as_str().unwrap().to_string())
        .await
        .unwrap();
    assert_eq!(old.status(), 400);
    assert_eq!(old.json::<Value>().await.unwrap()["error"], "invalid_grant");
    assert_eq!(refresh_with(rotated).await.unwrap().status(), 400);
    // Discovery points at the endpoints.
    let d: Value = reqwest::get(format!(
        "{}/us-east-1_Kit12345/.well-known/openid-configuration",
        kit.pool_url
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(d["issuer"], format!("{}/us-east-1_Kit12345", kit.pool_url));
    assert_eq!(d["token_endpoint"], token_url);
    kit.app.shutdown().await;
}

#[tokio::test]
async fn client_credentials_grant_gives_custom_scopes_only() {
    let kit = Kit::builder().start().await;
    let pool = kit.pool();
    let secret = pool.client_secret("machine").unwrap().to_string();
    let token_url = format!("{}/oauth2/token", kit.pool_url);
    let c = reqwest::Client::new();
    let grant = |scope: Option<&'static str>, id: &'static str, secret: String| {
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(s) = scope {
            form.push(("scope", s));
        }
        c.post(&token_url)
            .basic_auth(id, Some(secret))
            .form(&form)
            .send()
    };
    let r = grant(None, "machine", secret.clone()).await.unwrap();
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    assert!(t.get("id_token").is_none() && t.get("refresh_token").is_none());
    assert_eq!(t["token_type"], "Bearer");
    let at: serde_json::Map<String, Value> =
        jsonwebtoken::dangerous::insecure_decode_claims(t["access_token"].as_str().unwrap())
            .unwrap();
    assert_eq!(at["sub"], "machine");
    assert_eq!(at["client_id"], "machine");
    assert_eq!(at["token_use"], "access");
    assert_eq!(at["scope"], "tasks/read tasks/write");
    assert!(at.get("username").is_none());
    // The token verifies against the pool's JWKS like any access token.
    let jwks: jsonwebtoken::jwk::JwkSet =
        reqwest::get(format!("{}/.well-known/jwks.json", pool.issuer))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let kid = jsonwebtoken::decode_header(t["access_token"].as_str().unwrap())
        .unwrap()
        .kid
        .unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.set_issuer(&[&pool.issuer]);
    v.validate_aud = false;
    jsonwebtoken::decode::<Value>(
        t["access_token"].as_str().unwrap(),
        &jsonwebtoken::DecodingKey::from_jwk(jwks.find(&kid).unwrap()).unwrap(),
        &v,
    )
    .unwrap();
    // It is not a user token: userInfo refuses it.
    let r = c
        .get(format!("{}/oauth2/userInfo", kit.pool_url))
        .bearer_auth(t["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let t: Value = grant(Some("tasks/read"), "machine", secret.clone())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let at: serde_json::Map<String, Value> =
        jsonwebtoken::dangerous::insecure_decode_claims(t["access_token"].as_str().unwrap())
            .unwrap();
    assert_eq!(at["scope"], "tasks/read");
    let r = grant(Some("openid"), "machine", secret.clone())
        .await
        .unwrap();
    assert_eq!(
        (
            r.status().as_u16(),
            r.json::<Value>().await.unwrap()["error"].clone()
        ),
        (400, Value::from("invalid_scope"))
    );
    let r = grant(None, "machine", "wrong".into()).await.unwrap();
    assert_eq!(r.status(), 401);
    let web_secret = pool.client_secret("tasks-web").unwrap().to_string();
    let r = grant(None, "tasks-web", web_secret).await.unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "unauthorized_client"
    );
    kit.app.shutdown().await;
}

#[tokio::test]
async fn pkce_and_nonce_are_sent_by_default_and_the_nonce_is_enforced() {
    let (addr, _fake) = fake_idp::start().await;
    let kit = Kit::builder().toml(&fake_idp::rule(addr)).start().await;
    // The embedded pool: the redirect carries an S256 challenge and a nonce (the whole login with
    // them is exercised by every other test: the pool checks the verifier).
    let r = plain().get(kit.url("/tasks")).send().await.unwrap();
    let loc = location(&r);
    assert!(
        loc.contains("&code_challenge=")
            && loc.contains("&code_challenge_method=S256")
            && loc.contains("&nonce="),
        "{loc}"
    );
    // A code from such a login cannot be redeemed without the verifier (which only this browser's
    // nonce cookie yields).
    let p = login_until_callback(&kit, &browser(), "/tasks", PASSWORD).await;
    let secret = kit.pool().client_secret("tasks-web").unwrap().to_string();
    let redirect_uri = kit.url("/oauth2/idpresponse");
    let r = reqwest::Client::new()
        .post(format!("{}/oauth2/token", kit.pool_url))
        .basic_auth("tasks-web", Some(secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", p.code().as_str()),
            ("redirect_uri", redirect_uri.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (body["error"].as_str(), body["error_description"].as_str()),
        (Some("invalid_grant"), Some("code_verifier is missing"))
    );
    // Strict ALB parity, per action: neither is sent.
    let r = plain().get(kit.url("/fake/x")).send().await.unwrap();
    let loc = location(&r);
    assert!(
        !loc.contains("code_challenge") && !loc.contains("nonce="),
        "{loc}"
    );
    // An ID token without the nonce that was sent is refused.
    let client = browser();
    let cb = fake_callback_at(&kit, &client, "/fake-nonce/x").await;
    let r = client.get(&cb).send().await.unwrap();
    assert_eq!(r.status(), 401);
    kit.log_line(&["\"AuthInvalidIdToken\""]).await;
    kit.app.shutdown().await;
}

#[tokio::test]
async fn require_scopes_groups_and_claims_answer_403() {
    let auth = |priority: u32, path: &str, require: &str| {
        format!(
            r#"
[[listeners.rules]]
priority = {priority}
conditions = [{{ field = "path-pattern", values = ["{path}"] }}]
actions = [
  {{ type = "authenticate-cognito", user_pool = "test", user_pool_client_id = "tasks-web", scope = "openid email tasks/read", {require} }},
  {{ type = "forward", target_group = "echo" }},
]
"#
        )
    };
    let rules = [
        auth(
            70,
            "/read/*",
            r#"require_scopes = ["tasks/read"], require_groups = ["admins", "nobody"]"#,
        ),
        auth(71, "/write/*", r#"require_scopes = ["tasks/write"]"#),
        auth(
            72,
            "/red/*",
            r#"require_claims = { "custom:team" = ["red"] }"#,
        ),
        auth(
            73,
            "/blue/*",
            r#"require_claims = { "custom:team" = ["red", "blue"] }"#,
        ),
    ]
    .concat();
    let kit = Kit::builder().toml(&rules).start().await;
    let client = login(&kit, "/tasks").await;
    let get = |path: &'static str, json: bool| {
        let mut r = client.get(kit.url(path));
        if json {
            r = r.header("accept", "application/json");
        }
        r.send()
    };
    assert_eq!(get("/read/x", false).await.unwrap().status(), 200);
    assert_eq!(get("/blue/x", false).await.unwrap().status(), 200);
    let r = get("/write/x", false).await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(
        r.text().await.unwrap().contains("403 Forbidden"),
        "an HTML page for browsers"
    );
    let r = get("/write/x", true).await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.headers()["content-type"], "application/json");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "forbidden");
    assert_eq!(body["message"], "the access token lacks scope tasks/write");
    assert_eq!(get("/red/x", true).await.unwrap().status(), 403);
    // The same session keeps working where it is admitted (the cached path checks too).
    assert_eq!(get("/read/x", false).await.unwrap().status(), 200);
    assert_eq!(get("/write/x", false).await.unwrap().status(), 403);
    kit.log_line(&["/write/x", " 403 - "]).await;
    kit.app.shutdown().await;
}

#[tokio::test]
async fn api_requests_without_a_session_get_401_json_when_asked() {
    let kit = Kit::builder()
        .authenticated_rule(80, "/spa/*", r#"unauthenticated_api_requests = "deny""#)
        .start()
        .await;
    let c = plain();
    for (name, value) in [
        ("sec-fetch-mode", "cors"),
        ("accept", "application/json"),
        ("x-requested-with", "XMLHttpRequest"),
    ] {
        let r = c
            .get(kit.url("/spa/data?x=1"))
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{name}");
        assert!(
            r.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Portcullis realm=\"localhost:")
        );
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "unauthenticated");
        assert_eq!(body["login"], kit.url("/spa/data?x=1"));
    }
    // A page navigation is still redirected, and rules without the setting behave as ALB.
    let r = c
        .get(kit.url("/spa/page"))
        .header("sec-fetch-mode", "navigate")
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let r = c
        .get(kit.url("/tasks"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    // With a session the same API request goes through.
    let client = login(&kit, "/tasks").await;
    let r = client
        .get(kit.url("/spa/data"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    kit.app.shutdown().await;
}

#[tokio::test]
async fn authenticate_oidc_discovers_its_endpoints_from_the_issuer() {
    // The /disc/* rule names only the issuer: endpoints and JWKS come from discovery at start.
    let kit = Kit::builder().start().await;
    let (client, r) = login_to_callback(&kit, "/disc/x").await;
    assert_eq!(r.status(), 302);
    let echo: Value = client.get(kit.url("/disc/x")).fetch_json().await;
    let h = portcullis_verify::peek_header(echo["headers"]["x-amzn-oidc-data"].as_str().unwrap())
        .unwrap();
    assert_eq!(h.iss, kit.pool().issuer);
    assert_eq!(h.client, "oidc-web");
    kit.app.shutdown().await;
}
