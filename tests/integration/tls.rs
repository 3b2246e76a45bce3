//! The validators that call the authorization server do so over `https://` (feature `tls`):
//! a JWT validator fetching the metadata and key set, and an introspection validator, each
//! against a server behind TLS with a certificate from a private CA. Trusting that CA, they
//! work; trusting only the system's roots, the certificate is refused — 503, never 401.

use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower_oauth2::{
    AccessTokenFormat, AuthServer, BearerLayer, Client, GrantType, InMemoryClients, Metadata,
    bearer::{IntrospectionValidator, JwtValidator},
    jose::{KeySet, SigningKey},
};

use crate::support::{
    https::{TlsListener, authority, server_config},
    *,
};

/// The server's endpoints behind TLS; its issuer is the https URL.
async fn serve_tls() -> (AuthServer, String, String) {
    let (ca, cert, key) = authority();
    let config = server_config(cert, key);
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("https://127.0.0.1:{}", tcp.local_addr().unwrap().port());
    let server = AuthServer::builder()
        .clients(
            InMemoryClients::new()
                .with(
                    Client::confidential("svc", "svc-secret")
                        .grant_types([GrantType::ClientCredentials])
                        .scope("read")
                        .build()
                        .unwrap(),
                )
                .with(
                    Client::confidential("rs", "rs-secret")
                        .introspect(true)
                        .build()
                        .unwrap(),
                ),
        )
        .configure(|c| {
            c.issuer = Some(issuer.clone());
            c.access_token_format = AccessTokenFormat::Jwt;
        })
        .signing_keys(KeySet::new(SigningKey::generate_es256()))
        .build()
        .unwrap();
    let app = Router::new()
        .route_service(
            "/.well-known/oauth-authorization-server",
            server.metadata_endpoint(Metadata::new(&issuer)),
        )
        .route_service("/.well-known/jwks.json", server.jwks_endpoint())
        .route_service("/oauth/introspect", server.introspection_endpoint());
    let listener = TlsListener {
        tcp,
        tls: TlsAcceptor::from(Arc::new(config)),
    };
    tokio::spawn(async move { axum::serve(listener, app).await });
    (server, issuer, ca)
}

async fn token(server: &AuthServer) -> String {
    let h = Harness {
        server: server.clone(),
        clock: Arc::new(tower_oauth2::clock::ManualClock::new(0)),
        memory: None,
        events: Arc::default(),
    };
    h.token(Some(("svc", "svc-secret")), "grant_type=client_credentials")
        .await
        .assert_token()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn status(layer: BearerLayer, token: &str) -> u16 {
    let req = http::Request::get("/")
        .header("authorization", format!("Bearer {token}"))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    call_protected(layer, req).await.status.as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwt_validator_fetches_the_keys_over_https() {
    let (server, issuer, ca) = serve_tls().await;
    let at = token(&server).await;
    let trusting = JwtValidator::from_issuer(&issuer, &issuer)
        .tls_root_certificates(ca)
        .build()
        .unwrap();
    assert_eq!(
        status(BearerLayer::with_validator(trusting.clone(), "api"), &at).await,
        200
    );
    assert_eq!(
        trusting.fetches(),
        2,
        "the metadata, then the key set, both over TLS"
    );
    // The system's roots do not know this CA: nothing can be judged, so 503.
    let system = JwtValidator::from_issuer(&issuer, &issuer).build().unwrap();
    assert_eq!(
        status(BearerLayer::with_validator(system, "api"), &at).await,
        503
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_introspection_validator_calls_over_https() {
    let (server, issuer, ca) = serve_tls().await;
    let at = token(&server).await;
    let endpoint = format!("{issuer}/oauth/introspect");
    let trusting = IntrospectionValidator::builder(&endpoint, "rs", "rs-secret")
        .tls_root_certificates(ca)
        .build()
        .unwrap();
    assert_eq!(
        status(BearerLayer::with_validator(trusting, "api"), &at).await,
        200
    );
    let system = IntrospectionValidator::builder(&endpoint, "rs", "rs-secret")
        .build()
        .unwrap();
    assert_eq!(
        status(BearerLayer::with_validator(system, "api"), &at).await,
        503
    );
    // Roots that are not certificates are a configuration error, at build time.
    assert!(
        IntrospectionValidator::builder(&endpoint, "rs", "rs-secret")
            .tls_root_certificates("not a certificate")
            .build()
            .is_err()
    );
}

/// An https issuer whose metadata names a plain-http key set: refused (keys fetched in the clear
/// could be anyone's), so with no keys the token is 503, and the key set is never fetched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_set_weaker_than_its_https_issuer_is_refused() {
    let (ca, cert, key) = authority();
    let config = server_config(cert, key);
    let (server, _, _) = serve_tls().await;
    let at = token(&server).await;
    // Plain-http key set on loopback, counting its fetches.
    let fetched = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = Arc::clone(&fetched);
    let plain = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let jwks_uri = format!("http://{}/jwks.json", plain.local_addr().unwrap());
    let keys = server.jwks_endpoint();
    let app = Router::new().route_service(
        "/jwks.json",
        tower::service_fn(move |req| {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut keys = keys.clone();
            async move { tower::Service::call(&mut keys, req).await }
        }),
    );
    tokio::spawn(async move { axum::serve(plain, app).await });
    // The issuer's metadata, over TLS, names it.
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("https://127.0.0.1:{}", tcp.local_addr().unwrap().port());
    let metadata = serde_json::json!({"issuer": issuer, "jwks_uri": jwks_uri}).to_string();
    let app = Router::new().route(
        "/.well-known/oauth-authorization-server",
        axum::routing::get(move || {
            let body = metadata.clone();
            async move { ([("content-type", "application/json")], body) }
        }),
    );
    let listener = TlsListener {
        tcp,
        tls: TlsAcceptor::from(Arc::new(config)),
    };
    tokio::spawn(async move { axum::serve(listener, app).await });
    let v = JwtValidator::from_issuer(&issuer, &issuer)
        .tls_root_certificates(ca)
        .build()
        .unwrap();
    assert_eq!(
        status(BearerLayer::with_validator(v.clone(), "api"), &at).await,
        503
    );
    assert_eq!(v.fetches(), 1, "the metadata only");
    assert_eq!(
        fetched.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "never the plain key set"
    );
}
