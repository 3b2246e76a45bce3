//! Client ID metadata documents (draft-ietf-oauth-client-id-metadata-document): a `client_id`
//! that is an `https` URL names a JSON document of the client's metadata, which the server
//! fetches (safely, see [`ClientIdMetadataDocuments`]), checks and caches in the token store.

use std::{fmt, net::IpAddr, sync::Arc, time::Duration};

use crate::scope::Scope;
#[cfg(feature = "tls")]
use {
    super::metadata::{AuthMethod, ClientMetadata},
    crate::{
        client::{Client, GrantType},
        clock::Clock,
        error::{ConfigError, OAuthError},
        store::{TokenStore, records::Records},
        token::TokenHash,
    },
    dashmap::DashMap,
    serde_json::{Map, Value},
    tokio::sync::{OnceCell, Semaphore},
};

/// The longest client ID URL considered.
#[cfg(feature = "tls")]
const MAX_URL_BYTES: usize = 2048;

/// Client ID metadata documents: how they are fetched and cached. Give it to
/// [`AuthServerBuilder::client_id_metadata_documents`](crate::AuthServerBuilder::client_id_metadata_documents);
/// the server's metadata then says `client_id_metadata_document_supported`.
///
/// Fetching a URL a stranger chose is a hazard, treated as one: `https` only; the host resolved
/// once and the connection made to the addresses found (no second lookup, so no DNS
/// rebinding); refused when any is loopback, private, link-local, unique-local, multicast or
/// otherwise not global, unless [`allow_addresses`](Self::allow_addresses) says so — without a
/// connection being made; no redirects; at most [`max_bytes`](Self::max_bytes) (5 KiB) within
/// [`timeout`](Self::timeout) (5 s); `jwks_uri` and `logo_uri` never fetched; one fetch in
/// flight per URL on an instance and at most [`max_concurrent_fetches`](Self::max_concurrent_fetches)
/// (16) in all. A document is cached in the token store, so every instance shares one fetch, for
/// its `Cache-Control: max-age` kept between [`min_cache`](Self::min_cache) (5 minutes) and
/// [`max_cache`](Self::max_cache) (24 hours); one that failed is remembered as failed for
/// [`failure_cache`](Self::failure_cache) (1 minute).
///
/// Needs the `tls` feature (documents are fetched over `https`): without it the server does not
/// build, and says so.
#[derive(Clone)]
#[must_use]
#[cfg_attr(not(feature = "tls"), allow(dead_code))]
pub struct ClientIdMetadataDocuments {
    allow: Option<Arc<dyn Fn(IpAddr) -> bool + Send + Sync>>,
    allow_http_loopback: bool,
    max_bytes: usize,
    timeout: Duration,
    min_cache: Duration,
    max_cache: Duration,
    failure_cache: Duration,
    max_concurrent_fetches: usize,
    tls_roots: Option<String>,
    allowed_scope: Option<Scope>,
}

impl fmt::Debug for ClientIdMetadataDocuments {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientIdMetadataDocuments")
            .field("allow_addresses", &self.allow.is_some())
            .field("allow_http_loopback", &self.allow_http_loopback)
            .field("max_bytes", &self.max_bytes)
            .field("timeout", &self.timeout)
            .field("min_cache", &self.min_cache)
            .field("max_cache", &self.max_cache)
            .field("failure_cache", &self.failure_cache)
            .field("max_concurrent_fetches", &self.max_concurrent_fetches)
            .field("allowed_scope", &self.allowed_scope)
            .finish_non_exhaustive()
    }
}

impl Default for ClientIdMetadataDocuments {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientIdMetadataDocuments {
    /// The defaults above.
    pub fn new() -> Self {
        Self {
            allow: None,
            allow_http_loopback: false,
            max_bytes: 5 * 1024,
            timeout: Duration::from_secs(5),
            min_cache: Duration::from_secs(300),
            max_cache: Duration::from_secs(86_400),
            failure_cache: Duration::from_secs(60),
            max_concurrent_fetches: 16,
            tls_roots: None,
            allowed_scope: None,
        }
    }

    /// Also allow these non-global addresses (say, a private network the app trusts, or
    /// loopback in its tests): `allow(ip)` is asked for each address that is not global.
    pub fn allow_addresses(
        mut self,
        allow: impl Fn(IpAddr) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.allow = Some(Arc::new(allow));
        self
    }

