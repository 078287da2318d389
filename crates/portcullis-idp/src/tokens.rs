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
use serde_json::{Map, Value, json};

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
        let mut out = self.header_b64.clone();
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

/// A pool's keys: every key verifies and is published; the newest signs.
pub struct PoolKeys {
    id: Vec<SigningKey>,
    access: Vec<SigningKey>,
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

impl PoolKeys {
    /// Loads the pool's keys, generating an ID key and an access key on first start.
    pub async fn load_or_generate(
        store: &dyn Store,
        pool_id: &str,
    ) -> Result<PoolKeys, StoreError> {
        let mut out = PoolKeys {
            id: Vec::new(),
            access: Vec::new(),
        };
        for purpose in ["id", "access"] {
            let mut rows = store.signing_keys(pool_id, purpose).await?;
            if rows.is_empty() {
                let (kid, pkcs8) = tokio::task::spawn_blocking(generate)
                    .await
                    .map_err(|_| StoreError::Join)?;
                // Nodes starting together race here; generation 0 goes to one of them.
                store
                    .insert_signing_key(pool_id, purpose, 0, kid, pkcs8)
                    .await?;
                rows = store.signing_keys(pool_id, purpose).await?;
            }
            let keys = rows
                .into_iter()
                .filter_map(|(kid, der)| SigningKey::from_pkcs8(kid, &der))
                .collect();
            if purpose == "id" {
                out.id = keys
            } else {
                out.access = keys
            }
        }
        Ok(out)
    }

    /// The JWKS document (ID keys and access keys).
    pub fn jwks(&self) -> Value {
        json!({ "keys": self.id.iter().chain(&self.access).map(SigningKey::jwk).collect::<Vec<_>>() })
    }

    /// Signs an ID token.
    pub fn sign_id(&self, claims: &Map<String, Value>) -> Option<String> {
        self.id.last()?.sign(claims)
    }

    /// Signs an access token.
    pub fn sign_access(&self, claims: &Map<String, Value>) -> Option<String> {
        self.access.last()?.sign(claims)
    }

    /// Verifies an access token of this pool (signature, `iss`, `exp`, `token_use`).
    pub fn verify_access(&self, token: &str, issuer: &str) -> Option<Map<String, Value>> {
        let kid = jsonwebtoken::decode_header(token).ok()?.kid?;
        let key = self.access.iter().find(|k| k.kid == kid)?;
        let mut v = Validation::new(Algorithm::RS256);
        v.set_issuer(&[issuer]);
        v.validate_aud = false;
        v.leeway = 0;
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding, &v)
            .ok()?
            .claims;
        (claims.get("token_use").and_then(Value::as_str) == Some("access")).then_some(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_persist_and_tokens_verify() {
        let store = SqliteStore::in_memory().unwrap();
        let a = PoolKeys::load_or_generate(&store, "p").await.unwrap();
        let b = PoolKeys::load_or_generate(&store, "p").await.unwrap();
        assert_eq!(a.jwks(), b.jwks());
        let jwks = a.jwks();
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
        assert_ne!(
            jwks["keys"][0]["kid"], jwks["keys"][1]["kid"],
            "ID and access keys differ"
        );
        let mut c = Map::new();
        c.insert("iss".into(), "https://i".into());
        c.insert("exp".into(), (crate::now() + 60).into());
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
}
