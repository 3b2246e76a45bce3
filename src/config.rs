//! [`Config`]: lifetimes, rotation, grace period, allowed grants and policies, with their
//! defaults. Every field is public; start from `Config::default()` and change what you need.
//!
//! ```
//! use std::time::Duration;
//! use tower_oauth2::{Config, GrantType, OnRefresh};
//!
//! let mut config = Config::default();
//! config.allowed_grant_types = config.allowed_grant_types.with(GrantType::Password);
//! config.access_token_lifetime = Duration::from_secs(900);
//! config.refresh_token_grace_period = Duration::from_secs(30);
//! config.on_refresh = OnRefresh::RevokeAccessTokens;
//! assert!(config.validate().is_ok());
//! ```

use std::{fmt, future::Future, sync::Arc, time::Duration};

use crate::{
    client::{GrantType, GrantTypes},
    error::ConfigError,
    future::BoxFuture,
    store::RefreshTokenRecord,
};

/// The longest grace period allowed.
pub const MAX_GRACE_PERIOD: Duration = Duration::from_secs(300);

/// The longest any lifetime may be: ten years. Longer ones are a mistake (a token that outlives
/// every key rotation and every audit), and `Duration::MAX` would overflow the clock.
pub const MAX_LIFETIME: Duration = Duration::from_secs(10 * 365 * 86_400);

// Where the server-wide default and each client's choice meet: a property of the token itself.
pub use crate::token::AccessTokenFormat;

/// What to do, after a successful refresh, with what the old refresh token had produced
/// (Grape::OAuth2's `on_refresh`).
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum OnRefresh {
    /// Nothing (default): earlier access tokens live until they expire.
    #[default]
    Nothing,
    /// Revoke the access token issued earlier with or under the refresh token just used.
    RevokeAccessTokens,
    /// Call an async closure with the old refresh token's record.
    Call(Arc<dyn Fn(RefreshTokenRecord) -> BoxFuture<'static, ()> + Send + Sync>),
}

impl OnRefresh {
    /// Call `f` with the old refresh token's record after each successful refresh.
    pub fn call<F, Fut>(f: F) -> Self
    where
        F: Fn(RefreshTokenRecord) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self::Call(Arc::new(move |record| Box::pin(f(record))))
    }
}

impl fmt::Debug for OnRefresh {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Nothing => f.write_str("Nothing"),
            Self::RevokeAccessTokens => f.write_str("RevokeAccessTokens"),
            Self::Call(_) => f.write_str("Call(..)"),
        }
    }
}

/// PKCE (RFC 7636) requirements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PkcePolicy {
    /// Public clients must send a code challenge (default: true; RFC 9700 §2.1.1).
    pub required_for_public_clients: bool,
    /// Confidential clients must send one too (default: true, as OAuth 2.1 and RFC 9700 §2.1.1
    /// expect of every client). A legacy client that cannot is let off one by one
    /// ([`ClientBuilder::pkce_optional`](crate::client::ClientBuilder::pkce_optional)) rather
    /// than by turning this off for all.
    pub required_for_confidential_clients: bool,
    /// Accept the `plain` method (default: false; only `S256`).
    pub allow_plain: bool,
}

impl Default for PkcePolicy {
    fn default() -> Self {
        Self {
            required_for_public_clients: true,
            required_for_confidential_clients: true,
            allow_plain: false,
        }
    }
}

/// Who may call the introspection endpoint (RFC 7662 §2.1 requires authorization).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum IntrospectionAccess {
    /// Only clients registered with `.introspect(true)`, e.g. resource servers (default).
    #[default]
    AllowedClients,
    /// Any authenticated confidential client.
    AnyConfidentialClient,
}

