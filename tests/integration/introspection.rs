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
    // No cache: only coalescing can keep this at one call. (A timeout long enough that the one
    // call outlives the wait below on a loaded machine.)
    let v = IntrospectionValidator::builder(
        format!("http://{addr}/oauth/introspect"),
        "rs",
        "rs-secret",
    )
    .cache_ttl(Duration::ZERO)
    .timeout(Duration::from_secs(20))
    .clock(Arc::clone(&h.clock))
    .build()
    .unwrap();
    let (at, _) = h.login().await;
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (v, at) = (v.clone(), at.clone());
        tasks.push(tokio::spawn(async move { get(&v, &at).await.status }));
    }
    // Every request has joined the one call before the server answers it. (Waiting on the
    // validator's own count: a request that had merely started could, on a loaded machine,
    // reach the validator only after the answer, and make a call of its own.)
    let t = std::time::Instant::now();
    while v.joined_calls() < 31 || calls.load(Ordering::SeqCst) < 1 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{} of 31 requests joined the call in flight",
            v.joined_calls()
        );
        tokio::task::yield_now().await;
    }
    gate.notify_waiters();
    gate.notify_one();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(v.introspection_calls(), 1);
    assert_eq!(v.joined_calls(), 31);
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
fn only_http_and_https_endpoints_are_accepted() {
    for bad in ["not a url", "ftp://x/y", "/introspect"] {
        assert!(
            IntrospectionValidator::builder(bad, "rs", "s")
                .build()
                .is_err(),
            "{bad}"
        );
    }
    // `https://` with the `tls` feature (tls.rs calls one).
    assert!(
        IntrospectionValidator::builder("https://as.example/introspect", "rs", "s")
            .build()
            .is_ok()
    );
    // Plain http only to this machine, unless the app opts in.
    for local in [
        "http://127.0.0.1:3000/oauth/introspect",
        "http://127.8.9.10/introspect",
        "http://[::1]:3000/introspect",
        "http://localhost:3000/oauth/introspect",
    ] {
        assert!(
            IntrospectionValidator::builder(local, "rs", "s")
                .build()
                .is_ok(),
            "{local}"
        );
    }
    for remote in [
        "http://as.example/introspect",
        "http://10.0.0.7/introspect",
        "http://localhost.evil.example/introspect",
    ] {
        let err = IntrospectionValidator::builder(remote, "rs", "s")
            .build()
            .unwrap_err();
        assert!(
            matches!(err, tower_oauth2::ConfigError::Endpoint(_)),
            "{remote}: {err:?}"
        );
        assert!(
            IntrospectionValidator::builder(remote, "rs", "s")
                .allow_insecure_http(true)
                .build()
                .is_ok(),
            "{remote} when allowed"
        );
    }
}

