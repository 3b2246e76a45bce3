//! Shared test harness: a server with a manual clock, known clients and users, recorded events,
//! and helpers that call the endpoints as tower services or over real HTTP on loopback.
#![allow(dead_code, unreachable_pub)]

pub mod backends;

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use tower::{ServiceExt, service_fn};
use tower_oauth2::{
    AuthServer, BearerLayer, Client, Config, GrantType, InMemoryClients, Metadata, TokenInfo,
    clock::ManualClock,
    events::Event,
    store::{MemoryStore, TokenStore},
    user::DemoUsers,
};

pub const START: u64 = 1_700_000_000;

pub struct Harness {
    pub server: AuthServer,
    pub clock: Arc<ManualClock>,
    /// The memory store, when the harness runs on one.
    pub memory: Option<MemoryStore>,
    pub events: Arc<Mutex<Vec<Event>>>,
}

pub fn clients() -> InMemoryClients {
    let all = GrantType::ALL;
    InMemoryClients::new()
        .with(
            Client::confidential("app", "app-secret")
                .grant_types(all)
                .scope("read write offline_access")
                .default_scope("read write")
                .redirect_uri("https://app.example/cb")
                .build()
                .unwrap(),
        )
        .with(
            Client::confidential("other", "other-secret")
                .grant_types(all)
                .scope("read write offline_access")
                .redirect_uri("https://other.example/cb")
                .build()
                .unwrap(),
        )
        .with(
            Client::public("spa")
                .grant_types([GrantType::AuthorizationCode, GrantType::RefreshToken])
                .scope("read write")
                .redirect_uri("https://spa.example/cb")
                .redirect_uri("https://spa.example/other")
                .build()
                .unwrap(),
        )
        .with(
            Client::confidential("rs", "rs-secret")
                .grant_types([GrantType::ClientCredentials])
                .introspect(true)
                .build()
                .unwrap(),
        )
        .with(
            Client::confidential("cc-only", "cc-secret")
                .grant_types([GrantType::ClientCredentials])
                .scope("read")
                .build()
                .unwrap(),
        )
        .with(
            Client::confidential("norefresh", "nr-secret")
                .issue_refresh_token(false)
                .build()
                .unwrap(),
        )
        .with(
            Client::confidential("weird:id%", "weird-secret")
                .grant_types(all)
                .build()
                .unwrap(),
        )
}

pub fn harness() -> Harness {
    harness_with(|_| {})
}

pub fn harness_with(configure: impl FnOnce(&mut Config)) -> Harness {
    harness_over(configure, |store| Arc::new(store))
}

/// A harness whose server uses `wrap(memory_store)` as its token store.
pub fn harness_over(
    configure: impl FnOnce(&mut Config),
    wrap: impl FnOnce(MemoryStore) -> Arc<dyn TokenStore>,
) -> Harness {
    let memory = MemoryStore::new();
    let mut h = harness_on(wrap(memory.clone()), START, configure);
    h.memory = Some(memory);
    h
}

/// A harness over any store, its manual clock starting at `start`.
pub fn harness_on(
    store: Arc<dyn TokenStore>,
    start: u64,
    configure: impl FnOnce(&mut Config),
) -> Harness {
    let clock = Arc::new(ManualClock::new(start));
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    let mut config = Config::default();
    config.allowed_grant_types = config.allowed_grant_types.with(GrantType::Password);
    configure(&mut config);
    let server = AuthServer::builder()
        .config(config)
        .clients(clients())
        .users(
            DemoUsers::new()
                .with("alice", "wonderland")
                .with("bob", "builder"),
        )
        .shared_store(store)
        .clock(Arc::clone(&clock))
        .on_event(move |e: &Event| sink.lock().unwrap().push(e.clone()))
        .build()
        .unwrap();
    Harness {
        server,
        clock,
        memory: None,
        events,
    }
}

pub fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

