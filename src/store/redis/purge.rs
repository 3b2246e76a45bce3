//! Purging: a `SCAN` of the store's keys, batch by batch; on a cluster, every primary's keys,
//! grouped by slot.

use std::collections::BTreeSet;

use async_trait::async_trait;

use super::{
    RedisStore,
    conn::{self, Conn},
};
use crate::{
    clock::UnixTime,
    error::StoreError,
    store::{CODE_RETENTION_SECS, PurgeStore, within},
};

/// Escape `SCAN MATCH` glob characters.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[async_trait]
impl PurgeStore for RedisStore {
    async fn purge_expired(&self, now: UnixTime) -> Result<u64, StoreError> {
        // Keys carry TTLs, so Redis expires them on its own clock. This sweep also removes, in
        // bounded batches, tokens of revoked or ended families and anything expired by `now`.
        if self.clustered() {
            return self.purge_cluster(now).await;
        }
        let pattern = format!("{}*", glob_escape(self.prefix()));
        let mut cursor = 0u64;
        let mut total = 0u64;
        loop {
            let pattern = pattern.clone();
            let (next, keys): (u64, Vec<String>) = self
                .run(|mut c| async move {
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(pattern)
                        .arg("COUNT")
                        .arg(1000)
                        .query_async(&mut c)
                        .await
                })
                .await?;
            if !keys.is_empty() {
                total += self.purge_keys(self.prefix(), &keys, now).await?;
            }
            if next == 0 {
                return Ok(total);
            }
            cursor = next;
        }
    }
}

impl RedisStore {
    /// On a cluster: the keys under the prefix on every primary, purged slot by slot.
    async fn purge_cluster(&self, now: UnixTime) -> Result<u64, StoreError> {
        let Conn::Cluster(mut conn) = self.conn().await? else {
            return Ok(0);
        };
        let primaries = within(self.inner.timeout, async {
            conn::primaries(&mut conn)
                .await
                .map_err(StoreError::unavailable)
        })
        .await?;
        let pattern = format!("{}*", glob_escape(self.prefix()));
        let mut total = 0u64;
        for node in primaries.iter().map(|p| &p.address) {
            let mut cursor = 0u64;
            loop {
                let scan = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .clone();
                let (next, keys): (u64, Vec<String>) = within(self.inner.timeout, async {
                    conn::on_node(&mut conn, node, scan)
                        .await
                        .map_err(StoreError::unavailable)
                })
                .await?;
                // By slot: a tagged key's scope, or an untagged short-lived record on its own
                // (under the plain prefix). SCAN may name a key twice: a set each.
                let mut groups: std::collections::HashMap<String, (String, BTreeSet<String>)> =
                    std::collections::HashMap::new();
                for key in keys {
                    let rest = &key[self.prefix().len()..];
                    let (group, scope) = match rest
                        .strip_prefix('{')
                        .and_then(|r| r.split_once('}'))
                    {
                        Some((tag, _)) => {
                            let scope = format!("{}{{{tag}}}", self.prefix());
                            (scope.clone(), scope)
                        }
                        None if rest.starts_with("x:") => (key.clone(), self.prefix().to_owned()),
                        None => continue,
                    };
                    groups
                        .entry(group)
                        .or_insert_with(|| (scope, BTreeSet::new()))
                        .1
                        .insert(key);
                }
                for (scope, keys) in groups.into_values() {
                    let keys: Vec<String> = keys.into_iter().collect();
                    total += self.purge_keys(&scope, &keys, now).await?;
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(total)
    }

    /// Purge what may go of `keys`, all under `scope` (and in one slot, on a cluster).
    async fn purge_keys(
        &self,
        scope: &str,
        keys: &[String],
        now: UnixTime,
    ) -> Result<u64, StoreError> {
        let mut inv = self.inner.scripts.purge.call(keys);
        inv.arg(if self.clustered() { "" } else { self.prefix() })
            .arg(now)
            .arg(CODE_RETENTION_SECS)
            .arg(scope);
        Ok(u64::try_from(self.invoke::<i64>(inv).await?).unwrap_or(0))
    }
}
