#![no_main]
//! The whole token endpoint over a memory store: the first byte picks the method, the input up
//! to the first NUL is an Authorization header, up to the next NUL a Content-Type, the rest the
//! body. Never a panic, never a 500.

use std::sync::OnceLock;

use bytes::Bytes;
use http::{HeaderValue, Request};
use http_body_util::Full;
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;
use tower_oauth2::{AuthServer, Client, GrantType, InMemoryClients, user::DemoUsers};

fn setup() -> &'static (AuthServer, tokio::runtime::Runtime) {
    static S: OnceLock<(AuthServer, tokio::runtime::Runtime)> = OnceLock::new();
    S.get_or_init(|| {
        let client = Client::confidential("c", "s").grant_types(GrantType::ALL).scope("read write").build().unwrap();
        let server = AuthServer::builder()
            .clients(InMemoryClients::new().with(client))
            .users(DemoUsers::new().with("u", "p"))
            .allow_grant_type(GrantType::Password)
            .build()
            .unwrap();
        (server, tokio::runtime::Builder::new_current_thread().build().unwrap())
    })
}

fuzz_target!(|data: &[u8]| {
    let (server, rt) = setup();
    let Some((&m, rest)) = data.split_first() else { return };
    let mut parts = rest.splitn(3, |&b| b == 0);
    let (auth, ct, body) = (parts.next().unwrap_or(&[]), parts.next().unwrap_or(&[]), parts.next().unwrap_or(&[]));
    let method = ["POST", "GET", "PUT", "HEAD"][usize::from(m % 4)];
    let mut req = Request::builder().method(method).uri("/oauth/token");
    if let Ok(v) = HeaderValue::from_bytes(auth) {
        req = req.header("authorization", v);
    }
    if let Ok(v) = HeaderValue::from_bytes(ct) {
        req = req.header("content-type", v);
    }
    let req = req.body(Full::new(Bytes::copy_from_slice(body))).unwrap();
    let res = rt.block_on(server.token_endpoint().oneshot(req)).unwrap();
    assert_ne!(res.status(), 500);
});
