//! Registered clients: [`Client`], the [`ClientStore`] trait and the in-memory [`InMemoryClients`].
//!
//! Client secrets are stored as SHA-256 hashes and compared in constant time. Generated client
//! secrets carry enough entropy that a fast hash is sufficient (and keeps the token endpoint fast);
//! an app whose clients have human-chosen secrets can plug in a slow hash with
//! [`ClientBuilder::secret_verifier`].
//!
//! ```
//! use tower_oauth2::{Client, GrantType, InMemoryClients};
//!
//! # fn main() -> Result<(), tower_oauth2::ConfigError> {
//! let clients = InMemoryClients::new()
//!     .with(
//!         Client::confidential("testclient", "secret")
//!             .grant_types([GrantType::Password, GrantType::RefreshToken])
//!             .scope("read write")
//!             .build()?,
//!     )
//!     .with(Client::public("spa").redirect_uri("https://app.example/cb").build()?);
//! assert_eq!(clients.len(), 2);
//! # Ok(())
//! # }
//! ```

mod registry;

use std::{collections::HashMap, fmt, sync::Arc};

use async_trait::async_trait;
use sha2::{Digest, Sha256};

pub(crate) use self::registry::Registered;
pub use self::registry::{ClientRegistry, CodeFirst, RegisteredClient, StoredClients};
use crate::{
    error::{ConfigError, StoreError},
    scope::Scope,
    token::sha256_matches,
};

/// The grant types of RFC 6749.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GrantType {
    /// RFC 6749 §4.1, with PKCE (RFC 7636).
    AuthorizationCode,
    /// RFC 6749 §4.3, resource owner password credentials.
    Password,
    /// RFC 6749 §4.4.
    ClientCredentials,
    /// RFC 6749 §6.
    RefreshToken,
    /// RFC 8628: the device authorization grant
    /// (`urn:ietf:params:oauth:grant-type:device_code`).
    DeviceCode,
}

impl GrantType {
    /// Every grant type, in a fixed order.
    pub const ALL: [GrantType; 5] = [
        Self::AuthorizationCode,
        Self::Password,
        Self::ClientCredentials,
        Self::RefreshToken,
        Self::DeviceCode,
    ];

    /// The `grant_type` parameter value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::Password => "password",
            Self::ClientCredentials => "client_credentials",
            Self::RefreshToken => "refresh_token",
            Self::DeviceCode => "urn:ietf:params:oauth:grant-type:device_code",
        }
    }

    /// Parse a `grant_type` parameter value.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == s)
    }

    fn bit(self) -> u8 {
        match self {
            Self::AuthorizationCode => 1,
            Self::Password => 2,
            Self::ClientCredentials => 4,
            Self::RefreshToken => 8,
            Self::DeviceCode => 16,
        }
    }
}

impl fmt::Display for GrantType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of grant types.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct GrantTypes(u8);

impl GrantTypes {
    /// No grant type.
    pub const NONE: GrantTypes = GrantTypes(0);

    /// Whether `g` is in the set.
    pub fn contains(self, g: GrantType) -> bool {
        self.0 & g.bit() != 0
    }

    /// The set with `g` added.
    #[must_use]
    pub fn with(self, g: GrantType) -> Self {
        Self(self.0 | g.bit())
    }

    /// The set without `g`.
    #[must_use]
    pub fn without(self, g: GrantType) -> Self {
        Self(self.0 & !g.bit())
    }

    /// The members, in [`GrantType::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = GrantType> {
        GrantType::ALL
            .into_iter()
            .filter(move |g| self.contains(*g))
    }
}

impl FromIterator<GrantType> for GrantTypes {
    fn from_iter<I: IntoIterator<Item = GrantType>>(iter: I) -> Self {
        iter.into_iter().fold(Self::NONE, Self::with)
    }
}

