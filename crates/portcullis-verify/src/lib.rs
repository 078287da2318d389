//! Verification of `x-amzn-oidc-data` for backends, for headers from Portcullis and from a real
//! AWS Application Load Balancer.
//!
//! ALB's header is not a standard JWT: every segment is base64url *with* `=` padding, the signature
//! is ES256 as raw `r‖s` over the padded first two segments, and `iss`, `client`, `signer` and
//! `exp` sit in the protected header. The public key is a PEM fetched per `kid`.
//!
//! With the `fetch` feature, [`Verifier`] fetches keys by `kid` (Portcullis's admin listener or
//! AWS's regional endpoint) and keeps them, verifies Cognito/Portcullis access tokens and the
//! standard identity JWT against their JWKS, and returns an [`Identity`] with scope and group
//! helpers. With `axum`, `Identity` is a handler argument (see `examples/axum_backend.rs`).
//!
//! The signing side of the same format is [`encode::alb_header`] (the load balancer uses it).
//!
//! Without them, verification is synchronous and the caller supplies the key:
//!
//! ```
//! use portcullis_verify::{AlbVerifier, PublicKey};
//! # fn fetch_pem(_kid: &str) -> String { unimplemented!() }
//! # fn run(header_value: &str, now: u64) -> Result<(), portcullis_verify::VerifyError> {
//! let verifier = AlbVerifier::new("arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/demo/0123456789abcdef")
//!     .expect_client("tasks-web");
//! let kid = portcullis_verify::peek_header(header_value)?.kid;
//! let key = PublicKey::from_pem(&fetch_pem(&kid))?;
//! let claims = verifier.verify(header_value, &key, now)?;
//! println!("signed in as {}", claims.claims["sub"]);
//! # Ok(()) }
//! ```

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, ParsedPublicKey};
use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use rustls_pki_types::SubjectPublicKeyInfoDer;
use rustls_pki_types::pem::PemObject;
use serde::Deserialize;
use serde_json::{Map, Value};

pub mod encode;

/// base64url that accepts segments with or without `=` padding, and writes them padded, as ALB
/// does.
const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Largest header value accepted (ALB caps claims + token at 11 KB; base64 grows it by 4/3).
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Why a header was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    /// Not three base64url segments of JSON, or too long.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// `alg` is not ES256.
    #[error("unsupported alg `{0}` (expected ES256)")]
    UnsupportedAlg(String),
    /// The public key could not be read.
    #[error("invalid public key: {0}")]
    InvalidKey(&'static str),
    /// The signature does not verify with the given key.
    #[error("bad signature")]
    BadSignature,
    /// `exp` is in the past.
    #[error("expired at {exp} (now {now})")]
    Expired {
        /// The token's `exp`.
        exp: u64,
        /// The time of the check.
        now: u64,
    },
    /// `signer` is not the expected load balancer.
    #[error("signer `{0}` is not the expected load balancer")]
    WrongSigner(String),
    /// `client` is not the expected client.
    #[error("client `{0}` is not the expected client")]
    WrongClient(String),
    /// `iss` is not the expected issuer.
    #[error("issuer `{0}` is not the expected issuer")]
    WrongIssuer(String),
    /// The request carries no identity header (or no access token when one is required).
    #[error("no identity header")]
    Missing,
    /// No key with this `kid`.
    #[error("unknown key `{0}`")]
    UnknownKey(String),
    /// A key or JWKS could not be fetched.
    #[error("the keys could not be fetched")]
    KeyUnavailable,
    /// A verification that was not configured was asked for.
    #[error("{0} are not configured")]
    NotConfigured(&'static str),
    /// The access token lacks a scope.
    #[error("the access token lacks scope `{0}`")]
    MissingScope(String),
}

/// The protected header of an ALB claims token.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct AlbHeader {
    /// `JWT`.
    #[serde(default)]
    pub typ: Option<String>,
    /// The key id: fetch the PEM at `<keys endpoint>/<kid>`.
    pub kid: String,
    /// `ES256`.
    pub alg: String,
    /// The identity provider's issuer.
    pub iss: String,
    /// The OAuth client id the load balancer used.
    pub client: String,
    /// The ARN of the load balancer that signed.
    pub signer: String,
    /// Expiry, epoch seconds.
    pub exp: u64,
}

/// A verified header: the protected header and the user claims.
#[derive(Debug, Clone)]
pub struct AlbClaims {
    /// Protected header.
    pub header: AlbHeader,
    /// User claims (the IdP's userinfo response plus `exp` and `iss`).
    pub claims: Map<String, Value>,
}