/// Server configuration. Each field documents its default and why; [`Config::default`] is the
/// secure baseline.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Grant types the token endpoint accepts. Default: `authorization_code`,
    /// `client_credentials`, `refresh_token`; `password` is off (RFC 9700 §2.4).
    pub allowed_grant_types: GrantTypes,
    /// Access token lifetime. Default 3600 s.
    pub access_token_lifetime: Duration,
    /// Refresh token idle lifetime: how long one refresh token lives unused; each rotation
    /// starts a new one. Default 1 209 600 s (14 days, as oauth2-server-php).
    pub refresh_token_lifetime: Duration,
    /// Absolute lifetime of a grant's refresh-token family, which rotation never extends.
    /// Default 90 days; `None` for no limit.
    pub refresh_token_max_lifetime: Option<Duration>,
    /// Authorization code lifetime. Default 60 s.
    pub authorization_code_lifetime: Duration,
    /// Issue refresh tokens at all. Default true.
    pub issue_refresh_token: bool,
    /// The grants that issue refresh tokens (never `client_credentials`, RFC 6749 §4.4.3).
    /// Default: `authorization_code`, `password` and the device grant.
    pub issue_refresh_token_for: GrantTypes,
    /// Issue a refresh token only when the `offline_access` scope is granted. Default false.
    pub refresh_token_requires_offline_access: bool,
    /// Rotate refresh tokens: a used one dies and the response carries its successor
    /// (oauth2-server-php's `always_issue_new_refresh_token`). Default true. Public clients are
    /// always rotated (RFC 9700 §2.2.2).
    pub rotate_refresh_token: bool,
    /// How long after a rotation the immediately preceding refresh token may be presented again
    /// and get the same response, instead of revoking the family. Default 0 (off); at most 300 s.
    pub refresh_token_grace_period: Duration,
    /// What to do with the old refresh token's access tokens after a refresh. Default nothing.
    pub on_refresh: OnRefresh,
    /// PKCE requirements.
    pub pkce: PkcePolicy,
    /// Who may introspect.
    pub introspection: IntrospectionAccess,
    /// Request body cap for the token, revocation and introspection endpoints. Default 16 KiB.
    pub max_body_bytes: usize,
    /// The most tokens a requested scope may have (`invalid_scope` beyond). Default 64. A
    /// client without a scope restriction would otherwise have whatever it asks stored with
    /// every grant.
    pub max_scope_tokens: usize,
    /// The longest a requested scope may be, in bytes of its normal form (`invalid_scope`
    /// beyond). Default 4096.
    pub max_scope_bytes: usize,
    /// The `realm` in `WWW-Authenticate` challenges. Default `"tower-oauth2"`.
    pub realm: String,
    /// This server's issuer identifier (RFC 8414 §2), e.g. `https://auth.example.com`: sent as
    /// `iss` with every authorization response (RFC 9207). Required by the authorization
    /// endpoint. A trailing slash is dropped when the server is built, so it is spelled one way
    /// in redirects, JWTs and metadata. Default none.
    pub issuer: Option<String>,
    /// How long a validated authorization request waits for the resource owner's decision,
    /// once its page has been submitted at least once (the app looked at it again,
    /// `AuthServer::pending_authorization`, say after a wrong password). Default 600 s (10
    /// minutes).
    pub authorization_request_lifetime: Duration,
    /// How long a request nobody has come back to waits: shorter, so that requests started and
    /// abandoned (or sent by a flood) go sooner. At most `authorization_request_lifetime`.
    /// Default 300 s.
    pub authorization_request_idle_lifetime: Duration,
    /// The longest `state` an authorization request may carry (it is kept with the request and
    /// sent back). Beyond it, `invalid_request` at the redirect URI, without the `state`.
    /// Default 2048 bytes.
    pub max_state_bytes: usize,
    /// How many authorization requests one user agent (its binding cookie) may leave waiting
    /// for a decision within one request lifetime. Beyond it, an error page (503
    /// `temporarily_unavailable`) until the window ends. Counted in the token store, so across
    /// instances. Default 20.
    pub max_pending_authorizations_per_agent: u64,
    /// How many authorization requests (pushed ones included) may be left waiting, all user
    /// agents together, within one request lifetime: what an anonymous flood can make the
    /// store hold. Beyond it, 503 `temporarily_unavailable`. Default 100 000.
    pub max_pending_authorizations: u64,
    /// What access tokens are, unless a client says otherwise
    /// (`ClientBuilder::access_token_format`). Default opaque.
    pub access_token_format: AccessTokenFormat,
    /// The `aud` of JWT access tokens whose request named no resource (and got none by
    /// default, [`default_resource`](Self::default_resource)). Default: the issuer. A token
    /// for named resources has them as its `aud` instead (RFC 8707, RFC 9068 §3).
    pub access_token_audience: Vec<String>,
    /// The protected resources (RFC 8707 resource indicators: absolute URIs without a
    /// fragment) clients may ask tokens for with `resource`; anything else is
    /// `invalid_target`. Normalised when the server is built (scheme and host lower-cased, a
    /// default port dropped). `AuthServerBuilder::resource_policy` replaces the list with the
    /// app's own rule; `ClientBuilder::resource` narrows it per client. Default: none, so a
    /// request naming a resource is refused.
    pub resources: Vec<String>,
    /// The resource a request that names none is for: its grant and tokens get it as their
    /// audience, as if the client had asked for it, when the client may have it (else they get
    /// no audience). MCP deployments set it, so that every token names the MCP server. Must be
    /// one of [`resources`](Self::resources) unless a policy decides. Default none: a token
    /// asked without `resource` has no audience.
    pub default_resource: Option<String>,
    /// How long a pushed authorization request's `request_uri` may be used (RFC 9126 §2.2
    /// `expires_in`). Default 60 s.
    pub pushed_authorization_request_lifetime: Duration,
    /// Refuse authorization requests that were not pushed first (RFC 9126 §5), for every
    /// client; `ClientBuilder::require_pushed_authorization_requests` does it for one. Default
    /// false.
    pub require_pushed_authorization_requests: bool,
    /// The per-instance cache of access-token lookups put in front of a shared store that
    /// announces revocations (Redis, PostgreSQL): on by default, with its bounds. See
    /// [`NearCache`](crate::store::NearCache) for the staleness guarantee.
    pub near_cache: crate::store::NearCacheConfig,
    /// The device grant (RFC 8628): where the user enters the code (`verification_uri`, an
    /// absolute URL; a path is joined to [`issuer`](Self::issuer)). Required when
    /// `allowed_grant_types` has `DeviceCode`. Default `/device`.
    pub device_verification_uri: String,
    /// How long a device code and its user code live (RFC 8628 §3.2 `expires_in`). Default
    /// 600 s.
    pub device_code_lifetime: Duration,
    /// The least time between two polls of one device code (`interval`): a poll sooner is
    /// `slow_down`, and the interval grows by 5 s (RFC 8628 §3.5). Default 5 s.
    pub device_poll_interval: Duration,
    /// Wrong user codes one user agent may enter at the verification page within one device
    /// code lifetime; past it the page refuses (429) until the window ends. Default 10.
    pub device_max_failed_entries_per_agent: u64,
    /// Wrong user codes all user agents together may enter within one device code lifetime
    /// (counted across instances on a shared store). Default 1 000.
    pub device_max_failed_entries: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            allowed_grant_types: [
                GrantType::AuthorizationCode,
                GrantType::ClientCredentials,
                GrantType::RefreshToken,
            ]
            .into_iter()
            .collect(),
            access_token_lifetime: Duration::from_secs(3600),
            refresh_token_lifetime: Duration::from_secs(1_209_600),
            refresh_token_max_lifetime: Some(Duration::from_secs(90 * 24 * 3600)),
            authorization_code_lifetime: Duration::from_secs(60),
            issue_refresh_token: true,
            issue_refresh_token_for: [
                GrantType::AuthorizationCode,
                GrantType::Password,
                GrantType::DeviceCode,
            ]
            .into_iter()
            .collect(),
            refresh_token_requires_offline_access: false,
            rotate_refresh_token: true,
            refresh_token_grace_period: Duration::ZERO,
            on_refresh: OnRefresh::Nothing,
            pkce: PkcePolicy::default(),
            introspection: IntrospectionAccess::AllowedClients,
            max_body_bytes: 16 * 1024,
            max_scope_tokens: 64,
            max_scope_bytes: 4096,
            realm: "tower-oauth2".to_owned(),
            issuer: None,
            authorization_request_lifetime: Duration::from_secs(600),
            authorization_request_idle_lifetime: Duration::from_secs(300),
            max_state_bytes: 2048,
            max_pending_authorizations_per_agent: 20,
            max_pending_authorizations: 100_000,
            access_token_format: AccessTokenFormat::Opaque,
            access_token_audience: Vec::new(),
            resources: Vec::new(),
            default_resource: None,
            pushed_authorization_request_lifetime: Duration::from_secs(60),
            require_pushed_authorization_requests: false,
            near_cache: crate::store::NearCacheConfig::default(),
            device_verification_uri: "/device".to_owned(),
            device_code_lifetime: Duration::from_secs(600),
            device_poll_interval: Duration::from_secs(5),
            device_max_failed_entries_per_agent: 10,
            device_max_failed_entries: 1000,
        }
    }
}

