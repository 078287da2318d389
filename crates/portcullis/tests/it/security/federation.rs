//! A hostile or compromised external identity provider (user-pool federation, issue 13): every lie
//! an ID token, a userinfo answer or a redirect can tell is refused, a provider cannot take over a
//! local account or set attributes it was not mapped to, and the login is bound to the browser
//! (login CSRF, replayed state).

use crate::kit::*;
use axum::extract::State;
use axum::response::IntoResponse;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// What the hostile provider does at its token and userinfo endpoints.
#[derive(Clone)]
pub(crate) struct Lies {
    /// Claims of the ID token (the nonce is filled in from the login unless set).
    pub(crate) claims: Value,
    /// JOSE header.
    pub(crate) header: Value,
    /// Sign with the published key (false: a key nobody published).
    pub(crate) signed: bool,
    /// The userinfo answer.
    pub(crate) userinfo: Value,
    /// Userinfo padding in bytes.
    pub(crate) pad: usize,
    pub(crate) nonce: String,
}

pub(crate) struct Hostile {
    pub(crate) key: aws_lc_rs::signature::EcdsaKeyPair,
    pub(crate) pkcs8: Vec<u8>,
    pub(crate) other_pkcs8: Vec<u8>,
    pub(crate) issuer: String,
    pub(crate) lies: Mutex<Lies>,
}

pub(crate) type Shared = Arc<Hostile>;
/// One way to lie.
type Lie = Box<dyn Fn(&mut Lies)>;

fn sign(pkcs8: &[u8], header: &Value, claims: &Value) -> String {
    let b = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let input = format!("{}.{}", b(header), b(claims));
    if header["alg"] == "none" {
        return format!("{input}.");
    }
    let key = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        pkcs8,
    )
    .unwrap();
    let sig = key
        .sign(&aws_lc_rs::rand::SystemRandom::new(), input.as_bytes())
        .unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
}

pub(crate) async fn hostile_discovery(State(h): State<Shared>) -> axum::response::Response {
    let i = &h.issuer;
    axum::Json(json!({
        "issuer": i, "authorization_endpoint": format!("{i}/authorize"),
        "token_endpoint": format!("{i}/token"), "userinfo_endpoint": format!("{i}/userinfo"),
        "jwks_uri": format!("{i}/jwks"),
    }))
    .into_response()
}

pub(crate) async fn hostile_jwks(State(h): State<Shared>) -> axum::response::Response {
    use aws_lc_rs::signature::KeyPair;
    let public = h.key.public_key().as_ref();
    axum::Json(json!({"keys": [{
        "kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
        "x": URL_SAFE_NO_PAD.encode(&public[1..33]), "y": URL_SAFE_NO_PAD.encode(&public[33..65]),
    }]}))
    .into_response()
}

pub(crate) async fn hostile_token(State(h): State<Shared>) -> axum::response::Response {
    let lies = h.lies.lock().unwrap().clone();
    let mut claims = lies.claims.clone();
    if claims.get("nonce").is_none() {
        claims["nonce"] = lies.nonce.clone().into();
    }
    let key = if lies.signed {
        &h.pkcs8
    } else {
        &h.other_pkcs8
    };
    let id_token = sign(key, &lies.header, &claims);
    axum::Json(json!({"access_token": "at-1", "token_type": "Bearer", "id_token": id_token}))
        .into_response()
}

pub(crate) async fn hostile_userinfo(State(h): State<Shared>) -> axum::response::Response {
    let lies = h.lies.lock().unwrap().clone();
    let mut v = lies.userinfo.clone();
    if lies.pad > 0 {
        v["padding"] = "x".repeat(lies.pad).into();
    }
    axum::Json(v).into_response()
}

