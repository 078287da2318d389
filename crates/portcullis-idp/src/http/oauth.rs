//! The OAuth 2.0 and OpenID Connect endpoints: discovery, JWKS, `/oauth2/authorize`,
//! `/oauth2/token`, `/oauth2/userInfo`, `/oauth2/revoke` and `/logout`. Parsing and rendering
//! only; `Pool` decides.

use super::request::{Post, Query};
use super::responses::{
    HostedCookie, error_page, json_response, not_found, oauth_error, problem, redirect,
    session_cookie,
};
use crate::domain::authorize::LogoutTarget;
use crate::domain::grants::OAuthError;
use crate::domain::pool::Pool;
use crate::http::client_ip::ClientIp;
use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::Arc;

/// `GET /.well-known/openid-configuration`.
pub(crate) async fn discovery(State(pool): State<Arc<Pool>>) -> Response {
    json_response(200, pool.discovery())
}

/// `GET /.well-known/jwks.json`: the public signing keys.
pub(crate) async fn jwks(State(pool): State<Arc<Pool>>) -> Response {
    json_response(200, pool.jwks())
}

/// `GET /<pool id>/.well-known/openid-configuration`, Cognito's issuer path.
pub(crate) async fn discovery_for(
    State(pool): State<Arc<Pool>>,
    Path(id): Path<String>,
) -> Response {
    if id == pool.id {
        json_response(200, pool.discovery())
    } else {
        not_found()
    }
}

/// `GET /<pool id>/.well-known/jwks.json`, Cognito's issuer path.
pub(crate) async fn jwks_for(State(pool): State<Arc<Pool>>, Path(id): Path<String>) -> Response {
    if id == pool.id {
        json_response(200, pool.jwks())
    } else {
        not_found()
    }
}

/// `GET /oauth2/authorize`: validate, then send the browser to `/login` with the same query.
/// With a live hosted-UI session (and no `prompt=login`) a code is issued without a password.
pub(crate) async fn authorize(
    State(pool): State<Arc<Pool>>,
    ClientIp(ip): ClientIp,
    Query { raw, pairs: q }: Query,
    headers: HeaderMap,
) -> Response {
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

/// `GET /logout`: ends the hosted-UI session, then goes to a registered `logout_uri` or back to
/// sign-in with the given authorization parameters.
pub(crate) async fn logout(
    State(pool): State<Arc<Pool>>,
    Query { raw, pairs: q }: Query,
    headers: HeaderMap,
) -> Response {
    let target = match pool.check_logout(&q, raw.as_deref().unwrap_or("")) {
        Ok(t) => t,
        Err(p) => return problem(p),
    };
    if let Some(c) = HostedCookie::Session.read(&pool, &headers) {
        pool.end_session(c).await;
    }
    let mut r = match target {
        LogoutTarget::Uri(uri) => redirect(&uri),
        LogoutTarget::Login(query) => redirect(&format!("/login?{query}")),
    };
    if let Some(v) = session_cookie(&pool, "", 0) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// The client id and secret of a Basic `Authorization` header (`Err` when malformed).
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

/// A form whose client authenticated (Basic or post), as the token and revocation endpoints
/// take it.
pub(crate) struct ClientForm {
    /// The authenticated client.
    client_id: String,
    /// The form's fields.
    form: Vec<(String, String)>,
}

impl ClientForm {
    /// Field `k`.
    fn get(&self, k: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }
}

impl FromRequest<Arc<Pool>> for ClientForm {
    type Rejection = Response;

    async fn from_request(req: Request, pool: &Arc<Pool>) -> Result<ClientForm, Response> {
        let post = Post::from_request(req, pool).await?;
        client_form(pool, post.ip, &post.headers, &post.body)
            .await
            .map_err(|r| *r)
    }
}

/// 429 for a client whose failed authentications used up their rate limit.
fn too_many_failures() -> Response {
    let r = json_response(
        429,
        json!({ "error": "invalid_client", "error_description": "too many failed client authentications; try again later" }),
    );
    crate::http::responses::retry_after(r, "60")
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
    Ok(ClientForm { client_id, form })
}

/// `POST /oauth2/revoke`.
pub(crate) async fn revoke(State(pool): State<Arc<Pool>>, client: ClientForm) -> Response {
    let token = client.get("token").unwrap_or("");
    match pool.revoke(&client.client_id, token).await {
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
pub(crate) async fn token(State(pool): State<Arc<Pool>>, client: ClientForm) -> Response {
    let client_id = client.client_id.as_str();
    let get = |k: &str| client.get(k);
    let result = match get("grant_type") {
        Some("authorization_code") => {
            pool.redeem_code(
                client_id,
                get("code").unwrap_or(""),
                get("redirect_uri"),
                get("code_verifier"),
            )
            .await
        }
        Some("refresh_token") => {
            pool.refresh(client_id, get("refresh_token").unwrap_or(""))
                .await
        }
        Some("client_credentials") => pool.client_credentials(client_id, get("scope")),
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
pub(crate) async fn userinfo(State(pool): State<Arc<Pool>>, headers: HeaderMap) -> Response {
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
