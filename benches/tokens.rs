//! Micro-benchmarks: validating one token against a store of 1 M live tokens, creating a grant,
//! and full token-endpoint calls (a password grant issuing a pair; a chained refresh).
//!
//! `cargo bench --bench tokens` (about a minute).

use std::{sync::Arc, task::Poll, time::Duration};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::{BodyExt, Full};
use tower::ServiceExt;
use tower_oauth2::{
    AuthServer, Client, GrantType, InMemoryClients, Scope,
    clock::{Clock, SystemClock},
    store::{GrantRecord, MemoryStore, NewAccessToken, NewRefreshToken, TokenStore},
    token::{self, GrantId},
    user::DemoUsers,
};

/// Poll a future that completes without waiting (the memory store never waits).
fn now_or_never<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    match f
        .as_mut()
        .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
    {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("memory store future was pending"),
    }
}

fn grant(
    client: &Arc<str>,
    scope: &Scope,
    i: usize,
    now: u64,
) -> (GrantRecord, NewAccessToken, NewRefreshToken, String) {
    let (at, rt) = (token::generate(), token::generate());
    (
        GrantRecord {
            id: GrantId::generate(),
            client_id: Arc::clone(client),
            subject: Some(Arc::from(format!("user-{i}"))),
            scope: scope.clone(),
            grant_type: GrantType::Password,
            created_at: now,
            expires_at: Some(now + 90 * 86_400),
        },
        NewAccessToken {
            hash: at.hash(),
            scope: scope.clone(),
            issued_at: now,
            expires_at: now + 3600,
        },
        NewRefreshToken {
            hash: rt.hash(),
            issued_at: now,
            expires_at: now + 1_209_600,
            generation: 0,
        },
        at.expose().to_owned(),
    )
}

fn server(store: MemoryStore) -> AuthServer {
    AuthServer::builder()
        .clients(
            InMemoryClients::new().with(
                Client::confidential("bench", "bench-secret")
                    .grant_types([
                        GrantType::Password,
                        GrantType::RefreshToken,
                        GrantType::ClientCredentials,
                    ])
                    .scope("read write")
                    .build()
                    .unwrap(),
            ),
        )
        .users(DemoUsers::new().with("bench", "bench"))
        .allow_grant_type(GrantType::Password)
        .store(store)
        .build()
        .unwrap()
}

fn request(body: String) -> http::Request<Full<Bytes>> {
    http::Request::post("/oauth/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", "Basic YmVuY2g6YmVuY2gtc2VjcmV0")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

fn validate(c: &mut Criterion) {
    let store = MemoryStore::new();
    let now = SystemClock.now();
    let client: Arc<str> = Arc::from("bench");
    let scope = Scope::parse("read write").unwrap();
    let mut probe = String::new();
    for i in 0..1_000_000 {
        let (g, a, r, at) = grant(&client, &scope, i, now);
        now_or_never(store.create_grant(g, a, Some(r))).unwrap();
        if i == 500_000 {
            probe = at;
        }
    }
    let server = server(store);
    c.bench_function("validate_access_token/1M_live_grants", |b| {
        b.iter(|| {
            let r = now_or_never(server.validate_access_token(std::hint::black_box(&probe)));
            assert!(r.unwrap().is_some());
        })
    });
    let unknown = token::generate().expose().to_owned();
    c.bench_function("validate_access_token/1M_live_grants/unknown", |b| {
        b.iter(|| now_or_never(server.validate_access_token(std::hint::black_box(&unknown))))
    });
}

fn issue(c: &mut Criterion) {
    let store = MemoryStore::new();
    let now = SystemClock.now();
    let client: Arc<str> = Arc::from("bench");
    let scope = Scope::parse("read write").unwrap();
    let mut i = 0;
    c.bench_function("store/create_grant_with_pair", |b| {
        b.iter(|| {
            i += 1;
            let (g, a, r, _) = grant(&client, &scope, i, now);
            now_or_never(store.create_grant(g, a, Some(r))).unwrap();
        })
    });
}

fn endpoint(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let server = server(MemoryStore::new());
    c.bench_function("token_endpoint/password_grant_pair", |b| {
        b.iter(|| {
            let res = rt.block_on(server.token_endpoint().oneshot(request(
                "grant_type=password&username=bench&password=bench".into(),
            )));
            assert_eq!(res.unwrap().status(), 200);
        })
    });
    c.bench_function("token_endpoint/client_credentials", |b| {
        b.iter(|| {
            let res = rt.block_on(
                server
                    .token_endpoint()
                    .oneshot(request("grant_type=client_credentials".into())),
            );
            assert_eq!(res.unwrap().status(), 200);
        })
    });
    let refresh_token = |body: Bytes| -> String {
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        v["refresh_token"].as_str().unwrap().to_owned()
    };
    let first = rt.block_on(async {
        let res = server
            .token_endpoint()
            .oneshot(request(
                "grant_type=password&username=bench&password=bench".into(),
            ))
            .await;
        res.unwrap().into_body().collect().await.unwrap().to_bytes()
    });
    let mut current = refresh_token(first);
    c.bench_function("token_endpoint/refresh_with_rotation", |b| {
        b.iter(|| {
            let body = rt.block_on(async {
                let res = server
                    .token_endpoint()
                    .oneshot(request(format!(
                        "grant_type=refresh_token&refresh_token={current}"
                    )))
                    .await
                    .unwrap();
                assert_eq!(res.status(), 200);
                res.into_body().collect().await.unwrap().to_bytes()
            });
            current = refresh_token(body);
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = validate, issue, endpoint
}
criterion_main!(benches);