/// An authorization server that answers every introspection with `body` (200, JSON).
async fn answering(body: String) -> SocketAddr {
    let app = axum::Router::new().route(
        "/oauth/introspect",
        axum::routing::post(move || {
            let body = body.clone();
            async move { ([("content-type", "application/json")], body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn validator_at(addr: SocketAddr) -> tower_oauth2::bearer::IntrospectionValidatorBuilder {
    IntrospectionValidator::builder(format!("http://{addr}/oauth/introspect"), "rs", "rs-secret")
        .timeout(Duration::from_millis(300))
}

#[tokio::test]
async fn an_active_answer_with_a_past_exp_is_an_expired_token() {
    let now = tower_oauth2::clock::Clock::now(&tower_oauth2::clock::SystemClock);
    let past = format!(
        r#"{{"active":true,"client_id":"app","scope":"read","exp":{}}}"#,
        now - 10
    );
    let v = validator_at(answering(past).await).build().unwrap();
    for _ in 0..2 {
        let r = get(&v, "some-token").await;
        assert_eq!(r.status, 401);
        let challenge = r.header("www-authenticate").unwrap();
        assert!(
            challenge.contains(r#"error="invalid_token""#),
            "{challenge}"
        );
    }
    assert_eq!(v.cached(), 0, "an expired verdict is not cached");
}

#[tokio::test]
async fn an_oversized_answer_is_refused_as_unavailable() {
    // A valid RFC 7662 answer, but 100 KiB of scope: read no further than the cap.
    let huge = format!(
        r#"{{"active":true,"client_id":"app","scope":"{}"}}"#,
        "a".repeat(100 * 1024)
    );
    let v = validator_at(answering(huge).await).build().unwrap();
    let r = get(&v, "some-token").await;
    assert_eq!(r.status, 503);
    assert_eq!(v.cached(), 0);
    // A normal answer from the same kind of server passes.
    let fine = r#"{"active":true,"client_id":"app","scope":"read"}"#.to_owned();
    let v = validator_at(answering(fine).await).build().unwrap();
    assert_eq!(get(&v, "some-token").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_requests_leave_no_call_behind() {
    // A server that never answers: the listener exists, nobody accepts. Every request is
    // dropped while its introspection call is pending, as when clients close early.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let v = validator_at(silent.local_addr().unwrap())
        .timeout(Duration::from_secs(2))
        .max_concurrent_calls(20_000)
        .build()
        .unwrap();
    let mut pending = Vec::new();
    for i in 0..10_000 {
        let v = v.clone();
        let token = format!("unknown-{i}");
        pending.push(tokio::spawn(async move {
            tokio::time::timeout(Duration::from_millis(20), get(&v, &token)).await
        }));
    }
    let mut dropped = 0;
    // Looked at as soon as the first requests are gone (not after all 10 000: on a loaded
    // machine awaiting them all may take longer than the calls' own timeout).
    let mut outliving = None;
    for p in pending {
        match p.await.unwrap() {
            Err(_) => dropped += 1,
            // The machine may refuse so many sockets at once: that is an outage, 503.
            Ok(r) => assert_eq!(r.status, 503),
        }
        if dropped == 100 {
            outliving = Some(v.calls_in_flight());
        }
    }
    assert!(
        dropped >= 1000,
        "only {dropped} requests were pending when dropped"
    );
    assert!(
        outliving.is_some_and(|n| n > 0),
        "the calls outlive their requests ({outliving:?} in flight)"
    );
    // Each call ends at the validator's timeout whether or not anyone waits for it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while v.calls_in_flight() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(v.calls_in_flight(), 0, "calls left in flight");
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_in_flight_are_bounded_and_the_excess_is_503() {
    let h = harness();
    let gate = Arc::new(Notify::new());
    let (addr, calls) = authorization_server(&h, Some(Arc::clone(&gate))).await;
    let v = validator_at(addr)
        .clock(Arc::clone(&h.clock))
        .timeout(Duration::from_secs(5))
        .max_concurrent_calls(4)
        .build()
        .unwrap();
    let (at, _) = h.login().await;
    let mut held = Vec::new();
    for token in [at.clone(), "a".into(), "b".into(), "c".into()] {
        let v = v.clone();
        held.push(tokio::spawn(async move { get(&v, &token).await.status }));
    }
    while calls.load(Ordering::SeqCst) < 4 {
        tokio::task::yield_now().await;
    }
    // A fifth unseen token would be a fifth call: refused at once.
    let r = get(&v, "d").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.header("www-authenticate"), None);
    // The same token as a call in flight joins it instead.
    let joined = {
        let (v, at) = (v.clone(), at.clone());
        tokio::spawn(async move { get(&v, &at).await.status })
    };
    for _ in 0..1000 {
        tokio::task::yield_now().await;
    }
    for _ in 0..5 {
        gate.notify_waiters();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let statuses: Vec<_> = futures_collect(held).await;
    assert_eq!(statuses, [200, 401, 401, 401]);
    assert_eq!(joined.await.unwrap(), 200);
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}

async fn futures_collect(tasks: Vec<tokio::task::JoinHandle<http::StatusCode>>) -> Vec<u16> {
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap().as_u16());
    }
    out
}

#[tokio::test]
async fn the_shared_remote_options_set_the_clock_and_the_cache_bound_at_once() {
    let h = harness();
    let (addr, calls) = authorization_server(&h, None).await;
    let mut options = tower_oauth2::bearer::RemoteOptions::default();
    options.max_entries = 3;
    options.clock = Arc::clone(&h.clock) as _;
    let v = validator_at(addr).options(options).build().unwrap();
    let mut tokens = Vec::new();
    for _ in 0..6 {
        let at = h.login().await.0;
        assert_eq!(get(&v, &at).await.status, 200);
        tokens.push(at);
    }
    assert!(v.cached() <= 3, "cached {}", v.cached());
    // The clock given in the options judges the cache: past the 60 s verdict, a call again.
    let before = calls.load(Ordering::SeqCst);
    assert_eq!(get(&v, &tokens[5]).await.status, 200);
    assert_eq!(calls.load(Ordering::SeqCst), before, "a cached verdict");
    h.clock.advance(std::time::Duration::from_secs(61));
    assert_eq!(get(&v, &tokens[5]).await.status, 200);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        before + 1,
        "the verdict lapsed on that clock"
    );
}

#[tokio::test]
async fn a_full_cache_keeps_the_tokens_in_use_against_a_flood_of_junk() {
    let h = harness();
    let (addr, calls) = authorization_server(&h, None).await;
    let v = validator_at(addr)
        .clock(Arc::clone(&h.clock))
        .max_entries(100)
        .build()
        .unwrap();
    let mut live = Vec::new();
    for _ in 0..10 {
        live.push(h.login().await.0);
    }
    for at in &live {
        assert_eq!(get(&v, at).await.status, 200);
    }
    for i in 0..1000 {
        assert_eq!(get(&v, &format!("junk-{i}")).await.status, 401);
        if i % 40 == 0 {
            // The tokens in use are used now and then, as real traffic would.
            for at in &live {
                assert_eq!(get(&v, at).await.status, 200);
            }
        }
    }
    assert!(v.cached() <= 100, "cached {}", v.cached());
    let before = calls.load(Ordering::SeqCst);
    for at in &live {
        assert_eq!(get(&v, at).await.status, 200);
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        before,
        "a token in use was evicted for junk"
    );
}

/// With the resource it protects, the validator reads the introspected `aud` (one string or
/// several) as resource identifiers: a token for another resource is refused as such, one with
/// no audience too unless the app allows it; without `audience` nothing changes.
#[tokio::test]
async fn the_introspected_audience_must_name_the_protected_resource() {
    let now = tower_oauth2::clock::Clock::now(&tower_oauth2::clock::SystemClock);
    let answer = |aud: &str| {
        format!(
            r#"{{"active":true,"client_id":"app","scope":"read","exp":{}{aud}}}"#,
            now + 600
        )
    };
    let not_meant = "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"The access token is not meant for this resource\"";
    let cases: [(&str, bool, u16); 6] = [
        (r#","aud":"https://API.example:443/mcp""#, false, 200),
        (
            r#","aud":["https://other.example","https://api.example/mcp"]"#,
            false,
            200,
        ),
        (r#","aud":["https://api.example/other"]"#, false, 401),
        (r#","aud":"https://api.example/other""#, true, 401),
        ("", false, 401),
        ("", true, 200),
    ];
    for (aud, allow_none, status) in cases {
        let addr = answering(answer(aud)).await;
        let v = validator_at(addr)
            .audience("https://api.example/mcp")
            .allow_no_audience(allow_none)
            .build()
            .unwrap();
        let r = get(&v, "some-token").await;
        assert_eq!(
            r.status.as_u16(),
            status,
            "{aud} (allow none: {allow_none})"
        );
        if status == 401 {
            assert_eq!(r.header("www-authenticate"), Some(not_meant), "{aud}");
        }
        // The verdict is cached like any other: no second call.
        let calls = v.introspection_calls();
        assert_eq!(get(&v, "some-token").await.status.as_u16(), status);
        assert_eq!(v.introspection_calls(), calls);
    }
    // Without `audience`, another resource's token passes as before.
    let v = validator_at(answering(answer(r#","aud":"https://api.example/other""#)).await)
        .build()
        .unwrap();
    assert_eq!(get(&v, "some-token").await.status, 200);
}
