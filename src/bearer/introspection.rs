//! Bearer validation by RFC 7662 introspection (feature `introspection`), for resource servers
//! that run apart from the authorization server.
//!
//! - A bounded cache: an active token is cached for the configured TTL but never past its
//!   `exp`; an inactive one for a short negative TTL. A revocation at the authorization server is
//!   therefore seen within the TTL at the latest.
//! - Request coalescing: any number of concurrent requests with one unseen token make one
//!   introspection call. The call runs in a task of its own, so a request that goes away (a
//!   client that closes early) leaves nothing behind, and its verdict is still cached.
//! - Bounded under abuse: at most [`max_concurrent_calls`] calls are in flight (a request that
//!   would start one more is answered 503, as for an outage), a full cache evicts the
//!   least recently used verdicts first (so a flood of junk tokens cannot push out the tokens in
//!   use), and the authorization server's answer is read up to 64 KiB.
//!
//! [`max_concurrent_calls`]: IntrospectionValidatorBuilder::max_concurrent_calls
//! - The resource server authenticates with its own client credentials (HTTP Basic).
//! - An unreachable or failing authorization server is a [`StoreError`]: the layer answers 503
//!   (gRPC `UNAVAILABLE`), never 401.
//!
//! The built-in HTTP client speaks HTTP/1.1, over TLS for an `https://` endpoint with the `tls`
//! feature (the system's root certificates, or the app's:
//! [`tls_root_certificates`](IntrospectionValidatorBuilder::tls_root_certificates)).
//!
//! ```no_run
//! use std::time::Duration;
//! use tower_oauth2::{BearerLayer, bearer::IntrospectionValidator};
//!
//! # fn main() -> Result<(), tower_oauth2::ConfigError> {
//! let validator = IntrospectionValidator::builder("http://127.0.0.1:3000/oauth/introspect", "rs", "rs-secret")
//!     .cache_ttl(Duration::from_secs(30))
//!     .build()?;
//! let layer = BearerLayer::with_validator(validator, "api");
//! # let _ = layer;
//! # Ok(())
//! # }
//! ```

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use base64::{Engine, engine::general_purpose::STANDARD};
use bytes::Bytes;
use dashmap::DashMap;
use http::{HeaderValue, Request, Uri, header};
use http_body_util::Full;
use serde::Deserialize;
use tokio::sync::{Semaphore, watch};

use super::{
    TokenInfo,
    remote::{RemoteOptions, remote_options_setters},
    validator::{Validation, Validator},
};
use crate::{
    clock::{Clock, UnixTime},
    error::{ConfigError, StoreError},
    future::BoxFuture,
    scope::Scope,
    token::TokenHash,
    wire::{form::encode, uri::Audience},
};

/// Builds an [`IntrospectionValidator`].
#[must_use]
pub struct IntrospectionValidatorBuilder {
    endpoint: String,
    client_id: String,
    client_secret: String,
    ttl: Duration,
    negative_ttl: Duration,
    max_calls: usize,
    options: RemoteOptions,
    audience: Option<String>,
    allow_no_audience: bool,
}