/// A form POST, optionally with HTTP Basic client credentials.
pub fn form(uri: &str, auth: Option<(&str, &str)>, body: &str) -> Request<Full<Bytes>> {
    let mut b = Request::post(uri).header("content-type", "application/x-www-form-urlencoded");
    if let Some((id, secret)) = auth {
        b = b.header("authorization", basic(id, secret));
    }
    b.body(Full::new(Bytes::from(body.to_owned()))).unwrap()
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
    pub fn str(&self, field: &str) -> String {
        self.json()[field]
            .as_str()
            .unwrap_or_else(|| panic!("no {field} in {}", self.json()))
            .to_owned()
    }
    /// Assert an RFC 6749 §5.2 error: status, code, no-store headers.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(
            self.status.as_u16(),
            status,
            "body: {:?}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(self.json()["error"], code, "body: {}", self.json());
        assert_eq!(self.header("content-type"), Some("application/json"));
        assert_eq!(self.header("cache-control"), Some("no-store"));
        assert_eq!(self.header("pragma"), Some("no-cache"));
    }
    /// Assert a successful token response (RFC 6749 §5.1).
    #[track_caller]
    pub fn assert_token(&self) -> Value {
        assert_eq!(
            self.status,
            StatusCode::OK,
            "body: {:?}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(self.header("cache-control"), Some("no-store"));
        assert_eq!(self.header("pragma"), Some("no-cache"));
        assert_eq!(self.header("content-type"), Some("application/json"));
        let v = self.json();
        assert_eq!(v["token_type"], "Bearer");
        let at = v["access_token"].as_str().unwrap();
        assert_eq!(at.len(), 43, "256-bit URL-safe token");
        assert!(v["expires_in"].as_u64().is_some());
        v
    }
}

pub async fn reply<B>(res: Response<B>) -> Reply
where
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let (parts, body) = res.into_parts();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

impl Harness {
    /// The memory store under this harness.
    pub fn store(&self) -> &MemoryStore {
        self.memory
            .as_ref()
            .expect("harness runs on a memory store")
    }

    pub async fn token_raw(&self, req: Request<Full<Bytes>>) -> Reply {
        reply(self.server.token_endpoint().oneshot(req).await.unwrap()).await
    }

    pub async fn token(&self, auth: Option<(&str, &str)>, body: &str) -> Reply {
        self.token_raw(form("/oauth/token", auth, body)).await
    }

    pub async fn revoke(&self, auth: Option<(&str, &str)>, body: &str) -> Reply {
        let req = form("/oauth/revoke", auth, body);
        reply(
            self.server
                .revocation_endpoint()
                .oneshot(req)
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn introspect(&self, auth: Option<(&str, &str)>, body: &str) -> Reply {
        let req = form("/oauth/introspect", auth, body);
        reply(
            self.server
                .introspection_endpoint()
                .oneshot(req)
                .await
                .unwrap(),
        )
        .await
    }

    /// Password grant for alice via `app`; returns (access, refresh).
    pub async fn login(&self) -> (String, String) {
        self.login_as(("app", "app-secret"), "alice", "wonderland", "")
            .await
    }

    pub async fn login_as(
        &self,
        client: (&str, &str),
        user: &str,
        pass: &str,
        extra: &str,
    ) -> (String, String) {
        let r = self
            .token(
                Some(client),
                &format!("grant_type=password&username={user}&password={pass}{extra}"),
            )
            .await;
        let v = r.assert_token();
        (
            v["access_token"].as_str().unwrap().to_owned(),
            v["refresh_token"].as_str().unwrap().to_owned(),
        )
    }

    pub async fn refresh(&self, client: (&str, &str), refresh_token: &str) -> Reply {
        self.token(
            Some(client),
            &format!("grant_type=refresh_token&refresh_token={refresh_token}"),
        )
        .await
    }

    pub fn advance(&self, secs: u64) {
        self.clock.advance(Duration::from_secs(secs));
    }

    pub fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    pub fn event_names(&self) -> Vec<&'static str> {
        self.events().iter().map(Event::name).collect()
    }

    /// Call a protected echo service through `layer` with the given Authorization header.
    pub async fn protected(&self, layer: BearerLayer, authorization: Option<&str>) -> Reply {
        let mut req = Request::get("/api/me");
        if let Some(a) = authorization {
            req = req.header("authorization", a);
        }
        call_protected(layer, req.body(Full::new(Bytes::new())).unwrap()).await
    }

    /// Whether the bearer layer accepts this access token right now.
    pub async fn accepted(&self, access_token: &str) -> bool {
        let r = self
            .protected(
                self.server.bearer_layer(),
                Some(&format!("Bearer {access_token}")),
            )
            .await;
        r.status == StatusCode::OK
    }
}

/// An echo service behind `layer`: answers 200 with the token details it was handed.
pub async fn call_protected(layer: BearerLayer, req: Request<Full<Bytes>>) -> Reply {
    let svc = tower::ServiceBuilder::new()
        .layer(layer)
        .service(service_fn(|req: Request<Full<Bytes>>| async move {
            let info = req.extensions().get::<TokenInfo>().cloned();
            let body = match info {
                Some(i) => serde_json::json!({
                    "client_id": &*i.client_id,
                    "sub": i.subject.as_deref(),
                    "scope": i.scope.as_str(),
                    "exp": i.expires_at,
                }),
                None => serde_json::json!({ "missing": true }),
            };
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body.to_string()))))
        }));
    reply(svc.oneshot(req).await.unwrap()).await
}