impl fmt::Debug for GrantTypes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// Checks a presented client secret; for apps that keep slow (argon2, bcrypt) hashes of
/// human-chosen secrets. Run expensive work off the async executor (e.g. `spawn_blocking`).
///
/// So that a slow verifier does not tell which client ids exist, a presented secret for an
/// unknown id is checked too, by a decoy: the one given to
/// [`AuthServerBuilder::unknown_client_verifier`](crate::AuthServerBuilder::unknown_client_verifier),
/// or else the first custom verifier a known client used.
#[async_trait]
pub trait SecretVerifier: Send + Sync + 'static {
    /// Whether `presented` is this client's secret.
    async fn verify(&self, presented: &str) -> bool;
}

#[derive(Clone)]
enum ClientSecret {
    Sha256([u8; 32]),
    Custom(Arc<dyn SecretVerifier>),
}

/// A registered OAuth client.
#[derive(Clone)]
pub struct Client {
    id: Arc<str>,
    secret: Option<ClientSecret>,
    redirect_uris: Vec<String>,
    grant_types: Option<GrantTypes>,
    scope: Option<Scope>,
    default_scope: Option<Scope>,
    issue_refresh_token: bool,
    introspect: bool,
    require_par: bool,
    /// A legacy confidential client allowed to skip PKCE.
    pkce_optional: bool,
    access_token_format: Option<crate::token::AccessTokenFormat>,
    /// The resources (normalised) this client may ask tokens for; `None`: any the server knows.
    resources: Option<Vec<String>>,
    /// A name to show the resource owner (`client_name`, RFC 7591 §2).
    name: Option<String>,
    /// For a client registered at run time ([`StoredClients`]): when its registration lapses
    /// unless it is used. Set on lookup, never stored.
    registered_until: Option<crate::clock::UnixTime>,
    /// Known by its client ID metadata document (its id is the document's URL).
    metadata_document: bool,
    /// OpenID Connect: the ID token's algorithm (`None`: RS256).
    id_token_alg: Option<String>,
    /// OpenID Connect: userinfo answered as a JWT of this algorithm (`None`: JSON).
    userinfo_alg: Option<String>,
    /// OpenID Connect: public or pairwise subjects.
    subject_type: crate::openid::SubjectType,
    /// The sector of pairwise subjects: the one given, else the redirect URIs' host.
    sector: Option<String>,
    /// OpenID Connect RP-initiated logout: where the user agent may be sent afterwards.
    post_logout_redirect_uris: Vec<String>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.id)
            .field("confidential", &self.is_confidential())
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("redirect_uris", &self.redirect_uris)
            .field("grant_types", &self.grant_types)
            .field("scope", &self.scope)
            .field("default_scope", &self.default_scope)
            .field("issue_refresh_token", &self.issue_refresh_token)
            .field("introspect", &self.introspect)
            .field("resources", &self.resources)
            .field("name", &self.name)
            .field("subject_type", &self.subject_type)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A confidential client authenticated with `secret` (stored as its SHA-256 hash).
    pub fn confidential(id: impl Into<String>, secret: impl AsRef<str>) -> ClientBuilder {
        ClientBuilder::new(
            id.into(),
            Some(ClientSecret::Sha256(
                Sha256::digest(secret.as_ref().as_bytes()).into(),
            )),
        )
    }

    /// A confidential client whose secret is stored as the given SHA-256 hash (32 bytes).
    pub fn confidential_with_hash(id: impl Into<String>, sha256: [u8; 32]) -> ClientBuilder {
        ClientBuilder::new(id.into(), Some(ClientSecret::Sha256(sha256)))
    }

    /// A public client (RFC 6749 §2.1): identified by `client_id` alone, PKCE required.
    pub fn public(id: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(id.into(), None)
    }

    /// The `client_id`.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn id_arc(&self) -> &Arc<str> {
        &self.id
    }

    /// Whether the client authenticates with a secret.
    pub fn is_confidential(&self) -> bool {
        self.secret.is_some()
    }

    /// Registered redirect URIs, matched exactly.
    pub fn redirect_uris(&self) -> &[String] {
        &self.redirect_uris
    }

    /// The registered redirect URI a presented one matches: the same, character for character,
    /// or for a registered `http` loopback URI (`127.0.0.1`, `[::1]`, `localhost`) the same on
    /// any port (RFC 8252 §7.3).
    pub fn registered_redirect_uri(&self, presented: &str) -> Option<&str> {
        self.redirect_uris
            .iter()
            .find(|r| crate::wire::uri::matches(r, presented))
            .map(String::as_str)
    }

    /// The grant types this client may use, if restricted beyond the server's set.
    pub fn grant_types(&self) -> Option<GrantTypes> {
        self.grant_types
    }

    /// The scopes this client may be granted; `None` means any.
    pub fn allowed_scope(&self) -> Option<&Scope> {
        self.scope.as_ref()
    }

    /// The scope granted when a request names none (RFC 6749 §3.3): the configured default,
    /// else the allowed scope, else empty.
    pub fn default_scope(&self) -> Scope {
        self.default_scope
            .clone()
            .or_else(|| self.scope.clone())
            .unwrap_or_default()
    }

    /// Whether refresh tokens may be issued to this client at all.
    pub fn issues_refresh_tokens(&self) -> bool {
        self.issue_refresh_token
    }

    /// This client's access-token format, when it differs from the server's default.
    pub fn access_token_format_override(&self) -> Option<crate::token::AccessTokenFormat> {
        self.access_token_format
    }

    /// Whether this client's authorization requests must be pushed first (RFC 9126 §5).
    pub fn requires_pushed_authorization_requests(&self) -> bool {
        self.require_par
    }

    /// Whether this (confidential, legacy) client may run the code flow without PKCE
    /// ([`ClientBuilder::pkce_optional`]).
    pub fn pkce_optional(&self) -> bool {
        self.pkce_optional
    }

    /// The resources (RFC 8707, normalised) this client may ask tokens for; `None` means any
    /// the server knows.
    pub fn allowed_resources(&self) -> Option<&[String]> {
        self.resources.as_deref()
    }

    /// Whether this client may ask a token for `resource` (in normal form), as far as its own
    /// registration says; the server must know the resource too.
    pub fn may_ask_for_resource(&self, resource: &str) -> bool {
        self.resources
            .as_ref()
            .is_none_or(|r| r.iter().any(|a| a == resource))
    }

    /// The name to show the resource owner, when it has one (`client_name`).
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// For a client registered at run time ([`StoredClients`]), when its registration lapses
    /// unless it is used again; `None` for a client written in code.
    pub fn registered_until(&self) -> Option<crate::clock::UnixTime> {
        self.registered_until
    }

    /// For a client known by its client ID metadata document, the host that serves it (the
    /// client's id is that document's URL): what a consent page should name, since the
    /// document's `client_name` is the client's own claim.
    pub fn metadata_document_host(&self) -> Option<&str> {
        if !self.metadata_document {
            return None;
        }
        let after = self.id.split_once("://")?.1;
        let authority = after.split(['/', '?']).next()?;
        Some(authority)
    }

    /// Whether every redirect URI is `http` on loopback: the client runs on the user's own
    /// machine, so whoever names it could be any program there (a consent page can say "a
    /// local app claiming to be …").
    pub fn redirects_only_to_loopback(&self) -> bool {
        !self.redirect_uris.is_empty()
            && self.redirect_uris.iter().all(|r| {
                crate::wire::uri::scheme_kind(r) == crate::wire::uri::SchemeKind::HttpLoopback
            })
    }

    /// Whether this client may call the introspection endpoint.
    pub fn may_introspect(&self) -> bool {
        self.introspect
    }

    /// The SHA-256 of its secret, when it is kept so.
    pub(crate) fn secret_sha256(&self) -> Option<[u8; 32]> {
        match &self.secret {
            Some(ClientSecret::Sha256(hash)) => Some(*hash),
            _ => None,
        }
    }

    /// The app's own secret verifier, when it has one.
    pub(crate) fn custom_verifier(&self) -> Option<&Arc<dyn SecretVerifier>> {
        match &self.secret {
            Some(ClientSecret::Custom(v)) => Some(v),
            _ => None,
        }
    }

    /// The algorithm of this client's ID tokens (`id_token_signed_response_alg`; RS256 by
    /// default, as OpenID Connect says).
    pub fn id_token_signed_response_alg(&self) -> &str {
        self.id_token_alg.as_deref().unwrap_or("RS256")
    }

    /// The algorithm its userinfo responses are signed with; `None`: plain JSON.
    pub fn userinfo_signed_response_alg(&self) -> Option<&str> {
        self.userinfo_alg.as_deref()
    }

    /// Whether it sees public or pairwise subjects.
    pub fn subject_type(&self) -> crate::openid::SubjectType {
        self.subject_type
    }

    /// The sector of its pairwise subjects (`None` for public subjects).
    pub fn sector_identifier(&self) -> Option<&str> {
        match self.subject_type {
            crate::openid::SubjectType::Pairwise => self.sector.as_deref(),
            _ => None,
        }
    }

    /// Where the user agent may go after logout (RP-Initiated Logout 1.0).
    pub fn post_logout_redirect_uris(&self) -> &[String] {
        &self.post_logout_redirect_uris
    }

    /// Check a presented secret in constant time.
    pub async fn verify_secret(&self, presented: &str) -> bool {
        match &self.secret {
            None => false,
            Some(ClientSecret::Sha256(stored)) => sha256_matches(presented, stored),
            Some(ClientSecret::Custom(v)) => v.verify(presented).await,
        }
    }
}

