//! Stores that wrap a store: a wrapper implements only the concerns it changes, and passes the
//! others through without writing a line of forwarding.
//!
//! A wrapper says what it wraps ([`Wraps`]). For each concern it changes, it implements that
//! concern's trait ([`GrantStore`], [`CodeStore`], …) as any store does. For each concern it
//! leaves alone, an empty `impl WrapsGrants for MyWrapper {}` (or `WrapsCodes`, `WrapsRecords`,
//! `WrapsPurge`, `WrapsAnnouncements`) passes every method through to the wrapped store; to
//! change one method of a concern and pass the rest through, override just that method in the
//! `WrapsX` impl.
//!
//! The `WrapsX` traits' methods return the wrapped store's own future (no second box), and one
//! blanket impl per concern turns a `WrapsX` into the concern's trait. `Arc<S>` is such a
//! wrapper of `S`, for every concern.
//!
//! A module that imports a `WrapsX` trait and its concern's trait both sees two methods of one
//! name on an `Arc` (and on its wrapper): call through `&dyn TokenStore` (`store.as_ref()`) or
//! the wrapped store (`self.wrapped()`) there.
//!
//! Why not a forwarding macro: a macro is one more language to read, and it cannot leave out
//! the method a wrapper overrides; default methods can, and rustdoc lists them.
//!
//! ```
//! use std::sync::{Arc, atomic::{AtomicUsize, Ordering}};
//! use tower_oauth2::BoxFuture;
//! use tower_oauth2::store::{
//!     AccessTokenRecord, GrantStore, MemoryStore, StoreError, TokenStore,
//!     wrap::{Wraps, WrapsAnnouncements, WrapsCodes, WrapsGrants, WrapsPurge, WrapsRecords},
//! };
//! use tower_oauth2::token::TokenHash;
//!
//! /// Counts access-token lookups; everything else is the wrapped store's.
//! struct Counting {
//!     inner: MemoryStore,
//!     lookups: Arc<AtomicUsize>,
//! }
//!
//! impl Wraps for Counting {
//!     type Inner = MemoryStore;
//!     fn wrapped(&self) -> &MemoryStore {
//!         &self.inner
//!     }
//! }
//!
//! impl WrapsGrants for Counting {
//!     fn find_access_token<'a>(
//!         &'a self,
//!         hash: &'a TokenHash,
//!     ) -> BoxFuture<'a, Result<Option<AccessTokenRecord>, StoreError>> {
//!         self.lookups.fetch_add(1, Ordering::Relaxed);
//!         self.inner.find_access_token(hash)
//!     }
//! }
//! impl WrapsCodes for Counting {}
//! impl WrapsRecords for Counting {}
//! impl WrapsPurge for Counting {}
//! impl WrapsAnnouncements for Counting {}
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let lookups = Arc::new(AtomicUsize::new(0));
//! let store: Arc<dyn TokenStore> =
//!     Arc::new(Counting { inner: MemoryStore::new(), lookups: Arc::clone(&lookups) });
//! assert!(store.as_ref().find_access_token(&TokenHash::of("nope")).await.unwrap().is_none());
//! assert_eq!(lookups.load(Ordering::Relaxed), 1);
//! # });
//! ```

use std::sync::{Arc, Weak};

use async_trait::async_trait;

use super::{
    AccessTokenRecord, Announcements, AuthorizationCodeRecord, CodeStore, GrantFilter, GrantRecord,
    GrantStore, InvalidationListener, NewAccessToken, NewRefreshToken, PurgeStore, Redemption,
    RefreshTokenRecord, Rotation, RotationOutcome,
    records::{Put, Record, RecordKey, RecordStore},
};
use crate::{
    clock::UnixTime,
    error::StoreError,
    future::BoxFuture,
    token::{GrantId, TokenHash},
};

