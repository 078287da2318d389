//! The load balancer's secrets: AEAD keys for cookies and `state` (first seals, all open), the
//! HMAC key for values it derives or hands out in the clear (stickiness cookies, the PKCE verifier
//! and OIDC nonce of a login) and the ES256 key that signs `x-amzn-oidc-data`. Generated once into
//! the state dir when absent.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::error::Unspecified;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::path::{Path, PathBuf};

/// Why keys could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing a key file failed.
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// A key file holds something that is not a key.
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: &'static str },
}

/// AES-256-GCM keys; the first seals, every one opens (rotation without signing anyone out).
pub struct KeyRing {
    keys: Vec<(u8, LessSafeKey)>,
    rng: SystemRandom,
}

const SEAL_VERSION: u8 = 1;

impl KeyRing {
    /// From raw 32-byte keys with their one-byte ids; the first seals.
    pub fn new(keys: Vec<(u8, [u8; 32])>) -> Self {
        let keys = keys
            .into_iter()
            .map(|(id, k)| {
                (
                    id,
                    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &k).expect("32-byte key")),
                )
            })
            .collect();
        KeyRing {
            keys,
            rng: SystemRandom::new(),
        }
    }

    /// Seals `plain` bound to `context` (the AAD): version, key id, nonce, ciphertext and tag.
    /// Fails only if the system random source does.
    pub fn seal(&self, context: &[u8], plain: &[u8]) -> Result<Vec<u8>, Unspecified> {
        let (id, key) = &self.keys[0];
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce)?;
        let mut out = Vec::with_capacity(2 + NONCE_LEN + plain.len() + 16);
        out.push(SEAL_VERSION);
        out.push(*id);
        out.extend_from_slice(&nonce);
        let mut body = plain.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(context),
            &mut body,
        )?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Opens what `seal` made with the same `context`; `None` when tampered, truncated or foreign.
    pub fn open(&self, context: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < 2 + NONCE_LEN + 16 || sealed[0] != SEAL_VERSION {
            return None;
        }
        let key = &self.keys.iter().find(|(id, _)| *id == sealed[1])?.1;
        let nonce = Nonce::try_assume_unique_for_key(&sealed[2..2 + NONCE_LEN]).ok()?;
        let mut body = sealed[2 + NONCE_LEN..].to_vec();
        let plain = key
            .open_in_place(nonce, Aad::from(context), &mut body)
            .ok()?;
        Some(plain.to_vec())
    }

    /// [`KeyRing::open`] decrypting in place: the buffer `sealed` came in becomes the plaintext.
    pub fn open_owned(&self, context: &[u8], mut sealed: Vec<u8>) -> Option<Vec<u8>> {
        if sealed.len() < 2 + NONCE_LEN + 16 || sealed[0] != SEAL_VERSION {
            return None;
        }
        let key = &self.keys.iter().find(|(id, _)| *id == sealed[1])?.1;
        let nonce = Nonce::try_assume_unique_for_key(&sealed[2..2 + NONCE_LEN]).ok()?;
        let len = key
            .open_within(nonce, Aad::from(context), &mut sealed, 2 + NONCE_LEN..)
            .ok()?
            .len();
        sealed.truncate(len);
        Some(sealed)
    }
}

/// An HMAC-SHA256 key, so that values the balancer hands out in the clear (stickiness cookies) or
/// derives from a browser's nonce (PKCE verifier, OIDC nonce) cannot be made by anyone else.
#[derive(Clone)]
pub struct MacKey(aws_lc_rs::hmac::Key);

impl MacKey {
    /// From 32 raw bytes.
    pub fn new(raw: &[u8; 32]) -> MacKey {
        MacKey(aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, raw))
    }

    /// The MAC of `parts` under `label` (domain separation); each part is length-prefixed, so
    /// no two different lists give the same input.
    pub fn sign(&self, label: &str, parts: &[&[u8]]) -> [u8; 32] {
        let mut ctx = aws_lc_rs::hmac::Context::with_key(&self.0);
        for p in std::iter::once(label.as_bytes()).chain(parts.iter().copied()) {
            ctx.update(&(p.len() as u64).to_be_bytes());
            ctx.update(p);
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }
}

/// The ES256 key that signs `x-amzn-oidc-data`, with its UUID `kid`.
pub struct ClaimsKey {
    /// The UUID backends fetch the PEM by.
    pub kid: String,
    /// The private key.
    pub key: EcdsaKeyPair,
}

impl ClaimsKey {
    /// The public key as PEM SubjectPublicKeyInfo, as ALB's key endpoint serves it.
    pub fn public_pem(&self) -> String {
        let der = self.key.public_key().as_der().expect("EC public key DER");
        pem_of(der.as_ref())
    }
}

