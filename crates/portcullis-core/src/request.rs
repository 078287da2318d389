//! What a request says about where it was sent (feature `http`): the balancer's rules, redirects
//! and forwarded headers and the authenticate action all read the host the same way.

use http::request::Parts;

/// The host the client used, from `Host` or the HTTP/2 `:authority`; `None` when absent or not a
/// plain host (empty, or holding `/`, `@` or a space).
pub fn host(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))
        .filter(|h| !h.is_empty() && !h.contains(['/', '@', ' ']))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, host_header: Option<&str>) -> Parts {
        let mut b = http::Request::builder().uri(uri);
        if let Some(h) = host_header {
            b = b.header(http::header::HOST, h);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn host_from_header_or_authority() {
        assert_eq!(
            host(&parts("/", Some("a.example:8080"))),
            Some("a.example:8080")
        );
        assert_eq!(host(&parts("https://b.example/x", None)), Some("b.example"));
        assert_eq!(host(&parts("/", None)), None);
        assert_eq!(host(&parts("/", Some("a@b"))), None);
        assert_eq!(host(&parts("/", Some(""))), None);
    }
}
