//! The bounded cache of tokens whose signature has been checked, shared by the validators that
//! verify JWTs: a token seen before costs a map lookup, not a signature check.

use crate::{bounded::Bounded, clock::UnixTime, token::TokenHash};

/// Verified tokens by hash, each kept until the time it was cached with. At most `max` entries:
/// when full, expired ones are dropped first; when all are live, a new token is not cached (and
/// is checked again next time).
pub(super) struct VerifiedCache<V> {
    map: Bounded<TokenHash, (V, UnixTime)>,
}

impl<V: Clone> VerifiedCache<V> {
    pub(super) fn new(max: usize) -> Self {
        Self {
            map: Bounded::new(max, |(_, until)| *until),
        }
    }

    /// What was cached for `hash`, with the time it is good until.
    pub(super) fn get(&self, hash: &TokenHash) -> Option<(V, UnixTime)> {
        self.map.get(hash).map(|e| e.value().clone())
    }

    /// Cache `value` for `hash` until `until`; `now` decides what has expired.
    pub(super) fn insert(&self, hash: TokenHash, value: V, until: UnixTime, now: UnixTime) {
        self.map.insert(hash, (value, until), now);
    }

    pub(super) fn len(&self) -> usize {
        self.map.len()
    }
}