/// The JWS algorithms a client may ask its ID tokens and userinfo responses to be signed with.
pub(crate) const SIGNING_ALGORITHMS: [&str; 3] = ["RS256", "ES256", "EdDSA"];

/// Builds a [`Client`].
#[derive(Debug)]
#[must_use]
pub struct ClientBuilder {
    client: Client,
    scope: Option<String>,
    default_scope: Option<String>,
}

impl ClientBuilder {
    fn new(id: String, secret: Option<ClientSecret>) -> Self {
        Self {
            client: Client {
                id: Arc::from(id),
                secret,
                redirect_uris: Vec::new(),
                grant_types: None,
                scope: None,
                default_scope: None,
                issue_refresh_token: true,
                introspect: false,
                require_par: false,
                pkce_optional: false,
                access_token_format: None,
                resources: None,
                name: None,
                registered_until: None,
                metadata_document: false,
                id_token_alg: None,
                userinfo_alg: None,
                subject_type: crate::openid::SubjectType::Public,
                sector: None,
                post_logout_redirect_uris: Vec::new(),
            },
            scope: None,
            default_scope: None,
        }
    }

    /// Register a redirect URI (exact match at authorization and token exchange).
    pub fn redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.client.redirect_uris.push(uri.into());
        self
    }

    /// Restrict the grant types this client may use (Grape::OAuth2's `allowed_grant_types`, per
    /// client). A grant the server allows but this client does not is `unauthorized_client`.
    pub fn grant_types(mut self, grants: impl IntoIterator<Item = GrantType>) -> Self {
        self.client.grant_types = Some(grants.into_iter().collect());
        self
    }

    /// The scopes this client may be granted (space-delimited).
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// The scope granted when a request names none (space-delimited).
    pub fn default_scope(mut self, scope: impl Into<String>) -> Self {
        self.default_scope = Some(scope.into());
        self
    }

    /// Never issue refresh tokens to this client (default: issue them where the server would).
    pub fn issue_refresh_token(mut self, issue: bool) -> Self {
        self.client.issue_refresh_token = issue;
        self
    }

    /// Allow this client to call the introspection endpoint (RFC 7662), e.g. a resource server.
    pub fn introspect(mut self, allow: bool) -> Self {
        self.client.introspect = allow;
        self
    }

    /// This client's access tokens: opaque or JWT, whatever the server's default
    /// (`Config::access_token_format`).
    pub fn access_token_format(mut self, format: crate::token::AccessTokenFormat) -> Self {
        self.client.access_token_format = Some(format);
        self
    }

    /// Accept this client's authorization requests only when pushed first (RFC 9126 §5).
    /// Default false (see also `Config::require_pushed_authorization_requests`).
    pub fn require_pushed_authorization_requests(mut self, require: bool) -> Self {
        self.client.require_par = require;
        self
    }

    /// Let this confidential client run the authorization-code flow without PKCE, although the
    /// server requires it (`Config::pkce`): for a legacy client that cannot send a code
    /// challenge, until it is updated. Don't, otherwise: without PKCE an authorization code that
    /// leaks or is injected can be redeemed by whoever holds it (RFC 9700 §2.1.1, §4.5). A
    /// challenge the client does send is still checked. Refused on a public client, which
    /// must always use PKCE.
    pub fn pkce_optional(mut self, optional: bool) -> Self {
        self.client.pkce_optional = optional;
        self
    }

    /// Let this client ask tokens for `resource` (RFC 8707), among those the server knows;
    /// call once per resource. A client registered with none may ask for any the server
    /// knows. Checked (an absolute URI without a fragment) and normalised by
    /// [`build`](Self::build).
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.client
            .resources
            .get_or_insert_with(Vec::new)
            .push(resource.into());
        self
    }

    /// The name to show the resource owner on a consent page (`client_name`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.client.name = Some(name.into());
        self
    }

    /// OpenID Connect: sign this client's ID tokens with `alg` (`RS256`, the default;
    /// `ES256` or `EdDSA`), a key of which the server's key set must hold
    /// (`id_token_signed_response_alg`).
    pub fn id_token_signed_response_alg(mut self, alg: impl Into<String>) -> Self {
        self.client.id_token_alg = Some(alg.into());
        self
    }

    /// OpenID Connect: answer this client's userinfo requests with a JWT signed with `alg`
    /// instead of JSON (`userinfo_signed_response_alg`).
    pub fn userinfo_signed_response_alg(mut self, alg: impl Into<String>) -> Self {
        self.client.userinfo_alg = Some(alg.into());
        self
    }

    /// OpenID Connect: the `sub` this client sees (default [`SubjectType::Public`]).
    ///
    /// [`SubjectType::Public`]: crate::openid::SubjectType::Public
    pub fn subject_type(mut self, subject_type: crate::openid::SubjectType) -> Self {
        self.client.subject_type = subject_type;
        self
    }

    /// OpenID Connect: the sector of this client's pairwise subjects (a host name), for a
    /// client whose redirect URIs are on several hosts; by default the redirect URIs' host.
    /// Clients of one sector see the same pairwise subjects.
    pub fn sector_identifier(mut self, host: impl Into<String>) -> Self {
        self.client.sector = Some(host.into());
        self
    }

    /// OpenID Connect RP-initiated logout: a URI the user agent may be sent to after logout
    /// (compared exactly); call once per URI.
    pub fn post_logout_redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.client.post_logout_redirect_uris.push(uri.into());
        self
    }

    /// Known by its client ID metadata document.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    pub(crate) fn metadata_document(mut self, yes: bool) -> Self {
        self.client.metadata_document = yes;
        self
    }

    /// Check secrets with a custom (e.g. slow-hash) verifier instead of SHA-256.
    pub fn secret_verifier(mut self, verifier: impl SecretVerifier) -> Self {
        self.client.secret = Some(ClientSecret::Custom(Arc::new(verifier)));
        self
    }

    /// Finish, checking the scope strings.
    pub fn build(mut self) -> Result<Client, ConfigError> {
        let parse = |s: &str| Scope::parse(s).map_err(|_| ConfigError::Scope);
        if let Some(s) = &self.scope {
            self.client.scope = Some(parse(s)?);
        }
        if let Some(s) = &self.default_scope {
            let default = parse(s)?;
            if let Some(allowed) = &self.client.scope {
                if !default.is_subset_of(allowed) {
                    return Err(ConfigError::Scope);
                }
            }
            self.client.default_scope = Some(default);
        }
        if self.client.id.is_empty() {
            return Err(ConfigError::ClientId);
        }
        if self.client.pkce_optional && !self.client.is_confidential() {
            return Err(ConfigError::Pkce(
                "a public client must use PKCE (RFC 9700 §2.1.1): pkce_optional is for confidential clients",
            ));
        }
        if let Some(problem) = self
            .client
            .redirect_uris
            .iter()
            .find_map(|uri| crate::wire::uri::registration_problem(uri))
        {
            return Err(ConfigError::RedirectUri(problem));
        }
        if let Some(resources) = &mut self.client.resources {
            for r in resources.iter_mut() {
                *r = crate::resource::normalize(r).map_err(|e| ConfigError::Resource(e.0))?;
            }
        }
        self.check_openid()?;
        Ok(self.client)
    }

    /// The OpenID settings: known algorithms, a sector for pairwise subjects, logout URIs that
    /// could be redirect URIs.
    fn check_openid(&mut self) -> Result<(), ConfigError> {
        let client = &mut self.client;
        for alg in [&client.id_token_alg, &client.userinfo_alg]
            .into_iter()
            .flatten()
        {
            if !SIGNING_ALGORITHMS.contains(&alg.as_str()) {
                return Err(ConfigError::OpenId(
                    "the signing algorithm must be RS256, ES256 or EdDSA",
                ));
            }
        }
        if let Some(problem) = client
            .post_logout_redirect_uris
            .iter()
            .find_map(|uri| crate::wire::uri::registration_problem(uri))
        {
            return Err(ConfigError::OpenId(problem));
        }
        if client.subject_type == crate::openid::SubjectType::Pairwise && client.sector.is_none() {
            let mut hosts = client
                .redirect_uris
                .iter()
                .filter_map(|u| crate::wire::uri::host_of(u));
            let first = hosts.next();
            if hosts.any(|h| Some(h) != first) {
                return Err(ConfigError::OpenId(
                    "pairwise subjects with redirect URIs on several hosts need a sector_identifier",
                ));
            }
            client.sector = Some(first.map_or_else(|| client.id.to_string(), str::to_owned));
        }
        Ok(())
    }
}

