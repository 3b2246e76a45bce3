//! # tower-oauth2
//!
//! An OAuth 2.0 authorization server and resource server for any tower app (axum, tonic, hyper):
//!
//! - [`TokenEndpoint`]: a tower `Service` that *is* the token endpoint — `authorization_code`
//!   with PKCE, `password`, `client_credentials` and `refresh_token` with rotation, reuse
//!   detection and family revocation (RFC 6749, RFC 7636, RFC 9700);
//! - [`RevocationEndpoint`] (RFC 7009), [`IntrospectionEndpoint`] (RFC 7662) and
//!   [`MetadataEndpoint`] (RFC 8414);
//! - [`BearerLayer`]: a tower `Layer` guarding routes with bearer tokens (RFC 6750);
//! - one [`TokenStore`](store::TokenStore) shared by all of them; in memory by default.
//!
//! ```text
//!                  ┌──────────────────── AuthServer (Arc, cheap to clone) ───────────────────┐
//!                  │ config   clock   events   clients: ClientStore   users   tokens: TokenStore │
//!                  └───────┬───────────────┬───────────────┬──────────────────┬──────────────┘
//! HTTP request ─▶ TokenEndpoint      RevocationEndpoint  IntrospectionEndpoint  BearerLayer ─▶ handler
//!                  │ body (capped) → form (no repeats) → client authentication     │ TokenInfo in
//!                  ▼                                                               ▼ extensions
//!               grant::{authorization_code, password, client_credentials, refresh_token}
//!                  │ pure protocol logic: form in, TokenResponse or OAuthError out
//!                  ▼
//!               TokenStore: MemoryStore (default) │ your own
//! ```
//!
//! ## In a few lines
//!
//! ```
//! use axum::{Router, routing::{get, post}};
//! use tower_oauth2::{AuthServer, Client, GrantType, InMemoryClients, bearer::TokenInfo, user::DemoUsers};
//!
//! # fn main() -> Result<(), tower_oauth2::ConfigError> {
//! let server = AuthServer::builder()
//!     .clients(InMemoryClients::new().with(Client::confidential("testclient", "secret").build()?))
//!     .users(DemoUsers::new().with("test", "test"))
//!     .allow_grant_type(GrantType::Password)
//!     .build()?;
//!
//! let app: Router = Router::new()
//!     .route("/api/me", get(|axum::Extension(t): axum::Extension<TokenInfo>| async move {
//!         format!("{:?}", t.subject)
//!     }))
//!     .route_layer(server.bearer_layer()) // route_layer: unknown paths stay 404
//!     .route_service("/oauth/token", server.token_endpoint());
//! # let _ = app;
//! # Ok(())
//! # }
//! ```
//!
//! ## Feature flags
//!
//! The default build has the endpoints, the bearer layer and the memory store, and nothing that
//! pulls in a network client or a framework. Everything else is opt-in:
//!
//! | feature | what it adds | brings in |
//! | --- | --- | --- |
//! | `axum` | [`TokenInfo`] as an axum extractor (`bearer::MissingTokenInfo` when unguarded) | `axum-core` |
//! | `redis` | `store::RedisStore`: Lua scripts, one round trip per operation | `redis` |
//! | `postgres` | `store::PostgresStore`: one statement per operation, migrations included | `tokio-postgres`, `deadpool-postgres` |
//! | `introspection` | `bearer::IntrospectionValidator`: RFC 7662 against a remote authorization server | `hyper`, `hyper-util` |
//! | `jwt` | `jose::KeySet`: JWT access tokens (RFC 9068, ES256, EdDSA or RS256), the JWKS endpoint, `bearer::JwtValidator`; OpenID Connect (`openid::OpenId`: ID tokens, userinfo, discovery, logout) | `jsonwebtoken` (AWS-LC backend), `aws-lc-rs`, `pem`, `hyper` |
//! | `tls` | `https://` for `IntrospectionValidator` and `JwtValidator`, and client ID metadata documents (`registration::ClientIdMetadataDocuments`): the system's root certificates, or the app's (`tls_root_certificates`) | `rustls` (AWS-LC), `hyper-rustls`, `rustls-native-certs` |
//! | `test-util` | `conformance`, `token_store_conformance!` and `client_registry_conformance!`: the conformance suites for a `TokenStore` or a `ClientRegistry` of your own | tokio's multi-threaded runtime |
//!
#![doc = include_str!("../docs/mounting.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs, rust_2018_idioms, unreachable_pub, unsafe_code)]

pub mod bearer;
mod bounded;
pub mod client;
pub mod clock;
pub mod config;
#[cfg(feature = "test-util")]
pub mod conformance;
pub mod endpoint;
pub mod error;
pub mod events;
pub mod future;
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzz;
pub mod grant;
#[cfg(feature = "jwt")]
pub mod jose;
pub mod openid;
pub mod registration;
pub mod resource;
pub mod scope;
mod server;
pub mod store;
pub mod token;
pub mod user;
mod wire;

#[doc(no_inline)]
pub use self::future::BoxFuture;
pub use self::{
    bearer::{BearerLayer, TokenInfo},
    client::{Client, ClientStore, GrantType, GrantTypes, InMemoryClients},
    config::{AccessTokenFormat, Config, OnRefresh},
    endpoint::{
        IntrospectionEndpoint, Metadata, MetadataEndpoint, RevocationEndpoint, TokenEndpoint,
    },
    error::{ConfigError, OAuthError, StoreError},
    grant::{AuthorizationRequest, PendingAuthorization, TokenResponse},
    scope::Scope,
    server::{AuthServer, AuthServerBuilder},
    token::GrantId,
};
