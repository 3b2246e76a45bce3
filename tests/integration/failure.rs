//! Failure is honest: with the store unreachable, refusing connections or not answering, the
//! token, revocation and introspection endpoints answer 503 `temporarily_unavailable` and the
//! bearer layer 503 — never 401, never a panic, never a hang past the timeout — and service
//! resumes without a restart once the store is back. A TCP proxy between the store and the real
//! Redis or PostgreSQL server cuts and restores the connection.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use crate::support::{
    backends,
    proxy::{BLACKHOLE, PASS, Proxy, REFUSE, upstream},
    *,
};
use tower_oauth2::store::{PostgresStore, RedisStore, TokenStore};

const TIMEOUT: Duration = Duration::from_millis(500);
/// The most any request may take while the store is down: the timeout plus generous slack for
/// a loaded machine. A hang would blow far past it.
const BOUND: Duration = Duration::from_secs(4);

/// Every endpoint and the bearer layer answer 503 within the bound.
async fn assert_all_unavailable(h: &Harness, at: &str, rt: &str) {
    let checks: Vec<(&str, Reply, Duration)> = vec![
        timed(
            "password grant",
            h.token(
                Some(("app", "app-secret")),
                "grant_type=password&username=alice&password=wonderland",
            ),
        )
        .await,
        timed("refresh", h.refresh(("app", "app-secret"), rt)).await,
        timed(
            "revoke",
            h.revoke(Some(("app", "app-secret")), &format!("token={at}")),
        )
        .await,
        timed(
            "introspect",
            h.introspect(Some(("rs", "rs-secret")), &format!("token={at}")),
        )
        .await,
    ];
    for (what, r, took) in checks {
        r.assert_error(503, "temporarily_unavailable");
        assert!(took < BOUND, "{what} took {took:?}");
    }
    let (r, took) = {
        let t = Instant::now();
        let r = h
            .protected(h.server.bearer_layer(), Some(&format!("Bearer {at}")))
            .await;
        (r, t.elapsed())
    };
    assert_eq!(r.status, 503, "bearer layer");
    assert_eq!(
        r.header("www-authenticate"),
        None,
        "an outage is not an invalid token"
    );
    assert!(took < BOUND, "bearer check took {took:?}");
}

async fn timed(what: &str, f: impl Future<Output = Reply>) -> (&str, Reply, Duration) {
    let t = Instant::now();
    let r = f.await;
    (what, r, t.elapsed())
}

/// Keep trying (each try bounded by the store timeout) until a login succeeds again.
async fn recovers(h: &Harness, at: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = h
            .token(
                Some(("app", "app-secret")),
                "grant_type=password&username=alice&password=wonderland",
            )
            .await;
        if r.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "no recovery: {}", r.status);
        tokio::task::yield_now().await;
    }
    assert!(
        h.accepted(at).await,
        "tokens issued before the outage work again"
    );
}

