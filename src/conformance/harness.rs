//! The server every case runs: known clients and users, a manual clock starting at the real
//! time, recorded events, and calls to the endpoints as tower services.

use std::{
    convert::Infallible,
    future::poll_fn,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use tower_layer::Layer;
use tower_service::Service;

use crate::{
    client::Client,
    client::GrantType,
    client::InMemoryClients,
    clock::{Clock, ManualClock, SystemClock},
    config::Config,
    events::Event,
    server::AuthServer,
    store::TokenStore,
    user::DemoUsers,
};

/// The confidential client most cases use, and a second one to show that tokens are bound.
pub(super) const APP: (&str, &str) = ("app", "app-secret");
pub(super) const OTHER: (&str, &str) = ("other", "other-secret");
/// A client allowed to introspect.
pub(super) const RS: (&str, &str) = ("rs", "rs-secret");

fn clients() -> InMemoryClients {
    let all = GrantType::ALL;
    let confidential = |id, secret, uri| {
        Client::confidential(id, secret)
            .grant_types(all)
            .scope("read write offline_access")
            .default_scope("read write")
            .redirect_uri(uri)
            .build()
            .expect("a valid demo client")
    };
    InMemoryClients::new()
        .with(confidential("app", "app-secret", "https://app.example/cb"))
        .with(confidential(
            "other",
            "other-secret",
            "https://other.example/cb",
        ))
        .with(
            Client::public("spa")
                .grant_types([GrantType::AuthorizationCode, GrantType::RefreshToken])
                .scope("read write")
                .redirect_uri("https://spa.example/cb")
                .build()
                .expect("a valid demo client"),
        )
        .with(
            Client::confidential("rs", "rs-secret")
                .grant_types([GrantType::ClientCredentials])
                .introspect(true)
                .build()
                .expect("a valid demo client"),
        )
        .with(
            Client::confidential("cc-only", "cc-secret")
                .grant_types([GrantType::ClientCredentials])
                .scope("read")
                .build()
                .expect("a valid demo client"),
        )
}

pub(super) struct Harness {
    pub(super) server: AuthServer,
    clock: Arc<ManualClock>,
    events: Arc<Mutex<Vec<Event>>>,
}

impl Harness {
    /// A server over `store`, its clock starting now: Redis-like stores expire keys on their own
    /// clock, so a past start would delete what a case just wrote.
    pub(super) fn new(store: Arc<dyn TokenStore>, configure: impl FnOnce(&mut Config)) -> Self {
        let clock = Arc::new(ManualClock::new(SystemClock.now()));
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&events);
        let mut config = Config::default();
        config.allowed_grant_types = config.allowed_grant_types.with(GrantType::Password);
        // The store under test exactly as given: no near-cache added in front of it (pass a
        // `NearCache` to test one).
        config.near_cache.enabled = false;
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
            .on_event(move |e: &Event| sink.lock().expect("event sink").push(e.clone()))
            .build()
            .expect("a valid configuration");
        Self {
            server,
            clock,
            events,
        }
    }

    pub(super) fn store(&self) -> &Arc<dyn TokenStore> {
        self.server.store()
    }

    pub(super) fn now(&self) -> u64 {
        self.server.now()
    }

    pub(super) fn advance(&self, secs: u64) {
        self.clock.advance(Duration::from_secs(secs));
    }

    pub(super) fn count_events(&self, name: &str) -> usize {
        let events = self.events.lock().expect("event sink");
        events.iter().filter(|e| e.name() == name).count()
    }

    pub(super) async fn token(&self, client: Option<(&str, &str)>, body: &str) -> Reply {
        call(
            self.server.token_endpoint(),
            form("/oauth/token", client, body),
        )
        .await
    }

    pub(super) async fn revoke(&self, client: Option<(&str, &str)>, body: &str) -> Reply {
        let req = form("/oauth/revoke", client, body);
        call(self.server.revocation_endpoint(), req).await
    }

    pub(super) async fn introspect(&self, body: &str) -> Reply {
        let req = form("/oauth/introspect", Some(RS), body);
        call(self.server.introspection_endpoint(), req).await
    }

    /// The password grant for `user` through `client`: (access token, refresh token).
    pub(super) async fn login_as(
        &self,
        client: (&str, &str),
        user: &str,
        password: &str,
    ) -> (String, String) {
        let body = format!("grant_type=password&username={user}&password={password}");
        let v = self.token(Some(client), &body).await.assert_token();
        (text(&v, "access_token"), text(&v, "refresh_token"))
    }

    /// Alice's login through `app`.
    pub(super) async fn login(&self) -> (String, String) {
        self.login_as(APP, "alice", "wonderland").await
    }

    pub(super) async fn refresh(&self, client: (&str, &str), refresh_token: &str) -> Reply {
        let body = format!("grant_type=refresh_token&refresh_token={refresh_token}");
        self.token(Some(client), &body).await
    }

    /// Whether the bearer layer lets this access token through right now.
    pub(super) async fn accepted(&self, access_token: &str) -> bool {
        let req = Request::get("/api")
            .header("authorization", format!("Bearer {access_token}"))
            .body(Full::new(Bytes::new()))
            .expect("a valid request");
        let protected = self.server.bearer_layer().layer(Ok200);
        call(protected, req).await.status == StatusCode::OK
    }
}

