//! A store wrapper that makes concurrent requests overlap for certain.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use tokio::sync::Barrier;

use crate::{
    error::StoreError,
    future::BoxFuture,
    store::{
        RefreshTokenRecord, TokenStore,
        wrap::{Wraps, WrapsAnnouncements, WrapsCodes, WrapsGrants, WrapsPurge, WrapsRecords},
    },
    token::TokenHash,
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

impl Wraps for Gate {
    type Inner = dyn TokenStore;
    fn wrapped(&self) -> &dyn TokenStore {
        &*self.inner
    }
}

impl WrapsGrants for Gate {
    fn find_refresh_token<'a>(
        &'a self,
        hash: &'a TokenHash,
    ) -> BoxFuture<'a, Result<Option<RefreshTokenRecord>, StoreError>> {
        Box::pin(async move {
            let found = self.wrapped().find_refresh_token(hash).await;
            if self.reads.fetch_add(1, Ordering::SeqCst) < self.n {
                self.barrier.wait().await;
            }
            found
        })
    }

    /// Through the gate too (a store's own `find_refresh_token_to_use` might answer from a
    /// memo and let a request past the barrier).
    fn find_refresh_token_to_use<'a>(
        &'a self,
        hash: &'a TokenHash,
    ) -> BoxFuture<'a, Result<Option<RefreshTokenRecord>, StoreError>> {
        WrapsGrants::find_refresh_token(self, hash)
    }
}

// The rest is passed through unchanged.
impl WrapsCodes for Gate {}
impl WrapsRecords for Gate {}
impl WrapsPurge for Gate {}
impl WrapsAnnouncements for Gate {}
