//! User-pool federation (issue 13): external OIDC providers through Cognito's API (boto3), and the
//! whole sign-in in Chromium against two `oidc-provider` processes (the hosted UI, and the load
//! balancer's `authenticate-cognito` in front of the pool). The hostile provider is in
//! `security/federation.rs`.

use crate::kit;

use kit::*;
use serde_json::{Value, json};
use std::io::BufRead;
use std::process::{Command, Stdio};

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
    let (out, _) = run_script("python3", None, args).await;
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
    let kit = Kit::builder().toml(rules).start().await;
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
    let (out, text) = run_script("node", Some(DIR), ["federation_flow.mjs", &cfg]).await;
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
    let names = field_strs(&listed["Users"], "Username");
    assert_eq!(names, ["Partner_ann", "Partner_bob", "Partner_carol"]);
    // A federated user has no password.
    let (_, v) = PoolApi::with(&kit.pool_url, plain())
        .call(
            "InitiateAuth",
            json!({"AuthFlow": "USER_PASSWORD_AUTH", "ClientId": "api-cli",
                   "AuthParameters": {"USERNAME": "Partner_ann", "PASSWORD": "portcullis-dummy"}}),
        )
        .await;
    assert_eq!(v["__type"], "NotAuthorizedException", "{v}");
    drop((partner, other));
    kit.app.shutdown().await;
}

#[tokio::test]
async fn identity_provider_operations_answer_as_cognito() {
    let kit = Kit::builder().start().await;
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
