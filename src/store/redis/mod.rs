//! The Redis token store (feature `redis`): for apps running on several machines.
//!
//! Every operation is one round trip: reads and atomic changes are Lua scripts (`EVALSHA`, one
//! file each under `lua/`), so a rotation's compare-and-set, a family revocation and a code
//! redemption are atomic inside Redis. A family is revoked by flipping one flag on its grant
//! (O(1), whatever its size); every lookup checks that flag in the same script. Keys carry TTLs,
//! so Redis expires what it holds.
//!
//! Keys (under a configurable prefix, default `tower-oauth2:`): `g:{grant}` (hash), `a:{sha256}`
//! and `r:{sha256}` (hashes), `c:{sha256}` (hash), `s:{subject}` / `k:{client}` (sorted sets of
//! grant ids, for bulk revocation). Requires Redis 7 (for `EXPIREAT … GT`).
//!
//! Every revoking script also `PUBLISH`es what it revoked on `{prefix}invalidations`, for the
//! instances' [`NearCache`](crate::store::NearCache)s; a store opened from a URL listens there
//! on a pub/sub connection of its own ([`TokenStore::listen`]).
//!
//! # Redis Cluster
//!
//! A `redis+cluster://[user:password@]host:port[,host:port…]` URL opens a store on a Redis
//! Cluster (or a Valkey cluster): any of the nodes named is enough to find the others, and
//! redis-rs's cluster client follows slots as they move and primaries as they fail over. Every
//! key of one grant — the grant, its access and refresh tokens, their sealed responses and the
//! code it came from — carries the grant's [`Route`](crate::token::Route) as a hash tag,
//! `{prefix}{route}g:{grant}`, so each script touches one slot and stays one atomic round
//! trip; a token names its route in the clear, so a lookup by token goes straight to its slot.
//! The subject and client indexes (`{prefix}s:…`, `{prefix}k:…`) live in slots of their own:
//! a grant is entered there beside its creation (concurrently, still one round trip of
//! latency) and its entries extended beside a rotation about once a day, and a bulk revocation reads an index in batches and revokes grant by grant, each
//! in its own slot, removing from the index only what it revoked, so an interruption leaves
//! nothing unrevoked that a retry would not find. Revocations are announced on the slot's own
//! channel with sharded pub/sub (`SPUBLISH {prefix}{route}invalidations`). Data written by a
//! single-server store uses the untagged layout and is not read by a cluster store (a cluster
//! starts empty). A prefix that itself holds a `{…}` hash tag puts every key in one slot:
//! that works, on one node.
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

mod conn;
mod listen;
mod listen_cluster;
mod reply;
mod scripts;

use std::{borrow::Cow, collections::BTreeSet, fmt, sync::Arc, time::Duration};

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

use self::{
    conn::{Conn, Connector},
    reply::{Reply, grant_id},
    scripts::{Call, Script, Scripts},
};
use super::{
    AccessTokenRecord, AuthorizationCodeRecord, CODE_RETENTION_SECS, CodeChallengeMethod,
    GrantFilter, GrantRecord, NewAccessToken, NewRefreshToken, PendingRequest, Redemption,
    RefreshTokenRecord, RefreshTokenState, Rotation, RotationOutcome, Sealed, Source,
    TOMBSTONE_SECS, grant_purge_at, within,
};
use crate::{
    bounded::Bounded,
    clock::UnixTime,
    error::{ConfigError, StoreError},
    store::TokenStore,
    token::{GrantId, Route, TokenHash},
};

/// Grant ids revoked per script by a bulk revocation.
const REVOKE_BATCH: usize = 500;

/// The most a family's keep-until time runs ahead of its purge time (see [`keep_until`]).
const KEEP_AHEAD_MAX_SECS: u64 = 86_400;

/// Grants whose index scores an instance remembers (then it starts again, which costs only
/// writes).
const INDEXED_MEMO: usize = 100_000;

