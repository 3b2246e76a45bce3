//! Revocation (RFC 7009), introspection (RFC 7662), metadata (RFC 8414), the Rust security API,
//! events, and the memory store's sweep.

use crate::support::*;
use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use serde_json::json;
use tower::ServiceExt;
use tower_oauth2::{Metadata, events::Event};

#[tokio::test]
async fn revoking_a_refresh_token_revokes_its_family() {
    for hint in [
        "",
        "&token_type_hint=refresh_token",
        "&token_type_hint=access_token",
        "&token_type_hint=bogus",
    ] {
        let h = harness();
        let (at, rt) = h.login().await;
        let r = h.revoke(Some(APP), &format!("token={rt}{hint}")).await;
        assert_eq!(r.status, 200, "{hint}");
        assert_eq!(r.header("cache-control"), Some("no-store"));
        assert!(
            !h.accepted(&at).await,
            "{hint}: the family's access token survives"
        );
        h.refresh(APP, &rt).await.assert_error(400, "invalid_grant");
        assert!(h.event_names().contains(&"token_revoked"), "{hint}");
    }
}

#[tokio::test]
async fn revoking_an_access_token_revokes_only_that_token() {
    for hint in ["", "&token_type_hint=refresh_token"] {
        let h = harness();
        let (at, rt) = h.login().await;
        assert_eq!(
            h.revoke(Some(APP), &format!("token={at}{hint}"))
                .await
                .status,
            200
        );
        assert!(!h.accepted(&at).await);
        h.refresh(APP, &rt).await.assert_token();
    }
}

#[tokio::test]
async fn another_clients_or_unknown_token_is_200_with_no_effect() {
    let h = harness();
    let (at, rt) = h.login().await;
    for token in [&at, &rt] {
        let r = h.revoke(Some(OTHER), &format!("token={token}")).await;
        assert_eq!(r.status, 200);
    }
    assert_eq!(h.revoke(Some(OTHER), "token=unknown").await.status, 200);
    assert!(h.accepted(&at).await);
    h.refresh(APP, &rt).await.assert_token();
    assert!(!h.event_names().contains(&"token_revoked"));
}

#[tokio::test]
async fn revocation_requires_client_authentication_and_a_token() {
    let h = harness();
    let (at, _) = h.login().await;
    h.revoke(None, &format!("token={at}"))
        .await
        .assert_error(401, "invalid_client");
    let r = h
        .revoke(Some(("app", "wrong")), &format!("token={at}"))
        .await;
    r.assert_error(401, "invalid_client");
    assert_eq!(
        r.header("www-authenticate"),
        Some("Basic realm=\"tower-oauth2\"")
    );
    h.revoke(Some(APP), "token_type_hint=access_token")
        .await
        .assert_error(400, "invalid_request");
    h.revoke(Some(APP), &format!("token={at}&token={at}"))
        .await
        .assert_error(400, "invalid_request");
    assert!(h.accepted(&at).await);
    let req = Request::get("/oauth/revoke")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let r = reply(h.server.revocation_endpoint().oneshot(req).await.unwrap()).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST"));
}

#[tokio::test]
async fn public_clients_may_revoke_their_own_tokens() {
    let h = harness();
    let c = h
        .server
        .issue_authorization_code(
            tower_oauth2::AuthorizationRequest::new("spa", "alice")
                .redirect_uri("https://spa.example/cb")
                .code_challenge("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", Some("S256")),
        )
        .await
        .unwrap();
    let v = h
        .token(None, &format!("grant_type=authorization_code&code={c}&client_id=spa&redirect_uri=https%3A%2F%2Fspa.example%2Fcb&code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"))
        .await
        .assert_token();
    let rt = v["refresh_token"].as_str().unwrap();
    assert_eq!(
        h.revoke(None, &format!("token={rt}&client_id=spa"))
            .await
            .status,
        200
    );
    assert!(!h.accepted(v["access_token"].as_str().unwrap()).await);
}

