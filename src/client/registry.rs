//! Clients registered at run time (by RFC 7591 registration, or resolved from a client ID
//! metadata document), kept in the token store, so that a client registered on one instance
//! works on every other at once and after a restart — on memory, Redis, Redis Cluster and
//! PostgreSQL alike, through the store's record primitive.
//!
//! Each registration lives until an expiry its registrar sets (a registration nobody uses goes
//! away on its own) and can be touched to live longer. Updates and touches never bring back a
//! deleted client (they are atomic "if present" steps), and deleting a client revokes every
//! grant it holds.
//!
//! ```
//! use std::sync::Arc;
//! use tower_oauth2::{
//!     client::{Client, ClientStore, InMemoryClients, StoredClients},
//!     store::{MemoryStore, TokenStore},
//! };
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
//! let registered = StoredClients::new(Arc::clone(&store));
//! let tomorrow = tower_oauth2::clock::Clock::now(&tower_oauth2::clock::SystemClock) + 86_400;
//! let client = Client::public("cli-7f3a").redirect_uri("http://127.0.0.1/callback").build()?;
//! assert!(registered.register(&client, tomorrow).await?);
//! assert!(!registered.register(&client, tomorrow).await?, "the id is taken");
//!
//! // Clients written in code first, then the registered ones: pass this to
//! // `AuthServerBuilder::clients`, with the same store to `AuthServerBuilder::shared_store`.
//! let clients = InMemoryClients::new().then(registered.clone());
//! assert!(clients.find_client("cli-7f3a").await?.is_some());
//! assert!(registered.delete("cli-7f3a").await?);
//! assert!(clients.find_client("cli-7f3a").await?.is_none());
//! # Ok(())
//! # }
//! ```

use crate::openid::SubjectType;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{Client, ClientSecret, ClientStore, GrantType, InMemoryClients};
use crate::{
    clock::{Clock, SystemClock, UnixTime},
    error::StoreError,
    scope::Scope,
    store::{
        GrantFilter, TokenStore,
        records::{Put, RecordKey, RecordStore, RecordType, Records},
    },
    token::{AccessTokenFormat, TokenHash},
};

/// What a registration through the registration endpoint (RFC 7591) keeps beside the client.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Registered {
    /// The client metadata as registered, echoed by reads (RFC 7591 §3.2.1, RFC 7592 §2.1).
    pub(crate) metadata: serde_json::Map<String, serde_json::Value>,
    /// Hex SHA-256 of the registration access token (RFC 7592).
    pub(crate) token_sha256: String,
    /// `client_id_issued_at`.
    pub(crate) issued_at: u64,
    /// The slot it holds among the live registrations the server allows.
    pub(crate) slot: u64,
    /// Whether it registered with an initial access token: its updates are judged so too.
    #[serde(default)]
    pub(crate) with_initial_access_token: bool,
}

/// A client as kept in the store: every setting of a [`Client`] that can be written down (a
/// secret as its SHA-256 only; a custom verifier cannot be stored).
#[derive(Serialize, Deserialize)]
struct Stored {
    id: String,
    /// Hex SHA-256 of the secret; none for a public client.
    secret_sha256: Option<String>,
    redirect_uris: Vec<String>,
    grant_types: Option<Vec<String>>,
    scope: Option<String>,
    default_scope: Option<String>,
    issue_refresh_token: bool,
    introspect: bool,
    require_par: bool,
    pkce_optional: bool,
    /// `opaque` or `jwt`, when it differs from the server's.
    access_token_format: Option<String>,
    resources: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    registered: Option<Registered>,
    /// OpenID Connect settings, when any differs from the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id_token_alg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    userinfo_alg: Option<String>,
    /// `pairwise`, or none for public subjects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subject_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sector: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    post_logout_redirect_uris: Vec<String>,
}

crate::store::records::json_record!(Stored, "client");

