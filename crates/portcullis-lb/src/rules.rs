//! Listener rules compiled for matching: conditions checked in order, rules by priority, the
//! default rule last.

use crate::wildcard;
use http::request::Parts;

/// A compiled condition.
#[derive(Debug, Clone)]
pub enum Condition {
    /// `host-header`: case-insensitive, without the port.
    Host(Vec<String>),
    /// `path-pattern`: case-sensitive, path only.
    Path(Vec<String>),
    /// `http-header`: the named header (any occurrence), values case-insensitive.
    Header(http::HeaderName, Vec<String>),
    /// `http-request-method`: exact, case-sensitive.
    Method(Vec<String>),
    /// `query-string`: any pair matching one `(key?, value)`; case-insensitive, `\` escapes.
    Query(Vec<(Option<wildcard::Pattern>, wildcard::Pattern)>),
    /// `source-ip`: the TCP peer (never `X-Forwarded-For`).
    SourceIp(Vec<ipnet::IpNet>),
}

impl Condition {
    /// Compiles a config condition (validated already).
    pub fn compile(c: &portcullis_config::Condition) -> Option<Condition> {
        Some(match c.field.as_str() {
            "host-header" => Condition::Host(c.values.clone()),
            "path-pattern" => Condition::Path(c.values.clone()),
            "http-header" => Condition::Header(
                http::HeaderName::from_bytes(c.http_header_name.as_deref()?.as_bytes()).ok()?,
                c.values.clone(),
            ),
            "http-request-method" => Condition::Method(c.values.clone()),
            "query-string" => Condition::Query(
                c.query_pairs()
                    .iter()
                    .map(|q| {
                        (
                            q.key.as_deref().map(wildcard::Pattern::escaped),
                            wildcard::Pattern::escaped(&q.value),
                        )
                    })
                    .collect(),
            ),
            "source-ip" => {
                Condition::SourceIp(c.values.iter().filter_map(|v| v.parse().ok()).collect())
            }
            _ => return None,
        })
    }

    /// Whether any value matches.
    pub fn matches(&self, req: &RequestView<'_>) -> bool {
        match self {
            Condition::Host(vs) => {
                let Some(host) = req.host else { return false };
                vs.iter()
                    .any(|p| wildcard::matches(p.as_bytes(), host.as_bytes(), true))
            }
            Condition::Path(vs) => vs
                .iter()
                .any(|p| wildcard::matches(p.as_bytes(), req.path.as_bytes(), false)),
            Condition::Header(name, vs) => req.headers.is_some_and(|h| {
                h.get_all(name).iter().any(|v| {
                    vs.iter()
                        .any(|p| wildcard::matches(p.as_bytes(), v.as_bytes(), true))
                })
            }),
            Condition::Method(vs) => vs.iter().any(|m| m == req.method),
            Condition::Query(pairs) => {
                let Some(q) = req.query else { return false };
                form_pairs(q).any(|(k, v)| {
                    pairs.iter().any(|(kp, vp)| {
                        kp.as_ref().is_none_or(|kp| kp.matches(k.as_bytes(), true))
                            && vp.matches(v.as_bytes(), true)
                    })
                })
            }
            Condition::SourceIp(nets) => req
                .peer
                .is_some_and(|ip| nets.iter().any(|n| n.contains(&ip.to_canonical()))),
        }
    }
}

/// The query's `key=value` pairs, percent-decoded (`+` stays a `+`, as in a URL).
fn form_pairs(q: &str) -> impl Iterator<Item = (String, String)> + '_ {
    let dec = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    q.split('&').filter(|p| !p.is_empty()).map(move |p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        (dec(k), dec(v))
    })
}

/// What rules look at.
pub struct RequestView<'a> {
    /// Host without port, from `Host` or `:authority`.
    pub host: Option<&'a str>,
    /// Path without query.
    pub path: &'a str,
    /// The method.
    pub method: &'a str,
    /// The raw query string.
    pub query: Option<&'a str>,
    /// All headers.
    pub headers: Option<&'a http::HeaderMap>,
    /// The TCP peer.
    pub peer: Option<std::net::IpAddr>,
}

