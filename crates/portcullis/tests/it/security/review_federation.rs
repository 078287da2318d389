//! Findings of an outside review of federation (issue 13): a federated user gaining a password,
//! federated users out of the admin's reach, the mix-up defence, a stale `email_verified`, and
//! local sign-ups squatting federated names. Each test fails on the code before its fix.

use crate::kit::*;
use crate::security::federation::{Lies, Shared, honest, login_with, refused, start_login};
use serde_json::{Value, json};

/// A hostile provider `Evil` with `mapping`, and a client `fed-web` that supports it; returns the
/// provider, its issuer and the client id.
async fn evil_provider(kit: &Kit, mapping: Value) -> (Shared, String, String) {
    let (h, issuer) = crate::security::federation::serve_hostile_provider().await;
    admin(
        kit,
        "CreateIdentityProvider",
        json!({"ProviderName": "Evil", "ProviderType": "OIDC",
               "ProviderDetails": {"client_id": "pool", "client_secret": "s", "oidc_issuer": issuer,
                                   "authorize_scopes": "openid email"},
               "AttributeMapping": mapping}),
    )
    .await
    .unwrap();
    let c = admin(
        kit,
        "CreateUserPoolClient",
        json!({"ClientName": "fed-web", "AllowedOAuthFlows": ["code"],
               "AllowedOAuthScopes": ["openid", "email"], "AllowedOAuthFlowsUserPoolClient": true,
               "CallbackURLs": ["http://127.0.0.1:9/cb"],
               "SupportedIdentityProviders": ["COGNITO", "Evil"]}),
    )
    .await
    .unwrap();
    let id = c["UserPoolClient"]["ClientId"]
        .as_str()
        .unwrap()
        .to_string();
    (h, issuer, id)
}

/// An admin operation, as the CLI calls it.
async fn admin(kit: &Kit, op: &str, v: Value) -> Result<Value, portcullis_idp::error::IdpError> {
    portcullis_idp::admin_api::call(kit.pool(), op, v.as_object().unwrap().clone()).await
}

/// A public operation of the user-pool API: (status, body).
async fn api(kit: &Kit, op: &str, body: Value) -> (u16, Value) {
    PoolApi::of(kit).call(op, body).await
}

/// The last real code the outbox holds for `user` and `purpose`, if any was sent.
fn sent_code(kit: &Kit, user: &str, purpose: &str) -> Option<String> {
    let text = std::fs::read_to_string(kit.pool().outbox_path()?).unwrap_or_default();
    text.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|m| m["username"] == user && m["purpose"] == purpose)
        .and_then(|m| m["code"].as_str().map(str::to_string))
}

fn signed_in(r: &reqwest::Response) -> bool {
    r.status() == 302 && location(r).starts_with("http://127.0.0.1:9/cb?code=")
}

async fn password_sign_in(kit: &Kit, user: &str, password: &str) -> u16 {
    api(
        kit,
        "InitiateAuth",
        json!({"ClientId": "api-cli", "AuthFlow": "USER_PASSWORD_AUTH",
               "AuthParameters": {"USERNAME": user, "PASSWORD": password}}),
    )
    .await
    .0
}

/// Medium. With `email_verified` mapped (the admin trusts the provider's addresses), a federated
/// user could reset "its password" (`ForgotPassword` sent a code to the verified address and
/// `ConfirmForgotPassword` set a password and status `CONFIRMED`), then sign in with a password,
/// without its provider: a provider's user outlived its removal at the provider. An admin's
/// `AdminSetUserPassword` / `AdminResetUserPassword` did the same.
#[tokio::test]
async fn a_federated_user_never_gains_a_password() {
    let kit = Kit::builder().without_rate_limits().start().await;
    let mapping = json!({"email": "email", "email_verified": "email_verified"});
    let (h, issuer, client) = evil_provider(&kit, mapping).await;
    let r = login_with(&kit, &h, &client, honest(&issuer, "eve")).await;
    assert!(signed_in(&r), "{}", location(&r));
    let eve = kit.pool().user("Evil_eve").await.unwrap();
    assert_eq!(eve.attributes["email_verified"], "true");

    let (status, _) = api(
        &kit,
        "ForgotPassword",
        json!({"ClientId": "api-cli", "Username": "Evil_eve"}),
    )
    .await;
    assert_eq!(status, 200, "answered as for any user (no existence tell)");
    if let Some(code) = sent_code(&kit, "Evil_eve", "forgot_password") {
        api(
            &kit,
            "ConfirmForgotPassword",
            json!({"ClientId": "api-cli", "Username": "Evil_eve", "ConfirmationCode": code,
                   "Password": PASSWORD}),
        )
        .await;
    }
    assert_ne!(
        password_sign_in(&kit, "Evil_eve", PASSWORD).await,
        200,
        "a federated user signed in with a password it set through ForgotPassword"
    );
    for (op, body) in [
        (
            "AdminSetUserPassword",
            json!({"Username": "Evil_eve", "Password": PASSWORD, "Permanent": true}),
        ),
        ("AdminResetUserPassword", json!({"Username": "Evil_eve"})),
    ] {
        assert!(admin(&kit, op, body).await.is_err(), "{op}");
    }
    assert_ne!(password_sign_in(&kit, "Evil_eve", PASSWORD).await, 200);
    assert_eq!(
        kit.pool().user("Evil_eve").await.unwrap().status,
        "EXTERNAL_PROVIDER"
    );
    let r = login_with(&kit, &h, &client, honest(&issuer, "eve")).await;
    assert!(signed_in(&r), "the provider still signs its user in");
    kit.app.shutdown().await;
}

