//! The per-instance cache of access-token lookups in front of a shared store: [`NearCache`].

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
};

use async_trait::async_trait;
use dashmap::DashMap;

use super::{
    AccessTokenRecord, AuthorizationCodeRecord, GrantFilter, GrantRecord, Invalidation,
    InvalidationListener, NewAccessToken, NewRefreshToken, PendingRequest, Redemption,
    RefreshTokenRecord, Rotation, RotationOutcome, TokenStore,
};
use crate::{
    clock::{Clock, UnixTime},
    error::StoreError,
    token::{GrantId, TokenHash},
};

/// How big a [`NearCache`] may grow, and whether there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NearCacheConfig {
    /// Put a near-cache in front of a shared store that announces revocations (default `true`).
    pub enabled: bool,
    /// Most access tokens held (default 100 000).
    pub max_entries: usize,
    /// Most bytes held, by an estimate of each entry's size (default 64 MiB).
    pub max_bytes: usize,
}

impl Default for NearCacheConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_entries: 100_000,
            max_bytes: 64 << 20,
        }
    }
}

/// What a [`NearCache`] holds and has done, for metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct NearCacheStats {
    /// Access tokens held.
    pub entries: usize,
    /// Their estimated size.
    pub bytes: usize,
    /// Whether the announcement channel is up (the cache is in use).
    pub connected: bool,
    /// Lookups answered by the shared store because the token was not held.
    pub misses: u64,
    /// Lookups answered by the shared store because the channel was down.
    pub bypassed: u64,
    /// Announcements applied.
    pub invalidations: u64,
    /// Times the cache was emptied (channel lost or regained, or an unspecific announcement).
    pub flushes: u64,
}

/// Announcements kept to check racing fills against; a fill older than these is not cached.
const RECENT: usize = 4096;

/// The longest a revocation made here waits for its own announcement to come back.
const ECHO_WAIT: std::time::Duration = std::time::Duration::from_millis(50);

struct Entry {
    record: AccessTokenRecord,
    bytes: usize,
}

/// Who holds what: the indexes invalidations go through, and the announcements lately applied.
#[derive(Default)]
struct Index {
    by_grant: HashMap<GrantId, Vec<TokenHash>>,
    by_subject: HashMap<Arc<str>, HashSet<GrantId>>,
    by_client: HashMap<Arc<str>, HashSet<GrantId>>,
    /// `(sequence number, what)`, oldest first.
    recent: VecDeque<(u64, Invalidation)>,
    /// Sequence number of the last announcement applied (or flush).
    seq: u64,
}

struct Shared {
    entries: DashMap<TokenHash, Entry>,
    index: Mutex<Index>,
    up: AtomicBool,
    /// The sequence number as of the last change, readable without the lock.
    seq: AtomicU64,
    bytes: AtomicUsize,
    config: NearCacheConfig,
    misses: AtomicU64,
    bypassed: AtomicU64,
    invalidations: AtomicU64,
    flushes: AtomicU64,
    /// No purge of expired entries before this time (the last one freed nothing).
    no_purge_until: AtomicU64,
    /// Revocations made here, waiting for their own announcement to come back.
    echoes: Mutex<Vec<(Invalidation, tokio::sync::oneshot::Sender<()>)>>,
}

