//! The signing side of `x-amzn-oidc-data`, next to its decoder ([`crate::AlbVerifier`]), so the
//! format has one owner: base64url *with* `=` padding on every segment, ES256 as raw `r‖s` over
//! the padded first two segments, `typ, kid, alg, iss, client, signer, exp` in the protected
//! header (in that order, as ALB writes them), and the user claims plus `exp` and `iss` in the
//! payload. The load balancer signs with it; backends' tests may too.

use crate::B64;
use aws_lc_rs::rand::SecureRandom;
use aws_lc_rs::signature::EcdsaKeyPair;
use base64::Engine;
use serde_json::{Map, Value};

/// The protected header's fields that vary: what a backend pins.
#[derive(Debug, Clone, Copy)]
pub struct AlbFields<'a> {
    /// The signing key's id (the PEM is served at `<keys endpoint>/<kid>`).
    pub kid: &'a str,
    /// The identity provider's issuer.
    pub iss: &'a str,
    /// The OAuth client id the load balancer used.
    pub client: &'a str,
    /// The load balancer's ARN.
    pub signer: &'a str,
    /// Expiry, epoch seconds (in the header and the payload).
    pub exp: u64,
}

/// Signs `claims` as an `x-amzn-oidc-data` value with `key` (an ECDSA P-256 key pair made for
/// `ECDSA_P256_SHA256_FIXED_SIGNING`, so the signature is raw `r‖s`).
pub fn alb_header(
    fields: &AlbFields<'_>,
    claims: &Map<String, Value>,
    key: &EcdsaKeyPair,
    rng: &dyn SecureRandom,
) -> Result<String, aws_lc_rs::error::Unspecified> {
    let header = serde_json::json!({
        "typ": "JWT", "kid": fields.kid, "alg": "ES256", "iss": fields.iss,
        "client": fields.client, "signer": fields.signer, "exp": fields.exp,
    });
    let mut payload = claims.clone();
    payload.insert("exp".into(), fields.exp.into());
    payload.insert("iss".into(), fields.iss.into());
    let mut out = B64.encode(header.to_string());
    out.push('.');
    out.push_str(&B64.encode(Value::Object(payload).to_string()));
    let sig = key.sign(rng, out.as_bytes())?;
    out.push('.');
    out.push_str(&B64.encode(sig.as_ref()));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AlbVerifier, PublicKey, peek_header};
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, KeyPair};

    const SIGNER: &str =
        "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/t/0123456789abcdef";

    #[test]
    fn what_is_encoded_decodes() {
        let kp = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let pk = PublicKey::from_der(kp.public_key().as_der().unwrap().as_ref()).unwrap();
        let mut claims = Map::new();
        claims.insert("sub".into(), "u1".into());
        let fields = AlbFields {
            kid: "k1",
            iss: "https://idp",
            client: "c1",
            signer: SIGNER,
            exp: 1000,
        };
        let t = alb_header(&fields, &claims, &kp, &SystemRandom::new()).unwrap();
        assert!(t.split('.').nth(2).unwrap().ends_with('='), "padded");
        let h = peek_header(&t).unwrap();
        assert_eq!(
            (h.typ.as_deref(), h.kid.as_str(), h.alg.as_str()),
            (Some("JWT"), "k1", "ES256")
        );
        let c = AlbVerifier::new(SIGNER)
            .expect_client("c1")
            .expect_issuer("https://idp")
            .verify(&t, &pk, 1000)
            .unwrap();
        assert_eq!(c.sub(), Some("u1"));
        assert_eq!(c.claims["exp"], 1000);
        assert_eq!(c.claims["iss"], "https://idp");
    }
}
