//! A concurrent map bounded in entries, each entry live until a time it carries: the memos and
//! caches that sit beside a store or a validator (a record remembered to save a round trip, a
//! signature already checked) and must neither grow without end nor cost more than a lookup.
//!
//! Full, an insertion first sweeps the expired entries out; one sweep visits every entry, so a
//! sweep that frees less than a tenth of the bound holds the next one off for a second: the
//! work per insertion stays constant even when every entry is live, or when entries expire
//! one at a time. What does not fit is not held (the caller goes to the source instead).

use std::{
    hash::Hash,
    sync::atomic::{AtomicU64, Ordering},
};

use dashmap::{DashMap, mapref::one::Ref};

use crate::clock::UnixTime;

pub(crate) struct Bounded<K, V> {
    map: DashMap<K, V>,
    max: usize,
    expires_at: fn(&V) -> UnixTime,
    /// No sweep before this time: the last one freed too little to be worth repeating sooner.
    no_sweep_until: AtomicU64,
    #[cfg(test)]
    sweeps: AtomicU64,
}

impl<K: Eq + Hash, V> Bounded<K, V> {
    /// At most `max` entries, each live while `expires_at` of it is later than now.
    pub(crate) fn new(max: usize, expires_at: fn(&V) -> UnixTime) -> Self {
        Self {
            map: DashMap::new(),
            max,
            expires_at,
            no_sweep_until: AtomicU64::new(0),
            #[cfg(test)]
            sweeps: AtomicU64::new(0),
        }
    }

    pub(crate) fn get(&self, key: &K) -> Option<Ref<'_, K, V>> {
        self.map.get(key)
    }

    pub(crate) fn remove(&self, key: &K) -> Option<V> {
        self.map.remove(key).map(|(_, v)| v)
    }

    #[cfg_attr(not(feature = "jwt"), allow(dead_code))]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Hold `value` for `key` if it fits, making room from the expired entries (`now` decides
    /// which); says whether it is held. A key already held takes the new value in any case.
    pub(crate) fn insert(&self, key: K, value: V, now: UnixTime) -> bool {
        if self.map.len() >= self.max && !self.map.contains_key(&key) && !self.make_room(now) {
            return false;
        }
        self.map.insert(key, value);
        true
    }

    fn make_room(&self, now: UnixTime) -> bool {
        if self.no_sweep_until.load(Ordering::Relaxed) > now {
            return false;
        }
        #[cfg(test)]
        self.sweeps.fetch_add(1, Ordering::Relaxed);
        let expires_at = self.expires_at;
        self.map.retain(|_, v| expires_at(v) > now);
        let held = self.map.len();
        if freed_little(held, self.max) {
            self.no_sweep_until.store(now + 1, Ordering::Relaxed);
        }
        held < self.max
    }
}

/// Whether a pass that left `held` of a bound of `max` freed less than a tenth of it (or
/// nothing, for a small bound): then it is not worth repeating within the second.
pub(crate) fn freed_little(held: usize, max: usize) -> bool {
    held + (max / 10).max(1) > max
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(map: &Bounded<u32, UnixTime>, keys: std::ops::Range<u32>) -> usize {
        keys.filter(|k| map.get(k).is_some()).count()
    }

    #[test]
    fn what_does_not_fit_is_not_held_and_expired_entries_make_room() {
        let map = Bounded::new(4, |until: &UnixTime| *until);
        for k in 0..4 {
            assert!(map.insert(k, 10 + UnixTime::from(k), 5));
        }
        assert!(!map.insert(9, 100, 5), "full of live entries");
        assert_eq!(held(&map, 0..10), 4);
        assert!(
            map.insert(3, 100, 5),
            "a held key takes its new value, full or not"
        );
        assert_eq!(map.get(&3).map(|v| *v), Some(100));
        // At 11, the entries until 10 and 11 have expired: two places.
        assert!(map.insert(20, 100, 11));
        assert!(map.insert(21, 100, 11));
        assert!(!map.insert(22, 100, 11));
        assert_eq!(held(&map, 0..4), 2);
        assert_eq!(map.len(), 4);
    }

    fn sweeps(map: &Bounded<u32, UnixTime>) -> u64 {
        map.sweeps.load(Ordering::Relaxed)
    }

    #[test]
    fn a_sweep_that_frees_little_is_not_repeated_within_the_second() {
        let map = Bounded::new(100, |until: &UnixTime| *until);
        // Entries expiring one a second, from 1 to 100.
        for k in 0..100u32 {
            assert!(map.insert(k, UnixTime::from(k) + 1, 0));
        }
        assert_eq!(sweeps(&map), 0);
        // At 1 one entry has expired: one sweep frees it, and a thousand more insertions in
        // that second sweep no more (each would visit every entry to free nothing).
        for k in 0..1000u32 {
            assert_eq!(map.insert(1000 + k, 500, 1), k == 0);
        }
        assert_eq!(sweeps(&map), 1);
        // The next second, the next expired entry makes room again.
        assert!(map.insert(5000, 500, 2));
        assert!(map.get(&1).is_none());
        assert_eq!(sweeps(&map), 2);
    }

    #[test]
    fn a_sweep_that_frees_a_tenth_leaves_the_next_one_free_to_run() {
        let map = Bounded::new(100, |until: &UnixTime| *until);
        // Twenty entries expire at 1, ten at 2, the rest at 50.
        for k in 0..100u32 {
            assert!(map.insert(k, [1, 2, 50][(k >= 20) as usize + (k >= 30) as usize], 0));
        }
        for k in 0..20u32 {
            assert!(map.insert(100 + k, 60, 1), "room for {k}");
        }
        assert_eq!(sweeps(&map), 1, "one sweep made room for all twenty");
        // Still at 1, full again: the sweep that freed a fifth does not hold the next off —
        // which frees nothing, and holds further sweeps off until 2.
        assert!(!map.insert(200, 60, 1));
        assert!(!map.insert(201, 60, 1));
        assert_eq!(sweeps(&map), 2);
        assert!(map.insert(202, 60, 2), "at 2, ten more have expired");
        assert_eq!(map.len(), 91);
    }
}
