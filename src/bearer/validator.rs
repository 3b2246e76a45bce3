//! How the layer decides whether a token is good: the [`Validator`] trait and the default
//! [`LocalValidator`], which asks the authorization server's own store — after checking the
//! signature and issuer of a JWT access token, when the server signs them.

use std::sync::Arc;

use super::TokenInfo;
use crate::{
    clock::Clock,
    error::StoreError,
    future::BoxFuture,
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
    /// Good, but not for this resource: its audience does not name the one the validator
    /// protects (RFC 8707 §2, RFC 9068 §4).
    WrongAudience,
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
///
/// With [`with_signing_keys`](Self::with_signing_keys) (what
/// [`AuthServer::bearer_layer`](crate::AuthServer::bearer_layer) does when the server has
/// signing keys), a JWT access token must first carry a valid signature by one of the set's keys
/// and the server's `iss`; a token signed by a retired key is refused even while its record
/// lasts. The signature is checked once per token: a verified token's hash is cached until its
/// expiry (at most 100 000 entries). The store then decides, as for opaque tokens: revocation
/// and expiry are the record's.
#[derive(Clone)]
pub struct LocalValidator {
    store: Arc<dyn TokenStore>,
    clock: Arc<dyn Clock>,
    #[cfg(feature = "jwt")]
    signed: Option<Arc<Signed>>,
}

/// What a JWT access token must satisfy before the store is asked.
#[cfg(feature = "jwt")]
struct Signed {
    keys: crate::jose::Keyring,
    issuer: String,
    verified: super::verified::VerifiedCache<()>,
}

/// Most JWTs whose signature a [`LocalValidator`] remembers having checked.
#[cfg(feature = "jwt")]
const MAX_VERIFIED: usize = 100_000;

impl std::fmt::Debug for LocalValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalValidator").finish_non_exhaustive()
    }
}

impl LocalValidator {
    /// A validator over `store`, judging expiry by `clock`.
    pub fn new(store: Arc<dyn TokenStore>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            #[cfg(feature = "jwt")]
            signed: None,
        }
    }

    /// Also require a JWT access token (any token shaped as a JWS) to be signed by a key of
    /// `keys` and to name `issuer` as its `iss` (feature `jwt`).
    #[cfg(feature = "jwt")]
    #[must_use]
    pub fn with_signing_keys(mut self, keys: &crate::jose::KeySet, issuer: &str) -> Self {
        self.signed = Some(Arc::new(Signed {
            keys: keys.keyring(),
            issuer: issuer.to_owned(),
            verified: super::verified::VerifiedCache::new(MAX_VERIFIED),
        }));
        self
    }

    /// Whether `token` may go on to the store: not a JWT, or a JWT whose signature and issuer
    /// hold. Checked once per token, then remembered until its `exp`.
    #[cfg(feature = "jwt")]
    fn signature_holds(&self, token: &str, hash: &TokenHash) -> bool {
        let Some(signed) = &self.signed else {
            return true;
        };
        // Opaque tokens are base64url: never a dot.
        if !token.contains('.') {
            return true;
        }
        if signed.verified.get(hash).is_some() {
            return true;
        }
        match crate::jose::verify(token, &signed.keys, &signed.issuer, None) {
            Ok(claims) => {
                let now = self.clock.now();
                signed.verified.insert(*hash, (), claims.exp, now);
                true
            }
            Err(_) => false,
        }
    }

    #[cfg(not(feature = "jwt"))]
    fn signature_holds(&self, _token: &str, _hash: &TokenHash) -> bool {
        true
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
        if !self.signature_holds(token, &hash) {
            return Box::pin(std::future::ready(Ok(Validation::Invalid)));
        }
        let store = Arc::clone(&self.store);
        let clock = Arc::clone(&self.clock);
        Box::pin(async move { Ok(judge(store.find_access_token(&hash).await?, &*clock)) })
    }

    fn validate_now(&self, token: &str) -> Option<Result<Validation, StoreError>> {
        let hash = TokenHash::of(token);
        if !self.signature_holds(token, &hash) {
            return Some(Ok(Validation::Invalid));
        }
        let found = self.store.find_access_token_now(&hash)?;
        Some(found.map(|record| judge(record, &*self.clock)))
    }
}

/// Two validators in turn: a token is good only when `first` accepts it and then `then` does,
/// with `then`'s details; otherwise `first`'s verdict stands and `then` is not asked.
///
/// For revocation-sensitive routes of a resource server elsewhere: a
/// [`JwtValidator`](super::JwtValidator) first (a forged, expired or foreign token never costs a
/// call), then an [`IntrospectionValidator`](super::IntrospectionValidator), which sees a
/// revocation at the authorization server. Either one unable to decide is an `Err` (503).
///
/// ```no_run
/// use tower_oauth2::{BearerLayer, bearer::{Both, IntrospectionValidator, JwtValidator}};
///
/// # fn main() -> Result<(), tower_oauth2::ConfigError> {
/// let issuer = "http://localhost:3000";
/// let signed = JwtValidator::from_issuer(issuer, issuer).build()?;
/// let live = IntrospectionValidator::builder(format!("{issuer}/oauth/introspect"), "rs", "rs-secret")
///     .build()?;
/// let payments = BearerLayer::with_validator(Both::new(signed, live), "payments");
/// # let _ = payments;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Both<A, B> {
    first: Arc<A>,
    then: Arc<B>,
}

impl<A, B> Clone for Both<A, B> {
    fn clone(&self) -> Self {
        Self {
            first: Arc::clone(&self.first),
            then: Arc::clone(&self.then),
        }
    }
}

impl<A: Validator, B: Validator> Both<A, B> {
    /// `first`, then `then`.
    pub fn new(first: A, then: B) -> Self {
        Self {
            first: Arc::new(first),
            then: Arc::new(then),
        }
    }
}

impl<A: Validator, B: Validator> Validator for Both<A, B> {
    fn validate(&self, token: &str) -> BoxFuture<'static, Result<Validation, StoreError>> {
        let first = self.first.validate(token);
        let then = Arc::clone(&self.then);
        let token = token.to_owned();
        Box::pin(async move {
            match first.await? {
                Validation::Valid(_) => then.validate(&token).await,
                refused => Ok(refused),
            }
        })
    }

    fn validate_now(&self, token: &str) -> Option<Result<Validation, StoreError>> {
        match self.first.validate_now(token)? {
            Ok(Validation::Valid(_)) => self.then.validate_now(token),
            decided => Some(decided),
        }
    }
}
