//! RFC 8414 authorization server metadata, generated from the configuration.

use std::{
    convert::Infallible,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{HeaderValue, Request};
use serde::Serialize;

use super::response::{self, EndpointResponse};
use crate::{client::GrantType, server::AuthServer, store::CodeChallengeMethod};

/// Where the endpoints are mounted, for the metadata document. Paths starting with `/` are
/// joined to the issuer.
///
/// ```
/// use tower_oauth2::endpoint::Metadata;
///
/// let metadata = Metadata::new("https://auth.example.com")
///     .authorization_endpoint("/oauth/authorize")
///     .scopes_supported(["read", "write"]);
/// # let _ = metadata;
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Metadata {
    issuer: String,
    token_endpoint: String,
    authorization_endpoint: Option<String>,
    pushed_authorization_request_endpoint: Option<String>,
    jwks_uri: Option<String>,
    revocation_endpoint: Option<String>,
    introspection_endpoint: Option<String>,
    device_authorization_endpoint: Option<String>,
    userinfo_endpoint: Option<String>,
    end_session_endpoint: Option<String>,
    scopes_supported: Option<Vec<String>>,
}

impl Metadata {
    /// Metadata for `issuer` (an `https` URL without query or fragment, RFC 8414 §2), with the
    /// token, revocation and introspection endpoints at `/oauth/token`, `/oauth/revoke` and
    /// `/oauth/introspect`.
    pub fn new(issuer: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into().trim_end_matches('/').to_owned(),
            token_endpoint: "/oauth/token".into(),
            authorization_endpoint: None,
            pushed_authorization_request_endpoint: None,
            jwks_uri: None,
            revocation_endpoint: Some("/oauth/revoke".into()),
            introspection_endpoint: Some("/oauth/introspect".into()),
            device_authorization_endpoint: None,
            userinfo_endpoint: None,
            end_session_endpoint: None,
            scopes_supported: None,
        }
    }

    /// The token endpoint's path or URL.
    pub fn token_endpoint(mut self, path: impl Into<String>) -> Self {
        self.token_endpoint = path.into();
        self
    }

    /// The authorization endpoint's path or URL (default `/oauth/authorize` when the server
    /// has an [authorization handler](crate::AuthServerBuilder::authorization_handler); none
    /// otherwise).
    pub fn authorization_endpoint(mut self, path: impl Into<String>) -> Self {
        self.authorization_endpoint = Some(path.into());
        self
    }

    /// The pushed authorization request endpoint's path or URL (RFC 9126; default `/oauth/par`
    /// when the server has an authorization handler).
    pub fn pushed_authorization_request_endpoint(mut self, path: impl Into<String>) -> Self {
        self.pushed_authorization_request_endpoint = Some(path.into());
        self
    }

    /// The JWK Set's path or URL (default `/.well-known/jwks.json` when the server has signing
    /// keys).
    pub fn jwks_uri(mut self, path: impl Into<String>) -> Self {
        self.jwks_uri = Some(path.into());
        self
    }

    /// The revocation endpoint's path or URL (`None` to leave it out).
    pub fn revocation_endpoint(mut self, path: Option<String>) -> Self {
        self.revocation_endpoint = path;
        self
    }

    /// The introspection endpoint's path or URL (`None` to leave it out).
    pub fn introspection_endpoint(mut self, path: Option<String>) -> Self {
        self.introspection_endpoint = path;
        self
    }

    /// The device authorization endpoint's path or URL (RFC 8628; default
    /// `/oauth/device_authorization` when the device grant is allowed).
    pub fn device_authorization_endpoint(mut self, path: impl Into<String>) -> Self {
        self.device_authorization_endpoint = Some(path.into());
        self
    }

    /// The userinfo endpoint's path or URL (OpenID Connect; default `/oauth/userinfo` when the
    /// server speaks OpenID Connect).
    pub fn userinfo_endpoint(mut self, path: impl Into<String>) -> Self {
        self.userinfo_endpoint = Some(path.into());
        self
    }

    /// The end-session endpoint's path or URL (RP-Initiated Logout; default `/oauth/logout`
    /// when the server speaks OpenID Connect).
    pub fn end_session_endpoint(mut self, path: impl Into<String>) -> Self {
        self.end_session_endpoint = Some(path.into());
        self
    }

    /// The scopes to advertise (with OpenID Connect, `openid` is added when missing; without
    /// this, OpenID Connect advertises `openid` and the scopes it knows claims for).
    pub fn scopes_supported<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes_supported = Some(scopes.into_iter().map(Into::into).collect());
        self
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with('/') {
            format!("{}{path}", self.issuer)
        } else {
            path.to_owned()
        }
    }
}

