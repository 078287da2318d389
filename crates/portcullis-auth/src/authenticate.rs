//! The authenticate action as a function of request parts: it either says "forward with these
//! headers" or "answer with this response". It knows nothing of sockets.

use crate::claims_header::ClaimsSigner;
use crate::claims_header::HEADER_LIFETIME;
use crate::error::AuthError;
use crate::forward_cache::{self, ForwardCache, Hit};
use crate::keys::{AuthKeys, KeyRing, MacKey};
use crate::oidc::EndSession;
use crate::oidc::{IdTokenFacts, Provider, TokenResponse};
use crate::revocation::{RevocationSet, SessionRef};
use crate::session_cookie::{self, Collected, CookieRead, Opened, Session, Shards};
use crate::state::{self, NONCE_COOKIE};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, SET_COOKIE};
use http::{HeaderName, HeaderValue, Response, StatusCode, request::Parts};
use portcullis_config::{ApiRequests, IdentityHeader, OnUnauthenticated, SessionSettings};
use std::sync::Arc;

/// The callback path ALB intercepts.
pub const CALLBACK_PATH: &str = "/oauth2/idpresponse";
/// Header names added for targets.
pub const ACCESS_TOKEN_HEADER: HeaderName = HeaderName::from_static("x-amzn-oidc-accesstoken");
/// The `sub`.
pub const IDENTITY_HEADER: HeaderName = HeaderName::from_static("x-amzn-oidc-identity");
/// The signed claims.
pub const DATA_HEADER: HeaderName = HeaderName::from_static("x-amzn-oidc-data");
/// The standard identity JWT (`identity_header = "jwt"` or `"both"`).
pub const JWT_HEADER: HeaderName = HeaderName::from_static("x-portcullis-jwt");
/// Access tokens without `expires_in` are treated as valid this long.
const DEFAULT_ACCESS_LIFETIME: u64 = 3600;

/// One authenticate action of one rule, resolved.
pub struct AuthAction {
    /// Identifies the rule in `state` (`<listener port>/<priority>`).
    pub rule_id: String,
    /// The identity provider.
    pub provider: Arc<Provider>,
    /// Cookie name, scope, timeout, extra parameters, unauthenticated behaviour.
    pub session: SessionSettings,
    /// Issuer and client: a session sealed for another pair is ignored.
    binding: String,
    /// What cached forward headers depend on: the binding and how this rule presents the identity
    /// (rules sharing a session may ask for different headers).
    cache_key: Arc<str>,
}

impl AuthAction {
    /// Resolves an action once, when its rule is compiled, so the request path builds no keys.
    pub fn new(rule_id: String, provider: Arc<Provider>, session: SessionSettings) -> AuthAction {
        let binding = format!("{}|{}", provider.config.issuer, provider.config.client_id);
        let cache_key = Arc::from(format!(
            "{binding}|{:?}|{}",
            session.identity_header,
            session.jwt_audience.as_deref().unwrap_or("")
        ));
        AuthAction {
            rule_id,
            provider,
            session,
            binding,
            cache_key,
        }
    }

    fn binding(&self) -> &str {
        &self.binding
    }
}

/// The identity headers added for a target: one allocation per session, shared by its requests
/// (`Arc::default()`, empty, allocates nothing).
pub type ClaimHeaders = Arc<[(HeaderName, HeaderValue)]>;

/// What to do with the request.
#[derive(Debug)]
pub enum Outcome {
    /// Continue to the terminal action.
    Forward {
        /// Headers to add to the upstream request (claims, or none for `allow`).
        headers: ClaimHeaders,
        /// `Set-Cookie` values for the response (refreshed or cleared session).
        set_cookies: Vec<String>,
        /// Logged as `error_reason` (an invalid cookie under `allow`).
        error: Option<AuthError>,
        /// Whether claims were added.
        authenticated: bool,
    },
    /// Answer without reaching a target.
    Respond {
        /// The answer.
        response: Response<Bytes>,
        /// Logged as `error_reason`.
        error: Option<AuthError>,
    },
    /// Answer with the balancer's own error page for `status` (the load balancer renders it).
    Error {
        /// 401, 403, 500 or 561.
        status: u16,
        /// Logged as `error_reason`.
        error: Option<AuthError>,
        /// `Set-Cookie` values for the answer (shards of an unusable session cleared).
        set_cookies: Vec<String>,
    },
}

/// A signed `x-amzn-oidc-data` is re-signed when fewer seconds than this remain of its lifetime.
pub const RESIGN_MARGIN: u64 = 60;

/// How far [`Authenticator::signed_in`] got without awaiting.
enum Step {
    /// The answer.
    Done(Outcome),
    /// A valid session whose access token has expired and that has a refresh token.
    Refresh {
        session: Box<Session>,
        shards: usize,
    },
    /// No usable session: `on_unauthenticated_request` decides.
    NoSession {
        expired: bool,
        error: Option<AuthError>,
        stale_shards: usize,
    },
}

impl Step {
    fn no_session(expired: bool, stale_shards: usize) -> Step {
        Step::NoSession {
            expired,
            error: None,
            stale_shards,
        }
    }
}

/// Where the authenticate actions report what ALB's `ELBAuth*` metrics count.
pub trait AuthObserver: Send + Sync {
    /// A login completed: tokens and user claims fetched (`ELBAuthSuccess`, `ELBAuthLatency`).
    fn signed_in(&self, idp_time: std::time::Duration);
    /// A session was refreshed with its refresh token (`ELBAuthRefreshTokenSuccess`).
    fn refreshed(&self, idp_time: std::time::Duration);
    /// A request carried a session the provider has ended; it was treated as signed out.
    fn session_revoked(&self) {}
    /// A back-channel logout token was accepted (`true`) or refused.
    fn logout_token(&self, _accepted: bool) {}
}

struct NoObserver;

impl AuthObserver for NoObserver {
    fn signed_in(&self, _: std::time::Duration) {}
    fn refreshed(&self, _: std::time::Duration) {}
}

/// Shared state of every authenticate action of a load balancer.
pub struct Authenticator {
    ring: KeyRing,
    /// Derives a login's PKCE verifier and OIDC nonce from its nonce cookie.
    mac: MacKey,
    signer: ClaimsSigner,
    /// Ready headers per session cookie, checked before the cookie is decoded.
    cache: ForwardCache,
    observer: Arc<dyn AuthObserver>,
    /// Sessions the providers have ended; checked on every authenticated request.
    revocations: Arc<RevocationSet>,
    /// `jti`s of accepted back-channel logout tokens.
    pub(crate) logout_replay: crate::backchannel::ReplayCache,
}