async fn outage_and_recovery(store: Arc<dyn TokenStore>, proxy: &Proxy) {
    let h = harness_on(
        store,
        tower_oauth2::clock::Clock::now(&tower_oauth2::clock::SystemClock),
        |_| {},
    );
    let (at, rt) = h.login().await;
    for mode in [REFUSE, BLACKHOLE] {
        proxy.set(mode);
        assert_all_unavailable(&h, &at, &rt).await;
        proxy.set(PASS);
        recovers(&h, &at).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_is_503_and_recovers() {
    if backends::open_redis("failure_probe").await.is_none() {
        return;
    }
    let proxy = Proxy::start(upstream(&backends::redis_url(), 6379)).await;
    let store = RedisStore::builder(format!("redis://{}", proxy.addr))
        .prefix("tower-oauth2-test:failure:")
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .build()
        .unwrap();
    outage_and_recovery(Arc::new(store), &proxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_is_503_and_recovers() {
    if backends::open_postgres("failure_probe").await.is_none() {
        return;
    }
    let url = backends::database_url();
    let proxy = Proxy::start(upstream(&url, 5432)).await;
    let proxied = url
        .replacen(
            &upstream(&url, 5432).to_string(),
            &proxy.addr.to_string(),
            1,
        )
        .replacen("localhost:5432", &proxy.addr.to_string(), 1);
    let store = PostgresStore::builder(proxied)
        .schema("t_failure")
        .timeout(TIMEOUT)
        .pool_size(4)
        .build()
        .unwrap();
    store.migrate().await.unwrap();
    outage_and_recovery(Arc::new(store), &proxy).await;
}

#[tokio::test]
async fn a_store_that_was_never_reachable_is_503_not_a_startup_failure() {
    // Port 1 on loopback: nothing listens, connections are refused at once.
    let redis = RedisStore::builder("redis://127.0.0.1:1")
        .timeout(TIMEOUT)
        .build()
        .unwrap();
    let pg = PostgresStore::builder("postgres://postgres@127.0.0.1:1/test")
        .timeout(TIMEOUT)
        .build()
        .unwrap();
    for store in [Arc::new(redis) as Arc<dyn TokenStore>, Arc::new(pg)] {
        let h = harness_on(store, START, |_| {});
        let bogus = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
        assert_all_unavailable(&h, bogus, bogus).await;
    }
}

/// A Redis Cluster primary killed outright while a client keeps refreshing: while its replica
/// takes over, requests answer 503 (never an invalid token, never a 500), then succeed without a
/// restart; a refresh retried after a 503 is never applied twice (each token has one successor,
/// the family's generation counts exactly the rotations the client saw, nothing is revoked).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_failover_is_503_at_most_and_applies_no_rotation_twice() {
    const PREFIX: &str = "tower-oauth2-test:failover:";
    let mut cluster = match crate::support::cluster::LocalCluster::start(7100) {
        Ok(c) => c,
        Err(e) => {
            backends::unreachable("a Redis Cluster of the test's own", "127.0.0.1:7100", &e);
            return;
        }
    };
    let store: Arc<dyn TokenStore> = Arc::new(
        RedisStore::builder(cluster.url())
            .prefix(PREFIX)
            .timeout(Duration::from_secs(1))
            .connect_timeout(TIMEOUT)
            .build()
            .unwrap(),
    );
    let h = harness_on(
        Arc::clone(&store),
        tower_oauth2::clock::Clock::now(&tower_oauth2::clock::SystemClock),
        // A retry after a refresh whose answer was lost gets the same pair (RFC 9700 §4.14.2).
        |c| c.refresh_token_grace_period = Duration::from_secs(30),
    );
    let (mut at, mut rt) = h.login().await;
    // The primary that holds this grant's slot (its route is the token's first three digits).
    let slot_key = format!("{PREFIX}{{{}}}", &rt[..3]);
    let victim = cluster.primary_of(&slot_key);
    // The login reached the replica that will take over (replication is asynchronous: a write
    // the kill outruns is lost with the node, which no store can prevent; not what this tests).
    cluster
        .wait_replicated(victim, Duration::from_secs(5))
        .unwrap();
    cluster.kill(victim);
    let killed = Instant::now();
    let mut chain = vec![rt.clone()];
    let (mut unavailable, mut served_after) = (0, 0);
    while served_after < 5 {
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "no recovery after the failover ({unavailable} answers of 503)"
        );
        let t = Instant::now();
        let r = h.refresh(("app", "app-secret"), &rt).await;
        assert!(t.elapsed() < BOUND, "a refresh took {:?}", t.elapsed());
        match r.status.as_u16() {
            200 => {
                let v = r.assert_token();
                at = v["access_token"].as_str().unwrap().to_owned();
                rt = v["refresh_token"].as_str().unwrap().to_owned();
                if chain.last() != Some(&rt) {
                    chain.push(rt.clone());
                }
                if unavailable > 0 {
                    served_after += 1;
                }
            }
            503 => {
                r.assert_error(503, "temporarily_unavailable");
                unavailable += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => panic!(
                "refresh during the failover answered {other}: {}",
                String::from_utf8_lossy(&r.body)
            ),
        }
        let bearer = h
            .protected(h.server.bearer_layer(), Some(&format!("Bearer {at}")))
            .await;
        assert!(
            matches!(bearer.status.as_u16(), 200 | 503),
            "bearer check during the failover answered {}",
            bearer.status
        );
    }
    assert!(unavailable > 0, "the kill was never felt");
    assert_ne!(
        cluster.primary_of(&slot_key),
        victim,
        "a replica serves the slot now"
    );
    assert_eq!(cluster.role(victim), "", "the killed node is gone");
    // Each token the client held was rotated exactly once, in order, and the family lives.
    for (i, token) in chain.iter().enumerate() {
        let hash = tower_oauth2::token::TokenHash::of(token);
        let record = store
            .find_refresh_token(&hash)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("refresh token {i} of {} is gone", chain.len()));
        assert_eq!(record.generation as usize, i, "token {i}'s generation");
        let active = matches!(record.state, tower_oauth2::store::RefreshTokenState::Active);
        assert_eq!(active, i + 1 == chain.len(), "token {i}'s state");
    }
    assert!(h.accepted(&at).await, "the last access token works");
}