impl<'a> RequestView<'a> {
    /// From request parts and the connection's peer.
    pub fn of(parts: &'a Parts, peer: std::net::IpAddr) -> RequestView<'a> {
        RequestView {
            host: portcullis_core::request::host(parts).map(host_name),
            path: parts.uri.path(),
            method: parts.method.as_str(),
            query: parts.uri.query(),
            headers: Some(&parts.headers),
            peer: Some(peer),
        }
    }

    /// A view of only a host and a path (tests, benches).
    pub fn host_path(host: Option<&'a str>, path: &'a str) -> RequestView<'a> {
        RequestView {
            host,
            path,
            method: "GET",
            query: None,
            headers: None,
            peer: None,
        }
    }
}

/// The host a `Host` value names, as rules and cookie decisions compare it: without the port, and
/// without a trailing dot (`admin.example.` is `admin.example` to DNS and to nginx and Apache).
pub fn host_name(host: &str) -> &str {
    let h = strip_port(host);
    h.strip_suffix('.').unwrap_or(h)
}

/// A host without its port (`[::1]:8443` → `[::1]`).
pub fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split_once(']')
            .map_or(host, |(h, _)| &host[..h.len() + 1]);
    }
    host.rsplit_once(':')
        .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(h, _)| h)
}

/// Returns the index of the first rule whose every condition matches.
pub fn first_match<'r, R>(
    rules: &'r [R],
    conditions: impl Fn(&'r R) -> &'r [Condition],
    req: &RequestView<'_>,
) -> Option<usize> {
    rules
        .iter()
        .position(|r| conditions(r).iter().all(|c| c.matches(req)))
}

/// An index of a listener's rules by the first path segment their `path-pattern` requires, so a
/// request is checked only against the rules that could match its path (plus those whose patterns
/// start with a wildcard, or that have no path condition). Candidates keep priority order.
#[derive(Debug, Default)]
pub struct RuleIndex {
    by_segment: std::collections::HashMap<String, Vec<usize>>,
    anywhere: Vec<usize>,
}

/// The first path segment a pattern requires, when it has no wildcard (`/api/*` → `api`).
fn required_segment(pattern: &str) -> Option<&str> {
    let rest = pattern.strip_prefix('/')?;
    let seg = rest.split('/').next().unwrap_or("");
    // `/api` requires exactly the segment `api`; `/api/...` too. A wildcard in the segment, or a
    // pattern that ends inside it with a wildcard, could match other segments.
    if seg.contains(['*', '?']) {
        return None;
    }
    // `/api` must not be followed by more of the same segment unless a `/` comes: a pattern that
    // is only `/api` matches only `/api`, and `/api/..` only paths whose first segment is `api`.
    Some(seg)
}

impl RuleIndex {
    /// Indexes `rules` (already in priority order).
    pub fn new<R>(rules: &[R], conditions: impl Fn(&R) -> &[Condition]) -> RuleIndex {
        let mut idx = RuleIndex::default();
        for (i, r) in rules.iter().enumerate() {
            let path = conditions(r).iter().find_map(|c| match c {
                Condition::Path(vs) => Some(vs),
                _ => None,
            });
            let segments: Option<Vec<&str>> =
                path.and_then(|vs| vs.iter().map(|v| required_segment(v)).collect());
            match segments {
                Some(segs) => {
                    let mut segs = segs;
                    segs.sort_unstable();
                    segs.dedup();
                    for s in segs {
                        idx.by_segment.entry(s.to_string()).or_default().push(i);
                    }
                }
                None => idx.anywhere.push(i),
            }
        }
        idx
    }

