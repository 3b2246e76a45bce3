//! Building the shared stores: configuration mistakes are `ConfigError`s when the store is built,
//! builders never print a URL's password, and a store made from the app's own pool or
//! connection serves the whole flow.

use std::{sync::Arc, time::Duration};

use tower_oauth2::{
    ConfigError,
    clock::{Clock, SystemClock},
    store::{PostgresStore, RedisStore, TokenStore},
};

use crate::support::{
    APP,
    backends::{database_url, redis_url, unreachable},
    harness_on,
};

#[test]
fn a_bad_url_or_schema_is_a_config_error_when_built() {
    let cases: Vec<(&str, Result<(), ConfigError>)> = vec![
        ("redis: not a URL", RedisStore::new("not a url").map(drop)),
        (
            "postgres: not a URL",
            PostgresStore::new("postgres://u@host:notaport/db").map(drop),
        ),
        (
            "postgres: schema with a quote",
            PostgresStore::builder(database_url())
                .schema("oauth; DROP TABLE x")
                .build()
                .map(drop),
        ),
        (
            "postgres: empty schema",
            PostgresStore::builder(database_url())
                .schema("")
                .build()
                .map(drop),
        ),
    ];
    for (what, result) in cases {
        assert!(
            matches!(result, Err(ConfigError::Store(_))),
            "{what}: {result:?}"
        );
    }
    // Well-formed configurations build without connecting.
    assert!(RedisStore::new("redis://127.0.0.1:1").is_ok());
    assert!(
        PostgresStore::builder("postgres://u@127.0.0.1:1/db")
            .schema("oauth_1")
            .build()
            .is_ok()
    );
}

#[test]
fn builders_never_show_the_password() {
    let redis = format!(
        "{:?}",
        RedisStore::builder("redis://user:hunter2@127.0.0.1:6379/0")
    );
    let postgres = format!(
        "{:?}",
        PostgresStore::builder("postgres://app:hunter2@127.0.0.1:5432/app").schema("oauth")
    );
    for shown in [&redis, &postgres] {
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains(":***@127.0.0.1"), "{shown}");
    }
    assert!(postgres.contains("oauth"), "{postgres}");
}

/// Log in, use the access token at the bearer layer, refresh, then revoke: the whole flow on
/// `store`.
async fn the_flow_works_on(store: Arc<dyn TokenStore>) {
    let h = harness_on(store, SystemClock.now(), |_| {});
    let (access, refresh) = h.login().await;
    assert!(h.accepted(&access).await);
    let next = h.refresh(APP, &refresh).await.assert_token();
    let next_access = next["access_token"].as_str().unwrap().to_owned();
    assert!(h.accepted(&next_access).await);
    let revoked = h.revoke(Some(APP), &format!("token={next_access}")).await;
    assert_eq!(revoked.status, 200);
    assert!(!h.accepted(&next_access).await);
}

#[tokio::test]
async fn a_postgres_store_on_the_apps_own_pool() {
    let url = database_url();
    let schema = "t_stores_from_pool";
    let prepared = async {
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
            ))
            .await
    };
    match tokio::time::timeout(Duration::from_secs(3), prepared).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return drop(unreachable("PostgreSQL", &url, &e)),
        Err(e) => return drop(unreachable("PostgreSQL", &url, &e)),
    }
    // The app's pool, with its own search_path.
    let mut config: tokio_postgres::Config = url.parse().unwrap();
    config.options(format!("-c search_path={schema}"));
    let manager = deadpool_postgres::Manager::new(config, tokio_postgres::NoTls);
    let pool = deadpool_postgres::Pool::builder(manager)
        .max_size(4)
        .build()
        .unwrap();
    // A schema cannot be imposed on connections the app configured.
    assert!(matches!(
        PostgresStore::builder_from_pool(pool.clone())
            .schema("other")
            .build(),
        Err(ConfigError::Store(_))
    ));
    let store = PostgresStore::from_pool(pool);
    store.migrate().await.unwrap();
    the_flow_works_on(Arc::new(store)).await;
}

