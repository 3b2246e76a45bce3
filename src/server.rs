//! [`AuthServer`]: the shared core every endpoint and the bearer layer hold, and its builder.
//! The endpoints and the bearer layer add their constructors to it where they are defined
//! (`server.token_endpoint()` in `endpoint`, `server.bearer_layer()` in `bearer`), so this
//! file imports none of them.

use std::{
    fmt,
    sync::{Arc, OnceLock},
};

use crate::{
    client::{Client, ClientStore, GrantType, SecretVerifier},
    clock::{Clock, SystemClock, UnixTime},
    config::Config,
    endpoint::authorize::handler::AuthorizationHandler,
    error::{ConfigError, OAuthError, StoreError},
    events::{Event, EventListener},
    grant::{self, AuthorizationRequest, context::Context},
    registration::{AppThenRegistered, ClientIdMetadataDocuments, Registration, Registry},
    store::{AccessTokenRecord, GrantFilter, MemoryStore, NearCache, TokenStore},
    token::{GrantId, TokenHash},
    user::UserAuthenticator,
};

/// The shared state: what the protocol logic sees ([`Context`], reached through `Deref`), and
/// what only the endpoints use.
pub(crate) struct Inner {
    pub(crate) ctx: Context,
    /// Run for a secret presented with an unknown client id, so that it costs what a known
    /// client's check costs: given to the builder, or the first custom verifier used.
    pub(crate) decoy_verifier: OnceLock<Arc<dyn SecretVerifier>>,
    /// The app's part of the authorization endpoint.
    pub(crate) authorization: Option<Arc<dyn AuthorizationHandler>>,
    /// Dynamic client registration, when enabled.
    pub(crate) registry: Option<Arc<Registry>>,
}

impl std::ops::Deref for Inner {
    type Target = Context;
    fn deref(&self) -> &Context {
        &self.ctx
    }
}

/// The authorization server's shared state: configuration, client registry, user authenticator,
/// token store, clock and event listeners. Cheap to clone (one `Arc`).
///
/// ```
/// use tower_oauth2::{AuthServer, Client, InMemoryClients};
///
/// # fn main() -> Result<(), tower_oauth2::ConfigError> {
/// let server = AuthServer::builder()
///     .clients(InMemoryClients::new().with(Client::confidential("app", "s3cret").build()?))
///     .build()?;
/// let token_endpoint = server.token_endpoint(); // a tower Service
/// let bearer = server.bearer_layer(); // a tower Layer
/// # let _ = (token_endpoint, bearer);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct AuthServer {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for AuthServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthServer")
            .field("config", &self.inner.config)
            .field("clock", &self.inner.clock)
            .finish_non_exhaustive()
    }
}

