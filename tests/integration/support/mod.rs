//! Shared test harness: a server with a manual clock, known clients and users, recorded events,
//! and helpers that call the endpoints as tower services or over real HTTP on loopback.

pub mod backends;
pub mod cluster;
pub mod https;
mod net;
pub mod node;
pub mod proxy;
pub mod quickstart;
mod reply;

pub use self::{net::*, reply::*};

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use base64::Engine;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use tower::ServiceExt;
use tower_oauth2::{
    AuthServer, BearerLayer, Client, Config, GrantType, InMemoryClients,
    clock::ManualClock,
    events::Event,
    store::{MemoryStore, TokenStore},
    user::DemoUsers,
};

pub const START: u64 = 1_700_000_000;

/// A token request and the error it must get: (client credentials, body, status, `error`).
pub type TokenErrorCase<'a> = (Option<(&'a str, &'a str)>, &'a str, u16, &'a str);

/// The demo clients' credentials (see [`clients`]).
pub const APP: (&str, &str) = ("app", "app-secret");
pub const OTHER: (&str, &str) = ("other", "other-secret");
pub const RS: (&str, &str) = ("rs", "rs-secret");

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

    /// Send each `(client, body)` to the token endpoint and assert the RFC 6749 §5.2 error it
    /// must get, naming the case when one does not.
    pub async fn assert_token_errors(&self, cases: &[TokenErrorCase<'_>]) {
        for &(client, body, status, error) in cases {
            let r = self.token(client, body).await;
            assert_eq!(
                (r.status.as_u16(), r.json()["error"].as_str()),
                (status, Some(error)),
                "{client:?} {body:?}: {}",
                r.json()
            );
            r.assert_error(status, error);
        }
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