#[tokio::test]
async fn a_redis_store_on_the_apps_own_connection() {
    let url = redis_url();
    let connected = async {
        let client = redis::Client::open(url.as_str())?;
        redis::aio::ConnectionManager::new(client).await
    };
    let conn = match tokio::time::timeout(Duration::from_secs(3), connected).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => return drop(unreachable("Redis", &url, &e)),
        Err(e) => return drop(unreachable("Redis", &url, &e)),
    };
    let prefix = format!(
        "tower-oauth2-test:stores-own-connection:{}:",
        SystemClock.now()
    );
    let store = RedisStore::builder_from_connection_manager(conn)
        .prefix(prefix)
        .build()
        .unwrap();
    the_flow_works_on(Arc::new(store)).await;
}

/// Several connections taken in turn (`connections(3)`): consecutive calls of one flow go over
/// different connections (a refresh's read and its rotation, a revocation and the check after
/// it), on one server and on a cluster alike.
#[tokio::test]
async fn a_redis_store_over_several_connections() {
    use crate::support::backends::{Backend, open, redis_cluster_url};
    for (backend, url) in [
        (Backend::Redis, redis_url()),
        (Backend::RedisCluster, redis_cluster_url()),
    ] {
        // Skipped (or, in CI, failed) like every test of that backend when it is unreachable.
        if open(backend, "stores_connections_probe").await.is_none() {
            continue;
        }
        let store = RedisStore::builder(&url)
            .prefix(format!(
                "tower-oauth2-test:stores-connections:{}:",
                SystemClock.now()
            ))
            .connections(3)
            .build()
            .unwrap();
        the_flow_works_on(Arc::new(store)).await;
    }
}

