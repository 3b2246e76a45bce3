//! The Redis token store (feature `redis`): for apps running on several machines.
//!
//! Every operation is one round trip: reads and atomic changes are Lua scripts (`EVALSHA`, one
//! file each under `lua/`), so a rotation's compare-and-set, a family revocation and a code
//! redemption are atomic inside Redis. A family is revoked by flipping one flag on its grant
//! (O(1), whatever its size); every lookup checks that flag in the same script. Keys carry TTLs,
//! so Redis expires what it holds.
//!
//! Keys (under a configurable prefix, default `tower-oauth2:`): `g:{grant}` (hash), `a:{sha256}`
//! and `r:{sha256}` (hashes), `c:{sha256}` (hash), `s:{subject}` / `k:{client}` (sets of grant
//! ids, for bulk revocation). Requires Redis 7 (for `EXPIREAT … GT`); not Redis Cluster.
//!
//! Every revoking script also `PUBLISH`es what it revoked on `{prefix}invalidations`, for the
//! instances' [`NearCache`](crate::store::NearCache)s; a store opened from a URL listens there
//! on a pub/sub connection of its own ([`TokenStore::listen`]).
//!
//! The connection is made on first use and re-made after failures by redis-rs's connection
//! manager (or is the app's own, [`RedisStore::from_connection_manager`]); every call is bounded
//! by a timeout. Failures are [`StoreError`]s (503 at the endpoints), never "invalid token"; a
//! URL that does not parse is a [`ConfigError`] when the store is built.
//!
//! ```no_run
//! # fn demo() -> Result<(), tower_oauth2::ConfigError> {
//! use std::time::Duration;
//! use tower_oauth2::store::RedisStore;
//!
//! let store = RedisStore::builder("redis://127.0.0.1:6379")
//!     .prefix("myapp:oauth:")
//!     .timeout(Duration::from_millis(500))
//!     .build()?;
//! # Ok(())
//! # }
//! ```

mod listen;
mod reply;
mod scripts;

use std::{fmt, sync::Arc, time::Duration};

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

use self::{
    reply::{Reply, grant_id},
    scripts::Scripts,
};
use super::{
    AccessTokenRecord, AuthorizationCodeRecord, CODE_RETENTION_SECS, CodeChallengeMethod,
    GrantFilter, GrantRecord, NewAccessToken, NewRefreshToken, PendingRequest, Redemption,
    RefreshTokenRecord, RefreshTokenState, Rotation, RotationOutcome, Sealed, Source,
    TOMBSTONE_SECS, grant_purge_at, within,
};
use crate::{
    clock::UnixTime,
    error::{ConfigError, StoreError},
    store::TokenStore,
    token::{GrantId, TokenHash},
};

/// Grant ids revoked per script by a bulk revocation.
const REVOKE_BATCH: usize = 500;

/// Builds a [`RedisStore`].
#[derive(Clone, Debug)]
#[must_use]
pub struct RedisStoreBuilder {
    source: Source<ConnectionManager>,
    prefix: String,
    timeout: Duration,
    connect_timeout: Duration,
}

impl RedisStoreBuilder {
    /// Prefix of every key (default `tower-oauth2:`), to share a Redis with other data.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Upper bound of each store call, connecting included (default 2 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Upper bound of one connection attempt (default 1 s; for a URL source).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Check the URL and build. No connection is made until the first call, so an app can start
    /// while Redis is down and serve once it is up. A URL that does not parse is
    /// [`ConfigError::Store`].
    pub fn build(self) -> Result<RedisStore, ConfigError> {
        let client = match &self.source {
            Source::Url(url) => Some(
                redis::Client::open(url.as_str())
                    .map_err(|_| ConfigError::Store("invalid Redis URL"))?,
            ),
            Source::Given(_) => None,
        };
        Ok(self.assemble(client))
    }

    fn assemble(self, client: Option<redis::Client>) -> RedisStore {
        let conn = match self.source {
            Source::Given(conn) => OnceCell::new_with(Some(conn)),
            Source::Url(_) => OnceCell::new(),
        };
        RedisStore {
            inner: Arc::new(Inner {
                client,
                conn,
                scripts: Scripts::new(),
                prefix: self.prefix,
                timeout: self.timeout,
                connect_timeout: self.connect_timeout,
            }),
        }
    }
}

