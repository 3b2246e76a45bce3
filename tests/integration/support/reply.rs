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
