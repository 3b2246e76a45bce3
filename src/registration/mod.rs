//! Dynamic Client Registration (RFC 7591) and its management protocol (RFC 7592), with the
//! hygiene an open endpoint needs: [`Registration`] configures it, a [`RegistrationPolicy`]
//! decides who may register what, and the registered clients live in the token store
//! ([`StoredClients`]) so every instance serves them — or in the app's own
//! [`ClientRegistry`] ([`Registration::registry`]).
//!
//! Client ID metadata documents ([`ClientIdMetadataDocuments`]) are the other way a client
//! nobody configured gets in: its `client_id` is the URL of its metadata.
//!
//! - A client registers by posting its metadata ([`ClientMetadata`]); it gets a `client_id`, a
//!   secret when it is confidential (256 bits, shown once, stored as its SHA-256), and a
//!   registration access token (likewise) to read, update and delete its registration at
//!   `registration_client_uri`.
//! - A registration that has not obtained a token within
//!   [`unused_lifetime`](Registration::unused_lifetime) (default 24 hours) lapses, and so does
//!   one unused for [`idle_lifetime`](Registration::idle_lifetime) (default 90 days): apps
//!   that register on every start leave nothing behind.
//! - The live registrations ([`max_clients`](Registration::max_clients), default 10 000) and
//!   the registrations per window ([`rate`](Registration::rate), default 60 a minute) are
//!   bounded across every instance on the store; beyond them the endpoint answers 429 with
//!   `Retry-After`.
//!
//! ```
//! use http::{Request, StatusCode};
//! use tower::ServiceExt;
//! use tower_oauth2::{AuthServer, InMemoryClients, registration::Registration};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = AuthServer::builder()
//!     .clients(InMemoryClients::new())
//!     .configure(|c| c.issuer = Some("https://auth.example".into()))
//!     .registration(Registration::new())
//!     .build()?;
//! let request = Request::post("/oauth/register")
//!     .header("content-type", "application/json")
//!     .body(String::from(
//!         r#"{"redirect_uris":["http://127.0.0.1/callback"],"token_endpoint_auth_method":"none",
//!             "grant_types":["authorization_code","refresh_token"],"client_name":"My CLI"}"#,
//!     ))?;
//! let response = server.registration_endpoint().oneshot(request).await?;
//! assert_eq!(response.status(), StatusCode::CREATED);
//! # Ok(())
//! # }
//! ```

#[cfg(feature = "tls")]
mod address;
mod documents;
#[cfg(feature = "tls")]
mod fetch;
mod metadata;
pub(crate) use self::metadata::OpenIdSupport;

use std::{fmt, sync::Arc, time::Duration};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

pub use self::documents::ClientIdMetadataDocuments;
#[cfg(feature = "tls")]
pub(crate) use self::documents::Documents;
pub use self::metadata::{
    ApplicationType, AuthMethod, ClientMetadata, MAX_REDIRECT_URIS, MAX_URI_BYTES, RedirectKind,
};
use crate::{
    client::{
        Client, ClientRegistry, ClientStore, GrantType, GrantTypes, Registered, RegisteredClient,
        StoredClients,
    },
    clock::{Clock, UnixTime},
    error::{ConfigError, OAuthError, StoreError},
    scope::Scope,
    store::GrantFilter,
    store::{
        TokenStore,
        records::{Put, Record, RecordKey, RecordKind},
    },
    token::{self, TokenHash, ct_eq, hex},
};

/// Who may register what: the app's rule, run on every registration and update after the
/// metadata is checked. Refuse with [`OAuthError::invalid_client_metadata`] or
/// [`OAuthError::invalid_redirect_uri`] and a description the developer will read.
///
/// ```
/// use tower_oauth2::{
///     OAuthError,
///     registration::{ClientMetadata, RegistrationPolicy},
/// };
///
/// /// Only native apps, only with an initial access token.
/// struct NativeOnly;
///
/// impl RegistrationPolicy for NativeOnly {
///     fn check(&self, m: &ClientMetadata, with_initial_access_token: bool) -> Result<(), OAuthError> {
///         if !with_initial_access_token {
///             return Err(OAuthError::invalid_client_metadata("ask us for an initial access token"));
///         }
///         match m.application_type() {
///             tower_oauth2::registration::ApplicationType::Native => Ok(()),
///             _ => Err(OAuthError::invalid_client_metadata("native apps only")),
///         }
///     }
/// }
/// ```
pub trait RegistrationPolicy: Send + Sync + 'static {
    /// Whether a client with this metadata may register (or update to it);
    /// `with_initial_access_token`: the request carried a valid initial access token (on an
    /// update: the registration did).
    fn check(
        &self,
        metadata: &ClientMetadata,
        with_initial_access_token: bool,
    ) -> Result<(), OAuthError>;
}

