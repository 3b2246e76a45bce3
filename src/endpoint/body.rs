//! Reading a request body: the content type checked, the length capped before and while reading,
//! then parsed once as a form.

use bytes::Buf;
use http::{HeaderMap, header::CONTENT_LENGTH};
use http_body::Body;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::{
    error::{BoxError, ErrorKind, OAuthError},
    wire::{form::Form, header::check_form_content_type},
};

/// Check the content type (RFC 6749 §3.2), then read the body up to `limit` bytes and parse it.
pub(crate) async fn read_form<B>(
    headers: &HeaderMap,
    body: B,
    limit: usize,
) -> Result<Form, OAuthError>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    Ok(Form::parse(&read_form_bytes(headers, body, limit).await?)?)
}

/// Check the content type, then read the body up to `limit` bytes, unparsed.
pub(crate) async fn read_form_bytes<B>(
    headers: &HeaderMap,
    body: B,
    limit: usize,
) -> Result<bytes::Bytes, OAuthError>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    check_form_content_type(headers)?;
    read_capped(headers, body, limit).await
}

/// Read the body up to `limit` bytes (a declared oversize body is refused unread), whatever
/// its content type.
pub(crate) async fn read_capped<B>(
    headers: &HeaderMap,
    body: B,
    limit: usize,
) -> Result<bytes::Bytes, OAuthError>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let too_large = || OAuthError::new(ErrorKind::BodyTooLarge, "request body too large");
    // Refuse a declared oversize body without reading it.
    if let Some(len) = headers.get(CONTENT_LENGTH) {
        let len: u64 = len
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| OAuthError::invalid_request("invalid Content-Length"))?;
        if len > limit as u64 {
            return Err(too_large());
        }
    }
    // A body that lies about its length, or has none (chunked), still stops at the cap.
    let collected = Limited::new(body, limit).collect().await.map_err(|e| {
        if e.downcast_ref::<LengthLimitError>().is_some() {
            too_large()
        } else {
            OAuthError::invalid_request("could not read the request body")
        }
    })?;
    let mut buf = collected.aggregate();
    Ok(buf.copy_to_bytes(buf.remaining()))
}