struct Inner {
    /// What connects, for a URL source; `None` when the app gave its own connection.
    client: Option<redis::Client>,
    conn: OnceCell<ConnectionManager>,
    scripts: Scripts,
    prefix: String,
    timeout: Duration,
    connect_timeout: Duration,
}

/// The Redis [`TokenStore`]. Cloning shares the connection.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may hold a password: show neither it nor the client.
        f.debug_struct("RedisStore")
            .field("prefix", &self.inner.prefix)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

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

fn flag(on: bool) -> &'static str {
    if on { "1" } else { "0" }
}

/// The arguments that describe a new refresh token (`has_r rhash riat rexp rgen`), shared by
/// `create_grant` and `rotate`.
fn refresh_args(inv: &mut redis::ScriptInvocation<'_>, refresh: Option<&NewRefreshToken>) {
    match refresh {
        Some(r) => inv
            .arg("1")
            .arg(r.hash.to_hex())
            .arg(r.issued_at)
            .arg(r.expires_at)
            .arg(r.generation),
        None => inv.arg("0").arg("").arg(0).arg(0).arg(0),
    };
}

/// The 18 arguments of the Lua `create_grant` (see `lua/prelude.lua`).
fn grant_args(
    inv: &mut redis::ScriptInvocation<'_>,
    grant: &GrantRecord,
    access: &NewAccessToken,
    refresh: Option<&NewRefreshToken>,
) {
    inv.arg(grant.id.to_string())
        .arg(&*grant.client_id)
        .arg(flag(grant.subject.is_some()))
        .arg(grant.subject.as_deref().unwrap_or(""))
        .arg(grant.scope.as_str())
        .arg(grant.grant_type.as_str())
        .arg(grant.created_at)
        .arg(grant.expires_at.map(|e| e.to_string()).unwrap_or_default())
        .arg(grant_purge_at(access, refresh))
        .arg(access.hash.to_hex())
        .arg(access.scope.as_str())
        .arg(access.issued_at)
        .arg(access.expires_at);
    refresh_args(inv, refresh);
}

/// The fields of a code's hash, in the order [`RedisStore::find_code`] reads them.
const CODE_FIELDS: [&str; 10] = [
    "client",
    "sub",
    "has_redirect",
    "redirect",
    "scope",
    "challenge",
    "method",
    "iat",
    "exp",
    "redeemed_by",
];

impl RedisStore {
    /// A store at `url` (`redis://[user:password@]host:port[/db]`) with default settings.
    pub fn new(url: &str) -> Result<Self, ConfigError> {
        Self::builder(url).build()
    }

    /// Configure a store at `url`.
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        Self::builder_over(Source::Url(url.into()))
    }

    /// A store on a connection the app already has, with default settings.
    pub fn from_connection_manager(conn: ConnectionManager) -> Self {
        // An app's connection needs no checking.
        Self::builder_from_connection_manager(conn).assemble(None)
    }

    /// Configure a store on a connection the app already has.
    pub fn builder_from_connection_manager(conn: ConnectionManager) -> RedisStoreBuilder {
        Self::builder_over(Source::Given(conn))
    }

    fn builder_over(source: Source<ConnectionManager>) -> RedisStoreBuilder {
        RedisStoreBuilder {
            source,
            prefix: "tower-oauth2:".into(),
            timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(1),
        }
    }

    async fn conn(&self) -> Result<ConnectionManager, StoreError> {
        let inner = &self.inner;
        let conn = inner
            .conn
            .get_or_try_init(|| async {
                let Some(client) = &inner.client else {
                    return Err(StoreError::unavailable("no Redis connection"));
                };
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(inner.connect_timeout))
                    .set_response_timeout(Some(inner.timeout))
                    .set_number_of_retries(1);
                ConnectionManager::new_with_config(client.clone(), config)
                    .await
                    .map_err(StoreError::unavailable)
            })
            .await?;
        Ok(conn.clone())
    }

    /// Run `f` on a connection, bounded by the timeout.
    async fn run<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        within(self.inner.timeout, async {
            let conn = self.conn().await?;
            f(conn).await.map_err(StoreError::unavailable)
        })
        .await
    }

    /// Invoke a prepared script.
    async fn invoke<T: redis::FromRedisValue>(
        &self,
        inv: redis::ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        self.run(|mut c| async move { inv.invoke_async(&mut c).await })
            .await
    }

    /// A script invocation with the key prefix as its first argument.
    fn script<'a>(&'a self, script: &'a redis::Script) -> redis::ScriptInvocation<'a> {
        let mut inv = script.prepare_invoke();
        inv.arg(&self.inner.prefix);
        inv
    }

    fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    fn pending_key(&self, hash: &TokenHash) -> String {
        format!("{}q:{}", self.prefix(), hash.to_hex())
    }
}

