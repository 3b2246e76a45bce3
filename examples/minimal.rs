//! The smallest complete server: a token endpoint and one protected route, on the memory store.
//!
//! ```sh
//! cargo run --example minimal      # http://127.0.0.1:3000 (PORT overrides)
//! curl -u app:app-secret -d grant_type=client_credentials localhost:3000/oauth/token
//! curl -H 'Authorization: Bearer ACCESS_TOKEN' localhost:3000/hello
//! ```

use axum::{Extension, Router, routing::get};
use tower_oauth2::{AuthServer, Client, InMemoryClients, TokenInfo};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let app_client = Client::confidential("app", "app-secret")
        .scope("read")
        .build()?;
    let server = AuthServer::builder()
        .clients(InMemoryClients::new().with(app_client))
        .build()?;
    let hello = |Extension(token): Extension<TokenInfo>| async move {
        format!("hello, {} (scope: {})\n", token.client_id, token.scope)
    };
    let app = Router::new()
        .route("/hello", get(hello))
        .route_layer(server.bearer_layer()) // unknown paths stay 404
        .route_service("/oauth/token", server.token_endpoint());
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
