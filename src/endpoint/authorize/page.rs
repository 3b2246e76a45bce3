//! The endpoint's own pages: the error page (the app's, or a plain built-in one) and the headers
//! every page carries.

use bytes::Bytes;
use http::{
    HeaderValue, Response, StatusCode,
    header::{self, CACHE_CONTROL, CONTENT_TYPE, PRAGMA},
};
use http_body_util::Full;

use crate::{
    endpoint::response::EndpointResponse,
    error::{ErrorKind, OAuthError},
    server::AuthServer,
};

/// The error page: the app's, if its handler renders one, or the built-in one — the error,
/// plainly, with no link back to the client.
pub(super) fn page(server: &AuthServer, err: &OAuthError) -> EndpointResponse {
    titled_page(
        server,
        err,
        "This authorization request cannot be completed",
    )
}

/// The error page, headed `heading` (the end-session endpoint's names a sign-out).
pub(super) fn titled_page(
    server: &AuthServer,
    err: &OAuthError,
    heading: &str,
) -> EndpointResponse {
    if let Some(cause) = err.store_error() {
        tracing::warn!(error = %cause, "token store failure at the authorization endpoint");
    }
    if let Some(res) = server
        .inner
        .authorization
        .as_ref()
        .and_then(|h| h.error_page(err))
    {
        return with_page_headers(res);
    }
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{0}</title>\n<style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem}}</style></head>\n<body><h1>{0}</h1>\n<p><code>{1}</code>: {2}</p>\n<p>Return to the application you came from and try again.</p></body></html>\n",
        html_escape(heading),
        html_escape(err.code()),
        html_escape(err.description().unwrap_or("")),
    );
    let mut res = Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = match err.kind() {
        ErrorKind::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    with_page_headers(res)
}

/// What every page of the endpoint carries: not cached, not framed, no referrer.
pub(super) fn with_page_headers(mut res: EndpointResponse) -> EndpointResponse {
    let h = res.headers_mut();
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("frame-ancestors 'none'"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}

/// Escape text for HTML element content and attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
