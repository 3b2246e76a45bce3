//! The subject and client indexes (sorted sets of grant ids, for bulk revocation), and how long
//! a grant and its entries are kept. On one server a grant's script writes its entries; on a
//! cluster they live in slots of their own and are written beside it.

use super::{KEEP_AHEAD_MAX_SECS, REVOKE_BATCH, RedisStore, scripts::Call};
use crate::{
    clock::UnixTime,
    error::StoreError,
    store::{GrantRecord, GrantStore},
    token::GrantId,
};

/// Until when a grant's key and its entries in its client's and subject's indexes are kept, for
/// a grant that must last until `purge_at` (its tokens' expiry, see `grant_purge_at`).
///
/// A grant that never rotates is kept exactly that long. One that may (it has a refresh token) is
/// kept a quarter of its remaining life longer, at most a day: each rotation moves its purge time
/// on, and a keep-until time already written covers the rotations of that margin, so a chain of
/// refreshes writes the grant's expiry and index scores again about once per margin (a day for
/// refresh tokens living weeks), not at every refresh. What that costs is a dead family's grant
/// key and index entries living on by at most the margin.
pub(super) fn keep_until(purge_at: UnixTime, now: UnixTime, rotates: bool) -> UnixTime {
    if !rotates {
        return purge_at;
    }
    purge_at + (purge_at.saturating_sub(now) / 4).min(KEEP_AHEAD_MAX_SECS)
}

impl RedisStore {
    /// On a cluster, enter a grant in its client's and subject's indexes (which live in slots of
    /// their own) until `keep` (its [`keep_until`] time); nothing on one server, where the
    /// grant's script does it.
    pub(super) async fn index_apart(
        &self,
        id: GrantId,
        client_id: &str,
        subject: Option<&str>,
        keep: UnixTime,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        if !self.clustered() {
            return Ok(());
        }
        let enter = |set: String| {
            let this = self.clone();
            let id = id.to_string();
            async move {
                let key = format!("{}{set}", this.prefix());
                let mut inv = this.script(&this.inner.scripts.index, &key);
                inv.arg(id).arg(keep).arg(now);
                this.invoke::<i64>(inv).await.map(drop)
            }
        };
        let client = enter(format!("k:{client_id}"));
        match subject {
            Some(s) => tokio::try_join!(client, enter(format!("s:{s}")))?,
            None => (client.await?, ()),
        };
        Ok(())
    }

    /// Whether a rotation that moves a family's purge time to `purge_at` must extend its grant
    /// key and index entries, and to when: not while the keep-until time this instance last
    /// wrote for it still covers `purge_at`.
    ///
    /// That is safe because a remembered time was written (only after the script that wrote it
    /// applied; `EXPIREAT … GT` and `ZADD … GT` never lower it, and nothing else shortens a live
    /// grant's key or entries); another instance writes its own once. The memo only saves
    /// writes: forgetting costs one more.
    pub(super) fn extension(
        &self,
        id: GrantId,
        purge_at: UnixTime,
        now: UnixTime,
    ) -> Option<UnixTime> {
        let covered = self
            .inner
            .indexed
            .get(&id)
            .is_some_and(|written| *written >= purge_at);
        (!covered).then(|| keep_until(purge_at, now, true))
    }

    /// Remember that `keep` was written as a grant's keep-until time (bounded: past
    /// [`INDEXED_MEMO`] grants, the lapsed ones go; while all are live, a new one is not
    /// remembered, and costs one write more at its next rotation).
    pub(super) fn remember_kept(&self, id: GrantId, keep: UnixTime, now: UnixTime) {
        self.inner.indexed.insert(id, keep, now);
    }

    /// Invoke a script that creates `grant`, entering it in its indexes beside (on a cluster)
    /// until `keep`.
    pub(super) async fn invoke_creating<T: redis::FromRedisValue>(
        &self,
        inv: Call<'_>,
        grant: &GrantRecord,
        keep: UnixTime,
    ) -> Result<T, StoreError> {
        let (reply, ()) = tokio::try_join!(
            self.invoke(inv),
            self.index_apart(
                grant.id,
                &grant.client_id,
                grant.subject.as_deref(),
                keep,
                grant.created_at,
            ),
        )?;
        Ok(reply)
    }

    /// On a cluster: revoke every grant a subject's or client's index lists, grant by grant
    /// (each in its own slot), removing from the index only what was revoked.
    pub(super) async fn revoke_indexed(&self, set: &str) -> Result<u64, StoreError> {
        let key = format!("{}{set}", self.prefix());
        let mut total = 0u64;
        loop {
            let ids: Vec<String> = {
                let key = key.clone();
                self.run(|mut c| async move {
                    redis::cmd("ZRANGE")
                        .arg(&key)
                        .arg(0)
                        .arg(REVOKE_BATCH - 1)
                        .query_async(&mut c)
                        .await
                })
                .await?
            };
            if ids.is_empty() {
                return Ok(total);
            }
            let revocations = ids.iter().map(|id| async move {
                // An entry that is not a grant id is nothing to revoke; it goes with the rest.
                match GrantId::parse_hex(id) {
                    Some(id) => self.revoke_grant(id).await,
                    None => Ok(false),
                }
            });
            for revoked in futures_util::future::join_all(revocations).await {
                total += u64::from(revoked?);
            }
            let done = ids.len();
            let key = key.clone();
            self.run(|mut c| async move {
                redis::cmd("ZREM")
                    .arg(&key)
                    .arg(&ids)
                    .query_async::<i64>(&mut c)
                    .await
            })
            .await?;
            if done < REVOKE_BATCH {
                return Ok(total);
            }
        }
    }
}
