//! The bearer layer on a tonic 0.14 server (`Server::builder().layer(..)`), called by a real
//! tonic client over HTTP/2 on loopback: each rejection is a gRPC status.

#[path = "../../examples/grpc_notes/mod.rs"]
mod grpc_notes;

use std::{net::SocketAddr, sync::Arc};

use crate::support::*;
use grpc_notes::{ADD, LIST, NotesClient, NotesServer};
use tonic::{Code, transport::server::TcpIncoming};
use tower_oauth2::{AuthServer, BearerLayer, Scope, store::RedisStore};

async fn grpc_server(bearer: BearerLayer) -> SocketAddr {
    let incoming = TcpIncoming::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = incoming.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .layer(bearer)
            .add_service(NotesServer::default())
            .serve_with_incoming(incoming),
    );
    addr
}

fn layer(server: &AuthServer) -> BearerLayer {
    server
        .bearer_layer()
        .require_scope_for(LIST, Scope::parse("read").unwrap())
        .require_scope_for(ADD, Scope::parse("write").unwrap())
}

async fn client(addr: SocketAddr, token: Option<&str>) -> NotesClient {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    NotesClient::new(channel, token)
}

#[track_caller]
fn assert_code<T: std::fmt::Debug>(r: Result<T, tonic::Status>, code: Code, message: &str) {
    let status = r.expect_err("call should fail");
    assert_eq!(status.code(), code, "{status:?}");
    assert_eq!(status.message(), message);
}

#[tokio::test]
async fn each_outcome_is_a_grpc_status() {
    let h = harness();
    let addr = grpc_server(layer(&h.server)).await;

    assert_code(
        client(addr, None).await.list().await,
        Code::Unauthenticated,
        "missing bearer token",
    );
    assert_code(
        client(addr, Some("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"))
            .await
            .list()
            .await,
        Code::Unauthenticated,
        "invalid or revoked access token",
    );
    assert_code(
        client(addr, Some("not a token")).await.list().await,
        Code::Unauthenticated,
        "malformed bearer credentials",
    );

    // Good token with "read write": both methods; the handler sees who called.
    let (at, _) = h.login().await;
    let mut c = client(addr, Some(&at)).await;
    let note = c.add("hi").await.unwrap();
    assert_eq!(note.author, "alice");
    assert_eq!(c.list().await.unwrap().notes, vec![note]);

    // Too little scope for Add.
    let v = h
        .token(
            Some(("app", "app-secret")),
            "grant_type=password&username=bob&password=builder&scope=read",
        )
        .await
        .assert_token();
    let mut reader = client(addr, v["access_token"].as_str()).await;
    assert!(reader.list().await.is_ok());
    assert_code(
        reader.add("no").await,
        Code::PermissionDenied,
        "insufficient scope",
    );

    // Revoked, then expired.
    h.revoke(Some(("app", "app-secret")), &format!("token={at}"))
        .await;
    assert_code(
        client(addr, Some(&at)).await.list().await,
        Code::Unauthenticated,
        "invalid or revoked access token",
    );
    h.advance(3600);
    assert_code(
        reader.list().await,
        Code::Unauthenticated,
        "access token expired",
    );
}

#[tokio::test]
async fn rejections_carry_the_rfc6750_challenge_and_grpc_headers() {
    let h = harness();
    let addr = grpc_server(layer(&h.server)).await;
    let req = http::Request::post(format!("http://{addr}{LIST}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    // HTTP/2 prior knowledge, as gRPC speaks.
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let res = client.request(req).await.unwrap();
    assert_eq!(res.status(), 200);
    let h = res.headers();
    assert_eq!(h["grpc-status"], "16");
    assert_eq!(h["content-type"], "application/grpc");
    assert_eq!(h["www-authenticate"], "Bearer realm=\"tower-oauth2\"");
    assert_eq!(h["cache-control"], "no-store");
}

#[tokio::test]
async fn store_outage_is_unavailable() {
    let store = RedisStore::builder("redis://127.0.0.1:1")
        .timeout(std::time::Duration::from_millis(300))
        .build()
        .unwrap();
    let h = harness_on(Arc::new(store), START, |_| {});
    let addr = grpc_server(layer(&h.server)).await;
    assert_code(
        client(addr, Some("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"))
            .await
            .list()
            .await,
        Code::Unavailable,
        "token validation unavailable",
    );
}

#[tokio::test]
async fn introspection_server_down_is_unavailable_for_grpc() {
    use tower_oauth2::bearer::IntrospectionValidator;
    let validator =
        IntrospectionValidator::builder("http://127.0.0.1:1/oauth/introspect", "rs", "rs-secret")
            .timeout(std::time::Duration::from_millis(300))
            .build()
            .unwrap();
    let addr = grpc_server(BearerLayer::with_validator(validator, "api")).await;
    assert_code(
        client(addr, Some("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"))
            .await
            .list()
            .await,
        Code::Unavailable,
        "token validation unavailable",
    );
}
