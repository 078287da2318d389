//! User-pool federation (issue 13): external OIDC providers through Cognito's API (boto3), the
//! whole sign-in in Chromium against two `oidc-provider` processes (hosted UI, and the load
//! balancer's `authenticate-cognito` in front of the pool), and a hostile provider that lies in
//! every way an ID token, a userinfo answer or a redirect can.

mod kit;

use axum::extract::State;
use axum::response::IntoResponse;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kit::*;
use serde_json::{Value, json};
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../e2e/browser");

/// One cognito-idp call through boto3 (not ours): the answer, or `{"error": code}`.
async fn boto3(kit: &Kit, op: &str, params: Value) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../e2e/boto3_call.py");
    let args = vec![
        script.to_string(),
        kit.pool_url.clone(),
        ACCESS_KEY_ID.into(),
        ACCESS_SECRET.into(),
        op.into(),
        params.to_string(),
    ];
    let out = tokio::task::spawn_blocking(move || Command::new("python3").args(args).output())
        .await
        .unwrap()
        .expect("python3 runs");
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim())
        .unwrap_or_else(|_| panic!("{op}: {text}{}", String::from_utf8_lossy(&out.stderr)))
}

/// An `oidc-provider` process playing an external provider; ended when dropped.
struct ExternalProvider {
    child: std::process::Child,
    _out: std::io::BufReader<std::process::ChildStdout>,
    url: String,
}

impl ExternalProvider {
    fn start(redirect_uri: &str, label: &str) -> ExternalProvider {
        let mut child = Command::new("node")
            .current_dir(DIR)
            .args(["federation_provider.mjs", redirect_uri, label])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("node");
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let port: u16 = line.trim().parse().expect("the provider prints its port");
        ExternalProvider {
            child,
            _out: out,
            url: format!("http://localhost:{port}"),
        }
    }
}

