//! The encrypted, sharded session cookie `<name>-0..3`: what a signed-in browser carries instead of
//! server-side state, as ALB does.

use crate::keys::KeyRing;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Most characters in one shard's value (browsers cap a cookie at about 4 KB).
pub const SHARD_LEN: usize = 4000;
/// Most shards (ALB: 16 KB in all).
pub const MAX_SHARDS: usize = 4;

/// What a session holds. Sealed with AES-256-GCM, bound to the cookie name.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Session {
    /// The `sub` from userinfo (`x-amzn-oidc-identity`).
    pub sub: String,
    /// The userinfo response, as received.
    pub claims: Map<String, Value>,
    /// The access token, verbatim.
    pub access_token: String,
    /// When the access token expires (epoch seconds).
    pub access_exp: u64,
    /// The refresh token, if the IdP gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// When the session ends regardless of tokens (`session_timeout`).
    pub session_exp: u64,
    /// The IdP issuer and client this session came from; a session from another action is ignored.
    pub binding: String,
    /// The ID token, kept only when the provider's logout needs it as `id_token_hint`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

/// What the request's cookies say.
#[derive(Debug)]
pub enum CookieRead {
    /// No shard of this name.
    Absent,
    /// Present but unusable: tampered, truncated, foreign, too many shards.
    Invalid(&'static str),
    /// Opened; `tag` identifies this exact sealed value (cache key).
    Valid {
        /// The session.
        session: Box<Session>,
        /// The AEAD tag of the sealed value.
        tag: [u8; 16],
        /// How many shards the request carried.
        shards: usize,
    },
}

/// Iterates `name=value` pairs of every Cookie header.
pub fn cookie_pairs(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|p| p.trim().split_once('='))
}

/// Finds one cookie's value.
pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    cookie_pairs(headers)
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// How many shards of `base` the request has (for expiring stale ones).
pub fn shard_count(headers: &HeaderMap, base: &str) -> usize {
    cookie_pairs(headers)
        .filter_map(|(n, _)| {
            n.strip_prefix(base)?
                .strip_prefix('-')?
                .parse::<usize>()
                .ok()
        })
        .map(|i| i + 1)
        .max()
        .unwrap_or(0)
}

/// The session cookie decrypted but not yet parsed (parsing is skipped on a cache hit).
#[derive(Debug)]
pub enum Opened {
    /// No shard of this name.
    Absent,
    /// Present but unusable.
    Invalid(&'static str),
    /// Authentic plaintext and the AEAD tag that identifies it.
    Sealed {
        /// The decrypted session JSON.
        plain: Vec<u8>,
        /// The AEAD tag of the sealed value (authenticated by the open).
        tag: [u8; 16],
        /// How many shards the request carried.
        shards: usize,
    },
}

/// Parses an opened session.
pub fn parse(plain: &[u8]) -> Option<Session> {
    serde_json::from_slice(plain).ok()
}

/// Reads and opens the session named `base`, and parses it.
pub fn read(ring: &KeyRing, base: &str, headers: &HeaderMap) -> CookieRead {
    match open(ring, base, headers) {
        Opened::Absent => CookieRead::Absent,
        Opened::Invalid(why) => CookieRead::Invalid(why),
        Opened::Sealed { plain, tag, shards } => match parse(&plain) {
            Some(session) => CookieRead::Valid {
                session: Box::new(session),
                tag,
                shards,
            },
            None => CookieRead::Invalid("unexpected contents"),
        },
    }
}

/// Collects and decrypts the shards of `base`, refusing more than four before decrypting.
pub fn open(ring: &KeyRing, base: &str, headers: &HeaderMap) -> Opened {
    let mut shards: [Option<&str>; MAX_SHARDS] = [None; MAX_SHARDS];
    let mut any = false;
    for (name, value) in cookie_pairs(headers) {
        let Some(index) = name.strip_prefix(base).and_then(|r| r.strip_prefix('-')) else {
            continue;
        };
        let Ok(index) = index.parse::<usize>() else {
            continue;
        };
        any = true;
        if index >= MAX_SHARDS {
            return Opened::Invalid("more than 4 shards");
        }
        if value.len() > SHARD_LEN {
            return Opened::Invalid("shard larger than 4000 bytes");
        }
        if shards[index].replace(value).is_some() {
            return Opened::Invalid("shard sent twice");
        }
    }
    if !any {
        return Opened::Absent;
    }
    let count = shards.iter().take_while(|s| s.is_some()).count();
    if shards[count..].iter().any(Option::is_some) || count == 0 {
        return Opened::Invalid("shards are not contiguous from -0");
    }
    let joined: String = shards[..count].iter().flatten().copied().collect();
    let Ok(sealed) = STANDARD.decode(joined.as_bytes()) else {
        return Opened::Invalid("not base64");
    };
    let Some(plain) = ring.open(base.as_bytes(), &sealed) else {
        return Opened::Invalid("does not decrypt");
    };
    let mut tag = [0u8; 16];
    tag.copy_from_slice(&sealed[sealed.len() - 16..]);
    Opened::Sealed {
        plain,
        tag,
        shards: count,
    }
}

/// Why a session could not be sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealError {
    /// It would take more than four shards (ALB's `AuthUserClaimsSizeExceeded`).
    TooLarge,
    /// Serialising or encryption failed (the system random source).
    Crypto,
}