/// Low (found by the lead). A federated user's stored password hash was the pool's dummy hash of
/// the known string `portcullis-dummy`: only its status kept that string from being its password.
/// The dummy hash is now of a random secret.
#[tokio::test]
async fn a_federated_users_password_hash_matches_no_known_string() {
    let kit = Kit::builder().without_rate_limits().start().await;
    let (h, issuer, client) = evil_provider(&kit, json!({})).await;
    let r = login_with(&kit, &h, &client, honest(&issuer, "eve")).await;
    assert!(signed_in(&r), "{}", location(&r));
    let eve = kit.pool().user("Evil_eve").await.unwrap();
    for guess in ["portcullis-dummy", "", PASSWORD] {
        assert!(
            !kit.pool()
                .hasher
                .verify(guess, &eve.password_hash)
                .await
                .unwrap_or(false),
            "a federated user's password hash matches {guess:?}"
        );
    }
    kit.app.shutdown().await;
}

/// Low. A provider's user id of up to 255 characters made a user name `Evil_<id>` longer than the
/// 128 characters every admin operation accepts: an admin could not disable or delete that user
/// (`UserNotFoundException`), while it kept signing in.
#[tokio::test]
async fn every_federated_user_is_within_the_admins_reach() {
    let kit = Kit::builder().without_rate_limits().start().await;
    let (h, issuer, client) = evil_provider(&kit, json!({"email": "email"})).await;
    for len in [123, 124, 200, 255] {
        let sub = "s".repeat(len);
        let r = login_with(&kit, &h, &client, honest(&issuer, &sub)).await;
        if refused(&r) {
            continue;
        }
        assert!(signed_in(&r), "{len}: {}", location(&r));
        let name = format!("Evil_{sub}");
        admin(&kit, "AdminDisableUser", json!({"Username": name}))
            .await
            .unwrap_or_else(|e| panic!("{len}: a federated user the admin cannot disable: {e}"));
        let r = login_with(&kit, &h, &client, honest(&issuer, &sub)).await;
        assert!(refused(&r), "{len}: disabled");
    }
    // The longest name that fits still signs in.
    assert!(
        kit.pool()
            .user(&format!("Evil_{}", "s".repeat(123)))
            .await
            .is_ok()
    );
    kit.app.shutdown().await;
}

/// Low (defence in depth, RFC 9207). An authorization response that names another issuer than
/// the provider the login went to was taken as that provider's.
#[tokio::test]
async fn an_answer_naming_another_issuer_is_refused() {
    let kit = Kit::builder().without_rate_limits().start().await;
    let (h, issuer, client) = evil_provider(&kit, json!({"email": "email"})).await;
    let answer = |iss: String| {
        let (kit, h, issuer, client) = (&kit, h.clone(), issuer.clone(), client.clone());
        async move {
            let b = browser();
            let (state, nonce) = start_login(kit, &b, &client).await;
            *h.lies.lock().unwrap() = Lies {
                nonce,
                ..honest(&issuer, "eve")
            };
            let q = form_urlencoded::Serializer::new(String::new())
                .append_pair("code", "c-1")
                .append_pair("state", &state)
                .append_pair("iss", &iss)
                .finish();
            b.get(format!("{}/oauth2/idpresponse?{q}", kit.pool_url))
                .send()
                .await
                .unwrap()
        }
    };
    let r = answer("https://honest-idp.example".into()).await;
    assert!(refused(&r), "{}", location(&r));
    let r = answer(issuer.clone()).await;
    assert!(signed_in(&r), "{}", location(&r));
    kit.app.shutdown().await;
}

