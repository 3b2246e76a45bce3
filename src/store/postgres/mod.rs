//! The PostgreSQL token store (feature `postgres`): for apps running on several machines.
//!
//! Every operation is one SQL statement (one round trip; each a file under `sql/`): a rotation is
//! a single `UPDATE … RETURNING` whose row lock makes it a compare-and-set, with the successor
//! inserts in the same statement's CTEs; a family is revoked by one `UPDATE` of its grant row
//! (O(1), whatever its size), and every lookup joins on that row. Expiry is indexed and
//! [`PurgeStore::purge_expired`](crate::store::PurgeStore::purge_expired) deletes in bounded batches. The schema ships with the crate
//! (`migrations/`) and is applied by [`PostgresStore::migrate`], an explicit call.
//!
//! Build it from a URL, or from a pool the app already has ([`PostgresStore::from_pool`]). A
//! URL that does not parse or an invalid schema name is a [`ConfigError`] when the store is
//! built; failures to reach the database are [`StoreError`]s (503 at the endpoints).
//!
//! From schema version 4, triggers announce every revocation with `pg_notify` on
//! `oauth:{schema}`, delivered when the revoking transaction commits, for the instances'
//! [`NearCache`](crate::store::NearCache)s; a store opened from a URL listens there on a
//! connection of its own ([`Announcements::listen`](crate::store::Announcements::listen)).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
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

mod listen;
mod records;
mod rows;
mod statements;

use std::{fmt, sync::Arc, time::Duration};

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::{NoTls, Row, types::ToSql};

use self::{
    rows::{Columns, GrantParams, from_db, generation_to_db, grant_id_to_db, to_db},
    statements::{
        CLEAR_SEALED, CREATE_CODE, Cutoff, FIND_CODE, LOCK_REFRESH, MIGRATIONS, REVOKE_ACCESS,
        REVOKE_GRANT, ROTATE, Statements,
    },
};
use super::{
    AccessTokenRecord, Announcements, AuthorizationCodeRecord, CODE_RETENTION_SECS,
    CodeChallengeMethod, CodeStore, GrantFilter, GrantRecord, GrantStore, NewAccessToken,
    NewRefreshToken, PurgeStore, Redemption, RefreshTokenRecord, RefreshTokenState, Rotation,
    RotationOutcome, Sealed, Source, TOMBSTONE_SECS, grant_purge_at, within,
};
use crate::{
    clock::UnixTime,
    error::{ConfigError, StoreError},
    token::{GrantId, TokenHash},
};

/// Builds a [`PostgresStore`].
#[derive(Clone, Debug)]
#[must_use]
pub struct PostgresStoreBuilder {
    source: Source<Pool>,
    schema: Option<String>,
    pool_size: usize,
    timeout: Duration,
    purge_batch: i64,
}

impl PostgresStoreBuilder {
    /// Keep the tables in this schema (created by `migrate`); default: the connection's
    /// `search_path` (usually `public`). Letters, digits and `_` only. For a URL source: an
    /// app's own pool brings its own `search_path`.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// Maximum connections in the pool (default 16; for a URL source).
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// Upper bound of each store call: waiting for a connection, connecting and the statement
    /// (default 2 s; for a URL source also the server-side `statement_timeout`).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Rows deleted per statement by `purge_expired` (default 1000).
    pub fn purge_batch(mut self, rows: u32) -> Self {
        self.purge_batch = i64::from(rows.max(1));
        self
    }

    /// Check the configuration and build the pool. Connections are made on demand, so an app can
    /// start while PostgreSQL is down and serve once it is up. A URL that does not parse, an
    /// invalid schema name, or a schema asked of an app's own pool is [`ConfigError::Store`].
    pub fn build(self) -> Result<PostgresStore, ConfigError> {
        if let Some(schema) = &self.schema {
            let valid = !schema.is_empty()
                && schema
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !valid {
                return Err(ConfigError::Store("invalid schema name"));
            }
        }
        let (pool, config) = match &self.source {
            Source::Given(_) if self.schema.is_some() => {
                return Err(ConfigError::Store(
                    "a schema cannot be set on the app's own pool: set its search_path",
                ));
            }
            Source::Given(pool) => (pool.clone(), None),
            Source::Url(url) => {
                let config = self.connection_config(url)?;
                (self.pool_from(config.clone())?, Some(config))
            }
        };
        Ok(self.assemble(pool, config))
    }

