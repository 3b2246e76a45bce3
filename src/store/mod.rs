//! Token storage: the [`TokenStore`] trait, its records, and the default [`MemoryStore`].
//!
//! A store keeps only [`TokenHash`]es. Every access and refresh token belongs to a *grant* (its
//! family): the authorization it descends from, through every rotation. Revoking a grant revokes
//! the family at once, whatever the number of tokens.
//!
//! The protocol decisions (is this refresh token a replay? is it inside the grace window?) are
//! made once, in [`crate::grant`]; a store offers the few atomic primitives they need:
//!
//! | primitive | atomicity |
//! | --- | --- |
//! | [`TokenStore::rotate_refresh_token`] | compare-and-set: succeeds only if the presented token is still active and its family live; marks it rotated and adds its successors in one step |
//! | [`TokenStore::redeem_code`] | a code is redeemed at most once, and the grant it starts is created in the same step |
//! | [`TokenStore::revoke_grant`] | the whole family at once; a grant revoked before it is created stays revoked |
//!
//! A store of your own proves that it keeps this contract by passing the same conformance suite
//! as the memory, Redis and PostgreSQL stores: `tower_oauth2::conformance` and
//! `token_store_conformance!`, with the `test-util` feature.
//!
//! ```
//! use tower_oauth2::store::{MemoryStore, TokenStore};
//! use tower_oauth2::token::TokenHash;
//!
//! # tokio_test_block_on(async {
//! let store = MemoryStore::new();
//! assert!(store.find_access_token(&TokenHash::of("nope")).await.unwrap().is_none());
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```

mod memory;
mod near_cache;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
mod redis;
mod retention;

use std::sync::Arc;
#[cfg(any(feature = "redis", feature = "postgres"))]
use std::time::Duration;

use async_trait::async_trait;

pub use self::memory::{MemoryStore, StoreCounts};
pub use self::near_cache::{NearCache, NearCacheConfig, NearCacheStats};
#[cfg(feature = "postgres")]
pub use self::postgres::{PostgresStore, PostgresStoreBuilder};
#[cfg(feature = "redis")]
pub use self::redis::{RedisStore, RedisStoreBuilder};
use crate::{
    client::GrantType,
    clock::UnixTime,
    error::StoreError,
    scope::Scope,
    token::{GrantId, TokenHash},
};

#[cfg(any(feature = "redis", feature = "postgres"))]
pub(crate) use self::retention::{CODE_RETENTION_SECS, grant_purge_at};
pub(crate) use self::retention::{TOMBSTONE_SECS, code_purgeable, token_purgeable};

/// The authorization a family of tokens descends from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRecord {
    /// The family's identifier.
    pub id: GrantId,
    /// The client the grant was issued to; its tokens work for this client only.
    pub client_id: Arc<str>,
    /// The resource owner, absent for `client_credentials`.
    pub subject: Option<Arc<str>>,
    /// The scope authorized: the ceiling for every refresh in this family.
    pub scope: Scope,
    /// How the grant was obtained.
    pub grant_type: GrantType,
    /// When it was created.
    pub created_at: UnixTime,
    /// The family's absolute end (`refresh_token_max_lifetime`); rotation never extends it.
    pub expires_at: Option<UnixTime>,
}

/// A stored access token, as returned by [`TokenStore::find_access_token`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessTokenRecord {
    /// The grant it belongs to.
    pub grant: GrantRecord,
    /// Its scope (equal to or narrower than the grant's).
    pub scope: Scope,
    /// When it was issued.
    pub issued_at: UnixTime,
    /// When it expires.
    pub expires_at: UnixTime,
}

/// Where a refresh token stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshTokenState {
    /// Usable.
    Active,
    /// Used and replaced by a successor at `at`. Presenting it again is a replay — unless it is
    /// inside the grace window, when `sealed` holds the successor pair encrypted under a key
    /// derived from the token itself.
    Rotated {
        /// When it was used.
        at: UnixTime,
        /// The response issued for that use, sealed; dropped once the grace window ends.
        sealed: Option<Sealed>,
    },
}

/// An encrypted token response kept for the grace window. Only a holder of the refresh token
/// that produced it can open it; the store cannot.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    /// Nonce and ciphertext.
    pub bytes: Arc<[u8]>,
    /// When the grace window closes; after that the store may drop it.
    pub until: UnixTime,
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Sealed({} bytes, until {})",
            self.bytes.len(),
            self.until
        )
    }
}

/// A stored refresh token, as returned by [`TokenStore::find_refresh_token`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenRecord {
    /// Its hash.
    pub hash: TokenHash,
    /// The grant (family) it belongs to.
    pub grant: GrantRecord,
    /// When it was issued.
    pub issued_at: UnixTime,
    /// When it expires unless used (idle lifetime; each rotation starts a new one).
    pub expires_at: UnixTime,
    /// Its position in the family's rotation chain (the first token is 0).
    pub generation: u32,
    /// The newest generation the family has reached.
    pub family_generation: u32,
    /// The access token most recently issued with or under it.
    pub access_token: Option<TokenHash>,
    /// Active or rotated.
    pub state: RefreshTokenState,
}

/// A new access token to store.
#[derive(Debug, Clone)]
pub struct NewAccessToken {
    /// Its hash.
    pub hash: TokenHash,
    /// Its scope.
    pub scope: Scope,
    /// When it was issued.
    pub issued_at: UnixTime,
    /// When it expires.
    pub expires_at: UnixTime,
}

/// A new refresh token to store.
#[derive(Debug, Clone)]
pub struct NewRefreshToken {
    /// Its hash.
    pub hash: TokenHash,
    /// When it was issued.
    pub issued_at: UnixTime,
    /// When it expires unless used.
    pub expires_at: UnixTime,
    /// Its generation in the family.
    pub generation: u32,
}

/// One use of a refresh token, applied atomically by [`TokenStore::rotate_refresh_token`].
#[derive(Debug, Clone)]
pub struct Rotation {
    /// The presented token.
    pub presented: TokenHash,
    /// The generation the caller read; the rotation applies only if the token is still active.
    pub generation: u32,
    /// The new access token.
    pub access: NewAccessToken,
    /// The successor, when rotating; `None` keeps the presented token active (rotation off).
    pub refresh: Option<NewRefreshToken>,
    /// The sealed response for the grace window, when one is configured.
    pub sealed: Option<Sealed>,
    /// Revoke the access token issued earlier with or under the presented token (`on_refresh`).
    pub revoke_previous_access: bool,
    /// That access token as the caller read it ([`RefreshTokenRecord::access_token`]), for a
    /// [`NearCache`] to drop at once. The store revokes the one it holds, which a concurrent use
    /// of the same token may have changed since (its announcement covers that one).
    pub previous_access: Option<TokenHash>,
    /// The time of the rotation.
    pub now: UnixTime,
    /// The family ([`RefreshTokenRecord::grant`]): a store spread over several servers finds
    /// it by its route.
    pub grant: GrantId,
    /// The family's client, for a store that keeps its client index apart from the grant
    /// (Redis Cluster) and extends it as the family lives on.
    pub client_id: Arc<str>,
    /// The family's user, likewise.
    pub subject: Option<Arc<str>>,
}

/// What [`TokenStore::rotate_refresh_token`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationOutcome {
    /// Applied.
    Rotated,
    /// Not applied: the token was no longer active (another request used it first), or its
    /// family was revoked or it is gone. The caller reads it again to decide.
    Conflict,
}

/// PKCE (RFC 7636) challenge method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodeChallengeMethod {
    /// `S256`: BASE64URL(SHA256(verifier)).
    S256,
    /// `plain`: the verifier itself; only when enabled.
    Plain,
}

impl CodeChallengeMethod {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::S256 => "S256",
            Self::Plain => "plain",
        }
    }

    /// The method of a wire name (RFC 7636 §4.3; case-sensitive), if it is one.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "S256" => Some(Self::S256),
            "plain" => Some(Self::Plain),
            _ => None,
        }
    }
}

/// A stored authorization code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationCodeRecord {
    /// The code's hash.
    pub hash: TokenHash,
    /// The client it was issued to.
    pub client_id: Arc<str>,
    /// The resource owner who approved it.
    pub subject: Arc<str>,
    /// The `redirect_uri` of the authorization request, if it named one; the exchange must repeat
    /// it exactly (RFC 6749 §4.1.3).
    pub redirect_uri: Option<String>,
    /// The approved scope.
    pub scope: Scope,
    /// PKCE challenge and method.
    pub code_challenge: Option<(String, CodeChallengeMethod)>,
    /// When it was issued.
    pub issued_at: UnixTime,
    /// When it expires.
    pub expires_at: UnixTime,
    /// The grant its first redemption started; set once redeemed.
    pub redeemed_by: Option<GrantId>,
}

/// A request kept between two steps of a flow under the hash of an unguessable handle, used at
/// most once: an authorization request between its validation and the resource owner's
/// decision. What it holds is the library's own encoding, opaque to the store.
#[derive(Clone, PartialEq, Eq)]
pub struct PendingRequest {
    /// The handle's hash.
    pub hash: TokenHash,
    /// The request, encoded by the library.
    pub data: Arc<[u8]>,
    /// When it was made.
    pub created_at: UnixTime,
    /// When it lapses; the store may drop it from then on.
    pub expires_at: UnixTime,
}

impl std::fmt::Debug for PendingRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // What the request holds (its state, its PKCE challenge) stays out of logs.
        f.debug_struct("PendingRequest")
            .field("bytes", &self.data.len())
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// What [`TokenStore::redeem_code`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redemption {
    /// The code was unused; it is now redeemed and the grant created.
    Redeemed,
    /// The code had already been redeemed, starting this grant.
    AlreadyRedeemed(GrantId),
    /// No such code (or it was purged).
    Missing,
}

/// Which grants a bulk revocation covers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GrantFilter {
    /// Every grant of a resource owner (logout everywhere, password change).
    Subject(String),
    /// Every grant of a client (client compromise).
    Client(String),
}

/// What a revocation made invalid, as a shared store announces it to every instance, so that a
/// [`NearCache`] drops what it holds of it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Invalidation {
    /// One access token (revoked alone, or replaced at a refresh).
    AccessToken(TokenHash),
    /// Every token of a grant (a family revocation, a replay).
    Grant(GrantId),
    /// Every grant of a resource owner.
    Subject(String),
    /// Every grant of a client.
    Client(String),
    /// Anything: the announcement could not say what.
    Everything,
}

impl Invalidation {
    /// The announcement's wire form, shared by the stores: `a:{hash}`, `g:{grant}`,
    /// `s:{subject}`, `k:{client}`, `*`.
    pub fn encode(&self) -> String {
        match self {
            Self::AccessToken(h) => format!("a:{}", h.to_hex()),
            Self::Grant(g) => format!("g:{g}"),
            Self::Subject(s) => format!("s:{s}"),
            Self::Client(c) => format!("k:{c}"),
            Self::Everything => "*".into(),
        }
    }

    /// Read the wire form back. Anything not understood is [`Everything`](Self::Everything):
    /// dropping too much is safe, too little is not.
    pub fn decode(message: &str) -> Self {
        let parsed = match message.split_once(':') {
            Some(("a", h)) => TokenHash::parse_hex(h).map(Self::AccessToken),
            Some(("g", g)) => GrantId::parse_hex(g).map(Self::Grant),
            Some(("s", s)) => Some(Self::Subject(s.to_owned())),
            Some(("k", c)) => Some(Self::Client(c.to_owned())),
            _ => None,
        };
        parsed.unwrap_or(Self::Everything)
    }
}

/// Receives what a shared store's announcement channel carries, from the store's listener
/// ([`TokenStore::listen`]): revocations, and the messages listeners exchange among themselves
/// through the [`Outbox`]. Each call is quick and never blocks on I/O.
pub trait InvalidationListener: Send + Sync + 'static {
    /// The channel is up: every revocation from now on will be announced. Announcements made
    /// while it was down were missed. `outbox` publishes on the channel, to every listener
    /// (this one included), in order after everything announced before.
    fn connected(&self, outbox: Outbox);
    /// The channel is down (or its state unknown): announcements may be missed until
    /// [`connected`](Self::connected) is called again.
    fn lost(&self);
    /// One message, in the order the channel delivered them: a revocation (in
    /// [`Invalidation::encode`]'s form) or a message some listener published.
    fn message(&self, text: &str);
    /// Called about once a second while the channel is up.
    fn tick(&self) {}
}

/// Publishes on a store's announcement channel (a pub/sub `PUBLISH`, a `pg_notify`): what a
/// store's listener hands to [`InvalidationListener::connected`]. The store's listener sends
/// what it receives here, in order. Cheap to clone.
///
/// A store with one channel per [`Route`](crate::token::Route) (a Redis Cluster's sharded
/// channels, each served by the node that holds its route's keys) delivers in order per channel
/// only; a message about a route then goes on that route's channel
/// ([`publish_on`](Self::publish_on)), and the [`lanes`](Self::lanes) name one route per node,
/// which between them reach every channel's server.
#[derive(Clone, Debug)]
pub struct Outbox {
    tx: tokio::sync::mpsc::UnboundedSender<Outgoing>,
    lanes: Arc<[crate::token::Route]>,
}

/// A message queued on an [`Outbox`], with the route whose channel it must travel on (`None`:
/// any).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// Where it goes, on a store with a channel per route.
    pub route: Option<crate::token::Route>,
    /// The message.
    pub text: String,
}

impl Outbox {
    /// An outbox on one channel and the receiver a store's listener sends from.
    pub fn channel() -> (Self, tokio::sync::mpsc::UnboundedReceiver<Outgoing>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (
            Self {
                tx,
                lanes: Arc::from([]),
            },
            rx,
        )
    }

    /// The same outbox over channels per route, `lanes` naming one route per server.
    #[must_use]
    pub fn with_lanes(mut self, lanes: Vec<crate::token::Route>) -> Self {
        self.lanes = Arc::from(lanes);
        self
    }

    /// One route per server of a store with channels per route; empty for one channel.
    pub fn lanes(&self) -> &[crate::token::Route] {
        &self.lanes
    }

    /// Queue `message` for the channel (any, on a store with several); `false` once the
    /// store's listener has let go (the channel is down).
    pub fn publish(&self, message: String) -> bool {
        self.send(None, message)
    }

    /// Queue `message` for `route`'s channel, behind everything announced there so far.
    pub fn publish_on(&self, route: Option<crate::token::Route>, message: String) -> bool {
        self.send(route, message)
    }

    fn send(&self, route: Option<crate::token::Route>, text: String) -> bool {
        self.tx.send(Outgoing { route, text }).is_ok()
    }
}

/// Run a store's announcement listener on a thread of its own, with a single-threaded runtime:
/// an announcement is then applied as soon as it arrives, not after whatever the app's runtime
/// has queued (under load, that queue is milliseconds long — enough for a revoked token to be
/// served again after its revocation was acknowledged).
#[cfg(any(feature = "redis", feature = "postgres"))]
pub(crate) fn spawn_listener(name: &str, task: impl Future<Output = ()> + Send + 'static) {
    let spawned = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(task),
                Err(e) => tracing::error!(error = %e, "no runtime for the invalidation listener"),
            }
        });
    if let Err(e) = spawned {
        // The cache then stays bypassed: slower, never wrong.
        tracing::error!(error = %e, "the invalidation listener's thread could not start");
    }
}

/// Run one backend call, bounded by `timeout` (connecting and waiting for a connection
/// included): past it, [`StoreError::Timeout`].
#[cfg(any(feature = "redis", feature = "postgres"))]
pub(crate) async fn within<T>(
    timeout: Duration,
    call: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(timeout, call)
        .await
        .map_err(|_| StoreError::Timeout)?
}

/// Where a shared store's connections come from: a URL the store connects to, or a connection
/// (pool, manager) the app already has. Its `Debug` never shows a password in the URL.
#[cfg(any(feature = "redis", feature = "postgres"))]
#[derive(Clone)]
pub(crate) enum Source<C> {
    /// Connected from this URL.
    Url(String),
    /// The app's own.
    Given(C),
}

#[cfg(any(feature = "redis", feature = "postgres"))]
impl<C> std::fmt::Debug for Source<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Url(url) => f.write_str(&redact_url(url)),
            Self::Given(_) => f.write_str("<the app's own connection>"),
        }
    }
}

/// A URL with any password replaced (`redis://user:***@host`).
#[cfg(any(feature = "redis", feature = "postgres"))]
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    // The userinfo ends at the last '@' before the path.
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            let password = if userinfo.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{password}{}", &rest[at..])
        }
        None => url.to_owned(),
    }
}

