//! Dynamic client registration (RFC 7591) and management (RFC 7592) through the public API:
//! the happy paths and every error, the initial access token, the registered client in the
//! code flow and at the token endpoint, the lapse of unused and idle registrations as the
//! clock moves, the rate and live bounds (429 with `Retry-After`), registrations shared by two
//! instances on Redis, Redis Cluster and PostgreSQL, and the endpoint mounted in axum over real
//! HTTP.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};
use tower::ServiceExt;
use tower_oauth2::{
    AuthServer, Client, InMemoryClients, Metadata, Scope,
    clock::ManualClock,
    endpoint::{AuthorizationContext, Decision, Interaction},
    events::Event,
    registration::Registration,
    store::{MemoryStore, TokenStore},
};

use crate::support::{
    Reply,
    backends::{Backend, open, open_again},
    form, http, reply,
};

const ISS: &str = "https://auth.example";
const START: u64 = 1_800_000_000;
const IAT: &str = "initial-access-token-for-tests";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const DAY: u64 = 86_400;

async fn approve(ctx: AuthorizationContext) -> Interaction {
    let _ = ctx.client();
    Interaction::Decided(Decision::approve("alice"))
}

struct Setup {
    server: AuthServer,
    clock: Arc<ManualClock>,
    events: Arc<std::sync::Mutex<Vec<Event>>>,
}

impl Setup {
    fn events(&self) -> Vec<&'static str> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(Event::name)
            .collect()
    }
}

fn setup_on(store: Arc<dyn TokenStore>, registration: Registration) -> Setup {
    let clock = Arc::new(ManualClock::new(START));
    let events = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    let server = AuthServer::builder()
        .clients(
            InMemoryClients::new().with(Client::confidential("app", "app-secret").build().unwrap()),
        )
        .configure(|c| c.issuer = Some(ISS.into()))
        .authorization_handler(approve)
        .registration(registration)
        .shared_store(store)
        .clock(Arc::clone(&clock))
        .on_event(move |e: &Event| sink.lock().unwrap().push(e.clone()))
        .build()
        .unwrap();
    Setup {
        server,
        clock,
        events,
    }
}

fn setup(registration: Registration) -> (Setup, MemoryStore) {
    let memory = MemoryStore::new();
    (setup_on(Arc::new(memory.clone()), registration), memory)
}

fn json_request(method: &str, uri: &str, token: Option<&str>, body: &str) -> Request<Full<Bytes>> {
    let mut b = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json");
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(Full::new(Bytes::from(body.to_owned()))).unwrap()
}

async fn call(server: &AuthServer, req: Request<Full<Bytes>>) -> Reply {
    reply(server.registration_endpoint().oneshot(req).await.unwrap()).await
}

async fn register(server: &AuthServer, token: Option<&str>, body: &Value) -> Reply {
    call(
        server,
        json_request("POST", "/oauth/register", token, &body.to_string()),
    )
    .await
}

fn public_cli() -> Value {
    json!({
        "redirect_uris": ["http://127.0.0.1/callback"],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "client_name": "My CLI",
        "scope": "read write",
    })
}

fn service() -> Value {
    json!({
        "token_endpoint_auth_method": "client_secret_basic",
        "grant_types": ["client_credentials"],
        "client_name": "A service",
    })
}

#[track_caller]
fn assert_json_headers(r: &Reply) {
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("pragma"), Some("no-cache"));
}

/// The code flow with PKCE for `client_id`, through the authorization and token endpoints.
async fn code_flow(server: &AuthServer, client_id: &str) -> Reply {
    let req = Request::get(format!(
        "/oauth/authorize?response_type=code&client_id={client_id}\
         &redirect_uri=http%3A%2F%2F127.0.0.1%3A8123%2Fcallback&state=s1&scope=read\
         &code_challenge={CHALLENGE}&code_challenge_method=S256"
    ))
    .body(Full::new(Bytes::new()))
    .unwrap();
    let r = reply(server.authorization_endpoint().oneshot(req).await.unwrap()).await;
    assert_eq!(r.status, StatusCode::FOUND, "{:?}", r.body);
    let location = r.header("location").unwrap().to_owned();
    assert!(
        location.starts_with("http://127.0.0.1:8123/callback?"),
        "{location}"
    );
    let code = location
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("code="))
        .unwrap()
        .to_owned();
    token(
        server,
        None,
        &format!(
            "grant_type=authorization_code&client_id={client_id}&code={code}\
             &redirect_uri=http%3A%2F%2F127.0.0.1%3A8123%2Fcallback&code_verifier={VERIFIER}"
        ),
    )
    .await
}

