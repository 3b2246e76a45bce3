//! The bearer layer (RFC 6750): every outcome with its exact status and WWW-Authenticate header.

use std::sync::Arc;

use crate::support::*;
use async_trait::async_trait;
use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use tower_oauth2::{
    AuthServer, InMemoryClients, Scope, StoreError,
    store::{
        AccessTokenRecord, Announcements, AuthorizationCodeRecord, CodeStore, GrantFilter,
        GrantRecord, GrantStore, NewAccessToken, NewRefreshToken, PurgeStore, RecordStore,
        Redemption, RefreshTokenRecord, Rotation, RotationOutcome,
        records::{Put, Record, RecordKey},
    },
    token::{GrantId, TokenHash},
};

const REALM: &str = "Bearer realm=\"tower-oauth2\"";

#[tokio::test]
async fn valid_token_passes_with_its_details_in_extensions() {
    let h = harness();
    let (at, _) = h.login().await;
    let r = h
        .protected(h.server.bearer_layer(), Some(&format!("Bearer {at}")))
        .await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["client_id"], "app");
    assert_eq!(v["sub"], "alice");
    assert_eq!(v["scope"], "read write");
    assert_eq!(v["exp"], START + 3600);
}

#[tokio::test]
async fn missing_credentials_get_a_bare_challenge() {
    let h = harness();
    for auth in [None, Some("Basic YXBwOmFwcC1zZWNyZXQ="), Some("Token abc")] {
        let r = h.protected(h.server.bearer_layer(), auth).await;
        assert_eq!(r.status, 401, "{auth:?}");
        assert_eq!(r.header("www-authenticate"), Some(REALM), "{auth:?}");
    }
}

#[tokio::test]
async fn malformed_credentials_are_400_invalid_request() {
    let h = harness();
    let expected = "Bearer realm=\"tower-oauth2\", error=\"invalid_request\", error_description=\"Malformed bearer credentials\"";
    for auth in [
        "Bearer",
        "Bearer ",
        "Bearer abc def",
        "Bearer abc$def",
        "Bearer ====",
        "Bearer a=b",
    ] {
        let r = h.protected(h.server.bearer_layer(), Some(auth)).await;
        assert_eq!(r.status, 400, "{auth:?}");
        assert_eq!(r.header("www-authenticate"), Some(expected), "{auth:?}");
    }
    // Two Authorization headers.
    let req = Request::get("/")
        .header("authorization", "Bearer abc")
        .header("authorization", "Bearer def")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let r = call_protected(h.server.bearer_layer(), req).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.header("www-authenticate"), Some(expected));
}

#[tokio::test]
async fn scheme_is_case_insensitive_and_extra_spaces_are_tolerated() {
    let h = harness();
    let (at, _) = h.login().await;
    for auth in [
        format!("bearer {at}"),
        format!("BEARER {at}"),
        format!("Bearer   {at}"),
    ] {
        let r = h.protected(h.server.bearer_layer(), Some(&auth)).await;
        assert_eq!(r.status, 200, "{auth:?}");
    }
}

#[tokio::test]
async fn unknown_and_revoked_tokens_are_invalid_token() {
    let h = harness();
    let expected = "Bearer realm=\"tower-oauth2\", error=\"invalid_token\", error_description=\"The access token is invalid or revoked\"";
    let r = h
        .protected(
            h.server.bearer_layer(),
            Some("Bearer abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"),
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some(expected));

    let (at, _) = h.login().await;
    h.revoke(Some(("app", "app-secret")), &format!("token={at}"))
        .await;
    let r = h
        .protected(h.server.bearer_layer(), Some(&format!("Bearer {at}")))
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some(expected));
}

#[tokio::test]
async fn insufficient_scope_is_403_naming_the_required_scope() {
    let h = harness();
    let (at, _) = h.login().await; // read write
    let layer = h
        .server
        .bearer_layer()
        .require_scope(Scope::parse("read admin").unwrap());
    let r = h.protected(layer, Some(&format!("Bearer {at}"))).await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.header("www-authenticate"),
        Some(
            "Bearer realm=\"tower-oauth2\", error=\"insufficient_scope\", error_description=\"The access token does not grant the scope this resource requires\", scope=\"admin read\""
        )
    );
    let layer = h
        .server
        .bearer_layer()
        .require_scope(Scope::parse("write").unwrap());
    assert_eq!(
        h.protected(layer, Some(&format!("Bearer {at}")))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn realm_comes_from_the_configuration() {
    let h = harness_with(|c| c.realm = "api \"v2\"".into());
    let r = h.protected(h.server.bearer_layer(), None).await;
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"api \\\"v2\\\"\"")
    );
}

