//! The token endpoint as a tower Service: request handling (RFC 6749 §3.2), client
//! authentication (§2.3), the password and client_credentials grants, responses (§5).

use crate::support::*;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{Full, StreamBody};
use tower::ServiceExt;

#[tokio::test]
async fn password_grant_issues_a_bearer_pair_with_no_store_headers() {
    let h = harness();
    let r = h
        .token(
            Some(("app", "app-secret")),
            "grant_type=password&username=alice&password=wonderland",
        )
        .await;
    let v = r.assert_token();
    assert_eq!(v["expires_in"], 3600);
    assert_eq!(v["scope"], "read write", "client's default scope");
    let rt = v["refresh_token"].as_str().unwrap();
    assert_eq!(rt.len(), 46);
    assert_ne!(rt, v["access_token"].as_str().unwrap());
    assert!(h.accepted(v["access_token"].as_str().unwrap()).await);
    assert_eq!(h.event_names(), ["token_issued"]);
}

#[tokio::test]
async fn tokens_are_stored_only_as_hashes() {
    let h = harness();
    let (at, rt) = h.login().await;
    let dump = format!("{:?}", h.store());
    assert!(!dump.contains(&at) && !dump.contains(&rt));
    let events = format!("{:?}", h.events());
    assert!(!events.contains(&at) && !events.contains(&rt));
}

#[tokio::test]
async fn password_grant_with_wrong_password_is_invalid_grant_and_stores_nothing() {
    let h = harness();
    let r = h
        .token(
            Some(("app", "app-secret")),
            "grant_type=password&username=alice&password=nope",
        )
        .await;
    r.assert_error(400, "invalid_grant");
    assert_eq!(h.store().counts().grants, 0);
    let r = h
        .token(
            Some(("app", "app-secret")),
            "grant_type=password&username=nobody&password=x",
        )
        .await;
    r.assert_error(400, "invalid_grant");
}

#[tokio::test]
async fn password_grant_requires_username_and_password() {
    let h = harness();
    for body in [
        "grant_type=password&password=x",
        "grant_type=password&username=alice",
        "grant_type=password&username=&password=wonderland",
    ] {
        h.token(Some(("app", "app-secret")), body)
            .await
            .assert_error(400, "invalid_request");
    }
    assert_eq!(h.store().counts().grants, 0);
}

#[tokio::test]
async fn password_grant_is_off_by_default() {
    let h = harness_with(|c| {
        c.allowed_grant_types = tower_oauth2::Config::default().allowed_grant_types;
    });
    h.token(
        Some(("app", "app-secret")),
        "grant_type=password&username=alice&password=wonderland",
    )
    .await
    .assert_error(400, "unsupported_grant_type");
}