async fn token(server: &AuthServer, auth: Option<(&str, &str)>, body: &str) -> Reply {
    reply(
        server
            .token_endpoint()
            .oneshot(form("/oauth/token", auth, body))
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn a_public_client_registers_and_runs_the_code_flow_and_a_refresh() {
    let (s, _) = setup(Registration::new());
    let r = register(&s.server, None, &public_cli()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_json_headers(&r);
    let v = r.json();
    let id = v["client_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("dcr_") && id.len() == 26, "{id}");
    assert_eq!(v["client_id_issued_at"], START);
    assert!(
        v.get("client_secret").is_none(),
        "a public client has no secret"
    );
    assert!(v.get("client_secret_expires_at").is_none());
    let rat = v["registration_access_token"].as_str().unwrap();
    assert_eq!(rat.len(), 46, "256 random bits");
    assert_eq!(
        v["registration_client_uri"],
        format!("{ISS}/oauth/register/{id}")
    );
    for (field, value) in [
        ("redirect_uris", json!(["http://127.0.0.1/callback"])),
        ("token_endpoint_auth_method", json!("none")),
        (
            "grant_types",
            json!(["authorization_code", "refresh_token"]),
        ),
        ("response_types", json!(["code"])),
        ("application_type", json!("web")),
        ("client_name", json!("My CLI")),
        ("scope", json!("read write")),
    ] {
        assert_eq!(v[field], value, "{field}");
    }
    assert_eq!(s.events(), ["client_registered"]);

    // The registered client runs the code flow (any loopback port) and refreshes.
    let t = code_flow(&s.server, &id).await.assert_token();
    assert_eq!(t["scope"], "read");
    let refresh = t["refresh_token"].as_str().unwrap();
    token(
        &s.server,
        None,
        &format!("grant_type=refresh_token&client_id={id}&refresh_token={refresh}"),
    )
    .await
    .assert_token();
    // A scope beyond its registration is refused.
    token(
        &s.server,
        None,
        &format!("grant_type=refresh_token&client_id={id}&refresh_token={refresh}&scope=admin"),
    )
    .await
    .assert_error(400, "invalid_grant");

    // The metadata names the endpoint.
    let md = s.server.metadata_endpoint(Metadata::new(ISS));
    let doc = reply(
        md.oneshot(Request::get("/").body(Full::new(Bytes::new())).unwrap())
            .await
            .unwrap(),
    )
    .await
    .json();
    assert_eq!(
        doc["registration_endpoint"],
        format!("{ISS}/oauth/register")
    );
}

#[tokio::test]
async fn the_initial_access_token_opens_confidential_registration() {
    let (s, _) = setup(Registration::new().initial_access_token(IAT));
    // Open registration is for public clients.
    let r = register(&s.server, None, &service()).await;
    r.assert_error(400, "invalid_client_metadata");
    assert!(
        r.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("initial access token")
    );
    // A wrong initial access token: 401 with a Bearer challenge.
    let r = register(&s.server, Some("not-the-token"), &service()).await;
    r.assert_error(401, "invalid_token");
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .starts_with("Bearer realm=\"tower-oauth2\", error=\"invalid_token\"")
    );
    // The right one.
    let r = register(&s.server, Some(IAT), &service()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let v = r.json();
    let id = v["client_id"].as_str().unwrap();
    let secret = v["client_secret"].as_str().unwrap();
    assert_eq!(secret.len(), 46);
    assert_eq!(v["client_secret_expires_at"], 0);
    assert!(v.get("redirect_uris").is_none());
    assert_eq!(v["response_types"], json!([]));
    // The secret works, once shown, and a wrong one does not.
    let t = token(
        &s.server,
        Some((id, secret)),
        "grant_type=client_credentials",
    )
    .await
    .assert_token();
    assert!(t.get("refresh_token").is_none());
    token(
        &s.server,
        Some((id, "wrong")),
        "grant_type=client_credentials",
    )
    .await
    .assert_error(401, "invalid_client");
    // A public client cannot run client_credentials; the registered grant types bind.
    let r = register(&s.server, None, &public_cli()).await;
    let public = r.json()["client_id"].as_str().unwrap().to_owned();
    token(
        &s.server,
        None,
        &format!("grant_type=client_credentials&client_id={public}"),
    )
    .await
    .assert_error(400, "unauthorized_client");
    let names = s.events();
    assert_eq!(
        names,
        [
            "client_registered",
            "token_issued",
            "client_authentication_failed",
            "client_registered"
        ]
    );
    let events = s.events.lock().unwrap().clone();
    assert!(matches!(
        &events[0],
        Event::ClientRegistered {
            confidential: true,
            with_initial_access_token: true,
            ..
        }
    ));
    assert!(
        !format!("{events:?}").contains(secret),
        "no secret in events"
    );
}

#[tokio::test]
async fn registration_can_require_the_initial_access_token() {
    let (s, _) = setup(
        Registration::new()
            .initial_access_token("first")
            .initial_access_token(IAT)
            .require_initial_access_token(true),
    );
    let r = register(&s.server, None, &public_cli()).await;
    r.assert_error(401, "invalid_token");
    assert!(r.header("www-authenticate").is_some());
    let r = register(&s.server, Some(IAT), &public_cli()).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = register(&s.server, Some("first"), &public_cli()).await;
    assert_eq!(r.status, StatusCode::CREATED);
}

#[tokio::test]
async fn every_metadata_error_is_a_clear_rfc_7591_error_and_writes_nothing() {
    let (s, memory) = setup(
        Registration::new()
            .initial_access_token(IAT)
            .allowed_scope(Scope::parse("read write").unwrap()),
    );
    let redirect =
        |uris: Value| json!({"redirect_uris": uris, "token_endpoint_auth_method": "none"});
    let with = |extra: Value| {
        let mut v = public_cli();
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    };
    let meta = "invalid_client_metadata";
    let uri = "invalid_redirect_uri";
    let cases: Vec<(&str, Option<&str>, Value, &str, &str)> = vec![
        (
            "fragment",
            None,
            redirect(json!(["https://app.example/cb#x"])),
            uri,
            "fragment",
        ),
        ("relative", None, redirect(json!(["/cb"])), uri, "absolute"),
        (
            "http elsewhere",
            None,
            redirect(json!(["http://app.example/cb"])),
            uri,
            "loopback",
        ),
        (
            "private use, web",
            Some(IAT),
            redirect(json!(["com.example.app:/cb"])),
            uri,
            "native",
        ),
        (
            "private use, open",
            None,
            with(json!({"application_type": "native", "redirect_uris": ["com.example.app:/cb"]})),
            uri,
            "initial access token",
        ),
        (
            "no dot",
            Some(IAT),
            with(json!({"application_type": "native", "redirect_uris": ["myapp:/cb"]})),
            uri,
            "private-use",
        ),
        (
            "javascript",
            Some(IAT),
            redirect(json!(["javascript:alert(1)"])),
            uri,
            "absolute",
        ),
        (
            "none for the code grant",
            None,
            json!({"token_endpoint_auth_method": "none"}),
            uri,
            "redirect_uris is required",
        ),
        (
            "17 redirect URIs",
            None,
            redirect(json!(
                (0..17)
                    .map(|i| format!("https://a.example/{i}"))
                    .collect::<Vec<_>>()
            )),
            uri,
            "at most 16",
        ),
        (
            "redirect_uris a string",
            None,
            redirect(json!("https://a.example/cb")),
            meta,
            "array of strings",
        ),
        (
            "private_key_jwt",
            Some(IAT),
            with(json!({"token_endpoint_auth_method": "private_key_jwt"})),
            meta,
            "not supported",
        ),
        (
            "password",
            Some(IAT),
            with(json!({"grant_types": ["password"]})),
            meta,
            "password",
        ),
        (
            "implicit",
            None,
            with(json!({"grant_types": ["implicit"]})),
            meta,
            "implicit",
        ),
        (
            "token response",
            None,
            with(json!({"response_types": ["token"]})),
            meta,
            "only code",
        ),
        (
            "inconsistent",
            Some(IAT),
            json!({"grant_types": ["client_credentials"], "response_types": ["code"], "token_endpoint_auth_method": "client_secret_post"}),
            meta,
            "disagree",
        ),
        (
            "public client_credentials",
            None,
            with(json!({"grant_types": ["client_credentials"], "response_types": []})),
            meta,
            "confidential",
        ),
        (
            "refresh alone",
            None,
            with(json!({"grant_types": ["refresh_token"], "response_types": []})),
            meta,
            "alone",
        ),
        (
            "software statement",
            None,
            with(json!({"software_statement": "eyJ.x.y"})),
            meta,
            "software statements",
        ),
        (
            "scope syntax",
            None,
            with(json!({"scope": "read \"write\""})),
            meta,
            "scope",
        ),
        (
            "scope beyond",
            None,
            with(json!({"scope": "read admin"})),
            meta,
            "read write",
        ),
        (
            "client_uri",
            None,
            with(json!({"client_uri": "not a url"})),
            meta,
            "client_uri",
        ),
        (
            "logo_uri javascript",
            None,
            with(json!({"logo_uri": "javascript:alert(1)"})),
            meta,
            "logo_uri",
        ),
        (
            "client_name control",
            None,
            with(json!({"client_name": "a\u{7}b"})),
            meta,
            "client_name",
        ),
        (
            "client_name type",
            None,
            with(json!({"client_name": 7})),
            meta,
            "client_name must be a string",
        ),
        (
            "application_type",
            None,
            with(json!({"application_type": "tv"})),
            meta,
            "web or native",
        ),
        (
            "contacts",
            None,
            with(json!({"contacts": ["a@b.example", 3]})),
            meta,
            "contacts",
        ),
    ];
    for (name, token, body, error, says) in cases {
        let r = register(&s.server, token, &body).await;
        r.assert_error(400, error);
        let description = r.json()["error_description"].as_str().unwrap().to_owned();
        assert!(description.contains(says), "{name}: {description}");
    }
    // Not JSON, not an object, not declared JSON.
    for (body, content_type) in [
        ("{", "application/json"),
        ("[1,2]", "application/json"),
        ("\"x\"", "application/json"),
        (
            r#"{"token_endpoint_auth_method":"none"}"#,
            "application/x-www-form-urlencoded",
        ),
        (r#"{"token_endpoint_auth_method":"none"}"#, "text/plain"),
    ] {
        let req = Request::post("/oauth/register")
            .header("content-type", content_type)
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        call(&s.server, req).await.assert_error(400, meta);
    }
    // Too large: refused unread.
    let big = format!(r#"{{"client_name":"{}"}}"#, "x".repeat(20_000));
    let r = call(
        &s.server,
        json_request("POST", "/oauth/register", None, &big),
    )
    .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    // Wrong methods and paths.
    let r = call(&s.server, json_request("GET", "/oauth/register", None, "")).await;
    r.assert_error(405, "invalid_request");
    assert_eq!(r.header("allow"), Some("POST"));
    let r = call(
        &s.server,
        json_request("POST", "/oauth/register/dcr_x", None, "{}"),
    )
    .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.header("allow"), Some("GET, PUT, DELETE"));
    call(
        &s.server,
        json_request("GET", "/oauth/register/a/b", None, ""),
    )
    .await
    .assert_error(400, "invalid_request");
    // Nothing was written, nothing registered.
    assert_eq!(memory.counts().records, 0);
    assert!(s.events().is_empty(), "{:?}", s.events());
    // Unknown metadata is ignored and not echoed; a native app may have a private-use
    // scheme with an initial access token.
    let r = register(
        &s.server,
        Some(IAT),
        &with(json!({
            "application_type": "native",
            "redirect_uris": ["com.example.app:/oauth/cb", "http://[::1]/cb"],
            "frobnicate": true,
            "jwks_uri": "https://internal.example/jwks",
            "logo_uri": "https://app.example/logo.png",
        })),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let v = r.json();
    assert!(v.get("frobnicate").is_none() && v.get("jwks_uri").is_none());
    assert_eq!(v["application_type"], "native");
    assert_eq!(v["logo_uri"], "https://app.example/logo.png");
    // No scope named: the allowed scope.
    let mut no_scope = public_cli();
    no_scope.as_object_mut().unwrap().remove("scope");
    let r = register(&s.server, None, &no_scope).await;
    assert_eq!(r.json()["scope"], "read write");
}

#[tokio::test]
async fn a_registration_is_read_updated_and_deleted_with_its_registration_access_token() {
    let (s, _) = setup(Registration::new().initial_access_token(IAT));
    let v = register(&s.server, None, &public_cli()).await.json();
    let id = v["client_id"].as_str().unwrap().to_owned();
    let rat = v["registration_access_token"].as_str().unwrap().to_owned();
    let other = register(&s.server, None, &public_cli()).await.json();
    let other_rat = other["registration_access_token"].as_str().unwrap();
    let uri = format!("/oauth/register/{id}");

    // Read: the metadata as registered, without the secrets.
    let r = call(&s.server, json_request("GET", &uri, Some(&rat), "")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_json_headers(&r);
    let read = r.json();
    assert_eq!(read["client_id"], id.as_str());
    assert_eq!(read["client_name"], "My CLI");
    assert_eq!(read["registration_client_uri"], format!("{ISS}{uri}"));
    assert!(read.get("registration_access_token").is_none());
    // Missing, wrong, another client's token, an unknown client: 401 with a challenge.
    for (path, token) in [
        (uri.as_str(), None),
        (uri.as_str(), Some("wrong")),
        (uri.as_str(), Some(other_rat)),
        (
            "/oauth/register/dcr_unknownunknownunknow",
            Some(rat.as_str()),
        ),
        ("/oauth/register/app", Some(rat.as_str())),
    ] {
        for method in ["GET", "PUT", "DELETE"] {
            let r = call(&s.server, json_request(method, path, token, "{}")).await;
            r.assert_error(401, "invalid_token");
            assert!(
                r.header("www-authenticate")
                    .unwrap()
                    .contains("invalid_token")
            );
        }
    }

    // Update: the body names this client; the registration becomes what it says.
    let update = json!({
        "client_id": id,
        "redirect_uris": ["http://localhost/cb2"],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code"],
        "client_name": "Renamed",
        "registration_access_token": "ignored",
    });
    let r = call(
        &s.server,
        json_request("PUT", &uri, Some(&rat), &update.to_string()),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let updated = r.json();
    assert_eq!(updated["client_name"], "Renamed");
    assert_eq!(updated["redirect_uris"], json!(["http://localhost/cb2"]));
    assert!(updated.get("scope").is_none());
    assert_eq!(updated["client_id_issued_at"], START);
    let again = call(&s.server, json_request("GET", &uri, Some(&rat), ""))
        .await
        .json();
    assert_eq!(again, updated);
    // Update errors: another client_id, none, a secret it does not have, becoming
    // confidential, bad metadata; none changes anything.
    for (body, error) in [
        (
            json!({"client_id": "dcr_other", "token_endpoint_auth_method": "none", "redirect_uris": ["http://localhost/cb"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"token_endpoint_auth_method": "none", "redirect_uris": ["http://localhost/cb"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"client_id": id, "client_secret": "x", "token_endpoint_auth_method": "none", "redirect_uris": ["http://localhost/cb"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"client_id": id, "token_endpoint_auth_method": "client_secret_basic", "redirect_uris": ["http://localhost/cb"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"client_id": id, "token_endpoint_auth_method": "none", "redirect_uris": ["http://evil.example/cb"]}),
            "invalid_redirect_uri",
        ),
    ] {
        call(
            &s.server,
            json_request("PUT", &uri, Some(&rat), &body.to_string()),
        )
        .await
        .assert_error(400, error);
    }
    let still = call(&s.server, json_request("GET", &uri, Some(&rat), ""))
        .await
        .json();
    assert_eq!(still, updated);

    // The client holds a grant; deleting the registration revokes it at once.
    let code_client = register(&s.server, None, &public_cli()).await.json();
    let code_id = code_client["client_id"].as_str().unwrap();
    let code_rat = code_client["registration_access_token"].as_str().unwrap();
    let t = code_flow(&s.server, code_id).await.assert_token();
    let refresh = t["refresh_token"].as_str().unwrap();
    let access = t["access_token"].as_str().unwrap();
    assert!(
        s.server
            .validate_access_token(access)
            .await
            .unwrap()
            .is_some()
    );
    let r = call(
        &s.server,
        json_request(
            "DELETE",
            &format!("/oauth/register/{code_id}"),
            Some(code_rat),
            "",
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(r.body.is_empty());
    assert!(
        s.server
            .validate_access_token(access)
            .await
            .unwrap()
            .is_none()
    );
    token(
        &s.server,
        None,
        &format!("grant_type=refresh_token&client_id={code_id}&refresh_token={refresh}"),
    )
    .await
    .assert_error(401, "invalid_client");
    call(
        &s.server,
        json_request(
            "GET",
            &format!("/oauth/register/{code_id}"),
            Some(code_rat),
            "",
        ),
    )
    .await
    .assert_error(401, "invalid_token");
    let events = s.events();
    assert!(events.contains(&"client_updated") && events.contains(&"client_deleted"));
}

#[tokio::test]
async fn unused_and_idle_registrations_lapse_and_use_keeps_them() {
    let (s, _) = setup(Registration::new().initial_access_token(IAT));
    let used = register(&s.server, Some(IAT), &service()).await.json();
    let (id, secret) = (
        used["client_id"].as_str().unwrap().to_owned(),
        used["client_secret"].as_str().unwrap().to_owned(),
    );
    let unused = register(&s.server, Some(IAT), &service()).await.json();
    let unused_id = unused["client_id"].as_str().unwrap().to_owned();
    let unused_rat = unused["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let cc = |id: String, secret: String| {
        let server = s.server.clone();
        async move {
            token(
                &server,
                Some((&id, &secret)),
                "grant_type=client_credentials",
            )
            .await
        }
    };
    let until = |id: String| {
        let server = s.server.clone();
        async move {
            server
                .client(&id)
                .await
                .unwrap()
                .map(|c| c.registered_until().unwrap())
        }
    };
    assert_eq!(until(id.clone()).await, Some(START + DAY));
    // Used within its first day: it now lives 90 days from that use.
    s.clock.advance(Duration::from_secs(DAY - 60));
    cc(id.clone(), secret.clone()).await.assert_token();
    assert_eq!(until(id.clone()).await, Some(START + DAY - 60 + 90 * DAY));
    // The unused one lapsed after its day: gone everywhere.
    s.clock.advance(Duration::from_secs(61));
    assert_eq!(until(unused_id.clone()).await, None);
    call(
        &s.server,
        json_request(
            "GET",
            &format!("/oauth/register/{unused_id}"),
            Some(&unused_rat),
            "",
        ),
    )
    .await
    .assert_error(401, "invalid_token");
    // Used again the same day: no write (the registration moves at most once a day).
    cc(id.clone(), secret.clone()).await.assert_token();
    assert_eq!(until(id.clone()).await, Some(START + DAY - 60 + 90 * DAY));
    // Used 89 days later: 90 days from then.
    s.clock.advance(Duration::from_secs(89 * DAY));
    cc(id.clone(), secret.clone()).await.assert_token();
    let now = START + DAY + 1 + 89 * DAY;
    assert_eq!(until(id.clone()).await, Some(now + 90 * DAY));
    // Then idle for 90 days: gone.
    s.clock.advance(Duration::from_secs(90 * DAY));
    cc(id.clone(), secret.clone())
        .await
        .assert_error(401, "invalid_client");
}

#[tokio::test]
async fn the_registration_rate_is_bounded_with_retry_after() {
    let (s, _) = setup(Registration::new().rate(3, Duration::from_secs(60)));
    for _ in 0..3 {
        assert_eq!(
            register(&s.server, None, &public_cli()).await.status,
            StatusCode::CREATED
        );
    }
    let r = register(&s.server, None, &public_cli()).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_json_headers(&r);
    assert_eq!(r.json()["error"], "temporarily_unavailable");
    // The window started at a multiple of 60 s.
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert_eq!(retry, 60 - START % 60);
    assert!(
        s.events
            .lock()
            .unwrap()
            .contains(&Event::RegistrationLimited { bound: "rate" })
    );
    s.clock.advance(Duration::from_secs(retry));
    assert_eq!(
        register(&s.server, None, &public_cli()).await.status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn live_registrations_are_bounded_and_a_deleted_or_lapsed_one_frees_its_place() {
    let (s, _) = setup(Registration::new().max_clients(3));
    let mut rats = Vec::new();
    for _ in 0..3 {
        let v = register(&s.server, None, &public_cli()).await.json();
        rats.push((
            v["client_id"].as_str().unwrap().to_owned(),
            v["registration_access_token"].as_str().unwrap().to_owned(),
        ));
    }
    let r = register(&s.server, None, &public_cli()).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.header("retry-after").is_some());
    assert!(
        r.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("as many registered clients")
    );
    assert!(
        s.events
            .lock()
            .unwrap()
            .contains(&Event::RegistrationLimited { bound: "live" })
    );
    // Deleting one frees its place.
    let (id, rat) = &rats[1];
    let r = call(
        &s.server,
        json_request("DELETE", &format!("/oauth/register/{id}"), Some(rat), ""),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        register(&s.server, None, &public_cli()).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        register(&s.server, None, &public_cli()).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Once the unused registrations lapse, there is room for three again.
    s.clock.advance(Duration::from_secs(DAY));
    for _ in 0..3 {
        assert_eq!(
            register(&s.server, None, &public_cli()).await.status,
            StatusCode::CREATED
        );
    }
    assert_eq!(
        register(&s.server, None, &public_cli()).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_registrations_never_exceed_the_bound() {
    let (s, _) = setup(
        Registration::new()
            .max_clients(10)
            .rate(1000, Duration::from_secs(60)),
    );
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let server = s.server.clone();
            tokio::spawn(async move { register(&server, None, &public_cli()).await.status })
        })
        .collect();
    let mut created = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::CREATED => created += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("{other}"),
        }
    }
    assert_eq!(created, 10);
}

/// Two instances on one shared store: a client registered on one works on the other at once,
/// and after a "restart" (a new connection); deleted on the other, refused on the first.
async fn shared_by_two_instances(backend: Backend, test: &str) {
    let Some(store) = open(backend, test).await else {
        return;
    };
    let a = setup_on(store, Registration::new().initial_access_token(IAT));
    let b = setup_on(
        open_again(backend, test, None),
        Registration::new().initial_access_token(IAT),
    );
    let v = register(&a.server, Some(IAT), &service()).await.json();
    let (id, secret) = (
        v["client_id"].as_str().unwrap(),
        v["client_secret"].as_str().unwrap(),
    );
    let rat = v["registration_access_token"].as_str().unwrap();
    token(
        &b.server,
        Some((id, secret)),
        "grant_type=client_credentials",
    )
    .await
    .assert_token();
    let restarted = setup_on(open_again(backend, test, None), Registration::new());
    let read = call(
        &restarted.server,
        json_request("GET", &format!("/oauth/register/{id}"), Some(rat), ""),
    )
    .await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.json()["client_name"], "A service");
    let r = call(
        &b.server,
        json_request("DELETE", &format!("/oauth/register/{id}"), Some(rat), ""),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    token(
        &a.server,
        Some((id, secret)),
        "grant_type=client_credentials",
    )
    .await
    .assert_error(401, "invalid_client");
}

#[tokio::test]
async fn registrations_are_shared_on_redis() {
    shared_by_two_instances(Backend::Redis, "registration_shared").await;
}

#[tokio::test]
async fn registrations_are_shared_on_redis_cluster() {
    shared_by_two_instances(Backend::RedisCluster, "registration_shared").await;
}

#[tokio::test]
async fn registrations_are_shared_on_postgres() {
    shared_by_two_instances(Backend::Postgres, "registration_shared").await;
}

#[tokio::test]
async fn a_store_outage_is_503_and_registers_nothing() {
    let store = tower_oauth2::store::RedisStore::builder("redis://127.0.0.1:1")
        .timeout(Duration::from_millis(300))
        .connect_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let s = setup_on(Arc::new(store), Registration::new());
    register(&s.server, None, &public_cli())
        .await
        .assert_error(503, "temporarily_unavailable");
    call(
        &s.server,
        json_request("GET", "/oauth/register/dcr_abc", Some("t"), ""),
    )
    .await
    .assert_error(503, "temporarily_unavailable");
    assert!(s.events().is_empty());
}

#[tokio::test]
async fn mounted_in_axum_over_real_http() {
    let (s, _) = setup(Registration::new());
    let app = axum::Router::new()
        .route_service("/oauth/register", s.server.registration_endpoint())
        .route_service(
            "/oauth/register/{client_id}",
            s.server.registration_endpoint(),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let base = format!("http://{addr}/oauth/register");
    let r = http(json_request("POST", &base, None, &public_cli().to_string())).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let v = r.json();
    let id = v["client_id"].as_str().unwrap();
    let rat = v["registration_access_token"].as_str().unwrap();
    let r = http(json_request("GET", &format!("{base}/{id}"), Some(rat), "")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["client_id"], id);
    let r = http(json_request(
        "DELETE",
        &format!("{base}/{id}"),
        Some(rat),
        "",
    ))
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = http(json_request("GET", &format!("{base}/{id}"), Some(rat), "")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[test]
fn a_server_without_registration_answers_404_and_bad_settings_are_refused() {
    let server = AuthServer::builder()
        .clients(InMemoryClients::new())
        .build()
        .unwrap();
    let r = futures_lite_block(call(
        &server,
        json_request("POST", "/oauth/register", None, "{}"),
    ));
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let no_issuer = AuthServer::builder()
        .registration(Registration::new())
        .build();
    assert!(no_issuer.unwrap_err().to_string().contains("issuer"));
    for bad in [
        Registration::new().path("oauth/register"),
        Registration::new().path("/oauth/register/"),
        Registration::new().require_initial_access_token(true),
        Registration::new().max_clients(0),
        Registration::new().idle_lifetime(Duration::from_secs(60)),
    ] {
        let r = AuthServer::builder()
            .configure(|c| c.issuer = Some(ISS.into()))
            .registration(bad)
            .build();
        assert!(r.is_err());
    }
}

fn futures_lite_block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// The app's own client database as the registry: registrations go there, not into the token
/// store, and lookups find them there.
#[tokio::test]
async fn registrations_can_live_in_the_apps_own_registry() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tower_oauth2::{
        client::{ClientRegistry, RegisteredClient, StoredClients},
        clock::UnixTime,
        error::StoreError,
    };

    /// Keeps registrations in a database of its own (here another memory store), counting.
    struct AppRegistry {
        inner: StoredClients,
        calls: Arc<AtomicUsize>,
    }

    #[async_trait::async_trait]
    impl ClientRegistry for AppRegistry {
        async fn insert(&self, c: &RegisteredClient, now: UnixTime) -> Result<bool, StoreError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.inner.insert(c, now).await
        }
        async fn replace(&self, c: &RegisteredClient, now: UnixTime) -> Result<bool, StoreError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.inner.replace(c, now).await
        }
        async fn get(
            &self,
            id: &str,
            now: UnixTime,
        ) -> Result<Option<RegisteredClient>, StoreError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.inner.get(id, now).await
        }
        async fn extend(
            &self,
            id: &str,
            until: UnixTime,
            now: UnixTime,
        ) -> Result<bool, StoreError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.inner.extend(id, until, now).await
        }
        async fn remove(&self, id: &str) -> Result<bool, StoreError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.inner.remove(id).await
        }
    }

    let database = MemoryStore::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let registry = AppRegistry {
        inner: StoredClients::new(Arc::new(database.clone())),
        calls: Arc::clone(&calls),
    };
    let (s, tokens) = setup(
        Registration::new()
            .initial_access_token(IAT)
            .registry(registry),
    );
    let v = register(&s.server, Some(IAT), &service()).await.json();
    let (id, secret) = (
        v["client_id"].as_str().unwrap(),
        v["client_secret"].as_str().unwrap(),
    );
    token(
        &s.server,
        Some((id, secret)),
        "grant_type=client_credentials",
    )
    .await
    .assert_token();
    assert!(
        calls.load(Ordering::SeqCst) >= 2,
        "inserted and looked up there"
    );
    // The app's database holds the client; the token store holds only the bounds' counters
    // and slot, and the token.
    let mine = StoredClients::new(Arc::new(database));
    assert!(mine.get(id, START).await.unwrap().is_some());
    let in_token_store = StoredClients::new(Arc::new(tokens));
    assert!(in_token_store.get(id, START).await.unwrap().is_none());
}

#[tokio::test]
async fn lapsed_registrations_are_reported_expired_once_by_a_sweep_or_a_new_registration() {
    let (s, _) = setup(Registration::new().initial_access_token(IAT).max_clients(4));
    let mut ids = Vec::new();
    let mut used = None;
    for i in 0..3 {
        let v = register(&s.server, Some(IAT), &service()).await.json();
        let id = v["client_id"].as_str().unwrap().to_owned();
        if i == 0 {
            used = Some((id.clone(), v["client_secret"].as_str().unwrap().to_owned()));
        }
        ids.push(id);
    }
    let (used_id, secret) = used.unwrap();
    token(
        &s.server,
        Some((&used_id, &secret)),
        "grant_type=client_credentials",
    )
    .await
    .assert_token();
    let expired = |s: &Setup| -> Vec<String> {
        s.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::ClientExpired { client_id } => Some(client_id.to_string()),
                _ => None,
            })
            .collect()
    };
    assert_eq!(
        s.server.sweep_registrations().await.unwrap(),
        0,
        "nothing lapsed yet"
    );
    // A day on: the two unused ones lapsed; the used one lives on.
    s.clock.advance(Duration::from_secs(DAY));
    assert_eq!(s.server.sweep_registrations().await.unwrap(), 2);
    let mut reported = expired(&s);
    reported.sort();
    let mut unused = ids[1..].to_vec();
    unused.sort();
    assert_eq!(reported, unused);
    assert_eq!(
        s.server.sweep_registrations().await.unwrap(),
        0,
        "reported once"
    );
    // Idle for 90 days: the used one too — reported by the registration that takes its place
    // (all four places are probed from where the sequence points, so fill them).
    s.clock.advance(Duration::from_secs(90 * DAY));
    for _ in 0..4 {
        assert_eq!(
            register(&s.server, None, &public_cli()).await.status,
            StatusCode::CREATED
        );
    }
    let reported = expired(&s);
    assert_eq!(reported.len(), 3, "{reported:?}");
    assert_eq!(reported[2], used_id);
    assert_eq!(s.server.sweep_registrations().await.unwrap(), 0);
}

#[tokio::test]
async fn an_update_is_judged_as_its_registration_was() {
    let (s, _) = setup(Registration::new().initial_access_token(IAT));
    // Registered with the initial access token: a confidential client may update itself.
    let v = register(&s.server, Some(IAT), &service()).await.json();
    let (id, rat, secret) = (
        v["client_id"].as_str().unwrap(),
        v["registration_access_token"].as_str().unwrap(),
        v["client_secret"].as_str().unwrap(),
    );
    let update = json!({
        "client_id": id,
        "client_secret": secret,
        "token_endpoint_auth_method": "client_secret_post",
        "grant_types": ["client_credentials"],
        "response_types": [],
        "client_name": "Renamed service",
    });
    let uri = format!("/oauth/register/{id}");
    let r = call(
        &s.server,
        json_request("PUT", &uri, Some(rat), &update.to_string()),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.json()["client_name"], "Renamed service");
    // The secret is unchanged and still works.
    token(
        &s.server,
        Some((id, secret)),
        "grant_type=client_credentials",
    )
    .await
    .assert_token();
    // Registered openly: a public client cannot take a private-use redirect URI by updating,
    // which open registration would not have given it.
    let v = register(&s.server, None, &public_cli()).await.json();
    let (id, rat) = (
        v["client_id"].as_str().unwrap(),
        v["registration_access_token"].as_str().unwrap(),
    );
    let update = json!({
        "client_id": id,
        "application_type": "native",
        "token_endpoint_auth_method": "none",
        "redirect_uris": ["com.example.app:/cb"],
    });
    call(
        &s.server,
        json_request(
            "PUT",
            &format!("/oauth/register/{id}"),
            Some(rat),
            &update.to_string(),
        ),
    )
    .await
    .assert_error(400, "invalid_redirect_uri");
}
