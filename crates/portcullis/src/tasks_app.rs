//! The demo's backend: a small "tasks" service written as an app behind ALB would be. It never sees
//! a password; it verifies `x-amzn-oidc-data` against the load balancer's public key (pinning the
//! signer), verifies the access token against the pool's JWKS, and shows who is signed in, the
//! token's scopes and the headers it received — as HTML, or JSON for `Accept: application/json`.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use portcullis_auth::oidc::HttpClient;
use portcullis_verify::{AlbVerifier, PublicKey};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What the app trusts.
pub struct TasksApp {
    /// ALB-format header verifier (pins the load balancer ARN and the client).
    pub verifier: AlbVerifier,
    /// `<admin base>/public-keys` (the PEM is at `/<kid>`).
    pub keys_url: String,
    /// The pool's JWKS, for access tokens.
    pub jwks_url: String,
    /// The pool's issuer.
    pub issuer: String,
    http: HttpClient,
    keys: Mutex<HashMap<String, Arc<PublicKey>>>,
    jwks: Mutex<Option<Arc<JwkSet>>>,
}

impl TasksApp {
    /// An app trusting this signer, client and pool.
    pub fn new(
        signer: &str,
        client_id: &str,
        keys_url: String,
        jwks_url: String,
        issuer: String,
    ) -> Self {
        TasksApp {
            verifier: AlbVerifier::new(signer)
                .expect_client(client_id)
                .expect_issuer(issuer.clone())
                .leeway(5),
            keys_url: keys_url.trim_end_matches('/').to_string(),
            jwks_url,
            issuer,
            http: portcullis_auth::oidc::http_client(),
            keys: Mutex::new(HashMap::new()),
            jwks: Mutex::new(None),
        }
    }

    async fn get(&self, url: &str) -> Result<Bytes, String> {
        let req = http::Request::get(url)
            .body(Full::new(Bytes::new()))
            .map_err(|e| e.to_string())?;
        let resp = self
            .http
            .request(req)
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("GET {url}: {}", resp.status()));
        }
        Ok(Limited::new(resp.into_body(), 64 * 1024)
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes())
    }

    async fn key(&self, kid: &str) -> Result<Arc<PublicKey>, String> {
        if let Some(k) = self.keys.lock().ok().and_then(|m| m.get(kid).cloned()) {
            return Ok(k);
        }
        if uuid_like(kid).is_none() {
            return Err("kid is not a UUID".into());
        }
        let pem = self.get(&format!("{}/{kid}", self.keys_url)).await?;
        let key = Arc::new(
            PublicKey::from_pem(&String::from_utf8_lossy(&pem)).map_err(|e| e.to_string())?,
        );
        if let Ok(mut m) = self.keys.lock() {
            m.insert(kid.to_string(), key.clone());
        }
        Ok(key)
    }

    async fn verify_access_token(&self, token: &str) -> Result<Map<String, Value>, String> {
        let kid = jsonwebtoken::decode_header(token)
            .map_err(|e| e.to_string())?
            .kid
            .ok_or("no kid")?;
        let cached = self.jwks.lock().ok().and_then(|g| g.clone());
        let set = match cached {
            Some(s) if s.find(&kid).is_some() => s,
            _ => {
                let s: Arc<JwkSet> = Arc::new(
                    serde_json::from_slice(&self.get(&self.jwks_url).await?)
                        .map_err(|e| e.to_string())?,
                );
                if let Ok(mut g) = self.jwks.lock() {
                    *g = Some(s.clone());
                }
                s
            }
        };
        let jwk = set.find(&kid).ok_or("unknown kid")?;
        let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
        let mut v = Validation::new(Algorithm::RS256);
        v.set_issuer(&[&self.issuer]);
        v.validate_aud = false;
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &v)
            .map_err(|e| e.to_string())?
            .claims;
        if claims.get("token_use").and_then(Value::as_str) != Some("access") {
            return Err("not an access token".into());
        }
        Ok(claims)
    }
}

fn uuid_like(s: &str) -> Option<()> {
    (s.len() == 36 && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')).then_some(())
}

/// The app's routes: `/health`, and every other path shows the signed-in user.
pub fn router(app: Arc<TasksApp>) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok\n" }))
        .fallback(show)
        .with_state(app)
}

/// Serves the app until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Arc<TasksApp>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown)
        .await
}

