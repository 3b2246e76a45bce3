//! Client ID metadata documents through the public API, against documents served by a test
//! HTTPS server on loopback (a private CA, as the TLS tests): a client known by its document
//! runs the code flow and refreshes; the cache follows `Cache-Control` between its floor and
//! ceiling and is shared through the store; failures are remembered briefly; every refusal is
//! `invalid_client` saying why; and the SSRF guards — a URL whose host is loopback or private is
//! refused without a connection being made (a listener counts them), no redirect is followed,
//! an oversized or slow document is cut off, concurrent requests share one fetch and fetches
//! are bounded.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode as AxumStatus, header},
    response::{IntoResponse, Response},
    routing::get,
};
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;
use tower_oauth2::{
    AuthServer, InMemoryClients, Metadata,
    clock::ManualClock,
    endpoint::{AuthorizationContext, Decision, Interaction},
    error::ErrorKind,
    registration::ClientIdMetadataDocuments,
    store::{MemoryStore, TokenStore},
};

use crate::support::{
    form,
    https::{TlsListener, authority, server_config},
    reply,
};

const START: u64 = 1_800_000_000;
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// The documents' host: what each path serves, and how often each was asked for.
#[derive(Clone, Default)]
struct Host {
    hits: Arc<Mutex<HashMap<String, usize>>>,
    /// The body and Cache-Control of `/dynamic.json`.
    dynamic: Arc<Mutex<(Value, &'static str)>>,
    origin: Arc<Mutex<String>>,
}

impl Host {
    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.origin.lock().unwrap())
    }
}

fn doc(url: &str) -> Value {
    json!({
        "client_id": url,
        "client_name": "Example Agent",
        "client_uri": "https://agent.example",
        "logo_uri": "https://agent.example/logo.png",
        "redirect_uris": ["http://127.0.0.1/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "jwks_uri": "https://169.254.169.254/latest/meta-data",
    })
}

fn json_response(body: &Value, cache: &str) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if !cache.is_empty() {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_str(cache).unwrap());
    }
    (headers, body.to_string()).into_response()
}

async fn serve_document(State(host): State<Host>, Path(name): Path<String>) -> Response {
    *host.hits.lock().unwrap().entry(name.clone()).or_default() += 1;
    let url = host.url(&name);
    let with = |extra: Value| {
        let mut d = doc(&url);
        for (k, v) in extra.as_object().unwrap() {
            d[k] = v.clone();
        }
        d
    };
    match name.as_str() {
        "client.json" => json_response(&doc(&url), "public, max-age=600"),
        "short.json" => json_response(&doc(&url), "max-age=10"),
        "long.json" => json_response(&doc(&url), "max-age=9999999"),
        "nostore.json" => json_response(&doc(&url), "no-store"),
        "dynamic.json" => {
            let (body, cache) = host.dynamic.lock().unwrap().clone();
            json_response(&body, cache)
        }
        "slowish.json" => {
            tokio::time::sleep(Duration::from_millis(200)).await;
            json_response(&doc(&url), "")
        }
        "slow.json" | "slow2.json" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            json_response(&doc(&url), "")
        }
        "redirect.json" => (
            AxumStatus::FOUND,
            [(header::LOCATION, host.url("client.json"))],
        )
            .into_response(),
        "big.json" => json_response(
            &with(
                json!({"client_name": "x".repeat(200), "contacts": [], "padding": "y".repeat(6000)}),
            ),
            "",
        ),
        "html.json" => {
            ([(header::CONTENT_TYPE, "text/html")], doc(&url).to_string()).into_response()
        }
        "notjson.json" => json_response(&json!("a string"), ""),
        "wrong-id.json" => json_response(&with(json!({"client_id": host.url("other.json")})), ""),
        "secret.json" => json_response(&with(json!({"client_secret": "s3cret"})), ""),
        "basic.json" => json_response(
            &with(json!({"token_endpoint_auth_method": "client_secret_basic"})),
            "",
        ),
        "pkjwt.json" => json_response(
            &with(json!({"token_endpoint_auth_method": "private_key_jwt"})),
            "",
        ),
        "evil-redirect.json" => json_response(
            &with(json!({"redirect_uris": ["http://evil.example/cb"]})),
            "",
        ),
        "implicit.json" => json_response(&with(json!({"grant_types": ["implicit"]})), ""),
        "cc.json" => json_response(
            &with(json!({"grant_types": ["client_credentials"], "response_types": []})),
            "",
        ),
        // OpenID settings this server (no OpenID keys, no pairwise key) cannot honour.
        "eddsa.json" => json_response(&with(json!({"id_token_signed_response_alg": "EdDSA"})), ""),
        "pairwise.json" => json_response(&with(json!({"subject_type": "pairwise"})), ""),
        "no-redirects.json" => {
            let mut d = doc(&url);
            d.as_object_mut().unwrap().remove("redirect_uris");
            json_response(&d, "")
        }
        _ => (AxumStatus::NOT_FOUND, "no such document").into_response(),
    }
}