impl AuthServer {
    /// Start building a server.
    pub fn builder() -> AuthServerBuilder {
        AuthServerBuilder::default()
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The token store.
    pub fn store(&self) -> &Arc<dyn TokenStore> {
        &self.inner.store
    }

    /// The current time according to the server's clock.
    pub fn now(&self) -> UnixTime {
        self.inner.clock.now()
    }

    /// Mint an authorization code for the app's own authorization/consent handler, after the
    /// resource owner approved. Checks the client, redirect URI, scope and PKCE policy; returns
    /// the code to put in the redirect. See [`AuthorizationRequest`].
    pub async fn issue_authorization_code(
        &self,
        request: AuthorizationRequest,
    ) -> Result<String, OAuthError> {
        grant::authorization_code::issue(self.context(), request).await
    }

    /// Look up an access token as the bearer layer does: `Ok(None)` when it is unknown, revoked or
    /// expired.
    pub async fn validate_access_token(
        &self,
        token: &str,
    ) -> Result<Option<AccessTokenRecord>, StoreError> {
        let record = self
            .inner
            .store
            .find_access_token(&TokenHash::of(token))
            .await?;
        let now = self.now();
        Ok(record.filter(|r| r.expires_at > now))
    }

    /// The device request (RFC 8628) a user code names, while it waits for a decision: for the
    /// verification page to show which client asks, for what, and the code to compare with
    /// the device's screen. The code is read loosely (case, a dash or spaces do not matter).
    pub async fn device_request(
        &self,
        user_code: &str,
    ) -> Result<Option<grant::PendingDevice>, OAuthError> {
        grant::device::find(self.context(), user_code).await
    }

    /// Record the user's decision on the device request a user code names: approved (by a
    /// subject, for at most the asked scope) or denied — the device hears it at its next poll.
    /// The user code is used up; `Ok(false)` when it names no pending request.
    pub async fn complete_device(
        &self,
        user_code: &str,
        decision: crate::grant::authorize::Decision,
    ) -> Result<bool, OAuthError> {
        grant::device::decide(self.context(), user_code, decision).await
    }

    /// The device grant's `verification_uri`: `Config::device_verification_uri`, joined to the
    /// issuer when it is a path.
    pub(crate) fn device_verification_uri(&self) -> String {
        let uri = &self.config().device_verification_uri;
        match (&self.config().issuer, uri.starts_with('/')) {
            (Some(issuer), true) => format!("{issuer}{uri}"),
            _ => uri.clone(),
        }
    }

    /// Revoke one grant: every access and refresh token of the family.
    pub async fn revoke_grant(&self, id: GrantId) -> Result<bool, StoreError> {
        let revoked = self.inner.store.revoke_grant(id).await?;
        self.emit(Event::GrantsRevoked {
            by: "grant",
            count: u64::from(revoked),
        });
        Ok(revoked)
    }

    /// Revoke every grant of a resource owner (logout everywhere, password change).
    pub async fn revoke_subject(&self, subject: &str) -> Result<u64, StoreError> {
        let count = self
            .inner
            .store
            .revoke_grants(&GrantFilter::Subject(subject.to_owned()))
            .await?;
        self.emit(Event::GrantsRevoked {
            by: "subject",
            count,
        });
        Ok(count)
    }

    /// Revoke every grant of a client (client compromise).
    pub async fn revoke_client(&self, client_id: &str) -> Result<u64, StoreError> {
        let count = self
            .inner
            .store
            .revoke_grants(&GrantFilter::Client(client_id.to_owned()))
            .await?;
        self.emit(Event::GrantsRevoked {
            by: "client",
            count,
        });
        Ok(count)
    }

    pub(crate) async fn find_client(&self, id: &str) -> Result<Option<Arc<Client>>, OAuthError> {
        self.inner.find_client(id).await
    }

    /// The client with this `client_id` as the endpoints see it: the app's, then (with
    /// [registration](AuthServerBuilder::registration)) the registered ones, then (with
    /// [metadata documents](AuthServerBuilder::client_id_metadata_documents)) the one a URL
    /// names. For a consent page that names the client. `Err`: `temporarily_unavailable` when
    /// the store is down, `invalid_client` when a metadata document cannot be used.
    pub async fn client(&self, id: &str) -> Result<Option<Arc<Client>>, OAuthError> {
        self.find_client(id).await
    }

    /// The `sub` `client` sees for the app's user `subject` (OpenID Connect Core §8): the same,
    /// or for a client with pairwise subjects the pairwise one — to compare with an
    /// `id_token_hint`'s subject. `server_error` when pairwise subjects have no key.
    pub fn subject_for(&self, client: &Client, subject: &str) -> Result<String, OAuthError> {
        crate::grant::openid::subject_for(self.context(), client, subject)
    }

    pub(crate) fn emit(&self, event: Event) {
        self.inner.emit(event);
    }

    /// The protocol logic's view of the server.
    pub(crate) fn context(&self) -> &Context {
        &self.inner.ctx
    }
}

/// Builds an [`AuthServer`]. Only the client store is required; the token store defaults to a
/// [`MemoryStore`] and the clock to the system clock.
#[derive(Default)]
#[must_use]
pub struct AuthServerBuilder {
    config: Config,
    clients: Option<Arc<dyn ClientStore>>,
    users: Option<Arc<dyn UserAuthenticator>>,
    store: Option<Arc<dyn TokenStore>>,
    clock: Option<Arc<dyn Clock>>,
    decoy_verifier: Option<Arc<dyn SecretVerifier>>,
    authorization: Option<Arc<dyn AuthorizationHandler>>,
    resource_policy: Option<Arc<dyn crate::client::ResourcePolicy>>,
    registration: Option<Registration>,
    documents: Option<ClientIdMetadataDocuments>,
    #[cfg(feature = "jwt")]
    keys: Option<crate::jose::KeySet>,
    #[cfg(feature = "jwt")]
    claims_hook: Option<Arc<dyn crate::jose::ClaimsHook>>,
    openid: Option<crate::openid::OpenId>,
    listeners: Vec<Arc<dyn EventListener>>,
}

impl fmt::Debug for AuthServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthServerBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl AuthServerBuilder {
    /// Replace the whole configuration.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Change the configuration in place.
    pub fn configure(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(&mut self.config);
        self
    }

