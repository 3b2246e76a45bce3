//! Hostile input: every case asserts the exact RFC status and error, that nothing answered 500,
//! and that the store is unchanged — same entry counts, and a pair issued beforehand still works.

use std::time::Duration;

use crate::support::*;
use bytes::Bytes;
use http::{HeaderValue, Request};
use http_body_util::Full;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;
use tower_oauth2::{store::RefreshTokenState, token::TokenHash};

#[derive(Clone, Copy, Debug)]
enum Endpoint {
    Token,
    Revoke,
    Introspect,
}

#[derive(Debug)]
enum Expect {
    /// Status and RFC 6749 `error` code in a JSON body.
    Error(u16, &'static str),
    /// 405 with `Allow: POST`.
    MethodNotAllowed,
}

struct Case {
    name: &'static str,
    endpoint: Endpoint,
    method: &'static str,
    headers: Vec<(&'static str, HeaderValue)>,
    body: Vec<u8>,
    expect: Expect,
}

fn hv(v: &str) -> HeaderValue {
    HeaderValue::from_str(v).unwrap()
}

const FORM: &str = "application/x-www-form-urlencoded";

fn post(
    name: &'static str,
    endpoint: Endpoint,
    auth: Option<(&str, &str)>,
    body: impl Into<Vec<u8>>,
    expect: Expect,
) -> Case {
    let mut headers = vec![("content-type", hv(FORM))];
    if let Some((id, secret)) = auth {
        headers.push(("authorization", hv(&basic(id, secret))));
    }
    Case {
        name,
        endpoint,
        method: "POST",
        headers,
        body: body.into(),
        expect,
    }
}

fn with_headers(
    name: &'static str,
    endpoint: Endpoint,
    headers: Vec<(&'static str, HeaderValue)>,
    body: impl Into<Vec<u8>>,
    expect: Expect,
) -> Case {
    Case {
        name,
        endpoint,
        method: "POST",
        headers,
        body: body.into(),
        expect,
    }
}

const APP: Option<(&str, &str)> = Some(("app", "app-secret"));
const CC: Option<(&str, &str)> = Some(("cc-only", "cc-secret"));
const RS: Option<(&str, &str)> = Some(("rs", "rs-secret"));

fn cases() -> Vec<Case> {
    use Endpoint::*;
    use Expect::*;
    let bad = |code| Error(400, code);
    let app_basic = || ("authorization", hv(&basic("app", "app-secret")));
    let long_scope = format!("grant_type=client_credentials&scope={}", "a ".repeat(6000));
    let long_token = format!(
        "grant_type=refresh_token&refresh_token={}",
        "A".repeat(12_000)
    );
    vec![
        // Parameters: missing, empty, repeated.
        post(
            "missing grant_type",
            Token,
            APP,
            "scope=read",
            bad("invalid_request"),
        ),
        post(
            "empty grant_type",
            Token,
            APP,
            "grant_type=&scope=read",
            bad("invalid_request"),
        ),
        post(
            "repeated grant_type",
            Token,
            CC,
            "grant_type=client_credentials&grant_type=client_credentials",
            bad("invalid_request"),
        ),
        post(
            "repeated scope",
            Token,
            CC,
            "grant_type=client_credentials&scope=read&scope=read",
            bad("invalid_request"),
        ),
        post(
            "repeated client_id",
            Token,
            None,
            "grant_type=client_credentials&client_id=cc-only&client_id=cc-only&client_secret=cc-secret",
            bad("invalid_request"),
        ),
        post(
            "repeated empty parameter",
            Token,
            CC,
            "grant_type=client_credentials&x=&x=",
            bad("invalid_request"),
        ),
        post(
            "password grant without password",
            Token,
            APP,
            "grant_type=password&username=alice",
            bad("invalid_request"),
        ),
        post(
            "password grant with empty username",
            Token,
            APP,
            "grant_type=password&username=&password=wonderland",
            bad("invalid_request"),
        ),
        post(
            "refresh without refresh_token",
            Token,
            APP,
            "grant_type=refresh_token",
            bad("invalid_request"),
        ),
        post(
            "code grant without code",
            Token,
            APP,
            "grant_type=authorization_code",
            bad("invalid_request"),
        ),
        post(
            "unknown grant type",
            Token,
            APP,
            "grant_type=implicit",
            bad("unsupported_grant_type"),
        ),
        post(
            "grant type with a NUL",
            Token,
            APP,
            "grant_type=password%00",
            bad("unsupported_grant_type"),
        ),
        // Content type.
        with_headers(
            "no content-type",
            Token,
            vec![app_basic()],
            "grant_type=client_credentials",
            bad("invalid_request"),
        ),
        with_headers(
            "JSON body",
            Token,
            vec![("content-type", hv("application/json")), app_basic()],
            r#"{"grant_type":"client_credentials"}"#,
            bad("invalid_request"),
        ),
        with_headers(
            "multipart",
            Token,
            vec![
                ("content-type", hv("multipart/form-data; boundary=x")),
                app_basic(),
            ],
            "--x--",
            bad("invalid_request"),
        ),
        with_headers(
            "latin-1 charset",
            Token,
            vec![
                (
                    "content-type",
                    hv("application/x-www-form-urlencoded; charset=ISO-8859-1"),
                ),
                app_basic(),
            ],
            "grant_type=client_credentials",
            bad("invalid_request"),
        ),
        with_headers(
            "two content-types",
            Token,
            vec![
                ("content-type", hv(FORM)),
                ("content-type", hv(FORM)),
                app_basic(),
            ],
            "grant_type=client_credentials",
            bad("invalid_request"),
        ),
        // Encoding.
        post(
            "invalid percent-encoding",
            Token,
            CC,
            "grant_type=client_credentials&scope=%G1",
            bad("invalid_request"),
        ),
        post(
            "truncated percent-encoding",
            Token,
            CC,
            "grant_type=client_credentials&scope=%4",
            bad("invalid_request"),
        ),
        post(
            "raw non-UTF-8 bytes",
            Token,
            CC,
            b"grant_type=client_credentials&scope=\xff\xfe".to_vec(),
            bad("invalid_request"),
        ),
        post(
            "percent-encoded non-UTF-8",
            Token,
            CC,
            "grant_type=client_credentials&scope=%C3%28",
            bad("invalid_request"),
        ),
        post(
            "percent-encoded name with invalid UTF-8",
            Token,
            CC,
            "grant_type=client_credentials&%FF=1",
            bad("invalid_request"),
        ),
        // Size.
        post(
            "body over the cap",
            Token,
            CC,
            format!("grant_type=client_credentials&pad={}", "x".repeat(17_000)),
            Error(413, "invalid_request"),
        ),
        with_headers(
            "Content-Length lies low",
            Token,
            vec![
                ("content-type", hv(FORM)),
                ("content-length", hv("12")),
                ("authorization", hv(&basic("cc-only", "cc-secret"))),
            ],
            format!("grant_type=client_credentials&pad={}", "x".repeat(17_000)),
            Error(413, "invalid_request"),
        ),
        with_headers(
            "Content-Length not a number",
            Token,
            vec![
                ("content-type", hv(FORM)),
                ("content-length", hv("twelve")),
                ("authorization", hv(&basic("cc-only", "cc-secret"))),
            ],
            "grant_type=client_credentials",
            bad("invalid_request"),
        ),
        post(
            "very long scope",
            Token,
            CC,
            long_scope,
            bad("invalid_scope"),
        ),
        post(
            "scope with a quote",
            Token,
            CC,
            "grant_type=client_credentials&scope=re%22ad",
            bad("invalid_scope"),
        ),
        post(
            "scope with a backslash",
            Token,
            CC,
            "grant_type=client_credentials&scope=re%5Cad",
            bad("invalid_scope"),
        ),
        post(
            "very long refresh token",
            Token,
            APP,
            long_token,
            bad("invalid_grant"),
        ),
        post(
            "refresh token outside b64token",
            Token,
            APP,
            "grant_type=refresh_token&refresh_token=abc%20def%24",
            bad("invalid_grant"),
        ),
        // Authorization headers at the token endpoint.
        with_headers(
            "Basic with broken base64",
            Token,
            vec![
                ("content-type", hv(FORM)),
                ("authorization", hv("Basic %%%")),
            ],
            "grant_type=client_credentials",
            bad("invalid_request"),
        ),
        with_headers(
            "Basic without a colon",
            Token,
            vec![
                ("content-type", hv(FORM)),
                ("authorization", hv("Basic YXBw")),
            ],
            "grant_type=client_credentials",
            bad("invalid_request"),
        ),
        with_headers(
            "Basic with an empty id",
            Token,
            vec![
                ("content-type", hv(FORM)),
                ("authorization", hv("Basic OnNlY3JldA==")),
            ],
            "grant_type=client_credentials",
            bad("invalid_request"),
        ),
        with_headers(
            "Basic with bad percent-encoding in the id",
            Token,
            vec![
                ("content-type", hv(FORM)),
                ("authorization", hv(&basic("a%zz", "s"))),
            ],
            "grant_type=client_credentials",
            bad("invalid_request"),
        ),
        with_headers(
            "unescaped colon in the client id",
            Token,
            vec![
                ("content-type", hv(FORM)),
                ("authorization", hv(&basic("weird:id%", "weird-secret"))),
            ],
            "grant_type=client_credentials",
            bad("invalid_request"),
        ),
        post(
            "Basic and body credentials together",
            Token,
            CC,
            "grant_type=client_credentials&client_id=cc-only&client_secret=cc-secret",
            bad("invalid_request"),
        ),
        with_headers(
            "two Authorization headers",
            Token,
            vec![
                ("content-type", hv(FORM)),
                ("authorization", hv(&basic("cc-only", "cc-secret"))),
                ("authorization", hv(&basic("cc-only", "cc-secret"))),
            ],
            "grant_type=client_credentials",
            bad("invalid_request"),
        ),
        with_headers(
            "Bearer at the token endpoint",
            Token,
            vec![
                ("content-type", hv(FORM)),
                ("authorization", hv("Bearer abc")),
            ],
            "grant_type=client_credentials",
            Error(401, "invalid_client"),
        ),
        post(
            "wrong secret",
            Token,
            Some(("cc-only", "wrong")),
            "grant_type=client_credentials",
            Error(401, "invalid_client"),
        ),
        post(
            "unknown client",
            Token,
            Some(("nobody", "x")),
            "grant_type=client_credentials",
            Error(401, "invalid_client"),
        ),
        post(
            "confidential client without its secret",
            Token,
            None,
            "grant_type=client_credentials&client_id=cc-only",
            Error(401, "invalid_client"),
        ),
        post(
            "secret without client_id",
            Token,
            None,
            "grant_type=client_credentials&client_secret=cc-secret",
            bad("invalid_request"),
        ),
        // Methods.
        Case {
            name: "GET token endpoint",
            endpoint: Token,
            method: "GET",
            headers: vec![],
            body: vec![],
            expect: MethodNotAllowed,
        },
        Case {
            name: "PUT token endpoint",
            endpoint: Token,
            method: "PUT",
            headers: vec![("content-type", hv(FORM))],
            body: b"grant_type=client_credentials".to_vec(),
            expect: MethodNotAllowed,
        },
        Case {
            name: "HEAD token endpoint",
            endpoint: Token,
            method: "HEAD",
            headers: vec![],
            body: vec![],
            expect: MethodNotAllowed,
        },
        Case {
            name: "DELETE revocation endpoint",
            endpoint: Revoke,
            method: "DELETE",
            headers: vec![],
            body: vec![],
            expect: MethodNotAllowed,
        },
        Case {
            name: "GET introspection endpoint",
            endpoint: Introspect,
            method: "GET",
            headers: vec![],
            body: vec![],
            expect: MethodNotAllowed,
        },
        // Revocation.
        post(
            "revoke without token",
            Revoke,
            APP,
            "token_type_hint=access_token",
            bad("invalid_request"),
        ),
        post(
            "revoke with repeated token",
            Revoke,
            APP,
            "token=a&token=b",
            bad("invalid_request"),
        ),
        post(
            "revoke unauthenticated",
            Revoke,
            None,
            "token=abc",
            Error(401, "invalid_client"),
        ),
        with_headers(
            "revoke with JSON",
            Revoke,
            vec![("content-type", hv("application/json")), app_basic()],
            r#"{"token":"abc"}"#,
            bad("invalid_request"),
        ),
        post(
            "revoke body over the cap",
            Revoke,
            APP,
            format!("token={}", "x".repeat(17_000)),
            Error(413, "invalid_request"),
        ),
        post(
            "revoke with broken encoding",
            Revoke,
            APP,
            "token=%zz",
            bad("invalid_request"),
        ),
        // Introspection.
        post(
            "introspect without token",
            Introspect,
            RS,
            "",
            bad("invalid_request"),
        ),
        post(
            "introspect unauthenticated",
            Introspect,
            None,
            "token=abc",
            Error(401, "invalid_client"),
        ),
        post(
            "introspect by a client not allowed to",
            Introspect,
            APP,
            "token=abc",
            Error(403, "unauthorized_client"),
        ),
        post(
            "introspect with repeated token",
            Introspect,
            RS,
            "token=a&token=a",
            bad("invalid_request"),
        ),
        post(
            "introspect by a public client",
            Introspect,
            None,
            "token=abc&client_id=spa",
            Error(401, "invalid_client"),
        ),
    ]
}

/// What must not change: entry counts, and a pair issued before the hostile requests.
async fn snapshot(h: &Harness, at: &str, rt: &str) -> String {
    let rec = h
        .server
        .store()
        .find_refresh_token(&TokenHash::of(rt))
        .await
        .unwrap();
    format!(
        "{:?} access_ok={} refresh_active={}",
        h.store().counts(),
        h.accepted(at).await,
        rec.is_some_and(|r| r.state == RefreshTokenState::Active)
    )
}

#[tokio::test]
async fn hostile_requests_at_the_endpoints() {
    let h = harness_with(|c| c.max_body_bytes = 16 * 1024);
    let (at, rt) = h.login().await;
    let before = snapshot(&h, &at, &rt).await;
    let cases = cases();
    assert!(cases.len() >= 50, "{} cases", cases.len());
    for case in cases {
        let mut req = Request::builder().method(case.method).uri("/x");
        for (k, v) in &case.headers {
            req = req.header(*k, v.clone());
        }
        let req = req.body(Full::new(Bytes::from(case.body))).unwrap();
        let res = match case.endpoint {
            Endpoint::Token => h.server.token_endpoint().oneshot(req).await,
            Endpoint::Revoke => h.server.revocation_endpoint().oneshot(req).await,
            Endpoint::Introspect => h.server.introspection_endpoint().oneshot(req).await,
        };
        let r = reply(res.unwrap()).await;
        assert_ne!(r.status, 500, "{}", case.name);
        match case.expect {
            Expect::Error(status, code) => {
                assert_eq!(
                    r.status.as_u16(),
                    status,
                    "{}: {:?}",
                    case.name,
                    String::from_utf8_lossy(&r.body)
                );
                assert_eq!(r.json()["error"], code, "{}", case.name);
                assert_eq!(r.header("cache-control"), Some("no-store"), "{}", case.name);
            }
            Expect::MethodNotAllowed => {
                assert_eq!(r.status, 405, "{}", case.name);
                assert_eq!(r.header("allow"), Some("POST"), "{}", case.name);
            }
        }
        assert_eq!(
            snapshot(&h, &at, &rt).await,
            before,
            "{} changed the store",
            case.name
        );
    }
}

#[tokio::test]
async fn hostile_authorization_headers_at_the_bearer_layer() {
    let h = harness();
    let (at, rt) = h.login().await;
    let before = snapshot(&h, &at, &rt).await;
    let realm = "Bearer realm=\"tower-oauth2\"";
    let malformed = "Bearer realm=\"tower-oauth2\", error=\"invalid_request\", error_description=\"Malformed bearer credentials\"";
    let invalid = "Bearer realm=\"tower-oauth2\", error=\"invalid_token\", error_description=\"The access token is invalid or revoked\"";
    let long = "A".repeat(8000);
    let cases: Vec<(&str, Vec<HeaderValue>, u16, Option<&str>)> = vec![
        (
            "Bearer without a token",
            vec![hv("Bearer")],
            400,
            Some(malformed),
        ),
        (
            "Bearer and spaces only",
            vec![hv("Bearer    ")],
            400,
            Some(malformed),
        ),
        (
            "token with a dollar",
            vec![hv("Bearer ab$cd")],
            400,
            Some(malformed),
        ),
        (
            "token with a space inside",
            vec![hv(&format!("Bearer {} x", &at[..20]))],
            400,
            Some(malformed),
        ),
        (
            "token with a comma",
            vec![hv("Bearer a,b")],
            400,
            Some(malformed),
        ),
        (
            "padding in the middle",
            vec![hv("Bearer ab=cd")],
            400,
            Some(malformed),
        ),
        (
            "two Authorization headers",
            vec![hv(&format!("Bearer {at}")), hv(&format!("Bearer {at}"))],
            400,
            Some(malformed),
        ),
        (
            "non-UTF-8 header bytes",
            vec![HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap()],
            400,
            Some(malformed),
        ),
        (
            "very long unknown token",
            vec![hv(&format!("Bearer {long}"))],
            401,
            Some(invalid),
        ),
        (
            "refresh token as bearer",
            vec![hv(&format!("Bearer {rt}"))],
            401,
            Some(invalid),
        ),
        (
            "Basic credentials",
            vec![hv(&basic("app", "app-secret"))],
            401,
            Some(realm),
        ),
        ("unknown scheme", vec![hv("Token abc")], 401, Some(realm)),
        (
            "no space after the scheme",
            vec![hv(&format!("Bearer={at}"))],
            401,
            Some(realm),
        ),
        ("empty header", vec![hv("")], 401, Some(realm)),
    ];
    assert!(cases.len() >= 14);
    for (name, values, status, challenge) in cases {
        let mut req = Request::get("/api/me");
        for v in values {
            req = req.header("authorization", v);
        }
        let r = call_protected(
            h.server.bearer_layer(),
            req.body(Full::new(Bytes::new())).unwrap(),
        )
        .await;
        assert_eq!(r.status.as_u16(), status, "{name}");
        assert_eq!(r.header("www-authenticate"), challenge, "{name}");
    }
    // Tolerated variants of a good header.
    for value in [
        format!("bearer {at}"),
        format!("BEARER  {at}"),
        format!("Bearer {at}  "),
    ] {
        let r = call_protected(
            h.server.bearer_layer(),
            Request::get("/")
                .header("authorization", value.as_str())
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, 200, "{value:?}");
    }
    assert_eq!(snapshot(&h, &at, &rt).await, before);
}

/// Raw HTTP/1.1 on loopback, to send what well-behaved clients cannot.
async fn raw(addr: std::net::SocketAddr, head: &str, body: &[u8]) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut buf = vec![0u8; 4096];
    // The server must answer without waiting for the rest of a body it refuses.
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("no answer")
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn oversized_bodies_over_raw_http_are_refused_without_reading_them() {
    let h = harness();
    let addr = serve(&h.server).await;
    let auth = basic("cc-only", "cc-secret");
    // Declares 10 MB and sends 30 bytes: refused at once from the header.
    let head = format!(
        "POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: {FORM}\r\nAuthorization: {auth}\r\nContent-Length: 10000000\r\n\r\n"
    );
    let answer = raw(addr, &head, b"grant_type=client_credentials&").await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("invalid_request"));
    // Chunked, no length: cut at the cap while the client is still sending.
    let head = format!(
        "POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: {FORM}\r\nAuthorization: {auth}\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let mut body = Vec::new();
    for _ in 0..20 {
        body.extend_from_slice(b"400\r\n");
        body.extend_from_slice(&[b'a'; 0x400]);
        body.extend_from_slice(b"\r\n");
    }
    let answer = raw(addr, &head, &body).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert_eq!(h.store().counts().grants, 0);
}