/// Which resources a client may ask tokens for, when a fixed list
/// ([`Config::resources`](crate::config::Config::resources)) is not enough: resources that
/// come and go, or a rule per tenant. Set with
/// [`AuthServerBuilder::resource_policy`](crate::AuthServerBuilder::resource_policy); it
/// replaces the list. A client's own restriction
/// ([`ClientBuilder::resource`](crate::client::ClientBuilder::resource)) still applies.
///
/// ```
/// use tower_oauth2::client::{Client, ResourcePolicy};
///
/// /// Every MCP server of a tenant's subdomain.
/// struct Tenants;
///
/// impl ResourcePolicy for Tenants {
///     fn allows(&self, _client: &Client, resource: &str) -> bool {
///         resource.starts_with("https://") && resource.ends_with(".mcp.example/mcp")
///     }
/// }
/// ```
pub trait ResourcePolicy: Send + Sync + 'static {
    /// Whether `client` may have a token for `resource` (in normal form: scheme and host
    /// lower-case, no default port).
    fn allows(&self, client: &Client, resource: &str) -> bool;
}

/// Where clients are looked up.
#[async_trait]
pub trait ClientStore: Send + Sync + 'static {
    /// The client with this `client_id`, if registered.
    async fn find_client(&self, client_id: &str) -> Result<Option<Arc<Client>>, StoreError>;
}

