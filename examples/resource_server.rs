//! A resource server in its own process, protecting its routes by RFC 7662 introspection
//! against the running quickstart (the authorization server).
//!
//! ```sh
//! cargo run --example quickstart                      # the authorization server, :3000
//! cargo run --example resource_server                 # this resource server, :3001 (PORT)
//! AT=$(curl -s -u testclient:secret -d 'grant_type=password&username=test&password=test' \
//!        localhost:3000/oauth/token | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
//! curl -H "Authorization: Bearer $AT" localhost:3001/api/me
//! ```
//!
//! Settings (env): `INTROSPECTION_URL` (default `http://127.0.0.1:3000/oauth/introspect`),
//! `RS_CLIENT_ID` / `RS_CLIENT_SECRET` — this server's own credentials at the authorization
//! server (default the quickstart's `testclient` / `secret`, which may introspect) — and
//! `CACHE_TTL` in seconds (default 30). When the authorization server is down, protected routes
//! answer 503, not 401.

use std::{net::SocketAddr, time::Duration};

use axum::{Extension, Json, Router, routing::get};
use serde_json::{Value, json};
use tower_oauth2::{BearerLayer, Scope, TokenInfo, bearer::IntrospectionValidator};

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

async fn me(Extension(token): Extension<TokenInfo>) -> Json<Value> {
    Json(json!({
        "served_by": "resource_server",
        "client_id": &*token.client_id,
        "user": token.subject.as_deref(),
        "scope": token.scope.as_str(),
        "expires_at": token.expires_at,
    }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = env("PORT", "3001")
        .parse()
        .map_err(|_| "PORT must be a port number")?;
    let ttl: u64 = env("CACHE_TTL", "30")
        .parse()
        .map_err(|_| "CACHE_TTL must be seconds")?;
    let url = env(
        "INTROSPECTION_URL",
        "http://127.0.0.1:3000/oauth/introspect",
    );
    let validator = IntrospectionValidator::builder(
        url.clone(),
        env("RS_CLIENT_ID", "testclient"),
        env("RS_CLIENT_SECRET", "secret"),
    )
    .cache_ttl(Duration::from_secs(ttl))
    .build()?;

    let app = Router::new()
        .route("/api/me", get(me))
        .route_layer(BearerLayer::with_validator(
            validator.clone(),
            "resource-server",
        ))
        .route(
            "/api/write",
            get(me).route_layer(
                BearerLayer::with_validator(validator, "resource-server")
                    .require_scope(Scope::parse("write")?),
            ),
        );
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    println!(
        "resource server on http://{} (GET /api/me, GET /api/write needs scope write), introspecting at {url}",
        listener.local_addr()?
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
