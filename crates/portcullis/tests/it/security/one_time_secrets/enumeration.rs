//! Account enumeration: unknown, disabled and real users get the same answers.

use super::*;

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
