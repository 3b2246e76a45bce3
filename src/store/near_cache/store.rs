//! The cache as a store: access-token lookups answered from the entries, refresh tokens and
//! codes issued here remembered for a use in one round trip, revocations passed on and awaited
//! across instances. Short-lived records pass straight through.

use std::sync::atomic::Ordering;

use async_trait::async_trait;

use super::NearCache;
use crate::{
    clock::UnixTime,
    error::StoreError,
    store::{
        AccessTokenRecord, Announcements, AuthorizationCodeRecord, CodeStore, GrantFilter,
        GrantRecord, GrantStore, Invalidation, NewAccessToken, NewRefreshToken, PurgeStore,
        Redemption, RefreshTokenRecord, RefreshTokenState, Rotation, RotationOutcome, TokenStore,
        wrap::{Wraps, WrapsRecords},
    },
    token::{GrantId, TokenHash},
};

impl NearCache {
    /// Remember an active refresh token, within the entry bound (the lapsed ones go first: see
    /// [`REFRESH_MEMO_FOR`](super::REFRESH_MEMO_FOR)).
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
impl GrantStore for NearCache {
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
}

#[async_trait]
impl CodeStore for NearCache {
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
}

#[async_trait]
impl PurgeStore for NearCache {
    async fn purge_expired(&self, now: UnixTime) -> Result<u64, StoreError> {
        self.start();
        self.store.purge_expired(now).await
    }
}

impl Announcements for NearCache {
    /// `false`: this cache is the store's listener; nothing above it may cache again.
    fn announces_revocations(&self) -> bool {
        false
    }
}

impl Wraps for NearCache {
    type Inner = dyn TokenStore;
    fn wrapped(&self) -> &dyn TokenStore {
        &*self.store
    }
}

/// Short-lived records are single-use and not cached: straight to the shared store.
impl WrapsRecords for NearCache {}