impl Stored {
    fn of(client: &Client) -> Result<Self, StoreError> {
        let secret_sha256 = match &client.secret {
            None => None,
            Some(ClientSecret::Sha256(hash)) => {
                Some(hash.iter().map(|b| format!("{b:02x}")).collect())
            }
            Some(ClientSecret::Custom(_)) => {
                return Err(StoreError::unavailable(
                    "a client with a custom secret verifier cannot be stored: register its secret's SHA-256",
                ));
            }
        };
        Ok(Self {
            id: client.id.to_string(),
            secret_sha256,
            redirect_uris: client.redirect_uris.clone(),
            grant_types: client
                .grant_types
                .map(|g| g.iter().map(|g| g.as_str().to_owned()).collect()),
            scope: client.scope.as_ref().map(Scope::to_string),
            default_scope: client.default_scope.as_ref().map(Scope::to_string),
            issue_refresh_token: client.issue_refresh_token,
            introspect: client.introspect,
            require_par: client.require_par,
            pkce_optional: client.pkce_optional,
            access_token_format: client.access_token_format.map(|f| {
                match f {
                    AccessTokenFormat::Jwt => "jwt",
                    _ => "opaque",
                }
                .to_owned()
            }),
            resources: client.resources.clone(),
            name: client.name.clone(),
            registered: None,
            id_token_alg: client.id_token_alg.clone(),
            userinfo_alg: client.userinfo_alg.clone(),
            subject_type: (client.subject_type != SubjectType::Public)
                .then(|| client.subject_type.as_str().to_owned()),
            sector: client.sector.clone(),
            post_logout_redirect_uris: client.post_logout_redirect_uris.clone(),
        })
    }

    /// The client again, registered until `until`; `None` for a record this version cannot
    /// read (treated as absent).
    fn client(self, until: UnixTime) -> Option<Client> {
        let secret = match self.secret_sha256 {
            None => None,
            Some(hex) => {
                let mut hash = [0u8; 32];
                if hex.len() != 64 {
                    return None;
                }
                for (i, byte) in hash.iter_mut().enumerate() {
                    *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
                }
                Some(ClientSecret::Sha256(hash))
            }
        };
        let scope = |s: Option<String>| match s {
            None => Some(None),
            Some(s) => Scope::parse(&s).ok().map(Some),
        };
        let grant_types = match self.grant_types {
            None => None,
            Some(names) => Some(
                names
                    .iter()
                    .map(|n| GrantType::parse(n))
                    .collect::<Option<super::GrantTypes>>()?,
            ),
        };
        Some(Client {
            id: Arc::from(self.id),
            secret,
            redirect_uris: self.redirect_uris,
            grant_types,
            scope: scope(self.scope)?,
            default_scope: scope(self.default_scope)?,
            issue_refresh_token: self.issue_refresh_token,
            introspect: self.introspect,
            require_par: self.require_par,
            pkce_optional: self.pkce_optional,
            access_token_format: match self.access_token_format.as_deref() {
                None => None,
                Some("jwt") => Some(AccessTokenFormat::Jwt),
                Some("opaque") => Some(AccessTokenFormat::Opaque),
                Some(_) => return None,
            },
            resources: self.resources,
            name: self.name,
            registered_until: Some(until),
            metadata_document: false,
            id_token_alg: self.id_token_alg,
            userinfo_alg: self.userinfo_alg,
            subject_type: match self.subject_type.as_deref() {
                None => SubjectType::Public,
                Some(name) => SubjectType::parse(name)?,
            },
            sector: self.sector,
            post_logout_redirect_uris: self.post_logout_redirect_uris,
        })
    }
}

/// A client registered at run time, as a [`ClientRegistry`] keeps it: the client, what the
/// registration endpoint keeps beside it, and when the registration lapses unless it is
/// touched. A registry of your own stores its [`encode`](Self::encode)d form under its id with
/// its expiry, and gives it back with [`decode`](Self::decode).
#[derive(Clone)]
pub struct RegisteredClient {
    client: Client,
    registered: Option<Registered>,
    expires_at: UnixTime,
}

