//! OpenID Connect Back-Channel Logout 1.0, receiving side: the provider POSTs a signed logout
//! token to [`BACKCHANNEL_LOGOUT_PATH`], and the session it names (or every session of its
//! `sub`) is refused on its next request. Validated as §2.6 requires; a refusal is a 400 with a
//! JSON error and changes nothing.
//!
//! A token reaching one balancer node is known to that node only (its [`RevocationSet`] is in
//! memory); see `docs/design.md` for several nodes.
//!
//! This module holds what a valid logout token is and the replay cache; the endpoint that reads
//! the request and ends the sessions is [`Authenticator::backchannel_logout`].
//!
//! [`RevocationSet`]: crate::revocation::RevocationSet
//! [`Authenticator::backchannel_logout`]: crate::Authenticator::backchannel_logout

use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Mutex;

/// The path the balancer serves for logout tokens, on every listener with an authenticate
/// action (register `https://<host>/oauth2/backchannel-logout` as the client's
/// `backchannel_logout_uri`).
pub const BACKCHANNEL_LOGOUT_PATH: &str = "/oauth2/backchannel-logout";
/// Largest request body read (a logout token is about 1 KB).
pub const MAX_LOGOUT_BODY: usize = 16 * 1024;
/// How old (by `iat`) a logout token may be.
pub const MAX_LOGOUT_AGE: u64 = 300;
/// Clock skew allowed on `iat` and `exp`.
pub const LOGOUT_LEEWAY: u64 = 60;
/// The `events` member that makes a JWT a logout token.
pub const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// Most `jti`s remembered; only the provider can fill it (tokens must verify first).
pub const MAX_REPLAY_ENTRIES: usize = 100_000;
/// Longest `jti`, `sid` or `sub` accepted.
const MAX_CLAIM: usize = 255;

/// Why a logout token was refused (the `error_description` of the 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LogoutRefusal {
    /// Not a POST.
    #[error("use POST")]
    Method,
    /// The body is not `application/x-www-form-urlencoded`.
    #[error("the body must be application/x-www-form-urlencoded")]
    ContentType,
    /// The body is larger than 16 KiB or could not be read.
    #[error("the body is too large or unreadable")]
    Body,
    /// No single `logout_token` parameter.
    #[error("exactly one logout_token parameter is required")]
    Missing,
    /// Not a JWS with a supported asymmetric algorithm (`none` and HMAC included).
    #[error("the logout token is not a JWT signed with a supported asymmetric algorithm")]
    Malformed,
    /// A `typ` header other than `logout+jwt` or `JWT`.
    #[error("the logout token's typ is not logout+jwt")]
    Type,
    /// No authenticate action has this `iss` and a client in `aud`.
    #[error("no authenticate action has this issuer and audience")]
    UnknownIssuer,
    /// The provider publishes no JWKS, so its tokens cannot be verified.
    #[error("the provider has no JWKS to verify logout tokens with")]
    NoKeys,
    /// The JWKS could not be fetched.
    #[error("the provider's keys are unavailable")]
    KeysUnavailable,
    /// No key with the token's `kid`, or no `kid`.
    #[error("the logout token's key is unknown")]
    UnknownKey,
    /// The signature does not verify.
    #[error("the logout token's signature does not verify")]
    Signature,
    /// `iss` is not the provider's.
    #[error("iss is not the provider's")]
    Issuer,
    /// `aud` does not name the client.
    #[error("aud does not name this client")]
    Audience,
    /// `iat` missing, too old or in the future.
    #[error("iat is missing, too old or in the future")]
    IssuedAt,
    /// `exp` present and past, or not a number.
    #[error("the logout token has expired")]
    Expired,
    /// No `events` object with the back-channel logout member as an object.
    #[error("events lacks the back-channel logout event")]
    Events,
    /// Neither `sub` nor `sid`, or one that is not a short string.
    #[error("sub or sid is required")]
    Subject,
    /// A `nonce` claim (forbidden: it would make an ID token pass as a logout token).
    #[error("a logout token must not contain nonce")]
    Nonce,
    /// No `jti`.
    #[error("jti is required")]
    Jti,
    /// This `jti` was accepted before.
    #[error("this logout token was already used")]
    Replayed,
    /// The replay cache is full of unexpired entries.
    #[error("too many logout tokens; retry later")]
    Busy,
}