/// The default [`RegistrationPolicy`]: without an initial access token, public clients only
/// (`token_endpoint_auth_method` `none`), whose redirect URIs are `https` or `http` on
/// loopback; with one, any client whose metadata passed the checks.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultPolicy;

impl RegistrationPolicy for DefaultPolicy {
    fn check(
        &self,
        metadata: &ClientMetadata,
        with_initial_access_token: bool,
    ) -> Result<(), OAuthError> {
        if with_initial_access_token {
            return Ok(());
        }
        if metadata.token_endpoint_auth_method().is_confidential() {
            return Err(OAuthError::invalid_client_metadata(
                "open registration is for public clients (token_endpoint_auth_method \"none\"); \
                 a confidential client registers with an initial access token",
            ));
        }
        if metadata
            .redirect_kinds()
            .any(|k| k == RedirectKind::PrivateUse)
        {
            return Err(OAuthError::invalid_redirect_uri(
                "open registration takes https or loopback http redirect URIs; a private-use \
                 scheme needs an initial access token",
            ));
        }
        Ok(())
    }
}

/// The registration endpoint's configuration; give it to
/// [`AuthServerBuilder::registration`](crate::AuthServerBuilder::registration), then mount
/// [`AuthServer::registration_endpoint`](crate::AuthServer::registration_endpoint) at
/// [`path`](Self::path) and at `path/{client_id}`.
#[derive(Clone)]
#[must_use]
pub struct Registration {
    path: String,
    initial_access_tokens: Vec<[u8; 32]>,
    require_initial_access_token: bool,
    policy: Arc<dyn RegistrationPolicy>,
    unused_lifetime: Duration,
    idle_lifetime: Duration,
    max_clients: u64,
    rate: (u64, Duration),
    allowed_scope: Option<Scope>,
    registry: Option<Arc<dyn ClientRegistry>>,
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("path", &self.path)
            .field("initial_access_tokens", &self.initial_access_tokens.len())
            .field(
                "require_initial_access_token",
                &self.require_initial_access_token,
            )
            .field("unused_lifetime", &self.unused_lifetime)
            .field("idle_lifetime", &self.idle_lifetime)
            .field("max_clients", &self.max_clients)
            .field("rate", &self.rate)
            .field("allowed_scope", &self.allowed_scope)
            .field("own_registry", &self.registry.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for Registration {
    fn default() -> Self {
        Self::new()
    }
}

impl Registration {
    /// Open registration at `/oauth/register` under the [`DefaultPolicy`], with the default
    /// lifetimes and bounds.
    pub fn new() -> Self {
        Self {
            path: "/oauth/register".into(),
            initial_access_tokens: Vec::new(),
            require_initial_access_token: false,
            policy: Arc::new(DefaultPolicy),
            unused_lifetime: Duration::from_secs(24 * 3600),
            idle_lifetime: Duration::from_secs(90 * 86_400),
            max_clients: 10_000,
            rate: (60, Duration::from_secs(60)),
            allowed_scope: None,
            registry: None,
        }
    }

    /// Where the endpoint is mounted (default `/oauth/register`): advertised as
    /// `registration_endpoint` and the base of each `registration_client_uri`.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// Accept `token` as an initial access token (RFC 7591 §3): sent as `Authorization:
    /// Bearer`, it lets the [policy](RegistrationPolicy) allow more (the default policy:
    /// confidential clients). Kept as its SHA-256; call once per token.
    pub fn initial_access_token(mut self, token: impl AsRef<str>) -> Self {
        self.initial_access_tokens
            .push(Sha256::digest(token.as_ref().as_bytes()).into());
        self
    }

    /// Refuse every registration without a valid initial access token (default: open).
    pub fn require_initial_access_token(mut self, require: bool) -> Self {
        self.require_initial_access_token = require;
        self
    }

    /// The app's rule instead of the [`DefaultPolicy`].
    pub fn policy(mut self, policy: impl RegistrationPolicy) -> Self {
        self.policy = Arc::new(policy);
        self
    }

    /// How long a registration lives before its client first obtains a token (default 24
    /// hours).
    pub fn unused_lifetime(mut self, lifetime: Duration) -> Self {
        self.unused_lifetime = lifetime;
        self
    }

    /// How long a registration lives after its client last obtained a token (default 90
    /// days).
    pub fn idle_lifetime(mut self, lifetime: Duration) -> Self {
        self.idle_lifetime = lifetime;
        self
    }

    /// The most live registrations (default 10 000), across every instance on the store.
    pub fn max_clients(mut self, max: u64) -> Self {
        self.max_clients = max;
        self
    }

    /// At most `count` registrations per `window` (default 60 a minute), across every
    /// instance on the store.
    pub fn rate(mut self, count: u64, window: Duration) -> Self {
        self.rate = (count, window);
        self
    }

    /// The scopes a registered client may have: a registration naming others is refused,
    /// and one naming none gets these. Default: whatever it names (none: any).
    pub fn allowed_scope(mut self, scope: Scope) -> Self {
        self.allowed_scope = Some(scope);
        self
    }

    /// Keep registered clients in `registry` (the app's own client database) instead of the
    /// token store ([`StoredClients`], the default). The bounds are still counted in the token
    /// store.
    pub fn registry(mut self, registry: impl ClientRegistry) -> Self {
        self.registry = Some(Arc::new(registry));
        self
    }

    /// The path the endpoint is mounted at.
    pub fn mounted_at(&self) -> &str {
        &self.path
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |why| Err(ConfigError::Registration(why));
        if !self.path.starts_with('/') || self.path.ends_with('/') || self.path.len() < 2 {
            return invalid("Registration::path must start with / and not end with one");
        }
        if self.require_initial_access_token && self.initial_access_tokens.is_empty() {
            return invalid("Registration::require_initial_access_token needs a token");
        }
        let day = Duration::from_secs(86_400);
        let max = crate::config::MAX_LIFETIME;
        if self.unused_lifetime < Duration::from_secs(60) || self.unused_lifetime > max {
            return invalid("Registration::unused_lifetime must be between a minute and ten years");
        }
        if self.idle_lifetime < day || self.idle_lifetime > max {
            return invalid("Registration::idle_lifetime must be between a day and ten years");
        }
        if self.max_clients == 0 || self.rate.0 == 0 || self.rate.1 < Duration::from_secs(1) {
            return invalid(
                "Registration bounds must allow at least one client, per second or longer",
            );
        }
        Ok(())
    }
}

/// Why a registration request was not carried out.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// An OAuth error (400 or 401 or 503).
    Error(OAuthError),
    /// A bound was reached: 429 with `Retry-After`.
    Limited {
        bound: &'static str,
        retry_after: u64,
        description: &'static str,
    },
}

impl From<OAuthError> for Refusal {
    fn from(e: OAuthError) -> Self {
        Self::Error(e)
    }
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        Self::Error(e.into())
    }
}