/// What a response said.
pub(super) struct Reply {
    pub(super) status: StatusCode,
    headers: HeaderMap,
    pub(super) body: Bytes,
}

impl Reply {
    pub(super) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn assert_no_store(&self) {
        assert_eq!(self.header("content-type"), Some("application/json"));
        assert_eq!(self.header("cache-control"), Some("no-store"));
        assert_eq!(self.header("pragma"), Some("no-cache"));
    }

    /// An RFC 6749 §5.2 error: its status, its code, not cacheable.
    #[track_caller]
    pub(super) fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status.as_u16(), self.json()["error"].as_str()),
            (status, Some(code)),
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        self.assert_no_store();
    }

    /// An RFC 6749 §5.1 token response.
    #[track_caller]
    pub(super) fn assert_token(&self) -> Value {
        assert_eq!(
            self.status,
            StatusCode::OK,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        self.assert_no_store();
        let v = self.json();
        assert_eq!(v["token_type"], "Bearer");
        assert!(v["expires_in"].as_u64().is_some(), "expires_in: {v}");
        v
    }
}

/// A string member of a JSON object.
#[track_caller]
pub(super) fn text(v: &Value, name: &str) -> String {
    v[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {v}"))
        .to_owned()
}

/// A form POST, with HTTP Basic credentials when a client is given.
pub(super) fn form(uri: &str, client: Option<(&str, &str)>, body: &str) -> Request<Full<Bytes>> {
    let mut req = Request::post(uri).header("content-type", "application/x-www-form-urlencoded");
    if let Some((id, secret)) = client {
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
        req = req.header("authorization", format!("Basic {basic}"));
    }
    req.body(Full::new(Bytes::from(body.to_owned())))
        .expect("a valid request")
}

/// Call a service once, as a server would, and read the whole response.
pub(super) async fn call<S, B>(mut service: S, req: Request<Full<Bytes>>) -> Reply
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    poll_fn(|cx| service.poll_ready(cx))
        .await
        .expect("the service is ready");
    let res = service.call(req).await.expect("the service answers");
    let (parts, body) = res.into_parts();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.expect("a whole body").to_bytes(),
    }
}

/// The protected service: 200 for whatever the layer lets through.
#[derive(Clone)]
struct Ok200;

impl<B> Service<Request<B>> for Ok200 {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _req: Request<B>) -> Self::Future {
        std::future::ready(Ok(Response::new(Full::new(Bytes::new()))))
    }
}
