//! The refresh-token flow (RFC 6749 §6) with the RFC 9700 §4.14.2 protections: rotation, reuse
//! detection revoking the family, the grace window, idle and absolute expiry, client binding,
//! scope ceiling, `on_refresh`, and concurrency.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use crate::support::*;
use tower_oauth2::{OnRefresh, events::Event, token::TokenHash};

#[tokio::test]
async fn rotation_returns_a_new_refresh_token_and_the_old_one_dies() {
    let h = harness();
    let (_, rt0) = h.login().await;
    let v = h.refresh(APP, &rt0).await.assert_token();
    let rt1 = v["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt0);
    assert_eq!(v["scope"], "read write");
    // The old one is dead ...
    h.refresh(APP, &rt0)
        .await
        .assert_error(400, "invalid_grant");
    // ... and presenting it was a replay: the successor is dead too.
    h.refresh(APP, &rt1)
        .await
        .assert_error(400, "invalid_grant");
}

#[tokio::test]
async fn replay_after_rotation_revokes_the_family_and_the_layer_rejects_its_access_tokens() {
    let h = harness();
    let (at0, rt0) = h.login().await;
    let v = h.refresh(APP, &rt0).await.assert_token();
    let at1 = v["access_token"].as_str().unwrap().to_owned();
    let rt1 = v["refresh_token"].as_str().unwrap().to_owned();
    assert!(h.accepted(&at0).await && h.accepted(&at1).await);
    // Another family of the same user is unaffected.
    let (other_at, _) = h.login().await;

    let r = h.refresh(APP, &rt0).await;
    r.assert_error(400, "invalid_grant");
    assert!(!h.accepted(&at0).await, "old access token still accepted");
    assert!(
        !h.accepted(&at1).await,
        "successor access token still accepted"
    );
    h.refresh(APP, &rt1)
        .await
        .assert_error(400, "invalid_grant");
    assert!(h.accepted(&other_at).await);

    let reuse: Vec<_> = h
        .events()
        .into_iter()
        .filter(|e| e.name() == "reuse_detected")
        .collect();
    assert_eq!(reuse.len(), 1, "{reuse:?}");
}

#[tokio::test]
async fn without_rotation_the_same_refresh_token_keeps_working() {
    let h = harness_with(|c| c.rotate_refresh_token = false);
    let (_, rt) = h.login().await;
    for _ in 0..3 {
        let v = h.refresh(APP, &rt).await.assert_token();
        assert!(v.get("refresh_token").is_none(), "{v}");
    }
}

#[tokio::test]
async fn public_clients_are_always_rotated() {
    let h = harness_with(|c| c.rotate_refresh_token = false);
    let (_, rt0) = code_login_spa(&h).await;
    let r = h
        .token(
            None,
            &format!("grant_type=refresh_token&refresh_token={rt0}&client_id=spa"),
        )
        .await;
    let v = r.assert_token();
    assert!(v["refresh_token"].as_str().is_some(), "{v}");
    h.token(
        None,
        &format!("grant_type=refresh_token&refresh_token={rt0}&client_id=spa"),
    )
    .await
    .assert_error(400, "invalid_grant");
}

async fn code_login_spa(h: &Harness) -> (String, String) {
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let code = h
        .server
        .issue_authorization_code(
            tower_oauth2::AuthorizationRequest::new("spa", "alice")
                .redirect_uri("https://spa.example/cb")
                .scope("read")
                .code_challenge("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", Some("S256")),
        )
        .await
        .unwrap();
    let v = h
        .token(
            None,
            &format!("grant_type=authorization_code&code={code}&redirect_uri=https%3A%2F%2Fspa.example%2Fcb&client_id=spa&code_verifier={verifier}"),
        )
        .await
        .assert_token();
    (
        v["access_token"].as_str().unwrap().to_owned(),
        v["refresh_token"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn access_token_expires_by_the_clock() {
    let h = harness();
    let (at, _) = h.login().await;
    h.advance(3599);
    assert!(h.accepted(&at).await);
    h.advance(1);
    let r = h
        .protected(h.server.bearer_layer(), Some(&format!("Bearer {at}")))
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some(
            "Bearer realm=\"tower-oauth2\", error=\"invalid_token\", error_description=\"The access token expired\""
        )
    );
}

#[tokio::test]
async fn refresh_token_idle_expiry_restarts_with_each_rotation() {
    let h = harness();
    let (_, rt0) = h.login().await;
    h.advance(1_209_599);
    let rt1 = h.refresh(APP, &rt0).await.assert_token()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // The successor gets a full idle lifetime of its own.
    h.advance(1_209_599);
    let rt2 = h.refresh(APP, &rt1).await.assert_token()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    h.advance(1_209_600);
    let r = h.refresh(APP, &rt2).await;
    r.assert_error(400, "invalid_grant");
    assert_eq!(r.json()["error_description"], "refresh token expired");
}

#[tokio::test]
async fn absolute_family_lifetime_is_never_extended_by_rotation() {
    let h = harness_with(|c| {
        c.refresh_token_lifetime = Duration::from_secs(10 * 86_400);
        c.refresh_token_max_lifetime = Some(Duration::from_secs(25 * 86_400));
    });
    let (_, mut rt) = h.login().await;
    for _ in 0..2 {
        h.advance(9 * 86_400);
        rt = h.refresh(APP, &rt).await.assert_token()["refresh_token"]
            .as_str()
            .unwrap()
            .to_owned();
    }
    // Day 18: this refresh token's idle expiry (day 28) is capped at the family's end (day 25).
    h.advance(7 * 86_400 - 1800); // half an hour before the end
    let v = h.refresh(APP, &rt).await.assert_token();
    assert_eq!(
        v["expires_in"], 1800,
        "access token capped at the family's end"
    );
    rt = v["refresh_token"].as_str().unwrap().to_owned();
    h.advance(1800); // day 25
    let r = h.refresh(APP, &rt).await;
    r.assert_error(400, "invalid_grant");
    assert_eq!(r.json()["error_description"], "refresh token expired");
}

#[tokio::test]
async fn max_lifetime_can_be_unlimited() {
    let h = harness_with(|c| c.refresh_token_max_lifetime = None);
    let (_, mut rt) = h.login().await;
    for _ in 0..10 {
        h.advance(13 * 86_400);
        rt = h.refresh(APP, &rt).await.assert_token()["refresh_token"]
            .as_str()
            .unwrap()
            .to_owned();
    }
}

#[tokio::test]
async fn a_refresh_token_works_only_for_its_client_and_a_wrong_client_changes_nothing() {
    let h = harness();
    let (at, rt) = h.login().await;
    h.refresh(OTHER, &rt)
        .await
        .assert_error(400, "invalid_grant");
    assert!(h.accepted(&at).await);
    h.refresh(APP, &rt).await.assert_token();
}

#[tokio::test]
async fn scope_may_narrow_and_the_original_grant_stays_the_ceiling() {
    let h = harness();
    let (_, rt0) = h.login().await; // "read write"
    let v = h
        .token(
            Some(APP),
            &format!("grant_type=refresh_token&refresh_token={rt0}&scope=read"),
        )
        .await
        .assert_token();
    assert_eq!(v["scope"], "read");
    let rt1 = v["refresh_token"].as_str().unwrap();
    let info = h
        .server
        .validate_access_token(v["access_token"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.scope.as_str(), "read");
    // Asking for less did not shrink what a later refresh may ask for.
    let v = h
        .token(
            Some(APP),
            &format!("grant_type=refresh_token&refresh_token={rt1}&scope=write%20read"),
        )
        .await
        .assert_token();
    assert_eq!(v["scope"], "read write");
    let rt2 = v["refresh_token"].as_str().unwrap();
    // Wider than the grant (even if the client could have it): invalid_scope, nothing consumed.
    h.token(
        Some(APP),
        &format!("grant_type=refresh_token&refresh_token={rt2}&scope=read%20offline_access"),
    )
    .await
    .assert_error(400, "invalid_scope");
    h.token(
        Some(APP),
        &format!("grant_type=refresh_token&refresh_token={rt2}&scope=%22"),
    )
    .await
    .assert_error(400, "invalid_scope");
    h.refresh(APP, rt2).await.assert_token();
}

#[tokio::test]
async fn unknown_missing_or_malformed_refresh_token() {
    let h = harness();
    h.token(Some(APP), "grant_type=refresh_token")
        .await
        .assert_error(400, "invalid_request");
    h.refresh(APP, "not-a-token")
        .await
        .assert_error(400, "invalid_grant");
    assert_eq!(h.event_names(), Vec::<&str>::new());
}

#[tokio::test]
async fn on_refresh_nothing_keeps_the_old_access_token() {
    let h = harness();
    let (at0, rt0) = h.login().await;
    h.refresh(APP, &rt0).await.assert_token();
    assert!(h.accepted(&at0).await);
}

#[tokio::test]
async fn on_refresh_revoke_access_tokens_kills_the_old_access_token() {
    let h = harness_with(|c| c.on_refresh = OnRefresh::RevokeAccessTokens);
    let (at0, rt0) = h.login().await;
    let v = h.refresh(APP, &rt0).await.assert_token();
    assert!(!h.accepted(&at0).await);
    assert!(h.accepted(v["access_token"].as_str().unwrap()).await);
}

#[tokio::test]
async fn on_refresh_revoke_without_rotation_keeps_only_the_latest_access_token() {
    let h = harness_with(|c| {
        c.on_refresh = OnRefresh::RevokeAccessTokens;
        c.rotate_refresh_token = false;
    });
    let (at0, rt) = h.login().await;
    let at1 = h.refresh(APP, &rt).await.assert_token()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let at2 = h.refresh(APP, &rt).await.assert_token()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!h.accepted(&at0).await && !h.accepted(&at1).await);
    assert!(h.accepted(&at2).await);
}

#[tokio::test]
async fn on_refresh_call_receives_the_old_refresh_tokens_record() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let h = harness_with(move |c| {
        c.on_refresh = OnRefresh::call(move |record| {
            let sink = Arc::clone(&sink);
            async move { sink.lock().unwrap().push(record) }
        });
    });
    let (at0, rt0) = h.login().await;
    h.refresh(APP, &rt0).await.assert_token();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].hash, TokenHash::of(&rt0));
    assert_eq!(seen[0].access_token, Some(TokenHash::of(&at0)));
    assert_eq!(&*seen[0].grant.client_id, "app");
    assert_eq!(seen[0].grant.subject.as_deref(), Some("alice"));
    assert_eq!(seen[0].generation, 0);
}

