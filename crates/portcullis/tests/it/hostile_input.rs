//! Every endpoint given malformed, oversized, replayed, cross-client and injection input answers
//! with its documented error and status — never a 500 — and injection changes nothing.

use crate::kit;

use kit::*;
use serde_json::Value;

async fn status_of(r: reqwest::RequestBuilder) -> (u16, String) {
    let r = r.send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.text().await.unwrap_or_default())
}

#[tokio::test]
async fn authorize_login_and_logout_refuse_bad_requests() {
    let kit = Kit::builder().start().await;
    let c = plain();
    let base = &kit.pool_url;
    let cb = form_urlencoded::byte_serialize(kit.url("/oauth2/idpresponse").as_bytes())
        .collect::<String>();
    let cases: Vec<(String, u16, &str)> = vec![
        (
            format!("{base}/oauth2/authorize"),
            400,
            "client_id is missing",
        ),
        (
            format!(
                "{base}/oauth2/authorize?client_id=%27%20OR%201%3D1%20--&redirect_uri={cb}&response_type=code"
            ),
            400,
            "invalid_client",
        ),
        (
            format!(
                "{base}/oauth2/authorize?client_id=tasks-web&redirect_uri=javascript%3Aalert(1)&response_type=code"
            ),
            400,
            "redirect_mismatch",
        ),
        (
            format!(
                "{base}/oauth2/authorize?client_id=tasks-web&client_id=tasks-web&redirect_uri={cb}&response_type=code"
            ),
            400,
            "repeated",
        ),
        (
            format!(
                "{base}/oauth2/authorize?client_id=tasks-web&redirect_uri={cb}&response_type=code&state={}",
                "x".repeat(9000)
            ),
            414,
            "too long",
        ),
        (
            format!("{base}/login?client_id=nobody&redirect_uri={cb}&response_type=code"),
            400,
            "invalid_client",
        ),
        (format!("{base}/logout"), 400, "client_id is missing"),
        (
            format!("{base}/logout?client_id=tasks-web"),
            400,
            "logout_uri",
        ),
        (
            format!("{base}/nowhere/%00%ff"),
            404,
            "nothing at this address",
        ),
    ];
    for (url, status, needle) in cases {
        let (s, body) = status_of(c.get(&url)).await;
        assert_eq!(s, status, "{url:.120}");
        assert!(body.contains(needle), "{url:.120}: {body:.300}");
    }
    // Authorization errors for a trustworthy client and redirect go back to the client, state intact.
    let r = c.get(format!("{base}/oauth2/authorize?client_id=tasks-web&redirect_uri={cb}&response_type=token&state=%3Cscript%3E")).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let loc = location(&r);
    assert!(
        loc.contains("error=unauthorized_client") && loc.contains("state=%3Cscript%3E"),
        "{loc}"
    );
    let r = c.get(format!("{base}/oauth2/authorize?client_id=tasks-web&redirect_uri={cb}&response_type=code&scope=nothing%20allowed")).send().await.unwrap();
    assert!(location(&r).contains("error=invalid_scope"));
    let r = c.get(format!("{base}/oauth2/authorize?client_id=tasks-web&redirect_uri={cb}&response_type=code&code_challenge_method=plain&code_challenge=abc")).send().await.unwrap();
    assert!(location(&r).contains("error=invalid_request"));
    let r = c.get(format!("{base}/oauth2/authorize?client_id=tasks-web&redirect_uri={cb}&response_type=code&identity_provider=Google")).send().await.unwrap();
    assert!(
        location(&r).contains("error=invalid_request"),
        "no federation offered"
    );
    let r = c.get(format!("{base}/oauth2/authorize?client_id=tasks-web&redirect_uri={cb}&response_type=code&identity_provider=COGNITO")).send().await.unwrap();
    assert!(
        location(&r).starts_with("/login?"),
        "COGNITO is the pool itself"
    );

    // HTML injection in the user name is escaped on the page; an oversized form is refused.
    let browser = browser();
    let login = format!(
        "{base}/login?client_id=tasks-web&redirect_uri={cb}&response_type=code&scope=openid"
    );
    let html = browser.get(&login).fetch_text().await;
    let (s, body) = status_of(browser.post(&login).form(&[
        ("_csrf", csrf(&html).as_str()),
        ("username", "<script>alert(1)</script>"),
        ("password", "x"),
    ]))
    .await;
    assert_eq!(s, 401);
    assert!(
        !body.contains("<script>alert(1)</script>") && body.contains("&#60;script&#62;"),
        "escaped"
    );
    let (s, _) = status_of(
        browser
            .post(&login)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("_csrf=x&username={}", "a".repeat(20_000))),
    )
    .await;
    assert_eq!(s, 413);
    let (s, _) = status_of(browser.post(&login).body(vec![0xff_u8, 0xfe, 0x00, 0x80])).await;
    assert_eq!(s, 403, "no CSRF token in garbage");
    kit.app.shutdown().await;
}