/// The documents' HTTPS host on loopback; the CA that signed its certificate.
async fn document_host() -> (Host, String) {
    let (ca, cert, key) = authority();
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = Host::default();
    *host.origin.lock().unwrap() =
        format!("https://127.0.0.1:{}", tcp.local_addr().unwrap().port());
    let app = Router::new()
        .route("/{name}", get(serve_document))
        .with_state(host.clone());
    let listener = TlsListener {
        tcp,
        tls: TlsAcceptor::from(Arc::new(server_config(cert, key))),
    };
    tokio::spawn(async move { axum::serve(listener, app).await });
    (host, ca)
}

async fn approve(_: AuthorizationContext) -> Interaction {
    Interaction::Decided(Decision::approve("alice"))
}

fn server_on(
    store: Arc<dyn TokenStore>,
    clock: Arc<ManualClock>,
    documents: ClientIdMetadataDocuments,
) -> AuthServer {
    AuthServer::builder()
        .clients(InMemoryClients::new())
        .configure(|c| c.issuer = Some("https://auth.example".into()))
        .authorization_handler(approve)
        .client_id_metadata_documents(documents)
        .shared_store(store)
        .clock(clock)
        .build()
        .unwrap()
}

/// Documents on loopback allowed (the test's host), trusting its CA.
fn allowing_loopback(ca: &str) -> ClientIdMetadataDocuments {
    ClientIdMetadataDocuments::new()
        .allow_addresses(|ip| ip.is_loopback())
        .tls_root_certificates(ca)
        .timeout(Duration::from_millis(500))
}

fn setup(ca: &str) -> (AuthServer, Arc<ManualClock>, MemoryStore) {
    let memory = MemoryStore::new();
    let clock = Arc::new(ManualClock::new(START));
    let server = server_on(
        Arc::new(memory.clone()),
        Arc::clone(&clock),
        allowing_loopback(ca),
    );
    (server, clock, memory)
}

async fn refusal(server: &AuthServer, url: &str) -> String {
    let err = server.client(url).await.expect_err(url);
    assert_eq!(err.kind(), ErrorKind::InvalidClient, "{url}: {err:?}");
    err.description().unwrap().to_owned()
}

fn enc(s: &str) -> String {
    s.replace(':', "%3A").replace('/', "%2F")
}

