//! The endpoints as tower `Service`s: [`TokenEndpoint`] (RFC 6749 §3.2), [`RevocationEndpoint`]
//! (RFC 7009), [`IntrospectionEndpoint`] (RFC 7662) and [`MetadataEndpoint`] (RFC 8414).
//!
//! Each accepts `http::Request<B>` for any body type, so axum mounts it with `route_service` and
//! hyper serves it directly; every failure is a response (`Error = Infallible`).
//!
//! ```
//! use http::{Request, StatusCode};
//! use tower::ServiceExt;
//! use tower_oauth2::{AuthServer, Client, GrantType, InMemoryClients};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = AuthServer::builder()
//!     .clients(InMemoryClients::new().with(Client::confidential("svc", "s3cret").build()?))
//!     .build()?;
//! let request = Request::post("/oauth/token")
//!     .header("content-type", "application/x-www-form-urlencoded")
//!     .header("authorization", "Basic c3ZjOnMzY3JldA==") // svc:s3cret
//!     .body(String::from("grant_type=client_credentials"))?;
//! let response = server.token_endpoint().oneshot(request).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//! assert_eq!(response.headers()["cache-control"], "no-store");
//! # Ok(())
//! # }
//! ```
//!
#![doc = include_str!("../../docs/behaviour.md")]

pub(crate) mod authorize;
mod body;
pub(crate) mod client_auth;
pub(crate) mod future;
mod introspect;
mod jwks;
mod metadata;
mod post;
mod register;
pub(crate) mod response;
mod revoke;
mod userinfo;

pub use self::{
    authorize::{
        AGENT_COOKIE, AuthorizationContext, AuthorizationEndpoint, AuthorizationHandler, Decision,
        DeviceVerificationEndpoint, EndSessionEndpoint, Interaction, SECURE_AGENT_COOKIE,
        html_escape,
    },
    future::ResponseFuture,
    jwks::{JWKS_MAX_AGE_SECS, JwksEndpoint},
    metadata::{Metadata, MetadataEndpoint},
    post::{
        DeviceAuthorizationEndpoint, IntrospectionEndpoint, PushedAuthorizationEndpoint,
        RevocationEndpoint, TokenEndpoint,
    },
    register::RegistrationEndpoint,
    response::EndpointResponse,
    userinfo::UserinfoEndpoint,
};
use crate::server::AuthServer;

/// The endpoints, built from the server they serve.
impl AuthServer {
    /// The token endpoint (RFC 6749 §3.2) as a tower `Service`.
    pub fn token_endpoint(&self) -> TokenEndpoint {
        TokenEndpoint::new(self.clone())
    }

    /// The userinfo endpoint (OpenID Connect Core §5.3) as a tower `Service`, for `GET` and
    /// `POST /oauth/userinfo`: the claims of the access token's user that its scopes release,
    /// as JSON (or a JWT, for a client that registered `userinfo_signed_response_alg`). Guarded
    /// by [`bearer_layer`](AuthServer::bearer_layer): scope `openid`, and a token for no
    /// resource or for the issuer.
    pub fn userinfo_endpoint(&self) -> UserinfoEndpoint {
        UserinfoEndpoint::new(self.clone())
    }

    /// The end-session endpoint (OpenID Connect RP-Initiated Logout 1.0) as a tower `Service`,
    /// for `GET` and `POST /oauth/logout`: checks `id_token_hint`, `client_id` and
    /// `post_logout_redirect_uri`, asks the user to confirm unless the hint names a session
    /// this server knows, revokes the session's grants, calls the app's
    /// [`LogoutHandler`](crate::openid::LogoutHandler), and redirects (or says it is done).
    pub fn end_session_endpoint(&self) -> EndSessionEndpoint {
        EndSessionEndpoint::new(self.clone())
    }

    /// The revocation endpoint (RFC 7009) as a tower `Service`.
    pub fn revocation_endpoint(&self) -> RevocationEndpoint {
        RevocationEndpoint::new(self.clone())
    }

    /// The device authorization endpoint (RFC 8628) as a tower `Service`; the device grant
    /// must be allowed (`GrantType::DeviceCode`).
    pub fn device_authorization_endpoint(&self) -> DeviceAuthorizationEndpoint {
        DeviceAuthorizationEndpoint::new(self.clone())
    }

    /// The device grant's verification page (RFC 8628 §3.3) as a tower `Service`, for
    /// `Config::device_verification_uri`: the user enters the device's code, and the app's
    /// [`AuthorizationHandler`](crate::endpoint::AuthorizationHandler) decides, as for an
    /// authorization request.
    pub fn device_verification_endpoint(&self) -> DeviceVerificationEndpoint {
        DeviceVerificationEndpoint::new(self.clone())
    }

    /// The introspection endpoint (RFC 7662) as a tower `Service`.
    pub fn introspection_endpoint(&self) -> IntrospectionEndpoint {
        IntrospectionEndpoint::new(self.clone())
    }

    /// The metadata endpoint (RFC 8414) as a tower `Service`.
    pub fn metadata_endpoint(&self, metadata: Metadata) -> MetadataEndpoint {
        MetadataEndpoint::new(self, metadata)
    }

    /// The authorization endpoint (RFC 6749 §3.1), asking the app's
    /// [`AuthorizationHandler`](crate::endpoint::AuthorizationHandler) (set on the builder;
    /// without one every request gets a `server_error` page).
    pub fn authorization_endpoint(&self) -> AuthorizationEndpoint {
        AuthorizationEndpoint::new(self.clone())
    }

    /// The JWK Set endpoint, for `/.well-known/jwks.json`: the public signing keys.
    pub fn jwks_endpoint(&self) -> JwksEndpoint {
        JwksEndpoint::new(self)
    }

    /// Whether JWT access tokens can be signed (feature `jwt` and signing keys set).
    pub fn has_signing_keys(&self) -> bool {
        #[cfg(feature = "jwt")]
        return self.inner.keys.is_some();
        #[cfg(not(feature = "jwt"))]
        false
    }

    /// The pushed authorization request endpoint (RFC 9126), for `/oauth/par`.
    pub fn pushed_authorization_endpoint(&self) -> PushedAuthorizationEndpoint {
        PushedAuthorizationEndpoint::new(self.clone())
    }
}
