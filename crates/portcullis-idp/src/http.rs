//! The pool's HTTP endpoints at Cognito's paths: discovery, JWKS, `/oauth2/authorize`, the hosted
//! sign-in page `/login`, `/oauth2/token` and `/oauth2/userInfo`. Parsing and rendering only.

pub mod client_ip;
pub mod federation;
pub mod hosted_ui;
pub mod tls_listener;

use crate::domain::authorize::AuthorizeProblem;
use crate::domain::grants::OAuthError;
use crate::domain::pool::Pool;
use crate::http::client_ip::ClientIp;
use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use std::sync::Arc;

/// Largest request body any endpoint reads.
pub const MAX_BODY: usize = 16 * 1024;
/// Longest query string accepted.
pub const MAX_QUERY: usize = 8 * 1024;
/// The hosted UI's session cookie (Cognito's name).
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

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
    code: &'a str,
}

/// The router of one pool.
pub fn router(pool: Arc<Pool>) -> Router {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/.well-known/jwks.json", get(jwks))
        .route(
            "/{pool_id}/.well-known/openid-configuration",
            get(discovery_for),
        )
        .route("/{pool_id}/.well-known/jwks.json", get(jwks_for))
        .route("/oauth2/authorize", get(authorize))
        .route(
            "/oauth2/idpresponse",
            get(crate::http::federation::idp_response),
        )
        .route(
            "/login",
            get(crate::http::hosted_ui::login_page).post(crate::http::hosted_ui::login_submit),
        )
        .route(
            "/signup",
            get(crate::http::hosted_ui::sign_up_page).post(crate::http::hosted_ui::sign_up_submit),
        )
        .route(
            "/confirmUser",
            get(crate::http::hosted_ui::confirm_page).post(crate::http::hosted_ui::confirm_submit),
        )
        .route(
            "/forgotPassword",
            get(crate::http::hosted_ui::forgot_page).post(crate::http::hosted_ui::forgot_submit),
        )
        .route(
            "/confirmForgotPassword",
            get(crate::http::hosted_ui::reset_page).post(crate::http::hosted_ui::reset_submit),
        )
        .route(
            "/forceChangePassword",
            axum::routing::post(crate::http::hosted_ui::new_password_submit),
        )
        .route(
            "/mfa",
            axum::routing::post(crate::http::hosted_ui::mfa_submit),
        )
        .route(
            "/static/client/{file}",
            get(crate::http::hosted_ui::client_css),
        )
        .route("/oauth2/token", axum::routing::post(token))
        .route("/oauth2/userInfo", get(userinfo).post(userinfo))
        .route("/oauth2/revoke", axum::routing::post(revoke))
        .route("/logout", get(logout))
        .route("/static/hosted-ui.css", get(css))
        .route(
            "/",
            axum::routing::post(crate::admin_api::handle)
                .layer(DefaultBodyLimit::max(crate::admin_api::MAX_API_BODY)),
        )
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(pool)
}

fn json_response(status: u16, body: Value) -> Response {
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

fn oauth_error(e: OAuthError) -> Response {
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

pub(crate) fn parse_query(raw: Option<&str>) -> Result<Vec<(String, String)>, Box<Response>> {
    let raw = raw.unwrap_or("");
    if raw.len() > MAX_QUERY {
        return Err(Box::new(error_page(
            StatusCode::URI_TOO_LONG,
            "invalid_request",
            "the request is too long",
        )));
    }
    Ok(form_urlencoded::parse(raw.as_bytes())
        .into_owned()
        .collect())
}

pub(crate) fn origin_of(url: &str) -> Option<String> {
    let uri: axum::http::Uri = url.parse().ok()?;
    Some(format!("{}://{}", uri.scheme_str()?, uri.authority()?))
}

async fn discovery(State(pool): State<Arc<Pool>>) -> Response {
    json_response(200, pool.discovery())
}

async fn jwks(State(pool): State<Arc<Pool>>) -> Response {
    json_response(200, pool.jwks())
}

async fn discovery_for(State(pool): State<Arc<Pool>>, Path(id): Path<String>) -> Response {
    if id == pool.id {
        json_response(200, pool.discovery())
    } else {
        not_found().await
    }
}

async fn jwks_for(State(pool): State<Arc<Pool>>, Path(id): Path<String>) -> Response {
    if id == pool.id {
        json_response(200, pool.jwks())
    } else {
        not_found().await
    }
}

async fn css() -> Response {
    let mut r = include_str!("../static/hosted-ui.css").into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    r
}

async fn not_found() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "not_found",
        "There is nothing at this address.",
    )
}