/// Storage for grants, tokens and authorization codes.
///
/// Implementations take `&self` and are shared behind an `Arc`; they must not serialise
/// unrelated requests behind one lock. Methods that change state are atomic as documented.
/// Failures are [`StoreError`]s, which endpoints answer with 503.
///
/// Callers keep one grant's records on one [`Route`](crate::token::Route), as the grant types
/// do: its tokens are made with [`token::generate_for`](crate::token::generate_for) on
/// [`GrantId::route`], and a grant from a code gets an id on the code's route
/// ([`GrantId::generate_in`]). A store spread over several servers (the Redis Cluster store)
/// keys by it and refuses records that break it; others may ignore it.
#[async_trait]
pub trait TokenStore: Send + Sync + 'static {
    /// Create a grant with its first access token and, optionally, refresh token.
    /// If a grant with this id was already revoked, the tokens are born revoked.
    async fn create_grant(
        &self,
        grant: GrantRecord,
        access: NewAccessToken,
        refresh: Option<NewRefreshToken>,
    ) -> Result<(), StoreError>;

    /// An access token of a live grant, expired or not; `None` when unknown or revoked.
    async fn find_access_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<AccessTokenRecord>, StoreError>;

    /// A refresh token of a live grant, in any state; `None` when unknown or revoked.
    async fn find_refresh_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<RefreshTokenRecord>, StoreError>;

    /// The refresh token about to be used: [`find_refresh_token`](Self::find_refresh_token), or a
    /// record of it this instance read or wrote earlier, when the caller's next step is the
    /// [`rotate_refresh_token`](Self::rotate_refresh_token) compare-and-set — which re-checks
    /// its state, generation, expiry and family in the store, so a stale record costs a
    /// conflict and a fresh read, never a wrong answer. The client, scope and family end a
    /// record carries never change. Default: `find_refresh_token`.
    async fn find_refresh_token_to_use(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<RefreshTokenRecord>, StoreError> {
        self.find_refresh_token(hash).await
    }

    /// The code about to be redeemed: [`find_code`](Self::find_code), or a record of it this
    /// instance wrote earlier, when the caller's next step is
    /// [`redeem_code`](Self::redeem_code) — which checks in the store, atomically, that it is
    /// not redeemed yet (nothing else about a code ever changes). A caller refused on such a
    /// record asks `find_code` before answering. Default: `find_code`.
    async fn find_code_to_use(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<AuthorizationCodeRecord>, StoreError> {
        self.find_code(hash).await
    }

    /// [`find_access_token`](Self::find_access_token) answered without waiting, for stores that
    /// can (memory): the bearer layer's fast path, with no future to allocate. `None` (the
    /// default) means "ask asynchronously".
    fn find_access_token_now(
        &self,
        _hash: &TokenHash,
    ) -> Option<Result<Option<AccessTokenRecord>, StoreError>> {
        None
    }

    /// Apply one use of a refresh token atomically (see [`Rotation`]).
    async fn rotate_refresh_token(&self, rotation: Rotation)
    -> Result<RotationOutcome, StoreError>;

    /// Revoke one access token. Returns whether it existed.
    async fn revoke_access_token(&self, hash: &TokenHash) -> Result<bool, StoreError>;

    /// Revoke a whole family: every access and refresh token of the grant. Returns whether the
    /// grant was live. A grant revoked before it is created stays revoked.
    async fn revoke_grant(&self, id: GrantId) -> Result<bool, StoreError>;

    /// Revoke every grant that matches. Returns how many were revoked.
    async fn revoke_grants(&self, filter: &GrantFilter) -> Result<u64, StoreError>;

    /// Store a new authorization code.
    async fn create_code(&self, code: AuthorizationCodeRecord) -> Result<(), StoreError>;

    /// An authorization code, redeemed or not.
    async fn find_code(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<AuthorizationCodeRecord>, StoreError>;

    /// Redeem a code once and create the grant it starts, atomically.
    async fn redeem_code(
        &self,
        hash: &TokenHash,
        grant: GrantRecord,
        access: NewAccessToken,
        refresh: Option<NewRefreshToken>,
    ) -> Result<Redemption, StoreError>;

    /// Keep a pending request (a new handle: never one already stored).
    async fn create_pending(&self, pending: PendingRequest) -> Result<(), StoreError>;

    /// A pending request, still there; expired or not (the caller checks).
    async fn find_pending(&self, hash: &TokenHash) -> Result<Option<PendingRequest>, StoreError>;

    /// Remove a pending request and return it, atomically: of concurrent calls for one handle,
    /// at most one gets it.
    async fn take_pending(&self, hash: &TokenHash) -> Result<Option<PendingRequest>, StoreError>;

    /// Delete what has expired or been revoked as of `now`. Returns how many entries went.
    async fn purge_expired(&self, now: UnixTime) -> Result<u64, StoreError>;

    /// Whether this store announces every revocation, by any instance, to [`listen`]ers — in the
    /// same atomic step as the revocation itself. Only then may a [`NearCache`] stand in front
    /// of it. `false` by default.
    ///
    /// [`listen`]: Self::listen
    fn announces_revocations(&self) -> bool {
        false
    }

    /// Deliver revocation announcements to `listener` for as long as it lives (a task of the
    /// store's own, holding a connection apart from the pool). Called once, inside a Tokio
    /// runtime, and only when [`announces_revocations`](Self::announces_revocations) is `true`.
    fn listen(&self, _listener: std::sync::Weak<dyn InvalidationListener>) {}
}

#[async_trait]
impl<T: TokenStore + ?Sized> TokenStore for Arc<T> {
    async fn create_grant(
        &self,
        grant: GrantRecord,
        access: NewAccessToken,
        refresh: Option<NewRefreshToken>,
    ) -> Result<(), StoreError> {
        (**self).create_grant(grant, access, refresh).await
    }
    async fn find_access_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<AccessTokenRecord>, StoreError> {
        (**self).find_access_token(hash).await
    }
    async fn find_refresh_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<RefreshTokenRecord>, StoreError> {
        (**self).find_refresh_token(hash).await
    }
    async fn find_refresh_token_to_use(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<RefreshTokenRecord>, StoreError> {
        (**self).find_refresh_token_to_use(hash).await
    }
    async fn find_code_to_use(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<AuthorizationCodeRecord>, StoreError> {
        (**self).find_code_to_use(hash).await
    }
    fn find_access_token_now(
        &self,
        hash: &TokenHash,
    ) -> Option<Result<Option<AccessTokenRecord>, StoreError>> {
        (**self).find_access_token_now(hash)
    }
    async fn rotate_refresh_token(
        &self,
        rotation: Rotation,
    ) -> Result<RotationOutcome, StoreError> {
        (**self).rotate_refresh_token(rotation).await
    }
    async fn revoke_access_token(&self, hash: &TokenHash) -> Result<bool, StoreError> {
        (**self).revoke_access_token(hash).await
    }
    async fn revoke_grant(&self, id: GrantId) -> Result<bool, StoreError> {
        (**self).revoke_grant(id).await
    }
    async fn revoke_grants(&self, filter: &GrantFilter) -> Result<u64, StoreError> {
        (**self).revoke_grants(filter).await
    }
    async fn create_code(&self, code: AuthorizationCodeRecord) -> Result<(), StoreError> {
        (**self).create_code(code).await
    }
    async fn find_code(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<AuthorizationCodeRecord>, StoreError> {
        (**self).find_code(hash).await
    }
    async fn redeem_code(
        &self,
        hash: &TokenHash,
        grant: GrantRecord,
        access: NewAccessToken,
        refresh: Option<NewRefreshToken>,
    ) -> Result<Redemption, StoreError> {
        (**self).redeem_code(hash, grant, access, refresh).await
    }
    async fn create_pending(&self, pending: PendingRequest) -> Result<(), StoreError> {
        (**self).create_pending(pending).await
    }
    async fn find_pending(&self, hash: &TokenHash) -> Result<Option<PendingRequest>, StoreError> {
        (**self).find_pending(hash).await
    }
    async fn take_pending(&self, hash: &TokenHash) -> Result<Option<PendingRequest>, StoreError> {
        (**self).take_pending(hash).await
    }
    async fn purge_expired(&self, now: UnixTime) -> Result<u64, StoreError> {
        (**self).purge_expired(now).await
    }
    fn announces_revocations(&self) -> bool {
        (**self).announces_revocations()
    }
    fn listen(&self, listener: std::sync::Weak<dyn InvalidationListener>) {
        (**self).listen(listener)
    }
}

#[cfg(all(test, any(feature = "redis", feature = "postgres")))]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_redacted_from_urls() {
        let cases = [
            ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
            ("redis://:s3cret@host:6379/0", "redis://:***@host:6379/0"),
            ("redis://user:s3cret@host", "redis://user:***@host"),
            ("redis://user@host", "redis://user@host"),
            ("rediss://u:p@ss@host/x@y", "rediss://u:***@host/x@y"),
            ("not a url", "not a url"),
        ];
        for (url, shown) in cases {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }
}