/// A store that wraps another: what the `WrapsX` traits pass calls through to.
pub trait Wraps: Send + Sync + 'static {
    /// The wrapped store.
    type Inner: ?Sized + Send + Sync + 'static;
    /// The wrapped store.
    fn wrapped(&self) -> &Self::Inner;
}

impl<T: ?Sized + Send + Sync + 'static> Wraps for Arc<T> {
    type Inner = T;
    fn wrapped(&self) -> &T {
        self
    }
}

/// [`GrantStore`] passed through to the wrapped store, but for the methods overridden.
///
/// Each method goes to the wrapped store's own by default, the shortcuts included: a wrapper that
/// overrides [`find_access_token`](Self::find_access_token) overrides
/// [`find_access_token_now`](Self::find_access_token_now) too (`None` sends every lookup
/// through the async path), and one that overrides
/// [`find_refresh_token`](Self::find_refresh_token) overrides
/// [`find_refresh_token_to_use`](Self::find_refresh_token_to_use) to call it.
pub trait WrapsGrants: Wraps<Inner: GrantStore> {
    /// See [`GrantStore::create_grant`].
    fn create_grant(
        &self,
        grant: GrantRecord,
        access: NewAccessToken,
        refresh: Option<NewRefreshToken>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        self.wrapped().create_grant(grant, access, refresh)
    }
    /// See [`GrantStore::find_access_token`].
    fn find_access_token<'a>(
        &'a self,
        hash: &'a TokenHash,
    ) -> BoxFuture<'a, Result<Option<AccessTokenRecord>, StoreError>> {
        self.wrapped().find_access_token(hash)
    }
    /// See [`GrantStore::find_refresh_token`].
    fn find_refresh_token<'a>(
        &'a self,
        hash: &'a TokenHash,
    ) -> BoxFuture<'a, Result<Option<RefreshTokenRecord>, StoreError>> {
        self.wrapped().find_refresh_token(hash)
    }
    /// See [`GrantStore::find_refresh_token_to_use`].
    fn find_refresh_token_to_use<'a>(
        &'a self,
        hash: &'a TokenHash,
    ) -> BoxFuture<'a, Result<Option<RefreshTokenRecord>, StoreError>> {
        self.wrapped().find_refresh_token_to_use(hash)
    }
    /// See [`GrantStore::find_access_token_now`].
    fn find_access_token_now(
        &self,
        hash: &TokenHash,
    ) -> Option<Result<Option<AccessTokenRecord>, StoreError>> {
        self.wrapped().find_access_token_now(hash)
    }
    /// See [`GrantStore::rotate_refresh_token`].
    fn rotate_refresh_token(
        &self,
        rotation: Rotation,
    ) -> BoxFuture<'_, Result<RotationOutcome, StoreError>> {
        self.wrapped().rotate_refresh_token(rotation)
    }
    /// See [`GrantStore::revoke_access_token`].
    fn revoke_access_token<'a>(
        &'a self,
        hash: &'a TokenHash,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.wrapped().revoke_access_token(hash)
    }
    /// See [`GrantStore::revoke_grant`].
    fn revoke_grant(&self, id: GrantId) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.wrapped().revoke_grant(id)
    }
    /// See [`GrantStore::revoke_grants`].
    fn revoke_grants<'a>(
        &'a self,
        filter: &'a GrantFilter,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        self.wrapped().revoke_grants(filter)
    }
}