/// A pending request's fields, in the order `pending_from` reads them.
const PENDING_FIELDS: [&str; 3] = ["d", "c", "exp"];

fn pending_from(
    hash: &TokenHash,
    fields: Vec<Option<Vec<u8>>>,
) -> Result<Option<PendingRequest>, StoreError> {
    let mut fields = fields.into_iter();
    let Some(data) = fields.next().flatten() else {
        return Ok(None);
    };
    let mut time = |what| {
        fields
            .next()
            .flatten()
            .and_then(|v| std::str::from_utf8(&v).ok()?.parse().ok())
            .ok_or_else(|| StoreError::corrupt(what))
    };
    Ok(Some(PendingRequest {
        hash: *hash,
        data: data.into(),
        created_at: time("pending creation time")?,
        expires_at: time("pending expiry")?,
    }))
}

#[async_trait]
impl TokenStore for RedisStore {
    async fn create_grant(
        &self,
        grant: GrantRecord,
        access: NewAccessToken,
        refresh: Option<NewRefreshToken>,
    ) -> Result<(), StoreError> {
        let mut inv = self.script(&self.inner.scripts.create_grant);
        grant_args(&mut inv, &grant, &access, refresh.as_ref());
        self.invoke::<i64>(inv).await.map(drop)
    }

    async fn find_access_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<AccessTokenRecord>, StoreError> {
        let mut inv = self.script(&self.inner.scripts.find_access);
        inv.arg(hash.to_hex());
        let Some(fields) = self.invoke::<Option<_>>(inv).await? else {
            return Ok(None);
        };
        // lua/find_access.lua: gid scope iat exp, then the grant.
        let mut r = Reply::new(fields);
        let id = r.grant_id()?;
        let scope = r.scope("access scope")?;
        let issued_at = r.time("access issue time")?;
        let expires_at = r.time("access expiry")?;
        let (grant, _) = r.grant(id)?;
        Ok(Some(AccessTokenRecord {
            grant,
            scope,
            issued_at,
            expires_at,
        }))
    }

    async fn find_refresh_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<RefreshTokenRecord>, StoreError> {
        let mut inv = self.script(&self.inner.scripts.find_refresh);
        inv.arg(hash.to_hex());
        let Some(fields) = self.invoke::<Option<_>>(inv).await? else {
            return Ok(None);
        };
        // lua/find_refresh.lua: gid iat exp gen access state rotated_at sealed sealed_until,
        // then the grant.
        let mut r = Reply::new(fields);
        let id = r.grant_id()?;
        let issued_at = r.time("refresh issue time")?;
        let expires_at = r.time("refresh expiry")?;
        let generation = u32::try_from(r.time("refresh generation")?)
            .map_err(|_| StoreError::corrupt("bad generation"))?;
        let access_token = r.token_hash()?;
        let active = r.text("refresh state")? == "active";
        let rotated_at = r.opt_num("rotation time")?;
        let sealed = r.bytes();
        let sealed_until = r.opt_num("grace window end")?;
        let (grant, family_generation) = r.grant(id)?;
        let state = if active {
            RefreshTokenState::Active
        } else {
            RefreshTokenState::Rotated {
                at: rotated_at.ok_or_else(|| StoreError::corrupt("rotated without a time"))?,
                sealed: sealed.zip(sealed_until).map(|(bytes, until)| Sealed {
                    bytes: bytes.into(),
                    until,
                }),
            }
        };
        Ok(Some(RefreshTokenRecord {
            hash: *hash,
            grant,
            issued_at,
            expires_at,
            generation,
            family_generation,
            access_token,
            state,
        }))
    }