impl AlbClaims {
    /// The user's `sub`.
    pub fn sub(&self) -> Option<&str> {
        self.claims.get("sub").and_then(Value::as_str)
    }
}

/// An EC P-256 public key, parsed once and reusable.
pub struct PublicKey(ParsedPublicKey);

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PublicKey(P-256)")
    }
}

impl PublicKey {
    /// From a PEM `-----BEGIN PUBLIC KEY-----` (what ALB's and Portcullis's key endpoints serve).
    pub fn from_pem(pem: &str) -> Result<Self, VerifyError> {
        let der = SubjectPublicKeyInfoDer::from_pem_slice(pem.as_bytes())
            .map_err(|_| VerifyError::InvalidKey("not a PEM PUBLIC KEY"))?;
        Self::from_der(der.as_ref())
    }
    /// From SubjectPublicKeyInfo DER or an uncompressed SEC1 point.
    pub fn from_der(der: &[u8]) -> Result<Self, VerifyError> {
        ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, der)
            .map(PublicKey)
            .map_err(|_| VerifyError::InvalidKey("not an EC P-256 public key"))
    }
}

/// Reads the protected header without verifying anything, to learn the `kid`.
pub fn peek_header(token: &str) -> Result<AlbHeader, VerifyError> {
    let (h, _, _) = split(token)?;
    let bytes = B64
        .decode(h)
        .map_err(|_| VerifyError::Malformed("header is not base64url"))?;
    serde_json::from_slice(&bytes)
        .map_err(|_| VerifyError::Malformed("header is not the expected JSON"))
}

fn split(token: &str) -> Result<(&str, &str, &str), VerifyError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(VerifyError::Malformed("longer than 16 KiB"));
    }
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(s), None) => Ok((h, p, s)),
        _ => Err(VerifyError::Malformed(
            "expected three dot-separated segments",
        )),
    }
}

/// What a backend expects of the header: AWS says to pin `signer` at least.
#[derive(Debug, Clone)]
pub struct AlbVerifier {
    signer: String,
    client: Option<String>,
    issuer: Option<String>,
    leeway: u64,
}

impl AlbVerifier {
    /// Expects this load balancer ARN as `signer`.
    pub fn new(signer_arn: impl Into<String>) -> Self {
        AlbVerifier {
            signer: signer_arn.into(),
            client: None,
            issuer: None,
            leeway: 0,
        }
    }
    /// Also require this `client`.
    pub fn expect_client(mut self, client: impl Into<String>) -> Self {
        self.client = Some(client.into());
        self
    }
    /// Also require this `iss`.
    pub fn expect_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }
    /// Accept tokens up to this many seconds past `exp` (clock skew).
    pub fn leeway(mut self, seconds: u64) -> Self {
        self.leeway = seconds;
        self
    }

    /// Verifies signature, `signer`, `client`, `iss` and `exp` (`now` in epoch seconds).
    pub fn verify(&self, token: &str, key: &PublicKey, now: u64) -> Result<AlbClaims, VerifyError> {
        let (h, p, s) = split(token)?;
        let header = peek_header(token)?;
        if header.alg != "ES256" {
            return Err(VerifyError::UnsupportedAlg(header.alg));
        }
        let sig = B64
            .decode(s)
            .map_err(|_| VerifyError::Malformed("signature is not base64url"))?;
        if sig.len() != 64 {
            return Err(VerifyError::Malformed("signature is not 64 bytes (r||s)"));
        }
        // The signing input is the segments exactly as sent, padding included.
        let signed = &token.as_bytes()[..h.len() + 1 + p.len()];
        key.0
            .verify_sig(signed, &sig)
            .map_err(|_| VerifyError::BadSignature)?;
        if header.signer != self.signer {
            return Err(VerifyError::WrongSigner(header.signer));
        }
        if let Some(c) = &self.client
            && &header.client != c
        {
            return Err(VerifyError::WrongClient(header.client));
        }
        if let Some(i) = &self.issuer
            && &header.iss != i
        {
            return Err(VerifyError::WrongIssuer(header.iss));
        }
        if header.exp.saturating_add(self.leeway) < now {
            return Err(VerifyError::Expired {
                exp: header.exp,
                now,
            });
        }
        let payload = B64
            .decode(p)
            .map_err(|_| VerifyError::Malformed("payload is not base64url"))?;
        let claims: Map<String, Value> = serde_json::from_slice(&payload)
            .map_err(|_| VerifyError::Malformed("payload is not a JSON object"))?;
        Ok(AlbClaims { header, claims })
    }
}

