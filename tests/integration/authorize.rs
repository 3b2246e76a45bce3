//! The authorization endpoint (RFC 6749 §3.1, §4.1.1–4.1.2; RFC 9207; RFC 8252 §7.3) through
//! the tower Service: each validation step with its exact answer (page or redirect), the
//! suspended request's single use, lapse and browser binding, the code's exchange, and the
//! three stores.

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use tower::ServiceExt;
use tower_oauth2::{
    AuthServer, Client, GrantType, InMemoryClients, Metadata,
    clock::{Clock, ManualClock, SystemClock},
    endpoint::{AGENT_COOKIE, AuthorizationContext, Decision, Interaction, SECURE_AGENT_COOKIE},
    store::{MemoryStore, TokenStore},
};

use crate::support::{Reply, backends, encode, form, location, param, reply};

const ISS: &str = "https://auth.example";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// The app's decision, chosen per request by a test header: `approve:<user>`, `deny`, or (by
/// default) a page carrying the handle.
async fn decide(ctx: AuthorizationContext) -> Interaction {
    let wanted = ctx
        .headers()
        .get("x-test")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("page")
        .to_owned();
    match wanted.split_once(':') {
        Some(("approve", user)) => Interaction::Decided(Decision::approve(user)),
        _ if wanted == "deny" => Interaction::Decided(Decision::Deny),
        _ => {
            let body = format!(
                "<form method=post><input name=handle value=\"{}\"> {} asks for {}</form>",
                ctx.handle(),
                ctx.request().client_id(),
                ctx.request().scope()
            );
            Interaction::Respond(http::Response::new(Full::new(Bytes::from(body))))
        }
    }
}

struct Auth {
    server: AuthServer,
    clock: Arc<ManualClock>,
}

fn server_on(store: Arc<dyn TokenStore>, start: u64) -> Auth {
    server_with(store, start, |_| {})
}

fn server_with(
    store: Arc<dyn TokenStore>,
    start: u64,
    configure: impl FnOnce(&mut tower_oauth2::Config),
) -> Auth {
    let clock = Arc::new(ManualClock::new(start));
    let clients = InMemoryClients::new()
        .with(
            Client::confidential("app", "app-secret")
                .grant_types([GrantType::AuthorizationCode, GrantType::RefreshToken])
                .scope("read write")
                .redirect_uri("https://app.example/cb?tenant=7")
                .build()
                .unwrap(),
        )
        .with(
            Client::public("spa")
                .grant_types([GrantType::AuthorizationCode, GrantType::RefreshToken])
                .scope("read write")
                .redirect_uri("http://127.0.0.1:3000/callback")
                .redirect_uri("https://spa.example/cb")
                .build()
                .unwrap(),
        )
        .with(
            Client::confidential("par-only", "par-secret")
                .grant_types([GrantType::AuthorizationCode])
                .redirect_uri("https://par.example/cb")
                .require_pushed_authorization_requests(true)
                .build()
                .unwrap(),
        )
        .with(
            Client::confidential("cc-only", "cc-secret")
                .grant_types([GrantType::ClientCredentials])
                .redirect_uri("https://cc.example/cb")
                .build()
                .unwrap(),
        );
    let server = AuthServer::builder()
        .clients(clients)
        .configure(|c| {
            c.issuer = Some(ISS.into());
            configure(c);
        })
        .authorization_handler(decide)
        .shared_store(store)
        .clock(Arc::clone(&clock))
        .build()
        .unwrap();
    Auth { server, clock }
}

fn auth() -> Auth {
    server_on(Arc::new(MemoryStore::new()), 1_700_000_000)
}

/// A query string for the `spa` client with PKCE, plus `extra`.
fn spa(extra: &str) -> String {
    format!(
        "response_type=code&client_id=spa&redirect_uri=https%3A%2F%2Fspa.example%2Fcb&state=xyz&code_challenge={CHALLENGE}&code_challenge_method=S256{extra}"
    )
}

impl Auth {
    async fn get(&self, query: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req = Request::get(format!("/oauth/authorize?{query}"));
        for (n, v) in headers {
            req = req.header(*n, *v);
        }
        let req = req.body(Full::new(Bytes::new())).unwrap();
        reply(
            self.server
                .authorization_endpoint()
                .oneshot(req)
                .await
                .unwrap(),
        )
        .await
    }

    async fn complete(&self, handle: &str, cookie: Option<&str>, decision: Decision) -> Reply {
        let mut headers = http::HeaderMap::new();
        if let Some(c) = cookie {
            headers.insert("cookie", c.parse().unwrap());
        }
        reply(
            self.server
                .complete_authorization(handle, &headers, decision)
                .await,
        )
        .await
    }

    async fn exchange(&self, code: &str, redirect_uri: &str) -> Reply {
        let body = format!(
            "grant_type=authorization_code&client_id=spa&code={code}&redirect_uri={}&code_verifier={VERIFIER}",
            encode(redirect_uri)
        );
        let req = form("/oauth/token", None, &body);
        reply(self.server.token_endpoint().oneshot(req).await.unwrap()).await
    }
}

