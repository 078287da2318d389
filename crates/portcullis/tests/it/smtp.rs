//! Codes by email: a pool with `messages.smtp` sends the sign-up code through a real SMTP server
//! (Python aiosmtpd, started by the test) with AUTH PLAIN, and the code confirms the account.

use crate::kit;

use kit::*;
use serde_json::{Value, json};
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::Duration;

#[tokio::test]
async fn sign_up_code_arrives_by_smtp() {
    let dir = tempfile::tempdir().unwrap();
    let mail = dir.path().join("mail.jsonl");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../e2e/smtp_sink.py");
    let mut sink = Command::new("python3")
        .args([script, mail.to_str().unwrap(), "mailer", "mail-secret-1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 with aiosmtpd");
    let mut first = String::new();
    std::io::BufReader::new(sink.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let port: u16 = first.trim().parse().expect("the sink prints its port");

    let kit = Kit::builder().pool(&format!(
            r#"messages = {{ smtp = {{ host = "127.0.0.1", port = {port}, security = "none", from = "no-reply@example.com", username = "mailer", password = "mail-secret-1" }} }}"#
        )).start()
    .await;
    let api = PoolApi::of(&kit);
    let (_, r) = api
        .call(
            "SignUp",
            json!({"ClientId": "api-cli", "Username": "mia", "Password": "Mia-password-1!",
               "UserAttributes": [{"Name": "email", "Value": "mia@example.com"}]}),
        )
        .await;
    assert_eq!(r["CodeDeliveryDetails"]["DeliveryMedium"], "EMAIL", "{r}");

    // The message arrives (sent in the background), authenticated, to the user's address.
    let mut msg = Value::Null;
    for _ in 0..100 {
        if let Ok(text) = std::fs::read_to_string(&mail)
            && let Some(line) = text.lines().next()
        {
            msg = serde_json::from_str(line).unwrap();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(msg["to"], json!(["mia@example.com"]), "{msg}");
    assert_eq!(msg["from"], "no-reply@example.com");
    assert_eq!(msg["authenticated"], true);
    let data = msg["data"].as_str().unwrap();
    assert!(data.contains("Subject: Your verification code"), "{data}");
    let code: String = data.split("is ").nth(1).unwrap().chars().take(6).collect();
    assert!(code.chars().all(|c| c.is_ascii_digit()), "{data}");
    assert!(
        !kit.state_dir.join("outbox").exists(),
        "with SMTP set, nothing is written to the outbox"
    );

    let (status, _) = api
        .call(
            "ConfirmSignUp",
            json!({"ClientId": "api-cli", "Username": "mia", "ConfirmationCode": code}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(kit.pool().user("mia").await.unwrap().status, "CONFIRMED");

    drop(sink.stdin.take());
    let _ = sink.wait();
    kit.app.shutdown().await;
}