#[tokio::test]
async fn a_client_known_by_its_document_runs_the_code_flow_and_refreshes() {
    let (host, ca) = document_host().await;
    let (server, _, _) = setup(&ca);
    let url = host.url("client.json");
    // The consent page's data: the name the document claims, its host, loopback only.
    let client = server.client(&url).await.unwrap().unwrap();
    assert_eq!(client.id(), url);
    assert_eq!(client.name(), Some("Example Agent"));
    assert!(!client.is_confidential());
    let origin = host.origin.lock().unwrap().clone();
    assert_eq!(
        client.metadata_document_host(),
        origin.strip_prefix("https://")
    );
    assert!(client.redirects_only_to_loopback());
    // The code flow with PKCE, on any loopback port.
    let req = Request::get(format!(
        "/oauth/authorize?response_type=code&client_id={}&redirect_uri=http%3A%2F%2F127.0.0.1%3A9004%2Fcallback\
         &state=s&code_challenge={CHALLENGE}&code_challenge_method=S256",
        enc(&url)
    ))
    .body(Full::new(Bytes::new()))
    .unwrap();
    let r = reply(server.authorization_endpoint().oneshot(req).await.unwrap()).await;
    assert_eq!(r.status, StatusCode::FOUND, "{:?}", r.body);
    let location = r.header("location").unwrap();
    let code = location
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("code="))
        .unwrap();
    let token = |body: String| {
        let server = server.clone();
        async move {
            reply(
                server
                    .token_endpoint()
                    .oneshot(form("/oauth/token", None, &body))
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let t = token(format!(
        "grant_type=authorization_code&client_id={}&code={code}\
         &redirect_uri=http%3A%2F%2F127.0.0.1%3A9004%2Fcallback&code_verifier={VERIFIER}",
        enc(&url)
    ))
    .await
    .assert_token();
    let refresh = t["refresh_token"].as_str().unwrap();
    token(format!(
        "grant_type=refresh_token&client_id={}&refresh_token={refresh}",
        enc(&url)
    ))
    .await
    .assert_token();
    // Fetched once: the authorization, the exchange and the refresh used the cache. The
    // document's jwks_uri and logo_uri were never fetched (they are not on this host, and
    // nothing asked).
    assert_eq!(host.hits("client.json"), 1);
    // The metadata says documents are supported.
    let doc = reply(
        server
            .metadata_endpoint(Metadata::new("https://auth.example"))
            .oneshot(Request::get("/").body(Full::new(Bytes::new())).unwrap())
            .await
            .unwrap(),
    )
    .await
    .json();
    assert_eq!(doc["client_id_metadata_document_supported"], true);
}

#[tokio::test]
async fn the_cache_follows_cache_control_within_its_bounds_and_is_shared() {
    let (host, ca) = document_host().await;
    let (server, clock, memory) = setup(&ca);
    let advance = |s: u64| clock.advance(Duration::from_secs(s));
    for (path, lifetime) in [
        ("client.json", 600),  // max-age=600
        ("short.json", 300),   // max-age=10: the 5-minute floor
        ("nostore.json", 300), // no-store: the floor
        ("long.json", 86_400), // max-age=9999999: the 24-hour ceiling
    ] {
        let url = host.url(path);
        let start = tower_oauth2::clock::Clock::now(&*clock);
        server.client(&url).await.unwrap().unwrap();
        assert_eq!(host.hits(path), 1, "{path}");
        clock.set(start + lifetime - 1);
        server.client(&url).await.unwrap().unwrap();
        assert_eq!(host.hits(path), 1, "{path} still cached");
        clock.set(start + lifetime);
        server.client(&url).await.unwrap().unwrap();
        assert_eq!(host.hits(path), 2, "{path} fetched again");
    }
    // Another instance on the same store uses the cached document.
    let other = server_on(
        Arc::new(memory.clone()),
        Arc::clone(&clock),
        allowing_loopback(&ca),
    );
    other.client(&host.url("long.json")).await.unwrap().unwrap();
    assert_eq!(host.hits("long.json"), 2);
    // A failure is remembered for a minute, then tried again.
    let missing = host.url("missing.json");
    assert!(refusal(&server, &missing).await.contains("404"));
    advance(59);
    assert!(refusal(&server, &missing).await.contains("404"));
    assert_eq!(host.hits("missing.json"), 1);
    advance(1);
    refusal(&server, &missing).await;
    assert_eq!(host.hits("missing.json"), 2);
    // A document changed at its host is seen once its cache lapses.
    let dynamic = host.url("dynamic.json");
    *host.dynamic.lock().unwrap() = (doc(&dynamic), "max-age=300");
    assert_eq!(
        server.client(&dynamic).await.unwrap().unwrap().name(),
        Some("Example Agent")
    );
    let mut renamed = doc(&dynamic);
    renamed["client_name"] = "Renamed".into();
    *host.dynamic.lock().unwrap() = (renamed, "max-age=300");
    assert_eq!(
        server.client(&dynamic).await.unwrap().unwrap().name(),
        Some("Example Agent")
    );
    advance(300);
    assert_eq!(
        server.client(&dynamic).await.unwrap().unwrap().name(),
        Some("Renamed")
    );
}

#[tokio::test]
async fn every_unusable_document_is_invalid_client_saying_why() {
    let (host, ca) = document_host().await;
    let (server, _, _) = setup(&ca);
    for (path, says) in [
        ("missing.json", "answered 404"),
        ("html.json", "application/json"),
        ("notjson.json", "not a JSON object"),
        ("wrong-id.json", "exactly the URL"),
        ("secret.json", "must not hold client_secret"),
        ("basic.json", "shared secret"),
        ("pkjwt.json", "private_key_jwt is not supported"),
        ("evil-redirect.json", "loopback"),
        ("implicit.json", "implicit"),
        ("cc.json", "confidential"),
        ("eddsa.json", "does not sign with EdDSA"),
        ("pairwise.json", "does not offer pairwise subjects"),
        ("no-redirects.json", "redirect_uris is required"),
        ("redirect.json", "redirects are not followed"),
        ("big.json", "larger than 5120 bytes"),
    ] {
        let why = refusal(&server, &host.url(path)).await;
        assert!(
            why.starts_with(&format!("client metadata document {}: ", host.url(path))),
            "{why}"
        );
        assert!(why.contains(says), "{path}: {why}");
    }
    // The redirect went nowhere.
    assert_eq!(host.hits("client.json"), 0);
    // URLs that cannot name a document, refused before any fetch.
    let origin = host.origin.lock().unwrap().clone();
    for (url, says) in [
        (format!("{origin}/"), "path"),
        (format!("{origin}/a/../client.json"), ".."),
        (format!("{origin}/client.json#x"), "fragment"),
        (
            origin.replace("https://", "https://user@") + "/client.json",
            "user information",
        ),
    ] {
        let why = refusal(&server, &url).await;
        assert!(why.contains(says), "{url}: {why}");
    }
    // An http URL is no document's id: an unknown client.
    let http = origin.replace("https://", "http://") + "/client.json";
    assert!(server.client(&http).await.unwrap().is_none());
    assert_eq!(host.hits("client.json"), 0);
    // Over HTTP: the token endpoint answers 401 invalid_client with the reason.
    let url = host.url("wrong-id.json");
    let r = reply(
        server
            .token_endpoint()
            .oneshot(form(
                "/oauth/token",
                None,
                &format!(
                    "grant_type=authorization_code&client_id={}&code=x&code_verifier={VERIFIER}",
                    enc(&url)
                ),
            ))
            .await
            .unwrap(),
    )
    .await;
    r.assert_error(401, "invalid_client");
    assert!(
        r.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("exactly the URL")
    );
    // And the authorization endpoint an error page, never a redirect.
    let req = Request::get(format!(
        "/oauth/authorize?response_type=code&client_id={}&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback\
         &code_challenge={CHALLENGE}&code_challenge_method=S256",
        enc(&url)
    ))
    .body(Full::new(Bytes::new()))
    .unwrap();
    let r = reply(server.authorization_endpoint().oneshot(req).await.unwrap()).await;
    assert!(r.status.is_client_error(), "{}", r.status);
    assert!(r.header("location").is_none());
}

/// A TCP listener that counts the connections made to it (and answers none).
async fn counting_listener() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            drop(socket);
        }
    });
    (addr, count)
}

