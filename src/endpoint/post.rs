//! The POST endpoints — token, revocation, introspection, pushed authorization requests — and
//! the path they share: method, body, form, client, each once, then the endpoint's own logic.

use http::{Method, Request};
use http_body::Body;

use super::{
    authorize, body, client_auth,
    future::endpoint_service,
    introspect,
    response::{self, EndpointResponse},
    revoke,
};
use crate::{
    error::{BoxError, ErrorKind, OAuthError},
    grant::TokenRequest,
    server::AuthServer,
};

#[derive(Clone, Copy)]
enum Kind {
    Token,
    Revocation,
    Introspection,
    PushedAuthorization,
    DeviceAuthorization,
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
                let issued =
                    crate::grant::exchange(server.context(), &TokenRequest::new(&client, &form))
                        .await?;
                server.client_used(&client).await;
                Ok(response::token(&issued))
            }
            Kind::Revocation => revoke::revoke(&server, &client, &form).await,
            Kind::Introspection => introspect::introspect(&server, &client, &form).await,
            Kind::PushedAuthorization => authorize::push(&server, &client, &form).await,
            Kind::DeviceAuthorization => {
                let started = crate::grant::device::start(
                    server.context(),
                    &TokenRequest::new(&client, &form),
                )
                .await?;
                Ok(response::device_authorization(
                    &started,
                    &server.device_verification_uri(),
                ))
            }
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
    /// The device authorization endpoint (RFC 8628 §3.1): the client authenticates as at the
    /// token endpoint (a public client by its `client_id`) and asks with `scope` (and
    /// `resource`); the answer is a `device_code` (256 bits, kept hashed), a `user_code`
    /// (`XXXX-XXXX`), the `verification_uri` (and `_complete`), `expires_in` and `interval`.
    DeviceAuthorizationEndpoint,
    Kind::DeviceAuthorization
);
post_endpoint!(
    /// The introspection endpoint (RFC 7662), for authorised clients only. Anything not active
    /// is exactly `{"active":false}`.
    IntrospectionEndpoint,
    Kind::Introspection
);
