//! Micro-benchmarks: validating one token against a store of 1 M live tokens, creating a grant,
//! full token-endpoint calls (a password grant issuing a pair; a chained refresh), and hostile
//! bodies refused before authentication (the worst-case form beside a normal one), and the
//! OpenID code exchange beside the OAuth one.
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
    store::{GrantRecord, GrantStore, MemoryStore, NewAccessToken, NewRefreshToken},
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
            resources: Default::default(),
            grant_type: GrantType::Password,
            created_at: now,
            expires_at: Some(now + 90 * 86_400),
        },
        NewAccessToken {
            hash: at.hash(),
            scope: scope.clone(),
            audience: Default::default(),
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

/// Bodies refused before any client is authenticated (the client is unknown): what an
/// attacker's worst-case form costs beside a normal one of the same size. Parsing is linear and
/// stops at 100 parameters, so the rows should sit within a small factor of each other.
fn hostile_bodies(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let server = server(MemoryStore::new());
    let limit = 16 * 1024;
    // Distinct short names: base-62 numbers of two digits, then three.
    const DIGITS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let name = |i: usize| {
        let (width, n) = if i < 62 * 62 {
            (2, i)
        } else {
            (3, i - 62 * 62)
        };
        let mut out = vec![0u8; width];
        let mut n = n;
        for slot in out.iter_mut().rev() {
            *slot = DIGITS[n % 62];
            n /= 62;
        }
        String::from_utf8(out).unwrap()
    };
    let distinct = |max: usize| {
        let mut body = String::from("grant_type=client_credentials");
        for i in 0..max {
            let name = name(i);
            if body.len() + name.len() + 1 > limit {
                break;
            }
            body.push('&');
            body.push_str(&name);
        }
        body
    };
    let one_value = format!(
        "grant_type=client_credentials&scope={}",
        "a".repeat(limit - 36)
    );
    let cases = [
        ("16KiB_one_value", one_value, 401),
        ("16KiB_distinct_names", distinct(usize::MAX), 400),
        ("100_distinct_names", distinct(99), 401),
    ];
    for (name, body, status) in cases {
        assert!(body.len() <= limit, "{name}: {} bytes", body.len());
        c.bench_function(&format!("token_endpoint/refused_body/{name}"), |b| {
            b.iter(|| {
                let req = http::Request::post("/oauth/token")
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("authorization", "Basic bm9ib2R5Om5vcGU=")
                    .body(Full::new(Bytes::from(body.clone())))
                    .unwrap();
                let res = rt.block_on(server.token_endpoint().oneshot(req)).unwrap();
                assert_eq!(res.status(), status, "{name}");
            })
        });
    }
}

/// A JWT access token checked by `JwtValidator` the first time it is seen (header, key lookup,
/// signature, claims) and again (the cache by token hash), for ES256, EdDSA and RS256. The key
/// set is served on loopback and fetched once, before measuring. And the server's own
/// `LocalValidator` on a JWT seen before (signature remembered, then the memory store), beside
/// the opaque rows of `validate`.
fn jwt(c: &mut Criterion) {
    use tower_oauth2::{
        AccessTokenFormat,
        bearer::{JwtValidator, LocalValidator, Validator as _},
        jose::{KeySet, SigningKey},
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let bench_client = || {
        InMemoryClients::new().with(
            Client::confidential("bench", "bench-secret")
                .grant_types([GrantType::ClientCredentials])
                .scope("read write")
                .build()
                .unwrap(),
        )
    };
    // The opaque baseline for the `jwt_local` rows: the same validator, the same store kind.
    let opaque = AuthServer::builder()
        .clients(bench_client())
        .build()
        .unwrap();
    let res = rt
        .block_on(
            opaque
                .token_endpoint()
                .oneshot(request("grant_type=client_credentials".into())),
        )
        .unwrap();
    let body = rt.block_on(res.into_body().collect()).unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let opaque_token = v["access_token"].as_str().unwrap().to_owned();
    let plain = LocalValidator::new(
        std::sync::Arc::clone(opaque.store()),
        std::sync::Arc::new(tower_oauth2::clock::SystemClock),
    );
    c.bench_function("jwt_local/opaque/seen_before", |b| {
        b.iter(|| plain.validate_now(std::hint::black_box(&opaque_token)))
    });
    for (name, key) in [
        ("ES256", SigningKey::generate_es256()),
        ("EdDSA", SigningKey::generate_ed25519()),
        ("RS256", SigningKey::generate_rs256()),
    ] {
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let server = AuthServer::builder()
            .clients(bench_client())
            .configure(|c| {
                c.issuer = Some(issuer.clone());
                c.access_token_format = AccessTokenFormat::Jwt;
            })
            .signing_keys(KeySet::new(key.clone()))
            .build()
            .unwrap();
        let local = LocalValidator::new(
            std::sync::Arc::clone(server.store()),
            std::sync::Arc::new(tower_oauth2::clock::SystemClock),
        )
        .with_signing_keys(&KeySet::new(key), &issuer);
        let app = axum::Router::new().route_service("/jwks.json", server.jwks_endpoint());
        rt.spawn(async move { axum::serve(listener, app).await });
        let validator = JwtValidator::from_jwks(format!("{issuer}/jwks.json"), &issuer, &issuer)
            .build()
            .unwrap();
        let mint = || {
            let res = rt
                .block_on(
                    server
                        .token_endpoint()
                        .oneshot(request("grant_type=client_credentials".into())),
                )
                .unwrap();
            let body = rt.block_on(res.into_body().collect()).unwrap().to_bytes();
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            v["access_token"].as_str().unwrap().to_owned()
        };
        let warm = mint();
        assert!(matches!(
            rt.block_on(validator.validate(&warm)).unwrap(),
            tower_oauth2::bearer::Validation::Valid(_)
        ));
        c.bench_function(&format!("jwt_validator/{name}/first_sight"), |b| {
            b.iter_batched(
                &mint,
                |token| rt.block_on(validator.validate(&token)).unwrap(),
                criterion::BatchSize::SmallInput,
            )
        });
        c.bench_function(&format!("jwt_validator/{name}/seen_before"), |b| {
            b.iter(|| validator.validate_now(std::hint::black_box(&warm)))
        });
        assert!(matches!(
            local.validate_now(&warm),
            Some(Ok(tower_oauth2::bearer::Validation::Valid(_)))
        ));
        c.bench_function(&format!("jwt_local/{name}/seen_before"), |b| {
            b.iter(|| local.validate_now(std::hint::black_box(&warm)))
        });
    }
}

/// A client registered through the registration endpoint (kept in the store, looked up per
/// request) beside one written in code, on the same server; and a registration itself.
fn registered(c: &mut Criterion) {
    use tower_oauth2::registration::Registration;
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let server = AuthServer::builder()
        .clients(
            InMemoryClients::new().with(
                Client::confidential("bench", "bench-secret")
                    .grant_types([GrantType::ClientCredentials])
                    .build()
                    .unwrap(),
            ),
        )
        .configure(|c| c.issuer = Some("https://auth.example".into()))
        .registration(
            Registration::new()
                .initial_access_token("iat")
                .max_clients(u64::MAX)
                .rate(u64::MAX, Duration::from_secs(60)),
        )
        .store(MemoryStore::new())
        .build()
        .unwrap();
    let register = |body: &'static str, token: Option<&str>| {
        let mut req =
            http::Request::post("/oauth/register").header("content-type", "application/json");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        req.body(Full::new(Bytes::from_static(body.as_bytes())))
            .unwrap()
    };
    let created = rt.block_on(async {
        let res = server
            .registration_endpoint()
            .oneshot(register(
                r#"{"grant_types":["client_credentials"],"response_types":[],"token_endpoint_auth_method":"client_secret_basic"}"#,
                Some("iat"),
            ))
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        res.into_body().collect().await.unwrap().to_bytes()
    });
    let v: serde_json::Value = serde_json::from_slice(&created).unwrap();
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!(
                "{}:{}",
                v["client_id"].as_str().unwrap(),
                v["client_secret"].as_str().unwrap()
            )
        )
    );
    let cc = |authorization: &str| {
        http::Request::post("/oauth/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", authorization)
            .body(Full::new(Bytes::from_static(
                b"grant_type=client_credentials",
            )))
            .unwrap()
    };
    c.bench_function("registered/client_credentials/client_in_code", |b| {
        b.iter(|| {
            let res = rt.block_on(
                server
                    .token_endpoint()
                    .oneshot(cc("Basic YmVuY2g6YmVuY2gtc2VjcmV0")),
            );
            assert_eq!(res.unwrap().status(), 200);
        })
    });
    c.bench_function("registered/client_credentials/registered_client", |b| {
        b.iter(|| {
            let res = rt.block_on(server.token_endpoint().oneshot(cc(&basic)));
            assert_eq!(res.unwrap().status(), 200);
        })
    });
    c.bench_function("registered/register_public_client", |b| {
        b.iter(|| {
            let res = rt.block_on(server.registration_endpoint().oneshot(register(
                r#"{"redirect_uris":["http://127.0.0.1/callback"],"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"],"client_name":"bench"}"#,
                None,
            )));
            assert_eq!(res.unwrap().status(), 201);
        })
    });
}