/// Serve the whole app (all endpoints and a protected route) on loopback; returns its address.
pub async fn serve(server: &AuthServer) -> SocketAddr {
    use axum::{Extension, Json, Router, routing::get};
    let app = Router::new()
        .route(
            "/api/me",
            get(|Extension(t): Extension<TokenInfo>| async move {
                Json(serde_json::json!({
                    "client_id": &*t.client_id,
                    "user": t.subject.as_deref(),
                    "scope": t.scope.as_str(),
                }))
            }),
        )
        .route_layer(server.bearer_layer())
        .route_service("/oauth/token", server.token_endpoint())
        .route_service("/oauth/revoke", server.revocation_endpoint())
        .route_service("/oauth/introspect", server.introspection_endpoint())
        .route_service(
            "/.well-known/oauth-authorization-server",
            server.metadata_endpoint(Metadata::new("http://localhost")),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// Send a request over real HTTP/1.1 and read the whole reply.
pub async fn http(req: Request<Full<Bytes>>) -> Reply {
    use hyper_util::{client::legacy::Client as HttpClient, rt::TokioExecutor};
    let client = HttpClient::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    reply(client.request(req).await.expect("HTTP request failed")).await
}

/// A store that holds the first `n` refresh-token reads until all `n` have happened, so that
/// every concurrent request has seen the token active before any of them tries to rotate it:
/// the store's compare-and-set alone must then decide.
pub fn gate(inner: Arc<dyn TokenStore>, n: usize) -> Arc<dyn TokenStore> {
    Arc::new(Gate {
        inner,
        barrier: tokio::sync::Barrier::new(n),
        n,
        reads: 0.into(),
    })
}

struct Gate {
    inner: Arc<dyn TokenStore>,
    barrier: tokio::sync::Barrier,
    n: usize,
    reads: std::sync::atomic::AtomicUsize,
}

mod gate_impl {
    use async_trait::async_trait;
    use tower_oauth2::{
        GrantId, StoreError,
        store::{
            AccessTokenRecord, AuthorizationCodeRecord, GrantFilter, GrantRecord, NewAccessToken,
            NewRefreshToken, Redemption, RefreshTokenRecord, Rotation, RotationOutcome, TokenStore,
        },
        token::TokenHash,
    };

    #[async_trait]
    impl TokenStore for super::Gate {
        async fn create_grant(
            &self,
            g: GrantRecord,
            a: NewAccessToken,
            r: Option<NewRefreshToken>,
        ) -> Result<(), StoreError> {
            self.inner.create_grant(g, a, r).await
        }
        async fn find_access_token(
            &self,
            h: &TokenHash,
        ) -> Result<Option<AccessTokenRecord>, StoreError> {
            self.inner.find_access_token(h).await
        }
        async fn find_refresh_token(
            &self,
            h: &TokenHash,
        ) -> Result<Option<RefreshTokenRecord>, StoreError> {
            let found = self.inner.find_refresh_token(h).await;
            if self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < self.n {
                self.barrier.wait().await;
            }
            found
        }
        async fn rotate_refresh_token(&self, r: Rotation) -> Result<RotationOutcome, StoreError> {
            self.inner.rotate_refresh_token(r).await
        }
        async fn revoke_access_token(&self, h: &TokenHash) -> Result<bool, StoreError> {
            self.inner.revoke_access_token(h).await
        }
        async fn revoke_grant(&self, id: GrantId) -> Result<bool, StoreError> {
            self.inner.revoke_grant(id).await
        }
        async fn revoke_grants(&self, f: &GrantFilter) -> Result<u64, StoreError> {
            self.inner.revoke_grants(f).await
        }
        async fn create_code(&self, c: AuthorizationCodeRecord) -> Result<(), StoreError> {
            self.inner.create_code(c).await
        }
        async fn find_code(
            &self,
            h: &TokenHash,
        ) -> Result<Option<AuthorizationCodeRecord>, StoreError> {
            self.inner.find_code(h).await
        }
        async fn redeem_code(
            &self,
            h: &TokenHash,
            g: GrantRecord,
            a: NewAccessToken,
            r: Option<NewRefreshToken>,
        ) -> Result<Redemption, StoreError> {
            self.inner.redeem_code(h, g, a, r).await
        }
        async fn purge_expired(&self, now: u64) -> Result<u64, StoreError> {
            self.inner.purge_expired(now).await
        }
    }
}