    /// The first rule (by priority) whose conditions all match.
    pub fn first_match<'r, R>(
        &self,
        rules: &'r [R],
        conditions: impl Fn(&'r R) -> &'r [Condition],
        req: &RequestView<'_>,
    ) -> Option<usize> {
        let seg = req
            .path
            .strip_prefix('/')
            .map(|p| p.split('/').next().unwrap_or(""));
        let indexed: &[usize] = seg
            .and_then(|s| self.by_segment.get(s))
            .map_or(&[], Vec::as_slice);
        // Merge the two sorted candidate lists, trying each in priority order.
        let (mut a, mut b) = (0, 0);
        loop {
            let next = match (indexed.get(a), self.anywhere.get(b)) {
                (Some(x), Some(y)) if x < y => {
                    a += 1;
                    *x
                }
                (Some(x), None) => {
                    a += 1;
                    *x
                }
                (_, Some(y)) => {
                    b += 1;
                    *y
                }
                (None, None) => return None,
            };
            if conditions(&rules[next]).iter().all(|c| c.matches(req)) {
                return Some(next);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_stripped() {
        assert_eq!(strip_port("a.example:8443"), "a.example");
        assert_eq!(strip_port("a.example"), "a.example");
        assert_eq!(strip_port("[::1]:443"), "[::1]");
        assert_eq!(strip_port("[::1]"), "[::1]");
    }

    #[test]
    fn all_conditions_must_match() {
        let rules = vec![
            vec![
                Condition::Host(vec!["*.example.com".into()]),
                Condition::Path(vec!["/api/*".into()]),
            ],
            vec![Condition::Path(vec!["/api/*".into(), "/v2".into()])],
        ];
        let r = |h, p| first_match(&rules, |r| r.as_slice(), &RequestView::host_path(h, p));
        assert_eq!(r(Some("A.example.com"), "/api/x"), Some(0));
        assert_eq!(r(Some("other.org"), "/api/x"), Some(1));
        assert_eq!(r(None, "/v2"), Some(1));
        assert_eq!(r(None, "/v3"), None);
    }

    fn cond(toml_text: &str) -> Condition {
        let c: portcullis_config::Condition = toml::from_str(toml_text).unwrap();
        Condition::compile(&c).unwrap()
    }

    #[test]
    fn header_method_query_and_source_ip() {
        let req = http::Request::post("/x?Version=V1.2&tag=%2Abeta%2A&flag")
            .header("user-agent", "Mozilla/5.0 Chrome/140")
            .header("x-env", "staging")
            .header("x-env", "PROD-eu")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        let v4: std::net::IpAddr = "10.1.2.3".parse().unwrap();
        let view = RequestView::of(&req, v4);
        let yes = |t: &str| assert!(cond(t).matches(&view), "{t}");
        let no = |t: &str| assert!(!cond(t).matches(&view), "{t}");
        yes(r#"field = "http-header"
http_header_name = "User-Agent"
values = ["*chrome*"]"#);
        yes(r#"field = "http-header"
http_header_name = "x-env"
values = ["prod-*"]"#);
        no(r#"field = "http-header"
http_header_name = "x-other"
values = ["*"]"#);
        yes(r#"field = "http-request-method"
values = ["GET", "POST"]"#);
        no(r#"field = "http-request-method"
values = ["post"]"#);
        yes(r#"field = "query-string"
query = [{ key = "version", value = "v1.*" }]"#);
        yes(r#"field = "query-string"
query = [{ value = "\\*beta\\*" }]"#);
        no(r#"field = "query-string"
query = [{ value = "\\*gamma\\*" }]"#);
        no(r#"field = "query-string"
query = [{ key = "tag", value = "\\*b?ta" }]"#);
        // ELBv2's spelling, `QueryStringConfig.Values`, means the same.
        yes(r#"field = "query-string"
values = [{ key = "version", value = "v1.*" }]"#);
        no(r#"field = "query-string"
values = [{ key = "version", value = "v2.*" }]"#);
        yes(r#"field = "source-ip"
values = ["10.0.0.0/8"]"#);
        no(r#"field = "source-ip"
values = ["192.168.0.0/16", "2001:db8::/32"]"#);
        // An IPv4 client seen on an IPv6 socket still matches IPv4 CIDRs.
        let mapped: std::net::IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert!(
            cond(
                r#"field = "source-ip"
values = ["10.0.0.0/8"]"#
            )
            .matches(&RequestView::of(&req, mapped))
        );
    }

    proptest::proptest! {
        /// The index finds exactly the rule a full scan finds.
        #[test]
        fn index_agrees_with_a_full_scan(
            patterns in proptest::collection::vec("/[ab*?]{0,3}(/[ab*]{0,2})?", 1..30),
            host_rules in proptest::collection::vec(proptest::bool::ANY, 30),
            path in "/[ab]{0,3}(/[ab]{0,2})?",
        ) {
            let rules: Vec<Vec<Condition>> = patterns
                .iter()
                .zip(&host_rules)
                .map(|(p, host)| {
                    if *host {
                        vec![Condition::Host(vec!["*.example".into()])]
                    } else {
                        vec![Condition::Path(vec![p.clone()])]
                    }
                })
                .collect();
            let view = RequestView::host_path(Some("a.example"), &path);
            let idx = RuleIndex::new(&rules, |r| r.as_slice());
            proptest::prop_assert_eq!(
                idx.first_match(&rules, |r| r.as_slice(), &view),
                first_match(&rules, |r| r.as_slice(), &view)
            );
        }
    }
}