    fn connection_config(&self, url: &str) -> Result<tokio_postgres::Config, ConfigError> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|_| ConfigError::Store("invalid PostgreSQL URL"))?;
        let mut options = format!("-c statement_timeout={}", self.timeout.as_millis());
        if let Some(schema) = &self.schema {
            options.push_str(&format!(" -c search_path={schema}"));
        }
        config.options(&options);
        config.connect_timeout(self.timeout);
        Ok(config)
    }

    fn pool_from(&self, config: tokio_postgres::Config) -> Result<Pool, ConfigError> {
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        Pool::builder(manager)
            .max_size(self.pool_size)
            .wait_timeout(Some(self.timeout))
            .create_timeout(Some(self.timeout))
            .recycle_timeout(Some(self.timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|_| ConfigError::Store("the connection pool cannot be built"))
    }

    fn assemble(self, pool: Pool, listen: Option<tokio_postgres::Config>) -> PostgresStore {
        PostgresStore {
            inner: Arc::new(Inner {
                pool,
                listen,
                schema: self.schema,
                timeout: self.timeout,
                purge_batch: self.purge_batch,
                statements: Statements::new(),
            }),
        }
    }
}

struct Inner {
    pool: Pool,
    /// How the announcement channel connects: a URL source's settings; `None` for an app's own
    /// pool, whose settings are not known.
    listen: Option<tokio_postgres::Config>,
    schema: Option<String>,
    timeout: Duration,
    purge_batch: i64,
    statements: Statements,
}

