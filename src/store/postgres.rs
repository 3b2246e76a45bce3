//! The PostgreSQL token store (feature `postgres`): for apps running on several machines.
//!
//! Every operation is one SQL statement (one round trip): a rotation is a single `UPDATE …
//! RETURNING` whose row lock makes it a compare-and-set, with the successor inserts in the same
//! statement's CTEs; a family is revoked by one `UPDATE` of its grant row (O(1), whatever its
//! size), and every lookup joins on that row. Expiry is indexed and [`TokenStore::purge_expired`]
//! deletes in bounded batches. The schema ships with the crate and is applied by
//! [`PostgresStore::migrate`], an explicit call.
//!
//! ```no_run
//! # async fn demo() -> Result<(), tower_oauth2::StoreError> {
//! use std::time::Duration;
//! use tower_oauth2::store::PostgresStore;
//!
//! let store = PostgresStore::builder("postgres://app@127.0.0.1:5432/app")
//!     .schema("oauth")
//!     .pool_size(16)
//!     .timeout(Duration::from_secs(2))
//!     .build()?;
//! store.migrate().await?;
//! # Ok(())
//! # }
//! ```

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::{NoTls, Row, types::ToSql};

use super::{
    AccessTokenRecord, AuthorizationCodeRecord, CODE_RETENTION_SECS, CodeChallengeMethod,
    GrantFilter, GrantRecord, NewAccessToken, NewRefreshToken, Redemption, RefreshTokenRecord,
    RefreshTokenState, Rotation, RotationOutcome, Sealed, TOMBSTONE_SECS,
};
use crate::{
    client::GrantType,
    clock::UnixTime,
    error::{BoxError, StoreError},
    scope::Scope,
    store::TokenStore,
    token::{GrantId, TokenHash},
};

/// The schema, one entry per version; applied in order by [`PostgresStore::migrate`].
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE oauth_grants (
    id          BYTEA PRIMARY KEY,
    client_id   TEXT NOT NULL,
    subject     TEXT,
    scope       TEXT NOT NULL,
    grant_type  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT,
    revoked     BOOLEAN NOT NULL DEFAULT FALSE,
    generation  INTEGER NOT NULL DEFAULT 0,
    purge_at    BIGINT NOT NULL
);
CREATE INDEX oauth_grants_subject ON oauth_grants (subject) WHERE NOT revoked;
CREATE INDEX oauth_grants_client ON oauth_grants (client_id) WHERE NOT revoked;
CREATE INDEX oauth_grants_purge ON oauth_grants (purge_at);
CREATE TABLE oauth_access_tokens (
    hash        BYTEA PRIMARY KEY,
    grant_id    BYTEA NOT NULL,
    scope       TEXT NOT NULL,
    issued_at   BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX oauth_access_tokens_expiry ON oauth_access_tokens (expires_at);
CREATE INDEX oauth_access_tokens_grant ON oauth_access_tokens (grant_id);
CREATE TABLE oauth_refresh_tokens (
    hash         BYTEA PRIMARY KEY,
    grant_id     BYTEA NOT NULL,
    issued_at    BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    generation   INTEGER NOT NULL,
    access_hash  BYTEA,
    rotated_at   BIGINT,
    sealed       BYTEA,
    sealed_until BIGINT
);
CREATE INDEX oauth_refresh_tokens_expiry ON oauth_refresh_tokens (expires_at);
CREATE INDEX oauth_refresh_tokens_grant ON oauth_refresh_tokens (grant_id);
CREATE TABLE oauth_codes (
    hash             BYTEA PRIMARY KEY,
    client_id        TEXT NOT NULL,
    subject          TEXT NOT NULL,
    redirect_uri     TEXT,
    scope            TEXT NOT NULL,
    challenge        TEXT,
    challenge_method TEXT,
    issued_at        BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    redeemed_by      BYTEA
);
CREATE INDEX oauth_codes_expiry ON oauth_codes (expires_at);
"#];

/// Insert a grant with its first tokens; `$1…$16`. `{gate}` restricts it (code redemption).
fn insert_grant_sql(gate: &str) -> String {
    format!(
        r#"g AS (
    INSERT INTO oauth_grants (id, client_id, subject, scope, grant_type, created_at, expires_at, purge_at)
    SELECT $1, $2, $3, $4, $5, $6, $7, $8 {gate}
    ON CONFLICT (id) DO UPDATE SET client_id = EXCLUDED.client_id, subject = EXCLUDED.subject,
        scope = EXCLUDED.scope, grant_type = EXCLUDED.grant_type, created_at = EXCLUDED.created_at,
        expires_at = EXCLUDED.expires_at,
        purge_at = GREATEST(oauth_grants.purge_at, EXCLUDED.purge_at)
    RETURNING id
), a AS (
    INSERT INTO oauth_access_tokens (hash, grant_id, scope, issued_at, expires_at)
    SELECT $9, id, $10, $11, $12 FROM g
), r AS (
    INSERT INTO oauth_refresh_tokens (hash, grant_id, issued_at, expires_at, generation, access_hash)
    SELECT $13, id, $14, $15, $16, $9 FROM g WHERE $13::bytea IS NOT NULL
)"#
    )
}