#[tokio::test]
async fn query_tokens_only_when_allowed() {
    let h = harness();
    let (at, _) = h.login().await;
    let get = |uri: String, auth: Option<String>| {
        let mut b = Request::get(uri);
        if let Some(a) = auth {
            b = b.header("authorization", a);
        }
        b.body(Full::new(Bytes::new())).unwrap()
    };
    let r = call_protected(
        h.server.bearer_layer(),
        get(format!("/x?access_token={at}"), None),
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some(REALM));

    let layer = h.server.bearer_layer().allow_query_token(true);
    let r = call_protected(
        layer.clone(),
        get(format!("/x?a=1&access_token={at}"), None),
    )
    .await;
    assert_eq!(r.status, 200);
    // Two methods at once → invalid_request (RFC 6750 §2).
    let r = call_protected(
        layer.clone(),
        get(
            format!("/x?access_token={at}"),
            Some(format!("Bearer {at}")),
        ),
    )
    .await;
    assert_eq!(r.status, 400);
    let r = call_protected(
        layer,
        get(format!("/x?access_token={at}&access_token={at}"), None),
    )
    .await;
    assert_eq!(r.status, 400);
}

/// A store whose every call fails, as when the backend is down.
struct DownStore;

#[async_trait]
impl GrantStore for DownStore {
    async fn create_grant(
        &self,
        _: GrantRecord,
        _: NewAccessToken,
        _: Option<NewRefreshToken>,
    ) -> Result<(), StoreError> {
        Err(StoreError::Timeout)
    }

    async fn find_access_token(
        &self,
        _: &TokenHash,
    ) -> Result<Option<AccessTokenRecord>, StoreError> {
        Err(StoreError::unavailable("connection refused"))
    }

    async fn find_refresh_token(
        &self,
        _: &TokenHash,
    ) -> Result<Option<RefreshTokenRecord>, StoreError> {
        Err(StoreError::Timeout)
    }

    async fn rotate_refresh_token(&self, _: Rotation) -> Result<RotationOutcome, StoreError> {
        Err(StoreError::Timeout)
    }

    async fn revoke_access_token(&self, _: &TokenHash) -> Result<bool, StoreError> {
        Err(StoreError::Timeout)
    }

    async fn revoke_grant(&self, _: GrantId) -> Result<bool, StoreError> {
        Err(StoreError::Timeout)
    }

    async fn revoke_grants(&self, _: &GrantFilter) -> Result<u64, StoreError> {
        Err(StoreError::Timeout)
    }
}

#[async_trait]
impl CodeStore for DownStore {
    async fn create_code(&self, _: AuthorizationCodeRecord) -> Result<(), StoreError> {
        Err(StoreError::Timeout)
    }

    async fn find_code(
        &self,
        _: &TokenHash,
    ) -> Result<Option<AuthorizationCodeRecord>, StoreError> {
        Err(StoreError::Timeout)
    }

    async fn redeem_code(
        &self,
        _: &TokenHash,
        _: GrantRecord,
        _: NewAccessToken,
        _: Option<NewRefreshToken>,
    ) -> Result<Redemption, StoreError> {
        Err(StoreError::Timeout)
    }
}

#[async_trait]
impl PurgeStore for DownStore {
    async fn purge_expired(&self, _: u64) -> Result<u64, StoreError> {
        Err(StoreError::Timeout)
    }
}

