//! The introspection validator (RFC 7662) against a real authorization server on loopback:
//! cache hit and miss, negative caching, coalescing (counted at the server), revocation seen
//! within the cache TTL, refresh tokens refused, and an unreachable server answered with 503.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use crate::support::*;
use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use tokio::sync::Notify;
use tower_oauth2::{BearerLayer, bearer::IntrospectionValidator};

/// The authorization server's introspection endpoint on loopback, counting calls; while `gate`
/// is set, each call waits for it to be notified.
async fn authorization_server(
    h: &Harness,
    gate: Option<Arc<Notify>>,
) -> (SocketAddr, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let endpoint = h.server.introspection_endpoint();
    let svc = tower::service_fn(move |req: Request<axum::body::Body>| {
        let (counter, gate, endpoint) = (Arc::clone(&counter), gate.clone(), endpoint.clone());
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            if let Some(g) = gate {
                g.notified().await;
            }
            tower::ServiceExt::oneshot(endpoint, req).await
        }
    });
    let app = axum::Router::new().route_service("/oauth/introspect", svc);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, calls)
}

fn validator(h: &Harness, addr: SocketAddr, ttl: u64) -> IntrospectionValidator {
    IntrospectionValidator::builder(format!("http://{addr}/oauth/introspect"), "rs", "rs-secret")
        .cache_ttl(Duration::from_secs(ttl))
        .negative_ttl(Duration::from_secs(5))
        .timeout(Duration::from_millis(500))
        .clock(Arc::clone(&h.clock))
        .build()
        .unwrap()
}

async fn get(v: &IntrospectionValidator, token: &str) -> Reply {
    let layer = BearerLayer::with_validator(v.clone(), "api");
    let req = Request::get("/")
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    call_protected(layer, req).await
}

#[tokio::test]
async fn cache_hit_and_miss() {
    let h = harness();
    let (addr, calls) = authorization_server(&h, None).await;
    let v = validator(&h, addr, 60);
    let (at, _) = h.login().await;
    let r = get(&v, &at).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["sub"], "alice");
    assert_eq!(r.json()["client_id"], "app");
    assert_eq!(r.json()["scope"], "read write");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    for _ in 0..5 {
        assert_eq!(get(&v, &at).await.status, 200);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "served from the cache");
    let (at2, _) = h.login().await;
    assert_eq!(get(&v, &at2).await.status, 200);
    assert_eq!(calls.load(Ordering::SeqCst), 2, "another token is a miss");

    // Unknown token: 401 invalid_token, cached briefly.
    let unknown = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
    for _ in 0..3 {
        let r = get(&v, unknown).await;
        assert_eq!(r.status, 401);
        assert!(
            r.header("www-authenticate")
                .unwrap()
                .contains("invalid_token")
        );
    }
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    h.advance(5);
    get(&v, unknown).await;
    assert_eq!(calls.load(Ordering::SeqCst), 4, "negative entry expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_with_one_unseen_token_make_one_call() {
    let h = harness();
    let gate = Arc::new(Notify::new());
    let (addr, calls) = authorization_server(&h, Some(Arc::clone(&gate))).await;
    // No cache: only coalescing can keep this at one call.
    let v = validator(&h, addr, 0);
    let (at, _) = h.login().await;
    let started = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (v, at, started) = (v.clone(), at.clone(), Arc::clone(&started));
        tasks.push(tokio::spawn(async move {
            started.fetch_add(1, Ordering::SeqCst);
            get(&v, &at).await.status
        }));
    }
    // Every request has joined before the server answers the one call.
    while started.load(Ordering::SeqCst) < 32 || calls.load(Ordering::SeqCst) < 1 {
        tokio::task::yield_now().await;
    }
    for _ in 0..1000 {
        tokio::task::yield_now().await;
    }
    gate.notify_waiters();
    gate.notify_one();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(v.introspection_calls(), 1);
}

#[tokio::test]
async fn revocation_is_seen_within_the_cache_ttl() {
    let h = harness();
    let (addr, _) = authorization_server(&h, None).await;
    let v = validator(&h, addr, 30);
    let (at, _) = h.login().await;
    assert_eq!(get(&v, &at).await.status, 200);
    h.revoke(Some(("app", "app-secret")), &format!("token={at}"))
        .await;
    // Inside the TTL the cached verdict stands (the documented staleness bound) ...
    h.advance(29);
    assert_eq!(get(&v, &at).await.status, 200);
    // ... and at its end the revocation is seen.
    h.advance(1);
    assert_eq!(get(&v, &at).await.status, 401);
}

#[tokio::test]
async fn cache_entries_never_outlive_the_token() {
    let h = harness_with(|c| c.access_token_lifetime = Duration::from_secs(10));
    let (addr, calls) = authorization_server(&h, None).await;
    let v = validator(&h, addr, 600);
    let (at, _) = h.login().await;
    assert_eq!(get(&v, &at).await.status, 200);
    h.advance(10);
    let r = get(&v, &at).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "the entry ended with the token"
    );
}

#[tokio::test]
async fn a_refresh_token_is_not_accepted_as_a_bearer_token() {
    let h = harness();
    let (addr, _) = authorization_server(&h, None).await;
    let v = validator(&h, addr, 60);
    let (_, rt) = h.login().await;
    assert_eq!(get(&v, &rt).await.status, 401);
}

#[tokio::test]
async fn authorization_server_down_or_refusing_us_is_503() {
    let h = harness();
    let dead =
        IntrospectionValidator::builder("http://127.0.0.1:1/oauth/introspect", "rs", "rs-secret")
            .timeout(Duration::from_millis(500))
            .build()
            .unwrap();
    let (at, _) = h.login().await;
    let r = get(&dead, &at).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.header("www-authenticate"), None);

    // Wrong resource-server credentials: the server answers 401 to us; we answer 503, not 401.
    let (addr, _) = authorization_server(&h, None).await;
    let wrong =
        IntrospectionValidator::builder(format!("http://{addr}/oauth/introspect"), "rs", "nope")
            .build()
            .unwrap();
    assert_eq!(get(&wrong, &at).await.status, 503);
    // A client not allowed to introspect: 403 from the server, 503 here.
    let app = IntrospectionValidator::builder(
        format!("http://{addr}/oauth/introspect"),
        "app",
        "app-secret",
    )
    .build()
    .unwrap();
    assert_eq!(get(&app, &at).await.status, 503);
}

#[test]
fn only_http_endpoints_are_accepted() {
    for bad in ["not a url", "https://as.example/introspect", "ftp://x/y"] {
        assert!(
            IntrospectionValidator::builder(bad, "rs", "s")
                .build()
                .is_err(),
            "{bad}"
        );
    }
}
