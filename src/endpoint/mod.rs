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

mod authorize;
mod body;
pub(crate) mod client_auth;
mod introspect;
mod jwks;
mod metadata;
pub(crate) mod response;
mod revoke;

use std::{
    convert::Infallible,
    fmt,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use http::{Method, Request};
use http_body::Body;

pub use self::{
    authorize::{
        AGENT_COOKIE, AuthorizationContext, AuthorizationEndpoint, AuthorizationHandler, Decision,
        Interaction, html_escape,
    },
    jwks::{JWKS_MAX_AGE_SECS, JwksEndpoint},
    metadata::{Metadata, MetadataEndpoint},
    response::EndpointResponse,
};
use crate::{
    error::OAuthError,
    error::{BoxError, ErrorKind},
    future::BoxFuture,
    grant::TokenRequest,
    server::AuthServer,
};

/// The future every endpoint returns.
pub struct ResponseFuture(BoxFuture<'static, EndpointResponse>);

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResponseFuture")
    }
}

impl Future for ResponseFuture {
    type Output = Result<EndpointResponse, Infallible>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll(cx).map(Ok)
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Token,
    Revocation,
    Introspection,
    PushedAuthorization,
}

/// The common path of the POST endpoints: method, body, form, client — each once — then the
/// endpoint's own logic.
async fn handle<B>(server: AuthServer, kind: Kind, req: Request<B>) -> EndpointResponse
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let (parts, body) = req.into_parts();
    let basic = client_auth::attempted_http_auth(&parts.headers);
    let result = async {
        if parts.method != Method::POST {
            return Err(OAuthError::new(ErrorKind::MethodNotAllowed, "use POST"));
        }
        let form = body::read_form(&parts.headers, body, server.config().max_body_bytes).await?;
        let client = client_auth::authenticate(&server, &parts.headers, &form).await?;
        match kind {
            Kind::Token => {
                crate::grant::exchange(server.context(), &TokenRequest::new(&client, &form))
                    .await
                    .map(|t| response::token(&t))
            }
            Kind::Revocation => revoke::revoke(&server, &client, &form).await,
            Kind::Introspection => introspect::introspect(&server, &client, &form).await,
            Kind::PushedAuthorization => authorize::push(&server, &client, &form).await,
        }
    }
    .await;
    result.unwrap_or_else(|e| response::error(&e, &server.config().realm, basic))
}

macro_rules! post_endpoint {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug)]
        pub struct $name {
            server: AuthServer,
        }

        impl $name {
            /// The endpoint for `server`.
            pub fn new(server: AuthServer) -> Self {
                Self { server }
            }
        }

        endpoint_service!($name, |server, req| handle(server, $kind, req));
    };
}

/// The tower `Service` of an endpoint holding `server`: always ready, each call one boxed
/// future of `$handle(server, req)`.
macro_rules! endpoint_service {
    ($name:ident, |$server:ident, $req:ident| $handle:expr) => {
        impl<B> tower_service::Service<Request<B>> for $name
        where
            B: Body + Send + 'static,
            B::Data: Send,
            B::Error: Into<BoxError>,
        {
            type Response = EndpointResponse;
            type Error = Infallible;
            type Future = ResponseFuture;

            fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
                Poll::Ready(Ok(()))
            }

            fn call(&mut self, $req: Request<B>) -> Self::Future {
                let $server = self.server.clone();
                ResponseFuture(Box::pin($handle))
            }
        }
    };
}
pub(crate) use endpoint_service;

post_endpoint!(
    /// The token endpoint (RFC 6749 §3.2): every grant type, POST with a form body.
    TokenEndpoint,
    Kind::Token
);
post_endpoint!(
    /// The revocation endpoint (RFC 7009). Revoking a refresh token revokes its whole family;
    /// revoking an access token revokes that token. Unknown tokens and other clients' tokens get
    /// 200 with no effect.
    RevocationEndpoint,
    Kind::Revocation
);
post_endpoint!(
    /// The pushed authorization request endpoint (RFC 9126): the client authenticates as at the
    /// token endpoint and posts its authorization request, which is validated like one at the
    /// authorization endpoint (every error as JSON, never a redirect) and kept; the answer is a
    /// single-use `request_uri` and its `expires_in`, which the client then sends to the
    /// authorization endpoint with its `client_id`.
    PushedAuthorizationEndpoint,
    Kind::PushedAuthorization
);
post_endpoint!(
    /// The introspection endpoint (RFC 7662), for authorised clients only. Anything not active
    /// is exactly `{"active":false}`.
    IntrospectionEndpoint,
    Kind::Introspection
);

pub(crate) use self::authorize::{complete as authorize_complete, pending as authorize_pending};
