//! Grants and their tokens: the [`GrantStore`] concern and its records.
//!
//! Every access and refresh token belongs to a grant (its family). What needs a dedicated atomic
//! step stays a dedicated method: creating a grant with its first tokens, rotating a refresh
//! token (a compare-and-set with reuse detection), and revoking a family, a user's or a client's
//! grants.

use std::sync::Arc;

use async_trait::async_trait;

use crate::{
    client::GrantType,
    clock::UnixTime,
    error::StoreError,
    resource::Resources,
    scope::Scope,
    token::{GrantId, TokenHash},
};

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
    /// The resources (RFC 8707) authorized: the ceiling for every token's audience in this
    /// family. Empty when the request named none.
    pub resources: Resources,
    /// How the grant was obtained.
    pub grant_type: GrantType,
    /// When it was created.
    pub created_at: UnixTime,
    /// The family's absolute end (`refresh_token_max_lifetime`); rotation never extends it.
    pub expires_at: Option<UnixTime>,
}

/// A stored access token, as returned by [`GrantStore::find_access_token`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessTokenRecord {
    /// The grant it belongs to.
    pub grant: GrantRecord,
    /// Its scope (equal to or narrower than the grant's).
    pub scope: Scope,
    /// The resources it may be presented to (its `aud`): the grant's, or fewer. Empty: no
    /// audience.
    pub audience: Resources,
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

/// A stored refresh token, as returned by [`GrantStore::find_refresh_token`].
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
    /// Its audience (RFC 8707): the resources it may be presented to.
    pub audience: Resources,
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

/// One use of a refresh token, applied atomically by [`GrantStore::rotate_refresh_token`].
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
    /// [`NearCache`](super::NearCache) to drop at once. The store revokes the one it holds, which a concurrent use
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

/// What [`GrantStore::rotate_refresh_token`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationOutcome {
    /// Applied.
    Rotated,
    /// Not applied: the token was no longer active (another request used it first), or its
    /// family was revoked or it is gone. The caller reads it again to decide.
    Conflict,
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

/// Grants and their access and refresh tokens.
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
pub trait GrantStore: Send + Sync + 'static {
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
}
