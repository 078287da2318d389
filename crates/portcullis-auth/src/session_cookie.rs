//! The encrypted, sharded session cookie `<name>-0..3`: what a signed-in browser carries instead of
//! server-side state, as ALB does.

use crate::keys::KeyRing;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, HeaderValue};
use portcullis_core::httpdate;
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
    /// The provider's session id (the ID token's `sid`), by which a revocation names it; `None`
    /// when the provider gives none (and in cookies sealed before this field existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// When the session began: the first ID token's `iat` (the provider's clock), kept across
    /// refreshes; 0 in cookies sealed before this field existed (so a user-wide revocation
    /// refuses them: they began before it).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub began: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// What the request's cookies say.
#[derive(Debug)]
pub enum CookieRead {
    /// No shard of this name.
    Absent,
    /// Present but unusable: tampered, truncated, foreign, too many shards.
    Invalid(&'static str),
    /// Opened.
    Valid {
        /// The session.
        session: Box<Session>,
        /// How many shards the request carried.
        shards: usize,
    },
}

/// Iterates `name=value` pairs of every Cookie header.
pub fn cookie_pairs(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    // The pieces of an ASCII value are ASCII, so they are always UTF-8.
    cookie_pairs_bytes(headers)
        .filter_map(|(n, v)| Some((std::str::from_utf8(n).ok()?, std::str::from_utf8(v).ok()?)))
}

/// [`cookie_pairs`] as bytes, read in place: each Cookie header that is ASCII (what
/// `HeaderValue::to_str` accepts, since a header value holds no control character but tab)
/// split at `;`, each piece trimmed and split at its first `=`; pieces without `=` are skipped.
/// The separators are found with `memchr`, so a 16 KB session cookie is not walked byte by byte.
pub fn cookie_pairs_bytes(headers: &HeaderMap) -> impl Iterator<Item = (&[u8], &[u8])> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .map(HeaderValue::as_bytes)
        .filter(|v| v.is_ascii())
        .flat_map(cookie_pieces)
        .filter_map(|p| {
            let eq = memchr::memchr(b'=', p)?;
            Some((&p[..eq], &p[eq + 1..]))
        })
}

/// The `;`-separated pieces of one Cookie header value, each trimmed as `str::trim` trims
/// ASCII, empty ones included; the separators are found with `memchr`.
pub fn cookie_pieces(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    Pieces { rest: Some(value) }.map(trim)
}

/// The `;`-separated pieces of a header value.
struct Pieces<'a> {
    rest: Option<&'a [u8]>,
}

impl<'a> Iterator for Pieces<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest?;
        match memchr::memchr(b';', rest) {
            Some(i) => {
                self.rest = Some(&rest[i + 1..]);
                Some(&rest[..i])
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}

/// `str::trim` for ASCII: the ASCII characters Unicode calls white space.
fn trim(mut p: &[u8]) -> &[u8] {
    let space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r');
    while let [first, rest @ ..] = p
        && space(first)
    {
        p = rest;
    }
    while let [rest @ .., last] = p
        && space(last)
    {
        p = rest;
    }
    p
}

/// The shard index in a cookie name `<base>-<n>`, read as `str::parse::<usize>` reads `n`.
fn shard_index(name: &[u8], base: &str) -> Option<usize> {
    let n = name.strip_prefix(base.as_bytes())?.strip_prefix(b"-")?;
    std::str::from_utf8(n).ok()?.parse().ok()
}

/// Finds one cookie's value.
pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    cookie_pairs_bytes(headers)
        .find(|(n, _)| *n == name.as_bytes())
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
}

/// How many shards of `base` the request has (for expiring stale ones).
pub fn shard_count(headers: &HeaderMap, base: &str) -> usize {
    cookie_pairs_bytes(headers)
        .filter_map(|(n, _)| shard_index(n, base))
        .map(|i| i + 1)
        .max()
        .unwrap_or(0)
}