    /// Allow a grant type in addition to the defaults (e.g. `password`).
    pub fn allow_grant_type(mut self, grant: GrantType) -> Self {
        self.config.allowed_grant_types = self.config.allowed_grant_types.with(grant);
        self
    }

    /// The registered clients.
    pub fn clients(mut self, clients: impl ClientStore) -> Self {
        self.clients = Some(Arc::new(clients));
        self
    }

    /// How resource owners are checked for the password grant.
    pub fn users(mut self, users: impl UserAuthenticator) -> Self {
        self.users = Some(Arc::new(users));
        self
    }

    /// The token store (default: a new [`MemoryStore`]).
    pub fn store(mut self, store: impl TokenStore) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// A token store already behind an `Arc`, e.g. shared with another server.
    pub fn shared_store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// The clock (default: the system clock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// The secret check to spend on a client id that does not exist, so that an unknown id
    /// takes as long as a known one: typically your slow verifier over a fixed dummy hash.
    /// Only matters when clients use [`ClientBuilder::secret_verifier`]; without this, the
    /// first custom verifier a known client uses serves as the decoy from then on (and an
    /// unknown id costs one SHA-256, as a built-in secret does).
    ///
    /// [`ClientBuilder::secret_verifier`]: crate::client::ClientBuilder::secret_verifier
    pub fn unknown_client_verifier(mut self, verifier: impl SecretVerifier) -> Self {
        self.decoy_verifier = Some(Arc::new(verifier));
        self
    }

    /// The app's login and consent: what the [authorization endpoint](AuthServer::authorization_endpoint)
    /// asks once a request is validated. Requires [`Config::issuer`] (sent as `iss`, RFC 9207).
    pub fn authorization_handler(mut self, handler: impl AuthorizationHandler) -> Self {
        self.authorization = Some(Arc::new(handler));
        self
    }

    /// The keys JWT access tokens are signed with (feature `jwt`): required when any client's
    /// access tokens are JWTs, published by [`AuthServer::jwks_endpoint`].
    #[cfg(feature = "jwt")]
    pub fn signing_keys(mut self, keys: crate::jose::KeySet) -> Self {
        self.keys = Some(keys);
        self
    }

    /// Add the app's own claims to JWT access tokens (feature `jwt`); see
    /// [`ClaimsHook`](crate::jose::ClaimsHook).
    #[cfg(feature = "jwt")]
    pub fn access_token_claims(mut self, hook: impl crate::jose::ClaimsHook) -> Self {
        self.claims_hook = Some(Arc::new(hook));
        self
    }

    /// Speak OpenID Connect (feature `jwt`): ID tokens for authorization requests with the
    /// `openid` scope, the [userinfo](AuthServer::userinfo_endpoint) and
    /// [end-session](AuthServer::end_session_endpoint) endpoints, and the OpenID fields of the
    /// [metadata](AuthServer::metadata_endpoint) (mount it at
    /// `/.well-known/openid-configuration` too). Needs [`Config::issuer`] and
    /// [`signing_keys`](Self::signing_keys) with an RS256 key
    /// ([`KeySet::with_signing_key`](crate::jose::KeySet::with_signing_key) beside another).
    pub fn openid(mut self, openid: crate::openid::OpenId) -> Self {
        self.openid = Some(openid);
        self
    }

