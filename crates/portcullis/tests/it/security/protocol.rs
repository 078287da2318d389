//! The identity provider's protocol surface, attacked through its HTTP endpoints: PKCE downgrade,
//! code replay, the implicit flow's nonce, refresh-token reuse after rotation (RFC 9700 §2.1.1,
//! §4.5, §4.14.2) and what a SigV4 signature must cover. Time is passed in through the pool's clock.

use crate::kit::{Fetch, Kit, PASSWORD, browser, location, post_sign_in};
use serde_json::{Value, json};
use std::sync::Arc;

const CALLBACK: &str = "https://app.test/cb";

/// Stops the pool's clock at the current time; the test moves it with `advance_clock`.
fn fixed_clock(kit: &Kit) -> &portcullis_idp::Pool {
    let pool = kit.pool();
    pool.clock()
        .set_ms(Some(portcullis_core::now() as i64 * 1000));
    pool
}

/// Creates a public app client with the code flow, API sign-in and refresh-token rotation with
/// `grace` seconds of retry; returns its id.
async fn rotating_client(kit: &Kit, grace: u64) -> String {
    let req = json!({
        "ClientName": "rotating",
        "AllowedOAuthFlows": ["code"],
        "AllowedOAuthFlowsUserPoolClient": true,
        "AllowedOAuthScopes": ["openid", "email"],
        "CallbackURLs": [CALLBACK],
        "ExplicitAuthFlows": ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        "RefreshTokenRotation": {"Feature": "ENABLED", "RetryGracePeriodSeconds": grace},
    });
    let Value::Object(req) = req else {
        unreachable!()
    };
    let out = portcullis_idp::admin_api::call(kit.pool(), "CreateUserPoolClient", req)
        .await
        .unwrap();
    out["UserPoolClient"]["ClientId"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Signs alice in through the hosted UI for `query` (an authorization request) and returns what
/// the pool redirects to.
async fn authorize(kit: &Kit, query: &str) -> String {
    let c = browser();
    let r = c
        .get(format!("{}/oauth2/authorize?{query}", kit.pool_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let next = location(&r);
    if !next.starts_with("/login?") {
        return next;
    }
    let login = format!("{}{next}", kit.pool_url);
    let r = post_sign_in(&c, &login, "alice", PASSWORD).await;
    assert_eq!(r.status(), 302, "sign-in succeeds");
    location(&r)
}

/// A code for `client` (with `extra` authorization parameters).
async fn code_for(kit: &Kit, client: &str, extra: &str) -> String {
    let cb = form_urlencoded::byte_serialize(CALLBACK.as_bytes()).collect::<String>();
    let to = authorize(
        kit,
        &format!("client_id={client}&response_type=code&scope=openid&redirect_uri={cb}{extra}"),
    )
    .await;
    assert!(to.starts_with(&format!("{CALLBACK}?code=")), "{to}");
    to.split("code=").nth(1).unwrap().to_string()
}

/// `POST /oauth2/token` with this form: (status, body).
async fn token(kit: &Kit, form: &[(&str, &str)]) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/oauth2/token", kit.pool_url))
        .form(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn redeem(kit: &Kit, client: &str, code: &str, verifier: Option<&str>) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("client_id", client),
        ("code", code),
        ("redirect_uri", CALLBACK),
    ];
    if let Some(v) = verifier {
        form.push(("code_verifier", v));
    }
    token(kit, &form).await
}

async fn refresh(kit: &Kit, client: &str, rt: &str) -> (u16, Value) {
    token(
        kit,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", client),
            ("refresh_token", rt),
        ],
    )
    .await
}

/// The status of `/oauth2/userInfo` for an access token.
async fn userinfo(kit: &Kit, access_token: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{}/oauth2/userInfo", kit.pool_url))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn s(v: &Value, k: &str) -> String {
    v[k].as_str()
        .unwrap_or_else(|| panic!("no {k} in {v}"))
        .to_string()
}

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

#[tokio::test]
async fn pkce_cannot_be_downgraded_or_skipped() {
    let kit = Kit::builder().start().await;
    let client = rotating_client(&kit, 0).await;

    // A verifier for a code issued without a challenge: the request was downgraded on the way.
    let code = code_for(&kit, &client, "").await;
    let (status, body) = redeem(&kit, &client, &code, Some(VERIFIER)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    // A code issued with a challenge needs its verifier, and the right one.
    let pkce = format!("&code_challenge={CHALLENGE}&code_challenge_method=S256");
    let code = code_for(&kit, &client, &pkce).await;
    let (status, body) = redeem(&kit, &client, &code, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let code = code_for(&kit, &client, &pkce).await;
    let wrong = "x".repeat(43);
    let (status, _) = redeem(&kit, &client, &code, Some(&wrong)).await;
    assert_eq!(status, 400);
    let code = code_for(&kit, &client, &pkce).await;
    let (status, _) = redeem(&kit, &client, &code, Some(VERIFIER)).await;
    assert_eq!(status, 200, "the right verifier works");

    // `plain` is refused at the authorization request, as Cognito (S256 only).
    let cb = form_urlencoded::byte_serialize(CALLBACK.as_bytes()).collect::<String>();
    let to = authorize(
        &kit,
        &format!("client_id={client}&response_type=code&redirect_uri={cb}&code_challenge={VERIFIER}&code_challenge_method=plain"),
    )
    .await;
    assert!(
        to.starts_with(&format!("{CALLBACK}?error=invalid_request")),
        "{to}"
    );

    // The code is bound to its redirect URI (exactly) and its client.
    let code = code_for(&kit, &client, "").await;
    let (status, _) = token(
        &kit,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &client),
            ("code", &code),
            ("redirect_uri", "https://app.test/cb/"),
        ],
    )
    .await;
    assert_eq!(status, 400);
    let code = code_for(&kit, &client, "").await;
    let other = rotating_client(&kit, 0).await;
    let (status, body) = redeem(&kit, &other, &code, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    kit.app.shutdown().await;
}

#[tokio::test]
async fn a_replayed_code_revokes_the_tokens_of_its_first_use() {
    let kit = Kit::builder().start().await;
    let client = rotating_client(&kit, 0).await;
    let code = code_for(&kit, &client, "").await;
    let (status, first) = redeem(&kit, &client, &code, None).await;
    assert_eq!(status, 200);
    assert_eq!(userinfo(&kit, &s(&first, "access_token")).await, 200);
    let (status, body) = redeem(&kit, &client, &code, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // Someone else had the code: what its first use gave is dead.
    let (status, _) = refresh(&kit, &client, &s(&first, "refresh_token")).await;
    assert_eq!(
        status, 400,
        "the refresh token of a replayed code is revoked"
    );
    assert_eq!(userinfo(&kit, &s(&first, "access_token")).await, 401);
    kit.app.shutdown().await;
}

#[tokio::test]
async fn the_implicit_flow_needs_a_nonce_for_an_id_token() {
    let kit = Kit::builder().start().await;
    let spa = "client_id=spa&response_type=token&redirect_uri=http%3A%2F%2Flocalhost%2Fspa";
    let to = authorize(&kit, &format!("{spa}&scope=openid%20email&state=s1")).await;
    assert!(
        to.starts_with("http://localhost/spa?error=invalid_request"),
        "no nonce, no ID token in a fragment: {to}"
    );
    assert!(to.contains("state=s1"), "{to}");
    let to = authorize(&kit, &format!("{spa}&scope=openid&nonce=")).await;
    assert!(to.contains("error=invalid_request"), "an empty nonce: {to}");
    let to = authorize(&kit, &format!("{spa}&scope=openid&nonce=n-1")).await;
    assert!(
        to.starts_with("http://localhost/spa#") && to.contains("id_token="),
        "{to}"
    );
    kit.app.shutdown().await;
}

#[tokio::test]
async fn a_rotated_refresh_token_reused_after_its_grace_revokes_the_family() {
    let kit = Kit::builder().start().await;
    let clock = fixed_clock(&kit);
    let client = rotating_client(&kit, 10).await;
    let code = code_for(&kit, &client, "").await;
    let (_, t0) = redeem(&kit, &client, &code, None).await;
    let r0 = s(&t0, "refresh_token");

    let (status, t1) = refresh(&kit, &client, &r0).await;
    assert_eq!(status, 200);
    let r1 = s(&t1, "refresh_token");
    assert_ne!(r0, r1, "rotated");
    // Within the grace period the old token still works (a client retrying).
    clock.advance_clock(5);
    let (status, t2) = refresh(&kit, &client, &r0).await;
    assert_eq!(status, 200);
    assert_eq!(userinfo(&kit, &s(&t2, "access_token")).await, 200);

    // After it, the old token is a copy in someone else's hands: the whole family goes.
    clock.advance_clock(6);
    let (status, body) = refresh(&kit, &client, &r0).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    for rt in [&r1, &s(&t2, "refresh_token")] {
        let (status, _) = refresh(&kit, &client, rt).await;
        assert_eq!(status, 400, "a newer token of the family is revoked too");
    }
    for t in [&t0, &t1, &t2] {
        assert_eq!(
            userinfo(&kit, &s(t, "access_token")).await,
            401,
            "the family's access tokens are dead at userInfo"
        );
    }
    kit.app.shutdown().await;
}

#[tokio::test]
async fn concurrent_uses_of_one_refresh_token_leave_no_live_successor() {
    let kit = Kit::builder().start().await;
    fixed_clock(&kit);
    let client = rotating_client(&kit, 0).await;
    let code = code_for(&kit, &client, "").await;
    let (_, t0) = redeem(&kit, &client, &code, None).await;
    let r0 = s(&t0, "refresh_token");
    let tries: Vec<_> = (0..16)
        .map(|_| {
            let (url, client, r0) = (kit.pool_url.clone(), client.clone(), r0.clone());
            tokio::spawn(async move {
                let r = reqwest::Client::new()
                    .post(format!("{url}/oauth2/token"))
                    .form(&[
                        ("grant_type", "refresh_token"),
                        ("client_id", client.as_str()),
                        ("refresh_token", r0.as_str()),
                    ])
                    .send()
                    .await
                    .unwrap();
                (r.status().as_u16(), r.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let mut won = Vec::new();
    for t in tries {
        let (status, body) = t.await.unwrap();
        if status == 200 {
            won.push(body);
        }
    }
    assert_eq!(won.len(), 1, "one presentation rotates the token");
    // The others were reuse (grace 0): the winner's successor is revoked with the family.
    for t in &won {
        let (status, _) = refresh(&kit, &client, &s(t, "refresh_token")).await;
        assert_eq!(status, 400);
        assert_eq!(userinfo(&kit, &s(t, "access_token")).await, 401);
    }
    kit.app.shutdown().await;
}

/// One call of the user-pool API without a signature: (status, body).
async fn api(kit: &Kit, op: &str, body: Value) -> (u16, Value) {
    crate::kit::PoolApi::of(kit).call(op, body).await
}

#[tokio::test]
async fn refresh_token_auth_reuse_revokes_the_family() {
    let kit = Kit::builder().start().await;
    let clock = fixed_clock(&kit);
    let client = rotating_client(&kit, 10).await;
    let (status, signed_in) = api(
        &kit,
        "InitiateAuth",
        json!({"ClientId": client, "AuthFlow": "USER_PASSWORD_AUTH",
               "AuthParameters": {"USERNAME": "alice", "PASSWORD": PASSWORD}}),
    )
    .await;
    assert_eq!(status, 200, "{signed_in}");
    let r0 = s(&signed_in["AuthenticationResult"], "RefreshToken");
    let refresh_auth = |rt: String| {
        api(
            &kit,
            "InitiateAuth",
            json!({"ClientId": client, "AuthFlow": "REFRESH_TOKEN_AUTH",
                   "AuthParameters": {"REFRESH_TOKEN": rt}}),
        )
    };
    let (status, t1) = refresh_auth(r0.clone()).await;
    assert_eq!(status, 200, "{t1}");
    let r1 = s(&t1["AuthenticationResult"], "RefreshToken");
    let a1 = s(&t1["AuthenticationResult"], "AccessToken");
    let (status, _) = api(&kit, "GetUser", json!({"AccessToken": a1})).await;
    assert_eq!(status, 200);

    clock.advance_clock(11);
    let (status, body) = refresh_auth(r0).await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("NotAuthorizedException"))
    );
    let (status, _) = refresh_auth(r1).await;
    assert_eq!(
        status, 400,
        "the rotated successor is revoked with its family"
    );
    let (status, body) = api(&kit, "GetUser", json!({"AccessToken": a1})).await;
    assert_eq!(status, 400, "the family's access token is refused: {body}");
    kit.app.shutdown().await;
}

// ---- SigV4 ----

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn sha256_hex(b: &[u8]) -> String {
    hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b).as_ref())
}

fn hmac(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    aws_lc_rs::hmac::sign(&k, msg).as_ref().to_vec()
}

/// `20261124T010036Z` for now (UTC), without a date crate.
fn amz_date() -> String {
    let t = portcullis_core::now() as i64;
    let (days, secs) = (t.div_euclid(86400), t.rem_euclid(86400));
    let (y, m, d) = portcullis_core::httpdate::civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// The headers of an admin API call signed with the kit's access key over `signed` (sorted).
fn signed_headers(kit: &Kit, op: &str, body: &str, signed: &[&str]) -> Vec<(String, String)> {
    let host = kit.pool_url.trim_start_matches("http://").to_string();
    let date = amz_date();
    let mut headers = vec![
        (
            "content-type".to_string(),
            "application/x-amz-json-1.1".to_string(),
        ),
        ("host".to_string(), host),
        ("x-amz-date".to_string(), date.clone()),
        (
            "x-amz-target".to_string(),
            format!("AWSCognitoIdentityProviderService.{op}"),
        ),
    ];
    let value = |h: &str| {
        headers
            .iter()
            .find(|(n, _)| n == h)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    let mut canonical = String::from("POST\n/\n\n");
    for h in signed {
        canonical.push_str(&format!("{h}:{}\n", value(h)));
    }
    canonical.push_str(&format!(
        "\n{}\n{}",
        signed.join(";"),
        sha256_hex(body.as_bytes())
    ));
    let day = &date[..8];
    let scope = format!("{day}/us-east-1/cognito-idp/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let k = hmac(
        format!("AWS4{}", crate::kit::ACCESS_SECRET).as_bytes(),
        day.as_bytes(),
    );
    let k = hmac(&k, b"us-east-1");
    let k = hmac(&k, b"cognito-idp");
    let k = hmac(&k, b"aws4_request");
    let sig = hex(&hmac(&k, to_sign.as_bytes()));
    headers.push((
        "authorization".into(),
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={}, Signature={sig}",
            crate::kit::ACCESS_KEY_ID,
            signed.join(";")
        ),
    ));
    headers.retain(|(n, _)| n != "host");
    headers
}

/// Sends a (possibly tampered) signed call: (status, body).
async fn send_signed(kit: &Kit, headers: &[(String, String)], body: &str) -> (u16, Value) {
    let mut r = reqwest::Client::new().post(format!("{}/", kit.pool_url));
    for (n, v) in headers {
        r = r.header(n, v);
    }
    let r = r.body(body.to_string()).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn with_target(headers: &[(String, String)], op: &str) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| {
            if n == "x-amz-target" {
                (n.clone(), format!("AWSCognitoIdentityProviderService.{op}"))
            } else {
                (n.clone(), v.clone())
            }
        })
        .collect()
}

/// Whether alice is enabled, by a fully signed `AdminGetUser`.
async fn enabled(kit: &Kit, body: &str) -> bool {
    let full = ["content-type", "host", "x-amz-date", "x-amz-target"];
    let h = signed_headers(kit, "AdminGetUser", body, &full);
    let (status, user) = send_signed(kit, &h, body).await;
    assert_eq!(status, 200, "{user}");
    user["Enabled"].as_bool().unwrap()
}

#[tokio::test]
async fn a_sigv4_signature_covers_the_operation_and_the_body() {
    let kit = Kit::builder().start().await;
    let pool_id = kit.pool().id.clone();
    let body = json!({"UserPoolId": pool_id, "Username": "alice"}).to_string();
    let full = ["content-type", "host", "x-amz-date", "x-amz-target"];
    assert!(enabled(&kit, &body).await, "a fully signed call works");

    // A signature over host and date alone: captured, its operation swapped.
    let weak = signed_headers(&kit, "AdminGetUser", &body, &["host", "x-amz-date"]);
    let (status, _) = send_signed(&kit, &weak, &body).await;
    assert_eq!(status, 403, "the operation must be signed");
    let (status, reply) = send_signed(&kit, &with_target(&weak, "AdminDisableUser"), &body).await;
    assert_eq!(status, 403, "{reply}");
    assert!(enabled(&kit, &body).await, "alice was not disabled");

    // A fully signed call cannot be turned into another operation or another body.
    let h = signed_headers(&kit, "AdminGetUser", &body, &full);
    let (status, _) = send_signed(&kit, &with_target(&h, "AdminDisableUser"), &body).await;
    assert_eq!(status, 403);
    let bob = json!({"UserPoolId": pool_id, "Username": "bob"}).to_string();
    let (status, _) = send_signed(&kit, &h, &bob).await;
    assert_eq!(status, 403);
    // An unsigned x-amz-* header is refused; a signed payload hash must be the body's.
    let mut extra = h.clone();
    extra.push(("x-amz-security-token".into(), "t".into()));
    let (status, _) = send_signed(&kit, &extra, &body).await;
    assert_eq!(status, 403);
    let mut claimed = h.clone();
    claimed.push(("x-amz-content-sha256".into(), sha256_hex(b"{}")));
    let (status, _) = send_signed(&kit, &claimed, &body).await;
    assert_eq!(status, 403);
    // Replaying it unchanged within the 15-minute window works, as at AWS.
    let (status, _) = send_signed(&kit, &h, &body).await;
    assert_eq!(status, 200);
    assert!(enabled(&kit, &body).await);
    kit.app.shutdown().await;
}

#[tokio::test]
async fn redirects_go_only_to_registered_uris_exactly() {
    let kit = Kit::builder().start().await;
    let c = browser();
    let lb = kit.url("");
    for q in [
        format!("client_id=tasks-web&logout_uri={lb}/signed-out.evil.test"),
        "client_id=tasks-web&logout_uri=https://evil.test/".to_string(),
        format!("client_id=tasks-web&response_type=code&redirect_uri={lb}/oauth2/idpresponse/../x"),
        "client_id=tasks-web&response_type=code&redirect_uri=https://evil.test/".to_string(),
    ] {
        let r = c
            .get(format!("{}/logout?{q}", kit.pool_url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{q}");
        assert!(r.headers().get("location").is_none());
    }
    kit.app.shutdown().await;
}

/// Of concurrent presentations of one refresh token on PostgreSQL (several nodes share it), one
/// rotates it and the others revoke its family, and a family revoked before its first token
/// (a replayed code) stays revoked.
#[tokio::test]
async fn postgres_settles_concurrent_refresh_reuse_atomically() {
    use portcullis_idp::store::{PgStore, RefreshRecord, RefreshUse, Store};
    const PG_ADMIN: &str = "host=127.0.0.1 port=5432 user=root dbname=postgres";
    let name = format!("portcullis_proto_{}", std::process::id());
    let (admin, conn) = tokio_postgres::connect(PG_ADMIN, tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL on 127.0.0.1:5432");
    tokio::spawn(conn);
    for sql in [
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        format!("CREATE DATABASE {name}"),
    ] {
        admin.batch_execute(&sql).await.unwrap();
    }
    let store = Arc::new(
        PgStore::connect(&format!("postgres://root@127.0.0.1:5432/{name}"))
            .await
            .unwrap(),
    );
    let fam = RefreshRecord {
        client_id: "c".into(),
        sub: "s".into(),
        scope: "openid".into(),
        auth_time: 1,
        origin_jti: "fam".into(),
    };
    let early = RefreshRecord {
        origin_jti: "early".into(),
        ..fam.clone()
    };
    let at = portcullis_core::now() as i64;
    store
        .insert_refresh("p", "r0".into(), fam.clone(), at + 3600)
        .await
        .unwrap();
    let uses: Vec<_> = (0..16)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .use_refresh("p", "r0".into(), "c", at, Some(at))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut live = 0;
    for u in uses {
        if matches!(u.await.unwrap(), RefreshUse::Live(_)) {
            live += 1;
        }
    }
    assert_eq!(live, 1, "exactly one presentation rotates the token");
    assert!(store.origin_revoked("p", "fam").await.unwrap());
    store
        .insert_refresh("p", "r1".into(), fam, at + 3600)
        .await
        .unwrap();
    assert!(store.refresh("p", "r1".into()).await.unwrap().is_none());
    store.revoke_family("p", "early").await.unwrap();
    store
        .insert_refresh("p", "e1".into(), early, at + 3600)
        .await
        .unwrap();
    assert!(store.refresh("p", "e1".into()).await.unwrap().is_none());
    drop(store);
    let _ = admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await;
}

/// Each token is accepted only where its type belongs: no ID token, refresh token or machine
/// token passes for a user's access token at userInfo or the token-authorised API.
#[tokio::test]
async fn tokens_are_accepted_only_where_their_type_belongs() {
    let kit = Kit::builder().start().await;
    let client = rotating_client(&kit, 0).await;
    let code = code_for(&kit, &client, "").await;
    let (_, t) = redeem(&kit, &client, &code, None).await;
    let secret = kit.pool().client_secret("machine").unwrap();
    let machine: Value = reqwest::Client::new()
        .post(format!("{}/oauth2/token", kit.pool_url))
        .basic_auth("machine", Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .fetch_json()
        .await;
    for wrong in [
        s(&t, "id_token"),
        s(&t, "refresh_token"),
        s(&machine, "access_token"),
    ] {
        assert_eq!(userinfo(&kit, &wrong).await, 401);
        let (status, body) = api(&kit, "GetUser", json!({"AccessToken": wrong})).await;
        assert_eq!(status, 400, "{body}");
    }
    // A hosted-UI access token without aws.cognito.signin.user.admin cannot drive the API.
    let (status, body) = api(
        &kit,
        "GetUser",
        json!({"AccessToken": s(&t, "access_token")}),
    )
    .await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("NotAuthorizedException"))
    );
    assert_eq!(userinfo(&kit, &s(&t, "access_token")).await, 200);
    kit.app.shutdown().await;
}