fn entry_bytes(record: &AccessTokenRecord) -> usize {
    std::mem::size_of::<(TokenHash, Entry)>()
        + record.grant.client_id.len()
        + record.grant.subject.as_deref().map_or(0, str::len)
        + record.grant.scope.as_str().len()
        + record.scope.as_str().len()
        // Index entries: the hash under its grant, the grant under its client and subject.
        + 32
        + 2 * 16
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Record an announcement (under the lock) and return its sequence number.
    fn note(&self, index: &mut Index, what: Invalidation) {
        index.seq += 1;
        if index.recent.len() == RECENT {
            index.recent.pop_front();
        }
        index.recent.push_back((index.seq, what));
        self.seq.store(index.seq, Ordering::Release);
    }

    fn remove_entry(&self, index: &mut Index, hash: &TokenHash) {
        let Some((_, entry)) = self.entries.remove(hash) else {
            return;
        };
        self.bytes.fetch_sub(entry.bytes, Ordering::Relaxed);
        let grant = &entry.record.grant;
        let emptied = match index.by_grant.get_mut(&grant.id) {
            Some(hashes) => {
                hashes.retain(|h| h != hash);
                hashes.is_empty()
            }
            None => false,
        };
        if emptied {
            index.by_grant.remove(&grant.id);
            unlink(&mut index.by_client, &grant.client_id, grant.id);
            if let Some(subject) = &grant.subject {
                unlink(&mut index.by_subject, subject, grant.id);
            }
        }
    }

    fn remove_grant(&self, index: &mut Index, id: GrantId) {
        let Some(hashes) = index.by_grant.remove(&id) else {
            return;
        };
        for hash in hashes {
            if let Some((_, entry)) = self.entries.remove(&hash) {
                self.bytes.fetch_sub(entry.bytes, Ordering::Relaxed);
                let grant = &entry.record.grant;
                unlink(&mut index.by_client, &grant.client_id, id);
                if let Some(subject) = &grant.subject {
                    unlink(&mut index.by_subject, subject, id);
                }
            }
        }
    }

    fn flush(&self, index: &mut Index) {
        self.entries.clear();
        index.by_grant.clear();
        index.by_subject.clear();
        index.by_client.clear();
        self.bytes.store(0, Ordering::Relaxed);
        self.flushes.fetch_add(1, Ordering::Relaxed);
        self.note(index, Invalidation::Everything);
    }

    fn apply(&self, what: &Invalidation) {
        let mut index = self.lock();
        match what {
            Invalidation::AccessToken(hash) => self.remove_entry(&mut index, hash),
            Invalidation::Grant(id) => self.remove_grant(&mut index, *id),
            Invalidation::Subject(subject) => {
                for id in index
                    .by_subject
                    .remove(subject.as_str())
                    .unwrap_or_default()
                {
                    self.remove_grant(&mut index, id);
                }
            }
            Invalidation::Client(client) => {
                for id in index.by_client.remove(client.as_str()).unwrap_or_default() {
                    self.remove_grant(&mut index, id);
                }
            }
            Invalidation::Everything => {
                self.flush(&mut index);
                return;
            }
        }
        self.invalidations.fetch_add(1, Ordering::Relaxed);
        self.note(&mut index, what.clone());
    }

    /// Cache `record` for `hash`, read from the store when the sequence number was `seen`,
    /// unless an announcement since then concerns it, the channel is down, or there is no room.
    fn fill(&self, seen: u64, hash: TokenHash, record: &AccessTokenRecord, now: UnixTime) {
        if record.expires_at <= now {
            return;
        }
        let mut index = self.lock();
        if !self.up.load(Ordering::Acquire) {
            return;
        }
        if index.seq != seen {
            // Announcements since the read: the oldest still kept must be the first one after
            // it, and none may concern this token.
            let covered = index.recent.front().is_some_and(|(s, _)| *s <= seen + 1);
            if !covered
                || index
                    .recent
                    .iter()
                    .any(|(s, w)| *s > seen && concerns(w, &hash, record))
            {
                return;
            }
        }
        let bytes = entry_bytes(record);
        if !self.room_for(&mut index, bytes, now) {
            return;
        }
        let grant = &record.grant;
        index.by_grant.entry(grant.id).or_default().push(hash);
        index
            .by_client
            .entry(Arc::clone(&grant.client_id))
            .or_default()
            .insert(grant.id);
        if let Some(subject) = &grant.subject {
            index
                .by_subject
                .entry(Arc::clone(subject))
                .or_default()
                .insert(grant.id);
        }
        let old = self.entries.insert(
            hash,
            Entry {
                record: record.clone(),
                bytes,
            },
        );
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        if let Some(old) = old {
            // Filled twice by concurrent misses: the index holds the hash twice, harmlessly;
            // count its bytes once.
            self.bytes.fetch_sub(old.bytes, Ordering::Relaxed);
        }
    }

    /// Whether `bytes` more fit, dropping expired entries first when they do not.
    fn room_for(&self, index: &mut Index, bytes: usize, now: UnixTime) -> bool {
        let fits = |s: &Self| {
            s.entries.len() < s.config.max_entries
                && s.bytes.load(Ordering::Relaxed) + bytes <= s.config.max_bytes
        };
        if fits(self) {
            return true;
        }
        if self.no_purge_until.load(Ordering::Relaxed) > now {
            return false;
        }
        let expired: Vec<TokenHash> = self
            .entries
            .iter()
            .filter(|e| e.record.expires_at <= now)
            .map(|e| *e.key())
            .collect();
        if expired.is_empty() {
            // Everything held is live: look again in a second, not on every miss.
            self.no_purge_until.store(now + 1, Ordering::Relaxed);
        }
        for hash in &expired {
            self.remove_entry(index, hash);
        }
        fits(self)
    }
}