#[derive(Serialize)]
struct Document<'a> {
    issuer: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorization_endpoint: Option<String>,
    token_endpoint: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    jwks_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scopes_supported: Option<Vec<&'a str>>,
    response_types_supported: Vec<&'static str>,
    grant_types_supported: Vec<&'static str>,
    token_endpoint_auth_methods_supported: [&'static str; 3],
    #[serde(skip_serializing_if = "Option::is_none")]
    revocation_endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    revocation_endpoint_auth_methods_supported: Option<[&'static str; 3]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    introspection_endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    introspection_endpoint_auth_methods_supported: Option<[&'static str; 2]>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    code_challenge_methods_supported: Vec<&'static str>,
    /// RFC 9207 §3: every authorization response carries `iss`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    authorization_response_iss_parameter_supported: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pushed_authorization_request_endpoint: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    require_pushed_authorization_requests: bool,
    /// RFC 7591 §3, RFC 8414 §2.
    #[serde(skip_serializing_if = "Option::is_none")]
    registration_endpoint: Option<String>,
    /// RFC 8628 §4.
    #[serde(skip_serializing_if = "Option::is_none")]
    device_authorization_endpoint: Option<String>,
    /// draft-ietf-oauth-client-id-metadata-document §5.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    client_id_metadata_document_supported: bool,
    /// OpenID Connect Discovery 1.0 §3, when the server speaks it.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    openid: Option<OpenIdFields<'a>>,
}

