//! The default in-memory store: lock-sharded maps ([`dashmap`]), no global lock.

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

use super::{
    AccessTokenRecord, AuthorizationCodeRecord, CODE_RETENTION_SECS, GrantFilter, GrantRecord,
    NewAccessToken, NewRefreshToken, Redemption, RefreshTokenRecord, RefreshTokenState, Rotation,
    RotationOutcome, Sealed, TOMBSTONE_SECS, TokenStore,
};
use crate::{
    client::GrantType,
    clock::UnixTime,
    error::StoreError,
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
    fn write_u128(&mut self, n: u128) {
        self.0 ^= n as u64 ^ (n >> 64) as u64;
    }
}

type Map<K, V> = DashMap<K, V, BuildHasherDefault<PassThrough>>;

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

/// A refresh token's state, with the rarely present grace seal out of line.
#[derive(Clone)]
enum State {
    Active,
    Rotated {
        at: u32,
        sealed: Option<Box<Sealed>>,
    },
}

impl State {
    fn public(&self) -> RefreshTokenState {
        match self {
            Self::Active => RefreshTokenState::Active,
            Self::Rotated { at, sealed } => RefreshTokenState::Rotated {
                at: UnixTime::from(*at),
                sealed: sealed.as_deref().cloned(),
            },
        }
    }
}

/// A grant as kept in memory: the public [`GrantRecord`]'s fields in compact form (`u32`
/// times, `expires_at` 0 for none) plus the family's revocation flag and generation.
#[derive(Debug)]
struct Grant {
    id: GrantId,
    client_id: Arc<str>,
    subject: Option<Arc<str>>,
    scope: Scope,
    created_at: u32,
    expires_at: u32,
    grant_type: GrantType,
    revoked: AtomicBool,
    generation: AtomicU32,
}

impl Grant {
    fn new(r: GrantRecord) -> Self {
        Self {
            id: r.id,
            client_id: r.client_id,
            subject: r.subject,
            scope: r.scope,
            created_at: t32(r.created_at),
            expires_at: r.expires_at.map_or(0, |e| t32(e).max(1)),
            grant_type: r.grant_type,
            revoked: AtomicBool::new(false),
            generation: AtomicU32::new(0),
        }
    }

    fn record(&self) -> GrantRecord {
        GrantRecord {
            id: self.id,
            client_id: Arc::clone(&self.client_id),
            subject: self.subject.clone(),
            scope: self.scope.clone(),
            grant_type: self.grant_type,
            created_at: UnixTime::from(self.created_at),
            expires_at: (self.expires_at != 0).then_some(UnixTime::from(self.expires_at)),
        }
    }

    fn ended(&self, now: UnixTime) -> bool {
        self.expires_at != 0 && UnixTime::from(self.expires_at) <= now
    }

    fn is_revoked(&self) -> bool {
        self.revoked.load(Ordering::Acquire)
    }
}

enum GrantSlot {
    Live(Arc<Grant>),
    /// Revoked before it was created (a code's second use raced its first). The time is set by
    /// the first sweep that sees it, so the store needs no clock of its own.
    Tombstone(Option<UnixTime>),
}

struct AccessEntry {
    grant: Arc<Grant>,
    scope: Scope,
    issued_at: u32,
    expires_at: u32,
}

struct RefreshEntry {
    grant: Arc<Grant>,
    issued_at: u32,
    expires_at: u32,
    generation: u32,
    state: State,
    access: Option<TokenHash>,
}

struct Inner {
    grants: Map<GrantId, GrantSlot>,
    access: Map<Key, AccessEntry>,
    refresh: Map<Key, RefreshEntry>,
    codes: Map<TokenHash, AuthorizationCodeRecord>,
    sweep_interval: u64,
    next_sweep: AtomicU64,
    sweeping: AtomicBool,
    sweeps: AtomicU64,
}

/// The in-memory [`TokenStore`]: the default, for a single process.
///
/// Expired and revoked entries are swept every `sweep_interval` (default 60 s), triggered by
/// writes and run on tokio's blocking pool when a runtime is present, so memory stays bounded
/// under churn. [`TokenStore::purge_expired`] sweeps on demand. Cloning shares the same maps.
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
                grants: Map::default(),
                access: Map::default(),
                refresh: Map::default(),
                codes: Map::default(),
                sweep_interval: interval.as_secs().max(1),
                next_sweep: AtomicU64::new(0),
                sweeping: AtomicBool::new(false),
                sweeps: AtomicU64::new(0),
            }),
        }
    }

    /// How many entries each map holds.
    pub fn counts(&self) -> StoreCounts {
        StoreCounts {
            grants: self.inner.grants.len(),
            access_tokens: self.inner.access.len(),
            refresh_tokens: self.inner.refresh.len(),
            codes: self.inner.codes.len(),
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
                now + inner.sweep_interval,
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
                scope: e.scope.clone(),
                issued_at: UnixTime::from(e.issued_at),
                expires_at: UnixTime::from(e.expires_at),
            })
        })
    }

    fn insert_access(&self, grant: &Arc<Grant>, access: NewAccessToken) {
        self.inner.access.insert(
            Key::from(&access.hash),
            AccessEntry {
                grant: Arc::clone(grant),
                scope: access.scope,
                issued_at: t32(access.issued_at),
                expires_at: t32(access.expires_at),
            },
        );
    }

    fn insert_refresh(&self, grant: &Arc<Grant>, refresh: NewRefreshToken, access: TokenHash) {
        self.inner.refresh.insert(
            Key::from(&refresh.hash),
            RefreshEntry {
                grant: Arc::clone(grant),
                issued_at: t32(refresh.issued_at),
                expires_at: t32(refresh.expires_at),
                generation: refresh.generation,
                access: Some(access),
                state: State::Active,
            },
        );
    }

    /// Publish a grant in the grants map. Called only after its tokens hold references, so a
    /// grant in the map is unreferenced only once its tokens are gone — and the sweep may then
    /// drop it at once.
    fn publish_grant(&self, grant: &Arc<Grant>) {
        let id = grant.id;
        // The entry lock makes "revoked before created" and "created" mutually atomic.
        match self.inner.grants.entry(id) {
            Entry::Occupied(mut slot) => {
                if matches!(slot.get(), GrantSlot::Tombstone(_)) {
                    grant.revoked.store(true, Ordering::Release);
                }
                slot.insert(GrantSlot::Live(Arc::clone(grant)));
            }
            Entry::Vacant(slot) => {
                slot.insert(GrantSlot::Live(Arc::clone(grant)));
            }
        }
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
            self.insert_refresh(&grant, refresh, access_hash);
        }
        self.publish_grant(&grant);
        self.maybe_sweep(now);
    }
}

