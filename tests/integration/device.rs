//! The device authorization grant (RFC 8628) through the public API: the device authorization
//! endpoint's answer and errors, polling (`authorization_pending` at once, `slow_down` with a
//! growing interval), approval and denial through `AuthServer::complete_device` reaching the
//! device at its next poll, single use under concurrent polls, expiry by the clock, another
//! client's code, and the flow split across two instances on Redis, Redis Cluster and
//! PostgreSQL.

use std::{sync::Arc, time::Duration};

use http::{Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;
use tower_oauth2::{
    AuthServer, Client, GrantType, InMemoryClients, Metadata, Scope,
    clock::ManualClock,
    endpoint::{AuthorizationContext, Decision, Interaction},
    events::Event,
    store::{MemoryStore, TokenStore},
};

use crate::support::{
    Reply,
    backends::{Backend, open, open_again},
    form, reply,
};

const ISS: &str = "https://auth.example";
const START: u64 = 1_800_000_000;
const GRANT: &str = "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code";

struct Setup {
    server: AuthServer,
    clock: Arc<ManualClock>,
    events: Arc<std::sync::Mutex<Vec<Event>>>,
}

fn clients() -> InMemoryClients {
    InMemoryClients::new()
        .with(
            Client::public("cli")
                .grant_types([GrantType::DeviceCode, GrantType::RefreshToken])
                .scope("read write")
                .build()
                .unwrap(),
        )
        .with(
            Client::public("other-cli")
                .grant_types([GrantType::DeviceCode])
                .build()
                .unwrap(),
        )
        .with(
            Client::public("web")
                .grant_types([GrantType::AuthorizationCode])
                .redirect_uri("https://web.example/cb")
                .build()
                .unwrap(),
        )
}

/// Approves as alice with `x-test: approve`, denies with `x-test: deny`; else a page with the
/// handle, the client and the code to compare, as a consent page would.
async fn consent(ctx: AuthorizationContext) -> Interaction {
    match ctx.headers().get("x-test").map(|v| v.as_bytes()) {
        Some(b"approve") => return Interaction::Decided(Decision::approve("alice")),
        Some(b"deny") => return Interaction::Decided(Decision::Deny),
        _ => {}
    }
    let body = format!(
        "handle={} client={} code={} scope={}",
        ctx.handle(),
        ctx.client().id(),
        ctx.request().device_user_code().unwrap_or_default(),
        ctx.request().scope()
    );
    Interaction::Respond(http::Response::new(http_body_util::Full::new(
        bytes::Bytes::from(body),
    )))
}

fn setup_on(store: Arc<dyn TokenStore>, clock: Arc<ManualClock>) -> Setup {
    let events = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    let server = AuthServer::builder()
        .clients(clients())
        .allow_grant_type(GrantType::DeviceCode)
        .configure(|c| {
            c.issuer = Some(ISS.into());
            c.resources = vec!["https://api.example/".into()];
        })
        .shared_store(store)
        .clock(Arc::clone(&clock))
        .authorization_handler(consent)
        .on_event(move |e: &Event| sink.lock().unwrap().push(e.clone()))
        .build()
        .unwrap();
    Setup {
        server,
        clock,
        events,
    }
}

fn setup() -> Setup {
    setup_on(
        Arc::new(MemoryStore::new()),
        Arc::new(ManualClock::new(START)),
    )
}

async fn start(server: &AuthServer, body: &str) -> Reply {
    reply(
        server
            .device_authorization_endpoint()
            .oneshot(form("/oauth/device_authorization", None, body))
            .await
            .unwrap(),
    )
    .await
}

async fn poll(server: &AuthServer, client: &str, device_code: &str) -> Reply {
    reply(
        server
            .token_endpoint()
            .oneshot(form(
                "/oauth/token",
                None,
                &format!("grant_type={GRANT}&client_id={client}&device_code={device_code}"),
            ))
            .await
            .unwrap(),
    )
    .await
}

/// A started request: (device_code, user_code).
async fn started(server: &AuthServer) -> (String, String) {
    let v = start(server, "client_id=cli&scope=read%20write")
        .await
        .json();
    (
        v["device_code"].as_str().unwrap().to_owned(),
        v["user_code"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn the_device_authorization_response_is_rfc_8628_section_3_2() {
    let s = setup();
    let r = start(&s.server, "client_id=cli&scope=read").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    assert_eq!(
        v["device_code"].as_str().unwrap().len(),
        46,
        "256 random bits"
    );
    let user_code = v["user_code"].as_str().unwrap();
    assert_eq!(user_code.len(), 9);
    assert_eq!(&user_code[4..5], "-");
    assert!(
        user_code
            .chars()
            .filter(|c| *c != '-')
            .all(|c| "BCDFGHJKLMNPQRSTVWXZ".contains(c)),
        "{user_code}"
    );
    assert_eq!(v["verification_uri"], format!("{ISS}/device"));
    assert_eq!(
        v["verification_uri_complete"],
        format!("{ISS}/device?user_code={user_code}")
    );
    assert_eq!(v["expires_in"], 600);
    assert_eq!(v["interval"], 5);
    // Two requests, two codes.
    let w = start(&s.server, "client_id=cli").await.json();
    assert_ne!(w["device_code"], v["device_code"]);
    assert_ne!(w["user_code"], v["user_code"]);
    // The page can see what is asked, by the code however it is typed.
    let pending = s
        .server
        .device_request(&user_code.to_lowercase().replace('-', " "))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pending.client_id(), "cli");
    assert_eq!(pending.scope().as_str(), "read");
    assert_eq!(pending.user_code(), user_code);
    assert_eq!(pending.expires_at(), START + 600);
    assert!(
        !format!("{pending:?}").contains(&user_code[..4]),
        "no code in Debug"
    );
    // The metadata names the endpoint and the grant.
    let doc = reply(
        s.server
            .metadata_endpoint(Metadata::new(ISS))
            .oneshot(
                Request::get("/")
                    .body(http_body_util::Full::new(bytes::Bytes::new()))
                    .unwrap(),
            )
            .await
            .unwrap(),
    )
    .await
    .json();
    assert_eq!(
        doc["device_authorization_endpoint"],
        format!("{ISS}/oauth/device_authorization")
    );
    assert!(
        doc["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&Value::from("urn:ietf:params:oauth:grant-type:device_code"))
    );
}

#[tokio::test]
async fn device_authorization_errors() {
    let s = setup();
    for (body, status, error) in [
        ("client_id=web", 400, "unauthorized_client"),
        ("client_id=cli&scope=admin", 400, "invalid_scope"),
        (
            "client_id=cli&resource=https%3A%2F%2Fevil.example%2F",
            400,
            "invalid_target",
        ),
        ("client_id=cli&resource=relative", 400, "invalid_target"),
        ("client_id=nobody", 401, "invalid_client"),
        ("scope=read", 401, "invalid_client"),
    ] {
        start(&s.server, body).await.assert_error(status, error);
    }
    // A server without the grant.
    let off = AuthServer::builder()
        .clients(clients())
        .configure(|c| c.issuer = Some(ISS.into()))
        .build()
        .unwrap();
    start(&off, "client_id=cli")
        .await
        .assert_error(400, "unsupported_grant_type");
    poll(&off, "cli", "x")
        .await
        .assert_error(400, "unsupported_grant_type");
    // GET is not allowed.
    let r = reply(
        s.server
            .device_authorization_endpoint()
            .oneshot(
                Request::get("/oauth/device_authorization?client_id=cli")
                    .body(http_body_util::Full::new(bytes::Bytes::new()))
                    .unwrap(),
            )
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    // The device grant needs an issuer for its path-relative verification URI.
    let no_issuer = AuthServer::builder()
        .clients(clients())
        .allow_grant_type(GrantType::DeviceCode)
        .build();
    assert!(
        no_issuer
            .unwrap_err()
            .to_string()
            .contains("verification_uri")
    );
}

#[tokio::test]
async fn polling_is_pending_then_slow_down_with_a_growing_interval_then_the_tokens_once() {
    let s = setup();
    let (device_code, user_code) = started(&s.server).await;
    let advance = |secs| s.clock.advance(Duration::from_secs(secs));
    // The first poll may come at once.
    poll(&s.server, "cli", &device_code)
        .await
        .assert_error(400, "authorization_pending");
    // Too soon: slow_down, and the interval is now 10 s.
    advance(1);
    poll(&s.server, "cli", &device_code)
        .await
        .assert_error(400, "slow_down");
    advance(9);
    poll(&s.server, "cli", &device_code)
        .await
        .assert_error(400, "slow_down");
    // Now 15 s; waiting it out is pending again (and the interval stays 15).
    advance(15);
    poll(&s.server, "cli", &device_code)
        .await
        .assert_error(400, "authorization_pending");
    advance(15);
    poll(&s.server, "cli", &device_code)
        .await
        .assert_error(400, "authorization_pending");
    // The user approves (the code typed loosely); the next poll gets the pair.
    assert!(
        s.server
            .complete_device(&user_code.to_lowercase(), Decision::approve("alice"))
            .await
            .unwrap()
    );
    advance(15);
    let r = poll(&s.server, "cli", &device_code).await;
    let t = r.assert_token();
    assert_eq!(t["scope"], "read write");
    let refresh = t["refresh_token"]
        .as_str()
        .expect("a refresh token for the CLI");
    let access = t["access_token"].as_str().unwrap();
    let record = s
        .server
        .validate_access_token(access)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.grant.subject.as_deref(), Some("alice"));
    // Once: any later poll is invalid_grant, however soon.
    poll(&s.server, "cli", &device_code)
        .await
        .assert_error(400, "invalid_grant");
    advance(60);
    poll(&s.server, "cli", &device_code)
        .await
        .assert_error(400, "invalid_grant");
    // The user code is used up.
    assert!(s.server.device_request(&user_code).await.unwrap().is_none());
    assert!(
        !s.server
            .complete_device(&user_code, Decision::approve("mallory"))
            .await
            .unwrap()
    );
    // The refresh token works.
    reply(
        s.server
            .token_endpoint()
            .oneshot(form(
                "/oauth/token",
                None,
                &format!("grant_type=refresh_token&client_id=cli&refresh_token={refresh}"),
            ))
            .await
            .unwrap(),
    )
    .await
    .assert_token();
    assert!(s.events.lock().unwrap().iter().any(|e| matches!(
        e,
        Event::TokenIssued {
            grant_type: GrantType::DeviceCode,
            ..
        }
    )));
}

#[tokio::test]
async fn a_denial_reaches_the_device_at_its_next_poll() {
    let s = setup();
    let (device_code, user_code) = started(&s.server).await;
    poll(&s.server, "cli", &device_code)
        .await
        .assert_error(400, "authorization_pending");
    assert!(
        s.server
            .complete_device(&user_code, Decision::Deny)
            .await
            .unwrap()
    );
    s.clock.advance(Duration::from_secs(5));
    poll(&s.server, "cli", &device_code)
        .await
        .assert_error(400, "access_denied");
    poll(&s.server, "cli", &device_code)
        .await
        .assert_error(400, "invalid_grant");
}

#[tokio::test]
async fn an_expired_code_is_expired_token_then_unknown_and_cannot_be_approved() {
    let s = setup();
    let (device_code, user_code) = started(&s.server).await;
    s.clock.advance(Duration::from_secs(600));
    poll(&s.server, "cli", &device_code)
        .await
        .assert_error(400, "expired_token");
    assert!(s.server.device_request(&user_code).await.unwrap().is_none());
    assert!(
        !s.server
            .complete_device(&user_code, Decision::approve("alice"))
            .await
            .unwrap()
    );
    s.clock.advance(Duration::from_secs(600));
    poll(&s.server, "cli", &device_code)
        .await
        .assert_error(400, "invalid_grant");
}

#[tokio::test]
async fn another_clients_code_and_bad_polls_change_nothing() {
    let s = setup();
    let (device_code, user_code) = started(&s.server).await;
    poll(&s.server, "other-cli", &device_code)
        .await
        .assert_error(400, "invalid_grant");
    poll(&s.server, "cli", "not-a-device-code")
        .await
        .assert_error(400, "invalid_grant");
    let missing = reply(
        s.server
            .token_endpoint()
            .oneshot(form(
                "/oauth/token",
                None,
                &format!("grant_type={GRANT}&client_id=cli"),
            ))
            .await
            .unwrap(),
    )
    .await;
    missing.assert_error(400, "invalid_request");
    poll(&s.server, "web", &device_code)
        .await
        .assert_error(400, "unauthorized_client");
    // Approval with a scope beyond what was asked is refused, and leaves the code usable.
    let err = s
        .server
        .complete_device(
            &user_code,
            Decision::approve("alice").with_scope(Scope::parse("admin").unwrap()),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_scope");
    assert!(
        s.server.device_request(&user_code).await.unwrap().is_some(),
        "still usable"
    );
    // A narrower approval applies.
    let (device_code, user_code) = started(&s.server).await;
    assert!(
        s.server
            .complete_device(
                &user_code,
                Decision::approve("alice").with_scope(Scope::parse("read").unwrap()),
            )
            .await
            .unwrap()
    );
    let t = poll(&s.server, "cli", &device_code).await.assert_token();
    assert_eq!(t["scope"], "read");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_polls_after_approval_get_one_pair() {
    let s = setup();
    let (device_code, user_code) = started(&s.server).await;
    assert!(
        s.server
            .complete_device(&user_code, Decision::approve("alice"))
            .await
            .unwrap()
    );
    let polls: Vec<_> = (0..16)
        .map(|_| {
            let (server, code) = (s.server.clone(), device_code.clone());
            tokio::spawn(async move { poll(&server, "cli", &code).await.status })
        })
        .collect();
    let mut ok = 0;
    for p in polls {
        match p.await.unwrap() {
            StatusCode::OK => ok += 1,
            StatusCode::BAD_REQUEST => {}
            other => panic!("{other}"),
        }
    }
    assert_eq!(ok, 1);
}

/// Start on one instance, approve on another, poll on the first.
async fn across_instances(backend: Backend, test: &str) {
    let Some(store) = open(backend, test).await else {
        return;
    };
    let clock = Arc::new(ManualClock::new(tower_oauth2::clock::Clock::now(
        &tower_oauth2::clock::SystemClock,
    )));
    let a = setup_on(store, Arc::clone(&clock));
    let b = setup_on(open_again(backend, test, None), Arc::clone(&clock));
    let (device_code, user_code) = started(&a.server).await;
    poll(&a.server, "cli", &device_code)
        .await
        .assert_error(400, "authorization_pending");
    // The poll clock is shared too.
    poll(&b.server, "cli", &device_code)
        .await
        .assert_error(400, "slow_down");
    assert!(b.server.device_request(&user_code).await.unwrap().is_some());
    assert!(
        b.server
            .complete_device(&user_code, Decision::approve("alice"))
            .await
            .unwrap()
    );
    clock.advance(Duration::from_secs(10));
    poll(&a.server, "cli", &device_code).await.assert_token();
    poll(&b.server, "cli", &device_code)
        .await
        .assert_error(400, "invalid_grant");
}

#[tokio::test]
async fn across_instances_on_redis() {
    across_instances(Backend::Redis, "device_across").await;
}

#[tokio::test]
async fn across_instances_on_redis_cluster() {
    across_instances(Backend::RedisCluster, "device_across").await;
}

#[tokio::test]
async fn across_instances_on_postgres() {
    across_instances(Backend::Postgres, "device_across").await;
}

/// The verification page, as a browser would use it: `method` with `user_code` (in the query
/// for GET, the form for POST), the binding cookie if given, and an `x-test` header.
async fn verify(
    server: &AuthServer,
    method: &str,
    user_code: Option<&str>,
    cookie: Option<&str>,
    test: Option<&str>,
) -> Reply {
    let query = match (method, user_code) {
        ("GET", Some(c)) => format!("?user_code={c}"),
        _ => String::new(),
    };
    let mut req = Request::builder()
        .method(method)
        .uri(format!("/device{query}"))
        .header("content-type", "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    if let Some(t) = test {
        req = req.header("x-test", t);
    }
    let body = match (method, user_code) {
        ("POST", Some(c)) => format!("user_code={c}"),
        _ => String::new(),
    };
    reply(
        server
            .device_verification_endpoint()
            .oneshot(
                req.body(http_body_util::Full::new(bytes::Bytes::from(body)))
                    .unwrap(),
            )
            .await
            .unwrap(),
    )
    .await
}

fn body(r: &Reply) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

/// The binding cookie a page set, as the browser sends it back.
fn cookie_of(r: &Reply) -> String {
    r.header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_verification_page_hands_the_code_to_the_apps_login_and_the_device_gets_the_decision() {
    let s = setup();
    // The bare page: a form for the code, served as the authorization endpoint's pages are.
    let r = verify(&s.server, "GET", None, None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert!(body(&r).contains("name=\"user_code\""));
    // Arriving with the code (verification_uri_complete): the app's page, which names the
    // client and the code to compare with the device's screen.
    let (device_code, user_code) = started(&s.server).await;
    let r = verify(&s.server, "GET", Some(&user_code), None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", body(&r));
    let page = body(&r);
    assert!(
        page.contains(&format!("client=cli code={user_code} scope=read write")),
        "{page}"
    );
    let handle = page
        .split_whitespace()
        .next()
        .unwrap()
        .strip_prefix("handle=")
        .unwrap()
        .to_owned();
    let cookie = cookie_of(&r);
    poll(&s.server, "cli", &device_code)
        .await
        .assert_error(400, "authorization_pending");
    // The app's form completes it, from the same browser: the browser is told, the device
    // gets the pair at its next poll.
    let mut headers = http::HeaderMap::new();
    headers.insert("cookie", cookie.parse().unwrap());
    let done = reply(
        s.server
            .complete_authorization(&handle, &headers, Decision::approve("alice"))
            .await,
    )
    .await;
    assert_eq!(done.status, StatusCode::OK);
    assert!(
        body(&done).contains("the device is connected"),
        "{}",
        body(&done)
    );
    assert!(done.header("location").is_none());
    s.clock.advance(Duration::from_secs(5));
    poll(&s.server, "cli", &device_code).await.assert_token();
    // The handle and the code are used up.
    let again = reply(
        s.server
            .complete_authorization(&handle, &headers, Decision::approve("mallory"))
            .await,
    )
    .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    let r = verify(&s.server, "POST", Some(&user_code), Some(&cookie), None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(body(&r).contains("not valid, or it expired"));
    // Another browser cannot complete someone else's handle.
    let (_, code2) = started(&s.server).await;
    let r = verify(&s.server, "POST", Some(&code2.to_lowercase()), None, None).await;
    let handle2 = body(&r)
        .split_whitespace()
        .next()
        .unwrap()
        .strip_prefix("handle=")
        .unwrap()
        .to_owned();
    let stranger = reply(
        s.server
            .complete_authorization(
                &handle2,
                &http::HeaderMap::new(),
                Decision::approve("mallory"),
            )
            .await,
    )
    .await;
    assert_eq!(stranger.status, StatusCode::BAD_REQUEST);
    assert!(
        s.server.device_request(&code2).await.unwrap().is_some(),
        "still pending"
    );
}

#[tokio::test]
async fn an_app_that_decides_at_once_approves_or_denies_from_the_page() {
    let s = setup();
    let (device_code, user_code) = started(&s.server).await;
    let r = verify(&s.server, "POST", Some(&user_code), None, Some("approve")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(body(&r).contains("the device is connected"));
    poll(&s.server, "cli", &device_code).await.assert_token();
    let (device_code, user_code) = started(&s.server).await;
    let r = verify(&s.server, "GET", Some(&user_code), None, Some("deny")).await;
    assert!(body(&r).contains("was not connected"));
    poll(&s.server, "cli", &device_code)
        .await
        .assert_error(400, "access_denied");
}

#[tokio::test]
async fn wrong_codes_are_bounded_per_browser_and_in_all() {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(START));
    let s = setup_on(store, Arc::clone(&clock));
    let (_, user_code) = started(&s.server).await;
    // A browser gets its cookie on its first try.
    let first = verify(&s.server, "POST", Some("BBBB-BBBB"), None, None).await;
    assert_eq!(first.status, StatusCode::BAD_REQUEST);
    let cookie = cookie_of(&first);
    for i in 1..9 {
        let r = verify(&s.server, "POST", Some("BBBB-BBBB"), Some(&cookie), None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "try {i}");
    }
    // The tenth wrong code reaches the limit: from then on, even the right code is refused
    // for this browser, until the window ends.
    let r = verify(&s.server, "POST", Some("BBBB-BBBB"), Some(&cookie), None).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(body(&r).contains("Too many wrong codes"));
    let r = verify(&s.server, "POST", Some(&user_code), Some(&cookie), None).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    // Another browser is not blocked.
    let r = verify(&s.server, "POST", Some(&user_code), None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", body(&r));
    // After the window, this one may try again.
    clock.advance(Duration::from_secs(600));
    let (_, fresh) = started(&s.server).await;
    let r = verify(&s.server, "POST", Some(&fresh), Some(&cookie), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", body(&r));
}

#[tokio::test]
async fn the_global_bound_on_wrong_codes_holds_across_browsers_and_instances() {
    let Some(store) = open(Backend::Redis, "device_guessing").await else {
        return;
    };
    let clock = Arc::new(ManualClock::new(tower_oauth2::clock::Clock::now(
        &tower_oauth2::clock::SystemClock,
    )));
    let limited = |store: Arc<dyn TokenStore>| {
        AuthServer::builder()
            .clients(clients())
            .allow_grant_type(GrantType::DeviceCode)
            .configure(|c| {
                c.issuer = Some(ISS.into());
                c.device_max_failed_entries = 4;
            })
            .authorization_handler(consent)
            .shared_store(store)
            .clock(Arc::clone(&clock))
            .build()
            .unwrap()
    };
    let a = limited(store);
    let b = limited(open_again(Backend::Redis, "device_guessing", None));
    // Four wrong codes from four browsers, on two instances.
    for (i, server) in [&a, &b, &a, &b].into_iter().enumerate() {
        let r = verify(server, "POST", Some("CCCC-CCCC"), None, None).await;
        let expected = if i < 3 {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::TOO_MANY_REQUESTS
        };
        assert_eq!(r.status, expected, "try {i}");
    }
    let (_, user_code) = started(&a).await;
    assert_eq!(
        verify(&b, "POST", Some(&user_code), None, None)
            .await
            .status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn a_store_outage_is_503_at_every_step() {
    let store = tower_oauth2::store::RedisStore::builder("redis://127.0.0.1:1")
        .timeout(Duration::from_millis(300))
        .connect_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let s = setup_on(Arc::new(store), Arc::new(ManualClock::new(START)));
    start(&s.server, "client_id=cli&scope=read")
        .await
        .assert_error(503, "temporarily_unavailable");
    poll(&s.server, "cli", "some-device-code")
        .await
        .assert_error(503, "temporarily_unavailable");
    let r = verify(&s.server, "POST", Some("BBBB-BBBB"), None, None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", body(&r));
    let err = s
        .server
        .complete_device("BBBB-BBBB", Decision::Deny)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "temporarily_unavailable");
}