/// The host the browser used, from `Host` or the HTTP/2 `:authority`.
pub fn request_host(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))
        .filter(|h| !h.is_empty() && !h.contains(['/', '@', ' ']))
}

/// Whether a request comes from the balancer's own origin, by what browsers send: `Sec-Fetch-Site`
/// `same-origin` or `none` (typed, bookmarked); without it, an `Origin` that is this host. A
/// request with neither (a non-browser client, or a browser too old for Fetch Metadata sending a
/// GET) is taken as same-origin: it cannot be told apart.
pub fn same_origin(parts: &Parts) -> bool {
    let h = &parts.headers;
    if let Some(site) = h.get("sec-fetch-site") {
        return site.to_str().is_ok_and(|s| {
            s.eq_ignore_ascii_case("same-origin") || s.eq_ignore_ascii_case("none")
        });
    }
    let Some(origin) = h.get(http::header::ORIGIN) else {
        return true;
    };
    let host = request_host(parts);
    origin
        .to_str()
        .ok()
        .and_then(|o| {
            o.strip_prefix("https://")
                .or_else(|| o.strip_prefix("http://"))
        })
        .zip(host)
        .is_some_and(|(o, host)| o.eq_ignore_ascii_case(host))
}

fn original_uri(parts: &Parts) -> String {
    parts
        .uri
        .path_and_query()
        .map_or_else(|| "/".to_string(), |pq| pq.as_str().to_string())
}

/// Whether a request is cross-origin (CORS), for which ALB writes the session with
/// `SameSite=None`. A browser also sends `Origin` on its own origin's POSTs and fetches; those
/// keep `SameSite=Lax`, or any form post on the site that happened to refresh the session would
/// give up the cookie's cross-site protection for the rest of the session.
fn is_cors(parts: &Parts) -> bool {
    parts.headers.contains_key(http::header::ORIGIN) && !same_origin(parts)
}

/// Scopes (`scope` string or `scp` list) and groups (`cognito:groups` or `groups`) of an access
/// token. It came from the token endpoint over TLS, so its payload is read, not re-verified; a token
/// that is not a JWT has none.
pub fn token_scopes_and_groups(access_token: &str) -> (Vec<String>, Vec<String>) {
    let claims: serde_json::Map<String, serde_json::Value> =
        jsonwebtoken::dangerous::insecure_decode_claims(access_token).unwrap_or_default();
    let list = |v: Option<&serde_json::Value>| -> Vec<String> {
        match v {
            Some(serde_json::Value::String(s)) => s
                .split(' ')
                .filter(|x| !x.is_empty())
                .map(str::to_owned)
                .collect(),
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    };
    let scopes = list(claims.get("scope").or_else(|| claims.get("scp")));
    let groups = list(
        claims
            .get("cognito:groups")
            .or_else(|| claims.get("groups")),
    );
    (scopes, groups)
}

/// What authorization looks at, derived from a session when it is parsed (not stored in the
/// cookie): the userinfo claims, and the scopes and groups of the access token; and what the
/// revocation check looks at, so a cached session is checked on every request too.
#[derive(Debug)]
pub struct Grants {
    /// Userinfo claims.
    pub claims: serde_json::Map<String, serde_json::Value>,
    /// Access-token scopes.
    pub scopes: Vec<String>,
    /// The user's groups.
    pub groups: Vec<String>,
    /// The session's `sub`.
    pub sub: String,
    /// The provider's session id, if any.
    pub sid: Option<String>,
    /// When the session began (provider clock; 0 if unknown).
    pub began: u64,
}

impl Grants {
    /// From a parsed session.
    pub fn of(s: &Session) -> Grants {
        let (scopes, groups) = token_scopes_and_groups(&s.access_token);
        Grants {
            claims: s.claims.clone(),
            scopes,
            groups,
            sub: s.sub.clone(),
            sid: s.sid.clone(),
            began: s.began,
        }
    }

    /// The session as the revocation check names it.
    fn session_ref<'a>(&'a self, issuer: &'a str) -> SessionRef<'a> {
        SessionRef {
            issuer,
            sid: self.sid.as_deref(),
            sub: &self.sub,
            began: self.began,
        }
    }
}

/// Whether the grants meet the rule's `require_*` settings; the reason when they do not.
pub fn authorize(settings: &SessionSettings, s: &Grants) -> Result<(), String> {
    if let Some(missing) = settings
        .require_scopes
        .iter()
        .find(|r| !s.scopes.contains(r))
    {
        return Err(format!("the access token lacks scope {missing}"));
    }
    if !settings.require_groups.is_empty()
        && !settings.require_groups.iter().any(|g| s.groups.contains(g))
    {
        return Err(format!(
            "the user is in none of the groups {}",
            settings.require_groups.join(", ")
        ));
    }
    for (claim, accepted) in &settings.require_claims {
        let ok = match s.claims.get(claim) {
            Some(serde_json::Value::String(v)) => accepted.contains(v),
            Some(serde_json::Value::Array(vs)) => vs
                .iter()
                .any(|v| v.as_str().is_some_and(|v| accepted.iter().any(|a| a == v))),
            Some(v) => accepted.contains(&v.to_string()),
            None => false,
        };
        if !ok {
            return Err(format!("claim {claim} has none of the accepted values"));
        }
    }
    Ok(())
}

/// Whether a request comes from script (fetch/XHR) or an API client rather than a page navigation.
pub fn is_api_request(parts: &Parts) -> bool {
    let h = &parts.headers;
    let has = |name: &str, needle: &str| {
        h.get(name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains(needle))
    };
    has("sec-fetch-mode", "cors")
        || has("accept", "application/json")
        || h.contains_key("x-requested-with")
}

/// 401 for a script or API client without a session: JSON naming the URL that starts a login (a
/// page navigation there redirects to the IdP), and a `WWW-Authenticate` challenge.
fn api_unauthorized(parts: &Parts) -> Response<Bytes> {
    let host = request_host(parts).unwrap_or("");
    let login = format!("https://{host}{}", original_uri(parts));
    let body = serde_json::json!({ "error": "unauthenticated", "message": "sign in first: navigate to login", "login": login });
    let challenge = format!("Portcullis realm=\"{}\"", host.replace('"', ""));
    Response::builder()
        .status(StatusCode::UNAUTHORIZED)
        .header(CONTENT_TYPE, "application/json")
        .header(http::header::WWW_AUTHENTICATE, challenge)
        .header(http::header::SERVER, "awselb/2.0")
        .header(CACHE_CONTROL, "no-store")
        .body(Bytes::from(body.to_string()))
        .unwrap_or_default()
}

/// 403 for a signed-in user the rule does not admit: JSON for API clients, a page for browsers.
fn forbidden(parts: &Parts, why: &str, set_cookies: Vec<String>) -> Outcome {
    tracing::debug!(why, "authorization denied");
    if !is_api_request(parts) {
        return Outcome::Error {
            status: 403,
            error: Some(AuthError::Forbidden),
            set_cookies,
        };
    }
    let body = serde_json::json!({ "error": "forbidden", "message": why }).to_string();
    let mut response = Response::builder()
        .status(StatusCode::FORBIDDEN)
        .header(CONTENT_TYPE, "application/json")
        .header(http::header::SERVER, "awselb/2.0")
        .header(CACHE_CONTROL, "no-store")
        .body(Bytes::from(body))
        .unwrap_or_default();
    add_cookies(&mut response, &set_cookies);
    Outcome::Respond {
        response,
        error: Some(AuthError::Forbidden),
    }
}

fn fail(e: AuthError) -> Outcome {
    Outcome::Error {
        status: e.status(),
        error: Some(e),
        set_cookies: Vec::new(),
    }
}

fn add_cookies(resp: &mut Response<Bytes>, cookies: &[String]) {
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            resp.headers_mut().append(SET_COOKIE, v);
        }
    }
}