/// The fields OpenID Connect Discovery 1.0 §3 and RP-Initiated Logout 1.0 §3.1 add.
#[derive(Serialize)]
struct OpenIdFields<'a> {
    userinfo_endpoint: String,
    end_session_endpoint: String,
    subject_types_supported: Vec<&'static str>,
    id_token_signing_alg_values_supported: Vec<&'static str>,
    userinfo_signing_alg_values_supported: Vec<&'static str>,
    claims_supported: Vec<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    acr_values_supported: &'a [String],
    response_modes_supported: [&'static str; 1],
    prompt_values_supported: [&'static str; 4],
    display_values_supported: [&'static str; 4],
    claim_types_supported: [&'static str; 1],
    claims_parameter_supported: bool,
    request_parameter_supported: bool,
    /// `request_uri` only for pushed requests (RFC 9126), which Discovery's field (whose
    /// default is true) does not mean.
    request_uri_parameter_supported: bool,
    require_request_uri_registration: bool,
}

const CLIENT_AUTH: [&str; 3] = ["client_secret_basic", "client_secret_post", "none"];

/// The metadata endpoint (RFC 8414 §3), for `GET /.well-known/oauth-authorization-server`.
/// The document is rendered once, when the endpoint is built.
#[derive(Clone, Debug)]
pub struct MetadataEndpoint {
    body: Bytes,
    cache_control: Option<HeaderValue>,
}

impl MetadataEndpoint {
    /// Render the document for `server`'s configuration.
    pub fn new(server: &AuthServer, metadata: Metadata) -> Self {
        let config = server.config();
        let code = config
            .allowed_grant_types
            .contains(GrantType::AuthorizationCode);
        let mut pkce = Vec::new();
        if code {
            pkce.push(CodeChallengeMethod::S256.as_str());
            if config.pkce.allow_plain {
                pkce.push(CodeChallengeMethod::Plain.as_str());
            }
        }
        // RFC 8414 §2: required whenever a grant uses it. The server's own endpoint, when it
        // has the app's handler, is at `/oauth/authorize` unless the metadata says otherwise.
        let authorization_endpoint = metadata
            .authorization_endpoint
            .as_deref()
            .or(server
                .inner
                .authorization
                .as_ref()
                .map(|_| "/oauth/authorize"))
            .map(|p| metadata.url(p));
        let doc = Document {
            issuer: &metadata.issuer,
            authorization_endpoint: authorization_endpoint.clone(),
            token_endpoint: metadata.url(&metadata.token_endpoint),
            jwks_uri: metadata
                .jwks_uri
                .as_deref()
                .or(server
                    .has_signing_keys()
                    .then_some("/.well-known/jwks.json"))
                .map(|p| metadata.url(p)),
            scopes_supported: scopes_supported(server, &metadata),
            response_types_supported: if code { vec!["code"] } else { Vec::new() },
            grant_types_supported: config
                .allowed_grant_types
                .iter()
                .map(GrantType::as_str)
                .collect(),
            token_endpoint_auth_methods_supported: CLIENT_AUTH,
            revocation_endpoint: metadata
                .revocation_endpoint
                .as_deref()
                .map(|p| metadata.url(p)),
            revocation_endpoint_auth_methods_supported: metadata
                .revocation_endpoint
                .as_ref()
                .map(|_| CLIENT_AUTH),
            introspection_endpoint: metadata
                .introspection_endpoint
                .as_deref()
                .map(|p| metadata.url(p)),
            introspection_endpoint_auth_methods_supported: metadata
                .introspection_endpoint
                .as_ref()
                .map(|_| ["client_secret_basic", "client_secret_post"]),
            code_challenge_methods_supported: pkce,
            authorization_response_iss_parameter_supported: authorization_endpoint.is_some()
                && server.inner.authorization.is_some(),
            pushed_authorization_request_endpoint: metadata
                .pushed_authorization_request_endpoint
                .as_deref()
                .or(server.inner.authorization.as_ref().map(|_| "/oauth/par"))
                .map(|p| metadata.url(p)),
            require_pushed_authorization_requests: config.require_pushed_authorization_requests,
            registration_endpoint: server
                .inner
                .registry
                .as_ref()
                .map(|r| metadata.url(r.config().mounted_at())),
            device_authorization_endpoint: metadata
                .device_authorization_endpoint
                .as_deref()
                .or(config
                    .allowed_grant_types
                    .contains(GrantType::DeviceCode)
                    .then_some("/oauth/device_authorization"))
                .map(|p| metadata.url(p)),
            #[cfg(feature = "tls")]
            client_id_metadata_document_supported: server.inner.ctx.documents.is_some(),
            #[cfg(not(feature = "tls"))]
            client_id_metadata_document_supported: false,
            openid: openid_fields(server, &metadata),
        };
        Self {
            body: Bytes::from(response::to_json(&doc)),
            cache_control: None,
        }
    }
}

/// The scopes to advertise: the app's list, with `openid` when the server speaks OpenID
/// Connect; or, without a list, OpenID Connect's own.
fn scopes_supported<'a>(server: &'a AuthServer, metadata: &'a Metadata) -> Option<Vec<&'a str>> {
    let openid = server.context().openid.as_deref();
    match (&metadata.scopes_supported, openid) {
        (Some(listed), None) => Some(listed.iter().map(String::as_str).collect()),
        (Some(listed), Some(_)) => {
            let mut scopes: Vec<&str> = listed.iter().map(String::as_str).collect();
            if !scopes.contains(&"openid") {
                scopes.insert(0, "openid");
            }
            Some(scopes)
        }
        (None, Some(openid)) => Some(openid.scopes().collect()),
        (None, None) => None,
    }
}

/// The OpenID Connect fields, when the server speaks it.
fn openid_fields<'a>(server: &'a AuthServer, metadata: &Metadata) -> Option<OpenIdFields<'a>> {
    let openid = server.context().openid.as_deref()?;
    #[cfg(feature = "jwt")]
    let algorithms = server
        .context()
        .keys
        .as_ref()
        .map(crate::jose::KeySet::signing_algorithms)
        .unwrap_or_default();
    #[cfg(not(feature = "jwt"))]
    let algorithms = Vec::new();
    let mut subject_types = vec!["public"];
    if openid.pairwise_key.is_some() {
        subject_types.push("pairwise");
    }
    Some(OpenIdFields {
        userinfo_endpoint: metadata.url(
            metadata
                .userinfo_endpoint
                .as_deref()
                .unwrap_or("/oauth/userinfo"),
        ),
        end_session_endpoint: metadata.url(
            metadata
                .end_session_endpoint
                .as_deref()
                .unwrap_or("/oauth/logout"),
        ),
        subject_types_supported: subject_types,
        id_token_signing_alg_values_supported: algorithms.clone(),
        userinfo_signing_alg_values_supported: algorithms,
        claims_supported: openid.claims_supported(),
        acr_values_supported: &openid.acr_values,
        response_modes_supported: ["query"],
        prompt_values_supported: ["none", "login", "consent", "select_account"],
        display_values_supported: ["page", "popup", "touch", "wap"],
        claim_types_supported: ["normal"],
        claims_parameter_supported: false,
        request_parameter_supported: false,
        request_uri_parameter_supported: false,
        require_request_uri_registration: false,
    })
}

/// The `Service` of an endpoint that serves a document rendered once (`body`, with its
/// `cache_control` when set).
macro_rules! document_service {
    ($name:ident) => {
        impl<B> tower_service::Service<Request<B>> for $name {
            type Response = EndpointResponse;
            type Error = Infallible;
            type Future = std::future::Ready<Result<EndpointResponse, Infallible>>;

            fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
                Poll::Ready(Ok(()))
            }

            fn call(&mut self, req: Request<B>) -> Self::Future {
                let res = $crate::wire::document::serve(
                    req.method(),
                    &self.body,
                    self.cache_control.as_ref(),
                );
                std::future::ready(Ok(res))
            }
        }
    };
}
pub(super) use document_service;

document_service!(MetadataEndpoint);
