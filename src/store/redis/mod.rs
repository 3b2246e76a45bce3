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
//! on a pub/sub connection of its own ([`Announcements::listen`](crate::store::Announcements::listen)).
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
mod index;
mod listen;
mod listen_cluster;
mod ops;
mod purge;
mod records;
mod reply;
mod scripts;

use std::{borrow::Cow, fmt, sync::Arc, time::Duration};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

use self::{
    conn::{Conn, Connector},
    scripts::{Call, Script, Scripts},
};
use super::{Announcements, Source, within};
use crate::{
    bounded::Bounded,
    clock::UnixTime,
    error::{ConfigError, StoreError},
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

/// The Redis [`TokenStore`](crate::store::TokenStore). Cloning shares the connection.
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
}

impl Announcements for RedisStore {
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
}
