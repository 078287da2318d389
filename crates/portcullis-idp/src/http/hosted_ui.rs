//! The hosted UI's pages at Cognito's paths: sign-in (`/login`), sign-up and confirmation
//! (`/signup`, `/confirmUser`), forgot password (`/forgotPassword`, `/confirmForgotPassword`) and
//! the new password an admin-created user must choose (`/forceChangePassword`). Every page carries
//! the authorization request it serves in its query, every form a CSRF token bound to a cookie, and
//! each works without JavaScript. Decisions are made in `accounts` and `pool`; this renders.

use crate::domain::accounts::SignInError;
use crate::domain::authorize::AuthorizeRequest;
use crate::domain::mfa::{self, Step};
use crate::domain::pool::Pool;
use crate::domain::secrets::random_token;
use crate::error::IdpError;
use crate::http::client_ip::ClientIp;
use crate::http::{
    HostedCookie, error_page, html_with, origin_of, parse_query, problem, redirect, session_cookie,
};
use crate::store::UserRecord;
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Map;
use std::sync::Arc;

/// One input of a form.
struct Field {
    label: &'static str,
    name: &'static str,
    kind: &'static str,
    autocomplete: &'static str,
    value: String,
    autofocus: bool,
    hint: Option<String>,
}

impl Field {
    fn new(label: &'static str, name: &'static str, kind: &'static str, ac: &'static str) -> Field {
        Field {
            label,
            name,
            kind,
            autocomplete: ac,
            value: String::new(),
            autofocus: false,
            hint: None,
        }
    }
    fn value(mut self, v: &str) -> Field {
        self.value = v.chars().take(128).collect();
        self
    }
    fn focus(mut self) -> Field {
        self.autofocus = true;
        self
    }
    fn hint(mut self, h: String) -> Field {
        self.hint = Some(h);
        self
    }
}