    /// Decide which resources (RFC 8707) a client may ask tokens for with the app's own rule,
    /// instead of the fixed list `Config::resources`. A client's own list
    /// (`ClientBuilder::resource`) still narrows what the policy allows.
    pub fn resource_policy(mut self, policy: impl crate::client::ResourcePolicy) -> Self {
        self.resource_policy = Some(Arc::new(policy));
        self
    }

    /// Let clients register themselves (RFC 7591) and manage their registration (RFC 7592) at
    /// [`AuthServer::registration_endpoint`]. The registered clients are kept in the token
    /// store, after the app's own ([`clients`](Self::clients), which then become optional):
    /// every instance on one store serves them. Requires [`Config::issuer`].
    pub fn registration(mut self, registration: Registration) -> Self {
        self.registration = Some(registration);
        self
    }

    /// Accept client ID metadata documents: a `client_id` that is an `https` URL names the
    /// client's metadata, which the server fetches (as safely as
    /// [`ClientIdMetadataDocuments`] says), checks and caches in the token store. Clients
    /// written in code and registered ones are looked up first. Needs the `tls` feature.
    pub fn client_id_metadata_documents(mut self, documents: ClientIdMetadataDocuments) -> Self {
        self.documents = Some(documents);
        self
    }

    /// Subscribe to [`Event`]s.
    pub fn on_event(mut self, listener: impl EventListener) -> Self {
        self.listeners.push(Arc::new(listener));
        self
    }

    /// What OpenID Connect needs of the rest: an issuer, and keys with RS256 among them.
    fn check_openid(&self) -> Result<(), ConfigError> {
        if self.config.issuer.is_none() {
            return Err(ConfigError::OpenId(
                "OpenID Connect needs Config::issuer (the ID tokens' iss)",
            ));
        }
        #[cfg(not(feature = "jwt"))]
        return Err(ConfigError::OpenId(
            "OpenID Connect signs ID tokens: enable the crate's `jwt` feature",
        ));
        #[cfg(feature = "jwt")]
        match &self.keys {
            None => Err(ConfigError::OpenId(
                "OpenID Connect needs signing keys (AuthServerBuilder::signing_keys)",
            )),
            Some(keys) if !keys.signing_algorithms().contains(&"RS256") => {
                Err(ConfigError::OpenId(
                    "OpenID Connect requires an RS256 signing key (KeySet::with_signing_key)",
                ))
            }
            Some(_) => Ok(()),
        }
    }