/// The seven grant columns [`grant_from`] reads.
macro_rules! grant_columns {
    () => {
        "g.id, g.client_id, g.subject, g.scope, g.grant_type, g.created_at, g.expires_at"
    };
}

const FIND_ACCESS: &str = concat!(
    "SELECT a.scope, a.issued_at, a.expires_at, ",
    grant_columns!(),
    " FROM oauth_access_tokens a JOIN oauth_grants g ON g.id = a.grant_id
      WHERE a.hash = $1 AND NOT g.revoked"
);

const FIND_REFRESH: &str = concat!(
    "SELECT r.issued_at, r.expires_at, r.generation, r.access_hash, r.rotated_at, r.sealed,
            r.sealed_until, g.generation, ",
    grant_columns!(),
    " FROM oauth_refresh_tokens r JOIN oauth_grants g ON g.id = r.grant_id
      WHERE r.hash = $1 AND NOT g.revoked"
);

/// One use of a refresh token. One statement for both modes (`$16`: rotating), so it is
/// prepared once. The UPDATE's row lock is the compare-and-set: of concurrent statements, the
/// first changes the row and the others, re-checking `rotated_at IS NULL`, match nothing.
const ROTATE: &str = "WITH cur AS (
                UPDATE oauth_refresh_tokens r SET
                    rotated_at = CASE WHEN $16 THEN $2 ELSE r.rotated_at END,
                    sealed = CASE WHEN $16 THEN $3 ELSE r.sealed END,
                    sealed_until = CASE WHEN $16 THEN $4 ELSE r.sealed_until END,
                    access_hash = CASE WHEN $16 THEN r.access_hash ELSE $9 END
                FROM oauth_grants g,
                     (SELECT hash, access_hash AS prev FROM oauth_refresh_tokens WHERE hash = $1) old
                WHERE r.hash = $1 AND old.hash = r.hash AND r.rotated_at IS NULL AND r.generation = $5
                  AND r.expires_at > $2 AND g.id = r.grant_id AND NOT g.revoked
                RETURNING r.grant_id, old.prev
            ), bump AS (
                UPDATE oauth_grants SET generation = GREATEST(generation, $6),
                    purge_at = GREATEST(purge_at, $7)
                WHERE id = (SELECT grant_id FROM cur)
            ), del AS (
                DELETE FROM oauth_access_tokens WHERE $8 AND hash = (SELECT prev FROM cur)
            ), a AS (
                INSERT INTO oauth_access_tokens (hash, grant_id, scope, issued_at, expires_at)
                SELECT $9, grant_id, $10, $11, $12 FROM cur
            ), nr AS (
                INSERT INTO oauth_refresh_tokens (hash, grant_id, issued_at, expires_at, generation, access_hash)
                SELECT $13, grant_id, $14, $15, $6, $9 FROM cur WHERE $16
            )
            SELECT count(*) FROM cur";

/// Builds a [`PostgresStore`].
#[derive(Debug, Clone)]
#[must_use]
pub struct PostgresStoreBuilder {
    url: String,
    schema: Option<String>,
    pool_size: usize,
    timeout: Duration,
    purge_batch: i64,
}

impl PostgresStoreBuilder {
    /// Keep the tables in this schema (created by `migrate`); default: the connection's
    /// `search_path` (usually `public`). Letters, digits and `_` only.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// Maximum connections in the pool (default 16).
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// Upper bound of each store call: waiting for a connection, connecting and the statement
    /// (default 2 s; also set as the server-side `statement_timeout`).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Rows deleted per statement by `purge_expired` (default 1000).
    pub fn purge_batch(mut self, rows: u32) -> Self {
        self.purge_batch = i64::from(rows.max(1));
        self
    }

