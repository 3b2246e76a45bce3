//! One list of behavioural tests, run against every store: memory, Redis and PostgreSQL (as
//! tower-sessions does). Each drives the store through the public API — the token, revocation
//! and introspection endpoints, the bearer layer, the security API — and a few call the
//! `TokenStore` trait directly for guarantees the endpoints cannot reach.

use std::{sync::Arc, time::Duration};

use crate::support::{backends::Backend, *};
use tower_oauth2::{
    AuthorizationRequest, Config, GrantType, OnRefresh, Scope,
    clock::{Clock, SystemClock},
    store::{GrantRecord, NewAccessToken, NewRefreshToken, RefreshTokenState, TokenStore},
    token::{self, GrantId, TokenHash},
};

/// A test's store and the time its clock starts at: now, because Redis expires keys on its own
/// clock (a past expiry would delete them at once).
struct Ctx {
    store: Arc<dyn TokenStore>,
    start: u64,
}

impl Ctx {
    fn harness(&self, configure: impl FnOnce(&mut Config)) -> Harness {
        harness_on(Arc::clone(&self.store), self.start, configure)
    }
}

macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        conformance!(@backend memory, Memory, $($test),*);
        conformance!(@backend redis, Redis, $($test),*);
        conformance!(@backend postgres, Postgres, $($test),*);
    };
    (@backend $module:ident, $backend:ident, $($test:ident),*) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    let name = concat!(stringify!($module), "_", stringify!($test));
                    if let Some(store) = super::backends::open(super::Backend::$backend, name).await {
                        let start = super::Clock::now(&super::SystemClock);
                        super::$test(super::Ctx { store, start }).await;
                    }
                }
            )*
        }
    };
}

conformance!(
    issue_and_validate,
    rotation_and_replay_revoke_the_family,
    rotation_off_with_on_refresh_revoke,
    grace_window_returns_the_same_pair,
    revocation_of_family_and_of_one_access_token,
    revocation_by_user_and_by_client,
    expiry_idle_and_absolute,
    purge_removes_expired_and_revoked,
    concurrent_refreshes_have_one_winner,
    concurrent_refreshes_in_grace_share_one_successor,
    code_is_single_use,
    concurrent_code_redemption,
    grant_revoked_before_creation_stays_revoked,
    records_round_trip,
    bulk_revocation_covers_more_than_one_batch,
);

async fn issue_and_validate(ctx: Ctx) {
    let h = ctx.harness(|_| {});
    let (at, rt) = h.login().await;
    assert!(h.accepted(&at).await);
    assert!(
        !h.accepted(&rt).await,
        "a refresh token is not an access token"
    );
    assert!(
        !h.accepted("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")
            .await
    );
    let v = h.introspect(Some(RS), &format!("token={at}")).await.json();
    assert_eq!(v["active"], true);
    assert_eq!(v["sub"], "alice");
    assert_eq!(v["scope"], "read write");
    let v = h
        .token(
            Some(("cc-only", "cc-secret")),
            "grant_type=client_credentials",
        )
        .await
        .assert_token();
    let cc = v["access_token"].as_str().unwrap();
    let info = h.server.validate_access_token(cc).await.unwrap().unwrap();
    assert_eq!(info.grant.subject, None);
    assert_eq!(info.grant.grant_type, GrantType::ClientCredentials);
}

async fn rotation_and_replay_revoke_the_family(ctx: Ctx) {
    let h = ctx.harness(|_| {});
    let (at0, rt0) = h.login().await;
    let (other, _) = h.login().await;
    let v = h.refresh(APP, &rt0).await.assert_token();
    let at1 = v["access_token"].as_str().unwrap().to_owned();
    let rt1 = v["refresh_token"].as_str().unwrap().to_owned();
    assert!(h.accepted(&at1).await);
    h.refresh(APP, &rt0)
        .await
        .assert_error(400, "invalid_grant");
    assert!(!h.accepted(&at0).await && !h.accepted(&at1).await);
    h.refresh(APP, &rt1)
        .await
        .assert_error(400, "invalid_grant");
    assert!(h.accepted(&other).await, "another family is untouched");
    assert_eq!(
        h.event_names()
            .iter()
            .filter(|n| **n == "reuse_detected")
            .count(),
        1
    );
}