/// Builds a [`RedisStore`].
#[derive(Clone, Debug)]
#[must_use]
pub struct RedisStoreBuilder {
    source: Source<ConnectionManager>,
    prefix: String,
    timeout: Duration,
    connect_timeout: Duration,
    connections: usize,
}

impl RedisStoreBuilder {
    /// Connections to open (default 1; for a URL source), each multiplexed: requests take them
    /// in turn. One pipelines every concurrent request already; BENCHMARKS.md measures more.
    pub fn connections(mut self, n: usize) -> Self {
        self.connections = n.max(1);
        self
    }

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
        let connector = match &self.source {
            Source::Url(url) if url.starts_with(conn::CLUSTER_SCHEME) => {
                let nodes = conn::cluster_nodes(url)?;
                let client = redis::cluster::ClusterClient::builder(nodes.clone())
                    .connection_timeout(self.connect_timeout)
                    .response_timeout(self.timeout)
                    // A call is bounded by `timeout` as a whole; within it, the client retries
                    // while a failover or a slot migration settles.
                    .retries(8)
                    .min_retry_wait(10)
                    .max_retry_wait(200)
                    .build()
                    .map_err(|_| ConfigError::Store("invalid Redis Cluster URL"))?;
                Connector::Cluster {
                    client: Box::new(client),
                    nodes,
                }
            }
            Source::Url(url) => Connector::Server(
                redis::Client::open(url.as_str())
                    .map_err(|_| ConfigError::Store("invalid Redis URL"))?,
            ),
            Source::Given(_) => Connector::Given,
        };
        Ok(self.assemble(connector))
    }

    fn assemble(self, connector: Connector) -> RedisStore {
        let conn = match self.source {
            Source::Given(conn) => OnceCell::new_with(Some(vec![Conn::Server(conn)])),
            Source::Url(_) => OnceCell::new(),
        };
        RedisStore {
            inner: Arc::new(Inner {
                connector,
                conn,
                scripts: Scripts::new(),
                indexed: Bounded::new(INDEXED_MEMO, |keep| *keep),
                connections: self.connections,
                next: std::sync::atomic::AtomicUsize::new(0),
                prefix: self.prefix,
                timeout: self.timeout,
                connect_timeout: self.connect_timeout,
            }),
        }
    }
}

struct Inner {
    /// What connects, for a URL source.
    connector: Connector,
    conn: OnceCell<Vec<Conn>>,
    /// How many connections to open, and which one the next call takes.
    connections: usize,
    next: std::sync::atomic::AtomicUsize,
    scripts: Scripts,
    prefix: String,
    timeout: Duration,
    connect_timeout: Duration,
    /// The keep-until time this instance last wrote for a grant that may rotate (see
    /// [`keep_until`]).
    indexed: Bounded<GrantId, UnixTime>,
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

/// Until when a grant's key and its entries in its client's and subject's indexes are kept, for
/// a grant that must last until `purge_at` (its tokens' expiry, see `grant_purge_at`).
///
/// A grant that never rotates is kept exactly that long. One that may (it has a refresh token) is
/// kept a quarter of its remaining life longer, at most a day: each rotation moves its purge time
/// on, and a keep-until time already written covers the rotations of that margin, so a chain of
/// refreshes writes the grant's expiry and index scores again about once per margin (a day for
/// refresh tokens living weeks), not at every refresh. What that costs is a dead family's grant
/// key and index entries living on by at most the margin.
fn keep_until(purge_at: UnixTime, now: UnixTime, rotates: bool) -> UnixTime {
    if !rotates {
        return purge_at;
    }
    purge_at + (purge_at.saturating_sub(now) / 4).min(KEEP_AHEAD_MAX_SECS)
}

/// The arguments that describe a new refresh token (`has_r rhash riat rexp rgen`), shared by
/// `create_grant` and `rotate`.
fn refresh_args(inv: &mut Call<'_>, refresh: Option<&NewRefreshToken>) {
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

/// The 18 arguments of the Lua `create_grant` (see `lua/prelude.lua`); `keep` is the grant's
/// [`keep_until`] time.
fn grant_args(
    inv: &mut Call<'_>,
    grant: &GrantRecord,
    access: &NewAccessToken,
    refresh: Option<&NewRefreshToken>,
    keep: UnixTime,
) {
    inv.arg(grant.id.to_string())
        .arg(&*grant.client_id)
        .arg(flag(grant.subject.is_some()))
        .arg(grant.subject.as_deref().unwrap_or(""))
        .arg(grant.scope.as_str())
        .arg(grant.grant_type.as_str())
        .arg(grant.created_at)
        .arg(grant.expires_at.map(|e| e.to_string()).unwrap_or_default())
        .arg(keep)
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
    /// A store at `url` (`redis://[user:password@]host:port[/db]`, or for a Redis Cluster
    /// `redis+cluster://[user:password@]host:port[,host:port…]`) with default settings.
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
        Self::builder_from_connection_manager(conn).assemble(Connector::Given)
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
            connections: 1,
        }
    }