#[tokio::test]
async fn client_credentials_never_issues_a_refresh_token() {
    let h = harness();
    let r = h
        .token(
            Some(("cc-only", "cc-secret")),
            "grant_type=client_credentials",
        )
        .await;
    let v = r.assert_token();
    assert!(v.get("refresh_token").is_none(), "{v}");
    assert_eq!(v["scope"], "read");
    let info = h
        .server
        .validate_access_token(v["access_token"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.grant.subject, None);
    assert_eq!(&*info.grant.client_id, "cc-only");
}

#[tokio::test]
async fn client_credentials_requires_a_confidential_client() {
    let h = harness_with(|_| {});
    // "spa" is public and not allowed client_credentials at all: unauthorized_client.
    h.token(None, "grant_type=client_credentials&client_id=spa")
        .await
        .assert_error(400, "unauthorized_client");
}

#[tokio::test]
async fn client_credentials_scope_is_checked_against_the_client() {
    let h = harness();
    let cc = Some(("cc-only", "cc-secret"));
    h.assert_token_errors(&[
        (
            cc,
            "grant_type=client_credentials&scope=write",
            400,
            "invalid_scope",
        ),
        (
            cc,
            "grant_type=client_credentials&scope=bad%22scope",
            400,
            "invalid_scope",
        ),
    ])
    .await;
    assert_eq!(h.store().counts().grants, 0);
}

#[tokio::test]
async fn client_secret_post_authenticates() {
    let h = harness();
    h.token(
        None,
        "grant_type=client_credentials&client_id=cc-only&client_secret=cc-secret",
    )
    .await
    .assert_token();
}

#[tokio::test]
async fn basic_credentials_are_form_urlencoded_inside() {
    // RFC 6749 §2.3.1: id and secret are form-urlencoded before base64.
    let h = harness();
    let r = h
        .token_raw(
            Request::post("/oauth/token")
                .header("content-type", "application/x-www-form-urlencoded")
                .header("authorization", basic("weird%3Aid%25", "weird-secret"))
                .body(Full::new(Bytes::from("grant_type=client_credentials")))
                .unwrap(),
        )
        .await;
    r.assert_token();
}

#[tokio::test]
async fn wrong_secret_is_401_invalid_client_with_basic_challenge() {
    let h = harness();
    let r = h
        .token(Some(("app", "wrong")), "grant_type=client_credentials")
        .await;
    r.assert_error(401, "invalid_client");
    assert_eq!(
        r.header("www-authenticate"),
        Some("Basic realm=\"tower-oauth2\"")
    );
    let names = h.event_names();
    assert_eq!(names, ["client_authentication_failed"]);
}

#[tokio::test]
async fn wrong_secret_in_body_is_401_without_basic_challenge() {
    let h = harness();
    let r = h
        .token(
            None,
            "grant_type=client_credentials&client_id=app&client_secret=wrong",
        )
        .await;
    r.assert_error(401, "invalid_client");
    assert_eq!(r.header("www-authenticate"), None);
}

#[tokio::test]
async fn unknown_client_and_missing_credentials_are_invalid_client() {
    let h = harness();
    h.assert_token_errors(&[
        (
            Some(("ghost", "x")),
            "grant_type=client_credentials",
            401,
            "invalid_client",
        ),
        (None, "grant_type=client_credentials", 401, "invalid_client"),
        // A confidential client that sends only its id.
        (
            None,
            "grant_type=client_credentials&client_id=app",
            401,
            "invalid_client",
        ),
    ])
    .await;
}

#[tokio::test]
async fn two_client_authentication_methods_are_invalid_request() {
    let h = harness();
    h.assert_token_errors(&[
        (
            Some(APP),
            "grant_type=client_credentials&client_id=app&client_secret=app-secret",
            400,
            "invalid_request",
        ),
        (
            Some(APP),
            "grant_type=client_credentials&client_id=other",
            400,
            "invalid_request",
        ),
    ])
    .await;
    // The same id in the body alongside Basic is allowed.
    h.token(
        Some(("app", "app-secret")),
        "grant_type=client_credentials&client_id=app",
    )
    .await
    .assert_token();
}

#[tokio::test]
async fn non_basic_authorization_scheme_is_invalid_client() {
    let h = harness();
    let req = Request::post("/oauth/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", "Bearer abc")
        .body(Full::new(Bytes::from("grant_type=client_credentials")))
        .unwrap();
    let r = h.token_raw(req).await;
    r.assert_error(401, "invalid_client");
    assert_eq!(
        r.header("www-authenticate"),
        Some("Basic realm=\"tower-oauth2\"")
    );
}

#[tokio::test]
async fn broken_basic_header_is_invalid_request() {
    let h = harness();
    for value in ["Basic !!!", "Basic bm9jb2xvbg==", "Basic Og=="] {
        let req = Request::post("/oauth/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", value)
            .body(Full::new(Bytes::from("grant_type=client_credentials")))
            .unwrap();
        h.token_raw(req).await.assert_error(400, "invalid_request");
    }
}

#[tokio::test]
async fn only_post_is_allowed() {
    let h = harness();
    for method in ["GET", "PUT", "HEAD", "DELETE"] {
        let req = Request::builder()
            .method(method)
            .uri("/oauth/token")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let r = h.token_raw(req).await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(r.header("allow"), Some("POST"));
    }
}

#[tokio::test]
async fn content_type_must_be_form_urlencoded() {
    let h = harness();
    for ct in [
        None,
        Some("application/json"),
        Some("text/plain"),
        Some("application/x-www-form-urlencoded; charset=latin1"),
    ] {
        let mut b =
            Request::post("/oauth/token").header("authorization", basic("cc-only", "cc-secret"));
        if let Some(ct) = ct {
            b = b.header("content-type", ct);
        }
        let r = h
            .token_raw(
                b.body(Full::new(Bytes::from("grant_type=client_credentials")))
                    .unwrap(),
            )
            .await;
        r.assert_error(400, "invalid_request");
    }
    // A UTF-8 charset parameter and other casing are fine.
    for ct in [
        "application/x-www-form-urlencoded; charset=UTF-8",
        "Application/X-WWW-Form-Urlencoded",
    ] {
        let req = Request::post("/oauth/token")
            .header("authorization", basic("cc-only", "cc-secret"))
            .header("content-type", ct)
            .body(Full::new(Bytes::from("grant_type=client_credentials")))
            .unwrap();
        h.token_raw(req).await.assert_token();
    }
}

#[tokio::test]
async fn repeated_parameter_is_invalid_request() {
    let h = harness();
    let cc = Some(("cc-only", "cc-secret"));
    h.assert_token_errors(&[
        (
            cc,
            "grant_type=client_credentials&scope=read&scope=read",
            400,
            "invalid_request",
        ),
        (
            cc,
            "grant_type=client_credentials&grant_type=client_credentials",
            400,
            "invalid_request",
        ),
    ])
    .await;
}

/// Parsing stays linear in the body: a body of thousands of distinct names is refused at the
/// parameter cap, before client authentication, with a clear `invalid_request` and no store
/// change — where the pairwise repeat check once made it cost seconds.
#[tokio::test]
async fn a_body_of_many_distinct_names_is_refused_at_the_parameter_cap() {
    let h = harness();
    let names = |n: usize| {
        (0..n)
            .map(|i| format!("{}{}", (b'a' + (i % 26) as u8) as char, i / 26))
            .collect::<Vec<_>>()
            .join("&")
    };
    // 16 KiB of two- and three-letter names, the most a body may hold.
    let body = format!("grant_type=client_credentials&{}", names(3600));
    assert!(body.len() <= 16 * 1024, "{}", body.len());
    let before = h.store().counts();
    let r = h.token(Some(("cc-only", "wrong-secret")), &body).await;
    r.assert_error(400, "invalid_request");
    assert_eq!(
        r.json()["error_description"],
        "too many parameters (at most 100)"
    );
    assert_eq!(h.store().counts(), before);
    assert!(h.events().is_empty(), "refused before authentication");
    // At the cap itself the request is read as usual.
    let body = format!("grant_type=client_credentials&scope=read&{}", names(98));
    h.token(Some(("cc-only", "cc-secret")), &body)
        .await
        .assert_token();
}

#[tokio::test]
async fn grant_type_missing_unknown_or_not_allowed() {
    let h = harness();
    h.assert_token_errors(&[
        (Some(APP), "scope=read", 400, "invalid_request"),
        (
            Some(APP),
            "grant_type=urn:ietf:params:oauth:grant-type:device_code",
            400,
            "unsupported_grant_type",
        ),
        // Known and allowed by the server, but not for this client.
        (
            Some(("cc-only", "cc-secret")),
            "grant_type=password&username=alice&password=wonderland",
            400,
            "unauthorized_client",
        ),
    ])
    .await;
}

#[tokio::test]
async fn body_over_the_cap_is_refused_without_reading_it() {
    let h = harness_with(|c| c.max_body_bytes = 64);
    let big = format!("grant_type=client_credentials&pad={}", "a".repeat(100));
    let r = h.token(Some(("cc-only", "cc-secret")), &big).await;
    r.assert_error(413, "invalid_request");

    // Chunked (no Content-Length): a stream that would never end is cut at the cap.
    let chunks = futures_stream(1000);
    let req = Request::post("/oauth/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", basic("cc-only", "cc-secret"))
        .body(StreamBody::new(chunks))
        .unwrap();
    let res = h.server.token_endpoint().oneshot(req).await.unwrap();
    let r = reply(res).await;
    r.assert_error(413, "invalid_request");

    // A Content-Length that lies low does not let more through.
    let req = Request::post("/oauth/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("content-length", "10")
        .header("authorization", basic("cc-only", "cc-secret"))
        .body(Full::new(Bytes::from(big)))
        .unwrap();
    h.token_raw(req).await.assert_error(413, "invalid_request");
    assert_eq!(h.store().counts().grants, 0);
}

fn futures_stream(
    n: usize,
) -> impl futures_core::Stream<Item = Result<http_body::Frame<Bytes>, std::convert::Infallible>> {
    struct Chunks(usize);
    impl futures_core::Stream for Chunks {
        type Item = Result<http_body::Frame<Bytes>, std::convert::Infallible>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            if self.0 == 0 {
                return std::task::Poll::Ready(None);
            }
            self.0 -= 1;
            std::task::Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from_static(
                b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            )))))
        }
    }
    Chunks(n)
}

