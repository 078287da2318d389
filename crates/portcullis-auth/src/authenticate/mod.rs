//! The authenticate action as a function of request parts: it either says "forward with these
//! headers" or "answer with this response". It knows nothing of sockets. This module holds the
//! action, its outcome and the request path of a signed-in user; the login (redirect and
//! callback), the session (refresh and sealing), the logout, authorization and the answers live in
//! the modules below. Time is read from the [`Authenticator`]'s [`Clock`], so tests move it.

mod authorization;
mod login;
mod logout;
mod request;
mod responses;
mod session;

pub use authorization::{Denied, Grants, authorize, token_scopes_and_groups};
pub use request::{is_api_request, same_origin};

use crate::claims_header::ClaimsSigner;
use crate::claims_header::HEADER_LIFETIME;
use crate::error::AuthError;
use crate::forward_cache::{self, ForwardCache, Hit};
use crate::keys::{AuthKeys, KeyRing, MacKey};
use crate::oidc::Provider;
use crate::revocation::{RevocationSet, SessionRef};
use crate::session_cookie::{self, Collected, Opened, Session};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Response, request::Parts};
use portcullis_config::{ApiRequests, IdentityHeader, OnUnauthenticated, SessionSettings};
use portcullis_core::Clock;
use responses::{add_cookies, api_unauthorized, fail, forbidden};
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
    /// What session expiry, refresh and the login state's lifetime are measured against.
    clock: Arc<Clock>,
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
            clock: Arc::new(Clock::default()),
        }
    }

    /// Reads time from `clock` instead of the system clock (tests stop and move it).
    pub fn with_clock(mut self, clock: Arc<Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The clock sessions and logins are timed by.
    pub fn clock(&self) -> &Arc<Clock> {
        &self.clock
    }

    /// Seconds since the epoch by [`Authenticator::clock`].
    pub(crate) fn now(&self) -> u64 {
        u64::try_from(self.clock.now()).unwrap_or(0)
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
        let now = self.now();
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oidc::ProviderConfig;
    use crate::session_cookie::Shards;
    use http::header::SET_COOKIE;
    use portcullis_verify::client::http_client;

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
            Err(Denied::MissingScope("tasks/write".into()))
        );
        assert_eq!(
            authorize(&settings, &s).unwrap_err().to_string(),
            "the access token lacks scope tasks/write"
        );
        settings.require_scopes.pop();
        settings.require_groups = vec!["admins".into(), "readers".into()];
        assert_eq!(authorize(&settings, &s), Ok(()), "any one group suffices");
        settings.require_groups = vec!["admins".into()];
        assert!(authorize(&settings, &s).is_err());
        assert_eq!(
            authorize(&settings, &s).unwrap_err().to_string(),
            "the user is in none of the groups admins"
        );
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

    /// A session of user u1 for `action` at `now` (access token for an hour, session for a day),
    /// with these claims, sign-in session and start.
    fn session_of_u1(
        action: &AuthAction,
        now: u64,
        claims: serde_json::Map<String, serde_json::Value>,
        sid: Option<&str>,
        began: u64,
    ) -> Session {
        Session {
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
        }
    }

    /// A signed-in session for `action`, sealed with the authenticator's keys, as shard values.
    fn sealed_session(auth: &Authenticator, action: &AuthAction, claims_len: usize) -> Vec<String> {
        let now = auth.now();
        let mut claims = serde_json::Map::new();
        claims.insert("sub".into(), "u1".into());
        claims.insert("pad".into(), "x".repeat(claims_len).into());
        let session = session_of_u1(action, now, claims, Some("sid-1"), now - 10);
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
        let now = portcullis_core::now();
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
            let now = portcullis_core::now();
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
        let now = portcullis_core::now();
        let seal = |sid: Option<&str>, began: u64| {
            let mut claims = serde_json::Map::new();
            claims.insert("sub".into(), "u1".into());
            let session = session_of_u1(&action, now, claims, sid, began);
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
    async fn sessions_expire_by_the_authenticators_clock() {
        let clock = Arc::new(Clock::default());
        clock.set_ms(Some(portcullis_core::now() as i64 * 1000));
        let auth =
            Authenticator::new(AuthKeys::ephemeral(), "arn".into()).with_clock(clock.clone());
        let action = action(OnUnauthenticated::Authenticate);
        let name = action.session.session_cookie_name.clone();
        let shards = sealed_session(&auth, &action, 10);
        let cookie = with_cookie(&name, &shards);
        assert!(forwarded(&auth.authenticate(&action, &cookie).await).is_some());
        // An hour on, the access token has expired and there is no refresh token: a new login,
        // though the cached headers of the same cookie were fresh an hour ago.
        clock.advance_ms(3_601_000);
        match auth.authenticate(&action, &cookie).await {
            Outcome::Respond { response, .. } => assert_eq!(response.status(), 302),
            other => panic!("expected a redirect to the provider, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn the_login_state_expires_by_the_authenticators_clock() {
        let clock = Arc::new(Clock::default());
        clock.set_ms(Some(portcullis_core::now() as i64 * 1000));
        let auth =
            Authenticator::new(AuthKeys::ephemeral(), "arn".into()).with_clock(clock.clone());
        let action = Arc::new(action(OnUnauthenticated::Authenticate));
        let Outcome::Respond { response, .. } = auth
            .authenticate(&action, &parts("/tasks", Some("app.example")))
            .await
        else {
            panic!("expected a redirect")
        };
        let loc = response.headers()["location"].to_str().unwrap();
        let state = form_urlencoded::parse(loc.split_once('?').unwrap().1.as_bytes())
            .find(|(k, _)| k == "state")
            .unwrap()
            .1
            .into_owned();
        let nonce = response.headers()["set-cookie"].to_str().unwrap();
        let nonce = nonce.split(';').next().unwrap().to_string();
        let callback = || {
            let q = form_urlencoded::Serializer::new(String::new())
                .append_pair("state", &state)
                .append_pair("error", "access_denied")
                .finish();
            let mut p = parts(&format!("{CALLBACK_PATH}?{q}"), Some("app.example"));
            p.headers
                .insert(http::header::COOKIE, HeaderValue::from_str(&nonce).unwrap());
            p
        };
        let error_of = |o: Outcome| match o {
            Outcome::Error { error, .. } => error,
            other => panic!("expected an error, got {other:?}"),
        };
        // Within the login's lifetime, state and nonce pass (the provider's error is reported).
        let found = |_: &str| Some(action.clone());
        assert_eq!(
            error_of(auth.callback(&callback(), found).await),
            Some(AuthError::IdpDenied)
        );
        clock.advance_ms((crate::state::LOGIN_TIMEOUT as i64 + 1) * 1000);
        assert_eq!(
            error_of(auth.callback(&callback(), found).await),
            Some(AuthError::InvalidStateParam)
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
