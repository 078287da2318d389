//! The load balancer's signer of `x-amzn-oidc-data` (the format, both ways, is
//! `portcullis_verify`'s: [`portcullis_verify::encode::alb_header`]) and of the standard identity
//! JWT with its JWKS.

use crate::keys::ClaimsKey;
use aws_lc_rs::rand::SystemRandom;
use base64::Engine;
use portcullis_verify::encode::{AlbFields, alb_header};
use serde_json::{Map, Value};

/// Lifetime of a signed header (ALB's samples show about two minutes).
pub const HEADER_LIFETIME: u64 = 120;

/// Signs claims headers for one load balancer.
pub struct ClaimsSigner {
    key: ClaimsKey,
    signer_arn: String,
    rng: SystemRandom,
}

impl ClaimsSigner {
    /// `signer_arn` is this load balancer's ARN, which backends pin.
    pub fn new(key: ClaimsKey, signer_arn: String) -> Self {
        ClaimsSigner {
            key,
            signer_arn,
            rng: SystemRandom::new(),
        }
    }

    /// Signs `claims` for `iss` and `client`, expiring at `exp`.
    pub fn sign(
        &self,
        iss: &str,
        client: &str,
        claims: &Map<String, Value>,
        exp: u64,
    ) -> Result<String, aws_lc_rs::error::Unspecified> {
        let fields = AlbFields {
            kid: &self.key.kid,
            iss,
            client,
            signer: &self.signer_arn,
            exp,
        };
        alb_header(&fields, claims, &self.key.key, &self.rng)
    }

    /// A standard RFC 7519 JWT of the same identity: unpadded base64url, `kid` in the header, and
    /// `iss` (this load balancer), `aud`, `sub`, `iat`, `exp` plus the userinfo claims in the
    /// payload, so strict JWT libraries verify it with the JWKS.
    pub fn sign_jwt(
        &self,
        aud: &str,
        claims: &Map<String, Value>,
        now: u64,
        exp: u64,
    ) -> Result<String, aws_lc_rs::error::Unspecified> {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = serde_json::json!({ "alg": "ES256", "typ": "JWT", "kid": self.key.kid });
        let mut payload = claims.clone();
        payload.insert("iss".into(), self.signer_arn.clone().into());
        payload.insert("aud".into(), aud.into());
        payload.insert("iat".into(), now.into());
        payload.insert("exp".into(), exp.into());
        let mut out = URL_SAFE_NO_PAD.encode(header.to_string());
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(Value::Object(payload).to_string()));
        let sig = self.key.key.sign(&self.rng, out.as_bytes())?;
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(sig.as_ref()));
        Ok(out)
    }

    /// The JWKS for the standard identity JWT (one EC P-256 key).
    pub fn jwks(&self) -> Value {
        self.jwks_with(&[])
    }

    /// The JWKS with retired keys too (what the admin listener publishes after a rotation).
    pub fn jwks_with(&self, retired: &[crate::keys::RetiredKey]) -> Value {
        use aws_lc_rs::signature::KeyPair;
        let mut keys = vec![jwk(&self.key.kid, self.key.key.public_key().as_ref())];
        keys.extend(retired.iter().map(|r| jwk(&r.kid, &r.point)));
        serde_json::json!({ "keys": keys })
    }
}

/// The JWK of a P-256 key from its uncompressed SEC1 point (`0x04 || X || Y`).
pub fn jwk(kid: &str, point: &[u8]) -> Value {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (x, y) = point
        .get(1..)
        .unwrap_or_default()
        .split_at(32.min(point.len().saturating_sub(1)));
    serde_json::json!({
        "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
        "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::AuthKeys;
    use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};

    #[test]
    fn header_is_alb_shaped_and_verifies() {
        let keys = AuthKeys::ephemeral();
        let pem = keys.claims.public_pem();
        let kid = keys.claims.kid.clone();
        let arn = "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/t/0123456789abcdef";
        let s = ClaimsSigner::new(keys.claims, arn.into());
        let mut claims = Map::new();
        claims.insert("sub".into(), "u1".into());
        claims.insert("email_verified".into(), "false".into());
        claims.insert("username".into(), "jane".into());
        let t = s
            .sign("https://idp/pool", "client1", &claims, 2000)
            .unwrap();
        let segs: Vec<&str> = t.split('.').collect();
        assert_eq!(segs.len(), 3);
        let header = String::from_utf8(URL_SAFE.decode(segs[0]).unwrap()).unwrap();
        assert_eq!(
            header,
            format!(
                r#"{{"typ":"JWT","kid":"{kid}","alg":"ES256","iss":"https://idp/pool","client":"client1","signer":"{arn}","exp":2000}}"#
            )
        );
        let payload = String::from_utf8(URL_SAFE.decode(segs[1]).unwrap()).unwrap();
        assert_eq!(
            payload,
            r#"{"sub":"u1","email_verified":"false","username":"jane","exp":2000,"iss":"https://idp/pool"}"#
        );
        assert_eq!(
            URL_SAFE_NO_PAD
                .decode(segs[2].trim_end_matches('='))
                .unwrap()
                .len(),
            64
        );
        assert!(
            segs[2].ends_with('='),
            "64-byte signature encodes with one '='"
        );
        let key = portcullis_verify::PublicKey::from_pem(&pem).unwrap();
        let v = portcullis_verify::AlbVerifier::new(arn)
            .expect_client("client1")
            .expect_issuer("https://idp/pool");
        assert_eq!(v.verify(&t, &key, 1999).unwrap().sub(), Some("u1"));
    }
}
