//! The Cognito-compatible admin API driven by the AWS SDK for Python (boto3, not ours): SigV4
//! verification, clients, resource servers, groups, users, every sign-in flow the API offers,
//! pagination, revocation and secret rotation. Also the protocol's edges with raw requests.

use crate::kit;

use kit::*;

#[tokio::test]
async fn boto3_runs_a_scripted_admin_session() {
    let kit = Kit::builder().start().await;
    let pool = kit.pool();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../e2e/boto3_admin.py");
    let outbox = kit.state_dir.join("outbox").join("test.jsonl");
    let args: Vec<String> = vec![
        script.into(),
        kit.pool_url.clone(),
        pool.id.clone(),
        ACCESS_KEY_ID.into(),
        ACCESS_SECRET.into(),
        outbox.display().to_string(),
    ];
    // The script calls back into this runtime's servers: run it off the runtime thread.
    let (out, text) = run_script("python3", None, args).await;
    println!("{text}");
    assert!(out.status.success(), "{text}");
    assert!(text.contains("boto3: admin session complete"), "{text}");
    kit.app.shutdown().await;
}

#[tokio::test]
async fn protocol_errors_are_aws_shaped() {
    let kit = Kit::builder().start().await;
    let http = reqwest::Client::new();
    let url = format!("{}/", kit.pool_url);
    let call = |target: Option<&str>, body: &str| {
        let mut r = http
            .post(&url)
            .header("content-type", "application/x-amz-json-1.1")
            .body(body.to_string());
        if let Some(t) = target {
            r = r.header("x-amz-target", t);
        }
        r.send()
    };
    // No target, unknown operation, not JSON, oversized.
    let r = call(None, "{}").await.unwrap();
    assert_eq!(r.status(), 400);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["__type"], "UnknownOperationException");
    let r = call(
        Some("AWSCognitoIdentityProviderService.InitiateAuth"),
        "[1]",
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["__type"],
        "SerializationException"
    );
    let big = format!(r#"{{"x":"{}"}}"#, "a".repeat(200 * 1024));
    let r = call(Some("AWSCognitoIdentityProviderService.SignUp"), &big)
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    // Admin operations need a signature; the answer says which exception, as AWS does.
    let r = call(
        Some("AWSCognitoIdentityProviderService.AdminGetUser"),
        r#"{"UserPoolId":"us-east-1_Kit12345","Username":"alice"}"#,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.headers()["content-type"], "application/x-amz-json-1.1");
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["__type"],
        "MissingAuthenticationTokenException"
    );
    // A public operation with bad input: Cognito's exception names.
    let r = call(
        Some("AWSCognitoIdentityProviderService.InitiateAuth"),
        r#"{"ClientId":"nope","AuthFlow":"USER_PASSWORD_AUTH","AuthParameters":{}}"#,
    )
    .await
    .unwrap();
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["__type"],
        "ResourceNotFoundException"
    );
    // tasks-web does not allow USER_PASSWORD_AUTH (Cognito's default flows).
    let r = call(
        Some("AWSCognitoIdentityProviderService.InitiateAuth"),
        r#"{"ClientId":"tasks-web","AuthFlow":"USER_PASSWORD_AUTH","AuthParameters":{"USERNAME":"alice","PASSWORD":"x"}}"#,
    )
    .await
    .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["__type"], "InvalidParameterException", "{v}");
    let r = call(
        Some("AWSCognitoIdentityProviderService.InitiateAuth"),
        r#"{"ClientId":"tasks-web","AuthFlow":"USER_SRP_AUTH","AuthParameters":{}}"#,
    )
    .await
    .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["__type"], "UnsupportedOperationException", "{v}");
    // Sign-up of a name that exists; a password against the policy; an undeclared attribute.
    let sign_up = |user: &str, pw: &str, attrs: &str| {
        format!(
            r#"{{"ClientId":"spa","Username":"{user}","Password":"{pw}","UserAttributes":{attrs}}}"#
        )
    };
    for (body, want) in [
        (
            sign_up("alice", "Valid-pass-1!", "[]"),
            "UsernameExistsException",
        ),
        (sign_up("newbie", "weak", "[]"), "InvalidPasswordException"),
        (
            sign_up(
                "newbie",
                "Valid-pass-1!",
                r#"[{"Name":"custom:nope","Value":"x"}]"#,
            ),
            "InvalidParameterException",
        ),
        (
            sign_up(
                "newbie",
                "Valid-pass-1!",
                r#"[{"Name":"email_verified","Value":"true"}]"#,
            ),
            "InvalidParameterException",
        ),
    ] {
        let r = call(Some("AWSCognitoIdentityProviderService.SignUp"), &body)
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["__type"], want, "{body}: {v}");
    }
    kit.app.shutdown().await;
}
