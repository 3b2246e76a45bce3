//! The benchmark server (run it with `--release`; `bench/load.sh` drives it with wrk).
//!
//! ```sh
//! cargo run --release --example bench_server -- --refresh-tokens /tmp/rt.txt --count 2000
//! ```
//!
//! On 127.0.0.1:3100 (env `PORT` overrides):
//! - `GET /public` and `GET /protected` return the same small JSON; the second is behind the
//!   bearer layer;
//! - `GET /forward` returns the same JSON behind a layer that does nothing (identity): what
//!   mounting any route layer costs in axum before it does any work — the reference that splits
//!   the protected route's cost into "a layer at all" and "the bearer check";
//! - `GET /floor` returns the same JSON behind a layer that, when an `Authorization` header is
//!   present, inserts a fixed `TokenInfo` into the request's extensions and does nothing else:
//!   the floor of any bearer layer that hands the token's details to handlers (what hyper and
//!   axum charge for the header and the extension, with no hashing or lookup);
//! - `POST /oauth/token` is the library's token endpoint;
//! - `POST /baseline/token` is a bare axum handler that parses the same form and returns a fixed
//!   JSON of the same size as a token response: the ceiling any token endpoint can reach here.
//!
//! It registers client `bench` / `bench-secret` (client_credentials, password and refresh_token
//! allowed) and user `bench` / `bench`, and with `--refresh-tokens FILE` writes `--count` (default
//! 1000) pre-issued refresh tokens to FILE, one a line, for chained refresh load.
//! `--store URL` runs on Redis or PostgreSQL instead of memory (keys under
//! `tower-oauth2-bench:`, tables in schema `tower_oauth2_bench`), with the near-cache unless
//! `--near-cache off` (env `NEAR_CACHE`) and a PostgreSQL pool of `--pool-size` connections (env
//! `POOL_SIZE`, default 32), or for Redis `REDIS_CONNECTIONS` multiplexed connections (default
//! 1); `--access-token-lifetime`,
//! `--refresh-token-lifetime` and `--sweep-interval` (seconds) shorten lifetimes for the soak
//! (`bench/soak.sh`), which also uses `POST /oauth/revoke`.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::Arc,
    task::{Context, Poll},
};

use axum::{Form, Json, Router, http::header, response::IntoResponse, routing::get, routing::post};
use serde_json::{Value, json};
use tower::ServiceExt;
use tower_oauth2::{
    AuthServer, Client, GrantType, InMemoryClients, Scope, TokenInfo,
    store::{MemoryStore, PostgresStore, RedisStore, TokenStore},
    user::DemoUsers,
};

async fn payload() -> Json<Value> {
    Json(json!({ "status": "ok", "items": [1, 2, 3] }))
}

/// A token response's size: 43-character tokens, as the library issues.
const BASELINE: &str = r#"{"access_token":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","token_type":"Bearer","expires_in":3600,"refresh_token":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","scope":"read write"}"#;

async fn baseline(Form(form): Form<HashMap<String, String>>) -> impl IntoResponse {
    let status = if form.contains_key("grant_type") {
        200
    } else {
        400
    };
    (
        axum::http::StatusCode::from_u16(status).unwrap_or_default(),
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        BASELINE,
    )
}

