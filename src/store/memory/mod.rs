//! The default in-memory store: lock-sharded maps ([`dashmap`]), no global lock.

mod records;

use std::{
    hash::{BuildHasherDefault, Hasher},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use dashmap::{DashMap, mapref::entry::Entry};

use self::records::Stored;
use super::{
    AccessTokenRecord, Announcements, AuthorizationCodeRecord, CodeStore, GrantFilter, GrantRecord,
    GrantStore, NewAccessToken, NewRefreshToken, PurgeStore, Redemption, RefreshTokenRecord,
    RefreshTokenState, Rotation, RotationOutcome, Sealed, TOMBSTONE_SECS, code_purgeable,
    records::RecordKey, token_purgeable,
};
use crate::{
    client::GrantType,
    clock::UnixTime,
    error::StoreError,
    resource::Resources,
    scope::Scope,
    token::{GrantId, TokenHash},
};

/// Keys are SHA-256 outputs (or random ids): already uniform, so the hasher passes them through.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut buf = [0u8; 8];
            buf[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(buf);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }
}

type Map<K, V> = DashMap<K, V, BuildHasherDefault<PassThrough>>;

/// At least this many shards per map, whatever the core count: a sweep holds one shard's read
/// lock while it scans that shard, which delays writes to it (never reads), so shards are kept
/// small — at 1 M entries, under 16 000 each.
const MIN_SHARDS: usize = 64;

fn shard_amount() -> usize {
    (std::thread::available_parallelism().map_or(1, usize::from) * 4)
        .next_power_of_two()
        .max(MIN_SHARDS)
}

fn map<K: Eq + std::hash::Hash, V>() -> Map<K, V> {
    DashMap::with_hasher_and_shard_amount(BuildHasherDefault::default(), shard_amount())
}

/// Remove the entries for which `dead` holds, and count them: a scan under each shard's read
/// lock (lookups go on meanwhile), then one short write lock per removed entry, where `dead`
/// is asked again. No bearer check waits for a sweep longer than one removal.
fn sweep_map<K, V, S>(map: &DashMap<K, V, S>, dead: impl Fn(&V) -> bool) -> u64
where
    K: Copy + Eq + std::hash::Hash,
    S: std::hash::BuildHasher + Clone,
{
    let candidates: Vec<K> = map
        .iter()
        .filter(|e| dead(e.value()))
        .map(|e| *e.key())
        .collect();
    let removed = candidates
        .iter()
        .filter(|k| map.remove_if(k, |_, v| dead(v)).is_some())
        .count();
    u64::try_from(removed).unwrap_or(u64::MAX)
}

/// A token's map key: the first 128 bits of its SHA-256. Half the size of the full hash in every
/// table slot (tables at 1 M entries are about half empty, so each byte counts twice), while a
/// forged match still needs a 128-bit preimage. Compared in constant time.
#[derive(Clone, Copy)]
struct Key([u8; 16]);

impl From<&TokenHash> for Key {
    fn from(h: &TokenHash) -> Self {
        let mut k = [0u8; 16];
        k.copy_from_slice(&h.as_bytes()[..16]);
        Self(k)
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (u128::from_ne_bytes(self.0), u128::from_ne_bytes(other.0));
        std::hint::black_box(a ^ b) == 0
    }
}

impl Eq for Key {}

impl std::hash::Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let mut w = [0u8; 8];
        w.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(w));
    }
}

/// Timestamps are kept as `u32` seconds (until 2106; later ones saturate), again for slot size.
fn t32(t: UnixTime) -> u32 {
    u32::try_from(t).unwrap_or(u32::MAX)
}

/// A grant as kept in memory: the public [`GrantRecord`]'s fields in compact form (`u32`
/// times, `expires_at` 0 for none), the family's revocation flag and newest generation, and the
/// state of its one active refresh token.
///
/// A family has at most one active refresh token, so its state lives here, once per grant,
/// and the active-refresh table maps a token to its grant and nothing else: the table's slots
/// (about twice as many as entries, tables being powers of two) stay small.
#[derive(Debug)]
struct Grant {
    id: Id,
    client_id: Arc<str>,
    subject: Option<Arc<str>>,
    scope: Scope,
    resources: Resources,
    created_at: u32,
    expires_at: u32,
    grant_type: GrantType,
    revoked: AtomicBool,
    active: ActiveRefresh,
}