impl Config {
    /// Check that the settings can work together: every lifetime at least 1 s and at most
    /// [`MAX_LIFETIME`], the family's absolute lifetime no shorter than one refresh token's, the
    /// grace period at most [`MAX_GRACE_PERIOD`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        let secs = |d: Duration| d.as_secs();
        let lifetimes = [
            Some(self.access_token_lifetime),
            Some(self.refresh_token_lifetime),
            self.refresh_token_max_lifetime,
            Some(self.authorization_code_lifetime),
            Some(self.authorization_request_lifetime),
            Some(self.pushed_authorization_request_lifetime),
            Some(self.device_code_lifetime),
        ];
        if lifetimes.into_iter().flatten().any(|d| d > MAX_LIFETIME) {
            return Err(ConfigError::Lifetime(
                "a lifetime is longer than MAX_LIFETIME (ten years)",
            ));
        }
        if secs(self.access_token_lifetime) == 0 {
            return Err(ConfigError::Lifetime(
                "access_token_lifetime must be at least 1 s",
            ));
        }
        if secs(self.refresh_token_lifetime) == 0 {
            return Err(ConfigError::Lifetime(
                "refresh_token_lifetime must be at least 1 s",
            ));
        }
        if secs(self.device_code_lifetime) < 10 || secs(self.device_poll_interval) == 0 {
            return Err(ConfigError::Lifetime(
                "device_code_lifetime must be at least 10 s and device_poll_interval at least 1 s",
            ));
        }
        if self.device_poll_interval >= self.device_code_lifetime {
            return Err(ConfigError::Lifetime(
                "device_poll_interval must be shorter than device_code_lifetime (else every poll is slow_down)",
            ));
        }
        if secs(self.authorization_code_lifetime) == 0 {
            return Err(ConfigError::Lifetime(
                "authorization_code_lifetime must be at least 1 s",
            ));
        }
        if self
            .refresh_token_max_lifetime
            .is_some_and(|m| m < self.refresh_token_lifetime)
        {
            return Err(ConfigError::Lifetime(
                "refresh_token_max_lifetime must not be shorter than refresh_token_lifetime",
            ));
        }
        if self.refresh_token_grace_period > MAX_GRACE_PERIOD {
            return Err(ConfigError::GracePeriodTooLong);
        }
        if secs(self.authorization_request_lifetime) == 0
            || secs(self.authorization_request_idle_lifetime) == 0
            || secs(self.pushed_authorization_request_lifetime) == 0
        {
            return Err(ConfigError::Lifetime(
                "authorization request lifetimes must be at least 1 s",
            ));
        }
        if self.authorization_request_idle_lifetime > self.authorization_request_lifetime {
            return Err(ConfigError::Lifetime(
                "authorization_request_idle_lifetime must not exceed authorization_request_lifetime",
            ));
        }
        if let Some(issuer) = &self.issuer {
            let http = issuer.starts_with("https://") || issuer.starts_with("http://");
            if !http
                || issuer.contains(['?', '#'])
                || crate::wire::uri::registration_problem(issuer).is_some()
            {
                return Err(ConfigError::Authorization(
                    "the issuer must be an http(s) URL without query or fragment (RFC 8414 §2)",
                ));
            }
        }
        if self.max_body_bytes == 0 {
            return Err(ConfigError::BodyLimit);
        }
        Ok(())
    }
}