async fn rotation_off_with_on_refresh_revoke(ctx: Ctx) {
    let h = ctx.harness(|c| {
        c.rotate_refresh_token = false;
        c.on_refresh = OnRefresh::RevokeAccessTokens;
    });
    let (at0, rt) = h.login().await;
    let at1 = h.refresh(APP, &rt).await.assert_token()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let v = h.refresh(APP, &rt).await.assert_token();
    assert!(v.get("refresh_token").is_none());
    assert!(!h.accepted(&at0).await && !h.accepted(&at1).await);
    assert!(h.accepted(v["access_token"].as_str().unwrap()).await);
}

async fn grace_window_returns_the_same_pair(ctx: Ctx) {
    let h = ctx.harness(|c| c.refresh_token_grace_period = Duration::from_secs(30));
    let (_, rt0) = h.login().await;
    let first = h.refresh(APP, &rt0).await.assert_token();
    h.advance(5);
    let again = h.refresh(APP, &rt0).await.assert_token();
    assert_eq!(again["access_token"], first["access_token"]);
    assert_eq!(again["refresh_token"], first["refresh_token"]);
    assert_eq!(again["expires_in"], 3595);
    let rt1 = first["refresh_token"].as_str().unwrap();
    let second = h.refresh(APP, rt1).await.assert_token();
    // rt0 is now a grandparent: inside the window or not, it revokes.
    h.refresh(APP, &rt0)
        .await
        .assert_error(400, "invalid_grant");
    assert!(!h.accepted(second["access_token"].as_str().unwrap()).await);
}

