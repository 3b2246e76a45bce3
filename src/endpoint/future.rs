//! The future every endpoint returns, and the `Service` impl they share.

use std::{
    convert::Infallible,
    fmt,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use super::response::EndpointResponse;
use crate::future::BoxFuture;

/// The future every endpoint returns.
pub struct ResponseFuture(pub(crate) BoxFuture<'static, EndpointResponse>);

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

/// The tower `Service` of an endpoint holding `server`: always ready, each call one boxed
/// future of `$handle(server, req)`.
macro_rules! endpoint_service {
    ($name:ident, |$server:ident, $req:ident| $handle:expr) => {
        impl<B> tower_service::Service<http::Request<B>> for $name
        where
            B: http_body::Body + Send + 'static,
            B::Data: Send,
            B::Error: Into<$crate::error::BoxError>,
        {
            type Response = $crate::endpoint::response::EndpointResponse;
            type Error = std::convert::Infallible;
            type Future = $crate::endpoint::future::ResponseFuture;

            fn poll_ready(
                &mut self,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Result<(), Self::Error>> {
                std::task::Poll::Ready(Ok(()))
            }

            fn call(&mut self, $req: http::Request<B>) -> Self::Future {
                let $server = self.server.clone();
                $crate::endpoint::future::ResponseFuture(Box::pin($handle))
            }
        }
    };
}
pub(crate) use endpoint_service;
