//! RS256 signing keys of a pool (separate ID and access keys, as Cognito), the JWKS, and minting
//! and checking tokens with Cognito's claim names.

#[cfg(test)]
use crate::store::SqliteStore;
use crate::store::{Store, StoreError};
use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use aws_lc_rs::signature::RSA_PKCS1_SHA256;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use portcullis_core::Clock;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// One RSA key with everything needed to sign, verify and publish it.
pub struct SigningKey {
    /// Cognito-style `kid`: base64 of the SHA-256 of the public key.
    pub kid: String,
    /// Parsed once: jsonwebtoken's aws-lc backend re-parses the DER on every signature, which
    /// made signing 3× slower than the RSA operation itself.
    key_pair: KeyPair,
    header_b64: String,
    decoding: DecodingKey,
    n: Vec<u8>,
    e: Vec<u8>,
}

impl SigningKey {
    fn from_pkcs8(kid: String, pkcs8: &[u8]) -> Option<SigningKey> {
        let kp = KeyPair::from_pkcs8(pkcs8).ok()?;
        let n = kp
            .public_key()
            .modulus()
            .big_endian_without_leading_zero()
            .to_vec();
        let e = kp
            .public_key()
            .exponent()
            .big_endian_without_leading_zero()
            .to_vec();
        let decoding = DecodingKey::from_rsa_raw_components(&n, &e);
        // Cognito's header: kid, then alg.
        let header_b64 = URL_SAFE_NO_PAD.encode(json!({ "kid": kid, "alg": "RS256" }).to_string());
        Some(SigningKey {
            kid,
            key_pair: kp,
            header_b64,
            decoding,
            n,
            e,
        })
    }

    fn jwk(&self) -> Value {
        json!({
            "alg": "RS256", "e": URL_SAFE_NO_PAD.encode(&self.e), "kid": self.kid,
            "kty": "RSA", "n": URL_SAFE_NO_PAD.encode(&self.n), "use": "sig",
        })
    }

    fn sign(&self, claims: &Map<String, Value>) -> Option<String> {
        self.sign_with(&self.header_b64, claims)
    }

    fn sign_with(&self, header_b64: &str, claims: &Map<String, Value>) -> Option<String> {
        let mut out = header_b64.to_string();
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).ok()?));
        let mut sig = vec![0u8; self.key_pair.public_modulus_len()];
        self.key_pair
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                out.as_bytes(),
                &mut sig,
            )
            .ok()?;
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(sig));
        Some(out)
    }
}

/// How long a key stays published and verifying after its successor starts signing: longer than
/// any token it signed can live (1 day at most), plus clock skew.
pub const RETIRE_AFTER: i64 = 86400 + 300;

/// The keys of one purpose, with when each starts signing.
struct KeySet {
    /// Oldest generation first.
    keys: Vec<(SigningKey, i64)>,
}

impl KeySet {
    /// The index of the key that signs at `now`: the newest active one (the oldest when none is
    /// active yet).
    fn signer(&self, now: i64) -> Option<usize> {
        if self.keys.is_empty() {
            return None;
        }
        Some(
            self.keys
                .iter()
                .rposition(|(_, at)| *at <= now)
                .unwrap_or(0),
        )
    }

    /// Whether key `i` is published (and verifies) at `now`: the signer, keys waiting to sign, and
    /// older keys until [`RETIRE_AFTER`] after their successor started signing.
    fn published(&self, i: usize, now: i64) -> bool {
        let Some(signer) = self.signer(now) else {
            return false;
        };
        i >= signer
            || self
                .keys
                .get(i + 1)
                .is_some_and(|(_, next_at)| now < next_at.saturating_add(RETIRE_AFTER))
    }

    fn live(&self, now: i64) -> impl Iterator<Item = &SigningKey> {
        self.keys
            .iter()
            .enumerate()
            .filter(move |(i, _)| self.published(*i, now))
            .map(|(_, (k, _))| k)
    }
}

