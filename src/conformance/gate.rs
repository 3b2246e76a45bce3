//! A store wrapper that makes concurrent requests overlap for certain.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use async_trait::async_trait;
use tokio::sync::Barrier;

use crate::{
    error::StoreError,
    store::{
        AccessTokenRecord, AuthorizationCodeRecord, GrantFilter, GrantRecord, NewAccessToken,
        NewRefreshToken, PendingRequest, Redemption, RefreshTokenRecord, Rotation, RotationOutcome,
        TokenStore,
    },
    token::{GrantId, TokenHash},
};

/// `inner`, except that the first `n` refresh-token reads wait until all `n` have happened: every
/// one of `n` concurrent requests has then seen the token active before any tries to use it, and
/// the store's compare-and-set alone must decide.
///
/// The races in [`cases`](super::cases) use it; it is public for a store's own race tests.
pub fn gate(inner: Arc<dyn TokenStore>, n: usize) -> Arc<dyn TokenStore> {
    Arc::new(Gate {
        inner,
        barrier: Barrier::new(n),
        n,
        reads: AtomicUsize::new(0),
    })
}

struct Gate {
    inner: Arc<dyn TokenStore>,
    barrier: Barrier,
    n: usize,
    reads: AtomicUsize,
}

#[async_trait]
impl TokenStore for Gate {
    async fn find_refresh_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<RefreshTokenRecord>, StoreError> {
        let found = self.inner.find_refresh_token(hash).await;
        if self.reads.fetch_add(1, Ordering::SeqCst) < self.n {
            self.barrier.wait().await;
        }
        found
    }

    // The rest is forwarded unchanged.

    async fn create_grant(
        &self,
        grant: GrantRecord,
        access: NewAccessToken,
        refresh: Option<NewRefreshToken>,
    ) -> Result<(), StoreError> {
        self.inner.create_grant(grant, access, refresh).await
    }
    async fn find_access_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<AccessTokenRecord>, StoreError> {
        self.inner.find_access_token(hash).await
    }
    async fn rotate_refresh_token(
        &self,
        rotation: Rotation,
    ) -> Result<RotationOutcome, StoreError> {
        self.inner.rotate_refresh_token(rotation).await
    }
    async fn revoke_access_token(&self, hash: &TokenHash) -> Result<bool, StoreError> {
        self.inner.revoke_access_token(hash).await
    }
    async fn revoke_grant(&self, id: GrantId) -> Result<bool, StoreError> {
        self.inner.revoke_grant(id).await
    }
    async fn revoke_grants(&self, filter: &GrantFilter) -> Result<u64, StoreError> {
        self.inner.revoke_grants(filter).await
    }
    async fn create_code(&self, code: AuthorizationCodeRecord) -> Result<(), StoreError> {
        self.inner.create_code(code).await
    }
    async fn find_code(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<AuthorizationCodeRecord>, StoreError> {
        self.inner.find_code(hash).await
    }
    async fn redeem_code(
        &self,
        hash: &TokenHash,
        grant: GrantRecord,
        access: NewAccessToken,
        refresh: Option<NewRefreshToken>,
    ) -> Result<Redemption, StoreError> {
        self.inner.redeem_code(hash, grant, access, refresh).await
    }
    async fn create_pending(&self, pending: PendingRequest) -> Result<(), StoreError> {
        self.inner.create_pending(pending).await
    }
    async fn find_pending(&self, hash: &TokenHash) -> Result<Option<PendingRequest>, StoreError> {
        self.inner.find_pending(hash).await
    }
    async fn take_pending(&self, hash: &TokenHash) -> Result<Option<PendingRequest>, StoreError> {
        self.inner.take_pending(hash).await
    }
    async fn purge_expired(&self, now: u64) -> Result<u64, StoreError> {
        self.inner.purge_expired(now).await
    }
}
