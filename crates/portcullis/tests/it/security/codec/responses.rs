//! The response side: a target's answers (conflicting framing, extra bytes, interim answers)
//! never desynchronise what clients read.

use super::*;

/// Fixed: a target's answer with both `Content-Length` and `Transfer-Encoding: chunked`
/// reaches the client with the target's `Content-Length` and the de-chunked body, whatever its
/// length. `h1::client::finish` reads the body as chunked (right) but leaves `Content-Length`
/// in the headers; `upstream_response` strips `Transfer-Encoding` as hop-by-hop; then
/// `h1::server::write_response` frames by that `Content-Length` and writes every body byte it
/// gets (it checks `sent != n` only after writing). The bytes past the length are read by a
/// keep-alive or pipelining client (or a CDN in front) as the answer to its next request:
/// response splitting under a target's control. RFC 9112 §6.3: the length must be removed (and
/// the target connection closed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_with_length_and_chunked_cannot_split_the_clients_responses() {
    const FAKE: &str = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled";
    let respond: Responder = Arc::new(|r: &Received| {
        if r.path() == "/first" {
            let data = format!("abc{FAKE}");
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{data}\r\n0\r\n\r\n",
                data.len()
            );
            vec![Step::Send(answer.into_bytes())]
        } else {
            vec![Step::Send(ok_for(r))]
        }
    });
    let (port, _log) = raw_target(respond).await;
    let kit = kit_forwarding_to(port).await;
    let got = exchange(
        kit.http_port,
        b"GET /first HTTP/1.1\r\nHost: a\r\n\r\nGET /second HTTP/1.1\r\nHost: a\r\n\r\n",
    )
    .await;
    let answers = answers(&got, &[]);
    assert!(!answers.is_empty(), "{}", text(&got));
    for (i, a) in answers.iter().enumerate() {
        assert_ne!(
            a.body,
            b"smuggled",
            "answer {i} is one the target planted in the first answer's body:\n{}",
            text(&got)
        );
    }
    kit.app.shutdown().await;
}

/// Response-side desync: a target that sends more than its answer (bytes after the body, a
/// body on a HEAD or 204 answer, bytes after `Connection: close` or an HTTP/1.0 answer, at
/// once or a moment later) never has those bytes read as another client's answer: the pooled
/// connection is dropped when its buffer holds more, or when it has news before it is reused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extra_bytes_from_a_target_never_reach_another_client() {
    const STOLEN: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nstolen";
    let respond: Responder = Arc::new(|r: &Received| {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec();
        let then = |first: Vec<u8>| {
            vec![
                Step::Send(first),
                Step::Sleep(100),
                Step::Send(STOLEN.to_vec()),
            ]
        };
        let with = |first: &[u8]| vec![Step::Send([first, STOLEN].concat())];
        match r.path() {
            "/short" => with(&ok),
            "/short-later" => then(ok),
            "/head" => with(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n"),
            "/head-later" => then(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n".to_vec()),
            "/no-content" => with(b"HTTP/1.1 204 No Content\r\n\r\n"),
            "/no-content-later" => then(b"HTTP/1.1 204 No Content\r\n\r\n".to_vec()),
            "/not-modified-later" => {
                then(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 6\r\n\r\n".to_vec())
            }
            "/close-later" => then(
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".to_vec(),
            ),
            "/old-later" => then(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec()),
            "/chunked-later" => then(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
                    .to_vec(),
            ),
            _ => vec![Step::Send(ok_for(r))],
        }
    });
    let (port, _log) = raw_target(respond).await;
    let kit = kit_forwarding_to(port).await;
    for (method, path) in [
        ("GET", "/short"),
        ("GET", "/short-later"),
        ("HEAD", "/head"),
        ("HEAD", "/head-later"),
        ("GET", "/no-content"),
        ("GET", "/no-content-later"),
        ("GET", "/not-modified-later"),
        ("GET", "/close-later"),
        ("GET", "/old-later"),
        ("GET", "/chunked-later"),
    ] {
        let got = exchange(
            kit.http_port,
            format!("{method} {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await;
        let a = answers(&got, if method == "HEAD" { &[0] } else { &[] });
        assert!(!a.is_empty(), "{path}: {}", text(&got));
        assert_ne!(a[0].body, b"stolen", "{path}");
        // The target's late bytes (100 ms after its answer) arrive; then other clients come.
        tokio::time::sleep(Duration::from_millis(600)).await;
        for i in 0..3 {
            let victim = format!("/victim/{i}");
            let got = exchange(
                kit.http_port,
                format!("GET {victim} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").as_bytes(),
            )
            .await;
            let a = answers(&got, &[]);
            assert_eq!(a.len(), 1, "after {path}: {}", text(&got));
            assert_eq!(
                text(&a[0].body),
                format!("answer for {victim}"),
                "after {path}, another client got: {}",
                text(&got)
            );
        }
    }
    kit.app.shutdown().await;
}

/// Interim answers: `100 Continue` and `103 Early Hints` before the final answer (in one
/// packet or apart) are skipped, not taken as the answer; a 101 nobody asked for is a 502 and
/// does not tunnel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interim_answers_are_skipped_and_an_unasked_101_is_refused() {
    let respond: Responder = Arc::new(|r: &Received| {
        let final_ = ok_for(r);
        match r.path() {
            "/together" => vec![Step::Send(
                [b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n".as_slice(), &final_].concat(),
            )],
            "/apart" => vec![
                Step::Send(b"HTTP/1.1 100 Continue\r\n\r\n".to_vec()),
                Step::Sleep(50),
                Step::Send(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n".to_vec()),
                Step::Sleep(50),
                Step::Send(final_),
            ],
            "/switch" => vec![
                Step::Send(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n".to_vec()),
            ],
            _ => vec![Step::Send(final_)],
        }
    });
    let (port, log) = raw_target(respond).await;
    let kit = kit_forwarding_to(port).await;
    for path in ["/together", "/apart"] {
        let got = exchange(
            kit.http_port,
            format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await;
        let a = answers(&got, &[]);
        assert_eq!(a.len(), 2, "{path}: {}", text(&got));
        assert_eq!(text(&a[0].body), format!("answer for {path}"));
        assert_eq!(text(&a[1].body), "answer for /next");
    }
    // A 101 to a request that asked for no upgrade; bytes after it are never tunnelled.
    let got = exchange_until_quiet(
        kit.http_port,
        format!("GET /switch HTTP/1.1\r\nHost: a\r\n\r\n{SMUGGLED}").as_bytes(),
    )
    .await;
    let a = answers(&got, &[]);
    assert_eq!(a.first().map(Answer::status), Some(502), "{}", text(&got));
    for r in log.lock().unwrap().iter() {
        assert!(r.head.contains("\r\nx-amzn-trace-id: "), "tunnelled: {r:?}");
    }
    kit.app.shutdown().await;
}
