//! Opening each store backend for a test: memory, Redis, PostgreSQL.
//!
//! Redis and PostgreSQL come from `REDIS_URL` / `DATABASE_URL` (defaults: the local servers), the
//! Redis Cluster from `REDIS_CLUSTER_URL` (default: the six local nodes `.ci/redis-cluster.sh`
//! starts).
//! Each test gets its own key prefix or schema, cleared when it opens. When a server cannot be
//! reached the test is skipped, and one line on standard error says so — except in CI (`CI` set
//! to anything but empty, `false` or `0`), where it fails.

use std::sync::Arc;

use tower_oauth2::store::{MemoryStore, PostgresStore, RedisStore, TokenStore};

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub fn redis_cluster_url() -> String {
    std::env::var("REDIS_CLUSTER_URL")
        .unwrap_or_else(|_| "redis+cluster://127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002".into())
}

pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Whether a value of the `CI` variable means "in CI": CI services set `true`, `1`, `yes` or
/// their own name; unset, empty, `false` and `0` mean a developer's machine.
pub fn is_ci(value: Option<&str>) -> bool {
    value.is_some_and(|v| !v.is_empty() && !v.eq_ignore_ascii_case("false") && v != "0")
}

pub fn unreachable(
    what: &str,
    url: &str,
    err: &dyn std::fmt::Display,
) -> Option<Arc<dyn TokenStore>> {
    let ci = std::env::var("CI").ok();
    if is_ci(ci.as_deref()) {
        panic!("{what} at {url} is unreachable and CI={ci:?} requires it: {err}");
    }
    // Once per backend and process, and past the test harness's capture (which holds what
    // `eprintln!` prints until a test fails), so a local run says plainly what it did not test.
    static SAID: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
    if !said.iter().any(|w| w == what) {
        said.push(what.to_owned());
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPING every {what} test: {what} at {url} is unreachable ({err}); \
             set CI=true to make this a failure"
        );
    }
    None
}

#[test]
fn any_ci_value_but_empty_false_or_zero_means_ci() {
    let cases = [
        (None, false),
        (Some(""), false),
        (Some("false"), false),
        (Some("FALSE"), false),
        (Some("0"), false),
        (Some("true"), true),
        (Some("1"), true),
        (Some("yes"), true),
        (Some("woodpecker"), true),
    ];
    for (value, ci) in cases {
        assert_eq!(is_ci(value), ci, "CI={value:?}");
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Memory,
    Redis,
    RedisCluster,
    Postgres,
}

/// [`open`], behind a near-cache whose announcement channel is up.
pub async fn open_cached(backend: Backend, test: &str) -> Option<Arc<dyn TokenStore>> {
    use tower_oauth2::{
        clock::SystemClock,
        store::{NearCache, NearCacheConfig},
    };
    let store = open(backend, test).await?;
    let cache = NearCache::new(store, Arc::new(SystemClock), NearCacheConfig::default());
    assert!(
        cache
            .wait_connected(std::time::Duration::from_secs(5))
            .await,
        "the {backend:?} announcement channel did not come up"
    );
    Some(Arc::new(cache))
}

pub async fn open(backend: Backend, test: &str) -> Option<Arc<dyn TokenStore>> {
    match backend {
        Backend::Memory => Some(Arc::new(MemoryStore::new())),
        Backend::Redis => open_redis(test).await,
        Backend::RedisCluster => open_redis_cluster(test).await,
        Backend::Postgres => open_postgres(test).await,
    }
}

/// A second instance's store on what [`open`] opened for `test` (same key prefix or schema),
/// through `url` when given (a proxy), as another process would connect.
pub fn open_again(backend: Backend, test: &str, url: Option<String>) -> Arc<dyn TokenStore> {
    match backend {
        Backend::Memory => panic!("a memory store is not shared between instances"),
        Backend::Redis | Backend::RedisCluster => Arc::new(
            RedisStore::builder(url.unwrap_or_else(|| match backend {
                Backend::Redis => redis_url(),
                _ => redis_cluster_url(),
            }))
            .prefix(format!("tower-oauth2-test:{test}:"))
            .timeout(std::time::Duration::from_millis(500))
            .connect_timeout(std::time::Duration::from_millis(500))
            .build()
            .unwrap(),
        ),
        Backend::Postgres => Arc::new(
            PostgresStore::builder(url.unwrap_or_else(database_url))
                .schema(format!("t_{test}"))
                .timeout(std::time::Duration::from_millis(500))
                .pool_size(4)
                .build()
                .unwrap(),
        ),
    }
}

pub async fn open_redis(test: &str) -> Option<Arc<dyn TokenStore>> {
    let url = redis_url();
    let prefix = format!("tower-oauth2-test:{test}:");
    // Clear what an earlier run of this test left.
    let cleared = async {
        let client = redis::Client::open(url.as_str())?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        clear_prefix(&mut conn, &prefix).await
    };
    match tokio::time::timeout(std::time::Duration::from_secs(3), cleared).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return unreachable("Redis", &url, &e),
        Err(e) => return unreachable("Redis", &url, &e),
    }
    let store = RedisStore::builder(url.clone())
        .prefix(prefix)
        .build()
        .unwrap();
    Some(Arc::new(store))
}

