//! The userinfo endpoint (OpenID Connect Core §5.3): the signed-in user's claims, for an access
//! token of an OpenID grant. It is a protected resource like any other: the server's
//! [`BearerLayer`](crate::BearerLayer) guards it (scope `openid`; a token meant for another
//! resource is refused), so its refusals are the layer's, RFC 6750 challenges and all; the token
//! may also come in a form body (RFC 6750 §2.2, Core §5.3.1).

use std::{
    convert::Infallible,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body::Body;
use http_body_util::Full;
use serde_json::{Map, Value};
use tower_layer::Layer;
use tower_service::Service;

use super::{
    body,
    future::ResponseFuture,
    response::{self, EndpointResponse},
};
use crate::{
    bearer::{Bearer, FormBodyToken, FormBodyTokenLayer, TokenInfo},
    error::{BoxError, ErrorKind, OAuthError},
    grant::openid,
    scope::Scope,
    server::AuthServer,
};

/// `GET` and `POST` `/oauth/userinfo` (OpenID Connect Core §5.3). Built by
/// [`AuthServer::userinfo_endpoint`].
#[derive(Clone)]
pub struct UserinfoEndpoint {
    server: AuthServer,
    guarded: FormBodyToken<Bearer<Claims>>,
}

impl std::fmt::Debug for UserinfoEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserinfoEndpoint").finish_non_exhaustive()
    }
}

impl UserinfoEndpoint {
    pub(crate) fn new(server: AuthServer) -> Self {
        let mut layer = server
            .bearer_layer()
            .require_scope(Scope::parse("openid").unwrap_or_default());
        // The endpoint is the issuer's: a token for another resource (RFC 8707) is not for it.
        if let Some(issuer) = &server.config().issuer {
            if crate::resource::normalize(issuer).is_ok() {
                layer = layer.audience(issuer).allow_no_audience(true);
            }
        }
        let guarded = FormBodyTokenLayer::new(&server).layer(layer.layer(Claims {
            server: server.clone(),
        }));
        Self { server, guarded }
    }
}

impl<B> Service<Request<B>> for UserinfoEndpoint
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = EndpointResponse;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> ResponseFuture {
        let server = self.server.clone();
        let mut guarded = self.guarded.clone();
        ResponseFuture(Box::pin(async move {
            let (parts, body) = req.into_parts();
            let bytes = match parts.method {
                Method::GET => Bytes::new(),
                Method::POST => {
                    let limit = server.config().max_body_bytes;
                    match body::read_capped(&parts.headers, body, limit).await {
                        Ok(b) => b,
                        Err(e) => return error(&server, &e),
                    }
                }
                _ => {
                    let mut res = error(
                        &server,
                        &OAuthError::new(ErrorKind::MethodNotAllowed, "use GET or POST"),
                    );
                    res.headers_mut()
                        .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
                    return res;
                }
            };
            let req = Request::from_parts(parts, Full::new(bytes));
            match guarded.call(req).await {
                Ok(res) => res,
                Err(never) => match never {},
            }
        }))
    }
}

/// The endpoint behind the guard: the token is valid, for this endpoint, with `openid`.
#[derive(Clone)]
pub(crate) struct Claims {
    server: AuthServer,
}

impl Service<Request<Full<Bytes>>> for Claims {
    type Response = EndpointResponse;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Full<Bytes>>) -> ResponseFuture {
        let server = self.server.clone();
        let info = req.extensions().get::<TokenInfo>().cloned();
        ResponseFuture(Box::pin(async move {
            match info {
                Some(info) => userinfo(&server, &info).await,
                None => error(&server, &OAuthError::bare(ErrorKind::ServerError)),
            }
        }))
    }
}

/// The claims of the token's user that its scope releases to its client: JSON, or a JWT
/// signed for the client when it registered `userinfo_signed_response_alg` (Core §5.3.2).
async fn userinfo(server: &AuthServer, info: &TokenInfo) -> EndpointResponse {
    let ctx = server.context();
    let refused = |description: &'static str| bearer_refusal(server, description);
    // A client acting for itself has no user to describe.
    let Some(subject) = &info.subject else {
        return refused("The access token has no user");
    };
    let client = match server.client(&info.client_id).await {
        Ok(Some(client)) => client,
        Ok(None) => return refused("The access token's client is gone"),
        Err(e) => return error(server, &e),
    };
    let sub = match openid::subject_for(ctx, &client, subject) {
        Ok(sub) => sub,
        Err(e) => return error(server, &e),
    };
    let mut claims = Map::new();
    claims.insert("sub".into(), Value::String(sub));
    claims.extend(openid::claims(ctx, &client, subject, &info.scope).await);
    let Some(alg) = client.userinfo_signed_response_alg() else {
        return response::json(StatusCode::OK, response::to_json(&claims));
    };
    let issuer = server.config().issuer.clone().unwrap_or_default();
    claims.insert("iss".into(), Value::String(issuer));
    claims.insert("aud".into(), Value::String(client.id().to_owned()));
    claims.insert("iat".into(), Value::from(server.now()));
    match openid::sign(ctx, &client, alg, None, &claims) {
        Ok(jwt) => {
            let mut res = response::json(StatusCode::OK, jwt.into_bytes());
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/jwt"),
            );
            res
        }
        Err(e) => error(server, &e),
    }
}

/// An error answered as JSON (RFC 6749 §5.2 shape; 503 for a store failure).
fn error(server: &AuthServer, e: &OAuthError) -> EndpointResponse {
    response::error(e, &server.config().realm, false)
}

/// 401 `invalid_token` for a token the layer accepted but the endpoint cannot answer for, with
/// the challenge the layer would send.
fn bearer_refusal(server: &AuthServer, description: &'static str) -> EndpointResponse {
    let realm = crate::wire::header::quote(&server.config().realm);
    let challenge = format!(
        "Bearer realm=\"{realm}\", error=\"invalid_token\", error_description=\"{description}\""
    );
    let mut res = Response::new(Full::new(Bytes::new()));
    *res.status_mut() = StatusCode::UNAUTHORIZED;
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        h.insert(header::WWW_AUTHENTICATE, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}
