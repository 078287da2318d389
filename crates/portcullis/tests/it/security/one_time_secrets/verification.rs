//! Attribute verification: a changed email stays unverified until its code is given; new
//! password and sign-up cannot verify or write outside the client.

use super::*;

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
