//! Building responses: JSON with `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1),
//! and error bodies (RFC 6749 §5.2).

use std::io::Write as _;

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
    wire::header::quote,
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
    json(StatusCode::OK, token_body(response))
}

/// The token response's JSON, written directly: the same bytes `serde_json` produces for the
/// struct `{access_token, token_type, expires_in, refresh_token?, scope?, id_token?}` (a test holds the two
/// equal), without its per-field machinery — this is on every token request's path.
fn token_body(response: &TokenResponse) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        96 + response.access_token.len()
            + response.refresh_token.as_ref().map_or(0, String::len)
            + response.scope.as_str().len()
            + response.id_token.as_ref().map_or(0, String::len),
    );
    out.extend_from_slice(b"{\"access_token\":");
    push_json_string(&mut out, &response.access_token);
    out.extend_from_slice(b",\"token_type\":");
    push_json_string(&mut out, TokenResponse::TOKEN_TYPE);
    out.extend_from_slice(b",\"expires_in\":");
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{}", response.expires_in);
    if let Some(refresh) = &response.refresh_token {
        out.extend_from_slice(b",\"refresh_token\":");
        push_json_string(&mut out, refresh);
    }
    let scope = response.scope.as_str();
    if !scope.is_empty() {
        out.extend_from_slice(b",\"scope\":");
        push_json_string(&mut out, scope);
    }
    if let Some(id_token) = &response.id_token {
        out.extend_from_slice(b",\"id_token\":");
        push_json_string(&mut out, id_token);
    }
    out.push(b'}');
    out
}

/// A JSON string literal, escaped as `serde_json` escapes it.
fn push_json_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    // A fold rather than `all`: no early exit, so the compiler can vectorise it.
    let plain = bytes
        .iter()
        .fold(true, |ok, &b| ok & (b >= 0x20) & (b != b'"') & (b != b'\\'));
    if plain {
        // Tokens and scopes always take this path: nothing to escape.
        out.extend_from_slice(bytes);
    } else {
        for &b in bytes {
            match b {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                0x08 => out.extend_from_slice(b"\\b"),
                0x0c => out.extend_from_slice(b"\\f"),
                0..=0x1f => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[usize::from(b >> 4)]);
                    out.push(HEX[usize::from(b & 0xf)]);
                }
                _ => out.push(b),
            }
        }
    }
    out.push(b'"');
}

/// RFC 8628 §3.2: the device authorization response.
pub(crate) fn device_authorization(
    started: &crate::grant::device::DeviceAuthorization,
    uri: &str,
) -> EndpointResponse {
    let complete = crate::wire::uri::with_query(uri, &[("user_code", &started.user_code)]);
    let body = serde_json::json!({
        "device_code": started.device_code.expose(),
        "user_code": started.user_code,
        "verification_uri": uri,
        "verification_uri_complete": complete,
        "expires_in": started.expires_in,
        "interval": started.interval,
    });
    json(StatusCode::OK, to_json(&body))
}

/// An error response. `basic_challenge`: the client tried HTTP authentication, so a 401 carries
/// `WWW-Authenticate: Basic` (RFC 6749 §5.2).
pub(crate) fn error(err: &OAuthError, realm: &str, basic_challenge: bool) -> EndpointResponse {
    if let Some(cause) = err.store_error() {
        // The client learns only that it may retry; the operator learns why.
        tracing::error!(error = %cause, "token store failure");
    }
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde::Serialize;

    use super::token_body;
    use crate::{grant::TokenResponse, scope::Scope};

    /// What `token_body` replaced: the reference it must match byte for byte.
    fn with_serde(r: &TokenResponse) -> Vec<u8> {
        #[derive(Serialize)]
        struct Body<'a> {
            access_token: &'a str,
            token_type: &'static str,
            expires_in: u64,
            #[serde(skip_serializing_if = "Option::is_none")]
            refresh_token: Option<&'a str>,
            #[serde(skip_serializing_if = "str::is_empty")]
            scope: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            id_token: Option<&'a str>,
        }
        serde_json::to_vec(&Body {
            access_token: &r.access_token,
            token_type: TokenResponse::TOKEN_TYPE,
            expires_in: r.expires_in,
            refresh_token: r.refresh_token.as_deref(),
            scope: r.scope.as_str(),
            id_token: r.id_token.as_deref(),
        })
        .unwrap()
    }

    proptest! {
        #[test]
        fn token_body_is_what_serde_json_writes(
            access in any::<String>(),
            refresh in proptest::option::of(any::<String>()),
            expires_in in any::<u64>(),
            scope in proptest::option::of("[a-z:._-]{1,8}( [a-z:._-]{1,8}){0,3}"),
            id_token in proptest::option::of(any::<String>()),
        ) {
            let scope = scope.map_or_else(Scope::empty, |s| Scope::parse(&s).unwrap());
            let r = TokenResponse { access_token: access, expires_in, refresh_token: refresh, scope, id_token };
            prop_assert_eq!(token_body(&r), with_serde(&r));
        }
    }

    #[test]
    fn token_body_escapes_like_serde_json() {
        let r = TokenResponse {
            access_token: "a\"b\\c\u{1}\n\u{e9}".into(),
            expires_in: 3600,
            refresh_token: Some("r".into()),
            scope: Scope::parse("read write").unwrap(),
            id_token: None,
        };
        assert_eq!(token_body(&r), with_serde(&r));
        assert_eq!(
            String::from_utf8(token_body(&r)).unwrap(),
            "{\"access_token\":\"a\\\"b\\\\c\\u0001\\n\u{e9}\",\"token_type\":\"Bearer\",\
             \"expires_in\":3600,\"refresh_token\":\"r\",\"scope\":\"read write\"}"
        );
    }
}
