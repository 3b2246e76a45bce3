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
    InvalidationListener, NewAccessToken, NewRefreshToken, Outbox, PendingRequest, Redemption,
    RefreshTokenRecord, RefreshTokenState, Rotation, RotationOutcome, TokenStore,
};
use crate::{
    bounded::{Bounded, freed_little},
    clock::{Clock, UnixTime},
    error::StoreError,
    token::{GrantId, Route, TokenHash},
};

/// How big a [`NearCache`] may grow, and whether there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NearCacheConfig {
    /// Put a near-cache in front of a shared store that announces revocations (default `true`).
    pub enabled: bool,
    /// Most access tokens held (default 100 000). The refresh tokens and the codes an instance
    /// remembers (for a refresh or an exchange in one round trip) are bounded by it too, each;
    /// a remembered refresh token is forgotten a day after its issue if not used (its session
    /// likely abandoned), so that a full memo makes room for sessions in use.
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

/// Seconds a remembered refresh token stays remembered at most (a day). Full, the memo takes
/// no new token until one lapses (letting in new ones by evicting live ones would, with more
/// sessions in use than it holds, evict each before its next refresh, and hit none); so a
/// token whose session was abandoned must lapse well before its expiry (days, or weeks),
/// while a session that refreshes at least daily keeps its place, its successor taking the
/// slot its rotation frees.
const REFRESH_MEMO_FOR: UnixTime = 86_400;

/// The longest a revocation made here waits for its own announcement to come back (when no
/// other instance is known).
const ECHO_WAIT: std::time::Duration = std::time::Duration::from_millis(50);
/// The longest a revocation made here waits for the other instances to confirm they have
/// applied it; one that has not by then is forgotten until it is heard from again.
const BARRIER_WAIT: std::time::Duration = std::time::Duration::from_millis(100);
/// Another instance is known while it has been heard from this recently (each says hello every
/// second).
const PEER_TTL: std::time::Duration = std::time::Duration::from_secs(3);

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
    /// No purge of expired entries before this time (the last one freed too little).
    no_purge_until: AtomicU64,
    /// Revocations made here, waiting for their own announcement to come back.
    echoes: Mutex<Vec<(Invalidation, tokio::sync::oneshot::Sender<()>)>>,
    /// This instance, on the channel.
    id: u64,
    /// Where to publish, while the channel is up.
    outbox: Mutex<Option<Outbox>>,
    /// The other instances on the channel, by id, with when each was last heard from.
    peers: Mutex<HashMap<u64, std::time::Instant>>,
    /// Revocations made here, by barrier number, with the instances yet to confirm them.
    barriers: Mutex<HashMap<u64, Barrier>>,
    next_barrier: AtomicU64,
    /// Active refresh tokens this instance issued or read, for a refresh in one round trip
    /// ([`TokenStore::find_refresh_token_to_use`]); a record is dropped when used or found stale.
    refresh: Bounded<TokenHash, RefreshTokenRecord>,
    /// Codes this instance issued, not yet redeemed here, for an exchange in one round trip
    /// ([`TokenStore::find_code_to_use`]).
    codes: Bounded<TokenHash, AuthorizationCodeRecord>,
}

