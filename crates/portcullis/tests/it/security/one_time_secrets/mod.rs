//! One-time secrets (reset, sign-up and attribute codes, TOTP), attribute verification and
//! account enumeration, attacked through the real API, hosted UI and balancer. This module holds
//! the helpers the tests share; the tests are in one submodule per topic.

use crate::kit::*;
use base64::Engine;
use portcullis_idp::domain::accounts::{CODE_ATTEMPT_WINDOW, MAX_CODE_ATTEMPTS};
use portcullis_idp::domain::mfa::{MFA_LOCKOUT, STEP_SECONDS, base32_decode, totp};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The last code the outbox holds for `user` and `purpose`.
fn last_code(kit: &Kit, user: &str, purpose: &str) -> String {
    let text = std::fs::read_to_string(kit.pool().outbox_path().unwrap()).unwrap();
    text.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|m| m["username"] == user && m["purpose"] == purpose)
        .unwrap_or_else(|| panic!("no {purpose} code for {user}"))["code"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `n` six-digit codes, none of them in `avoid`.
fn wrong_codes(n: usize, avoid: &[String]) -> Vec<String> {
    (0..)
        .map(|i| format!("{:06}", 100_000 + i))
        .filter(|c| !avoid.contains(c))
        .take(n)
        .collect()
}

/// Counts answers by exception name.
fn tally(answers: impl IntoIterator<Item = String>) -> BTreeMap<String, usize> {
    let mut t = BTreeMap::new();
    for a in answers {
        *t.entry(a).or_insert(0) += 1;
    }
    t
}

async fn api_tokens(api: &PoolApi, user: &str, password: &str) -> Value {
    let v = api.password_auth("api-cli", user, password).await;
    v["AuthenticationResult"].clone()
}

/// Posts a hosted-UI form of the `tasks-web` client (double-submit CSRF token chosen here) and
/// returns the page.
async fn hosted_post(kit: &Kit, path: &str, fields: &[(&str, &str)]) -> String {
    hosted_post_full(kit, path, fields).await.1
}

/// As `hosted_post`: (status, page with per-render values blanked, header names).
async fn hosted_post_full(
    kit: &Kit,
    path: &str,
    fields: &[(&str, &str)],
) -> (u16, String, Vec<String>) {
    let query = format!(
        "client_id=tasks-web&response_type=code&scope=openid&redirect_uri={}",
        urlencode(&kit.url("/oauth2/idpresponse"))
    );
    let mut form: Vec<(&str, &str)> = vec![("_csrf", "fixed-csrf-token")];
    form.extend_from_slice(fields);
    let r = plain()
        .post(format!("{}{path}?{query}", kit.pool_url))
        .header("cookie", "XSRF-TOKEN=fixed-csrf-token")
        .form(&form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let names = header_names(&r);
    let html = r.text().await.unwrap();
    (status, blank_csrf(&html), names)
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The page without its per-render CSRF token and CSP nonce (if any).
fn blank_csrf(html: &str) -> String {
    let mut s = html.to_string();
    for marker in ["name=\"_csrf\" value=\"", "nonce=\""] {
        let mut out = String::new();
        let mut rest = s.as_str();
        while let Some(i) = rest.find(marker) {
            let j = i + marker.len();
            out.push_str(&rest[..j]);
            rest = &rest[j..];
            let end = rest.find('"').unwrap_or(rest.len());
            rest = &rest[end..];
        }
        out.push_str(rest);
        s = out;
    }
    s
}

mod enumeration;
mod guesses;
mod verification;