#[async_trait]
impl RecordStore for DownStore {
    async fn put_record(
        &self,
        _: &RecordKey,
        _: Record,
        _: Put,
        _: u64,
    ) -> Result<bool, StoreError> {
        Err(StoreError::Timeout)
    }
    async fn get_record(&self, _: &RecordKey, _: u64) -> Result<Option<Record>, StoreError> {
        Err(StoreError::Timeout)
    }
    async fn take_record(&self, _: &RecordKey, _: u64) -> Result<Option<Record>, StoreError> {
        Err(StoreError::Timeout)
    }
    async fn delete_record(&self, _: &RecordKey) -> Result<bool, StoreError> {
        Err(StoreError::Timeout)
    }
    async fn extend_record(&self, _: &RecordKey, _: u64, _: u64) -> Result<bool, StoreError> {
        Err(StoreError::Timeout)
    }
    async fn increment(&self, _: &RecordKey, _: u64, _: u64) -> Result<u64, StoreError> {
        Err(StoreError::Timeout)
    }
}

impl Announcements for DownStore {}

fn down_server() -> AuthServer {
    AuthServer::builder()
        .clients(clients())
        .store(DownStore)
        .build()
        .unwrap()
}

#[tokio::test]
async fn store_outage_is_503_never_invalid_token() {
    let server = down_server();
    let req = Request::get("/")
        .header(
            "authorization",
            "Bearer abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
        )
        .body(Full::new(Bytes::new()))
        .unwrap();
    let r = call_protected(server.bearer_layer(), req).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.header("www-authenticate"), None);
}

#[tokio::test]
async fn store_outage_at_the_endpoints_is_503_temporarily_unavailable() {
    use tower::ServiceExt;
    let server = down_server();
    let bodies = [
        "grant_type=client_credentials",
        "grant_type=refresh_token&refresh_token=abc",
    ];
    for body in bodies {
        let res = server
            .token_endpoint()
            .oneshot(form("/oauth/token", Some(("app", "app-secret")), body))
            .await
            .unwrap();
        reply(res)
            .await
            .assert_error(503, "temporarily_unavailable");
    }
    let res = server
        .revocation_endpoint()
        .oneshot(form(
            "/oauth/revoke",
            Some(("app", "app-secret")),
            "token=abc",
        ))
        .await
        .unwrap();
    reply(res)
        .await
        .assert_error(503, "temporarily_unavailable");
    let res = server
        .introspection_endpoint()
        .oneshot(form(
            "/oauth/introspect",
            Some(("rs", "rs-secret")),
            "token=abc",
        ))
        .await
        .unwrap();
    reply(res)
        .await
        .assert_error(503, "temporarily_unavailable");
}

#[tokio::test]
async fn route_layer_keeps_unknown_paths_404_over_http() {
    let h = harness();
    let addr = serve(&h.server).await;
    let get = |path: &str| {
        Request::get(format!("http://{addr}{path}"))
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    assert_eq!(http(get("/nowhere")).await.status, 404);
    let r = http(get("/api/me")).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some(REALM));
}