    /// Accept `http://` document URLs whose host is loopback (for tests; with loopback allowed
    /// by [`allow_addresses`](Self::allow_addresses)). Default false.
    pub fn allow_http_loopback(mut self, allow: bool) -> Self {
        self.allow_http_loopback = allow;
        self
    }

    /// The largest document read (default 5 KiB).
    pub fn max_bytes(mut self, max: usize) -> Self {
        self.max_bytes = max;
        self
    }

    /// How long a fetch may take, connection included (default 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The shortest a document is cached, whatever its `Cache-Control` (default 5 minutes).
    pub fn min_cache(mut self, d: Duration) -> Self {
        self.min_cache = d;
        self
    }

    /// The longest a document is cached (default 24 hours).
    pub fn max_cache(mut self, d: Duration) -> Self {
        self.max_cache = d;
        self
    }

    /// How long a document that could not be fetched or was refused is remembered so (default
    /// 1 minute).
    pub fn failure_cache(mut self, d: Duration) -> Self {
        self.failure_cache = d;
        self
    }

    /// The most fetches in flight at once on an instance (default 16); beyond it a request
    /// naming an uncached document gets 503.
    pub fn max_concurrent_fetches(mut self, n: usize) -> Self {
        self.max_concurrent_fetches = n;
        self
    }

    /// Trust these CA certificates (PEM) for the documents' `https` instead of the system's.
    pub fn tls_root_certificates(mut self, pem: impl Into<String>) -> Self {
        self.tls_roots = Some(pem.into());
        self
    }

    /// The scopes a client known by its document may have: a document naming others is
    /// refused, one naming none gets these. Default: what it names (none: any).
    pub fn allowed_scope(mut self, scope: Scope) -> Self {
        self.allowed_scope = Some(scope);
        self
    }
}

/// A document as cached: its checked metadata, or why it was refused.
#[cfg(feature = "tls")]
#[derive(serde::Serialize, serde::Deserialize)]
enum Cached {
    #[serde(rename = "m")]
    Metadata(Map<String, Value>),
    #[serde(rename = "e")]
    Refused(String),
}

#[cfg(feature = "tls")]
crate::store::records::json_record!(Cached, "client_doc");

/// What resolving a document URL gave.
#[cfg(feature = "tls")]
type Resolved = Result<Arc<Client>, OAuthError>;

/// The documents' resolver, held by the server.
#[cfg(feature = "tls")]
pub(crate) struct Documents {
    config: ClientIdMetadataDocuments,
    fetcher: super::fetch::Fetcher,
    fetches: Semaphore,
    in_flight: DashMap<String, Arc<OnceCell<Resolved>>>,
    store: Arc<dyn TokenStore>,
    clock: Arc<dyn Clock>,
    /// What the server can do for a document's OpenID settings.
    openid: super::metadata::OpenIdSupport,
}

#[cfg(feature = "tls")]
impl fmt::Debug for Documents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Documents")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Why a URL cannot be a client ID, if it cannot.
#[cfg(feature = "tls")]
fn url_problem(url: &str, allow_http_loopback: bool) -> Option<&'static str> {
    if url.len() > MAX_URL_BYTES || !url.is_ascii() || url.bytes().any(|b| b <= b' ') {
        return Some("it is too long or holds spaces or non-ASCII characters");
    }
    if url.contains('#') {
        return Some("it must not have a fragment");
    }
    let Ok(uri) = url.parse::<http::Uri>() else {
        return Some("it is not a URL");
    };
    let loopback = |h: &str| h == "localhost" || h == "127.0.0.1" || h == "[::1]";
    match (uri.scheme_str(), uri.host()) {
        (Some("https"), Some(_)) => {}
        (Some("http"), Some(h)) if allow_http_loopback && loopback(h) => {}
        _ => return Some("it must be an https URL"),
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Some("it must not hold user information");
    }
    let path = uri.path();
    if path.is_empty() || path == "/" {
        return Some("it must have a path");
    }
    if path.split('/').any(|seg| seg == "." || seg == "..") {
        return Some("its path must not have . or .. segments");
    }
    None
}