/// Seconds until `key` expires in Redis (-1 without a TTL, -2 when gone).
async fn expires_at(conn: &mut redis::aio::MultiplexedConnection, key: &str) -> i64 {
    redis::cmd("EXPIRETIME")
        .arg(key)
        .query_async(conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn redis_indexes_live_as_long_as_the_families_they_list() {
    // A family that keeps rotating outlives its login's refresh lifetime; the subject's and the
    // client's index must keep it listed (and be trimmed of what is gone), or `revoke_subject`
    // and `revoke_client` miss it once Redis expires the index on its own clock.
    let prefix = "tower-oauth2-test:indexes:";
    let Some(store) = crate::support::backends::open_redis("indexes").await else {
        return;
    };
    let h = harness_on(store, SystemClock.now(), |c| {
        c.refresh_token_lifetime = Duration::from_secs(2 * 86_400);
    });
    let (_, mut rt) = h.login().await;
    for _ in 0..3 {
        h.advance(86_400 + 3600);
        rt = h.refresh(APP, &rt).await.assert_token()["refresh_token"]
            .as_str()
            .unwrap()
            .to_owned();
    }
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let grants = crate::support::backends::scan_keys(&mut conn, &format!("{prefix}g:*"))
        .await
        .unwrap();
    assert_eq!(grants.len(), 1, "{grants:?}");
    let grant = expires_at(&mut conn, &grants[0]).await;
    let id = grants[0].rsplit(':').next().unwrap().to_owned();
    for index in ["s:alice", "k:app"] {
        let key = format!("{prefix}{index}");
        let until = expires_at(&mut conn, &key).await;
        assert!(
            until >= grant,
            "{index} expires at {until}, its grant at {grant}"
        );
        let score: Option<f64> = redis::cmd("ZSCORE")
            .arg(&key)
            .arg(&id)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(
            score,
            Some(grant as f64),
            "{index} scores the grant by its purge time"
        );
    }
    assert_eq!(h.server.revoke_subject("alice").await.unwrap(), 1);
    h.refresh(APP, &rt).await.assert_error(400, "invalid_grant");
}

/// Every key under `prefix` of `kind` (`g:`, `a:`, `r:`), with its expiry.
async fn keys_expiring(
    conn: &mut redis::aio::MultiplexedConnection,
    prefix: &str,
    kind: &str,
) -> Vec<(String, i64)> {
    let keys = crate::support::backends::scan_keys(conn, &format!("{prefix}{kind}*"))
        .await
        .unwrap();
    let mut out = Vec::new();
    for key in keys {
        let at = expires_at(conn, &key).await;
        out.push((key, at));
    }
    out
}

#[tokio::test]
async fn redis_a_chain_of_refreshes_extends_its_grant_about_once_a_margin() {
    // A rotation moves its family's purge time on; the grant key and index entries are written
    // a margin ahead (a quarter of the refresh lifetime, at most a day), so the rotations within
    // that margin write neither, and one past it extends both — while the grant key outlives
    // every token of its family and the indexes list it as long as it lives.
    let prefix = "tower-oauth2-test:keep:";
    let Some(store) = crate::support::backends::open_redis("keep").await else {
        return;
    };
    let h = harness_on(store, SystemClock.now(), |c| {
        c.refresh_token_lifetime = Duration::from_secs(8 * 86_400);
    });
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let (_, mut rt) = h.login().await;
    let check = async |conn: &mut redis::aio::MultiplexedConnection| -> i64 {
        let grants = keys_expiring(conn, prefix, "g:").await;
        assert_eq!(grants.len(), 1, "{grants:?}");
        let (key, grant) = grants[0].clone();
        for kind in ["a:", "r:"] {
            for (token, at) in keys_expiring(conn, prefix, kind).await {
                assert!(
                    at > 0 && at <= grant,
                    "{token} expires at {at}, its grant at {grant}"
                );
            }
        }
        let id = key.rsplit(':').next().unwrap().to_owned();
        for index in ["s:alice", "k:app"] {
            let key = format!("{prefix}{index}");
            let score: Option<f64> = redis::cmd("ZSCORE")
                .arg(&key)
                .arg(&id)
                .query_async(conn)
                .await
                .unwrap();
            assert_eq!(
                score,
                Some(grant as f64),
                "{index} lists the grant as long as it lives"
            );
            assert!(expires_at(conn, &key).await >= grant);
        }
        grant
    };
    let first = check(&mut conn).await;
    let issued = i64::try_from(h.clock.now()).unwrap();
    assert_eq!(
        first,
        issued + 9 * 86_400,
        "8 days of refresh token, a day ahead"
    );
    for _ in 0..3 {
        h.advance(3600);
        rt = h.refresh(APP, &rt).await.assert_token()["refresh_token"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            check(&mut conn).await,
            first,
            "within the margin: nothing rewritten"
        );
    }
    h.advance(2 * 86_400);
    rt = h.refresh(APP, &rt).await.assert_token()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let now = i64::try_from(h.clock.now()).unwrap();
    assert_eq!(
        check(&mut conn).await,
        now + 9 * 86_400,
        "past it: extended"
    );
    assert_eq!(h.server.revoke_client("app").await.unwrap(), 1);
    h.refresh(APP, &rt).await.assert_error(400, "invalid_grant");
}

#[tokio::test]
async fn redis_cluster_indexes_keep_a_grant_that_cannot_rotate_no_longer_than_its_token() {
    // On a cluster the indexes live apart from the grants and are written beside them. A grant
    // without a refresh token (client_credentials) is listed until its access token expires, not
    // a margin longer: a busy machine client issues many of them, and its index holds each one
    // as long as its score says. A grant that may rotate is listed a margin ahead.
    let prefix = "tower-oauth2-test:cluster-keep:";
    let Some(store) = crate::support::backends::open_redis_cluster("cluster-keep").await else {
        return;
    };
    let h = harness_on(store, SystemClock.now(), |c| {
        c.access_token_lifetime = Duration::from_secs(600);
        c.refresh_token_lifetime = Duration::from_secs(8 * 86_400);
    });
    let issued = i64::try_from(h.clock.now()).unwrap();
    let cc = h
        .token(
            Some(("cc-only", "cc-secret")),
            "grant_type=client_credentials",
        )
        .await
        .assert_token();
    assert!(cc.get("refresh_token").is_none());
    h.login().await;
    let client = redis::cluster::ClusterClient::new(
        crate::support::backends::cluster_primaries(&crate::support::backends::redis_cluster_url())
            .await
            .unwrap(),
    )
    .unwrap();
    let mut conn = client.get_async_connection().await.unwrap();
    let mut scores = Vec::new();
    for index in ["k:cc-only", "k:app", "s:alice"] {
        let entries: Vec<(String, f64)> = redis::cmd("ZRANGE")
            .arg(format!("{prefix}{index}"))
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(entries.len(), 1, "{index}: {entries:?}");
        scores.push(entries[0].1 as i64 - issued);
    }
    assert_eq!(
        scores,
        [600, 9 * 86_400, 9 * 86_400],
        "client_credentials: its token's 10 minutes; the login: 8 days of refresh token and a day"
    );
}

#[tokio::test]
async fn redis_scripts_a_server_forgot_are_sent_again() {
    // A restarted server, a `SCRIPT FLUSH`, a new cluster node: the store's scripts are called
    // by hash, and a server that does not know one gets its text in the same call.
    let flush_all = async |nodes: Vec<String>| {
        for node in nodes {
            let client = redis::Client::open(node).unwrap();
            let mut conn = client.get_multiplexed_async_connection().await.unwrap();
            redis::cmd("SCRIPT")
                .arg("FLUSH")
                .query_async::<()>(&mut conn)
                .await
                .unwrap();
        }
    };
    let backends = [
        (
            crate::support::backends::open_redis("forgotten-scripts").await,
            vec![redis_url()],
        ),
        (
            crate::support::backends::open_redis_cluster("forgotten-scripts").await,
            crate::support::backends::cluster_primaries(
                &crate::support::backends::redis_cluster_url(),
            )
            .await
            .unwrap_or_default(),
        ),
    ];
    for (store, nodes) in backends {
        let Some(store) = store else { continue };
        let h = harness_on(store, SystemClock.now(), |_| {});
        flush_all(nodes.clone()).await;
        let (at, rt) = h.login().await;
        assert!(h.server.validate_access_token(&at).await.unwrap().is_some());
        flush_all(nodes.clone()).await;
        let reply = h.refresh(APP, &rt).await.assert_token();
        let at = reply["access_token"].as_str().unwrap().to_owned();
        flush_all(nodes).await;
        assert!(h.server.validate_access_token(&at).await.unwrap().is_some());
        h.refresh(APP, &rt).await.assert_error(400, "invalid_grant");
    }
}

#[tokio::test]
async fn redis_indexes_written_by_0_1_0_are_converted_and_still_revoked() {
    let prefix = "tower-oauth2-test:legacy-index:";
    let Some(store) = crate::support::backends::open_redis("legacy-index").await else {
        return;
    };
    let h = harness_on(Arc::clone(&store), SystemClock.now(), |_| {});
    let (at, _) = h.login().await;
    // Rewrite both indexes as 0.1.0 kept them: plain sets with the login's TTL.
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    for index in ["s:alice", "k:app"] {
        let key = format!("{prefix}{index}");
        let until = expires_at(&mut conn, &key).await;
        let ids: Vec<String> = redis::cmd("ZRANGE")
            .arg(&key)
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await
            .unwrap();
        redis::pipe()
            .del(&key)
            .sadd(&key, &ids)
            .cmd("EXPIREAT")
            .arg(&key)
            .arg(until)
            .query_async::<()>(&mut conn)
            .await
            .unwrap();
    }
    // A new login adds to the converted subject index; revocation finds both grants.
    let (at2, _) = h.login().await;
    assert_eq!(h.server.revoke_subject("alice").await.unwrap(), 2);
    assert!(!h.accepted(&at).await && !h.accepted(&at2).await);
    let (at3, _) = h.login_as(APP, "bob", "builder", "").await;
    assert_eq!(h.server.revoke_client("app").await.unwrap(), 1);
    assert!(!h.accepted(&at3).await);
}
