//! The headers ALB adds, removes and rewrites on the way to a target.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use http::{HeaderMap, HeaderName, HeaderValue};
use std::net::SocketAddr;

/// ALB refuses more addresses than this in `X-Forwarded-For` (463).
pub const MAX_XFF_ADDRESSES: usize = 30;
/// `x-amzn-trace-id`.
pub const TRACE_ID: HeaderName = HeaderName::from_static("x-amzn-trace-id");
const XFF: HeaderName = HeaderName::from_static("x-forwarded-for");
const XFP: HeaderName = HeaderName::from_static("x-forwarded-proto");
const XFPORT: HeaderName = HeaderName::from_static("x-forwarded-port");

const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authenticate",
];

/// Removes hop-by-hop headers, including those named in `Connection`.
pub fn strip_hop_by_hop(h: &mut HeaderMap) {
    let named: Vec<HeaderName> = h
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named {
        h.remove(n);
    }
    for n in HOP_BY_HOP {
        h.remove(n);
    }
}

/// The protocol an HTTP/1.1 request asks to switch to (`Connection: upgrade` with `Upgrade`).
pub fn upgrade_protocol(h: &HeaderMap, version: http::Version) -> Option<http::HeaderValue> {
    if version != http::Version::HTTP_11 {
        return None;
    }
    let asks = h
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    if asks {
        h.get(http::header::UPGRADE).cloned()
    } else {
        None
    }
}

/// Removes every `x-amzn-oidc-*` and `x-portcullis-*` header a client sent, so only the load
/// balancer sets them.
pub fn strip_oidc_headers(h: &mut HeaderMap) {
    let ours = |n: &HeaderName| {
        n.as_str().starts_with("x-amzn-oidc-") || n.as_str().starts_with("x-portcullis-")
    };
    if !h.keys().any(ours) {
        return;
    }
    let names: Vec<HeaderName> = h.keys().filter(|n| ours(n)).cloned().collect();
    for n in names {
        h.remove(n);
    }
}

/// Joins every `Cookie` header into one (HTTP/2 clients send one per cookie; HTTP/1.1 targets
/// expect one, RFC 9113 §8.2.3), leaving out the balancer's own cookies: the shards
/// `<base>-N` of each name in `strip` and, when `strip` is not empty, `AWSALBAuthNonce`.
pub fn rewrite_cookies(h: &mut HeaderMap, strip: &[String]) {
    let count = h.get_all(http::header::COOKIE).iter().count();
    if count == 0 || (count == 1 && strip.is_empty()) {
        return;
    }
    let ours = |name: &str| {
        name == "AWSALBAuthNonce"
            || strip.iter().any(|base| {
                name.strip_prefix(base.as_str())
                    .and_then(|r| r.strip_prefix('-'))
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            })
    };
    let kept: Vec<&str> = h
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .filter(|p| strip.is_empty() || !ours(p.split('=').next().unwrap_or("")))
        .collect();
    let joined = kept.join("; ");
    h.remove(http::header::COOKIE);
    if !joined.is_empty()
        && let Ok(v) = HeaderValue::from_str(&joined)
    {
        h.insert(http::header::COOKIE, v);
    }
}

/// How many addresses the client's `X-Forwarded-For` headers list.
pub fn xff_count(h: &HeaderMap) -> usize {
    h.get_all(&XFF)
        .iter()
        .map(|v| {
            v.as_bytes()
                .split(|b| *b == b',')
                .filter(|s| !s.iter().all(u8::is_ascii_whitespace))
                .count()
        })
        .sum()
}

/// Appends the client to `X-Forwarded-For` and sets `-Proto` and `-Port` (ALB's `append` mode).
pub fn set_forwarded(h: &mut HeaderMap, client: SocketAddr, https: bool, port: u16) {
    let ip = client.ip().to_canonical().to_string();
    let prior: Vec<String> = h
        .get_all(&XFF)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
        .collect();
    let value = if prior.is_empty() {
        ip
    } else {
        format!("{}, {ip}", prior.join(", "))
    };
    if let Ok(v) = HeaderValue::from_str(&value) {
        h.insert(XFF, v);
    }
    h.insert(
        XFP,
        HeaderValue::from_static(if https { "https" } else { "http" }),
    );
    h.insert(XFPORT, HeaderValue::from(port));
}

/// A new trace id segment `1-<8 hex epoch>-<24 hex random>`.
pub fn new_trace_segment(now: u64) -> String {
    let mut r = [0u8; 12];
    SystemRandom::new().fill(&mut r).expect("system random");
    format!("1-{:08x}-{}", now as u32, hex::encode(r))
}