#[cfg(feature = "tls")]
impl Documents {
    pub(crate) fn new(
        config: ClientIdMetadataDocuments,
        store: Arc<dyn TokenStore>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ConfigError> {
        let invalid = |why| Err(ConfigError::Registration(why));
        if config.max_bytes == 0 || config.max_concurrent_fetches == 0 {
            return invalid(
                "ClientIdMetadataDocuments bounds must allow at least one byte and one fetch",
            );
        }
        if config.min_cache > config.max_cache || config.max_cache > crate::config::MAX_LIFETIME {
            return invalid(
                "ClientIdMetadataDocuments::min_cache must not exceed max_cache (at most ten years)",
            );
        }
        let tls = crate::wire::tls::client_config(config.tls_roots.as_deref())
            .map_err(ConfigError::Registration)?;
        Ok(Self {
            fetcher: super::fetch::Fetcher {
                tls: Arc::new(tls),
                allow: config.allow.clone(),
                allow_http_loopback: config.allow_http_loopback,
                max_bytes: config.max_bytes,
                timeout: config.timeout,
            },
            fetches: Semaphore::new(config.max_concurrent_fetches),
            in_flight: DashMap::new(),
            config,
            store,
            clock,
            openid: super::metadata::OpenIdSupport::default(),
        })
    }

    /// The OpenID settings a document may ask for.
    pub(crate) fn with_openid(mut self, openid: super::metadata::OpenIdSupport) -> Self {
        self.openid = openid;
        self
    }

    /// Whether `client_id` is one this resolver answers for: a URL of the right scheme.
    pub(crate) fn claims(&self, client_id: &str) -> bool {
        client_id.starts_with("https://")
            || (self.config.allow_http_loopback && client_id.starts_with("http://"))
    }

    /// The client a document URL names: from the store's cache, or fetched (once per URL in
    /// flight). A document that cannot be used is `invalid_client` saying why.
    pub(crate) async fn resolve(&self, url: &str) -> Result<Arc<Client>, OAuthError> {
        let refused = |why: &str| {
            OAuthError::invalid_client(format!("client metadata document {url}: {why}"))
        };
        if let Some(problem) = url_problem(url, self.config.allow_http_loopback) {
            return Err(refused(problem));
        }
        let cell = Arc::clone(
            self.in_flight
                .entry(url.to_owned())
                .or_insert_with(|| Arc::new(OnceCell::new()))
                .value(),
        );
        let result = cell.get_or_init(|| self.load(url)).await.clone();
        self.in_flight
            .remove_if(url, |_, held| Arc::ptr_eq(held, &cell));
        result
    }

    async fn load(&self, url: &str) -> Result<Arc<Client>, OAuthError> {
        let records = Records::<Cached>::new(&*self.store);
        let key = TokenHash::of(url);
        let now = self.clock.now();
        let cached = match records.get(&key, now).await? {
            Some(cached) => cached,
            None => {
                let (cached, ttl) = self.fetch(url).await?;
                records
                    .put(&key, &cached, now.saturating_add(ttl), now)
                    .await?;
                cached
            }
        };
        match cached {
            Cached::Metadata(fields) => self.client(url, &fields),
            Cached::Refused(why) => Err(OAuthError::invalid_client(format!(
                "client metadata document {url}: {why}"
            ))),
        }
    }

    /// Fetch and check the document: what to cache, and for how long.
    async fn fetch(&self, url: &str) -> Result<(Cached, u64), OAuthError> {
        let Ok(_permit) = self.fetches.try_acquire() else {
            return Err(OAuthError::temporarily_unavailable(
                "too many client metadata documents are being fetched: try again",
            ));
        };
        let fetched = self.fetcher.fetch(url).await;
        let failed = |why: String| (Cached::Refused(why), self.config.failure_cache.as_secs());
        let fetched = match fetched {
            Ok(f) => f,
            Err(why) => return Ok(failed(why)),
        };
        let fields = match serde_json::from_slice::<Value>(&fetched.body) {
            Ok(Value::Object(fields)) => fields,
            _ => return Ok(failed("it is not a JSON object".into())),
        };
        if let Err(e) = self.client(url, &fields) {
            let why = e
                .description()
                .and_then(|d| d.split_once(": "))
                .map_or("it was refused", |(_, why)| why)
                .to_owned();
            return Ok(failed(why));
        }
        let ttl = fetched.max_age.unwrap_or(0).clamp(
            self.config.min_cache.as_secs(),
            self.config.max_cache.as_secs(),
        );
        Ok((Cached::Metadata(fields), ttl))
    }

    /// The client a checked document describes.
    fn client(&self, url: &str, fields: &Map<String, Value>) -> Result<Arc<Client>, OAuthError> {
        let refused = |why: String| {
            OAuthError::invalid_client(format!("client metadata document {url}: {why}"))
        };
        if fields.get("client_id").and_then(Value::as_str) != Some(url) {
            return Err(refused(
                "its client_id must be exactly the URL it was fetched from".into(),
            ));
        }
        for secret in ["client_secret", "client_secret_expires_at"] {
            if fields.contains_key(secret) {
                return Err(refused(format!(
                    "it must not hold {secret}: a public document cannot carry a shared secret"
                )));
            }
        }
        let mut fields = fields.clone();
        let method = fields
            .entry("token_endpoint_auth_method")
            .or_insert_with(|| "none".into())
            .clone();
        match method.as_str() {
            Some("none") => {}
            Some("private_key_jwt") => {
                return Err(refused(
                    "token_endpoint_auth_method private_key_jwt is not supported by this server: use none".into(),
                ));
            }
            Some(other) => {
                return Err(refused(format!(
                    "token_endpoint_auth_method {other:?} needs a shared secret, which a document cannot carry: use none"
                )));
            }
            None => {
                return Err(refused(
                    "token_endpoint_auth_method must be a string".into(),
                ));
            }
        }
        let mut metadata = ClientMetadata::from_fields(&fields).map_err(|e| {
            refused(
                e.description()
                    .unwrap_or("its metadata is invalid")
                    .to_owned(),
            )
        })?;
        debug_assert_eq!(metadata.token_endpoint_auth_method(), AuthMethod::None);
        self.openid.check(&metadata).map_err(|e| {
            refused(
                e.description()
                    .unwrap_or("it asks for what this server cannot do")
                    .to_owned(),
            )
        })?;
        if let Some(allowed) = &self.config.allowed_scope {
            match metadata.scope() {
                Some(s) if !s.is_subset_of(allowed) => {
                    return Err(refused(format!("its scope may name only: {allowed}")));
                }
                Some(_) => {}
                None => metadata.set_scope(allowed.clone()),
            }
        }
        let mut b = Client::public(url);
        for r in metadata.redirect_uris() {
            b = b.redirect_uri(r);
        }
        b = b
            .grant_types(metadata.grant_types().iter().copied())
            .issue_refresh_token(metadata.grant_types().contains(&GrantType::RefreshToken))
            .metadata_document(true);
        if let Some(scope) = metadata.scope() {
            b = b.scope(scope.as_str());
        }
        if let Some(name) = metadata.client_name() {
            b = b.name(name);
        }
        b = metadata.openid_onto(b);
        b.build().map(Arc::new).map_err(|e| refused(e.to_string()))
    }
}

#[cfg(all(test, feature = "tls"))]
mod tests {
    use super::url_problem;

    #[test]
    fn only_https_urls_with_a_plain_path_name_documents() {
        for good in [
            "https://app.example/client.json",
            "https://app.example:8443/oauth/client-metadata.json",
            "https://app.example/c?v=1",
        ] {
            assert_eq!(url_problem(good, false), None, "{good}");
        }
        assert_eq!(url_problem("http://127.0.0.1:9/c.json", true), None);
        for (bad, says) in [
            ("http://app.example/client.json", "https"),
            ("http://127.0.0.1:9/c.json", "https"),
            ("http://app.example/c.json", "https"),
            ("https://app.example", "path"),
            ("https://app.example/", "path"),
            ("https://app.example/a/../client.json", ".."),
            ("https://app.example/./client.json", ".."),
            ("https://app.example/c.json#x", "fragment"),
            ("https://user:pw@app.example/c.json", "user information"),
            ("https://app.example/c json", "spaces"),
            ("https://app.exämple/c.json", "non-ASCII"),
        ] {
            let problem = url_problem(bad, false).unwrap_or_else(|| panic!("{bad}"));
            assert!(problem.contains(says), "{bad}: {problem}");
        }
        let long = format!("https://app.example/{}", "a".repeat(2048));
        assert!(url_problem(&long, false).is_some());
    }
}
