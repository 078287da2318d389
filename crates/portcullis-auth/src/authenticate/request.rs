//! What a request says about its origin and its kind: same-origin or cross-site, page navigation
//! or script; the session cookie's `SameSite` and the answers to unauthenticated requests follow.

use http::request::Parts;

/// Whether a request comes from the balancer's own origin, by what browsers send: `Sec-Fetch-Site`
/// `same-origin` or `none` (typed, bookmarked); without it, an `Origin` that is this host. A
/// request with neither (a non-browser client, or a browser too old for Fetch Metadata sending a
/// GET) is taken as same-origin: it cannot be told apart.
pub fn same_origin(parts: &Parts) -> bool {
    let h = &parts.headers;
    if let Some(site) = h.get("sec-fetch-site") {
        return site.to_str().is_ok_and(|s| {
            s.eq_ignore_ascii_case("same-origin") || s.eq_ignore_ascii_case("none")
        });
    }
    let Some(origin) = h.get(http::header::ORIGIN) else {
        return true;
    };
    let host = portcullis_core::request::host(parts);
    origin
        .to_str()
        .ok()
        .and_then(|o| {
            o.strip_prefix("https://")
                .or_else(|| o.strip_prefix("http://"))
        })
        .zip(host)
        .is_some_and(|(o, host)| o.eq_ignore_ascii_case(host))
}

pub(super) fn original_uri(parts: &Parts) -> String {
    parts
        .uri
        .path_and_query()
        .map_or_else(|| "/".to_string(), |pq| pq.as_str().to_string())
}

/// Whether a request is cross-origin (CORS), for which ALB writes the session with
/// `SameSite=None`. A browser also sends `Origin` on its own origin's POSTs and fetches; those
/// keep `SameSite=Lax`, or any form post on the site that happened to refresh the session would
/// give up the cookie's cross-site protection for the rest of the session.
pub(super) fn is_cors(parts: &Parts) -> bool {
    parts.headers.contains_key(http::header::ORIGIN) && !same_origin(parts)
}

/// Whether a request comes from script (fetch/XHR) or an API client rather than a page navigation.
pub fn is_api_request(parts: &Parts) -> bool {
    let h = &parts.headers;
    let has = |name: &str, needle: &str| {
        h.get(name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains(needle))
    };
    has("sec-fetch-mode", "cors")
        || has("accept", "application/json")
        || h.contains_key("x-requested-with")
}
