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
    RotationOutcome, TOMBSTONE_SECS, TokenStore,
};
use crate::{
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

#[derive(Debug)]
struct Grant {
    record: GrantRecord,
    revoked: AtomicBool,
    generation: AtomicU32,
}

impl Grant {
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
    issued_at: UnixTime,
    expires_at: UnixTime,
}

struct RefreshEntry {
    grant: Arc<Grant>,
    issued_at: UnixTime,
    expires_at: UnixTime,
    generation: u32,
    access: Option<TokenHash>,
    state: RefreshTokenState,
}

struct Inner {
    grants: Map<GrantId, GrantSlot>,
    access: Map<TokenHash, AccessEntry>,
    refresh: Map<TokenHash, RefreshEntry>,
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
        self.inner.access.get(hash).and_then(|e| {
            (!e.grant.is_revoked()).then(|| AccessTokenRecord {
                grant: e.grant.record.clone(),
                scope: e.scope.clone(),
                issued_at: e.issued_at,
                expires_at: e.expires_at,
            })
        })
    }

    fn insert_access(&self, grant: &Arc<Grant>, access: NewAccessToken) {
        self.inner.access.insert(
            access.hash,
            AccessEntry {
                grant: Arc::clone(grant),
                scope: access.scope,
                issued_at: access.issued_at,
                expires_at: access.expires_at,
            },
        );
    }

    fn insert_refresh(&self, grant: &Arc<Grant>, refresh: NewRefreshToken, access: TokenHash) {
        self.inner.refresh.insert(
            refresh.hash,
            RefreshEntry {
                grant: Arc::clone(grant),
                issued_at: refresh.issued_at,
                expires_at: refresh.expires_at,
                generation: refresh.generation,
                access: Some(access),
                state: RefreshTokenState::Active,
            },
        );
    }

    /// Publish a grant in the grants map. Called only after its tokens hold references, so a
    /// grant in the map is unreferenced only once its tokens are gone — and the sweep may then
    /// drop it at once.
    fn publish_grant(&self, grant: &Arc<Grant>) {
        let id = grant.record.id;
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
        let grant = Arc::new(Grant {
            record: grant,
            revoked: AtomicBool::new(false),
            generation: AtomicU32::new(0),
        });
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
        let family_dead =
            |g: &Grant| g.is_revoked() || g.record.expires_at.is_some_and(|e| e <= now);
        self.access.retain(|_, e| {
            let keep = e.expires_at > now && !family_dead(&e.grant);
            removed += u64::from(!keep);
            keep
        });
        self.refresh.retain(|_, e| {
            let keep = e.expires_at > now && !family_dead(&e.grant);
            if keep {
                if let RefreshTokenState::Rotated { sealed, .. } = &mut e.state {
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
        Ok(self.inner.refresh.get(hash).and_then(|e| {
            (!e.grant.is_revoked()).then(|| RefreshTokenRecord {
                hash: *hash,
                grant: e.grant.record.clone(),
                issued_at: e.issued_at,
                expires_at: e.expires_at,
                generation: e.generation,
                family_generation: e.grant.generation.load(Ordering::Acquire),
                access_token: e.access,
                state: e.state.clone(),
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
            let Some(mut entry) = self.inner.refresh.get_mut(&presented) else {
                return Ok(RotationOutcome::Conflict);
            };
            if entry.grant.is_revoked()
                || entry.state != RefreshTokenState::Active
                || entry.generation != generation
                || entry.expires_at <= now
            {
                return Ok(RotationOutcome::Conflict);
            }
            let previous = entry.access;
            match &refresh {
                Some(next) => {
                    entry.state = RefreshTokenState::Rotated { at: now, sealed };
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
                self.inner.access.remove(&previous);
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
            .remove(hash)
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
                GrantFilter::Subject(s) => g.record.subject.as_deref() == Some(s.as_str()),
                GrantFilter::Client(c) => &*g.record.client_id == c.as_str(),
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
