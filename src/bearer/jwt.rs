//! Bearer validation of JWT access tokens (RFC 9068) with no call per request, for resource
//! servers in other processes (feature `jwt`).
//!
//! - Keys come from the authorization server's JWK Set: found through its metadata (RFC 8414,
//!   `jwks_uri`) or named directly. They are cached for as long as the key set's
//!   `Cache-Control: max-age` says (at least [`refetch_interval`](JwtValidatorBuilder::refetch_interval),
//!   at most a day; 5 minutes when it says nothing), then fetched again and replaced whole: a
//!   key the server retired stops verifying here, and so do the cached tokens it signed. A
//!   token with an unknown `kid` makes one refetch, at most once per `refetch_interval`. Every
//!   fetch is shared by concurrent requests.
//! - While the key set cannot be fetched, the last good one is used; failed attempts back off
//!   (1 s, doubling up to a minute), and a token that would need the keys meanwhile is answered
//!   at once — 503 when none were ever fetched — rather than queued behind another attempt.
//! - A token is good when its header is `typ: at+jwt` with a `kid` of a published key and the
//!   `alg` that key is for (never `none`, never an HMAC: a public key is no secret), its signature
//!   holds, `iss` is the issuer exactly, `aud` names this resource server, and `exp` / `nbf` /
//!   `iat` are right within the [leeway](JwtValidatorBuilder::leeway). Anything else is 401
//!   `invalid_token`.
//! - A verified token's details are cached by token hash until its `exp` (bounded), so a token
//!   seen before costs a map lookup, not a signature check.
//! - Keys that cannot be fetched, with none cached, are a [`StoreError`]: 503, never 401.
//!
//! A JWT stays valid here until it expires: revocation at the authorization server is not seen.
//! Keep access tokens short-lived, or, on routes that must see a revocation at once, follow this
//! validator with an [`IntrospectionValidator`](super::IntrospectionValidator) in
//! [`Both`](super::Both).
//!
//! ```no_run
//! use tower_oauth2::{BearerLayer, bearer::JwtValidator};
//!
//! # fn main() -> Result<(), tower_oauth2::ConfigError> {
//! // The quickstart's issuer, and the audience its tokens carry by default.
//! let validator = JwtValidator::from_issuer("http://localhost:3000", "http://localhost:3000")
//!     .build()?;
//! let layer = BearerLayer::with_validator(validator, "api");
//! # let _ = layer;
//! # Ok(())
//! # }
//! ```

use std::{
    fmt,
    sync::{Arc, RwLock},
    time::Duration,
};

use bytes::Bytes;
use http::{Request, Uri, header};
use http_body_util::Full;
use serde::Deserialize;

use super::{
    TokenInfo,
    remote::{self, Http, RemoteOptions, remote_options_setters},
    validator::{Validation, Validator},
    verified::VerifiedCache,
};
use crate::{
    clock::{Clock, UnixTime},
    error::{ConfigError, StoreError},
    future::BoxFuture,
    jose::{self, Keyring, Unverified},
    scope::Scope,
    token::TokenHash,
};

/// Where the keys are.
#[derive(Clone)]
enum KeySource {
    /// An issuer: its metadata names the key set.
    Issuer(Uri),
    /// The key set itself.
    Jwks(Uri),
}

/// Builds a [`JwtValidator`].
#[must_use]
pub struct JwtValidatorBuilder {
    source: Result<KeySource, ConfigError>,
    issuer: String,
    audience: String,
    allow_no_audience: bool,
    leeway: Duration,
    refetch_interval: Duration,
    options: RemoteOptions,
}

impl fmt::Debug for JwtValidatorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtValidatorBuilder")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

fn http_uri(url: &str) -> Result<Uri, ConfigError> {
    remote::endpoint(
        url,
        "the key source must be an http:// or https:// URL (https with the `tls` feature)",
    )
}

impl JwtValidatorBuilder {
    /// How far `exp`, `nbf` and `iat` may be off, for clocks that disagree (default 30 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Also accept a token with no `aud` at all (off by default: RFC 9068 access tokens always
    /// have one, and a token for no resource in particular is not one for this resource). A
    /// token whose `aud` names other resources is still refused.
    pub fn allow_no_audience(mut self, allow: bool) -> Self {
        self.allow_no_audience = allow;
        self
    }

    /// The shortest time between two fetches of the key set for unknown `kid`s (default 60 s).
    pub fn refetch_interval(mut self, interval: Duration) -> Self {
        self.refetch_interval = interval;
        self
    }

    // Verified tokens beyond `max_entries` are checked each time until expired entries make
    // room. The clock judges `exp`, `nbf` and `iat`.
    remote_options_setters!("fetch of the metadata or key set");