    /// Check the configuration and build.
    pub fn build(mut self) -> Result<AuthServer, ConfigError> {
        self.config.validate()?;
        // One spelling of the issuer everywhere: metadata, `iss` in redirects, JWTs (a trailing
        // slash made strict clients and validators fail closed).
        if let Some(issuer) = &mut self.config.issuer {
            let kept = issuer.trim_end_matches('/').len();
            issuer.truncate(kept);
        }
        if let Some(openid) = &self.openid {
            openid.validate()?;
            self.check_openid()?;
        }
        let resource = |r: &mut String| {
            *r = crate::resource::normalize(r).map_err(|e| ConfigError::Resource(e.0))?;
            Ok::<_, ConfigError>(())
        };
        self.config.resources.iter_mut().try_for_each(resource)?;
        if let Some(default) = &mut self.config.default_resource {
            resource(default)?;
            if self.resource_policy.is_none() && !self.config.resources.contains(default) {
                return Err(ConfigError::Resource(
                    "Config::default_resource must be one of Config::resources",
                ));
            }
        }
        if let Some(r) = &self.registration {
            r.validate()?;
            if self.config.issuer.is_none() {
                return Err(ConfigError::Registration(
                    "the registration endpoint needs Config::issuer (its URLs are under it)",
                ));
            }
        }
        let clients = match (
            self.clients,
            self.registration.is_some() || self.documents.is_some(),
        ) {
            (Some(c), _) => c,
            (None, true) => Arc::new(crate::client::InMemoryClients::new()),
            (None, false) => return Err(ConfigError::MissingClients),
        };
        #[cfg(not(feature = "tls"))]
        if self.documents.is_some() {
            return Err(ConfigError::Registration(
                "client ID metadata documents are fetched over https: enable the crate's `tls` feature",
            ));
        }
        if self
            .config
            .allowed_grant_types
            .contains(GrantType::Password)
            && self.users.is_none()
        {
            return Err(ConfigError::MissingUserAuthenticator);
        }
        if self
            .config
            .allowed_grant_types
            .contains(GrantType::DeviceCode)
            && self.config.device_verification_uri.starts_with('/')
            && self.config.issuer.is_none()
        {
            return Err(ConfigError::Authorization(
                "the device grant's verification_uri is a path: set Config::issuer (or an absolute device_verification_uri)",
            ));
        }
        if self.authorization.is_some() && self.config.issuer.is_none() {
            return Err(ConfigError::Authorization(
                "the authorization endpoint needs Config::issuer (sent as iss, RFC 9207)",
            ));
        }
        if self.config.access_token_format == crate::config::AccessTokenFormat::Jwt {
            #[cfg(not(feature = "jwt"))]
            return Err(ConfigError::Key(
                "JWT access tokens need the crate's `jwt` feature",
            ));
            #[cfg(feature = "jwt")]
            if self.keys.is_none() {
                return Err(ConfigError::Key(
                    "JWT access tokens need signing keys (AuthServerBuilder::signing_keys)",
                ));
            }
            #[cfg(feature = "jwt")]
            if self.config.issuer.is_none() {
                return Err(ConfigError::Key(
                    "JWT access tokens need Config::issuer (their iss)",
                ));
            }
        }
        let decoy_verifier = OnceLock::new();
        if let Some(v) = self.decoy_verifier {
            let _ = decoy_verifier.set(v);
        }
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let mut store = self.store.unwrap_or_else(|| Arc::new(MemoryStore::new()));
        if self.config.near_cache.enabled && store.announces_revocations() {
            store = Arc::new(NearCache::new(
                store,
                Arc::clone(&clock),
                self.config.near_cache.clone(),
            ));
        }
        #[cfg(feature = "jwt")]
        let algorithms = match (&self.openid, &self.keys) {
            (Some(_), Some(keys)) => keys.signing_algorithms(),
            _ => Vec::new(),
        };
        #[cfg(not(feature = "jwt"))]
        let algorithms = Vec::new();
        let openid_support = crate::registration::OpenIdSupport {
            signing_algorithms: algorithms,
            pairwise: self
                .openid
                .as_ref()
                .is_some_and(|o| o.pairwise_key.is_some()),
        };
        let registry = self.registration.map(|r| {
            Arc::new(
                Registry::new(
                    r,
                    self.config.issuer.clone().unwrap_or_default(),
                    self.config.allowed_grant_types,
                    Arc::clone(&store),
                    Arc::clone(&clock),
                )
                .with_openid(openid_support.clone()),
            )
        });
        let clients: Arc<dyn ClientStore> = match &registry {
            Some(r) => Arc::new(AppThenRegistered {
                app: clients,
                registered: Arc::clone(r.stored()),
                clock: Arc::clone(r.clock()),
            }),
            None => clients,
        };
        #[cfg(feature = "tls")]
        let documents = match self.documents {
            Some(d) => Some(Arc::new(
                crate::registration::Documents::new(d, Arc::clone(&store), Arc::clone(&clock))?
                    .with_openid(openid_support),
            )),
            None => None,
        };
        Ok(AuthServer {
            inner: Arc::new(Inner {
                ctx: Context {
                    #[cfg(feature = "jwt")]
                    keys: self.keys,
                    #[cfg(feature = "jwt")]
                    claims_hook: self.claims_hook,
                    config: self.config,
                    clients,
                    users: self.users,
                    store,
                    clock,
                    resource_policy: self.resource_policy,
                    openid: self.openid.map(Arc::new),
                    listeners: self.listeners,
                    #[cfg(feature = "tls")]
                    documents,
                },
                decoy_verifier,
                authorization: self.authorization,
                registry,
            }),
        })
    }
}