/// Whether announcement `heard` is the echo of the revocation `made` here: itself, or for a bulk
/// revocation one of its grants (PostgreSQL announces those one by one, in the commit).
fn echoes_back(made: &Invalidation, heard: &Invalidation) -> bool {
    made == heard
        || matches!(
            (made, heard),
            (
                Invalidation::Subject(_) | Invalidation::Client(_),
                Invalidation::Grant(_)
            )
        )
}

/// Whether announcement `what` concerns the token `hash` of `record`.
fn concerns(what: &Invalidation, hash: &TokenHash, record: &AccessTokenRecord) -> bool {
    match what {
        Invalidation::AccessToken(h) => h == hash,
        Invalidation::Grant(id) => *id == record.grant.id,
        Invalidation::Subject(s) => record.grant.subject.as_deref() == Some(s.as_str()),
        Invalidation::Client(c) => &*record.grant.client_id == c.as_str(),
        Invalidation::Everything => true,
    }
}

fn unlink(map: &mut HashMap<Arc<str>, HashSet<GrantId>>, key: &str, id: GrantId) {
    if let Some(set) = map.get_mut(key) {
        set.remove(&id);
        if set.is_empty() {
            map.remove(key);
        }
    }
}

impl InvalidationListener for Shared {
    fn connected(&self) {
        let mut index = self.lock();
        // Whatever was missed while down: start empty.
        self.flush(&mut index);
        self.up.store(true, Ordering::Release);
        tracing::info!("near-cache: revocation announcements connected; cache in use");
    }

    fn lost(&self) {
        self.up.store(false, Ordering::Release);
        let mut index = self.lock();
        self.flush(&mut index);
        tracing::warn!("near-cache: revocation announcements lost; bypassing the cache");
    }

    fn invalidate(&self, what: &Invalidation) {
        self.apply(what);
        let mut echoes = self.echoes.lock().unwrap_or_else(|e| e.into_inner());
        // A dropped sender wakes its waiter: dropping the matched ones is the signal.
        echoes.retain(|(waiting, _)| !echoes_back(waiting, what));
    }
}

/// A [`TokenStore`] that caches access-token lookups in front of a shared store, emptied by the
/// store's revocation announcements: the memory store's speed on every instance, and a
/// revocation that every instance honours as soon as its announcement arrives.
///
/// - Only access-token lookups are cached (the bearer layer's hot path); everything else goes to
///   the shared store. An entry never outlives its token's expiry, and the cache is bounded in
///   entries and in bytes ([`NearCacheConfig`]); when full, expired entries go first, and a
///   token that finds no room is simply not cached.
/// - Every revocation — one token, a family, a user's or a client's grants, the family revoked on
///   a replay — is announced by the shared store in the same atomic step (Redis: `PUBLISH` inside
///   the script; PostgreSQL: `pg_notify` from triggers, delivered at commit), and every
///   instance drops the affected entries: by token, grant, subject or client, through indexes,
///   never by scanning.
/// - Fail safe: until the instance's announcement channel is up, and whenever it goes down, the
///   cache is emptied and bypassed (every lookup asks the store), so a lost announcement can
///   never leave a revoked token accepted. When the channel comes back the cache starts empty.
/// - A lookup that raced a revocation (read before, stored after) is not cached: each fill
///   checks the announcements that arrived while it was reading.
///
/// **The guarantee:** a revocation acknowledged by the store is honoured by every instance whose
/// channel is up within the time its announcement takes to arrive (well under a millisecond on
/// one machine; see BENCHMARKS.md), and at once by the instance that made it, which also waits
/// (up to 50 ms) for its own announcement to come back before returning, so that the others have
/// been sent it by then. An instance whose channel is down serves from the store. A store outage
/// stays a 503, as without the cache.
///
/// [`AuthServerBuilder`](crate::AuthServerBuilder) puts one in front of any store that
/// [announces revocations](TokenStore::announces_revocations) (the Redis and PostgreSQL stores
/// opened from a URL), unless [`Config::near_cache`](crate::Config::near_cache) turns it off.
///
/// ```
/// use std::sync::Arc;
/// use tower_oauth2::{clock::SystemClock, store::{MemoryStore, NearCache, NearCacheConfig, TokenStore}};
///
/// // The memory store announces nothing, so this cache only ever passes lookups through.
/// let store = NearCache::new(Arc::new(MemoryStore::new()), Arc::new(SystemClock), NearCacheConfig::default());
/// assert!(!store.stats().connected);
/// assert_eq!(store.stats().entries, 0);
/// ```
///
/// Cheap to clone; clones share the cache.
#[derive(Clone)]
pub struct NearCache {
    store: Arc<dyn TokenStore>,
    clock: Arc<dyn Clock>,
    shared: Arc<Shared>,
    /// Whether the store's listener has been started (on the first call, inside a runtime).
    started: Arc<AtomicBool>,
}

