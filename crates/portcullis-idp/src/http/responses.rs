//! What the OAuth endpoints and the hosted UI both send: HTML pages with strict security headers,
//! error pages, redirects, OAuth's JSON errors and the hosted UI's cookies. It imports no other
//! module of `http`, so every page and endpoint may use it.

use crate::domain::authorize::AuthorizeProblem;
use crate::domain::grants::OAuthError;
use crate::domain::pool::Pool;
use askama::Template;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The hosted UI's cookies. Over HTTPS they carry the `__Host-` prefix, so that browsers
/// enforce `Secure`, `Path=/` and no `Domain`: no sibling host and no plain-HTTP page can plant
/// or overwrite them. On plain HTTP (loopback development) browsers refuse the prefix, so the
/// names stay plain there.
#[derive(Clone, Copy, Debug)]
pub(crate) enum HostedCookie {
    /// The hosted-UI session (`cognito`).
    Session,
    /// The CSRF token of the forms (`XSRF-TOKEN`).
    Csrf,
}

impl HostedCookie {
    /// Its name for `pool`.
    pub(crate) fn name(self, pool: &Pool) -> &'static str {
        match (self, pool.base_url.starts_with("https://")) {
            (HostedCookie::Session, true) => "__Host-cognito",
            (HostedCookie::Session, false) => "cognito",
            (HostedCookie::Csrf, true) => "__Host-XSRF-TOKEN",
            (HostedCookie::Csrf, false) => "XSRF-TOKEN",
        }
    }

    /// Its value in a request.
    pub(crate) fn read<'a>(self, pool: &Pool, headers: &'a HeaderMap) -> Option<&'a str> {
        cookie(headers, self.name(pool))
    }

    /// A `Set-Cookie` value (HttpOnly, SameSite=Lax, Path=/, Secure on HTTPS); `max_age` `None`
    /// for a cookie that ends with the browser session.
    pub(crate) fn set(self, pool: &Pool, value: &str, max_age: Option<i64>) -> Option<HeaderValue> {
        let secure = if pool.base_url.starts_with("https://") {
            "; Secure"
        } else {
            ""
        };
        let age = max_age
            .map(|a| format!("; Max-Age={a}"))
            .unwrap_or_default();
        HeaderValue::from_str(&format!(
            "{}={value}; Path=/{age}; HttpOnly; SameSite=Lax{secure}",
            self.name(pool)
        ))
        .ok()
    }
}

/// The hosted-UI session cookie's `Set-Cookie` value.
pub(crate) fn session_cookie(pool: &Pool, value: &str, max_age: i64) -> Option<HeaderValue> {
    HostedCookie::Session.set(pool, value, Some(max_age))
}

/// The value of cookie `name` in a request.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|p| p.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
    code: &'a str,
}

/// A JSON answer that no cache keeps (the OAuth endpoints' replies).
pub(crate) fn json_response(status: u16, body: Value) -> Response {
    let mut r = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        axum::Json(body),
    )
        .into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

/// An OAuth error as JSON (RFC 6749 §5.2), with `WWW-Authenticate` for a refused client.
pub(crate) fn oauth_error(e: OAuthError) -> Response {
    let mut r = json_response(
        e.status,
        json!({ "error": e.error, "error_description": e.description }),
    );
    if e.status == 401 && e.error == "invalid_client" {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"token\""),
        );
    }
    r
}

/// HTML with strict security headers; `form_target` widens `form-action` for the redirect after sign-in.
pub(crate) fn html(status: StatusCode, body: String, form_target: Option<&str>) -> Response {
    html_with(status, body, form_target, None)
}

/// An HTML page with strict security headers; `form_target` and `img_origin` widen the CSP for the
/// app's redirect and a client logo.
pub(crate) fn html_with(
    status: StatusCode,
    body: String,
    form_target: Option<&str>,
    img_origin: Option<&str>,
) -> Response {
    let form_action = match form_target {
        Some(origin) => format!("'self' {origin}"),
        None => "'self'".into(),
    };
    let img = img_origin.map(|o| format!(" {o}")).unwrap_or_default();
    let csp = format!(
        "default-src 'none'; style-src 'self'; img-src 'self' data:{img}; form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    );
    let mut r = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response();
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The error page every browser-facing failure shows: `code` for support, `message` for people.
pub(crate) fn error_page(status: StatusCode, code: &str, message: &str) -> Response {
    let title = if status.is_server_error() {
        "Something went wrong"
    } else {
        "This request cannot be completed"
    };
    let body = ErrorPage {
        title,
        message,
        code,
    }
    .render()
    .unwrap_or_else(|_| message.to_string());
    html(status, body, None)
}

/// `r` with `Retry-After: seconds`, for answers that tell the client to come back later.
pub(crate) fn retry_after(mut r: Response, seconds: &'static str) -> Response {
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static(seconds));
    r
}

/// 429 with `Retry-After`: this address or user tried too often.
pub(crate) fn too_many() -> Response {
    let page = error_page(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_requests",
        "Too many attempts. Wait a minute, then try again.",
    );
    retry_after(page, "60")
}

/// The 404 page.
pub(crate) fn not_found() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "not_found",
        "There is nothing at this address.",
    )
}

/// A 302 to `location` that no cache keeps (an error page for a location no header can carry).
pub(crate) fn redirect(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => {
            let mut r = StatusCode::FOUND.into_response();
            r.headers_mut().insert(header::LOCATION, v);
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(_) => error_page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the redirect target is not a valid URL",
        ),
    }
}

/// A refused authorization request: a page when the redirect URI cannot be trusted, else the
/// error sent back to the app (RFC 6749 §4.1.2.1).
pub(crate) fn problem(p: AuthorizeProblem) -> Response {
    match p {
        AuthorizeProblem::Page(code, message) => {
            error_page(StatusCode::BAD_REQUEST, code, &message)
        }
        AuthorizeProblem::Redirect {
            redirect_uri,
            error,
            state,
        } => {
            let mut q = form_urlencoded::Serializer::new(String::new());
            q.append_pair("error", error);
            if let Some(s) = state {
                q.append_pair("state", &s);
            }
            let sep = if redirect_uri.contains('?') { '&' } else { '?' };
            redirect(&format!("{redirect_uri}{sep}{}", q.finish()))
        }
    }
}

/// `scheme://authority` of a URL (for the CSP).
pub(crate) fn origin_of(url: &str) -> Option<String> {
    let uri: axum::http::Uri = url.parse().ok()?;
    Some(format!("{}://{}", uri.scheme_str()?, uri.authority()?))
}

/// A stylesheet, with the extra `headers` its kind needs (caching, `nosniff`).
pub(crate) fn stylesheet(
    css: impl IntoResponse,
    headers: &[(header::HeaderName, &'static str)],
) -> Response {
    let mut r = css.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    for (name, value) in headers {
        r.headers_mut()
            .insert(name.clone(), HeaderValue::from_static(value));
    }
    r
}