/// A grant id as two words: the same 128 bits as [`GrantId`] with 8-byte alignment, so neither
/// the grant nor the grants table's slots are padded to 16.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Id([u64; 2]);

impl From<GrantId> for Id {
    fn from(id: GrantId) -> Self {
        let v = id.as_u128();
        Self([v as u64, (v >> 64) as u64])
    }
}

impl From<Id> for GrantId {
    fn from(id: Id) -> Self {
        GrantId::from_u128(u128::from(id.0[0]) | (u128::from(id.0[1]) << 64))
    }
}

impl std::hash::Hash for Id {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0[0] ^ self.0[1]);
    }
}

/// The family's active refresh token: meaningful while that token is in the active table.
///
/// Atomics so the grant needs no lock of its own, but the fields are written together only
/// while holding the active token's entry in the active-refresh table (or before the grant is
/// shared), and read together only under that same lock, so a reader never sees half an update.
/// `generation` alone is also read without it (a rotated token's `family_generation`).
#[derive(Debug, Default)]
struct ActiveRefresh {
    issued_at: AtomicU32,
    expires_at: AtomicU32,
    /// The active token's generation, which is also the family's newest.
    generation: AtomicU32,
    /// The access token most recently issued with or under it; all zero for none (a SHA-256
    /// output of all zeros is not a practical possibility).
    /// (32-bit words: the grant then packs without padding.)
    access: [AtomicU32; 8],
}

/// A copy of [`ActiveRefresh`].
#[derive(Clone, Copy)]
struct Active {
    issued_at: u32,
    expires_at: u32,
    generation: u32,
    access: Option<TokenHash>,
}

impl ActiveRefresh {
    fn get(&self) -> Active {
        let mut bytes = [0u8; 32];
        for (chunk, word) in bytes.chunks_exact_mut(4).zip(&self.access) {
            chunk.copy_from_slice(&word.load(Ordering::Acquire).to_ne_bytes());
        }
        Active {
            issued_at: self.issued_at.load(Ordering::Acquire),
            expires_at: self.expires_at.load(Ordering::Acquire),
            generation: self.generation.load(Ordering::Acquire),
            access: (bytes != [0; 32]).then(|| TokenHash::from_bytes(bytes)),
        }
    }

    fn set_access(&self, access: Option<TokenHash>) {
        let bytes = access.map_or([0; 32], |h| *h.as_bytes());
        for (chunk, word) in bytes.chunks_exact(4).zip(&self.access) {
            let mut w = [0u8; 4];
            w.copy_from_slice(chunk);
            word.store(u32::from_ne_bytes(w), Ordering::Release);
        }
    }

    fn set(&self, a: Active) {
        self.issued_at.store(a.issued_at, Ordering::Release);
        self.expires_at.store(a.expires_at, Ordering::Release);
        self.generation.store(a.generation, Ordering::Release);
        self.set_access(a.access);
    }
}

impl Grant {
    fn new(r: GrantRecord) -> Self {
        Self {
            id: Id::from(r.id),
            client_id: r.client_id,
            subject: r.subject,
            scope: r.scope,
            resources: r.resources,
            created_at: t32(r.created_at),
            expires_at: r.expires_at.map_or(0, |e| t32(e).max(1)),
            grant_type: r.grant_type,
            revoked: AtomicBool::new(false),
            active: ActiveRefresh::default(),
        }
    }

    fn record(&self) -> GrantRecord {
        GrantRecord {
            id: GrantId::from(self.id),
            client_id: Arc::clone(&self.client_id),
            subject: self.subject.clone(),
            scope: self.scope.clone(),
            resources: self.resources.clone(),
            grant_type: self.grant_type,
            created_at: UnixTime::from(self.created_at),
            expires_at: (self.expires_at != 0).then_some(UnixTime::from(self.expires_at)),
        }
    }

    /// The family's absolute end, if it has one.
    fn ends_at(&self) -> Option<UnixTime> {
        (self.expires_at != 0).then(|| UnixTime::from(self.expires_at))
    }

    fn is_revoked(&self) -> bool {
        self.revoked.load(Ordering::Acquire)
    }

    fn family_generation(&self) -> u32 {
        self.active.generation.load(Ordering::Acquire)
    }
}

struct AccessEntry {
    grant: Arc<Grant>,
    /// `None` when the token carries the grant's whole scope and resources (the usual case); a
    /// narrower one (a refresh that asked for less) is kept out of line.
    narrowed: Option<Box<(Scope, Resources)>>,
    issued_at: u32,
    expires_at: u32,
}

