//! One-time secrets (reset, sign-up and attribute codes, TOTP), attribute verification and
//! account enumeration, attacked through the real API, hosted UI and balancer.

use crate::kit::*;
use base64::Engine;
use portcullis_idp::domain::accounts::{CODE_ATTEMPT_WINDOW, MAX_CODE_ATTEMPTS};
use portcullis_idp::domain::mfa::{MFA_LOCKOUT, STEP_SECONDS, base32_decode, totp};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The last code the outbox holds for `user` and `purpose`.
fn last_code(kit: &Kit, user: &str, purpose: &str) -> String {
    let text = std::fs::read_to_string(kit.pool().outbox_path().unwrap()).unwrap();
    text.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|m| m["username"] == user && m["purpose"] == purpose)
        .unwrap_or_else(|| panic!("no {purpose} code for {user}"))["code"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `n` six-digit codes, none of them in `avoid`.
fn wrong_codes(n: usize, avoid: &[String]) -> Vec<String> {
    (0..)
        .map(|i| format!("{:06}", 100_000 + i))
        .filter(|c| !avoid.contains(c))
        .take(n)
        .collect()
}

/// Counts answers by exception name.
fn tally(answers: impl IntoIterator<Item = String>) -> BTreeMap<String, usize> {
    let mut t = BTreeMap::new();
    for a in answers {
        *t.entry(a).or_insert(0) += 1;
    }
    t
}

async fn api_tokens(api: &PoolApi, user: &str, password: &str) -> Value {
    let v = api.password_auth("api-cli", user, password).await;
    v["AuthenticationResult"].clone()
}

#[tokio::test]
async fn reset_code_guesses_are_reserved_atomically_and_reissue_keeps_the_budget() {
    let kit = Kit::builder().without_rate_limits().start().await;
    let api = PoolApi::of(&kit);
    let forgot = json!({"ClientId": "api-cli", "Username": "alice"});
    api.ok("ForgotPassword", forgot.clone()).await;
    let right = last_code(&kit, "alice", "forgot_password");
    let confirm = |code: String| {
        let api = api.clone();
        async move {
            let (s, v) = api
                .call(
                    "ConfirmForgotPassword",
                    json!({"ClientId": "api-cli", "Username": "alice",
                        "ConfirmationCode": code, "Password": "New-password-1!"}),
                )
                .await;
            assert_eq!(s, 400, "{v}");
            v["__type"].as_str().unwrap().to_string()
        }
    };
    let guesses: Vec<_> = wrong_codes(200, std::slice::from_ref(&right))
        .into_iter()
        .map(|c| tokio::spawn(confirm(c)))
        .collect();
    let mut answers = Vec::new();
    for g in guesses {
        answers.push(g.await.unwrap());
    }
    let t = tally(answers);
    // Exactly the allowed number of guesses was compared: four mismatches and the fifth that voids
    // the code; every other guess was refused before any comparison.
    assert_eq!(
        t.get("CodeMismatchException").copied().unwrap_or(0)
            + t.get("TooManyFailedAttemptsException")
                .copied()
                .unwrap_or(0),
        MAX_CODE_ATTEMPTS as usize,
        "{t:?}"
    );
    assert_eq!(t.get("LimitExceededException"), Some(&195), "{t:?}");
    // Even the right code is refused now.
    assert_eq!(confirm(right).await, "LimitExceededException");
    // A new code does not restore the budget.
    api.ok("ForgotPassword", forgot.clone()).await;
    let fresh = last_code(&kit, "alice", "forgot_password");
    assert_eq!(confirm(fresh).await, "LimitExceededException");
    // The hosted UI obeys the same budget.
    api.ok("ForgotPassword", forgot.clone()).await;
    let fresh = last_code(&kit, "alice", "forgot_password");
    let page = hosted_post(
        &kit,
        "/confirmForgotPassword",
        &[
            ("username", "alice"),
            ("code", &fresh),
            ("password", "New-password-1!"),
            ("confirm", "New-password-1!"),
        ],
    )
    .await;
    assert!(page.contains("Attempt limit exceeded"), "{page}");
    // When the window ends, a fresh code works (and the old password is gone).
    kit.pool().advance_clock(CODE_ATTEMPT_WINDOW);
    api.ok("ForgotPassword", forgot).await;
    let fresh = last_code(&kit, "alice", "forgot_password");
    api.ok(
        "ConfirmForgotPassword",
        json!({"ClientId": "api-cli", "Username": "alice",
            "ConfirmationCode": fresh, "Password": "New-password-1!"}),
    )
    .await;
    api_tokens(&api, "alice", "New-password-1!").await;
    kit.app.shutdown().await;
}

/// Posts a hosted-UI form of the `tasks-web` client (double-submit CSRF token chosen here) and
/// returns the page.
async fn hosted_post(kit: &Kit, path: &str, fields: &[(&str, &str)]) -> String {
    hosted_post_full(kit, path, fields).await.1
}

/// As `hosted_post`: (status, page with per-render values blanked, header names).
async fn hosted_post_full(
    kit: &Kit,
    path: &str,
    fields: &[(&str, &str)],
) -> (u16, String, Vec<String>) {
    let query = format!(
        "client_id=tasks-web&response_type=code&scope=openid&redirect_uri={}",
        urlencode(&kit.url("/oauth2/idpresponse"))
    );
    let mut form: Vec<(&str, &str)> = vec![("_csrf", "fixed-csrf-token")];
    form.extend_from_slice(fields);
    let r = plain()
        .post(format!("{}{path}?{query}", kit.pool_url))
        .header("cookie", "XSRF-TOKEN=fixed-csrf-token")
        .form(&form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let names = header_names(&r);
    let html = r.text().await.unwrap();
    (status, blank_csrf(&html), names)
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The page without its per-render CSRF token and CSP nonce (if any).
fn blank_csrf(html: &str) -> String {
    let mut s = html.to_string();
    for marker in ["name=\"_csrf\" value=\"", "nonce=\""] {
        let mut out = String::new();
        let mut rest = s.as_str();
        while let Some(i) = rest.find(marker) {
            let j = i + marker.len();
            out.push_str(&rest[..j]);
            rest = &rest[j..];
            let end = rest.find('"').unwrap_or(rest.len());
            rest = &rest[end..];
        }
        out.push_str(rest);
        s = out;
    }
    s
}

#[tokio::test]
async fn sign_up_code_guesses_through_the_hosted_ui_share_the_apis_budget() {
    let kit = Kit::builder().without_rate_limits().start().await;
    let api = PoolApi::of(&kit);
    api.sign_up("api-cli", "zoe", "Zoe-password-1!", "zoe@example.com")
        .await;
    let right = last_code(&kit, "zoe", "sign_up");
    let guesses: Vec<_> = wrong_codes(40, std::slice::from_ref(&right))
        .into_iter()
        .map(|c| {
            let kit_url = kit.pool_url.clone();
            let lb = kit.url("/oauth2/idpresponse");
            tokio::spawn(async move {
                let query = format!(
                    "client_id=tasks-web&response_type=code&scope=openid&redirect_uri={}",
                    urlencode(&lb)
                );
                plain()
                    .post(format!("{kit_url}/confirmUser?{query}"))
                    .header("cookie", "XSRF-TOKEN=t")
                    .form(&[("_csrf", "t"), ("username", "zoe"), ("code", c.as_str())])
                    .fetch_text()
                    .await
            })
        })
        .collect();
    let mut compared = 0;
    let mut refused = 0;
    for g in guesses {
        let page = g.await.unwrap();
        if page.contains("Invalid verification code") || page.contains("Too many failed attempts") {
            compared += 1;
        } else if page.contains("Attempt limit exceeded") {
            refused += 1;
        } else {
            panic!("unexpected page: {page}");
        }
    }
    assert_eq!((compared, refused), (MAX_CODE_ATTEMPTS as usize, 35));
    // The right code is refused through the API too, and a new code does not help.
    let confirm =
        |code: String| json!({"ClientId": "api-cli", "Username": "zoe", "ConfirmationCode": code});
    assert_eq!(
        api.err("ConfirmSignUp", confirm(right)).await,
        "LimitExceededException"
    );
    api.ok(
        "ResendConfirmationCode",
        json!({"ClientId": "api-cli", "Username": "zoe"}),
    )
    .await;
    let fresh = last_code(&kit, "zoe", "sign_up");
    assert_eq!(
        api.err("ConfirmSignUp", confirm(fresh)).await,
        "LimitExceededException"
    );
    kit.app.shutdown().await;
}

fn totp_now(kit: &Kit, secret: &str, offset: i64) -> String {
    let key = base32_decode(secret).unwrap();
    let step = kit.pool().now() / STEP_SECONDS as i64 + offset;
    totp(&key, step as u64)
}

#[tokio::test]
async fn totp_guesses_across_sign_ins_share_one_budget_and_lock_the_factor() {
    let pool = format!("mfa_configuration = \"OPTIONAL\"\n{NO_RATE_LIMITS}");
    let kit = Kit::builder().pool(&pool).start().await;
    let api = PoolApi::of(&kit);
    // alice sets up TOTP with her access token.
    let tokens = api_tokens(&api, "alice", PASSWORD).await;
    let at = tokens["AccessToken"].as_str().unwrap().to_string();
    let v = api
        .ok("AssociateSoftwareToken", json!({"AccessToken": at}))
        .await;
    let secret = v["SecretCode"].as_str().unwrap().to_string();
    api.ok(
        "VerifySoftwareToken",
        json!({"AccessToken": at, "UserCode": totp_now(&kit, &secret, 0)}),
    )
    .await;
    let sign_in = || {
        let api = api.clone();
        async move {
            let v = api.password_auth("api-cli", "alice", PASSWORD).await;
            assert_eq!(v["ChallengeName"], "SOFTWARE_TOKEN_MFA", "{v}");
            v["Session"].as_str().unwrap().to_string()
        }
    };
    let answer = |session: String, code: String| {
        let api = api.clone();
        async move {
            api.call(
                "RespondToAuthChallenge",
                json!({"ClientId": "api-cli", "ChallengeName": "SOFTWARE_TOKEN_MFA",
                    "Session": session,
                    "ChallengeResponses": {"USERNAME": "alice", "SOFTWARE_TOKEN_MFA_CODE": code}}),
            )
            .await
        }
    };
    // Ten sign-ins, each guessing three codes at once: 30 guesses.
    let near: Vec<String> = (-2..=2).map(|o| totp_now(&kit, &secret, o)).collect();
    let wrong = wrong_codes(30, &near);
    let mut tasks = Vec::new();
    for chunk in wrong.chunks(3) {
        let session = sign_in().await;
        for c in chunk {
            tasks.push(tokio::spawn(answer(session.clone(), c.clone())));
        }
    }
    let mut answers = Vec::new();
    for t in tasks {
        let (s, v) = t.await.unwrap();
        assert_eq!(s, 400, "{v}");
        answers.push(v["__type"].as_str().unwrap().to_string());
    }
    let t = tally(answers);
    // Only the user's budget of codes was compared (wrong-code answers), whatever the sessions.
    assert_eq!(
        t.get("CodeMismatchException").copied().unwrap_or(0),
        5,
        "{t:?}"
    );
    assert_eq!(t.get("TooManyFailedAttemptsException"), Some(&25), "{t:?}");
    // Locked: a new sign-in with the right code is refused.
    let session = sign_in().await;
    let (s, v) = answer(session, totp_now(&kit, &secret, 0)).await;
    assert_eq!(
        (s, v["__type"].as_str()),
        (400, Some("TooManyFailedAttemptsException"))
    );
    // The lockout ends (the pool's clock moves; nothing sleeps), and the right code works.
    kit.pool().advance_clock(MFA_LOCKOUT);
    let session = sign_in().await;
    let (s, v) = answer(session, totp_now(&kit, &secret, 0)).await;
    assert_eq!(s, 200, "{v}");
    assert!(v["AuthenticationResult"]["AccessToken"].is_string());
    kit.app.shutdown().await;
}

/// The payload of a JWT (`x-amzn-oidc-data`, base64url or base64 with padding).
fn jwt_payload(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(part))
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// The claims the balancer signs for alice's next sign-in at `/tasks`.
async fn balancer_claims(kit: &Kit) -> Value {
    let client = login(kit, "/tasks").await;
    let echo: Value = client.get(kit.url("/tasks")).fetch_json().await;
    jwt_payload(echo["headers"]["x-amzn-oidc-data"].as_str().unwrap())
}

#[tokio::test]
async fn a_changed_email_is_unverified_until_its_code_is_given() {
    let kit = Kit::builder().without_rate_limits().start().await;
    let api = PoolApi::of(&kit);
    let at = api_tokens(&api, "alice", PASSWORD).await["AccessToken"]
        .as_str()
        .unwrap()
        .to_string();
    // Users never write the flags, alone or along with the address.
    for attrs in [
        json!([{"Name": "email_verified", "Value": "true"}]),
        json!([{"Name": "email", "Value": "ceo@victim.test"}, {"Name": "email_verified", "Value": "true"}]),
        json!([{"Name": "phone_number_verified", "Value": "true"}]),
    ] {
        assert_eq!(
            api.err(
                "UpdateUserAttributes",
                json!({"AccessToken": at, "UserAttributes": attrs})
            )
            .await,
            "InvalidParameterException"
        );
    }
    let v = api
        .ok(
            "UpdateUserAttributes",
            json!({"AccessToken": at,
                "UserAttributes": [{"Name": "email", "Value": "ceo@victim.test"}]}),
        )
        .await;
    // What the balancer signs for the targets never calls the new address verified.
    let claims = balancer_claims(&kit).await;
    assert_eq!(claims["email"], "ceo@victim.test", "{claims}");
    assert_ne!(claims["email_verified"], "true", "{claims}");
    assert_ne!(claims["email_verified"], true, "{claims}");
    assert_eq!(
        v["CodeDeliveryDetailsList"][0]["Destination"], "c***@v***",
        "{v}"
    );
    // A reset code never goes to the unverified address (it would hand over the account).
    api.ok(
        "ForgotPassword",
        json!({"ClientId": "api-cli", "Username": "alice"}),
    )
    .await;
    let sent = std::fs::read_to_string(kit.pool().outbox_path().unwrap()).unwrap();
    assert!(
        !sent
            .lines()
            .any(|l| l.contains("forgot_password") && l.contains("ceo@victim.test")),
        "{sent}"
    );
    // The code went to the new address; guessing is bounded as for every code.
    let code = last_code(&kit, "alice", "verify_attribute");
    let verify = |c: &str| json!({"AccessToken": at, "AttributeName": "email", "Code": c});
    let wrong = wrong_codes(1, std::slice::from_ref(&code));
    assert_eq!(
        api.err("VerifyUserAttribute", verify(&wrong[0])).await,
        "CodeMismatchException"
    );
    api.ok("VerifyUserAttribute", verify(&code)).await;
    let claims = balancer_claims(&kit).await;
    assert_eq!(claims["email_verified"], "true", "{claims}");
    // A code sent for one address verifies no other.
    let d = api
        .ok(
            "GetUserAttributeVerificationCode",
            json!({"AccessToken": at, "AttributeName": "email"}),
        )
        .await;
    assert_eq!(d["CodeDeliveryDetails"]["AttributeName"], "email");
    let stale = last_code(&kit, "alice", "verify_attribute");
    api.ok(
        "UpdateUserAttributes",
        json!({"AccessToken": at, "UserAttributes": [{"Name": "email", "Value": "other@victim.test"}]}),
    )
    .await;
    let sent_for_new = last_code(&kit, "alice", "verify_attribute");
    if stale != sent_for_new {
        assert_eq!(
            api.err("VerifyUserAttribute", verify(&stale)).await,
            "CodeMismatchException"
        );
    }
    // The administrator may verify, as at Cognito.
    portcullis_idp::admin_api::call(
        kit.pool(),
        "AdminUpdateUserAttributes",
        serde_json::from_value(json!({"Username": "alice", "UserAttributes": [
            {"Name": "email", "Value": "admin-set@example.com"},
            {"Name": "email_verified", "Value": "true"}]}))
        .unwrap(),
    )
    .await
    .unwrap();
    let u = kit.pool().user("alice").await.unwrap();
    assert_eq!(u.attributes["email_verified"], "true");
    kit.app.shutdown().await;
}

#[tokio::test]
async fn new_password_required_and_sign_up_cannot_verify_or_write_outside_the_client() {
    // A client that may write `name` only.
    let kit = Kit::builder()
        .pool(&format!(
            r#"{NO_RATE_LIMITS}
[[user_pools.clients]]
client_id = "narrow"
explicit_auth_flows = ["ALLOW_USER_PASSWORD_AUTH"]
write_attributes = ["name"]
"#
        ))
        .start()
        .await;
    let api = PoolApi::of(&kit);
    let admin = |op: &str, body: Value| {
        let pool = kit.pool().clone();
        let op = op.to_string();
        async move {
            portcullis_idp::admin_api::call(&pool, &op, serde_json::from_value(body).unwrap()).await
        }
    };
    admin(
        "AdminCreateUser",
        json!({"Username": "ivy", "TemporaryPassword": "Temp-password-1!", "MessageAction": "SUPPRESS",
            "UserAttributes": [{"Name": "email", "Value": "ivy@example.com"}]}),
    )
    .await
    .unwrap();
    let v = api
        .password_auth("api-cli", "ivy", "Temp-password-1!")
        .await;
    assert_eq!(v["ChallengeName"], "NEW_PASSWORD_REQUIRED");
    let session = v["Session"].as_str().unwrap();
    let respond = |extra: Value| {
        let mut responses = json!({"USERNAME": "ivy", "NEW_PASSWORD": "Ivy-password-1!"});
        for (k, v) in extra.as_object().unwrap() {
            responses[k] = v.clone();
        }
        json!({"ClientId": "api-cli", "ChallengeName": "NEW_PASSWORD_REQUIRED",
            "Session": session, "ChallengeResponses": responses})
    };
    assert_eq!(
        api.err(
            "RespondToAuthChallenge",
            respond(json!({"userAttributes.email": "ceo@victim.test",
                "userAttributes.email_verified": "true"}))
        )
        .await,
        "InvalidParameterException"
    );
    // Changing the address there leaves it unverified too.
    api.ok(
        "RespondToAuthChallenge",
        respond(json!({"userAttributes.email": "ceo@victim.test"})),
    )
    .await;
    let u = kit.pool().user("ivy").await.unwrap();
    assert_eq!(u.attributes["email"], "ceo@victim.test");
    assert_eq!(u.attributes["email_verified"], "false");
    // SignUp cannot mark an address verified either.
    assert_eq!(
        api.err(
            "SignUp",
            json!({"ClientId": "api-cli", "Username": "mallory", "Password": "Mallory-pass-1!",
                "UserAttributes": [{"Name": "email", "Value": "ceo@victim.test"},
                    {"Name": "email_verified", "Value": "true"}]})
        )
        .await,
        "InvalidParameterException"
    );
    // A client's write_attributes holds on every path.
    assert_eq!(
        api.err(
            "SignUp",
            json!({"ClientId": "narrow", "Username": "mallory", "Password": "Mallory-pass-1!",
                "UserAttributes": [{"Name": "email", "Value": "m@example.com"}]})
        )
        .await,
        "NotAuthorizedException"
    );
    let v = api.password_auth("narrow", "ivy", "Ivy-password-1!").await;
    let at = v["AuthenticationResult"]["AccessToken"].as_str().unwrap();
    for attr in ["custom:team", "email"] {
        assert_eq!(
            api.err(
                "UpdateUserAttributes",
                json!({"AccessToken": at, "UserAttributes": [{"Name": attr, "Value": "x@y.z"}]})
            )
            .await,
            "NotAuthorizedException"
        );
    }
    api.ok(
        "UpdateUserAttributes",
        json!({"AccessToken": at, "UserAttributes": [{"Name": "name", "Value": "Ivy"}]}),
    )
    .await;
    kit.app.shutdown().await;
}

#[tokio::test]
async fn unknown_disabled_and_real_users_get_the_same_answers() {
    let kit = Kit::builder().without_rate_limits().start().await;
    // The clock stands still, so every user's lockout lasts across their next attempts however
    // slowly the machine runs.
    kit.pool()
        .clock()
        .set_ms(Some(portcullis_core::now() as i64 * 1000));
    let api = PoolApi::of(&kit);
    let admin = |op: &str, body: Value| {
        let pool = kit.pool().clone();
        let op = op.to_string();
        async move {
            portcullis_idp::admin_api::call(&pool, &op, serde_json::from_value(body).unwrap())
                .await
                .unwrap()
        }
    };
    // dora/dana are disabled, noah/nick have no address, uma is unconfirmed, bob/carl are plain
    // real users (the second of each pair for the hosted pages, with a fresh history).
    for (name, attrs) in [
        (
            "dora",
            json!([{"Name": "email", "Value": "dora@example.com"}]),
        ),
        (
            "dana",
            json!([{"Name": "email", "Value": "dana@example.com"}]),
        ),
        ("noah", json!([])),
        ("nick", json!([])),
        (
            "bob",
            json!([{"Name": "email", "Value": "bob@example.com"}]),
        ),
        (
            "carl",
            json!([{"Name": "email", "Value": "carl@example.com"}]),
        ),
    ] {
        let mut attrs = attrs;
        if !attrs.as_array().unwrap().is_empty() {
            attrs
                .as_array_mut()
                .unwrap()
                .push(json!({"Name": "email_verified", "Value": "true"}));
        }
        admin(
            "AdminCreateUser",
            json!({"Username": name, "TemporaryPassword": "Temp-password-1!",
                "MessageAction": "SUPPRESS", "UserAttributes": attrs}),
        )
        .await;
        admin(
            "AdminSetUserPassword",
            json!({"Username": name, "Password": "Real-password-1!", "Permanent": true}),
        )
        .await;
    }
    admin("AdminDisableUser", json!({"Username": "dora"})).await;
    admin("AdminDisableUser", json!({"Username": "dana"})).await;
    api.sign_up("api-cli", "uma", "Uma-password-1!", "uma@example.com")
        .await;
    let people = ["bob", "dora", "noah", "uma", "nobody-at-all"];

    // One full sequence per user: its answers (status, body without per-user values, headers).
    let mut transcripts = Vec::new();
    for who in people {
        let mut t: Vec<String> = Vec::new();
        let step = |t: &mut Vec<String>, answer| t.push(transcript_line(answer));
        let confirm_forgot = |code: &str| {
            json!({"ClientId": "api-cli", "Username": who, "ConfirmationCode": code,
                "Password": "Brand-new-pass-1!"})
        };
        // Before any code: expired. Then a code is "sent"; wrong guesses; the budget ends.
        step(
            &mut t,
            api.raw("ConfirmForgotPassword", confirm_forgot("100000"))
                .await,
        );
        step(
            &mut t,
            api.raw(
                "ForgotPassword",
                json!({"ClientId": "api-cli", "Username": who}),
            )
            .await,
        );
        for i in 0..6 {
            let c = format!("{:06}", 100_001 + i);
            step(
                &mut t,
                api.raw("ConfirmForgotPassword", confirm_forgot(&c)).await,
            );
        }
        // Wrong passwords, past the lockout.
        for _ in 0..7 {
            step(
                &mut t,
                api.raw(
                    "InitiateAuth",
                    json!({"ClientId": "api-cli", "AuthFlow": "USER_PASSWORD_AUTH",
                        "AuthParameters": {"USERNAME": who, "PASSWORD": "Wrong-password-1!"}}),
                )
                .await,
            );
        }
        transcripts.push((who, t));
    }
    // uma (unconfirmed, real code) is compared separately for the sign-up paths below; for the
    // recovery and sign-in paths every user matches the unknown one.
    let unknown = &transcripts.last().unwrap().1;
    for (who, t) in &transcripts {
        for (i, (a, b)) in t.iter().zip(unknown).enumerate() {
            assert_eq!(a, b, "{who}: answer {i} differs from an unknown user's");
        }
    }

    // Sign-up confirmation: an unconfirmed user, a confirmed one and an unknown one.
    let mut sign_up = Vec::new();
    for who in ["uma", "bob", "nobody-else"] {
        let mut t = Vec::new();
        let confirm =
            |c: &str| json!({"ClientId": "api-cli", "Username": who, "ConfirmationCode": c});
        t.push(
            api.raw(
                "ResendConfirmationCode",
                json!({"ClientId": "api-cli", "Username": who}),
            )
            .await,
        );
        for i in 0..6 {
            t.push(
                api.raw("ConfirmSignUp", confirm(&format!("{:06}", 200_000 + i)))
                    .await,
            );
        }
        let t: Vec<String> = t.into_iter().map(transcript_line).collect();
        sign_up.push((who, t));
    }
    for (who, t) in &sign_up {
        assert_eq!(
            t, &sign_up[2].1,
            "{who}: sign-up answers differ from an unknown user's"
        );
    }
    // Nothing was sent to anyone but real, enabled users with an address.
    let sent = std::fs::read_to_string(kit.pool().outbox_path().unwrap()).unwrap();
    assert!(
        sent.contains("\"username\":\"bob\""),
        "the real user got a real code"
    );
    for who in ["dora", "noah", "nobody-at-all", "nobody-else"] {
        assert!(
            !sent.contains(&format!("\"username\":\"{who}\"")),
            "a code went to {who}"
        );
    }

    // The hosted UI's recovery pages: the same page for everyone.
    let mut pages = Vec::new();
    for who in ["carl", "dana", "nick", "nobody-at-all-2"] {
        let a = hosted_post_full(&kit, "/forgotPassword", &[("username", who)]).await;
        let b = hosted_post_full(
            &kit,
            "/confirmForgotPassword",
            &[
                ("username", who),
                ("code", "300000"),
                ("password", "Brand-new-pass-1!"),
                ("confirm", "Brand-new-pass-1!"),
            ],
        )
        .await;
        let c = hosted_post_full(
            &kit,
            "/confirmUser",
            &[("username", who), ("code", "300001")],
        )
        .await;
        let strip = |(s, p, h): (u16, String, Vec<String>)| {
            let p = p.replace(who, "<user>");
            // The simulated or real destination in the notice: blank its letters.
            let p = match p.find("we sent a code to ") {
                Some(i) => {
                    let j = i + "we sent a code to ".len();
                    format!("{}{}", &p[..j], &p[j + 9..])
                }
                None => p,
            };
            (s, p, h)
        };
        // Wrong passwords on the sign-in page, past the lockout.
        let mut logins = Vec::new();
        for _ in 0..7 {
            logins.push(strip(
                hosted_post_full(
                    &kit,
                    "/login",
                    &[("username", who), ("password", "Wrong-password-1!")],
                )
                .await,
            ));
        }
        pages.push((who, [vec![strip(a), strip(b), strip(c)], logins]));
    }
    for (who, p) in &pages {
        assert_eq!(
            p, &pages[3].1,
            "{who}: hosted pages differ from an unknown user's"
        );
    }
    kit.app.shutdown().await;
}

#[tokio::test]
async fn postgres_nodes_reserve_guesses_atomically() {
    use portcullis_idp::{PgStore, Store};
    use std::sync::Arc;
    let db = PgDatabase::create("otp").await;
    // Two nodes on one database.
    let a: Arc<dyn Store> = Arc::new(PgStore::connect(&db.url()).await.unwrap());
    let b: Arc<dyn Store> = Arc::new(PgStore::connect(&db.url()).await.unwrap());
    let now = portcullis_core::now() as i64;
    a.put_ticket("p", "reset", "u", "h".into(), now + 600)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..100 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            (
                s.spend_ticket_attempt("p", "reset", "u", MAX_CODE_ATTEMPTS)
                    .await
                    .unwrap()
                    .map(|(_, n)| n),
                s.reserve_attempt("p", "attempts:reset", "u", 5, 3600, now)
                    .await
                    .unwrap(),
                s.advance_ticket("p", "totp_step", "u", 42, i64::MAX / 4)
                    .await
                    .unwrap(),
            )
        }));
    }
    let (mut guesses, mut budget, mut steps) = (Vec::new(), 0, 0);
    for t in tasks {
        let (g, r, s) = t.await.unwrap();
        guesses.extend(g);
        budget += r as usize;
        steps += s as usize;
    }
    guesses.sort();
    assert_eq!(
        guesses,
        [1, 2, 3, 4, 5],
        "each guess counted once, five in all"
    );
    assert_eq!(budget, 5, "five attempts from the user's budget");
    assert_eq!(steps, 1, "a TOTP step is accepted once");
    // A new code does not restore the budget; the end of its window does.
    a.put_ticket("p", "reset", "u", "h2".into(), now + 600)
        .await
        .unwrap();
    assert!(
        !b.reserve_attempt("p", "attempts:reset", "u", 5, 3600, now + 3599)
            .await
            .unwrap()
    );
    assert!(
        b.reserve_attempt("p", "attempts:reset", "u", 5, 3600, now + 3600)
            .await
            .unwrap()
    );
    drop((a, b));
    db.drop_it().await;
}

/// One answer of a per-user transcript: (status, body, header names) as a line, the simulated
/// destination reduced to its shape (it differs per name, as real ones do; its shape must not).
fn transcript_line((s, mut v, h): (u16, Value, Vec<String>)) -> String {
    if let Some(d) = v["CodeDeliveryDetails"]["Destination"].as_str() {
        let shape: String = d
            .chars()
            .map(|c| if c.is_ascii_lowercase() { 'x' } else { c })
            .collect();
        v["CodeDeliveryDetails"]["Destination"] = shape.into();
    }
    format!("{s} {v} {h:?}")
}
