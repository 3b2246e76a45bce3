//! Opening each store backend for a test: memory, Redis, PostgreSQL.
//!
//! Redis and PostgreSQL come from `REDIS_URL` / `DATABASE_URL` (defaults: the local servers).
//! Each test gets its own key prefix or schema, cleared when it opens. When a server cannot be
//! reached the test is skipped with a message — except under `CI=true`, where it fails.

use std::sync::Arc;

use tower_oauth2::store::{MemoryStore, PostgresStore, RedisStore, TokenStore};

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub fn unreachable(
    what: &str,
    url: &str,
    err: &dyn std::fmt::Display,
) -> Option<Arc<dyn TokenStore>> {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{what} at {url} is unreachable and CI=true requires it: {err}");
    }
    eprintln!(
        "SKIPPED: {what} at {url} is unreachable ({err}); set CI=true to make this a failure"
    );
    None
}

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Memory,
    Redis,
    Postgres,
}

pub async fn open(backend: Backend, test: &str) -> Option<Arc<dyn TokenStore>> {
    match backend {
        Backend::Memory => Some(Arc::new(MemoryStore::new())),
        Backend::Redis => open_redis(test).await,
        Backend::Postgres => open_postgres(test).await,
    }
}

pub async fn open_redis(test: &str) -> Option<Arc<dyn TokenStore>> {
    let url = redis_url();
    let prefix = format!("tower-oauth2-test:{test}:");
    // Clear what an earlier run of this test left.
    let cleared = async {
        let client = redis::Client::open(url.as_str())?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}*"))
            .query_async(&mut conn)
            .await?;
        if !keys.is_empty() {
            redis::cmd("DEL")
                .arg(keys)
                .query_async::<()>(&mut conn)
                .await?;
        }
        Ok::<_, redis::RedisError>(())
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