impl std::fmt::Debug for RegisteredClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisteredClient")
            .field("client", &self.client)
            .field("through_the_endpoint", &self.registered.is_some())
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl RegisteredClient {
    /// `client`, registered until `expires_at`.
    pub fn new(client: Client, expires_at: UnixTime) -> Self {
        Self {
            client,
            registered: None,
            expires_at,
        }
    }

    pub(crate) fn with_registration(mut self, registered: Registered) -> Self {
        self.registered = Some(registered);
        self
    }

    pub(crate) fn registration(&self) -> Option<&Registered> {
        self.registered.as_ref()
    }

    /// Its `client_id`: what a registry keys it by.
    pub fn id(&self) -> &str {
        self.client.id()
    }

    /// The client (its [`registered_until`](Client::registered_until) is this registration's
    /// expiry).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// When the registration lapses unless it is touched.
    pub fn expires_at(&self) -> UnixTime {
        self.expires_at
    }

    /// The stored form: JSON of every setting (a secret as its SHA-256 only) and what the
    /// registration endpoint keeps. A client with a custom secret verifier cannot be stored.
    pub fn encode(&self) -> Result<Vec<u8>, StoreError> {
        let mut stored = Stored::of(&self.client)?;
        stored.registered.clone_from(&self.registered);
        Ok(stored.encode())
    }

    /// The registration again from its stored form and expiry; `None` when the bytes are not
    /// one (a record of an incompatible version: treat it as absent).
    pub fn decode(bytes: &[u8], expires_at: UnixTime) -> Option<Self> {
        let mut stored = Stored::decode(bytes)?;
        let registered = stored.registered.take();
        Some(Self {
            client: stored.client(expires_at)?,
            registered,
            expires_at,
        })
    }
}

/// Where clients registered at run time are written: what the registration endpoint
/// ([`Registration::registry`](crate::registration::Registration::registry)) and client
/// lookups use. [`StoredClients`] (the token store's records; memory, Redis, Redis Cluster,
/// PostgreSQL) is the default; an app with its own client database implements this and proves
/// it with [`client_registry_conformance!`](crate::client_registry_conformance) (feature
/// `test-util`).
///
/// Every method judges expiry against `now`: a registration whose expiry is at or before it
/// is absent, and is never brought back by a `replace` or `extend`.
#[async_trait]
pub trait ClientRegistry: Send + Sync + 'static {
    /// Keep `client` under its id until its expiry, unless a live registration has that id:
    /// then `Ok(false)`. Of concurrent inserts of one id, exactly one succeeds.
    async fn insert(&self, client: &RegisteredClient, now: UnixTime) -> Result<bool, StoreError>;

    /// Replace the live registration of `client`'s id (expiry included); `Ok(false)` when
    /// there is none — never registered, removed or lapsed.
    async fn replace(&self, client: &RegisteredClient, now: UnixTime) -> Result<bool, StoreError>;

    /// The live registration of `id`.
    async fn get(&self, id: &str, now: UnixTime) -> Result<Option<RegisteredClient>, StoreError>;

    /// Let the live registration of `id` last until `until` at least (never shorter);
    /// `Ok(false)` when there is none.
    async fn extend(&self, id: &str, until: UnixTime, now: UnixTime) -> Result<bool, StoreError>;

    /// Remove the registration of `id`; whether one was there.
    async fn remove(&self, id: &str) -> Result<bool, StoreError>;
}

/// The clients registered at run time, kept in a [`TokenStore`] (its record primitive): shared
/// by every instance on that store, and kept across restarts by every store but memory.
/// Cheap to clone.
#[derive(Clone)]
pub struct StoredClients {
    store: Arc<dyn TokenStore>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for StoredClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredClients").finish_non_exhaustive()
    }
}

impl StoredClients {
    /// The clients registered in `store`, judged live by the system clock.
    pub fn new(store: Arc<dyn TokenStore>) -> Self {
        Self {
            store,
            clock: Arc::new(SystemClock),
        }
    }