/// The code exchange of an OAuth grant beside an OpenID one (an ID token signed RS256 or
/// ES256, and what it keeps for refreshes and logout), and a userinfo call.
fn openid(c: &mut Criterion) {
    use tower_oauth2::{
        AuthorizationRequest,
        jose::{KeySet, SigningKey},
        openid::{ClaimsRequest, OpenId},
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let client = |id: &str, alg: &str| {
        Client::confidential(id, "bench-secret")
            .grant_types([GrantType::AuthorizationCode, GrantType::RefreshToken])
            .scope("openid profile email read")
            .redirect_uri("https://rp.example/cb")
            .pkce_optional(true)
            .id_token_signed_response_alg(alg)
            .build()
            .unwrap()
    };
    let server = AuthServer::builder()
        .clients(
            InMemoryClients::new()
                .with(client("rs", "RS256"))
                .with(client("es", "ES256")),
        )
        .configure(|c| c.issuer = Some("https://auth.example".into()))
        .signing_keys(
            KeySet::new(SigningKey::generate_es256())
                .with_signing_key(SigningKey::generate_rs256()),
        )
        .openid(OpenId::new().claims(|r: ClaimsRequest| async move {
            let mut m = serde_json::Map::new();
            m.insert("email".into(), format!("{}@example.com", r.subject).into());
            m
        }))
        .store(MemoryStore::new())
        .build()
        .unwrap();
    let rt = &rt;
    let exchange = |client: &'static str, scope: &'static str| {
        let server = server.clone();
        move || {
            rt.block_on(async {
                let code = server
                    .issue_authorization_code(
                        AuthorizationRequest::new(client, "alice").scope(scope),
                    )
                    .await
                    .unwrap();
                let basic = format!(
                    "Basic {}",
                    base64::Engine::encode(
                        &base64::engine::general_purpose::STANDARD,
                        format!("{client}:bench-secret")
                    )
                );
                let req = http::Request::post("/oauth/token")
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("authorization", basic)
                    .body(Full::new(Bytes::from(format!(
                        "grant_type=authorization_code&code={code}"
                    ))))
                    .unwrap();
                let res = server.token_endpoint().oneshot(req).await.unwrap();
                assert_eq!(res.status(), 200);
                res.into_body().collect().await.unwrap().to_bytes()
            })
        }
    };
    let oauth = exchange("rs", "read");
    c.bench_function("openid/code_exchange/oauth", |b| b.iter(&oauth));
    let rs = exchange("rs", "openid email read");
    c.bench_function("openid/code_exchange/id_token_rs256", |b| b.iter(&rs));
    let es = exchange("es", "openid email read");
    c.bench_function("openid/code_exchange/id_token_es256", |b| b.iter(&es));
    let tokens: serde_json::Value = serde_json::from_slice(&es()).unwrap();
    let bearer = format!("Bearer {}", tokens["access_token"].as_str().unwrap());
    let userinfo = server.userinfo_endpoint();
    c.bench_function("openid/userinfo", |b| {
        b.iter(|| {
            let req = http::Request::get("/oauth/userinfo")
                .header("authorization", &bearer)
                .body(Full::new(Bytes::new()))
                .unwrap();
            let res = rt.block_on(userinfo.clone().oneshot(req)).unwrap();
            assert_eq!(res.status(), 200);
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = validate, issue, endpoint, hostile_bodies, jwt, registered, openid
}
criterion_main!(benches);
