//! What a response said: status, headers and body, with assertions that name the RFC answer.

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
    /// Assert an RFC 6749 §5.2 error: status, code, no-store headers.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(
            self.status.as_u16(),
            status,
            "body: {:?}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(self.json()["error"], code, "body: {}", self.json());
        assert_eq!(self.header("content-type"), Some("application/json"));
        assert_eq!(self.header("cache-control"), Some("no-store"));
        assert_eq!(self.header("pragma"), Some("no-cache"));
    }
    /// Assert a successful token response (RFC 6749 §5.1).
    #[track_caller]
    pub fn assert_token(&self) -> Value {
        assert_eq!(
            self.status,
            StatusCode::OK,
            "body: {:?}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(self.header("cache-control"), Some("no-store"));
        assert_eq!(self.header("pragma"), Some("no-cache"));
        assert_eq!(self.header("content-type"), Some("application/json"));
        let v = self.json();
        assert_eq!(v["token_type"], "Bearer");
        let at = v["access_token"].as_str().unwrap();
        if at.contains('.') {
            assert_eq!(at.split('.').count(), 3, "a JWT access token: {at}");
        } else {
            assert_eq!(at.len(), 46, "a route and 256 URL-safe random bits");
        }
        assert!(v["expires_in"].as_u64().is_some());
        v
    }
}

pub async fn reply<B>(res: Response<B>) -> Reply
where
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let (parts, body) = res.into_parts();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

impl Reply {
    /// The `name=value` part of its `Set-Cookie`, to send back as a `Cookie` header.
    #[track_caller]
    pub fn cookie(&self) -> String {
        let set = self.header("set-cookie").expect("a Set-Cookie header");
        set.split(';').next().unwrap().to_owned()
    }
}

/// Percent-encode a form or query value (RFC 3986 unreserved characters kept).
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// A redirect's target and its query parameters, decoded.
#[track_caller]
pub fn location(r: &Reply) -> (String, Vec<(String, String)>) {
    let loc = r.header("location").expect("a Location header");
    let (base, query) = loc.split_once('?').unwrap_or((loc, ""));
    let params = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (n, v) = p.split_once('=').unwrap_or((p, ""));
            (n.to_owned(), decode(v))
        })
        .collect();
    (base.to_owned(), params)
}

/// A form-encoded value, decoded (`+` is a space).
pub fn decode(v: &str) -> String {
    let bytes = v.replace('+', " ").into_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() + 1 {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// The value of parameter `name`, if present.
pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}
