//! Upgrades: only a GET is upgraded and tunnelled.

use super::*;

/// Fixed (low): an `Upgrade: websocket` on a method other than GET is forwarded with its
/// upgrade, and a 101 to it is tunnelled. RFC 6455 §4.1 allows only GET, and
/// `headers::upgrade_protocol` (which names RFC 6455 as the only protocol tunnelled) checks the
/// version and the headers but not the method. With a target that switches whenever it is
/// asked, the bytes after a POST's 101 reach it raw, past every rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_get_is_upgraded() {
    // Switches to whatever it is asked for; the bytes after that are read as requests, so a
    // tunnelled one shows up as a head the balancer did not write.
    let respond: Responder = Arc::new(|r: &Received| {
        if let [proto] = values(&r.head, "upgrade").as_slice() {
            vec![Step::Send(
                format!("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: {proto}\r\n\r\n")
                    .into_bytes(),
            )]
        } else {
            vec![Step::Send(ok_for(r))]
        }
    });
    let (port, log) = raw_target(respond).await;
    let kit = kit_forwarding_to(port).await;
    let mut s = TcpStream::connect(("127.0.0.1", kit.http_port))
        .await
        .unwrap();
    s.write_all(b"POST /open/up HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 5\r\n\r\nhello")
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && s.read(&mut b).await.unwrap_or(0) == 1 {
        head.push(b[0]);
    }
    s.write_all(SMUGGLED.as_bytes()).await.unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(2), s.read(&mut [0u8; 1024])).await;
    let log = log.lock().unwrap().clone();
    for r in &log {
        assert!(
            r.head.contains("\r\nx-amzn-trace-id: "),
            "tunnelled past the rules: {r:?}"
        );
    }
    for r in &log {
        assert!(
            values(&r.head, "upgrade").is_empty(),
            "the upgrade was forwarded: {r:?}"
        );
    }
    assert!(
        !text(&head).starts_with("HTTP/1.1 101"),
        "a POST was switched: {}",
        text(&head)
    );
    kit.app.shutdown().await;
}