impl AccessEntry {
    fn scope(&self) -> &Scope {
        self.narrowed
            .as_deref()
            .map_or(&self.grant.scope, |(s, _)| s)
    }

    fn audience(&self) -> &Resources {
        self.narrowed
            .as_deref()
            .map_or(&self.grant.resources, |(_, r)| r)
    }
}

/// A refresh token that has been used and replaced: kept until its own expiry, so that a
/// replay is recognised (and, inside the grace window, answered from the seal).
struct RotatedEntry {
    grant: Arc<Grant>,
    issued_at: u32,
    expires_at: u32,
    generation: u32,
    rotated_at: u32,
    sealed: Option<Box<Sealed>>,
    access: Option<TokenHash>,
}

struct Inner {
    /// Live grants by id: for revocation by id and by subject or client.
    grants: Map<Id, Arc<Grant>>,
    /// Grants revoked before they were created (a code's second use raced its first), with the
    /// time the first sweep saw them, so the store needs no clock of its own.
    tombstones: Map<Id, Option<UnixTime>>,
    access: Map<Key, AccessEntry>,
    /// Each family's active refresh token; its state is in the grant.
    refresh: Map<Key, Arc<Grant>>,
    rotated: Map<Key, RotatedEntry>,
    codes: Map<TokenHash, AuthorizationCodeRecord>,
    /// Short-lived records and counters ([`RecordStore`]), by kind and id hash.
    records: DashMap<RecordKey, Stored>,
    sweep_interval: u64,
    next_sweep: AtomicU64,
    sweeping: AtomicBool,
    sweeps: AtomicU64,
}

/// The in-memory [`TokenStore`](super::TokenStore): the default, for a single process.
///
/// Expired and revoked entries are swept every `sweep_interval` (default 60 s), triggered by
/// writes and run on tokio's blocking pool when a runtime is present, so memory stays bounded
/// under churn. [`PurgeStore::purge_expired`] sweeps on demand. Cloning shares the same maps.
///
/// Rotated refresh tokens are kept until their own expiry so that a late replay is still
/// recognised and revokes its family.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("counts", &self.counts())
            .finish()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

/// Entry counts of a [`MemoryStore`], for tests and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreCounts {
    /// Grants (live, revoked or tombstones) not yet swept.
    pub grants: usize,
    /// Access tokens not yet swept.
    pub access_tokens: usize,
    /// Refresh tokens (active or rotated) not yet swept.
    pub refresh_tokens: usize,
    /// Authorization codes not yet swept.
    pub codes: usize,
    /// Short-lived records and counters ([`RecordStore`](crate::store::records::RecordStore))
    /// not yet swept.
    pub records: usize,
}

impl MemoryStore {
    /// An empty store sweeping every 60 s.
    pub fn new() -> Self {
        Self::with_sweep_interval(Duration::from_secs(60))
    }