/// A revocation made here, waiting for the other instances' confirmations.
struct Barrier {
    waiting: HashSet<u64>,
    done: Option<tokio::sync::oneshot::Sender<()>>,
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
        for hash in &expired {
            self.remove_entry(index, hash);
        }
        // A pass visits every entry: one that freed less than a tenth (everything live, or
        // entries expiring one at a time) is not repeated within the second, so the work per
        // miss stays constant.
        if freed_little(self.entries.len(), self.config.max_entries)
            || freed_little(self.bytes.load(Ordering::Relaxed), self.config.max_bytes)
        {
            self.no_purge_until.store(now + 1, Ordering::Relaxed);
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

/// The one route `what` is about, if it is about one (a token or a grant).
fn route_of(what: &Invalidation) -> Option<Route> {
    match what {
        Invalidation::AccessToken(hash) => hash.route(),
        Invalidation::Grant(id) => Some(id.route()),
        _ => None,
    }
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

impl Shared {
    fn publish(&self, message: String) -> bool {
        let outbox = self.outbox.lock().unwrap_or_else(|e| e.into_inner());
        outbox.as_ref().is_some_and(|o| o.publish(message))
    }

    /// Note that `peer` spoke; whether it was unknown until now.
    fn heard_from(&self, peer: u64) -> bool {
        if peer == self.id {
            return false;
        }
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        peers.insert(peer, std::time::Instant::now()).is_none()
    }

    /// A hello from `peer`: a newcomer learns of this instance at once, not at its next hello.
    fn greeted_by(&self, peer: u64) {
        if self.heard_from(peer) {
            self.publish(format!("~hi:{:x}", self.id));
        }
    }

    /// The instances' own messages, after the `~`: `hi:{id}` (every second), `m:{id}:{n}` (a
    /// barrier after revocation `n` of instance `id`), `ack:{id}:{n}:{from}` (instance `from`
    /// has applied everything up to that barrier). Ids are hex.
    fn control(&self, message: &str) {
        let mut parts = message.split(':');
        let kind = parts.next();
        let mut id = || parts.next().and_then(|p| u64::from_str_radix(p, 16).ok());
        match (kind, id(), id(), id()) {
            (Some("hi"), Some(peer), None, None) => self.greeted_by(peer),
            (Some("m"), Some(origin), Some(n), None) if origin != self.id => {
                self.heard_from(origin);
                // Every announcement before the barrier has been applied: messages come in order.
                self.publish(format!("~ack:{origin:x}:{n:x}:{:x}", self.id));
            }
            (Some("ack"), Some(origin), Some(n), Some(from)) if origin == self.id => {
                self.heard_from(from);
                let mut barriers = self.barriers.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(b) = barriers.get_mut(&n) {
                    b.waiting.remove(&from);
                    if b.waiting.is_empty() {
                        if let Some(done) = b.done.take() {
                            let _ = done.send(());
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

impl InvalidationListener for Shared {
    fn connected(&self, outbox: Outbox) {
        let mut index = self.lock();
        // Whatever was missed while down: start empty.
        self.flush(&mut index);
        *self.outbox.lock().unwrap_or_else(|e| e.into_inner()) = Some(outbox);
        self.up.store(true, Ordering::Release);
        drop(index);
        self.publish(format!("~hi:{:x}", self.id));
        tracing::info!("near-cache: revocation announcements connected; cache in use");
    }

    fn lost(&self) {
        self.up.store(false, Ordering::Release);
        *self.outbox.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let mut index = self.lock();
        self.flush(&mut index);
        tracing::warn!("near-cache: revocation announcements lost; bypassing the cache");
    }

    fn message(&self, text: &str) {
        if let Some(control) = text.strip_prefix('~') {
            self.control(control);
            return;
        }
        let what = Invalidation::decode(text);
        self.apply(&what);
        let mut echoes = self.echoes.lock().unwrap_or_else(|e| e.into_inner());
        // A dropped sender wakes its waiter: dropping the matched ones is the signal.
        echoes.retain(|(waiting, _)| !echoes_back(waiting, &what));
    }

    fn tick(&self) {
        self.publish(format!("~hi:{:x}", self.id));
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        peers.retain(|_, seen| seen.elapsed() < PEER_TTL);
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
/// **The guarantee:** a revocation is honoured at once by the instance that made it, and by
/// every other instance whose channel is up before the revocation call returns. The revoking
/// instance publishes a barrier after the revocation and waits until each instance it has heard
/// from in the last 3 s confirms it; announcements arrive in order, so a confirmation means the
/// revocation was applied there. The wait is bounded (100 ms); an instance that does not
/// confirm in time is forgotten until it speaks again (a crashed one costs one revocation that
/// wait). With no other instance known it waits (up to 50 ms) for its own announcement to come
/// back. An instance whose channel is down serves from the store. A store outage stays a 503,
/// as without the cache.
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
        let max = config.max_entries;
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
                id: {
                    use rand::RngCore;
                    rand::rng().next_u64()
                },
                outbox: Mutex::new(None),
                peers: Mutex::new(HashMap::new()),
                barriers: Mutex::new(HashMap::new()),
                next_barrier: AtomicU64::new(0),
                refresh: Bounded::new(max, |r| {
                    r.expires_at
                        .min(r.issued_at.saturating_add(REFRESH_MEMO_FOR))
                }),
                codes: Bounded::new(max, |c| c.expires_at),
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

    /// After a revocation: drop it here at once; then, when the store announced it
    /// (`announced`), make sure the other instances have applied it before returning. Each
    /// known instance confirms a barrier published after the revocation — announcements come
    /// in order, so a confirmation means the revocation was applied there (up to 100 ms; one
    /// that does not answer is forgotten until heard from again). With no other instance known,
    /// wait (up to 50 ms) for the announcement to come back here.
    async fn revoked_here(
        &self,
        what: Invalidation,
        echo: Option<tokio::sync::oneshot::Receiver<()>>,
        announced: bool,
    ) {
        self.shared.apply(&what);
        let Some(echo) = echo else { return };
        if announced && !self.barrier(&what).await {
            let _ = tokio::time::timeout(ECHO_WAIT, echo).await;
        } else {
            drop(echo);
        }
        let mut echoes = self.shared.echoes.lock().unwrap_or_else(|e| e.into_inner());
        echoes.retain(|(_, tx)| !tx.is_closed());
    }

    /// Wait for every known instance to confirm a barrier published behind `what`'s
    /// announcement; `false` when none is known (or the barrier cannot be published). On a store
    /// with a channel per route the barrier goes on `what`'s route's channel, or, for what spans
    /// routes (a user's or a client's grants), on every lane: one per server.
    async fn barrier(&self, what: &Invalidation) -> bool {
        let s = &self.shared;
        let waiting: HashSet<u64> = {
            let peers = s.peers.lock().unwrap_or_else(|e| e.into_inner());
            peers
                .iter()
                .filter(|(_, seen)| seen.elapsed() < PEER_TTL)
                .map(|(id, _)| *id)
                .collect()
        };
        if waiting.is_empty() {
            return false;
        }
        let Some(outbox) = s.outbox.lock().unwrap_or_else(|e| e.into_inner()).clone() else {
            return false;
        };
        let routes: Vec<Option<Route>> = match (route_of(what), outbox.lanes()) {
            (_, []) => vec![None],
            (Some(route), _) => vec![Some(route)],
            (None, lanes) => lanes.iter().copied().map(Some).collect(),
        };
        let mut numbers = Vec::with_capacity(routes.len());
        let mut done = Vec::with_capacity(routes.len());
        let mut published = true;
        for route in routes {
            let n = s.next_barrier.fetch_add(1, Ordering::Relaxed);
            let (tx, rx) = tokio::sync::oneshot::channel();
            s.barriers.lock().unwrap_or_else(|e| e.into_inner()).insert(
                n,
                Barrier {
                    waiting: waiting.clone(),
                    done: Some(tx),
                },
            );
            numbers.push(n);
            done.push(rx);
            published &= outbox.publish_on(route, format!("~m:{:x}:{n:x}", s.id));
        }
        if published {
            let deadline = tokio::time::Instant::now() + BARRIER_WAIT;
            for rx in done {
                let _ = tokio::time::timeout_at(deadline, rx).await;
            }
        }
        let silent: HashSet<u64> = {
            let mut barriers = s.barriers.lock().unwrap_or_else(|e| e.into_inner());
            numbers
                .iter()
                .filter_map(|n| barriers.remove(n))
                .flat_map(|b| b.waiting)
                .collect()
        };
        if !silent.is_empty() {
            tracing::warn!(
                instances = silent.len(),
                "near-cache: instances did not confirm a revocation in time; forgotten until heard from"
            );
            let mut peers = s.peers.lock().unwrap_or_else(|e| e.into_inner());
            for id in &silent {
                peers.remove(id);
            }
        }
        published
    }

    /// Remember an active refresh token, within the entry bound (the lapsed ones go first: see
    /// [`REFRESH_MEMO_FOR`]).
    fn remember_refresh(&self, record: RefreshTokenRecord) {
        self.shared
            .refresh
            .insert(record.hash, record, self.clock.now());
    }

    /// A new active refresh token of `grant`, issued with `access`.
    fn remember_new_refresh(&self, grant: GrantRecord, access: TokenHash, r: &NewRefreshToken) {
        self.remember_refresh(RefreshTokenRecord {
            hash: r.hash,
            grant,
            issued_at: r.issued_at,
            expires_at: r.expires_at,
            generation: r.generation,
            family_generation: r.generation,
            access_token: Some(access),
            state: RefreshTokenState::Active,
        });
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
        let remembered = refresh.clone().map(|r| (grant.clone(), access.hash, r));
        self.store.create_grant(grant, access, refresh).await?;
        if let Some((grant, access, r)) = remembered {
            self.remember_new_refresh(grant, access, &r);
        }
        Ok(())
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

    /// From what this instance knows of the token when it can (one round trip for the
    /// refresh: the rotation's compare-and-set), else from the store.
    async fn find_refresh_token_to_use(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<RefreshTokenRecord>, StoreError> {
        self.start();
        if let Some(known) = self.shared.refresh.get(hash) {
            return Ok(Some(known.clone()));
        }
        let found = self.store.find_refresh_token(hash).await?;
        if let Some(r) = found
            .as_ref()
            .filter(|r| r.state == RefreshTokenState::Active)
        {
            self.remember_refresh(r.clone());
        }
        Ok(found)
    }

    async fn rotate_refresh_token(
        &self,
        rotation: Rotation,
    ) -> Result<RotationOutcome, StoreError> {
        self.start();
        // A grant's access tokens are on its route, which the barrier follows.
        let replaced = rotation
            .previous_access
            .filter(|_| rotation.revoke_previous_access)
            .map(|h| h.routed(rotation.grant.route()));
        let echo = replaced.and_then(|h| self.expect_echo(&Invalidation::AccessToken(h)));
        let (presented, access, successor) = (
            rotation.presented,
            rotation.access.hash,
            rotation.refresh.clone(),
        );
        let outcome = self.store.rotate_refresh_token(rotation).await;
        // What this instance knew of the presented token is used up (rotated) or stale
        // (conflict, or an error that leaves its state unknown).
        let known = self.shared.refresh.remove(&presented);
        let outcome = outcome?;
        if let (RotationOutcome::Rotated, Some(mut known)) = (outcome, known) {
            match successor {
                Some(next) => self.remember_new_refresh(known.grant, access, &next),
                None => {
                    // Rotation off: the same token stays active, now with this access token.
                    known.access_token = Some(access);
                    self.remember_refresh(known);
                }
            }
        }
        // The replaced access token (`on_refresh`), here at once and, like any revocation, on
        // the other instances before the new pair is returned.
        if let Some(hash) = replaced {
            let rotated = outcome == RotationOutcome::Rotated;
            self.revoked_here(Invalidation::AccessToken(hash), echo, rotated)
                .await;
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
        let kept = code.clone();
        self.store.create_code(code).await?;
        self.shared.codes.insert(kept.hash, kept, self.clock.now());
        Ok(())
    }

    async fn find_code(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<AuthorizationCodeRecord>, StoreError> {
        self.store.find_code(hash).await
    }

    async fn find_code_to_use(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<AuthorizationCodeRecord>, StoreError> {
        // Unredeemed as far as this instance knows: the redemption checks it in the store.
        if let Some(code) = self.shared.codes.get(hash) {
            return Ok(Some(code.clone()));
        }
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
        let remembered = refresh.clone().map(|r| (grant.clone(), access.hash, r));
        // Used up (or its state unknown after an error): the next exchange reads the store.
        self.shared.codes.remove(hash);
        let redemption = self.store.redeem_code(hash, grant, access, refresh).await?;
        if let (Redemption::Redeemed, Some((grant, access, r))) = (redemption, remembered) {
            self.remember_new_refresh(grant, access, &r);
        }
        Ok(redemption)
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

#[cfg(test)]
mod tests {
    use std::sync::Weak;

    use super::*;
    use crate::{
        client::GrantType,
        clock::ManualClock,
        scope::Scope,
        store::{MemoryStore, Outgoing},
        token::{self, SecretToken},
    };

    const NOW: u64 = 1_700_000_000;

    /// A memory store that "announces": the test plays the channel, and can hold a lookup
    /// between its read and its return.
    #[derive(Default)]
    struct Announcing {
        memory: MemoryStore,
        listener: Mutex<Option<Weak<dyn InvalidationListener>>>,
        /// While set, a lookup waits after reading until it is notified.
        hold: Mutex<Option<Arc<tokio::sync::Notify>>>,
        /// Where revocations are announced, when several instances share this store.
        bus: Option<Arc<Bus>>,
        /// Refresh-token reads that reached the store.
        refresh_reads: AtomicUsize,
        /// Code reads that reached the store.
        code_reads: AtomicUsize,
    }

    impl Announcing {
        fn listener(&self) -> Arc<dyn InvalidationListener> {
            let l = self.listener.lock().unwrap();
            l.as_ref().and_then(Weak::upgrade).expect("listening")
        }
    }

    #[async_trait]
    impl TokenStore for Announcing {
        async fn create_grant(
            &self,
            g: GrantRecord,
            a: NewAccessToken,
            r: Option<NewRefreshToken>,
        ) -> Result<(), StoreError> {
            self.memory.create_grant(g, a, r).await
        }
        async fn find_access_token(
            &self,
            h: &TokenHash,
        ) -> Result<Option<AccessTokenRecord>, StoreError> {
            let found = self.memory.find_access_token(h).await;
            let hold = self.hold.lock().unwrap().clone();
            if let Some(n) = hold {
                n.notified().await;
            }
            found
        }
        async fn find_refresh_token(
            &self,
            h: &TokenHash,
        ) -> Result<Option<RefreshTokenRecord>, StoreError> {
            self.refresh_reads.fetch_add(1, Ordering::SeqCst);
            self.memory.find_refresh_token(h).await
        }
        async fn rotate_refresh_token(&self, r: Rotation) -> Result<RotationOutcome, StoreError> {
            self.memory.rotate_refresh_token(r).await
        }
        async fn revoke_access_token(&self, h: &TokenHash) -> Result<bool, StoreError> {
            let revoked = self.memory.revoke_access_token(h).await?;
            if let (true, Some(bus)) = (revoked, &self.bus) {
                bus.send(Invalidation::AccessToken(*h).encode());
            }
            Ok(revoked)
        }
        async fn revoke_grant(&self, id: GrantId) -> Result<bool, StoreError> {
            self.memory.revoke_grant(id).await
        }
        async fn revoke_grants(&self, f: &GrantFilter) -> Result<u64, StoreError> {
            self.memory.revoke_grants(f).await
        }
        async fn create_code(&self, c: AuthorizationCodeRecord) -> Result<(), StoreError> {
            self.memory.create_code(c).await
        }
        async fn find_code(
            &self,
            h: &TokenHash,
        ) -> Result<Option<AuthorizationCodeRecord>, StoreError> {
            self.code_reads.fetch_add(1, Ordering::SeqCst);
            self.memory.find_code(h).await
        }
        async fn redeem_code(
            &self,
            h: &TokenHash,
            g: GrantRecord,
            a: NewAccessToken,
            r: Option<NewRefreshToken>,
        ) -> Result<Redemption, StoreError> {
            self.memory.redeem_code(h, g, a, r).await
        }
        async fn create_pending(&self, p: PendingRequest) -> Result<(), StoreError> {
            self.memory.create_pending(p).await
        }
        async fn find_pending(&self, h: &TokenHash) -> Result<Option<PendingRequest>, StoreError> {
            self.memory.find_pending(h).await
        }
        async fn take_pending(&self, h: &TokenHash) -> Result<Option<PendingRequest>, StoreError> {
            self.memory.take_pending(h).await
        }
        async fn purge_expired(&self, now: UnixTime) -> Result<u64, StoreError> {
            self.memory.purge_expired(now).await
        }
        fn announces_revocations(&self) -> bool {
            true
        }
        fn listen(&self, listener: Weak<dyn InvalidationListener>) {
            *self.listener.lock().unwrap() = Some(listener);
        }
    }

    struct Setup {
        store: Arc<Announcing>,
        cache: NearCache,
        clock: Arc<ManualClock>,
    }

    fn setup(config: NearCacheConfig) -> Setup {
        let store = Arc::new(Announcing::default());
        let clock = Arc::new(ManualClock::new(NOW));
        let cache = NearCache::new(
            Arc::clone(&store) as Arc<dyn TokenStore>,
            Arc::clone(&clock) as Arc<dyn Clock>,
            config,
        );
        cache.start();
        connect(&store);
        Setup {
            store,
            cache,
            clock,
        }
    }

    /// Bring the channel up: what the listener publishes comes back to it, as on a real one.
    fn connect(store: &Announcing) {
        let (outbox, mut outgoing) = Outbox::channel();
        let listener = store.listener();
        listener.connected(outbox);
        let weak = Arc::downgrade(&listener);
        tokio::spawn(async move {
            while let Some(Outgoing { text, .. }) = outgoing.recv().await {
                let Some(l) = weak.upgrade() else { return };
                l.message(&text);
            }
        });
    }

    fn announce(s: &Setup, what: Invalidation) {
        s.store.listener().message(&what.encode());
    }

    /// A password grant of `subject` for `client`, made at `at`.
    fn grant_for(subject: &str, client: &str, scope: &Scope, at: UnixTime) -> GrantRecord {
        GrantRecord {
            id: GrantId::generate(),
            client_id: Arc::from(client),
            subject: Some(Arc::from(subject)),
            scope: scope.clone(),
            grant_type: GrantType::Password,
            created_at: at,
            expires_at: None,
        }
    }

    /// A grant of `subject` for `client` with one access token living `secs`.
    async fn issue(s: &Setup, subject: &str, client: &str, secs: u64) -> (SecretToken, GrantId) {
        let at = token::generate();
        let scope = Scope::parse("read").unwrap();
        let grant = grant_for(subject, client, &scope, NOW);
        let id = grant.id;
        let access = NewAccessToken {
            hash: at.hash(),
            scope,
            issued_at: NOW,
            expires_at: NOW + secs,
        };
        s.cache.create_grant(grant, access, None).await.unwrap();
        (at, id)
    }

    async fn found(s: &Setup, at: &SecretToken) -> bool {
        s.cache
            .find_access_token(&at.hash())
            .await
            .unwrap()
            .is_some()
    }

    /// A grant with an access token and a refresh token living 8 days, issued at `at`; the
    /// refresh token's hash.
    async fn issue_refresh(s: &Setup, at: UnixTime) -> TokenHash {
        let scope = Scope::parse("read offline_access").unwrap();
        let grant = grant_for("alice", "app", &scope, at);
        let access = NewAccessToken {
            hash: token::generate().hash(),
            scope,
            issued_at: at,
            expires_at: at + 3600,
        };
        let refresh = NewRefreshToken {
            hash: token::generate().hash(),
            issued_at: at,
            expires_at: at + 8 * 86_400,
            generation: 0,
        };
        let hash = refresh.hash;
        s.cache
            .create_grant(grant, access, Some(refresh))
            .await
            .unwrap();
        hash
    }

    #[tokio::test]
    async fn a_full_refresh_memo_lets_new_sessions_in_once_unused_ones_lapse_after_a_day() {
        let s = setup(NearCacheConfig {
            max_entries: 2,
            ..NearCacheConfig::default()
        });
        let (a, b) = (issue_refresh(&s, NOW).await, issue_refresh(&s, NOW).await);
        let c = issue_refresh(&s, NOW + 10).await;
        let memo = &s.cache.shared.refresh;
        assert!(memo.get(&a).is_some() && memo.get(&b).is_some());
        assert!(
            memo.get(&c).is_none(),
            "full of live tokens: the third is not remembered"
        );
        // A day on, a and b (8-day tokens, never used) have lapsed from the memo, not from the
        // store: the next session is remembered.
        s.clock.advance(std::time::Duration::from_secs(86_400 + 1));
        let d = issue_refresh(&s, NOW + 86_401).await;
        assert!(memo.get(&d).is_some(), "room made by the lapsed ones");
        assert!(memo.get(&a).is_none() && memo.get(&b).is_none());
        // Forgotten here, still good in the store.
        let found = s
            .cache
            .find_refresh_token_to_use(&a)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.state, RefreshTokenState::Active);
    }

    /// Revoked behind the cache's back (no announcement): only a cached token still shows.
    async fn revoke_silently(s: &Setup, at: &SecretToken) {
        s.store
            .memory
            .revoke_access_token(&at.hash())
            .await
            .unwrap();
    }

    /// On a store with a channel per route, a barrier follows what it guards: a token's or a
    /// grant's on that route's channel, behind its announcement; a user's grants (any routes)
    /// on every lane.
    #[tokio::test]
    async fn barriers_travel_on_the_route_of_what_was_revoked() {
        let store = Arc::new(Announcing::default());
        let cache = NearCache::new(
            Arc::clone(&store) as Arc<dyn TokenStore>,
            Arc::new(ManualClock::new(NOW)) as Arc<dyn Clock>,
            NearCacheConfig::default(),
        );
        cache.start();
        let lanes = vec![Route::new(7).unwrap(), Route::new(0x800).unwrap()];
        let (outbox, mut outgoing) = Outbox::channel();
        let listener = store.listener();
        listener.connected(outbox.with_lanes(lanes.clone()));
        // Another instance is there; it never confirms, so each barrier waits out its bound and
        // forgets it, and it says hello again before each revocation.
        let hello = || listener.message("~hi:beef");
        hello();
        let barriers = |outgoing: &mut tokio::sync::mpsc::UnboundedReceiver<Outgoing>| {
            let mut routes = Vec::new();
            while let Ok(m) = outgoing.try_recv() {
                if m.text.starts_with("~m:") {
                    routes.push(m.route);
                }
            }
            routes
        };
        let id = GrantId::generate();
        assert!(!cache.revoke_grant(id).await.unwrap(), "nothing live");
        assert_eq!(
            barriers(&mut outgoing),
            [],
            "nothing revoked, nothing to guard"
        );
        let at = token::generate_for(id.route());
        let grant = GrantRecord {
            id: GrantId::generate_in(id.route()),
            client_id: Arc::from("app"),
            subject: Some(Arc::from("alice")),
            scope: Scope::parse("read").unwrap(),
            grant_type: GrantType::Password,
            created_at: NOW,
            expires_at: None,
        };
        let access = NewAccessToken {
            hash: at.hash(),
            scope: Scope::parse("read").unwrap(),
            issued_at: NOW,
            expires_at: NOW + 60,
        };
        cache
            .create_grant(grant.clone(), access, None)
            .await
            .unwrap();
        assert!(cache.revoke_access_token(&at.hash()).await.unwrap());
        assert_eq!(barriers(&mut outgoing), [Some(id.route())]);
        hello();
        assert!(cache.revoke_grant(grant.id).await.unwrap());
        assert_eq!(barriers(&mut outgoing), [Some(id.route())]);
        let (at2, _) = {
            let t = token::generate_for(id.route());
            let mut g = grant.clone();
            g.id = GrantId::generate_in(id.route());
            let a = NewAccessToken {
                hash: t.hash(),
                scope: Scope::parse("read").unwrap(),
                issued_at: NOW,
                expires_at: NOW + 60,
            };
            cache.create_grant(g.clone(), a, None).await.unwrap();
            (t, g.id)
        };
        hello();
        assert_eq!(
            cache
                .revoke_grants(&GrantFilter::Subject("alice".into()))
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            barriers(&mut outgoing),
            lanes.iter().copied().map(Some).collect::<Vec<_>>()
        );
        assert!(
            cache
                .find_access_token(&at2.hash())
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_hit_skips_the_store_and_an_announcement_ends_it() {
        let s = setup(NearCacheConfig::default());
        let (at, _) = issue(&s, "alice", "app", 3600).await;
        assert!(found(&s, &at).await);
        assert_eq!(s.cache.stats().entries, 1);
        revoke_silently(&s, &at).await;
        assert!(found(&s, &at).await, "served from the cache");
        assert!(s.cache.find_access_token_now(&at.hash()).is_some());
        announce(&s, Invalidation::AccessToken(at.hash()));
        assert!(!found(&s, &at).await);
        assert_eq!(s.cache.stats().entries, 0);
    }

    #[tokio::test]
    async fn grants_users_and_clients_are_dropped_through_the_indexes() {
        let s = setup(NearCacheConfig::default());
        let (a1, g1) = issue(&s, "alice", "app", 3600).await;
        let (a2, _) = issue(&s, "alice", "other", 3600).await;
        let (b1, _) = issue(&s, "bob", "app", 3600).await;
        let (b2, _) = issue(&s, "bob", "other", 3600).await;
        for t in [&a1, &a2, &b1, &b2] {
            assert!(found(&s, t).await);
            revoke_silently(&s, t).await;
        }
        announce(&s, Invalidation::Grant(g1));
        assert!(!found(&s, &a1).await);
        assert!(found(&s, &a2).await && found(&s, &b1).await);
        announce(&s, Invalidation::Subject("alice".into()));
        assert!(!found(&s, &a2).await);
        assert!(found(&s, &b1).await && found(&s, &b2).await);
        announce(&s, Invalidation::Client("app".into()));
        assert!(!found(&s, &b1).await);
        assert!(found(&s, &b2).await);
        s.store.listener().message("not an announcement");
        assert!(!found(&s, &b2).await, "anything unclear empties the cache");
        let stats = s.cache.stats();
        assert_eq!((stats.entries, stats.bytes), (0, 0));
    }

    #[tokio::test]
    async fn a_lookup_racing_a_revocation_is_not_cached() {
        let s = setup(NearCacheConfig::default());
        let (at, grant) = issue(&s, "alice", "app", 3600).await;
        let (other, _) = issue(&s, "bob", "app", 3600).await;
        let hold = Arc::new(tokio::sync::Notify::new());
        *s.store.hold.lock().unwrap() = Some(Arc::clone(&hold));
        // Read before the revocation, returned after its announcement.
        let cache = s.cache.clone();
        let hash = at.hash();
        let lookup = tokio::spawn(async move { cache.find_access_token(&hash).await });
        tokio::task::yield_now().await;
        announce(&s, Invalidation::Grant(grant));
        hold.notify_one();
        assert!(
            lookup.await.unwrap().unwrap().is_some(),
            "as the store read it"
        );
        assert_eq!(s.cache.stats().entries, 0, "but not cached");
        // An announcement about something else does not stop a fill.
        let cache = s.cache.clone();
        let hash = other.hash();
        let lookup = tokio::spawn(async move { cache.find_access_token(&hash).await });
        tokio::task::yield_now().await;
        announce(&s, Invalidation::Grant(grant));
        hold.notify_one();
        assert!(lookup.await.unwrap().unwrap().is_some());
        assert_eq!(s.cache.stats().entries, 1);
    }

    #[tokio::test]
    async fn a_lost_channel_empties_and_bypasses_until_it_is_back() {
        let s = setup(NearCacheConfig::default());
        let (at, _) = issue(&s, "alice", "app", 3600).await;
        assert!(found(&s, &at).await);
        s.store.listener().lost();
        let stats = s.cache.stats();
        assert_eq!((stats.entries, stats.connected), (0, false));
        assert!(s.cache.find_access_token_now(&at.hash()).is_none());
        revoke_silently(&s, &at).await;
        assert!(!found(&s, &at).await, "asked the store");
        assert_eq!(s.cache.stats().bypassed, 1);
        let (fresh, _) = issue(&s, "alice", "app", 3600).await;
        assert!(found(&s, &fresh).await);
        assert_eq!(s.cache.stats().entries, 0, "nothing cached while down");
        connect(&s.store);
        assert!(found(&s, &fresh).await);
        assert_eq!(s.cache.stats().entries, 1);
    }

    #[tokio::test]
    async fn bounded_in_entries_and_bytes_and_never_past_expiry() {
        let s = setup(NearCacheConfig {
            max_entries: 2,
            ..NearCacheConfig::default()
        });
        let (short, _) = issue(&s, "alice", "app", 10).await;
        let (long, _) = issue(&s, "alice", "app", 3600).await;
        let (third, _) = issue(&s, "bob", "app", 3600).await;
        for t in [&short, &long, &third] {
            assert!(found(&s, t).await);
        }
        assert_eq!(s.cache.stats().entries, 2, "the third found no room");
        s.clock.advance(std::time::Duration::from_secs(11));
        revoke_silently(&s, &short).await;
        assert!(!found(&s, &short).await, "an expired entry is not served");
        // Room again: the expired entry goes when a new one needs its place.
        assert!(found(&s, &third).await);
        assert_eq!(s.cache.stats().entries, 2);
        revoke_silently(&s, &third).await;
        assert!(found(&s, &third).await, "now cached");

        let s = setup(NearCacheConfig {
            max_bytes: 10,
            ..NearCacheConfig::default()
        });
        let (at, _) = issue(&s, "alice", "app", 3600).await;
        assert!(found(&s, &at).await);
        assert_eq!(s.cache.stats().entries, 0, "larger than the byte bound");
    }

    #[tokio::test]
    async fn a_revocation_here_waits_for_its_echo_and_counts_once() {
        let s = setup(NearCacheConfig::default());
        let (at, _) = issue(&s, "alice", "app", 3600).await;
        assert!(found(&s, &at).await);
        // The channel echoes the revocation shortly after the store call.
        let l = s.store.listener();
        let hash = at.hash();
        let echo = tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            l.message(&Invalidation::AccessToken(hash).encode());
        });
        let t = std::time::Instant::now();
        assert!(s.cache.revoke_access_token(&at.hash()).await.unwrap());
        assert!(
            t.elapsed() >= std::time::Duration::from_millis(4),
            "waited for the echo"
        );
        echo.await.unwrap();
        assert!(!found(&s, &at).await);
        // An unknown token is not announced: no wait.
        let t = std::time::Instant::now();
        let unknown = token::generate();
        assert!(!s.cache.revoke_access_token(&unknown.hash()).await.unwrap());
        assert!(t.elapsed() < ECHO_WAIT);
        assert!(s.cache.shared.echoes.lock().unwrap().is_empty());
    }

    /// Several instances on one channel: a bus that delivers every message (the store's
    /// announcements, the instances' own) to every member in one order, each member through a
    /// queue of its own that the test can hold (a slow instance).
    /// A member of the bus: its listener and its delivery queue.
    type Member = (
        Weak<dyn InvalidationListener>,
        tokio::sync::mpsc::UnboundedSender<String>,
    );

    #[derive(Default)]
    struct Bus {
        members: Mutex<Vec<Member>>,
    }

    impl Bus {
        fn send(&self, text: String) {
            for (_, queue) in self.members.lock().unwrap().iter() {
                let _ = queue.send(text.clone());
            }
        }

        /// Join `cache` (over a store on this bus); its deliveries wait while `gate` is closed.
        fn join(self: &Arc<Self>, cache: &NearCache, gate: Arc<tokio::sync::Semaphore>) {
            let listener: Arc<dyn InvalidationListener> = Arc::clone(&cache.shared) as _;
            let (queue, mut incoming) = tokio::sync::mpsc::unbounded_channel::<String>();
            self.members
                .lock()
                .unwrap()
                .push((Arc::downgrade(&listener), queue));
            let weak = Arc::downgrade(&listener);
            tokio::spawn(async move {
                while let Some(text) = incoming.recv().await {
                    let _permit = gate.acquire().await;
                    let Some(l) = weak.upgrade() else { return };
                    l.message(&text);
                }
            });
            let (outbox, mut outgoing) = Outbox::channel();
            listener.connected(outbox);
            let bus = Arc::clone(self);
            tokio::spawn(async move {
                while let Some(Outgoing { text, .. }) = outgoing.recv().await {
                    bus.send(text);
                }
            });
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_revocation_returns_only_once_every_known_instance_has_applied_it() {
        let bus = Arc::new(Bus::default());
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(NOW));
        let store: Arc<dyn TokenStore> = Arc::new(Announcing {
            bus: Some(Arc::clone(&bus)),
            ..Announcing::default()
        });
        let a = NearCache::new(
            Arc::clone(&store),
            Arc::clone(&clock),
            NearCacheConfig::default(),
        );
        let b = NearCache::new(Arc::clone(&store), clock, NearCacheConfig::default());
        let open = || Arc::new(tokio::sync::Semaphore::new(1 << 20));
        let b_gate = open();
        bus.join(&a, open());
        bus.join(&b, Arc::clone(&b_gate));
        // Each has heard the other's hello (the one who joined first answers the newcomer's).
        let known = async {
            while a.shared.peers.lock().unwrap().is_empty()
                || b.shared.peers.lock().unwrap().is_empty()
            {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(5), known)
            .await
            .expect("the instances learn of each other");
        let s = Setup {
            store: Arc::new(Announcing::default()),
            cache: a.clone(),
            clock: Arc::new(ManualClock::new(NOW)),
        };
        let (at, _) = issue(&s, "alice", "app", 3600).await;
        for cache in [&a, &b] {
            assert!(cache.find_access_token(&at.hash()).await.unwrap().is_some());
        }
        assert_eq!(b.stats().entries, 1);
        // B is slow: its deliveries wait. A's revocation must not return before B applied it.
        let held = b_gate.acquire_many(1 << 20).await.unwrap();
        let revoking = {
            let a = a.clone();
            let hash = at.hash();
            tokio::spawn(async move { a.revoke_access_token(&hash).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!revoking.is_finished(), "returned before B confirmed");
        assert_eq!(b.stats().entries, 1, "B has not heard yet");
        drop(held);
        assert!(revoking.await.unwrap().unwrap());
        assert_eq!(b.stats().entries, 0, "applied on B before A returned");
        assert!(b.find_access_token_now(&at.hash()).is_none());
    }

    #[tokio::test]
    async fn a_code_issued_here_is_exchanged_without_a_read_and_then_read_again() {
        let s = setup(NearCacheConfig::default());
        let reads = || s.store.code_reads.load(Ordering::SeqCst);
        let code = token::generate();
        let record = AuthorizationCodeRecord {
            hash: code.hash(),
            client_id: Arc::from("app"),
            subject: Arc::from("alice"),
            redirect_uri: None,
            scope: Scope::parse("read").unwrap(),
            code_challenge: None,
            issued_at: NOW,
            expires_at: NOW + 60,
            redeemed_by: None,
        };
        s.cache.create_code(record.clone()).await.unwrap();
        let found = s.cache.find_code_to_use(&code.hash()).await.unwrap();
        assert_eq!(found.map(|c| c.subject), Some(Arc::from("alice")));
        assert_eq!(reads(), 0, "known here: no read");
        let route = code.hash().route().unwrap();
        let grant = GrantRecord {
            id: GrantId::generate_in(route),
            client_id: Arc::from("app"),
            subject: Some(Arc::from("alice")),
            scope: Scope::parse("read").unwrap(),
            grant_type: GrantType::AuthorizationCode,
            created_at: NOW,
            expires_at: None,
        };
        let access = NewAccessToken {
            hash: token::generate_for(route).hash(),
            scope: Scope::parse("read").unwrap(),
            issued_at: NOW,
            expires_at: NOW + 60,
        };
        let redeemed = s
            .cache
            .redeem_code(&code.hash(), grant.clone(), access.clone(), None)
            .await
            .unwrap();
        assert_eq!(redeemed, Redemption::Redeemed);
        // Used up here: the next exchange asks the store, which says who redeemed it.
        let found = s.cache.find_code_to_use(&code.hash()).await.unwrap();
        assert_eq!(found.and_then(|c| c.redeemed_by), Some(grant.id));
        assert_eq!(reads(), 1);
        // A code issued elsewhere (not known here) is read.
        let other = token::generate();
        assert!(
            s.cache
                .find_code_to_use(&other.hash())
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(reads(), 2);
    }

    #[tokio::test]
    async fn a_refresh_token_issued_here_is_used_without_a_read_and_a_stale_one_is_read_again() {
        let s = setup(NearCacheConfig::default());
        let reads = || s.store.refresh_reads.load(Ordering::SeqCst);
        let scope = Scope::parse("read").unwrap();
        let grant = grant_for("alice", "app", &scope, NOW);
        let new_access = || NewAccessToken {
            hash: token::generate().hash(),
            scope: scope.clone(),
            issued_at: NOW,
            expires_at: NOW + 3600,
        };
        let new_refresh = |generation| NewRefreshToken {
            hash: token::generate().hash(),
            issued_at: NOW,
            expires_at: NOW + 86_400,
            generation,
        };
        let first = new_refresh(0);
        let access = new_access();
        s.cache
            .create_grant(grant.clone(), access.clone(), Some(first.clone()))
            .await
            .unwrap();
        // Known here: no read.
        let known = s
            .cache
            .find_refresh_token_to_use(&first.hash)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((known.grant.id, known.generation), (grant.id, 0));
        assert_eq!(known.access_token, Some(access.hash));
        assert_eq!(reads(), 0);
        // Introspection and revocation read the store, always.
        assert!(
            s.cache
                .find_refresh_token(&first.hash)
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(reads(), 1);
        // Rotated here: the successor is known, the presented token no longer.
        let next = new_refresh(1);
        let rotation = |presented, generation, refresh: Option<NewRefreshToken>| Rotation {
            presented,
            generation,
            access: new_access(),
            refresh,
            sealed: None,
            revoke_previous_access: false,
            previous_access: None,
            now: NOW,
            grant: GrantId::from_u128(1),
            client_id: Arc::from("app"),
            subject: None,
        };
        let outcome = s
            .cache
            .rotate_refresh_token(rotation(first.hash, 0, Some(next.clone())))
            .await
            .unwrap();
        assert_eq!(outcome, RotationOutcome::Rotated);
        let succ = s
            .cache
            .find_refresh_token_to_use(&next.hash)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((succ.generation, succ.grant.id), (1, grant.id));
        assert_eq!(reads(), 1);
        let old = s
            .cache
            .find_refresh_token_to_use(&first.hash)
            .await
            .unwrap()
            .unwrap();
        assert!(
            matches!(old.state, RefreshTokenState::Rotated { .. }),
            "read from the store"
        );
        assert_eq!(reads(), 2);
        // Rotated elsewhere (behind this instance's back): the compare-and-set refuses, the
        // record is dropped, and the next use reads the store.
        s.store
            .memory
            .rotate_refresh_token(rotation(next.hash, 1, Some(new_refresh(2))))
            .await
            .unwrap();
        let stale = s
            .cache
            .rotate_refresh_token(rotation(next.hash, 1, Some(new_refresh(2))))
            .await
            .unwrap();
        assert_eq!(stale, RotationOutcome::Conflict);
        let fresh = s
            .cache
            .find_refresh_token_to_use(&next.hash)
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(fresh.state, RefreshTokenState::Rotated { .. }));
        assert_eq!(reads(), 3);
    }
}