impl fmt::Debug for IntrospectionValidatorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntrospectionValidatorBuilder")
            .field("endpoint", &self.endpoint)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl IntrospectionValidatorBuilder {
    /// How long an active token's verdict is cached (default 60 s; never past its `exp`).
    /// Zero disables caching (coalescing still applies).
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// How long an inactive token's verdict is cached (default 5 s).
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.negative_ttl = ttl;
        self
    }

    /// Most introspection calls in flight at once (default 64). Each unseen token costs one
    /// call (concurrent requests with the same token share it); a request that would start one
    /// more is refused as the authorization server being unavailable (503), so a flood of
    /// random tokens cannot turn into a flood of outbound calls.
    pub fn max_concurrent_calls(mut self, n: usize) -> Self {
        self.max_calls = n.max(1);
        self
    }

    // The cached verdicts beyond `max_entries`: the expired first, then the least recently
    // used.
    remote_options_setters!("introspection call");

    /// The resource this validator protects (its identifier, RFC 8707): a token whose
    /// introspected `aud` does not name it — compared as a resource identifier — is refused,
    /// 401 `invalid_token` "not meant for this resource"; so is one with no `aud`, unless
    /// [`allow_no_audience`](Self::allow_no_audience). Default: no audience check.
    pub fn audience(mut self, resource: impl Into<String>) -> Self {
        self.audience = Some(resource.into());
        self
    }

    /// With [`audience`](Self::audience): accept a token whose introspection names no `aud`
    /// at all (an authorization server that does not bind tokens to resources).
    pub fn allow_no_audience(mut self, allow: bool) -> Self {
        self.allow_no_audience = allow;
        self
    }

    /// Check the endpoint URL (`http://…`, or `https://…` with the `tls` feature) and build.
    pub fn build(self) -> Result<IntrospectionValidator, ConfigError> {
        let endpoint: Uri = super::remote::endpoint(
            &self.endpoint,
            "the introspection endpoint must be an http:// or https:// URL (https with the `tls` feature)",
        )?;
        self.options
            .check(&endpoint, "the introspection endpoint")?;
        let http = self.options.client()?;
        // RFC 6749 §2.3.1: form-urlencode id and secret before Basic encoding.
        let enc = encode;
        let credentials = STANDARD.encode(format!(
            "{}:{}",
            enc(&self.client_id),
            enc(&self.client_secret)
        ));
        let mut authorization = HeaderValue::from_str(&format!("Basic {credentials}"))
            .map_err(|_| ConfigError::Endpoint("client credentials"))?;
        authorization.set_sensitive(true);
        Ok(IntrospectionValidator {
            inner: Arc::new(Inner {
                endpoint,
                authorization,
                http,
                cache: DashMap::new(),
                inflight: DashMap::new(),
                permits: Arc::new(Semaphore::new(self.max_calls)),
                recency: AtomicU64::new(0),
                clock: self.options.clock,
                ttl: self.ttl.as_secs(),
                negative_ttl: self.negative_ttl.as_secs(),
                max_entries: self.options.max_entries,
                timeout: self.options.timeout,
                audience: self.audience,
                allow_no_audience: self.allow_no_audience,
                calls: AtomicU64::new(0),
                joined: AtomicU64::new(0),
            }),
        })
    }
}

#[derive(Clone)]
enum Cached {
    Active(TokenInfo),
    Inactive,
    /// Active, but meant for other resources (until its expiry).
    ElsewhereUntil(UnixTime),
}

struct Entry {
    verdict: Cached,
    until: UnixTime,
    /// The cache's insertion count when the entry was last used: the larger, the more recent.
    used: AtomicU64,
}

/// A call in flight, as its waiters see it: `None` until it has finished.
type Call = watch::Receiver<Option<Result<Cached, Arc<StoreError>>>>;

struct Inner {
    endpoint: Uri,
    authorization: HeaderValue,
    http: super::remote::Http,
    cache: DashMap<TokenHash, Entry>,
    inflight: DashMap<TokenHash, Call>,
    /// One per call that may be in flight.
    permits: Arc<Semaphore>,
    /// Counts insertions into the cache: the clock that entries' `used` is read on.
    recency: AtomicU64,
    clock: Arc<dyn Clock>,
    ttl: u64,
    negative_ttl: u64,
    max_entries: usize,
    timeout: Duration,
    calls: AtomicU64,
    /// Requests that joined a call already in flight instead of making one.
    joined: AtomicU64,
    /// The resource protected, when the audience is checked.
    audience: Option<String>,
    allow_no_audience: bool,
}

/// Validates bearer tokens by RFC 7662 introspection, with a cache and request coalescing.
/// Cheap to clone.
#[derive(Clone)]
pub struct IntrospectionValidator {
    inner: Arc<Inner>,
}

impl fmt::Debug for IntrospectionValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntrospectionValidator")
            .field("endpoint", &self.inner.endpoint)
            .field("cached", &self.inner.cache.len())
            .field("calls", &self.introspection_calls())
            .finish_non_exhaustive()
    }
}

/// The fields of an RFC 7662 §2.2 response this validator reads.
#[derive(Deserialize)]
struct Introspected {
    active: bool,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    exp: Option<u64>,
    #[serde(default)]
    iat: Option<u64>,
    #[serde(default)]
    aud: Audience,
}

