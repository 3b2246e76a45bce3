//! The Redis token store (feature `redis`): for apps running on several machines.
//!
//! Every operation is one round trip: reads and atomic changes are Lua scripts (`EVALSHA`), so a
//! rotation's compare-and-set, a family revocation and a code redemption are atomic inside Redis.
//! A family is revoked by flipping one flag on its grant (O(1), whatever its size); every lookup
//! checks that flag in the same script. Keys carry TTLs, so Redis expires what it holds.
//!
//! Keys (under a configurable prefix, default `tower-oauth2:`): `g:{grant}` (hash), `a:{sha256}`
//! and `r:{sha256}` (hashes), `c:{sha256}` (hash), `s:{subject}` / `k:{client}` (sets of grant
//! ids, for bulk revocation). Requires Redis 7 (for `EXPIREAT … GT`); not Redis Cluster.
//!
//! The connection is made on first use and re-made after failures by redis-rs's connection
//! manager; every call is bounded by a timeout. Failures are [`StoreError`]s (503 at the
//! endpoints), never "invalid token".
//!
//! ```no_run
//! # async fn demo() -> Result<(), tower_oauth2::StoreError> {
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

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use redis::{
    Script,
    aio::{ConnectionManager, ConnectionManagerConfig},
};
use tokio::sync::OnceCell;

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

const PRELUDE: &str = r#"
local P = ARGV[1]
local function grant(gid)
  local g = redis.call('HMGET', P..'g:'..gid, 'client','sub','scope','gtype','created','exp','revoked','gen')
  if not g[1] or g[7] ~= '0' then return nil end
  return g
end
local function expire_at_least(key, ts)
  redis.call('EXPIREAT', key, ts, 'NX')
  redis.call('EXPIREAT', key, ts, 'GT')
end
-- ARGV[i..i+17]: gid client has_sub sub scope gtype created gexp purge_at
--                ahash ascope aiat aexp has_r rhash riat rexp rgen
local function create_grant(i)
  local gid = ARGV[i]
  local gk = P..'g:'..gid
  local existed = redis.call('EXISTS', gk) == 1
  redis.call('HSET', gk, 'client', ARGV[i+1], 'scope', ARGV[i+4], 'gtype', ARGV[i+5],
    'created', ARGV[i+6], 'exp', ARGV[i+7], 'gen', '0')
  if ARGV[i+2] == '1' then
    redis.call('HSET', gk, 'sub', ARGV[i+3])
    local sk = P..'s:'..ARGV[i+3]
    redis.call('SADD', sk, gid)
    expire_at_least(sk, ARGV[i+8])
  end
  -- A tombstone (revoked before created) keeps its revoked flag.
  if not existed then redis.call('HSET', gk, 'revoked', '0') end
  expire_at_least(gk, ARGV[i+8])
  local ck = P..'k:'..ARGV[i+1]
  redis.call('SADD', ck, gid)
  expire_at_least(ck, ARGV[i+8])
  local ak = P..'a:'..ARGV[i+9]
  redis.call('HSET', ak, 'g', gid, 'scope', ARGV[i+10], 'iat', ARGV[i+11], 'exp', ARGV[i+12])
  redis.call('EXPIREAT', ak, ARGV[i+12])
  if ARGV[i+13] == '1' then
    local rk = P..'r:'..ARGV[i+14]
    redis.call('HSET', rk, 'g', gid, 'iat', ARGV[i+15], 'exp', ARGV[i+16], 'gen', ARGV[i+17],
      'access', ARGV[i+9], 'state', 'active')
    redis.call('EXPIREAT', rk, ARGV[i+16])
  end
end
"#;

const CREATE_GRANT: &str = "create_grant(2) return 1";

const FIND_ACCESS: &str = r#"
local t = redis.call('HMGET', P..'a:'..ARGV[2], 'g','scope','iat','exp')
if not t[1] then return nil end
local g = grant(t[1])
if not g then return nil end
return {t[1], t[2], t[3], t[4], g[1], g[2], g[3], g[4], g[5], g[6], g[8]}
"#;

