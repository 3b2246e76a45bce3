//! How the layer decides whether a token is good: the [`Validator`] trait and the default
//! [`LocalValidator`], which asks the authorization server's own store.

use std::sync::Arc;

use super::TokenInfo;
use crate::{
    BoxFuture,
    clock::Clock,
    error::StoreError,
    store::{AccessTokenRecord, TokenStore},
    token::TokenHash,
};

/// The verdict on a presented token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Validation {
    /// Good: its details go into the request's extensions.
    Valid(TokenInfo),
    /// Known but past its expiry.
    Expired,
    /// Unknown or revoked.
    Invalid,
}

/// Validates bearer tokens for [`super::BearerLayer`].
///
/// The returned future owns what it needs (`'static`), so it can be held across the request.
/// An `Err` means the validator could not decide (store down) and is answered with 503.
pub trait Validator: Send + Sync + 'static {
    /// Judge `token`.
    fn validate(&self, token: &str) -> BoxFuture<'static, Result<Validation, StoreError>>;

    /// Judge `token` without waiting, when that is possible (a memory store, a cache hit): the
    /// layer's fast path, which allocates no future. `None` (the default) means "use
    /// [`validate`](Self::validate)".
    fn validate_now(&self, _token: &str) -> Option<Result<Validation, StoreError>> {
        None
    }
}

/// Validates against a [`TokenStore`], as the authorization server itself does.
#[derive(Clone)]
pub struct LocalValidator {
    store: Arc<dyn TokenStore>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for LocalValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalValidator").finish_non_exhaustive()
    }
}

impl LocalValidator {
    /// A validator over `store`, judging expiry by `clock`.
    pub fn new(store: Arc<dyn TokenStore>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }
}

fn judge(record: Option<AccessTokenRecord>, clock: &dyn Clock) -> Validation {
    match record {
        None => Validation::Invalid,
        Some(r) if r.expires_at <= clock.now() => Validation::Expired,
        Some(r) => Validation::Valid(TokenInfo::from(r)),
    }
}

impl Validator for LocalValidator {
    fn validate(&self, token: &str) -> BoxFuture<'static, Result<Validation, StoreError>> {
        // Hash now, so the future does not borrow the request.
        let hash = TokenHash::of(token);
        let store = Arc::clone(&self.store);
        let clock = Arc::clone(&self.clock);
        Box::pin(async move { Ok(judge(store.find_access_token(&hash).await?, &*clock)) })
    }

    fn validate_now(&self, token: &str) -> Option<Result<Validation, StoreError>> {
        let found = self.store.find_access_token_now(&TokenHash::of(token))?;
        Some(found.map(|record| judge(record, &*self.clock)))
    }
}
