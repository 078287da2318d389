//! Server certificates: from PEM files or self-signed (generated once into the state dir), chosen
//! by SNI with the first as default, served with ALPN h2 and http/1.1. The one owner of server
//! certificates: HTTPS listeners use it, and so does the binary for the user pools' domains (the
//! identity provider is handed the resulting rustls config and does not load certificates).

use rustls::crypto::aws_lc_rs::default_provider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why certificates could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct CertError {
    /// The file involved.
    pub path: PathBuf,
    /// What is wrong.
    pub reason: String,
}

/// A certificate and its key, ready to serve.
pub struct Cert {
    key: Arc<CertifiedKey>,
}

impl Cert {
    /// Loads a PEM chain and key.
    pub fn from_files(cert_file: &Path, key_file: &Path) -> Result<Cert, CertError> {
        let err = |path: &Path, reason: String| CertError {
            path: path.into(),
            reason,
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
            .map_err(|e| err(cert_file, format!("cannot read certificates: {e}")))?
            .collect::<Result<_, _>>()
            .map_err(|e| err(cert_file, format!("invalid PEM: {e}")))?;
        if certs.is_empty() {
            return Err(err(cert_file, "no CERTIFICATE block found".into()));
        }
        let key = PrivateKeyDer::from_pem_file(key_file)
            .map_err(|e| err(key_file, format!("no usable private key: {e}")))?;
        let ck = CertifiedKey::from_der(certs, key, &default_provider())
            .map_err(|e| err(key_file, format!("key does not fit the certificate: {e}")))?;
        Ok(Cert { key: Arc::new(ck) })
    }

    /// A self-signed certificate for `names`, generated once under `<state_dir>/tls/`.
    pub fn self_signed(state_dir: &Path, names: &[String]) -> Result<Cert, CertError> {
        let dir = state_dir.join("tls");
        let slug: String = names
            .join("_")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .take(80)
            .collect();
        let (cert_file, key_file) = (
            dir.join(format!("{slug}.crt")),
            dir.join(format!("{slug}.key")),
        );
        if !cert_file.exists() || !key_file.exists() {
            portcullis_core::private_file::create_dir_all(&dir).map_err(|e| CertError {
                path: dir.clone(),
                reason: e.to_string(),
            })?;
            let ck = rcgen::generate_simple_self_signed(names.to_vec()).map_err(|e| CertError {
                path: cert_file.clone(),
                reason: format!("cannot generate: {e}"),
            })?;
            let _ = std::fs::remove_file(&cert_file);
            let _ = std::fs::remove_file(&key_file);
            portcullis_core::private_file::write_new(&cert_file, ck.cert.pem().as_bytes())
                .map_err(|e| CertError {
                    path: cert_file.clone(),
                    reason: e.to_string(),
                })?;
            portcullis_core::private_file::write_new(
                &key_file,
                ck.signing_key.serialize_pem().as_bytes(),
            )
            .map_err(|e| CertError {
                path: key_file.clone(),
                reason: e.to_string(),
            })?;
        }
        Cert::from_files(&cert_file, &key_file)
    }

    /// The chain served (leaf first): what a client of this server may trust explicitly.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.key.cert
    }

    fn valid_for(&self, name: &str) -> bool {
        let Ok(server_name) = ServerName::try_from(name) else {
            return false;
        };
        let Some(leaf) = self.key.cert.first() else {
            return false;
        };
        webpki::EndEntityCert::try_from(leaf)
            .is_ok_and(|c| c.verify_is_valid_for_subject_name(&server_name).is_ok())
    }
}

/// Picks the first certificate valid for the SNI name, else the first one. The set can be
/// replaced while serving (a reload); handshakes in progress keep the one they resolved.
pub struct SniResolver {
    certs: arc_swap::ArcSwap<Vec<Cert>>,
    /// Certificates loaded by a reload in progress: trusted (see [`SniResolver::trust_anchors`])
    /// before they are served, so that clients rebuilt by the reload accept old and new.
    staged: arc_swap::ArcSwapOption<Vec<Cert>>,
}

impl std::fmt::Debug for SniResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SniResolver({} certificates)", self.certs.load().len())
    }
}

impl SniResolver {
    /// From certificates in config order.
    pub fn new(certs: Vec<Cert>) -> SniResolver {
        SniResolver {
            certs: arc_swap::ArcSwap::from_pointee(certs),
            staged: arc_swap::ArcSwapOption::empty(),
        }
    }

    /// Serves `certs` from the next handshake on.
    pub fn replace(&self, certs: Vec<Cert>) {
        self.certs.store(Arc::new(certs));
    }

    /// Holds `certs` to be served by [`SniResolver::commit`]; until then they are trusted, not
    /// served. [`SniResolver::unstage`] drops them.
    pub fn stage(&self, certs: Vec<Cert>) {
        self.staged.store(Some(Arc::new(certs)));
    }

