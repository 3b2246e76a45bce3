//! One HTTP exchange with the authorization server, for the validators that run in another
//! process (introspection, JWKS): bounded in time and in the size of the answer, and any failure
//! a [`StoreError`] (the layer's 503), never a verdict on the token. `http://` always;
//! `https://` with the `tls` feature (rustls on AWS-LC, the system's root certificates unless
//! the app gives its own).

use std::{fmt, sync::Arc, time::Duration};

use bytes::Bytes;
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::{Client as HttpClient, connect::HttpConnector};

use crate::{
    clock::{Clock, SystemClock},
    error::{ConfigError, StoreError},
};

/// What the validators that call the authorization server share, one name per option:
/// [`IntrospectionValidatorBuilder`](super::IntrospectionValidatorBuilder) and
/// [`JwtValidatorBuilder`](super::JwtValidatorBuilder) both take it whole
/// ([`options`](super::JwtValidatorBuilder::options)) or option by option.
///
/// ```
/// use std::time::Duration;
/// use tower_oauth2::bearer::RemoteOptions;
///
/// let mut options = RemoteOptions::default();
/// options.timeout = Duration::from_millis(500);
/// options.max_entries = 10_000;
/// assert!(options.tls_roots.is_none());
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct RemoteOptions {
    /// Upper bound of one call to the authorization server, connecting included (default 2 s).
    pub timeout: Duration,
    /// The clock for expiry and cache lifetimes (default: the system clock).
    pub clock: Arc<dyn Clock>,
    /// Most entries the validator's cache holds (default 100 000): verdicts for introspection,
    /// verified tokens for JWTs. Beyond it, expired entries go first.
    pub max_entries: usize,
    /// CA certificates (PEM, one or more) to trust for `https://` instead of the system's: an
    /// authorization server with a private CA (feature `tls`).
    pub tls_roots: Option<String>,
    /// Allow plain `http://` to a host that is not loopback (default false: `https://`, or
    /// `http://` to `127.0.0.0/8`, `[::1]` or `localhost` only). Anyone on the path of a plain
    /// connection can substitute keys or verdicts: for a network you trust end to end, or tests.
    pub allow_insecure_http: bool,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(2),
            clock: Arc::new(SystemClock),
            max_entries: 100_000,
            tls_roots: None,
            allow_insecure_http: false,
        }
    }
}

impl fmt::Debug for RemoteOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteOptions")
            .field("timeout", &self.timeout)
            .field("clock", &self.clock)
            .field("max_entries", &self.max_entries)
            .field("tls_roots", &self.tls_roots.as_ref().map(|_| "<PEM>"))
            .field("allow_insecure_http", &self.allow_insecure_http)
            .finish()
    }
}

impl RemoteOptions {
    /// The HTTP client these options make.
    pub(crate) fn client(&self) -> Result<Http, ConfigError> {
        client(self.timeout, self.tls_roots.as_deref())
    }

    /// Whether these options let the validator call `uri`: `https://`, or plain `http://` to a
    /// loopback host or with [`allow_insecure_http`](Self::allow_insecure_http).
    pub(crate) fn check(&self, uri: &Uri, what: &'static str) -> Result<(), ConfigError> {
        secure_enough(uri, self.allow_insecure_http, what)
    }
}

/// `https://`, or plain `http://` to a loopback host or when `allow_insecure_http`.
pub(crate) fn secure_enough(
    uri: &Uri,
    allow_insecure_http: bool,
    what: &'static str,
) -> Result<(), ConfigError> {
    if uri.scheme_str() == Some("http") && !allow_insecure_http && !is_loopback(uri) {
        tracing::warn!(%uri, "{what}: plain http to a host that is not loopback is refused");
        return Err(ConfigError::Endpoint(
            "plain http:// only to a loopback host: use https://, or allow_insecure_http",
        ));
    }
    Ok(())
}