/// The nodes of the cluster at `url` that hold data (its primaries), as plain node URLs.
pub async fn cluster_primaries(url: &str) -> redis::RedisResult<Vec<String>> {
    let first = url
        .trim_start_matches("redis+cluster://")
        .split(',')
        .next()
        .unwrap_or_default();
    let client = redis::Client::open(format!("redis://{first}"))?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let nodes: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query_async(&mut conn)
        .await?;
    Ok(nodes
        .lines()
        .filter(|l| {
            let flags = l.split(' ').nth(2).unwrap_or_default();
            flags.split(',').any(|f| f == "master") && !flags.contains("fail")
        })
        .filter_map(|l| l.split(' ').nth(1)?.split('@').next())
        .map(|a| format!("redis://{a}"))
        .collect())
}

/// The keys matching `pattern` on one server, by `SCAN`. Not `KEYS`: that blocks the server
/// for the whole keyspace, and every other test's calls time out behind it when a load run has
/// left a million keys.
pub async fn scan_keys(
    conn: &mut redis::aio::MultiplexedConnection,
    pattern: &str,
) -> redis::RedisResult<Vec<String>> {
    let (mut cursor, mut found) = (0u64, Vec::new());
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(10_000)
            .query_async(conn)
            .await?;
        found.extend(keys);
        if next == 0 {
            // A key can come twice from one SCAN.
            found.sort();
            found.dedup();
            return Ok(found);
        }
        cursor = next;
    }
}

/// Delete the keys under `prefix` on one server, one `UNLINK` per key (keys of a cluster
/// node's different slots cannot go in one command).
async fn clear_prefix(
    conn: &mut redis::aio::MultiplexedConnection,
    prefix: &str,
) -> redis::RedisResult<()> {
    for key in scan_keys(conn, &format!("{prefix}*")).await? {
        redis::cmd("UNLINK")
            .arg(key)
            .query_async::<()>(conn)
            .await?;
    }
    Ok(())
}

pub async fn open_redis_cluster(test: &str) -> Option<Arc<dyn TokenStore>> {
    let url = redis_cluster_url();
    let prefix = format!("tower-oauth2-test:{test}:");
    // Clear what an earlier run of this test left, primary by primary.
    let cleared = async {
        for node in cluster_primaries(&url).await? {
            let client = redis::Client::open(node)?;
            let mut conn = client.get_multiplexed_async_connection().await?;
            clear_prefix(&mut conn, &prefix).await?;
        }
        Ok::<_, redis::RedisError>(())
    };
    match tokio::time::timeout(std::time::Duration::from_secs(5), cleared).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return unreachable("Redis Cluster", &url, &e),
        Err(e) => return unreachable("Redis Cluster", &url, &e),
    }
    let store = RedisStore::builder(url.clone())
        .prefix(prefix)
        .build()
        .unwrap();
    Some(Arc::new(store))
}

pub async fn open_postgres(test: &str) -> Option<Arc<dyn TokenStore>> {
    let url = database_url();
    let schema = format!("t_{test}");
    let dropped = async {
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .await
    };
    match tokio::time::timeout(std::time::Duration::from_secs(3), dropped).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return unreachable("PostgreSQL", &url, &e),
        Err(e) => return unreachable("PostgreSQL", &url, &e),
    }
    let store = PostgresStore::builder(url.clone())
        .schema(schema)
        .pool_size(8)
        .build()
        .unwrap();
    if let Err(e) = store.migrate().await {
        return unreachable("PostgreSQL", &url, &e);
    }
    Some(Arc::new(store))
}