#[tokio::test]
async fn invalid_percent_encoding_and_non_utf8_are_invalid_request() {
    let h = harness();
    let cc = Some(("cc-only", "cc-secret"));
    h.assert_token_errors(&[
        (
            cc,
            "grant_type=client_credentials&scope=%zz",
            400,
            "invalid_request",
        ),
        (
            cc,
            "grant_type=client_credentials&scope=%ff%fe",
            400,
            "invalid_request",
        ),
    ])
    .await;
}

#[tokio::test]
async fn client_may_be_denied_refresh_tokens() {
    let h = harness();
    let v = h
        .token(
            Some(("norefresh", "nr-secret")),
            "grant_type=password&username=alice&password=wonderland",
        )
        .await
        .assert_token();
    assert!(v.get("refresh_token").is_none());
}

#[tokio::test]
async fn refresh_tokens_can_be_switched_off_per_grant_type_and_globally() {
    let h = harness_with(|c| {
        c.issue_refresh_token_for =
            tower_oauth2::GrantTypes::NONE.with(tower_oauth2::GrantType::AuthorizationCode);
    });
    let v = h
        .token(
            Some(("app", "app-secret")),
            "grant_type=password&username=alice&password=wonderland",
        )
        .await
        .assert_token();
    assert!(v.get("refresh_token").is_none());

    let h = harness_with(|c| c.issue_refresh_token = false);
    let v = h
        .token(
            Some(("app", "app-secret")),
            "grant_type=password&username=alice&password=wonderland",
        )
        .await
        .assert_token();
    assert!(v.get("refresh_token").is_none());
}

