//! The entries and their indexes: filling, bounding, and dropping what an announcement names.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, atomic::Ordering},
};

use super::{Entry, Index, RECENT, Shared, entry_bytes};
use crate::{
    bounded::freed_little,
    clock::UnixTime,
    store::{AccessTokenRecord, Invalidation},
    token::{GrantId, Route, TokenHash},
};

impl Shared {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Record an announcement (under the lock) and return its sequence number.
    pub(super) fn note(&self, index: &mut Index, what: Invalidation) {
        index.seq += 1;
        if index.recent.len() == RECENT {
            index.recent.pop_front();
        }
        index.recent.push_back((index.seq, what));
        self.seq.store(index.seq, Ordering::Release);
    }

    pub(super) fn remove_entry(&self, index: &mut Index, hash: &TokenHash) {
        let Some((_, entry)) = self.entries.remove(hash) else {
            return;
        };
        self.bytes.fetch_sub(entry.bytes, Ordering::Relaxed);
        let grant = &entry.record.grant;
        let emptied = match index.by_grant.get_mut(&grant.id) {
            Some(hashes) => {
                hashes.retain(|h| h != hash);
                hashes.is_empty()
            }
            None => false,
        };
        if emptied {
            index.by_grant.remove(&grant.id);
            unlink(&mut index.by_client, &grant.client_id, grant.id);
            if let Some(subject) = &grant.subject {
                unlink(&mut index.by_subject, subject, grant.id);
            }
        }
    }

    pub(super) fn remove_grant(&self, index: &mut Index, id: GrantId) {
        let Some(hashes) = index.by_grant.remove(&id) else {
            return;
        };
        for hash in hashes {
            if let Some((_, entry)) = self.entries.remove(&hash) {
                self.bytes.fetch_sub(entry.bytes, Ordering::Relaxed);
                let grant = &entry.record.grant;
                unlink(&mut index.by_client, &grant.client_id, id);
                if let Some(subject) = &grant.subject {
                    unlink(&mut index.by_subject, subject, id);
                }
            }
        }
    }

    pub(super) fn flush(&self, index: &mut Index) {
        self.entries.clear();
        index.by_grant.clear();
        index.by_subject.clear();
        index.by_client.clear();
        self.bytes.store(0, Ordering::Relaxed);
        self.flushes.fetch_add(1, Ordering::Relaxed);
        self.note(index, Invalidation::Everything);
    }

    pub(super) fn apply(&self, what: &Invalidation) {
        let mut index = self.lock();
        match what {
            Invalidation::AccessToken(hash) => self.remove_entry(&mut index, hash),
            Invalidation::Grant(id) => self.remove_grant(&mut index, *id),
            Invalidation::Subject(subject) => {
                for id in index
                    .by_subject
                    .remove(subject.as_str())
                    .unwrap_or_default()
                {
                    self.remove_grant(&mut index, id);
                }
            }
            Invalidation::Client(client) => {
                for id in index.by_client.remove(client.as_str()).unwrap_or_default() {
                    self.remove_grant(&mut index, id);
                }
            }
            Invalidation::Everything => {
                self.flush(&mut index);
                return;
            }
        }
        self.invalidations.fetch_add(1, Ordering::Relaxed);
        self.note(&mut index, what.clone());
    }

    /// Cache `record` for `hash`, read from the store when the sequence number was `seen`,
    /// unless an announcement since then concerns it, the channel is down, or there is no room.
    pub(super) fn fill(
        &self,
        seen: u64,
        hash: TokenHash,
        record: &AccessTokenRecord,
        now: UnixTime,
    ) {
        if record.expires_at <= now {
            return;
        }
        let mut index = self.lock();
        if !self.up.load(Ordering::Acquire) {
            return;
        }
        if index.seq != seen {
            // Announcements since the read: the oldest still kept must be the first one after
            // it, and none may concern this token.
            let covered = index.recent.front().is_some_and(|(s, _)| *s <= seen + 1);
            if !covered
                || index
                    .recent
                    .iter()
                    .any(|(s, w)| *s > seen && concerns(w, &hash, record))
            {
                return;
            }
        }
        let bytes = entry_bytes(record);
        if !self.room_for(&mut index, bytes, now) {
            return;
        }
        let grant = &record.grant;
        index.by_grant.entry(grant.id).or_default().push(hash);
        index
            .by_client
            .entry(Arc::clone(&grant.client_id))
            .or_default()
            .insert(grant.id);
        if let Some(subject) = &grant.subject {
            index
                .by_subject
                .entry(Arc::clone(subject))
                .or_default()
                .insert(grant.id);
        }
        let old = self.entries.insert(
            hash,
            Entry {
                record: record.clone(),
                bytes,
            },
        );
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        if let Some(old) = old {
            // Filled twice by concurrent misses: the index holds the hash twice, harmlessly;
            // count its bytes once.
            self.bytes.fetch_sub(old.bytes, Ordering::Relaxed);
        }
    }

    /// Whether `bytes` more fit, dropping expired entries first when they do not.
    pub(super) fn room_for(&self, index: &mut Index, bytes: usize, now: UnixTime) -> bool {
        let fits = |s: &Self| {
            s.entries.len() < s.config.max_entries
                && s.bytes.load(Ordering::Relaxed) + bytes <= s.config.max_bytes
        };
        if fits(self) {
            return true;
        }
        if self.no_purge_until.load(Ordering::Relaxed) > now {
            return false;
        }
        let expired: Vec<TokenHash> = self
            .entries
            .iter()
            .filter(|e| e.record.expires_at <= now)
            .map(|e| *e.key())
            .collect();
        for hash in &expired {
            self.remove_entry(index, hash);
        }
        // A pass visits every entry: one that freed less than a tenth (everything live, or
        // entries expiring one at a time) is not repeated within the second, so the work per
        // miss stays constant.
        if freed_little(self.entries.len(), self.config.max_entries)
            || freed_little(self.bytes.load(Ordering::Relaxed), self.config.max_bytes)
        {
            self.no_purge_until.store(now + 1, Ordering::Relaxed);
        }
        fits(self)
    }
}

/// Whether announcement `heard` is the echo of the revocation `made` here: itself, or for a bulk
/// revocation one of its grants (PostgreSQL announces those one by one, in the commit).
pub(super) fn echoes_back(made: &Invalidation, heard: &Invalidation) -> bool {
    made == heard
        || matches!(
            (made, heard),
            (
                Invalidation::Subject(_) | Invalidation::Client(_),
                Invalidation::Grant(_)
            )
        )
}

/// The one route `what` is about, if it is about one (a token or a grant).
pub(super) fn route_of(what: &Invalidation) -> Option<Route> {
    match what {
        Invalidation::AccessToken(hash) => hash.route(),
        Invalidation::Grant(id) => Some(id.route()),
        _ => None,
    }
}

/// Whether announcement `what` concerns the token `hash` of `record`.
pub(super) fn concerns(what: &Invalidation, hash: &TokenHash, record: &AccessTokenRecord) -> bool {
    match what {
        Invalidation::AccessToken(h) => h == hash,
        Invalidation::Grant(id) => *id == record.grant.id,
        Invalidation::Subject(s) => record.grant.subject.as_deref() == Some(s.as_str()),
        Invalidation::Client(c) => &*record.grant.client_id == c.as_str(),
        Invalidation::Everything => true,
    }
}

pub(super) fn unlink(map: &mut HashMap<Arc<str>, HashSet<GrantId>>, key: &str, id: GrantId) {
    if let Some(set) = map.get_mut(key) {
        set.remove(&id);
        if set.is_empty() {
            map.remove(key);
        }
    }
}
