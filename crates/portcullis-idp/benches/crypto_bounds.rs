//! The raw costs that bound the identity provider, measured on the core it runs on: RS256 signing
//! with the pool's own key code (bounds `client_credentials` grants) and argon2id verification at
//! the parameters the pool uses (bounds sign-ins). `bench/idp.sh` divides the HTTP rates by these.

use argon2::Argon2;
use argon2::password_hash::PasswordVerifier;
use portcullis_idp::SqliteStore;
use portcullis_idp::domain::tokens::PoolKeys;
use serde_json::{Map, Value};
use std::time::{Duration, Instant};

fn rate(mut f: impl FnMut(), at_least: Duration) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < at_least {
        f();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = SqliteStore::in_memory().unwrap();
    let keys = rt
        .block_on(PoolKeys::load_or_generate(
            &store,
            "bench",
            Default::default(),
        ))
        .unwrap();
    let mut claims = Map::new();
    for (k, v) in [
        ("sub", "machine"),
        ("token_use", "access"),
        ("scope", "tasks/read tasks/write"),
        ("iss", "http://localhost:9000/us-east-1_Bench"),
        ("client_id", "machine"),
        ("jti", "00000000-0000-0000-0000-000000000000"),
    ] {
        claims.insert(k.into(), Value::from(v));
    }
    claims.insert("exp".into(), Value::from(4_000_000_000u64));
    let rs256 = rate(
        || {
            keys.sign_access(&claims).unwrap();
        },
        Duration::from_secs(2),
    );
    let hash = portcullis_idp::domain::hashing::hash_password("Bench-pass-1!").unwrap();
    let argon = Argon2::default();
    let verify = rate(
        || {
            argon
                .verify_password(b"Bench-pass-1!", hash.as_str())
                .unwrap();
        },
        Duration::from_secs(2),
    );
    println!("rs256_signs_per_sec {rs256:.0}");
    println!("argon2id_verifies_per_sec {verify:.1}");
    println!("argon2id_params m=19456KiB t=2 p=1 (OWASP defaults, argon2 crate 0.6)");
}
