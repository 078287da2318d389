//! Request smuggling: odd framings, lengths, trailers and hop-by-hop headers between the client,
//! the balancer and a target.

use super::*;

/// Fixed: trailers of a chunked request reach HTTP/1 targets with names the balancer owns.
/// `upstream::ClientBody` strips `x-amzn-oidc-*` (and the rest of `headers::is_owned`) from
/// trailers, but `Upstreams::send` hands `body.inner` to `h1::client::send`, so for HTTP/1
/// targets the stripping wrapper is bypassed and `h1::client::exchange` writes the client's
/// trailers verbatim. A target (or framework) that merges trailers into headers reads a forged
/// identity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owned_trailers_never_reach_http1_targets() {
    let (port, log) = raw_target(plain_target()).await;
    let kit = kit_forwarding_to(port).await;
    let got = exchange(
        kit.http_port,
        b"POST /open/t HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
          5\r\nhello\r\n0\r\nx-amzn-oidc-identity: admin\r\nX_Amzn_Oidc_Data: forged\r\nx-portcullis-jwt: forged\r\nx-ok: 1\r\n\r\n",
    )
    .await;
    assert!(text(&got).starts_with("HTTP/1.1 200"), "{}", text(&got));
    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), 1, "{log:?}");
    let r = &log[0];
    assert_eq!(r.body, b"hello");
    assert!(
        r.trailers.contains("x-ok: 1"),
        "trailers are passed on: {r:?}"
    );
    for owned in [
        "x-amzn-oidc-identity",
        "x_amzn_oidc_data",
        "x-portcullis-jwt",
    ] {
        assert!(
            !r.trailers.contains(owned),
            "the client's {owned} trailer reached the target: {:?}",
            r.trailers
        );
    }
    kit.app.shutdown().await;
}

/// Fixed: a `Connection` header can name headers the balancer sets before it strips
/// hop-by-hop ones: `Host` (which the rules routed on) and `X-Amzn-Trace-Id`.
/// `proxy::forward::upstream_request` calls `headers::set_trace_id` and reads nothing of `Host`
/// until after `headers::strip_hop_by_hop`, which removes every header `Connection` names. The
/// target then gets no `Host` at all (the rules routed on one; a name-based target serves its
/// default host) and no trace id. The balancer's own headers should be set after the strip, or
/// be immune to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_cannot_remove_host_or_the_trace_id() {
    let (port, log) = raw_target(plain_target()).await;
    let kit = kit_forwarding_to(port).await;
    let got = exchange(
        kit.http_port,
        b"GET /open/c HTTP/1.1\r\nHost: a.example\r\nConnection: close, Host, X-Amzn-Trace-Id, X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Port\r\n\r\n",
    )
    .await;
    assert!(text(&got).starts_with("HTTP/1.1 200"), "{}", text(&got));
    let log = log.lock().unwrap().clone();
    let head = &log[0].head;
    for h in [
        "host:",
        "x-amzn-trace-id:",
        "x-forwarded-for:",
        "x-forwarded-proto:",
        "x-forwarded-port:",
    ] {
        assert!(
            head.split("\r\n").any(|l| l.starts_with(h)),
            "the target got no {h} header:\n{head}"
        );
    }
    kit.app.shutdown().await;
}

