//! The HTTP side of federation: the redirect to a provider and `/oauth2/idpresponse`.

use crate::domain::external_sign_in::Finished;
use crate::domain::federation::LOGIN_LIFETIME;
use crate::domain::pool::Pool;
use crate::http::client_ip::ClientIp;
use std::sync::Arc;

/// The binding cookie's name: `__Host-` over HTTPS (no sibling host or plain page can plant it).
pub(crate) fn binding_cookie(pool: &Pool) -> &'static str {
    if pool.base_url.starts_with("https://") {
        "__Host-idp-login"
    } else {
        "idp-login"
    }
}

fn set_binding(pool: &Pool, value: &str) -> Option<axum::http::HeaderValue> {
    let secure = if pool.base_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    axum::http::HeaderValue::from_str(&format!(
        "{}={value}; Path=/; Max-Age={LOGIN_LIFETIME}; HttpOnly; SameSite=Lax{secure}",
        binding_cookie(pool)
    ))
    .ok()
}

/// Takes a rate-limit token for the client address; a 429 page when it has none left.
async fn admitted(pool: &Pool, ip: std::net::IpAddr) -> Result<(), axum::response::Response> {
    if pool.admit(Some(ip), None).await.is_err() {
        return Err(crate::http::responses::too_many());
    }
    Ok(())
}

/// `/oauth2/authorize` with a provider chosen: send the browser there (rate limited per client
/// address, as each start stores a pending login).
pub(crate) async fn redirect_to_provider(
    pool: &Pool,
    ip: std::net::IpAddr,
    provider: &str,
    query: &[(String, String)],
    headers: &axum::http::HeaderMap,
) -> axum::response::Response {
    use crate::http::responses::{cookie, error_page, redirect};
    use axum::http::{StatusCode, header};
    if let Err(refused) = admitted(pool, ip).await {
        return refused;
    }
    match pool
        .begin_federation(provider, query, cookie(headers, binding_cookie(pool)))
        .await
    {
        Ok(b) => {
            let mut r = redirect(&b.location);
            if let Some(v) = set_binding(pool, &b.binding) {
                r.headers_mut().append(header::SET_COOKIE, v);
            }
            r
        }
        Err(e) => {
            tracing::warn!(pool = %pool.name, provider, error = %e, "cannot start an external sign-in");
            error_page(
                StatusCode::BAD_GATEWAY,
                "idp_unavailable",
                "The sign-in provider cannot be reached right now. Try again shortly.",
            )
        }
    }
}

/// `GET /oauth2/idpresponse`: the provider sends the browser back here.
pub(crate) async fn idp_response(
    axum::extract::State(pool): axum::extract::State<Arc<Pool>>,
    ClientIp(ip): ClientIp,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use crate::http::request::parse_query;
    use crate::http::responses::{HostedCookie, cookie, error_page, redirect, session_cookie};
    use axum::http::{StatusCode, header};
    if let Err(refused) = admitted(&pool, ip).await {
        return refused;
    }
    let q = match parse_query(raw.as_deref()) {
        Ok(q) => q,
        Err(r) => return *r,
    };
    match pool
        .finish_federation(&q, cookie(&headers, binding_cookie(&pool)))
        .await
    {
        Finished::SignedIn(req, user) => {
            let now = pool.now();
            let session = match pool.start_session(&user, now).await {
                Ok(s) => s,
                Err(e) => {
                    return error_page(StatusCode::INTERNAL_SERVER_ERROR, e.error, &e.description);
                }
            };
            // The browser session's `sid`, so that signing out of it ends this sign-in too.
            let sid = pool.browser_sid(&session);
            let location = match pool.complete_authorization_in(&req, &user, now, &sid).await {
                Ok(l) => l,
                Err(e) => {
                    return error_page(StatusCode::INTERNAL_SERVER_ERROR, e.error, &e.description);
                }
            };
            let mut r = redirect(&location);
            if let Some(v) =
                session_cookie(&pool, &session, crate::domain::sessions::SESSION_LIFETIME)
            {
                r.headers_mut().append(header::SET_COOKIE, v);
            }
            if let Some(v) = HostedCookie::Csrf.set(&pool, "", Some(0)) {
                r.headers_mut().append(header::SET_COOKIE, v);
            }
            r
        }
        Finished::Redirect {
            redirect_uri,
            error,
            description,
            state,
        } => {
            let mut ser = form_urlencoded::Serializer::new(String::new());
            ser.append_pair("error", &error);
            if !description.is_empty() {
                ser.append_pair("error_description", &description);
            }
            if let Some(s) = state {
                ser.append_pair("state", &s);
            }
            let sep = if redirect_uri.contains('?') { '&' } else { '?' };
            redirect(&format!("{redirect_uri}{sep}{}", ser.finish()))
        }
        Finished::Page(status, code, message) => error_page(
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            code,
            &message,
        ),
    }
}