/// `GET /oauth2/authorize`: validate, then send the browser to `/login` with the same query.
/// With a live hosted-UI session (and no `prompt=login`) a code is issued without a password.
async fn authorize(
    State(pool): State<Arc<Pool>>,
    ClientIp(ip): ClientIp,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let q = match parse_query(raw.as_deref()) {
        Ok(q) => q,
        Err(r) => return *r,
    };
    let req = match pool.check_authorize(&q) {
        Ok(req) => req,
        Err(p) => return problem(p),
    };
    // `identity_provider=` / `idp_identifier=`: straight to the external provider.
    if let Some(provider) = &req.federate {
        return crate::http::federation::redirect_to_provider(&pool, ip, provider, &q, &headers)
            .await;
    }
    let forced = q
        .iter()
        .any(|(k, v)| k == "prompt" && v.split(' ').any(|p| p == "login"));
    if !forced
        && let Some(cookie) = HostedCookie::Session.read(&pool, &headers)
        && let Some((user, auth_time)) = pool.session_user(cookie).await
    {
        let sid = pool.browser_sid(cookie);
        return match pool
            .complete_authorization_in(&req, &user, auth_time, &sid)
            .await
        {
            Ok(location) => redirect(&location),
            Err(e) => error_page(StatusCode::INTERNAL_SERVER_ERROR, e.error, &e.description),
        };
    }
    redirect(&format!("/login?{}", raw.unwrap_or_default()))
}

/// The hosted-UI session cookie's `Set-Cookie` value.
pub(crate) fn session_cookie(pool: &Pool, value: &str, max_age: i64) -> Option<HeaderValue> {
    HostedCookie::Session.set(pool, value, Some(max_age))
}