#[cfg(feature = "axum")]
#[tokio::test]
async fn axum_extractor_gives_handlers_the_token_details() {
    use axum::{Router, routing::get};
    use tower::ServiceExt;
    use tower_oauth2::TokenInfo;
    let h = harness();
    let (at, _) = h.login().await;
    let app: Router = Router::new()
        .route(
            "/me",
            get(|t: TokenInfo| async move { t.subject.as_deref().unwrap_or("-").to_owned() }),
        )
        .route_layer(h.server.bearer_layer())
        .route(
            "/open",
            get(|t: TokenInfo| async move { t.client_id.to_string() }),
        );
    let req = Request::get("/me")
        .header("authorization", format!("Bearer {at}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let r = reply(app.clone().oneshot(req).await.unwrap()).await;
    assert_eq!(r.status, 200);
    assert_eq!(&r.body[..], b"alice");
    // A handler on an unguarded route asking for TokenInfo is a setup error: 500, not access.
    let req = Request::get("/open")
        .header("authorization", format!("Bearer {at}"))
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(app.oneshot(req).await.unwrap().status(), 500);
}

#[tokio::test]
async fn a_second_server_on_the_same_store_accepts_the_token() {
    let h = harness();
    let (at, _) = h.login().await;
    let other = AuthServer::builder()
        .clients(InMemoryClients::new())
        .shared_store(Arc::clone(h.server.store()))
        .clock(Arc::clone(&h.clock))
        .build()
        .unwrap();
    let r = h
        .protected(other.bearer_layer(), Some(&format!("Bearer {at}")))
        .await;
    assert_eq!(
        r.status, 200,
        "a second server on the same store accepts the token"
    );
}

#[tokio::test]
async fn form_body_tokens_only_with_the_form_body_layer() {
    use std::convert::Infallible;
    use tower::{ServiceBuilder, ServiceExt, service_fn};
    use tower_oauth2::bearer::FormBodyTokenLayer;
    let h = harness();
    let (at, _) = h.login().await;
    let post = |body: String, auth: Option<String>| {
        let mut b =
            Request::post("/notes").header("content-type", "application/x-www-form-urlencoded");
        if let Some(a) = auth {
            b = b.header("authorization", a);
        }
        b.body(Full::new(Bytes::from(body))).unwrap()
    };
    // Default: a body token is not a credential.
    let r = call_protected(
        h.server.bearer_layer(),
        post(format!("access_token={at}"), None),
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some(REALM));

    let app = ServiceBuilder::new()
        .layer(FormBodyTokenLayer::new(&h.server))
        .layer(h.server.bearer_layer())
        .service(service_fn(|req: Request<Full<Bytes>>| async move {
            // The body reaches the handler intact.
            let body = http_body_util::BodyExt::collect(req.into_body())
                .await
                .unwrap()
                .to_bytes();
            Ok::<_, Infallible>(http::Response::new(Full::new(body)))
        }));
    let r = reply(
        app.clone()
            .oneshot(post(format!("note=hi&access_token={at}"), None))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, format!("note=hi&access_token={at}"));
    // Header and body together: two methods.
    let r = reply(
        app.clone()
            .oneshot(post(
                format!("access_token={at}"),
                Some(format!("Bearer {at}")),
            ))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("invalid_request")
    );
    // The app's own fields may repeat (a multi-select), with the token in the body or the
    // header; only access_token itself must not.
    let multi = format!("tag=a&tag=b&access_token={at}");
    let r = reply(
        app.clone()
            .oneshot(post(multi.clone(), None))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (r.status.as_u16(), r.body.as_ref()),
        (200, multi.as_bytes())
    );
    let r = reply(
        app.clone()
            .oneshot(post("tag=a&tag=b".into(), Some(format!("Bearer {at}"))))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (r.status.as_u16(), r.body.as_ref()),
        (200, &b"tag=a&tag=b"[..])
    );
    let r = reply(
        app.clone()
            .oneshot(post(format!("access_token={at}&access_token={at}"), None))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("invalid_request")
    );
    // No token in the body, none in the header: the usual 401.
    let r = reply(app.oneshot(post("note=hi".into(), None)).await.unwrap()).await;
    assert_eq!(r.status, 401);
}

/// Every refusal of the layer is `Cache-Control: no-store`, and only real gRPC (HTTP/2) gets a
/// gRPC-shaped answer: a REST route called over HTTP/1.1 with `content-type: application/grpc`
/// gets its plain 401, never `200 OK` with `grpc-status`.
#[tokio::test]
async fn rejections_are_no_store_and_grpc_shaped_only_over_http2() {
    let h = harness();
    let (at, _) = h.login().await;
    let layer = || {
        h.server
            .bearer_layer()
            .require_scope(Scope::parse("admin").unwrap())
    };
    let bearer = format!("Bearer {at}");
    let cases: [(Option<&str>, u16); 4] = [
        (None, 401),
        (Some("Bearer a$b"), 400),
        (Some("Bearer unknown-token"), 401),
        (Some(bearer.as_str()), 403),
    ];
    for (auth, status) in cases {
        let r = h.protected(layer(), auth).await;
        assert_eq!(r.status, status, "{auth:?}");
        assert_eq!(r.header("cache-control"), Some("no-store"), "{auth:?}");
    }
    let grpc_over_http1 = Request::post("/api/notes")
        .header("content-type", "application/grpc")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let r = call_protected(layer(), grpc_over_http1).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("grpc-status"), None);
    assert_eq!(r.header("www-authenticate"), Some(REALM));
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

/// Under axum's `nest`, a layer inside the nested router sees the path with the prefix
/// stripped; outside it, the whole path. `require_scope_for` matches the path its layer sees.
#[tokio::test]
async fn require_scope_for_matches_the_path_its_layer_sees_under_nest() {
    use axum::{Router, routing::get};
    use tower::ServiceExt;
    let h = harness();
    let (reader, _) = h.login_as(APP, "alice", "wonderland", "&scope=read").await;
    let (admin, _) = h
        .login_as(APP, "alice", "wonderland", "&scope=read+write")
        .await;
    let scope = |s: &str| Scope::parse(s).unwrap();
    let routes = || {
        Router::new()
            .route("/admin", get(|| async { "admin" }))
            .route("/notes", get(|| async { "notes" }))
    };
    let call = |app: Router, path: &'static str, token: String| async move {
        let req = Request::get(path)
            .header("authorization", format!("Bearer {token}"))
            .body(axum::body::Body::empty())
            .unwrap();
        app.oneshot(req).await.unwrap().status().as_u16()
    };
    let layer = h.server.bearer_layer().require_scope(scope("read"));
    // Inside the nest: the rule names the path relative to the nested router.
    let inside = Router::new().nest(
        "/api",
        routes().layer(layer.clone().require_scope_for("/admin", scope("write"))),
    );
    // Outside: the whole path.
    let outside = Router::new().nest("/api", routes()).layer(
        layer
            .clone()
            .require_scope_for("/api/admin", scope("write")),
    );
    for app in [inside, outside] {
        assert_eq!(call(app.clone(), "/api/admin", reader.clone()).await, 403);
        assert_eq!(call(app.clone(), "/api/admin", admin.clone()).await, 200);
        assert_eq!(call(app.clone(), "/api/notes", reader.clone()).await, 200);
    }
    // The pitfall the docs warn of: the whole path on a layer inside the nest never matches,
    // so the layer's default applies. With the strictest requirement as the default and rules
    // that relax it, a rule that does not match fails closed.
    let misnamed = Router::new().nest(
        "/api",
        routes().layer(
            layer
                .clone()
                .require_scope_for("/api/admin", scope("write")),
        ),
    );
    assert_eq!(call(misnamed, "/api/admin", reader.clone()).await, 200);
    let strict_default = Router::new().nest(
        "/api",
        routes().layer(
            h.server
                .bearer_layer()
                .require_scope(scope("write"))
                .require_scope_for("/api/notes", scope("read")),
        ),
    );
    assert_eq!(
        call(strict_default.clone(), "/api/admin", reader.clone()).await,
        403
    );
    assert_eq!(
        call(strict_default, "/api/notes", reader).await,
        403,
        "fails closed"
    );
}

/// The app words the refusals (RFC 9457 problem details here); the status, the challenge and
/// `no-store` stay the layer's whatever the renderer sets, on the synchronous path (memory
/// store), the asynchronous one (a store that is down) and for every kind of refusal. gRPC
/// requests are answered in gRPC's terms, without the renderer.
#[tokio::test]
async fn the_app_words_refusals_but_status_challenge_and_no_store_stay_the_layers() {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::{Router, body::Body, routing::get};
    use http::{StatusCode, Version};
    use tower::ServiceExt;
    use tower_oauth2::bearer::{Rejection, RejectionContext};

    let rendered = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&rendered);
    let problem = move |r: &RejectionContext<'_>| {
        count.fetch_add(1, Ordering::SeqCst);
        let body = serde_json::json!({
            "type": "about:blank",
            "status": r.status().as_u16(),
            "title": r.description(),
            "error": r.error_code(),
            "required_scope": r.required_scope().as_str(),
            "instance": r.uri().path(),
        });
        http::Response::builder()
            .header("content-type", "application/problem+json")
            // All three are the layer's to set: these must not survive.
            .status(StatusCode::OK)
            .header("www-authenticate", "Basic realm=\"mine\"")
            .header("cache-control", "public, max-age=3600")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let app = |server: &AuthServer| {
        Router::new()
            .route("/api/notes", get(|| async { "notes" }))
            .route_layer(
                server
                    .bearer_layer()
                    .require_scope(Scope::parse("write").unwrap())
                    .render_rejection(problem.clone()),
            )
    };
    let call = |app: Router, auth: Option<String>, grpc: bool| async move {
        let mut req = Request::get("/api/notes");
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        if grpc {
            req = req
                .version(Version::HTTP_2)
                .header("content-type", "application/grpc");
        }
        let res = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        let (parts, body) = res.into_parts();
        let body = axum::body::to_bytes(body, 1 << 16).await.unwrap();
        (parts, body)
    };
    let h = harness();
    let (without_scope, _) = h.login_as(APP, "alice", "wonderland", "&scope=read").await;
    let (with_scope, _) = h
        .login_as(APP, "alice", "wonderland", "&scope=read+write")
        .await;
    let challenge = |error: &str, description: &str| {
        format!("{REALM}, error=\"{error}\", error_description=\"{description}\"")
    };
    let cases = [
        (None, Rejection::Missing, REALM.to_owned()),
        (
            Some("Bearer a$b".to_owned()),
            Rejection::Malformed,
            challenge("invalid_request", "Malformed bearer credentials"),
        ),
        (
            Some("Bearer unknown-token".to_owned()),
            Rejection::Invalid,
            challenge("invalid_token", "The access token is invalid or revoked"),
        ),
        (
            Some(format!("Bearer {without_scope}")),
            Rejection::InsufficientScope,
            format!(
                "{}, scope=\"write\"",
                challenge(
                    "insufficient_scope",
                    "The access token does not grant the scope this resource requires"
                )
            ),
        ),
    ];
    for (auth, rejection, www) in cases {
        let (parts, body) = call(app(&h.server), auth.clone(), false).await;
        assert_eq!(parts.status, rejection.status(), "{auth:?}");
        assert_eq!(parts.headers["www-authenticate"], www.as_str(), "{auth:?}");
        assert_eq!(parts.headers.get_all("www-authenticate").iter().count(), 1);
        assert_eq!(parts.headers["cache-control"], "no-store", "{auth:?}");
        assert_eq!(parts.headers["content-type"], "application/problem+json");
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["status"], rejection.status().as_u16(), "{auth:?}");
        assert_eq!(json["title"], rejection.description());
        assert_eq!(json["error"].as_str(), rejection.error_code());
        assert_eq!(json["required_scope"], "write");
        assert_eq!(json["instance"], "/api/notes");
    }
    // The token that has the scope passes, untouched by the renderer.
    let (parts, body) = call(app(&h.server), Some(format!("Bearer {with_scope}")), false).await;
    assert_eq!((parts.status, &body[..]), (StatusCode::OK, &b"notes"[..]));
    // Expired.
    h.clock.advance(std::time::Duration::from_secs(7200));
    let (parts, body) = call(app(&h.server), Some(format!("Bearer {with_scope}")), false).await;
    assert_eq!(parts.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        parts.headers["www-authenticate"],
        challenge("invalid_token", "The access token expired").as_str()
    );
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["title"], "The access token expired");
    // The asynchronous path: a store that is down is 503, with no challenge at all (the
    // renderer's own is removed), still no-store.
    let (parts, body) = call(
        app(&down_server()),
        Some("Bearer abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG".into()),
        false,
    )
    .await;
    assert_eq!(parts.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(parts.headers.get("www-authenticate"), None);
    assert_eq!(parts.headers["cache-control"], "no-store");
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (json["status"].as_u64(), json["error"].as_str()),
        (Some(503), None)
    );
    // gRPC: answered in gRPC's terms; the renderer is not asked.
    let before = rendered.load(Ordering::SeqCst);
    let (parts, body) = call(app(&h.server), None, true).await;
    assert_eq!(parts.status, StatusCode::OK);
    assert_eq!(parts.headers["grpc-status"], "16");
    assert_eq!(parts.headers["www-authenticate"], REALM);
    assert_eq!(parts.headers["cache-control"], "no-store");
    assert!(body.is_empty());
    assert_eq!(
        rendered.load(Ordering::SeqCst),
        before,
        "no rendering for gRPC"
    );
}

