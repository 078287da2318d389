//! The six ALB condition types end to end, through a real listener: what the client got and,
//! for forwarded requests, what the backend saw.

use crate::kit;

use kit::*;
use serde_json::Value;

const RULES: &str = r#"
[[listeners.rules]]
priority = 100
conditions = [{ field = "path-pattern", values = ["/cond/*"] },
              { field = "http-header", http_header_name = "X-Env", values = ["prod-*", "canary"] }]
actions = [{ type = "fixed-response", status_code = 200, content_type = "text/plain", message_body = "header" }]

[[listeners.rules]]
priority = 101
conditions = [{ field = "path-pattern", values = ["/cond/*"] }, { field = "http-request-method", values = ["PUT", "DELETE"] }]
actions = [{ type = "forward", target_group = "echo" }]

[[listeners.rules]]
priority = 102
conditions = [{ field = "path-pattern", values = ["/cond/*"] },
              { field = "query-string", query = [{ key = "version", value = "v2*" }, { value = "\\*preview\\*" }] }]
actions = [{ type = "forward", target_group = "echo" }]

[[listeners.rules]]
priority = 103
conditions = [{ field = "path-pattern", values = ["/cond/*"] }, { field = "source-ip", values = ["10.0.0.0/8", "2001:db8::/32"] }]
actions = [{ type = "fixed-response", status_code = 200, content_type = "text/plain", message_body = "internal" }]

[[listeners.rules]]
priority = 104
conditions = [{ field = "path-pattern", values = ["/cond/*"] }, { field = "source-ip", values = ["127.0.0.0/8"] },
              { field = "host-header", values = ["*.example.com"] }]
actions = [{ type = "fixed-response", status_code = 200, content_type = "text/plain", message_body = "loopback+host" }]
"#;

#[tokio::test]
async fn every_condition_type_routes_as_alb() {
    let kit = Kit::builder().toml(RULES).start().await;
    let c = plain();
    let text = |r: reqwest::Response| async move { (r.status().as_u16(), r.text().await.unwrap()) };
    // GET `path` with `headers` (a name may come twice).
    let get = |path: &str, headers: &[(&str, &str)]| {
        let mut req = c.get(kit.url(path));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        async move { req.send().await.unwrap() }
    };

    // http-header: case-insensitive name and value, any occurrence.
    let r = get("/cond/a", &[("x-env", "PROD-eu")]).await;
    assert_eq!(text(r).await, (200, "header".into()));
    let r = get("/cond/a", &[("x-env", "dev"), ("x-env", "canary")]).await;
    assert_eq!(
        text(r).await,
        (200, "header".into()),
        "the second occurrence matches"
    );
    let r = get("/cond/a", &[("x-env", "dev")]).await;
    assert_eq!(r.status(), 404, "no rule: the listener's default");

    // http-request-method: exact; the backend sees the method and body length.
    let r = c.put(kit.url("/cond/m")).body("abc").send().await.unwrap();
    let echo: Value = r.json().await.unwrap();
    assert_eq!(echo["method"], "PUT");
    assert_eq!(echo["headers"]["content-length"], "3");
    assert_eq!(
        c.post(kit.url("/cond/m")).send().await.unwrap().status(),
        404
    );

    // query-string: key and value case-insensitive with wildcards; `\*` is a literal star; the
    // backend sees the query unchanged.
    let r = get("/cond/q?Version=V2.1&x=1", &[]).await;
    let echo: Value = r.json().await.unwrap();
    assert_eq!(echo["uri"], "/cond/q?Version=V2.1&x=1");
    let r = get("/cond/q?tag=%2Apreview%2A", &[]).await;
    assert_eq!(
        r.status(),
        200,
        "a percent-encoded literal star matches the escaped pattern"
    );
    let r = get("/cond/q?tag=xpreviewx", &[]).await;
    assert_eq!(r.status(), 404, "`\\*` is not a wildcard");
    let r = get("/cond/q?version=v1", &[]).await;
    assert_eq!(r.status(), 404);

    // source-ip: the TCP peer (127.0.0.1), never X-Forwarded-For.
    let r = get(
        "/cond/s",
        &[("x-forwarded-for", "10.9.9.9"), ("host", "api.example.com")],
    )
    .await;
    assert_eq!(text(r).await, (200, "loopback+host".into()));
    let r = get("/cond/s", &[("host", "example.org")]).await;
    assert_eq!(r.status(), 404, "host-header also had to match");
    kit.log_line(&["/cond/s", "fixed-response", " 104 "]).await;
    kit.app.shutdown().await;
}

/// What the echo backend got for `/open/h` sent with a client's own forwarding headers, a Host
/// and a header name with an underscore.
async fn forwarded_echo(c: &reqwest::Client, kit: &Kit) -> serde_json::Value {
    c.get(kit.url("/open/h"))
        .header("x-forwarded-for", "203.0.113.7")
        .header("host", "shop.example")
        .header("x_under", "1")
        .fetch_json()
        .await
}

#[tokio::test]
async fn forwarded_headers_follow_the_routing_attributes() {
    // Defaults: append the client address, rewrite Host with the listener's port.
    let kit = Kit::builder().start().await;
    let c = plain();
    let echo = forwarded_echo(&c, &kit).await;
    let h = &echo["headers"];
    assert_eq!(h["x-forwarded-for"], "203.0.113.7, 127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "https");
    assert_eq!(h["x-forwarded-port"], kit.lb_port.to_string());
    assert_eq!(h["host"], format!("shop.example:{}", kit.lb_port));
    assert_eq!(h["x_under"], "1", "kept unless drop_invalid_header_fields");
    kit.app.shutdown().await;

    // remove + preserve_host_header + drop_invalid_header_fields.
    let kit = Kit::builder().lb("xff_header_processing_mode = \"remove\"\npreserve_host_header = true\ndrop_invalid_header_fields = true").start()
    .await;
    let echo = forwarded_echo(&c, &kit).await;
    let h = &echo["headers"];
    assert!(h.get("x-forwarded-for").is_none(), "{h}");
    assert_eq!(h["host"], "shop.example");
    assert!(h.get("x_under").is_none());
    kit.app.shutdown().await;

    // Client ports.
    let kit = Kit::builder().lb("xff_client_port = true").start().await;
    let echo: serde_json::Value = c.get(kit.url("/open/h")).fetch_json().await;
    let xff = echo["headers"]["x-forwarded-for"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        xff.starts_with("127.0.0.1:") && xff[10..].parse::<u16>().is_ok(),
        "{xff}"
    );
    kit.app.shutdown().await;
}