/// The slots of the live registrations, the sequence that hands them out, and the rate
/// windows: records of their own kinds.
const SLOT: RecordKind = RecordKind::new("client_slot");
const SLOT_SEQUENCE: RecordKind = RecordKind::new("client_slot_seq");
const RATE: RecordKind = RecordKind::new("client_reg_rate");
/// Slots tried, from where the sequence points, before the bound counts as reached.
const PROBES: u64 = 16;
/// A client in use has its registration moved on at most once in this long.
const TOUCH_EVERY: u64 = 86_400;

/// A registration done: the client and what the endpoint answers.
pub(crate) struct Done {
    pub(crate) client_id: Arc<str>,
    pub(crate) confidential: bool,
    pub(crate) body: Map<String, Value>,
    /// Registrations found lapsed in the place this one took.
    pub(crate) expired: Vec<Arc<str>>,
}

/// The registration endpoint's state: the configuration, the registry of stored clients, and
/// the store its bounds are counted in.
pub(crate) struct Registry {
    config: Registration,
    issuer: String,
    allowed_grants: GrantTypes,
    stored: Arc<dyn ClientRegistry>,
    store: Arc<dyn TokenStore>,
    clock: Arc<dyn Clock>,
    /// What the server can do for OpenID clients.
    openid: OpenIdSupport,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn invalid_token(description: &'static str) -> Refusal {
    Refusal::Error(OAuthError::new(
        crate::error::ErrorKind::InvalidToken,
        description,
    ))
}

impl Registry {
    pub(crate) fn new(
        config: Registration,
        issuer: String,
        allowed_grants: GrantTypes,
        store: Arc<dyn TokenStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            stored: config.registry.clone().unwrap_or_else(|| {
                Arc::new(StoredClients::new(Arc::clone(&store)).with_clock(Arc::clone(&clock)))
            }),
            config,
            issuer,
            allowed_grants,
            store,
            clock,
            openid: OpenIdSupport::default(),
        }
    }

