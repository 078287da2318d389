//! Findings of an outside review of the balancer: each test fails on the code before its fix.

use crate::kit::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends one raw request to the plain listener and returns the whole answer (10 s at most).
async fn raw(port: u16, bytes: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(bytes.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// A kit whose plain listener answers 403 `blocked` to requests meeting `condition` (one TOML
/// rule condition) and forwards the rest to the echo backend.
async fn kit_blocking(condition: &str) -> Kit {
    let kit = Kit::builder().start().await;
    let forward = r#"default_actions = [{ type = "forward", target_group = "echo" }]"#;
    kit.reload_replacing(
        forward,
        &format!(
            r#"{forward}

[[listeners.rules]]
priority = 5
conditions = [{condition}]
actions = [{{ type = "fixed-response", status_code = 403, content_type = "text/plain", message_body = "blocked" }}]
"#
        ),
    )
    .await;
    kit
}

/// A path-pattern rule protects `/admin` on the plain listener (a fixed 403 in front of a target
/// that serves it, as "block /admin from the internet" is often written); everything else is
/// forwarded. Before the fix, rules matched the raw path while the target was sent the raw path
/// too: `/x/../admin/secret`, `/%61dmin/secret`, `/x/%2e%2e/admin/secret` and `//admin/secret`
/// skipped the rule, and any target that normalises its path (most servers and frameworks do)
/// served `/admin/secret`. Now the balancer matches rules against the normalised path (dot
/// segments removed, unreserved characters decoded, slashes merged) and sends the target that
/// same path; a path that would still climb through an encoded separator is refused.
#[tokio::test]
async fn path_pattern_rules_cannot_be_bypassed_by_path_normalisation() {
    let kit = kit_blocking(r#"{ field = "path-pattern", values = ["/admin", "/admin/*"] }"#).await;
    let get =
        |path: &str| format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    // The rule itself works.
    let plain = raw(kit.http_port, &get("/admin/secret")).await;
    assert!(plain.starts_with("HTTP/1.1 403"), "{plain}");
    for path in [
        "/x/../admin/secret",
        "/x/./../admin/secret",
        "/%61dmin/secret",
        "/x/%2e%2e/admin/secret",
        "/x/%2E./admin/secret",
        "//admin/secret",
        "/x//../admin/secret",
        "/admin/../admin/secret",
        "/./admin",
        "/x/..%2Fadmin/secret",
        "/x/..%5cadmin/secret",
        "/x/..\\admin/secret",
    ] {
        let answer = raw(kit.http_port, &get(path)).await;
        let status = answer.get(9..12).unwrap_or("");
        assert!(
            status == "403" || status == "400",
            "{path} reached the target past the /admin rule: {answer}"
        );
    }
    // Ordinary paths still reach the target, with the path the rules saw.
    let ok = raw(kit.http_port, &get("/x/./y/../z%7E?q=a/../b")).await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(ok.contains(r#""uri":"/x/z~?q=a/../b""#), "{ok}");
    let encoded = raw(kit.http_port, &get("/repo/a%2Fb/raw")).await;
    assert!(encoded.starts_with("HTTP/1.1 200"), "{encoded}");
    assert!(encoded.contains(r#""uri":"/repo/a%2Fb/raw""#), "{encoded}");
}

/// A `host-header` rule guards `admin.example` on the plain listener; every other host is
/// forwarded. Before the fix, a request with two `Host` fields was routed by the first while the
/// target was sent both, and servers that read the last one (or a joined value) served the
/// admin host; a `Host` that is no valid authority (`admin.example/x`, `a@admin.example`) matched
/// no host rule at all yet still reached the target. RFC 9112 §3.2: a request with more than one
/// `Host`, or an invalid one, is answered 400. And `admin.example.` (trailing dot, the same host
/// to DNS and to nginx or Apache behind) matched no rule for `admin.example`; rules now read the
/// host without it.
#[tokio::test]
async fn host_rules_cannot_be_bypassed_by_duplicate_or_invalid_host_fields() {
    let kit = kit_blocking(r#"{ field = "host-header", values = ["admin.example"] }"#).await;
    let blocked = raw(
        kit.http_port,
        "GET / HTTP/1.1\r\nHost: admin.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(blocked.starts_with("HTTP/1.1 403"), "{blocked}");
    for hosts in [
        "Host: public.example:8080\r\nHost: admin.example",
        "Host: public.example\r\nHost: admin.example",
        "Host: admin.example/x",
        "Host: public.example@admin.example",
        "Host: public.example, admin.example",
        "Host: admin.example.",
        "Host: ADMIN.example.:8080",
    ] {
        let answer = raw(
            kit.http_port,
            &format!("GET / HTTP/1.1\r\n{hosts}\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert!(
            answer.starts_with("HTTP/1.1 400") || answer.starts_with("HTTP/1.1 403"),
            "{hosts:?} reached the target: {answer}"
        );
    }
    let ok = raw(
        kit.http_port,
        "GET / HTTP/1.1\r\nHost: public.example:8080\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
}

/// The session rewritten by a refresh during a same-origin POST (a browser sends `Origin` on
/// those too) kept `SameSite=Lax`. Before the fix any request with an `Origin` header counted as
/// CORS, so an ordinary form post on the site that happened to refresh the session rewrote the
/// cookie as `SameSite=None`, and from then on cross-site pages could post to the targets with
/// the user's session (CSRF). Only a cross-origin request gets `SameSite=None`, as ALB's CORS rule.
#[tokio::test]
async fn a_same_origin_post_does_not_downgrade_the_session_to_samesite_none() {
    let kit = Kit::builder().start().await;
    let (_, r) = login_to_callback(&kit, "/tasks").await;
    let cookie = session_cookie_of(&r);
    let own = format!("https://localhost:{}", kit.lb_port);
    for (origin, site, cross) in [
        (own.as_str(), Some("same-origin"), false),
        (own.as_str(), None, false),
        ("https://elsewhere.example", Some("cross-site"), true),
    ] {
        let (stale, _) = kit.with_access_expired(&cookie);
        let mut req = plain()
            .post(kit.url("/tasks/save"))
            .header("cookie", stale)
            .header("origin", origin);
        if let Some(site) = site {
            req = req.header("sec-fetch-site", site);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 200, "refreshed");
        let set: Vec<String> = set_cookies(&r)
            .into_iter()
            .filter(|c| c.starts_with("AWSELBAuthSessionCookie-0="))
            .collect();
        assert_eq!(set.len(), 1, "{set:?}");
        assert_eq!(
            set[0].contains("SameSite=None"),
            cross,
            "origin {origin}, sec-fetch-site {site:?}: {set:?}"
        );
    }
    kit.app.shutdown().await;
}

/// A `host-header` rule guards `admin.example`; a request for another host carrying
/// `X-Forwarded-Host: admin.example` (or `Forwarded: host=admin.example`) was forwarded with it,
/// and frameworks behind a proxy read those in place of `Host`, so the target served the admin
/// host past the rule (and built absolute links, such as password-reset mails, for the attacker's
/// host). The balancer does not set them, so it no longer passes a client's.
#[tokio::test]
async fn forwarded_host_headers_from_clients_do_not_reach_targets() {
    let kit = Kit::builder().start().await;
    for extra in [
        "X-Forwarded-Host: admin.example",
        "Forwarded: for=10.0.0.1;host=admin.example;proto=https",
    ] {
        let answer = raw(
            kit.http_port,
            &format!(
                "GET / HTTP/1.1\r\nHost: public.example\r\n{extra}\r\nConnection: close\r\n\r\n"
            ),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        let lower = answer.to_ascii_lowercase();
        assert!(
            !lower.contains("admin.example"),
            "{extra} reached the target: {answer}"
        );
    }
}

/// A request body with trailers, for HTTP/2 clients.
struct WithTrailers {
    data: Option<bytes::Bytes>,
    trailers: Option<http::HeaderMap>,
}

impl hyper::body::Body for WithTrailers {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<bytes::Bytes>, Self::Error>>> {
        if let Some(d) = self.data.take() {
            return std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(d))));
        }
        std::task::Poll::Ready(
            self.trailers
                .take()
                .map(|t| Ok(hyper::body::Frame::trailers(t))),
        )
    }
}

/// Identity headers sent as request trailers by an HTTP/2 client reached an HTTP/2 target group
/// (`x-amzn-oidc-identity=admin` arrived at the target): the balancer stripped owned names from
/// the header block only and passed the body, trailers included, as it came. Now the trailers
/// lose the same names the header block does.
#[tokio::test]
async fn owned_headers_in_request_trailers_do_not_reach_targets() {
    use http_body_util::BodyExt;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((s, _)) = tcp.accept().await {
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    |req: http::Request<hyper::body::Incoming>| async move {
                        let trailers = req
                            .into_body()
                            .collect()
                            .await
                            .ok()
                            .and_then(|c| c.trailers().cloned())
                            .unwrap_or_default();
                        let seen: Vec<String> = trailers
                            .iter()
                            .map(|(k, v)| format!("{k}={}", v.to_str().unwrap_or("?")))
                            .collect();
                        Ok::<_, std::convert::Infallible>(http::Response::new(
                            http_body_util::Full::new(bytes::Bytes::from(seen.join(";"))),
                        ))
                    },
                );
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    let kit = Kit::builder()
        .toml(&format!(
            r#"
[[listeners.rules]]
priority = 60
conditions = [{{ field = "path-pattern", values = ["/h2t/*"] }}]
actions = [{{ type = "forward", target_group = "h2t" }}]

[[target_groups]]
name = "h2t"
protocol_version = "HTTP2"
health_check = {{ enabled = false }}
targets = [{{ id = "127.0.0.1", port = {port} }}]
"#
        ))
        .start()
        .await;
    let mut trailers = http::HeaderMap::new();
    trailers.insert("x-amzn-oidc-identity", "admin".parse().unwrap());
    trailers.insert("x-amzn-oidc-data", "forged".parse().unwrap());
    trailers.insert("x-checksum", "1".parse().unwrap());
    let r = h2_client()
        .post(kit.url("/h2t/x"))
        .body(reqwest::Body::wrap(WithTrailers {
            data: Some(bytes::Bytes::from_static(b"hello")),
            trailers: Some(trailers),
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen = r.text().await.unwrap();
    assert!(
        !seen.contains("x-amzn-oidc"),
        "the target read identity trailers the client forged: {seen}"
    );
    kit.app.shutdown().await;
}