impl Authenticator {
    /// From the load balancer's keys and its ARN (the `signer`).
    pub fn new(keys: AuthKeys, signer_arn: String) -> Self {
        // The cache's MAC key lives only in memory; derived from the MAC key if the system
        // random source fails (it stays secret either way).
        let mut cache_key = [0u8; 32];
        if SystemRandom::new().fill(&mut cache_key).is_err() {
            cache_key = keys.mac.sign("forward-cache", &[]);
        }
        Authenticator {
            ring: keys.ring,
            mac: keys.mac,
            signer: ClaimsSigner::new(keys.claims, signer_arn),
            cache: ForwardCache::new(&cache_key),
            observer: Arc::new(NoObserver),
            revocations: Arc::new(RevocationSet::default()),
            logout_replay: crate::backchannel::ReplayCache::default(),
        }
    }

    /// The sessions ended at the providers (fed by the embedded pools and by back-channel
    /// logout); it lives as long as the balancer, across config reloads.
    pub fn revocations(&self) -> &Arc<RevocationSet> {
        &self.revocations
    }

    /// Whether the provider has ended this session.
    fn revoked(&self, action: &AuthAction, grants: &Grants) -> bool {
        self.revocations
            .is_revoked(&grants.session_ref(&action.provider.config.issuer))
    }

    /// A revoked session is treated as signed out: its shards are cleared and
    /// `on_unauthenticated_request` applies.
    fn refuse_revoked(&self, action: &AuthAction, sub: &str, shards: usize) -> Step {
        tracing::info!(sub, rule = %action.rule_id, "session ended at the provider: refused");
        self.observer.session_revoked();
        Step::NoSession {
            expired: false,
            error: Some(AuthError::SessionRevoked),
            stale_shards: shards,
        }
    }

    /// Reports logins and refreshes to `observer` (the balancer's metrics).
    pub fn with_observer(mut self, observer: Arc<dyn AuthObserver>) -> Self {
        self.observer = observer;
        self
    }

    /// Where logins, refreshes and revocations are reported.
    pub(crate) fn observer(&self) -> &dyn AuthObserver {
        &*self.observer
    }

    /// The claims signer (for the public-key endpoint).
    pub fn signer(&self) -> &ClaimsSigner {
        &self.signer
    }

    /// Runs the authenticate action for a request that matched its rule.
    pub async fn authenticate(&self, action: &AuthAction, parts: &Parts) -> Outcome {
        let now = crate::now();
        let (expired, error, stale_shards) = match self.signed_in(action, parts, now) {
            Step::Done(outcome) => return outcome,
            Step::Refresh { session, shards } => match session.refresh_token.as_deref() {
                Some(rt) => match self.refresh(action, &session, rt, parts, shards, now).await {
                    Ok(outcome) => return outcome,
                    Err(e) => (true, Some(e), shards),
                },
                None => (true, None, shards),
            },
            Step::NoSession {
                expired,
                error,
                stale_shards,
            } => (expired, error, stale_shards),
        };
        self.unauthenticated(action, parts, expired, error, stale_shards, now)
    }

    /// Everything up to a refresh, without awaiting: the cache first, keyed by the cookie as
    /// received; on a miss, open, parse and check the session, then sign and cache its headers.
    fn signed_in(&self, action: &AuthAction, parts: &Parts, now: u64) -> Step {
        let name = &action.session.session_cookie_name;
        let invalid = |why: &str| {
            tracing::debug!(why, cookie = %name, "invalid session cookie");
            Step::NoSession {
                expired: false,
                error: Some(AuthError::InvalidCookie),
                stale_shards: session_cookie::shard_count(&parts.headers, name),
            }
        };
        let shards = match session_cookie::collect(name, &parts.headers) {
            Collected::Absent => return Step::no_session(false, 0),
            Collected::Invalid(why) => return invalid(why),
            Collected::Found(shards) => shards,
        };
        forward_cache::with_frame(name, &shards, |frame| {
            // The fast path: this exact cookie was opened before and its headers are ready.
            if let Some(Hit { headers, grants }) =
                frame.and_then(|f| self.cache.get(f, &action.cache_key, now))
            {
                if self.revoked(action, &grants) {
                    return self.refuse_revoked(action, &grants.sub, shards.count());
                }
                if let Err(why) = authorize(&action.session, &grants) {
                    return Step::Done(forbidden(parts, &why, Vec::new()));
                }
                return Step::Done(Outcome::Forward {
                    headers,
                    set_cookies: Vec::new(),
                    error: None,
                    authenticated: true,
                });
            }
            let plain = match session_cookie::open_shards(&self.ring, name, &shards) {
                Opened::Sealed { plain, .. } => plain,
                Opened::Invalid(why) => return invalid(why),
                Opened::Absent => return Step::no_session(false, 0),
            };
            let count = shards.count();
            let Some(session) = session_cookie::parse(&plain) else {
                return Step::Done(self.unauthenticated(
                    action,
                    parts,
                    false,
                    Some(AuthError::InvalidCookie),
                    count,
                    now,
                ));
            };
            if session.binding != action.binding() {
                Step::no_session(false, 0)
            } else if self.revocations.is_revoked(&SessionRef {
                issuer: &action.provider.config.issuer,
                sid: session.sid.as_deref(),
                sub: &session.sub,
                began: session.began,
            }) {
                self.refuse_revoked(action, &session.sub, count)
            } else if now >= session.session_exp {
                Step::no_session(true, count)
            } else if now < session.access_exp {
                Step::Done(self.forward(action, &session, frame, Vec::new(), now, parts))
            } else if session.refresh_token.is_some() {
                Step::Refresh {
                    session: Box::new(session),
                    shards: count,
                }
            } else {
                Step::no_session(true, count)
            }
        })
    }