    /// An empty store sweeping at the given interval (at least one second).
    pub fn with_sweep_interval(interval: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                grants: map(),
                tombstones: map(),
                access: map(),
                refresh: map(),
                rotated: map(),
                codes: map(),
                records: DashMap::with_shard_amount(shard_amount()),
                sweep_interval: interval.as_secs().max(1),
                next_sweep: AtomicU64::new(0),
                sweeping: AtomicBool::new(false),
                sweeps: AtomicU64::new(0),
            }),
        }
    }

    /// How many entries each map holds.
    pub fn counts(&self) -> StoreCounts {
        let inner = &self.inner;
        StoreCounts {
            grants: inner.grants.len() + inner.tombstones.len(),
            access_tokens: inner.access.len(),
            refresh_tokens: inner.refresh.len() + inner.rotated.len(),
            codes: inner.codes.len(),
            records: inner.records.len(),
        }
    }

    /// How many sweeps have completed (automatic or through `purge_expired`).
    pub fn sweeps(&self) -> u64 {
        self.inner.sweeps.load(Ordering::Acquire)
    }

    /// Start a sweep if the interval has passed since the last one.
    fn maybe_sweep(&self, now: UnixTime) {
        let inner = &self.inner;
        let due = inner.next_sweep.load(Ordering::Relaxed);
        if now < due {
            return;
        }
        if inner
            .next_sweep
            .compare_exchange(
                due,
                now.saturating_add(inner.sweep_interval),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_err()
        {
            return;
        }
        if due == 0 {
            // The first write only arms the timer.
            return;
        }
        let inner = Arc::clone(&self.inner);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn_blocking(move || inner.sweep(now));
            }
            Err(_) => {
                inner.sweep(now);
            }
        }
    }

    fn access_record(&self, hash: &TokenHash) -> Option<AccessTokenRecord> {
        self.inner.access.get(&Key::from(hash)).and_then(|e| {
            (!e.grant.is_revoked()).then(|| AccessTokenRecord {
                grant: e.grant.record(),
                scope: e.scope().clone(),
                audience: e.audience().clone(),
                issued_at: UnixTime::from(e.issued_at),
                expires_at: UnixTime::from(e.expires_at),
            })
        })
    }

    fn insert_access(&self, grant: &Arc<Grant>, access: NewAccessToken) {
        let narrowed = (access.scope != grant.scope || access.audience != grant.resources)
            .then(|| Box::new((access.scope, access.audience)));
        self.inner.access.insert(
            Key::from(&access.hash),
            AccessEntry {
                grant: Arc::clone(grant),
                narrowed,
                issued_at: t32(access.issued_at),
                expires_at: t32(access.expires_at),
            },
        );
    }

    /// Publish a grant in the grants map. Called only after its tokens hold references, so a
    /// grant in the map is unreferenced only once its tokens are gone — and the sweep may then
    /// drop it at once.
    fn publish_grant(&self, grant: &Arc<Grant>) {
        // The entry lock (taken before the tombstones' lock, as in `revoke_grant`) makes
        // "revoked before created" and "created" mutually atomic.
        let slot = self.inner.grants.entry(grant.id);
        if self.inner.tombstones.contains_key(&grant.id) {
            grant.revoked.store(true, Ordering::Release);
        }
        slot.insert(Arc::clone(grant));
    }

    fn store_new_grant(
        &self,
        grant: GrantRecord,
        access: NewAccessToken,
        refresh: Option<NewRefreshToken>,
    ) {
        let now = grant.created_at;
        let grant = Arc::new(Grant::new(grant));
        // Tokens first, then the grant: see `publish_grant`. A revocation arriving in between
        // leaves a tombstone that `publish_grant` turns into a revoked flag on this very Arc.
        let access_hash = access.hash;
        self.insert_access(&grant, access);
        if let Some(refresh) = refresh {
            // Not shared yet: no lock needed.
            grant.active.set(Active {
                issued_at: t32(refresh.issued_at),
                expires_at: t32(refresh.expires_at),
                generation: refresh.generation,
                access: Some(access_hash),
            });
            self.inner
                .refresh
                .insert(Key::from(&refresh.hash), Arc::clone(&grant));
        }
        self.publish_grant(&grant);
        self.maybe_sweep(now);
    }
}

/// The one sweep running: clears the flag when the sweep ends, even by a panic (which would
/// otherwise stop sweeps for good).
struct SweepGuard<'a>(&'a AtomicBool);

impl<'a> SweepGuard<'a> {
    /// `None` when another sweep is running.
    fn enter(flag: &'a AtomicBool) -> Option<Self> {
        (!flag.swap(true, Ordering::AcqRel)).then_some(Self(flag))
    }
}

impl Drop for SweepGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Inner {
    fn sweep(&self, now: UnixTime) -> u64 {
        let Some(_sweeping) = SweepGuard::enter(&self.sweeping) else {
            return 0;
        };
        let purgeable = |expires_at: u32, g: &Grant| {
            token_purgeable(UnixTime::from(expires_at), g.is_revoked(), g.ends_at(), now)
        };
        let mut removed = sweep_map(&self.access, |e| purgeable(e.expires_at, &e.grant));
        // Asked again under the entry's write lock before it goes: see `ActiveRefresh`.
        removed += sweep_map(&self.refresh, |g| {
            purgeable(g.active.expires_at.load(Ordering::Acquire), g)
        });
        removed += sweep_map(&self.rotated, |e| purgeable(e.expires_at, &e.grant));
        // A kept rotated token's sealed response goes when its grace window closes.
        let unseal: Vec<Key> = self
            .rotated
            .iter()
            .filter(|e| e.sealed.as_ref().is_some_and(|s| s.until <= now))
            .map(|e| *e.key())
            .collect();
        for key in &unseal {
            if let Some(mut e) = self.rotated.get_mut(key) {
                if e.sealed.as_ref().is_some_and(|s| s.until <= now) {
                    e.sealed = None;
                }
            }
        }
        removed += sweep_map(&self.codes, |c| code_purgeable(c.expires_at, now));
        removed += sweep_map(&self.records, |r| r.expires_at() <= now);
        // Only the map holds it: no token refers to it any more (tokens are inserted before
        // their grant is published, and a grant never gains tokens once it has none).
        removed += sweep_map(&self.grants, |g| Arc::strong_count(g) == 1);
        self.tombstones.retain(|_, seen| {
            let keep = seen.get_or_insert(now).saturating_add(TOMBSTONE_SECS) > now;
            removed += u64::from(!keep);
            keep
        });
        self.sweeps.fetch_add(1, Ordering::AcqRel);
        tracing::debug!(removed, "memory store swept");
        removed
    }
}

