//! Several instances on one shared store: two separate quickstart processes on loopback share
//! one Redis (and again one PostgreSQL). A token issued by one is accepted by the other; a
//! refresh token rotated on one and replayed on the other revokes the family on both; a
//! revocation on one is seen by the other at once.

use crate::support::{
    backends,
    quickstart::{self, Instance},
    *,
};
use bytes::Bytes;
use http::Request;
use http_body_util::Full;

fn start(store_url: &str) -> Instance {
    quickstart::start(&["--store", store_url])
}

async fn token(i: &Instance, body: &str) -> Reply {
    http(form(
        &format!("http://{}/oauth/token", i.addr),
        Some(("testclient", "secret")),
        body,
    ))
    .await
}

async fn me(i: &Instance, at: &str) -> u16 {
    let req = Request::get(format!("http://{}/api/me", i.addr))
        .header("authorization", format!("Bearer {at}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    http(req).await.status.as_u16()
}

async fn two_instances_share_one_store(url: &str) {
    let (a, b) = (start(url), start(url));
    let login = "grant_type=password&username=test&password=test";

    // Issued by A, accepted by B.
    let v = token(&a, login).await.assert_token();
    let (at0, rt0) = (
        v["access_token"].as_str().unwrap().to_owned(),
        v["refresh_token"].as_str().unwrap().to_owned(),
    );
    assert_eq!(me(&b, &at0).await, 200);

    // Rotated on B, replayed on A: the family is revoked on both.
    let v = token(&b, &format!("grant_type=refresh_token&refresh_token={rt0}"))
        .await
        .assert_token();
    let (at1, rt1) = (
        v["access_token"].as_str().unwrap().to_owned(),
        v["refresh_token"].as_str().unwrap().to_owned(),
    );
    assert_eq!(me(&a, &at1).await, 200);
    token(&a, &format!("grant_type=refresh_token&refresh_token={rt0}"))
        .await
        .assert_error(400, "invalid_grant");
    for i in [&a, &b] {
        assert_eq!(me(i, &at0).await, 401);
        assert_eq!(me(i, &at1).await, 401);
    }
    token(&b, &format!("grant_type=refresh_token&refresh_token={rt1}"))
        .await
        .assert_error(400, "invalid_grant");

    // Revoked on A, rejected by B at once.
    let v = token(&b, login).await.assert_token();
    let (at2, rt2) = (
        v["access_token"].as_str().unwrap().to_owned(),
        v["refresh_token"].as_str().unwrap().to_owned(),
    );
    assert_eq!(me(&a, &at2).await, 200);
    let r = http(form(
        &format!("http://{}/oauth/revoke", a.addr),
        Some(("testclient", "secret")),
        &format!("token={rt2}"),
    ))
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(me(&b, &at2).await, 401);
    token(&b, &format!("grant_type=refresh_token&refresh_token={rt2}"))
        .await
        .assert_error(400, "invalid_grant");
}

#[tokio::test]
async fn two_processes_on_one_redis() {
    if backends::open_redis("instances_probe").await.is_some() {
        two_instances_share_one_store(&backends::redis_url()).await;
    }
}

#[tokio::test]
async fn two_processes_on_one_postgres() {
    if backends::open_postgres("instances_probe").await.is_some() {
        two_instances_share_one_store(&backends::database_url()).await;
    }
}