const FIND_REFRESH: &str = r#"
local r = redis.call('HMGET', P..'r:'..ARGV[2], 'g','iat','exp','gen','access','state','rotated_at','sealed','sealed_until')
if not r[1] then return nil end
local g = grant(r[1])
if not g then return nil end
return {r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], g[1], g[2], g[3], g[4], g[5], g[6], g[8]}
"#;

// ARGV: P presented gen now ahash ascope aiat aexp has_r rhash riat rexp rgen sealed sealed_until
//       revoke_prev purge_at
const ROTATE: &str = r#"
local rk = P..'r:'..ARGV[2]
local r = redis.call('HMGET', rk, 'g','state','gen','exp','access')
if not r[1] or r[2] ~= 'active' or r[3] ~= ARGV[3] or tonumber(r[4]) <= tonumber(ARGV[4]) then return 0 end
local gk = P..'g:'..r[1]
if redis.call('HGET', gk, 'revoked') ~= '0' then return 0 end
if ARGV[9] == '1' then
  redis.call('HSET', rk, 'state', 'rotated', 'rotated_at', ARGV[4])
  if ARGV[14] ~= '' then redis.call('HSET', rk, 'sealed', ARGV[14], 'sealed_until', ARGV[15]) end
  if tonumber(ARGV[13]) > tonumber(redis.call('HGET', gk, 'gen') or '0') then
    redis.call('HSET', gk, 'gen', ARGV[13])
  end
  local nk = P..'r:'..ARGV[10]
  redis.call('HSET', nk, 'g', r[1], 'iat', ARGV[11], 'exp', ARGV[12], 'gen', ARGV[13],
    'access', ARGV[5], 'state', 'active')
  redis.call('EXPIREAT', nk, ARGV[12])
else
  redis.call('HSET', rk, 'access', ARGV[5])
end
if ARGV[16] == '1' and r[5] then redis.call('DEL', P..'a:'..r[5]) end
local ak = P..'a:'..ARGV[5]
redis.call('HSET', ak, 'g', r[1], 'scope', ARGV[6], 'iat', ARGV[7], 'exp', ARGV[8])
redis.call('EXPIREAT', ak, ARGV[8])
expire_at_least(gk, ARGV[17])
return 1
"#;

const REVOKE_GRANT: &str = r#"
local gk = P..'g:'..ARGV[2]
local rv = redis.call('HGET', gk, 'revoked')
if rv == '0' then redis.call('HSET', gk, 'revoked', '1') return 1 end
if not rv then
  redis.call('HSET', gk, 'revoked', '1')
  redis.call('EXPIRE', gk, ARGV[3])
end
return 0
"#;

// ARGV: P set batch — pops up to `batch` grant ids from a subject's or client's index and
// revokes them; called until the index is empty, so no single script blocks Redis for long.
const REVOKE_SET: &str = r#"
local ids = redis.call('SPOP', P..ARGV[2], tonumber(ARGV[3]))
local n = 0
for _, gid in ipairs(ids) do
  local gk = P..'g:'..gid
  if redis.call('HGET', gk, 'revoked') == '0' then
    redis.call('HSET', gk, 'revoked', '1')
    n = n + 1
  end
