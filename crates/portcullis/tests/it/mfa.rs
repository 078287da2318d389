//! TOTP MFA through the user-pool API, as an SDK drives it: `MFA_SETUP` when the pool requires MFA
//! (associate, verify, respond), then `SOFTWARE_TOKEN_MFA` at every sign-in, with replayed and
//! wrong codes refused and sessions single-use. The hosted-UI side runs in Chromium (browser.rs).

use crate::kit;

use kit::*;
use portcullis_idp::domain::mfa::{STEP_SECONDS, base32_decode, totp};
use serde_json::json;

fn code(secret: &str, offset: i64) -> String {
    let key = base32_decode(secret).unwrap();
    let step = (portcullis_core::now() / STEP_SECONDS) as i64 + offset;
    totp(&key, step as u64)
}

#[tokio::test]
async fn totp_setup_and_sign_in_through_the_api() {
    let kit = Kit::builder().mfa("ON").start().await;
    let api = PoolApi::of(&kit);
    let sign_in = json!({"ClientId": "api-cli", "AuthFlow": "USER_PASSWORD_AUTH",
        "AuthParameters": {"USERNAME": "alice", "PASSWORD": PASSWORD}});

    // First sign-in: the pool requires MFA and alice has none yet.
    let v = api.ok("InitiateAuth", sign_in.clone()).await;
    assert_eq!(v["ChallengeName"], "MFA_SETUP", "{v}");
    assert!(v.get("AuthenticationResult").is_none());
    let session = v["Session"].as_str().unwrap().to_string();
    let v = api
        .ok("AssociateSoftwareToken", json!({"Session": session}))
        .await;
    let secret = v["SecretCode"].as_str().unwrap().to_string();
    assert_eq!(base32_decode(&secret).unwrap().len(), 20);
    assert_eq!(
        api.err(
            "VerifySoftwareToken",
            json!({"Session": session, "UserCode": "000000"})
        )
        .await,
        "CodeMismatchException"
    );
    // Kept: the same code must be refused later even if a 30 s step has passed by then.
    let setup_code = code(&secret, 0);
    let v = api
        .ok(
            "VerifySoftwareToken",
            json!({"Session": session, "UserCode": setup_code}),
        )
        .await;
    assert_eq!(v["Status"], "SUCCESS");
    let verified = v["Session"].as_str().unwrap().to_string();
    let v = api
        .ok(
            "RespondToAuthChallenge",
            json!({"ClientId": "api-cli", "ChallengeName": "MFA_SETUP", "Session": verified,
                   "ChallengeResponses": {"USERNAME": "alice"}}),
        )
        .await;
    let access = v["AuthenticationResult"]["AccessToken"]
        .as_str()
        .unwrap()
        .to_string();
    let me = api.ok("GetUser", json!({"AccessToken": access})).await;
    assert_eq!(me["UserMFASettingList"], json!(["SOFTWARE_TOKEN_MFA"]));
    // The setup session is spent.
    assert_eq!(
        api.err(
            "RespondToAuthChallenge",
            json!({"ClientId": "api-cli", "ChallengeName": "MFA_SETUP", "Session": verified,
                   "ChallengeResponses": {"USERNAME": "alice"}})
        )
        .await,
        "NotAuthorizedException"
    );

    // Every later sign-in asks for a code; the code used at setup cannot be used again.
    let v = api.ok("InitiateAuth", sign_in.clone()).await;
    assert_eq!(v["ChallengeName"], "SOFTWARE_TOKEN_MFA", "{v}");
    let s = v["Session"].as_str().unwrap().to_string();
    let answer = |session: &str, c: String| {
        json!({"ClientId": "api-cli", "ChallengeName": "SOFTWARE_TOKEN_MFA", "Session": session,
               "ChallengeResponses": {"USERNAME": "alice", "SOFTWARE_TOKEN_MFA_CODE": c}})
    };
    assert_eq!(
        api.err("RespondToAuthChallenge", answer(&s, setup_code.clone()))
            .await,
        "CodeMismatchException",
        "a replayed code is refused"
    );
    assert_eq!(
        api.err("RespondToAuthChallenge", answer(&s, code(&secret, 3)))
            .await,
        "CodeMismatchException",
        "a code three steps ahead is refused"
    );
    let v = api
        .ok("RespondToAuthChallenge", answer(&s, code(&secret, 1)))
        .await;
    assert!(v["AuthenticationResult"]["IdToken"].is_string(), "{v}");
    assert_eq!(
        api.err("RespondToAuthChallenge", answer(&s, code(&secret, 1)))
            .await,
        "NotAuthorizedException",
        "the session is single-use"
    );

    // Five wrong codes end the session.
    let v = api.ok("InitiateAuth", sign_in.clone()).await;
    let s = v["Session"].as_str().unwrap().to_string();
    for _ in 0..4 {
        assert_eq!(
            api.err("RespondToAuthChallenge", answer(&s, "999999".into()))
                .await,
            "CodeMismatchException"
        );
    }
    assert_eq!(
        api.err("RespondToAuthChallenge", answer(&s, "999999".into()))
            .await,
        "NotAuthorizedException"
    );

    // With MFA required, a user cannot turn it off.
    assert_eq!(
        api.err(
            "SetUserMFAPreference",
            json!({"AccessToken": access, "SoftwareTokenMfaSettings": {"Enabled": false}})
        )
        .await,
        "InvalidParameterException"
    );
    // A wrong password never reaches the second factor.
    let mut wrong = sign_in.clone();
    wrong["AuthParameters"]["PASSWORD"] = "Wrong-password-1!".into();
    assert_eq!(
        api.err("InitiateAuth", wrong).await,
        "NotAuthorizedException"
    );
    kit.app.shutdown().await;
}

#[tokio::test]
async fn optional_mfa_is_set_up_with_an_access_token() {
    let kit = Kit::builder().mfa("OPTIONAL").start().await;
    let api = PoolApi::of(&kit);
    let sign_in = json!({"ClientId": "api-cli", "AuthFlow": "USER_PASSWORD_AUTH",
        "AuthParameters": {"USERNAME": "alice", "PASSWORD": PASSWORD}});
    let v = api.ok("InitiateAuth", sign_in.clone()).await;
    let access = v["AuthenticationResult"]["AccessToken"]
        .as_str()
        .expect("no MFA yet: tokens at once")
        .to_string();
    let secret = api
        .ok("AssociateSoftwareToken", json!({"AccessToken": access}))
        .await["SecretCode"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        api.ok(
            "VerifySoftwareToken",
            json!({"AccessToken": access, "UserCode": code(&secret, 0)})
        )
        .await["Status"],
        "SUCCESS"
    );
    let v = api.ok("InitiateAuth", sign_in.clone()).await;
    assert_eq!(v["ChallengeName"], "SOFTWARE_TOKEN_MFA");
    // Turning it off (optional pool) restores password-only sign-in.
    api.ok(
        "SetUserMFAPreference",
        json!({"AccessToken": access, "SoftwareTokenMfaSettings": {"Enabled": false}}),
    )
    .await;
    let v = api.ok("InitiateAuth", sign_in).await;
    assert!(v["AuthenticationResult"]["AccessToken"].is_string(), "{v}");
    kit.app.shutdown().await;
}