#[async_trait]
impl GrantStore for MemoryStore {
    async fn create_grant(
        &self,
        grant: GrantRecord,
        access: NewAccessToken,
        refresh: Option<NewRefreshToken>,
    ) -> Result<(), StoreError> {
        self.store_new_grant(grant, access, refresh);
        Ok(())
    }

    async fn find_access_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<AccessTokenRecord>, StoreError> {
        Ok(self.access_record(hash))
    }

    fn find_access_token_now(
        &self,
        hash: &TokenHash,
    ) -> Option<Result<Option<AccessTokenRecord>, StoreError>> {
        Some(Ok(self.access_record(hash)))
    }

    async fn find_refresh_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<RefreshTokenRecord>, StoreError> {
        let key = Key::from(hash);
        // Active first: a rotation enters the token in `rotated` before it leaves `refresh`
        // (holding its entry throughout), so a token missing here is found there.
        if let Some(grant) = self.inner.refresh.get(&key) {
            if grant.is_revoked() {
                return Ok(None);
            }
            // Read under the entry's lock: see `ActiveRefresh`.
            let active = grant.active.get();
            return Ok(Some(RefreshTokenRecord {
                hash: *hash,
                grant: grant.record(),
                issued_at: UnixTime::from(active.issued_at),
                expires_at: UnixTime::from(active.expires_at),
                generation: active.generation,
                family_generation: active.generation,
                access_token: active.access,
                state: RefreshTokenState::Active,
            }));
        }
        Ok(self.inner.rotated.get(&key).and_then(|e| {
            (!e.grant.is_revoked()).then(|| RefreshTokenRecord {
                hash: *hash,
                grant: e.grant.record(),
                issued_at: UnixTime::from(e.issued_at),
                expires_at: UnixTime::from(e.expires_at),
                generation: e.generation,
                family_generation: e.grant.family_generation(),
                access_token: e.access,
                state: RefreshTokenState::Rotated {
                    at: UnixTime::from(e.rotated_at),
                    sealed: e.sealed.as_deref().cloned(),
                },
            })
        }))
    }

    async fn rotate_refresh_token(
        &self,
        rotation: Rotation,
    ) -> Result<RotationOutcome, StoreError> {
        let Rotation {
            presented,
            generation,
            access,
            refresh,
            sealed,
            revoke_previous_access,
            now,
            previous_access: _,
            grant: _,
            client_id: _,
            subject: _,
        } = rotation;
        let inner = &self.inner;
        // The presented token's entry stays locked until the rotation is recorded: that lock is
        // the compare-and-set.
        let Entry::Occupied(entry) = inner.refresh.entry(Key::from(&presented)) else {
            return Ok(RotationOutcome::Conflict);
        };
        let grant = Arc::clone(entry.get());
        // Read and written under the entry's lock: see `ActiveRefresh`.
        let active = grant.active.get();
        if grant.is_revoked()
            || active.generation != generation
            || UnixTime::from(active.expires_at) <= now
        {
            return Ok(RotationOutcome::Conflict);
        }
        let previous_access = active.access;
        match &refresh {
            Some(next) => {
                // Into `rotated` before leaving `refresh` (see `find_refresh_token`).
                inner.rotated.insert(
                    Key::from(&presented),
                    RotatedEntry {
                        grant: Arc::clone(&grant),
                        issued_at: active.issued_at,
                        expires_at: active.expires_at,
                        generation: active.generation,
                        rotated_at: t32(now),
                        sealed: sealed.map(Box::new),
                        access: active.access,
                    },
                );
                // Whoever sees the token rotated also sees the family's new generation.
                grant.active.set(Active {
                    issued_at: t32(next.issued_at),
                    expires_at: t32(next.expires_at),
                    generation: next.generation,
                    access: Some(access.hash),
                });
            }
            None => grant.active.set_access(Some(access.hash)),
        }
        let successor = refresh.map(|next| Key::from(&next.hash));
        // Rotating, the entry goes now and later requests conflict. Not rotating, it stays and
        // they follow in turn: it is held until this request's access token has replaced the
        // previous one, or the next request would revoke a token not yet inserted and leave
        // this one alive.
        let held = match successor {
            Some(_) => {
                entry.remove();
                None
            }
            None => Some(entry),
        };
        if revoke_previous_access {
            if let Some(previous) = previous_access {
                inner.access.remove(&Key::from(&previous));
            }
        }
        self.insert_access(&grant, access);
        drop(held);
        if let Some(key) = successor {
            // Nobody can present the successor before this response is sent.
            inner.refresh.insert(key, Arc::clone(&grant));
        }
        self.maybe_sweep(now);
        Ok(RotationOutcome::Rotated)
    }

