//! The balancer's HTTP/1.1 codec on arbitrary bytes: request heads, response heads and chunked
//! bodies must never panic, and a head that parses has a framing that the body decoder takes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_lb::h1::{Decoded, Decoder, Framing, client, server};

fuzz_target!(|data: &[u8]| {
    let mut buf = bytes::BytesMut::from(data);
    if let Ok(Some((_, framing))) = server::parse_request_head(&mut buf) {
        drain(framing, &mut buf);
    }
    let mut buf = bytes::BytesMut::from(data);
    let _ = client::parse_response_head(&mut buf);
    let mut buf = bytes::BytesMut::from(data);
    drain(Framing::Chunked, &mut buf);
});

fn drain(framing: Framing, buf: &mut bytes::BytesMut) {
    let mut d = Decoder::new(framing);
    for _ in 0..10_000 {
        match d.decode(buf) {
            Ok(Decoded::NeedMore) => {
                let _ = d.eof();
                return;
            }
            Ok(Decoded::Done) | Err(_) => return,
            Ok(_) => {}
        }
    }
}
