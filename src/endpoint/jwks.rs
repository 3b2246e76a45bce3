//! The JWK Set endpoint (RFC 7517 §5; `jwks_uri` of RFC 8414): the public keys JWT access tokens
//! are verified with, rendered once when the endpoint is built.

use std::{
    convert::Infallible,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{HeaderValue, Request};

use super::response::EndpointResponse;
use crate::server::AuthServer;

/// How long verifiers may cache the key set: shorter than any sane rotation step, so that a
/// newly published key is seen well before it signs anything.
pub const JWKS_MAX_AGE_SECS: u64 = 300;

/// Serves `GET /.well-known/jwks.json`: the server's [`KeySet`](crate::jose::KeySet), public
/// halves only, with `Cache-Control: public, max-age=300`. Without signing keys, an empty set.
#[derive(Clone, Debug)]
pub struct JwksEndpoint {
    body: Bytes,
    cache_control: Option<HeaderValue>,
}

impl JwksEndpoint {
    /// Render `server`'s key set.
    pub fn new(server: &AuthServer) -> Self {
        #[cfg(feature = "jwt")]
        let jwks = server
            .inner
            .keys
            .as_ref()
            .map_or_else(|| serde_json::json!({ "keys": [] }), |k| k.jwks());
        #[cfg(not(feature = "jwt"))]
        let jwks = {
            let _ = server;
            serde_json::json!({ "keys": [] })
        };
        Self {
            body: Bytes::from(super::response::to_json(&jwks)),
            cache_control: HeaderValue::from_str(&format!("public, max-age={JWKS_MAX_AGE_SECS}"))
                .ok(),
        }
    }
}

super::metadata::document_service!(JwksEndpoint);