/// `GET /logout`: ends the hosted-UI session, then goes to a registered `logout_uri` or back to
/// sign-in with the given authorization parameters.
async fn logout(
    State(pool): State<Arc<Pool>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let q = match parse_query(raw.as_deref()) {
        Ok(q) => q,
        Err(r) => return *r,
    };
    let target = match pool.check_logout(&q, raw.as_deref().unwrap_or("")) {
        Ok(t) => t,
        Err(p) => return problem(p),
    };
    if let Some(c) = HostedCookie::Session.read(&pool, &headers) {
        pool.end_session(c).await;
    }
    let mut r = match target {
        crate::domain::authorize::LogoutTarget::Uri(uri) => redirect(&uri),
        crate::domain::authorize::LogoutTarget::Login(query) => {
            redirect(&format!("/login?{query}"))
        }
    };
    if let Some(v) = session_cookie(&pool, "", 0) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

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

fn basic_credentials(headers: &HeaderMap) -> Option<Result<(String, String), ()>> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .map_err(|_| ());
    Some(decoded.and_then(|d| {
        let s = String::from_utf8(d).map_err(|_| ())?;
        let (id, secret) = s.split_once(':').ok_or(())?;
        let dec = |x: &str| {
            form_urlencoded::parse(format!("x={x}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
        };
        Ok((dec(id).ok_or(())?, dec(secret).ok_or(())?))
    }))
}

/// A client-authenticated form: the client id and the form's fields.
type ClientForm = (String, Vec<(String, String)>);

/// 429 for a client whose failed authentications used up their rate limit.
fn too_many_failures() -> Response {
    let mut r = json_response(
        429,
        json!({ "error": "invalid_client", "error_description": "too many failed client authentications; try again later" }),
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
    r
}

/// Parses a form body and authenticates the client (Basic or post), as the token and revocation
/// endpoints both need. Failed client authentications are rate-limited per address and client.
async fn client_form(
    pool: &Pool,
    ip: std::net::IpAddr,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<ClientForm, Box<Response>> {
    let fail = |e: OAuthError| Box::new(oauth_error(e));
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if !form_type {
        return Err(fail(OAuthError::bad(
            "invalid_request",
            "Content-Type must be application/x-www-form-urlencoded",
        )));
    }
    let form: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().take(32).collect();
    let mut seen = std::collections::BTreeSet::new();
    for (k, _) in &form {
        if !seen.insert(k.as_str()) {
            return Err(fail(OAuthError::bad(
                "invalid_request",
                format!("parameter `{k}` is repeated"),
            )));
        }
    }
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let (client_id, secret) = match basic_credentials(headers) {
        Some(Ok((id, secret))) => {
            if get("client_secret").is_some() {
                return Err(fail(OAuthError::bad(
                    "invalid_request",
                    "use one client authentication method",
                )));
            }
            (id, Some(secret))
        }
        Some(Err(())) => {
            return Err(fail(OAuthError {
                error: "invalid_client",
                description: "malformed Basic credentials".into(),
                status: 401,
            }));
        }
        None => match get("client_id") {
            Some(id) => (id.to_string(), get("client_secret").map(str::to_string)),
            None => {
                return Err(fail(OAuthError::bad(
                    "invalid_request",
                    "client_id is missing",
                )));
            }
        },
    };
    if let Some(id) = get("client_id")
        && id != client_id
    {
        return Err(fail(OAuthError::bad(
            "invalid_request",
            "client_id does not match the credentials",
        )));
    }
    if !pool.client_auth_allowed(ip, &client_id).await {
        return Err(Box::new(too_many_failures()));
    }
    if let Err(e) = pool.authenticate_client(&client_id, secret.as_deref()) {
        pool.client_auth_failed(ip, &client_id).await;
        return Err(fail(e));
    }
    Ok((client_id, form))
}

/// `POST /oauth2/revoke`.
async fn revoke(
    State(pool): State<Arc<Pool>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (client_id, form) = match client_form(&pool, ip, &headers, &body).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let token = form
        .iter()
        .find(|(k, _)| k == "token")
        .map_or("", |(_, v)| v.as_str());
    match pool.revoke(&client_id, token).await {
        Ok(()) => {
            let mut r = StatusCode::OK.into_response();
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => oauth_error(e),
    }
}

/// `POST /oauth2/token`.
async fn token(
    State(pool): State<Arc<Pool>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (client_id, form) = match client_form(&pool, ip, &headers, &body).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let result = match get("grant_type") {
        Some("authorization_code") => {
            pool.redeem_code(
                &client_id,
                get("code").unwrap_or(""),
                get("redirect_uri"),
                get("code_verifier"),
            )
            .await
        }
        Some("refresh_token") => {
            pool.refresh(&client_id, get("refresh_token").unwrap_or(""))
                .await
        }
        Some("client_credentials") => pool.client_credentials(&client_id, get("scope")),
        Some(_) => Err(OAuthError::bad(
            "unsupported_grant_type",
            "supported: authorization_code, refresh_token, client_credentials",
        )),
        None => Err(OAuthError::bad("invalid_request", "grant_type is missing")),
    };
    match result {
        Ok(t) => {
            let mut body = serde_json::Map::new();
            if let Some(id) = t.id_token {
                body.insert("id_token".into(), id.into());
            }
            body.insert("access_token".into(), t.access_token.into());
            if let Some(r) = t.refresh_token {
                body.insert("refresh_token".into(), r.into());
            }
            body.insert("expires_in".into(), t.expires_in.into());
            body.insert("token_type".into(), "Bearer".into());
            json_response(200, Value::Object(body))
        }
        Err(e) => oauth_error(e),
    }
}

/// `GET|POST /oauth2/userInfo`.
async fn userinfo(State(pool): State<Arc<Pool>>, headers: HeaderMap) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(s, _)| s.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    let Some(token) = bearer.filter(|t| !t.is_empty() && t.len() <= 16 * 1024) else {
        let mut r = json_response(
            400,
            json!({ "error": "invalid_request", "error_description": "Bad OAuth2 request at UserInfo Endpoint" }),
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("error=\"invalid_request\", error_description=\"Bad OAuth2 request at UserInfo Endpoint\""),
        );
        return r;
    };
    match pool.userinfo(token).await {
        Ok(claims) => json_response(200, Value::Object(claims)),
        Err(e) => {
            let mut r = json_response(
                e.status,
                json!({ "error": e.error, "error_description": e.description }),
            );
            if let Ok(v) = HeaderValue::from_str(&format!(
                "error=\"{}\", error_description=\"{}\"",
                e.error, e.description
            )) {
                r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
            r
        }
    }
}
