//! Reading rows and writing parameters: columns are read by name, and times cross between the
//! crate's `u64` seconds and PostgreSQL's `BIGINT` in one place.

use std::sync::Arc;

use tokio_postgres::{
    Row,
    types::{FromSql, ToSql},
};

use crate::{
    client::GrantType,
    clock::UnixTime,
    error::StoreError,
    resource::Resources,
    scope::Scope,
    store::{GrantRecord, NewAccessToken, NewRefreshToken, grant_purge_at},
    token::{GrantId, TokenHash},
};

/// A time or count as stored (`BIGINT`); values past `i64::MAX` are clamped.
pub(super) fn to_db(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A stored time or count; a negative one (never written by this crate) reads as 0.
pub(super) fn from_db(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// A generation as stored (`INTEGER`).
pub(super) fn generation_to_db(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

pub(super) fn grant_id_to_db(id: GrantId) -> [u8; 16] {
    id.as_u128().to_be_bytes()
}

/// One row, read by column name.
pub(super) struct Columns<'a>(pub(super) &'a Row);

impl<'a> Columns<'a> {
    pub(super) fn get<T: FromSql<'a>>(&self, column: &str) -> Result<T, StoreError> {
        self.0.try_get(column).map_err(StoreError::corrupt)
    }

    pub(super) fn time(&self, column: &str) -> Result<UnixTime, StoreError> {
        self.get::<i64>(column).map(from_db)
    }

    pub(super) fn opt_time(&self, column: &str) -> Result<Option<UnixTime>, StoreError> {
        Ok(self.get::<Option<i64>>(column)?.map(from_db))
    }

    pub(super) fn generation(&self, column: &str) -> Result<u32, StoreError> {
        u32::try_from(self.get::<i32>(column)?).map_err(|_| StoreError::corrupt("bad generation"))
    }

    pub(super) fn scope(&self, column: &str) -> Result<Scope, StoreError> {
        Scope::parse(self.get(column)?).map_err(|_| StoreError::corrupt("bad scope"))
    }

    pub(super) fn resources(&self, column: &str) -> Result<Resources, StoreError> {
        Ok(Resources::from_stored(self.get(column)?))
    }

    pub(super) fn grant_id(&self, column: &str) -> Result<GrantId, StoreError> {
        grant_id(self.get(column)?)
    }

    pub(super) fn opt_grant_id(&self, column: &str) -> Result<Option<GrantId>, StoreError> {
        self.get::<Option<&[u8]>>(column)?.map(grant_id).transpose()
    }

    pub(super) fn opt_token_hash(&self, column: &str) -> Result<Option<TokenHash>, StoreError> {
        self.get::<Option<&[u8]>>(column)?
            .map(|bytes| {
                bytes
                    .try_into()
                    .map(TokenHash::from_bytes)
                    .map_err(|_| StoreError::corrupt("bad token hash"))
            })
            .transpose()
    }

    /// The grant from `grant_columns.sql`.
    pub(super) fn grant(&self) -> Result<GrantRecord, StoreError> {
        Ok(GrantRecord {
            id: self.grant_id("grant_id")?,
            client_id: Arc::from(self.get::<&str>("grant_client_id")?),
            subject: self.get::<Option<&str>>("grant_subject")?.map(Arc::from),
            scope: self.scope("grant_scope")?,
            resources: self.resources("grant_resources")?,
            grant_type: GrantType::parse(self.get("grant_type")?)
                .ok_or_else(|| StoreError::corrupt("bad grant type"))?,
            created_at: self.time("grant_created_at")?,
            expires_at: self.opt_time("grant_expires_at")?,
        })
    }
}

fn grant_id(bytes: &[u8]) -> Result<GrantId, StoreError> {
    let b: [u8; 16] = bytes
        .try_into()
        .map_err(|_| StoreError::corrupt("bad grant id"))?;
    Ok(GrantId::from_u128(u128::from_be_bytes(b)))
}

/// The values of `insert_grant.sql`'s 18 parameters, each field named for its column.
pub(super) struct GrantParams {
    id: Vec<u8>,
    client_id: String,
    subject: Option<String>,
    scope: String,
    grant_type: &'static str,
    created_at: i64,
    expires_at: Option<i64>,
    purge_at: i64,
    access_hash: Vec<u8>,
    access_scope: String,
    access_issued_at: i64,
    access_expires_at: i64,
    refresh_hash: Option<Vec<u8>>,
    refresh_issued_at: i64,
    refresh_expires_at: i64,
    refresh_generation: i32,
    resources: String,
    access_audience: String,
}

impl GrantParams {
    pub(super) fn new(
        grant: &GrantRecord,
        access: &NewAccessToken,
        refresh: Option<&NewRefreshToken>,
    ) -> Self {
        Self {
            id: grant_id_to_db(grant.id).to_vec(),
            client_id: grant.client_id.to_string(),
            subject: grant.subject.as_deref().map(str::to_owned),
            scope: grant.scope.to_string(),
            grant_type: grant.grant_type.as_str(),
            created_at: to_db(grant.created_at),
            expires_at: grant.expires_at.map(to_db),
            purge_at: to_db(grant_purge_at(access, refresh)),
            access_hash: access.hash.as_bytes().to_vec(),
            access_scope: access.scope.to_string(),
            access_issued_at: to_db(access.issued_at),
            access_expires_at: to_db(access.expires_at),
            refresh_hash: refresh.map(|r| r.hash.as_bytes().to_vec()),
            refresh_issued_at: refresh.map_or(0, |r| to_db(r.issued_at)),
            refresh_expires_at: refresh.map_or(0, |r| to_db(r.expires_at)),
            refresh_generation: refresh.map_or(0, |r| generation_to_db(r.generation)),
            resources: grant.resources.as_str().to_owned(),
            access_audience: access.audience.as_str().to_owned(),
        }
    }

    /// `$1…$18`, then `extra` (`$19…`).
    pub(super) fn with<'a>(
        &'a self,
        extra: &[&'a (dyn ToSql + Sync)],
    ) -> Vec<&'a (dyn ToSql + Sync)> {
        let mut params: Vec<&'a (dyn ToSql + Sync)> = vec![
            &self.id,
            &self.client_id,
            &self.subject,
            &self.scope,
            &self.grant_type,
            &self.created_at,
            &self.expires_at,
            &self.purge_at,
            &self.access_hash,
            &self.access_scope,
            &self.access_issued_at,
            &self.access_expires_at,
            &self.refresh_hash,
            &self.refresh_issued_at,
            &self.refresh_expires_at,
            &self.refresh_generation,
            &self.resources,
            &self.access_audience,
        ];
        params.extend_from_slice(extra);
        params
    }
}
