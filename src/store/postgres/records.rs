//! Short-lived records ([`RecordStore`]) in one table, `oauth_records`, keyed by `kind:hex`: a
//! row holds a record or a counter. One statement per operation.

use async_trait::async_trait;
use tokio_postgres::types::ToSql;

use super::{
    PostgresStore,
    rows::{Columns, from_db, to_db},
    statements::{
        RECORD_COUNT, RECORD_DELETE, RECORD_EXTEND, RECORD_GET, RECORD_PUT, RECORD_REPLACE,
        RECORD_TAKE,
    },
};
use crate::{
    clock::UnixTime,
    error::StoreError,
    store::records::{Put, Record, RecordKey, RecordStore},
};

/// A record from its row (`data`, `expires_at`), if live as of `now`.
fn live(row: Option<tokio_postgres::Row>, now: UnixTime) -> Result<Option<Record>, StoreError> {
    let Some(row) = row else {
        return Ok(None);
    };
    let c = Columns(&row);
    let expires_at = from_db(c.get("expires_at")?);
    Ok((expires_at > now)
        .then(|| c.get::<Vec<u8>>("data"))
        .transpose()?
        .map(|data| Record {
            data: data.into(),
            expires_at,
        }))
}

#[async_trait]
impl RecordStore for PostgresStore {
    async fn put_record(
        &self,
        key: &RecordKey,
        record: Record,
        mode: Put,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let key = key.to_key_string();
        let (data, expires_at, now) = (&*record.data, to_db(record.expires_at), to_db(now));
        if mode == Put::IfPresent {
            let params: [&(dyn ToSql + Sync); 4] = [&key, &data, &expires_at, &now];
            return Ok(self.count(RECORD_REPLACE, &params).await? == 1);
        }
        let if_absent = mode == Put::IfAbsent;
        let params: [&(dyn ToSql + Sync); 5] = [&key, &data, &expires_at, &now, &if_absent];
        Ok(self.count(RECORD_PUT, &params).await? == 1)
    }

    async fn get_record(
        &self,
        key: &RecordKey,
        now: UnixTime,
    ) -> Result<Option<Record>, StoreError> {
        let row = self
            .query_opt(RECORD_GET, &[&key.to_key_string(), &to_db(now)])
            .await?;
        live(row, now)
    }

    async fn take_record(
        &self,
        key: &RecordKey,
        now: UnixTime,
    ) -> Result<Option<Record>, StoreError> {
        let row = self.query_opt(RECORD_TAKE, &[&key.to_key_string()]).await?;
        live(row, now)
    }

    async fn delete_record(&self, key: &RecordKey) -> Result<bool, StoreError> {
        Ok(self.count(RECORD_DELETE, &[&key.to_key_string()]).await? > 0)
    }

    async fn extend_record(
        &self,
        key: &RecordKey,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let params: [&(dyn ToSql + Sync); 3] =
            [&key.to_key_string(), &to_db(expires_at), &to_db(now)];
        Ok(self.count(RECORD_EXTEND, &params).await? == 1)
    }

    async fn increment(
        &self,
        key: &RecordKey,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<u64, StoreError> {
        let params: [&(dyn ToSql + Sync); 3] =
            [&key.to_key_string(), &to_db(expires_at), &to_db(now)];
        self.count(RECORD_COUNT, &params).await
    }
}