#[tokio::test]
async fn grace_retry_gets_the_same_pair_and_does_not_revoke() {
    let h = harness_with(|c| c.refresh_token_grace_period = Duration::from_secs(30));
    let (_, rt0) = h.login().await;
    let first = h.refresh(APP, &rt0).await.assert_token();
    h.advance(10);
    let retry = h.refresh(APP, &rt0).await.assert_token();
    assert_eq!(retry["access_token"], first["access_token"]);
    assert_eq!(retry["refresh_token"], first["refresh_token"]);
    assert_eq!(retry["expires_in"], 3590, "counted from now");
    assert_eq!(retry["scope"], first["scope"]);
    assert!(h.accepted(first["access_token"].as_str().unwrap()).await);
    // The successor still rotates normally.
    h.refresh(APP, first["refresh_token"].as_str().unwrap())
        .await
        .assert_token();
    assert!(!h.event_names().contains(&"reuse_detected"));
}

#[tokio::test]
async fn grace_window_edges() {
    for (after, ok) in [(29, true), (30, false)] {
        let h = harness_with(|c| c.refresh_token_grace_period = Duration::from_secs(30));
        let (_, rt0) = h.login().await;
        let first = h.refresh(APP, &rt0).await.assert_token();
        h.advance(after);
        let r = h.refresh(APP, &rt0).await;
        if ok {
            r.assert_token();
        } else {
            r.assert_error(400, "invalid_grant");
            assert!(!h.accepted(first["access_token"].as_str().unwrap()).await);
            h.refresh(APP, first["refresh_token"].as_str().unwrap())
                .await
                .assert_error(400, "invalid_grant");
        }
    }
}