    /// Check the URL and build the pool. Connections are made on demand, so an app can start
    /// while PostgreSQL is down and serve once it is up.
    pub fn build(self) -> Result<PostgresStore, StoreError> {
        let mut config: tokio_postgres::Config =
            self.url.parse().map_err(StoreError::unavailable)?;
        let mut options = format!("-c statement_timeout={}", self.timeout.as_millis());
        if let Some(schema) = &self.schema {
            if schema.is_empty()
                || !schema
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                return Err(StoreError::unavailable("invalid schema name"));
            }
            options.push_str(&format!(" -c search_path={schema}"));
        }
        config.options(&options);
        config.connect_timeout(self.timeout);
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(self.pool_size)
            .wait_timeout(Some(self.timeout))
            .create_timeout(Some(self.timeout))
            .recycle_timeout(Some(self.timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(StoreError::unavailable)?;
        Ok(PostgresStore {
            inner: Arc::new(Inner {
                pool,
                schema: self.schema,
                timeout: self.timeout,
                purge_batch: self.purge_batch,
                create_sql: format!("WITH {} SELECT 1", insert_grant_sql("")),
                redeem_sql: format!(
                    "WITH c AS (
    UPDATE oauth_codes SET redeemed_by = $1 WHERE hash = $17 AND redeemed_by IS NULL RETURNING hash
), {}
SELECT (SELECT count(*) FROM c),
       (SELECT redeemed_by FROM oauth_codes WHERE hash = $17),
       (SELECT count(*) FROM oauth_codes WHERE hash = $17)",
                    insert_grant_sql("WHERE EXISTS (SELECT 1 FROM c)")
                ),
            }),
        })
    }
}

struct Inner {
    pool: Pool,
    schema: Option<String>,
    timeout: Duration,
    purge_batch: i64,
    create_sql: String,
    redeem_sql: String,
}

/// The PostgreSQL [`TokenStore`]. Cloning shares the pool.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: not shown.
        f.debug_struct("PostgresStore")
            .field("schema", &self.inner.schema)
            .field("timeout", &self.inner.timeout)
            .field("pool", &self.inner.pool.status())
            .finish_non_exhaustive()
    }
}

fn corrupt(what: &'static str) -> StoreError {
    StoreError::Corrupt(BoxError::from(what))
}

fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn gid_bytes(id: GrantId) -> [u8; 16] {
    id.as_u128().to_be_bytes()
}

fn gid_from(bytes: &[u8]) -> Result<GrantId, StoreError> {
    let b: [u8; 16] = bytes.try_into().map_err(|_| corrupt("bad grant id"))?;
    Ok(GrantId::from_u128(u128::from_be_bytes(b)))
}

fn hash_from(bytes: &[u8]) -> Result<TokenHash, StoreError> {
    Ok(TokenHash::from_bytes(
        bytes.try_into().map_err(|_| corrupt("bad token hash"))?,
    ))
}

fn scope(s: &str) -> Result<Scope, StoreError> {
    Scope::parse(s).map_err(|_| corrupt("bad scope"))
}

/// A grant from the seven `grant_columns!()` starting at column `at`.
fn grant_from(row: &Row, at: usize) -> Result<GrantRecord, StoreError> {
    let get = |e| StoreError::Corrupt(BoxError::from(e));
    Ok(GrantRecord {
        id: gid_from(row.try_get::<_, &[u8]>(at).map_err(get)?)?,
        client_id: Arc::from(row.try_get::<_, &str>(at + 1).map_err(get)?),
        subject: row
            .try_get::<_, Option<&str>>(at + 2)
            .map_err(get)?
            .map(Arc::from),
        scope: scope(row.try_get(at + 3).map_err(get)?)?,
        grant_type: GrantType::parse(row.try_get(at + 4).map_err(get)?)
            .ok_or_else(|| corrupt("bad grant type"))?,
        created_at: u(row.try_get(at + 5).map_err(get)?),
        expires_at: row.try_get::<_, Option<i64>>(at + 6).map_err(get)?.map(u),
    })
}