/// Sets `X-Amzn-Trace-Id`: a new `Root` when absent; with a `Root`, keep it and set `Self`.
/// Returns the value, for the access log.
pub fn set_trace_id(h: &mut HeaderMap, now: u64) -> String {
    let existing = h
        .get(&TRACE_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 1024);
    let value = match existing {
        Some(v) if v.split(';').any(|kv| kv.trim().starts_with("Root=")) => {
            let others: Vec<&str> = v
                .split(';')
                .map(str::trim)
                .filter(|kv| !kv.starts_with("Self=") && !kv.is_empty())
                .collect();
            format!("Self={};{}", new_trace_segment(now), others.join(";"))
        }
        _ => format!("Root={}", new_trace_segment(now)),
    };
    if let Ok(v) = HeaderValue::from_str(&value) {
        h.insert(TRACE_ID, v);
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_client_oidc_and_hop_by_hop() {
        let mut h = HeaderMap::new();
        h.insert("x-amzn-oidc-data", HeaderValue::from_static("forged"));
        h.insert("x-amzn-oidc-identity", HeaderValue::from_static("admin"));
        h.insert("x-amzn-oidc-whatever", HeaderValue::from_static("x"));
        h.insert("x-portcullis-jwt", HeaderValue::from_static("forged"));
        h.insert("connection", HeaderValue::from_static("close, x-secret"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("accept", HeaderValue::from_static("*/*"));
        strip_oidc_headers(&mut h);
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("accept"));
    }

    #[test]
    fn cookies_are_joined_and_ours_removed() {
        let mut h = HeaderMap::new();
        h.append("cookie", HeaderValue::from_static("app=1"));
        h.append(
            "cookie",
            HeaderValue::from_static(
                "AWSELBAuthSessionCookie-0=abc; AWSELBAuthSessionCookie-1=def",
            ),
        );
        h.append(
            "cookie",
            HeaderValue::from_static(
                "AWSALBAuthNonce=n; AWSELBAuthSessionCookieX=keep; theme=dark",
            ),
        );
        rewrite_cookies(&mut h, &["AWSELBAuthSessionCookie".into()]);
        assert_eq!(h.get_all("cookie").iter().count(), 1);
        assert_eq!(
            h["cookie"],
            "app=1; AWSELBAuthSessionCookieX=keep; theme=dark"
        );
        let mut h = HeaderMap::new();
        h.append("cookie", HeaderValue::from_static("a=1"));
        h.append("cookie", HeaderValue::from_static("AWSALBAuthNonce=n"));
        rewrite_cookies(&mut h, &[]);
        assert_eq!(
            h["cookie"], "a=1; AWSALBAuthNonce=n",
            "only joined when nothing is stripped"
        );
        let mut h = HeaderMap::new();
        h.append("cookie", HeaderValue::from_static("S-0=x"));
        rewrite_cookies(&mut h, &["S".into()]);
        assert!(h.get("cookie").is_none(), "no empty Cookie header");
    }

    #[test]
    fn forwarded_headers_append() {
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", HeaderValue::from_static("203.0.113.1"));
        h.append(
            "x-forwarded-for",
            HeaderValue::from_static("203.0.113.2, 203.0.113.3"),
        );
        assert_eq!(xff_count(&h), 3);
        set_forwarded(
            &mut h,
            "[::ffff:10.0.0.9]:5555".parse().unwrap(),
            true,
            8443,
        );
        assert_eq!(
            h["x-forwarded-for"],
            "203.0.113.1, 203.0.113.2, 203.0.113.3, 10.0.0.9"
        );
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-port"], "8443");
    }

    #[test]
    fn trace_ids() {
        let mut h = HeaderMap::new();
        let v = set_trace_id(&mut h, 0x5f00_0000);
        assert!(
            v.starts_with("Root=1-5f000000-") && v.len() == "Root=1-5f000000-".len() + 24,
            "{v}"
        );
        let mut h = HeaderMap::new();
        h.insert(
            TRACE_ID,
            HeaderValue::from_static("Root=1-67891233-abcdef012345678912345678;Self=1-0-0;Foo=bar"),
        );
        let v = set_trace_id(&mut h, 1);
        assert!(v.starts_with("Self=1-00000001-"), "{v}");
        assert!(
            v.ends_with(";Root=1-67891233-abcdef012345678912345678;Foo=bar"),
            "{v}"
        );
    }
}