impl std::fmt::Debug for NearCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NearCache")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl NearCache {
    /// A cache in front of `store`, judging expiry by `clock`. Over a store that does not
    /// [announce revocations](TokenStore::announces_revocations) it caches nothing.
    pub fn new(store: Arc<dyn TokenStore>, clock: Arc<dyn Clock>, config: NearCacheConfig) -> Self {
        Self {
            store,
            clock,
            shared: Arc::new(Shared {
                entries: DashMap::new(),
                index: Mutex::new(Index::default()),
                up: AtomicBool::new(false),
                seq: AtomicU64::new(0),
                bytes: AtomicUsize::new(0),
                config,
                misses: AtomicU64::new(0),
                bypassed: AtomicU64::new(0),
                invalidations: AtomicU64::new(0),
                flushes: AtomicU64::new(0),
                no_purge_until: AtomicU64::new(0),
                echoes: Mutex::new(Vec::new()),
            }),
            started: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The store behind the cache.
    pub fn inner(&self) -> &Arc<dyn TokenStore> {
        &self.store
    }

    /// What it holds and has done.
    pub fn stats(&self) -> NearCacheStats {
        let s = &self.shared;
        NearCacheStats {
            entries: s.entries.len(),
            bytes: s.bytes.load(Ordering::Relaxed),
            connected: s.up.load(Ordering::Acquire),
            misses: s.misses.load(Ordering::Relaxed),
            bypassed: s.bypassed.load(Ordering::Relaxed),
            invalidations: s.invalidations.load(Ordering::Relaxed),
            flushes: s.flushes.load(Ordering::Relaxed),
        }
    }

    /// Start listening now (otherwise the first store call does), and wait up to `timeout` for
    /// the announcement channel: `true` once the cache is in use. For a readiness probe, or a
    /// test that must see the cache at work from its first request.
    pub async fn wait_connected(&self, timeout: std::time::Duration) -> bool {
        self.start();
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.shared.up.load(Ordering::Acquire) {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        true
    }

    /// Start the store's listener, once, from inside the runtime.
    fn start(&self) {
        if !self.started.load(Ordering::Relaxed)
            && !self.started.swap(true, Ordering::AcqRel)
            && self.store.announces_revocations()
        {
            let shared: Arc<dyn InvalidationListener> = Arc::clone(&self.shared) as _;
            let weak: Weak<dyn InvalidationListener> = Arc::downgrade(&shared);
            self.store.listen(weak);
        }
    }

    /// Before a revocation: be told when its announcement comes back through the channel.
    fn expect_echo(&self, what: &Invalidation) -> Option<tokio::sync::oneshot::Receiver<()>> {
        if !self.shared.up.load(Ordering::Acquire) {
            return None;
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut echoes = self.shared.echoes.lock().unwrap_or_else(|e| e.into_inner());
        echoes.push((what.clone(), tx));
        Some(rx)
    }

    /// After a revocation: drop it here at once, then, when the store announced it
    /// (`announced`), wait briefly for the announcement to come back. Every subscriber is sent
    /// an announcement in the same step, so once it is back here the other instances have been
    /// sent it too, before this revocation is acknowledged to the client.
    async fn revoked_here(
        &self,
        what: Invalidation,
        echo: Option<tokio::sync::oneshot::Receiver<()>>,
        announced: bool,
    ) {
        self.shared.apply(&what);
        let Some(echo) = echo else { return };
        if announced {
            let _ = tokio::time::timeout(ECHO_WAIT, echo).await;
        } else {
            drop(echo);
        }
        let mut echoes = self.shared.echoes.lock().unwrap_or_else(|e| e.into_inner());
        echoes.retain(|(_, tx)| !tx.is_closed());
    }

    fn cached(&self, hash: &TokenHash) -> Option<AccessTokenRecord> {
        if !self.shared.up.load(Ordering::Acquire) {
            return None;
        }
        let entry = self.shared.entries.get(hash)?;
        (entry.record.expires_at > self.clock.now()).then(|| entry.record.clone())
    }
}

#[async_trait]
impl TokenStore for NearCache {
    async fn create_grant(
        &self,
        grant: GrantRecord,
        access: NewAccessToken,
        refresh: Option<NewRefreshToken>,
    ) -> Result<(), StoreError> {
        self.start();
        self.store.create_grant(grant, access, refresh).await
    }

    async fn find_access_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<AccessTokenRecord>, StoreError> {
        self.start();
        if let Some(record) = self.cached(hash) {
            return Ok(Some(record));
        }
        let up = self.shared.up.load(Ordering::Acquire);
        let seen = self.shared.seq.load(Ordering::Acquire);
        let found = self.store.find_access_token(hash).await?;
        if up {
            self.shared.misses.fetch_add(1, Ordering::Relaxed);
            if let Some(record) = &found {
                self.shared.fill(seen, *hash, record, self.clock.now());
            }
        } else {
            self.shared.bypassed.fetch_add(1, Ordering::Relaxed);
        }
        Ok(found)
    }

    fn find_access_token_now(
        &self,
        hash: &TokenHash,
    ) -> Option<Result<Option<AccessTokenRecord>, StoreError>> {
        match self.cached(hash) {
            Some(record) => Some(Ok(Some(record))),
            None => self.store.find_access_token_now(hash),
        }
    }

    async fn find_refresh_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<RefreshTokenRecord>, StoreError> {
        self.start();
        self.store.find_refresh_token(hash).await
    }

    async fn rotate_refresh_token(
        &self,
        rotation: Rotation,
    ) -> Result<RotationOutcome, StoreError> {
        self.start();
        let replaced = rotation
            .previous_access
            .filter(|_| rotation.revoke_previous_access);
        let outcome = self.store.rotate_refresh_token(rotation).await?;
        // The replaced access token, here at once; the store announces the one it replaced,
        // to this instance too.
        if let (RotationOutcome::Rotated, Some(hash)) = (outcome, replaced) {
            self.shared.apply(&Invalidation::AccessToken(hash));
        }
        Ok(outcome)
    }

    async fn revoke_access_token(&self, hash: &TokenHash) -> Result<bool, StoreError> {
        self.start();
        let what = Invalidation::AccessToken(*hash);
        let echo = self.expect_echo(&what);
        let revoked = self.store.revoke_access_token(hash).await?;
        self.revoked_here(what, echo, revoked).await;
        Ok(revoked)
    }

    async fn revoke_grant(&self, id: GrantId) -> Result<bool, StoreError> {
        self.start();
        let what = Invalidation::Grant(id);
        let echo = self.expect_echo(&what);
        let revoked = self.store.revoke_grant(id).await?;
        self.revoked_here(what, echo, revoked).await;
        Ok(revoked)
    }

    async fn revoke_grants(&self, filter: &GrantFilter) -> Result<u64, StoreError> {
        self.start();
        let what = match filter {
            GrantFilter::Subject(s) => Invalidation::Subject(s.clone()),
            GrantFilter::Client(c) => Invalidation::Client(c.clone()),
        };
        let echo = self.expect_echo(&what);
        let revoked = self.store.revoke_grants(filter).await?;
        self.revoked_here(what, echo, revoked > 0).await;
        Ok(revoked)
    }

    async fn create_code(&self, code: AuthorizationCodeRecord) -> Result<(), StoreError> {
        self.start();
        self.store.create_code(code).await
    }

    async fn find_code(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<AuthorizationCodeRecord>, StoreError> {
        self.store.find_code(hash).await
    }

    async fn redeem_code(
        &self,
        hash: &TokenHash,
        grant: GrantRecord,
        access: NewAccessToken,
        refresh: Option<NewRefreshToken>,
    ) -> Result<Redemption, StoreError> {
        self.start();
        self.store.redeem_code(hash, grant, access, refresh).await
    }

    async fn create_pending(&self, pending: PendingRequest) -> Result<(), StoreError> {
        self.store.create_pending(pending).await
    }

    async fn find_pending(&self, hash: &TokenHash) -> Result<Option<PendingRequest>, StoreError> {
        self.store.find_pending(hash).await
    }

    async fn take_pending(&self, hash: &TokenHash) -> Result<Option<PendingRequest>, StoreError> {
        self.store.take_pending(hash).await
    }

    async fn purge_expired(&self, now: UnixTime) -> Result<u64, StoreError> {
        self.start();
        self.store.purge_expired(now).await
    }

    /// `false`: this cache is the store's listener; nothing above it may cache again.
    fn announces_revocations(&self) -> bool {
        false
    }
}