impl Drop for ExternalProvider {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

fn provider_request(name: &str, issuer: &str, secret: &str, method: &str) -> Value {
    json!({
        "UserPoolId": "us-east-1_Kit12345",
        "ProviderName": name,
        "ProviderType": "OIDC",
        "ProviderDetails": {
            "client_id": "pool",
            "client_secret": secret,
            "authorize_scopes": "openid email profile",
            "oidc_issuer": issuer,
            "attributes_request_method": method,
        },
        "AttributeMapping": {
            "email": "email",
            "email_verified": "email_verified",
            "nickname": "nickname",
            "given_name": "given_name",
        },
    })
}

#[tokio::test]
async fn federation_in_chromium_through_hosted_ui_and_load_balancer() {
    let rules = r#"
[[listeners.rules]]
priority = 40
conditions = [{ field = "path-pattern", values = ["/fed/*"] }]
actions = [
  { type = "authenticate-cognito", user_pool = "test", user_pool_client_id = "tasks-web",
    session_cookie_name = "FedSession", authentication_request_extra_params = { identity_provider = "Partner" } },
  { type = "forward", target_group = "echo" },
]
"#;
    let kit = Kit::start(rules).await;
    let redirect = format!("{}/oauth2/idpresponse", kit.pool_url);
    let partner = ExternalProvider::start(&redirect, "partner");
    let other = ExternalProvider::start(&redirect, "other");
    let p = boto3(
        &kit,
        "CreateIdentityProvider",
        provider_request(
            "Partner",
            &partner.url,
            "partner-client-secret-0123456789",
            "GET",
        ),
    )
    .await;
    assert_eq!(p["IdentityProvider"]["ProviderName"], "Partner", "{p}");
    let o = boto3(
        &kit,
        "CreateIdentityProvider",
        provider_request(
            "Other",
            &other.url,
            "other-client-secret-0123456789",
            "POST",
        ),
    )
    .await;
    assert_eq!(o["IdentityProvider"]["ProviderName"], "Other", "{o}");
    let callback = format!("http://127.0.0.1:{}/cb", kit.backend.port());
    let c = boto3(
        &kit,
        "CreateUserPoolClient",
        json!({
            "UserPoolId": "us-east-1_Kit12345", "ClientName": "fed-web", "GenerateSecret": true,
            "AllowedOAuthFlows": ["code"], "AllowedOAuthScopes": ["openid", "email", "profile"],
            "AllowedOAuthFlowsUserPoolClient": true, "CallbackURLs": [callback],
            "SupportedIdentityProviders": ["COGNITO", "Partner", "Other"],
        }),
    )
    .await;
    let client = &c["UserPoolClient"];
    assert_eq!(
        client["SupportedIdentityProviders"],
        json!(["COGNITO", "Partner", "Other"])
    );
    // The balancer's client offers Partner too (Cognito's update restates every setting).
    let u = boto3(
        &kit,
        "UpdateUserPoolClient",
        json!({
            "UserPoolId": "us-east-1_Kit12345", "ClientId": "tasks-web", "ClientName": "Tasks",
            "AllowedOAuthFlows": ["code"], "AllowedOAuthScopes": ["openid", "email", "tasks/read"],
            "AllowedOAuthFlowsUserPoolClient": true,
            "CallbackURLs": [kit.url("/oauth2/idpresponse")], "LogoutURLs": [kit.url("/signed-out")],
            "SupportedIdentityProviders": ["COGNITO", "Partner"],
        }),
    )
    .await;
    assert_eq!(
        u["UserPoolClient"]["SupportedIdentityProviders"],
        json!(["COGNITO", "Partner"]),
        "{u}"
    );
    let cfg = json!({
        "pool": kit.pool_url, "client_id": client["ClientId"], "client_secret": client["ClientSecret"],
        "redirect_uri": callback, "partner": partner.url, "other": other.url, "lb": kit.url(""),
    })
    .to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .current_dir(DIR)
            .args(["federation_flow.mjs", &cfg])
            .output()
    })
    .await
    .unwrap()
    .expect("node runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("federation flow ok"), "{text}");
    let seen: Value = serde_json::from_str(
        text.lines()
            .find(|l| l.starts_with('{'))
            .expect("the flow prints its findings"),
    )
    .unwrap();
    // 1. Cognito's federated user: name, identities claim, mapped attributes.
    let first = &seen["first"];
    assert_eq!(first["cognito:username"], "Partner_ann", "{first}");
    let ids = &first["identities"][0];
    assert_eq!(ids["userId"], "ann");
    assert_eq!(ids["providerName"], "Partner");
    assert_eq!(ids["providerType"], "OIDC");
    assert_eq!(ids["primary"], "true");
    assert_eq!(first["email"], "ann@partner.example");
    assert_eq!(first["email_verified"], true);
    // Updated at the next sign-in, same user.
    let second = &seen["second"];
    assert_eq!(second["nickname"], "second-visit", "{second}");
    assert_eq!(second["sub"], first["sub"]);
    assert_eq!(second["identities"][0]["dateCreated"], ids["dateCreated"]);
    // 2. The same name at another provider is another user.
    let o = &seen["other"];
    assert_eq!(o["cognito:username"], "Other_ann", "{o}");
    assert_ne!(o["sub"], first["sub"]);
    assert_eq!(o["email"], "ann@other.example");
    // 3. Through the balancer: the target sees the federated user.
    assert_eq!(seen["lb"]["username"], "Partner_bob", "{}", seen["lb"]);
    assert_eq!(seen["straight"]["username"], "Partner_carol");
    // The admin API shows them as Cognito does.
    let user = boto3(
        &kit,
        "AdminGetUser",
        json!({"UserPoolId": "us-east-1_Kit12345", "Username": "Partner_ann"}),
    )
    .await;
    assert_eq!(user["UserStatus"], "EXTERNAL_PROVIDER", "{user}");
    let attrs = user["UserAttributes"].as_array().unwrap();
    assert!(
        attrs
            .iter()
            .any(|a| a["Name"] == "nickname" && a["Value"] == "second-visit")
    );
    assert!(attrs.iter().any(|a| a["Name"] == "identities"));
    let listed = boto3(
        &kit,
        "ListUsers",
        json!({"UserPoolId": "us-east-1_Kit12345", "Filter": "username ^= \"Partner_\""}),
    )
    .await;
    let names: Vec<&str> = listed["Users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["Username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Partner_ann", "Partner_bob", "Partner_carol"]);
    // A federated user has no password.
    let r = plain()
        .post(format!("{}/", kit.pool_url))
        .header("content-type", "application/x-amz-json-1.1")
        .header(
            "x-amz-target",
            "AWSCognitoIdentityProviderService.InitiateAuth",
        )
        .body(
            json!({"AuthFlow": "USER_PASSWORD_AUTH", "ClientId": "api-cli",
                   "AuthParameters": {"USERNAME": "Partner_ann", "PASSWORD": "portcullis-dummy"}})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["__type"], "NotAuthorizedException", "{v}");
    drop((partner, other));
    kit.app.shutdown().await;
}

#[tokio::test]
async fn identity_provider_operations_answer_as_cognito() {
    let kit = Kit::start("").await;
    let pool = "us-east-1_Kit12345";
    let mut req = provider_request("Acme", "https://idp.acme.example", "acme-secret", "GET");
    req["IdpIdentifiers"] = json!(["acme.example", "acme-corp"]);
    let created = boto3(&kit, "CreateIdentityProvider", req.clone()).await;
    let ip = &created["IdentityProvider"];
    assert_eq!(ip["ProviderType"], "OIDC", "{created}");
    assert_eq!(ip["ProviderDetails"]["client_secret"], "acme-secret");
    assert_eq!(
        ip["ProviderDetails"]["oidc_issuer"],
        "https://idp.acme.example"
    );
    assert_eq!(ip["AttributeMapping"]["username"], "sub");
    assert_eq!(ip["IdpIdentifiers"], json!(["acme.example", "acme-corp"]));
    // The same name again; another provider claiming an identifier already used.
    assert_eq!(
        boto3(&kit, "CreateIdentityProvider", req.clone()).await["error"],
        "DuplicateProviderException"
    );
    let mut clash = provider_request("Beta", "https://idp.beta.example", "beta-secret", "GET");
    clash["IdpIdentifiers"] = json!(["ACME.example"]);
    assert_eq!(
        boto3(&kit, "CreateIdentityProvider", clash).await["error"],
        "DuplicateProviderException"
    );
    // Bad input names the parameter.
    for (edit, why) in [
        (json!({"ProviderName": "Has_Underscore"}), "name"),
        (json!({"ProviderName": "COGNITO"}), "reserved"),
        (json!({"ProviderType": "SAML"}), "type"),
        (
            json!({"ProviderDetails": {"client_id": "x", "client_secret": "y", "oidc_issuer": "http://evil.example"}}),
            "http issuer",
        ),
        (
            json!({"ProviderDetails": {"client_id": "x", "client_secret": "y", "oidc_issuer": "https://a.example", "authorize_scopes": "email"}}),
            "no openid",
        ),
        (
            json!({"ProviderDetails": {"client_id": "x", "client_secret": "y", "oidc_issuer": "https://a.example", "surprise": "1"}}),
            "unknown key",
        ),
        (json!({"AttributeMapping": {"sub": "sub"}}), "sub mapped"),
        (
            json!({"AttributeMapping": {"custom:nope": "x"}}),
            "undeclared custom",
        ),
    ] {
        let mut r = provider_request("Gamma", "https://idp.gamma.example", "s", "GET");
        for (k, v) in edit.as_object().unwrap() {
            r[k] = v.clone();
        }
        assert_eq!(
            boto3(&kit, "CreateIdentityProvider", r).await["error"],
            "InvalidParameterException",
            "{why}"
        );
    }
    // A declared custom attribute may be mapped.
    let mut team = provider_request("Team", "https://idp.team.example", "s", "POST");
    team["AttributeMapping"] = json!({"custom:team": "team"});
    assert!(boto3(&kit, "CreateIdentityProvider", team).await["IdentityProvider"].is_object());
    // Describe, by identifier (case-insensitive), list with pagination.
    let d = boto3(
        &kit,
        "DescribeIdentityProvider",
        json!({"UserPoolId": pool, "ProviderName": "Acme"}),
    )
    .await;
    assert_eq!(d["IdentityProvider"]["ProviderName"], "Acme");
    let by = boto3(
        &kit,
        "GetIdentityProviderByIdentifier",
        json!({"UserPoolId": pool, "IdpIdentifier": "Acme.Example"}),
    )
    .await;
    assert_eq!(by["IdentityProvider"]["ProviderName"], "Acme");
    assert_eq!(
        boto3(
            &kit,
            "GetIdentityProviderByIdentifier",
            json!({"UserPoolId": pool, "IdpIdentifier": "nobody.example"})
        )
        .await["error"],
        "ResourceNotFoundException"
    );
    let page1 = boto3(
        &kit,
        "ListIdentityProviders",
        json!({"UserPoolId": pool, "MaxResults": 1}),
    )
    .await;
    assert_eq!(page1["Providers"][0]["ProviderName"], "Acme", "{page1}");
    assert_eq!(page1["Providers"][0]["ProviderType"], "OIDC");
    let page2 = boto3(
        &kit,
        "ListIdentityProviders",
        json!({"UserPoolId": pool, "MaxResults": 1, "NextToken": page1["NextToken"]}),
    )
    .await;
    assert_eq!(page2["Providers"][0]["ProviderName"], "Team", "{page2}");
    assert!(page2.get("NextToken").is_none());
    // Update: new details keep the secret when it is left out; a new mapping replaces the old.
    let up = boto3(
        &kit,
        "UpdateIdentityProvider",
        json!({"UserPoolId": pool, "ProviderName": "Acme",
               "ProviderDetails": {"client_id": "pool-2", "oidc_issuer": "https://idp.acme.example", "authorize_scopes": "openid"},
               "AttributeMapping": {"name": "name"}}),
    )
    .await;
    let ip = &up["IdentityProvider"];
    assert_eq!(ip["ProviderDetails"]["client_id"], "pool-2", "{up}");
    assert_eq!(ip["ProviderDetails"]["client_secret"], "acme-secret");
    assert_eq!(
        ip["AttributeMapping"],
        json!({"name": "name", "username": "sub"})
    );
    assert_eq!(ip["IdpIdentifiers"], json!(["acme.example", "acme-corp"]));
    // Clients may name only providers that exist.
    let bad_client = boto3(
        &kit,
        "CreateUserPoolClient",
        json!({"UserPoolId": pool, "ClientName": "x", "SupportedIdentityProviders": ["COGNITO", "Nobody"]}),
    )
    .await;
    assert_eq!(bad_client["error"], "InvalidParameterException");
    let good_client = boto3(
        &kit,
        "CreateUserPoolClient",
        json!({"UserPoolId": pool, "ClientName": "x", "SupportedIdentityProviders": ["Acme"]}),
    )
    .await;
    assert_eq!(
        good_client["UserPoolClient"]["SupportedIdentityProviders"],
        json!(["Acme"])
    );
    let described = boto3(
        &kit,
        "DescribeUserPoolClient",
        json!({"UserPoolId": pool, "ClientId": "tasks-web"}),
    )
    .await;
    assert_eq!(
        described["UserPoolClient"]["SupportedIdentityProviders"],
        json!(["COGNITO"])
    );
    // Delete, then it is gone.
    boto3(
        &kit,
        "DeleteIdentityProvider",
        json!({"UserPoolId": pool, "ProviderName": "Acme"}),
    )
    .await;
    for op in ["DescribeIdentityProvider", "DeleteIdentityProvider"] {
        assert_eq!(
            boto3(
                &kit,
                op,
                json!({"UserPoolId": pool, "ProviderName": "Acme"})
            )
            .await["error"],
            "ResourceNotFoundException",
            "{op}"
        );
    }
    kit.app.shutdown().await;
}

// ---- a hostile provider ----

/// What the hostile provider does at its token and userinfo endpoints.
#[derive(Clone)]
struct Lies {
    /// Claims of the ID token (the nonce is filled in from the login unless set).
    claims: Value,
    /// JOSE header.
    header: Value,
    /// Sign with the published key (false: a key nobody published).
    signed: bool,
    /// The userinfo answer.
    userinfo: Value,
    /// Userinfo padding in bytes.
    pad: usize,
    nonce: String,
}

struct Hostile {
    key: aws_lc_rs::signature::EcdsaKeyPair,
    pkcs8: Vec<u8>,
    other_pkcs8: Vec<u8>,
    issuer: String,
    lies: Mutex<Lies>,
}

type Shared = Arc<Hostile>;

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

async fn hostile_discovery(State(h): State<Shared>) -> axum::response::Response {
    let i = &h.issuer;
    axum::Json(json!({
        "issuer": i, "authorization_endpoint": format!("{i}/authorize"),
        "token_endpoint": format!("{i}/token"), "userinfo_endpoint": format!("{i}/userinfo"),
        "jwks_uri": format!("{i}/jwks"),
    }))
    .into_response()
}

async fn hostile_jwks(State(h): State<Shared>) -> axum::response::Response {
    use aws_lc_rs::signature::KeyPair;
    let public = h.key.public_key().as_ref();
    axum::Json(json!({"keys": [{
        "kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
        "x": URL_SAFE_NO_PAD.encode(&public[1..33]), "y": URL_SAFE_NO_PAD.encode(&public[33..65]),
    }]}))
    .into_response()
}

async fn hostile_token(State(h): State<Shared>) -> axum::response::Response {
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

async fn hostile_userinfo(State(h): State<Shared>) -> axum::response::Response {
    let lies = h.lies.lock().unwrap().clone();
    let mut v = lies.userinfo.clone();
    if lies.pad > 0 {
        v["padding"] = "x".repeat(lies.pad).into();
    }
    axum::Json(v).into_response()
}

fn honest(issuer: &str, sub: &str) -> Lies {
    let now = portcullis_auth::now();
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
async fn start_login(kit: &Kit, browser: &reqwest::Client, client_id: &str) -> (String, String) {
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
async fn login_with(kit: &Kit, h: &Shared, client_id: &str, lies: Lies) -> reqwest::Response {
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

fn refused(r: &reqwest::Response) -> bool {
    r.status() == 302 && location(r).starts_with("http://127.0.0.1:9/cb?error=")
}

#[tokio::test]
async fn a_hostile_provider_cannot_mint_users_or_attributes() {
    let kit = Kit::start("").await;
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
    let now = portcullis_auth::now();
    let lies: Vec<(&str, Box<dyn Fn(&mut Lies)>)> = vec![
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
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Sign in with Evil"), "{page}");
    assert!(!page.contains("name=\"password\""));
    let r = b
        .post(format!("{}/login?{query}", kit.pool_url))
        .form(&[("username", "alice"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    kit.app.shutdown().await;
}