/// Seals a session into shard values (at most four).
pub fn seal(ring: &KeyRing, base: &str, session: &Session) -> Result<Vec<String>, SealError> {
    let plain = serde_json::to_vec(session).map_err(|_| SealError::Crypto)?;
    let sealed = ring
        .seal(base.as_bytes(), &plain)
        .map_err(|_| SealError::Crypto)?;
    let value = STANDARD.encode(sealed);
    let shards: Vec<String> = value
        .as_bytes()
        .chunks(SHARD_LEN)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    if shards.len() > MAX_SHARDS {
        return Err(SealError::TooLarge);
    }
    Ok(shards)
}

/// `Set-Cookie` values writing `shards` and expiring any of the `previous` ones now unused.
pub fn set_cookie_values(
    base: &str,
    shards: &[String],
    previous: usize,
    same_site_none: bool,
) -> Vec<String> {
    let expires = httpdate_in(7 * 24 * 3600);
    let same_site = if same_site_none { "None" } else { "Lax" };
    let mut out: Vec<String> = shards
        .iter()
        .enumerate()
        .map(|(i, v)| {
            format!(
                "{base}-{i}={v}; Expires={expires}; Path=/; Secure; HttpOnly; SameSite={same_site}"
            )
        })
        .collect();
    for i in shards.len()..previous.min(MAX_SHARDS) {
        out.push(expire_value(&format!("{base}-{i}")));
    }
    out
}

/// `Set-Cookie` values that remove every shard (logout, invalid cookie).
pub fn clear_values(base: &str, count: usize) -> Vec<String> {
    (0..count.min(MAX_SHARDS))
        .map(|i| expire_value(&format!("{base}-{i}")))
        .collect()
}

/// A `Set-Cookie` value that deletes `name`.
pub fn expire_value(name: &str) -> String {
    format!("{name}=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/; Secure; HttpOnly")
}

/// An IMF-fixdate `seconds` from now.
pub fn httpdate_in(seconds: u64) -> String {
    httpdate(crate::now() + seconds)
}

