//! The near-cache across instances: two servers, each with its own store connection and its own
//! near-cache, on one Redis (and again one PostgreSQL). Instance B serves a token from its cache;
//! every kind of revocation made on A — one token, a family, a user's grants, a client's, the
//! family revoked on a replay, the access token a refresh replaces — is refused by B within the
//! bound. With B's announcement channel cut, B bypasses and empties its cache, so a revocation
//! it never heard of is still refused, and it recovers without a restart.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tower_oauth2::{
    OnRefresh,
    clock::SystemClock,
    store::{NearCache, NearCacheConfig, TokenStore},
};

use crate::support::{
    backends::{Backend, open, open_again},
    proxy::{PASS, Proxy, upstream},
    *,
};

/// How long a revocation may take to reach the other instance here (the target is 50 ms at
/// p99 on one machine; this bound only catches a revocation that never arrives).
const BOUND: Duration = Duration::from_secs(2);

struct Instance {
    h: Harness,
    cache: NearCache,
}

async fn instance(store: Arc<dyn TokenStore>) -> Instance {
    let cache = NearCache::new(store, Arc::new(SystemClock), NearCacheConfig::default());
    assert!(
        cache.wait_connected(Duration::from_secs(5)).await,
        "the announcement channel did not come up"
    );
    let now = tower_oauth2::clock::Clock::now(&SystemClock);
    let h = harness_on(Arc::new(cache.clone()), now, |c| {
        c.on_refresh = OnRefresh::RevokeAccessTokens;
    });
    Instance { h, cache }
}

/// A and B on one shared store; B through `url` when given.
async fn pair(backend: Backend, test: &str, b_url: Option<String>) -> Option<(Instance, Instance)> {
    let a = open(backend, test).await?;
    let b = open_again(backend, test, b_url);
    Some((instance(a).await, instance(b).await))
}

/// A and B on one shared store, B's connections all through a proxy the test controls.
async fn pair_behind_proxy(
    backend: Backend,
    test: &str,
    url: &str,
    port: u16,
) -> Option<(Proxy, Instance, Instance)> {
    let proxy = Proxy::start(upstream(url, port)).await;
    let target = upstream(url, port).to_string();
    let proxied = url.replacen(&target, &proxy.addr.to_string(), 1).replacen(
        &format!("localhost:{port}"),
        &proxy.addr.to_string(),
        1,
    );
    let (a, b) = pair(backend, test, Some(proxied)).await?;
    Some((proxy, a, b))
}

/// B accepts `at` from its cache: the first check fills it, the next ones are hits.
async fn served_from_cache(b: &Instance, at: &str) {
    assert!(b.h.accepted(at).await, "B accepts the token");
    let misses = b.cache.stats().misses;
    for _ in 0..3 {
        assert!(b.h.accepted(at).await);
    }
    assert_eq!(b.cache.stats().misses, misses, "hits, not store lookups");
}