#[async_trait]
impl<W: WrapsGrants> GrantStore for W {
    async fn create_grant(
        &self,
        grant: GrantRecord,
        access: NewAccessToken,
        refresh: Option<NewRefreshToken>,
    ) -> Result<(), StoreError> {
        WrapsGrants::create_grant(self, grant, access, refresh).await
    }
    async fn find_access_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<AccessTokenRecord>, StoreError> {
        WrapsGrants::find_access_token(self, hash).await
    }
    async fn find_refresh_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<RefreshTokenRecord>, StoreError> {
        WrapsGrants::find_refresh_token(self, hash).await
    }
    async fn find_refresh_token_to_use(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<RefreshTokenRecord>, StoreError> {
        WrapsGrants::find_refresh_token_to_use(self, hash).await
    }
    fn find_access_token_now(
        &self,
        hash: &TokenHash,
    ) -> Option<Result<Option<AccessTokenRecord>, StoreError>> {
        WrapsGrants::find_access_token_now(self, hash)
    }
    async fn rotate_refresh_token(
        &self,
        rotation: Rotation,
    ) -> Result<RotationOutcome, StoreError> {
        WrapsGrants::rotate_refresh_token(self, rotation).await
    }
    async fn revoke_access_token(&self, hash: &TokenHash) -> Result<bool, StoreError> {
        WrapsGrants::revoke_access_token(self, hash).await
    }
    async fn revoke_grant(&self, id: GrantId) -> Result<bool, StoreError> {
        WrapsGrants::revoke_grant(self, id).await
    }
    async fn revoke_grants(&self, filter: &GrantFilter) -> Result<u64, StoreError> {
        WrapsGrants::revoke_grants(self, filter).await
    }
}

/// [`CodeStore`] passed through to the wrapped store, but for the methods overridden.
pub trait WrapsCodes: Wraps<Inner: CodeStore> {
    /// See [`CodeStore::create_code`].
    fn create_code(&self, code: AuthorizationCodeRecord) -> BoxFuture<'_, Result<(), StoreError>> {
        self.wrapped().create_code(code)
    }
    /// See [`CodeStore::find_code`].
    fn find_code<'a>(
        &'a self,
        hash: &'a TokenHash,
    ) -> BoxFuture<'a, Result<Option<AuthorizationCodeRecord>, StoreError>> {
        self.wrapped().find_code(hash)
    }
    /// See [`CodeStore::find_code_to_use`].
    fn find_code_to_use<'a>(
        &'a self,
        hash: &'a TokenHash,
    ) -> BoxFuture<'a, Result<Option<AuthorizationCodeRecord>, StoreError>> {
        self.wrapped().find_code_to_use(hash)
    }
    /// See [`CodeStore::redeem_code`].
    fn redeem_code<'a>(
        &'a self,
        hash: &'a TokenHash,
        grant: GrantRecord,
        access: NewAccessToken,
        refresh: Option<NewRefreshToken>,
    ) -> BoxFuture<'a, Result<Redemption, StoreError>> {
        self.wrapped().redeem_code(hash, grant, access, refresh)
    }
}

#[async_trait]
impl<W: WrapsCodes> CodeStore for W {
    async fn create_code(&self, code: AuthorizationCodeRecord) -> Result<(), StoreError> {
        WrapsCodes::create_code(self, code).await
    }
    async fn find_code(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<AuthorizationCodeRecord>, StoreError> {
        WrapsCodes::find_code(self, hash).await
    }
    async fn find_code_to_use(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<AuthorizationCodeRecord>, StoreError> {
        WrapsCodes::find_code_to_use(self, hash).await
    }
    async fn redeem_code(
        &self,
        hash: &TokenHash,
        grant: GrantRecord,
        access: NewAccessToken,
        refresh: Option<NewRefreshToken>,
    ) -> Result<Redemption, StoreError> {
        WrapsCodes::redeem_code(self, hash, grant, access, refresh).await
    }
}

/// [`RecordStore`] passed through to the wrapped store, but for the methods overridden.
pub trait WrapsRecords: Wraps<Inner: RecordStore> {
    /// See [`RecordStore::put_record`].
    fn put_record<'a>(
        &'a self,
        key: &'a RecordKey,
        record: Record,
        mode: Put,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.wrapped().put_record(key, record, mode, now)
    }
    /// See [`RecordStore::get_record`].
    fn get_record<'a>(
        &'a self,
        key: &'a RecordKey,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<Option<Record>, StoreError>> {
        self.wrapped().get_record(key, now)
    }
    /// See [`RecordStore::take_record`].
    fn take_record<'a>(
        &'a self,
        key: &'a RecordKey,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<Option<Record>, StoreError>> {
        self.wrapped().take_record(key, now)
    }
    /// See [`RecordStore::delete_record`].
    fn delete_record<'a>(&'a self, key: &'a RecordKey) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.wrapped().delete_record(key)
    }
    /// See [`RecordStore::extend_record`].
    fn extend_record<'a>(
        &'a self,
        key: &'a RecordKey,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.wrapped().extend_record(key, expires_at, now)
    }
    /// See [`RecordStore::increment`].
    fn increment<'a>(
        &'a self,
        key: &'a RecordKey,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        self.wrapped().increment(key, expires_at, now)
    }
}