/// Formats epoch seconds as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn httpdate(epoch: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = epoch / 86400;
    let secs = epoch % 86400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        d,
        MONTHS[(m - 1) as usize],
        y,
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn ring() -> KeyRing {
        KeyRing::new(vec![(1, [7; 32])])
    }

    fn session(claims_len: usize) -> Session {
        let mut claims = Map::new();
        claims.insert("sub".into(), "u1".into());
        claims.insert("pad".into(), "x".repeat(claims_len).into());
        Session {
            sub: "u1".into(),
            claims,
            access_token: "at".into(),
            access_exp: 10,
            refresh_token: Some("rt".into()),
            session_exp: 20,
            binding: "iss|client".into(),
            id_token: None,
        }
    }

    fn headers(cookie: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::COOKIE, HeaderValue::from_str(cookie).unwrap());
        h
    }

    fn as_cookie_header(base: &str, shards: &[String]) -> String {
        shards
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{base}-{i}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    #[test]
    fn round_trip_single_and_sharded() {
        for len in [10, 5000, 9000] {
            let s = session(len);
            let shards = seal(&ring(), "S", &s).unwrap();
            assert_eq!(shards.len(), (len / 3000) + 1, "len {len}");
            match read(
                &ring(),
                "S",
                &headers(&format!("other=1; {}", as_cookie_header("S", &shards))),
            ) {
                CookieRead::Valid {
                    session, shards: n, ..
                } => {
                    assert_eq!(*session, s);
                    assert_eq!(n, shards.len());
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(
            seal(&ring(), "S", &session(13000)) == Err(SealError::TooLarge),
            "more than 16 KB cannot be sealed"
        );
    }

    #[test]
    fn refuses_tampering_truncation_renaming_and_excess_shards() {
        let shards = seal(&ring(), "S", &session(5000)).unwrap();
        let h = as_cookie_header("S", &shards[..1]);
        assert!(matches!(
            read(&ring(), "S", &headers(&h)),
            CookieRead::Invalid(_)
        ));
        let mut t = shards.clone();
        let flip = if &t[0][10..11] == "A" { "B" } else { "A" };
        t[0].replace_range(10..11, flip);
        assert!(matches!(
            read(&ring(), "S", &headers(&as_cookie_header("S", &t))),
            CookieRead::Invalid(_)
        ));
        // Sealed for another cookie name: the name is the AAD.
        assert!(matches!(
            read(&ring(), "T", &headers(&as_cookie_header("T", &shards))),
            CookieRead::Invalid(_)
        ));
        let five = format!("{}; S-4=x", as_cookie_header("S", &shards));
        assert!(matches!(
            read(&ring(), "S", &headers(&five)),
            CookieRead::Invalid("more than 4 shards")
        ));
        assert!(matches!(
            read(&ring(), "S", &headers("S-1=abc")),
            CookieRead::Invalid(_)
        ));
        assert!(matches!(
            read(&ring(), "S", &headers("S-0=%2Fabc")),
            CookieRead::Invalid(_)
        ));
        assert!(matches!(
            read(&ring(), "S", &headers("T-0=abc")),
            CookieRead::Absent
        ));
    }

    #[test]
    fn set_cookie_expires_stale_shards() {
        let v = set_cookie_values("S", &["a".into()], 3, false);
        assert_eq!(v.len(), 3);
        assert!(
            v[0].starts_with("S-0=a; Expires=") && v[0].contains("Secure; HttpOnly; SameSite=Lax")
        );
        assert!(v[1].starts_with("S-1=; Expires=Thu, 01 Jan 1970"));
        assert!(v[2].starts_with("S-2=;"));
    }

    #[test]
    fn httpdate_known_values() {
        assert_eq!(httpdate(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(httpdate(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(httpdate(1_709_251_199), "Thu, 29 Feb 2024 23:59:59 GMT");
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_cookie_headers_never_panic(s in "[ -~]{0,600}") {
            if let Ok(v) = HeaderValue::from_str(&s) {
                let mut h = HeaderMap::new();
                h.insert(http::header::COOKIE, v);
                let _ = read(&ring(), "S", &h);
            }
        }

        #[test]
        fn seal_read_round_trips(sub in "[a-z0-9-]{1,40}", pad in 0usize..11000) {
            let mut s = session(pad);
            s.sub = sub;
            let shards = seal(&ring(), "S", &s).unwrap();
            match read(&ring(), "S", &headers(&as_cookie_header("S", &shards))) {
                CookieRead::Valid { session, .. } => proptest::prop_assert_eq!(*session, s),
                other => proptest::prop_assert!(false, "{:?}", other),
            }
        }
    }
}