/// The session cookie decrypted but not yet parsed.
#[derive(Debug)]
pub enum Opened {
    /// No shard of this name.
    Absent,
    /// Present but unusable.
    Invalid(&'static str),
    /// Authentic plaintext.
    Sealed {
        /// The decrypted session JSON.
        plain: Vec<u8>,
        /// How many shards the request carried.
        shards: usize,
    },
}

/// The shard values of one session cookie as received, in order `-0..`, borrowed from the
/// request's `Cookie` headers: at most four, each at most 4000 bytes, none twice, no gap.
#[derive(Debug, Clone, Copy)]
pub struct Shards<'a> {
    values: [&'a [u8]; MAX_SHARDS],
    count: usize,
}

impl<'a> Shards<'a> {
    /// Shard values as sealed (what the browser will send back); `None` for more than four.
    pub fn of(values: &'a [String]) -> Option<Shards<'a>> {
        if values.is_empty() || values.len() > MAX_SHARDS {
            return None;
        }
        let mut v: [&[u8]; MAX_SHARDS] = [&[]; MAX_SHARDS];
        for (slot, s) in v.iter_mut().zip(values) {
            *slot = s.as_bytes();
        }
        Some(Shards {
            values: v,
            count: values.len(),
        })
    }

    /// The values, `-0` first.
    pub fn values(&self) -> &[&'a [u8]] {
        &self.values[..self.count]
    }

    /// How many shards there are (1 to 4).
    pub fn count(&self) -> usize {
        self.count
    }

    /// The sum of the values' lengths.
    pub fn total_len(&self) -> usize {
        self.values().iter().map(|v| v.len()).sum()
    }
}

/// What the request's cookies hold under one session cookie name, before any decoding.
#[derive(Debug)]
pub enum Collected<'a> {
    /// No shard of this name.
    Absent,
    /// Shards that can never open: too many, too long, repeated, or not contiguous from `-0`.
    Invalid(&'static str),
    /// The shards to open.
    Found(Shards<'a>),
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
        Opened::Sealed { plain, shards } => match parse(&plain) {
            Some(session) => CookieRead::Valid {
                session: Box::new(session),
                shards,
            },
            None => CookieRead::Invalid("unexpected contents"),
        },
    }
}

/// Collects and decrypts the shards of `base`, refusing more than four before decrypting.
pub fn open(ring: &KeyRing, base: &str, headers: &HeaderMap) -> Opened {
    match collect(base, headers) {
        Collected::Absent => Opened::Absent,
        Collected::Invalid(why) => Opened::Invalid(why),
        Collected::Found(shards) => open_shards(ring, base, &shards),
    }
}

/// Finds the shards of `base` in the request's cookies without copying them, refusing more than
/// four, one over 4000 bytes, a repeated one or a gap.
pub fn collect<'a>(base: &str, headers: &'a HeaderMap) -> Collected<'a> {
    let mut shards: [Option<&[u8]>; MAX_SHARDS] = [None; MAX_SHARDS];
    let mut any = false;
    for (name, value) in cookie_pairs_bytes(headers) {
        let Some(index) = shard_index(name, base) else {
            continue;
        };
        any = true;
        if index >= MAX_SHARDS {
            return Collected::Invalid("more than 4 shards");
        }
        if value.len() > SHARD_LEN {
            return Collected::Invalid("shard larger than 4000 bytes");
        }
        if shards[index].replace(value).is_some() {
            return Collected::Invalid("shard sent twice");
        }
    }
    if !any {
        return Collected::Absent;
    }
    let count = shards.iter().take_while(|s| s.is_some()).count();
    if shards[count..].iter().any(Option::is_some) || count == 0 {
        return Collected::Invalid("shards are not contiguous from -0");
    }
    let mut values: [&[u8]; MAX_SHARDS] = [&[]; MAX_SHARDS];
    for (v, s) in values.iter_mut().zip(shards.into_iter().flatten()) {
        *v = s;
    }
    Collected::Found(Shards { values, count })
}

/// Base64-decodes and decrypts collected shards: one buffer for the joined text and one for the
/// sealed bytes, decrypted in place.
pub fn open_shards(ring: &KeyRing, base: &str, shards: &Shards<'_>) -> Opened {
    let mut joined = Vec::with_capacity(shards.total_len());
    for v in shards.values() {
        joined.extend_from_slice(v);
    }
    let Ok(sealed) = STANDARD.decode(&joined) else {
        return Opened::Invalid("not base64");
    };
    let Some(plain) = ring.open_owned(base.as_bytes(), sealed) else {
        return Opened::Invalid("does not decrypt");
    };
    Opened::Sealed {
        plain,
        shards: shards.count,
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
    httpdate(portcullis_core::now() + seconds)
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
            sid: Some("sid-1".into()),
            began: 5,
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
        fn cookie_pairs_read_as_str_split_did(
            values in proptest::collection::vec("[\t -~\u{80}-\u{ff}]{0,80}", 0..3)
        ) {
            // The reference: the parse before it moved to bytes.
            let reference = |h: &HeaderMap| -> Vec<(String, String)> {
                h.get_all(http::header::COOKIE)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .flat_map(|v| v.split(';'))
                    .filter_map(|p| p.trim().split_once('='))
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect()
            };
            let mut h = HeaderMap::new();
            for v in &values {
                let bytes: Vec<u8> = v.chars().map(|c| c as u32 as u8).collect();
                if let Ok(v) = HeaderValue::from_bytes(&bytes) {
                    h.append(http::header::COOKIE, v);
                }
            }
            let got: Vec<(String, String)> = cookie_pairs(&h)
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect();
            proptest::prop_assert_eq!(got, reference(&h));
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