end
return {n, #ids}
"#;

/// Grant ids revoked per script by a bulk revocation.
const REVOKE_BATCH: usize = 500;

const REVOKE_ACCESS: &str = r#"
local ak = P..'a:'..ARGV[2]
local gid = redis.call('HGET', ak, 'g')
if not gid then return 0 end
redis.call('DEL', ak)
if grant(gid) then return 1 end
return 0
"#;

const REDEEM_CODE: &str = r#"
local ck = P..'c:'..ARGV[2]
if redis.call('EXISTS', ck) == 0 then return {'missing'} end
local by = redis.call('HGET', ck, 'redeemed_by')
if by then return {'used', by} end
redis.call('HSET', ck, 'redeemed_by', ARGV[3])
create_grant(3)
return {'ok'}
"#;

// ARGV: P now code_retention key… — deletes the given token and code keys that are expired or belong to a
// revoked or ended family.
const PURGE: &str = r#"
local now = tonumber(ARGV[2])
local retention = tonumber(ARGV[3])
local n = 0
for i = 4, #ARGV do
  local k = ARGV[i]
  local kind = string.sub(k, #P + 1, #P + 2)
  if kind == 'a:' or kind == 'r:' then
    local f = redis.call('HMGET', k, 'g', 'exp')
    if f[1] then
      local dead = tonumber(f[2]) <= now
      if not dead then
        local g = redis.call('HMGET', P..'g:'..f[1], 'revoked', 'exp')
        dead = (not g[1]) or g[1] ~= '0' or (g[2] ~= '' and tonumber(g[2]) <= now)
      end
      if dead then redis.call('DEL', k) n = n + 1 end
    end
  elseif kind == 'c:' then
    local e = redis.call('HGET', k, 'exp')
    if e and tonumber(e) + retention <= now then redis.call('DEL', k) n = n + 1 end
  end
end
return n
"#;

struct Scripts {
    purge: Script,
    create_grant: Script,
    find_access: Script,
    find_refresh: Script,
    rotate: Script,
    revoke_grant: Script,
    revoke_set: Script,
    revoke_access: Script,
    redeem_code: Script,
}

impl Scripts {
    fn new() -> Self {
        let s = |body: &str| Script::new(&format!("{PRELUDE}\n{body}"));
        Self {
            purge: s(PURGE),
            create_grant: s(CREATE_GRANT),
            find_access: s(FIND_ACCESS),
            find_refresh: s(FIND_REFRESH),
            rotate: s(ROTATE),
            revoke_grant: s(REVOKE_GRANT),
            revoke_set: s(REVOKE_SET),
            revoke_access: s(REVOKE_ACCESS),
            redeem_code: s(REDEEM_CODE),
        }
    }
}

/// Builds a [`RedisStore`].
#[derive(Debug, Clone)]
#[must_use]
pub struct RedisStoreBuilder {
    url: String,
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

    /// Upper bound of one connection attempt (default 1 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Check the URL and build. No connection is made until the first call, so an app can start
    /// while Redis is down and serve once it is up.
    pub fn build(self) -> Result<RedisStore, StoreError> {
        let client = redis::Client::open(self.url.as_str()).map_err(StoreError::unavailable)?;
        Ok(RedisStore {
            inner: Arc::new(Inner {
                client,
                conn: OnceCell::new(),
                scripts: Scripts::new(),
                prefix: self.prefix,
                timeout: self.timeout,
                connect_timeout: self.connect_timeout,
            }),
        })
    }
}

struct Inner {
    client: redis::Client,
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

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: show neither it nor the client.
        f.debug_struct("RedisStore")
            .field("prefix", &self.inner.prefix)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

fn corrupt(what: &'static str) -> StoreError {
    StoreError::Corrupt(BoxError::from(what))
}

type Fields = Vec<Option<Vec<u8>>>;

fn text(f: &Fields, i: usize) -> Result<String, StoreError> {
    f.get(i)
        .and_then(|v| v.as_ref())
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .ok_or_else(|| corrupt("missing field"))
}

fn opt_text(f: &Fields, i: usize) -> Option<String> {
    f.get(i)
        .and_then(|v| v.as_ref())
        .filter(|b| !b.is_empty())
        .map(|b| String::from_utf8_lossy(b).into_owned())
}

fn num(f: &Fields, i: usize) -> Result<u64, StoreError> {
    text(f, i)?.parse().map_err(|_| corrupt("bad number"))
}

fn opt_num(f: &Fields, i: usize) -> Result<Option<u64>, StoreError> {
    opt_text(f, i)
        .map(|s| s.parse().map_err(|_| corrupt("bad number")))
        .transpose()
}

fn hash_of(hex: &str) -> Result<TokenHash, StoreError> {
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<_, _>>()
        .map_err(|_| corrupt("bad token hash"))?;
    Ok(TokenHash::from_bytes(
        bytes.try_into().map_err(|_| corrupt("bad token hash"))?,
    ))
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

fn scope(s: &str) -> Result<Scope, StoreError> {
    Scope::parse(s).map_err(|_| corrupt("bad scope"))
}

/// Fields `client sub scope gtype created exp` starting at `i`, with the grant id.
fn grant_at(f: &Fields, gid: &str, i: usize) -> Result<GrantRecord, StoreError> {
    Ok(GrantRecord {
        id: GrantId::parse_hex(gid).ok_or_else(|| corrupt("bad grant id"))?,
        client_id: Arc::from(text(f, i)?),
        subject: opt_text(f, i + 1).map(Arc::from),
        scope: scope(&text(f, i + 2)?)?,
        grant_type: GrantType::parse(&text(f, i + 3)?).ok_or_else(|| corrupt("bad grant type"))?,
        created_at: num(f, i + 4)?,
        expires_at: opt_num(f, i + 5)?,
    })
}

/// The 18 arguments of the Lua `create_grant`.
fn grant_args(
    inv: &mut redis::ScriptInvocation<'_>,
    grant: &GrantRecord,
    access: &NewAccessToken,
    refresh: Option<&NewRefreshToken>,
) {
    let purge_at = refresh.map_or(access.expires_at, |r| r.expires_at.max(access.expires_at));
    inv.arg(grant.id.to_string())
        .arg(&*grant.client_id)
        .arg(if grant.subject.is_some() { "1" } else { "0" })
        .arg(grant.subject.as_deref().unwrap_or(""))
        .arg(grant.scope.as_str())
        .arg(grant.grant_type.as_str())
        .arg(grant.created_at)
        .arg(grant.expires_at.map(|e| e.to_string()).unwrap_or_default())
        .arg(purge_at)
        .arg(access.hash.to_hex())
        .arg(access.scope.as_str())
        .arg(access.issued_at)
        .arg(access.expires_at);
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

impl RedisStore {
    /// A store at `url` (`redis://[user:password@]host:port[/db]`) with default settings.
    pub fn new(url: &str) -> Result<Self, StoreError> {
        Self::builder(url).build()
    }

    /// Configure a store at `url`.
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: url.into(),
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
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(inner.connect_timeout))
                    .set_response_timeout(Some(inner.timeout))
                    .set_number_of_retries(1);
                ConnectionManager::new_with_config(inner.client.clone(), config).await
            })
            .await
            .map_err(StoreError::unavailable)?;
        Ok(conn.clone())
    }

    /// Run `f` on a connection, bounded by the timeout.
    async fn run<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let work = async {
            let conn = self.conn().await?;
            f(conn).await.map_err(StoreError::unavailable)
        };
        tokio::time::timeout(self.inner.timeout, work)
            .await
            .map_err(|_| StoreError::Timeout)?
    }

    fn prefix(&self) -> &str {
        &self.inner.prefix
    }
}