/// The values of the 16 parameters of [`insert_grant_sql`].
struct GrantParams {
    id: Vec<u8>,
    client: String,
    subject: Option<String>,
    scope: String,
    grant_type: &'static str,
    created: i64,
    expires: Option<i64>,
    purge_at: i64,
    a_hash: Vec<u8>,
    a_scope: String,
    a_iat: i64,
    a_exp: i64,
    r_hash: Option<Vec<u8>>,
    r_iat: i64,
    r_exp: i64,
    r_gen: i32,
}

impl GrantParams {
    fn new(
        grant: &GrantRecord,
        access: &NewAccessToken,
        refresh: Option<&NewRefreshToken>,
    ) -> Self {
        let purge_at = refresh.map_or(access.expires_at, |r| r.expires_at.max(access.expires_at));
        Self {
            id: gid_bytes(grant.id).to_vec(),
            client: grant.client_id.to_string(),
            subject: grant.subject.as_deref().map(str::to_owned),
            scope: grant.scope.to_string(),
            grant_type: grant.grant_type.as_str(),
            created: i(grant.created_at),
            expires: grant.expires_at.map(i),
            purge_at: i(purge_at),
            a_hash: access.hash.as_bytes().to_vec(),
            a_scope: access.scope.to_string(),
            a_iat: i(access.issued_at),
            a_exp: i(access.expires_at),
            r_hash: refresh.map(|r| r.hash.as_bytes().to_vec()),
            r_iat: refresh.map_or(0, |r| i(r.issued_at)),
            r_exp: refresh.map_or(0, |r| i(r.expires_at)),
            r_gen: refresh.map_or(0, |r| i32::try_from(r.generation).unwrap_or(i32::MAX)),
        }
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 16] {
        [
            &self.id,
            &self.client,
            &self.subject,
            &self.scope,
            &self.grant_type,
            &self.created,
            &self.expires,
            &self.purge_at,
            &self.a_hash,
            &self.a_scope,
            &self.a_iat,
            &self.a_exp,
            &self.r_hash,
            &self.r_iat,
            &self.r_exp,
            &self.r_gen,
        ]
    }
}

impl PostgresStore {
    /// A store at `url` (`postgres://user[:password]@host:port/db`) with default settings.
    pub fn new(url: &str) -> Result<Self, StoreError> {
        Self::builder(url).build()
    }

    /// Configure a store at `url`.
    pub fn builder(url: impl Into<String>) -> PostgresStoreBuilder {
        PostgresStoreBuilder {
            url: url.into(),
            schema: None,
            pool_size: 16,
            timeout: Duration::from_secs(2),
            purge_batch: 1000,
        }
    }

