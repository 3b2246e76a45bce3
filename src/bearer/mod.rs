//! The resource-server side: [`BearerLayer`] guards routes with bearer tokens (RFC 6750).
//!
//! The layer reads `Authorization: Bearer <token>`, validates it (against the authorization
//! server's store by default) and passes the request on with a [`TokenInfo`] in its extensions.
//! Otherwise it answers itself, with the RFC 6750 §3 challenge:
//!
//! | request | status | `WWW-Authenticate` |
//! | --- | --- | --- |
//! | no bearer credentials | 401 | `Bearer realm="…"` |
//! | malformed header or token, two methods | 400 | `Bearer realm="…", error="invalid_request", …` |
//! | unknown, revoked or expired token | 401 | `Bearer realm="…", error="invalid_token", …` |
//! | token lacks a required scope | 403 | `Bearer realm="…", error="insufficient_scope", …, scope="…"` |
//! | token store unavailable | 503 | — |
//!
//! A resource server describes itself with [`ProtectedResourceMetadata`] (RFC 9728), which
//! [`BearerLayer::resource_metadata`] names in every challenge.
//!
//! The body of a refusal is the app's to word ([`BearerLayer::render_rejection`]: RFC 9457
//! problem details, say); the status, the challenge and `no-store` stay the layer's.
//!
//! With axum, add it with `route_layer` so that unknown paths stay 404 instead of becoming 401.
//! `route_layer` wraps every route added before it, so give each differently guarded group of
//! routes its own `Router` and `merge` them.
//!
//! Tokens elsewhere than the header are refused unless the app opts in: in the query string with
//! [`BearerLayer::allow_query_token`], in a form body with [`FormBodyTokenLayer`] in front.
//!
//! ```
//! use http::{Request, StatusCode};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//! use tower_oauth2::{AuthServer, Client, InMemoryClients, Scope, bearer::TokenInfo};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = AuthServer::builder()
//!     .clients(InMemoryClients::new().with(Client::confidential("svc", "s3cret").build()?))
//!     .build()?;
//! let app = ServiceBuilder::new()
//!     .layer(server.bearer_layer().require_scope(Scope::parse("read")?))
//!     .service(service_fn(|req: Request<String>| async move {
//!         let info = req.extensions().get::<TokenInfo>().cloned();
//!         Ok::<_, std::convert::Infallible>(http::Response::new(format!("{info:?}")))
//!     }));
//!
//! let response = app.oneshot(Request::get("/").body(String::new())?).await?;
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//! assert_eq!(response.headers()["www-authenticate"], "Bearer realm=\"tower-oauth2\"");
//! # Ok(())
//! # }
//! ```
//!
#![doc = include_str!("../../docs/resource-servers.md")]

#[cfg(feature = "axum")]
mod axum;
mod challenge;
pub(crate) mod credentials;
mod form_body;
mod future;
#[cfg(feature = "introspection")]
mod introspection;
#[cfg(feature = "jwt")]
mod jwt;
mod layer;
#[cfg(any(feature = "introspection", feature = "jwt"))]
mod remote;
mod requirement;
mod resource_metadata;
mod response;
mod service;
mod validator;
#[cfg(feature = "jwt")]
mod verified;

use std::sync::Arc;

#[cfg(feature = "axum")]
pub use self::axum::MissingTokenInfo;
#[cfg(feature = "introspection")]
pub use self::introspection::{IntrospectionValidator, IntrospectionValidatorBuilder};
#[cfg(feature = "jwt")]
pub use self::jwt::{JwtValidator, JwtValidatorBuilder};
#[cfg(any(feature = "introspection", feature = "jwt"))]
pub use self::remote::RemoteOptions;
pub use self::{
    form_body::{FormBodyToken, FormBodyTokenLayer},
    future::ResponseFuture,
    layer::BearerLayer,
    resource_metadata::{ProtectedResourceMetadata, ProtectedResourceMetadataEndpoint},
    response::{DefaultRejection, Rejection, RejectionContext, RenderRejection},
    service::Bearer,
    validator::{Both, LocalValidator, Validation, Validator},
};
use crate::{
    clock::UnixTime, resource::Resources, scope::Scope, store::AccessTokenRecord, token::GrantId,
};

/// What the layer learned about a valid token; inserted into the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenInfo {
    /// The client the token was issued to.
    pub client_id: Arc<str>,
    /// The resource owner, absent for `client_credentials` tokens.
    pub subject: Option<Arc<str>>,
    /// The token's scope.
    pub scope: Scope,
    /// When it was issued.
    pub issued_at: UnixTime,
    /// When it expires.
    pub expires_at: UnixTime,
    /// The grant (family) it belongs to, when validated locally.
    pub grant_id: Option<GrantId>,
    /// The resources it is for (RFC 8707, its `aud`), as far as the validator knows; empty
    /// for a token with no audience (or one whose audience is not made of URIs).
    pub audience: Resources,
}

impl TokenInfo {
    /// Details for a token validated elsewhere (e.g. by introspection).
    pub fn new(
        client_id: impl Into<Arc<str>>,
        scope: Scope,
        issued_at: UnixTime,
        expires_at: UnixTime,
    ) -> Self {
        Self {
            client_id: client_id.into(),
            subject: None,
            scope,
            issued_at,
            expires_at,
            grant_id: None,
            audience: Resources::empty(),
        }
    }

    /// With the resources it is for.
    #[must_use]
    pub fn with_audience(mut self, audience: Resources) -> Self {
        self.audience = audience;
        self
    }

    /// With a resource owner.
    #[must_use]
    pub fn with_subject(mut self, subject: impl Into<Arc<str>>) -> Self {
        self.subject = Some(subject.into());
        self
    }
}

impl From<AccessTokenRecord> for TokenInfo {
    fn from(r: AccessTokenRecord) -> Self {
        Self {
            client_id: r.grant.client_id,
            subject: r.grant.subject,
            scope: r.scope,
            issued_at: r.issued_at,
            expires_at: r.expires_at,
            grant_id: Some(r.grant.id),
            audience: r.audience,
        }
    }
}
