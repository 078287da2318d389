//! The redirect action: `#{protocol}`, `#{host}`, `#{port}`, `#{path}` and `#{query}` substituted
//! into the configured components; absent components keep the request's values.

use crate::error::{ErrorKind, ProxyError};
use http::request::Parts;
use portcullis_config::RedirectAction;

/// ALB refuses to redirect to URLs longer than this.
pub const MAX_LOCATION: usize = 8 * 1024;

/// The `Location` for a request.
pub fn location(
    r: &RedirectAction,
    parts: &Parts,
    https: bool,
    port: u16,
) -> Result<String, ProxyError> {
    let protocol = if https { "https" } else { "http" };
    let host_header = portcullis_core::request::host(parts).unwrap_or("");
    let host = crate::rules::strip_port(host_header);
    let path = parts.uri.path().trim_start_matches('/');
    let query = parts.uri.query().unwrap_or("");
    let port_s = port.to_string();
    let sub = |t: &str| {
        t.replace("#{protocol}", protocol)
            .replace("#{host}", host)
            .replace("#{port}", &port_s)
            .replace("#{path}", path)
            .replace("#{query}", query)
    };
    let proto = r
        .protocol
        .as_deref()
        .map_or(protocol.to_string(), |p| sub(p).to_ascii_lowercase());
    let host = r.host.as_deref().map_or(host.to_string(), sub);
    let port = r.port.as_deref().map_or(port_s.clone(), sub);
    let path = r.path.as_deref().map_or(format!("/{path}"), sub);
    let query = r.query.as_deref().map_or(query.to_string(), sub);
    let default_port = (proto == "https" && port == "443") || (proto == "http" && port == "80");
    let mut url = format!("{proto}://{host}");
    if !default_port {
        url.push(':');
        url.push_str(&port);
    }
    url.push_str(&path);
    if !query.is_empty() {
        url.push('?');
        url.push_str(&query);
    }
    if url.len() > MAX_LOCATION {
        return Err(ProxyError::downstream(ErrorKind::RedirectTooLong));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, host: &str) -> Parts {
        http::Request::builder()
            .uri(uri)
            .header("host", host)
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    fn action(toml_text: &str) -> RedirectAction {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn http_to_https() {
        let r = action(
            "status_code = \"HTTP_301\"\nprotocol = \"HTTPS\"\nport = \"443\"\nhost = \"#{host}\"\npath = \"/#{path}\"\nquery = \"#{query}\"",
        );
        assert_eq!(
            location(&r, &parts("/a/b?x=1", "example.com"), false, 80).unwrap(),
            "https://example.com/a/b?x=1"
        );
        assert_eq!(
            location(&r, &parts("/", "example.com:8080"), false, 8080).unwrap(),
            "https://example.com/"
        );
    }

    #[test]
    fn keywords_and_defaults() {
        let r =
            action("status_code = \"HTTP_302\"\nhost = \"new.#{host}\"\npath = \"/v2/#{path}\"");
        assert_eq!(
            location(&r, &parts("/x?q", "ex.org:8443"), true, 8443).unwrap(),
            "https://new.ex.org:8443/v2/x?q"
        );
        let long = format!("/{}", "a".repeat(9000));
        assert!(location(&r, &parts(&long, "ex.org"), true, 443).is_err());
    }
}