/// What a valid logout token ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutFacts {
    /// The session, when named.
    pub sid: Option<String>,
    /// The user, when named.
    pub sub: Option<String>,
    /// When it was issued (provider clock).
    pub iat: u64,
    /// Its unique id.
    pub jti: String,
}

/// §2.6 steps 3 to 6 on a verified token's claims: `iss`, `aud`, `iat` (at most
/// [`MAX_LOGOUT_AGE`] old), `exp` when present, the `events` member, `sub` or `sid`, no
/// `nonce`, a `jti`.
pub fn validate_logout_claims(
    claims: &Map<String, Value>,
    issuer: &str,
    client_id: &str,
    now: u64,
) -> Result<LogoutFacts, LogoutRefusal> {
    use LogoutRefusal as R;
    if claims.get("iss").and_then(Value::as_str) != Some(issuer) {
        return Err(R::Issuer);
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == client_id,
        Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(client_id)),
        _ => false,
    };
    if !aud_ok {
        return Err(R::Audience);
    }
    let time = |v: &Value| {
        v.as_u64().or_else(|| {
            v.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0)
                .map(|f| f as u64)
        })
    };
    let iat = claims.get("iat").and_then(time).ok_or(R::IssuedAt)?;
    if iat > now.saturating_add(LOGOUT_LEEWAY)
        || iat.saturating_add(MAX_LOGOUT_AGE + LOGOUT_LEEWAY) < now
    {
        return Err(R::IssuedAt);
    }
    if let Some(exp) = claims.get("exp") {
        match time(exp) {
            Some(exp) if exp.saturating_add(LOGOUT_LEEWAY) > now => {}
            _ => return Err(R::Expired),
        }
    }
    match claims
        .get("events")
        .and_then(Value::as_object)
        .and_then(|e| e.get(BACKCHANNEL_EVENT))
    {
        Some(Value::Object(_)) => {}
        _ => return Err(R::Events),
    }
    let short = |name: &str| -> Result<Option<String>, LogoutRefusal> {
        match claims.get(name) {
            None => Ok(None),
            Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_CLAIM => Ok(Some(s.clone())),
            Some(_) => Err(R::Subject),
        }
    };
    let (sub, sid) = (short("sub")?, short("sid")?);
    if sub.is_none() && sid.is_none() {
        return Err(R::Subject);
    }
    if claims.contains_key("nonce") {
        return Err(R::Nonce);
    }
    let jti = match claims.get("jti") {
        Some(Value::String(j)) if !j.is_empty() && j.len() <= MAX_CLAIM => j.clone(),
        _ => return Err(R::Jti),
    };
    Ok(LogoutFacts { sid, sub, iat, jti })
}

/// `jti`s of accepted logout tokens, each kept until its token would be refused as too old.
pub struct ReplayCache {
    seen: Mutex<HashMap<String, u64>>,
    cap: usize,
}

impl Default for ReplayCache {
    fn default() -> Self {
        ReplayCache::with_cap(MAX_REPLAY_ENTRIES)
    }
}

impl ReplayCache {
    /// A cache of at most `cap` entries.
    pub fn with_cap(cap: usize) -> ReplayCache {
        ReplayCache {
            seen: Mutex::new(HashMap::new()),
            cap,
        }
    }

    /// Records `(iss, jti)`; refuses one seen before, and any when full of unexpired entries.
    pub fn first_use(&self, iss: &str, jti: &str, iat: u64, now: u64) -> Result<(), LogoutRefusal> {
        let until = iat.saturating_add(MAX_LOGOUT_AGE + 2 * LOGOUT_LEEWAY);
        let key = format!("{iss}\u{0}{jti}");
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.get(&key).is_some_and(|u| *u > now) {
            return Err(LogoutRefusal::Replayed);
        }
        if seen.len() >= self.cap {
            seen.retain(|_, u| *u > now);
            if seen.len() >= self.cap {
                return Err(LogoutRefusal::Busy);
            }
        }
        seen.insert(key, until);
        Ok(())
    }
}

