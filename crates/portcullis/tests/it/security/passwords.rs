//! Guessing passwords and flooding the hashing (issue 10, items 3 and 5): the lockout holds under
//! any concurrency, on one node and on two sharing PostgreSQL; the argon2 queue is bounded and
//! sheds fast; every secret check is rate-limited per address and per user; hashing memory is
//! one block per worker. Time is the pool's clock, stopped and moved by the tests.

use crate::kit::{self, Kit, PASSWORD, PoolApi};
use portcullis_idp::domain::accounts::SignInError;
use serde_json::{Value, json};
use std::sync::Arc;

/// Limits high enough to stay out of the way of the lockout tests.
const NO_LIMITS: &str = "rate_limits = { per_ip = { burst = 10000, per_minute = 60000 }, per_user = { burst = 10000, per_minute = 60000 }, hash_queue = 1000 }";

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// One call of the user-pool API: (HTTP status, body).
async fn api(http: &reqwest::Client, kit: &Kit, op: &str, body: Value) -> (u16, Value) {
    PoolApi::with(&kit.pool_url, http.clone())
        .call_any(op, body)
        .await
}

fn password_auth(user: &str, password: &str) -> Value {
    json!({"ClientId": "api-cli", "AuthFlow": "USER_PASSWORD_AUTH",
           "AuthParameters": {"USERNAME": user, "PASSWORD": password}})
}

/// The hosted sign-in page of the pool itself.
fn login_url(kit: &Kit) -> String {
    format!(
        "{}/login?client_id=tasks-web&response_type=code&scope=openid&redirect_uri=https%3A%2F%2Flocalhost%3A{}%2Foauth2%2Fidpresponse",
        kit.pool_url, kit.lb_port
    )
}