#[tokio::test]
async fn configuration_is_validated() {
    use tower_oauth2::{AuthServer, Config, ConfigError, GrantType, InMemoryClients};
    let mut c = Config::default();
    c.refresh_token_grace_period = std::time::Duration::from_secs(301);
    let err = AuthServer::builder()
        .config(c)
        .clients(InMemoryClients::new())
        .build()
        .unwrap_err();
    assert_eq!(err, ConfigError::GracePeriodTooLong);
    let err = AuthServer::builder()
        .clients(InMemoryClients::new())
        .allow_grant_type(GrantType::Password)
        .build()
        .unwrap_err();
    assert_eq!(err, ConfigError::MissingUserAuthenticator);
    let err = AuthServer::builder().build().unwrap_err();
    assert_eq!(err, ConfigError::MissingClients);
}

#[tokio::test]
async fn lifetimes_are_bounded_and_the_longest_allowed_works() {
    use std::time::Duration;
    use tower_oauth2::{AuthServer, Config, ConfigError, InMemoryClients, config::MAX_LIFETIME};
    let too_long: [fn(&mut Config); 5] = [
        |c| c.access_token_lifetime = Duration::MAX,
        |c| c.refresh_token_lifetime = Duration::MAX,
        |c| c.refresh_token_max_lifetime = Some(Duration::MAX),
        |c| c.authorization_code_lifetime = Duration::MAX,
        |c| c.access_token_lifetime = MAX_LIFETIME + Duration::from_secs(1),
    ];
    for (i, set) in too_long.iter().enumerate() {
        let mut c = Config::default();
        set(&mut c);
        let err = AuthServer::builder()
            .config(c)
            .clients(InMemoryClients::new())
            .build()
            .unwrap_err();
        assert!(matches!(err, ConfigError::Lifetime(_)), "case {i}: {err:?}");
    }
    // Everything at the bound: tokens are issued live and expire when they should.
    let h = harness_with(|c| {
        c.access_token_lifetime = MAX_LIFETIME;
        c.refresh_token_lifetime = MAX_LIFETIME;
        c.refresh_token_max_lifetime = Some(MAX_LIFETIME);
    });
    let (at, rt) = h.login().await;
    assert!(h.accepted(&at).await);
    let v = h.refresh(APP, &rt).await.assert_token();
    assert_eq!(v["expires_in"], MAX_LIFETIME.as_secs());
    h.advance(MAX_LIFETIME.as_secs());
    assert!(!h.accepted(v["access_token"].as_str().unwrap()).await);
}