    async fn revoke_access_token(&self, hash: &TokenHash) -> Result<bool, StoreError> {
        Ok(self
            .inner
            .access
            .remove(&Key::from(hash))
            .is_some_and(|(_, e)| !e.grant.is_revoked()))
    }

    async fn revoke_grant(&self, id: GrantId) -> Result<bool, StoreError> {
        match self.inner.grants.entry(Id::from(id)) {
            Entry::Occupied(slot) => Ok(!slot.get().revoked.swap(true, Ordering::AcqRel)),
            Entry::Vacant(_slot) => {
                // Not created yet (or already swept): remember, so a late create is born
                // revoked. The vacant entry stays locked meanwhile (see `publish_grant`).
                self.inner.tombstones.insert(Id::from(id), None);
                Ok(false)
            }
        }
    }

    async fn revoke_grants(&self, filter: &GrantFilter) -> Result<u64, StoreError> {
        let mut count = 0;
        for g in self.inner.grants.iter() {
            let matches = match filter {
                GrantFilter::Subject(s) => g.subject.as_deref() == Some(s.as_str()),
                GrantFilter::Client(c) => &*g.client_id == c.as_str(),
            };
            if matches && !g.revoked.swap(true, Ordering::AcqRel) {
                count += 1;
            }
        }
        Ok(count)
    }
}

#[async_trait]
impl CodeStore for MemoryStore {
    async fn create_code(&self, code: AuthorizationCodeRecord) -> Result<(), StoreError> {
        let now = code.issued_at;
        self.inner.codes.insert(code.hash, code);
        self.maybe_sweep(now);
        Ok(())
    }

    async fn find_code(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<AuthorizationCodeRecord>, StoreError> {
        Ok(self.inner.codes.get(hash).map(|c| c.clone()))
    }

    async fn redeem_code(
        &self,
        hash: &TokenHash,
        grant: GrantRecord,
        access: NewAccessToken,
        refresh: Option<NewRefreshToken>,
    ) -> Result<Redemption, StoreError> {
        {
            let Some(mut code) = self.inner.codes.get_mut(hash) else {
                return Ok(Redemption::Missing);
            };
            if let Some(first) = code.redeemed_by {
                return Ok(Redemption::AlreadyRedeemed(first));
            }
            code.redeemed_by = Some(grant.id);
        }
        self.store_new_grant(grant, access, refresh);
        Ok(Redemption::Redeemed)
    }
}

#[async_trait]
impl PurgeStore for MemoryStore {
    async fn purge_expired(&self, now: UnixTime) -> Result<u64, StoreError> {
        Ok(self.inner.sweep(now))
    }
}

impl Announcements for MemoryStore {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sweep_that_panics_does_not_stop_the_next() {
        let flag = AtomicBool::new(false);
        let crashed = std::panic::catch_unwind(|| {
            let _sweeping = SweepGuard::enter(&flag).expect("no sweep running");
            assert!(SweepGuard::enter(&flag).is_none(), "one sweep at a time");
            panic!("a sweep fails");
        });
        assert!(crashed.is_err());
        assert!(
            SweepGuard::enter(&flag).is_some(),
            "sweeps stopped for good"
        );
    }
}
