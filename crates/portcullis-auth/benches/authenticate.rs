//! Nanoseconds per `Authenticator::authenticate` for a signed-in request, small claims against
//! ~10.5 KB claims (the cache-hit path every request after the first takes); then the same with
//! 100,000 revoked sessions in the revocation set, and the set's lookup alone.
//!
//! `cargo bench -p portcullis-auth --bench authenticate [-- <iterations>]`

use portcullis_auth::fixture;
use portcullis_auth::keys::{AuthKeys, KeyRing, MacKey};
use portcullis_auth::session_cookie::{self, Session};
use portcullis_auth::{Authenticator, Outcome};
use portcullis_config::OnUnauthenticated;
use std::future::Future;
use std::hint::black_box;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

const COOKIE: &str = fixture::COOKIE;

/// A session like the benchmark's users: `extra` is (attribute length, fill) pairs.
fn session(extra: &[(usize, char)]) -> Session {
    let mut claims = serde_json::Map::new();
    claims.insert("sub".into(), "5f3a1c2e-8b7d-4e6f-9a0b-1c2d3e4f5a6b".into());
    claims.insert("email_verified".into(), "true".into());
    claims.insert("email".into(), "c11@example.com".into());
    claims.insert("username".into(), "claims11k".into());
    for (i, (len, fill)) in extra.iter().enumerate() {
        claims.insert(
            format!("custom:a{}", i + 1),
            fill.to_string().repeat(*len).into(),
        );
    }
    let now = portcullis_core::now();
    Session {
        sub: "5f3a1c2e-8b7d-4e6f-9a0b-1c2d3e4f5a6b".into(),
        claims,
        // About the size of a Cognito access token.
        access_token: format!(
            "eyJraWQiOiJrMSIsImFsZyI6IlJTMjU2In0.{}.{}",
            "a".repeat(700),
            "s".repeat(342)
        ),
        access_exp: now + 3600,
        refresh_token: Some("r".repeat(40)),
        session_exp: now + 86_400,
        binding: "https://idp.example/pool|client1".into(),
        id_token: None,
        sid: Some("2d1c8a7e-0b5f-4c3d-9e8f-7a6b5c4d3e2f".into()),
        began: now - 60,
    }
}

fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

fn main() {
    let iterations: u32 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200_000);
    let raw = [7u8; 32];
    let keys = AuthKeys::ephemeral();
    let auth = Authenticator::new(
        AuthKeys {
            ring: KeyRing::new(vec![(1, raw)]),
            mac: MacKey::new(&[9; 32]),
            claims: keys.claims,
            retired: Vec::new(),
        },
        "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/bench/1".into(),
    );
    let sealer = KeyRing::new(vec![(1, raw)]);
    let action = fixture::action(fixture::session_settings(OnUnauthenticated::Authenticate));
    let cases: [(&str, Vec<(usize, char)>); 2] = [
        ("small claims", Vec::new()),
        (
            "~10.5 KB claims",
            vec![
                (2000, 'x'),
                (2000, 'y'),
                (2000, 'z'),
                (2000, 'w'),
                (1000, 'v'),
            ],
        ),
    ];
    let revoked = 100_000u32;
    for (round, (label, extra)) in cases
        .iter()
        .chain(std::iter::once(&("small, 100k revoked", Vec::new())))
        .enumerate()
    {
        if round == 2 {
            let now = portcullis_core::now();
            for i in 0..revoked {
                let sid = format!("revoked-session-{i:08}");
                let sub = format!("revoked-user-{i:08}");
                let (sid, sub) = (Some(sid.as_str()), sub.as_str());
                let sid = if i % 2 == 0 { sid } else { None };
                auth.revocations().end(fixture::ISSUER, sid, sub, now, now);
            }
        }
        let extra = extra.clone();
        let shards = session_cookie::seal(&sealer, COOKIE, &session(&extra)).expect("seal");
        let cookie = shards
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{COOKIE}-{i}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let parts = http::Request::builder()
            .uri("/tasks")
            .header("host", "app.example")
            .header("cookie", format!("other=1; {cookie}"))
            .body(())
            .expect("request")
            .into_parts()
            .0;
        // The first call signs the header and fills the cache, as a session's first request does.
        let first = Instant::now();
        match block_on(auth.authenticate(&action, &parts)) {
            Outcome::Forward {
                authenticated: true,
                ..
            } => {}
            other => panic!("{label}: not forwarded: {other:?}"),
        }
        let first = first.elapsed();
        for _ in 0..iterations / 10 {
            black_box(block_on(auth.authenticate(&action, black_box(&parts))));
        }
        let t = Instant::now();
        for _ in 0..iterations {
            black_box(block_on(auth.authenticate(&action, black_box(&parts))));
        }
        let per = t.elapsed().as_nanos() / u128::from(iterations);
        println!(
            "{label:>16}: cookie {:>5} bytes in {} shard(s), first request {:>6} ns, then {per:>6} ns per call",
            cookie.len(),
            shards.len(),
            first.as_nanos()
        );
    }
    // The lookup alone: a session that is not revoked, against the full set and an empty one.
    let probe = portcullis_auth::revocation::SessionRef {
        issuer: fixture::ISSUER,
        sid: Some("2d1c8a7e-0b5f-4c3d-9e8f-7a6b5c4d3e2f"),
        sub: "5f3a1c2e-8b7d-4e6f-9a0b-1c2d3e4f5a6b",
        began: portcullis_core::now() - 60,
    };
    let empty = portcullis_auth::revocation::RevocationSet::default();
    for (label, set) in [
        ("empty set", &empty),
        ("100k revoked", &**auth.revocations()),
    ] {
        let t = Instant::now();
        for _ in 0..iterations {
            black_box(set.is_revoked(black_box(&probe)));
        }
        let per = t.elapsed().as_nanos() / u128::from(iterations);
        println!("{:>16}: revocation lookup {per:>6} ns", label);
    }
}
