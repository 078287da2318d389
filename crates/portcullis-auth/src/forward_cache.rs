//! Ready identity headers per session, found by the session cookie exactly as the browser sends
//! it, so a signed-in request costs no base64 decode, no decryption, no JSON parse and no signature.
//!
//! An entry is found by the last bytes of the cookie (public, and unique per session: they are
//! the base64 of the seal's random AEAD tag) and is accepted only if a MAC over the whole cookie,
//! its name and every shard value, matches the MAC stored when that cookie was first opened. The
//! MAC is GMAC (AES-256-GCM over an empty message, RFC 5288 / NIST SP 800-38D) under a key drawn
//! at start and never stored, with a nonce that is unique per entry (a counter); the tag
//! comparison is aws-lc's constant-time one. A cookie that differs from the opened one in any
//! byte, in its name, or in how its value is cut into shards therefore hits with probability
//! about `len / 2^128`: the lookup is as strong as the decryption it skips.

use crate::authenticate::ClaimHeaders;
use crate::authenticate::Grants;
use crate::session_cookie::{MAX_SHARDS, SHARD_LEN, Shards};
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Most entries; when full, expired ones go, and if none has expired, all.
pub const CACHE_MAX: usize = 100_000;
/// How many trailing bytes of the framed cookie find its entry.
const INDEX_LEN: usize = 24;
/// The longest cookie name framed; a longer one is never cached.
const NAME_MAX: usize = 256;
/// The largest framed cookie: the name and four full shards, each with a two-byte length.
const FRAME_MAX: usize = 2 + NAME_MAX + MAX_SHARDS * (2 + SHARD_LEN);

type Index = [u8; INDEX_LEN];

/// What a signed-in request needs from its session: the headers for the target and what
/// authorization looks at.
#[derive(Clone)]
pub(crate) struct Hit {
    /// The identity headers, shared.
    pub headers: ClaimHeaders,
    /// Scopes, groups and claims.
    pub grants: Arc<Grants>,
}

struct Entry {
    nonce: [u8; NONCE_LEN],
    tag: [u8; 16],
    hit: Hit,
    /// The action setting these headers were made for (binding and identity-header choice).
    cache_key: Arc<str>,
    /// Until when (epoch seconds) the headers may be reused.
    valid_until: u64,
}

/// The cache: a bounded map from a cookie's last bytes to its entry, and the GMAC key.
pub(crate) struct ForwardCache {
    mac: LessSafeKey,
    next_nonce: AtomicU64,
    map: Mutex<HashMap<Index, Entry>>,
}