/// A pool's keys: separate ID and access key sets; in each, the newest active key signs and every
/// key a live token may carry is published.
pub struct PoolKeys {
    id: KeySet,
    access: KeySet,
    /// `(kid, activates_at)` of every key, to notice changes cheaply.
    fingerprint: Vec<(String, i64)>,
    /// The pool's clock: which key signs, which are published and whether a token expired.
    clock: Arc<Clock>,
}

fn generate() -> (String, Vec<u8>) {
    let kp = KeyPair::generate(KeySize::Rsa2048).expect("RSA key generation");
    let pkcs8 = kp.as_der().expect("PKCS#8").as_ref().to_vec();
    let spki = kp.public_key().as_der().expect("SPKI");
    (
        STANDARD.encode(digest(&SHA256, spki.as_ref()).as_ref()),
        pkcs8,
    )
}

const PURPOSES: [&str; 2] = ["id", "access"];

/// The `(kid, activates_at)` list of a pool's keys, as the store has them.
pub async fn key_fingerprint(
    store: &dyn Store,
    pool_id: &str,
) -> Result<Vec<(String, i64)>, StoreError> {
    let mut out = Vec::new();
    for purpose in PURPOSES {
        for r in store.signing_keys(pool_id, purpose).await? {
            out.push((r.kid, r.activates_at));
        }
    }
    Ok(out)
}

impl PoolKeys {
    /// Loads the pool's keys, generating an ID key and an access key on first start.
    pub async fn load_or_generate(
        store: &dyn Store,
        pool_id: &str,
        clock: Arc<Clock>,
    ) -> Result<PoolKeys, StoreError> {
        for purpose in PURPOSES {
            if store.signing_keys(pool_id, purpose).await?.is_empty() {
                let (kid, pkcs8) = tokio::task::spawn_blocking(generate)
                    .await
                    .map_err(|_| StoreError::Join)?;
                // Nodes starting together race here; generation 0 goes to one of them.
                store
                    .insert_signing_key(pool_id, purpose, 0, kid, pkcs8, 0)
                    .await?;
            }
        }
        Self::load(store, pool_id, clock).await
    }

