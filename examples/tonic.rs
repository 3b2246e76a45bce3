//! A tonic gRPC service protected by the bearer layer, with per-method scopes.
//!
//! ```sh
//! cargo run --example tonic                      # gRPC on 127.0.0.1:50051 (PORT overrides),
//!                                                # token endpoint on 127.0.0.1:50052 (TOKEN_PORT)
//! curl -u testclient:secret -d 'grant_type=password&username=test&password=test&scope=read' \
//!   localhost:50052/oauth/token
//! cargo run --example tonic -- client ACCESS_TOKEN   # calls List and Add, prints each Status
//! ```
//!
//! `notes.Notes/List` needs scope `read`, `notes.Notes/Add` needs `write`. tonic's interceptors
//! are synchronous, so the asynchronous token check is a tower layer added with
//! `Server::builder().layer(..)`. Rejections are gRPC statuses: `UNAUTHENTICATED` (16) without
//! a valid token, `PERMISSION_DENIED` (7) without the scope, `UNAVAILABLE` (14) when the token
//! store is down — each with the RFC 6750 `WWW-Authenticate` header as well.
//!
//! The token endpoint runs on a neighbouring axum server sharing the same token store.

#[path = "grpc_notes/mod.rs"]
mod grpc_notes;

use std::net::SocketAddr;

use grpc_notes::{ADD, LIST, NotesClient, NotesServer};
use tower_oauth2::{AuthServer, Client, GrantType, InMemoryClients, Scope, user::DemoUsers};

fn port(var: &str, default: u16) -> Result<u16, String> {
    match std::env::var(var) {
        Ok(p) => p
            .parse()
            .map_err(|_| format!("{var} must be a port number, got {p:?}")),
        Err(_) => Ok(default),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let grpc_port = port("PORT", 50051)?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [cmd, token] = args.as_slice() {
        if cmd == "client" {
            return client(grpc_port, token).await;
        }
    }
    if !args.is_empty() {
        return Err("usage: tonic [client ACCESS_TOKEN]".into());
    }
    let token_port = port("TOKEN_PORT", 50052)?;

    let server = AuthServer::builder()
        .clients(
            InMemoryClients::new().with(
                Client::confidential("testclient", "secret")
                    .grant_types([
                        GrantType::Password,
                        GrantType::RefreshToken,
                        GrantType::ClientCredentials,
                    ])
                    .scope("read write")
                    .build()?,
            ),
        )
        .users(DemoUsers::new().with("test", "test"))
        .allow_grant_type(GrantType::Password)
        .build()?;

    // The token endpoint, on a neighbour sharing the store.
    let token_app = axum::Router::new().route_service("/oauth/token", server.token_endpoint());
    let token_listener =
        tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], token_port))).await?;
    tokio::spawn(async move { axum::serve(token_listener, token_app).await });

    let bearer = server
        .bearer_layer()
        .require_scope_for(LIST, Scope::parse("read")?)
        .require_scope_for(ADD, Scope::parse("write")?);
    let addr = SocketAddr::from(([127, 0, 0, 1], grpc_port));
    println!(
        "notes.Notes gRPC on {addr}; token endpoint on http://127.0.0.1:{token_port}/oauth/token"
    );
    println!(
        "Try: curl -u testclient:secret -d 'grant_type=password&username=test&password=test&scope=read' localhost:{token_port}/oauth/token"
    );
    println!("     cargo run --example tonic -- client ACCESS_TOKEN");
    tonic::transport::Server::builder()
        .layer(bearer)
        .add_service(NotesServer::default())
        .serve_with_shutdown(addr, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

async fn client(port: u16, token: &str) -> Result<(), Box<dyn std::error::Error>> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))?
        .connect()
        .await?;
    let mut notes = NotesClient::new(channel, Some(token));
    match notes.add("hello from the tonic example").await {
        Ok(note) => println!("Add: OK {note:?}"),
        Err(s) => println!("Add: {:?} ({})", s.code(), s.message()),
    }
    match notes.list().await {
        Ok(list) => println!("List: OK {} notes: {:?}", list.notes.len(), list.notes),
        Err(s) => println!("List: {:?} ({})", s.code(), s.message()),
    }
    Ok(())
}