/// Everything the authenticate actions need that must survive restarts.
pub struct AuthKeys {
    /// Cookie and `state` sealing.
    pub ring: KeyRing,
    /// Stickiness cookies and the values a login derives from its nonce cookie.
    pub mac: MacKey,
    /// Claims signing.
    pub claims: ClaimsKey,
    /// Earlier claims-signing keys, still published so headers they signed keep verifying.
    pub retired: Vec<RetiredKey>,
}

/// A claims-signing key that no longer signs: its public half, still served.
#[derive(Debug, Clone)]
pub struct RetiredKey {
    /// Its `kid`.
    pub kid: String,
    /// SPKI PEM, as `/public-keys/<kid>` serves it.
    pub pem: String,
    /// The uncompressed SEC1 point (`0x04 || X || Y`), for the JWKS.
    pub point: Vec<u8>,
}

/// Cookie keys kept after a rotation (the newest seals; all open).
pub const MAX_COOKIE_KEYS: usize = 4;
/// Retired claims-signing keys kept published.
pub const MAX_RETIRED_CLAIMS_KEYS: usize = 4;
const RETIRED_DIR: &str = "claims-retired";

fn pem_of(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END PUBLIC KEY-----\n");
    pem
}

/// The SEC1 point of a P-256 SPKI PEM (its last 65 bytes), when it is one.
fn point_of_pem(pem: &str) -> Option<Vec<u8>> {
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = STANDARD.decode(b64.trim()).ok()?;
    let point = der.get(der.len().checked_sub(65)?..)?.to_vec();
    (der.len() == 91 && point[0] == 4).then_some(point)
}

fn read_retired(dir: &Path) -> Vec<RetiredKey> {
    let Ok(entries) = std::fs::read_dir(dir.join(RETIRED_DIR)) else {
        return Vec::new();
    };
    let mut out: Vec<(std::time::SystemTime, RetiredKey)> = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        let Some(kid) = path
            .file_stem()
            .and_then(|s| s.to_str())
            .filter(|k| uuid::Uuid::parse_str(k).is_ok())
        else {
            continue;
        };
        let Ok(pem) = std::fs::read_to_string(&path) else {
            continue;
        };
        match point_of_pem(&pem) {
            Some(point) => {
                let at = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::UNIX_EPOCH);
                out.push((
                    at,
                    RetiredKey {
                        kid: kid.to_string(),
                        pem,
                        point,
                    },
                ));
            }
            None => tracing::warn!(path = %path.display(), "not a P-256 public key; not published"),
        }
    }
    out.sort_by_key(|b| std::cmp::Reverse(b.0));
    out.into_iter().map(|(_, k)| k).collect()
}

/// Replaces `path` with `bytes` atomically (written beside it, mode 0600, then renamed).
fn replace_private(path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    write_private(&tmp, bytes)?;
    std::fs::rename(&tmp, path).map_err(|error| KeyError::Io {
        path: path.into(),
        error,
    })
}

/// Rotates the balancer's keys in `dir` (the state dir's `lb/`): a new cookie key that seals from
/// now on while the older ones still open existing sessions (at most [`MAX_COOKIE_KEYS`]), and a
/// new claims-signing key whose predecessor stays published (at most [`MAX_RETIRED_CLAIMS_KEYS`]).
/// Takes effect when Portcullis next starts. Returns what was done, one line each.
pub fn rotate(dir: &Path, cookie: bool, claims: bool) -> Result<Vec<String>, KeyError> {
    let current = AuthKeys::load_or_generate(dir)?;
    let rng = SystemRandom::new();
    let mut done = Vec::new();
    if cookie {
        let path = dir.join("cookie-keys");
        let text = std::fs::read_to_string(&path).map_err(|error| KeyError::Io {
            path: path.clone(),
            error,
        })?;
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        let used: Vec<u8> = lines
            .iter()
            .filter_map(|l| l.split_once(' ').and_then(|(id, _)| id.parse().ok()))
            .collect();
        let newest = used.first().copied().unwrap_or(0);
        let id = (1..=255u16)
            .map(|d| newest.wrapping_add(d as u8))
            .find(|i| *i != 0 && !used.contains(i))
            .unwrap_or(1);
        let mut k = [0u8; 32];
        rng.fill(&mut k).map_err(|_| KeyError::Invalid {
            path: path.clone(),
            reason: "no randomness",
        })?;
        let mut out = format!("{id} {}\n", STANDARD.encode(k));
        for l in lines.iter().take(MAX_COOKIE_KEYS - 1) {
            out.push_str(l);
            out.push('\n');
        }
        replace_private(&path, out.as_bytes())?;
        done.push(format!(
            "cookie key {id} seals new sessions; {} older key(s) still open existing ones",
            lines.len().min(MAX_COOKIE_KEYS - 1)
        ));
    }
    if claims {
        let retired_dir = dir.join(RETIRED_DIR);
        portcullis_core::private_file::create_dir_all(&retired_dir).map_err(|error| {
            KeyError::Io {
                path: retired_dir.clone(),
                error,
            }
        })?;
        let old = &current.claims;
        let old_path = retired_dir.join(format!("{}.pem", old.kid));
        let _ = std::fs::remove_file(&old_path);
        write_private(&old_path, old.public_pem().as_bytes())?;
        let doc =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).map_err(|_| {
                KeyError::Invalid {
                    path: dir.into(),
                    reason: "EC key generation failed",
                }
            })?;
        let kid = uuid::Uuid::new_v4().to_string();
        replace_private(&dir.join("claims-signing-key.p8"), doc.as_ref())?;
        replace_private(&dir.join("claims-signing-key.kid"), kid.as_bytes())?;
        for stale in read_retired(dir).into_iter().skip(MAX_RETIRED_CLAIMS_KEYS) {
            let _ = std::fs::remove_file(retired_dir.join(format!("{}.pem", stale.kid)));
        }
        done.push(format!(
            "claims key {kid} signs x-amzn-oidc-data; {} stays published at /public-keys/{}",
            old.kid, old.kid
        ));
    }
    Ok(done)
}

