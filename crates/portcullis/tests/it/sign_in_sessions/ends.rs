//! Ending sessions: every trigger (its event on the feed, refresh failing after it),
//! `ended_sessions()`, and that only the session's own credentials end it.

use super::*;

#[tokio::test]
async fn every_trigger_ends_sessions_publishes_and_stops_refresh() {
    let s = serve(None, "").await;
    let long = Duration::from_secs(10);
    // API sign-ins ended through the API.
    for (user, op) in [
        ("u-global", "GlobalSignOut"),
        ("u-admin-global", "AdminUserGlobalSignOut"),
        ("u-disable", "AdminDisableUser"),
        ("u-delete", "AdminDeleteUser"),
        ("u-self-delete", "DeleteUser"),
        ("u-reset", "AdminResetUserPassword"),
        ("u-change", "ChangePassword"),
        ("u-forgot", "ConfirmForgotPassword"),
        ("u-set", "AdminSetUserPassword"),
    ] {
        let t = api_sign_in(&s, user).await;
        let access = t["AccessToken"].as_str().unwrap().to_string();
        let refresh = t["RefreshToken"].as_str().unwrap().to_string();
        let sub = sub_of(&access);
        let sid = sid_of(&access);
        let mut feed = s.pool.subscribe_session_ends();
        match op {
            "GlobalSignOut" | "DeleteUser" => {
                let (status, body) = api(&s, op, json!({"AccessToken": access})).await;
                assert_eq!(status, 200, "{op}: {body}");
            }
            "ChangePassword" => {
                let (status, body) = api(
                    &s,
                    op,
                    json!({"AccessToken": access, "PreviousPassword": PASSWORD,
                        "ProposedPassword": NEW_PASSWORD}),
                )
                .await;
                assert_eq!(status, 200, "{op}: {body}");
            }
            "ConfirmForgotPassword" => {
                let (status, body) = api(
                    &s,
                    "ForgotPassword",
                    json!({"ClientId": "web-a", "Username": user}),
                )
                .await;
                assert_eq!(status, 200, "{body}");
                let outbox = std::fs::read_to_string(&s.outbox).unwrap();
                let line: Value = outbox
                    .lines()
                    .rev()
                    .map(|l| serde_json::from_str::<Value>(l).unwrap())
                    .find(|l| l.to_string().contains(user))
                    .expect("a reset code in the outbox");
                let (status, body) = api(
                    &s,
                    op,
                    json!({"ClientId": "web-a", "Username": user,
                        "ConfirmationCode": line["code"], "Password": NEW_PASSWORD}),
                )
                .await;
                assert_eq!(status, 200, "{op}: {body}");
            }
            "AdminSetUserPassword" => {
                admin(
                    &s,
                    op,
                    json!({"Username": user, "Password": NEW_PASSWORD, "Permanent": true}),
                )
                .await
            }
            _ => admin(&s, op, json!({"Username": user})).await,
        }
        let e = next_event(&mut feed, long).await;
        assert_eq!(e.issuer, s.pool.issuer, "{op}");
        assert_eq!(e.sub, sub, "{op}");
        assert_eq!(e.sid, None, "{op} ends every session of the user");
        // Then each live session by its sid (those begun in the end's own second included).
        let mut by_sid = Vec::new();
        while let Ok(e) = feed.try_recv() {
            assert_eq!(e.sub, sub, "{op}");
            by_sid.push(e.sid.expect("after the user-wide event, sid events"));
        }
        assert!(
            by_sid.contains(&sid),
            "{op}: the session's own end is published"
        );
        let (status, body) = api_refresh(&s, &refresh).await;
        assert_eq!(status, 400, "{op}: refresh after it must fail: {body}");
        let rec = s.pool.sign_in_session(&sid).await.unwrap();
        assert!(
            rec.is_none_or(|r| r.ended_at.is_some()),
            "{op}: the session is recorded as ended"
        );
    }
    // The hosted UI's /logout ends that browser's session, and /oauth2/revoke the session of
    // the refresh token.
    for user in ["u-logout", "u-revoke"] {
        let b = browser();
        let code = hosted_sign_in(&s, &b, "web-a", user).await;
        let t = redeem(&s, "web-a", &code).await;
        let (id, refresh) = (
            t["id_token"].as_str().unwrap().to_string(),
            t["refresh_token"].as_str().unwrap().to_string(),
        );
        let mut feed = s.pool.subscribe_session_ends();
        if user == "u-logout" {
            hosted_logout(&s, &b).await;
        } else {
            let r = reqwest::Client::new()
                .post(format!("{}/oauth2/revoke", s.url))
                .form(&[("token", refresh.as_str()), ("client_id", "web-a")])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            // The browser's session is over as well: no silent code.
            let r = b.get(authorize_url(&s, "web-a")).send().await.unwrap();
            assert!(location(&r).starts_with("/login?"), "{}", location(&r));
        }
        let e = next_event(&mut feed, long).await;
        assert_eq!(e.sid.as_deref(), Some(sid_of(&id).as_str()), "{user}");
        assert_eq!(e.sub, sub_of(&id));
        let (status, body) = refresh_status(&s, "web-a", &refresh).await;
        assert_eq!(status, 400, "{user}: {body}");
        assert_eq!(body["error"], "invalid_grant");
    }
}