/// Request smuggling: every odd framing is either refused with 400 before anything reaches the
/// target, or forwarded so that the target (a strict reader) frames it exactly as the balancer
/// did: every request head it reads is one the balancer wrote (it carries the trace id and
/// `X-Forwarded-For`), and it never meets a framing error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_framings_are_refused_or_forwarded_unambiguously() {
    let (port, log) = raw_target(plain_target()).await;
    let kit = kit_forwarding_to(port).await;
    let chunk_of_smuggled = format!("{:x}\r\n{SMUGGLED}\r\n0\r\n\r\n", SMUGGLED.len());
    // (what, head lines after the request line, body and what follows, refused with 400)
    let cases: Vec<(&str, String, String, bool)> = vec![
        (
            "CL.TE",
            "Content-Length: 60\r\nTransfer-Encoding: chunked".into(),
            format!("0\r\n\r\n{SMUGGLED}"),
            false,
        ),
        (
            "TE.CL",
            "Content-Length: 4\r\nTransfer-Encoding: chunked".into(),
            chunk_of_smuggled.clone(),
            false,
        ),
        (
            "TE in odd case",
            "Transfer-Encoding: cHuNkEd".into(),
            chunk_of_smuggled.clone(),
            false,
        ),
        (
            "TE with tabs",
            "Transfer-Encoding:\tchunked\t".into(),
            chunk_of_smuggled.clone(),
            false,
        ),
        (
            "TE xchunked",
            "Content-Length: 5\r\nTransfer-Encoding: xchunked".into(),
            format!("0\r\n\r\n{SMUGGLED}"),
            true,
        ),
        (
            "TE space before colon",
            "Content-Length: 5\r\nTransfer-Encoding : chunked".into(),
            format!("0\r\n\r\n{SMUGGLED}"),
            true,
        ),
        (
            "TE tab before colon",
            "Content-Length: 5\r\nTransfer-Encoding\t: chunked".into(),
            format!("0\r\n\r\n{SMUGGLED}"),
            true,
        ),
        (
            "TE twice",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked".into(),
            chunk_of_smuggled.clone(),
            true,
        ),
        (
            "TE chunked, identity",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity".into(),
            chunk_of_smuggled.clone(),
            true,
        ),
        (
            "TE chunked, chunked",
            "Transfer-Encoding: chunked, chunked".into(),
            chunk_of_smuggled.clone(),
            true,
        ),
        (
            "TE quoted",
            "Content-Length: 5\r\nTransfer-Encoding: \"chunked\"".into(),
            format!("0\r\n\r\n{SMUGGLED}"),
            true,
        ),
        (
            "TE identity",
            "Transfer-Encoding: identity".into(),
            format!("0\r\n\r\n{SMUGGLED}"),
            true,
        ),
        (
            "TE obs-fold",
            "Content-Length: 5\r\nX-Pad: 1\r\n Transfer-Encoding: chunked".into(),
            format!("0\r\n\r\n{SMUGGLED}"),
            true,
        ),
        (
            "TE obs-fold value",
            "Content-Length: 5\r\nTransfer-Encoding:\r\n chunked".into(),
            format!("0\r\n\r\n{SMUGGLED}"),
            true,
        ),
        (
            "TE vertical tab",
            "Content-Length: 5\r\nTransfer-Encoding:\x0bchunked".into(),
            format!("0\r\n\r\n{SMUGGLED}"),
            true,
        ),
        (
            "TE NUL",
            "Content-Length: 5\r\nTransfer-Encoding: chunked\x00".into(),
            format!("0\r\n\r\n{SMUGGLED}"),
            true,
        ),
        (
            "TE bare CR",
            "Content-Length: 5\r\nX: 1\rTransfer-Encoding: chunked".into(),
            format!("0\r\n\r\n{SMUGGLED}"),
            true,
        ),
        (
            "TE name with NUL",
            "Content-Length: 5\r\nTransfer-Encoding\x00: chunked".into(),
            format!("0\r\n\r\n{SMUGGLED}"),
            true,
        ),
        (
            "two lengths",
            "Content-Length: 0\r\nContent-Length: 51".into(),
            SMUGGLED.into(),
            true,
        ),
        (
            "a length list that differs",
            "Content-Length: 0, 51".into(),
            SMUGGLED.into(),
            true,
        ),
        (
            "a signed length",
            "Content-Length: +51".into(),
            SMUGGLED.into(),
            true,
        ),
        (
            "a negative length",
            "Content-Length: -1".into(),
            SMUGGLED.into(),
            true,
        ),
        (
            "a hex length",
            "Content-Length: 0x33".into(),
            SMUGGLED.into(),
            true,
        ),
        (
            "a length with a space",
            "Content-Length: 5 1".into(),
            SMUGGLED.into(),
            true,
        ),
        (
            "a 20-digit length",
            "Content-Length: 18446744073709551616".into(),
            SMUGGLED.into(),
            true,
        ),
        (
            "a length with a vertical tab",
            "Content-Length:\x0b51".into(),
            SMUGGLED.into(),
            true,
        ),
        (
            "a length obs-folded",
            "Content-Length:\r\n 51".into(),
            SMUGGLED.into(),
            true,
        ),
        (
            "a length with a space in its name",
            "Content Length: 51".into(),
            SMUGGLED.into(),
            true,
        ),
        (
            "a body on GET",
            "Content-Length: 5".into(),
            format!("hello{SMUGGLED}"),
            false,
        ),
        (
            "a length with leading zeros",
            "Content-Length: 005".into(),
            format!("hello{SMUGGLED}"),
            false,
        ),
        (
            "Expect with a length",
            "Expect: 100-continue\r\nContent-Length: 5".into(),
            format!("hello{SMUGGLED}"),
            false,
        ),
        (
            "a chunk extension",
            "Transfer-Encoding: chunked".into(),
            format!("5;a=b;c=\"d\"\r\nhello\r\n0\r\n\r\n{SMUGGLED}"),
            false,
        ),
        (
            "trailers",
            "Transfer-Encoding: chunked".into(),
            format!("5\r\nhello\r\n0\r\nX-T: 1\r\nContent-Length: 51\r\n\r\n{SMUGGLED}"),
            false,
        ),
    ];
    let mut refusals = 0;
    for (what, lines, rest, refused) in &cases {
        let before = log.lock().unwrap().len();
        let request = format!("POST /open/case HTTP/1.1\r\nHost: a\r\n{lines}\r\n\r\n{rest}");
        let got = exchange_until_quiet(kit.http_port, request.as_bytes()).await;
        let got = text(&got);
        let got = got
            .strip_prefix("HTTP/1.1 100 Continue\r\n\r\n")
            .unwrap_or(&got);
        if *refused {
            refusals += 1;
            assert!(got.starts_with("HTTP/1.1 400 "), "{what}: {got}");
            assert!(got.contains("onnection: close"), "{what}: {got}");
            assert_eq!(
                log.lock().unwrap().len(),
                before,
                "{what}: reached the target"
            );
        } else {
            assert!(got.starts_with("HTTP/1.1 200 "), "{what}: {got}");
        }
    }
    // HTTP/1.0 with chunked, and bare LF line ends.
    let got = exchange_until_quiet(
        kit.http_port,
        format!("POST /open/old HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n{chunk_of_smuggled}").as_bytes(),
    )
    .await;
    assert!(text(&got).starts_with("HTTP/1.1 400 "), "{}", text(&got));
    let got = exchange_until_quiet(
        kit.http_port,
        format!("POST /open/lf HTTP/1.1\nHost: a\nContent-Length: 5\n\nhello{SMUGGLED}").as_bytes(),
    )
    .await;
    assert!(text(&got).starts_with("HTTP/1.1 "), "{}", text(&got));
    assert!(refusals > 20);
    let log = log.lock().unwrap().clone();
    assert!(!log.is_empty());
    for r in &log {
        assert_eq!(r.error, None, "the target met a framing error: {r:?}");
        assert!(
            r.head.contains("\r\nx-amzn-trace-id: ") && r.head.contains("\r\nx-forwarded-for: "),
            "a head the balancer did not write reached the target: {r:?}"
        );
    }
    // The bodies are what the balancer framed.
    assert!(
        log.iter().any(|r| r.body == SMUGGLED.as_bytes()),
        "TE.CL body"
    );
    assert!(
        log.iter()
            .any(|r| r.body == b"hello" && r.head.starts_with("post /open/case"))
    );
    kit.app.shutdown().await;
}