#[tokio::test]
async fn introspection_of_an_active_access_token() {
    let h = harness();
    let (at, _) = h.login().await;
    let r = h.introspect(Some(RS), &format!("token={at}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(
        r.json(),
        json!({
            "active": true, "scope": "read write", "client_id": "app", "username": "alice",
            "sub": "alice", "token_type": "Bearer", "exp": START + 3600, "iat": START,
        })
    );
}

#[tokio::test]
async fn introspection_of_a_refresh_token() {
    let h = harness();
    let (_, rt) = h.login().await;
    let v = h
        .introspect(
            Some(RS),
            &format!("token={rt}&token_type_hint=refresh_token"),
        )
        .await
        .json();
    assert_eq!(v["active"], true);
    assert_eq!(v["token_type"], "refresh_token");
    assert_eq!(v["exp"], START + 1_209_600);
    // Without the hint it is found all the same.
    let v = h.introspect(Some(RS), &format!("token={rt}")).await.json();
    assert_eq!(v["active"], true);
    // A rotated refresh token is no longer active.
    h.refresh(APP, &rt).await.assert_token();
    let r = h.introspect(Some(RS), &format!("token={rt}")).await;
    assert_eq!(&r.body[..], br#"{"active":false}"#);
}

#[tokio::test]
async fn anything_inactive_is_exactly_active_false() {
    let h = harness();
    let (at, rt) = h.login().await;
    let (at2, _) = h.login().await;
    h.revoke(Some(APP), &format!("token={rt}")).await;
    h.advance(3600);
    for token in ["unknown", at.as_str(), rt.as_str(), at2.as_str()] {
        let r = h.introspect(Some(RS), &format!("token={token}")).await;
        assert_eq!(r.status, 200);
        assert_eq!(&r.body[..], br#"{"active":false}"#, "{token}");
    }
}

#[tokio::test]
async fn introspection_callers_must_be_authenticated_and_allowed() {
    let h = harness();
    let (at, _) = h.login().await;
    h.introspect(None, &format!("token={at}"))
        .await
        .assert_error(401, "invalid_client");
    h.introspect(Some(("rs", "wrong")), &format!("token={at}"))
        .await
        .assert_error(401, "invalid_client");
    h.introspect(None, &format!("token={at}&client_id=spa"))
        .await
        .assert_error(401, "invalid_client");
    // Authenticated but not a registered introspector.
    h.introspect(Some(APP), &format!("token={at}"))
        .await
        .assert_error(403, "unauthorized_client");
    h.introspect(Some(RS), "")
        .await
        .assert_error(400, "invalid_request");

    let h = harness_with(|c| {
        c.introspection = tower_oauth2::config::IntrospectionAccess::AnyConfidentialClient
    });
    let (at, _) = h.login().await;
    assert_eq!(
        h.introspect(Some(OTHER), &format!("token={at}"))
            .await
            .json()["active"],
        true
    );
}

#[tokio::test]
async fn metadata_matches_the_configuration() {
    let h = harness_with(|c| c.pkce.allow_plain = true);
    let endpoint = h.server.metadata_endpoint(
        Metadata::new("https://auth.example.com/")
            .authorization_endpoint("/oauth/authorize")
            .scopes_supported(["read", "write"]),
    );
    let req = Request::get("/.well-known/oauth-authorization-server")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let r = reply(endpoint.clone().oneshot(req).await.unwrap()).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.json(),
        json!({
            "issuer": "https://auth.example.com",
            "authorization_endpoint": "https://auth.example.com/oauth/authorize",
            "token_endpoint": "https://auth.example.com/oauth/token",
            "scopes_supported": ["read", "write"],
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "password", "client_credentials", "refresh_token"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "revocation_endpoint": "https://auth.example.com/oauth/revoke",
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "introspection_endpoint": "https://auth.example.com/oauth/introspect",
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256", "plain"],
        })
    );
    let req = Request::post("/.well-known/oauth-authorization-server")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let r = reply(endpoint.oneshot(req).await.unwrap()).await;
    assert_eq!(r.status, 405);

    // Another configuration, another document.
    let h = harness_with(|c| {
        c.allowed_grant_types =
            tower_oauth2::GrantTypes::NONE.with(tower_oauth2::GrantType::ClientCredentials);
    });
    let endpoint = h
        .server
        .metadata_endpoint(Metadata::new("https://a.example").revocation_endpoint(None));
    let req = Request::get("/").body(Full::new(Bytes::new())).unwrap();
    let v = reply(endpoint.oneshot(req).await.unwrap()).await.json();
    assert_eq!(v["grant_types_supported"], json!(["client_credentials"]));
    assert_eq!(v["response_types_supported"], json!([]));
    assert!(v.get("revocation_endpoint").is_none());
    assert!(v.get("code_challenge_methods_supported").is_none());
}

#[tokio::test]
async fn security_api_revokes_by_user_client_and_grant() {
    let h = harness();
    let (alice1, _) = h.login().await;
    let (alice2, _) = h.login_as(OTHER, "alice", "wonderland", "").await;
    let (bob, _) = h.login_as(APP, "bob", "builder", "").await;
    assert_eq!(h.server.revoke_subject("alice").await.unwrap(), 2);
    assert!(!h.accepted(&alice1).await && !h.accepted(&alice2).await);
    assert!(h.accepted(&bob).await);

    let (bob_other, _) = h.login_as(OTHER, "bob", "builder", "").await;
    assert_eq!(h.server.revoke_client("app").await.unwrap(), 1);
    assert!(!h.accepted(&bob).await);
    assert!(h.accepted(&bob_other).await);

    let grant = h
        .server
        .validate_access_token(&bob_other)
        .await
        .unwrap()
        .unwrap()
        .grant
        .id;
    assert!(h.server.revoke_grant(grant).await.unwrap());
    assert!(!h.accepted(&bob_other).await);
    assert!(
        !h.server.revoke_grant(grant).await.unwrap(),
        "already revoked"
    );
    let bulk: Vec<_> = h
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::GrantsRevoked { by, count } => Some((by, count)),
            _ => None,
        })
        .collect();
    assert_eq!(
        bulk,
        [("subject", 2), ("client", 1), ("grant", 1), ("grant", 0)]
    );
}