impl IntrospectionValidator {
    /// Introspect at `endpoint`, authenticating as `client_id` / `client_secret`.
    pub fn builder(
        endpoint: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> IntrospectionValidatorBuilder {
        IntrospectionValidatorBuilder {
            endpoint: endpoint.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            ttl: Duration::from_secs(60),
            negative_ttl: Duration::from_secs(5),
            max_calls: 64,
            options: RemoteOptions::default(),
            audience: None,
            allow_no_audience: false,
        }
    }

    /// How many introspection calls this validator has made (for metrics and tests).
    pub fn introspection_calls(&self) -> u64 {
        self.inner.calls.load(Ordering::Relaxed)
    }

    /// How many requests joined an introspection call already in flight for their token
    /// instead of making their own (request coalescing; for metrics and tests).
    pub fn joined_calls(&self) -> u64 {
        self.inner.joined.load(Ordering::Relaxed)
    }

    /// How many verdicts are cached.
    pub fn cached(&self) -> usize {
        self.inner.cache.len()
    }

    /// How many introspection calls are in flight.
    pub fn calls_in_flight(&self) -> usize {
        self.inner.inflight.len()
    }
}

impl Inner {
    fn cached_verdict(&self, hash: &TokenHash, now: UnixTime) -> Option<Validation> {
        let entry = self.cache.get(hash)?;
        if entry.until <= now {
            return None;
        }
        // A relaxed load and store, no lock: recency need not be exact, only ordered enough
        // that entries in use outrank those that are not.
        entry
            .used
            .store(self.recency.load(Ordering::Relaxed), Ordering::Relaxed);
        Some(verdict(&entry.verdict, now))
    }

    fn remember(&self, hash: TokenHash, verdict: &Cached, now: UnixTime) {
        let until = match verdict {
            // Never past the token's own expiry.
            Cached::Active(info) => now.saturating_add(self.ttl).min(info.expires_at),
            Cached::Inactive => now.saturating_add(self.negative_ttl),
            Cached::ElsewhereUntil(exp) => now.saturating_add(self.ttl).min(*exp),
        };
        if until <= now {
            return;
        }
        if self.cache.len() >= self.max_entries {
            self.evict(now);
        }
        let used = self.recency.fetch_add(1, Ordering::Relaxed) + 1;
        self.cache.insert(
            hash,
            Entry {
                verdict: verdict.clone(),
                until,
                used: AtomicU64::new(used),
            },
        );
    }

    /// Make room in a full cache: expired entries go, then the least recently used tenth. One
    /// pass over the cache per tenth of its size inserted, so constant work per insertion.
    fn evict(&self, now: UnixTime) {
        self.cache.retain(|_, e| e.until > now);
        let excess = self.cache.len().saturating_sub(self.max_entries * 9 / 10);
        if excess == 0 {
            return;
        }
        let mut by_use: Vec<(u64, TokenHash)> = self
            .cache
            .iter()
            .map(|e| (e.used.load(Ordering::Relaxed), *e.key()))
            .collect();
        by_use.select_nth_unstable_by_key(excess - 1, |(used, _)| *used);
        for (_, key) in &by_use[..excess] {
            self.cache.remove(key);
        }
    }