/// B refuses `at` within the bound; how long it took.
async fn refused_soon(b: &Instance, at: &str) -> Duration {
    let t = Instant::now();
    while b.h.accepted(at).await {
        assert!(t.elapsed() < BOUND, "B still accepts a revoked token");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    t.elapsed()
}

async fn every_revocation_reaches_the_other_instance(backend: Backend, test: &str) {
    let Some((a, b)) = pair(backend, test, None).await else {
        return;
    };
    let login = |user: &'static str, pass: &'static str| a.h.login_as(APP, user, pass, "");
    let mut delays = Vec::new();

    // One access token (RFC 7009).
    let (at, _) = login("alice", "wonderland").await;
    served_from_cache(&b, &at).await;
    assert_eq!(
        a.h.revoke(Some(APP), &format!("token={at}")).await.status,
        200
    );
    delays.push(("token", refused_soon(&b, &at).await));

    // A family, through its refresh token.
    let (at, rt) = login("alice", "wonderland").await;
    served_from_cache(&b, &at).await;
    a.h.revoke(
        Some(APP),
        &format!("token={rt}&token_type_hint=refresh_token"),
    )
    .await;
    delays.push(("family", refused_soon(&b, &at).await));

    // Every grant of a user, then every grant of a client.
    let (at, _) = login("bob", "builder").await;
    let (other, _) = login("bob", "builder").await;
    served_from_cache(&b, &at).await;
    served_from_cache(&b, &other).await;
    assert_eq!(a.h.server.revoke_subject("bob").await.unwrap(), 2);
    delays.push(("subject", refused_soon(&b, &at).await));
    assert!(!b.h.accepted(&other).await);
    let (at, _) = login("alice", "wonderland").await;
    served_from_cache(&b, &at).await;
    assert!(a.h.server.revoke_client("app").await.unwrap() >= 1);
    delays.push(("client", refused_soon(&b, &at).await));

    // A refresh replaces the access token it was issued with (`on_refresh`).
    let (at, rt) = login("alice", "wonderland").await;
    served_from_cache(&b, &at).await;
    let v = a.h.refresh(APP, &rt).await.assert_token();
    let at1 = v["access_token"].as_str().unwrap().to_owned();
    delays.push(("refresh", refused_soon(&b, &at).await));

    // A replay of the rotated token revokes the family: its newest access token too.
    served_from_cache(&b, &at1).await;
    a.h.refresh(APP, &rt)
        .await
        .assert_error(400, "invalid_grant");
    delays.push(("replay", refused_soon(&b, &at1).await));

    // Tokens B never cached, and A's own cache, see the same.
    assert!(!a.h.accepted(&at1).await);
    eprintln!("{backend:?}: revocation seen by the other instance after {delays:?}");
}

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// An instance exchanges the codes it issued from its own record of them (one round trip), but
/// what it answers is the store's: a code it issued and another instance redeemed is refused as
/// reused, with or without the right verifier, and the grant its first use started is revoked.
async fn a_code_redeemed_elsewhere_is_reused_whatever_the_issuer_remembers(
    backend: Backend,
    test: &str,
) {
    let Some((a, b)) = pair(backend, test, None).await else {
        return;
    };
    let issue = || async {
        a.h.server
            .issue_authorization_code(
                tower_oauth2::AuthorizationRequest::new("app", "alice")
                    .redirect_uri("https://app.example/cb")
                    .scope("read")
                    .code_challenge(CHALLENGE, Some("S256")),
            )
            .await
            .unwrap()
    };
    let exchange = |code: &str, verifier: &str| {
        format!(
            "grant_type=authorization_code&code={code}&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&code_verifier={verifier}"
        )
    };
    // Issued and exchanged here.
    let code = issue().await;
    a.h.token(Some(APP), &exchange(&code, VERIFIER))
        .await
        .assert_token();
    a.h.token(Some(APP), &exchange(&code, VERIFIER))
        .await
        .assert_error(400, "invalid_grant");
    for verifier in [VERIFIER, &"x".repeat(43)] {
        // Issued here, redeemed by the other instance, then presented here.
        let code = issue().await;
        let first =
            b.h.token(Some(APP), &exchange(&code, VERIFIER))
                .await
                .assert_token();
        let at = first["access_token"].as_str().unwrap().to_owned();
        let r = a.h.token(Some(APP), &exchange(&code, verifier)).await;
        r.assert_error(400, "invalid_grant");
        assert_eq!(
            r.json()["error_description"],
            "authorization code already used",
            "verifier {verifier}"
        );
        refused_soon(&b, &at).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_codes_are_the_stores_answer_on_every_instance() {
    a_code_redeemed_elsewhere_is_reused_whatever_the_issuer_remembers(
        Backend::Redis,
        "near_cache_codes_redis",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_codes_are_the_stores_answer_on_every_instance() {
    a_code_redeemed_elsewhere_is_reused_whatever_the_issuer_remembers(
        Backend::Postgres,
        "near_cache_codes_pg",
    )
    .await;
}

/// On a Redis Cluster (a six-node one of the test's own, whose clients it may kill): B's
/// subscriptions cut on every node (`CLIENT KILL TYPE pubsub`) empty B's cache, so a token
/// revoked behind every instance's back (no announcement at all) is refused at once; B
/// resubscribes by itself and caches again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_cut_subscriptions_empty_the_cache_and_recover() {
    const PREFIX: &str = "tower-oauth2-test:near-cache-cut-cluster:";
    let cluster = match crate::support::cluster::LocalCluster::start(7200) {
        Ok(c) => c,
        Err(e) => {
            crate::support::backends::unreachable(
                "a Redis Cluster of the test's own",
                "127.0.0.1:7200",
                &e,
            );
            return;
        }
    };
    let store = |()| -> Arc<dyn TokenStore> {
        Arc::new(
            tower_oauth2::store::RedisStore::builder(cluster.url())
                .prefix(PREFIX)
                .timeout(Duration::from_millis(500))
                .build()
                .unwrap(),
        )
    };
    let (a, b) = (instance(store(())).await, instance(store(())).await);
    let (at, _) = a.h.login().await;
    served_from_cache(&b, &at).await;
    // Revoked behind everyone's back: the token's record deleted where it lives.
    let hash = tower_oauth2::token::TokenHash::of(&at);
    let key = format!("{PREFIX}{{{}}}a:{}", &at[..3], hash.to_hex());
    let port = cluster.primary_of(&key);
    let deleted = std::process::Command::new("redis-cli")
        .args(["-p", &port.to_string(), "del", &key])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&deleted.stdout).trim(), "1");
    assert!(b.h.accepted(&at).await, "B still serves it from its cache");
    let flushes = b.cache.stats().flushes;
    // On every node at once (one after the other, each cut would be a loss of its own).
    let kills: Vec<_> = cluster
        .ports
        .iter()
        .map(|port| {
            std::process::Command::new("redis-cli")
                .args(["-p", &port.to_string(), "client", "kill", "type", "pubsub"])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut kill in kills {
        kill.wait().unwrap();
    }
    let t = Instant::now();
    while b.cache.stats().flushes == flushes {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "B did not notice its subscriptions were cut"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(!b.h.accepted(&at).await, "emptied: the store's answer");
    // Back by itself: a new token is cached again. (Resubscribing is 4096 SSUBSCRIBEs, each a
    // round trip; the bound is generous for a loaded machine and a debug build — it catches
    // "never", it does not measure. 30 s was once not enough in CI, with the slow-probe test
    // subscribing its own 4096 beside it on two cores: the same 60 s as that test.)
    assert!(
        b.cache.wait_connected(Duration::from_secs(60)).await,
        "B's subscriptions never came back"
    );
    let (fresh, _) = a.h.login().await;
    served_from_cache(&b, &fresh).await;
}

/// Subscribing to every route's channel on a cluster (4096 `SSUBSCRIBE`s) may take longer than
/// one attempt is allowed (ten connect timeouts: a loaded machine, a slow node). Attempts keep
/// what they confirmed, so the channel still comes up; starting over each time, it never
/// would. Here one attempt may last 100 ms, much less than the whole takes. (4 ms connect
/// timeouts, 40 ms attempts, once never connected at all on a loaded two-core CI machine: no
/// attempt then confirms anything, which is not what this test is about.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_subscriptions_longer_than_an_attempt_still_come_up() {
    if open(Backend::RedisCluster, "near_cache_slow_probe")
        .await
        .is_none()
    {
        return;
    }
    let store =
        tower_oauth2::store::RedisStore::builder(crate::support::backends::redis_cluster_url())
            .prefix("tower-oauth2-test:near_cache_slow:")
            .connect_timeout(Duration::from_millis(10))
            .build()
            .unwrap();
    let cache = NearCache::new(
        Arc::new(store),
        Arc::new(SystemClock),
        NearCacheConfig::default(),
    );
    assert!(
        cache.wait_connected(Duration::from_secs(60)).await,
        "the announcement channels never came up"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_every_revocation_reaches_the_other_instance() {
    every_revocation_reaches_the_other_instance(Backend::Redis, "near_cache_redis").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_every_revocation_reaches_the_other_instance() {
    every_revocation_reaches_the_other_instance(Backend::RedisCluster, "near_cache_cluster").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_every_revocation_reaches_the_other_instance() {
    every_revocation_reaches_the_other_instance(Backend::Postgres, "near_cache_pg").await;
}

/// B's connections (its announcement channel among them) are cut; A revokes while B cannot
/// hear it. B must never accept the token again, and must recover without a restart.
async fn a_cut_channel_bypasses_and_recovers(backend: Backend, test: &str, url: String, port: u16) {
    if open(backend, &format!("{test}_probe")).await.is_none() {
        return;
    }
    let Some((proxy, a, b)) = pair_behind_proxy(backend, test, &url, port).await else {
        return;
    };
    let (at, _) = a.h.login().await;
    served_from_cache(&b, &at).await;
    let flushes = b.cache.stats().flushes;

    // Every connection through the proxy dropped; new ones are let through.
    proxy.set(PASS);
    let t = Instant::now();
    while b.cache.stats().connected {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "B did not notice its channel was cut"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // Bypassed first, then emptied: the count follows the flag by a moment. (The channel may
    // already be back by then; it was emptied all the same.)
    while b.cache.stats().flushes == flushes {
        assert!(t.elapsed() < Duration::from_secs(5), "emptied when lost");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // Revoked while B is not subscribed: B never hears of it.
    assert_eq!(
        a.h.revoke(Some(APP), &format!("token={at}")).await.status,
        200
    );
    // B answers from the store: 503 while its data connection is re-made, then 401 — never 200.
    let bypassed = b.cache.stats().bypassed;
    let t = Instant::now();
    loop {
        let r =
            b.h.protected(b.h.server.bearer_layer(), Some(&format!("Bearer {at}")))
                .await;
        assert_ne!(r.status, 200, "a revoked token is never accepted");
        if r.status == 401 {
            break;
        }
        assert_eq!(r.status, 503);
        assert!(t.elapsed() < BOUND, "the store never came back");
    }
    assert!(b.cache.stats().bypassed > bypassed || b.cache.stats().connected);

    // Back: the channel reconnects by itself and the cache serves again, starting empty.
    let t = Instant::now();
    while !b.cache.stats().connected {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "B's channel never came back"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(!b.h.accepted(&at).await);
    let (fresh, _) = a.h.login().await;
    served_from_cache(&b, &fresh).await;
    assert_eq!(
        a.h.revoke(Some(APP), &format!("token={fresh}"))
            .await
            .status,
        200
    );
    refused_soon(&b, &fresh).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_a_cut_channel_bypasses_and_recovers() {
    let url = crate::support::backends::redis_url();
    a_cut_channel_bypasses_and_recovers(Backend::Redis, "near_cache_cut_redis", url, 6379).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_cut_channel_bypasses_and_recovers() {
    let url = crate::support::backends::database_url();
    a_cut_channel_bypasses_and_recovers(Backend::Postgres, "near_cache_cut_pg", url, 5432).await;
}

/// A revocation by subject as the channel carries it (`s:{user}`), sent by hand: on PostgreSQL
/// and the Redis Cluster the stores announce a user's grants one by one, so without this the
/// near-cache's rule for a subject would be exercised on one server only. B drops that user's
/// tokens, and only theirs: the next check of bob's token asks the store, alice's stays a hit.
async fn a_subject_announced_drops_that_users_tokens_only(backend: Backend, test: &str) {
    let Some((a, b)) = pair(backend, test, None).await else {
        return;
    };
    let (alice, _) = a.h.login_as(APP, "alice", "wonderland", "").await;
    let (bob, _) = a.h.login_as(APP, "bob", "builder", "").await;
    served_from_cache(&b, &alice).await;
    served_from_cache(&b, &bob).await;
    let prefix = format!("tower-oauth2-test:{test}:");
    match backend {
        Backend::Postgres => {
            let (client, conn) = tokio_postgres::connect(
                &crate::support::backends::database_url(),
                tokio_postgres::NoTls,
            )
            .await
            .unwrap();
            tokio::spawn(conn);
            let channel = format!("oauth:t_{test}");
            client
                .execute("SELECT pg_notify($1, 's:bob')", &[&channel])
                .await
                .unwrap();
        }
        Backend::RedisCluster => {
            // On the channel of bob's token's route, as the cluster's scripts publish.
            let client = redis::cluster::ClusterClient::new(vec![
                crate::support::backends::redis_cluster_url()
                    .replace("redis+cluster://", "redis://")
                    .split(',')
                    .next()
                    .unwrap()
                    .to_owned(),
            ])
            .unwrap();
            let mut conn = client.get_async_connection().await.unwrap();
            let channel = format!("{prefix}{{{}}}invalidations", &bob[..3]);
            let _: i64 = redis::cmd("SPUBLISH")
                .arg(&channel)
                .arg("s:bob")
                .query_async(&mut conn)
                .await
                .unwrap();
        }
        _ => {
            let client = redis::Client::open(crate::support::backends::redis_url()).unwrap();
            let mut conn = client.get_multiplexed_async_connection().await.unwrap();
            let _: i64 = redis::cmd("PUBLISH")
                .arg(format!("{prefix}invalidations"))
                .arg("s:bob")
                .query_async(&mut conn)
                .await
                .unwrap();
        }
    }
    let t = Instant::now();
    loop {
        let misses = b.cache.stats().misses;
        assert!(b.h.accepted(&bob).await, "bob's token is live in the store");
        if b.cache.stats().misses > misses {
            break;
        }
        assert!(t.elapsed() < BOUND, "bob's entry was never dropped");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let misses = b.cache.stats().misses;
    assert!(b.h.accepted(&alice).await);
    assert_eq!(b.cache.stats().misses, misses, "alice's entry stays");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_subject_announced_drops_that_users_tokens_only() {
    a_subject_announced_drops_that_users_tokens_only(Backend::Postgres, "near_cache_subject_pg")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_a_subject_announced_drops_that_users_tokens_only() {
    a_subject_announced_drops_that_users_tokens_only(
        Backend::RedisCluster,
        "near_cache_subject_cluster",
    )
    .await;
}

/// A silent partition: B's connections stay open but carry nothing either way (no reset, no
/// close — a dead link before any timeout). A revocation on A returns once A gave up waiting
/// for B's confirmation (100 ms); B, not knowing yet, may serve the revoked token from its cache
/// until its heartbeat finds the channel dead (a PING each second, unanswered for a second).
/// This measures that window and holds it to the documented bound: under 2.5 s, never after.
async fn a_silent_partition_is_noticed_within_the_heartbeat(
    backend: Backend,
    test: &str,
    url: String,
    port: u16,
) {
    if open(backend, &format!("{test}_probe")).await.is_none() {
        return;
    }
    let Some((proxy, a, b)) = pair_behind_proxy(backend, test, &url, port).await else {
        return;
    };
    // A few seconds of the channel working, so that A knows B (B greets every second).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (at, _) = a.h.login().await;
    served_from_cache(&b, &at).await;
    proxy.silence(true);
    let started = Instant::now();
    assert_eq!(
        a.h.revoke(Some(APP), &format!("token={at}")).await.status,
        200
    );
    let acknowledged = Instant::now();
    let waited = acknowledged - started;
    // B: accepted (from its cache) until it notices; then bypassed, asking a silent store (503).
    let mut last_accepted = None;
    loop {
        let r =
            b.h.protected(b.h.server.bearer_layer(), Some(&format!("Bearer {at}")))
                .await;
        match r.status.as_u16() {
            200 => last_accepted = Some(Instant::now()),
            _ if !b.cache.stats().connected => break,
            _ => {}
        }
        assert!(
            acknowledged.elapsed() < Duration::from_secs(5),
            "B never noticed the silent channel"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let window = last_accepted.map_or(Duration::ZERO, |t| t - acknowledged);
    eprintln!(
        "silent partition ({test}): A's revocation waited {waited:?}; B accepted the revoked \
         token for {window:?} after it was acknowledged, and noticed after {:?}",
        acknowledged.elapsed()
    );
    assert!(
        waited >= Duration::from_millis(90),
        "A waited for B's confirmation: {waited:?}"
    );
    assert!(
        window < Duration::from_millis(2500),
        "the window: {window:?}"
    );
    // Never again once noticed.
    let r =
        b.h.protected(b.h.server.bearer_layer(), Some(&format!("Bearer {at}")))
            .await;
    assert_ne!(r.status, 200);
    proxy.silence(false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_a_silent_partition_is_noticed_within_the_heartbeat() {
    let url = crate::support::backends::redis_url();
    a_silent_partition_is_noticed_within_the_heartbeat(
        Backend::Redis,
        "near_cache_silent_redis",
        url,
        6379,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_silent_partition_is_noticed_within_the_heartbeat() {
    let url = crate::support::backends::database_url();
    a_silent_partition_is_noticed_within_the_heartbeat(
        Backend::Postgres,
        "near_cache_silent_pg",
        url,
        5432,
    )
    .await;
}

/// The server puts a near-cache in front of a store that announces revocations, unless told
/// not to; never in front of the memory store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_by_default_for_announcing_stores_only() {
    let h = harness();
    assert!(!h.server.store().announces_revocations());
    let Some(store) = open(Backend::Redis, "near_cache_default").await else {
        return;
    };
    assert!(store.announces_revocations());
    let now = tower_oauth2::clock::Clock::now(&SystemClock);
    let on = harness_on(Arc::clone(&store), now, |_| {});
    // Wrapped: the cache announces nothing further, so nothing wraps it again.
    assert!(!on.server.store().announces_revocations());
    let off = harness_on(store, now, |c| c.near_cache.enabled = false);
    assert!(off.server.store().announces_revocations());
}