    async fn rotate_refresh_token(
        &self,
        rotation: Rotation,
    ) -> Result<RotationOutcome, StoreError> {
        // lua/rotate.lua's arguments, in order.
        let mut inv = self.script(&self.inner.scripts.rotate);
        let a = &rotation.access;
        inv.arg(rotation.presented.to_hex())
            .arg(rotation.generation)
            .arg(rotation.now)
            .arg(a.hash.to_hex())
            .arg(a.scope.as_str())
            .arg(a.issued_at)
            .arg(a.expires_at);
        refresh_args(&mut inv, rotation.refresh.as_ref());
        match &rotation.sealed {
            Some(s) => inv.arg(&*s.bytes).arg(s.until),
            None => inv.arg("").arg(0),
        };
        inv.arg(flag(rotation.revoke_previous_access))
            .arg(grant_purge_at(a, rotation.refresh.as_ref()));
        Ok(if self.invoke::<i64>(inv).await? == 1 {
            RotationOutcome::Rotated
        } else {
            RotationOutcome::Conflict
        })
    }

    async fn revoke_access_token(&self, hash: &TokenHash) -> Result<bool, StoreError> {
        let mut inv = self.script(&self.inner.scripts.revoke_access);
        inv.arg(hash.to_hex());
        Ok(self.invoke::<i64>(inv).await? == 1)
    }

    async fn revoke_grant(&self, id: GrantId) -> Result<bool, StoreError> {
        let mut inv = self.script(&self.inner.scripts.revoke_grant);
        inv.arg(id.to_string()).arg(TOMBSTONE_SECS);
        Ok(self.invoke::<i64>(inv).await? == 1)
    }

    async fn revoke_grants(&self, filter: &GrantFilter) -> Result<u64, StoreError> {
        let set = match filter {
            GrantFilter::Subject(s) => format!("s:{s}"),
            GrantFilter::Client(c) => format!("k:{c}"),
        };
        let mut total = 0u64;
        loop {
            let mut inv = self.script(&self.inner.scripts.revoke_set);
            inv.arg(&set).arg(REVOKE_BATCH);
            let (revoked, popped): (u64, usize) = self.invoke(inv).await?;
            total += revoked;
            if popped < REVOKE_BATCH {
                return Ok(total);
            }
        }
    }

    async fn create_code(&self, code: AuthorizationCodeRecord) -> Result<(), StoreError> {
        let key = format!("{}c:{}", self.prefix(), code.hash.to_hex());
        let (challenge, method) = match &code.code_challenge {
            Some((c, m)) => (c.clone(), m.as_str().to_owned()),
            None => (String::new(), String::new()),
        };
        // The same fields as `CODE_FIELDS`, with their values.
        let fields: [String; 9] = [
            code.client_id.to_string(),
            code.subject.to_string(),
            flag(code.redirect_uri.is_some()).to_owned(),
            code.redirect_uri.clone().unwrap_or_default(),
            code.scope.to_string(),
            challenge,
            method,
            code.issued_at.to_string(),
            code.expires_at.to_string(),
        ];
        let pairs: Vec<(&str, String)> = CODE_FIELDS.into_iter().zip(fields).collect();
        let mut cmd = redis::pipe();
        cmd.atomic()
            .hset_multiple(&key, &pairs)
            .ignore()
            .cmd("EXPIREAT")
            .arg(&key)
            .arg(code.expires_at.saturating_add(CODE_RETENTION_SECS))
            .ignore();
        self.run(|mut c| async move { cmd.query_async::<()>(&mut c).await })
            .await
    }