impl Inner {
    fn sweep(&self, now: UnixTime) -> u64 {
        if self.sweeping.swap(true, Ordering::AcqRel) {
            return 0;
        }
        let mut removed = 0u64;
        let family_dead = |g: &Grant| g.is_revoked() || g.ended(now);
        self.access.retain(|_, e| {
            let keep = UnixTime::from(e.expires_at) > now && !family_dead(&e.grant);
            removed += u64::from(!keep);
            keep
        });
        self.refresh.retain(|_, e| {
            let keep = UnixTime::from(e.expires_at) > now && !family_dead(&e.grant);
            if keep {
                if let State::Rotated { sealed, .. } = &mut e.state {
                    if sealed.as_ref().is_some_and(|s| s.until <= now) {
                        *sealed = None;
                    }
                }
            }
            removed += u64::from(!keep);
            keep
        });
        self.codes.retain(|_, c| {
            let keep = c.expires_at + CODE_RETENTION_SECS > now;
            removed += u64::from(!keep);
            keep
        });
        self.grants.retain(|_, slot| {
            let keep = match slot {
                // Only the map holds it: no token refers to it any more (tokens are inserted before
                // their grant is published, and a grant never gains tokens once it has none).
                GrantSlot::Live(g) => Arc::strong_count(g) > 1,
                GrantSlot::Tombstone(seen) => *seen.get_or_insert(now) + TOMBSTONE_SECS > now,
            };
            removed += u64::from(!keep);
            keep
        });
        self.sweeping.store(false, Ordering::Release);
        self.sweeps.fetch_add(1, Ordering::AcqRel);
        tracing::debug!(removed, "memory store swept");
        removed
    }
}

#[async_trait]
impl TokenStore for MemoryStore {
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
        Ok(self.inner.refresh.get(&Key::from(hash)).and_then(|e| {
            (!e.grant.is_revoked()).then(|| RefreshTokenRecord {
                hash: *hash,
                grant: e.grant.record(),
                issued_at: UnixTime::from(e.issued_at),
                expires_at: UnixTime::from(e.expires_at),
                generation: e.generation,
                family_generation: e.grant.generation.load(Ordering::Acquire),
                access_token: e.access,
                state: e.state.public(),
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
        } = rotation;
        let (grant, previous_access) = {
            let Some(mut entry) = self.inner.refresh.get_mut(&Key::from(&presented)) else {
                return Ok(RotationOutcome::Conflict);
            };
            if entry.grant.is_revoked()
                || !matches!(entry.state, State::Active)
                || entry.generation != generation
                || UnixTime::from(entry.expires_at) <= now
            {
                return Ok(RotationOutcome::Conflict);
            }
            let previous = entry.access;
            match &refresh {
                Some(next) => {
                    entry.state = State::Rotated {
                        at: t32(now),
                        sealed: sealed.map(Box::new),
                    };
                    // Bumped under the entry lock: whoever sees the token rotated also sees the
                    // family's new generation.
                    entry
                        .grant
                        .generation
                        .fetch_max(next.generation, Ordering::AcqRel);
                }
                None => entry.access = Some(access.hash),
            }
            (Arc::clone(&entry.grant), previous)
        };
        if revoke_previous_access {
            if let Some(previous) = previous_access {
                self.inner.access.remove(&Key::from(&previous));
            }
        }
        let access_hash = access.hash;
        self.insert_access(&grant, access);
        if let Some(next) = refresh {
            self.insert_refresh(&grant, next, access_hash);
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
        match self.inner.grants.entry(id) {
            Entry::Occupied(slot) => Ok(match slot.get() {
                GrantSlot::Live(g) => !g.revoked.swap(true, Ordering::AcqRel),
                GrantSlot::Tombstone(_) => false,
            }),
            Entry::Vacant(slot) => {
                // Not created yet (or already swept): remember, so a late create is born revoked.
                slot.insert(GrantSlot::Tombstone(None));
                Ok(false)
            }
        }
    }

    async fn revoke_grants(&self, filter: &GrantFilter) -> Result<u64, StoreError> {
        let mut count = 0;
        for slot in self.inner.grants.iter() {
            let GrantSlot::Live(g) = slot.value() else {
                continue;
            };
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

    async fn purge_expired(&self, now: UnixTime) -> Result<u64, StoreError> {
        Ok(self.inner.sweep(now))
    }
}