    async fn introspect(&self, token: &str) -> Result<Cached, StoreError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let body = format!("token={}&token_type_hint=access_token", encode(token));
        let request = Request::post(self.endpoint.clone())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json")
            .header(header::AUTHORIZATION, self.authorization.clone())
            .body(Full::new(Bytes::from(body)))
            .map_err(StoreError::unavailable)?;
        let (status, body) = super::remote::exchange(&self.http, request, self.timeout).await?;
        if !status.is_success() {
            // 401/403: our own credentials are refused — a configuration fault, not the token's.
            return Err(StoreError::unavailable(format!(
                "introspection endpoint answered {status}"
            )));
        }
        let r: Introspected =
            serde_json::from_slice(&body).map_err(|e| StoreError::Corrupt(e.into()))?;
        // An active refresh token is not an access token (RFC 7662 §2.2 token_type).
        let is_access = r
            .token_type
            .as_deref()
            .is_none_or(|t| t.eq_ignore_ascii_case("bearer") || t == "access_token");
        if !r.active || !is_access {
            return Ok(Cached::Inactive);
        }
        let now = self.clock.now();
        let scope = Scope::parse(r.scope.as_deref().unwrap_or(""))
            .map_err(|e| StoreError::Corrupt(e.into()))?;
        let mut info = TokenInfo::new(
            r.client_id.unwrap_or_default(),
            scope,
            r.iat.unwrap_or(now),
            r.exp.unwrap_or(now.saturating_add(self.ttl.max(1))),
        );
        if let Some(subject) = r.sub.or(r.username) {
            info = info.with_subject(subject);
        }
        info = info.with_audience(crate::resource::Resources::of_aud(&r.aud));
        // RFC 7662 §2.2 `aud`: a token for other resources is not for this one; with no audience
        // it is refused too, unless the app allows such tokens.
        if let Some(resource) = &self.audience {
            let unnamed = r.aud.is_none() && self.allow_no_audience;
            if !unnamed && !r.aud.names(resource) {
                return Ok(Cached::ElsewhereUntil(info.expires_at));
            }
        }
        Ok(Cached::Active(info))
    }
}

fn verdict(cached: &Cached, now: UnixTime) -> Validation {
    match cached {
        Cached::Active(info) if info.expires_at <= now => Validation::Expired,
        Cached::Active(info) => Validation::Valid(info.clone()),
        Cached::Inactive => Validation::Invalid,
        Cached::ElsewhereUntil(_) => Validation::WrongAudience,
    }
}

impl Validator for IntrospectionValidator {
    fn validate_now(&self, token: &str) -> Option<Result<Validation, StoreError>> {
        let now = self.inner.clock.now();
        self.inner
            .cached_verdict(&TokenHash::of(token), now)
            .map(Ok)
    }

    fn validate(&self, token: &str) -> BoxFuture<'static, Result<Validation, StoreError>> {
        let inner = Arc::clone(&self.inner);
        let token = token.to_owned();
        Box::pin(async move {
            let hash = TokenHash::of(&token);
            if let Some(v) = inner.cached_verdict(&hash, inner.clock.now()) {
                return Ok(v);
            }
            let mut call = Inner::join_or_start(&inner, hash, token)?;
            let finished = call
                .wait_for(Option::is_some)
                .await
                .map_err(|_| StoreError::unavailable("introspection call abandoned"))?
                .clone();
            match finished {
                Some(Ok(cached)) => Ok(verdict(&cached, inner.clock.now())),
                Some(Err(e)) => Err(StoreError::unavailable(e.to_string())),
                None => Err(StoreError::unavailable("introspection call abandoned")),
            }
        })
    }
}

impl Inner {
    /// The call in flight for this token, or a new one in a task of its own: it caches its
    /// verdict and leaves the in-flight map whether or not anyone still waits for it.
    fn join_or_start(
        inner: &Arc<Self>,
        hash: TokenHash,
        token: String,
    ) -> Result<Call, StoreError> {
        let (permit, tx, rx) = match inner.inflight.entry(hash) {
            dashmap::Entry::Occupied(e) => {
                inner.joined.fetch_add(1, Ordering::Relaxed);
                return Ok(e.get().clone());
            }
            dashmap::Entry::Vacant(e) => {
                let permit = Arc::clone(&inner.permits)
                    .try_acquire_owned()
                    .map_err(|_| {
                        StoreError::unavailable("too many introspection calls in flight")
                    })?;
                let (tx, rx) = watch::channel(None);
                e.insert(rx.clone());
                (permit, tx, rx)
            }
        };
        let task = Arc::clone(inner);
        tokio::spawn(async move {
            let result = task.introspect(&token).await.map_err(Arc::new);
            if let Ok(cached) = &result {
                task.remember(hash, cached, task.clock.now());
            }
            // Answer first, so a request that joins meanwhile gets this verdict; nobody may be
            // waiting any more, which is fine.
            let _ = tx.send(Some(result));
            task.inflight.remove(&hash);
            drop(permit);
        });
        Ok(rx)
    }
}
