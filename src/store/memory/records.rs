//! Short-lived records and counters ([`RecordStore`]) in one map, swept with the rest.

use async_trait::async_trait;
use dashmap::mapref::entry::Entry;

use super::MemoryStore;
use crate::{
    clock::UnixTime,
    error::StoreError,
    store::records::{Put, Record, RecordKey, RecordStore},
};

/// A short-lived record or a counter, as the memory store keeps it.
#[derive(Clone)]
pub(super) enum Stored {
    Record(Record),
    Counter { count: u64, expires_at: UnixTime },
}

impl Stored {
    pub(super) fn expires_at(&self) -> UnixTime {
        match self {
            Self::Record(r) => r.expires_at,
            Self::Counter { expires_at, .. } => *expires_at,
        }
    }
}

#[async_trait]
impl RecordStore for MemoryStore {
    async fn put_record(
        &self,
        key: &RecordKey,
        record: Record,
        mode: Put,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let written = match (self.inner.records.entry(*key), mode) {
            (Entry::Occupied(held), Put::IfAbsent) if held.get().expires_at() > now => false,
            (Entry::Occupied(held), Put::IfPresent) if held.get().expires_at() <= now => false,
            (Entry::Occupied(mut held), _) => {
                held.insert(Stored::Record(record));
                true
            }
            (Entry::Vacant(_), Put::IfPresent) => false,
            (Entry::Vacant(vacant), _) => {
                vacant.insert(Stored::Record(record));
                true
            }
        };
        self.maybe_sweep(now);
        Ok(written)
    }

    async fn get_record(
        &self,
        key: &RecordKey,
        now: UnixTime,
    ) -> Result<Option<Record>, StoreError> {
        Ok(match self.inner.records.get(key).as_deref() {
            Some(Stored::Record(r)) if r.expires_at > now => Some(r.clone()),
            _ => None,
        })
    }

    async fn take_record(
        &self,
        key: &RecordKey,
        now: UnixTime,
    ) -> Result<Option<Record>, StoreError> {
        // Removed under the shard's write lock: of concurrent takes, one gets the entry.
        Ok(match self.inner.records.remove(key) {
            Some((_, Stored::Record(r))) if r.expires_at > now => Some(r),
            _ => None,
        })
    }

    async fn delete_record(&self, key: &RecordKey) -> Result<bool, StoreError> {
        Ok(self.inner.records.remove(key).is_some())
    }

    async fn extend_record(
        &self,
        key: &RecordKey,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        // Under the entry's lock: a concurrent delete either came first (nothing to extend) or
        // comes after.
        Ok(match self.inner.records.get_mut(key).as_deref_mut() {
            Some(Stored::Record(r)) if r.expires_at > now => {
                r.expires_at = r.expires_at.max(expires_at);
                true
            }
            _ => false,
        })
    }

    async fn increment(
        &self,
        key: &RecordKey,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<u64, StoreError> {
        let fresh = Stored::Counter {
            count: 1,
            expires_at,
        };
        let count = match self.inner.records.entry(*key) {
            Entry::Occupied(mut held) => match held.get_mut() {
                Stored::Counter { count, expires_at } if *expires_at > now => {
                    *count = count.saturating_add(1);
                    *count
                }
                _ => {
                    held.insert(fresh);
                    1
                }
            },
            Entry::Vacant(vacant) => {
                vacant.insert(fresh);
                1
            }
        };
        self.maybe_sweep(now);
        Ok(count)
    }
}
