use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::{challenge::Rejection, service::Shared, validator::Validation};
use crate::{BoxFuture, error::StoreError};

type Pending = BoxFuture<'static, Result<Validation, StoreError>>;

pin_project! {
    /// The response future of [`super::Bearer`]: validating, then the inner service's future —
    /// or a rejection, without boxing the inner future.
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B>
    where
        S: Service<Request<B>>,
    {
        Validating {
            validation: Pending,
            request: Option<Request<B>>,
            inner: Option<S>,
            shared: Arc<Shared>,
        },
        Inner {
            #[pin]
            future: S::Future,
        },
        Rejected {
            rejection: Rejection,
            shared: Arc<Shared>,
        },
    }
}

impl<S, B> fmt::Debug for ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResponseFuture")
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    pub(crate) fn validating(
        validation: Pending,
        request: Request<B>,
        inner: S,
        shared: Arc<Shared>,
    ) -> Self {
        Self {
            state: State::Validating {
                validation,
                request: Some(request),
                inner: Some(inner),
                shared,
            },
        }
    }

    pub(crate) fn rejected(shared: &Arc<Shared>, rejection: Rejection) -> Self {
        Self {
            state: State::Rejected {
                rejection,
                shared: Arc::clone(shared),
            },
        }
    }
}

impl<S, B, ResBody> Future for ResponseFuture<S, B>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Output = Result<Response<ResBody>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let next = match this.state.as_mut().project() {
                StateProj::Validating {
                    validation,
                    request,
                    inner,
                    shared,
                } => {
                    let verdict = ready!(validation.as_mut().poll(cx));
                    let reject = |rejection| State::Rejected {
                        rejection,
                        shared: Arc::clone(shared),
                    };
                    match verdict {
                        Ok(Validation::Valid(info))
                            if shared.required.is_subset_of(&info.scope) =>
                        {
                            match (request.take(), inner.take()) {
                                (Some(mut req), Some(mut svc)) => {
                                    req.extensions_mut().insert(info);
                                    State::Inner {
                                        future: svc.call(req),
                                    }
                                }
                                // Only reachable if polled after completion; answer, never panic.
                                _ => reject(Rejection::Unavailable),
                            }
                        }
                        Ok(Validation::Valid(_)) => reject(Rejection::InsufficientScope),
                        Ok(Validation::Expired) => reject(Rejection::Expired),
                        Ok(_) => reject(Rejection::Invalid),
                        Err(err) => {
                            tracing::error!(error = %err, "bearer validation failed: store unavailable");
                            reject(Rejection::Unavailable)
                        }
                    }
                }
                StateProj::Inner { future } => return future.poll(cx),
                StateProj::Rejected { rejection, shared } => {
                    return Poll::Ready(Ok(shared.challenges.response(*rejection)));
                }
            };
            this.state.set(next);
        }
    }
}