thread_local! {
    /// Each thread's buffer for framing a cookie (at most `FRAME_MAX` bytes, kept between calls).
    static FRAME: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Runs `f` on the cookie framed for the MAC: the name and each shard value, each preceded by
/// its length (two bytes, big-endian), so no two different cookies frame alike. `None` for a
/// name over 256 bytes (never cached). The frame is built in a per-thread buffer, taken out for
/// the call and put back: no allocation once the thread has framed one large cookie.
pub(crate) fn with_frame<R>(
    name: &str,
    shards: &Shards<'_>,
    f: impl FnOnce(Option<&[u8]>) -> R,
) -> R {
    if name.len() > NAME_MAX {
        return f(None);
    }
    let mut buf = FRAME.try_with(Cell::take).unwrap_or_default();
    buf.clear();
    for part in std::iter::once(name.as_bytes()).chain(shards.values().iter().copied()) {
        // Shard values are at most 4000 bytes and names at most 256, so a u16 holds each.
        buf.extend_from_slice(&(part.len() as u16).to_be_bytes());
        buf.extend_from_slice(part);
    }
    let r = f(Some(&buf));
    if buf.capacity() <= FRAME_MAX {
        let _ = FRAME.try_with(|c| c.set(buf));
    }
    r
}

fn index_of(frame: &[u8]) -> Index {
    let mut index = [0u8; INDEX_LEN];
    let tail = &frame[frame.len().saturating_sub(INDEX_LEN)..];
    index[INDEX_LEN - tail.len()..].copy_from_slice(tail);
    index
}

impl ForwardCache {
    /// An empty cache whose MAC key is `key` (random, drawn at start, never stored).
    pub(crate) fn new(key: &[u8; 32]) -> ForwardCache {
        ForwardCache {
            mac: LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("32-byte key")),
            next_nonce: AtomicU64::new(0),
            map: Mutex::new(HashMap::new()),
        }
    }

    /// The entry for exactly this framed cookie, made for this action setting and still valid.
    pub(crate) fn get(&self, frame: &[u8], cache_key: &str, now: u64) -> Option<Hit> {
        let (nonce, tag, hit) = {
            let map = self.map.lock().ok()?;
            let e = map.get(&index_of(frame))?;
            if now >= e.valid_until || &*e.cache_key != cache_key {
                return None;
            }
            (e.nonce, e.tag, e.hit.clone())
        };
        // GMAC verification: the tag over `frame` under the entry's nonce, compared in constant
        // time by aws-lc. Outside the lock: it reads the whole cookie.
        self.mac
            .open_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(frame),
                &tag,
                &mut [],
            )
            .ok()?;
        Some(hit)
    }

    /// Remembers `hit` for the framed cookie (which has just been opened and checked).
    pub(crate) fn insert(
        &self,
        frame: &[u8],
        cache_key: Arc<str>,
        hit: Hit,
        valid_until: u64,
        now: u64,
    ) {
        // A nonce is never used twice under this key: the counter only grows.
        let n = self.next_nonce.fetch_add(1, Ordering::Relaxed);
        let mut nonce = [0u8; NONCE_LEN];
        nonce[NONCE_LEN - 8..].copy_from_slice(&n.to_be_bytes());
        let Ok(tag) = self.mac.seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(frame),
            &mut [],
        ) else {
            return;
        };
        let mut t = [0u8; 16];
        t.copy_from_slice(tag.as_ref());
        let entry = Entry {
            nonce,
            tag: t,
            hit,
            cache_key,
            valid_until,
        };
        if let Ok(mut map) = self.map.lock() {
            if map.len() >= CACHE_MAX {
                map.retain(|_, c| c.valid_until > now);
                if map.len() >= CACHE_MAX {
                    map.clear();
                }
            }
            map.insert(index_of(frame), entry);
        }
    }

    /// How many entries are held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.lock().map_or(0, |m| m.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session_cookie::{Collected, collect};
    use http::{HeaderMap, HeaderValue};

    fn grants() -> Arc<Grants> {
        Arc::new(Grants {
            claims: Default::default(),
            scopes: Vec::new(),
            groups: Vec::new(),
            sub: "u".into(),
            sid: None,
            began: 0,
        })
    }

    fn frame_of(name: &str, cookie: &str) -> Vec<u8> {
        let mut h = HeaderMap::new();
        h.insert(http::header::COOKIE, HeaderValue::from_str(cookie).unwrap());
        let Collected::Found(shards) = collect(name, &h) else {
            panic!("no shards in {cookie}")
        };
        with_frame(name, &shards, |f| f.unwrap().to_vec())
    }

    #[test]
    fn only_the_exact_cookie_hits() {
        let cache = ForwardCache::new(&[3; 32]);
        let key: Arc<str> = Arc::from("iss|client|Alb|");
        let a = "x".repeat(4000);
        let b = "y".repeat(1234);
        let cookie = format!("S-0={a}; S-1={b}");
        let frame = frame_of("S", &cookie);
        let hit = Hit {
            headers: ClaimHeaders::default(),
            grants: grants(),
        };
        cache.insert(&frame, key.clone(), hit, 100, 0);
        assert!(cache.get(&frame, &key, 99).is_some());
        // Other cookies and the order of the shards in the header do not matter.
        assert!(
            cache
                .get(&frame_of("S", &format!("S-1={b}; z=1; S-0={a}")), &key, 99)
                .is_some()
        );
        assert!(cache.get(&frame, &key, 100).is_none(), "expired");
        assert!(cache.get(&frame, "iss|client|Jwt|", 99).is_none());
        // Another name (the AEAD's associated data) with the same values.
        assert!(
            cache
                .get(&frame_of("T", &format!("T-0={a}; T-1={b}")), &key, 99)
                .is_none()
        );
        // The same bytes cut at another place.
        let recut = format!("S-0={}; S-1=x{b}", &a[..3999]);
        assert!(cache.get(&frame_of("S", &recut), &key, 99).is_none());
        // One byte changed anywhere, the tail (the index) included.
        for at in (0..frame.len()).step_by(97).chain([frame.len() - 1]) {
            let mut t = frame.clone();
            t[at] ^= 1;
            assert!(cache.get(&t, &key, 99).is_none(), "byte {at}");
        }
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn stays_bounded() {
        let cache = ForwardCache::new(&[3; 32]);
        let key: Arc<str> = Arc::from("k");
        for i in 0..CACHE_MAX + 10 {
            let hit = Hit {
                headers: ClaimHeaders::default(),
                grants: grants(),
            };
            cache.insert(format!("{i:030}").as_bytes(), key.clone(), hit, 10, 0);
            assert!(cache.len() <= CACHE_MAX);
        }
        assert!(cache.len() <= CACHE_MAX);
    }
}
