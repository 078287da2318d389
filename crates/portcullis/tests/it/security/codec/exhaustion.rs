//! Resource exhaustion: pipelined floods, slowloris heads and header floods.

use super::*;

/// Fixed: a pipelining client that does not read its answers makes the balancer buffer
/// everything it sends, without bound. While a request is at the target, `h1::server::serve`
/// polls `client_side`, which (with no body to pump) reads once more into the connection's
/// buffer to notice a departing client (`Side::Pipelined`) even when that buffer already holds
/// the next requests; `read_head` takes only one head from it per cycle. So each request
/// cycle adds a read (about 1 KB or more) and removes one small head: the buffer grows with
/// what the client sends, with no cap (hyper stopped reading at `max_buf_size`, 80 KB). One
/// connection is measured here: what the client has written, minus what reached the target,
/// minus what the kernel still queues on both ends, is what the balancer holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipelined_flood_does_not_grow_the_read_buffer() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    // Counts requests without keeping them.
    let served = Arc::new(AtomicUsize::new(0));
    let count = served.clone();
    let (port, log) = raw_target(Arc::new(move |r: &Received| {
        count.fetch_add(1, Ordering::Relaxed);
        vec![Step::Send(ok_for(r))]
    }))
    .await;
    let kit = kit_forwarding_to(port).await;
    let s = TcpStream::connect(("127.0.0.1", kit.http_port))
        .await
        .unwrap();
    let client_port = s.local_addr().unwrap().port();
    // The client reads nothing; its answers queue in the kernel.
    let (_r, mut w) = s.into_split();
    const ONE: &[u8] = b"GET /p HTTP/1.1\r\nHost: a\r\n\r\n";
    let block: Vec<u8> = ONE.iter().copied().cycle().take(ONE.len() * 4096).collect();
    let written = Arc::new(AtomicUsize::new(0));
    let wrote = written.clone();
    let writer = tokio::spawn(async move {
        while w.write_all(&block).await.is_ok() {
            wrote.fetch_add(block.len(), Ordering::Relaxed);
        }
    });
    // Kernel queues of a loopback connection from /proc/net/tcp: (send, receive) of the socket
    // whose local port is `local` and remote port `remote`.
    let queues = |local: u16, remote: u16| -> (usize, usize) {
        let (l, r) = (format!(":{local:04X}"), format!(":{remote:04X}"));
        std::fs::read_to_string("/proc/net/tcp")
            .unwrap()
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|f| f.len() > 4 && f[1].ends_with(&l) && f[2].ends_with(&r))
            .and_then(|f| {
                let (tx, rx) = f[4].split_once(':')?;
                Some((
                    usize::from_str_radix(tx, 16).ok()?,
                    usize::from_str_radix(rx, 16).ok()?,
                ))
            })
            .unwrap_or((0, 0))
    };
    const LIMIT: usize = 4 << 20;
    let mut held = 0;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        log.lock().unwrap().clear();
        let (client_tx, _) = queues(client_port, kit.http_port);
        let (_, server_rx) = queues(kit.http_port, client_port);
        held = written
            .load(Ordering::Relaxed)
            .saturating_sub(served.load(Ordering::Relaxed) * ONE.len())
            .saturating_sub(client_tx + server_rx);
        if held > LIMIT {
            break;
        }
    }
    writer.abort();
    assert!(
        held <= LIMIT,
        "the balancer holds {} KB of one client's unanswered pipelined requests ({} requests \
         served of {} written)",
        held >> 10,
        served.load(Ordering::Relaxed),
        written.load(Ordering::Relaxed) / ONE.len()
    );
    kit.app.shutdown().await;
}

/// Slowloris on the head: a client that sends its head a byte at a time, forever, is closed
/// once the idle timeout has passed since the head began (not since its last byte).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_sent_a_byte_at_a_time_is_cut_at_the_idle_timeout() {
    let kit = Kit::builder().lb("idle_timeout_seconds = 1").start().await;
    let mut s = TcpStream::connect(("127.0.0.1", kit.http_port))
        .await
        .unwrap();
    s.write_all(b"GET /open/slow HTTP/1.1\r\nHost: a\r\n")
        .await
        .unwrap();
    let (mut r, mut w) = s.into_split();
    let trickle = tokio::spawn(async move {
        // 30 s of one header byte every 100 ms, if nothing stops it.
        for _ in 0..300 {
            if w.write_all(b"x").await.is_err() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    });
    let mut out = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(20), r.read_to_end(&mut out)).await;
    assert!(
        closed.is_ok(),
        "the connection is still open after 20 s of trickling"
    );
    assert!(!text(&out).contains(" 200 "), "{}", text(&out));
    trickle.abort();
    kit.app.shutdown().await;
}

/// Header floods: up to 1,024 fields are read; more get 431 and the connection closes; the
/// balancer goes on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_floods_are_refused_and_the_balancer_goes_on() {
    let (port, log) = raw_target(plain_target()).await;
    let kit = kit_forwarding_to(port).await;
    let many = |n: usize| {
        (0..n)
            .map(|i| format!("x-{i}: {i}\r\n"))
            .collect::<String>()
    };
    let got = exchange(
        kit.http_port,
        format!(
            "GET /open/many HTTP/1.1\r\nHost: a\r\n{}Connection: close\r\n\r\n",
            many(1000)
        )
        .as_bytes(),
    )
    .await;
    assert!(
        text(&got).starts_with("HTTP/1.1 200 "),
        "{}",
        &text(&got)[..60.min(got.len())]
    );
    assert_eq!(values(&log.lock().unwrap()[0].head, "x-999"), ["999"]);
    let got = exchange(
        kit.http_port,
        format!(
            "GET /open/too-many HTTP/1.1\r\nHost: a\r\n{}\r\n",
            many(5000)
        )
        .as_bytes(),
    )
    .await;
    assert!(
        text(&got).starts_with("HTTP/1.1 431 "),
        "{}",
        &text(&got)[..60.min(got.len())]
    );
    // 80 KB of one header line: refused, and a head that never ends is cut too.
    let got = exchange_until_quiet(
        kit.http_port,
        format!(
            "GET /open/long HTTP/1.1\r\nHost: a\r\nx-long: {}\r\n\r\n",
            "a".repeat(80 * 1024)
        )
        .as_bytes(),
    )
    .await;
    assert!(
        text(&got).starts_with("HTTP/1.1 4"),
        "{}",
        &text(&got)[..60.min(got.len())]
    );
    let got = exchange(kit.http_port, "a".repeat(200 * 1024).as_bytes()).await;
    assert!(
        text(&got).starts_with("HTTP/1.1 4"),
        "{}",
        &text(&got)[..60.min(got.len())]
    );
    let got = exchange(
        kit.http_port,
        b"GET /open/after HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(
        text(&got).ends_with("answer for /open/after"),
        "{}",
        text(&got)
    );
    kit.app.shutdown().await;
}