#[tokio::test]
async fn ended_sessions_lists_ends_until_their_tokens_expire() {
    let s = serve(None, "").await;
    let t = api_sign_in(&s, "alice").await;
    let sid = sid_of(t["IdToken"].as_str().unwrap());
    let sub = sub_of(t["IdToken"].as_str().unwrap());
    assert!(s.pool.ended_sessions().await.unwrap().is_empty());
    // One session ended by revoking its refresh token, then every session of the user.
    let r = reqwest::Client::new()
        .post(format!("{}/oauth2/revoke", s.url))
        .form(&[
            ("token", t["RefreshToken"].as_str().unwrap()),
            ("client_id", "web-a"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    admin(&s, "AdminUserGlobalSignOut", json!({"Username": "alice"})).await;
    let ended = s.pool.ended_sessions().await.unwrap();
    assert_eq!(ended.len(), 2, "{ended:?}");
    assert_eq!(ended[0].sid.as_deref(), Some(sid.as_str()));
    assert_eq!(ended[1].sid, None);
    assert!(
        ended
            .iter()
            .all(|e| e.sub == sub && e.issuer == s.pool.issuer)
    );
    // Ending again publishes no second end of the same session.
    assert!(!s.pool.end_sign_in(&sid).await.unwrap());
    // Past every token's lifetime the ends are forgotten.
    // The session's own end goes with its tokens (web-a's refresh tokens live a day); the
    // user-wide end stays as long as any client's tokens may live (30 days).
    s.pool.advance_clock(2 * 86400);
    assert_eq!(s.pool.ended_sessions().await.unwrap().len(), 1);
    s.pool.advance_clock(31 * 86400);
    assert!(s.pool.ended_sessions().await.unwrap().is_empty());
}

#[tokio::test]
async fn only_the_sessions_own_credentials_end_it() {
    let s = serve(None, "").await;
    let b = browser();
    let code = hosted_sign_in(&s, &b, "web-a", "alice").await;
    let t = redeem(&s, "web-a", &code).await;
    let refresh = t["refresh_token"].as_str().unwrap();
    let sid = sid_of(t["id_token"].as_str().unwrap());
    // Another client presenting the token, a made-up token, another browser's /logout, and a
    // sign-out with a forged access token end nothing.
    for (token, client) in [(refresh, "web-b"), ("made-up-refresh-token", "web-a")] {
        let r = reqwest::Client::new()
            .post(format!("{}/oauth2/revoke", s.url))
            .form(&[("token", token), ("client_id", client)])
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            200,
            "unknown tokens succeed silently, as Cognito"
        );
    }
    hosted_logout(&s, &browser()).await;
    let access = t["access_token"].as_str().unwrap();
    let forged = format!("{}x", &access[..access.len() - 1]);
    let (status, _) = api(&s, "GlobalSignOut", json!({"AccessToken": forged})).await;
    assert_eq!(status, 400);
    let rec = s.pool.sign_in_session(&sid).await.unwrap().unwrap();
    assert!(rec.ended_at.is_none(), "still live");
    let (status, body) = refresh_status(&s, "web-a", refresh).await;
    assert_eq!(status, 200, "{body}");
    assert!(s.pool.ended_sessions().await.unwrap().is_empty());
}