/// The PostgreSQL [`TokenStore`](crate::store::TokenStore). Cloning shares the pool.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may hold a password: not shown.
        f.debug_struct("PostgresStore")
            .field("schema", &self.inner.schema)
            .field("timeout", &self.inner.timeout)
            .field("pool", &self.inner.pool.status())
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// A store at `url` (`postgres://user[:password]@host:port/db`) with default settings.
    pub fn new(url: &str) -> Result<Self, ConfigError> {
        Self::builder(url).build()
    }

    /// Configure a store at `url`.
    pub fn builder(url: impl Into<String>) -> PostgresStoreBuilder {
        Self::builder_over(Source::Url(url.into()))
    }

    /// A store on a pool the app already has, with default settings. Its connections'
    /// `search_path` decides where the tables are.
    pub fn from_pool(pool: Pool) -> Self {
        // An app's pool needs no checking.
        Self::builder_over(Source::Given(pool.clone())).assemble(pool, None)
    }

    /// Configure a store on a pool the app already has.
    pub fn builder_from_pool(pool: Pool) -> PostgresStoreBuilder {
        Self::builder_over(Source::Given(pool))
    }

    fn builder_over(source: Source<Pool>) -> PostgresStoreBuilder {
        PostgresStoreBuilder {
            source,
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
        within(self.inner.timeout, async {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(sql)
                .await
                .map_err(StoreError::unavailable)?;
            client
                .query(&stmt, params)
                .await
                .map_err(StoreError::unavailable)
        })
        .await
    }

    async fn query_opt(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, StoreError> {
        Ok(self.query(sql, params).await?.into_iter().next())
    }

    /// A statement that answers one row.
    async fn query_one(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, StoreError> {
        self.query_opt(sql, params)
            .await?
            .ok_or_else(|| StoreError::corrupt("no row"))
    }

    /// `lock`, then `sql` (which answers one count), in one transaction: `sql` runs with a
    /// snapshot taken after `lock` got its locks, so it sees what their last holder wrote.
    async fn count_locked(
        &self,
        lock: &str,
        lock_params: &[&(dyn ToSql + Sync)],
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let err = StoreError::unavailable;
        within(self.inner.timeout, async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(err)?;
            let lock = tx.prepare_cached(lock).await.map_err(err)?;
            tx.query(&lock, lock_params).await.map_err(err)?;
            let stmt = tx.prepare_cached(sql).await.map_err(err)?;
            let row = tx.query_one(&stmt, params).await.map_err(err)?;
            tx.commit().await.map_err(err)?;
            Columns(&row).get::<i64>("count").map(from_db)
        })
        .await
    }

    /// A statement that answers one count.
    async fn count(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, StoreError> {
        let row = self.query_one(sql, params).await?;
        Columns(&row).get::<i64>("count").map(from_db)
    }
}

#[async_trait]
impl GrantStore for PostgresStore {
    async fn create_grant(
        &self,
        grant: GrantRecord,
        access: NewAccessToken,
        refresh: Option<NewRefreshToken>,
    ) -> Result<(), StoreError> {
        let p = GrantParams::new(&grant, &access, refresh.as_ref());
        self.query(&self.inner.statements.create_grant, &p.with(&[]))
            .await
            .map(drop)
    }

    async fn find_access_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<AccessTokenRecord>, StoreError> {
        let sql = &self.inner.statements.find_access;
        let Some(row) = self.query_opt(sql, &[&hash.as_bytes().as_slice()]).await? else {
            return Ok(None);
        };
        let c = Columns(&row);
        Ok(Some(AccessTokenRecord {
            scope: c.scope("scope")?,
            audience: c.resources("audience")?,
            issued_at: c.time("issued_at")?,
            expires_at: c.time("expires_at")?,
            grant: c.grant()?,
        }))
    }

    async fn find_refresh_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<RefreshTokenRecord>, StoreError> {
        let sql = &self.inner.statements.find_refresh;
        let Some(row) = self.query_opt(sql, &[&hash.as_bytes().as_slice()]).await? else {
            return Ok(None);
        };
        let c = Columns(&row);
        let state = match c.opt_time("rotated_at")? {
            None => RefreshTokenState::Active,
            Some(at) => RefreshTokenState::Rotated {
                at,
                sealed: c
                    .get::<Option<Vec<u8>>>("sealed")?
                    .zip(c.opt_time("sealed_until")?)
                    .map(|(bytes, until)| Sealed {
                        bytes: bytes.into(),
                        until,
                    }),
            },
        };
        Ok(Some(RefreshTokenRecord {
            hash: *hash,
            issued_at: c.time("issued_at")?,
            expires_at: c.time("expires_at")?,
            generation: c.generation("generation")?,
            access_token: c.opt_token_hash("access_hash")?,
            state,
            family_generation: c.generation("grant_generation")?,
            grant: c.grant()?,
        }))
    }

    async fn rotate_refresh_token(
        &self,
        rotation: Rotation,
    ) -> Result<RotationOutcome, StoreError> {
        let a = &rotation.access;
        let r = rotation.refresh.as_ref();
        let sealed = rotation.sealed.as_ref().map(|s| s.bytes.to_vec());
        let sealed_until = rotation.sealed.as_ref().map(|s| to_db(s.until));
        let successor_hash = r.map(|r| r.hash.as_bytes().to_vec());
        // rotate.sql's $1…$17, in order.
        let params: [&(dyn ToSql + Sync); 17] = [
            &rotation.presented.as_bytes().as_slice(),
            &to_db(rotation.now),
            &sealed,
            &sealed_until,
            &generation_to_db(rotation.generation),
            &r.map_or(0, |r| generation_to_db(r.generation)),
            &to_db(grant_purge_at(a, r)),
            &rotation.revoke_previous_access,
            &a.hash.as_bytes().as_slice(),
            &a.scope.as_str(),
            &to_db(a.issued_at),
            &to_db(a.expires_at),
            &successor_hash,
            &r.map_or(0, |r| to_db(r.issued_at)),
            &r.map_or(0, |r| to_db(r.expires_at)),
            &r.is_some(),
            &a.audience.as_str(),
        ];
        let applied = if r.is_none() && rotation.revoke_previous_access {
            self.count_locked(LOCK_REFRESH, &params[..1], ROTATE, &params)
                .await?
        } else {
            self.count(ROTATE, &params).await?
        };
        Ok(if applied == 1 {
            RotationOutcome::Rotated
        } else {
            RotationOutcome::Conflict
        })
    }

    async fn revoke_access_token(&self, hash: &TokenHash) -> Result<bool, StoreError> {
        let row = self
            .query_one(REVOKE_ACCESS, &[&hash.as_bytes().as_slice()])
            .await?;
        Columns(&row).get("live")
    }

    async fn revoke_grant(&self, id: GrantId) -> Result<bool, StoreError> {
        let id = grant_id_to_db(id);
        let params: [&(dyn ToSql + Sync); 2] = [&id.as_slice(), &to_db(TOMBSTONE_SECS)];
        Ok(self.count(REVOKE_GRANT, &params).await? == 1)
    }

    async fn revoke_grants(&self, filter: &GrantFilter) -> Result<u64, StoreError> {
        let statements = &self.inner.statements;
        let (sql, value) = match filter {
            GrantFilter::Subject(s) => (&statements.revoke_by_subject, s),
            GrantFilter::Client(c) => (&statements.revoke_by_client, c),
        };
        self.count(sql, &[value]).await
    }
}

#[async_trait]
impl CodeStore for PostgresStore {
    async fn create_code(&self, code: AuthorizationCodeRecord) -> Result<(), StoreError> {
        let (challenge, method) = match &code.code_challenge {
            Some((c, m)) => (Some(c.as_str()), Some(m.as_str())),
            None => (None, None),
        };
        // create_code.sql's columns, in order.
        let params: [&(dyn ToSql + Sync); 10] = [
            &code.hash.as_bytes().as_slice(),
            &&*code.client_id,
            &&*code.subject,
            &code.redirect_uri,
            &code.scope.as_str(),
            &challenge,
            &method,
            &to_db(code.issued_at),
            &to_db(code.expires_at),
            &code.resources.as_str(),
        ];
        self.query(CREATE_CODE, &params).await.map(drop)
    }

    async fn find_code(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<AuthorizationCodeRecord>, StoreError> {
        let Some(row) = self
            .query_opt(FIND_CODE, &[&hash.as_bytes().as_slice()])
            .await?
        else {
            return Ok(None);
        };
        let c = Columns(&row);
        let code_challenge = match (
            c.get::<Option<String>>("challenge")?,
            c.get::<Option<&str>>("challenge_method")?,
        ) {
            (None, _) => None,
            (Some(challenge), Some(method)) => Some((
                challenge,
                CodeChallengeMethod::parse(method)
                    .ok_or_else(|| StoreError::corrupt("bad challenge method"))?,
            )),
            (Some(_), None) => return Err(StoreError::corrupt("challenge without a method")),
        };
        Ok(Some(AuthorizationCodeRecord {
            hash: *hash,
            client_id: Arc::from(c.get::<&str>("client_id")?),
            subject: Arc::from(c.get::<&str>("subject")?),
            redirect_uri: c.get("redirect_uri")?,
            scope: c.scope("scope")?,
            resources: c.resources("resources")?,
            code_challenge,
            issued_at: c.time("issued_at")?,
            expires_at: c.time("expires_at")?,
            redeemed_by: c.opt_grant_id("redeemed_by")?,
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
        let row = self
            .query_one(&self.inner.statements.redeem_code, &p.with(&[&code]))
            .await?;
        let c = Columns(&row);
        if c.get::<i64>("redeemed")? == 1 {
            return Ok(Redemption::Redeemed);
        }
        if c.get::<i64>("code_exists")? == 0 {
            return Ok(Redemption::Missing);
        }
        // Redeemed by another statement: read it back in a fresh snapshot if this one predates it.
        if let Some(first) = c.opt_grant_id("redeemed_by")? {
            return Ok(Redemption::AlreadyRedeemed(first));
        }
        let again = self.query_one(FIND_CODE, &[&code]).await?;
        Columns(&again)
            .opt_grant_id("redeemed_by")?
            .map(Redemption::AlreadyRedeemed)
            .ok_or_else(|| StoreError::corrupt("code neither free nor redeemed"))
    }
}

#[async_trait]
impl PurgeStore for PostgresStore {
    async fn purge_expired(&self, now: UnixTime) -> Result<u64, StoreError> {
        let mut total = 0;
        for (sql, cutoff) in &self.inner.statements.purges {
            let cutoff = to_db(match cutoff {
                Cutoff::Now => now,
                Cutoff::CodeRetention => now.saturating_sub(CODE_RETENTION_SECS),
            });
            total += self.in_batches(sql, cutoff).await?;
        }
        // Not counted as removed: the token stays, only the response it sealed goes.
        self.in_batches(CLEAR_SEALED, to_db(now)).await?;
        Ok(total)
    }
}

impl Announcements for PostgresStore {
    fn announces_revocations(&self) -> bool {
        // The channel needs a connection of its own, which only a URL source can make.
        self.inner.listen.is_some()
    }

    fn listen(&self, listener: std::sync::Weak<dyn crate::store::InvalidationListener>) {
        if let Some(config) = &self.inner.listen {
            listen::spawn(config.clone(), listener);
        }
    }
}

impl PostgresStore {
    /// Run a purge statement (`$1` the cutoff, `$2` the batch size) until it has nothing left
    /// to do: bounded batches, so no statement holds locks on more than `batch` rows.
    async fn in_batches(&self, sql: &str, cutoff: i64) -> Result<u64, StoreError> {
        let batch = self.inner.purge_batch;
        let mut total = 0;
        loop {
            let n = self.count(sql, &[&cutoff, &batch]).await?;
            total += n;
            if n < from_db(batch) {
                return Ok(total);
            }
        }
    }
}