fn wants_json(h: &HeaderMap) -> bool {
    h.get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

async fn show(
    State(app): State<Arc<TasksApp>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let json = wants_json(&headers);
    let received: Map<String, Value> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()),
            )
        })
        .collect();
    let fail = |status: StatusCode, why: String| -> Response {
        if json {
            (
                status,
                axum::Json(json!({ "verified": false, "error": why, "headers": received })),
            )
                .into_response()
        } else {
            let body = format!(
                "<!doctype html><title>Tasks</title><h1>Not verified</h1><p>{}</p><p>This app must be reached through Portcullis.</p>",
                escape(&why)
            );
            (
                status,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                body,
            )
                .into_response()
        }
    };
    let Some(data) = headers
        .get("x-amzn-oidc-data")
        .and_then(|v| v.to_str().ok())
    else {
        return fail(
            StatusCode::UNAUTHORIZED,
            "no x-amzn-oidc-data header".into(),
        );
    };
    let kid = match portcullis_verify::peek_header(data) {
        Ok(h) => h.kid,
        Err(e) => return fail(StatusCode::UNAUTHORIZED, format!("x-amzn-oidc-data: {e}")),
    };
    let key = match app.key(&kid).await {
        Ok(k) => k,
        Err(e) => return fail(StatusCode::BAD_GATEWAY, format!("public key {kid}: {e}")),
    };
    let claims = match app.verifier.verify(data, &key, portcullis_auth::now()) {
        Ok(c) => c,
        Err(e) => return fail(StatusCode::UNAUTHORIZED, format!("x-amzn-oidc-data: {e}")),
    };
    let identity = headers
        .get("x-amzn-oidc-identity")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if Some(identity) != claims.sub() {
        return fail(
            StatusCode::UNAUTHORIZED,
            "x-amzn-oidc-identity does not match the signed sub".into(),
        );
    }
    let token = headers
        .get("x-amzn-oidc-accesstoken")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let access = match app.verify_access_token(token).await {
        Ok(c) => c,
        Err(e) => {
            return fail(
                StatusCode::UNAUTHORIZED,
                format!("x-amzn-oidc-accesstoken: {e}"),
            );
        }
    };
    let scopes: Vec<&str> = access
        .get("scope")
        .and_then(Value::as_str)
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
        .collect();
    let can_read = scopes.contains(&"tasks/read");
    let tasks = if can_read {
        json!([{ "id": 1, "title": "Put Portcullis in front of the app", "done": true },
               { "id": 2, "title": "Delete the login code", "done": true },
               { "id": 3, "title": "Run the ALB + Cognito stack on a laptop", "done": false }])
    } else {
        json!([])
    };
    let username = claims
        .claims
        .get("username")
        .and_then(Value::as_str)
        .unwrap_or(identity);
    if json {
        return axum::Json(json!({
            "verified": true,
            "path": uri.path(),
            "user": claims.claims,
            "username": username,
            "signer": claims.header.signer,
            "kid": claims.header.kid,
            "client": claims.header.client,
            "scopes": scopes,
            "access_token_claims": access,
            "tasks": tasks,
            "headers": received,
        }))
        .into_response();
    }
    let rows: String = received
        .iter()
        .map(|(k, v)| {
            let v = v.as_str().unwrap_or("");
            let shown = if v.len() > 120 {
                format!("{}…", &v[..v.floor_char_boundary(120)])
            } else {
                v.to_string()
            };
            format!(
                "<tr><th>{}</th><td><code>{}</code></td></tr>",
                escape(k),
                escape(&shown)
            )
        })
        .collect();
    let scope_list: String = scopes
        .iter()
        .map(|s| format!("<li><code>{}</code></li>", escape(s)))
        .collect();
    let task_list: String = tasks
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            format!(
                "<li>{} {}</li>",
                if t["done"] == true { "✔" } else { "☐" },
                escape(t["title"].as_str().unwrap_or(""))
            )
        })
        .collect();
    let body = format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Tasks</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}th{{text-align:left;padding-right:1rem;vertical-align:top}}code{{word-break:break-all}}</style></head>
<body><h1>Tasks for {user}</h1>
<p>Signed in as <strong>{user}</strong> (<code>{sub}</code>). <code>x-amzn-oidc-data</code> verified: signed by <code>{signer}</code> with key <code>{kid}</code>.</p>
<h2>Scopes in the access token</h2><ul>{scope_list}</ul>
<h2>Tasks</h2>{tasks_html}
<h2>Headers this app received</h2><table>{rows}</table></body></html>"#,
        user = escape(username),
        sub = escape(identity),
        signer = escape(&claims.header.signer),
        kid = escape(&claims.header.kid),
        tasks_html = if can_read {
            format!("<ul>{task_list}</ul>")
        } else {
            "<p>Your token lacks <code>tasks/read</code>.</p>".into()
        },
    );
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}
