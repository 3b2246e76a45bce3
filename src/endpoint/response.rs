//! Building responses: JSON with `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1),
//! and error bodies (RFC 6749 §5.2).

use bytes::Bytes;
use http::{
    HeaderValue, Response, StatusCode,
    header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, PRAGMA, WWW_AUTHENTICATE},
};
use http_body_util::Full;
use serde::Serialize;

use crate::{
    error::{ErrorKind, OAuthError},
    grant::TokenResponse,
};

/// The response type of every endpoint.
pub type EndpointResponse = Response<Full<Bytes>>;

pub(crate) fn json(status: StatusCode, body: Vec<u8>) -> EndpointResponse {
    let mut res = Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

pub(crate) fn to_json(value: &impl Serialize) -> Vec<u8> {
    // Serialising these plain structs cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

pub(crate) fn token(response: &TokenResponse) -> EndpointResponse {
    #[derive(Serialize)]
    struct Body<'a> {
        access_token: &'a str,
        token_type: &'static str,
        expires_in: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        refresh_token: Option<&'a str>,
        #[serde(skip_serializing_if = "str::is_empty")]
        scope: &'a str,
    }
    json(
        StatusCode::OK,
        to_json(&Body {
            access_token: &response.access_token,
            token_type: TokenResponse::TOKEN_TYPE,
            expires_in: response.expires_in,
            refresh_token: response.refresh_token.as_deref(),
            scope: response.scope.as_str(),
        }),
    )
}

/// An error response. `basic_challenge`: the client tried HTTP authentication, so a 401 carries
/// `WWW-Authenticate: Basic` (RFC 6749 §5.2).
pub(crate) fn error(err: &OAuthError, realm: &str, basic_challenge: bool) -> EndpointResponse {
    #[derive(Serialize)]
    struct Body<'a> {
        error: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        error_description: Option<&'a str>,
    }
    let mut res = json(
        err.status(),
        to_json(&Body {
            error: err.code(),
            error_description: err.description(),
        }),
    );
    if err.kind() == ErrorKind::MethodNotAllowed {
        res.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("POST"));
    }
    if err.status() == StatusCode::UNAUTHORIZED && basic_challenge {
        if let Ok(v) = HeaderValue::from_str(&format!("Basic realm=\"{}\"", quote(realm))) {
            res.headers_mut().insert(WWW_AUTHENTICATE, v);
        }
    }
    res
}

/// Escape a value for an RFC 7230 quoted-string.
pub(crate) fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}