    /// Applies `on_unauthenticated_request`; `expired` says a session existed but ended.
    fn unauthenticated(
        &self,
        action: &AuthAction,
        parts: &Parts,
        expired: bool,
        error: Option<AuthError>,
        stale_shards: usize,
        now: u64,
    ) -> Outcome {
        let clear = session_cookie::clear_values(&action.session.session_cookie_name, stale_shards);
        match (action.session.on_unauthenticated_request, expired) {
            (OnUnauthenticated::Allow, _) => Outcome::Forward {
                headers: ClaimHeaders::default(),
                set_cookies: clear,
                error,
                authenticated: false,
            },
            (OnUnauthenticated::Deny, false) => Outcome::Error {
                status: 401,
                error,
                set_cookies: clear,
            },
            (OnUnauthenticated::Authenticate, _) | (OnUnauthenticated::Deny, true)
                if action.session.unauthenticated_api_requests == ApiRequests::Deny
                    && is_api_request(parts) =>
            {
                let mut response = api_unauthorized(parts);
                add_cookies(&mut response, &clear);
                Outcome::Respond { response, error }
            }
            (OnUnauthenticated::Authenticate, _) | (OnUnauthenticated::Deny, true) => {
                let mut outcome = self.redirect_to_idp(action, parts, now);
                match &mut outcome {
                    Outcome::Respond { response, error: e } => {
                        add_cookies(response, &clear);
                        if e.is_none() {
                            *e = error;
                        }
                    }
                    Outcome::Error {
                        error: e,
                        set_cookies,
                        ..
                    } => {
                        set_cookies.extend(clear);
                        if e.is_none() {
                            *e = error;
                        }
                    }
                    Outcome::Forward { .. } => {}
                }
                outcome
            }
        }
    }

    /// Signs the identity headers for a session and caches them under `frame`, the session cookie
    /// as the browser sends it (`None`: not cached).
    fn forward(
        &self,
        action: &AuthAction,
        s: &Session,
        frame: Option<&[u8]>,
        set_cookies: Vec<String>,
        now: u64,
        parts: &Parts,
    ) -> Outcome {
        let grants = Grants::of(s);
        if let Err(why) = authorize(&action.session, &grants) {
            return forbidden(parts, &why, set_cookies);
        }
        let c = &action.provider.config;
        let data_exp = now + HEADER_LIFETIME;
        // A value that is not a valid header, or a signature that fails, is `None`.
        let value = |v: &str| HeaderValue::from_str(v).ok();
        let mut headers = vec![
            (ACCESS_TOKEN_HEADER, value(&s.access_token)),
            (IDENTITY_HEADER, value(&s.sub)),
        ];
        let kind = action.session.identity_header;
        if kind != IdentityHeader::Jwt {
            let data = self
                .signer
                .sign(&c.issuer, &c.client_id, &s.claims, data_exp);
            headers.push((DATA_HEADER, data.ok().and_then(|d| value(&d))));
        }
        if kind != IdentityHeader::Alb {
            let aud = action
                .session
                .jwt_audience
                .as_deref()
                .unwrap_or(&c.client_id);
            let jwt = self.signer.sign_jwt(aud, &s.claims, now, data_exp);
            headers.push((JWT_HEADER, jwt.ok().and_then(|j| value(&j))));
        }
        let mut out = Vec::with_capacity(4);
        for (n, v) in headers {
            match v {
                Some(v) => out.push((n, v)),
                None => return fail(AuthError::Unhandled),
            }
        }
        let headers = ClaimHeaders::from(out);
        if let Some(frame) = frame {
            let hit = Hit {
                headers: headers.clone(),
                grants: Arc::new(grants),
            };
            let valid_until = s
                .access_exp
                .min(s.session_exp)
                .min(data_exp - RESIGN_MARGIN);
            self.cache
                .insert(frame, action.cache_key.clone(), hit, valid_until, now);
        }
        Outcome::Forward {
            headers,
            set_cookies,
            error: None,
            authenticated: true,
        }
    }

