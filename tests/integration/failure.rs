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