async fn revocation_of_family_and_of_one_access_token(ctx: Ctx) {
    let h = ctx.harness(|_| {});
    let (at, rt) = h.login().await;
    assert_eq!(
        h.revoke(Some(APP), &format!("token={at}")).await.status,
        200
    );
    assert!(!h.accepted(&at).await);
    let v = h.refresh(APP, &rt).await.assert_token();
    let rt1 = v["refresh_token"].as_str().unwrap();
    // Another client's token: no effect.
    assert_eq!(
        h.revoke(Some(("other", "other-secret")), &format!("token={rt1}"))
            .await
            .status,
        200
    );
    assert!(h.accepted(v["access_token"].as_str().unwrap()).await);
    assert_eq!(
        h.revoke(
            Some(APP),
            &format!("token={rt1}&token_type_hint=refresh_token")
        )
        .await
        .status,
        200
    );
    assert!(!h.accepted(v["access_token"].as_str().unwrap()).await);
    h.refresh(APP, rt1).await.assert_error(400, "invalid_grant");
    let r = h.introspect(Some(RS), &format!("token={rt1}")).await;
    assert_eq!(&r.body[..], br#"{"active":false}"#);
}

async fn revocation_by_user_and_by_client(ctx: Ctx) {
    let h = ctx.harness(|_| {});
    let (a1, _) = h.login().await;
    let (a2, _) = h
        .login_as(("other", "other-secret"), "alice", "wonderland", "")
        .await;
    let (b1, _) = h.login_as(APP, "bob", "builder", "").await;
    let (b2, _) = h
        .login_as(("other", "other-secret"), "bob", "builder", "")
        .await;
    assert_eq!(h.server.revoke_subject("alice").await.unwrap(), 2);
    assert!(!h.accepted(&a1).await && !h.accepted(&a2).await);
    assert!(h.accepted(&b1).await && h.accepted(&b2).await);
    assert_eq!(h.server.revoke_client("other").await.unwrap(), 1);
    assert!(h.accepted(&b1).await && !h.accepted(&b2).await);
    assert_eq!(h.server.revoke_subject("alice").await.unwrap(), 0);
}

async fn expiry_idle_and_absolute(ctx: Ctx) {
    let h = ctx.harness(|c| {
        c.refresh_token_lifetime = Duration::from_secs(10 * 86_400);
        c.refresh_token_max_lifetime = Some(Duration::from_secs(15 * 86_400));
    });
    let (at, rt0) = h.login().await;
    h.advance(3600);
    assert!(!h.accepted(&at).await, "access token expired");
    h.advance(9 * 86_400 - 3601);
    let rt1 = h.refresh(APP, &rt0).await.assert_token()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // Idle: rt1 would live to day 19, but the family ends on day 15.
    h.advance(6 * 86_400 + 1);
    let r = h.refresh(APP, &rt1).await;
    r.assert_error(400, "invalid_grant");
    let (_, rt2) = h.login().await;
    h.advance(10 * 86_400);
    h.refresh(APP, &rt2)
        .await
        .assert_error(400, "invalid_grant");
}

async fn purge_removes_expired_and_revoked(ctx: Ctx) {
    let h = ctx.harness(|_| {});
    let store = h.server.store();
    let (at1, rt1) = h.login().await;
    let (at2, rt2) = h.login().await;
    h.revoke(Some(APP), &format!("token={rt2}")).await;
    h.advance(3600);
    let purged = store.purge_expired(h.server.now()).await.unwrap();
    assert!(purged >= 3, "purged {purged}");
    for at in [&at1, &at2] {
        assert!(
            store
                .find_access_token(&TokenHash::of(at))
                .await
                .unwrap()
                .is_none()
        );
    }
    assert!(
        store
            .find_refresh_token(&TokenHash::of(&rt2))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .find_refresh_token(&TokenHash::of(&rt1))
            .await
            .unwrap()
            .is_some(),
        "live refresh token purged"
    );
    h.advance(1_209_600);
    store.purge_expired(h.server.now()).await.unwrap();
    assert!(
        store
            .find_refresh_token(&TokenHash::of(&rt1))
            .await
            .unwrap()
            .is_none()
    );
}

async fn concurrent(h: &Harness, rt: &str, n: usize) -> Vec<Reply> {
    let mut tasks = Vec::new();
    for _ in 0..n {
        let endpoint = h.server.token_endpoint();
        let body = format!("grant_type=refresh_token&refresh_token={rt}");
        tasks.push(tokio::spawn(async move {
            use tower::ServiceExt;
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

async fn concurrent_refreshes_have_one_winner(ctx: Ctx) {
    // Every request reads the token as active before any rotates: the store alone decides.
    let gated = Ctx {
        store: gate(Arc::clone(&ctx.store), 16),
        start: ctx.start,
    };
    let h = gated.harness(|_| {});
    let (_, rt) = h.login().await;
    let replies = concurrent(&h, &rt, 16).await;
    let winners: Vec<_> = replies.iter().filter(|r| r.status == 200).collect();
    assert_eq!(winners.len(), 1);
    for r in replies.iter().filter(|r| r.status != 200) {
        r.assert_error(400, "invalid_grant");
    }
    // The losers were reuses: the whole family, the winner's successor included, is revoked.
    let won = winners[0].json();
    assert!(!h.accepted(won["access_token"].as_str().unwrap()).await);
    h.refresh(APP, won["refresh_token"].as_str().unwrap())
        .await
        .assert_error(400, "invalid_grant");
}

async fn concurrent_refreshes_in_grace_share_one_successor(ctx: Ctx) {
    let gated = Ctx {
        store: gate(Arc::clone(&ctx.store), 16),
        start: ctx.start,
    };
    let h = gated.harness(|c| c.refresh_token_grace_period = Duration::from_secs(60));
    let (_, rt) = h.login().await;
    let replies = concurrent(&h, &rt, 16).await;
    let first = replies[0].assert_token();
    for r in &replies {
        let v = r.assert_token();
        assert_eq!(v["refresh_token"], first["refresh_token"]);
        assert_eq!(v["access_token"], first["access_token"]);
    }
    let succ = h
        .server
        .store()
        .find_refresh_token(&TokenHash::of(first["refresh_token"].as_str().unwrap()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((succ.generation, succ.family_generation), (1, 1));
    h.refresh(APP, first["refresh_token"].as_str().unwrap())
        .await
        .assert_token();
}

async fn code_is_single_use(ctx: Ctx) {
    let h = ctx.harness(|_| {});
    let code = h
        .server
        .issue_authorization_code(
            AuthorizationRequest::new("spa", "alice")
                .redirect_uri("https://spa.example/cb")
                .scope("read")
                .code_challenge("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", Some("S256")),
        )
        .await
        .unwrap();
    let body = format!(
        "grant_type=authorization_code&code={code}&client_id=spa&redirect_uri=https%3A%2F%2Fspa.example%2Fcb&code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    );
    let wrong = body.replace("dBjft", "xBjft");
    h.token(None, &wrong)
        .await
        .assert_error(400, "invalid_grant");
    let v = h.token(None, &body).await.assert_token();
    assert_eq!(v["scope"], "read");
    h.token(None, &body)
        .await
        .assert_error(400, "invalid_grant");
    assert!(
        !h.accepted(v["access_token"].as_str().unwrap()).await,
        "second use revokes the first's tokens"
    );
}

async fn concurrent_code_redemption(ctx: Ctx) {
    let h = ctx.harness(|_| {});
    let code = h
        .server
        .issue_authorization_code(
            AuthorizationRequest::new("app", "alice").redirect_uri("https://app.example/cb"),
        )
        .await
        .unwrap();
    let body = format!(
        "grant_type=authorization_code&code={code}&redirect_uri=https%3A%2F%2Fapp.example%2Fcb"
    );
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let endpoint = h.server.token_endpoint();
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            use tower::ServiceExt;
            reply(
                endpoint
                    .oneshot(form("/oauth/token", Some(APP), &body))
                    .await
                    .unwrap(),
            )
            .await
        }));
    }
    let mut ok = Vec::new();
    for t in tasks {
        let r = t.await.unwrap();
        if r.status == 200 {
            ok.push(r.json());
        } else {
            r.assert_error(400, "invalid_grant");
        }
    }
    assert_eq!(ok.len(), 1, "exactly one redemption");
    assert!(!h.accepted(ok[0]["access_token"].as_str().unwrap()).await);
}

fn new_grant(
    id: GrantId,
    now: u64,
) -> (GrantRecord, NewAccessToken, NewRefreshToken, String, String) {
    let (at, rt) = (token::generate(), token::generate());
    let scope = Scope::parse("read").unwrap();
    (
        GrantRecord {
            id,
            client_id: Arc::from("app"),
            subject: Some(Arc::from("alice")),
            scope: scope.clone(),
            grant_type: GrantType::Password,
            created_at: now,
            expires_at: Some(now + 90 * 86_400),
        },
        NewAccessToken {
            hash: at.hash(),
            scope,
            issued_at: now,
            expires_at: now + 3600,
        },
        NewRefreshToken {
            hash: rt.hash(),
            issued_at: now,
            expires_at: now + 86_400,
            generation: 0,
        },
        at.expose().to_owned(),
        rt.expose().to_owned(),
    )
}

async fn grant_revoked_before_creation_stays_revoked(ctx: Ctx) {
    let store = &ctx.store;
    let id = GrantId::generate();
    assert!(
        !store.revoke_grant(id).await.unwrap(),
        "nothing live to revoke yet"
    );
    let (g, a, r, at, rt) = new_grant(id, ctx.start);
    store.create_grant(g, a, Some(r)).await.unwrap();
    assert!(
        store
            .find_access_token(&TokenHash::of(&at))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .find_refresh_token(&TokenHash::of(&rt))
            .await
            .unwrap()
            .is_none()
    );
}

async fn records_round_trip(ctx: Ctx) {
    let store = &ctx.store;
    let id = GrantId::generate();
    let (g, a, r, at, rt) = new_grant(id, ctx.start);
    store.create_grant(g.clone(), a, Some(r)).await.unwrap();
    let found = store
        .find_access_token(&TokenHash::of(&at))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.grant, g);
    assert_eq!(found.scope.as_str(), "read");
    assert_eq!(
        (found.issued_at, found.expires_at),
        (ctx.start, ctx.start + 3600)
    );
    let rec = store
        .find_refresh_token(&TokenHash::of(&rt))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.grant, g);
    assert_eq!(rec.state, RefreshTokenState::Active);
    assert_eq!(rec.access_token, Some(TokenHash::of(&at)));
    assert_eq!((rec.generation, rec.family_generation), (0, 0));
    assert!(store.revoke_grant(id).await.unwrap());
    assert!(!store.revoke_grant(id).await.unwrap());
    assert!(
        store
            .find_access_token(&TokenHash::of(&at))
            .await
            .unwrap()
            .is_none()
    );
}

async fn bulk_revocation_covers_more_than_one_batch(ctx: Ctx) {
    // More grants than one revocation batch (500 in the Redis store) for one subject.
    let store = &ctx.store;
    let mut tokens = Vec::new();
    for _ in 0..1200 {
        let (mut g, a, r, at, _) = new_grant(GrantId::generate(), ctx.start);
        g.subject = Some(Arc::from("many"));
        store.create_grant(g, a, Some(r)).await.unwrap();
        tokens.push(at);
    }
    let (other, a, r, other_at, _) = new_grant(GrantId::generate(), ctx.start);
    store.create_grant(other, a, Some(r)).await.unwrap();
    assert_eq!(
        store
            .revoke_grants(&tower_oauth2::store::GrantFilter::Subject("many".into()))
            .await
            .unwrap(),
        1200
    );
    for at in tokens.iter().step_by(97).chain(tokens.last()) {
        assert!(
            store
                .find_access_token(&TokenHash::of(at))
                .await
                .unwrap()
                .is_none()
        );
    }
    assert!(
        store
            .find_access_token(&TokenHash::of(&other_at))
            .await
            .unwrap()
            .is_some(),
        "another subject's grant survives"
    );
    assert_eq!(
        store
            .revoke_grants(&tower_oauth2::store::GrantFilter::Subject("many".into()))
            .await
            .unwrap(),
        0
    );
}