    async fn refresh(
        &self,
        action: &AuthAction,
        old: &Session,
        refresh_token: &str,
        parts: &Parts,
        shards: usize,
        now: u64,
    ) -> Result<Outcome, AuthError> {
        let started = std::time::Instant::now();
        let tokens = action.provider.refresh(refresh_token).await?;
        // A refresh continues the same user's session (OIDC Core §12.2): a new ID token is
        // checked like the first, and it and userinfo must name the session's subject.
        if let Some(id_token) = tokens.id_token.as_deref() {
            let facts = action.provider.check_id_token(id_token, None).await?;
            if facts.sub != old.sub {
                return Err(AuthError::InvalidIdToken);
            }
        }
        let claims = action.provider.userinfo(&tokens.access_token).await?;
        crate::oidc::same_subject(&claims, &old.sub)?;
        self.observer.refreshed(started.elapsed());
        let keep = tokens
            .refresh_token
            .is_none()
            .then(|| refresh_token.to_string());
        // The same provider session: its sid and start carry over.
        let began = IdTokenFacts {
            sub: old.sub.clone(),
            sid: old.sid.clone(),
            iat: old.began,
        };
        let mut session =
            self.new_session(action, tokens, claims, old.session_exp, keep, &began, now)?;
        if session.id_token.is_none() {
            session.id_token = old.id_token.clone();
        }
        let sealed = self.seal(action, &session)?;
        let name = &action.session.session_cookie_name;
        let cookies = session_cookie::set_cookie_values(name, &sealed, shards, is_cors(parts));
        tracing::debug!(sub = %session.sub, "session refreshed");
        // Cached under the new cookie, as the browser will send it back.
        Ok(match Shards::of(&sealed) {
            Some(new) => forward_cache::with_frame(name, &new, |frame| {
                self.forward(action, &session, frame, cookies, now, parts)
            }),
            None => self.forward(action, &session, None, cookies, now, parts),
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn new_session(
        &self,
        action: &AuthAction,
        tokens: TokenResponse,
        claims: serde_json::Map<String, serde_json::Value>,
        session_exp: u64,
        keep_refresh: Option<String>,
        id: &IdTokenFacts,
        now: u64,
    ) -> Result<Session, AuthError> {
        let sub = claims
            .get("sub")
            .and_then(|s| s.as_str())
            .ok_or(AuthError::InvalidUserinfoResponse)?
            .to_string();
        let keep_id_token = matches!(
            action.provider.config.end_session,
            Some(crate::oidc::EndSession::Oidc(_))
        );
        Ok(Session {
            sub,
            claims,
            id_token: if keep_id_token {
                tokens.id_token.clone()
            } else {
                None
            },
            access_exp: now + tokens.expires_in.unwrap_or(DEFAULT_ACCESS_LIFETIME).max(1),
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token.or(keep_refresh),
            session_exp,
            binding: action.binding().to_string(),
            sid: id.sid.clone(),
            began: id.iat,
        })
    }

    fn seal(&self, action: &AuthAction, s: &Session) -> Result<Vec<String>, AuthError> {
        session_cookie::seal(&self.ring, &action.session.session_cookie_name, s).map_err(
            |e| match e {
                session_cookie::SealError::TooLarge => AuthError::UserinfoResponseSizeExceeded,
                session_cookie::SealError::Crypto => AuthError::Unhandled,
            },
        )
    }

    fn redirect_to_idp(&self, action: &AuthAction, parts: &Parts, now: u64) -> Outcome {
        let Some(host) = request_host(parts) else {
            return fail(AuthError::MissingHostHeader);
        };
        let c = &action.provider.config;
        let Some((nonce, st)) = state::new_nonce().and_then(|nonce| {
            let st = state::seal(
                &self.ring,
                &original_uri(parts),
                &action.rule_id,
                &nonce,
                now,
            )?;
            Some((nonce, st))
        }) else {
            return fail(AuthError::Unhandled);
        };
        let redirect_uri = format!("https://{host}{CALLBACK_PATH}");
        let query = {
            let mut q = form_urlencoded::Serializer::new(String::new());
            q.append_pair("client_id", &c.client_id)
                .append_pair("redirect_uri", &redirect_uri)
                .append_pair("response_type", "code")
                .append_pair("scope", &action.session.scope)
                .append_pair("state", &st);
            if action.session.use_pkce {
                q.append_pair(
                    "code_challenge",
                    &state::pkce_challenge(&state::pkce_verifier(&self.mac, &nonce)),
                )
                .append_pair("code_challenge_method", "S256");
            }
            if action.session.use_nonce {
                q.append_pair("nonce", &state::oidc_nonce(&self.mac, &nonce));
            }
            for (k, v) in &action.session.authentication_request_extra_params {
                q.append_pair(k, v);
            }
            q.finish()
        };
        let sep = if c.authorization_endpoint.contains('?') {
            '&'
        } else {
            '?'
        };
        // form_urlencoded writes spaces as '+'; ALB sends %20.
        let location = format!(
            "{}{sep}{}",
            c.authorization_endpoint,
            query.replace('+', "%20")
        );
        let nonce_cookie = format!(
            "{NONCE_COOKIE}={nonce}; Max-Age={}; Path=/; Secure; HttpOnly; SameSite=Lax",
            state::LOGIN_TIMEOUT
        );
        let response = Response::builder()
            .status(StatusCode::FOUND)
            .header(LOCATION, location)
            .header(SET_COOKIE, nonce_cookie)
            .header(CACHE_CONTROL, "no-store")
            .header(http::header::SERVER, "awselb/2.0")
            .body(Bytes::new());
        match response {
            Ok(response) => Outcome::Respond {
                response,
                error: None,
            },
            Err(_) => fail(AuthError::Unhandled),
        }
    }

    /// Handles a rule's `logout_path`: revokes the session's refresh token at the provider (so a
    /// copied cookie dies at its next refresh), expires every shard, and sends the browser to the
    /// provider's sign-out (Cognito `/logout`, or OIDC `end_session_endpoint` with `id_token_hint`).
    ///
    /// Only a same-origin request signs out ([`same_origin`]): a page elsewhere cannot end the
    /// session by linking or posting here (403, nothing revoked or cleared).
    pub async fn logout(&self, action: &AuthAction, parts: &Parts) -> Outcome {
        if !same_origin(parts) {
            tracing::info!(rule = %action.rule_id, "cross-site logout refused");
            return Outcome::Error {
                status: 403,
                error: Some(AuthError::Forbidden),
                set_cookies: Vec::new(),
            };
        }
        let name = &action.session.session_cookie_name;
        let session = match session_cookie::read(&self.ring, name, &parts.headers) {
            CookieRead::Valid { session, .. } if session.binding == action.binding() => {
                Some(session)
            }
            _ => None,
        };
        if let Some(rt) = session.as_ref().and_then(|s| s.refresh_token.as_deref()) {
            action.provider.revoke(rt).await;
        }
        let c = &action.provider.config;
        let back = action.session.logout_redirect_uri.as_deref();
        let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let sep = |url: &str| if url.contains('?') { '&' } else { '?' };
        let location = match (&c.end_session, back) {
            (Some(EndSession::Cognito(url)), Some(back)) => {
                format!(
                    "{url}{}client_id={}&logout_uri={}",
                    sep(url),
                    enc(&c.client_id),
                    enc(back)
                )
            }
            (Some(EndSession::Oidc(url)), _) => {
                let mut q = format!("client_id={}", enc(&c.client_id));
                if let Some(t) = session.as_ref().and_then(|s| s.id_token.as_deref()) {
                    q.push_str(&format!("&id_token_hint={}", enc(t)));
                }
                if let Some(back) = back {
                    q.push_str(&format!("&post_logout_redirect_uri={}", enc(back)));
                }
                format!("{url}{}{q}", sep(url))
            }
            (_, Some(back)) => back.to_string(),
            _ => "/".to_string(),
        };
        tracing::info!(sub = session.as_ref().map_or("-", |s| s.sub.as_str()), rule = %action.rule_id, "signed out");
        let mut response = Response::builder()
            .status(StatusCode::FOUND)
            .header(LOCATION, location)
            .header(CACHE_CONTROL, "no-store")
            .header(http::header::SERVER, "awselb/2.0")
            .body(Bytes::new())
            .unwrap_or_default();
        add_cookies(
            &mut response,
            &session_cookie::clear_values(name, session_cookie::MAX_SHARDS),
        );
        Outcome::Respond {
            response,
            error: None,
        }
    }

    /// Handles `GET /oauth2/idpresponse`: checks nonce and state before the code is spent, then
    /// exchanges it, fetches userinfo, sets the session and sends the browser back.
    pub async fn callback(
        &self,
        parts: &Parts,
        find: impl Fn(&str) -> Option<Arc<AuthAction>>,
    ) -> Outcome {
        let now = crate::now();
        let query: Vec<(String, String)> =
            form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
                .into_owned()
                .take(32)
                .collect();
        let param = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let Some(nonce) = session_cookie::cookie_value(&parts.headers, NONCE_COOKIE) else {
            return fail(AuthError::MissingNonce);
        };
        let Some(st) = param("state") else {
            return fail(AuthError::MissingStateParam);
        };
        let Ok(login) = state::open(&self.ring, st, now) else {
            return fail(AuthError::InvalidStateParam);
        };
        let Some(action) = find(&login.rule) else {
            return fail(AuthError::InvalidStateParam);
        };
        if state::check_nonce(&login, nonce).is_err() {
            return fail(AuthError::InvalidNonce);
        }
        if let Some(e) = param("error") {
            tracing::info!(error = e, "identity provider denied access");
            return fail(AuthError::IdpDenied);
        }
        let Some(code) = param("code") else {
            return fail(AuthError::MissingCodeParam);
        };
        let Some(host) = request_host(parts) else {
            return fail(AuthError::MissingHostHeader);
        };
        let redirect_uri = format!("https://{host}{CALLBACK_PATH}");
        match self
            .complete_login(&action, code, &redirect_uri, nonce, parts, now)
            .await
        {
            Ok(mut cookies) => {
                cookies.push(session_cookie::expire_value(NONCE_COOKIE));
                // `uri` was sealed by us from a request path; refuse anything else all the same.
                let back = if login.uri.starts_with('/') && !login.uri.starts_with("//") {
                    login.uri
                } else {
                    "/".into()
                };
                let mut response = Response::builder()
                    .status(StatusCode::FOUND)
                    .header(LOCATION, back)
                    .header(CACHE_CONTROL, "no-store")
                    .header(http::header::SERVER, "awselb/2.0")
                    .body(Bytes::new())
                    .unwrap_or_default();
                add_cookies(&mut response, &cookies);
                Outcome::Respond {
                    response,
                    error: None,
                }
            }
            Err(e) => fail(e),
        }
    }

    async fn complete_login(
        &self,
        action: &AuthAction,
        code: &str,
        redirect_uri: &str,
        browser_nonce: &str,
        parts: &Parts,
        now: u64,
    ) -> Result<Vec<String>, AuthError> {
        let p = &action.provider;
        let s = &action.session;
        let verifier = s
            .use_pkce
            .then(|| state::pkce_verifier(&self.mac, browser_nonce));
        let started = std::time::Instant::now();
        let tokens = p
            .exchange_code(code, redirect_uri, verifier.as_deref())
            .await?;
        let expected_nonce = s
            .use_nonce
            .then(|| state::oidc_nonce(&self.mac, browser_nonce));
        let mut id = p
            .check_id_token(
                tokens.id_token.as_deref().unwrap_or_default(),
                expected_nonce.as_deref(),
            )
            .await?;
        let claims = p.userinfo(&tokens.access_token).await?;
        crate::oidc::same_subject(&claims, &id.sub)?;
        self.observer.signed_in(started.elapsed());
        if id.iat == 0 {
            id.iat = now;
        }
        let session = self.new_session(
            action,
            tokens,
            claims,
            now + action.session.session_timeout,
            None,
            &id,
            now,
        )?;
        let sealed = self.seal(action, &session)?;
        let previous =
            session_cookie::shard_count(&parts.headers, &action.session.session_cookie_name);
        tracing::info!(sub = %session.sub, rule = %action.rule_id, "signed in");
        Ok(session_cookie::set_cookie_values(
            &action.session.session_cookie_name,
            &sealed,
            previous,
            is_cors(parts),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oidc::{ProviderConfig, http_client};

    fn action(on: OnUnauthenticated) -> AuthAction {
        let provider = ProviderConfig {
            issuer: "https://idp.example/pool".into(),
            authorization_endpoint: "https://idp.example/oauth2/authorize".into(),
            token_endpoint: "https://idp.example/oauth2/token".into(),
            user_info_endpoint: "https://idp.example/oauth2/userInfo".into(),
            jwks_uri: None,
            client_id: "client1".into(),
            client_secret: "secret".into(),
            auth_method: portcullis_config::ClientAuthMethod::ClientSecretBasic,
            revocation_endpoint: None,
            end_session: None,
        };
        let mut extra = std::collections::BTreeMap::new();
        extra.insert("prompt".to_string(), "login".to_string());
        AuthAction::new(
            "1/10".into(),
            Arc::new(Provider::new(provider, http_client())),
            SessionSettings {
                session_cookie_name: "AWSELBAuthSessionCookie".into(),
                scope: "openid tasks/read".into(),
                session_timeout: 604_800,
                authentication_request_extra_params: extra,
                on_unauthenticated_request: on,
                use_pkce: true,
                use_nonce: true,
                unauthenticated_api_requests: ApiRequests::Redirect,
                identity_header: IdentityHeader::Alb,
                jwt_audience: None,
                logout_path: None,
                logout_redirect_uri: None,
                require_scopes: Vec::new(),
                require_groups: Vec::new(),
                require_claims: Default::default(),
            },
        )
    }

    fn parts(uri: &str, host: Option<&str>) -> Parts {
        let mut b = http::Request::builder()
            .uri(uri)
            .version(http::Version::HTTP_10);
        if let Some(h) = host {
            b = b.header("host", h);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn authorization_by_scopes_groups_and_claims() {
        let mut settings = action(OnUnauthenticated::Authenticate).session;
        let mut claims = serde_json::Map::new();
        claims.insert("custom:team".into(), "blue".into());
        claims.insert("roles".into(), serde_json::json!(["a", "b"]));
        let s = Grants {
            claims,
            scopes: vec!["openid".into(), "tasks/read".into()],
            groups: vec!["readers".into()],
            sub: "u1".into(),
            sid: None,
            began: 0,
        };
        assert_eq!(authorize(&settings, &s), Ok(()));
        settings.require_scopes = vec!["tasks/read".into()];
        assert_eq!(authorize(&settings, &s), Ok(()));
        settings.require_scopes.push("tasks/write".into());
        assert_eq!(
            authorize(&settings, &s),
            Err("the access token lacks scope tasks/write".into())
        );
        settings.require_scopes.pop();
        settings.require_groups = vec!["admins".into(), "readers".into()];
        assert_eq!(authorize(&settings, &s), Ok(()), "any one group suffices");
        settings.require_groups = vec!["admins".into()];
        assert!(authorize(&settings, &s).is_err());
        settings.require_groups.clear();
        settings
            .require_claims
            .insert("custom:team".into(), vec!["red".into(), "blue".into()]);
        settings
            .require_claims
            .insert("roles".into(), vec!["b".into()]);
        assert_eq!(authorize(&settings, &s), Ok(()));
        settings
            .require_claims
            .insert("missing".into(), vec!["x".into()]);
        assert!(authorize(&settings, &s).is_err());
    }

    #[test]
    fn scopes_and_groups_come_from_the_access_token() {
        use base64::Engine;
        let b = |v: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        let t = format!(
            "{}.{}.sig",
            b(serde_json::json!({"alg":"RS256"})),
            b(serde_json::json!({"scope":"openid tasks/read","cognito:groups":["g1"]}))
        );
        assert_eq!(
            token_scopes_and_groups(&t),
            (
                vec!["openid".into(), "tasks/read".into()],
                vec!["g1".into()]
            )
        );
        let t = format!(
            "{}.{}.sig",
            b(serde_json::json!({"alg":"RS256"})),
            b(serde_json::json!({"scp":["a"],"groups":["g"]}))
        );
        assert_eq!(
            token_scopes_and_groups(&t),
            (vec!["a".into()], vec!["g".into()])
        );
        assert_eq!(token_scopes_and_groups("opaque"), (vec![], vec![]));
    }

    /// A signed-in session for `action`, sealed with the authenticator's keys, as shard values.
    fn sealed_session(auth: &Authenticator, action: &AuthAction, claims_len: usize) -> Vec<String> {
        let now = crate::now();
        let mut claims = serde_json::Map::new();
        claims.insert("sub".into(), "u1".into());
        claims.insert("pad".into(), "x".repeat(claims_len).into());
        let session = Session {
            sub: "u1".into(),
            claims,
            access_token: "at".into(),
            access_exp: now + 3600,
            refresh_token: None,
            session_exp: now + 86_400,
            binding: action.binding().to_string(),
            id_token: None,
            sid: Some("sid-1".into()),
            began: now - 10,
        };
        session_cookie::seal(&auth.ring, &action.session.session_cookie_name, &session).unwrap()
    }

    fn with_cookie(name: &str, shards: &[String]) -> Parts {
        let cookie = shards
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{name}-{i}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut p = parts("/tasks", Some("app.example"));
        p.headers.insert(
            http::header::COOKIE,
            HeaderValue::from_str(&cookie).unwrap(),
        );
        p
    }

    fn forwarded(o: &Outcome) -> Option<&ClaimHeaders> {
        match o {
            Outcome::Forward {
                headers,
                authenticated: true,
                ..
            } => Some(headers),
            _ => None,
        }
    }

    #[tokio::test]
    async fn a_tampered_cookie_never_hits_the_cache() {
        let auth = Authenticator::new(AuthKeys::ephemeral(), "arn".into());
        let action = action(OnUnauthenticated::Authenticate);
        let name = action.session.session_cookie_name.clone();
        let shards = sealed_session(&auth, &action, 9000);
        assert_eq!(shards.len(), 4);
        let first = auth
            .authenticate(&action, &with_cookie(&name, &shards))
            .await;
        let first = forwarded(&first).expect("signed in").clone();
        assert_eq!(first.len(), 3);
        // The second request is served from the cache: the very same headers.
        let again = auth
            .authenticate(&action, &with_cookie(&name, &shards))
            .await;
        assert!(Arc::ptr_eq(&first, forwarded(&again).unwrap()));
        let now = crate::now();
        let frame = |shards: &[String]| {
            let s = Shards::of(shards).unwrap();
            forward_cache::with_frame(&name, &s, |f| f.unwrap().to_vec())
        };
        assert!(
            auth.cache
                .get(&frame(&shards), &action.cache_key, now)
                .is_some()
        );
        // One byte changed in any shard, at its start, middle or end: no hit, and the request is
        // treated as carrying an invalid cookie.
        for i in 0..shards.len() {
            let len = shards[i].len();
            for at in [0, 1, len / 2, len - 3, len - 2, len - 1] {
                let mut t = shards.clone();
                let b = t[i].as_bytes()[at];
                let flip = if b == b'A' { "B" } else { "A" };
                t[i].replace_range(at..at + 1, flip);
                assert!(
                    auth.cache.get(&frame(&t), &action.cache_key, now).is_none(),
                    "shard {i} byte {at}"
                );
                match auth.authenticate(&action, &with_cookie(&name, &t)).await {
                    Outcome::Respond { error, .. } => {
                        assert_eq!(error, Some(AuthError::InvalidCookie), "shard {i} byte {at}")
                    }
                    other => panic!("shard {i} byte {at}: {other:?}"),
                }
            }
        }
        // The same values under another cookie name (another action on the same provider and
        // client): the name is the seal's associated data, and it is part of what the cache
        // checks.
        let mut other = self::action(OnUnauthenticated::Authenticate);
        other.session.session_cookie_name = "Other".into();
        let o = auth
            .authenticate(&other, &with_cookie("Other", &shards))
            .await;
        assert!(forwarded(&o).is_none(), "{o:?}");
        // The shards' values in one shard fewer (the same bytes cut elsewhere) do not hit either.
        let mut recut = shards.clone();
        let last = recut.pop().unwrap();
        recut[2].push_str(&last);
        assert!(
            auth.cache
                .get(&frame(&recut), &action.cache_key, now)
                .is_none()
        );
        assert_eq!(auth.cache.len(), 1);
        // The untouched cookie still hits.
        let again = auth
            .authenticate(&action, &with_cookie(&name, &shards))
            .await;
        assert!(Arc::ptr_eq(&first, forwarded(&again).unwrap()));
    }

    /// Whether an outcome clears every shard of `name` (`count` of them).
    fn clears(o: &Outcome, name: &str, count: usize) -> bool {
        let cookies: Vec<String> = match o {
            Outcome::Forward { set_cookies, .. } | Outcome::Error { set_cookies, .. } => {
                set_cookies.clone()
            }
            Outcome::Respond { response, .. } => response
                .headers()
                .get_all(SET_COOKIE)
                .iter()
                .map(|v| v.to_str().unwrap().to_string())
                .collect(),
        };
        (0..count).all(|i| {
            cookies
                .iter()
                .any(|c| c.starts_with(&format!("{name}-{i}=;")))
        })
    }

    #[tokio::test]
    async fn a_revoked_session_is_signed_out_on_the_cached_path_too() {
        const ISS: &str = "https://idp.example/pool";
        for on in [
            OnUnauthenticated::Authenticate,
            OnUnauthenticated::Deny,
            OnUnauthenticated::Allow,
        ] {
            let auth = Authenticator::new(AuthKeys::ephemeral(), "arn".into());
            let action = action(on);
            let name = action.session.session_cookie_name.clone();
            let shards = sealed_session(&auth, &action, 5000);
            let req = with_cookie(&name, &shards);
            assert!(forwarded(&auth.authenticate(&action, &req).await).is_some());
            // Cached now; another session's revocation changes nothing.
            let now = crate::now();
            auth.revocations().end(ISS, Some("sid-2"), "u1", now, now);
            assert!(forwarded(&auth.authenticate(&action, &req).await).is_some());
            auth.revocations().end(ISS, Some("sid-1"), "u1", now, now);
            let o = auth.authenticate(&action, &req).await;
            assert!(clears(&o, &name, shards.len()), "{on:?}: {o:?}");
            match (on, &o) {
                (OnUnauthenticated::Authenticate, Outcome::Respond { response, error }) => {
                    assert_eq!(response.status(), 302);
                    assert_eq!(*error, Some(AuthError::SessionRevoked));
                }
                (OnUnauthenticated::Deny, Outcome::Error { status, error, .. }) => {
                    assert_eq!((*status, *error), (401, Some(AuthError::SessionRevoked)));
                }
                (
                    OnUnauthenticated::Allow,
                    Outcome::Forward {
                        headers,
                        authenticated: false,
                        error,
                        ..
                    },
                ) => {
                    assert!(headers.is_empty());
                    assert_eq!(*error, Some(AuthError::SessionRevoked));
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(
                AuthError::SessionRevoked.reason(),
                Some("AuthSessionRevoked")
            );
        }
    }

    #[tokio::test]
    async fn a_user_wide_revocation_spares_later_sessions_and_old_cookies_keep_working() {
        const ISS: &str = "https://idp.example/pool";
        let auth = Authenticator::new(AuthKeys::ephemeral(), "arn".into());
        let action = action(OnUnauthenticated::Deny);
        let name = action.session.session_cookie_name.clone();
        let now = crate::now();
        let seal = |sid: Option<&str>, began: u64| {
            let mut claims = serde_json::Map::new();
            claims.insert("sub".into(), "u1".into());
            let session = Session {
                sub: "u1".into(),
                claims,
                access_token: "at".into(),
                access_exp: now + 3600,
                refresh_token: None,
                session_exp: now + 86_400,
                binding: action.binding().to_string(),
                id_token: None,
                sid: sid.map(str::to_owned),
                began,
            };
            let shards = session_cookie::seal(&auth.ring, &name, &session).unwrap();
            with_cookie(&name, &shards)
        };
        // A cookie sealed before sessions carried sid and began works, until its user's
        // sessions are ended: it began before any revocation.
        let old = seal(None, 0);
        let before = seal(Some("a"), now - 100);
        let after = seal(Some("b"), now - 10);
        for r in [&old, &before, &after] {
            assert!(forwarded(&auth.authenticate(&action, r).await).is_some());
        }
        auth.revocations().end(ISS, None, "u1", now - 50, now);
        for (r, alive) in [(&old, false), (&before, false), (&after, true)] {
            let o = auth.authenticate(&action, r).await;
            assert_eq!(forwarded(&o).is_some(), alive, "{o:?}");
        }
    }

    #[tokio::test]
    async fn redirect_is_shaped_like_albs() {
        let auth = Authenticator::new(AuthKeys::ephemeral(), "arn".into());
        let Outcome::Respond { response, error } = auth
            .authenticate(
                &action(OnUnauthenticated::Authenticate),
                &parts("/tasks?x=1", Some("app.example:8443")),
            )
            .await
        else {
            panic!("expected a redirect")
        };
        assert_eq!(error, None);
        assert_eq!(response.status(), 302);
        let loc = response.headers()["location"].to_str().unwrap();
        assert!(loc.starts_with("https://idp.example/oauth2/authorize?client_id=client1&redirect_uri=https%3A%2F%2Fapp.example%3A8443%2Foauth2%2Fidpresponse&response_type=code&scope=openid%20tasks%2Fread&state="), "{loc}");
        assert!(
            loc.ends_with("&prompt=login"),
            "extra parameters come last: {loc}"
        );
        let nonce = response.headers()["set-cookie"].to_str().unwrap();
        assert!(
            nonce.starts_with("AWSALBAuthNonce=") && nonce.contains("Secure; HttpOnly"),
            "{nonce}"
        );
    }

    #[tokio::test]
    async fn missing_host_is_401_and_deny_is_401() {
        let auth = Authenticator::new(AuthKeys::ephemeral(), "arn".into());
        match auth
            .authenticate(
                &action(OnUnauthenticated::Authenticate),
                &parts("/tasks", None),
            )
            .await
        {
            Outcome::Error { status, error, .. } => {
                assert_eq!(status, 401);
                assert_eq!(error, Some(AuthError::MissingHostHeader));
                assert_eq!(
                    error.and_then(AuthError::reason),
                    Some("AuthMissingHostHeader")
                );
            }
            other => panic!("{other:?}"),
        }
        match auth
            .authenticate(
                &action(OnUnauthenticated::Deny),
                &parts("/tasks", Some("a.example")),
            )
            .await
        {
            Outcome::Error { status, error, .. } => assert_eq!((status, error), (401, None)),
            other => panic!("{other:?}"),
        }
        match auth
            .authenticate(
                &action(OnUnauthenticated::Allow),
                &parts("/tasks", Some("a.example")),
            )
            .await
        {
            Outcome::Forward {
                headers,
                authenticated,
                ..
            } => assert!(headers.is_empty() && !authenticated),
            other => panic!("{other:?}"),
        }
    }
}