#[async_trait]
impl<W: WrapsRecords> RecordStore for W {
    async fn put_record(
        &self,
        key: &RecordKey,
        record: Record,
        mode: Put,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        WrapsRecords::put_record(self, key, record, mode, now).await
    }
    async fn get_record(
        &self,
        key: &RecordKey,
        now: UnixTime,
    ) -> Result<Option<Record>, StoreError> {
        WrapsRecords::get_record(self, key, now).await
    }
    async fn take_record(
        &self,
        key: &RecordKey,
        now: UnixTime,
    ) -> Result<Option<Record>, StoreError> {
        WrapsRecords::take_record(self, key, now).await
    }
    async fn delete_record(&self, key: &RecordKey) -> Result<bool, StoreError> {
        WrapsRecords::delete_record(self, key).await
    }
    async fn extend_record(
        &self,
        key: &RecordKey,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        WrapsRecords::extend_record(self, key, expires_at, now).await
    }
    async fn increment(
        &self,
        key: &RecordKey,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<u64, StoreError> {
        WrapsRecords::increment(self, key, expires_at, now).await
    }
}

/// [`PurgeStore`] passed through to the wrapped store.
pub trait WrapsPurge: Wraps<Inner: PurgeStore> {
    /// See [`PurgeStore::purge_expired`].
    fn purge_expired(&self, now: UnixTime) -> BoxFuture<'_, Result<u64, StoreError>> {
        self.wrapped().purge_expired(now)
    }
}

#[async_trait]
impl<W: WrapsPurge> PurgeStore for W {
    async fn purge_expired(&self, now: UnixTime) -> Result<u64, StoreError> {
        WrapsPurge::purge_expired(self, now).await
    }
}

/// [`Announcements`] passed through to the wrapped store. A wrapper that caches what the
/// announcements would invalidate (a near-cache) implements [`Announcements`] itself instead,
/// announcing nothing, so nothing above it caches again.
pub trait WrapsAnnouncements: Wraps<Inner: Announcements> {
    /// See [`Announcements::announces_revocations`].
    fn announces_revocations(&self) -> bool {
        self.wrapped().announces_revocations()
    }
    /// See [`Announcements::listen`].
    fn listen(&self, listener: Weak<dyn InvalidationListener>) {
        self.wrapped().listen(listener);
    }
}

impl<W: WrapsAnnouncements> Announcements for W {
    fn announces_revocations(&self) -> bool {
        WrapsAnnouncements::announces_revocations(self)
    }
    fn listen(&self, listener: Weak<dyn InvalidationListener>) {
        WrapsAnnouncements::listen(self, listener);
    }
}

impl<T: GrantStore + ?Sized> WrapsGrants for Arc<T> {}
impl<T: CodeStore + ?Sized> WrapsCodes for Arc<T> {}
impl<T: RecordStore + ?Sized> WrapsRecords for Arc<T> {}
impl<T: PurgeStore + ?Sized> WrapsPurge for Arc<T> {}
impl<T: Announcements + ?Sized> WrapsAnnouncements for Arc<T> {}