    /// Judge expiry by `clock` instead (the server's, in tests).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    fn records(&self) -> Records<'_, Stored> {
        Records::new(&*self.store)
    }

    fn key(id: &str) -> TokenHash {
        TokenHash::of(id)
    }

    fn record_key(id: &str) -> RecordKey {
        RecordKey::new(Stored::KIND, Self::key(id))
    }

    /// Register `client` until `expires_at` (judged by this registry's clock, as every call). `Ok(false)` when its id is taken by a live
    /// registration: of concurrent registrations of one id, exactly one succeeds. A client
    /// with a custom secret verifier cannot be stored (an error).
    pub async fn register(
        &self,
        client: &Client,
        expires_at: UnixTime,
    ) -> Result<bool, StoreError> {
        let stored = Stored::of(client)?;
        let now = self.clock.now();
        self.records()
            .put_if_absent(&Self::key(client.id()), &stored, expires_at, now)
            .await
    }

    /// Replace a registration with `client` (same id), now lasting until `expires_at`.
    /// `Ok(false)` when there is none (never registered, deleted, or expired): an update never
    /// brings a client back.
    pub async fn update(&self, client: &Client, expires_at: UnixTime) -> Result<bool, StoreError> {
        let stored = Stored::of(client)?;
        let now = self.clock.now();
        self.records()
            .put_if_present(&Self::key(client.id()), &stored, expires_at, now)
            .await
    }

    /// Let a registration last until `until` at least (a client in use stays). `Ok(false)` when
    /// there is none.
    pub async fn touch(&self, id: &str, until: UnixTime) -> Result<bool, StoreError> {
        let now = self.clock.now();
        self.records().extend(&Self::key(id), until, now).await
    }

    /// When the registration of `id` lapses, if it is live.
    pub async fn expires_at(&self, id: &str) -> Result<Option<UnixTime>, StoreError> {
        let found = self
            .records()
            .get_with_expiry(&Self::key(id), self.clock.now())
            .await?;
        Ok(found
            .filter(|(stored, _)| stored.id == id)
            .map(|(_, expires_at)| expires_at))
    }

    /// Delete the registration of `id` and revoke every grant the client holds (its tokens stop
    /// working at once, every instance's near-cache included). Returns whether it was
    /// registered. The grants are revoked even when it was not (a registration that lapsed
    /// leaves its grants otherwise).
    pub async fn delete(&self, id: &str) -> Result<bool, StoreError> {
        let was = self.records().delete(&Self::key(id)).await?;
        self.store
            .revoke_grants(&GrantFilter::Client(id.to_owned()))
            .await?;
        Ok(was)
    }
}

#[async_trait]
impl ClientStore for StoredClients {
    async fn find_client(&self, client_id: &str) -> Result<Option<Arc<Client>>, StoreError> {
        Ok(self
            .get(client_id, self.clock.now())
            .await?
            .map(|r| Arc::new(r.client)))
    }
}

#[async_trait]
impl ClientRegistry for StoredClients {
    async fn insert(&self, client: &RegisteredClient, now: UnixTime) -> Result<bool, StoreError> {
        let bytes = client.encode()?;
        let record = crate::store::records::Record {
            data: bytes.into(),
            expires_at: client.expires_at,
        };
        self.store
            .put_record(&Self::record_key(client.id()), record, Put::IfAbsent, now)
            .await
    }

    async fn replace(&self, client: &RegisteredClient, now: UnixTime) -> Result<bool, StoreError> {
        let bytes = client.encode()?;
        let record = crate::store::records::Record {
            data: bytes.into(),
            expires_at: client.expires_at,
        };
        self.store
            .put_record(&Self::record_key(client.id()), record, Put::IfPresent, now)
            .await
    }

    async fn get(&self, id: &str, now: UnixTime) -> Result<Option<RegisteredClient>, StoreError> {
        let found = self.store.get_record(&Self::record_key(id), now).await?;
        // The id is compared too: the record is keyed by its hash.
        Ok(found
            .and_then(|r| RegisteredClient::decode(&r.data, r.expires_at))
            .filter(|r| r.id() == id))
    }

    async fn extend(&self, id: &str, until: UnixTime, now: UnixTime) -> Result<bool, StoreError> {
        self.records().extend(&Self::key(id), until, now).await
    }

    async fn remove(&self, id: &str) -> Result<bool, StoreError> {
        self.records().delete(&Self::key(id)).await
    }
}

/// Clients written in code first, then another registry (registered ones): what
/// [`InMemoryClients::then`] makes.
#[derive(Debug, Clone)]
pub struct CodeFirst<S> {
    code: InMemoryClients,
    then: S,
}

#[async_trait]
impl<S: ClientStore> ClientStore for CodeFirst<S> {
    async fn find_client(&self, client_id: &str) -> Result<Option<Arc<Client>>, StoreError> {
        match self.code.find_client(client_id).await? {
            Some(client) => Ok(Some(client)),
            None => self.then.find_client(client_id).await,
        }
    }
}

impl InMemoryClients {
    /// These clients first, then those of `then` (e.g. [`StoredClients`]): a client written
    /// in code cannot be shadowed by a registration of the same id.
    pub fn then<S: ClientStore>(self, then: S) -> CodeFirst<S> {
        CodeFirst { code: self, then }
    }
}