#[tokio::test]
async fn each_event_fires_once_and_carries_no_secret() {
    let h = harness_with(|c| c.refresh_token_grace_period = std::time::Duration::from_secs(10));
    let (at, rt) = h.login().await; // token_issued
    let v = h.refresh(APP, &rt).await.assert_token(); // token_refreshed
    h.refresh(APP, &rt).await.assert_token(); // token_refreshed (grace retry)
    h.token(Some(("app", "bad-secret")), "grant_type=client_credentials")
        .await; // client_authentication_failed
    h.advance(10);
    h.refresh(APP, &rt).await; // reuse_detected
    h.refresh(APP, &rt).await; // already revoked: nothing new
    let (at2, _) = h.login().await; // token_issued
    h.revoke(Some(APP), &format!("token={at2}")).await; // token_revoked
    assert_eq!(
        h.event_names(),
        [
            "token_issued",
            "token_refreshed",
            "token_refreshed",
            "client_authentication_failed",
            "reuse_detected",
            "token_issued",
            "token_revoked"
        ]
    );
    match &h.events()[2] {
        Event::TokenRefreshed { grace_retry, .. } => assert!(grace_retry),
        e => panic!("{e:?}"),
    }
    let all = format!("{:?}", h.events());
    for secret in [
        at.as_str(),
        rt.as_str(),
        &at2,
        v["access_token"].as_str().unwrap(),
        v["refresh_token"].as_str().unwrap(),
        "app-secret",
        "bad-secret",
        "wonderland",
    ] {
        assert!(!all.contains(secret), "event leaks {secret}: {all}");
    }
}

#[tokio::test]
async fn expired_and_revoked_entries_are_swept() {
    let h = harness();
    for _ in 0..5 {
        h.login().await;
    }
    let (_, rt) = h.login().await;
    h.token(
        Some(("cc-only", "cc-secret")),
        "grant_type=client_credentials",
    )
    .await
    .assert_token();
    h.revoke(Some(APP), &format!("token={rt}")).await;
    let before = h.store().counts();
    assert_eq!((before.access_tokens, before.refresh_tokens), (7, 6));
    // The revoked family goes at once; the others after their refresh tokens expire.
    h.server
        .store()
        .purge_expired(h.server.now())
        .await
        .unwrap();
    assert_eq!(h.store().counts().refresh_tokens, 5);
    h.advance(3600);
    h.server
        .store()
        .purge_expired(h.server.now())
        .await
        .unwrap();
    assert_eq!(h.store().counts().access_tokens, 0);
    assert_eq!(h.store().counts().refresh_tokens, 5);
    h.advance(1_209_600);
    h.server
        .store()
        .purge_expired(h.server.now())
        .await
        .unwrap();
    let after = h.store().counts();
    assert_eq!(
        (after.access_tokens, after.refresh_tokens, after.grants),
        (0, 0, 0)
    );
}

#[tokio::test]
async fn memory_stays_bounded_under_churn_with_the_automatic_sweep() {
    // Sweeps run on writes once the interval has passed; under steady issue-and-expire churn the
    // number of entries stays bounded by what one interval can produce.
    let h = harness_with(|c| {
        c.access_token_lifetime = std::time::Duration::from_secs(60);
        c.issue_refresh_token = false;
    });
    let mut peak = 0;
    for _ in 0..50 {
        for _ in 0..20 {
            h.token(
                Some(("cc-only", "cc-secret")),
                "grant_type=client_credentials",
            )
            .await
            .assert_token();
        }
        h.advance(60);
        // The first write after the interval starts a sweep on the blocking pool; wait for it to
        // finish (an event, not a length of time).
        let before = h.store().sweeps();
        h.token(
            Some(("cc-only", "cc-secret")),
            "grant_type=client_credentials",
        )
        .await
        .assert_token();
        let mut spins = 0;
        while h.store().sweeps() == before && spins < 1_000_000 {
            tokio::task::yield_now().await;
            spins += 1;
        }
        peak = peak.max(h.store().counts().access_tokens);
    }
    assert!(
        h.store().sweeps() >= 49,
        "only {} sweeps ran",
        h.store().sweeps()
    );
    assert!(peak <= 42, "entries grew to {peak}");
}

#[tokio::test]
async fn a_grant_goes_with_its_last_token() {
    // Regression (found by the soak): grants were kept 300 s after creation whatever their
    // tokens did, so short-lived tokens issued fast grew memory without bound.
    let h = harness_with(|c| c.access_token_lifetime = std::time::Duration::from_secs(60));
    for _ in 0..100 {
        h.token(
            Some(("cc-only", "cc-secret")),
            "grant_type=client_credentials",
        )
        .await
        .assert_token();
    }
    assert_eq!(h.store().counts().grants, 100);
    h.advance(60);
    h.server
        .store()
        .purge_expired(h.server.now())
        .await
        .unwrap();
    let counts = h.store().counts();
    assert_eq!((counts.access_tokens, counts.grants), (0, 0));
}
