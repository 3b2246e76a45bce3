use std::{
    borrow::Cow,
    fmt, mem,
    sync::Arc,
    task::{Context, Poll},
};

use http::{Request, Response, header::AUTHORIZATION};
use tower_service::Service;

use super::{
    TokenInfo,
    challenge::{Challenges, Rejection, is_grpc},
    future::ResponseFuture,
    validator::{Validation, Validator},
};
use crate::error::StoreError;

/// The verdict on a request: the token's details to pass on, or why it is refused.
pub(crate) fn decide(
    verdict: Result<Validation, StoreError>,
    required: &Scope,
) -> Result<TokenInfo, Rejection> {
    match verdict {
        Ok(Validation::Valid(info)) if required.is_subset_of(&info.scope) => Ok(info),
        Ok(Validation::Valid(_)) => Err(Rejection::InsufficientScope),
        Ok(Validation::Expired) => Err(Rejection::Expired),
        Ok(_) => Err(Rejection::Invalid),
        Err(err) => {
            tracing::error!(error = %err, "bearer validation failed: store unavailable");
            Err(Rejection::Unavailable)
        }
    }
}
use crate::{endpoint::form::decode, scope::Scope, token::is_b64token};

/// A required scope with its rendered challenges.
pub(crate) struct Requirement {
    pub(crate) scope: Scope,
    pub(crate) challenges: Challenges,
}

impl Requirement {
    pub(crate) fn new(realm: &str, scope: Scope) -> Self {
        Self {
            challenges: Challenges::new(realm, &scope),
            scope,
        }
    }
}

pub(crate) struct Shared {
    pub(crate) validator: Arc<dyn Validator>,
    /// What every path requires unless `per_path` names it.
    pub(crate) default: Arc<Requirement>,
    /// Exact paths (e.g. gRPC methods `/pkg.Service/Method`) with their own requirement.
    pub(crate) per_path: Vec<(Box<str>, Arc<Requirement>)>,
    pub(crate) allow_query: bool,
}

impl Shared {
    fn requirement<B>(&self, req: &Request<B>) -> &Arc<Requirement> {
        if self.per_path.is_empty() {
            return &self.default;
        }
        let path = req.uri().path();
        self.per_path
            .iter()
            .find(|(p, _)| &**p == path)
            .map_or(&self.default, |(_, r)| r)
    }
}

/// The service [`super::BearerLayer`] produces.
#[derive(Clone)]
pub struct Bearer<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S: fmt::Debug> fmt::Debug for Bearer<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bearer")
            .field("inner", &self.inner)
            .field("required", &self.shared.default.scope)
            .finish_non_exhaustive()
    }
}

impl<S> Bearer<S> {
    pub(crate) fn new(inner: S, shared: Arc<Shared>) -> Self {
        Self { inner, shared }
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

/// Where the token was found, if anywhere.
pub(crate) enum Extracted<'a> {
    /// A token from the header (its `b64token` syntax not yet checked: see [`Bearer::call`])
    /// or from the query (checked).
    Token(Cow<'a, str>),
    Missing,
    Malformed,
}

fn from_query(query: Option<&str>) -> Result<Option<String>, ()> {
    let mut found = None;
    for pair in query.unwrap_or("").split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if name == "access_token" {
            if found.is_some() {
                return Err(());
            }
            found = Some(decode(value.as_bytes()).map_err(|_| ())?);
        }
    }
    Ok(found)
}

pub(crate) fn extract<B>(req: &Request<B>, allow_query: bool) -> Extracted<'_> {
    let query = if allow_query {
        match from_query(req.uri().query()) {
            Ok(t) => t,
            Err(()) => return Extracted::Malformed,
        }
    } else {
        None
    };
    let mut headers = req.headers().get_all(AUTHORIZATION).iter();
    let header = match (headers.next(), headers.next()) {
        (_, Some(_)) => return Extracted::Malformed,
        (h, None) => h,
    };
    let bearer = match header.map(|h| h.to_str()) {
        None => None,
        Some(Err(_)) => return Extracted::Malformed,
        Some(Ok(value)) => {
            let value = value.trim();
            let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
            // RFC 7235 §2.1: the scheme is case-insensitive; other schemes are not bearer
            // credentials at all.
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| rest.trim_start())
        }
    };
    match (bearer, query) {
        // RFC 6750 §2: a client MUST NOT use more than one method.
        (Some(_), Some(_)) => Extracted::Malformed,
        (Some(token), None) => Extracted::Token(Cow::Borrowed(token)),
        (None, Some(token)) if is_b64token(&token) => Extracted::Token(Cow::Owned(token)),
        (None, Some(_)) => Extracted::Malformed,
        (None, None) => Extracted::Missing,
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Bearer<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let shared = &self.shared;
        let requirement = shared.requirement(&req);
        // Whether to answer in gRPC's terms is read only when answering (rejections are rare).
        let reject = |rejection, req: &Request<ReqBody>| {
            ResponseFuture::rejected(requirement.challenges.response(rejection, is_grpc(req)))
        };
        let validation = match extract(&req, shared.allow_query) {
            Extracted::Token(token) => match shared.validator.validate_now(&token) {
                // Fast path: decided without waiting, so the inner service (ready, as
                // `poll_ready` was forwarded) is called right here — no clone, no boxed future.
                Some(verdict) => {
                    return match decide(verdict, &requirement.scope) {
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
        ResponseFuture::validating(validation, req, inner, requirement, grpc)
    }
}
