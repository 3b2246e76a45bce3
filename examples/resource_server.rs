//! A resource server in its own process, protecting its routes by RFC 7662 introspection
//! against the running quickstart (the authorization server) — or, with `--jwt`, by checking
//! JWT access tokens (RFC 9068) against the quickstart's published keys, with no call per
//! request.
//!
//! ```sh
//! cargo run --example quickstart                      # the authorization server, :3000
//! cargo run --example resource_server                 # this resource server, :3001 (PORT)
//! AT=$(curl -s -u testclient:secret -d 'grant_type=password&username=test&password=test' \
//!        localhost:3000/oauth/token | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
//! curl -H "Authorization: Bearer $AT" localhost:3001/api/me
//!
//! cargo run --example quickstart -- --access-token-format jwt
//! cargo run --example resource_server -- --jwt       # keys from the quickstart's metadata
//! ```
//!
//! Settings (env): `INTROSPECTION_URL` (default `http://127.0.0.1:3000/oauth/introspect`),
//! `RS_CLIENT_ID` / `RS_CLIENT_SECRET` — this server's own credentials at the authorization
//! server (default the quickstart's `testclient` / `secret`, which may introspect) — and
//! `CACHE_TTL` in seconds (default 30). When the authorization server is down, protected routes
//! answer 503, not 401. With `--jwt`: `ISSUER` and `AUDIENCE` (both default
//! `http://localhost:3000`, the quickstart's issuer and its tokens' default audience).

use std::{net::SocketAddr, time::Duration};

use axum::{Extension, Json, Router, routing::get};
use serde_json::{Value, json};
use tower_oauth2::{
    BearerLayer, Scope, TokenInfo,
    bearer::{IntrospectionValidator, JwtValidator, Validator},
};

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

/// The protected routes, whatever checks the tokens.
fn routes(validator: impl Validator + Clone) -> Result<Router, Box<dyn std::error::Error>> {
    Ok(Router::new()
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
        ))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = env("PORT", "3001")
        .parse()
        .map_err(|_| "PORT must be a port number")?;
    let ttl: u64 = env("CACHE_TTL", "30")
        .parse()
        .map_err(|_| "CACHE_TTL must be seconds")?;
    let jwt = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("--jwt") => true,
        Some(other) => return Err(format!("usage: resource_server [--jwt], got {other:?}").into()),
    };
    let (app, checking) = if jwt {
        let issuer = env("ISSUER", "http://localhost:3000");
        let validator =
            JwtValidator::from_issuer(issuer.clone(), env("AUDIENCE", &issuer)).build()?;
        (
            routes(validator)?,
            format!("checking JWTs against {issuer}'s keys"),
        )
    } else {
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
        (routes(validator)?, format!("introspecting at {url}"))
    };
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    println!(
        "resource server on http://{} (GET /api/me, GET /api/write needs scope write), {checking}",
        listener.local_addr()?
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