impl AuthKeys {
    /// Loads `<dir>/cookie-keys` and `<dir>/claims-signing-key.p8`, generating either when absent.
    pub fn load_or_generate(dir: &Path) -> Result<AuthKeys, KeyError> {
        portcullis_core::private_file::create_dir_all(dir).map_err(|error| KeyError::Io {
            path: dir.into(),
            error,
        })?;
        let rng = SystemRandom::new();
        let cookie_path = dir.join("cookie-keys");
        if !cookie_path.exists() {
            let mut k = [0u8; 32];
            rng.fill(&mut k).expect("system random");
            write_private(
                &cookie_path,
                format!("1 {}\n", STANDARD.encode(k)).as_bytes(),
            )?;
        }
        let text = std::fs::read_to_string(&cookie_path).map_err(|error| KeyError::Io {
            path: cookie_path.clone(),
            error,
        })?;
        let mut keys = Vec::new();
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let bad = || KeyError::Invalid {
                path: cookie_path.clone(),
                reason: "each line must be `<id 0-255> <base64 of 32 bytes>`",
            };
            let (id, b64) = line.split_once(' ').ok_or_else(bad)?;
            let id: u8 = id.parse().map_err(|_| bad())?;
            let raw = STANDARD.decode(b64.trim()).map_err(|_| bad())?;
            keys.push((id, <[u8; 32]>::try_from(raw.as_slice()).map_err(|_| bad())?));
        }
        if keys.is_empty() {
            return Err(KeyError::Invalid {
                path: cookie_path,
                reason: "no keys",
            });
        }
        let mac = load_or_generate_mac(&dir.join("mac-key"), &rng)?;
        let key_path = dir.join("claims-signing-key.p8");
        let kid_path = dir.join("claims-signing-key.kid");
        if !key_path.exists() {
            let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .expect("EC key generation");
            write_private(&key_path, doc.as_ref())?;
            write_private(&kid_path, uuid::Uuid::new_v4().to_string().as_bytes())?;
        }
        let der = std::fs::read(&key_path).map_err(|error| KeyError::Io {
            path: key_path.clone(),
            error,
        })?;
        let key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der).map_err(|_| {
                KeyError::Invalid {
                    path: key_path.clone(),
                    reason: "not a PKCS#8 P-256 key",
                }
            })?;
        let kid = std::fs::read_to_string(&kid_path)
            .map_err(|error| KeyError::Io {
                path: kid_path.clone(),
                error,
            })?
            .trim()
            .to_string();
        if uuid::Uuid::parse_str(&kid).is_err() {
            return Err(KeyError::Invalid {
                path: kid_path,
                reason: "the kid must be a UUID",
            });
        }
        Ok(AuthKeys {
            ring: KeyRing::new(keys),
            mac,
            claims: ClaimsKey { kid, key },
            retired: read_retired(dir),
        })
    }

    /// Fresh random keys that live only in memory (tests, benchmarks).
    pub fn ephemeral() -> AuthKeys {
        let rng = SystemRandom::new();
        let mut k = [0u8; 32];
        rng.fill(&mut k).expect("system random");
        let mut m = [0u8; 32];
        rng.fill(&mut m).expect("system random");
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("EC keygen");
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref())
            .expect("EC key");
        AuthKeys {
            ring: KeyRing::new(vec![(1, k)]),
            mac: MacKey::new(&m),
            claims: ClaimsKey {
                kid: uuid::Uuid::new_v4().to_string(),
                key,
            },
            retired: Vec::new(),
        }
    }
}