#[track_caller]
fn assert_page(r: &Reply, status: u16, error: &str) {
    assert_eq!(
        r.status.as_u16(),
        status,
        "{:?}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.header("location"), None, "never redirected");
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_page_headers(r);
    let body = String::from_utf8_lossy(&r.body);
    assert!(body.contains(&format!("<code>{error}</code>")), "{body}");
}

#[track_caller]
fn assert_page_headers(r: &Reply) {
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(
        r.header("content-security-policy"),
        Some("frame-ancestors 'none'")
    );
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
}

/// A redirect to `base` carrying `error`, the client's `state` and our `iss`.
#[track_caller]
fn assert_error_redirect(r: &Reply, base: &str, error: &str, state: Option<&str>) {
    // 302 after the browser's GET, 303 after a form post (a completion).
    assert!(
        matches!(r.status, StatusCode::FOUND | StatusCode::SEE_OTHER),
        "{} {:?}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let (to, params) = location(r);
    assert_eq!(to, base);
    assert_eq!(param(&params, "error"), Some(error), "{params:?}");
    assert_eq!(param(&params, "state"), state);
    assert_eq!(param(&params, "iss"), Some(ISS));
    assert_eq!(param(&params, "code"), None);
}

#[tokio::test]
async fn an_untrusted_client_or_redirect_uri_is_a_page_never_a_redirect() {
    let a = auth();
    let cases = [
        ("response_type=code", "client_id is missing"),
        (
            "response_type=code&client_id=nobody&redirect_uri=https%3A%2F%2Fevil.example%2F",
            "unknown client_id",
        ),
        (
            "response_type=code&client_id=spa&redirect_uri=https%3A%2F%2Fevil.example%2Fcb",
            "not registered",
        ),
        (
            "response_type=code&client_id=spa&redirect_uri=https%3A%2F%2Fspa.example%2Fcb%2F",
            "not registered",
        ),
        (
            "response_type=code&client_id=spa&redirect_uri=https%3A%2F%2Fspa.example%3A8443%2Fcb",
            "not registered",
        ),
        // Loopback ports are free for http loopback only, never the path or the host.
        (
            "response_type=code&client_id=spa&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fother",
            "not registered",
        ),
        (
            "response_type=code&client_id=spa&redirect_uri=http%3A%2F%2Flocalhost%3A3000%2Fcallback",
            "not registered",
        ),
        (
            "response_type=code&client_id=spa&redirect_uri=https%3A%2F%2F127.0.0.1%3A3000%2Fcallback",
            "not registered",
        ),
        ("response_type=code&client_id=spa", "several"),
        (
            "response_type=code&client_id=spa&client_id=app",
            "client_id is repeated",
        ),
        (
            &spa("&redirect_uri=https%3A%2F%2Fspa.example%2Fcb"),
            "redirect_uri is repeated",
        ),
        (
            "response_type=code&client_id=spa&redirect_uri=%ZZ",
            "percent",
        ),
    ];
    for (query, says) in cases {
        let r = a.get(query, &[]).await;
        assert_page(&r, 400, "invalid_request");
        let body = String::from_utf8_lossy(&r.body);
        assert!(body.contains(says), "{query}: {body}");
    }
    // Escaped: nothing of the request is echoed as markup.
    let r = a
        .get("response_type=code&client_id=%3Cscript%3E", &[])
        .await;
    assert!(!String::from_utf8_lossy(&r.body).contains("<script>"));
}

#[tokio::test]
async fn other_errors_go_back_to_the_client_with_state_and_iss() {
    let a = auth();
    let base = "https://spa.example/cb";
    let no_pkce =
        "response_type=code&client_id=spa&redirect_uri=https%3A%2F%2Fspa.example%2Fcb&state=xyz";
    let cases: Vec<(String, &str)> = vec![
        (
            spa("").replace("response_type=code&", ""),
            "invalid_request",
        ),
        (
            spa("").replace("response_type=code", "response_type=token"),
            "unsupported_response_type",
        ),
        (
            spa("").replace("response_type=code", "response_type=code+id_token"),
            "unsupported_response_type",
        ),
        (spa("&scope=admin"), "invalid_scope"),
        (spa("&scope=bad%22scope"), "invalid_scope"),
        (no_pkce.to_owned(), "invalid_request"),
        (spa("").replace("S256", "plain"), "invalid_request"),
        (spa("").replace(CHALLENGE, "short"), "invalid_request"),
        (
            format!("{no_pkce}&code_challenge_method=S256"),
            "invalid_request",
        ),
        (
            spa("&request=eyJhbGciOiJub25lIn0.e30."),
            "request_not_supported",
        ),
        (spa("&scope=read&scope=write"), "invalid_request"),
        (spa("&response_type=code"), "invalid_request"),
    ];
    for (query, error) in &cases {
        let r = a.get(query, &[]).await;
        assert_error_redirect(&r, base, error, Some("xyz"));
    }
    // A repeated state is not echoed (which one would be?), the error still goes back.
    let r = a.get(&spa("&state=other"), &[]).await;
    assert_error_redirect(&r, base, "invalid_request", None);
    // A client without the grant: unauthorized_client, at its registered URI.
    let r = a
        .get("response_type=code&client_id=cc-only&state=s", &[])
        .await;
    assert_error_redirect(
        &r,
        "https://cc.example/cb",
        "unauthorized_client",
        Some("s"),
    );
}

#[tokio::test]
async fn approved_at_once_the_code_exchanges_and_refreshes() {
    let a = auth();
    let r = a
        .get(&spa("&scope=read"), &[("x-test", "approve:alice")])
        .await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let cookie = r
        .header("set-cookie")
        .expect("the binding cookie")
        .to_owned();
    assert!(
        cookie.starts_with(&format!("{SECURE_AGENT_COOKIE}=")),
        "{cookie}"
    );
    for attr in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    let (to, params) = location(&r);
    assert_eq!(to, "https://spa.example/cb");
    assert_eq!(param(&params, "state"), Some("xyz"));
    assert_eq!(param(&params, "iss"), Some(ISS));
    let code = param(&params, "code").unwrap().to_owned();
    assert_eq!(code.len(), 46);
    let v = a
        .exchange(&code, "https://spa.example/cb")
        .await
        .assert_token();
    assert_eq!(v["scope"], "read");
    let rt = v["refresh_token"].as_str().unwrap();
    let body = format!("grant_type=refresh_token&client_id=spa&refresh_token={rt}");
    let r = reply(
        a.server
            .token_endpoint()
            .oneshot(form("/oauth/token", None, &body))
            .await
            .unwrap(),
    )
    .await;
    r.assert_token();
    // The code is bound to the redirect URI sent and to the verifier.
    let r = a.get(&spa(""), &[("x-test", "approve:alice")]).await;
    let code = param(&location(&r).1, "code").unwrap().to_owned();
    a.exchange(&code, "https://spa.example/other")
        .await
        .assert_error(400, "invalid_grant");
}

#[tokio::test]
async fn a_loopback_redirect_uri_may_use_any_port_and_the_exchange_repeats_it() {
    let a = auth();
    let query = spa("").replace(
        "https%3A%2F%2Fspa.example%2Fcb",
        "http%3A%2F%2F127.0.0.1%3A54321%2Fcallback",
    );
    let r = a.get(&query, &[("x-test", "approve:alice")]).await;
    let (to, params) = location(&r);
    assert_eq!(to, "http://127.0.0.1:54321/callback");
    let code = param(&params, "code").unwrap().to_owned();
    a.exchange(&code, "http://127.0.0.1:3000/callback")
        .await
        .assert_error(400, "invalid_grant");
    // That failed use revoked nothing and used nothing up: the code is still good with the
    // same URI (a wrong redirect_uri is not a redemption).
    a.exchange(&code, "http://127.0.0.1:54321/callback")
        .await
        .assert_token();
}

#[tokio::test]
async fn the_registered_query_is_kept_and_post_is_answered_with_303() {
    let a = auth();
    let body = format!(
        "response_type=code&client_id=app&state=s%20t&code_challenge={CHALLENGE}&code_challenge_method=S256"
    );
    let req = Request::post("/oauth/authorize")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-test", "deny")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let r = reply(
        a.server
            .authorization_endpoint()
            .oneshot(req)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let loc = r.header("location").unwrap();
    assert!(
        loc.starts_with("https://app.example/cb?tenant=7&error=access_denied&"),
        "{loc}"
    );
    let (_, params) = location(&r);
    assert_eq!(param(&params, "state"), Some("s t"));
    assert_eq!(param(&params, "iss"), Some(ISS));
    // Other methods: 405 with Allow.
    let req = Request::put("/oauth/authorize")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let r = reply(
        a.server
            .authorization_endpoint()
            .oneshot(req)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.header("allow"), Some("GET, POST"));
}

/// Start a request that the app answers with its page: (handle, cookie header value).
async fn started(a: &Auth, query: &str) -> (String, String) {
    let r = a.get(query, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_page_headers(&r);
    let body = String::from_utf8_lossy(&r.body).into_owned();
    assert!(body.contains("spa asks for "), "{body}");
    let handle = body
        .split("value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    let set = r.header("set-cookie").unwrap();
    let cookie = set.split(';').next().unwrap().to_owned();
    (handle, cookie)
}

#[tokio::test]
async fn a_handle_completes_once_for_the_browser_that_started_it() {
    let a = auth();
    let (handle, cookie) = started(&a, &spa("")).await;
    let pending = a
        .server
        .pending_authorization(&handle, &{
            let mut h = http::HeaderMap::new();
            h.insert("cookie", cookie.parse().unwrap());
            h
        })
        .await
        .unwrap()
        .expect("pending for this browser");
    assert_eq!(pending.client_id(), "spa");
    assert_eq!(pending.state(), Some("xyz"));
    assert_eq!(pending.code_challenge_method(), Some("S256"));
    // Another browser (another cookie, or none) cannot complete it, and does not use it up.
    let stranger = format!("{AGENT_COOKIE}={}", "A".repeat(43));
    let r = a
        .complete(&handle, Some(&stranger), Decision::approve("mallory"))
        .await;
    assert_page(&r, 400, "invalid_request");
    let r = a
        .complete(&handle, None, Decision::approve("mallory"))
        .await;
    assert_page(&r, 400, "invalid_request");
    // The browser that started it can, once.
    let r = a
        .complete(&handle, Some(&cookie), Decision::approve("alice"))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let code = param(&location(&r).1, "code").unwrap().to_owned();
    a.exchange(&code, "https://spa.example/cb")
        .await
        .assert_token();
    let r = a
        .complete(&handle, Some(&cookie), Decision::approve("alice"))
        .await;
    assert_page(&r, 400, "invalid_request");
    // A wider scope than requested is refused at the redirect URI.
    let (handle, cookie) = started(&a, &spa("&scope=read")).await;
    let wide = Decision::approve("alice").with_scope("read write".parse().unwrap());
    let r = a.complete(&handle, Some(&cookie), wide).await;
    assert_error_redirect(&r, "https://spa.example/cb", "invalid_scope", Some("xyz"));
}

#[tokio::test]
async fn a_pending_request_lapses_and_a_denial_is_access_denied() {
    let a = auth();
    let (handle, cookie) = started(&a, &spa("")).await;
    a.clock.advance(std::time::Duration::from_secs(601));
    let r = a
        .complete(&handle, Some(&cookie), Decision::approve("alice"))
        .await;
    assert_page(&r, 400, "invalid_request");
    let (handle, cookie) = started(&a, &spa("")).await;
    let r = a.complete(&handle, Some(&cookie), Decision::Deny).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let (to, params) = location(&r);
    assert_eq!(to, "https://spa.example/cb");
    assert_eq!(param(&params, "error"), Some("access_denied"));
    assert_eq!(param(&params, "state"), Some("xyz"));
    assert_eq!(param(&params, "iss"), Some(ISS));
}

#[tokio::test]
async fn metadata_names_the_authorization_endpoint_and_iss() {
    let a = auth();
    let req = Request::get("/.well-known/oauth-authorization-server")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let r = reply(
        a.server
            .metadata_endpoint(Metadata::new(ISS))
            .oneshot(req)
            .await
            .unwrap(),
    )
    .await;
    let v = r.json();
    assert_eq!(
        v["authorization_endpoint"],
        format!("{ISS}/oauth/authorize")
    );
    assert_eq!(v["authorization_response_iss_parameter_supported"], true);
    assert_eq!(v["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        v["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
}

#[tokio::test]
async fn the_endpoint_needs_an_issuer() {
    let err = AuthServer::builder()
        .clients(InMemoryClients::new())
        .authorization_handler(decide)
        .build()
        .unwrap_err();
    assert!(
        matches!(err, tower_oauth2::ConfigError::Authorization(_)),
        "{err:?}"
    );
}

/// The whole flow, suspended and completed, on every store: the login form may be posted to
/// another instance, so the pending request lives in the shared store.
async fn flow_on(backend: backends::Backend, name: &str) {
    let Some(store) = backends::open(backend, name).await else {
        return;
    };
    let first = server_on(Arc::clone(&store), SystemClock.now());
    let other = server_on(store, SystemClock.now());
    let (handle, cookie) = started(&first, &spa("")).await;
    let r = other
        .complete(&handle, Some(&cookie), Decision::approve("alice"))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let code = param(&location(&r).1, "code").unwrap().to_owned();
    first
        .exchange(&code, "https://spa.example/cb")
        .await
        .assert_token();
    let r = first
        .complete(&handle, Some(&cookie), Decision::approve("alice"))
        .await;
    assert_page(&r, 400, "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flow_spans_instances_on_every_store() {
    flow_on(backends::Backend::Memory, "authorize_memory").await;
    flow_on(backends::Backend::Redis, "authorize_redis").await;
    flow_on(backends::Backend::RedisCluster, "authorize_redis_cluster").await;
    flow_on(backends::Backend::Postgres, "authorize_postgres").await;
}

impl Auth {
    async fn push(&self, client: Option<(&str, &str)>, body: &str) -> Reply {
        let req = form("/oauth/par", client, body);
        reply(
            self.server
                .pushed_authorization_endpoint()
                .oneshot(req)
                .await
                .unwrap(),
        )
        .await
    }
}

const APP: (&str, &str) = ("app", "app-secret");

/// A pushed request and the JSON error it must get: (client credentials, body, status, `error`).
type PushCase<'a> = (Option<(&'a str, &'a str)>, String, u16, &'a str);

fn pushed(query_of_push: &Reply) -> String {
    assert_eq!(
        query_of_push.status,
        StatusCode::CREATED,
        "{:?}",
        query_of_push.json()
    );
    assert_eq!(query_of_push.header("cache-control"), Some("no-store"));
    let v = query_of_push.json();
    assert_eq!(v["expires_in"], 60);
    let uri = v["request_uri"].as_str().unwrap().to_owned();
    assert!(
        uri.starts_with("urn:ietf:params:oauth:request_uri:"),
        "{uri}"
    );
    assert_eq!(uri.len(), "urn:ietf:params:oauth:request_uri:".len() + 46);
    uri
}

#[tokio::test]
async fn a_pushed_request_resumes_once_at_the_authorization_endpoint() {
    let a = auth();
    let body = format!(
        "response_type=code&client_id=app&state=pushed&scope=read&code_challenge={CHALLENGE}&code_challenge_method=S256"
    );
    let uri = pushed(&a.push(Some(APP), &body).await);
    let query = format!("client_id=app&request_uri={}", encode(&uri));
    let r = a.get(&query, &[("x-test", "approve:alice")]).await;
    let (to, params) = location(&r);
    assert_eq!(to, "https://app.example/cb");
    assert_eq!(param(&params, "tenant"), Some("7"));
    assert_eq!(param(&params, "state"), Some("pushed"));
    assert_eq!(param(&params, "iss"), Some(ISS));
    let code = param(&params, "code").unwrap().to_owned();
    let exchange = format!("grant_type=authorization_code&code={code}&code_verifier={VERIFIER}");
    let v = reply(
        a.server
            .token_endpoint()
            .oneshot(form("/oauth/token", Some(APP), &exchange))
            .await
            .unwrap(),
    )
    .await
    .assert_token();
    assert_eq!(v["scope"], "read");
    // Single use: the same request_uri again is a page.
    let r = a.get(&query, &[("x-test", "approve:alice")]).await;
    assert_page(&r, 400, "invalid_request");
    // The pushed request is not a completion handle either.
    let uri = pushed(&a.push(Some(APP), &body).await);
    let handle = uri.trim_start_matches("urn:ietf:params:oauth:request_uri:");
    let stranger = format!("{AGENT_COOKIE}={}", "A".repeat(43));
    let r = a
        .complete(handle, Some(&stranger), Decision::approve("mallory"))
        .await;
    assert_page(&r, 400, "invalid_request");
}

#[tokio::test]
async fn a_pushed_request_is_refused_as_json_and_resumed_only_by_its_client() {
    let a = auth();
    let ok = &format!(
        "response_type=code&client_id=app&state=s&code_challenge={CHALLENGE}&code_challenge_method=S256"
    );
    let cases: Vec<PushCase<'_>> = vec![
        (None, ok.into(), 401, "invalid_client"),
        (Some(("app", "wrong")), ok.into(), 401, "invalid_client"),
        (
            Some(APP),
            format!("{ok}&redirect_uri=https%3A%2F%2Fevil.example%2F"),
            400,
            "invalid_request",
        ),
        (Some(APP), format!("{ok}&scope=admin"), 400, "invalid_scope"),
        (
            Some(APP),
            ok.replace("response_type=code", "response_type=token"),
            400,
            "unsupported_response_type",
        ),
        (
            Some(APP),
            format!("{ok}&request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3Ax"),
            400,
            "invalid_request",
        ),
        (
            Some(APP),
            ok.replace("client_id=app", "client_id=spa"),
            400,
            "invalid_request",
        ),
        (
            Some(APP),
            format!("{ok}&state=again"),
            400,
            "invalid_request",
        ),
    ];
    for (client, body, status, error) in &cases {
        let r = a.push(*client, body).await;
        assert_eq!(r.header("location"), None, "never a redirect");
        r.assert_error(*status, error);
    }
    // Another client's request_uri, an unknown one, a lapsed one: pages.
    let uri = pushed(&a.push(Some(APP), ok).await);
    let by = |client: &str, uri: &str| format!("client_id={client}&request_uri={}", encode(uri));
    assert_page(&a.get(&by("spa", &uri), &[]).await, 400, "invalid_request");
    assert_page(
        &a.get(&by("app", "urn:ietf:params:oauth:request_uri:nope"), &[])
            .await,
        400,
        "invalid_request",
    );
    assert_page(
        &a.get(&by("app", "https://evil.example/req"), &[]).await,
        400,
        "invalid_request",
    );
    // The other client's attempt did not use it up.
    let r = a.get(&by("app", &uri), &[("x-test", "deny")]).await;
    assert_error_redirect(&r, "https://app.example/cb", "access_denied", Some("s"));
    let uri = pushed(&a.push(Some(APP), ok).await);
    a.clock.advance(std::time::Duration::from_secs(61));
    assert_page(&a.get(&by("app", &uri), &[]).await, 400, "invalid_request");
}

#[tokio::test]
async fn a_client_that_must_push_is_refused_otherwise() {
    let a = auth();
    let direct = &format!(
        "response_type=code&client_id=par-only&state=s&code_challenge={CHALLENGE}&code_challenge_method=S256"
    );
    let r = a.get(direct, &[("x-test", "approve:alice")]).await;
    assert_error_redirect(&r, "https://par.example/cb", "invalid_request", Some("s"));
    let uri = pushed(&a.push(Some(("par-only", "par-secret")), direct).await);
    let query = format!("client_id=par-only&request_uri={}", encode(&uri));
    let r = a.get(&query, &[("x-test", "approve:alice")]).await;
    assert!(param(&location(&r).1, "code").is_some());
    // The metadata names the endpoint.
    let req = Request::get("/").body(Full::new(Bytes::new())).unwrap();
    let v = reply(
        a.server
            .metadata_endpoint(Metadata::new(ISS))
            .oneshot(req)
            .await
            .unwrap(),
    )
    .await
    .json();
    assert_eq!(
        v["pushed_authorization_request_endpoint"],
        format!("{ISS}/oauth/par")
    );
    assert_eq!(v.get("require_pushed_authorization_requests"), None);
}

#[tokio::test]
async fn over_real_http_the_answers_are_the_same() {
    use crate::support::http;
    let a = auth();
    let app = axum::Router::new()
        .route_service("/oauth/authorize", a.server.authorization_endpoint())
        .route_service("/oauth/par", a.server.pushed_authorization_endpoint())
        .route_service("/oauth/token", a.server.token_endpoint());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let get = |query: String, test: &'static str| async move {
        let req = Request::get(format!("http://{addr}/oauth/authorize?{query}"))
            .header("x-test", test)
            .body(Full::new(Bytes::new()))
            .unwrap();
        http(req).await
    };
    // A page: unknown client.
    let r = get("response_type=code&client_id=nobody".into(), "page").await;
    assert_page(&r, 400, "invalid_request");
    // A redirect: unsupported response type, with state and iss.
    let r = get(
        spa("").replace("response_type=code", "response_type=token"),
        "page",
    )
    .await;
    assert_error_redirect(
        &r,
        "https://spa.example/cb",
        "unsupported_response_type",
        Some("xyz"),
    );
    // Approved at once: the code, the cookie.
    let r = get(spa(""), "approve:alice").await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert!(r.header("set-cookie").unwrap().contains("HttpOnly"));
    let code = param(&location(&r).1, "code").unwrap().to_owned();
    let body = format!(
        "grant_type=authorization_code&client_id=spa&code={code}&redirect_uri=https%3A%2F%2Fspa.example%2Fcb&code_verifier={VERIFIER}"
    );
    http(form(&format!("http://{addr}/oauth/token"), None, &body))
        .await
        .assert_token();
    // PAR over HTTP, then resumed.
    let r = http(form(
        &format!("http://{addr}/oauth/par"),
        Some(APP),
        &format!(
            "response_type=code&client_id=app&state=h&code_challenge={CHALLENGE}&code_challenge_method=S256"
        ),
    ))
    .await;
    let uri = pushed(&r);
    let r = get(
        format!("client_id=app&request_uri={}", encode(&uri)),
        "deny",
    )
    .await;
    assert_error_redirect(&r, "https://app.example/cb", "access_denied", Some("h"));
}

/// A handler with its own error page, to show the endpoint uses it for every page it answers.
struct Branded;

#[async_trait::async_trait]
impl tower_oauth2::endpoint::AuthorizationHandler for Branded {
    async fn authorize(&self, _ctx: AuthorizationContext) -> Interaction {
        Interaction::Decided(Decision::approve("alice"))
    }
    fn error_page(
        &self,
        error: &tower_oauth2::OAuthError,
    ) -> Option<tower_oauth2::endpoint::EndpointResponse> {
        let mut res =
            http::Response::new(Full::new(Bytes::from(format!("branded: {}", error.code()))));
        *res.status_mut() = StatusCode::BAD_REQUEST;
        Some(res)
    }
}

#[tokio::test]
async fn the_app_renders_the_error_pages_and_events_name_no_secret() {
    use std::sync::Mutex;
    use tower_oauth2::events::Event;
    let events: Arc<Mutex<Vec<Event>>> = Arc::default();
    let sink = Arc::clone(&events);
    let server = AuthServer::builder()
        .clients(
            InMemoryClients::new().with(
                Client::public("spa")
                    .redirect_uri("https://spa.example/cb")
                    .build()
                    .unwrap(),
            ),
        )
        .configure(|c| c.issuer = Some(ISS.into()))
        .authorization_handler(Branded)
        .on_event(move |e: &Event| sink.lock().unwrap().push(e.clone()))
        .build()
        .unwrap();
    let get = |query: &str| {
        let req = Request::get(format!("/oauth/authorize?{query}"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let endpoint = server.authorization_endpoint();
        async move { reply(endpoint.oneshot(req).await.unwrap()).await }
    };
    let r = get("response_type=code&client_id=nobody").await;
    assert_eq!(&r.body[..], b"branded: invalid_request");
    assert_page_headers(&r);
    // HEAD is not GET here: it would start a request for a body nobody reads.
    let req = Request::head("/oauth/authorize?client_id=spa")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let r = reply(server.authorization_endpoint().oneshot(req).await.unwrap()).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    let r = get(&format!("response_type=code&client_id=spa&state=s&code_challenge={CHALLENGE}&code_challenge_method=S256")).await;
    let code = param(&location(&r).1, "code").unwrap().to_owned();
    let cookie = r.header("set-cookie").unwrap().to_owned();
    get("response_type=token&client_id=spa").await;
    let seen = events.lock().unwrap().clone();
    let names: Vec<_> = seen.iter().map(Event::name).collect();
    assert_eq!(
        names,
        [
            "authorization_failed",
            "authorization_approved",
            "authorization_failed"
        ]
    );
    let all = format!("{seen:?}");
    assert!(all.contains("alice") && all.contains("spa"), "{all}");
    let agent = cookie.split(';').next().unwrap().split('=').nth(1).unwrap();
    for secret in [code.as_str(), agent, CHALLENGE] {
        assert!(!all.contains(secret), "an event shows {secret}: {all}");
    }
}

/// An issuer configured with a trailing slash is spelled one way everywhere: `iss` in the
/// redirect, the `iss` of a JWT access token, and the issuer a strict validator expects.
#[tokio::test]
async fn an_issuer_with_a_trailing_slash_is_spelled_one_way_everywhere() {
    let clients = InMemoryClients::new().with(
        Client::public("spa")
            .redirect_uri("https://spa.example/cb")
            .build()
            .unwrap(),
    );
    let server = AuthServer::builder()
        .clients(clients)
        .configure(|c| {
            c.issuer = Some(format!("{ISS}//"));
            c.access_token_format = tower_oauth2::AccessTokenFormat::Jwt;
        })
        .signing_keys(tower_oauth2::jose::KeySet::new(
            tower_oauth2::jose::SigningKey::generate_es256(),
        ))
        .authorization_handler(decide)
        .build()
        .unwrap();
    assert_eq!(server.config().issuer.as_deref(), Some(ISS));
    let auth = Auth {
        server,
        clock: Arc::new(ManualClock::new(0)),
    };
    let r = auth.get(&spa(""), &[("x-test", "approve:alice")]).await;
    let (_, query) = location(&r);
    assert_eq!(param(&query, "iss"), Some(ISS));
    let code = param(&query, "code").unwrap().to_owned();
    let token = auth
        .server
        .token_endpoint()
        .oneshot(
            Request::post("/oauth/token")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Full::new(Bytes::from(format!(
                    "grant_type=authorization_code&client_id=spa&code={code}&redirect_uri=https%3A%2F%2Fspa.example%2Fcb&code_verifier={VERIFIER}"
                ))))
                .unwrap(),
        )
        .await
        .unwrap();
    let body = reply(token).await.json();
    let jwt = body["access_token"].as_str().unwrap();
    let payload = jwt.split('.').nth(1).unwrap();
    use base64::Engine;
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["iss"], ISS);
}

/// A loopback redirect URI's port must be a port (RFC 8252 §7.3 lets any port match, not any
/// digits), and a redirect URI that a Location header cannot carry is refused when the client
/// is built, not sent nowhere.
#[tokio::test]
async fn a_loopback_port_must_be_a_port_and_a_redirect_uri_must_be_ascii() {
    let a = auth();
    let with = |uri: &str| {
        format!(
            "response_type=code&client_id=spa&redirect_uri={}&code_challenge={CHALLENGE}&code_challenge_method=S256",
            encode(uri)
        )
    };
    for port in ["99999999999999999999", "65536", ""] {
        let r = a
            .get(
                &with(&format!("http://127.0.0.1:{port}/callback")),
                &[("x-test", "approve:alice")],
            )
            .await;
        assert_page(&r, 400, "invalid_request");
        assert_eq!(r.header("location"), None, "port {port:?}");
    }
    let r = a
        .get(
            &with("http://127.0.0.1:65535/callback"),
            &[("x-test", "approve:alice")],
        )
        .await;
    let (base, params) = location(&r);
    assert_eq!(base, "http://127.0.0.1:65535/callback");
    assert!(param(&params, "code").is_some());
    let err = Client::public("intl")
        .redirect_uri("https://café.example/cb")
        .build()
        .unwrap_err();
    assert!(
        matches!(err, tower_oauth2::ConfigError::RedirectUri(_)),
        "{err:?}"
    );
    Client::public("intl")
        .redirect_uri("https://xn--caf-dma.example/cb")
        .build()
        .unwrap();
}

/// The handle a page from `decide` carries in its form.
fn handle_in(r: &Reply) -> String {
    let body = String::from_utf8_lossy(&r.body);
    let at = body.find("value=\"").expect("a handle in the page") + 7;
    body[at..][..body[at..].find('"').unwrap()].to_owned()
}

/// A `state` too long to keep is refused at the redirect URI without being sent back, and
/// nothing is kept.
#[tokio::test]
async fn a_state_too_long_to_keep_is_refused_and_not_sent_back() {
    let memory = MemoryStore::new();
    let a = server_with(Arc::new(memory.clone()), 1_700_000_000, |_| {});
    let with_state =
        |bytes: usize| spa(&format!("&state={}", "s".repeat(bytes))).replace("state=xyz&", "");
    let r = a.get(&with_state(2048), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "2048 bytes are kept");
    let r = a.get(&with_state(2049), &[]).await;
    let (base, params) = location(&r);
    assert_eq!(base, "https://spa.example/cb");
    assert_eq!(param(&params, "error"), Some("invalid_request"));
    assert_eq!(
        param(&params, "error_description"),
        Some("state is too long")
    );
    assert_eq!(param(&params, "state"), None, "never sent back");
    assert_eq!(param(&params, "iss"), Some(ISS));
}

/// Requests left waiting are bounded per user agent and in all, in windows of one request
/// lifetime, counted in the store: past a bound, a 503 page and nothing kept.
#[tokio::test]
async fn requests_left_waiting_are_bounded_per_user_agent_and_in_all() {
    let a = server_with(Arc::new(MemoryStore::new()), 1_700_000_000, |c| {
        c.max_pending_authorizations_per_agent = 3;
        c.max_pending_authorizations = 5;
    });
    let first = a.get(&spa(""), &[]).await;
    assert_eq!(first.status, StatusCode::OK);
    let cookie = first
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    for _ in 0..2 {
        assert_eq!(
            a.get(&spa(""), &[("cookie", &cookie)]).await.status,
            StatusCode::OK
        );
    }
    let r = a.get(&spa(""), &[("cookie", &cookie)]).await;
    assert_page(&r, 503, "temporarily_unavailable");
    // A decision made at once keeps nothing, so it is never refused.
    let r = a
        .get(
            &spa(""),
            &[("cookie", &cookie), ("x-test", "approve:alice")],
        )
        .await;
    assert!(param(&location(&r).1, "code").is_some());
    // Other agents (no cookie: a new one each) fill the bound in all: 3 + 2 = 5, then refused,
    // at the authorization endpoint and at the PAR endpoint alike.
    for _ in 0..2 {
        assert_eq!(a.get(&spa(""), &[]).await.status, StatusCode::OK);
    }
    assert_page(&a.get(&spa(""), &[]).await, 503, "temporarily_unavailable");
    let pushed = format!(
        "response_type=code&client_id=app&code_challenge={CHALLENGE}&code_challenge_method=S256"
    );
    a.push(Some(APP), &pushed)
        .await
        .assert_error(503, "temporarily_unavailable");
    // A new window, a new count.
    a.clock.advance(std::time::Duration::from_secs(600));
    assert_eq!(
        a.get(&spa(""), &[("cookie", &cookie)]).await.status,
        StatusCode::OK
    );
    assert_eq!(a.push(Some(APP), &pushed).await.status, StatusCode::CREATED);
}

/// A request nobody came back to lapses after the idle lifetime; one whose page was looked at
/// again (a wrong password, say) lives the full lifetime from its start.
#[tokio::test]
async fn an_untouched_request_lapses_sooner_than_one_whose_page_was_submitted() {
    let a = auth();
    let page = |r: &Reply| {
        let handle = handle_in(r);
        let cookie = r
            .header("set-cookie")
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        (handle, cookie)
    };
    let headers = |cookie: &str| {
        let mut h = http::HeaderMap::new();
        h.insert("cookie", cookie.parse().unwrap());
        h
    };
    let (untouched, cookie_u) = page(&a.get(&spa(""), &[]).await);
    let (looked_at, cookie_l) = page(&a.get(&spa(""), &[]).await);
    a.clock.advance(std::time::Duration::from_secs(299));
    let seen = a
        .server
        .pending_authorization(&looked_at, &headers(&cookie_l))
        .await
        .unwrap()
        .expect("pending");
    assert_eq!(
        seen.expires_at(),
        1_700_000_000 + 600,
        "the full lifetime, from its start"
    );
    a.clock.advance(std::time::Duration::from_secs(1));
    // 300 s in: the untouched one is gone, the other still there.
    let r = a
        .complete(&untouched, Some(&cookie_u), Decision::approve("alice"))
        .await;
    assert_page(&r, 400, "invalid_request");
    a.clock.advance(std::time::Duration::from_secs(299));
    let r = a
        .complete(&looked_at, Some(&cookie_l), Decision::approve("alice"))
        .await;
    assert!(
        param(&location(&r).1, "code").is_some(),
        "alive until 600 s"
    );
}

/// The binding cookie is `__Host-` wherever it is `Secure`, and binds a request only when this
/// server issued its value: a planted or made-up value gets a new cookie, and the request is
/// bound to that one.
#[tokio::test]
async fn the_binding_cookie_is_host_only_and_only_a_value_this_server_issued_binds() {
    let a = auth();
    let set_cookie = |r: &Reply| r.header("set-cookie").map(str::to_owned);
    let value = |set: &str| set.split(';').next().unwrap().to_owned();
    let first = a.get(&spa(""), &[]).await;
    let set = set_cookie(&first).expect("a new binding");
    assert!(set.starts_with(&format!("{SECURE_AGENT_COOKIE}=")), "{set}");
    for attr in ["Path=/", "Secure", "HttpOnly", "SameSite=Lax"] {
        assert!(set.contains(attr), "{set}");
    }
    assert!(!set.to_ascii_lowercase().contains("domain="), "{set}");
    let issued = value(&set);
    // The issued value is used again, and no new cookie is set.
    let again = a.get(&spa(""), &[("cookie", &issued)]).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(set_cookie(&again), None);
    // A value this server never gave (43 well-formed characters), under either name: ignored,
    // a new cookie instead, and the request is bound to the new one.
    for planted in [
        format!("{SECURE_AGENT_COOKIE}={}", "A".repeat(43)),
        format!("{AGENT_COOKIE}={}", issued.split('=').nth(1).unwrap()),
    ] {
        let r = a.get(&spa(""), &[("cookie", &planted)]).await;
        let fresh = value(&set_cookie(&r).expect("a new binding"));
        assert_ne!(fresh, planted);
        let handle = handle_in(&r);
        let refused = a
            .complete(&handle, Some(&planted), Decision::approve("mallory"))
            .await;
        assert_page(&refused, 400, "invalid_request");
        let done = a
            .complete(&handle, Some(&fresh), Decision::approve("alice"))
            .await;
        assert_eq!(
            done.status,
            StatusCode::SEE_OTHER,
            "bound to the new cookie"
        );
    }
}