/// Low. With `email_verified` mapped, a provider that changed a user's email without sending
/// `email_verified` left the old `"true"` on the new, unverified address.
#[tokio::test]
async fn a_changed_email_is_unverified_unless_the_provider_vouches_again() {
    let kit = Kit::builder().without_rate_limits().start().await;
    let mapping = json!({"email": "email", "email_verified": "email_verified"});
    let (h, issuer, client) = evil_provider(&kit, mapping).await;
    let r = login_with(&kit, &h, &client, honest(&issuer, "eve")).await;
    assert!(signed_in(&r));
    let mut l = honest(&issuer, "eve");
    for v in [&mut l.claims, &mut l.userinfo] {
        v["email"] = "victim@bank.example".into();
        v.as_object_mut().unwrap().remove("email_verified");
    }
    let r = login_with(&kit, &h, &client, l).await;
    assert!(signed_in(&r));
    let eve = kit.pool().user("Evil_eve").await.unwrap();
    assert_eq!(eve.attributes["email"], "victim@bank.example");
    assert_eq!(
        eve.attributes["email_verified"], "false",
        "an address nobody vouched for"
    );
    kit.app.shutdown().await;
}

/// Low. Anyone could sign up `Evil_<id>` before that provider user's first sign-in; the
/// provider's user was then refused forever (the name is a local user's).
#[tokio::test]
async fn a_sign_up_cannot_take_a_federated_users_name() {
    let kit = Kit::builder().without_rate_limits().start().await;
    let (h, issuer, client) = evil_provider(&kit, json!({"email": "email"})).await;
    let (status, v) = api(
        &kit,
        "SignUp",
        json!({"ClientId": "api-cli", "Username": "Evil_bob", "Password": PASSWORD,
               "UserAttributes": [{"Name": "email", "Value": "mallory@example.com"}]}),
    )
    .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["__type"], "InvalidParameterException");
    let r = login_with(&kit, &h, &client, honest(&issuer, "bob")).await;
    assert!(signed_in(&r), "{}", location(&r));
    // Names that merely contain `_` are still anyone's.
    let (status, v) = api(
        &kit,
        "SignUp",
        json!({"ClientId": "api-cli", "Username": "Evilish_bob", "Password": PASSWORD,
               "UserAttributes": [{"Name": "email", "Value": "bob@example.com"}]}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    kit.app.shutdown().await;
}

/// Low. A federated user could delete its own `identities` (`DeleteUserAttributes`): its ID
/// tokens then looked like a local user's to an app that tells them apart by that claim.
#[tokio::test]
async fn a_federated_user_cannot_drop_its_identities() {
    let kit = Kit::builder().without_rate_limits().start().await;
    let (h, issuer, _) = evil_provider(&kit, json!({"email": "email"})).await;
    let c = admin(
        &kit,
        "CreateUserPoolClient",
        json!({"ClientName": "fed-admin", "AllowedOAuthFlows": ["code"],
               "AllowedOAuthScopes": ["openid", "email", "aws.cognito.signin.user.admin"],
               "AllowedOAuthFlowsUserPoolClient": true, "CallbackURLs": ["http://127.0.0.1:9/cb"],
               "SupportedIdentityProviders": ["Evil"]}),
    )
    .await
    .unwrap();
    let client = c["UserPoolClient"]["ClientId"]
        .as_str()
        .unwrap()
        .to_string();
    // A login asking for the scope of the user's own API (`start_login` asks for less).
    let b = browser();
    let r = b
        .get(format!(
            "{}/oauth2/authorize?client_id={client}&response_type=code&redirect_uri=http://127.0.0.1:9/cb&identity_provider=Evil&scope=openid+aws.cognito.signin.user.admin",
            kit.pool_url
        ))
        .send()
        .await
        .unwrap();
    let at_provider = reqwest::Url::parse(&location(&r)).unwrap();
    let q: std::collections::HashMap<String, String> =
        at_provider.query_pairs().into_owned().collect();
    *h.lies.lock().unwrap() = Lies {
        nonce: q["nonce"].clone(),
        ..honest(&issuer, "eve")
    };
    let r = b
        .get(format!(
            "{}/oauth2/idpresponse?code=c-1&state={}",
            kit.pool_url, q["state"]
        ))
        .send()
        .await
        .unwrap();
    assert!(signed_in(&r), "{}", location(&r));
    let callback = reqwest::Url::parse(&location(&r)).unwrap();
    let code = callback
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .to_string();
    let tokens: Value = reqwest::Client::new()
        .post(format!("{}/oauth2/token", kit.pool_url))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", client.as_str()),
            ("code", code.as_str()),
            ("redirect_uri", "http://127.0.0.1:9/cb"),
        ])
        .fetch_json()
        .await;
    let access = tokens["access_token"].as_str().unwrap();
    let (status, v) = api(
        &kit,
        "DeleteUserAttributes",
        json!({"AccessToken": access, "UserAttributeNames": ["identities"]}),
    )
    .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["__type"], "InvalidParameterException", "{v}");
    let eve = kit.pool().user("Evil_eve").await.unwrap();
    assert!(eve.attributes.contains_key("identities"));
    // Its other attributes are still its own.
    let (status, v) = api(
        &kit,
        "DeleteUserAttributes",
        json!({"AccessToken": access, "UserAttributeNames": ["email"]}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    kit.app.shutdown().await;
}
