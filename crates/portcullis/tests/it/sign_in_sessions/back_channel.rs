//! Back-channel logout tokens received by a real relying party (and retried after a failure).

use super::*;

/// A relying party's back-channel logout endpoint on port 0: hands each POST over.
async fn logout_receiver() -> (String, mpsc::Receiver<(String, String, String)>) {
    let (tx, rx) = mpsc::channel(16);
    let app = axum::Router::new().route(
        "/{client}",
        axum::routing::post(
            move |axum::extract::Path(client): axum::extract::Path<String>,
                  headers: axum::http::HeaderMap,
                  body: String| {
                let tx = tx.clone();
                async move {
                    let ct = headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    let _ = tx.send((client, ct, body)).await;
                    axum::http::StatusCode::OK
                }
            },
        ),
    );
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}", tcp.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(tcp, app).await.unwrap() });
    (url, rx)
}

#[tokio::test]
async fn back_channel_logout_tokens_are_signed_and_complete() {
    let (receiver, mut rx) = logout_receiver().await;
    let s = serve(None, &receiver).await;
    let b = browser();
    let code_a = hosted_sign_in(&s, &b, "web-a", "alice").await;
    let code_b = silent_code(&s, &b, "web-b").await;
    let id = redeem(&s, "web-a", &code_a).await["id_token"]
        .as_str()
        .unwrap()
        .to_string();
    redeem(&s, "web-b", &code_b).await;
    let sid = sid_of(&id);
    hosted_logout(&s, &b).await;
    let jwks: Value = well_known(&s, "jwks.json").await;
    let mut seen = Vec::new();
    for _ in 0..2 {
        let (client, content_type, body) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("a logout token in time")
            .unwrap();
        assert_eq!(content_type, "application/x-www-form-urlencoded");
        let form: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect();
        assert_eq!(form.len(), 1, "{form:?}");
        assert_eq!(form[0].0, "logout_token");
        let jwt = &form[0].1;
        let h = header(jwt);
        assert_eq!(h["typ"], "logout+jwt");
        assert_eq!(h["alg"], "RS256");
        // The signature, by a key of the pool's JWKS (the ID-token key).
        let jwk = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == h["kid"])
            .expect("the kid is published");
        assert_eq!(h["kid"], header(&id)["kid"], "signed as the ID tokens are");
        let key = jsonwebtoken::DecodingKey::from_rsa_components(
            jwk["n"].as_str().unwrap(),
            jwk["e"].as_str().unwrap(),
        )
        .unwrap();
        let aud = format!("web-{client}");
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        v.set_audience(&[aud.as_str()]);
        v.set_issuer(&[s.pool.issuer.as_str()]);
        v.set_required_spec_claims(&["iss", "aud", "exp", "iat", "sub"]);
        let c = jsonwebtoken::decode::<Value>(jwt, &key, &v)
            .unwrap_or_else(|e| panic!("logout token does not verify: {e}"))
            .claims;
        let now = portcullis_core::now() as i64;
        let iat = c["iat"].as_i64().unwrap();
        assert!((now - 60..=now + 5).contains(&iat), "iat {iat} now {now}");
        let exp = c["exp"].as_i64().unwrap();
        assert!(exp > iat && exp - iat <= 300, "short-lived: {c}");
        assert!(!c["jti"].as_str().unwrap().is_empty());
        assert_eq!(c["sub"], claims(&id)["sub"]);
        assert_eq!(c["sid"], sid.as_str());
        assert_eq!(
            c["events"],
            json!({"http://schemas.openid.net/event/backchannel-logout": {}})
        );
        assert!(c.get("nonce").is_none(), "no nonce in a logout token");
        seen.push(aud);
    }
    seen.sort();
    assert_eq!(seen, ["web-a", "web-b"], "each client of the session once");
    // The client field through the API: ours, named as such, validated as in the config.
    let created = portcullis_idp::admin_api::call(
        &s.pool,
        "CreateUserPoolClient",
        json!({"ClientName": "rp", "PortcullisBackchannelLogoutURI": "https://rp.example/bcl",
            "PortcullisBackchannelLogoutSessionRequired": true})
        .as_object()
        .unwrap()
        .clone(),
    )
    .await
    .unwrap();
    let c = &created["UserPoolClient"];
    assert_eq!(
        c["PortcullisBackchannelLogoutURI"],
        "https://rp.example/bcl"
    );
    assert_eq!(c["PortcullisBackchannelLogoutSessionRequired"], true);
    let described = portcullis_idp::admin_api::call(
        &s.pool,
        "DescribeUserPoolClient",
        json!({"ClientId": c["ClientId"]})
            .as_object()
            .unwrap()
            .clone(),
    )
    .await
    .unwrap();
    assert_eq!(
        described["UserPoolClient"]["PortcullisBackchannelLogoutURI"],
        "https://rp.example/bcl"
    );
    let refused = portcullis_idp::admin_api::call(
        &s.pool,
        "CreateUserPoolClient",
        json!({"ClientName": "rp2", "PortcullisBackchannelLogoutURI": "http://rp.example/bcl"})
            .as_object()
            .unwrap()
            .clone(),
    )
    .await;
    assert!(refused.is_err(), "plain http off loopback is refused");
}

#[tokio::test]
async fn a_failing_back_channel_client_gets_the_same_token_again() {
    // The relying party answers 503 to the first attempt, then 200.
    let (tx, mut rx) = mpsc::channel::<String>(16);
    let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let app = axum::Router::new().route(
        "/{client}",
        axum::routing::post(move |body: String| {
            let (tx, seen) = (tx.clone(), seen.clone());
            async move {
                let _ = tx.send(body).await;
                if seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                    axum::http::StatusCode::SERVICE_UNAVAILABLE
                } else {
                    axum::http::StatusCode::OK
                }
            }
        }),
    );
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver = format!("http://127.0.0.1:{}", tcp.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(tcp, app).await.unwrap() });
    let s = serve(None, &receiver).await;
    let t = api_sign_in(&s, "alice").await;
    admin(&s, "AdminUserGlobalSignOut", json!({"Username": "alice"})).await;
    let mut got = Vec::new();
    for _ in 0..2 {
        got.push(
            tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .expect("a delivery attempt in time")
                .unwrap(),
        );
    }
    assert_eq!(got[0], got[1], "the same logout token, retried");
    let jwt = form_urlencoded::parse(got[0].as_bytes())
        .find(|(k, _)| k == "logout_token")
        .unwrap()
        .1
        .into_owned();
    assert_eq!(
        claims(&jwt)["sid"],
        sid_of(t["IdToken"].as_str().unwrap()).as_str()
    );
}
