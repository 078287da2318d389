//! A provider's JSON Web Key Set, fetched over HTTP(S) and cached: refreshed after [`JWKS_TTL`],
//! and at once (at most every [`FORCED_REFRESH_GAP`]) when a token names a key the cached set
//! lacks, so key rotation at the provider needs no restart and forged kids cannot flood it.
//! One fetch at a time per set (callers waiting for it share its outcome), and none for
//! [`FORCED_REFRESH_GAP`] after a failed one, so unauthenticated requests (back-channel logout
//! tokens, bearer tokens) cannot make the balancer hammer a provider whose keys are unavailable.
//! Keys are parsed once into [`DecodingKey`]s ([`JwksCache::decoding_key`]) and kept with the set.
//! (Feature `fetch`; the balancer's relying party and a backend's [`crate::Verifier`] share it.)

use crate::client::HttpClient;
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full, Limited};
use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a fetched set is used before it is fetched again.
pub const JWKS_TTL: Duration = Duration::from_secs(600);
/// The least time between two fetches caused by unknown kids.
pub const FORCED_REFRESH_GAP: Duration = Duration::from_secs(10);
/// Largest JWKS document accepted (ALB's limit).
pub const MAX_JWKS_BODY: usize = 150 * 1024;
/// Longest time a JWKS fetch may take.
pub const JWKS_TIMEOUT: Duration = Duration::from_secs(10);

/// Why no key was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// The endpoint failed, timed out, or sent something that is not a usable key set.
    #[error("the key set is unavailable")]
    Unavailable,
    /// The set has no key with that kid.
    #[error("no key with this kid")]
    UnknownKey,
    /// The key with that kid cannot verify signatures (an unsupported key type or bad encoding).
    #[error("the key is not usable")]
    UnusableKey,
}

#[derive(Default)]
struct Cached {
    set: Option<(Arc<JwkSet>, Instant)>,
    /// Keys of `set` parsed so far, by kid (emptied when the set is replaced).
    parsed: HashMap<String, Arc<DecodingKey>>,
    last_forced: Option<Instant>,
    /// When the last fetch failed.
    last_failed: Option<Instant>,
}

/// The cached key set of one JWKS URL.
pub struct JwksCache {
    uri: String,
    http: HttpClient,
    max_keys: usize,
    state: Mutex<Cached>,
    /// Held while fetching: one fetch at a time.
    fetching: tokio::sync::Mutex<()>,
}

impl JwksCache {
    /// A cache for `uri`; sets with more than `max_keys` keys are refused.
    pub fn new(uri: String, http: HttpClient, max_keys: usize) -> JwksCache {
        JwksCache {
            uri,
            http,
            max_keys,
            state: Mutex::new(Cached::default()),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// The parsed key `kid`, for `jsonwebtoken::decode`: as [`JwksCache::find`], parsed once
    /// per fetched set.
    pub async fn decoding_key(&self, kid: &str) -> Result<Arc<DecodingKey>, JwksError> {
        {
            let g = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if g.set
                .as_ref()
                .is_some_and(|(_, at)| at.elapsed() < JWKS_TTL)
                && let Some(k) = g.parsed.get(kid)
            {
                return Ok(k.clone());
            }
        }
        let jwk = self.find(kid).await?;
        let key = Arc::new(DecodingKey::from_jwk(&jwk).map_err(|_| JwksError::UnusableKey)?);
        let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        // Only kids of the current set are kept, so the map stays as small as the set.
        if g.set
            .as_ref()
            .is_some_and(|(s, _)| s.find(kid) == Some(&jwk))
        {
            g.parsed.insert(kid.to_string(), key.clone());
        }
        Ok(key)
    }

    /// The key `kid`, fetching the set when it is stale or lacks the kid.
    pub async fn find(&self, kid: &str) -> Result<Jwk, JwksError> {
        let asked = Instant::now();
        let (cached, may_force) = {
            let g = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let fresh = g
                .set
                .as_ref()
                .filter(|(_, at)| at.elapsed() < JWKS_TTL)
                .map(|(s, _)| s.clone());
            let may_force = g
                .last_forced
                .is_none_or(|t| t.elapsed() >= FORCED_REFRESH_GAP);
            (fresh, may_force)
        };
        if let Some(set) = &cached
            && let Some(k) = set.find(kid)
        {
            return Ok(k.clone());
        }
        if cached.is_some() && !may_force {
            return Err(JwksError::UnknownKey);
        }
        let _fetching = self.fetching.lock().await;
        {
            // A fetch that ended while this call waited answers it too.
            let g = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((set, at)) = &g.set
                && *at >= asked
            {
                return set.find(kid).cloned().ok_or(JwksError::UnknownKey);
            }
            if g.last_failed.is_some_and(|t| t >= asked) {
                return Err(JwksError::Unavailable);
            }
            if g.last_failed
                .is_some_and(|t| t.elapsed() < FORCED_REFRESH_GAP)
            {
                return Err(match cached {
                    Some(_) => JwksError::UnknownKey,
                    None => JwksError::Unavailable,
                });
            }
        }
        let fetched = self.fetch().await;
        let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let set = match fetched {
            Ok(set) => set,
            Err(e) => {
                g.last_failed = Some(Instant::now());
                return Err(e);
            }
        };
        if cached.is_some() {
            g.last_forced = Some(Instant::now());
        }
        g.last_failed = None;
        g.set = Some((set.clone(), Instant::now()));
        g.parsed.clear();
        set.find(kid).cloned().ok_or(JwksError::UnknownKey)
    }

    async fn fetch(&self) -> Result<Arc<JwkSet>, JwksError> {
        let req = Request::builder()
            .uri(&self.uri)
            .header(http::header::ACCEPT, "application/json")
            .body(Full::new(Bytes::new()))
            .map_err(|_| JwksError::Unavailable)?;
        let fut = async {
            let resp = self
                .http
                .request(req)
                .await
                .map_err(|_| JwksError::Unavailable)?;
            if !resp.status().is_success() {
                return Err(JwksError::Unavailable);
            }
            Limited::new(resp.into_body(), MAX_JWKS_BODY)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .map_err(|_| JwksError::Unavailable)
        };
        let body = tokio::time::timeout(JWKS_TIMEOUT, fut)
            .await
            .map_err(|_| JwksError::Unavailable)??;
        let set: JwkSet = serde_json::from_slice(&body).map_err(|_| JwksError::Unavailable)?;
        if set.keys.len() > self.max_keys {
            tracing::warn!(uri = %self.uri, keys = set.keys.len(), max = self.max_keys, "JWKS has too many keys; refused");
            return Err(JwksError::Unavailable);
        }
        Ok(Arc::new(set))
    }
}