    async fn find_code(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<AuthorizationCodeRecord>, StoreError> {
        let key = format!("{}c:{}", self.prefix(), hash.to_hex());
        let fields: Vec<Option<Vec<u8>>> = self
            .run(|mut c| async move {
                redis::cmd("HMGET")
                    .arg(&key)
                    .arg(&CODE_FIELDS)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        if fields.first().is_none_or(Option::is_none) {
            return Ok(None);
        }
        let mut r = Reply::new(fields);
        let client_id = Arc::from(r.text("code client")?);
        let subject = Arc::from(r.text("code subject")?);
        let has_redirect = r.text("code redirect flag")? == "1";
        let redirect = r.text("code redirect")?;
        let scope = r.scope("code scope")?;
        let challenge = r.opt_text();
        let method = r.opt_text();
        let code_challenge = match (challenge, method) {
            (None, _) => None,
            (Some(c), Some(m)) => Some((
                c,
                CodeChallengeMethod::parse(&m)
                    .ok_or_else(|| StoreError::corrupt("bad challenge method"))?,
            )),
            (Some(_), None) => return Err(StoreError::corrupt("challenge without a method")),
        };
        let issued_at = r.time("code issue time")?;
        let expires_at = r.time("code expiry")?;
        let redeemed_by = r.opt_text().map(|g| grant_id(&g)).transpose()?;
        Ok(Some(AuthorizationCodeRecord {
            hash: *hash,
            client_id,
            subject,
            redirect_uri: has_redirect.then_some(redirect),
            scope,
            code_challenge,
            issued_at,
            expires_at,
            redeemed_by,
        }))
    }

    async fn redeem_code(
        &self,
        hash: &TokenHash,
        grant: GrantRecord,
        access: NewAccessToken,
        refresh: Option<NewRefreshToken>,
    ) -> Result<Redemption, StoreError> {
        let mut inv = self.script(&self.inner.scripts.redeem_code);
        inv.arg(hash.to_hex());
        grant_args(&mut inv, &grant, &access, refresh.as_ref());
        let reply: Vec<String> = self.invoke(inv).await?;
        match reply.first().map(String::as_str) {
            Some("ok") => Ok(Redemption::Redeemed),
            Some("missing") => Ok(Redemption::Missing),
            Some("used") => Ok(Redemption::AlreadyRedeemed(grant_id(
                reply.get(1).map_or("", String::as_str),
            )?)),
            _ => Err(StoreError::corrupt("unexpected script reply")),
        }
    }

    async fn create_pending(&self, pending: PendingRequest) -> Result<(), StoreError> {
        // A hash with its own TTL (q:): the data and the times, as given.
        let key = self.pending_key(&pending.hash);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .hset_multiple(
                &key,
                &[
                    ("d", pending.data.to_vec()),
                    ("c", pending.created_at.to_string().into_bytes()),
                    ("exp", pending.expires_at.to_string().into_bytes()),
                ],
            )
            .ignore()
            .cmd("EXPIREAT")
            .arg(&key)
            .arg(pending.expires_at)
            .ignore();
        self.run(|mut c| async move { pipe.query_async::<()>(&mut c).await })
            .await
    }

    async fn find_pending(&self, hash: &TokenHash) -> Result<Option<PendingRequest>, StoreError> {
        let key = self.pending_key(hash);
        let fields: Vec<Option<Vec<u8>>> = self
            .run(|mut c| async move {
                redis::cmd("HMGET")
                    .arg(&key)
                    .arg(&PENDING_FIELDS[..])
                    .query_async(&mut c)
                    .await
            })
            .await?;
        pending_from(hash, fields)
    }

    async fn take_pending(&self, hash: &TokenHash) -> Result<Option<PendingRequest>, StoreError> {
        // Read and delete in one transaction: of concurrent takes, the first gets the fields and
        // the others find nothing.
        let key = self.pending_key(hash);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("HMGET")
            .arg(&key)
            .arg(&PENDING_FIELDS[..])
            .del(&key)
            .ignore();
        let (fields,): (Vec<Option<Vec<u8>>>,) = self
            .run(|mut c| async move { pipe.query_async(&mut c).await })
            .await?;
        pending_from(hash, fields)
    }

    fn announces_revocations(&self) -> bool {
        // The channel needs a connection of its own, which only a URL source can make.
        self.inner.client.is_some()
    }

    fn listen(&self, listener: std::sync::Weak<dyn crate::store::InvalidationListener>) {
        if let Some(client) = &self.inner.client {
            listen::spawn(
                client.clone(),
                format!("{}invalidations", self.inner.prefix),
                self.inner.connect_timeout,
                listener,
            );
        }
    }

    async fn purge_expired(&self, now: UnixTime) -> Result<u64, StoreError> {
        // Keys carry TTLs, so Redis expires them on its own clock. This sweep also removes, in
        // bounded batches, tokens of revoked or ended families and anything expired by `now`.
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
                let mut inv = self.script(&self.inner.scripts.purge);
                inv.arg(now).arg(CODE_RETENTION_SECS);
                for k in &keys {
                    inv.arg(k);
                }
                total += u64::try_from(self.invoke::<i64>(inv).await?).unwrap_or(0);
            }
            if next == 0 {
                return Ok(total);
            }
            cursor = next;
        }
    }
}