#[async_trait]
impl TokenStore for RedisStore {
    async fn create_grant(
        &self,
        grant: GrantRecord,
        access: NewAccessToken,
        refresh: Option<NewRefreshToken>,
    ) -> Result<(), StoreError> {
        let mut inv = self.inner.scripts.create_grant.prepare_invoke();
        inv.arg(self.prefix());
        grant_args(&mut inv, &grant, &access, refresh.as_ref());
        self.run(|mut c| async move { inv.invoke_async::<i64>(&mut c).await })
            .await
            .map(drop)
    }

    async fn find_access_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<AccessTokenRecord>, StoreError> {
        let mut inv = self.inner.scripts.find_access.prepare_invoke();
        inv.arg(self.prefix()).arg(hash.to_hex());
        let f: Option<Fields> = self
            .run(|mut c| async move { inv.invoke_async(&mut c).await })
            .await?;
        let Some(f) = f else { return Ok(None) };
        let gid = text(&f, 0)?;
        Ok(Some(AccessTokenRecord {
            grant: grant_at(&f, &gid, 4)?,
            scope: scope(&text(&f, 1)?)?,
            issued_at: num(&f, 2)?,
            expires_at: num(&f, 3)?,
        }))
    }

    async fn find_refresh_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<RefreshTokenRecord>, StoreError> {
        let mut inv = self.inner.scripts.find_refresh.prepare_invoke();
        inv.arg(self.prefix()).arg(hash.to_hex());
        let f: Option<Fields> = self
            .run(|mut c| async move { inv.invoke_async(&mut c).await })
            .await?;
        let Some(f) = f else { return Ok(None) };
        let gid = text(&f, 0)?;
        let state = if text(&f, 5)? == "active" {
            RefreshTokenState::Active
        } else {
            let sealed = match (f.get(7).cloned().flatten(), opt_num(&f, 8)?) {
                (Some(bytes), Some(until)) if !bytes.is_empty() => Some(Sealed {
                    bytes: bytes.into(),
                    until,
                }),
                _ => None,
            };
            RefreshTokenState::Rotated {
                at: num(&f, 6)?,
                sealed,
            }
        };
        Ok(Some(RefreshTokenRecord {
            hash: *hash,
            grant: grant_at(&f, &gid, 9)?,
            issued_at: num(&f, 1)?,
            expires_at: num(&f, 2)?,
            generation: u32::try_from(num(&f, 3)?).map_err(|_| corrupt("bad generation"))?,
            family_generation: u32::try_from(opt_num(&f, 15)?.unwrap_or(0))
                .map_err(|_| corrupt("bad generation"))?,
            access_token: opt_text(&f, 4).map(|h| hash_of(&h)).transpose()?,
            state,
        }))
    }

