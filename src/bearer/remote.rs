//! One HTTP exchange with the authorization server, for the validators that run in another
//! process (introspection, JWKS): bounded in time and in the size of the answer, and any failure
//! a [`StoreError`] (the layer's 503), never a verdict on the token.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::{Client as HttpClient, connect::HttpConnector};

use crate::error::StoreError;

/// The plain-HTTP/1.1 client both validators use.
pub(crate) type Http = HttpClient<HttpConnector, Full<Bytes>>;

/// The most of an answer that is read: introspection answers and key sets are a few KiB.
pub(crate) const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// A client whose connection attempts give up after `timeout`.
pub(crate) fn client(timeout: Duration) -> Http {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(timeout));
    HttpClient::builder(hyper_util::rt::TokioExecutor::new()).build(connector)
}

/// Send `request` and read the whole answer, within `timeout` and [`MAX_ANSWER_BYTES`].
pub(crate) async fn exchange(
    http: &Http,
    request: Request<Full<Bytes>>,
    timeout: Duration,
) -> Result<(StatusCode, Bytes), StoreError> {
    let call = async {
        let response = http
            .request(request)
            .await
            .map_err(StoreError::unavailable)?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|e| {
                StoreError::unavailable(format!("answer from the authorization server: {e}"))
            })?
            .to_bytes();
        Ok::<_, StoreError>((status, body))
    };
    tokio::time::timeout(timeout, call)
        .await
        .map_err(|_| StoreError::Timeout)?
}
