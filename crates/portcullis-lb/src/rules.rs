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
}

impl Condition {
    /// Compiles a config condition (validated already).
    pub fn compile(c: &portcullis_config::Condition) -> Option<Condition> {
        match c.field.as_str() {
            "host-header" => Some(Condition::Host(c.values.clone())),
            "path-pattern" => Some(Condition::Path(c.values.clone())),
            _ => None,
        }
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
        }
    }
}

/// What rules look at.
pub struct RequestView<'a> {
    /// Host without port, from `Host` or `:authority`.
    pub host: Option<&'a str>,
    /// Path without query.
    pub path: &'a str,
}

impl<'a> RequestView<'a> {
    /// From request parts.
    pub fn of(parts: &'a Parts) -> RequestView<'a> {
        RequestView {
            host: portcullis_auth::authenticate::request_host(parts).map(strip_port),
            path: parts.uri.path(),
        }
    }
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
        let r = |h, p| first_match(&rules, |r| r.as_slice(), &RequestView { host: h, path: p });
        assert_eq!(r(Some("A.example.com"), "/api/x"), Some(0));
        assert_eq!(r(Some("other.org"), "/api/x"), Some(1));
        assert_eq!(r(None, "/v2"), Some(1));
        assert_eq!(r(None, "/v3"), None);
    }
}