/// Whether `uri` names this machine: `localhost`, `127.0.0.0/8` or `[::1]`.
pub(crate) fn is_loopback(uri: &Uri) -> bool {
    let Some(host) = uri.host() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The setters of [`RemoteOptions`], the same on each builder that holds them in `options`.
macro_rules! remote_options_setters {
    ($what:literal) => {
        /// All the options the validators that call the authorization server share, at once.
        pub fn options(mut self, options: $crate::bearer::RemoteOptions) -> Self {
            self.options = options;
            self
        }

        #[doc = concat!("Upper bound of one ", $what, " (default 2 s).")]
        pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
            self.options.timeout = timeout;
            self
        }

        /// The clock for expiry and cache lifetimes (default: the system clock).
        pub fn clock(mut self, clock: impl $crate::clock::Clock) -> Self {
            self.options.clock = std::sync::Arc::new(clock);
            self
        }

        /// Most entries cached (default 100 000, at least 1); beyond it, expired entries go
        /// first (see [`RemoteOptions::max_entries`](crate::bearer::RemoteOptions::max_entries)).
        pub fn max_entries(mut self, n: usize) -> Self {
            self.options.max_entries = n.max(1);
            self
        }

        /// Trust these CA certificates (PEM, one or more) for an `https://` endpoint instead of
        /// the system's: an authorization server with a private CA (feature `tls`).
        #[cfg(feature = "tls")]
        pub fn tls_root_certificates(mut self, pem: impl Into<String>) -> Self {
            self.options.tls_roots = Some(pem.into());
            self
        }

        /// Allow plain `http://` to a host that is not loopback (see
        /// [`RemoteOptions::allow_insecure_http`](crate::bearer::RemoteOptions::allow_insecure_http)):
        /// anyone on the path could then substitute keys or verdicts.
        pub fn allow_insecure_http(mut self, allow: bool) -> Self {
            self.options.allow_insecure_http = allow;
            self
        }
    };
}
pub(crate) use remote_options_setters;

/// The HTTP/1.1 client both validators use.
#[cfg(not(feature = "tls"))]
pub(crate) type Http = HttpClient<HttpConnector, Full<Bytes>>;
/// The HTTP/1.1 client both validators use, with TLS for `https://`.
#[cfg(feature = "tls")]
pub(crate) type Http = HttpClient<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The most of an answer that is read: introspection answers and key sets are a few KiB.
pub(crate) const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// `url` as an endpoint the client can reach: `http://`, or `https://` with the `tls` feature.
pub(crate) fn endpoint(url: &str, what: &'static str) -> Result<Uri, ConfigError> {
    let uri: Uri = url.parse().map_err(|_| ConfigError::Endpoint(what))?;
    if uri.host().is_none() {
        return Err(ConfigError::Endpoint(what));
    }
    match uri.scheme_str() {
        Some("http") => Ok(uri),
        #[cfg(feature = "tls")]
        Some("https") => Ok(uri),
        #[cfg(not(feature = "tls"))]
        Some("https") => Err(ConfigError::Endpoint(
            "an https:// URL needs the `tls` feature",
        )),
        _ => Err(ConfigError::Endpoint(what)),
    }
}

/// A client whose connection attempts give up after `timeout`. `roots`: PEM certificates to
/// trust for `https://` instead of the system's (feature `tls`).
pub(crate) fn client(timeout: Duration, roots: Option<&str>) -> Result<Http, ConfigError> {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(timeout));
    #[cfg(feature = "tls")]
    let connector = {
        connector.enforce_http(false);
        hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(crate::wire::tls::client_config(roots).map_err(ConfigError::Endpoint)?)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector)
    };
    #[cfg(not(feature = "tls"))]
    if roots.is_some() {
        return Err(ConfigError::Endpoint("TLS roots need the `tls` feature"));
    }
    Ok(HttpClient::builder(hyper_util::rt::TokioExecutor::new()).build(connector))
}

/// Send `request` and read the whole answer, within `timeout` and [`MAX_ANSWER_BYTES`].
#[cfg(feature = "introspection")]
pub(crate) async fn exchange(
    http: &Http,
    request: Request<Full<Bytes>>,
    timeout: Duration,
) -> Result<(StatusCode, Bytes), StoreError> {
    let (status, _, body) = exchange_with_max_age(http, request, timeout).await?;
    Ok((status, body))
}

/// [`exchange`], with the answer's `Cache-Control: max-age` in seconds, if it gave one (and
/// did not say `no-store` or `no-cache`, which are a max-age of 0).
pub(crate) async fn exchange_with_max_age(
    http: &Http,
    request: Request<Full<Bytes>>,
    timeout: Duration,
) -> Result<(StatusCode, Option<u64>, Bytes), StoreError> {
    let call = async {
        let response = http
            .request(request)
            .await
            .map_err(StoreError::unavailable)?;
        let status = response.status();
        let max_age = response
            .headers()
            .get(http::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(crate::wire::header::cache_max_age);
        let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|e| {
                StoreError::unavailable(format!("answer from the authorization server: {e}"))
            })?
            .to_bytes();
        Ok::<_, StoreError>((status, max_age, body))
    };
    tokio::time::timeout(timeout, call)
        .await
        .map_err(|_| StoreError::Timeout)?
}

#[cfg(test)]
mod tests {
    use crate::wire::header::cache_max_age;

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(cache_max_age("public, max-age=300"), Some(300));
        assert_eq!(cache_max_age("Max-Age=\"60\""), Some(60));
        assert_eq!(cache_max_age("public"), None);
        assert_eq!(cache_max_age("max-age=300, no-cache"), Some(0));
        assert_eq!(cache_max_age("no-store"), Some(0));
        assert_eq!(cache_max_age("max-age=-1"), None);
    }
}
