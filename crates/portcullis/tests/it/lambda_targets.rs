//! Lambda target groups: requests become ALB's event JSON (single- and multi-value), functions are
//! called through the Lambda invoke API, and their answers (text, base64, multi-value headers) map
//! back; failures get ALB's statuses and error reasons. The function runs behind
//! `e2e/fake_lambda_rie.py`, a FAKE of the Lambda Runtime Interface Emulator (the real one is a Go
//! binary that this machine's registries do not carry).

use crate::kit;

use kit::*;
use serde_json::Value;

#[tokio::test]
async fn lambda_functions_behind_rules() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let (_rie, port) = python_peer("fake_lambda_rie.py", &["serve", events.to_str().unwrap()]);
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let mut rules = String::new();
    for (i, (path, group, lambda)) in [
        (
            "/fn/*",
            "fn",
            format!("endpoint = \"http://127.0.0.1:{port}\""),
        ),
        (
            "/fnm/*",
            "fn-multi",
            format!("endpoint = \"http://127.0.0.1:{port}/\", multi_value_headers = true"),
        ),
        (
            "/fns/*",
            "fn-short",
            format!("endpoint = \"http://127.0.0.1:{port}\", timeout_seconds = 1"),
        ),
        (
            "/fnx/*",
            "fn-missing",
            format!("endpoint = \"http://127.0.0.1:{port}\", function = \"nope\""),
        ),
        (
            "/fnd/*",
            "fn-down",
            format!("endpoint = \"http://127.0.0.1:{dead_port}\""),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        rules += &format!(
            "[[listeners.rules]]\npriority = {}\nconditions = [{{ field = \"path-pattern\", values = [\"{path}\"] }}]\nactions = [{{ type = \"forward\", target_group = \"{group}\" }}]\n\n",
            40 + i
        );
        rules += &format!(
            "[[target_groups]]\nname = \"{group}\"\ntarget_type = \"lambda\"\nlambda = {{ {lambda} }}\n\n"
        );
    }
    let kit = Kit::builder().toml(&rules).start().await;
    let c = plain();

    // The event: ALB's fields, the raw query, lower-case headers with the balancer's own, and
    // the last value of a repeated header or key.
    let r = c
        .get(kit.url("/fn/echo?x=1&x=2&y=caf%C3%A9"))
        .header("cookie", "a=1")
        .header("x-custom", "one")
        .header("x-custom", "two")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-handler"], "echo");
    assert_eq!(r.headers()["content-type"], "application/json");
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["httpMethod"], "GET");
    assert_eq!(e["path"], "/fn/echo");
    assert_eq!(
        e["queryStringParameters"],
        serde_json::json!({"x": "2", "y": "caf%C3%A9"})
    );
    assert_eq!(e["headers"]["x-custom"], "two", "{e}");
    assert_eq!(e["headers"]["cookie"], "a=1");
    for h in [
        "x-forwarded-for",
        "x-forwarded-port",
        "x-forwarded-proto",
        "x-amzn-trace-id",
        "host",
    ] {
        assert!(e["headers"][h].is_string(), "{h}: {e}");
    }
    assert_eq!(e["headers"]["x-forwarded-proto"], "https");
    assert_eq!(
        (e["body"].as_str(), e["isBase64Encoded"].as_bool()),
        (Some(""), Some(false))
    );
    let arn = e["requestContext"]["elb"]["targetGroupArn"]
        .as_str()
        .unwrap();
    assert!(
        arn.starts_with("arn:aws:elasticloadbalancing:") && arn.contains(":targetgroup/fn/"),
        "{arn}"
    );
    kit.log_line(&["/fn/echo", " 200 200 ", "\"forward\""])
        .await;

    // Bodies: JSON passes as text, other types as base64.
    let e: Value = c
        .post(kit.url("/fn/echo"))
        .header("content-type", "application/json")
        .body(r#"{"k":"v"}"#)
        .fetch_json()
        .await;
    assert_eq!(
        (e["body"].as_str(), e["isBase64Encoded"].as_bool()),
        (Some(r#"{"k":"v"}"#), Some(false))
    );
    let e: Value = c
        .post(kit.url("/fn/echo"))
        .header("content-type", "application/octet-stream")
        .body(vec![0u8, 1, 2, 255])
        .fetch_json()
        .await;
    assert_eq!(
        (e["body"].as_str(), e["isBase64Encoded"].as_bool()),
        (Some("AAEC/w=="), Some(true))
    );

    // Multi-value mode: arrays of every value.
    let e: Value = c
        .get(kit.url("/fnm/echo?x=1&x=2"))
        .header("x-custom", "one")
        .header("x-custom", "two")
        .fetch_json()
        .await;
    assert_eq!(
        e["multiValueQueryStringParameters"]["x"],
        serde_json::json!(["1", "2"]),
        "{e}"
    );
    assert_eq!(
        e["multiValueHeaders"]["x-custom"],
        serde_json::json!(["one", "two"]),
        "{e}"
    );
    assert!(
        e.get("headers").is_none() && e.get("queryStringParameters").is_none(),
        "{e}"
    );
    let r = c.get(kit.url("/fnm/multi")).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let cookies: Vec<_> = r.headers().get_all("set-cookie").iter().collect();
    assert_eq!(cookies, ["a=1; Path=/", "b=2; Path=/"]);
    assert_eq!(r.text().await.unwrap(), "made");

    // A base64 answer is decoded.
    let r = c.get(kit.url("/fn/binary")).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(
        r.bytes().await.unwrap().to_vec(),
        (0u8..=255).collect::<Vec<_>>()
    );

    // Failures: ALB's status codes and error reasons.
    for (path, status, reason) in [
        ("/fn/raise", 502, "LambdaUnhandled"),
        ("/fn/raise-aws", 502, "LambdaUnhandled"),
        ("/fn/timeout", 502, "LambdaUnhandled"),
        ("/fn/invalid", 502, "LambdaInvalidResponse"),
        ("/fn/huge", 502, "LambdaResponseTooLarge"),
        ("/fns/sleep", 502, "LambdaUnhandled"),
        ("/fnx/echo", 502, "LambdaResourceNotFound"),
        ("/fnd/echo", 502, "LambdaConnectionError"),
    ] {
        let r = c.get(kit.url(path)).send().await.unwrap();
        assert_eq!(r.status(), status, "{path}");
        kit.log_line(&[path, &format!(" {status} "), reason]).await;
    }
    let r = c
        .post(kit.url("/fn/echo"))
        .header("content-type", "text/plain")
        .body(vec![b'x'; 1024 * 1024 + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    kit.log_line(&["POST", "/fn/echo", " 413 ", "LambdaRequestTooLarge"])
        .await;

    // ALB's Lambda metrics: the function's failures (three raises or timeouts, invalid, huge,
    // our timeout, unknown function, 413) against the endpoint that could not be reached.
    let metrics = kit.metrics().await;
    assert!(
        metrics.contains("portcullis_lambda_user_errors_total 8"),
        "{metrics}"
    );
    assert!(
        metrics.contains("portcullis_lambda_internal_errors_total 1"),
        "{metrics}"
    );
    // The function really ran for the failing call.
    let seen = std::fs::read_to_string(&events).unwrap();
    assert!(seen.lines().any(|l| l.contains("\"/fn/raise\"")), "{seen}");
    kit.app.shutdown().await;
}

#[tokio::test]
async fn websocket_upgrades_to_a_lambda_get_400() {
    let rules = "[[listeners.rules]]\npriority = 40\nconditions = [{ field = \"path-pattern\", values = [\"/fn/*\"] }]\nactions = [{ type = \"forward\", target_group = \"fn\" }]\n\n[[target_groups]]\nname = \"fn\"\ntarget_type = \"lambda\"\nlambda = { endpoint = \"http://127.0.0.1:9\" }\n";
    let kit = Kit::builder().toml(rules).start().await;
    let r = reqwest::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .http1_only()
        .build()
        .unwrap()
        .get(kit.url("/fn/ws"))
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    kit.log_line(&["/fn/ws", " 400 ", "LambdaWebsocketNotSupported"])
        .await;
    kit.app.shutdown().await;
}