#[tokio::test]
async fn a_grandparent_inside_the_window_still_revokes() {
    let h = harness_with(|c| c.refresh_token_grace_period = Duration::from_secs(60));
    let (_, rt0) = h.login().await;
    let rt1 = h.refresh(APP, &rt0).await.assert_token()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let v2 = h.refresh(APP, &rt1).await.assert_token();
    h.advance(1);
    h.refresh(APP, &rt0)
        .await
        .assert_error(400, "invalid_grant");
    assert!(!h.accepted(v2["access_token"].as_str().unwrap()).await);
    assert!(h.event_names().contains(&"reuse_detected"));
}

#[tokio::test]
async fn grace_is_off_by_default() {
    let h = harness();
    let (_, rt0) = h.login().await;
    h.refresh(APP, &rt0).await.assert_token();
    h.refresh(APP, &rt0)
        .await
        .assert_error(400, "invalid_grant");
}

#[tokio::test]
async fn offline_access_policy() {
    let h = harness_with(|c| c.refresh_token_requires_offline_access = true);
    let v = h
        .token(
            Some(APP),
            "grant_type=password&username=alice&password=wonderland&scope=read",
        )
        .await
        .assert_token();
    assert!(v.get("refresh_token").is_none());
    let v = h
        .token(
            Some(APP),
            "grant_type=password&username=alice&password=wonderland&scope=read%20offline_access",
        )
        .await
        .assert_token();
    assert!(v["refresh_token"].as_str().is_some());
}

