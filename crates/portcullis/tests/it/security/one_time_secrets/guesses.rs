//! Guessing one-time secrets: reset and sign-up codes and TOTP share one budget of guesses,
//! reserved atomically (also across PostgreSQL nodes).

use super::*;

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