    /// Create or upgrade the schema. Safe to call from several processes at once (it takes an
    /// advisory lock) and on every start (applied versions are skipped).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(StoreError::unavailable)?;
        let err = StoreError::unavailable;
        tx.batch_execute("SELECT pg_advisory_xact_lock(727500213)")
            .await
            .map_err(err)?;
        if let Some(schema) = &self.inner.schema {
            tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .await
                .map_err(err)?;
        }
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS oauth_schema_version (version INTEGER PRIMARY KEY)",
        )
        .await
        .map_err(err)?;
        let applied: i32 = tx
            .query_one(
                "SELECT coalesce(max(version), 0) FROM oauth_schema_version",
                &[],
            )
            .await
            .map_err(err)?
            .get(0);
        for (n, sql) in MIGRATIONS.iter().enumerate() {
            let version = i32::try_from(n + 1).unwrap_or(i32::MAX);
            if version > applied {
                tx.batch_execute(sql).await.map_err(err)?;
                tx.execute("INSERT INTO oauth_schema_version VALUES ($1)", &[&version])
                    .await
                    .map_err(err)?;
            }
        }
        tx.commit().await.map_err(err)
    }

    async fn client(&self) -> Result<Object, StoreError> {
        self.inner.pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Timeout(_) => StoreError::Timeout,
            e => StoreError::unavailable(e),
        })
    }

    /// Run one statement, bounded by the timeout.
    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let work = async {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(sql)
                .await
                .map_err(StoreError::unavailable)?;
            client
                .query(&stmt, params)
                .await
                .map_err(StoreError::unavailable)
        };
        tokio::time::timeout(self.inner.timeout, work)
            .await
            .map_err(|_| StoreError::Timeout)?
    }

    async fn query_opt(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, StoreError> {
        Ok(self.query(sql, params).await?.into_iter().next())
    }

    async fn count(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<i64, StoreError> {
        let row = self
            .query_opt(sql, params)
            .await?
            .ok_or_else(|| corrupt("no row"))?;
        row.try_get(0).map_err(|e| StoreError::Corrupt(e.into()))
    }
}

#[async_trait]
impl TokenStore for PostgresStore {
    async fn create_grant(
        &self,
        grant: GrantRecord,
        access: NewAccessToken,
        refresh: Option<NewRefreshToken>,
    ) -> Result<(), StoreError> {
        let p = GrantParams::new(&grant, &access, refresh.as_ref());
        self.query(&self.inner.create_sql, &p.params())
            .await
            .map(drop)
    }

    async fn find_access_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<AccessTokenRecord>, StoreError> {
        let Some(row) = self
            .query_opt(FIND_ACCESS, &[&hash.as_bytes().as_slice()])
            .await?
        else {
            return Ok(None);
        };
        let get = |e| StoreError::Corrupt(BoxError::from(e));
        Ok(Some(AccessTokenRecord {
            scope: scope(row.try_get(0).map_err(get)?)?,
            issued_at: u(row.try_get(1).map_err(get)?),
            expires_at: u(row.try_get(2).map_err(get)?),
            grant: grant_from(&row, 3)?,
        }))
    }

    async fn find_refresh_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<RefreshTokenRecord>, StoreError> {
        let Some(row) = self
            .query_opt(FIND_REFRESH, &[&hash.as_bytes().as_slice()])
            .await?
        else {
            return Ok(None);
        };
        let get = |e| StoreError::Corrupt(BoxError::from(e));
        let state = match row.try_get::<_, Option<i64>>(4).map_err(get)? {
            None => RefreshTokenState::Active,
            Some(at) => RefreshTokenState::Rotated {
                at: u(at),
                sealed: match (
                    row.try_get::<_, Option<Vec<u8>>>(5).map_err(get)?,
                    row.try_get::<_, Option<i64>>(6).map_err(get)?,
                ) {
                    (Some(bytes), Some(until)) => Some(Sealed {
                        bytes: bytes.into(),
                        until: u(until),
                    }),
                    _ => None,
                },
            },
        };
        let generation = |v: i32| u32::try_from(v).map_err(|_| corrupt("bad generation"));
        Ok(Some(RefreshTokenRecord {
            hash: *hash,
            issued_at: u(row.try_get(0).map_err(get)?),
            expires_at: u(row.try_get(1).map_err(get)?),
            generation: generation(row.try_get(2).map_err(get)?)?,
            access_token: row
                .try_get::<_, Option<&[u8]>>(3)
                .map_err(get)?
                .map(hash_from)
                .transpose()?,
            state,
            family_generation: generation(row.try_get(7).map_err(get)?)?,
            grant: grant_from(&row, 8)?,
        }))
    }

    async fn rotate_refresh_token(
        &self,
        rotation: Rotation,
    ) -> Result<RotationOutcome, StoreError> {
        let a = &rotation.access;
        let r = rotation.refresh.as_ref();
        let purge_at = r.map_or(a.expires_at, |r| r.expires_at.max(a.expires_at));
        let sealed = rotation.sealed.as_ref().map(|s| s.bytes.to_vec());
        let sealed_until = rotation.sealed.as_ref().map(|s| i(s.until));
        let r_hash = r.map(|r| r.hash.as_bytes().to_vec());
        let rotating = r.is_some();
        let params: [&(dyn ToSql + Sync); 16] = [
            &rotation.presented.as_bytes().as_slice(),
            &i(rotation.now),
            &sealed,
            &sealed_until,
            &i32::try_from(rotation.generation).unwrap_or(i32::MAX),
            &r.map_or(0, |r| i32::try_from(r.generation).unwrap_or(i32::MAX)),
            &i(purge_at),
            &rotation.revoke_previous_access,
            &a.hash.as_bytes().as_slice(),
            &a.scope.as_str(),
            &i(a.issued_at),
            &i(a.expires_at),
            &r_hash,
            &r.map_or(0, |r| i(r.issued_at)),
            &r.map_or(0, |r| i(r.expires_at)),
            &rotating,
        ];
        Ok(if self.count(ROTATE, &params).await? == 1 {
            RotationOutcome::Rotated
        } else {
            RotationOutcome::Conflict
        })
    }

    async fn revoke_access_token(&self, hash: &TokenHash) -> Result<bool, StoreError> {
        let live: bool = self
            .query_opt(
                "WITH d AS (DELETE FROM oauth_access_tokens WHERE hash = $1 RETURNING grant_id)
                 SELECT EXISTS (SELECT 1 FROM d JOIN oauth_grants g ON g.id = d.grant_id WHERE NOT g.revoked)",
                &[&hash.as_bytes().as_slice()],
            )
            .await?
            .ok_or_else(|| corrupt("no row"))?
            .get(0);
        Ok(live)
    }

    async fn revoke_grant(&self, id: GrantId) -> Result<bool, StoreError> {
        // Live → revoked; unknown → a tombstone, so a grant created later is born revoked.
        let n = self
            .count(
                "WITH u AS (
                    UPDATE oauth_grants SET revoked = TRUE WHERE id = $1 AND NOT revoked RETURNING 1
                 ), t AS (
                    INSERT INTO oauth_grants (id, client_id, scope, grant_type, created_at, revoked, purge_at)
                    VALUES ($1, '', '', 'tombstone', extract(epoch FROM now())::bigint, TRUE,
                            extract(epoch FROM now())::bigint + $2)
                    ON CONFLICT (id) DO NOTHING
                 )
                 SELECT count(*) FROM u",
                &[&gid_bytes(id).as_slice(), &i(TOMBSTONE_SECS)],
            )
            .await?;
        Ok(n == 1)
    }

    async fn revoke_grants(&self, filter: &GrantFilter) -> Result<u64, StoreError> {
        let (sql, value) = match filter {
            GrantFilter::Subject(s) => (
                "WITH u AS (UPDATE oauth_grants SET revoked = TRUE WHERE subject = $1 AND NOT revoked RETURNING 1) SELECT count(*) FROM u",
                s,
            ),
            GrantFilter::Client(c) => (
                "WITH u AS (UPDATE oauth_grants SET revoked = TRUE WHERE client_id = $1 AND NOT revoked RETURNING 1) SELECT count(*) FROM u",
                c,
            ),
        };
        Ok(u(self.count(sql, &[value]).await?))
    }

    async fn create_code(&self, code: AuthorizationCodeRecord) -> Result<(), StoreError> {
        let (challenge, method) = match &code.code_challenge {
            Some((c, m)) => (Some(c.as_str()), Some(m.as_str())),
            None => (None, None),
        };
        self.query(
            "INSERT INTO oauth_codes (hash, client_id, subject, redirect_uri, scope, challenge,
                 challenge_method, issued_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &code.hash.as_bytes().as_slice(),
                &&*code.client_id,
                &&*code.subject,
                &code.redirect_uri,
                &code.scope.as_str(),
                &challenge,
                &method,
                &i(code.issued_at),
                &i(code.expires_at),
            ],
        )
        .await
        .map(drop)
    }

    async fn find_code(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<AuthorizationCodeRecord>, StoreError> {
        let Some(row) = self
            .query_opt(
                "SELECT client_id, subject, redirect_uri, scope, challenge, challenge_method,
                        issued_at, expires_at, redeemed_by
                 FROM oauth_codes WHERE hash = $1",
                &[&hash.as_bytes().as_slice()],
            )
            .await?
        else {
            return Ok(None);
        };
        let get = |e| StoreError::Corrupt(BoxError::from(e));
        let challenge = match (
            row.try_get::<_, Option<String>>(4).map_err(get)?,
            row.try_get::<_, Option<&str>>(5).map_err(get)?,
        ) {
            (Some(c), Some("S256")) => Some((c, CodeChallengeMethod::S256)),
            (Some(c), Some("plain")) => Some((c, CodeChallengeMethod::Plain)),
            (None, _) => None,
            _ => return Err(corrupt("bad challenge method")),
        };
        Ok(Some(AuthorizationCodeRecord {
            hash: *hash,
            client_id: Arc::from(row.try_get::<_, &str>(0).map_err(get)?),
            subject: Arc::from(row.try_get::<_, &str>(1).map_err(get)?),
            redirect_uri: row.try_get(2).map_err(get)?,
            scope: scope(row.try_get(3).map_err(get)?)?,
            code_challenge: challenge,
            issued_at: u(row.try_get(6).map_err(get)?),
            expires_at: u(row.try_get(7).map_err(get)?),
            redeemed_by: row
                .try_get::<_, Option<&[u8]>>(8)
                .map_err(get)?
                .map(gid_from)
                .transpose()?,
        }))
    }

    async fn redeem_code(
        &self,
        hash: &TokenHash,
        grant: GrantRecord,
        access: NewAccessToken,
        refresh: Option<NewRefreshToken>,
    ) -> Result<Redemption, StoreError> {
        let p = GrantParams::new(&grant, &access, refresh.as_ref());
        let code = hash.as_bytes().as_slice();
        let mut params: Vec<&(dyn ToSql + Sync)> = p.params().to_vec();
        params.push(&code);
        let row = self
            .query_opt(&self.inner.redeem_sql, &params)
            .await?
            .ok_or_else(|| corrupt("no row"))?;
        let get = |e| StoreError::Corrupt(BoxError::from(e));
        if row.try_get::<_, i64>(0).map_err(get)? == 1 {
            return Ok(Redemption::Redeemed);
        }
        if row.try_get::<_, i64>(2).map_err(get)? == 0 {
            return Ok(Redemption::Missing);
        }
        // Redeemed by another statement: read it back in a fresh snapshot if this one predates it.
        let by = match row.try_get::<_, Option<Vec<u8>>>(1).map_err(get)? {
            Some(by) => by,
            None => self
                .query_opt(
                    "SELECT redeemed_by FROM oauth_codes WHERE hash = $1",
                    &[&code],
                )
                .await?
                .and_then(|r| r.get::<_, Option<Vec<u8>>>(0))
                .ok_or_else(|| corrupt("code neither free nor redeemed"))?,
        };
        Ok(Redemption::AlreadyRedeemed(gid_from(&by)?))
    }

    async fn purge_expired(&self, now: UnixTime) -> Result<u64, StoreError> {
        let code_cutoff = i(now.saturating_sub(CODE_RETENTION_SECS));
        let now = i(now);
        let batch = self.inner.purge_batch;
        // Each statement with the time it compares against.
        let statements = [
            (
                "WITH d AS (DELETE FROM oauth_access_tokens WHERE hash IN (
                SELECT hash FROM oauth_access_tokens WHERE expires_at <= $1 LIMIT $2) RETURNING 1)
             SELECT count(*) FROM d",
                now,
            ),
            (
                "WITH d AS (DELETE FROM oauth_access_tokens WHERE hash IN (
                SELECT a.hash FROM oauth_access_tokens a JOIN oauth_grants g ON g.id = a.grant_id
                WHERE g.revoked OR g.expires_at <= $1 LIMIT $2) RETURNING 1)
             SELECT count(*) FROM d",
                now,
            ),
            (
                "WITH d AS (DELETE FROM oauth_refresh_tokens WHERE hash IN (
                SELECT hash FROM oauth_refresh_tokens WHERE expires_at <= $1 LIMIT $2) RETURNING 1)
             SELECT count(*) FROM d",
                now,
            ),
            (
                "WITH d AS (DELETE FROM oauth_refresh_tokens WHERE hash IN (
                SELECT r.hash FROM oauth_refresh_tokens r JOIN oauth_grants g ON g.id = r.grant_id
                WHERE g.revoked OR g.expires_at <= $1 LIMIT $2) RETURNING 1)
             SELECT count(*) FROM d",
                now,
            ),
            (
                "WITH d AS (DELETE FROM oauth_codes WHERE hash IN (
                SELECT hash FROM oauth_codes WHERE expires_at <= $1 LIMIT $2) RETURNING 1)
             SELECT count(*) FROM d",
                code_cutoff,
            ),
            (
                "WITH d AS (DELETE FROM oauth_grants WHERE id IN (
                SELECT id FROM oauth_grants WHERE purge_at <= $1 LIMIT $2) RETURNING 1)
             SELECT count(*) FROM d",
                now,
            ),
        ];
        let mut total = 0;
        for (sql, cutoff) in statements {
            // Bounded batches: no statement holds locks on more than `batch` rows.
            loop {
                let n = self.count(sql, &[&cutoff, &batch]).await?;
                total += u(n);
                if n < batch {
                    break;
                }
            }
        }
        Ok(total)
    }
}
