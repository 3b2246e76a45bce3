//! An MCP server (rmcp, the official Rust MCP SDK, over streamable HTTP) protected by
//! tower-oauth2, with the authorization server in the same process: what the MCP
//! authorization specification asks of both, in one axum app.
//!
//! ```sh
//! cargo run --example mcp_server                       # http://127.0.0.1:3200 (PORT overrides)
//! cargo run --example mcp_server -- --access-token-format jwt
//! cargo run --example mcp_server -- --documents-on-loopback ca.pem  # tests: documents on loopback
//! curl -i -X POST localhost:3200/mcp                   # 401, naming the resource metadata
//! curl localhost:3200/.well-known/oauth-protected-resource/mcp
//! ```
//!
//! - `POST|GET|DELETE /mcp` — the MCP endpoint, resource `http://127.0.0.1:3200/mcp`: a token
//!   must carry scope `mcp:tools` and be bound to this resource (RFC 8707). Its tools: `whoami`
//!   (the token's user, client and scope) and `add`. Without a token: 401 with
//!   `WWW-Authenticate: Bearer … resource_metadata="…", scope="mcp:tools"` (RFC 9728 §5.1).
//! - `GET /.well-known/oauth-protected-resource/mcp` — its protected-resource metadata
//!   (RFC 9728).
//! - The authorization server: `/.well-known/oauth-authorization-server` (RFC 8414), the
//!   authorization endpoint `/oauth/authorize` with the demo login (`test` / `test`), PAR, the
//!   token endpoint `/oauth/token`, revocation, introspection and `/.well-known/jwks.json`.
//! - Dynamic client registration at `/oauth/register` (RFC 7591; read, update and delete at
//!   `/oauth/register/{client_id}`, RFC 7592): open to public clients with `https` or loopback
//!   redirect URIs, scope `mcp:tools` at most; a registration unused for a day lapses.
//! - Client ID metadata documents: a `client_id` that is an `https` URL names the client's
//!   metadata, fetched from public addresses only (`--documents-on-loopback CA.pem` allows this
//!   machine's, for tests, trusting that CA).
//! - The pre-registered public client `mcp-client` (PKCE, any-port loopback redirect URIs
//!   `http://127.0.0.1/callback`, `http://localhost/callback`).
//! - A second resource, `http://127.0.0.1:3200/other`, which this server knows but does not
//!   serve: a token asked for it is refused at `/mcp` (the confused deputy the MCP spec warns
//!   about).

#[path = "quickstart/login.rs"]
mod login;

use std::net::SocketAddr;

use rmcp::{
    ErrorData,
    handler::server::{tool::Extension, wrapper::Parameters},
    schemars, tool, tool_router,
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    },
};
use tower_oauth2::{
    AccessTokenFormat, AuthServer, Client, GrantType, InMemoryClients, Metadata, Scope, TokenInfo,
    bearer::ProtectedResourceMetadata,
    events::Event,
    jose::{KeySet, SigningKey},
    registration::{ClientIdMetadataDocuments, Registration},
};

/// The scope the MCP endpoint requires.
const SCOPE: &str = "mcp:tools";

/// The MCP server: two tools.
#[derive(Clone)]
struct Tools;

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct AddRequest {
    /// The first number.
    a: i64,
    /// The second number.
    b: i64,
}

#[tool_router(server_handler)]
impl Tools {
    /// Who the token says the caller is: what the bearer layer put into the request.
    #[tool(description = "The subject, client and scope of the access token of this call")]
    fn whoami(
        &self,
        Extension(parts): Extension<http::request::Parts>,
    ) -> Result<String, ErrorData> {
        let token = parts
            .extensions
            .get::<TokenInfo>()
            .ok_or_else(|| ErrorData::internal_error("no token details", None))?;
        Ok(serde_json::json!({
            "sub": token.subject.as_deref(),
            "client_id": &*token.client_id,
            "scope": token.scope.as_str(),
        })
        .to_string())
    }

    #[tool(description = "Add two integers")]
    fn add(&self, Parameters(AddRequest { a, b }): Parameters<AddRequest>) -> String {
        a.saturating_add(b).to_string()
    }
}

/// The command line: the access-token format, and how client ID metadata documents are
/// fetched.
struct Args {
    format: AccessTokenFormat,
    documents: ClientIdMetadataDocuments,
}

