//! A store wrapper that holds calls at a gate, for tests that need requests to overlap.

use std::sync::Arc;

use tower_oauth2::store::TokenStore;

/// A store that holds the first `n` refresh-token reads until all `n` have happened, so that
/// every concurrent request has seen the token active before any of them tries to rotate it:
/// the store's compare-and-set alone must then decide.
pub fn gate(inner: Arc<dyn TokenStore>, n: usize) -> Arc<dyn TokenStore> {
    Arc::new(Gate {
        inner,
        barrier: tokio::sync::Barrier::new(n),
        n,
        reads: 0.into(),
    })
}

struct Gate {
    inner: Arc<dyn TokenStore>,
    barrier: tokio::sync::Barrier,
    n: usize,
    reads: std::sync::atomic::AtomicUsize,
}

mod gate_impl {
    use async_trait::async_trait;
    use tower_oauth2::{
        GrantId, StoreError,
        store::{
            AccessTokenRecord, AuthorizationCodeRecord, GrantFilter, GrantRecord, NewAccessToken,
            NewRefreshToken, Redemption, RefreshTokenRecord, Rotation, RotationOutcome, TokenStore,
        },
        token::TokenHash,
    };

    #[async_trait]
    impl TokenStore for super::Gate {
        async fn create_grant(
            &self,
            g: GrantRecord,
            a: NewAccessToken,
            r: Option<NewRefreshToken>,
        ) -> Result<(), StoreError> {
            self.inner.create_grant(g, a, r).await
        }
        async fn find_access_token(
            &self,
            h: &TokenHash,
        ) -> Result<Option<AccessTokenRecord>, StoreError> {
            self.inner.find_access_token(h).await
        }
        async fn find_refresh_token(
            &self,
            h: &TokenHash,
        ) -> Result<Option<RefreshTokenRecord>, StoreError> {
            let found = self.inner.find_refresh_token(h).await;
            if self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < self.n {
                self.barrier.wait().await;
            }
            found
        }
        async fn rotate_refresh_token(&self, r: Rotation) -> Result<RotationOutcome, StoreError> {
            self.inner.rotate_refresh_token(r).await
        }
        async fn revoke_access_token(&self, h: &TokenHash) -> Result<bool, StoreError> {
            self.inner.revoke_access_token(h).await
        }
        async fn revoke_grant(&self, id: GrantId) -> Result<bool, StoreError> {
            self.inner.revoke_grant(id).await
        }
        async fn revoke_grants(&self, f: &GrantFilter) -> Result<u64, StoreError> {
            self.inner.revoke_grants(f).await
        }
        async fn create_code(&self, c: AuthorizationCodeRecord) -> Result<(), StoreError> {
            self.inner.create_code(c).await
        }
        async fn find_code(
            &self,
            h: &TokenHash,
        ) -> Result<Option<AuthorizationCodeRecord>, StoreError> {
            self.inner.find_code(h).await
        }
        async fn redeem_code(
            &self,
            h: &TokenHash,
            g: GrantRecord,
            a: NewAccessToken,
            r: Option<NewRefreshToken>,
        ) -> Result<Redemption, StoreError> {
            self.inner.redeem_code(h, g, a, r).await
        }
        async fn purge_expired(&self, now: u64) -> Result<u64, StoreError> {
            self.inner.purge_expired(now).await
        }
    }
}