#[cfg(feature = "fetch")]
pub mod client;
#[cfg(feature = "fetch")]
pub mod jwks;
#[cfg(feature = "fetch")]
mod remote;
#[cfg(feature = "axum")]
pub use remote::Rejection;
#[cfg(feature = "fetch")]
pub use remote::{Identity, KeySource, Verifier};

/// Seconds since the Unix epoch, the `now` that [`AlbVerifier::verify`] takes (re-exported from
/// `portcullis-core`, so that backends need not depend on it).
pub use portcullis_core::now;

/// The regional URL where AWS serves ALB public keys, for verifying a real ALB's header.
pub fn aws_public_key_url(region: &str, kid: &str) -> String {
    format!("https://public-keys.auth.elb.{region}.amazonaws.com/{kid}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};

    const SIGNER: &str =
        "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/t/0123456789abcdef";

    fn sign(key: &EcdsaKeyPair, header: &str, payload: &str) -> String {
        let input = format!("{}.{}", B64.encode(header), B64.encode(payload));
        let sig = key.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", B64.encode(sig.as_ref()))
    }

    fn keypair() -> (EcdsaKeyPair, PublicKey) {
        let kp = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let der = kp.public_key().as_der().unwrap();
        let pk = PublicKey::from_der(der.as_ref()).unwrap();
        (kp, pk)
    }

    fn header(exp: u64) -> String {
        format!(
            r#"{{"typ":"JWT","kid":"k1","alg":"ES256","iss":"https://idp","client":"c1","signer":"{SIGNER}","exp":{exp}}}"#
        )
    }

    #[test]
    fn verifies_padded_token_and_checks_fields() {
        let (kp, pk) = keypair();
        let t = sign(
            &kp,
            &header(1000),
            r#"{"sub":"u1","email":"a@b","exp":1000,"iss":"https://idp"}"#,
        );
        let v = AlbVerifier::new(SIGNER)
            .expect_client("c1")
            .expect_issuer("https://idp");
        let c = v.verify(&t, &pk, 999).unwrap();
        assert_eq!(c.sub(), Some("u1"));
        assert_eq!(c.header.kid, "k1");
        assert_eq!(
            v.verify(&t, &pk, 1001).unwrap_err(),
            VerifyError::Expired {
                exp: 1000,
                now: 1001
            }
        );
        assert!(matches!(
            AlbVerifier::new("arn:other").verify(&t, &pk, 1),
            Err(VerifyError::WrongSigner(_))
        ));
        assert!(matches!(
            AlbVerifier::new(SIGNER)
                .expect_client("c2")
                .verify(&t, &pk, 1),
            Err(VerifyError::WrongClient(_))
        ));
        assert!(matches!(
            AlbVerifier::new(SIGNER)
                .expect_issuer("x")
                .verify(&t, &pk, 1),
            Err(VerifyError::WrongIssuer(_))
        ));
    }

    #[test]
    fn refuses_tampering_and_other_keys() {
        let (kp, pk) = keypair();
        let (_, other) = keypair();
        let t = sign(&kp, &header(1000), r#"{"sub":"u1"}"#);
        let v = AlbVerifier::new(SIGNER);
        assert_eq!(
            v.verify(&t, &other, 1).unwrap_err(),
            VerifyError::BadSignature
        );
        let forged = sign(&kp, &header(1000), r#"{"sub":"u1"}"#).replacen('.', ".e", 1);
        assert!(v.verify(&forged, &pk, 1).is_err());
        // Stripping the padding changes the signing input: verification must fail.
        let stripped: String = t
            .split('.')
            .map(|s| s.trim_end_matches('='))
            .collect::<Vec<_>>()
            .join(".");
        if stripped != t {
            assert_eq!(
                v.verify(&stripped, &pk, 1).unwrap_err(),
                VerifyError::BadSignature
            );
        }
        let alg_none = sign(&kp, &header(1000).replace("ES256", "none"), "{}");
        assert!(matches!(
            v.verify(&alg_none, &pk, 1),
            Err(VerifyError::UnsupportedAlg(_))
        ));
    }

    #[test]
    fn pem_round_trip() {
        let (kp, _) = keypair();
        let der = kp.public_key().as_der().unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
        let pem = format!("-----BEGIN PUBLIC KEY-----\n{b64}\n-----END PUBLIC KEY-----\n");
        PublicKey::from_pem(&pem).unwrap();
        assert!(PublicKey::from_pem("garbage").is_err());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_input_never_panics(s in ".{0,300}") {
            let (_, pk) = keypair();
            let _ = AlbVerifier::new(SIGNER).verify(&s, &pk, 0);
            let _ = peek_header(&s);
        }
    }
}
