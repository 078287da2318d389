//! The sign-in flows, once: through a protected URL to the hosted UI and back with a session.

use super::clients::{browser, location, query_param, set_cookie_value};
use super::{Kit, PASSWORD};

/// The `AWSELBAuthSessionCookie-N=...` pairs a response sets, joined as a Cookie header value.
pub fn session_cookie_of(r: &reqwest::Response) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter(|v| v.starts_with("AWSELBAuthSessionCookie-"))
        .map(|v| v.split(';').next().unwrap().to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

impl Kit {
    /// The same session as `cookie` after `edit`, sealed again with the balancer's own keys: times
    /// (expiry, when it began) and ids are set, not waited for.
    pub fn resealed(
        &self,
        cookie: &str,
        edit: impl FnOnce(&mut portcullis_auth::session_cookie::Session),
    ) -> String {
        use portcullis_auth::session_cookie::{self, CookieRead};
        let keys = portcullis_auth::AuthKeys::load_or_generate(&self.state_dir.join("lb")).unwrap();
        let mut headers = http::HeaderMap::new();
        headers.insert("cookie", cookie.parse().unwrap());
        let CookieRead::Valid { mut session, .. } =
            session_cookie::read(&keys.ring, "AWSELBAuthSessionCookie", &headers)
        else {
            panic!("the session cookie opens")
        };
        edit(&mut session);
        session_cookie::seal(&keys.ring, "AWSELBAuthSessionCookie", &session)
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, v)| format!("AWSELBAuthSessionCookie-{i}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The same session as `cookie` with its access token expired (as if an hour had passed);
    /// also returns the session's access token.
    pub fn with_access_expired(&self, cookie: &str) -> (String, String) {
        let mut token = String::new();
        let stale = self.resealed(cookie, |s| {
            s.access_exp = 0;
            token = s.access_token.clone();
        });
        assert!(!token.is_empty(), "the session holds an access token");
        (stale, token)
    }
}

/// The `_csrf` value of the sign-in form.
pub fn csrf(html: &str) -> String {
    let i =
        html.find("name=\"_csrf\" value=\"").expect("csrf field") + "name=\"_csrf\" value=\"".len();
    html[i..].split('"').next().unwrap().to_string()
}

/// Follows a protected URL to the hosted sign-in page and returns its URL.
pub async fn sign_in_page(kit: &Kit, client: &reqwest::Client) -> String {
    let r = client.get(kit.url("/tasks")).send().await.unwrap();
    let r = client.get(location(&r)).send().await.unwrap();
    format!("{}{}", kit.pool_url, location(&r))
}

/// Gets the sign-in page at `login_url` and posts its form with the page's CSRF token.
pub async fn post_sign_in(
    client: &reqwest::Client,
    login_url: &str,
    username: &str,
    password: &str,
) -> reqwest::Response {
    let html = client
        .get(login_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    post_sign_in_form(client, login_url, &csrf(&html), username, password).await
}

/// Posts the sign-in form of `login_url` with `csrf` as given (a token from an earlier page, or
/// a forged one).
pub async fn post_sign_in_form(
    client: &reqwest::Client,
    login_url: &str,
    csrf: &str,
    username: &str,
    password: &str,
) -> reqwest::Response {
    client
        .post(login_url)
        .form(&[
            ("_csrf", csrf),
            ("username", username),
            ("password", password),
        ])
        .send()
        .await
        .unwrap()
}

/// Posts the sign-in form of `login_url` with a fresh CSRF token: (status, page).
pub async fn submit_sign_in(
    client: &reqwest::Client,
    login_url: &str,
    username: &str,
    password: &str,
) -> (u16, String) {
    let r = post_sign_in(client, login_url, username, password).await;
    let status = r.status().as_u16();
    (status, r.text().await.unwrap())
}

/// What a login up to the IdP's redirect back gives: the callback URL with code and state.
pub struct PendingLogin {
    pub callback: String,
    pub nonce: String,
    /// The PKCE verifier the balancer derives from `nonce` under its key.
    verifier: String,
}

impl PendingLogin {
    /// The code in the callback URL.
    pub fn code(&self) -> String {
        let code = query_param(&self.callback, "code");
        assert!(!code.is_empty(), "an empty code in {}", self.callback);
        code
    }
    /// The PKCE verifier the balancer would send (derived from this browser's nonce cookie under
    /// the balancer's key).
    pub fn verifier(&self) -> String {
        self.verifier.clone()
    }
}

/// Goes from a protected URL to the IdP's redirect back (without following it).
pub async fn login_until_callback(
    kit: &Kit,
    client: &reqwest::Client,
    path: &str,
    password: &str,
) -> PendingLogin {
    login_until_callback_as(kit, client, path, "alice", password).await
}

/// As [`login_until_callback`], for `username`.
pub async fn login_until_callback_as(
    kit: &Kit,
    client: &reqwest::Client,
    path: &str,
    username: &str,
    password: &str,
) -> PendingLogin {
    let r = client.get(kit.url(path)).send().await.unwrap();
    assert_eq!(r.status(), 302, "protected URL redirects to the IdP");
    let nonce = set_cookie_value(&r, "AWSALBAuthNonce").expect("nonce cookie");
    let authorize = location(&r);
    assert!(
        authorize.starts_with(&format!("{}/oauth2/authorize?", kit.pool_url)),
        "{authorize}"
    );
    let r = client.get(&authorize).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let login = format!("{}{}", kit.pool_url, location(&r));
    assert!(login.contains("/login?client_id="), "{login}");
    let page = client.get(&login).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let r = post_sign_in_form(client, &login, &csrf(&html), username, password).await;
    assert_eq!(r.status(), 302, "sign-in succeeds");
    let callback = location(&r);
    assert!(
        callback.starts_with(&kit.url("/oauth2/idpresponse?code=")),
        "{callback}"
    );
    let keys = portcullis_auth::AuthKeys::load_or_generate(&kit.state_dir.join("lb")).unwrap();
    let verifier = portcullis_auth::state::pkce_verifier(&keys.mac, &nonce);
    PendingLogin {
        callback,
        nonce,
        verifier,
    }
}

/// A full login of `alice` through `path` in a fresh browser: the browser and the answer to the
/// IdP's redirect back (the callback), as it came.
pub async fn login_to_callback(kit: &Kit, path: &str) -> (reqwest::Client, reqwest::Response) {
    let client = browser();
    let p = login_until_callback(kit, &client, path, PASSWORD).await;
    let r = client.get(&p.callback).send().await.unwrap();
    (client, r)
}

/// A full login; returns the client holding the session.
pub async fn login(kit: &Kit, path: &str) -> reqwest::Client {
    login_as(kit, path, "alice").await
}

/// A full login of `username` (password [`PASSWORD`]); returns the client holding the session.
pub async fn login_as(kit: &Kit, path: &str, username: &str) -> reqwest::Client {
    let client = browser();
    let p = login_until_callback_as(kit, &client, path, username, PASSWORD).await;
    let r = client.get(&p.callback).send().await.unwrap();
    assert_eq!(
        r.status(),
        302,
        "callback sets the session: {:?}",
        r.text().await
    );
    client
}
