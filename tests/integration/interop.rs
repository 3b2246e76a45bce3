//! Implementations nobody here wrote, against the real quickstart process (`tests/interop/node`):
//! - oauth4webapi runs the authorization-code flow: it discovers the metadata (RFC 8414, the
//!   issuer must match), pushes the request (RFC 9126), validates the authorization response's
//!   `iss` (RFC 9207) and refuses a forged one, exchanges the code with PKCE and refreshes
//!   (`flow.mjs`);
//! - jose verifies our JWT access tokens against the published key set (`jwt.mjs`).
//!
//! Needs node and `npm ci` in that folder (`.ci/run` does it); otherwise skipped locally with
//! one line, and a failure in CI.

use crate::support::{
    form, http,
    node::{clients, node},
    quickstart,
};

#[test]
fn oauth4webapi_runs_the_code_flow_with_par_and_iss() {
    let Some(dir) = clients() else { return };
    let qs = quickstart::start(&[]);
    let issuer = format!("http://localhost:{}", qs.addr.port());
    let stdout = node(&dir, "flow.mjs", &[&issuer]);
    for step in [
        "discovery (RFC 8414)",
        "pushed authorization request (RFC 9126)",
        "validated with iss (RFC 9207)",
        "code exchanged with PKCE",
        "the access token works",
        "refreshed, with rotation",
    ] {
        assert!(stdout.contains(step), "missing {step:?} in:\n{stdout}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jose_verifies_our_jwt_access_tokens_and_revocation_still_works() {
    let Some(dir) = clients() else { return };
    let qs = quickstart::start(&["--access-token-format", "jwt"]);
    let base = format!("http://127.0.0.1:{}", qs.addr.port());
    let issuer = format!("http://localhost:{}", qs.addr.port());
    let at = demo_access_token(qs.addr.port()).await;
    assert_eq!(at.split('.').count(), 3, "a JWS compact serialisation");
    let dir2 = dir.clone();
    let (iss, token) = (issuer.clone(), at.clone());
    let stdout = tokio::task::spawn_blocking(move || node(&dir2, "jwt.mjs", &[&iss, &token]))
        .await
        .unwrap();
    for step in [
        "verified ES256",
        "sub test, client_id testclient",
        "tampered token is refused",
        "another audience is refused",
    ] {
        assert!(stdout.contains(step), "missing {step:?} in:\n{stdout}");
    }
    // Still revocable: revoked, it is refused by the quickstart's own layer and inactive at
    // introspection, however valid its signature.
    let r = http(form(
        &format!("{base}/oauth/revoke"),
        Some(("testclient", "secret")),
        &format!("token={at}"),
    ))
    .await;
    assert_eq!(r.status, 200);
    let me = http::Request::get(format!("{base}/api/me"))
        .header("authorization", format!("Bearer {at}"))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    assert_eq!(http(me).await.status, 401);
    let r = http(form(
        &format!("{base}/oauth/introspect"),
        Some(("testclient", "secret")),
        &format!("token={at}"),
    ))
    .await;
    assert_eq!(&r.body[..], br#"{"active":false}"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jose_verifies_tokens_signed_with_the_rsa_and_ed25519_keys_a_quickstart_is_given() {
    let Some(dir) = clients() else { return };
    let keys = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/integration/keys");
    for (file, alg) in [("rsa-pkcs8.pem", "RS256"), ("ed25519.pem", "EdDSA")] {
        let path = format!("{keys}/{file}");
        let qs = quickstart::start(&["--access-token-format", "jwt", "--signing-key", &path]);
        let issuer = format!("http://localhost:{}", qs.addr.port());
        let at = demo_access_token(qs.addr.port()).await;
        let d = dir.clone();
        let stdout = tokio::task::spawn_blocking(move || node(&d, "jwt.mjs", &[&issuer, &at]))
            .await
            .unwrap();
        for step in [
            format!("verified {alg}"),
            "tampered token is refused".into(),
        ] {
            assert!(stdout.contains(&step), "missing {step:?} in:\n{stdout}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_jose_signs_pass_our_jwt_validator() {
    use axum::{Json, Router, routing::get};
    use tower_oauth2::{BearerLayer, bearer::JwtValidator};
    let Some(dir) = clients() else { return };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let audience = "https://api.example";
    let (iss, d) = (issuer.clone(), dir.clone());
    let out = tokio::task::spawn_blocking(move || node(&d, "sign.mjs", &[&iss, audience]))
        .await
        .unwrap();
    let signed: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let jwks = signed["jwks"].clone();
    let app = Router::new().route(
        "/jwks.json",
        get(move || {
            let j = jwks.clone();
            async move { Json(j) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let v = JwtValidator::from_jwks(format!("{issuer}/jwks.json"), &issuer, audience)
        .build()
        .unwrap();
    let tokens = signed["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 3, "ES256, EdDSA and RS256");
    for token in tokens {
        let req = http::Request::get("/")
            .header(
                "authorization",
                format!("Bearer {}", token.as_str().unwrap()),
            )
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        let r = crate::support::call_protected(BearerLayer::with_validator(v.clone(), "api"), req)
            .await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let info = r.json();
        assert_eq!(
            (&info["sub"], &info["client_id"], &info["scope"]),
            (&"carol".into(), &"jose-client".into(), &"read".into())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_server_elsewhere_accepts_the_quickstarts_jwts_with_no_call_per_request() {
    use tower_oauth2::{BearerLayer, bearer::JwtValidator};
    // The quickstart in its own process; this test is the resource server.
    let qs = quickstart::start(&["--access-token-format", "jwt"]);
    let port = qs.addr.port();
    let issuer = format!("http://localhost:{port}");
    let v = JwtValidator::from_issuer(&issuer, &issuer).build().unwrap();
    let at = demo_access_token(port).await;
    let check = |token: String| bearer(BearerLayer::with_validator(v.clone(), "api"), token);
    let r = check(at.clone()).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        (r.json()["sub"].as_str(), r.json()["client_id"].as_str()),
        (Some("test"), Some("testclient"))
    );
    // Revocation-sensitive routes add introspection after the signature: once the token is
    // revoked, the signature alone still accepts it, the pair does not; a forged token is
    // refused by the signature check, with no call.
    let live = tower_oauth2::bearer::IntrospectionValidator::builder(
        format!("http://127.0.0.1:{port}/oauth/introspect"),
        "testclient",
        "secret",
    )
    .cache_ttl(std::time::Duration::ZERO)
    .build()
    .unwrap();
    let both = tower_oauth2::bearer::Both::new(v.clone(), live);
    let guarded =
        |token: String| bearer(BearerLayer::with_validator(both.clone(), "payments"), token);
    let second = demo_access_token(port).await;
    let r = guarded(second.clone()).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["sub"].as_str(), Some("test"));
    let r = http(form(
        &format!("http://127.0.0.1:{port}/oauth/revoke"),
        Some(("testclient", "secret")),
        &format!("token={second}"),
    ))
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        check(second.clone()).await.status,
        200,
        "the signature alone"
    );
    let r = guarded(second.clone()).await;
    assert_eq!(r.status, 401);
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("invalid_token")
    );
    // The payload's first character changed (`ey…`, `{"` encoded, becomes `fy…`).
    let (head, rest) = second.split_once('.').unwrap();
    let forged = format!("{head}.f{}", &rest[1..]);
    assert_eq!(guarded(forged).await.status, 401);
    let fetched = v.fetches();
    // With the authorization server gone, the token still checks: no call per request.
    drop(qs);
    assert_eq!(check(at).await.status, 200);
    assert_eq!(v.fetches(), fetched);
}

/// An access token from the quickstart on `port`, for its demo client and user.
async fn demo_access_token(port: u16) -> String {
    let v = http(form(
        &format!("http://127.0.0.1:{port}/oauth/token"),
        Some(("testclient", "secret")),
        "grant_type=password&username=test&password=test",
    ))
    .await
    .assert_token();
    v["access_token"].as_str().unwrap().to_owned()
}

/// `token` presented to `layer` as a bearer token.
async fn bearer(layer: tower_oauth2::BearerLayer, token: String) -> crate::support::Reply {
    let req = http::Request::get("/")
        .header("authorization", format!("Bearer {token}"))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    crate::support::call_protected(layer, req).await
}