fn metric(text: &str, name: &str, labels: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && l.contains(labels))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_wrong_passwords_are_checked_at_most_as_often_as_the_lockout_allows() {
    let kit = Kit::builder().pool(NO_LIMITS).start().await;
    let pool = kit.pool().clone();
    let t0 = now_ms();
    pool.clock().set_ms(Some(t0));
    let http = reqwest::Client::new();
    let before = pool.hasher.verifications();
    let guesses: Vec<_> = (0..100)
        .map(|i| {
            let (http, body) = (http.clone(), password_auth("alice", &format!("Wrong-{i}!")));
            let url = kit.pool_url.clone();
            tokio::spawn(async move {
                PoolApi::with(&url, http)
                    .send("InitiateAuth", &body)
                    .await
                    .json::<Value>()
                    .await
                    .unwrap()
            })
        })
        .collect();
    for g in guesses {
        let v = g.await.unwrap();
        assert!(
            ["NotAuthorizedException", "TooManyRequestsException"]
                .contains(&v["__type"].as_str().unwrap_or("")),
            "{v}"
        );
    }
    // Cognito locks after the fifth failure: at most five passwords were ever hashed.
    let checked = pool.hasher.verifications() - before;
    assert!(
        (1..=5).contains(&checked),
        "{checked} of 100 concurrent guesses were checked"
    );
    // Keep guessing one at a time until locked; still at most five checks in all.
    let mut locked = false;
    for i in 0..6 {
        let (_, v) = api(
            &http,
            &kit,
            "InitiateAuth",
            password_auth("alice", &format!("Again-{i}!")),
        )
        .await;
        if v["message"] == "Password attempts exceeded" {
            locked = true;
            break;
        }
    }
    assert!(locked, "alice was never locked");
    assert!(pool.hasher.verifications() - before <= 5);
    // Locked: the right password is refused, and not even checked.
    let checks = pool.hasher.verifications();
    let (_, v) = api(
        &http,
        &kit,
        "InitiateAuth",
        password_auth("alice", PASSWORD),
    )
    .await;
    assert_eq!(v["__type"], "NotAuthorizedException", "{v}");
    assert_eq!(v["message"], "Password attempts exceeded", "{v}");
    let client = kit::browser();
    let (status, page) = kit::submit_sign_in(&client, &login_url(&kit), "alice", PASSWORD).await;
    assert_eq!(status, 401, "{page}");
    assert_eq!(
        pool.hasher.verifications(),
        checks,
        "a locked password was checked"
    );
    // When the lock ends, the right password works (and clears the failures).
    pool.clock().advance_ms(1000 * 60);
    let (_, v) = api(
        &http,
        &kit,
        "InitiateAuth",
        password_auth("alice", PASSWORD),
    )
    .await;
    assert!(v["AuthenticationResult"]["AccessToken"].is_string(), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_users_are_locked_like_known_ones() {
    let kit = Kit::builder().pool(NO_LIMITS).start().await;
    kit.pool().clock().set_ms(Some(now_ms()));
    let http = reqwest::Client::new();
    let mut answers = Vec::new();
    for user in ["alice", "nobody-here"] {
        let mut seq = Vec::new();
        for i in 0..7 {
            let (_, v) = api(
                &http,
                &kit,
                "InitiateAuth",
                password_auth(user, &format!("Wrong-{i}!")),
            )
            .await;
            seq.push(v["message"].as_str().unwrap_or("").to_string());
        }
        answers.push(seq);
    }
    assert_eq!(answers[0], answers[1], "the lockout reveals who exists");
    assert_eq!(answers[0][5], "Password attempts exceeded");
}

/// Two pools on one PostgreSQL database: two nodes, each with its own connections and in-flight
/// marks, sharing the store's reservation.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_lockout_holds_across_two_nodes_on_postgres() {
    let db = format!("portcullis_pw_{}_{}", std::process::id(), now_ms());
    let (c, conn) = tokio_postgres::connect(
        "host=127.0.0.1 port=5432 user=root dbname=postgres",
        tokio_postgres::NoTls,
    )
    .await
    .expect("PostgreSQL on 127.0.0.1:5432");
    tokio::spawn(conn);
    c.batch_execute(&format!("CREATE DATABASE {db}"))
        .await
        .unwrap();
    let url = format!("postgres://root@127.0.0.1:5432/{db}");
    let text = format!(
        r#"
[load_balancer]
name = "nodes"
state_dir = "/tmp/unused"

[[user_pools]]
name = "shared"
id = "us-east-1_PwNodes12"
domain = {{ listen = "127.0.0.1:0", base_url = "http://localhost:1" }}
{NO_LIMITS}
users = [{{ username = "bob", password = "{PASSWORD}" }}]
"#
    );
    let loaded = portcullis_config::load_str(
        &text,
        std::path::Path::new("nodes.toml"),
        std::path::Path::new("."),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let cfg = loaded.config.user_pools[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let t0 = now_ms();
    let mut nodes = Vec::new();
    for _ in 0..2 {
        let store = portcullis_idp::store::open(Some(&url), dir.path())
            .await
            .unwrap();
        let pool =
            portcullis_idp::Pool::open(&cfg, "us-east-1", store, Default::default(), dir.path())
                .await
                .unwrap();
        pool.seed_users(&cfg, |u| Ok::<_, String>(u.password.clone().unwrap()))
            .await
            .unwrap();
        pool.clock().set_ms(Some(t0));
        nodes.push(Arc::new(pool));
    }
    let guesses: Vec<_> = (0..100)
        .map(|i| {
            let node = nodes[i % 2].clone();
            tokio::spawn(async move { node.sign_in("bob", &format!("Wrong-{i}!")).await })
        })
        .collect();
    for g in guesses {
        let e = g.await.unwrap().unwrap_err();
        assert!(!matches!(e, SignInError::Internal), "{e:?}");
    }
    let checked: u64 = nodes.iter().map(|n| n.hasher.verifications()).sum();
    assert!((1..=5).contains(&checked), "{checked} checks on two nodes");
    for i in 0..6 {
        if matches!(
            nodes[i % 2].sign_in("bob", "Still-wrong-1!").await,
            Err(SignInError::Locked)
        ) {
            break;
        }
    }
    let checked: u64 = nodes.iter().map(|n| n.hasher.verifications()).sum();
    assert!(checked <= 5, "{checked} checks on two nodes");
    for n in &nodes {
        assert!(matches!(
            n.sign_in("bob", PASSWORD).await,
            Err(SignInError::Locked)
        ));
    }
    assert_eq!(
        nodes.iter().map(|n| n.hasher.verifications()).sum::<u64>(),
        checked
    );
    // Rate-limit buckets are shared the same way: a burst of 3 over both nodes.
    let a = portcullis_idp::store::open(Some(&url), dir.path())
        .await
        .unwrap();
    let b = portcullis_idp::store::open(Some(&url), dir.path())
        .await
        .unwrap();
    let t = now_ms();
    let mut taken = Vec::new();
    for s in [&a, &b, &a, &b] {
        taken.push(s.take_token("p", "user:bob", t, 60_000, 3).await.unwrap());
    }
    assert_eq!(taken, [true, true, true, false]);
    assert!(
        b.take_token("p", "user:bob", t + 60_000, 60_000, 3)
            .await
            .unwrap()
    );
    drop(nodes);
    let _ = c
        .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_unknown_users_is_shed_fast_and_real_users_still_sign_in() {
    let kit = Kit::builder().pool("rate_limits = { per_ip = { burst = 10000, per_minute = 60000 }, hash_workers = 1, hash_queue = 2 }").start()
    .await;
    let pool = kit.pool().clone();
    let http = reqwest::Client::new();
    let flood: Vec<_> = (0..60)
        .map(|i| {
            let (http, url) = (http.clone(), kit.pool_url.clone());
            let body = password_auth(&format!("ghost-{i}"), "Wrong-pass-1!");
            tokio::spawn(async move {
                let r = PoolApi::with(&url, http).send("InitiateAuth", &body).await;
                (r.status().as_u16(), r.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let mut shed = 0;
    for f in flood {
        let (status, v) = f.await.unwrap();
        assert_eq!(status, 400, "{v}");
        match v["__type"].as_str() {
            Some("TooManyRequestsException") => shed += 1,
            Some("NotAuthorizedException") => {}
            _ => panic!("{v}"),
        }
    }
    assert!(shed > 0, "nothing was shed");
    // While the queue is full (held here), every password form and API call is refused at once.
    let held: Vec<_> = (0..3).map(|_| pool.hasher.admit().unwrap()).collect();
    let (_, v) = api(
        &http,
        &kit,
        "InitiateAuth",
        password_auth("alice", PASSWORD),
    )
    .await;
    assert_eq!(v["__type"], "TooManyRequestsException", "{v}");
    let client = kit::browser();
    let (status, _) = kit::submit_sign_in(&client, &login_url(&kit), "alice", PASSWORD).await;
    assert_eq!(status, 503);
    drop(held);
    // The real user signs in after the flood.
    let (_, v) = api(
        &http,
        &kit,
        "InitiateAuth",
        password_auth("alice", PASSWORD),
    )
    .await;
    assert!(v["AuthenticationResult"]["AccessToken"].is_string(), "{v}");
    let (status, _) = kit::submit_sign_in(&client, &login_url(&kit), "alice", PASSWORD).await;
    assert_eq!(status, 302);
    let m = kit.metrics().await;
    assert!(
        metric(&m, "portcullis_idp_shed_total", "pool=\"test\"") >= (shed + 2) as f64,
        "{m}"
    );
    assert!(
        metric(
            &m,
            "portcullis_idp_password_verifications_total",
            "pool=\"test\""
        ) >= 2.0
    );
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hashing_memory_is_one_block_per_worker_whatever_the_load() {
    // RSS is the whole process's: measured in a test process of its own, so that the servers other
    // tests start meanwhile are not counted.
    if std::env::var_os("PORTCULLIS_RSS_ALONE").is_none() {
        // The test's path inside the binary (`security::passwords::…`), without the crate's name.
        let module = module_path!().split_once("::").map_or("", |(_, m)| m);
        let name = format!("{module}::hashing_memory_is_one_block_per_worker_whatever_the_load");
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", &name, "--test-threads=1"])
                .env("PORTCULLIS_RSS_ALONE", "1")
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    // Everyone queues (no shedding): 400 unknown-user sign-ins are all hashed.
    let kit = Kit::builder().pool("rate_limits = { per_ip = { burst = 10000, per_minute = 60000 }, hash_workers = 2, hash_queue = 1000 }").start()
    .await;
    let pool = kit.pool().clone();
    let before = rss_kib();
    let flood: Vec<_> = (0..400)
        .map(|i| {
            let pool = pool.clone();
            tokio::spawn(async move { pool.sign_in(&format!("ghost-{i}"), "Wrong-pass-1!").await })
        })
        .collect();
    for f in flood {
        assert!(f.await.unwrap().is_err());
    }
    assert_eq!(pool.hasher.verifications(), 400);
    assert!(
        pool.hasher.allocated_blocks() <= 2,
        "{}",
        pool.hasher.allocated_blocks()
    );
    let held = rss_kib();
    let grown = held.saturating_sub(before) / 1024;
    assert!(grown < 120, "RSS grew by {grown} MiB for 400 hashes");
    // Unused for the idle time, the blocks go back to the operating system (each is a mapping of
    // its own, whatever glibc's malloc did with the blocks freed before it).
    let blocks = pool.hasher.allocated_blocks() as u64;
    pool.advance_clock(portcullis_idp::domain::hashing::IDLE_RELEASE_MS / 1000);
    pool.hasher.release_idle();
    assert_eq!(pool.hasher.allocated_blocks(), 0);
    let freed = held.saturating_sub(rss_kib()) / 1024;
    assert!(
        freed >= 15 * blocks,
        "{freed} MiB came back from {blocks} blocks of 19 MiB"
    );
    // And the next sign-in allocates one again.
    assert!(pool.sign_in("ghost-again", "Wrong-pass-1!").await.is_err());
    assert_eq!(pool.hasher.allocated_blocks(), 1);
}

#[tokio::test]
async fn secret_checks_are_rate_limited_per_user_and_per_address() {
    let kit = Kit::builder().pool("rate_limits = { per_ip = { burst = 9, per_minute = 1 }, per_user = { burst = 3, per_minute = 1 } }").start()
    .await;
    let pool = kit.pool().clone();
    pool.clock().set_ms(Some(now_ms()));
    let http = reqwest::Client::new();
    let confirm = |user: &str| json!({"ClientId": "api-cli", "Username": user, "ConfirmationCode": "000000", "Password": "New-pass-123!"});
    // Three code guesses for one user, known or not, then refused before the code is looked at.
    for user in ["alice", "nobody"] {
        for _ in 0..3 {
            let (_, v) = api(&http, &kit, "ConfirmForgotPassword", confirm(user)).await;
            assert_ne!(v["__type"], "TooManyRequestsException", "{v}");
        }
        let (status, v) = api(&http, &kit, "ConfirmForgotPassword", confirm(user)).await;
        assert_eq!(
            (status, v["__type"].as_str()),
            (400, Some("TooManyRequestsException")),
            "{v}"
        );
    }
    // Other users from the same address: the address's bucket (9) runs out too.
    let (_, v) = api(
        &http,
        &kit,
        "ConfirmSignUp",
        json!({"ClientId": "api-cli", "Username": "carol", "ConfirmationCode": "1"}),
    )
    .await;
    assert_ne!(v["__type"], "TooManyRequestsException", "{v}");
    let (_, v) = api(&http, &kit, "InitiateAuth", password_auth("dave", "x")).await;
    assert_eq!(v["__type"], "TooManyRequestsException", "{v}");
    let client = kit::browser();
    let (status, _) = kit::submit_sign_in(&client, &login_url(&kit), "erin", "x").await;
    assert_eq!(status, 429);
    // A minute later, one more of each.
    pool.clock().advance_ms(60_000);
    let (_, v) = api(&http, &kit, "ConfirmForgotPassword", confirm("alice")).await;
    assert_ne!(v["__type"], "TooManyRequestsException", "{v}");
    let m = kit.metrics().await;
    assert!(
        metric(
            &m,
            "portcullis_idp_rate_limited_total",
            "limit=\"per_user\""
        ) >= 2.0,
        "{m}"
    );
    assert!(
        metric(&m, "portcullis_idp_rate_limited_total", "limit=\"per_ip\"") >= 2.0,
        "{m}"
    );
}

#[tokio::test]
async fn failed_client_secrets_and_signatures_are_rate_limited() {
    let kit = Kit::builder()
        .pool("rate_limits = { failed_client_auth = { burst = 3, per_minute = 1 } }")
        .start()
        .await;
    let pool = kit.pool().clone();
    pool.clock().set_ms(Some(now_ms()));
    let secret = pool.client_secret("machine").unwrap();
    let http = reqwest::Client::new();
    let token = |s: &str| {
        http.post(format!("{}/oauth2/token", kit.pool_url))
            .basic_auth("machine", Some(s))
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    assert_eq!(token(&secret).await.unwrap().status(), 200);
    for _ in 0..3 {
        assert_eq!(token("wrong").await.unwrap().status(), 401);
    }
    // Refused before the comparison: even the right secret waits.
    assert_eq!(token(&secret).await.unwrap().status(), 429);
    pool.clock().advance_ms(60_000);
    assert_eq!(token(&secret).await.unwrap().status(), 200);
    // Admin API signatures: failures are counted per address (the same bucket as the client
    // secrets', refilled here) and per key.
    pool.clock().advance_ms(180_000);
    let bad = |http: &reqwest::Client| {
        http.post(format!("{}/", kit.pool_url))
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", "AWSCognitoIdentityProviderService.AdminGetUser")
            .header("x-amz-date", "20260101T000000Z")
            .header(
                "authorization",
                format!("AWS4-HMAC-SHA256 Credential={}/20260101/us-east-1/cognito-idp/aws4_request, SignedHeaders=host;x-amz-date, Signature={}", kit::ACCESS_KEY_ID, "0".repeat(64)),
            )
            .body(r#"{"UserPoolId":"us-east-1_Kit12345","Username":"alice"}"#)
            .send()
    };
    let mut types = Vec::new();
    for _ in 0..4 {
        let v: Value = bad(&http).await.unwrap().json().await.unwrap();
        types.push(v["__type"].as_str().unwrap_or("").to_string());
    }
    assert!(
        types[..3].iter().all(|t| t != "TooManyRequestsException"),
        "{types:?}"
    );
    assert_eq!(types[3], "TooManyRequestsException");
}

#[tokio::test]
async fn a_forged_forwarded_for_does_not_buy_new_buckets_unless_the_proxy_is_trusted() {
    for (trusted, second_allowed) in [("", false), (", trusted_proxies = [\"127.0.0.0/8\"]", true)]
    {
        let kit = Kit::builder()
            .pool(&format!(
                "rate_limits = {{ per_ip = {{ burst = 1, per_minute = 1 }}{trusted} }}"
            ))
            .start()
            .await;
        kit.pool().clock().set_ms(Some(now_ms()));
        let http = reqwest::Client::new();
        let mut answers = Vec::new();
        for (i, from) in ["203.0.113.1", "203.0.113.2"].into_iter().enumerate() {
            let r = http
                .post(format!("{}/", kit.pool_url))
                .header("content-type", "application/x-amz-json-1.1")
                .header(
                    "x-amz-target",
                    "AWSCognitoIdentityProviderService.InitiateAuth",
                )
                .header("x-forwarded-for", format!("198.51.100.7, {from}"))
                .body(password_auth(&format!("user-{i}"), "Wrong-pass-1!").to_string())
                .send()
                .await
                .unwrap();
            let v: Value = r.json().await.unwrap();
            answers.push(v["__type"] != "TooManyRequestsException");
        }
        assert_eq!(answers, [true, second_allowed], "trusted: {trusted:?}");
    }
}