/// RFC 9728 over real HTTP: the resource's metadata at the well-known path (with the resource's
/// path appended, and without for a resource at the root), and every challenge of the layer
/// naming it — with the scope to ask for on a 401, and on a 403 — for HTTP and gRPC alike.
#[tokio::test]
async fn the_protected_resource_metadata_is_served_and_named_by_every_challenge() {
    use axum::{Router, routing};
    use tower_oauth2::bearer::ProtectedResourceMetadata;

    let h = harness();
    let (reader, _) = h.login_as(APP, "alice", "wonderland", "&scope=read").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let resource = format!("http://{addr}/mcp");
    let metadata = ProtectedResourceMetadata::new(&resource)
        .authorization_server("http://127.0.0.1:3000")
        .scopes_supported(["read", "write"])
        .resource_name("Notes over MCP");
    let root = ProtectedResourceMetadata::new(format!("http://{addr}"))
        .authorization_server("http://127.0.0.1:3000")
        .bearer_methods_supported(true, false);
    let layer = h
        .server
        .bearer_layer()
        .require_scope(Scope::parse("write").unwrap())
        .resource_metadata(metadata.metadata_url());
    let app = Router::new()
        .route(
            "/mcp",
            routing::get(|| async { "tools" }).post(|| async { "tools" }),
        )
        .route_layer(layer)
        .route_service(&metadata.well_known_path(), metadata.endpoint())
        .route_service(&root.well_known_path(), root.endpoint());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let url = |path: &str| format!("http://{addr}{path}");

    // The documents.
    let r = http(fetch(
        url("/.well-known/oauth-protected-resource/mcp"),
        None,
    ))
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("cache-control"), Some("public, max-age=300"));
    assert_eq!(
        r.json(),
        serde_json::json!({
            "resource": resource,
            "authorization_servers": ["http://127.0.0.1:3000"],
            "scopes_supported": ["read", "write"],
            "bearer_methods_supported": ["header"],
            "resource_name": "Notes over MCP",
        })
    );
    let r = http(fetch(url("/.well-known/oauth-protected-resource"), None)).await;
    assert_eq!(r.json()["resource"], format!("http://{addr}"));
    assert_eq!(
        r.json()["bearer_methods_supported"],
        serde_json::json!(["header", "query"])
    );
    let r = http(form(
        &url("/.well-known/oauth-protected-resource/mcp"),
        None,
        "",
    ))
    .await;
    assert_eq!(
        (r.status.as_u16(), r.header("allow")),
        (405, Some("GET, HEAD"))
    );

    // The challenges.
    let named = format!("resource_metadata=\"{}\"", metadata.metadata_url());
    let r = http(fetch(url("/mcp"), None)).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate").unwrap(),
        format!("{REALM}, {named}, scope=\"write\"")
    );
    let r = http(fetch(url("/mcp"), Some("Bearer unknown-token"))).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate").unwrap(),
        format!(
            "{REALM}, error=\"invalid_token\", error_description=\"The access token is invalid or revoked\", {named}, scope=\"write\""
        )
    );
    let r = http(fetch(url("/mcp"), Some(&format!("Bearer {reader}")))).await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.header("www-authenticate").unwrap(),
        format!(
            "{REALM}, error=\"insufficient_scope\", error_description=\"The access token does not grant the scope this resource requires\", scope=\"write\", {named}"
        )
    );
    // A malformed request is a 400: no discovery there.
    let r = http(fetch(url("/mcp"), Some("Bearer a$b"))).await;
    assert_eq!(r.status, 400);
    assert!(
        !r.header("www-authenticate")
            .unwrap()
            .contains("resource_metadata")
    );
    // gRPC carries the same challenge.
    let layer = h
        .server
        .bearer_layer()
        .require_scope(Scope::parse("write").unwrap())
        .resource_metadata(metadata.metadata_url());
    let req = Request::post("/notes.Notes/Add")
        .version(http::Version::HTTP_2)
        .header("content-type", "application/grpc")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let r = call_protected(layer, req).await;
    assert_eq!(r.header("grpc-status"), Some("16"));
    assert_eq!(
        r.header("www-authenticate").unwrap(),
        format!("{REALM}, {named}, scope=\"write\"")
    );
}

fn fetch(url: String, authorization: Option<&str>) -> Request<Full<Bytes>> {
    let mut b = Request::get(url);
    if let Some(a) = authorization {
        b = b.header("authorization", a);
    }
    b.body(Full::new(Bytes::new())).unwrap()
}
