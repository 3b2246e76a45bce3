//! The response future of [`super::Bearer`], a named future with no box on the fast path.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use http::{HeaderMap, Request, Response, Uri};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::{
    challenge::Rejection,
    requirement::{Requirement, decide},
    response::{DefaultRejection, RenderRejection},
    validator::Validation,
};
use crate::{error::StoreError, future::BoxFuture};

type Pending = BoxFuture<'static, Result<Validation, StoreError>>;

pin_project! {
    /// The response future of [`super::Bearer`]: validating, then the inner service's future —
    /// or a rejection, without boxing the inner future.
    pub struct ResponseFuture<S, B, R = DefaultRejection>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S, B, R>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B, R>
    where
        S: Service<Request<B>>,
    {
        // Boxed: only asynchronous validators take this path, and keeping it out of line keeps
        // the fast path's future as small as the inner future.
        Validating {
            pending: Box<Validating<S, B, R>>,
        },
        Inner {
            #[pin]
            future: S::Future,
        },
        // Boxed like `Validating`: rejections are the rare path, and an inline response would
        // make every future (and the frameworks' boxes around it) larger.
        Rejected {
            response: Option<Box<S::Response>>,
        },
    }
}

struct Validating<S, B, R> {
    validation: Pending,
    request: Option<Request<B>>,
    inner: Option<S>,
    requirement: Arc<Requirement>,
    grpc: bool,
    render: R,
}

impl<S, B, R> fmt::Debug for ResponseFuture<S, B, R>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResponseFuture")
    }
}

impl<S, B, R> ResponseFuture<S, B, R>
where
    S: Service<Request<B>>,
{
    pub(crate) fn validating(
        validation: Pending,
        request: Request<B>,
        inner: S,
        requirement: Arc<Requirement>,
        grpc: bool,
        render: R,
    ) -> Self {
        Self {
            state: State::Validating {
                pending: Box::new(Validating {
                    validation,
                    request: Some(request),
                    inner: Some(inner),
                    requirement,
                    grpc,
                    render,
                }),
            },
        }
    }

    pub(crate) fn inner(future: S::Future) -> Self {
        Self {
            state: State::Inner { future },
        }
    }

    pub(crate) fn rejected(response: S::Response) -> Self {
        Self {
            state: State::Rejected {
                response: Some(Box::new(response)),
            },
        }
    }
}

impl<S, B, R, ResBody> Future for ResponseFuture<S, B, R>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    R: RenderRejection<ResBody>,
    ResBody: Default,
{
    type Output = Result<Response<ResBody>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let next = match this.state.as_mut().project() {
                StateProj::Validating { pending } => {
                    let Validating {
                        validation,
                        request,
                        inner,
                        requirement,
                        grpc,
                        render,
                    } = &mut **pending;
                    let verdict = ready!(validation.as_mut().poll(cx));
                    let reject = |r, req: Option<&Request<B>>| {
                        let (empty_uri, empty) = (Uri::default(), HeaderMap::new());
                        let parts = req.map_or((&empty_uri, &empty), |q| (q.uri(), q.headers()));
                        let response = requirement.refuse(r, &*render, parts, *grpc);
                        State::Rejected {
                            response: Some(Box::new(response)),
                        }
                    };
                    match (decide(verdict, requirement), inner.take()) {
                        (Ok(info), Some(mut svc)) => match request.take() {
                            Some(mut req) => {
                                req.extensions_mut().insert(info);
                                State::Inner {
                                    future: svc.call(req),
                                }
                            }
                            // Only reachable if polled after completion; answer, never panic.
                            None => reject(Rejection::Unavailable, None),
                        },
                        (Err(rejection), _) => reject(rejection, request.take().as_ref()),
                        (Ok(_), None) => reject(Rejection::Unavailable, request.take().as_ref()),
                    }
                }
                StateProj::Inner { future } => return future.poll(cx),
                StateProj::Rejected { response } => {
                    return Poll::Ready(Ok(response.take().map(|r| *r).unwrap_or_default()));
                }
            };
            this.state.set(next);
        }
    }
}
