//! The per-instance cache of access-token lookups in front of a shared store: [`NearCache`].

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
};

use dashmap::DashMap;

use super::{
    AccessTokenRecord, AuthorizationCodeRecord, Invalidation, InvalidationListener, Outbox,
    RefreshTokenRecord, TokenStore,
};
use crate::{
    bounded::Bounded,
    clock::{Clock, UnixTime},
    token::{GrantId, TokenHash},
};

mod barrier;
mod entries;
mod listener;
mod store;
#[cfg(test)]
mod tests;

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
    /// ([`GrantStore::find_refresh_token_to_use`](crate::store::GrantStore::find_refresh_token_to_use)); a record is dropped when used or found stale.
    refresh: Bounded<TokenHash, RefreshTokenRecord>,
    /// Codes this instance issued, not yet redeemed here, for an exchange in one round trip
    /// ([`CodeStore::find_code_to_use`](crate::store::CodeStore::find_code_to_use)).
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
        + record.grant.resources.as_str().len()
        + record.audience.as_str().len()
        // Index entries: the hash under its grant, the grant under its client and subject.
        + 32
        + 2 * 16
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
/// **Where the guarantee stops: a silent partition.** An instance whose channel dies without a
/// reset or a close (a dead link before any timeout) does not confirm, and the revocation
/// returns after the 100 ms bound; that instance notices by its heartbeat — a `PING` (Redis) or
/// a query (PostgreSQL) each second, answered within a second — so for up to about 2 s it may
/// still serve a token revoked elsewhere from its cache. Measured on loopback
/// (`near_cache::*_a_silent_partition_is_noticed_within_the_heartbeat`): 0.9 s after the
/// revocation was acknowledged on Redis, 1.4 s on PostgreSQL.
///
/// [`AuthServerBuilder`](crate::AuthServerBuilder) puts one in front of any store that
/// [announces revocations](super::Announcements::announces_revocations) (the Redis and PostgreSQL stores
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
    /// [announce revocations](super::Announcements::announces_revocations) it caches nothing.
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
}