fn args() -> Result<Args, String> {
    let usage = "usage: mcp_server [--access-token-format opaque|jwt] \
                 [--documents-on-loopback CA.pem]";
    let mut format = std::env::var("ACCESS_TOKEN_FORMAT").ok();
    let mut documents = ClientIdMetadataDocuments::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| match arg.split_once('=') {
            Some((n, v)) if n == name => Some(v.to_owned()),
            None if arg == name => args.next(),
            _ => None,
        };
        if let Some(v) = value("--access-token-format") {
            format = Some(v);
        } else if let Some(file) = value("--documents-on-loopback") {
            // For tests: documents served on this machine, by a server whose certificate
            // this CA issued. Never in production: loopback is refused by default.
            let pem = std::fs::read_to_string(&file).map_err(|e| format!("{file}: {e}"))?;
            documents = documents
                .allow_addresses(|ip| ip.is_loopback())
                .tls_root_certificates(pem);
        } else {
            return Err(format!("{usage}, got {arg:?}"));
        }
    }
    let format = match format.as_deref() {
        None | Some("" | "opaque") => AccessTokenFormat::Opaque,
        Some("jwt") => AccessTokenFormat::Jwt,
        Some(other) => return Err(format!("{usage}: unknown access token format {other:?}")),
    };
    Ok(Args { format, documents })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Args { format, documents } = args()?;
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p
            .parse()
            .map_err(|_| format!("PORT must be a port number, got {p:?}"))?,
        Err(_) => 3200,
    };
    let origin = format!("http://127.0.0.1:{port}");
    let resource = format!("{origin}/mcp");

    // The authorization server: the MCP server's resource (and a second one it does not
    // serve), a public client for MCP apps, and the demo login.
    let clients = InMemoryClients::new().with(
        Client::public("mcp-client")
            .grant_types([GrantType::AuthorizationCode, GrantType::RefreshToken])
            .redirect_uri("http://127.0.0.1/callback")
            .redirect_uri("http://localhost/callback")
            .scope(SCOPE)
            .build()?,
    );
    let login = login::DemoLogin::new(&[("test", "test")]);
    let server = AuthServer::builder()
        .clients(clients)
        .configure(|c| {
            c.issuer = Some(origin.clone());
            c.resources = vec![resource.clone(), format!("{origin}/other")];
            // A client that names no resource still gets a token for the MCP server only.
            c.default_resource = Some(resource.clone());
            c.access_token_format = format;
        })
        .signing_keys(KeySet::new(SigningKey::generate_es256()))
        .authorization_handler(login.handler())
        // MCP clients nobody registered register themselves (RFC 7591): public clients with
        // https or loopback redirect URIs, asking for the MCP scope at most.
        .registration(Registration::new().allowed_scope(Scope::parse(SCOPE)?))
        // Or they name their metadata document by URL (client ID metadata documents).
        .client_id_metadata_documents(documents.allowed_scope(Scope::parse(SCOPE)?))
        // What was issued, and for which resource, on standard error.
        .on_event(|event: &Event| eprintln!("event: {event:?}"))
        .build()?;

    // The protected resource: its metadata, and the bearer layer bound to it.
    let metadata = ProtectedResourceMetadata::new(&resource)
        .authorization_server(&origin)
        .scopes_supported([SCOPE])
        .resource_name("tower-oauth2 MCP example");
    let guard = server
        .bearer_layer()
        .audience(&resource)
        .resource_metadata(metadata.metadata_url())
        .require_scope(Scope::parse(SCOPE)?);
    let mcp = StreamableHttpService::new(
        || Ok(Tools),
        LocalSessionManager::default().into(),
        StreamableHttpServerConfig::default(),
    );

    let app = axum::Router::new()
        .nest_service(
            "/mcp",
            tower::ServiceBuilder::new().layer(guard).service(mcp),
        )
        .route_service(&metadata.well_known_path(), metadata.endpoint())
        .route_service(
            "/.well-known/oauth-authorization-server",
            server.metadata_endpoint(Metadata::new(&origin)),
        )
        .route_service("/.well-known/jwks.json", server.jwks_endpoint())
        .route_service("/oauth/authorize", server.authorization_endpoint())
        .route_service("/oauth/par", server.pushed_authorization_endpoint())
        .route_service("/oauth/token", server.token_endpoint())
        .route_service("/oauth/revoke", server.revocation_endpoint())
        .route_service("/oauth/introspect", server.introspection_endpoint())
        .route_service("/oauth/register", server.registration_endpoint())
        .route_service(
            "/oauth/register/{client_id}",
            server.registration_endpoint(),
        )
        .merge(login.routes(server.clone()));

    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    println!(
        "tower-oauth2 MCP server on {resource} (sign in as test / test; client mcp-client)\n\
         protected-resource metadata: {}",
        metadata.metadata_url()
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