#[tokio::test]
async fn token_userinfo_and_revoke_refuse_bad_requests() {
    let kit = Kit::builder().start().await;
    let c = reqwest::Client::new();
    let token_url = format!("{}/oauth2/token", kit.pool_url);
    let web = (
        "tasks-web",
        kit.pool().client_secret("tasks-web").unwrap().to_string(),
    );
    let oidc = ("oidc-web", OIDC_SECRET.to_string());
    let redirect_uri = kit.url("/oauth2/idpresponse");
    let post = |who: &(&str, String), form: Vec<(&str, String)>| {
        c.post(&token_url)
            .basic_auth(who.0, Some(who.1.clone()))
            .form(&form)
            .send()
    };
    let err = |r: reqwest::Response| async move {
        (
            r.status().as_u16(),
            r.json::<Value>().await.unwrap_or(Value::Null)["error"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        )
    };

    // A real code for tasks-web.
    let p = login_until_callback(&kit, &browser(), "/tasks", PASSWORD).await;
    let code = p.code();
    // Another client cannot redeem it; SQL in the code is just an unknown code.
    let form = |code: &str, verifier: &str| {
        vec![
            ("grant_type", "authorization_code".to_string()),
            ("code", code.to_string()),
            ("redirect_uri", redirect_uri.clone()),
            ("code_verifier", verifier.to_string()),
        ]
    };
    let v = p.verifier();
    assert_eq!(
        err(post(&oidc, form(&code, &v)).await.unwrap()).await,
        (400, "invalid_grant".into())
    );
    assert_eq!(
        err(post(&web, form("' OR '1'='1", &v)).await.unwrap()).await,
        (400, "invalid_grant".into())
    );
    // (The cross-client attempt spent it, as a code must not survive misuse.)
    assert_eq!(
        err(post(&web, form(&code, &v)).await.unwrap()).await,
        (400, "invalid_grant".into())
    );

    // A refresh token belongs to its client.
    let p = login_until_callback(&kit, &browser(), "/tasks", PASSWORD).await;
    let v = p.verifier();
    let code = p.code();
    let t: Value = post(&web, form(&code, &v))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refresh = t["refresh_token"].as_str().unwrap().to_string();
    let access = t["access_token"].as_str().unwrap().to_string();
    let rform = |rt: &str| {
        vec![
            ("grant_type", "refresh_token".to_string()),
            ("refresh_token", rt.to_string()),
        ]
    };
    assert_eq!(
        err(post(&oidc, rform(&refresh)).await.unwrap()).await,
        (400, "invalid_grant".into())
    );
    // Revocation by another client does nothing (and says 200, as Cognito); by the owner it works.
    let revoke = |who: &(&str, String), token: &str| {
        c.post(format!("{}/oauth2/revoke", kit.pool_url))
            .basic_auth(who.0, Some(who.1.clone()))
            .form(&[("token", token)])
            .send()
    };
    assert_eq!(revoke(&oidc, &refresh).await.unwrap().status(), 200);
    assert_eq!(post(&web, rform(&refresh)).await.unwrap().status(), 200);
    assert_eq!(
        err(revoke(&web, &access).await.unwrap()).await,
        (400, "unsupported_token_type".into())
    );
    assert_eq!(
        err(revoke(&web, "").await.unwrap()).await,
        (400, "invalid_request".into())
    );
    assert_eq!(revoke(&web, &refresh).await.unwrap().status(), 200);
    assert_eq!(
        err(post(&web, rform(&refresh)).await.unwrap()).await,
        (400, "invalid_grant".into())
    );

    // Malformed requests.
    let raw = |ct: &str, body: Vec<u8>| {
        c.post(&token_url)
            .basic_auth(web.0, Some(web.1.clone()))
            .header("content-type", ct)
            .body(body)
            .send()
    };
    assert_eq!(
        err(raw(
            "application/json",
            b"{\"grant_type\":\"client_credentials\"}".to_vec()
        )
        .await
        .unwrap())
        .await,
        (400, "invalid_request".into())
    );
    assert_eq!(
        err(raw(
            "application/x-www-form-urlencoded",
            vec![0xff, 0xfe, 0x26, 0x3d]
        )
        .await
        .unwrap())
        .await,
        (400, "invalid_request".into())
    );
    assert_eq!(
        raw("application/x-www-form-urlencoded", vec![b'a'; 20_000])
            .await
            .unwrap()
            .status(),
        413
    );
    let r = c
        .post(&token_url)
        .header("authorization", "Basic !!!not-base64")
        .form(&[("grant_type", "refresh_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(err(r).await, (401, "invalid_client".into()));
    let r = c
        .post(&token_url)
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", "tasks-web"),
            ("client_secret", web.1.as_str()),
            ("client_secret", "again"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(err(r).await, (400, "invalid_request".into()));

    // userInfo.
    let ui = format!("{}/oauth2/userInfo", kit.pool_url);
    assert_eq!(c.get(&ui).send().await.unwrap().status(), 400);
    assert_eq!(
        c.get(&ui)
            .bearer_auth("a.b.c")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        c.get(&ui)
            .bearer_auth("x".repeat(20_000))
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(
        c.get(&ui)
            .bearer_auth(t["id_token"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .status(),
        401,
        "an ID token is not an access token"
    );
    kit.app.shutdown().await;
}

#[tokio::test]
async fn the_load_balancer_refuses_bad_callbacks_and_oversized_requests() {
    let kit = Kit::builder().start().await;
    let c = plain();
    let nonce = "AWSALBAuthNonce=AAAAAAAAAAAAAAAA";
    for (q, reason) in [
        (
            format!("state={}&code=x", "A".repeat(5000)),
            "AuthInvalidStateParam",
        ),
        ("state=%%%&code=x".to_string(), "AuthInvalidStateParam"),
        ("state=&code=x".to_string(), "AuthInvalidStateParam"),
    ] {
        let r = c
            .get(kit.url(&format!("/oauth2/idpresponse?{q}")))
            .header("cookie", nonce)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{q:.60}");
        kit.log_line(&[reason]).await;
    }
    // A request whose headers exceed the limits is refused by the HTTP layer, not a 500.
    let r = c
        .get(kit.url("/open/x"))
        .header("x-big", "a".repeat(100_000))
        .send()
        .await;
    if let Ok(r) = r {
        assert!(r.status().is_client_error(), "{}", r.status());
    }
    // Forged identity headers on a plain-HTTP listener are removed too (checked elsewhere), and a
    // huge cookie header is just no session.
    let r = c
        .get(kit.url("/tasks"))
        .header(
            "cookie",
            format!("AWSELBAuthSessionCookie-0={}", "A".repeat(5000)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    kit.app.shutdown().await;
}

/// Every user-pool API operation given hostile members (wrong types, oversized, injection, deep
/// nesting): a Cognito exception for the caller, never an internal error, and alice is untouched.
#[tokio::test]
async fn user_pool_api_refuses_hostile_input() {
    use serde_json::{Map, json};
    let kit = Kit::builder().start().await;
    let pool = kit.pool().clone();
    let before = pool.user("alice").await.unwrap();
    let ops = [
        "InitiateAuth",
        "RespondToAuthChallenge",
        "SignUp",
        "ConfirmSignUp",
        "ResendConfirmationCode",
        "ForgotPassword",
        "ConfirmForgotPassword",
        "GetUser",
        "ChangePassword",
        "GlobalSignOut",
        "RevokeToken",
        "UpdateUserAttributes",
        "DeleteUser",
        "AssociateSoftwareToken",
        "VerifySoftwareToken",
        "SetUserMFAPreference",
        "DescribeUserPool",
        "CreateUserPoolClient",
        "DescribeUserPoolClient",
        "UpdateUserPoolClient",
        "DeleteUserPoolClient",
        "ListUserPoolClients",
        "AddUserPoolClientSecret",
        "ListUserPoolClientSecrets",
        "DeleteUserPoolClientSecret",
        "CreateResourceServer",
        "UpdateResourceServer",
        "DescribeResourceServer",
        "ListResourceServers",
        "DeleteResourceServer",
        "CreateGroup",
        "GetGroup",
        "UpdateGroup",
        "DeleteGroup",
        "ListGroups",
        "ListUsersInGroup",
        "AdminAddUserToGroup",
        "AdminRemoveUserFromGroup",
        "AdminListGroupsForUser",
        "AdminCreateUser",
        "AdminGetUser",
        "AdminDeleteUser",
        "AdminSetUserPassword",
        "AdminUpdateUserAttributes",
        "AdminDeleteUserAttributes",
        "AdminDisableUser",
        "AdminEnableUser",
        "AdminConfirmSignUp",
        "AdminResetUserPassword",
        "AdminUserGlobalSignOut",
        "AdminInitiateAuth",
        "AdminRespondToAuthChallenge",
        "AdminSetUserMFAPreference",
        "ListUsers",
        "NoSuchOperation",
    ];
    let fields = [
        "Username",
        "Password",
        "ClientId",
        "ClientName",
        "GroupName",
        "Identifier",
        "Name",
        "AccessToken",
        "Session",
        "ConfirmationCode",
        "UserAttributes",
        "AuthFlow",
        "AuthParameters",
        "ChallengeName",
        "ChallengeResponses",
        "Filter",
        "Limit",
        "PaginationToken",
        "Token",
        "ClientSecret",
        "ClientSecretId",
        "TemporaryPassword",
        "MessageAction",
        "Permanent",
        "Precedence",
        "Description",
        "Scopes",
        "CallbackURLs",
        "AllowedOAuthFlows",
        "AllowedOAuthScopes",
        "ExplicitAuthFlows",
        "TokenValidityUnits",
        "RefreshTokenRotation",
        "UserCode",
        "SoftwareTokenMfaSettings",
        "PreviousPassword",
        "ProposedPassword",
        "UserAttributeNames",
        "SecretHash",
        "GenerateSecret",
    ];
    let long = "x".repeat(5000);
    let values: Vec<Value> = vec![
        json!(null),
        json!(12345),
        json!(-1),
        json!(true),
        json!([1, "a", null]),
        json!({"Name": "email", "Value": 5}),
        json!(long),
        json!("' OR '1'='1' --"),
        json!("alice'; DROP TABLE users; --"),
        json!("<script>alert(1)</script>"),
        json!("\u{0000}\u{202e}résumé"),
        json!([{"Name": "custom:team", "Value": "<b>x</b>"}, {"Name": "sub", "Value": "x"}]),
        json!({"USERNAME": "alice", "PASSWORD": long, "REFRESH_TOKEN": "' OR 1=1"}),
    ];
    let mut checked = 0;
    for op in ops {
        for v in &values {
            let mut req = Map::new();
            for f in fields {
                req.insert(f.to_string(), v.clone());
            }
            let r = portcullis_idp::admin_api::call(&pool, op, req).await;
            if let Err(e) = &r {
                assert_ne!(
                    e.exception(),
                    "InternalErrorException",
                    "{op} with {v}: {e:?}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 700);

    // Over HTTP: malformed, oversized and deeply nested bodies get 400s, never a 500.
    let http = reqwest::Client::new();
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    for (target, body) in [
        ("InitiateAuth", deep.as_str()),
        ("InitiateAuth", "{\"ClientId\": "),
        ("SignUp", "\u{feff}{}"),
        ("SignUp", "null"),
        (
            "ForgotPassword",
            r#"{"ClientId":"tasks-web","Username":{"$ne":null}}"#,
        ),
    ] {
        let r = http
            .post(format!("{}/", kit.pool_url))
            .header(
                "x-amz-target",
                format!("AWSCognitoIdentityProviderService.{target}"),
            )
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{target} {}", &body[..body.len().min(40)]);
        let v: Value = r.json().await.unwrap();
        assert!(v["__type"].is_string());
    }

    // Nothing happened to alice.
    let after = pool.user("alice").await.unwrap();
    assert_eq!(
        (after.sub, after.status, after.enabled, after.attributes),
        (before.sub, before.status, before.enabled, before.attributes)
    );
    assert!(pool.sign_in("alice", PASSWORD).await.is_ok());
    kit.app.shutdown().await;
}

/// The account pages escape what they echo and refuse forms without their CSRF token.
#[tokio::test]
async fn account_pages_escape_input_and_need_csrf() {
    let kit = Kit::builder().start().await;
    let c = browser();
    let login = sign_in_page(&kit, &c).await;
    let signup = login.replacen("/login?", "/signup?", 1);
    let html = c.get(&signup).fetch_text().await;
    let token = csrf(&html);
    let evil = "<img src=x onerror=alert(1)>";
    let r = c
        .post(&signup)
        .form(&[
            ("_csrf", token.as_str()),
            ("username", evil),
            ("email", "\"><script>alert(2)</script>"),
            ("password", "Valid-pass-1!"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let page = r.text().await.unwrap();
    assert!(
        !page.contains("<img src=x") && !page.contains("<script>alert(2)"),
        "{page}"
    );
    assert!(
        page.contains("&#60;img src=x"),
        "the value is shown escaped: {page}"
    );
    // Without the CSRF cookie's token: 403, nothing created.
    for path in [
        "/signup?",
        "/confirmUser?",
        "/forgotPassword?",
        "/confirmForgotPassword?",
        "/mfa?",
        "/forceChangePassword?",
    ] {
        let url = login.replacen("/login?", path, 1);
        let r = plain()
            .post(&url)
            .form(&[
                ("_csrf", "forged"),
                ("username", "mallory"),
                ("password", "Valid-pass-1!"),
                ("email", "m@example.com"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{path}");
    }
    assert!(kit.pool().user("mallory").await.is_err());
    // A page for an unknown client or a foreign redirect URI is an error page, never a form.
    let r = c
        .get(format!("{}/signup?client_id=nobody&redirect_uri=https%3A%2F%2Fevil.example%2F&response_type=code", kit.pool_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    kit.app.shutdown().await;
}
