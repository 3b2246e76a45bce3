//! The whole app over real HTTP/1.1 on loopback: axum mounting every endpoint, a hyper client.

use crate::support::*;
use bytes::Bytes;
use http::Request;
use http_body_util::Full;

fn post(
    addr: std::net::SocketAddr,
    path: &str,
    auth: Option<(&str, &str)>,
    body: &str,
) -> Request<Full<Bytes>> {
    form(&format!("http://{addr}{path}"), auth, body)
}

fn get(addr: std::net::SocketAddr, path: &str, bearer: Option<&str>) -> Request<Full<Bytes>> {
    let mut b = Request::get(format!("http://{addr}{path}"));
    if let Some(t) = bearer {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(Full::new(Bytes::new())).unwrap()
}

#[tokio::test]
async fn password_refresh_and_protected_resource_over_http() {
    let h = harness();
    let addr = serve(&h.server).await;
    let r = http(post(
        addr,
        "/oauth/token",
        Some(("app", "app-secret")),
        "grant_type=password&username=alice&password=wonderland",
    ))
    .await;
    let v = r.assert_token();
    let at0 = v["access_token"].as_str().unwrap().to_owned();
    let rt0 = v["refresh_token"].as_str().unwrap().to_owned();

    let me = http(get(addr, "/api/me", Some(&at0))).await;
    assert_eq!(me.status, 200);
    assert_eq!(
        me.json(),
        serde_json::json!({"client_id": "app", "user": "alice", "scope": "read write"})
    );

    let r = http(post(
        addr,
        "/oauth/token",
        Some(("app", "app-secret")),
        &format!("refresh_token={rt0}&grant_type=refresh_token"),
    ))
    .await;
    let v = r.assert_token();
    let at1 = v["access_token"].as_str().unwrap().to_owned();
    assert_eq!(http(get(addr, "/api/me", Some(&at1))).await.status, 200);

    // Replay over HTTP: the family dies, the layer rejects both access tokens at once.
    let r = http(post(
        addr,
        "/oauth/token",
        Some(("app", "app-secret")),
        &format!("refresh_token={rt0}&grant_type=refresh_token"),
    ))
    .await;
    r.assert_error(400, "invalid_grant");
    for at in [&at0, &at1] {
        let r = http(get(addr, "/api/me", Some(at))).await;
        assert_eq!(r.status, 401);
        assert!(
            r.header("www-authenticate")
                .unwrap()
                .contains("error=\"invalid_token\"")
        );
    }
}

#[tokio::test]
async fn client_credentials_revocation_and_introspection_over_http() {
    let h = harness();
    let addr = serve(&h.server).await;
    let v = http(post(
        addr,
        "/oauth/token",
        None,
        "grant_type=client_credentials&client_id=cc-only&client_secret=cc-secret",
    ))
    .await
    .assert_token();
    let at = v["access_token"].as_str().unwrap();
    let r = http(post(
        addr,
        "/oauth/introspect",
        Some(("rs", "rs-secret")),
        &format!("token={at}"),
    ))
    .await;
    assert_eq!(r.json()["active"], true);
    assert_eq!(r.json()["client_id"], "cc-only");
    let r = http(post(
        addr,
        "/oauth/revoke",
        Some(("cc-only", "cc-secret")),
        &format!("token={at}&token_type_hint=access_token"),
    ))
    .await;
    assert_eq!(r.status, 200);
    let r = http(post(
        addr,
        "/oauth/introspect",
        Some(("rs", "rs-secret")),
        &format!("token={at}"),
    ))
    .await;
    assert_eq!(&r.body[..], br#"{"active":false}"#);
}

#[tokio::test]
async fn errors_over_http_carry_their_headers() {
    let h = harness();
    let addr = serve(&h.server).await;
    let r = http(post(
        addr,
        "/oauth/token",
        Some(("app", "nope")),
        "grant_type=client_credentials",
    ))
    .await;
    r.assert_error(401, "invalid_client");
    assert_eq!(
        r.header("www-authenticate"),
        Some("Basic realm=\"tower-oauth2\"")
    );
    let r = http(get(addr, "/oauth/token", None)).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST"));
    let big = format!("grant_type=client_credentials&x={}", "y".repeat(20_000));
    let r = http(post(
        addr,
        "/oauth/token",
        Some(("cc-only", "cc-secret")),
        &big,
    ))
    .await;
    r.assert_error(413, "invalid_request");
    let r = http(get(addr, "/.well-known/oauth-authorization-server", None)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["token_endpoint"], "http://localhost/oauth/token");
}

#[tokio::test]
async fn authorization_code_with_pkce_over_http() {
    let h = harness();
    let addr = serve(&h.server).await;
    let code = h
        .server
        .issue_authorization_code(
            tower_oauth2::AuthorizationRequest::new("spa", "bob")
                .redirect_uri("https://spa.example/cb")
                .scope("write")
                .code_challenge("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", Some("S256")),
        )
        .await
        .unwrap();
    let body = format!(
        "grant_type=authorization_code&code={code}&client_id=spa&redirect_uri=https%3A%2F%2Fspa.example%2Fcb&code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    );
    let v = http(post(addr, "/oauth/token", None, &body))
        .await
        .assert_token();
    assert_eq!(v["scope"], "write");
    let me = http(get(addr, "/api/me", v["access_token"].as_str())).await;
    assert_eq!(me.json()["user"], "bob");
    http(post(addr, "/oauth/token", None, &body))
        .await
        .assert_error(400, "invalid_grant");
    assert_eq!(
        http(get(addr, "/api/me", v["access_token"].as_str()))
            .await
            .status,
        401
    );
}