/// Reads `path` (the base64 of 32 bytes), generating it (mode 0600) when absent.
fn load_or_generate_mac(path: &Path, rng: &SystemRandom) -> Result<MacKey, KeyError> {
    if !path.exists() {
        let mut k = [0u8; 32];
        rng.fill(&mut k).map_err(|_| KeyError::Invalid {
            path: path.into(),
            reason: "no randomness",
        })?;
        write_private(path, format!("{}\n", STANDARD.encode(k)).as_bytes())?;
    }
    let text = std::fs::read_to_string(path).map_err(|error| KeyError::Io {
        path: path.into(),
        error,
    })?;
    let raw = STANDARD
        .decode(text.trim())
        .ok()
        .and_then(|r| <[u8; 32]>::try_from(r.as_slice()).ok())
        .ok_or(KeyError::Invalid {
            path: path.into(),
            reason: "must be the base64 of 32 bytes",
        })?;
    Ok(MacKey::new(&raw))
}

/// Writes a new key file readable only by its owner (`portcullis_core::private_file`).
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    portcullis_core::private_file::write_new(path, bytes).map_err(|error| KeyError::Io {
        path: path.into(),
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_rotation_and_context_binding() {
        let old = KeyRing::new(vec![(1, [1; 32])]);
        let rotated = KeyRing::new(vec![(2, [2; 32]), (1, [1; 32])]);
        let sealed = old.seal(b"ctx", b"hello").unwrap();
        assert_eq!(
            rotated.open(b"ctx", &sealed).as_deref(),
            Some(&b"hello"[..])
        );
        assert_eq!(old.open(b"other", &sealed), None);
        let new = rotated.seal(b"ctx", b"x").unwrap();
        assert_eq!(
            old.open(b"ctx", &new),
            None,
            "a key the ring lacks cannot open"
        );
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(old.open(b"ctx", &tampered), None);
        assert_eq!(old.open(b"ctx", &sealed[..10]), None);
    }

    #[test]
    fn keys_persist_in_state_dir() {
        let dir = std::env::temp_dir().join(format!("pc-keys-{}", uuid::Uuid::new_v4()));
        let a = AuthKeys::load_or_generate(&dir).unwrap();
        let b = AuthKeys::load_or_generate(&dir).unwrap();
        assert_eq!(a.claims.kid, b.claims.kid);
        assert_eq!(a.claims.public_pem(), b.claims.public_pem());
        let sealed = a.ring.seal(b"c", b"v").unwrap();
        assert_eq!(b.ring.open(b"c", &sealed).as_deref(), Some(&b"v"[..]));
        assert_eq!(a.mac.sign("l", &[b"x"]), b.mac.sign("l", &[b"x"]));
        assert_ne!(
            a.mac.sign("l", &[b"x"]),
            AuthKeys::ephemeral().mac.sign("l", &[b"x"]),
            "keyed"
        );
        assert_ne!(
            a.mac.sign("l", &[b"ab", b"c"]),
            a.mac.sign("l", &[b"a", b"bc"])
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("mac-key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn rotation_keeps_sessions_and_publishes_the_old_claims_key() {
        let dir = std::env::temp_dir().join(format!("lb-keys-{}", uuid::Uuid::new_v4()));
        let before = AuthKeys::load_or_generate(&dir).unwrap();
        let sealed = before.ring.seal(b"ctx", b"session").unwrap();
        let old_kid = before.claims.kid.clone();
        let done = rotate(&dir, true, true).unwrap();
        assert_eq!(done.len(), 2, "{done:?}");
        let after = AuthKeys::load_or_generate(&dir).unwrap();
        assert_eq!(
            after.ring.open(b"ctx", &sealed).as_deref(),
            Some(&b"session"[..])
        );
        let fresh = after.ring.seal(b"ctx", b"new").unwrap();
        assert_ne!(fresh[1], sealed[1], "a new key id seals");
        assert!(before.ring.open(b"ctx", &fresh).is_none());
        assert_ne!(after.claims.kid, old_kid);
        assert_eq!(after.retired.len(), 1);
        assert_eq!(after.retired[0].kid, old_kid);
        assert_eq!(after.retired[0].pem, before.claims.public_pem());
        assert_eq!(
            after.retired[0].point,
            before.claims.key.public_key().as_ref()
        );
        // Rotating again and again keeps a bounded number of keys.
        for _ in 0..6 {
            rotate(&dir, true, true).unwrap();
        }
        let many = AuthKeys::load_or_generate(&dir).unwrap();
        assert_eq!(many.retired.len(), MAX_RETIRED_CLAIMS_KEYS);
        let cookie_lines = std::fs::read_to_string(dir.join("cookie-keys")).unwrap();
        assert_eq!(cookie_lines.lines().count(), MAX_COOKIE_KEYS);
        let _ = std::fs::remove_dir_all(dir);
    }
}
