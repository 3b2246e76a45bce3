//! Opt-in: accept the access token in a form-encoded body (RFC 6750 §2.2).
//!
//! A separate layer because reading a body needs to rebuild it (`B: From<Bytes>`), which the
//! bearer layer itself must not demand of every app (tonic's and hyper's bodies). Put it in front
//! of the bearer layer; it moves a body `access_token` into the `Authorization` header.
//!
//! ```
//! use axum::{Router, routing::post};
//! use tower::ServiceBuilder;
//! use tower_oauth2::bearer::FormBodyTokenLayer;
//! # fn app(server: tower_oauth2::AuthServer) -> Router {
//! Router::new().route("/api/notes", post(|| async { "ok" }).route_layer(
//!     ServiceBuilder::new()
//!         .layer(FormBodyTokenLayer::new(&server))
//!         .layer(server.bearer_layer()),
//! ))
//! # }
//! ```

use std::{
    fmt,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body::Body;
use http_body_util::{BodyExt, Limited};
use tower_layer::Layer;
use tower_service::Service;

use super::challenge::{Challenges, Rejection};
use crate::{
    error::BoxError,
    future::BoxFuture,
    scope::Scope,
    server::AuthServer,
    token::is_b64token,
    wire::{form::find_unique, header::is_form_media_type},
};

/// Moves an `access_token` from a form body into the `Authorization` header (RFC 6750 §2.2).
#[derive(Clone)]
#[must_use]
pub struct FormBodyTokenLayer {
    limit: usize,
    challenges: Arc<Challenges>,
}

impl fmt::Debug for FormBodyTokenLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FormBodyTokenLayer")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl FormBodyTokenLayer {
    /// With `server`'s realm and body cap.
    pub fn new(server: &AuthServer) -> Self {
        Self {
            limit: server.config().max_body_bytes,
            challenges: Arc::new(Challenges::new(
                &server.config().realm,
                &Scope::empty(),
                None,
            )),
        }
    }
}

impl<S> Layer<S> for FormBodyTokenLayer {
    type Service = FormBodyToken<S>;
    fn layer(&self, inner: S) -> Self::Service {
        FormBodyToken {
            inner,
            limit: self.limit,
            challenges: Arc::clone(&self.challenges),
        }
    }
}

/// The service [`FormBodyTokenLayer`] produces.
#[derive(Clone)]
pub struct FormBodyToken<S> {
    inner: S,
    limit: usize,
    challenges: Arc<Challenges>,
}

impl<S: fmt::Debug> fmt::Debug for FormBodyToken<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FormBodyToken")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

fn is_form(req: &Request<impl Sized>) -> bool {
    req.method() != Method::GET
        && req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(is_form_media_type)
}

impl<S, B, ResBody> Service<Request<B>> for FormBodyToken<S>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    B: Body + From<Bytes> + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response<ResBody>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if !is_form(&req) {
            return Box::pin(inner.call(req));
        }
        let limit = self.limit;
        let challenges = Arc::clone(&self.challenges);
        Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            let bytes = match Limited::new(body, limit).collect().await {
                Ok(c) => c.to_bytes(),
                Err(_) => {
                    let mut res = Response::new(ResBody::default());
                    *res.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
                    res.headers_mut()
                        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                    return Ok(res);
                }
            };
            // Only `access_token` matters here: the rest of the form is the app's, and may repeat
            // a field (a multi-select) or hold anything else the app accepts.
            let token = match find_unique(&bytes, "access_token") {
                Ok(token) => token.filter(|t| !t.is_empty()),
                Err(_) => {
                    return Ok(challenges.response(Rejection::Malformed, Some(Response::default())));
                }
            };
            if let Some(token) = token {
                // RFC 6750 §2: never more than one method; and the token must be a b64token.
                if parts.headers.contains_key(header::AUTHORIZATION) || !is_b64token(&token) {
                    return Ok(challenges.response(Rejection::Malformed, Some(Response::default())));
                }
                match HeaderValue::from_str(&format!("Bearer {token}")) {
                    Ok(v) => {
                        parts.headers.insert(header::AUTHORIZATION, v);
                    }
                    Err(_) => {
                        return Ok(
                            challenges.response(Rejection::Malformed, Some(Response::default()))
                        );
                    }
                }
            }
            inner.call(Request::from_parts(parts, B::from(bytes))).await
        })
    }
}