    /// Most verified tokens cached: the same as [`max_entries`](Self::max_entries).
    #[deprecated(note = "use `max_entries`, the name both remote validators share")]
    pub fn max_cached(self, n: usize) -> Self {
        self.max_entries(n)
    }

    /// Check the URLs and build. No key is fetched until the first token.
    pub fn build(self) -> Result<JwtValidator, ConfigError> {
        crate::jose::install_backend();
        let source = self.source?;
        let (KeySource::Issuer(uri) | KeySource::Jwks(uri)) = &source;
        self.options.check(uri, "the key source")?;
        let http = self.options.client()?;
        Ok(JwtValidator {
            inner: Arc::new(Inner {
                source,
                allow_insecure_http: self.options.allow_insecure_http,
                issuer: self.issuer,
                audience: self.audience,
                allow_no_audience: self.allow_no_audience,
                leeway: self.leeway.as_secs(),
                refetch_interval: self.refetch_interval,
                timeout: self.options.timeout,
                clock: self.options.clock,
                http,
                keys: RwLock::new(Keys::default()),
                fetching: tokio::sync::Mutex::new(()),
                verified: VerifiedCache::new(self.options.max_entries),
                fetches: std::sync::atomic::AtomicU64::new(0),
            }),
        })
    }
}

/// How long a fetched key set is used when its answer gives no `max-age`.
const DEFAULT_KEYS_MAX_AGE: u64 = 300;
/// The longest a fetched key set is used, whatever its `max-age`.
const MAX_KEYS_MAX_AGE: u64 = 86_400;
/// The longest wait between two attempts while fetches fail.
const MAX_BACKOFF: u64 = 60;

/// The key set as last fetched, and how fetching has gone. Times are the validator's clock.
#[derive(Default)]
struct Keys {
    ring: Arc<Keyring>,
    /// When the set was fetched, and until when it may be used without fetching again.
    fetched_at: Option<UnixTime>,
    fresh_until: UnixTime,
    /// The last failed attempt, and how many failed in a row since the last success.
    failed_at: Option<UnixTime>,
    failures: u32,
}

impl Keys {
    fn fresh(&self, now: UnixTime) -> bool {
        self.fetched_at.is_some() && now < self.fresh_until
    }

    /// Whether the last attempts failed so recently that no new one may start: 1 s after the
    /// first failure, doubling to [`MAX_BACKOFF`].
    fn backing_off(&self, now: UnixTime) -> bool {
        let wait = 1u64
            .checked_shl(self.failures.saturating_sub(1))
            .unwrap_or(MAX_BACKOFF)
            .min(MAX_BACKOFF);
        self.failed_at
            .is_some_and(|at| now < at.saturating_add(wait))
    }
}

struct Inner {
    source: KeySource,
    /// Whether a discovered `jwks_uri` may be plain `http://` to another host.
    allow_insecure_http: bool,
    issuer: String,
    audience: String,
    allow_no_audience: bool,
    leeway: u64,
    refetch_interval: Duration,
    timeout: Duration,
    clock: Arc<dyn Clock>,
    http: Http,
    keys: RwLock<Keys>,
    /// Held while fetching, so concurrent requests with an unknown `kid` share one fetch.
    fetching: tokio::sync::Mutex<()>,
    /// Verified tokens, with the `kid` of the key that verified each: a token whose key left
    /// the set is verified again (and refused).
    verified: VerifiedCache<(TokenInfo, Arc<str>)>,
    fetches: std::sync::atomic::AtomicU64,
}

/// Validates JWT access tokens against an authorization server's published keys, with no call
/// per request. Cheap to clone.
#[derive(Clone)]
pub struct JwtValidator {
    inner: Arc<Inner>,
}

impl fmt::Debug for JwtValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtValidator")
            .field("issuer", &self.inner.issuer)
            .field("audience", &self.inner.audience)
            .field("cached", &self.inner.verified.len())
            .finish_non_exhaustive()
    }
}

impl JwtValidator {
    fn builder(
        source: Result<KeySource, ConfigError>,
        issuer: String,
        audience: String,
    ) -> JwtValidatorBuilder {
        JwtValidatorBuilder {
            source,
            issuer,
            audience,
            allow_no_audience: false,
            leeway: Duration::from_secs(30),
            refetch_interval: Duration::from_secs(60),
            options: RemoteOptions::default(),
        }
    }

