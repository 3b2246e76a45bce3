//! Short-lived records ([`RecordStore`]): one hash per record (`d` data, `e` expiry) or counter
//! (`n` count, `e` end of its window) under `{prefix}x:{kind}:{id hash}`, with the key's own
//! TTL. On a cluster each key is in a slot of its own: every operation touches one key.

use async_trait::async_trait;

use super::RedisStore;
use crate::{
    clock::UnixTime,
    error::StoreError,
    store::records::{Put, Record, RecordKey, RecordStore},
};

impl RedisStore {
    fn record_key(&self, key: &RecordKey) -> String {
        format!("{}x:{}", self.prefix(), key.to_key_string())
    }
}

/// A record from its `d` and `e` fields: `None` when absent or lapsed as of `now`.
fn live(
    fields: (Option<Vec<u8>>, Option<u64>),
    now: UnixTime,
) -> Result<Option<Record>, StoreError> {
    match fields {
        (Some(data), Some(expires_at)) => Ok((expires_at > now).then(|| Record {
            data: data.into(),
            expires_at,
        })),
        (Some(_), None) => Err(StoreError::corrupt("a record without its expiry")),
        (None, _) => Ok(None),
    }
}

#[async_trait]
impl RecordStore for RedisStore {
    async fn put_record(
        &self,
        key: &RecordKey,
        record: Record,
        mode: Put,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let key = self.record_key(key);
        let mut inv = self.inner.scripts.record_put.call(&[&key]);
        inv.arg(&*record.data)
            .arg(record.expires_at)
            .arg(now)
            .arg(match mode {
                Put::Always => "0",
                Put::IfAbsent => "1",
                Put::IfPresent => "2",
            });
        Ok(self.invoke::<i64>(inv).await? == 1)
    }

    async fn get_record(
        &self,
        key: &RecordKey,
        now: UnixTime,
    ) -> Result<Option<Record>, StoreError> {
        let key = self.record_key(key);
        let fields = self
            .run(|mut c| async move {
                redis::cmd("HMGET")
                    .arg(&key)
                    .arg("d")
                    .arg("e")
                    .query_async(&mut c)
                    .await
            })
            .await?;
        live(fields, now)
    }

    async fn take_record(
        &self,
        key: &RecordKey,
        now: UnixTime,
    ) -> Result<Option<Record>, StoreError> {
        // Read and delete in one transaction: of concurrent takes, the first gets the fields and
        // the others find nothing.
        let key = self.record_key(key);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("HMGET")
            .arg(&key)
            .arg("d")
            .arg("e")
            .del(&key)
            .ignore();
        let (fields,): ((Option<Vec<u8>>, Option<u64>),) = self
            .run(|mut c| async move { pipe.query_async(&mut c).await })
            .await?;
        live(fields, now)
    }

    async fn delete_record(&self, key: &RecordKey) -> Result<bool, StoreError> {
        let key = self.record_key(key);
        let removed: i64 = self
            .run(|mut c| async move { redis::cmd("DEL").arg(&key).query_async(&mut c).await })
            .await?;
        Ok(removed > 0)
    }

    async fn extend_record(
        &self,
        key: &RecordKey,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let key = self.record_key(key);
        let mut inv = self.inner.scripts.record_extend.call(&[&key]);
        inv.arg(expires_at).arg(now);
        Ok(self.invoke::<i64>(inv).await? == 1)
    }

    async fn increment(
        &self,
        key: &RecordKey,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<u64, StoreError> {
        let key = self.record_key(key);
        let mut inv = self.inner.scripts.record_count.call(&[&key]);
        inv.arg(expires_at).arg(now);
        let count: i64 = self.invoke(inv).await?;
        u64::try_from(count).map_err(|_| StoreError::corrupt("a negative count"))
    }
}