/// Algorithms a provider may sign logout tokens with: asymmetric only (no `none`, no HMAC).
pub(crate) fn asymmetric(alg: Algorithm) -> bool {
    use Algorithm::*;
    matches!(
        alg,
        RS256 | RS384 | RS512 | PS256 | PS384 | PS512 | ES256 | ES384 | EdDSA
    )
}

/// `typ` as §2.4 allows: absent, `JWT`, or `logout+jwt` (with or without `application/`).
pub(crate) fn typ_ok(typ: Option<&str>) -> bool {
    typ.is_none_or(|t| {
        let t = t.to_ascii_lowercase();
        let t = t.strip_prefix("application/").unwrap_or(&t);
        t == "jwt" || t == "logout+jwt"
    })
}

/// The single `logout_token` of an urlencoded form.
pub(crate) fn logout_token(body: &[u8]) -> Result<String, LogoutRefusal> {
    let mut tokens = form_urlencoded::parse(body)
        .filter(|(k, _)| k == "logout_token")
        .map(|(_, v)| v.into_owned());
    match (tokens.next(), tokens.next()) {
        (Some(t), None) if !t.is_empty() => Ok(t),
        _ => Err(LogoutRefusal::Missing),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: u64 = 1_700_000_000;
    const ISS: &str = "https://op.example";

    fn good() -> Map<String, Value> {
        json!({
            "iss": ISS, "aud": "client1", "iat": NOW, "jti": "j-1", "sid": "s-1", "sub": "u-1",
            "events": { BACKCHANNEL_EVENT: {} }
        })
        .as_object()
        .unwrap()
        .clone()
    }

    fn check(edit: impl FnOnce(&mut Map<String, Value>)) -> Result<LogoutFacts, LogoutRefusal> {
        let mut c = good();
        edit(&mut c);
        validate_logout_claims(&c, ISS, "client1", NOW)
    }

    #[test]
    fn a_valid_token_names_its_session() {
        assert_eq!(
            check(|_| {}),
            Ok(LogoutFacts {
                sid: Some("s-1".into()),
                sub: Some("u-1".into()),
                iat: NOW,
                jti: "j-1".into()
            })
        );
        assert!(
            check(|c| {
                c.remove("sid");
            })
            .is_ok(),
            "sub alone"
        );
        assert!(
            check(|c| {
                c.remove("sub");
            })
            .is_ok(),
            "sid alone"
        );
        assert!(
            check(|c| {
                c.insert("aud".into(), json!(["x", "client1"]));
            })
            .is_ok()
        );
        assert!(
            check(|c| {
                c.insert("exp".into(), json!(NOW + 120));
            })
            .is_ok()
        );
        assert!(
            check(|c| {
                c.insert("iat".into(), json!(NOW - MAX_LOGOUT_AGE));
            })
            .is_ok()
        );
    }

    #[test]
    fn each_rule_of_section_2_6_refuses() {
        use LogoutRefusal as R;
        let cases: Vec<(&str, Option<Value>, LogoutRefusal)> = vec![
            ("iss", Some(json!("https://evil.example")), R::Issuer),
            ("iss", None, R::Issuer),
            ("aud", Some(json!("other")), R::Audience),
            ("aud", Some(json!(["other"])), R::Audience),
            ("aud", None, R::Audience),
            ("iat", None, R::IssuedAt),
            (
                "iat",
                Some(json!(NOW - MAX_LOGOUT_AGE - LOGOUT_LEEWAY - 1)),
                R::IssuedAt,
            ),
            ("iat", Some(json!(NOW + LOGOUT_LEEWAY + 1)), R::IssuedAt),
            ("iat", Some(json!("now")), R::IssuedAt),
            ("exp", Some(json!(NOW - LOGOUT_LEEWAY)), R::Expired),
            ("exp", Some(json!("later")), R::Expired),
            ("events", None, R::Events),
            ("events", Some(json!({})), R::Events),
            (
                "events",
                Some(json!({ BACKCHANNEL_EVENT: "yes" })),
                R::Events,
            ),
            ("events", Some(json!([BACKCHANNEL_EVENT])), R::Events),
            ("nonce", Some(json!("n")), R::Nonce),
            ("jti", None, R::Jti),
            ("jti", Some(json!("")), R::Jti),
            ("jti", Some(json!(7)), R::Jti),
            ("sid", Some(json!(1)), R::Subject),
            ("sub", Some(json!("x".repeat(300))), R::Subject),
        ];
        for (claim, value, want) in cases {
            let got = check(|c| match &value {
                Some(v) => {
                    c.insert(claim.into(), v.clone());
                }
                None => {
                    c.remove(claim);
                }
            });
            assert_eq!(got, Err(want), "{claim} = {value:?}");
        }
        assert_eq!(
            check(|c| {
                c.remove("sub");
                c.remove("sid");
            }),
            Err(R::Subject)
        );
    }

    #[test]
    fn typ_and_algorithms() {
        assert!(typ_ok(None));
        assert!(typ_ok(Some("JWT")));
        assert!(typ_ok(Some("logout+jwt")));
        assert!(typ_ok(Some("application/logout+JWT")));
        assert!(!typ_ok(Some("at+jwt")));
        assert!(!typ_ok(Some("secevent+jwt")));
        assert!(asymmetric(Algorithm::RS256) && asymmetric(Algorithm::ES256));
        assert!(!asymmetric(Algorithm::HS256));
    }

    #[test]
    fn the_form_has_exactly_one_token() {
        assert_eq!(logout_token(b"logout_token=a.b.c"), Ok("a.b.c".into()));
        assert_eq!(logout_token(b"x=1&logout_token=a%2Eb"), Ok("a.b".into()));
        assert_eq!(logout_token(b""), Err(LogoutRefusal::Missing));
        assert_eq!(logout_token(b"logout_token="), Err(LogoutRefusal::Missing));
        assert_eq!(
            logout_token(b"logout_token=a&logout_token=b"),
            Err(LogoutRefusal::Missing)
        );
    }

    #[test]
    fn replay_cache_refuses_a_second_use_and_stays_bounded() {
        let c = ReplayCache::with_cap(2);
        assert_eq!(c.first_use(ISS, "a", NOW, NOW), Ok(()));
        assert_eq!(
            c.first_use(ISS, "a", NOW, NOW),
            Err(LogoutRefusal::Replayed)
        );
        assert_eq!(
            c.first_use("https://other", "a", NOW, NOW),
            Ok(()),
            "per issuer"
        );
        assert_eq!(c.first_use(ISS, "b", NOW, NOW), Err(LogoutRefusal::Busy));
        // Once the first ones are too old to be accepted anyway, room is made.
        let later = NOW + MAX_LOGOUT_AGE + 2 * LOGOUT_LEEWAY;
        assert_eq!(c.first_use(ISS, "b", later, later), Ok(()));
        assert_eq!(c.seen.lock().unwrap().len(), 1);
    }

    proptest::proptest! {
        /// Arbitrary claim sets never panic, and anything accepted has a jti and sub or sid.
        #[test]
        fn arbitrary_claims_never_panic(
            keys in proptest::collection::vec(
                proptest::sample::select(vec!["iss", "aud", "iat", "exp", "events", "sub", "sid", "jti", "nonce"]),
                0..9),
            vals in proptest::collection::vec(0u8..6, 9),
        ) {
            let mut c = Map::new();
            for (k, v) in keys.iter().zip(vals) {
                let v = match v {
                    0 => json!(ISS),
                    1 => json!("client1"),
                    2 => json!(NOW),
                    3 => json!({ BACKCHANNEL_EVENT: {} }),
                    4 => json!(null),
                    _ => json!(["client1"]),
                };
                c.insert((*k).into(), v);
            }
            if let Ok(f) = validate_logout_claims(&c, ISS, "client1", NOW) {
                proptest::prop_assert!(!f.jti.is_empty());
                proptest::prop_assert!(f.sub.is_some() || f.sid.is_some());
            }
        }
    }
}
