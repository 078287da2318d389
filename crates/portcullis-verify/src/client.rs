//! The HTTPS client every server-to-server call of Portcullis uses (feature `fetch`): the
//! balancer's calls to identity providers, JWKS fetches, back-channel logout tokens, and a
//! backend's key fetches. TLS by rustls with aws-lc-rs and the Mozilla roots.

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::CertificateDer;
use std::sync::Arc;

/// The shared HTTP(S) client type (cheap to clone: clones share connections).
pub type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Why a client trusting given certificates could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// None of the certificates parses as a trust anchor.
    #[error("none of the pool's certificates can be trusted")]
    NoUsableAnchor,
    /// The TLS configuration was refused.
    #[error("{0}")]
    Tls(#[from] rustls::Error),
}

/// The shared client: public (webpki) roots; plain `http` allowed, for loopback providers.
pub fn http_client() -> HttpClient {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(provider)
        .expect("TLS versions supported by the provider")
        .https_or_http()
        .enable_http1()
        .build();
    Client::builder(TokioExecutor::new()).build(https)
}

/// A client for one server that serves its own certificates (an embedded pool on HTTPS): it
/// trusts `anchors` (self-signed ones included) besides the public roots, and speaks HTTPS only.
pub fn http_client_trusting(
    anchors: Vec<CertificateDer<'static>>,
) -> Result<HttpClient, TrustError> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let (added, _) = roots.add_parsable_certificates(anchors);
    if added == 0 {
        return Err(TrustError::NoUsableAnchor);
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(https))
}