/// A slow-hash stand-in that counts its checks.
#[derive(Clone, Default)]
struct CountingVerifier(std::sync::Arc<std::sync::atomic::AtomicUsize>);

#[async_trait::async_trait]
impl tower_oauth2::client::SecretVerifier for CountingVerifier {
    async fn verify(&self, presented: &str) -> bool {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        presented == "human-chosen"
    }
}

impl CountingVerifier {
    fn calls(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[tokio::test]
async fn an_unknown_client_id_costs_the_slow_verifier_too() {
    use tower_oauth2::{AuthServer, Client, InMemoryClients};
    let cc = "grant_type=client_credentials";
    let clients = |v: &CountingVerifier| {
        InMemoryClients::new().with(
            Client::confidential("slow", "unused")
                .secret_verifier(v.clone())
                .build()
                .unwrap(),
        )
    };
    let token = |server: &AuthServer, id: &'static str, secret: &'static str| {
        let endpoint = server.token_endpoint();
        async move {
            reply(
                tower::ServiceExt::oneshot(endpoint, form("/oauth/token", Some((id, secret)), cc))
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    // With a decoy configured, an unknown id runs it from the first request on.
    let (real, decoy) = (CountingVerifier::default(), CountingVerifier::default());
    let server = AuthServer::builder()
        .clients(clients(&real))
        .unknown_client_verifier(decoy.clone())
        .build()
        .unwrap();
    token(&server, "nobody", "guess")
        .await
        .assert_error(401, "invalid_client");
    assert_eq!((real.calls(), decoy.calls()), (0, 1));
    token(&server, "slow", "guess")
        .await
        .assert_error(401, "invalid_client");
    token(&server, "slow", "human-chosen").await.assert_token();
    assert_eq!((real.calls(), decoy.calls()), (2, 1));

    // Without one, the first custom verifier a known client used stands in from then on.
    let real = CountingVerifier::default();
    let server = AuthServer::builder()
        .clients(clients(&real))
        .build()
        .unwrap();
    token(&server, "slow", "human-chosen").await.assert_token();
    assert_eq!(real.calls(), 1);
    token(&server, "nobody", "guess")
        .await
        .assert_error(401, "invalid_client");
    assert_eq!(
        real.calls(),
        2,
        "the unknown id cost one check of the slow verifier"
    );
}

#[tokio::test]
async fn a_scope_of_too_many_tokens_or_bytes_is_invalid_scope() {
    let h = harness();
    // `norefresh` has no scope restriction: without a bound, whatever it asks is stored.
    let client = Some(("norefresh", "nr-secret"));
    let scope = |n: usize| {
        (0..n)
            .map(|i| format!("s{i}"))
            .collect::<Vec<_>>()
            .join("+")
    };
    let cc = |scope: &str| format!("grant_type=client_credentials&scope={scope}");
    let v = h.token(client, &cc(&scope(64))).await.assert_token();
    assert_eq!(v["scope"].as_str().unwrap().split(' ').count(), 64);
    // Repeats do not count: the set has 64 tokens.
    let repeated = format!("{}+s0+s1", scope(64));
    h.token(client, &cc(&repeated)).await.assert_token();
    let long = format!("{}+{}", "a".repeat(3000), "b".repeat(3000));
    h.assert_token_errors(&[
        (client, &cc(&scope(65)), 400, "invalid_scope"),
        (client, &cc(&scope(1000)), 400, "invalid_scope"),
        (client, &cc(&long), 400, "invalid_scope"),
    ])
    .await;
    // The bounds are configurable.
    let h = harness_with(|c| c.max_scope_tokens = 2);
    h.assert_token_errors(&[(client, &cc("a+b+c"), 400, "invalid_scope")])
        .await;
    h.token(client, &cc("a+b")).await.assert_token();
}