    async fn conn(&self) -> Result<Conn, StoreError> {
        let inner = &self.inner;
        let conns = inner
            .conn
            .get_or_try_init(|| async {
                let mut conns = Vec::with_capacity(inner.connections);
                for _ in 0..inner.connections {
                    conns.push(self.connect().await?);
                }
                Ok::<_, StoreError>(conns)
            })
            .await?;
        let i = inner
            .next
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(conns[i % conns.len()].clone())
    }

    /// Open one connection of the store's kind.
    async fn connect(&self) -> Result<Conn, StoreError> {
        let inner = &self.inner;
        match &inner.connector {
            Connector::Server(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(inner.connect_timeout))
                    .set_response_timeout(Some(inner.timeout))
                    .set_number_of_retries(1);
                ConnectionManager::new_with_config(client.clone(), config)
                    .await
                    .map(Conn::Server)
                    .map_err(StoreError::unavailable)
            }
            Connector::Cluster { client, .. } => client
                .get_async_connection()
                .await
                .map(Conn::Cluster)
                .map_err(StoreError::unavailable),
            Connector::Given => Err(StoreError::unavailable("no Redis connection")),
        }
    }

    /// Whether the store is on a Redis Cluster.
    fn clustered(&self) -> bool {
        matches!(self.inner.connector, Connector::Cluster { .. })
    }

    /// The prefix of the keys of a grant on `route`: the store's prefix, or on a cluster that
    /// prefix and the route as a hash tag. `None` on a cluster for what names no route (a
    /// token this store never issued), which is then nowhere.
    fn scope(&self, route: Option<Route>) -> Option<Cow<'_, str>> {
        if !self.clustered() {
            return Some(Cow::Borrowed(self.prefix()));
        }
        route.map(|r| Cow::Owned(format!("{}{{{r}}}", self.prefix())))
    }

    /// [`scope`](Self::scope) for records about to be written on `route`, with the tokens they
    /// hold: on a cluster each must be on the route (issued for the grant, as the grant types
    /// issue them), or the records would be split across slots.
    fn scope_for_writing(
        &self,
        route: Route,
        tokens: &[Option<&TokenHash>],
    ) -> Result<Cow<'_, str>, StoreError> {
        if self.clustered()
            && tokens
                .iter()
                .flatten()
                .any(|hash| hash.route() != Some(route))
        {
            return Err(StoreError::corrupt(
                "a token not issued on its grant's route (token::generate_for)",
            ));
        }
        Ok(self.scope(Some(route)).unwrap_or_default())
    }

    /// Run `f` on a connection, bounded by the timeout.
    async fn run<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        within(self.inner.timeout, async {
            let conn = self.conn().await?;
            f(conn).await.map_err(StoreError::unavailable)
        })
        .await
    }

    /// Invoke a prepared script.
    async fn invoke<T: redis::FromRedisValue>(&self, inv: Call<'_>) -> Result<T, StoreError> {
        self.run(|mut c| async move { inv.invoke(&mut c).await })
            .await
    }

    /// A script invocation on the keys under `scope` (see `lua/prelude.lua`): the scope as its
    /// key, which routes it on a cluster, and the index prefix (`''` on a cluster) as its first
    /// argument.
    fn script<'a>(&self, script: &'a Script, scope: &str) -> Call<'a> {
        let mut inv = script.call(&[scope]);
        inv.arg(if self.clustered() { "" } else { self.prefix() });
        inv
    }

    fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    fn pending_key(&self, hash: &TokenHash) -> String {
        format!("{}q:{}", self.prefix(), hash.to_hex())
    }

    /// On a cluster, enter a grant in its client's and subject's indexes (which live in slots of
    /// their own) until `keep` (its [`keep_until`] time); nothing on one server, where the
    /// grant's script does it.
    async fn index_apart(
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
    fn extension(&self, id: GrantId, purge_at: UnixTime, now: UnixTime) -> Option<UnixTime> {
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
    fn remember_kept(&self, id: GrantId, keep: UnixTime, now: UnixTime) {
        self.inner.indexed.insert(id, keep, now);
    }

    /// Invoke a script that creates `grant`, entering it in its indexes beside (on a cluster)
    /// until `keep`.
    async fn invoke_creating<T: redis::FromRedisValue>(
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
    async fn revoke_indexed(&self, set: &str) -> Result<u64, StoreError> {
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
                // By slot: a tagged key's scope, or an untagged pending request on its own
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
                        None if rest.starts_with("q:") => (key.clone(), self.prefix().to_owned()),
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
        let route = grant.id.route();
        let scope = self.scope_for_writing(
            route,
            &[Some(&access.hash), refresh.as_ref().map(|r| &r.hash)],
        )?;
        let mut inv = self.script(&self.inner.scripts.create_grant, &scope);
        let purge_at = grant_purge_at(&access, refresh.as_ref());
        let keep = keep_until(purge_at, grant.created_at, refresh.is_some());
        grant_args(&mut inv, &grant, &access, refresh.as_ref(), keep);
        self.invoke_creating::<i64>(inv, &grant, keep).await?;
        if refresh.is_some() {
            self.remember_kept(grant.id, keep, grant.created_at);
        }
        Ok(())
    }

    async fn find_access_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<AccessTokenRecord>, StoreError> {
        let Some(scope) = self.scope(hash.route()) else {
            return Ok(None);
        };
        let mut inv = self.script(&self.inner.scripts.find_access, &scope);
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
        let Some(scope) = self.scope(hash.route()) else {
            return Ok(None);
        };
        let mut inv = self.script(&self.inner.scripts.find_refresh, &scope);
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
        let route = rotation.grant.route();
        let scope = self.scope_for_writing(
            route,
            &[
                Some(&rotation.presented),
                Some(&rotation.access.hash),
                rotation.refresh.as_ref().map(|r| &r.hash),
            ],
        )?;
        let mut inv = self.script(&self.inner.scripts.rotate, &scope);
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
        // The family lives on: its grant key and index entries are extended when what this
        // instance last wrote no longer covers its new purge time (about once a day), by the
        // script on one server, on a cluster the index entries beside it (harmless when it turns
        // out a conflict: an entry lasting longer only costs a lookup).
        let purge_at = grant_purge_at(a, rotation.refresh.as_ref());
        let extend = self.extension(rotation.grant, purge_at, rotation.now);
        inv.arg(flag(rotation.revoke_previous_access))
            .arg(extend.unwrap_or(0));
        let index = async {
            match extend {
                Some(keep) => {
                    self.index_apart(
                        rotation.grant,
                        &rotation.client_id,
                        rotation.subject.as_deref(),
                        keep,
                        rotation.now,
                    )
                    .await
                }
                None => Ok(()),
            }
        };
        let (applied, ()) = tokio::try_join!(self.invoke::<i64>(inv), index)?;
        if applied != 1 {
            return Ok(RotationOutcome::Conflict);
        }
        if let Some(keep) = extend {
            self.remember_kept(rotation.grant, keep, rotation.now);
        }
        Ok(RotationOutcome::Rotated)
    }

    async fn revoke_access_token(&self, hash: &TokenHash) -> Result<bool, StoreError> {
        let Some(scope) = self.scope(hash.route()) else {
            return Ok(false);
        };
        let mut inv = self.script(&self.inner.scripts.revoke_access, &scope);
        inv.arg(hash.to_hex());
        Ok(self.invoke::<i64>(inv).await? == 1)
    }

    async fn revoke_grant(&self, id: GrantId) -> Result<bool, StoreError> {
        let scope = self.scope(Some(id.route())).unwrap_or_default();
        let mut inv = self.script(&self.inner.scripts.revoke_grant, &scope);
        inv.arg(id.to_string()).arg(TOMBSTONE_SECS);
        Ok(self.invoke::<i64>(inv).await? == 1)
    }

    async fn revoke_grants(&self, filter: &GrantFilter) -> Result<u64, StoreError> {
        let set = match filter {
            GrantFilter::Subject(s) => format!("s:{s}"),
            GrantFilter::Client(c) => format!("k:{c}"),
        };
        if self.clustered() {
            return self.revoke_indexed(&set).await;
        }
        let mut total = 0u64;
        loop {
            let mut inv = self.script(&self.inner.scripts.revoke_set, self.prefix());
            inv.arg(&set).arg(REVOKE_BATCH);
            let (revoked, popped): (u64, usize) = self.invoke(inv).await?;
            total += revoked;
            if popped < REVOKE_BATCH {
                return Ok(total);
            }
        }
    }

    async fn create_code(&self, code: AuthorizationCodeRecord) -> Result<(), StoreError> {
        // A code goes on its own route, which the grant it starts takes.
        let route = code.hash.route().unwrap_or_else(Route::random);
        let scope = self.scope_for_writing(route, &[Some(&code.hash)])?;
        let key = format!("{scope}c:{}", code.hash.to_hex());
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
        let Some(scope) = self.scope(hash.route()) else {
            return Ok(None);
        };
        let key = format!("{scope}c:{}", hash.to_hex());
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
        // The grant goes on its code's route: one slot, one atomic step. On a cluster a code
        // that names no route is nowhere.
        let code_route = match hash.route() {
            Some(route) => route,
            None if self.clustered() => return Ok(Redemption::Missing),
            None => grant.id.route(),
        };
        if self.clustered() && grant.id.route() != code_route {
            return Err(StoreError::corrupt(
                "a grant not on its code's route (GrantId::generate_in)",
            ));
        }
        let scope = self.scope_for_writing(
            code_route,
            &[Some(&access.hash), refresh.as_ref().map(|r| &r.hash)],
        )?;
        let mut inv = self.script(&self.inner.scripts.redeem_code, &scope);
        inv.arg(hash.to_hex());
        let purge_at = grant_purge_at(&access, refresh.as_ref());
        let keep = keep_until(purge_at, grant.created_at, refresh.is_some());
        grant_args(&mut inv, &grant, &access, refresh.as_ref(), keep);
        let reply: Vec<String> = self.invoke_creating(inv, &grant, keep).await?;
        match reply.first().map(String::as_str) {
            Some("ok") => {
                if refresh.is_some() {
                    self.remember_kept(grant.id, keep, grant.created_at);
                }
                Ok(Redemption::Redeemed)
            }
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
        !matches!(self.inner.connector, Connector::Given)
    }

    fn listen(&self, listener: std::sync::Weak<dyn crate::store::InvalidationListener>) {
        match &self.inner.connector {
            Connector::Server(client) => listen::spawn(
                client.clone(),
                format!("{}invalidations", self.inner.prefix),
                self.inner.connect_timeout,
                listener,
            ),
            Connector::Cluster { nodes, .. } => listen_cluster::spawn(
                nodes.clone(),
                self.inner.prefix.clone(),
                self.inner.connect_timeout,
                listener,
            ),
            Connector::Given => {}
        }
    }

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
