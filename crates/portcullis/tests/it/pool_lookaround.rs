//! Cognito's read-only operations a script uses to look around (`ListUserPools`,
//! `DescribeUserPool`, `DescribeUserPoolDomain`, `GetUserPoolMfaConfig`,
//! `GetSigningCertificate`), driven by boto3 (not ours) against one process serving three pools:
//! two share an access key, the third has its own and must stay invisible to it.

use portcullis::app::{self, Prebound};
use serde_json::Value;
use std::collections::HashMap;
use tokio::net::TcpListener;

const KEY_ID: &str = "AKIALOOKAROUND000001";
const SECRET: &str = "lookaround-secret-access-key-0123456789";

#[tokio::test]
async fn boto3_lists_the_pools_then_describes_each() {
    let dir = tempfile::tempdir().unwrap();
    let mut pools = HashMap::new();
    let mut ports = HashMap::new();
    for name in ["alpha", "beta", "other"] {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        ports.insert(name, l.local_addr().unwrap().port());
        pools.insert(name.to_string(), l);
    }
    let config = format!(
        r#"
[load_balancer]
name = "lookaround"
state_dir = "{state}"

[[user_pools]]
name = "alpha"
id = "us-east-1_Alpha111"
domain = {{ listen = "127.0.0.1:{alpha}", base_url = "http://localhost:{alpha}" }}
access_keys = [{{ access_key_id = "{KEY_ID}", secret_access_key = "{SECRET}" }}]
mfa_configuration = "OPTIONAL"
allow_self_sign_up = true
custom_attributes = [{{ name = "team" }}, {{ name = "level", attribute_data_type = "Number", mutable = false }}]
password_policy = {{ minimum_length = 12, require_symbols = false }}
users = [{{ username = "ann", password = "Lookaround-pass-1" }}, {{ username = "bob", password = "Lookaround-pass-2" }}]

[[user_pools]]
name = "beta"
id = "us-east-1_Beta2222"
domain = {{ listen = "127.0.0.1:{beta}", base_url = "http://localhost:{beta}" }}
access_keys = [{{ access_key_id = "{KEY_ID}", secret_access_key = "{SECRET}" }}]

[[user_pools]]
name = "other"
id = "us-east-1_Other999"
domain = {{ listen = "127.0.0.1:{other}", base_url = "http://localhost:{other}" }}
access_keys = [{{ access_key_id = "{KEY_ID}", secret_access_key = "another-secret-access-key-0123456789" }}]
"#,
        state = dir.path().join("state").display(),
        alpha = ports["alpha"],
        beta = ports["beta"],
        other = ports["other"],
    );
    let file = dir.path().join("portcullis.toml");
    std::fs::write(&file, &config).unwrap();
    let loaded = portcullis_config::load(&file).unwrap_or_else(|e| panic!("{e}"));
    let app = app::start(
        &loaded.config,
        Prebound {
            listeners: vec![],
            pools,
        },
    )
    .await
    .unwrap();

    // The script talks to beta's endpoint only, as to Cognito's regional one.
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../e2e/boto3_lookaround.py");
    let args: Vec<String> = vec![
        script.into(),
        format!("http://localhost:{}", ports["beta"]),
        KEY_ID.into(),
        SECRET.into(),
    ];
    let (out, _) = crate::kit::run_script("python3", None, args).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let seen: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{stderr}", String::from_utf8_lossy(&out.stdout)));

    // Both pools of the key, by id, one page each; never the pool with another secret.
    let ids: Vec<&str> = seen["pools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["summary"]["Id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["us-east-1_Alpha111", "us-east-1_Beta2222"]);
    assert_eq!(seen["pages"], 2);

    let alpha = &seen["pools"][0];
    let d = &alpha["described"];
    assert_eq!(d["Name"], "alpha");
    assert_eq!(
        d["Arn"],
        "arn:aws:cognito-idp:us-east-1:000000000000:userpool/us-east-1_Alpha111"
    );
    assert_eq!(d["Policies"]["PasswordPolicy"]["MinimumLength"], 12);
    assert_eq!(d["Policies"]["PasswordPolicy"]["RequireSymbols"], false);
    assert_eq!(d["MfaConfiguration"], "OPTIONAL");
    assert_eq!(d["EstimatedNumberOfUsers"], 2);
    assert_eq!(
        d["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"],
        false
    );
    assert_eq!(d["UsernameConfiguration"]["CaseSensitive"], true);
    assert_eq!(
        d["AutoVerifiedAttributes"],
        serde_json::json!(["email", "phone_number"])
    );
    let domain = format!("localhost:{}", ports["alpha"]);
    assert_eq!(d["Domain"], domain.as_str());
    assert_eq!(d["CustomDomain"], domain.as_str());
    let schema = d["SchemaAttributes"].as_array().unwrap();
    let attr = |name: &str| schema.iter().find(|a| a["Name"] == name).cloned();
    assert_eq!(attr("sub").unwrap()["Mutable"], false);
    assert_eq!(attr("email").unwrap()["AttributeDataType"], "String");
    assert_eq!(
        attr("email_verified").unwrap()["AttributeDataType"],
        "Boolean"
    );
    assert_eq!(attr("custom:team").unwrap()["Mutable"], true);
    let level = attr("custom:level").unwrap();
    assert_eq!(level["AttributeDataType"], "Number");
    assert_eq!(level["Mutable"], false);
    assert_eq!(alpha["domain"]["Domain"], domain.as_str());
    assert_eq!(alpha["domain"]["AWSAccountId"], "000000000000");
    assert_eq!(alpha["mfa"]["MfaConfiguration"], "OPTIONAL");
    assert_eq!(
        alpha["mfa"]["SoftwareTokenMfaConfiguration"]["Enabled"],
        true
    );
    assert!(
        alpha["certificate_subject"]
            .as_str()
            .unwrap()
            .contains("CN=us-east-1_Alpha111")
    );
    assert_eq!(alpha["certificate_days"], 3650);

    let beta = &seen["pools"][1];
    assert_eq!(beta["described"]["MfaConfiguration"], "OFF");
    assert_eq!(beta["described"]["EstimatedNumberOfUsers"], 0);
    assert_eq!(
        beta["described"]["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"],
        true
    );
    assert_eq!(
        beta["mfa"]["SoftwareTokenMfaConfiguration"]["Enabled"],
        false
    );

    // Cognito's validation messages, and its empty description of an unknown domain.
    let e = &seen["errors"];
    assert_eq!(e["no_max_results"][0], "InvalidParameterException");
    assert!(
        e["no_max_results"][1]
            .as_str()
            .unwrap()
            .contains("at 'maxResults' failed to satisfy constraint: Member must not be null")
    );
    assert!(
        e["max_results_61"][1]
            .as_str()
            .unwrap()
            .contains("less than or equal to 60")
    );
    assert!(
        e["max_results_0"][1]
            .as_str()
            .unwrap()
            .contains("greater than or equal to 1")
    );
    assert_eq!(e["other_key_pool"][0], "ResourceNotFoundException");
    assert_eq!(e["no_domain"][0], "InvalidParameterException");
    assert_eq!(seen["unknown_domain"], serde_json::json!({}));
    app.shutdown().await;
}