    /// The OpenID settings a registering client may ask for.
    pub(crate) fn with_openid(mut self, openid: OpenIdSupport) -> Self {
        self.openid = openid;
        self
    }

    pub(crate) fn config(&self) -> &Registration {
        &self.config
    }

    /// The registry, to put after the app's own clients.
    pub(crate) fn stored(&self) -> &Arc<dyn ClientRegistry> {
        &self.stored
    }

    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The endpoint's URL.
    pub(crate) fn endpoint_url(&self) -> String {
        format!("{}{}", self.issuer, self.config.path)
    }

    /// Which client a path names: `path/{client_id}`; `None` for the endpoint itself.
    pub(crate) fn client_in_path<'p>(&self, path: &'p str) -> Result<Option<&'p str>, ()> {
        if path == self.config.path {
            return Ok(None);
        }
        match path
            .strip_prefix(self.config.path.as_str())
            .and_then(|rest| rest.strip_prefix('/'))
        {
            Some(id) if !id.is_empty() && !id.contains('/') => Ok(Some(id)),
            _ => Err(()),
        }
    }

    fn initial_access_token_valid(&self, presented: &str) -> bool {
        let hash: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        // Every token compared, in constant time each.
        self.config
            .initial_access_tokens
            .iter()
            .fold(false, |found, t| found | ct_eq(t, &hash))
    }

    /// Check metadata as a registration or an update: the server's grants, the policy, the
    /// allowed scope.
    fn admit(&self, metadata: &mut ClientMetadata, with_iat: bool) -> Result<(), OAuthError> {
        if let Some(g) = metadata
            .grant_types()
            .iter()
            .find(|g| !self.allowed_grants.contains(**g))
        {
            return Err(OAuthError::invalid_client_metadata(format!(
                "grant type {g} is not enabled on this server"
            )));
        }
        self.openid.check(metadata)?;
        self.config.policy.check(metadata, with_iat)?;
        if let Some(allowed) = &self.config.allowed_scope {
            match metadata.scope() {
                Some(s) if !s.is_subset_of(allowed) => {
                    return Err(OAuthError::invalid_client_metadata(format!(
                        "scope may name only: {allowed}"
                    )));
                }
                Some(_) => {}
                None => metadata.set_scope(allowed.clone()),
            }
        }
        Ok(())
    }

    fn client(
        metadata: &ClientMetadata,
        id: &str,
        secret: Option<[u8; 32]>,
    ) -> Result<Client, OAuthError> {
        let mut b = match secret {
            Some(hash) => Client::confidential_with_hash(id, hash),
            None => Client::public(id),
        };
        for r in metadata.redirect_uris() {
            b = b.redirect_uri(r);
        }
        b = b
            .grant_types(metadata.grant_types().iter().copied())
            .issue_refresh_token(metadata.grant_types().contains(&GrantType::RefreshToken));
        if let Some(scope) = metadata.scope() {
            b = b.scope(scope.as_str());
        }
        if let Some(name) = metadata.client_name() {
            b = b.name(name);
        }
        b = metadata.openid_onto(b);
        b.build()
            .map_err(|e| OAuthError::invalid_client_metadata(e.to_string()))
    }

    fn registration_uri(&self, id: &str) -> String {
        format!("{}/{id}", self.endpoint_url())
    }

    /// RFC 7591 §3: register a client.
    pub(crate) async fn register(
        &self,
        body: &[u8],
        initial_access_token: Option<&str>,
    ) -> Result<Done, Refusal> {
        let with_iat = match initial_access_token {
            Some(t) if self.initial_access_token_valid(t) => true,
            Some(_) => return Err(invalid_token("the initial access token is not valid")),
            None if self.config.require_initial_access_token => {
                return Err(invalid_token(
                    "registration needs an initial access token (Authorization: Bearer)",
                ));
            }
            None => false,
        };
        let mut metadata = ClientMetadata::from_json(body)?;
        self.admit(&mut metadata, with_iat)?;
        let now = self.clock.now();
        self.count_rate(now).await?;
        let id = format!("dcr_{}", &token::generate().expose()[3..25]);
        let secret = metadata
            .token_endpoint_auth_method()
            .is_confidential()
            .then(token::generate);
        let registration_token = token::generate();
        let client = Self::client(
            &metadata,
            &id,
            secret
                .as_ref()
                .map(|s| Sha256::digest(s.expose().as_bytes()).into()),
        )?;
        let expires_at = now.saturating_add(self.config.unused_lifetime.as_secs());
        let (slot, expired) = self.claim_slot(&id, expires_at, now).await?;
        let registered = Registered {
            metadata: metadata.to_json(),
            token_sha256: hex(&Sha256::digest(registration_token.expose().as_bytes())),
            issued_at: now,
            with_initial_access_token: with_iat,
            slot,
        };
        let record = RegisteredClient::new(client, expires_at).with_registration(registered);
        if !self.stored.insert(&record, now).await? {
            // 132 random bits collided: say so rather than pretend.
            self.release_slot(slot, &id).await?;
            return Err(OAuthError::temporarily_unavailable("try again").into());
        }
        let mut body = Map::new();
        body.insert("client_id".into(), id.clone().into());
        if let Some(secret) = &secret {
            body.insert("client_secret".into(), secret.expose().into());
            body.insert("client_secret_expires_at".into(), 0.into());
        }
        body.insert("client_id_issued_at".into(), now.into());
        body.insert(
            "registration_access_token".into(),
            registration_token.expose().into(),
        );
        body.insert(
            "registration_client_uri".into(),
            self.registration_uri(&id).into(),
        );
        body.extend(metadata.to_json());
        Ok(Done {
            client_id: Arc::from(id),
            confidential: secret.is_some(),
            body,
            expired,
        })
    }

    /// The live registration of `id`, if `token` is its registration access token. RFC 7592
    /// §2: an unknown client, a client registered otherwise, and a wrong token are all 401.
    async fn authorized(
        &self,
        id: &str,
        token: Option<&str>,
    ) -> Result<(Client, Registered, UnixTime), Refusal> {
        let Some(token) = token else {
            return Err(invalid_token(
                "the registration access token is missing (Authorization: Bearer)",
            ));
        };
        let presented = hex(&Sha256::digest(token.as_bytes()));
        let found = self.stored.get(id, self.clock.now()).await?;
        match found.as_ref().and_then(|r| Some((r, r.registration()?))) {
            Some((record, registered))
                if ct_eq(presented.as_bytes(), registered.token_sha256.as_bytes()) =>
            {
                Ok((
                    record.client().clone(),
                    registered.clone(),
                    record.expires_at(),
                ))
            }
            _ => Err(invalid_token(
                "the registration access token is not valid for this client",
            )),
        }
    }

    fn read_body(&self, client: &Client, registered: &Registered) -> Map<String, Value> {
        let mut body = Map::new();
        body.insert("client_id".into(), client.id().into());
        if client.is_confidential() {
            body.insert("client_secret_expires_at".into(), 0.into());
        }
        body.insert("client_id_issued_at".into(), registered.issued_at.into());
        body.insert(
            "registration_client_uri".into(),
            self.registration_uri(client.id()).into(),
        );
        body.extend(registered.metadata.clone());
        body
    }

    /// RFC 7592 §2.1: read a registration.
    pub(crate) async fn read(
        &self,
        id: &str,
        token: Option<&str>,
    ) -> Result<Map<String, Value>, Refusal> {
        let (client, registered, _) = self.authorized(id, token).await?;
        Ok(self.read_body(&client, &registered))
    }

    /// RFC 7592 §2.2: replace a registration's metadata. The `client_id` in the body must be
    /// this one; a `client_secret` in it must be the current one; a client stays public or
    /// confidential.
    pub(crate) async fn update(
        &self,
        id: &str,
        token: Option<&str>,
        body: &[u8],
    ) -> Result<Map<String, Value>, Refusal> {
        let (client, mut registered, until) = self.authorized(id, token).await?;
        let value: Value = serde_json::from_slice(body).map_err(|_| {
            OAuthError::invalid_client_metadata(
                "the request body must be a JSON object of client metadata",
            )
        })?;
        let fields = value.as_object().ok_or_else(|| {
            OAuthError::invalid_client_metadata(
                "the request body must be a JSON object of client metadata",
            )
        })?;
        if fields.get("client_id").and_then(Value::as_str) != Some(id) {
            return Err(OAuthError::invalid_client_metadata(
                "the body's client_id must be this registration's (RFC 7592 §2.2)",
            )
            .into());
        }
        if let Some(secret) = fields.get("client_secret") {
            let matches = match secret.as_str() {
                Some(s) => client.verify_secret(s).await,
                None => false,
            };
            if !matches {
                return Err(OAuthError::invalid_client_metadata(
                    "client_secret must be the one issued to this client",
                )
                .into());
            }
        }
        let mut metadata = ClientMetadata::from_json(body)?;
        if metadata.token_endpoint_auth_method().is_confidential() != client.is_confidential() {
            return Err(OAuthError::invalid_client_metadata(
                "a registration cannot change between public and confidential: register anew",
            )
            .into());
        }
        self.admit(&mut metadata, registered.with_initial_access_token)?;
        let secret = client.secret_sha256();
        let updated = Self::client(&metadata, id, secret)?;
        registered.metadata = metadata.to_json();
        let record =
            RegisteredClient::new(updated.clone(), until).with_registration(registered.clone());
        if !self.stored.replace(&record, self.clock.now()).await? {
            return Err(invalid_token("the registration is gone"));
        }
        Ok(self.read_body(&updated, &registered))
    }

    /// RFC 7592 §2.3: delete a registration, and revoke every grant its client holds.
    pub(crate) async fn delete(&self, id: &str, token: Option<&str>) -> Result<(), Refusal> {
        let (_, registered, _) = self.authorized(id, token).await?;
        self.stored.remove(id).await?;
        // Its tokens stop working at once (every instance's near-cache included).
        self.store
            .revoke_grants(&GrantFilter::Client(id.to_owned()))
            .await?;
        self.release_slot(registered.slot, id).await?;
        Ok(())
    }

    /// A registered client obtained a token: its registration lives `idle_lifetime` from now
    /// (written at most once a day per client).
    pub(crate) async fn used(&self, client: &Client) -> Result<(), StoreError> {
        let Some(until) = client.registered_until() else {
            return Ok(());
        };
        let now = self.clock.now();
        let target = now.saturating_add(self.config.idle_lifetime.as_secs());
        if until.saturating_add(TOUCH_EVERY) > target {
            return Ok(());
        }
        let found = self.stored.get(client.id(), now).await?;
        let Some(registered) = found.as_ref().and_then(RegisteredClient::registration) else {
            return Ok(());
        };
        let holder = Holder {
            id: client.id().to_owned(),
            until: target,
        };
        self.store
            .put_record(
                &slot_key(registered.slot),
                holder.record(),
                Put::IfPresent,
                now,
            )
            .await?;
        self.stored.extend(client.id(), target, now).await?;
        Ok(())
    }

    /// Count a registration in its rate window.
    async fn count_rate(&self, now: UnixTime) -> Result<(), Refusal> {
        let (limit, window) = (self.config.rate.0, self.config.rate.1.as_secs().max(1));
        let index = now / window;
        let end = (index + 1) * window;
        let key = RecordKey::new(RATE, TokenHash::of(&format!("{window}:{index}")));
        let count = self.store.increment(&key, end, now).await?;
        if count > limit {
            return Err(Refusal::Limited {
                bound: "rate",
                retry_after: end.saturating_sub(now).max(1),
                description: "too many registrations: try again later",
            });
        }
        Ok(())
    }

    /// Claim a free slot among the `max_clients` for the registration `id`, until
    /// `expires_at`: of concurrent claims on one slot, one wins. The sequence points at the
    /// oldest slots (those most likely to have lapsed) first. A slot whose registration lapsed
    /// is taken over, and that registration reported expired (once: of concurrent claimers,
    /// the one that takes the slot).
    async fn claim_slot(
        &self,
        id: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<(u64, Vec<Arc<str>>), Refusal> {
        let max = self.config.max_clients;
        let seq_key = RecordKey::new(SLOT_SEQUENCE, TokenHash::of("sequence"));
        let forever = now.saturating_add(crate::config::MAX_LIFETIME.as_secs());
        let start = self.store.increment(&seq_key, forever, now).await?;
        let mut expired = Vec::new();
        let holder = Holder {
            id: id.to_owned(),
            until: expires_at,
        };
        for i in 0..PROBES.min(max) {
            let slot = (start + i) % max;
            if let Some(lapsed) = self.free_if_lapsed(slot, now).await? {
                expired.push(lapsed);
            }
            if self
                .store
                .put_record(&slot_key(slot), holder.record(), Put::IfAbsent, now)
                .await?
            {
                return Ok((slot, expired));
            }
        }
        Err(Refusal::Limited {
            bound: "live",
            retry_after: 3600,
            description: "this server holds as many registered clients as it allows: try again later",
        })
    }

    /// Empty `slot` if the registration holding it lapsed; that registration's id, if this
    /// call emptied it.
    async fn free_if_lapsed(
        &self,
        slot: u64,
        now: UnixTime,
    ) -> Result<Option<Arc<str>>, StoreError> {
        let key = slot_key(slot);
        let Some(held) = self.store.get_record(&key, now).await? else {
            return Ok(None);
        };
        match Holder::decode(&held.data) {
            Some(h) if h.until > now => return Ok(None),
            _ => {}
        }
        // Of concurrent claimers, one takes it.
        let Some(taken) = self.store.take_record(&key, now).await? else {
            return Ok(None);
        };
        match Holder::decode(&taken.data) {
            Some(h) if h.until <= now => Ok(Some(Arc::from(h.id))),
            // Moved on since it was read (cannot happen to a lapsed registration): put back.
            Some(_) => {
                self.store
                    .put_record(&key, taken, Put::IfAbsent, now)
                    .await?;
                Ok(None)
            }
            None => Ok(None),
        }
    }

    /// Report every registration that lapsed since the last look, freeing its place: the ids.
    /// One store read per slot (`max_clients` of them); lapsed registrations are otherwise
    /// reported when a new registration takes their place.
    pub(crate) async fn sweep(&self) -> Result<Vec<Arc<str>>, StoreError> {
        let now = self.clock.now();
        let mut expired = Vec::new();
        for slot in 0..self.config.max_clients {
            if let Some(id) = self.free_if_lapsed(slot, now).await? {
                expired.push(id);
            }
        }
        Ok(expired)
    }

    /// Give a slot back, if `id` still holds it.
    async fn release_slot(&self, slot: u64, id: &str) -> Result<(), StoreError> {
        let key = slot_key(slot);
        let now = self.clock.now();
        if let Some(r) = self.store.get_record(&key, now).await? {
            if Holder::decode(&r.data).is_some_and(|h| h.id == id) {
                self.store.delete_record(&key).await?;
            }
        }
        Ok(())
    }
}