    async fn rotate_refresh_token(
        &self,
        rotation: Rotation,
    ) -> Result<RotationOutcome, StoreError> {
        let mut inv = self.inner.scripts.rotate.prepare_invoke();
        let a = &rotation.access;
        let purge_at = rotation
            .refresh
            .as_ref()
            .map_or(a.expires_at, |r| r.expires_at.max(a.expires_at));
        inv.arg(self.prefix())
            .arg(rotation.presented.to_hex())
            .arg(rotation.generation)
            .arg(rotation.now)
            .arg(a.hash.to_hex())
            .arg(a.scope.as_str())
            .arg(a.issued_at)
            .arg(a.expires_at);
        match &rotation.refresh {
            Some(r) => inv
                .arg("1")
                .arg(r.hash.to_hex())
                .arg(r.issued_at)
                .arg(r.expires_at)
                .arg(r.generation),
            None => inv.arg("0").arg("").arg(0).arg(0).arg(0),
        };
        match &rotation.sealed {
            Some(s) => inv.arg(&*s.bytes).arg(s.until),
            None => inv.arg("").arg(0),
        };
        inv.arg(if rotation.revoke_previous_access {
            "1"
        } else {
            "0"
        })
        .arg(purge_at);
        let done: i64 = self
            .run(|mut c| async move { inv.invoke_async(&mut c).await })
            .await?;
        Ok(if done == 1 {
            RotationOutcome::Rotated
        } else {
            RotationOutcome::Conflict
        })
    }

    async fn revoke_access_token(&self, hash: &TokenHash) -> Result<bool, StoreError> {
        let mut inv = self.inner.scripts.revoke_access.prepare_invoke();
        inv.arg(self.prefix()).arg(hash.to_hex());
        let n: i64 = self
            .run(|mut c| async move { inv.invoke_async(&mut c).await })
            .await?;
        Ok(n == 1)
    }

    async fn revoke_grant(&self, id: GrantId) -> Result<bool, StoreError> {
        let mut inv = self.inner.scripts.revoke_grant.prepare_invoke();
        inv.arg(self.prefix())
            .arg(id.to_string())
            .arg(TOMBSTONE_SECS);
        let n: i64 = self
            .run(|mut c| async move { inv.invoke_async(&mut c).await })
            .await?;
        Ok(n == 1)
    }

    async fn revoke_grants(&self, filter: &GrantFilter) -> Result<u64, StoreError> {
        let set = match filter {
            GrantFilter::Subject(s) => format!("s:{s}"),
            GrantFilter::Client(c) => format!("k:{c}"),
        };
        let mut total = 0u64;
        loop {
            let mut inv = self.inner.scripts.revoke_set.prepare_invoke();
            inv.arg(self.prefix()).arg(&set).arg(REVOKE_BATCH);
            let (revoked, popped): (u64, usize) = self
                .run(|mut c| async move { inv.invoke_async(&mut c).await })
                .await?;
            total += revoked;
            if popped < REVOKE_BATCH {
                return Ok(total);
            }
        }
    }

