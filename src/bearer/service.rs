//! [`Bearer`], the service [`super::BearerLayer`] makes: find the token, validate it, then call
//! the inner service with the token's details or answer with the challenge.

use std::{
    fmt, mem,
    sync::Arc,
    task::{Context, Poll},
};

use http::{Request, Response};
use tower_service::Service;

use super::{
    challenge::{Rejection, is_grpc},
    credentials::{Extracted, extract},
    future::ResponseFuture,
    requirement::{Shared, decide},
    response::{DefaultRejection, RenderRejection},
};
use crate::token::is_b64token;

/// The service [`super::BearerLayer`] produces; `R` words its refusals.
#[derive(Clone)]
pub struct Bearer<S, R = DefaultRejection> {
    inner: S,
    shared: Arc<Shared>,
    render: R,
}

impl<S: fmt::Debug, R> fmt::Debug for Bearer<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bearer")
            .field("inner", &self.inner)
            .field("required", &self.shared.default.scope)
            .finish_non_exhaustive()
    }
}

impl<S, R> Bearer<S, R> {
    pub(crate) fn new(inner: S, shared: Arc<Shared>, render: R) -> Self {
        Self {
            inner,
            shared,
            render,
        }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwrap.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, R, ReqBody, ResBody> Service<Request<ReqBody>> for Bearer<S, R>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    R: RenderRejection<ResBody>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody, R>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let shared = &self.shared;
        let requirement = shared.requirement(&req);
        // Whether to answer in gRPC's terms is read only when answering (rejections are rare).
        let render = &self.render;
        let reject = |rejection, req: &Request<ReqBody>| {
            let parts = (req.uri(), req.headers());
            ResponseFuture::rejected(requirement.refuse(rejection, render, parts, is_grpc(req)))
        };
        let validation = match extract(&req, shared.allow_query) {
            Extracted::Token(token) => match shared.validator.validate_now(&token) {
                // Fast path: decided without waiting, so the inner service (ready, as
                // `poll_ready` was forwarded) is called right here — no clone, no boxed future.
                Some(verdict) => {
                    return match decide(verdict, requirement) {
                        Ok(info) => {
                            req.extensions_mut().insert(info);
                            ResponseFuture::inner(self.inner.call(req))
                        }
                        // The syntax is checked only now: a token the store knows is one this
                        // server issued, so well-formed; one it does not know may be malformed,
                        // which is a bad request (RFC 6750 §3.1), not an invalid token.
                        Err(_) if !is_b64token(&token) => reject(Rejection::Malformed, &req),
                        Err(rejection) => reject(rejection, &req),
                    };
                }
                None if !is_b64token(&token) => return reject(Rejection::Malformed, &req),
                None => shared.validator.validate(&token),
            },
            Extracted::Missing => return reject(Rejection::Missing, &req),
            Extracted::Malformed => return reject(Rejection::Malformed, &req),
        };
        let requirement = Arc::clone(requirement);
        let grpc = is_grpc(&req);
        // The ready service handles this request; a fresh clone waits for the next
        // (tower's guidance on cloning inner services).
        let clone = self.inner.clone();
        let inner = mem::replace(&mut self.inner, clone);
        ResponseFuture::validating(
            validation,
            req,
            inner,
            requirement,
            grpc,
            self.render.clone(),
        )
    }
}