/// Fixed (RFC 9110 §8.6 / RFC 7230 §3.3.2): a request whose length is a list of one value
/// (`Content-Length: 5, 5`) or a repeated field is accepted, but not normalised before it is
/// forwarded: the target gets `content-length: 5` written by `h1::client::encode_head` (which
/// could not parse `5, 5` and took the body's size) and the client's `content-length: 5, 5`
/// as well, or the client's two fields. The RFC lets a recipient accept such a length only if
/// it replaces it with a single field before forwarding; targets on llhttp (Node) refuse
/// duplicated lengths, so a request the balancer accepted becomes a 400/502.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_length_list_reaches_the_target_as_one_length() {
    let (port, log) = raw_target(plain_target()).await;
    let kit = kit_forwarding_to(port).await;
    for lines in [
        "Content-Length: 5, 5",
        "Content-Length: 5\r\nContent-Length: 5",
    ] {
        let got = exchange(
            kit.http_port,
            format!(
                "POST /open/len HTTP/1.1\r\nHost: a\r\n{lines}\r\nConnection: close\r\n\r\nhello"
            )
            .as_bytes(),
        )
        .await;
        let r = log.lock().unwrap().last().cloned().unwrap();
        let lengths = values(&r.head, "content-length");
        assert_eq!(
            lengths,
            ["5"],
            "{lines:?} reached the target as:\n{}",
            r.head
        );
        assert!(
            text(&got).starts_with("HTTP/1.1 200 "),
            "{lines:?}: {}",
            text(&got)
        );
    }
    kit.app.shutdown().await;
}

