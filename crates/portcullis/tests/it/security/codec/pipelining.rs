//! Pipelining on the HTTPS listener across authenticate rules.

use super::*;

/// TLS to the balancer's HTTPS listener, any certificate accepted.
async fn tls_to(port: u16) -> tokio_rustls::client::TlsStream<TcpStream> {
    #[derive(Debug)]
    struct AnyCert(Arc<rustls::crypto::CryptoProvider>);
    impl rustls::client::danger::ServerCertVerifier for AnyCert {
        fn verify_server_cert(
            &self,
            _: &rustls::pki_types::CertificateDer<'_>,
            _: &[rustls::pki_types::CertificateDer<'_>],
            _: &rustls::pki_types::ServerName<'_>,
            _: &[u8],
            _: rustls::pki_types::UnixTime,
        ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            m: &[u8],
            c: &rustls::pki_types::CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                m,
                c,
                d,
                &self.0.signature_verification_algorithms,
            )
        }
        fn verify_tls13_signature(
            &self,
            m: &[u8],
            c: &rustls::pki_types::CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                m,
                c,
                d,
                &self.0.signature_verification_algorithms,
            )
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap()
}

/// Pipelining across authenticate rules (HTTPS listener): requests hidden in a body, sent
/// after a public one, or after an `Expect`, are each routed and authenticated on their own;
/// the target never gets a request for a protected path from a client without a session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelining_never_carries_a_request_past_an_authenticate_rule() {
    let (port, log) = raw_target(plain_target()).await;
    let kit = Kit::builder().start().await;
    // Every forward of the HTTPS listener goes to the raw target.
    kit.reload_replacing(
        &format!("port = {} }}]", kit.backend.port()),
        &format!("port = {port} }}]"),
    )
    .await;
    let hidden = "GET /api/secret HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let pipelined = format!(
        "GET /open/a HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n{hidden}\
         POST /api/b HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n{:x}\r\n{hidden}\r\n0\r\n\r\n\
         GET /open/c HTTP/1.1\r\nHost: localhost\r\n\r\n\
         GET /tasks/d HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n{hidden}\
         GET /open/e HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        hidden.len(),
        hidden.len(),
        hidden.len(),
    );
    let mut s = tls_to(kit.lb_port).await;
    s.write_all(pipelined.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    let statuses: Vec<u16> = answers(&out, &[]).iter().map(Answer::status).collect();
    let log: Vec<Received> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|r| !r.head.contains("user-agent: elb-healthchecker"))
        .cloned()
        .collect();
    let paths: Vec<&str> = log.iter().map(Received::path).collect();
    for r in &log {
        assert_eq!(r.error, None, "{r:?}");
        assert!(
            r.path().starts_with("/open/"),
            "a protected request reached the target: {r:?}\nanswers: {statuses:?}"
        );
    }
    assert_eq!(paths.first(), Some(&"/open/a"), "{paths:?} {statuses:?}");
    assert_eq!(statuses.first(), Some(&200), "{}", text(&out));
    // The POST to /api/b is refused (401, the connection closes as its body was not read);
    // nothing after it is served on this connection.
    assert_eq!(statuses.get(1), Some(&401), "{}", text(&out));
    kit.app.shutdown().await;
}