#[tokio::test]
async fn a_url_that_resolves_to_a_non_public_address_is_refused_without_a_connection() {
    let (addr, connections) = counting_listener().await;
    let port = addr.port();
    // The default: only global addresses.
    let server = server_on(
        Arc::new(MemoryStore::new()),
        Arc::new(ManualClock::new(START)),
        ClientIdMetadataDocuments::new(),
    );
    for (url, address) in [
        (format!("https://127.0.0.1:{port}/c.json"), "127.0.0.1"),
        (format!("https://localhost:{port}/c.json"), ""),
        (format!("https://[::1]:{port}/c.json"), "::1"),
        (
            format!("https://[::ffff:127.0.0.1]:{port}/c.json"),
            "127.0.0.1",
        ),
        ("https://10.0.0.1/c.json".into(), "10.0.0.1"),
        (
            "https://169.254.169.254/latest/meta-data".into(),
            "169.254.169.254",
        ),
        ("https://192.168.1.1/c.json".into(), "192.168.1.1"),
        ("https://[fd00::1]/c.json".into(), "fd00::1"),
        ("https://0.0.0.0/c.json".into(), "0.0.0.0"),
    ] {
        let started = std::time::Instant::now();
        let why = refusal(&server, &url).await;
        assert!(
            why.contains("which is not a public address"),
            "{url}: {why}"
        );
        assert!(why.contains(address), "{url}: {why}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "refused before trying: {url}"
        );
    }
    // Nothing connected to the listener on loopback.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(connections.load(Ordering::SeqCst), 0);
    // An app that allows loopback reaches it (this listener answers nothing: a failed fetch).
    let allowing = server_on(
        Arc::new(MemoryStore::new()),
        Arc::new(ManualClock::new(START)),
        ClientIdMetadataDocuments::new().allow_addresses(|ip| ip.is_loopback()),
    );
    let why = refusal(&allowing, &format!("https://127.0.0.1:{port}/c.json")).await;
    assert!(why.contains("could not be fetched"), "{why}");
    assert_eq!(connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_slow_document_is_cut_off_and_fetches_are_shared_and_bounded() {
    let (host, ca) = document_host().await;
    let (server, _, _) = setup(&ca);
    let started = std::time::Instant::now();
    let why = refusal(&server, &host.url("slow.json")).await;
    assert!(why.contains("did not answer within 0.5 s"), "{why}");
    assert!(started.elapsed() < Duration::from_secs(2));
    // Sixteen requests for one uncached document: one fetch.
    let url = host.url("slowish.json");
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (server, url) = (server.clone(), url.clone());
            tokio::spawn(async move { server.client(&url).await.unwrap().is_some() })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap());
    }
    assert_eq!(host.hits("slowish.json"), 1);
    // One fetch at a time: a second document while the first is in flight is 503.
    let bounded = server_on(
        Arc::new(MemoryStore::new()),
        Arc::new(ManualClock::new(START)),
        allowing_loopback(&ca)
            .max_concurrent_fetches(1)
            .timeout(Duration::from_secs(5)),
    );
    let first = {
        let (bounded, url) = (bounded.clone(), host.url("slow2.json"));
        tokio::spawn(async move { bounded.client(&url).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let err = bounded.client(&host.url("client.json")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TemporarilyUnavailable);
    assert!(first.await.unwrap().unwrap().is_some());
}

#[tokio::test]
async fn plain_http_documents_on_loopback_only_when_the_app_allows_them() {
    // A document host without TLS, on loopback: what an app's own tests might run.
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://127.0.0.1:{}/client.json",
        tcp.local_addr().unwrap().port()
    );
    let body = doc(&url);
    let app = Router::new().route(
        "/client.json",
        get(move || {
            let body = body.clone();
            async move { json_response(&body, "") }
        }),
    );
    tokio::spawn(async move { axum::serve(tcp, app).await });
    let clock = Arc::new(ManualClock::new(START));
    // Allowed: the client resolves.
    let allowing = server_on(
        Arc::new(MemoryStore::new()),
        Arc::clone(&clock),
        ClientIdMetadataDocuments::new()
            .allow_http_loopback(true)
            .allow_addresses(|ip| ip.is_loopback()),
    );
    let client = allowing.client(&url).await.unwrap().unwrap();
    assert_eq!(client.name(), Some("Example Agent"));
    // Not allowed (the default): an http URL is no document's id.
    let default = server_on(
        Arc::new(MemoryStore::new()),
        Arc::clone(&clock),
        ClientIdMetadataDocuments::new().allow_addresses(|ip| ip.is_loopback()),
    );
    assert!(default.client(&url).await.unwrap().is_none());
    // Allowed for loopback, an http URL elsewhere is still refused.
    let why = refusal(&allowing, "http://example.com/client.json").await;
    assert!(why.contains("https"), "{why}");
}