    /// Tokens of the authorization server `issuer`: its metadata
    /// (`{issuer}/.well-known/oauth-authorization-server`, RFC 8414) must name the same issuer
    /// and the key set; a token's `iss` must be exactly `issuer`, and its `aud` must contain
    /// `audience`, this resource server's identifier.
    pub fn from_issuer(
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> JwtValidatorBuilder {
        let issuer = issuer.into();
        let base = issuer.trim_end_matches('/');
        let source = http_uri(&format!("{base}/.well-known/oauth-authorization-server"))
            .map(KeySource::Issuer);
        Self::builder(source, issuer, audience.into())
    }

    /// Tokens verified with the key set at `jwks_url`, whose `iss` must be exactly `issuer` and
    /// whose `aud` must contain `audience`.
    pub fn from_jwks(
        jwks_url: impl Into<String>,
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> JwtValidatorBuilder {
        let source = http_uri(&jwks_url.into()).map(KeySource::Jwks);
        Self::builder(source, issuer.into(), audience.into())
    }

    /// How many times the key set (or the metadata naming it) has been fetched.
    pub fn fetches(&self) -> u64 {
        self.inner
            .fetches
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many verified tokens are cached.
    pub fn cached(&self) -> usize {
        self.inner.verified.len()
    }
}

#[derive(Deserialize)]
struct Discovered {
    issuer: String,
    jwks_uri: String,
}

impl Inner {
    /// GET `uri`: the body, and the answer's `max-age` if it gave one.
    async fn get(&self, uri: &Uri) -> Result<(Bytes, Option<u64>), StoreError> {
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let request = Request::get(uri.clone())
            .header(header::ACCEPT, "application/json")
            .body(Full::new(Bytes::new()))
            .map_err(StoreError::unavailable)?;
        let (status, max_age, body) =
            remote::exchange_with_max_age(&self.http, request, self.timeout).await?;
        if !status.is_success() {
            return Err(StoreError::unavailable(format!("{uri} answered {status}")));
        }
        Ok((body, max_age))
    }

    /// Fetch the key set (through the metadata when the source is an issuer) and replace the
    /// cached one whole; on failure, keep it and back off.
    async fn fetch_keys(&self, now: UnixTime) -> Result<(), StoreError> {
        let fetched = self.fetch_ring().await;
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        match fetched {
            Ok((ring, max_age)) => {
                let floor = self.refetch_interval.as_secs();
                let max_age = max_age
                    .unwrap_or(DEFAULT_KEYS_MAX_AGE)
                    .clamp(floor.min(MAX_KEYS_MAX_AGE), MAX_KEYS_MAX_AGE);
                keys.ring = Arc::new(ring);
                keys.fetched_at = Some(now);
                keys.fresh_until = now.saturating_add(max_age);
                keys.failed_at = None;
                keys.failures = 0;
                Ok(())
            }
            Err(e) => {
                keys.failed_at = Some(now);
                keys.failures = keys.failures.saturating_add(1);
                Err(e)
            }
        }
    }

    /// The key set and its `max-age`.
    async fn fetch_ring(&self) -> Result<(Keyring, Option<u64>), StoreError> {
        let jwks_uri = match &self.source {
            KeySource::Jwks(uri) => uri.clone(),
            KeySource::Issuer(metadata) => {
                let found: Discovered = serde_json::from_slice(&self.get(metadata).await?.0)
                    .map_err(|e| StoreError::Corrupt(e.into()))?;
                // RFC 8414 §3.3: the metadata's issuer must be the one expected.
                if found.issuer != self.expected_issuer() {
                    return Err(StoreError::unavailable(format!(
                        "the metadata names issuer {:?}, not {:?}",
                        found.issuer,
                        self.expected_issuer()
                    )));
                }
                let jwks = http_uri(&found.jwks_uri)
                    .map_err(|_| StoreError::unavailable("jwks_uri is not an http URL"))?;
                // Never weaker than the issuer: keys fetched in the clear for an https issuer
                // could be anyone's.
                let weaker =
                    metadata.scheme_str() == Some("https") && jwks.scheme_str() != Some("https");
                let refused = remote::secure_enough(&jwks, self.allow_insecure_http, "jwks_uri");
                if weaker || refused.is_err() {
                    return Err(StoreError::unavailable(format!(
                        "the metadata names jwks_uri {jwks}, weaker than the issuer or plain http"
                    )));
                }
                jwks
            }
        };
        let (body, max_age) = self.get(&jwks_uri).await?;
        let ring = jose::keyring(&body).map_err(|e| StoreError::Corrupt(e.into()))?;
        Ok((ring, max_age))
    }

    /// The issuer every token (and, for an issuer source, the metadata) must name.
    fn expected_issuer(&self) -> &str {
        &self.issuer
    }

    /// The keys as last fetched, and whether they are still fresh at `now`.
    fn ring(&self, now: UnixTime) -> (Arc<Keyring>, bool) {
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        (Arc::clone(&keys.ring), keys.fresh(now))
    }

    /// The keys to judge a token by, with `kid` among them if it can be. A stale set is fetched
    /// again first, and so is one without `kid` (at most once per `refetch_interval`); one
    /// fetch for all concurrent requests. While fetches fail, the last good set serves.
    async fn ring_with(&self, kid: &str) -> Result<Arc<Keyring>, StoreError> {
        let now = self.clock.now();
        let (ring, fresh) = self.ring(now);
        if fresh && ring.contains_key(kid) {
            return Ok(ring);
        }
        let _one = self.fetching.lock().await;
        // Another request may have fetched while this one waited.
        let (fetched_at, backing_off) = {
            let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
            (keys.fetched_at, keys.backing_off(now))
        };
        let (ring, fresh) = self.ring(now);
        let recent =
            fetched_at.is_some_and(|t| now < t.saturating_add(self.refetch_interval.as_secs()));
        if fresh && (ring.contains_key(kid) || recent) {
            return Ok(ring);
        }
        if backing_off {
            // Answer at once: no request waits behind an attempt that is likely to fail again.
            return if ring.is_empty() {
                Err(StoreError::unavailable(
                    "the key set could not be fetched lately; backing off",
                ))
            } else {
                Ok(ring)
            };
        }
        match self.fetch_keys(now).await {
            Ok(()) => Ok(self.ring(now).0),
            // Keys unobtainable: with none cached, nothing can be judged (503); with some, the
            // last good set serves (and this kid is simply not among them).
            Err(e) if ring.is_empty() => Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "could not refetch the key set; using the last one");
                Ok(ring)
            }
        }
    }

    /// A token verified before, while the set is fresh and the key that verified it is still in
    /// it. `None` sends the token to [`verify`](Self::verify), which refreshes a stale set.
    fn cached(&self, hash: &TokenHash, now: UnixTime) -> Option<Validation> {
        let ((info, kid), _) = self.verified.get(hash)?;
        let (ring, fresh) = self.ring(now);
        if !fresh || !ring.contains_key(&*kid) {
            return None;
        }
        Some(if info.expires_at.saturating_add(self.leeway) <= now {
            Validation::Expired
        } else {
            Validation::Valid(info)
        })
    }

    async fn verify(&self, token: &str) -> Result<Validation, StoreError> {
        let Some(kid) = jose::access_token_kid(token) else {
            return Ok(Validation::Invalid);
        };
        let ring = self.ring_with(&kid).await?;
        // With tokens of no audience allowed, `aud` is not required; one that is there must
        // still name this resource.
        let wanted = (!self.allow_no_audience).then_some(self.audience.as_str());
        let c = match jose::verify(token, &ring, self.expected_issuer(), wanted) {
            Ok(claims) => claims,
            Err(Unverified::UnknownKey | Unverified::Invalid) => return Ok(Validation::Invalid),
            Err(Unverified::WrongAudience) => return Ok(Validation::WrongAudience),
        };
        if self.allow_no_audience && !c.aud.is_none() && !c.aud.names(&self.audience) {
            return Ok(Validation::WrongAudience);
        }
        let now = self.clock.now();
        if c.nbf
            .is_some_and(|nbf| nbf > now.saturating_add(self.leeway))
            || c.iat
                .is_some_and(|iat| iat > now.saturating_add(self.leeway))
        {
            return Ok(Validation::Invalid);
        }
        if c.exp.saturating_add(self.leeway) <= now {
            return Ok(Validation::Expired);
        }
        let Ok(scope) = Scope::parse(c.scope.as_deref().unwrap_or("")) else {
            return Ok(Validation::Invalid);
        };
        let client_id = c.client_id.unwrap_or_default();
        let mut info = TokenInfo::new(client_id.clone(), scope, c.iat.unwrap_or(now), c.exp);
        // RFC 9068 §2.2: `sub` is the client itself when no user is involved; the token says so
        // with `gty` (never inferred from `sub` equalling `client_id`: a user's id may).
        let for_client_itself = c.gty.as_deref() == Some("client_credentials");
        if let Some(sub) = c.sub.filter(|_| !for_client_itself) {
            info = info.with_subject(sub);
        }
        info = info.with_audience(crate::resource::Resources::of_aud(&c.aud));
        let until = c.exp.saturating_add(self.leeway);
        let value = (info.clone(), Arc::from(kid));
        self.verified
            .insert(TokenHash::of(token), value, until, now);
        Ok(Validation::Valid(info))
    }
}

impl Validator for JwtValidator {
    fn validate_now(&self, token: &str) -> Option<Result<Validation, StoreError>> {
        let now = self.inner.clock.now();
        self.inner.cached(&TokenHash::of(token), now).map(Ok)
    }

    fn validate(&self, token: &str) -> BoxFuture<'static, Result<Validation, StoreError>> {
        let inner = Arc::clone(&self.inner);
        let token = token.to_owned();
        Box::pin(async move {
            if let Some(v) = inner.cached(&TokenHash::of(&token), inner.clock.now()) {
                return Ok(v);
            }
            inner.verify(&token).await
        })
    }
}
