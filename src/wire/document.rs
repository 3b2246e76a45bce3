//! A JSON document rendered once and served as is (the authorization server's metadata, its
//! key set, a protected resource's metadata): one answer for both sides of the crate.

use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode, header};
use http_body_util::Full;

/// A JSON document served as rendered: GET and HEAD, 405 otherwise; `cache_control` when given.
pub(crate) fn serve(
    method: &Method,
    body: &Bytes,
    cache_control: Option<&HeaderValue>,
) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(body.clone()));
    if method != Method::GET && method != Method::HEAD {
        *res.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        *res.body_mut() = Full::new(Bytes::new());
        res.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return res;
    }
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(c) = cache_control {
        h.insert(header::CACHE_CONTROL, c.clone());
    }
    res
}
