//! What every hosted-UI page shares: the authorization request it serves ([`Ctx`]), the frame it
//! renders in ([`Spec`], [`Field`]), its posted form and CSRF check ([`Admitted`]), and the answers
//! any page may give instead (busy, too many attempts, unavailable).

use crate::domain::authorize::AuthorizeRequest;
use crate::domain::pool::Pool;
use crate::domain::secrets::random_token;
use crate::http::request::{Post, parse_query};
use crate::http::responses::{
    HostedCookie, error_page, html_with, origin_of, problem, retry_after, too_many,
};
use askama::Template;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// One input of a form.
pub(super) struct Field {
    label: &'static str,
    name: &'static str,
    kind: &'static str,
    autocomplete: &'static str,
    value: String,
    autofocus: bool,
    hint: Option<String>,
}

impl Field {
    /// An empty input.
    pub(super) fn new(
        label: &'static str,
        name: &'static str,
        kind: &'static str,
        ac: &'static str,
    ) -> Field {
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
    /// Filled in with `v` (at most 128 characters).
    pub(super) fn value(mut self, v: &str) -> Field {
        self.value = v.chars().take(128).collect();
        self
    }
    /// With the focus when the page opens.
    pub(super) fn focus(mut self) -> Field {
        self.autofocus = true;
        self
    }
    /// With a hint under it.
    pub(super) fn hint(mut self, h: String) -> Field {
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
pub(super) struct Spec<'a> {
    pub(super) title: &'a str,
    pub(super) path: &'a str,
    pub(super) notice: Option<&'a str>,
    pub(super) error: Option<&'a str>,
    pub(super) hidden: Vec<(&'static str, String)>,
    pub(super) fields: Vec<Field>,
    pub(super) submit: &'a str,
    pub(super) secondary: Option<(&'static str, &'static str, &'static str)>,
    pub(super) links: Vec<(String, &'static str)>,
    pub(super) providers: Vec<(String, String)>,
    pub(super) show_form: bool,
}

impl<'a> Spec<'a> {
    /// A form titled `title` posting to `path`, with `notice` and `error` above it.
    pub(super) fn new(
        title: &'a str,
        path: &'a str,
        submit: &'a str,
        notice: Option<&'a str>,
        error: Option<&'a str>,
    ) -> Spec<'a> {
        Spec {
            title,
            path,
            notice,
            error,
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

/// The line above a page's form, if any.
#[derive(Clone, Copy)]
pub(super) enum Note<'a> {
    /// Nothing.
    Blank,
    /// What happened or what to do next.
    Notice(&'a str),
    /// What went wrong.
    Error(&'a str),
}

impl<'a> Note<'a> {
    /// Its text as a notice.
    pub(super) fn notice(self) -> Option<&'a str> {
        match self {
            Note::Notice(n) => Some(n),
            _ => None,
        }
    }
    /// Its text as an error.
    pub(super) fn error(self) -> Option<&'a str> {
        match self {
            Note::Error(e) => Some(e),
            _ => None,
        }
    }
}

/// The authorization request a page serves, from its query.
pub(super) struct Ctx {
    pub(super) pool: Arc<Pool>,
    pub(super) req: AuthorizeRequest,
    /// The query without page-only parameters (`username`), for links and form actions.
    pub(super) query: String,
    /// `username` from the query, when a link carried it.
    pub(super) username: Option<String>,
}

impl Ctx {
    /// The request of the page at `raw` (its query), or the page refusing it.
    pub(super) fn new(pool: Arc<Pool>, raw: Option<&str>) -> Result<Ctx, Refused> {
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

    /// Whether the client reveals which users exist (`prevent_user_existence_errors = LEGACY`).
    pub(super) fn reveal(&self) -> bool {
        self.pool
            .client(&self.req.client_id)
            .is_some_and(|cl| cl.client.prevent_user_existence_errors == "LEGACY")
    }

    /// `path` serving the same request.
    pub(super) fn link(&self, path: &str) -> String {
        format!("{path}?{}", self.query)
    }

    /// The 403 for a client without `COGNITO`: it has no password sign-in, sign-up or reset,
    /// whatever is asked (its users come from external providers).
    pub(super) fn password_sign_in(&self) -> Result<(), Refused> {
        let without = self
            .pool
            .client(&self.req.client_id)
            .is_some_and(|cl| !cl.client.supports_cognito());
        if without {
            return Err(Refused::from(error_page(
                StatusCode::FORBIDDEN,
                "unauthorized_client",
                "This app signs users in only through its identity providers, not with a user name and password: go back to the sign-in page and choose one.",
            )));
        }
        Ok(())
    }

    /// The page `spec` in the common frame, with a fresh CSRF token in its form and cookie.
    pub(super) fn render(&self, status: StatusCode, spec: Spec<'_>) -> Response {
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
}

/// The hint under a new password: what the pool's policy asks.
pub(super) fn policy_hint(pool: &Pool) -> String {
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

/// A page answered before its handler finished (a refused request, form or attempt): the
/// handlers' error type, so each check is one `?`.
pub(crate) struct Refused(Box<Response>);

impl From<Box<Response>> for Refused {
    fn from(r: Box<Response>) -> Refused {
        Refused(r)
    }
}

impl From<Response> for Refused {
    fn from(r: Response) -> Refused {
        Refused(Box::new(r))
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        *self.0
    }
}

/// What a page's handler answers: its page, or the answer of a check that refused.
pub(crate) type PageResult = Result<Response, Refused>;

/// What a form is checked for besides its page's request and its CSRF token.
#[derive(Clone, Copy)]
pub(super) struct Checks {
    /// Refused for a client without password sign-in (`COGNITO`), before the CSRF check.
    cognito_only: bool,
    /// Rate-limited per user (the form's `username`) besides per address.
    per_user: bool,
}

impl Checks {
    /// A form that signs in, signs up or resets with a password.
    pub(super) const PASSWORD: Checks = Checks {
        cognito_only: true,
        per_user: true,
    };
    /// A form that checks a code for a named user.
    pub(super) const USER_CODE: Checks = Checks {
        cognito_only: false,
        per_user: true,
    };
    /// A further step of a sign-in under way (new password, MFA code).
    pub(super) const STEP: Checks = Checks {
        cognito_only: false,
        per_user: false,
    };
}

/// A form that passed its checks: its page's request, its fields and its trimmed `username`.
pub(super) struct Admitted {
    pub(super) c: Ctx,
    pub(super) f: Form,
    pub(super) username: String,
}

impl Admitted {
    /// Checks `post` in the order every form is checked: its page's request, the client's
    /// password sign-in (with [`Checks::cognito_only`]), the CSRF token, then the pool's rate
    /// limits, as every form that checks a secret or sends a code needs.
    pub(super) async fn check(post: Post, checks: Checks) -> Result<Admitted, Refused> {
        let c = Ctx::new(post.pool, post.query.as_deref())?;
        if checks.cognito_only {
            c.password_sign_in()?;
        }
        let f = Form::checked(&c.pool, &post.headers, &post.body)?;
        let username = f.username();
        let user = checks.per_user.then_some(username.as_str());
        if c.pool.admit(Some(post.ip), user).await.is_err() {
            return Err(too_many().into());
        }
        Ok(Admitted { c, f, username })
    }
}

/// A posted form after its CSRF token was checked against the cookie.
pub(super) struct Form(Vec<(String, String)>);

impl Form {
    /// Field `k` ("" when absent).
    pub(super) fn get(&self, k: &str) -> &str {
        self.0
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    /// The `username` field, trimmed, at most 128 characters.
    fn username(&self) -> String {
        self.get("username").trim().chars().take(128).collect()
    }

    /// The form in `body` when its `_csrf` field matches the CSRF cookie.
    fn checked(pool: &Pool, headers: &HeaderMap, body: &Bytes) -> Result<Form, Refused> {
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
            Err(Refused::from(error_page(
                StatusCode::FORBIDDEN,
                "invalid_csrf",
                "This form expired or was opened in another browser. Go back and try again.",
            )))
        }
    }
}

/// 503 with `Retry-After`: the hashing queue is full or the user's previous attempt is running.
pub(super) fn busy() -> Response {
    let page = error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "busy",
        "We are busy right now. Try again in a few seconds.",
    );
    retry_after(page, "5")
}

/// 500: the store or a random source failed.
pub(super) fn unavailable() -> Response {
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        "This is unavailable right now. Try again shortly.",
    )
}
