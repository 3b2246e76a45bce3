//! Token storage: the [`TokenStore`] traits, their records, and the default [`MemoryStore`].
//!
//! A store keeps only [`TokenHash`](crate::token::TokenHash)es. Every access and refresh token belongs to a *grant* (its
//! family): the authorization it descends from, through every rotation. Revoking a grant revokes
//! the family at once, whatever the number of tokens.
//!
//! The protocol decisions (is this refresh token a replay? is it inside the grace window?) are
//! made once, in [`crate::grant`]; a store offers the few atomic primitives they need:
//!
//! | primitive | atomicity |
//! | --- | --- |
//! | [`GrantStore::rotate_refresh_token`] | compare-and-set: succeeds only if the presented token is still active and its family live; marks it rotated and adds its successors in one step |
//! | [`CodeStore::redeem_code`] | a code is redeemed at most once, and the grant it starts is created in the same step |
//! | [`GrantStore::revoke_grant`] | the whole family at once; a grant revoked before it is created stays revoked |
//!
//! A store is five concerns, each a trait of its own, and [`TokenStore`] is every store that has
//! all five:
//!
//! | concern | trait | |
//! | --- | --- | --- |
//! | grants and their tokens | [`GrantStore`] | dedicated atomic steps: creation, rotation with reuse detection, revocation |
//! | authorization codes | [`CodeStore`] | redeemed once, with the grant they start |
//! | short-lived records | [`RecordStore`] | one primitive (put, get, take, delete, counter) under every typed record ([`records`]) |
//! | purging | [`PurgeStore`] | what lapsed goes |
//! | announcements | [`Announcements`] | revocations told to every instance's near-cache |
//!
//! A store that wraps another implements only the concerns it changes ([`wrap`]).
//!
//! A store of your own proves that it keeps this contract by passing the same conformance suite
//! as the memory, Redis and PostgreSQL stores: `tower_oauth2::conformance` and
//! `token_store_conformance!`, with the `test-util` feature.
//!
//! ```
//! use tower_oauth2::store::{GrantStore, MemoryStore};
//! use tower_oauth2::token::TokenHash;
//!
//! # tokio_test_block_on(async {
//! let store = MemoryStore::new();
//! assert!(store.find_access_token(&TokenHash::of("nope")).await.unwrap().is_none());
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```
//!
#![doc = include_str!("../../docs/stores.md")]

mod announce;
#[cfg(any(feature = "redis", feature = "postgres"))]
mod backend;
mod codes;
mod grants;
mod memory;
mod near_cache;
#[cfg(feature = "postgres")]
mod postgres;
mod purge;
pub mod records;
#[cfg(feature = "redis")]
mod redis;
pub mod wrap;

#[cfg(feature = "postgres")]
pub use self::postgres::{PostgresStore, PostgresStoreBuilder};
#[cfg(feature = "redis")]
pub use self::redis::{RedisStore, RedisStoreBuilder};
pub use self::{
    announce::{Announcements, Invalidation, InvalidationListener, Outbox, Outgoing},
    codes::{AuthorizationCodeRecord, CodeChallengeMethod, CodeStore, Redemption},
    grants::{
        AccessTokenRecord, GrantFilter, GrantRecord, GrantStore, NewAccessToken, NewRefreshToken,
        RefreshTokenRecord, RefreshTokenState, Rotation, RotationOutcome, Sealed,
    },
    memory::{MemoryStore, StoreCounts},
    near_cache::{NearCache, NearCacheConfig, NearCacheStats},
    purge::PurgeStore,
    records::RecordStore,
};
/// Store failures, answered with 503 by the endpoints (also at the crate root).
pub use crate::error::StoreError;

#[cfg(any(feature = "redis", feature = "postgres"))]
pub(crate) use self::backend::{Source, spawn_listener, within};
#[cfg(any(feature = "redis", feature = "postgres"))]
pub(crate) use self::purge::{CODE_RETENTION_SECS, grant_purge_at};
pub(crate) use self::purge::{TOMBSTONE_SECS, code_purgeable, token_purgeable};

/// The store traits, to call a store's methods on a concrete store
/// (`use tower_oauth2::store::prelude::*;`). Through `Arc<dyn TokenStore>` they need no import.
pub mod prelude {
    pub use super::{Announcements, CodeStore, GrantStore, PurgeStore, RecordStore, TokenStore};
}

/// Storage for grants, tokens, authorization codes and short-lived records: every store that
/// has all five concerns. Implement the five traits (an empty `impl Announcements for MyStore {}`
/// for a store without an announcement channel); this one follows.
///
/// Implementations take `&self` and are shared behind an `Arc`; they must not serialise
/// unrelated requests behind one lock. Failures are [`StoreError`]s, which endpoints answer
/// with 503. A store of your own proves its contract with the conformance suite (`test-util`).
pub trait TokenStore: GrantStore + CodeStore + RecordStore + PurgeStore + Announcements {}

impl<T: GrantStore + CodeStore + RecordStore + PurgeStore + Announcements> TokenStore for T {}