#[tokio::test]
async fn refresh_reports_events_without_secrets() {
    let h = harness();
    let (at0, rt0) = h.login().await;
    let v = h.refresh(APP, &rt0).await.assert_token();
    h.refresh(APP, &rt0).await;
    assert_eq!(
        h.event_names(),
        ["token_issued", "token_refreshed", "reuse_detected"]
    );
    let all = format!("{:?}", h.events());
    for secret in [
        &at0,
        &rt0,
        v["access_token"].as_str().unwrap(),
        v["refresh_token"].as_str().unwrap(),
        "wonderland",
        "app-secret",
    ] {
        assert!(!all.contains(secret), "event leaks a secret: {all}");
    }
    match &h.events()[1] {
        Event::TokenRefreshed {
            rotated,
            grace_retry,
            ..
        } => assert!(*rotated && !*grace_retry),
        e => panic!("{e:?}"),
    }
}

/// A harness whose first `n` refresh-token reads all complete before any rotation.
fn gated(n: usize, configure: impl FnOnce(&mut tower_oauth2::Config)) -> Harness {
    harness_over(configure, move |inner| {
        tower_oauth2::conformance::gate(Arc::new(inner), n)
    })
}

/// Fire `n` refreshes of one token at once on a multi-threaded runtime.
async fn concurrent_refreshes(h: &Harness, rt: &str, n: usize) -> Vec<Reply> {
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let mut tasks = Vec::new();
    for _ in 0..n {
        let endpoint = h.server.token_endpoint();
        let barrier = Arc::clone(&barrier);
        let body = format!("grant_type=refresh_token&refresh_token={rt}");
        tasks.push(tokio::spawn(async move {
            use tower::ServiceExt;
            barrier.wait().await;
            reply(
                endpoint
                    .oneshot(form("/oauth/token", Some(APP), &body))
                    .await
                    .unwrap(),
            )
            .await
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_concurrent_refreshes_of_one_token_exactly_one_succeeds() {
    let h = gated(32, |_| {});
    let (_, rt) = h.login().await;
    let replies = concurrent_refreshes(&h, &rt, 32).await;
    let ok = replies.iter().filter(|r| r.status == 200).count();
    assert_eq!(ok, 1);
    for r in replies.iter().filter(|r| r.status != 200) {
        r.assert_error(400, "invalid_grant");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_concurrent_refreshes_never_leave_a_half_revoked_family() {
    // Without a grace window every loser is a reuse of a rotated token: the family is revoked
    // entirely, including the winner's successor. Never a live token in a revoked family.
    let h = gated(64, |_| {});
    let (at0, rt) = h.login().await;
    let replies = concurrent_refreshes(&h, &rt, 64).await;
    let winners: Vec<_> = replies.iter().filter(|r| r.status == 200).collect();
    assert_eq!(winners.len(), 1);
    let won = winners[0].json();
    assert!(!h.accepted(&at0).await);
    assert!(!h.accepted(won["access_token"].as_str().unwrap()).await);
    h.refresh(APP, won["refresh_token"].as_str().unwrap())
        .await
        .assert_error(400, "invalid_grant");
    let reuse = h
        .event_names()
        .iter()
        .filter(|n| **n == "reuse_detected")
        .count();
    assert_eq!(reuse, 1, "the family is revoked once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_concurrent_refreshes_inside_the_grace_window_share_one_successor() {
    let h = gated(64, |c| {
        c.refresh_token_grace_period = Duration::from_secs(30)
    });
    let (_, rt) = h.login().await;
    let replies = concurrent_refreshes(&h, &rt, 64).await;
    let first = replies[0].assert_token();
    for r in &replies {
        let v = r.assert_token();
        assert_eq!(v["access_token"], first["access_token"]);
        assert_eq!(v["refresh_token"], first["refresh_token"]);
    }
    // Exactly one live successor: it works, and the family has one active refresh token.
    let store = h.server.store();
    let successor = TokenHash::of(first["refresh_token"].as_str().unwrap());
    let rec = store.find_refresh_token(&successor).await.unwrap().unwrap();
    assert_eq!(rec.generation, 1);
    assert_eq!(rec.family_generation, 1);
    assert_eq!(
        h.store().counts().refresh_tokens,
        2,
        "the rotated original and one successor"
    );
    h.refresh(APP, first["refresh_token"].as_str().unwrap())
        .await
        .assert_token();
}