struct Options {
    refresh_tokens: Option<String>,
    count: usize,
    store: Option<String>,
    access_lifetime: Option<u64>,
    refresh_lifetime: Option<u64>,
    sweep: Option<u64>,
    near_cache: bool,
    pool_size: usize,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        refresh_tokens: None,
        count: 1000,
        store: None,
        access_lifetime: None,
        refresh_lifetime: None,
        sweep: None,
        near_cache: !matches!(std::env::var("NEAR_CACHE").as_deref(), Ok("off")),
        pool_size: std::env::var("POOL_SIZE")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(32),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--refresh-tokens" => o.refresh_tokens = Some(value()?),
            "--count" => o.count = value()?.parse().map_err(|_| "--count takes a number")?,
            "--store" => o.store = Some(value()?),
            "--access-token-lifetime" => {
                o.access_lifetime = Some(value()?.parse().map_err(|_| "seconds")?)
            }
            "--refresh-token-lifetime" => {
                o.refresh_lifetime = Some(value()?.parse().map_err(|_| "seconds")?)
            }
            "--sweep-interval" => o.sweep = Some(value()?.parse().map_err(|_| "seconds")?),
            "--pool-size" => {
                o.pool_size = value()?.parse().map_err(|_| "--pool-size takes a number")?
            }
            "--near-cache" => {
                o.near_cache = match value()?.as_str() {
                    "on" => true,
                    "off" => false,
                    _ => return Err("--near-cache takes on or off".into()),
                }
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(o)
}

async fn open_store(
    url: Option<&str>,
    sweep: Option<u64>,
    pool_size: usize,
) -> Result<Arc<dyn TokenStore>, Box<dyn std::error::Error>> {
    let redis_connections = std::env::var("REDIS_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    Ok(match url {
        None => Arc::new(MemoryStore::with_sweep_interval(
            std::time::Duration::from_secs(sweep.unwrap_or(60)),
        )),
        // Keys and tables of their own, which the bench scripts remove when done.
        Some(u) if u.starts_with("redis") => Arc::new(
            RedisStore::builder(u)
                .prefix("tower-oauth2-bench:")
                .connections(redis_connections)
                .build()?,
        ),
        Some(u) => {
            let s = PostgresStore::builder(u)
                .schema("tower_oauth2_bench")
                .pool_size(pool_size)
                .build()?;
            s.migrate().await?;
            Arc::new(s)
        }
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let opts = options()?;
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3100);
    let server = AuthServer::builder()
        .clients(
            InMemoryClients::new().with(
                Client::confidential("bench", "bench-secret")
                    .grant_types([
                        GrantType::ClientCredentials,
                        GrantType::Password,
                        GrantType::RefreshToken,
                    ])
                    .scope("read write")
                    .build()?,
            ),
        )
        .users(DemoUsers::new().with("bench", "bench"))
        .allow_grant_type(GrantType::Password)
        .configure(|c| {
            if let Some(s) = opts.access_lifetime {
                c.access_token_lifetime = std::time::Duration::from_secs(s);
            }
            if let Some(s) = opts.refresh_lifetime {
                c.refresh_token_lifetime = std::time::Duration::from_secs(s);
            }
            c.near_cache.enabled = opts.near_cache;
        })
        .shared_store(open_store(opts.store.as_deref(), opts.sweep, opts.pool_size).await?)
        .build()?;

    if let Some(path) = &opts.refresh_tokens {
        let mut out = String::new();
        for _ in 0..opts.count {
            let req = http::Request::post("/oauth/token")
                .header("content-type", "application/x-www-form-urlencoded")
                .header("authorization", "Basic YmVuY2g6YmVuY2gtc2VjcmV0")
                .body(String::from(
                    "grant_type=password&username=bench&password=bench",
                ))?;
            let res = server.token_endpoint().oneshot(req).await?;
            let body = http_body_util::BodyExt::collect(res.into_body())
                .await?
                .to_bytes();
            let v: Value = serde_json::from_slice(&body)?;
            out.push_str(v["refresh_token"].as_str().ok_or("no refresh token")?);
            out.push('\n');
        }
        std::fs::write(path, out)?;
    }

    // One route layer per route: `route_layer` wraps every route added before it, so each
    // layered route gets its own router.
    let protected = Router::new()
        .route("/protected", get(payload))
        .route_layer(server.bearer_layer());
    let forward = Router::new()
        .route("/forward", get(payload))
        .route_layer(tower::layer::layer_fn(|route| route));
    let floor = Router::new()
        .route("/floor", get(payload))
        .route_layer(tower::layer::layer_fn(InsertOnly::new));
    let app = Router::new()
        .merge(protected)
        .merge(forward)
        .merge(floor)
        .route("/public", get(payload))
        .route("/baseline/token", post(baseline))
        .route_service("/oauth/token", server.token_endpoint())
        .route_service("/oauth/revoke", server.revocation_endpoint());
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    println!(
        "bench_server listening on http://{} (near-cache {})",
        listener.local_addr()?,
        if opts.store.is_some() && opts.near_cache {
            "on"
        } else {
            "off"
        }
    );
    axum::serve(listener, app).await?;
    Ok(())
}

/// The floor of any bearer layer that hands details to handlers: no hashing, no lookup, no
/// clock — when an `Authorization` header is present, a fixed [`TokenInfo`] is inserted into
/// the request's extensions, as the bearer layer does for a valid token.
#[derive(Clone)]
struct InsertOnly<S> {
    inner: S,
    info: TokenInfo,
}

impl<S> InsertOnly<S> {
    fn new(inner: S) -> Self {
        let scope = Scope::parse("read write").expect("a valid scope");
        let info = TokenInfo::new("bench", scope, 0, u64::MAX).with_subject("bench");
        Self { inner, info }
    }
}

impl<S: tower::Service<http::Request<B>>, B> tower::Service<http::Request<B>> for InsertOnly<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> S::Future {
        if req.headers().contains_key(header::AUTHORIZATION) {
            req.extensions_mut().insert(self.info.clone());
        }
        self.inner.call(req)
    }
}