/// Who holds a slot, and until when their registration lives. The slot record itself lives a
/// year longer, so that a lapsed registration is still there to be reported (the slots are
/// bounded by `max_clients`, so this keeps at most that many small records).
#[derive(serde::Serialize, serde::Deserialize)]
struct Holder {
    id: String,
    until: UnixTime,
}

/// How long a slot record outlives its registration, to be found lapsed and reported.
const SLOT_KEPT: u64 = 365 * 86_400;

impl Holder {
    fn record(&self) -> Record {
        Record {
            data: serde_json::to_vec(self).unwrap_or_default().into(),
            expires_at: self.until.saturating_add(SLOT_KEPT),
        }
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }
}

fn slot_key(slot: u64) -> RecordKey {
    RecordKey::new(SLOT, TokenHash::of(&slot.to_string()))
}

/// The app's clients first, then the registered ones.
pub(crate) struct AppThenRegistered {
    pub(crate) app: Arc<dyn ClientStore>,
    pub(crate) registered: Arc<dyn ClientRegistry>,
    pub(crate) clock: Arc<dyn Clock>,
}

#[async_trait::async_trait]
impl ClientStore for AppThenRegistered {
    async fn find_client(&self, client_id: &str) -> Result<Option<Arc<Client>>, StoreError> {
        match self.app.find_client(client_id).await? {
            Some(client) => Ok(Some(client)),
            // Only ids this endpoint hands out are looked for in the store.
            None if client_id.starts_with("dcr_") => Ok(self
                .registered
                .get(client_id, self.clock.now())
                .await?
                .map(|r| Arc::new(r.client().clone()))),
            None => Ok(None),
        }
    }
}