    /// Serves the staged certificates from the next handshake on (nothing staged: no change).
    pub fn commit(&self) {
        if let Some(certs) = self.staged.swap(None) {
            self.certs.store(certs);
        }
    }

    /// Forgets staged certificates (the reload they belonged to failed).
    pub fn unstage(&self) {
        self.staged.store(None);
    }

    /// Every certificate of every chain served or staged: the trust anchors a client that talks
    /// to this server only (the balancer calling an embedded pool) can pin, self-signed included.
    pub fn trust_anchors(&self) -> Vec<CertificateDer<'static>> {
        let served = self.certs.load_full();
        let staged = self.staged.load_full();
        served
            .iter()
            .chain(staged.iter().flat_map(|s| s.iter()))
            .flat_map(|c| c.chain().iter().cloned())
            .collect()
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let certs = self.certs.load();
        if let Some(sni) = hello.server_name()
            && let Some(c) = certs.iter().find(|c| c.valid_for(sni))
        {
            return Some(c.key.clone());
        }
        certs.first().map(|c| c.key.clone())
    }
}

/// A rustls server config offering h2 (unless `http2` is off) and http/1.1.
pub fn server_config(
    certs: Vec<Cert>,
    http2: bool,
) -> Result<(Arc<rustls::ServerConfig>, Arc<SniResolver>), rustls::Error> {
    let resolver = Arc::new(SniResolver::new(certs));
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(resolver.clone());
    cfg.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok((Arc::new(cfg), resolver))
}

/// Why the certificates a config field names could not be loaded; names the field (`at[j]`).
#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    /// Neither `self_signed` nor both files.
    #[error("{at}[{index}]: incomplete")]
    Incomplete {
        /// The config field (`listeners[0].certificates`).
        at: String,
        /// Which certificate of it.
        index: usize,
    },
    /// A certificate could not be read or generated.
    #[error("{at}[{index}]: {source}")]
    Cert {
        /// The config field (`listeners[0].certificates`).
        at: String,
        /// Which certificate of it.
        index: usize,
        /// What is wrong.
        #[source]
        source: CertError,
    },
}

/// The certificates a listener names, loaded or generated.
pub fn load_listener_certs(
    state_dir: &Path,
    l: &portcullis_config::Listener,
    index: usize,
) -> Result<Vec<Cert>, CertsError> {
    load_certs(
        state_dir,
        &l.certificates,
        &format!("listeners[{index}].certificates"),
    )
}

/// The certificates a config field `at` (a listener's or a pool domain's) names, loaded or
/// generated; errors name `at[j]`.
pub fn load_certs(
    state_dir: &Path,
    sources: &[portcullis_config::Certificate],
    at: &str,
) -> Result<Vec<Cert>, CertsError> {
    let mut certs = Vec::new();
    for (index, c) in sources.iter().enumerate() {
        let cert = match (&c.self_signed, &c.cert_file, &c.key_file) {
            (Some(names), _, _) => Cert::self_signed(state_dir, names),
            (None, Some(cf), Some(kf)) => Cert::from_files(cf, kf),
            _ => {
                return Err(CertsError::Incomplete {
                    at: at.to_string(),
                    index,
                });
            }
        };
        certs.push(cert.map_err(|source| CertsError::Cert {
            at: at.to_string(),
            index,
            source,
        })?);
    }
    Ok(certs)
}

/// ALB's (OpenSSL) name of a negotiated cipher suite.
pub fn cipher_name(suite: rustls::SupportedCipherSuite) -> String {
    let iana = format!("{:?}", suite.suite());
    if let Some(rest) = iana.strip_prefix("TLS13_") {
        return format!("TLS_{rest}");
    }
    let s = iana.trim_start_matches("TLS_").replace("_WITH_", "_");
    s.replace("AES_128_GCM", "AES128-GCM")
        .replace("AES_256_GCM", "AES256-GCM")
        .replace("CHACHA20_POLY1305", "CHACHA20-POLY1305")
        .replace('_', "-")
}

/// ALB's name of a protocol version.
pub fn protocol_name(v: rustls::ProtocolVersion) -> &'static str {
    match v {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3",
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2",
        _ => "-",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_is_generated_once_and_matches_names() {
        let dir = std::env::temp_dir().join(format!("pc-tls-{}", uuid::Uuid::new_v4()));
        let a = Cert::self_signed(&dir, &["localhost".into(), "*.example.test".into()]).unwrap();
        let b = Cert::self_signed(&dir, &["localhost".into(), "*.example.test".into()]).unwrap();
        assert_eq!(a.key.cert, b.key.cert);
        assert!(
            a.valid_for("localhost") && a.valid_for("x.example.test") && !a.valid_for("other.test")
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn cipher_names_follow_openssl() {
        for s in default_provider().cipher_suites {
            let n = cipher_name(s);
            assert!(n.starts_with("TLS_") || n.starts_with("ECDHE-"), "{n}");
        }
    }
}
