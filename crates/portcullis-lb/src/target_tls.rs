//! TLS to targets, shared by every client of the balancer (HTTP/1.1 pools, HTTP/2 connections,
//! health checks, Lambda): any certificate is accepted, as ALB does not validate target
//! certificates.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::sync::Arc;

/// TLS to HTTP/1.1 targets (ALPN `http/1.1`), built once.
pub fn http1() -> tokio_rustls::TlsConnector {
    static CONNECTOR: std::sync::LazyLock<tokio_rustls::TlsConnector> =
        std::sync::LazyLock::new(|| {
            let mut cfg = config();
            cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
            tokio_rustls::TlsConnector::from(Arc::new(cfg))
        });
    CONNECTOR.clone()
}

/// TLS to targets: any certificate is accepted (ALB does not validate target certificates), but
/// the handshake's signatures are still checked against the certificate presented. Built once;
/// every client (requests, health checks, Lambda) takes a copy.
pub fn config() -> rustls::ClientConfig {
    static CONFIG: std::sync::LazyLock<rustls::ClientConfig> = std::sync::LazyLock::new(|| {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = Arc::new(AnyTargetCertificate(provider.clone()));
        rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(rustls::DEFAULT_VERSIONS)
            .expect("aws-lc-rs offers TLS 1.2 and 1.3")
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth()
    });
    CONFIG.clone()
}

/// Accepts whatever certificate a target presents, as ALB does.
#[derive(Debug)]
struct AnyTargetCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyTargetCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
