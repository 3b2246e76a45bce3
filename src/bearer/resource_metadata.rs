//! OAuth 2.0 protected-resource metadata (RFC 9728): what a resource server tells clients about
//! itself — its identifier, the authorization servers that issue tokens for it, the scopes it
//! knows, how it takes bearer tokens — at `/.well-known/oauth-protected-resource` (with the
//! resource's path appended, §3.1). Clients such as MCP clients start from a 401 whose challenge
//! names this document ([`BearerLayer::resource_metadata`](super::BearerLayer::resource_metadata)).
//! It is the resource side's: a resource server in another process serves it without an
//! authorization server.
//!
//! ```
//! use http::{Request, StatusCode};
//! use tower::ServiceExt;
//! use tower_oauth2::bearer::ProtectedResourceMetadata;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let metadata = ProtectedResourceMetadata::new("https://api.example.com/mcp")
//!     .authorization_server("https://auth.example.com")
//!     .scopes_supported(["notes:read", "notes:write"])
//!     .resource_name("Notes");
//! // Where to mount it, and what the layer's challenges name:
//! assert_eq!(metadata.well_known_path(), "/.well-known/oauth-protected-resource/mcp");
//! assert_eq!(
//!     metadata.metadata_url(),
//!     "https://api.example.com/.well-known/oauth-protected-resource/mcp"
//! );
//! let res = metadata.endpoint().oneshot(Request::get("/").body(())?).await?;
//! assert_eq!(res.status(), StatusCode::OK);
//! assert_eq!(res.headers()["content-type"], "application/json");
//! # Ok(())
//! # }
//! ```

use std::{
    convert::Infallible,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{HeaderValue, Request, Response};
use http_body_util::Full;
use serde::Serialize;

/// How long clients may cache the document (RFC 9728 leaves it to HTTP caching): briefly, so a
/// change of authorization server is seen within minutes.
const MAX_AGE_SECS: u64 = 300;

/// The metadata of a protected resource (RFC 9728 §2).
#[derive(Debug, Clone, Serialize)]
#[must_use]
pub struct ProtectedResourceMetadata {
    resource: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    authorization_servers: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scopes_supported: Option<Vec<String>>,
    bearer_methods_supported: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_documentation: Option<String>,
}

impl ProtectedResourceMetadata {
    /// The metadata of the resource `resource` (its identifier: an `https` URL without a
    /// fragment, RFC 9728 §1.2; `http` on loopback for development). Bearer tokens in the
    /// `Authorization` header only, unless [`bearer_methods_supported`](Self::bearer_methods_supported)
    /// says more.
    pub fn new(resource: impl Into<String>) -> Self {
        Self {
            resource: resource.into(),
            authorization_servers: Vec::new(),
            scopes_supported: None,
            bearer_methods_supported: vec!["header"],
            resource_name: None,
            resource_documentation: None,
        }
    }

    /// An authorization server that issues tokens for this resource: its issuer identifier
    /// (RFC 8414), where clients find its own metadata. May be called more than once.
    pub fn authorization_server(mut self, issuer: impl Into<String>) -> Self {
        self.authorization_servers.push(issuer.into());
        self
    }

    /// The scopes clients may ask for to use this resource.
    pub fn scopes_supported<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes_supported = Some(scopes.into_iter().map(Into::into).collect());
        self
    }

    /// How the resource takes bearer tokens (RFC 6750): `header` always; add `query` when the
    /// layer has [`allow_query_token`](super::BearerLayer::allow_query_token) and `body` with a
    /// [`FormBodyTokenLayer`](super::FormBodyTokenLayer) in front.
    pub fn bearer_methods_supported(mut self, query: bool, body: bool) -> Self {
        self.bearer_methods_supported = std::iter::once("header")
            .chain(body.then_some("body"))
            .chain(query.then_some("query"))
            .collect();
        self
    }

    /// A name for people (RFC 9728 §2 `resource_name`).
    pub fn resource_name(mut self, name: impl Into<String>) -> Self {
        self.resource_name = Some(name.into());
        self
    }

    /// Where its documentation is (RFC 9728 §2 `resource_documentation`).
    pub fn resource_documentation(mut self, url: impl Into<String>) -> Self {
        self.resource_documentation = Some(url.into());
        self
    }

    /// The resource's identifier.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The path to serve the document at, on the resource's host (RFC 9728 §3.1): the
    /// well-known path, followed by the resource's own path when it has one
    /// (`/.well-known/oauth-protected-resource/mcp` for `https://host/mcp`).
    pub fn well_known_path(&self) -> String {
        let (_, path) = split_origin(&self.resource);
        let path = path.trim_end_matches('/');
        format!("/.well-known/oauth-protected-resource{path}")
    }

    /// The document's full URL: what [`BearerLayer::resource_metadata`](super::BearerLayer::resource_metadata)
    /// names in its challenges.
    pub fn metadata_url(&self) -> String {
        let (origin, _) = split_origin(&self.resource);
        format!("{origin}{}", self.well_known_path())
    }

    /// The document as a tower `Service` (GET and HEAD; 405 otherwise), rendered once.
    pub fn endpoint(&self) -> ProtectedResourceMetadataEndpoint {
        ProtectedResourceMetadataEndpoint {
            body: Bytes::from(serde_json::to_vec(self).unwrap_or_default()),
        }
    }
}

/// `scheme://authority` and the rest (path and query) of an absolute URL.
fn split_origin(url: &str) -> (&str, &str) {
    let after = url.find("://").map_or(0, |i| i + 3);
    let end = url[after..]
        .find(['/', '?'])
        .map_or(url.len(), |i| after + i);
    let rest = &url[end..];
    // The query is not part of the well-known path.
    (&url[..end], rest.split('?').next().unwrap_or(""))
}

/// The protected-resource metadata endpoint (RFC 9728 §3): the document with
/// `Content-Type: application/json` and a short `Cache-Control`.
#[derive(Debug, Clone)]
pub struct ProtectedResourceMetadataEndpoint {
    body: Bytes,
}

impl<B> tower_service::Service<Request<B>> for ProtectedResourceMetadataEndpoint {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let cache = HeaderValue::from_str(&format!("public, max-age={MAX_AGE_SECS}")).ok();
        let res = crate::wire::document::serve(req.method(), &self.body, cache.as_ref());
        std::future::ready(Ok(res))
    }
}

#[cfg(test)]
mod tests {
    use super::ProtectedResourceMetadata;

    #[test]
    fn the_well_known_path_follows_the_resources_path() {
        let cases = [
            (
                "https://api.example.com",
                "/.well-known/oauth-protected-resource",
            ),
            (
                "https://api.example.com/",
                "/.well-known/oauth-protected-resource",
            ),
            (
                "https://api.example.com/mcp",
                "/.well-known/oauth-protected-resource/mcp",
            ),
            (
                "http://127.0.0.1:3200/mcp",
                "/.well-known/oauth-protected-resource/mcp",
            ),
            (
                "https://h/a/b?x=1",
                "/.well-known/oauth-protected-resource/a/b",
            ),
        ];
        for (resource, path) in cases {
            let m = ProtectedResourceMetadata::new(resource);
            assert_eq!(m.well_known_path(), path, "{resource}");
        }
        assert_eq!(
            ProtectedResourceMetadata::new("http://127.0.0.1:3200/mcp").metadata_url(),
            "http://127.0.0.1:3200/.well-known/oauth-protected-resource/mcp"
        );
    }
}
