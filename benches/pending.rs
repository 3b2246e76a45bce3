//! What pending authorization requests cost each store: 100 000 requests started at the
//! authorization endpoint (each from a new user agent, each left waiting for the login page),
//! then the store's growth per request and the time the whole took, on the store that `STORE`
//! names (memory when unset; `redis://…`, `postgres://…`).
//!
//! `STORE=redis://127.0.0.1:6379 cargo bench --bench pending` (Linux: reads VmRSS from
//! /proc/self/status; Redis: INFO memory; PostgreSQL: the table's size). `REQUESTS` changes the
//! count, `STATE_BYTES` the length of each request's `state` (32; at most 2048 are kept). Keys and the schema are the benchmark's own and are removed at the end.

use std::{sync::Arc, time::Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use tower::ServiceExt;
use tower_oauth2::{
    AuthServer, Client, InMemoryClients,
    endpoint::{AuthorizationContext, Interaction},
    store::{MemoryStore, PostgresStore, RedisStore, TokenStore},
};

const PREFIX: &str = "tower-oauth2-bench-pending:";
const SCHEMA: &str = "tower_oauth2_bench_pending";

fn rss_bytes() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb * 1024.0)
}

fn redis_used(url: &str) -> f64 {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_connection().unwrap();
    let info: String = redis::cmd("INFO").arg("memory").query(&mut conn).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(f64::NAN)
}

async fn postgres_size(url: &str) -> f64 {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let q = format!("SELECT pg_total_relation_size('{SCHEMA}.oauth_records')::float8");
    client
        .query_one(&q, &[])
        .await
        .map_or(f64::NAN, |r| r.get(0))
}

async fn cleanup(url: Option<&str>) {
    match url {
        Some(u) if u.starts_with("redis") => {
            let client = redis::Client::open(u).unwrap();
            let mut conn = client.get_connection().unwrap();
            // SCAN, not KEYS: the server may hold much else, which KEYS would block on.
            let mut cursor = 0u64;
            loop {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(format!("{PREFIX}*"))
                    .arg("COUNT")
                    .arg(1000)
                    .query(&mut conn)
                    .unwrap();
                if !keys.is_empty() {
                    let _: () = redis::cmd("DEL").arg(&keys).query(&mut conn).unwrap();
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Some(u) => {
            let (client, conn) = tokio_postgres::connect(u, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            let _ = client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
                .await;
        }
        None => {}
    }
}

async fn measure(url: Option<&str>) -> f64 {
    match url {
        None => rss_bytes(),
        Some(u) if u.starts_with("redis") => redis_used(u),
        Some(u) => postgres_size(u).await,
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("STORE").ok();
    let requests: usize = std::env::var("REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    cleanup(url.as_deref()).await;
    let store: Arc<dyn TokenStore> = match url.as_deref() {
        None => Arc::new(MemoryStore::new()),
        Some(u) if u.starts_with("redis") => {
            Arc::new(RedisStore::builder(u).prefix(PREFIX).build()?)
        }
        Some(u) => {
            let s = PostgresStore::builder(u).schema(SCHEMA).build()?;
            s.migrate().await?;
            Arc::new(s)
        }
    };
    let server = AuthServer::builder()
        .clients(
            InMemoryClients::new().with(
                Client::public("spa")
                    .redirect_uri("https://spa.example/cb")
                    .build()?,
            ),
        )
        .configure(|c| {
            c.issuer = Some("https://auth.example".into());
            c.max_pending_authorizations = u64::MAX;
        })
        .authorization_handler(|_: AuthorizationContext| async {
            Interaction::Respond(http::Response::new(Full::new(Bytes::from_static(b"login"))))
        })
        .shared_store(store)
        .build()?;
    // A typical request: a 32-character state (STATE_BYTES for another length), PKCE, two
    // scopes.
    let state_bytes: usize = std::env::var("STATE_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32);
    let query = format!(
        "response_type=code&client_id=spa&redirect_uri=https%3A%2F%2Fspa.example%2Fcb\
         &scope=read+write&state={}\
         &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
        "s".repeat(state_bytes)
    );
    let before = measure(url.as_deref()).await;
    let started = Instant::now();
    for _ in 0..requests {
        let req = Request::get(format!("/oauth/authorize?{query}"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let res = server.authorization_endpoint().oneshot(req).await.unwrap();
        assert_eq!(res.status(), 200);
    }
    let took = started.elapsed();
    let after = measure(url.as_deref()).await;
    let store = url
        .as_deref()
        .map_or("memory", |u| u.split(':').next().unwrap_or(u));
    println!(
        "pending requests ({state_bytes}-byte state), {store}: {requests} in {:.1} s ({:.0}/s), store grew {:.1} MB, {:.0} bytes per request",
        took.as_secs_f64(),
        requests as f64 / took.as_secs_f64(),
        (after - before) / 1e6,
        (after - before) / requests as f64
    );
    cleanup(url.as_deref()).await;
    Ok(())
}