#[derive(Template)]
#[template(path = "page.html")]
struct Page<'a> {
    title: &'a str,
    app_name: &'a str,
    pool_name: &'a str,
    logo: Option<&'a str>,
    client_css: Option<String>,
    notice: Option<&'a str>,
    error: Option<&'a str>,
    action: String,
    csrf: &'a str,
    hidden: Vec<(&'static str, String)>,
    fields: Vec<Field>,
    submit: &'a str,
    secondary: Option<(&'static str, &'static str, &'static str)>,
    links: Vec<(String, &'static str)>,
    /// "Sign in with …" buttons: (href, provider name).
    providers: Vec<(String, String)>,
    show_form: bool,
}

/// What a page shows besides the common frame.
struct Spec<'a> {
    title: &'a str,
    path: &'a str,
    notice: Option<&'a str>,
    error: Option<&'a str>,
    hidden: Vec<(&'static str, String)>,
    fields: Vec<Field>,
    submit: &'a str,
    secondary: Option<(&'static str, &'static str, &'static str)>,
    links: Vec<(String, &'static str)>,
    providers: Vec<(String, String)>,
    show_form: bool,
}

impl<'a> Spec<'a> {
    fn new(title: &'a str, path: &'a str, submit: &'a str) -> Spec<'a> {
        Spec {
            title,
            path,
            notice: None,
            error: None,
            hidden: Vec::new(),
            fields: Vec::new(),
            submit,
            secondary: None,
            links: Vec::new(),
            providers: Vec::new(),
            show_form: true,
        }
    }
}

/// The authorization request a page serves, from its query.
struct Ctx {
    pool: Arc<Pool>,
    req: AuthorizeRequest,
    /// The query without page-only parameters (`username`), for links and form actions.
    query: String,
    /// `username` from the query, when a link carried it.
    username: Option<String>,
}

fn context(pool: Arc<Pool>, raw: Option<&str>) -> Result<Ctx, Box<Response>> {
    let q = parse_query(raw)?;
    let req = pool.check_authorize(&q).map_err(|p| Box::new(problem(p)))?;
    let username = q
        .iter()
        .find(|(k, _)| k == "username")
        .map(|(_, v)| v.clone());
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in q.iter().filter(|(k, _)| k != "username") {
        ser.append_pair(k, v);
    }
    Ok(Ctx {
        pool,
        req,
        query: ser.finish(),
        username,
    })
}

impl Ctx {
    /// Whether the client reveals which users exist (`prevent_user_existence_errors = LEGACY`).
    fn reveal(&self) -> bool {
        self.pool
            .client(&self.req.client_id)
            .is_some_and(|cl| cl.client.prevent_user_existence_errors == "LEGACY")
    }

    fn link(&self, path: &str) -> String {
        format!("{path}?{}", self.query)
    }

    fn render(&self, status: StatusCode, spec: Spec<'_>) -> Response {
        let client = self.pool.client(&self.req.client_id);
        let app = self.pool.client_name(&self.req.client_id);
        let logo = client.as_ref().and_then(|c| c.client.logo_url.clone());
        let client_css = client
            .as_ref()
            .filter(|c| c.client.css.is_some())
            .map(|c| format!("/static/client/{}.css", c.client.client_id));
        let Ok(csrf) = random_token(32) else {
            return unavailable();
        };
        let page = Page {
            title: spec.title,
            app_name: &app,
            pool_name: &self.pool.name,
            logo: logo.as_deref(),
            client_css,
            notice: spec.notice,
            error: spec.error,
            action: self.link(spec.path),
            csrf: &csrf,
            hidden: spec.hidden,
            fields: spec.fields,
            submit: spec.submit,
            secondary: spec.secondary,
            links: spec.links,
            providers: spec.providers,
            show_form: spec.show_form,
        };
        let Ok(body) = page.render() else {
            return error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "the page could not be rendered",
            );
        };
        let img_origin = logo
            .as_deref()
            .filter(|l| l.starts_with("https://"))
            .and_then(origin_of);
        let mut r = html_with(
            status,
            body,
            origin_of(&self.req.redirect_uri).as_deref(),
            img_origin.as_deref(),
        );
        if let Some(v) = HostedCookie::Csrf.set(&self.pool, &csrf, None) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
        r
    }

    fn login(
        &self,
        status: StatusCode,
        username: &str,
        notice: Option<&str>,
        error: Option<&str>,
    ) -> Response {
        let mut spec = Spec::new("Sign in", "/login", "Sign in");
        spec.notice = notice;
        spec.error = error;
        spec.fields = vec![
            Field::new("User name", "username", "text", "username")
                .value(username)
                .focus(),
            Field::new("Password", "password", "password", "current-password"),
        ];
        let client = self.pool.client(&self.req.client_id);
        let cognito = client.as_ref().is_none_or(|c| c.client.supports_cognito());
        spec.providers = self.provider_buttons();
        spec.show_form = cognito;
        if cognito {
            spec.links
                .push((self.link("/forgotPassword"), "Forgot your password?"));
            if self.pool.allow_self_sign_up {
                spec.links
                    .push((self.link("/signup"), "Need an account? Sign up"));
            }
        }
        self.render(status, spec)
    }

    /// A button per external provider the client supports, each to `/oauth2/authorize` with the
    /// same request and `identity_provider=<name>`.
    fn provider_buttons(&self) -> Vec<(String, String)> {
        let Some(client) = self.pool.client(&self.req.client_id) else {
            return Vec::new();
        };
        let catalog = self.pool.catalog();
        let base: Vec<(String, String)> = form_urlencoded::parse(self.query.as_bytes())
            .into_owned()
            .filter(|(k, _)| k != "identity_provider" && k != "idp_identifier")
            .collect();
        client
            .client
            .identity_providers()
            .into_iter()
            .filter(|p| catalog.identity_providers.contains_key(p))
            .map(|p| {
                let mut ser = form_urlencoded::Serializer::new(String::new());
                for (k, v) in &base {
                    ser.append_pair(k, v);
                }
                ser.append_pair("identity_provider", &p);
                (format!("/oauth2/authorize?{}", ser.finish()), p)
            })
            .collect()
    }

    fn confirm(
        &self,
        status: StatusCode,
        username: &str,
        notice: Option<&str>,
        error: Option<&str>,
    ) -> Response {
        let mut spec = Spec::new("Confirm your account", "/confirmUser", "Confirm account");
        spec.notice = notice;
        spec.error = error;
        spec.fields = vec![
            Field::new("User name", "username", "text", "username").value(username),
            Field::new("Confirmation code", "code", "text", "one-time-code").focus(),
        ];
        spec.secondary = Some(("action", "resend", "Send a new code"));
        spec.links.push((self.link("/login"), "Back to sign in"));
        self.render(status, spec)
    }

    fn reset(
        &self,
        status: StatusCode,
        username: &str,
        notice: Option<&str>,
        error: Option<&str>,
    ) -> Response {
        let mut spec = Spec::new(
            "Choose a new password",
            "/confirmForgotPassword",
            "Change password",
        );
        spec.notice = notice;
        spec.error = error;
        spec.fields = vec![
            Field::new("User name", "username", "text", "username").value(username),
            Field::new("Code", "code", "text", "one-time-code").focus(),
            Field::new("New password", "password", "password", "new-password")
                .hint(policy_hint(&self.pool)),
            Field::new(
                "Confirm new password",
                "confirm",
                "password",
                "new-password",
            ),
        ];
        spec.links.push((self.link("/login"), "Back to sign in"));
        self.render(status, spec)
    }

    fn new_password(&self, status: StatusCode, session: &str, error: Option<&str>) -> Response {
        let mut spec = Spec::new(
            "Choose a new password",
            "/forceChangePassword",
            "Set password",
        );
        spec.notice =
            Some("Your temporary password worked. Choose the password you will use from now on.");
        spec.error = error;
        spec.hidden = vec![("session", session.to_string())];
        spec.fields = vec![
            Field::new("New password", "password", "password", "new-password")
                .focus()
                .hint(policy_hint(&self.pool)),
            Field::new(
                "Confirm new password",
                "confirm",
                "password",
                "new-password",
            ),
        ];
        self.render(status, spec)
    }

    /// After a right password: a second factor when the pool asks one, else signed in.
    async fn after_password(&self, user: UserRecord) -> Response {
        let username = user.username.clone();
        match self.pool.next_step(user, &self.req.client_id).await {
            Ok(Step::Done(u)) => self.signed_in(&u).await,
            Ok(Step::Challenge { name, session }) if name == mfa::MFA_SETUP => {
                match self.pool.associate_token(&username).await {
                    Ok(secret) => {
                        self.mfa_setup(StatusCode::OK, &session, &username, &secret, None)
                    }
                    Err(_) => unavailable(),
                }
            }
            Ok(Step::Challenge { session, .. }) => self.mfa_code(StatusCode::OK, &session, None),
            Err(_) => unavailable(),
        }
    }

    fn mfa_code(&self, status: StatusCode, session: &str, error: Option<&str>) -> Response {
        let mut spec = Spec::new("Enter your code", "/mfa", "Sign in");
        spec.notice =
            Some("Open your authenticator app and enter the 6-digit code for this account.");
        spec.error = error;
        spec.hidden = vec![
            ("session", session.to_string()),
            ("kind", mfa::SOFTWARE_TOKEN_MFA.into()),
        ];
        spec.fields = vec![Field::new("Code", "code", "text", "one-time-code").focus()];
        spec.links.push((self.link("/login"), "Back to sign in"));
        self.render(status, spec)
    }

    fn mfa_setup(
        &self,
        status: StatusCode,
        session: &str,
        username: &str,
        secret: &str,
        error: Option<&str>,
    ) -> Response {
        let mut spec = Spec::new("Set up your authenticator", "/mfa", "Verify and sign in");
        let uri = mfa::otpauth_uri(&self.pool.name, username, secret);
        let notice = format!(
            "This app requires a second step at sign-in. Add this key to your authenticator app, then enter the 6-digit code it shows. Key: {}",
            grouped(secret)
        );
        spec.notice = Some(&notice);
        spec.error = error;
        spec.hidden = vec![
            ("session", session.to_string()),
            ("kind", mfa::MFA_SETUP.into()),
        ];
        spec.fields = vec![Field::new("Code", "code", "text", "one-time-code").focus()];
        spec.links
            .push((uri, "Open in an authenticator app on this device"));
        self.render(status, spec)
    }

    /// Signs the user in: a hosted-UI session and the redirect to the app with a code.
    async fn signed_in(&self, user: &UserRecord) -> Response {
        let now = crate::now() as i64;
        let session = match self.pool.start_session(user, now).await {
            Ok(s) => s,
            Err(e) => {
                return error_page(StatusCode::INTERNAL_SERVER_ERROR, e.error, &e.description);
            }
        };
        let sid = self.pool.browser_sid(&session);
        let location = match self
            .pool
            .complete_authorization_in(&self.req, user, now, &sid)
            .await
        {
            Ok(l) => l,
            Err(e) => {
                return error_page(StatusCode::INTERNAL_SERVER_ERROR, e.error, &e.description);
            }
        };
        let mut r = redirect(&location);
        if let Some(v) = session_cookie(
            &self.pool,
            &session,
            crate::domain::sessions::SESSION_LIFETIME,
        ) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
        if let Some(v) = HostedCookie::Csrf.set(&self.pool, "", Some(0)) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
        r
    }
}

fn policy_hint(pool: &Pool) -> String {
    let p = &pool.policy;
    let mut parts = vec![format!("At least {} characters", p.minimum_length)];
    if p.require_uppercase {
        parts.push("an uppercase letter".into());
    }
    if p.require_lowercase {
        parts.push("a lowercase letter".into());
    }
    if p.require_numbers {
        parts.push("a number".into());
    }
    if p.require_symbols {
        parts.push("a symbol".into());
    }
    let last = parts.pop().unwrap_or_default();
    if parts.is_empty() {
        format!("{last}.")
    } else {
        format!("{}, and {last}.", parts.join(", "))
    }
}

/// A posted form after its CSRF token was checked against the cookie.
struct Form(Vec<(String, String)>);

impl Form {
    fn get(&self, k: &str) -> &str {
        self.0
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }
    fn username(&self) -> String {
        self.get("username").trim().chars().take(128).collect()
    }
}

fn form(pool: &Pool, headers: &HeaderMap, body: &Bytes) -> Result<Form, Box<Response>> {
    let fields: Vec<(String, String)> =
        form_urlencoded::parse(body).into_owned().take(16).collect();
    let f = Form(fields);
    let sent = f.get("_csrf");
    let valid = HostedCookie::Csrf
        .read(pool, headers)
        .is_some_and(|c| !c.is_empty() && crate::domain::secrets::constant_time_eq(c, sent));
    if valid {
        Ok(f)
    } else {
        Err(Box::new(error_page(
            StatusCode::FORBIDDEN,
            "invalid_csrf",
            "This form expired or was opened in another browser. Go back and try again.",
        )))
    }
}

/// 503 with `Retry-After`: the hashing queue is full or the user's previous attempt is running.
fn busy() -> Response {
    let mut r = error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "busy",
        "We are busy right now. Try again in a few seconds.",
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    r
}

/// 429 with `Retry-After`: this address or user tried too often.
fn too_many() -> Response {
    let mut r = error_page(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_requests",
        "Too many attempts. Wait a minute, then try again.",
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
    r
}

fn unavailable() -> Response {
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        "This is unavailable right now. Try again shortly.",
    )
}

macro_rules! ctx {
    ($pool:expr, $raw:expr) => {
        match context($pool, $raw.as_deref()) {
            Ok(c) => c,
            Err(r) => return *r,
        }
    };
}

/// Admits a form that checks a secret (or sends a code) through the pool's rate limits.
macro_rules! admitted {
    ($pool:expr, $ip:expr, $user:expr) => {
        if $pool.admit(Some($ip), $user).await.is_err() {
            return too_many();
        }
    };
}

macro_rules! posted {
    ($pool:expr, $headers:expr, $body:expr) => {
        match form(&$pool, &$headers, &$body) {
            Ok(f) => f,
            Err(r) => return *r,
        }
    };
}

/// `GET /login`: the sign-in form.
pub async fn login_page(State(pool): State<Arc<Pool>>, RawQuery(raw): RawQuery) -> Response {
    let c = ctx!(pool, raw);
    if c.req.federate.is_some() {
        return redirect(&format!("/oauth2/authorize?{}", raw.unwrap_or_default()));
    }
    let user = c.username.clone().unwrap_or_default();
    c.login(StatusCode::OK, &user, None, None)
}

/// `POST /login`: checks the password, then signs in, or continues with the step the user's
/// status requires (new password, confirmation, reset).
pub async fn login_submit(
    State(pool): State<Arc<Pool>>,
    ClientIp(ip): ClientIp,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let c = ctx!(pool, raw);
    if let Some(refused) = without_cognito(&c) {
        return refused;
    }
    let f = posted!(c.pool, headers, body);
    let username = f.username();
    admitted!(c.pool, ip, Some(&username));
    match c.pool.sign_in(&username, f.get("password")).await {
        Ok(user) => c.after_password(user).await,
        Err(SignInError::NewPasswordRequired(user)) => {
            match c
                .pool
                .start_challenge(&user, &c.req.client_id, "NEW_PASSWORD_REQUIRED")
                .await
            {
                Ok(session) => c.new_password(StatusCode::OK, &session, None),
                Err(_) => unavailable(),
            }
        }
        Err(SignInError::NotConfirmed) => c.confirm(
            StatusCode::OK,
            &username,
            Some("Confirm your account with the code we sent you, then sign in."),
            None,
        ),
        Err(SignInError::ResetRequired) => c.reset(
            StatusCode::OK,
            &username,
            Some("Your password must be reset. Enter the code we sent you and choose a new password."),
            None,
        ),
        Err(SignInError::Internal) => unavailable(),
        Err(SignInError::Busy) => busy(),
        Err(e) => {
            // Unknown users get the wrong-password message even from LEGACY clients: the page
            // never shows "User does not exist".
            let message = crate::domain::accounts::sign_in_error(e, false).message();
            c.login(StatusCode::UNAUTHORIZED, &username, None, Some(&message))
        }
    }
}

/// `POST /forceChangePassword`: the new password of an admin-created user.
pub async fn new_password_submit(
    State(pool): State<Arc<Pool>>,
    ClientIp(ip): ClientIp,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let c = ctx!(pool, raw);
    let f = posted!(c.pool, headers, body);
    admitted!(c.pool, ip, None);
    let session = f.get("session");
    if f.get("password") != f.get("confirm") {
        return c.new_password(
            StatusCode::BAD_REQUEST,
            session,
            Some("The passwords do not match."),
        );
    }
    match c
        .pool
        .complete_new_password(
            session,
            &c.req.client_id,
            None,
            f.get("password"),
            Map::new(),
        )
        .await
    {
        Ok(user) => c.after_password(user).await,
        Err(IdpError::TooManyRequests) => busy(),
        Err(e @ IdpError::InvalidPassword(_)) => {
            c.new_password(StatusCode::BAD_REQUEST, session, Some(&e.message()))
        }
        Err(IdpError::Internal) => unavailable(),
        Err(_) => c.login(
            StatusCode::UNAUTHORIZED,
            "",
            None,
            Some("This step expired. Sign in again with your temporary password."),
        ),
    }
}

/// A TOTP key in groups of four, easier to type.
fn grouped(secret: &str) -> String {
    secret
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `POST /mfa`: the code of a sign-in with TOTP, or the first code of a new authenticator.
pub async fn mfa_submit(
    State(pool): State<Arc<Pool>>,
    ClientIp(ip): ClientIp,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let c = ctx!(pool, raw);
    let f = posted!(c.pool, headers, body);
    admitted!(c.pool, ip, None);
    let session = f.get("session");
    let code = f.get("code");
    let retry_or_restart = |c: &Ctx, e: IdpError, setup: Option<(&str, &str)>| match e {
        IdpError::CodeMismatch => match setup {
            Some((user, secret)) => c.mfa_setup(
                StatusCode::BAD_REQUEST,
                session,
                user,
                secret,
                Some("That code is not right. Try the current one."),
            ),
            None => c.mfa_code(
                StatusCode::BAD_REQUEST,
                session,
                Some("That code is not right. Try the current one."),
            ),
        },
        IdpError::Internal => unavailable(),
        e => c.login(StatusCode::UNAUTHORIZED, "", None, Some(&e.message())),
    };
    if f.get("kind") == mfa::MFA_SETUP {
        let ch = match c
            .pool
            .setup_challenge(session, Some(&c.req.client_id))
            .await
        {
            Ok(ch) => ch,
            Err(e) => return retry_or_restart(&c, e, None),
        };
        // The key to show again on a wrong code is the one the pool holds, never one posted.
        let secret = match c.pool.pending_secret(&ch.username).await {
            Ok(s) => s.unwrap_or_default(),
            Err(_) => return unavailable(),
        };
        let n = match c.pool.challenge_attempt(&ch).await {
            Ok(n) => n,
            Err(e) => return retry_or_restart(&c, e, None),
        };
        if let Err(e) = c.pool.verify_token(&ch.username, code).await {
            let e = match e {
                IdpError::CodeMismatch => c
                    .pool
                    .fail_challenge(&ch, n)
                    .await
                    .unwrap_or(IdpError::Internal),
                e => e,
            };
            return retry_or_restart(&c, e, Some((&ch.username, &secret)));
        }
        if c.pool.end_challenge(&ch).await.is_err() {
            return retry_or_restart(
                &c,
                IdpError::NotAuthorized("This step expired. Sign in again.".into()),
                None,
            );
        }
        return match c.pool.user(&ch.username).await {
            Ok(u) => c.signed_in(&u).await,
            Err(_) => unavailable(),
        };
    }
    match c
        .pool
        .answer_mfa(session, &c.req.client_id, None, code)
        .await
    {
        Ok(u) => c.signed_in(&u).await,
        Err(e) => retry_or_restart(&c, e, None),
    }
}

/// The 403 for a client without `COGNITO`: it has no password sign-in, sign-up or reset, whatever
/// is asked (its users come from external providers).
fn without_cognito(c: &Ctx) -> Option<Response> {
    c.pool
        .client(&c.req.client_id)
        .is_some_and(|cl| !cl.client.supports_cognito())
        .then(|| {
            error_page(
                StatusCode::FORBIDDEN,
                "unauthorized_client",
                "This app signs users in only through its identity providers, not with a user name and password: go back to the sign-in page and choose one.",
            )
        })
}

/// `GET /signup`.
pub async fn sign_up_page(State(pool): State<Arc<Pool>>, RawQuery(raw): RawQuery) -> Response {
    let c = ctx!(pool, raw);
    if let Some(refused) = without_cognito(&c) {
        return refused;
    }
    if !c.pool.allow_self_sign_up {
        return error_page(
            StatusCode::FORBIDDEN,
            "sign_up_disabled",
            "This app does not allow signing up. Ask its administrator for an account.",
        );
    }
    sign_up_form(&c, StatusCode::OK, "", "", None)
}

fn sign_up_form(
    c: &Ctx,
    status: StatusCode,
    username: &str,
    email: &str,
    error: Option<&str>,
) -> Response {
    let mut spec = Spec::new("Sign up", "/signup", "Sign up");
    spec.error = error;
    spec.fields = vec![
        Field::new("User name", "username", "text", "username")
            .value(username)
            .focus(),
        Field::new("Email", "email", "email", "email").value(email),
        Field::new("Password", "password", "password", "new-password").hint(policy_hint(&c.pool)),
    ];
    spec.links
        .push((c.link("/login"), "Already have an account? Sign in"));
    c.render(status, spec)
}

/// `POST /signup`: creates an unconfirmed user and sends a code.
pub async fn sign_up_submit(
    State(pool): State<Arc<Pool>>,
    ClientIp(ip): ClientIp,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let c = ctx!(pool, raw);
    if let Some(refused) = without_cognito(&c) {
        return refused;
    }
    let f = posted!(c.pool, headers, body);
    let username = f.username();
    admitted!(c.pool, ip, Some(&username));
    let email = f.get("email").trim().to_string();
    let mut attrs = Map::new();
    attrs.insert("email".into(), email.clone().into());
    match c
        .pool
        .sign_up(&c.req.client_id, &username, f.get("password"), attrs)
        .await
    {
        Ok((_, delivery)) => {
            let notice = match delivery {
                Some(d) => format!(
                    "We sent a code to {}. Enter it to confirm your account.",
                    d.destination
                ),
                None => "Enter the confirmation code to confirm your account.".into(),
            };
            c.confirm(StatusCode::OK, &username, Some(&notice), None)
        }
        Err(IdpError::Internal) => unavailable(),
        Err(IdpError::TooManyRequests) => busy(),
        Err(IdpError::NotAuthorized(m)) => {
            error_page(StatusCode::FORBIDDEN, "sign_up_disabled", &m)
        }
        Err(e) => sign_up_form(
            &c,
            StatusCode::BAD_REQUEST,
            &username,
            &email,
            Some(&e.message()),
        ),
    }
}

/// `GET /confirmUser`.
pub async fn confirm_page(State(pool): State<Arc<Pool>>, RawQuery(raw): RawQuery) -> Response {
    let c = ctx!(pool, raw);
    let user = c.username.clone().unwrap_or_default();
    c.confirm(StatusCode::OK, &user, None, None)
}

/// `POST /confirmUser`: confirms with the code, or sends a new one.
pub async fn confirm_submit(
    State(pool): State<Arc<Pool>>,
    ClientIp(ip): ClientIp,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let c = ctx!(pool, raw);
    let f = posted!(c.pool, headers, body);
    let username = f.username();
    admitted!(c.pool, ip, Some(&username));
    if f.get("action") == "resend" {
        return match c.pool.resend_confirmation(&username, c.reveal()).await {
            Ok(_) | Err(IdpError::UserNotFound) => c.confirm(
                StatusCode::OK,
                &username,
                Some("If that account waits for confirmation, a new code is on its way."),
                None,
            ),
            Err(IdpError::Internal) => unavailable(),
            Err(e) => c.confirm(StatusCode::BAD_REQUEST, &username, None, Some(&e.message())),
        };
    }
    match c
        .pool
        .confirm_sign_up(&username, f.get("code"), c.reveal())
        .await
    {
        Ok(()) => c.login(
            StatusCode::OK,
            &username,
            Some("Your account is confirmed. Sign in."),
            None,
        ),
        Err(IdpError::Internal) => unavailable(),
        // Unknown users get the wrong-code answer, so the form reveals nobody.
        Err(IdpError::UserNotFound) => c.confirm(
            StatusCode::BAD_REQUEST,
            &username,
            None,
            Some(&IdpError::CodeMismatch.message()),
        ),
        Err(e) => c.confirm(StatusCode::BAD_REQUEST, &username, None, Some(&e.message())),
    }
}

/// `GET /forgotPassword`.
pub async fn forgot_page(State(pool): State<Arc<Pool>>, RawQuery(raw): RawQuery) -> Response {
    let c = ctx!(pool, raw);
    if let Some(refused) = without_cognito(&c) {
        return refused;
    }
    let user = c.username.clone().unwrap_or_default();
    forgot_form(&c, StatusCode::OK, &user, None)
}

fn forgot_form(c: &Ctx, status: StatusCode, username: &str, error: Option<&str>) -> Response {
    let mut spec = Spec::new("Forgot your password?", "/forgotPassword", "Send code");
    spec.notice = Some("Enter your user name. We will send a code to reset your password.");
    spec.error = error;
    spec.fields = vec![
        Field::new("User name", "username", "text", "username")
            .value(username)
            .focus(),
    ];
    spec.links.push((c.link("/login"), "Back to sign in"));
    c.render(status, spec)
}

/// `POST /forgotPassword`: sends a reset code (the answer is the same for unknown users).
pub async fn forgot_submit(
    State(pool): State<Arc<Pool>>,
    ClientIp(ip): ClientIp,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let c = ctx!(pool, raw);
    if let Some(refused) = without_cognito(&c) {
        return refused;
    }
    let f = posted!(c.pool, headers, body);
    let username = f.username();
    admitted!(c.pool, ip, Some(&username));
    if username.is_empty() {
        return forgot_form(
            &c,
            StatusCode::BAD_REQUEST,
            "",
            Some("Enter your user name."),
        );
    }
    match c.pool.forgot_password(&username, c.reveal()).await {
        Ok(d) => {
            let notice = format!(
                "If {username} has an account, we sent a code to {}. Enter it below.",
                d.destination
            );
            c.reset(StatusCode::OK, &username, Some(&notice), None)
        }
        Err(IdpError::Internal) => unavailable(),
        Err(e) => forgot_form(&c, StatusCode::BAD_REQUEST, &username, Some(&e.message())),
    }
}

/// `GET /confirmForgotPassword`.
pub async fn reset_page(State(pool): State<Arc<Pool>>, RawQuery(raw): RawQuery) -> Response {
    let c = ctx!(pool, raw);
    let user = c.username.clone().unwrap_or_default();
    c.reset(StatusCode::OK, &user, None, None)
}

/// `POST /confirmForgotPassword`: the code and a new password.
pub async fn reset_submit(
    State(pool): State<Arc<Pool>>,
    ClientIp(ip): ClientIp,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let c = ctx!(pool, raw);
    let f = posted!(c.pool, headers, body);
    let username = f.username();
    admitted!(c.pool, ip, Some(&username));
    if f.get("password") != f.get("confirm") {
        return c.reset(
            StatusCode::BAD_REQUEST,
            &username,
            None,
            Some("The passwords do not match."),
        );
    }
    match c
        .pool
        .confirm_forgot_password(&username, f.get("code"), f.get("password"))
        .await
    {
        Ok(()) => c.login(
            StatusCode::OK,
            &username,
            Some("Your password is changed. Sign in with the new one."),
            None,
        ),
        Err(IdpError::Internal) => unavailable(),
        Err(IdpError::TooManyRequests) => busy(),
        Err(e) => c.reset(StatusCode::BAD_REQUEST, &username, None, Some(&e.message())),
    }
}

/// `GET /static/client/<client_id>.css`: a client's own CSS for its pages.
pub async fn client_css(State(pool): State<Arc<Pool>>, Path(file): Path<String>) -> Response {
    let css = file
        .strip_suffix(".css")
        .and_then(|id| pool.client(id))
        .and_then(|c| c.client.css.clone());
    match css {
        Some(css) => {
            let mut r = css.into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            );
            r.headers_mut().insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            r
        }
        None => error_page(
            StatusCode::NOT_FOUND,
            "not_found",
            "There is nothing at this address.",
        ),
    }
}