    async fn create_code(&self, code: AuthorizationCodeRecord) -> Result<(), StoreError> {
        let key = format!("{}c:{}", self.prefix(), code.hash.to_hex());
        let mut cmd = redis::pipe();
        cmd.atomic()
            .hset_multiple(
                &key,
                &[
                    ("client", code.client_id.to_string()),
                    ("sub", code.subject.to_string()),
                    ("redirect", code.redirect_uri.clone().unwrap_or_default()),
                    (
                        "has_redirect",
                        u8::from(code.redirect_uri.is_some()).to_string(),
                    ),
                    ("scope", code.scope.to_string()),
                    (
                        "challenge",
                        code.code_challenge
                            .as_ref()
                            .map(|c| c.0.clone())
                            .unwrap_or_default(),
                    ),
                    (
                        "method",
                        code.code_challenge
                            .as_ref()
                            .map(|c| c.1.as_str().to_owned())
                            .unwrap_or_default(),
                    ),
                    ("iat", code.issued_at.to_string()),
                    ("exp", code.expires_at.to_string()),
                ],
            )
            .ignore()
            .cmd("EXPIREAT")
            .arg(&key)
            .arg(code.expires_at + CODE_RETENTION_SECS)
            .ignore();
        self.run(|mut c| async move { cmd.query_async::<()>(&mut c).await })
            .await
    }

    async fn find_code(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<AuthorizationCodeRecord>, StoreError> {
        let key = format!("{}c:{}", self.prefix(), hash.to_hex());
        let f: Fields = self
            .run(|mut c| async move {
                redis::cmd("HMGET")
                    .arg(&key)
                    .arg(&[
                        "client",
                        "sub",
                        "redirect",
                        "has_redirect",
                        "scope",
                        "challenge",
                        "method",
                        "iat",
                        "exp",
                        "redeemed_by",
                    ])
                    .query_async(&mut c)
                    .await
            })
            .await?;
        if f.first().is_none_or(Option::is_none) {
            return Ok(None);
        }
        let challenge = match (opt_text(&f, 5), opt_text(&f, 6).as_deref()) {
            (Some(c), Some("S256")) => Some((c, CodeChallengeMethod::S256)),
            (Some(c), Some("plain")) => Some((c, CodeChallengeMethod::Plain)),
            (None, _) => None,
            _ => return Err(corrupt("bad challenge method")),
        };
        Ok(Some(AuthorizationCodeRecord {
            hash: *hash,
            client_id: Arc::from(text(&f, 0)?),
            subject: Arc::from(text(&f, 1)?),
            redirect_uri: (text(&f, 3)? == "1").then(|| text(&f, 2)).transpose()?,
            scope: scope(&text(&f, 4)?)?,
            code_challenge: challenge,
            issued_at: num(&f, 7)?,
            expires_at: num(&f, 8)?,
            redeemed_by: opt_text(&f, 9)
                .map(|g| GrantId::parse_hex(&g).ok_or_else(|| corrupt("bad grant id")))
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
        let mut inv = self.inner.scripts.redeem_code.prepare_invoke();
        inv.arg(self.prefix()).arg(hash.to_hex());
        grant_args(&mut inv, &grant, &access, refresh.as_ref());
        let v: Vec<String> = self
            .run(|mut c| async move { inv.invoke_async(&mut c).await })
            .await?;
        match v.first().map(String::as_str) {
            Some("ok") => Ok(Redemption::Redeemed),
            Some("missing") => Ok(Redemption::Missing),
            Some("used") => Ok(Redemption::AlreadyRedeemed(
                v.get(1)
                    .and_then(|g| GrantId::parse_hex(g))
                    .ok_or_else(|| corrupt("bad grant id"))?,
            )),
            _ => Err(corrupt("unexpected script reply")),
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
                let mut inv = self.inner.scripts.purge.prepare_invoke();
                inv.arg(self.prefix()).arg(now).arg(CODE_RETENTION_SECS);
                for k in &keys {
                    inv.arg(k);
                }
                let n: i64 = self
                    .run(|mut c| async move { inv.invoke_async(&mut c).await })
                    .await?;
                total += u64::try_from(n).unwrap_or(0);
            }
            if next == 0 {
                return Ok(total);
            }
            cursor = next;
        }
    }
}
