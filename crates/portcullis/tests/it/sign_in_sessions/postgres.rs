//! Several nodes on one PostgreSQL: ends crossing nodes (also while a listener was down), and
//! tokens racing an end on another node.

use super::*;

/// Waits (bounded) until `f` holds.
async fn until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "not in time: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn ends_cross_nodes_on_postgres_even_while_a_listener_was_down() {
    let db = crate::kit::PgDatabase::create("sessions").await;
    let url = db.url();
    let store_a = Arc::new(portcullis_idp::PgStore::connect(&url).await.unwrap());
    let store_b = Arc::new(portcullis_idp::PgStore::connect(&url).await.unwrap());
    let a = serve(Some(store_a.clone()), "").await;
    let b = serve(Some(store_b.clone()), "").await;
    let limit = Duration::from_secs(10);
    until("node B listens", limit, || {
        store_b.session_listener().connected
    })
    .await;

    // Ended on A, heard on B.
    let t = api_sign_in(&a, "alice").await;
    let sid = sid_of(t["IdToken"].as_str().unwrap());
    let mut feed_b = b.pool.subscribe_session_ends();
    let started = Instant::now();
    assert!(a.pool.end_sign_in(&sid).await.unwrap());
    let e = next_event(&mut feed_b, limit).await;
    println!(
        "session end from node A reached node B's feed in {:?}",
        started.elapsed()
    );
    assert_eq!(e.sid.as_deref(), Some(sid.as_str()));
    assert_eq!(e.issuer, b.pool.issuer);
    // Refresh of the ended session fails on the other node too.
    let (status, _) = api_refresh(&b, t["RefreshToken"].as_str().unwrap()).await;
    assert_eq!(status, 400);

    // B's LISTEN connection is killed, and kept down while A signs the user out everywhere.
    store_b.hold_session_listener(true);
    let killed = crate::kit::pg_admin()
        .await
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            &[&format!("portcullis-listen-{}", store_b.node_id())],
        )
        .await
        .unwrap();
    assert_eq!(killed.len(), 1, "B's listening connection found");
    until("B notices", limit, || !store_b.session_listener().connected).await;
    let t = api_sign_in(&a, "alice").await;
    let sub = sub_of(t["IdToken"].as_str().unwrap());
    admin(&a, "AdminUserGlobalSignOut", json!({"Username": "alice"})).await;
    store_b.hold_session_listener(false);
    // Catching up re-reads a little before the gap: earlier ends may come again (duplicates are
    // allowed), the missed one must come.
    let deadline = Instant::now() + limit;
    loop {
        let e = next_event(
            &mut feed_b,
            deadline.saturating_duration_since(Instant::now()),
        )
        .await;
        if e.sid.is_none() {
            assert_eq!(e.sub, sub, "caught up after reconnecting");
            break;
        }
    }
    let state = store_b.session_listener();
    assert!(
        state.connected && state.reconnects >= 1 && state.caught_up >= 1,
        "{state:?}"
    );
    // A late subscriber on B sees the ends from the store: the first session's, the user-wide
    // one, and the second session's own.
    let ends = b.pool.ended_sessions().await.unwrap();
    assert_eq!(ends.len(), 3, "{ends:?}");
    assert_eq!(ends.iter().filter(|e| e.sid.is_none()).count(), 1);

    drop((a, b, store_a, store_b));
    db.drop_it().await;
}

#[tokio::test]
async fn tokens_racing_an_end_on_another_node_are_refused_or_revoked() {
    let db = crate::kit::PgDatabase::create("race").await;
    let url = db.url();
    let a = serve(
        Some(Arc::new(
            portcullis_idp::PgStore::connect(&url).await.unwrap(),
        )),
        "",
    )
    .await;
    let b = serve(
        Some(Arc::new(
            portcullis_idp::PgStore::connect(&url).await.unwrap(),
        )),
        "",
    )
    .await;
    let a = Arc::new(a);
    let b = Arc::new(b);
    let browser_a = browser();
    let first = hosted_sign_in(&a, &browser_a, "web-a", "alice").await;
    let sid = sid_of(
        redeem(&a, "web-a", &first).await["id_token"]
            .as_str()
            .unwrap(),
    );
    let mut codes = Vec::new();
    for i in 0..20 {
        let client = if i % 2 == 0 { "web-a" } else { "web-b" };
        codes.push((client, silent_code(&a, &browser_a, client).await));
    }
    // The first codes are redeemed before the end; the rest race it, half on A and half on B,
    // while B ends the session.
    let mut tasks = Vec::new();
    for (i, (client, code)) in codes.into_iter().enumerate() {
        let node = if i % 2 == 0 { a.clone() } else { b.clone() };
        if i < 4 {
            let body = redeem(&node, client, &code).await;
            tasks.push(tokio::spawn(async move { (client, 200, body) }));
            continue;
        }
        tasks.push(tokio::spawn(async move {
            let (status, body) = token(
                &node,
                &[
                    ("grant_type", "authorization_code"),
                    ("client_id", client),
                    ("code", &code),
                    ("redirect_uri", CB),
                ],
            )
            .await;
            (client, status, body)
        }));
        if i == 6 {
            let (b, sid) = (b.clone(), sid.clone());
            tasks.push(tokio::spawn(async move {
                assert!(b.pool.end_sign_in(&sid).await.unwrap());
                ("end", 200, Value::Null)
            }));
        }
    }
    // Every redemption and the end are over before refreshes are tried.
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let (mut given, mut refused) = (0, 0);
    for (client, status, body) in results {
        if client == "end" {
            continue;
        }
        if status == 200 {
            given += 1;
            let refresh = body["refresh_token"].as_str().unwrap();
            for node in [&a, &b] {
                let (status, r) = refresh_status(node, client, refresh).await;
                assert_eq!(
                    status, 400,
                    "tokens given in an ended session are revoked: {r}"
                );
            }
        } else {
            refused += 1;
            assert_eq!(body["error"], "invalid_grant", "{body}");
        }
    }
    println!("{given} codes gave tokens before the end, {refused} were refused after it");
    assert_eq!(given + refused, 20);
    assert!(given >= 4 && refused >= 1);
    drop((a, b));
    db.drop_it().await;
}
