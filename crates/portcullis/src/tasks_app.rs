//! The demo's backend: a small "tasks" service written as an app behind ALB would be. It never sees
//! a password; it verifies `x-amzn-oidc-data` against the load balancer's public key (pinning the
//! signer), verifies the access token against the pool's JWKS, and shows who is signed in, the
//! token's scopes and the headers it received — as HTML, or JSON for `Accept: application/json`.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use portcullis_verify::{AlbVerifier, KeySource, Verifier, VerifyError};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// What the app trusts: the library verifier a backend would use (`portcullis-verify` with the
/// `axum` feature), pinned to one load balancer, client and pool.
pub struct TasksApp {
    /// Verifies `x-amzn-oidc-data` (keys fetched by kid and kept) and the access token (JWKS).
    pub verifier: Arc<Verifier>,
}

impl TasksApp {
    /// An app trusting this signer, client and pool; `admin_base` serves `/public-keys/<kid>`.
    pub fn new(
        signer: &str,
        client_id: &str,
        admin_base: String,
        jwks_url: String,
        issuer: String,
    ) -> Self {
        let alb = AlbVerifier::new(signer)
            .expect_client(client_id)
            .expect_issuer(issuer.clone())
            .leeway(5);
        TasksApp {
            verifier: Arc::new(
                Verifier::new(alb, KeySource::Portcullis(admin_base))
                    .with_access_tokens(&jwks_url, &issuer),
            ),
        }
    }
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
    let who = match app.verifier.identity(&headers).await {
        Ok(w) => w,
        Err(e @ VerifyError::KeyUnavailable) => {
            return fail(StatusCode::BAD_GATEWAY, e.to_string());
        }
        Err(e) => return fail(StatusCode::UNAUTHORIZED, e.to_string()),
    };
    let Some(alb) = who.alb.clone() else {
        return fail(
            StatusCode::UNAUTHORIZED,
            "no x-amzn-oidc-data header".into(),
        );
    };
    let identity = who.sub.as_str();
    let scopes: Vec<&str> = who.scopes.iter().map(String::as_str).collect();
    let access = who.access_claims.clone().unwrap_or_default();
    let can_read = scopes.contains(&"tasks/read");
    let tasks = if can_read {
        json!([{ "id": 1, "title": "Put Portcullis in front of the app", "done": true },
               { "id": 2, "title": "Delete the login code", "done": true },
               { "id": 3, "title": "Run the ALB + Cognito stack on a laptop", "done": false }])
    } else {
        json!([])
    };
    let username = who.claim("username").unwrap_or(identity);
    if json {
        return axum::Json(json!({
            "verified": true,
            "path": uri.path(),
            "user": who.claims,
            "username": username,
            "signer": alb.signer,
            "kid": alb.kid,
            "client": alb.client,
            "groups": who.groups,
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
        signer = escape(&alb.signer),
        kid = escape(&alb.kid),
        tasks_html = if can_read {
            format!("<ul>{task_list}</ul>")
        } else {
            "<p>Your token lacks <code>tasks/read</code>.</p>".into()
        },
    );
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}
