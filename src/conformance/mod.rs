//! The conformance suites every [`TokenStore`](crate::store::TokenStore) (and every
//! [`ClientRegistry`](crate::client::ClientRegistry)) must pass, for ones written outside this crate.
//! Requires the `test-util` feature.
//!
//! The memory, Redis and PostgreSQL stores run these very cases in this crate's tests. A store
//! of your own proves the same behaviours — rotation as a compare-and-set, replay revoking the
//! family, the grace window, single-use codes, bulk revocation, purging — by invoking
//! [`token_store_conformance!`](crate::token_store_conformance) in its tests with a function that
//! opens a fresh, empty store for each case:
//!
//! ```
//! use std::sync::Arc;
//! use tower_oauth2::store::{MemoryStore, TokenStore};
//!
//! /// A fresh store for the case `test` (use it as a key prefix or schema name to keep cases
//! /// apart); `None` skips the case, e.g. when a server is not running.
//! async fn open(test: &'static str) -> Option<Arc<dyn TokenStore>> {
//!     let _ = test;
//!     Some(Arc::new(MemoryStore::new()))
//! }
//!
//! tower_oauth2::token_store_conformance!(memory_store, open);
//! # fn main() {}
//! ```
//!
//! That defines a module `memory_store` with one `#[test]` per case in [`cases`], named after
//! it, so `cargo test memory_store::` runs them and a failure names the behaviour. Each test runs
//! on a multi-threaded tokio runtime of its own (cases race requests against each other), so
//! your store may spawn tasks and use tokio's I/O and timers. A case may also be called
//! directly: `tower_oauth2::conformance::cases::code_is_single_use(store).await`.
//!
//! A case builds an [`AuthServer`](crate::AuthServer) over the store, with demo clients and
//! users and a manual clock that starts at the real time (so stores that expire keys on their
//! own clock keep what a case wrote), and drives it through the token, revocation and
//! introspection endpoints and the bearer layer; a few call the trait directly for guarantees
//! the endpoints cannot reach. A store passes when it implements the contract documented on
//! [`TokenStore`](crate::store::TokenStore); nothing here depends on how it stores things.

pub mod cases;
mod gate;
mod harness;
pub mod registry;

pub use self::gate::gate;

use std::future::Future;

/// Run one case: open its store (or registry) with `open(test)` on a fresh multi-threaded
/// runtime, then run `case` on it; skip it (saying so on standard error) when `open` returns
/// `None`. What [`token_store_conformance!`](crate::token_store_conformance) and
/// [`client_registry_conformance!`](crate::client_registry_conformance) call for each test.
///
/// # Panics
/// When the case fails, or the runtime cannot be built.
pub fn run<T, O, OF, C, CF>(test: &'static str, open: O, case: C)
where
    O: FnOnce(&'static str) -> OF,
    OF: Future<Output = Option<T>>,
    C: FnOnce(T) -> CF,
    CF: Future<Output = ()>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a tokio runtime for the conformance case");
    runtime.block_on(async {
        match open(test).await {
            Some(subject) => case(subject).await,
            None => eprintln!("SKIPPED: {test}: nothing to run it on"),
        }
    });
}

/// Define a module of tests, one per [conformance case](crate::conformance::cases), for
/// the store that `$open` opens.
///
/// `$open` is a function (or closure) taking the test's name, `&'static str`, and returning a
/// future of `Option<Arc<dyn TokenStore>>`: a fresh, empty store for that test, or `None` to
/// skip it. The module `use`s everything in scope where the macro is invoked. See
/// [`conformance`](crate::conformance) for an example.
#[macro_export]
macro_rules! token_store_conformance {
    ($module:ident, $open:expr) => {
        $crate::token_store_conformance!(@cases $module, $open,
            issue_and_validate,
            rotation_and_replay_revoke_the_family,
            rotation_off_with_on_refresh_revoke,
            concurrent_refreshes_without_rotation_leave_one_access_token,
            grace_window_returns_the_same_pair,
            sealed_response_is_dropped_after_its_window,
            revocation_of_family_and_of_one_access_token,
            revocation_by_user_and_by_client,
            long_lived_family_is_revoked_by_user_and_by_client,
            expiry_idle_and_absolute,
            purge_removes_expired_and_revoked,
            concurrent_refreshes_have_one_winner,
            concurrent_refreshes_in_grace_share_one_successor,
            refresh_by_another_client_changes_nothing,
            code_is_single_use,
            code_presented_by_another_client_changes_nothing,
            concurrent_code_redemption,
            code_redeemed_twice_in_the_store,
            grant_revoked_before_creation_stays_revoked,
            records_round_trip,
            bulk_revocation_covers_more_than_one_batch,
            pending_requests_are_taken_once,
            records_are_kept_by_kind_replaced_and_deleted,
            put_if_absent_has_exactly_one_winner,
            counters_count_every_hit_in_their_window,
            resources_and_audiences_are_kept,
            put_if_present_and_extend_never_bring_a_record_back,
            stored_clients_are_shared_updated_touched_and_deleted,
        );
    };
    (@cases $module:ident, $open:expr, $($case:ident),* $(,)?) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[test]
                fn $case() {
                    $crate::conformance::run(
                        concat!(stringify!($module), "_", stringify!($case)),
                        $open,
                        $crate::conformance::cases::$case,
                    );
                }
            )*
        }
    };
}

/// Define a module of tests, one per [registry case](crate::conformance::registry), for the
/// [`ClientRegistry`](crate::client::ClientRegistry) that `$open` opens: a function (or closure) taking the test's name and
/// returning a future of `Option<Arc<dyn ClientRegistry>>` — a fresh, empty registry, or
/// `None` to skip.
///
/// ```
/// use std::sync::Arc;
/// use tower_oauth2::{client::{ClientRegistry, StoredClients}, store::MemoryStore};
///
/// async fn open(_test: &'static str) -> Option<Arc<dyn ClientRegistry>> {
///     Some(Arc::new(StoredClients::new(Arc::new(MemoryStore::new()))))
/// }
///
/// tower_oauth2::client_registry_conformance!(stored_clients, open);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! client_registry_conformance {
    ($module:ident, $open:expr) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $crate::client_registry_conformance!(@case $module, $open,
                inserted_reads_back_whole,
                one_insert_per_live_id,
                replace_and_extend_touch_live_registrations_only,
                a_client_with_a_custom_verifier_is_refused,
            );
        }
    };
    (@case $module:ident, $open:expr, $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::conformance::run(
                    concat!(stringify!($module), "_", stringify!($case)),
                    $open,
                    $crate::conformance::registry::$case,
                );
            }
        )*
    };
}