/// A fixed set of clients held in memory.
#[derive(Debug, Default, Clone)]
pub struct InMemoryClients {
    clients: HashMap<String, Arc<Client>>,
}

impl InMemoryClients {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add (or replace) a client.
    #[must_use]
    pub fn with(mut self, client: Client) -> Self {
        self.insert(client);
        self
    }

    /// Add (or replace) a client.
    pub fn insert(&mut self, client: Client) {
        self.clients
            .insert(client.id().to_owned(), Arc::new(client));
    }

    /// How many clients are registered.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// Whether no client is registered.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }
}

#[async_trait]
impl ClientStore for InMemoryClients {
    async fn find_client(&self, client_id: &str) -> Result<Option<Arc<Client>>, StoreError> {
        Ok(self.clients.get(client_id).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn secrets_are_hashed_and_checked() {
        let c = Client::confidential("c", "s3cret").build().unwrap();
        assert!(c.verify_secret("s3cret").await);
        assert!(!c.verify_secret("s3cre").await);
        assert!(!format!("{c:?}").contains("s3cret"));
        let p = Client::public("p").build().unwrap();
        assert!(!p.verify_secret("").await);
    }

    #[test]
    fn default_scope_must_be_allowed() {
        let err = Client::public("p")
            .scope("read")
            .default_scope("write")
            .build();
        assert_eq!(err.unwrap_err(), ConfigError::Scope);
    }
}