pub(crate) fn honest(issuer: &str, sub: &str) -> Lies {
    let now = portcullis_core::now();
    Lies {
        claims: json!({"iss": issuer, "aud": "pool", "sub": sub, "iat": now, "exp": now + 300,
                       "email": "eve@evil.example", "email_verified": true, "custom:team": "red"}),
        header: json!({"alg": "ES256", "typ": "JWT", "kid": "k1"}),
        signed: true,
        userinfo: json!({"sub": sub, "email": "eve@evil.example", "email_verified": true, "custom:team": "red"}),
        pad: 0,
        nonce: String::new(),
    }
}

/// Starts a login at the hostile provider from `client` (a browser with cookies): the provider's
/// `state` and `nonce`.
pub(crate) async fn start_login(
    kit: &Kit,
    browser: &reqwest::Client,
    client_id: &str,
) -> (String, String) {
    let r = browser
        .get(format!(
            "{}/oauth2/authorize?client_id={client_id}&response_type=code&scope=openid+email&redirect_uri=http://127.0.0.1:9/cb&state=app&identity_provider=Evil",
            kit.pool_url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let loc = location(&r);
    let url = reqwest::Url::parse(&loc).unwrap();
    let q: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(
        q["redirect_uri"],
        format!("{}/oauth2/idpresponse", kit.pool_url)
    );
    (q["state"].clone(), q["nonce"].clone())
}

/// One whole login with these lies; the pool's answer to `/oauth2/idpresponse`.
pub(crate) async fn login_with(
    kit: &Kit,
    h: &Shared,
    client_id: &str,
    lies: Lies,
) -> reqwest::Response {
    let browser = browser();
    let (state, nonce) = start_login(kit, &browser, client_id).await;
    *h.lies.lock().unwrap() = Lies { nonce, ..lies };
    browser
        .get(format!(
            "{}/oauth2/idpresponse?code=c-1&state={state}",
            kit.pool_url
        ))
        .send()
        .await
        .unwrap()
}

pub(crate) fn refused(r: &reqwest::Response) -> bool {
    r.status() == 302 && location(r).starts_with("http://127.0.0.1:9/cb?error=")
}

/// A hostile OpenID provider (discovery, JWKS, token, userinfo) on port 0 that starts honest
/// (user `eve`); returns it, to change its lies, and its issuer.
pub(crate) async fn serve_hostile_provider() -> (Shared, String) {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let alg = &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING;
    let pkcs8 = aws_lc_rs::signature::EcdsaKeyPair::generate_pkcs8(alg, &rng)
        .unwrap()
        .as_ref()
        .to_vec();
    let other_pkcs8 = aws_lc_rs::signature::EcdsaKeyPair::generate_pkcs8(alg, &rng)
        .unwrap()
        .as_ref()
        .to_vec();
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://localhost:{}", tcp.local_addr().unwrap().port());
    let h: Shared = Arc::new(Hostile {
        key: aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(alg, &pkcs8).unwrap(),
        pkcs8,
        other_pkcs8,
        issuer: issuer.clone(),
        lies: Mutex::new(honest(&issuer, "eve")),
    });
    let app = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            axum::routing::get(hostile_discovery),
        )
        .route("/jwks", axum::routing::get(hostile_jwks))
        .route("/token", axum::routing::post(hostile_token))
        .route("/userinfo", axum::routing::get(hostile_userinfo))
        .with_state(h.clone());
    tokio::spawn(async move { axum::serve(tcp, app).await.unwrap() });
    (h, issuer)
}

#[tokio::test]
async fn a_hostile_provider_cannot_mint_users_or_attributes() {
    let kit = Kit::builder().start().await;
    let (h, issuer) = serve_hostile_provider().await;
    let pool = kit.pool();
    let call = |op: &'static str, v: Value| {
        let pool = pool.clone();
        async move { portcullis_idp::admin_api::call(&pool, op, v.as_object().unwrap().clone()).await }
    };
    // Only email is mapped: the provider cannot vouch for it, nor set custom:team.
    call(
        "CreateIdentityProvider",
        json!({"ProviderName": "Evil", "ProviderType": "OIDC",
               "ProviderDetails": {"client_id": "pool", "client_secret": "s", "oidc_issuer": issuer, "authorize_scopes": "openid email"},
               "AttributeMapping": {"email": "email"}}),
    )
    .await
    .unwrap();
    let mut ids = std::collections::HashMap::new();
    for (name, providers) in [
        ("fed-web", json!(["COGNITO", "Evil"])),
        ("no-evil", json!(["COGNITO"])),
        ("evil-only", json!(["Evil"])),
    ] {
        let c = call(
            "CreateUserPoolClient",
            json!({"ClientName": name, "AllowedOAuthFlows": ["code"], "AllowedOAuthScopes": ["openid", "email"],
                   "AllowedOAuthFlowsUserPoolClient": true, "CallbackURLs": ["http://127.0.0.1:9/cb"],
                   "SupportedIdentityProviders": providers}),
        )
        .await
        .unwrap();
        let id = c["UserPoolClient"]["ClientId"]
            .as_str()
            .unwrap()
            .to_string();
        ids.insert(name, id);
    }
    let fed = ids["fed-web"].clone();

    // The honest login works: code to the app, user Evil_eve.
    let r = login_with(&kit, &h, &fed, honest(&issuer, "eve")).await;
    assert_eq!(r.status(), 302);
    assert!(
        location(&r).starts_with("http://127.0.0.1:9/cb?code="),
        "{}",
        location(&r)
    );
    assert!(location(&r).ends_with("&state=app"));
    let eve = pool.user("Evil_eve").await.unwrap();
    assert_eq!(eve.status, "EXTERNAL_PROVIDER");
    assert_eq!(eve.attributes["email"], "eve@evil.example");
    assert_eq!(
        eve.attributes["email_verified"], "false",
        "email_verified is not mapped: the provider cannot vouch for the address"
    );
    assert!(
        !eve.attributes.contains_key("custom:team"),
        "an unmapped claim sets nothing"
    );

    // Every lie in the ID token is refused, back to the app as an error.
    let now = portcullis_core::now();
    let lies: Vec<(&str, Lie)> = vec![
        (
            "wrong iss",
            Box::new(|l| l.claims["iss"] = "https://other.example".into()),
        ),
        (
            "wrong aud",
            Box::new(|l| l.claims["aud"] = "someone-else".into()),
        ),
        (
            "azp another client",
            Box::new(|l| {
                l.claims["aud"] = json!(["pool", "x"]);
                l.claims["azp"] = "x".into();
            }),
        ),
        (
            "expired",
            Box::new(move |l| l.claims["exp"] = (now - 3600).into()),
        ),
        (
            "issued in the future",
            Box::new(move |l| l.claims["iat"] = (now + 3600).into()),
        ),
        (
            "wrong nonce",
            Box::new(|l| l.claims["nonce"] = "guess".into()),
        ),
        (
            "alg none",
            Box::new(|l| l.header = json!({"alg": "none", "kid": "k1"})),
        ),
        (
            "HS256 with the public key",
            Box::new(|l| l.header = json!({"alg": "HS256", "kid": "k1"})),
        ),
        ("unpublished key", Box::new(|l| l.signed = false)),
        (
            "10 KB sub",
            Box::new(|l| {
                let s = "a".repeat(10 * 1024);
                l.claims["sub"] = s.clone().into();
                l.userinfo["sub"] = s.into();
            }),
        ),
        (
            "sub with spaces",
            Box::new(|l| {
                l.claims["sub"] = "eve admin".into();
                l.userinfo["sub"] = "eve admin".into();
            }),
        ),
        (
            "sub with a newline",
            Box::new(|l| {
                l.claims["sub"] = "eve\nx".into();
                l.userinfo["sub"] = "eve\nx".into();
            }),
        ),
        (
            "userinfo about someone else",
            Box::new(|l| l.userinfo["sub"] = "mallory".into()),
        ),
        ("huge userinfo", Box::new(|l| l.pad = 100 * 1024)),
    ];
    for (why, lie) in lies {
        let mut l = honest(&issuer, "eve");
        lie(&mut l);
        let r = login_with(&kit, &h, &fed, l).await;
        assert!(
            refused(&r),
            "{why}: {:?} {:?}",
            r.status(),
            r.headers().get("location")
        );
    }

    // A provider's user named like a local user never takes that account over.
    call(
        "AdminCreateUser",
        json!({"Username": "Evil_alice", "TemporaryPassword": "Temp-pass-123!", "MessageAction": "SUPPRESS"}),
    )
    .await
    .unwrap();
    let r = login_with(&kit, &h, &fed, honest(&issuer, "alice")).await;
    assert!(refused(&r), "collision");
    assert_eq!(
        pool.user("Evil_alice").await.unwrap().status,
        "FORCE_CHANGE_PASSWORD"
    );

    // Login CSRF: a state from one browser, returned in another, is refused.
    let victim = browser();
    let attacker = browser();
    let (state, nonce) = start_login(&kit, &attacker, &fed).await;
    *h.lies.lock().unwrap() = Lies {
        nonce,
        ..honest(&issuer, "eve")
    };
    let r = victim
        .get(format!(
            "{}/oauth2/idpresponse?code=c-1&state={state}",
            kit.pool_url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "a state not bound to this browser");
    // Replay: the state works once, in its own browser, and never again.
    let again = |b: &reqwest::Client| {
        b.get(format!(
            "{}/oauth2/idpresponse?code=c-1&state={state}",
            kit.pool_url
        ))
        .send()
    };
    let r = again(&attacker).await.unwrap();
    assert!(location(&r).contains("?code="));
    assert_eq!(
        again(&attacker).await.unwrap().status(),
        400,
        "replayed state"
    );
    // An unknown state, none at all.
    let r = attacker
        .get(format!(
            "{}/oauth2/idpresponse?code=c&state=nope",
            kit.pool_url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = attacker
        .get(format!("{}/oauth2/idpresponse?code=c", kit.pool_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // The provider's refusal reaches the app as Cognito forwards it, with the app's state.
    let b = browser();
    let (state, _) = start_login(&kit, &b, &fed).await;
    let r = b
        .get(format!(
            "{}/oauth2/idpresponse?error=access_denied&error_description=User%20said%20no&state={state}",
            kit.pool_url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        location(&r),
        "http://127.0.0.1:9/cb?error=access_denied&error_description=User+said+no&state=app"
    );

    // A client that does not support the provider cannot be sent there.
    let r = browser()
        .get(format!(
            "{}/oauth2/authorize?client_id={}&response_type=code&scope=openid&redirect_uri=http://127.0.0.1:9/cb&state=s&identity_provider=Evil",
            kit.pool_url, ids["no-evil"]
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        location(&r),
        "http://127.0.0.1:9/cb?error=invalid_request&state=s"
    );
    // A client without COGNITO: buttons only, and a posted password is refused.
    let b = browser();
    let query = format!(
        "client_id={}&response_type=code&scope=openid&redirect_uri=http://127.0.0.1:9/cb",
        ids["evil-only"]
    );
    let page = b
        .get(format!("{}/login?{query}", kit.pool_url))
        .fetch_text()
        .await;
    assert!(page.contains("Sign in with Evil"), "{page}");
    assert!(!page.contains("name=\"password\""));
    let r = b
        .post(format!("{}/login?{query}", kit.pool_url))
        .form(&[("username", "alice"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Nor can it sign anyone up or reset a password through the hosted UI.
    for path in ["/signup", "/forgotPassword"] {
        let url = format!("{}{path}?{query}", kit.pool_url);
        assert_eq!(
            b.get(&url).send().await.unwrap().status(),
            403,
            "GET {path}"
        );
        let r = b
            .post(&url)
            .form(&[
                ("username", "mallory"),
                ("email", "m@example.com"),
                ("password", PASSWORD),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "POST {path}");
    }
    kit.app.shutdown().await;
}