    /// Loads the pool's keys as stored, on the pool's `clock`.
    pub async fn load(
        store: &dyn Store,
        pool_id: &str,
        clock: Arc<Clock>,
    ) -> Result<PoolKeys, StoreError> {
        let mut sets = Vec::new();
        let mut fingerprint = Vec::new();
        for purpose in PURPOSES {
            let rows = store.signing_keys(pool_id, purpose).await?;
            let keys = tokio::task::spawn_blocking(move || {
                rows.into_iter()
                    .filter_map(|r| {
                        let at = r.activates_at;
                        SigningKey::from_pkcs8(r.kid, &r.pkcs8).map(|k| (k, at))
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .map_err(|_| StoreError::Join)?;
            fingerprint.extend(keys.iter().map(|(k, at)| (k.kid.clone(), *at)));
            sets.push(KeySet { keys });
        }
        let access = sets.pop().unwrap_or(KeySet { keys: Vec::new() });
        let id = sets.pop().unwrap_or(KeySet { keys: Vec::new() });
        Ok(PoolKeys {
            id,
            access,
            fingerprint,
            clock,
        })
    }

    /// Adds a new ID key and a new access key that start signing `activate_in` seconds after `now`
    /// (published at once, so verifiers that cache the JWKS learn them first). Returns their kids.
    pub async fn rotate(
        store: &dyn Store,
        pool_id: &str,
        activate_in: i64,
        now: i64,
    ) -> Result<Vec<String>, StoreError> {
        let mut kids = Vec::new();
        for purpose in PURPOSES {
            let next = store
                .signing_keys(pool_id, purpose)
                .await?
                .last()
                .map_or(0, |r| r.generation + 1);
            let (kid, pkcs8) = tokio::task::spawn_blocking(generate)
                .await
                .map_err(|_| StoreError::Join)?;
            let at = now + activate_in.max(0);
            if store
                .insert_signing_key(pool_id, purpose, next, kid.clone(), pkcs8, at)
                .await?
            {
                kids.push(kid);
            }
        }
        Ok(kids)
    }

    /// `(kid, activates_at)` of every loaded key.
    pub fn fingerprint(&self) -> &[(String, i64)] {
        &self.fingerprint
    }

    /// The JWKS document (published ID keys and access keys).
    pub fn jwks(&self) -> Value {
        let now = self.clock.now();
        json!({ "keys": self.id.live(now).chain(self.access.live(now)).map(SigningKey::jwk).collect::<Vec<_>>() })
    }

    /// Signs an ID token with the current ID key.
    pub fn sign_id(&self, claims: &Map<String, Value>) -> Option<String> {
        let i = self.id.signer(self.clock.now())?;
        self.id.keys[i].0.sign(claims)
    }

    /// Signs an OIDC Back-Channel Logout token with the current ID key, typed `logout+jwt`.
    pub fn sign_logout(&self, claims: &Map<String, Value>) -> Option<String> {
        let i = self.id.signer(self.clock.now())?;
        let key = &self.id.keys[i].0;
        let header = json!({ "kid": key.kid, "alg": "RS256", "typ": "logout+jwt" });
        key.sign_with(&URL_SAFE_NO_PAD.encode(header.to_string()), claims)
    }

    /// Signs an access token with the current access key.
    pub fn sign_access(&self, claims: &Map<String, Value>) -> Option<String> {
        let i = self.access.signer(self.clock.now())?;
        self.access.keys[i].0.sign(claims)
    }

    /// Verifies an access token of this pool (signature by a published key, `iss`, `exp` on the
    /// pool's clock, `token_use`).
    pub fn verify_access(&self, token: &str, issuer: &str) -> Option<Map<String, Value>> {
        let now = self.clock.now();
        let kid = jsonwebtoken::decode_header(token).ok()?.kid?;
        let key = self.access.live(now).find(|k| k.kid == kid)?;
        let mut v = Validation::new(Algorithm::RS256);
        v.set_issuer(&[issuer]);
        v.validate_aud = false;
        // `exp` is required (and must be a number) but compared here, with the pool's clock.
        v.validate_exp = false;
        v.leeway = 0;
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding, &v)
            .ok()?
            .claims;
        let live = claims
            .get("exp")
            .and_then(Value::as_i64)
            .is_some_and(|exp| exp >= now);
        (live && claims.get("token_use").and_then(Value::as_str) == Some("access"))
            .then_some(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_persist_and_tokens_verify() {
        let store = SqliteStore::in_memory().unwrap();
        let a = PoolKeys::load_or_generate(&store, "p", Arc::default())
            .await
            .unwrap();
        let b = PoolKeys::load_or_generate(&store, "p", Arc::default())
            .await
            .unwrap();
        assert_eq!(a.jwks(), b.jwks());
        let jwks = a.jwks();
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
        assert_ne!(
            jwks["keys"][0]["kid"], jwks["keys"][1]["kid"],
            "ID and access keys differ"
        );
        let mut c = Map::new();
        c.insert("iss".into(), "https://i".into());
        c.insert("exp".into(), (portcullis_core::now() + 60).into());
        c.insert("token_use".into(), "access".into());
        let t = a.sign_access(&c).unwrap();
        assert!(b.verify_access(&t, "https://i").is_some());
        assert!(b.verify_access(&t, "https://other").is_none());
        let id = a.sign_id(&c).unwrap();
        assert!(
            b.verify_access(&id, "https://i").is_none(),
            "an ID token is not an access token"
        );
    }

    #[tokio::test]
    async fn rotation_publishes_first_and_retires_after_the_longest_token() {
        let store = SqliteStore::in_memory().unwrap();
        let before = PoolKeys::load_or_generate(&store, "p", Arc::default())
            .await
            .unwrap();
        let mut c = Map::new();
        c.insert("iss".into(), "https://i".into());
        c.insert("exp".into(), (portcullis_core::now() + 3600).into());
        c.insert("token_use".into(), "access".into());
        let old_token = before.sign_access(&c).unwrap();

        // Activating in an hour: published now, not signing yet.
        let kids = PoolKeys::rotate(&store, "p", 3600, portcullis_core::now() as i64)
            .await
            .unwrap();
        assert_eq!(kids.len(), 2);
        let k = PoolKeys::load(&store, "p", Arc::default()).await.unwrap();
        assert_eq!(k.jwks()["keys"].as_array().unwrap().len(), 4);
        let t = k.sign_access(&c).unwrap();
        assert_eq!(
            jsonwebtoken::decode_header(&t).unwrap().kid,
            jsonwebtoken::decode_header(&old_token).unwrap().kid
        );

        // Activating now: the new key signs, the old one still verifies the tokens it signed.
        let now_kids = PoolKeys::rotate(&store, "p", 0, portcullis_core::now() as i64)
            .await
            .unwrap();
        let k = PoolKeys::load(&store, "p", Arc::default()).await.unwrap();
        let t = k.sign_access(&c).unwrap();
        let new_kid = jsonwebtoken::decode_header(&t).unwrap().kid.unwrap();
        assert!(now_kids.contains(&new_kid));
        assert_eq!(k.jwks()["keys"].as_array().unwrap().len(), 6);
        assert_ne!(
            Some(new_kid),
            jsonwebtoken::decode_header(&old_token).unwrap().kid
        );
        assert!(k.verify_access(&old_token, "https://i").is_some());
        assert!(k.verify_access(&t, "https://i").is_some());
    }

    #[tokio::test]
    async fn keys_and_expiry_follow_the_pool_clock() {
        let store = SqliteStore::in_memory().unwrap();
        let clock = Arc::new(Clock::default());
        clock.set_ms(Some(1_700_000_000_000));
        PoolKeys::load_or_generate(&store, "p", clock.clone())
            .await
            .unwrap();
        let kids = PoolKeys::rotate(&store, "p", 3600, clock.now())
            .await
            .unwrap();
        let k = PoolKeys::load(&store, "p", clock.clone()).await.unwrap();
        let mut c = Map::new();
        c.insert("iss".into(), "https://i".into());
        c.insert("exp".into(), (clock.now() + 7200).into());
        c.insert("token_use".into(), "access".into());
        let kid = |t: &str| jsonwebtoken::decode_header(t).unwrap().kid.unwrap();
        let before = k.sign_access(&c).unwrap();
        assert!(
            !kids.contains(&kid(&before)),
            "pending until the pool's hour has passed"
        );
        // The pool's clock reaches the activation: the new key signs, without a reload or a sleep.
        clock.advance_ms(3600 * 1000);
        let after = k.sign_access(&c).unwrap();
        assert!(kids.contains(&kid(&after)));
        assert!(k.verify_access(&after, "https://i").is_some());
        // And the token's `exp` is read on the same clock.
        clock.advance_ms(3601 * 1000);
        assert!(
            k.verify_access(&after, "https://i").is_none(),
            "expired by the pool's clock"
        );
    }

    #[test]
    fn key_selection_over_time() {
        let (_, pk) = generate();
        let key = || SigningKey::from_pkcs8("k".into(), &pk).unwrap();
        let set = KeySet {
            keys: vec![(key(), 0), (key(), 1000), (key(), 5000)],
        };
        assert_eq!(set.signer(10), Some(0));
        assert!(
            set.published(1, 10) && set.published(2, 10),
            "pending keys are published"
        );
        assert_eq!(set.signer(1000), Some(1));
        assert!(
            set.published(0, 1000 + RETIRE_AFTER - 1),
            "kept while its tokens may live"
        );
        assert!(
            !set.published(0, 1000 + RETIRE_AFTER),
            "retired after the longest lifetime"
        );
        assert_eq!(set.signer(6000), Some(2));
        assert!(set.published(1, 6000) && set.published(0, 6000));
    }
}
