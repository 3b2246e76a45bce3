//! Fetching a document a client names by URL, as a hazard: the host is resolved once and
//! every address checked before any connection, the connection goes to those addresses (no
//! second lookup, so no DNS rebinding), no redirect is followed, and the answer is cut off at a
//! size and a time.

use std::{
    future::Future,
    io,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http::{Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty, LengthLimitError, Limited};
use hyper_util::client::legacy::{
    Client as HttpClient,
    connect::{HttpConnector, dns::Name},
};

use super::address::is_global;

/// Which non-global addresses the app allows (its tests' loopback, a private network).
pub(crate) type AllowAddress = Arc<dyn Fn(IpAddr) -> bool + Send + Sync>;

/// How a document is fetched.
#[derive(Clone)]
pub(crate) struct Fetcher {
    pub(crate) tls: Arc<rustls::ClientConfig>,
    pub(crate) allow: Option<AllowAddress>,
    pub(crate) allow_http_loopback: bool,
    pub(crate) max_bytes: usize,
    pub(crate) timeout: Duration,
}

/// A fetched document: its bytes and the `max-age` its `Cache-Control` gave.
pub(crate) struct Fetched {
    pub(crate) body: Bytes,
    pub(crate) max_age: Option<u64>,
}

/// The resolver the connector gets: the addresses already resolved and checked, nothing else.
#[derive(Clone)]
struct Pinned(Arc<[SocketAddr]>);

impl tower_service::Service<Name> for Pinned {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, io::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _name: Name) -> Self::Future {
        let addrs = self.0.to_vec();
        Box::pin(async move { Ok(addrs.into_iter()) })
    }
}

impl Fetcher {
    fn allowed(&self, ip: IpAddr) -> bool {
        is_global(ip) || self.allow.as_ref().is_some_and(|allow| allow(ip))
    }

    /// GET `url` (already checked to be `https`, or `http` on loopback when allowed).
    pub(crate) async fn fetch(&self, url: &str) -> Result<Fetched, String> {
        tokio::time::timeout(self.timeout, self.fetch_unbounded(url))
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "it did not answer within {} s",
                    self.timeout.as_secs_f32()
                ))
            })
    }

    async fn fetch_unbounded(&self, url: &str) -> Result<Fetched, String> {
        let uri: Uri = url.parse().map_err(|_| "it is not a URL".to_owned())?;
        let host = uri.host().ok_or("it has no host")?;
        let https = uri.scheme_str() == Some("https");
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        // Resolved once, here; every address must be one the server may reach.
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((bare, port))
                .await
                .map_err(|e| format!("its host could not be resolved ({e})"))?
                .collect(),
        };
        if addrs.is_empty() {
            return Err("its host has no address".into());
        }
        if let Some(refused) = addrs.iter().find(|a| !self.allowed(a.ip())) {
            return Err(format!(
                "its host resolves to {}, which is not a public address",
                refused.ip()
            ));
        }
        let loopback_only = addrs.iter().all(|a| a.ip().is_loopback());
        if !https && (!self.allow_http_loopback || !loopback_only) {
            return Err("it must be https".into());
        }
        let mut connector = HttpConnector::new_with_resolver(Pinned(addrs.into()));
        connector.set_connect_timeout(Some(self.timeout));
        connector.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*self.tls).clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let client = HttpClient::builder(hyper_util::rt::TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build::<_, Empty<Bytes>>(connector);
        let request = Request::get(uri)
            .header(header::ACCEPT, "application/json")
            .header(header::USER_AGENT, "tower-oauth2")
            .body(Empty::new())
            .map_err(|_| "it is not a URL".to_owned())?;
        let response = client
            .request(request)
            .await
            .map_err(|e| format!("it could not be fetched ({})", root_cause(&e)))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(format!("it answered {status}: redirects are not followed"));
        }
        if status != StatusCode::OK {
            return Err(format!("it answered {status}"));
        }
        let json = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|m| m.trim().to_ascii_lowercase())
            .is_some_and(|m| m == "application/json" || m.ends_with("+json"));
        if !json {
            return Err("it is not served as application/json".into());
        }
        let max_age = response
            .headers()
            .get(header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(crate::wire::header::cache_max_age);
        let max = self.max_bytes;
        let body = Limited::new(response.into_body(), max)
            .collect()
            .await
            .map_err(|e| {
                if e.downcast_ref::<LengthLimitError>().is_some() {
                    format!("it is larger than {max} bytes")
                } else {
                    "its body could not be read".to_owned()
                }
            })?
            .to_bytes();
        Ok(Fetched { body, max_age })
    }
}

/// The innermost error, which says what went wrong (refused, reset, certificate…).
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
