//! The quickstart: an OAuth 2.0 authorization server and a protected API in one axum app.
//!
//! ```sh
//! cargo run --example quickstart            # listens on 127.0.0.1:3000 (PORT overrides)
//! cargo run --example quickstart -- --store redis://127.0.0.1:6379      # shared store
//! cargo run --example quickstart -- --store postgres://postgres@127.0.0.1:5432/test
//! curl -X POST -H 'Authorization: Basic dGVzdGNsaWVudDpzZWNyZXQ=' \
//!   -d 'grant_type=password&username=test&password=test' localhost:3000/oauth/token
//! ```
//!
//! Routes:
//! - `POST /oauth/token` — the token endpoint (also at `/token`, the path of the
//!   oauth2-server-php examples, and `/api/oauth/token`, the Grape::OAuth2 one);
//! - `POST /oauth/revoke` (RFC 7009), `POST /oauth/introspect` (RFC 7662);
//! - `GET /.well-known/oauth-authorization-server` (RFC 8414);
//! - `GET /api/me` — protected: echoes the token's client, user and scope.
//!
//! Demo clients and users (those of the refresh-token guides users paste from): client `testclient`/`secret` with user
//! `test`/`test`, and client `TestClient`/`TestSecret` with user `bshaffer`/`brent123`.
//!
//! The token store is in memory unless `--store URL` (or env `STORE_URL`) names a Redis
//! (`redis://…`) or PostgreSQL (`postgres://…`) server; several instances on one shared store
//! accept each other's tokens and see each other's revocations at once.

use std::{io::Write, net::SocketAddr, sync::Arc};

use axum::{Extension, Json, Router, routing::get};
use serde_json::{Value, json};
use tower_oauth2::{
    AuthServer, Client, GrantType, InMemoryClients, Metadata, TokenInfo,
    events::Event,
    store::{MemoryStore, PostgresStore, RedisStore, TokenStore},
    user::DemoUsers,
};

/// `--store URL`, `--store=URL` or env `STORE_URL`; memory when absent.
fn store_url() -> Result<Option<String>, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => {}
        [flag, url] if flag == "--store" => return Ok(Some(url.clone())),
        [arg] if arg.starts_with("--store=") => {
            return Ok(Some(arg["--store=".len()..].to_owned()));
        }
        _ => return Err(format!("usage: quickstart [--store URL], got {args:?}")),
    }
    Ok(std::env::var("STORE_URL").ok().filter(|u| !u.is_empty()))
}

async fn open_store(url: Option<&str>) -> Result<Arc<dyn TokenStore>, Box<dyn std::error::Error>> {
    Ok(match url {
        None => Arc::new(MemoryStore::new()),
        Some(url) if url.starts_with("redis://") || url.starts_with("rediss://") => {
            Arc::new(RedisStore::new(url)?)
        }
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            let store = PostgresStore::new(url)?;
            store.migrate().await?;
            Arc::new(store)
        }
        Some(url) => return Err(format!("unsupported store URL {url:?}").into()),
    })
}

async fn me(Extension(token): Extension<TokenInfo>) -> Json<Value> {
    Json(json!({
        "client_id": &*token.client_id,
        "user": token.subject.as_deref(),
        "scope": token.scope.as_str(),
        "expires_at": token.expires_at,
    }))
}

fn demo_client(id: &str, secret: &str) -> Result<Client, tower_oauth2::ConfigError> {
    Client::confidential(id, secret)
        .grant_types([
            GrantType::Password,
            GrantType::RefreshToken,
            GrantType::ClientCredentials,
            GrantType::AuthorizationCode,
        ])
        .redirect_uri("http://localhost:3000/callback")
        .scope("read write offline_access")
        // May call the introspection endpoint, so the README's curl works.
        .introspect(true)
        .build()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p
            .parse()
            .map_err(|_| format!("PORT must be a port number, got {p:?}"))?,
        Err(_) => 3000,
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let url = store_url()?;
    let store = open_store(url.as_deref()).await?;

    let server = AuthServer::builder()
        .clients(
            InMemoryClients::new()
                .with(demo_client("testclient", "secret")?)
                .with(demo_client("TestClient", "TestSecret")?),
        )
        .users(
            DemoUsers::new()
                .with("test", "test")
                .with("bshaffer", "brent123"),
        )
        .allow_grant_type(GrantType::Password)
        .shared_store(store)
        .on_event(|event: &Event| eprintln!("event: {event:?}"))
        .build()?;

    let issuer = format!("http://localhost:{port}");
    let token = server.token_endpoint();
    let app = Router::new()
        .route("/api/me", get(me))
        // route_layer: only matched routes are guarded, so unknown paths stay 404.
        .route_layer(server.bearer_layer())
        .route_service("/oauth/token", token.clone())
        .route_service("/token", token.clone())
        .route_service("/api/oauth/token", token)
        .route_service("/oauth/revoke", server.revocation_endpoint())
        .route_service("/oauth/introspect", server.introspection_endpoint())
        .route_service(
            "/.well-known/oauth-authorization-server",
            server.metadata_endpoint(Metadata::new(issuer)),
        );

    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    // The URL may carry a password: print only its scheme.
    let kind = url
        .as_deref()
        .and_then(|u| u.split(':').next())
        .unwrap_or("memory");
    // Written, not println!-ed: a closed stdout (`… | head -1`) must not stop the server.
    let _ = writeln!(
        std::io::stdout(),
        "tower-oauth2 quickstart listening on http://{addr} (token store: {kind})\nTry:\n  curl -X POST -H 'Authorization: Basic dGVzdGNsaWVudDpzZWNyZXQ=' -d 'grant_type=password&username=test&password=test' localhost:{}/oauth/token",
        addr.port()
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