/// Fixed: a malformed chunked request body (the client's fault) is answered 504 after the
/// whole idle timeout (60 s by default), blamed on the target and counted against it. On a
/// decoding error `h1::server::client_side` hands the proxy an error frame;
/// `h1::client::exchange` fails (`later`) and `h1::client::send` then waits in `read_answer`
/// for an answer from a target that is still waiting for the rest of the body (or, when the
/// first chunk was the bad one, has not even been sent the head, which `exchange` holds back
/// until the first data). `upstream::Upstreams::send` times out with `TargetTimeout`, and
/// `forward::to_target` records the failure in the target's `outcomes`, which anomaly
/// mitigation reads: any client can make a healthy target look failing and hold a target
/// connection per request. Expected: 400 at once (ALB's answer to a malformed body), the
/// target connection dropped, nothing counted against the target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_chunked_body_is_the_clients_400_not_the_targets_fault() {
    let (port, _log) = raw_target(plain_target()).await;
    // A short idle timeout keeps the test short; the default is 60 s.
    let kit = kit_forwarding_to_with(port, "idle_timeout_seconds = 2").await;
    for body in [
        "5\r\nhelloXX0\r\n\r\n",
        "10000000000000005\r\nhello\r\n0\r\n\r\n",
        "5\nhello\r\n0\r\n\r\n",
    ] {
        let got = exchange(
            kit.http_port,
            format!(
                "POST /open/bad HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n{body}"
            )
            .as_bytes(),
        )
        .await;
        let status = answers(&got, &[]).first().map(Answer::status);
        assert_eq!(status, Some(400), "{body:?}: {}", text(&got));
    }
    kit.app.shutdown().await;
}

/// Many tiny chunks (and chunk extensions on each) reach the target as the same body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_small_chunks_arrive_whole() {
    let (port, log) = raw_target(plain_target()).await;
    let kit = kit_forwarding_to(port).await;
    let mut body = Vec::new();
    let mut want = Vec::new();
    for i in 0..20_000u32 {
        let c = b'a' + (i % 26) as u8;
        want.push(c);
        body.extend_from_slice(b"1;ext=v\r\n");
        body.push(c);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let mut request =
        b"POST /open/tiny HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    request.extend_from_slice(&body);
    let got = exchange(kit.http_port, &request).await;
    assert!(
        text(&got).ends_with("answer for /open/tiny"),
        "{}",
        text(&got)
    );
    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].error, None);
    assert!(log[0].body == want, "the body changed on the way");
    kit.app.shutdown().await;
}
