//! The behaviours, one public function each. A case panics, naming what failed, when the store
//! under it does not behave; [`token_store_conformance!`](crate::token_store_conformance) runs
//! each as a test of its own.
//!
//! Cases that go through the endpoints use the clients `app`, `other` (confidential, every grant),
//! `spa` (public), `rs` (introspection) and `cc-only`, and the users `alice` and `bob`. Each case
//! builds its own server on the store it is given, with a clock that starts at the real time and
//! moves only when the case advances it.

use std::{sync::Arc, time::Duration};

use super::{
    gate::gate,
    harness::{APP, Harness, OTHER, Reply, call, form, text},
};
use crate::{
    client::GrantType,
    clock::{Clock, SystemClock},
    config::OnRefresh,
    grant::AuthorizationRequest,
    resource::Resources,
    scope::Scope,
    store::{
        CodeStore, GrantFilter, GrantRecord, GrantStore, NewAccessToken, NewRefreshToken,
        PurgeStore, RecordStore, Redemption, RefreshTokenState, TokenStore,
        records::{Put, Record, RecordKey, RecordKind, RecordType},
    },
    token::{self, GrantId, TokenHash},
};

/// The resources (RFC 8707) the cases' grants are for.
const MCP: &str = "https://mcp.example/mcp";
const OTHER_RESOURCE: &str = "https://mcp.example/other";

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// Issued tokens validate, with their grant's subject, client and scope; unknown ones and
/// refresh tokens do not.
pub async fn issue_and_validate(store: Arc<dyn TokenStore>) {
    let h = Harness::new(store, |_| {});
    let (at, rt) = h.login().await;
    assert!(h.accepted(&at).await);
    assert!(
        !h.accepted(&rt).await,
        "a refresh token is not an access token"
    );
    assert!(!h.accepted(token::generate().expose()).await);
    let v = h.introspect(&format!("token={at}")).await.json();
    assert_eq!(
        (&v["active"], &v["sub"], &v["scope"]),
        (&true.into(), &"alice".into(), &"read write".into())
    );
    let v = h
        .token(
            Some(("cc-only", "cc-secret")),
            "grant_type=client_credentials",
        )
        .await
        .assert_token();
    let cc = text(&v, "access_token");
    let found = h.server.validate_access_token(&cc).await.unwrap().unwrap();
    assert_eq!(found.grant.subject, None);
    assert_eq!(found.grant.grant_type, GrantType::ClientCredentials);
}

/// A refresh rotates the pair; presenting the old refresh token again is a replay that revokes
/// the whole family — and only that family.
pub async fn rotation_and_replay_revoke_the_family(store: Arc<dyn TokenStore>) {
    let h = Harness::new(store, |_| {});
    let (at0, rt0) = h.login().await;
    let (other, _) = h.login().await;
    let v = h.refresh(APP, &rt0).await.assert_token();
    let (at1, rt1) = (text(&v, "access_token"), text(&v, "refresh_token"));
    assert!(h.accepted(&at1).await);
    h.refresh(APP, &rt0)
        .await
        .assert_error(400, "invalid_grant");
    assert!(!h.accepted(&at0).await && !h.accepted(&at1).await);
    h.refresh(APP, &rt1)
        .await
        .assert_error(400, "invalid_grant");
    assert!(h.accepted(&other).await, "another family is untouched");
    assert_eq!(h.count_events("reuse_detected"), 1);
}

/// With rotation off and `OnRefresh::RevokeAccessTokens`, the refresh token stays and each
/// refresh revokes the access token before it.
pub async fn rotation_off_with_on_refresh_revoke(store: Arc<dyn TokenStore>) {
    let h = Harness::new(store, |c| {
        c.rotate_refresh_token = false;
        c.on_refresh = OnRefresh::RevokeAccessTokens;
    });
    let (at0, rt) = h.login().await;
    let at1 = text(&h.refresh(APP, &rt).await.assert_token(), "access_token");
    let v = h.refresh(APP, &rt).await.assert_token();
    assert!(v.get("refresh_token").is_none());
    assert!(!h.accepted(&at0).await && !h.accepted(&at1).await);
    assert!(h.accepted(&text(&v, "access_token")).await);
}

/// Concurrent refreshes with rotation off and `OnRefresh::RevokeAccessTokens` all succeed, and
/// exactly one of the access tokens they issued survives: each revoked the one before it, read
/// under the same lock that replaced it.
pub async fn concurrent_refreshes_without_rotation_leave_one_access_token(
    store: Arc<dyn TokenStore>,
) {
    const N: usize = 8;
    let h = Harness::new(gate(store, N), |c| {
        c.rotate_refresh_token = false;
        c.on_refresh = OnRefresh::RevokeAccessTokens;
    });
    let (at0, rt) = h.login().await;
    let mut live = 0;
    for r in concurrent_refreshes(&h, &rt, N).await {
        if h.accepted(&text(&r.assert_token(), "access_token")).await {
            live += 1;
        }
    }
    assert_eq!(live, 1, "access tokens left alive");
    assert!(!h.accepted(&at0).await);
}

/// Inside the grace window a repeated refresh gets the very pair the first one got; a token two
/// rotations back is a replay even inside it.
pub async fn grace_window_returns_the_same_pair(store: Arc<dyn TokenStore>) {
    let h = Harness::new(store, |c| {
        c.refresh_token_grace_period = Duration::from_secs(30)
    });
    let (_, rt0) = h.login().await;
    let first = h.refresh(APP, &rt0).await.assert_token();
    h.advance(5);
    let again = h.refresh(APP, &rt0).await.assert_token();
    assert_eq!(again["access_token"], first["access_token"]);
    assert_eq!(again["refresh_token"], first["refresh_token"]);
    assert_eq!(again["expires_in"], 3595);
    let second = h
        .refresh(APP, &text(&first, "refresh_token"))
        .await
        .assert_token();
    h.refresh(APP, &rt0)
        .await
        .assert_error(400, "invalid_grant");
    assert!(!h.accepted(&text(&second, "access_token")).await);
}

/// The sealed grace-window response is gone once its window has closed and the store has been
/// purged: a copy of the store plus an old refresh token must not open the current pair.
pub async fn sealed_response_is_dropped_after_its_window(store: Arc<dyn TokenStore>) {
    let h = Harness::new(store, |c| {
        c.refresh_token_grace_period = Duration::from_secs(30)
    });
    let (_, rt0) = h.login().await;
    h.refresh(APP, &rt0).await.assert_token();
    let sealed = |r: Option<crate::store::RefreshTokenRecord>| match r.map(|r| r.state) {
        Some(RefreshTokenState::Rotated { sealed, .. }) => sealed,
        other => panic!("expected a rotated token, found {other:?}"),
    };
    let hash = TokenHash::of(&rt0);
    let inside = sealed(h.store().find_refresh_token(&hash).await.unwrap());
    assert!(inside.is_some(), "the window holds the sealed pair");
    h.advance(31);
    h.store().purge_expired(h.now()).await.unwrap();
    let after = sealed(h.store().find_refresh_token(&hash).await.unwrap());
    assert!(after.is_none(), "still held after the window: {after:?}");
    h.refresh(APP, &rt0)
        .await
        .assert_error(400, "invalid_grant");
}

/// Revoking an access token revokes that token; revoking a refresh token revokes its family;
/// another client's token is left alone.
pub async fn revocation_of_family_and_of_one_access_token(store: Arc<dyn TokenStore>) {
    let h = Harness::new(store, |_| {});
    let (at, rt) = h.login().await;
    assert_eq!(
        h.revoke(Some(APP), &format!("token={at}")).await.status,
        200
    );
    assert!(!h.accepted(&at).await);
    let v = h.refresh(APP, &rt).await.assert_token();
    let (at1, rt1) = (text(&v, "access_token"), text(&v, "refresh_token"));
    let by_other = h.revoke(Some(OTHER), &format!("token={rt1}")).await;
    assert_eq!(by_other.status, 200);
    assert!(
        h.accepted(&at1).await,
        "another client's revocation did nothing"
    );
    let body = format!("token={rt1}&token_type_hint=refresh_token");
    assert_eq!(h.revoke(Some(APP), &body).await.status, 200);
    assert!(!h.accepted(&at1).await);
    h.refresh(APP, &rt1)
        .await
        .assert_error(400, "invalid_grant");
    let r = h.introspect(&format!("token={rt1}")).await;
    assert_eq!(&r.body[..], br#"{"active":false}"#);
}

/// `revoke_subject` and `revoke_client` revoke exactly the matching grants, and count them.
pub async fn revocation_by_user_and_by_client(store: Arc<dyn TokenStore>) {
    let h = Harness::new(store, |_| {});
    let (a1, _) = h.login().await;
    let (a2, _) = h.login_as(OTHER, "alice", "wonderland").await;
    let (b1, _) = h.login_as(APP, "bob", "builder").await;
    let (b2, _) = h.login_as(OTHER, "bob", "builder").await;
    assert_eq!(h.server.revoke_subject("alice").await.unwrap(), 2);
    assert!(!h.accepted(&a1).await && !h.accepted(&a2).await);
    assert!(h.accepted(&b1).await && h.accepted(&b2).await);
    assert_eq!(h.server.revoke_client("other").await.unwrap(), 1);
    assert!(h.accepted(&b1).await && !h.accepted(&b2).await);
    assert_eq!(h.server.revoke_subject("alice").await.unwrap(), 0);
}

/// A family that keeps rotating outlives its first refresh token's lifetime, and a purge in
/// between, and is still found by `revoke_subject` and `revoke_client`.
pub async fn long_lived_family_is_revoked_by_user_and_by_client(store: Arc<dyn TokenStore>) {
    const DAY: u64 = 86_400;
    let h = Harness::new(store, |c| {
        c.refresh_token_lifetime = Duration::from_secs(2 * DAY)
    });
    let (_, mut alice) = h.login().await;
    let (_, mut bob) = h.login_as(APP, "bob", "builder").await;
    // Five days on, well past what the first tokens' purge time covered.
    for _ in 0..5 {
        h.advance(DAY + 3600);
        alice = text(
            &h.refresh(APP, &alice).await.assert_token(),
            "refresh_token",
        );
        bob = text(&h.refresh(APP, &bob).await.assert_token(), "refresh_token");
        h.store().purge_expired(h.now()).await.unwrap();
    }
    // A new grant of the same client and user now: an index that trims what looks gone by
    // this time keeps the long-lived families.
    h.login_as(APP, "bob", "builder").await;
    assert_eq!(h.server.revoke_subject("alice").await.unwrap(), 1);
    h.refresh(APP, &alice)
        .await
        .assert_error(400, "invalid_grant");
    assert_eq!(h.server.revoke_client("app").await.unwrap(), 2);
    h.refresh(APP, &bob)
        .await
        .assert_error(400, "invalid_grant");
}

/// Access tokens expire; refresh tokens expire when idle and when their family reaches its
/// absolute end, whichever comes first.
pub async fn expiry_idle_and_absolute(store: Arc<dyn TokenStore>) {
    let h = Harness::new(store, |c| {
        c.refresh_token_lifetime = Duration::from_secs(10 * 86_400);
        c.refresh_token_max_lifetime = Some(Duration::from_secs(15 * 86_400));
    });
    let (at, rt0) = h.login().await;
    h.advance(3600);
    assert!(!h.accepted(&at).await, "access token expired");
    h.advance(9 * 86_400 - 3601);
    let rt1 = text(&h.refresh(APP, &rt0).await.assert_token(), "refresh_token");
    // Idle, rt1 would live to day 19; the family ends on day 15.
    h.advance(6 * 86_400 + 1);
    h.refresh(APP, &rt1)
        .await
        .assert_error(400, "invalid_grant");
    let (_, rt2) = h.login().await;
    h.advance(10 * 86_400);
    h.refresh(APP, &rt2)
        .await
        .assert_error(400, "invalid_grant");
}

/// A purge removes expired and revoked tokens and keeps live ones.
pub async fn purge_removes_expired_and_revoked(store: Arc<dyn TokenStore>) {
    let h = Harness::new(store, |_| {});
    let store = h.store();
    let (at1, rt1) = h.login().await;
    let (at2, rt2) = h.login().await;
    h.revoke(Some(APP), &format!("token={rt2}")).await;
    h.advance(3600);
    let purged = store.purge_expired(h.now()).await.unwrap();
    assert!(purged >= 3, "purged {purged}");
    for at in [&at1, &at2] {
        assert!(
            !holds_access(&**store, at).await,
            "an expired access token is kept"
        );
    }
    assert!(
        !holds_refresh(&**store, &rt2).await,
        "a revoked one is kept"
    );
    assert!(holds_refresh(&**store, &rt1).await, "a live one is purged");
    h.advance(1_209_600);
    store.purge_expired(h.now()).await.unwrap();
    assert!(
        !holds_refresh(&**store, &rt1).await,
        "an expired one is kept"
    );
}

/// `n` refreshes of `rt` by `app` at once, each on a task of its own.
async fn concurrent_refreshes(h: &Harness, rt: &str, n: usize) -> Vec<Reply> {
    let body = format!("grant_type=refresh_token&refresh_token={rt}");
    concurrently(h, Some(APP), &body, n).await
}

async fn concurrently(
    h: &Harness,
    client: Option<(&str, &str)>,
    body: &str,
    n: usize,
) -> Vec<Reply> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (endpoint, req) = (
                h.server.token_endpoint(),
                form("/oauth/token", client, body),
            );
            tokio::spawn(call(endpoint, req))
        })
        .collect();
    let mut replies = Vec::with_capacity(n);
    for task in tasks {
        replies.push(task.await.expect("a request task"));
    }
    replies
}

/// Of concurrent refreshes that all read the token active, exactly one rotates it; the others are
/// replays, which revoke the family, the winner's successor included.
pub async fn concurrent_refreshes_have_one_winner(store: Arc<dyn TokenStore>) {
    let h = Harness::new(gate(store, 16), |_| {});
    let (_, rt) = h.login().await;
    let replies = concurrent_refreshes(&h, &rt, 16).await;
    let winners: Vec<_> = replies.iter().filter(|r| r.status == 200).collect();
    assert_eq!(winners.len(), 1);
    for r in replies.iter().filter(|r| r.status != 200) {
        r.assert_error(400, "invalid_grant");
    }
    let won = winners[0].json();
    assert!(!h.accepted(&text(&won, "access_token")).await);
    h.refresh(APP, &text(&won, "refresh_token"))
        .await
        .assert_error(400, "invalid_grant");
}

/// Inside the grace window, concurrent refreshes all get one and the same successor.
pub async fn concurrent_refreshes_in_grace_share_one_successor(store: Arc<dyn TokenStore>) {
    let h = Harness::new(gate(store, 16), |c| {
        c.refresh_token_grace_period = Duration::from_secs(60)
    });
    let (_, rt) = h.login().await;
    let replies = concurrent_refreshes(&h, &rt, 16).await;
    let first = replies[0].assert_token();
    for r in &replies {
        let v = r.assert_token();
        assert_eq!(v["refresh_token"], first["refresh_token"]);
        assert_eq!(v["access_token"], first["access_token"]);
    }
    let successor = text(&first, "refresh_token");
    let found = h
        .store()
        .find_refresh_token(&TokenHash::of(&successor))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found.generation, found.family_generation), (1, 1));
    h.refresh(APP, &successor).await.assert_token();
}

/// A refresh token presented by a client other than its own is `invalid_grant` and changes
/// nothing: it is not a replay, its family stays live, and its own client can still use it.
pub async fn refresh_by_another_client_changes_nothing(store: Arc<dyn TokenStore>) {
    let h = Harness::new(store, |_| {});
    let (at, rt) = h.login().await;
    for _ in 0..2 {
        h.refresh(OTHER, &rt)
            .await
            .assert_error(400, "invalid_grant");
    }
    assert!(h.accepted(&at).await, "the family is still live");
    assert_eq!(h.count_events("reuse_detected"), 0);
    let v = h.refresh(APP, &rt).await.assert_token();
    assert!(h.accepted(&text(&v, "access_token")).await);
}

/// Code for `spa`, with PKCE: the code and the token request that redeems it.
async fn spa_code(h: &Harness) -> (String, String) {
    let code = h
        .server
        .issue_authorization_code(
            AuthorizationRequest::new("spa", "alice")
                .redirect_uri("https://spa.example/cb")
                .scope("read")
                .code_challenge(CHALLENGE, Some("S256")),
        )
        .await
        .unwrap();
    let body = format!(
        "grant_type=authorization_code&code={code}&client_id=spa\
         &redirect_uri=https%3A%2F%2Fspa.example%2Fcb&code_verifier={VERIFIER}"
    );
    (code, body)
}

/// A code redeems once; a wrong verifier does not use it up; a second use is refused and revokes
/// what the first issued.
pub async fn code_is_single_use(store: Arc<dyn TokenStore>) {
    let h = Harness::new(store, |_| {});
    let (_, body) = spa_code(&h).await;
    let wrong = body.replace(VERIFIER, &VERIFIER.replace('d', "x"));
    h.token(None, &wrong)
        .await
        .assert_error(400, "invalid_grant");
    let v = h.token(None, &body).await.assert_token();
    assert_eq!(v["scope"], "read");
    h.token(None, &body)
        .await
        .assert_error(400, "invalid_grant");
    assert!(
        !h.accepted(&text(&v, "access_token")).await,
        "a second use revokes the first's tokens"
    );
}

/// A code presented by a client other than its own is `invalid_grant` with no effect — before
/// its redemption (it stays usable) and after (the grant it started stays live).
pub async fn code_presented_by_another_client_changes_nothing(store: Arc<dyn TokenStore>) {
    let h = Harness::new(store, |_| {});
    let (code, body) = spa_code(&h).await;
    let by_other = format!(
        "grant_type=authorization_code&code={code}\
         &redirect_uri=https%3A%2F%2Fspa.example%2Fcb&code_verifier={VERIFIER}"
    );
    let as_other_public = body.replace("client_id=spa", "client_id=nobody");
    h.token(Some(OTHER), &by_other)
        .await
        .assert_error(400, "invalid_grant");
    h.token(None, &as_other_public)
        .await
        .assert_error(401, "invalid_client");
    let v = h.token(None, &body).await.assert_token();
    let at = text(&v, "access_token");
    h.token(Some(OTHER), &by_other)
        .await
        .assert_error(400, "invalid_grant");
    assert!(
        h.accepted(&at).await,
        "another client's use of a redeemed code revoked its grant"
    );
    h.token(None, &body)
        .await
        .assert_error(400, "invalid_grant");
    assert!(
        !h.accepted(&at).await,
        "its own client's second use revokes"
    );
}

/// Of concurrent redemptions of one code, exactly one succeeds; the rest are second uses, which
/// revoke what it issued.
pub async fn concurrent_code_redemption(store: Arc<dyn TokenStore>) {
    let h = Harness::new(store, |_| {});
    let code = h
        .server
        .issue_authorization_code(
            AuthorizationRequest::new("app", "alice")
                .redirect_uri("https://app.example/cb")
                .code_challenge(CHALLENGE, Some("S256")),
        )
        .await
        .unwrap();
    let body = format!(
        "grant_type=authorization_code&code={code}&redirect_uri=https%3A%2F%2Fapp.example%2Fcb\
         &code_verifier={VERIFIER}"
    );
    let mut ok = Vec::new();
    for r in concurrently(&h, Some(APP), &body, 8).await {
        if r.status == 200 {
            ok.push(r.assert_token());
        } else {
            r.assert_error(400, "invalid_grant");
        }
    }
    assert_eq!(ok.len(), 1, "exactly one redemption");
    assert!(!h.accepted(&text(&ok[0], "access_token")).await);
}

/// Whether the store still finds this access token.
async fn holds_access(store: &dyn TokenStore, token: &str) -> bool {
    let found = store.find_access_token(&TokenHash::of(token)).await;
    found.expect("the store answers").is_some()
}

/// Whether the store still finds this refresh token.
async fn holds_refresh(store: &dyn TokenStore, token: &str) -> bool {
    let found = store.find_refresh_token(&TokenHash::of(token)).await;
    found.expect("the store answers").is_some()
}

/// A grant with its first tokens, as the token endpoint would create it, and those tokens.
fn new_grant(
    id: GrantId,
    now: u64,
) -> (GrantRecord, NewAccessToken, NewRefreshToken, String, String) {
    let (at, rt) = (
        token::generate_for(id.route()),
        token::generate_for(id.route()),
    );
    let scope = Scope::parse("read").expect("a valid scope");
    let grant = GrantRecord {
        id,
        client_id: Arc::from("app"),
        subject: Some(Arc::from("alice")),
        scope: scope.clone(),
        resources: Resources::parse([MCP, OTHER_RESOURCE]).expect("valid resources"),
        grant_type: GrantType::Password,
        created_at: now,
        expires_at: Some(now + 90 * 86_400),
    };
    let access = NewAccessToken {
        hash: at.hash(),
        scope,
        audience: Resources::parse([MCP]).expect("a valid resource"),
        issued_at: now,
        expires_at: now + 3600,
    };
    let refresh = NewRefreshToken {
        hash: rt.hash(),
        issued_at: now,
        expires_at: now + 86_400,
        generation: 0,
    };
    (
        grant,
        access,
        refresh,
        at.expose().to_owned(),
        rt.expose().to_owned(),
    )
}

/// `redeem_code` called twice on one code: the first redeems and creates the grant, the second
/// reports the grant the first started and creates nothing.
pub async fn code_redeemed_twice_in_the_store(store: Arc<dyn TokenStore>) {
    let h = Harness::new(Arc::clone(&store), |_| {});
    let (code, _) = spa_code(&h).await;
    let hash = TokenHash::of(&code);
    // A grant from a code goes on the code's route (one slot of a cluster for both).
    let route = hash.route().expect("a code names its route");
    let now = h.now();
    let (first, a1, r1, at1, _) = new_grant(GrantId::generate_in(route), now);
    let (second, a2, r2, at2, _) = new_grant(GrantId::generate_in(route), now);
    let first_id = first.id;
    let redeemed = store.redeem_code(&hash, first, a1, Some(r1)).await.unwrap();
    assert_eq!(redeemed, Redemption::Redeemed);
    let again = store
        .redeem_code(&hash, second, a2, Some(r2))
        .await
        .unwrap();
    assert_eq!(again, Redemption::AlreadyRedeemed(first_id));
    assert!(holds_access(&*store, &at1).await);
    assert!(
        !holds_access(&*store, &at2).await,
        "the second redemption created a grant"
    );
    let missing = TokenHash::of(token::generate().expose());
    let (g, a, r, _, _) = new_grant(GrantId::generate_in(missing.route().unwrap()), now);
    assert_eq!(
        store.redeem_code(&missing, g, a, Some(r)).await.unwrap(),
        Redemption::Missing
    );
}

/// A grant revoked before it is created (a code's second use racing its first) is born revoked.
pub async fn grant_revoked_before_creation_stays_revoked(store: Arc<dyn TokenStore>) {
    let id = GrantId::generate();
    assert!(
        !store.revoke_grant(id).await.unwrap(),
        "nothing live to revoke yet"
    );
    let (g, a, r, at, rt) = new_grant(id, SystemClock.now());
    store.create_grant(g, a, Some(r)).await.unwrap();
    assert!(!holds_access(&*store, &at).await);
    assert!(!holds_refresh(&*store, &rt).await);
}

/// What a store returns is what it was given, field for field.
pub async fn records_round_trip(store: Arc<dyn TokenStore>) {
    let now = SystemClock.now();
    let id = GrantId::generate();
    let (g, a, r, at, rt) = new_grant(id, now);
    store.create_grant(g.clone(), a, Some(r)).await.unwrap();
    let found = store
        .find_access_token(&TokenHash::of(&at))
        .await
        .unwrap()
        .expect("the access token");
    assert_eq!(found.grant, g);
    assert_eq!(found.scope.as_str(), "read");
    assert_eq!(
        found.audience.as_str(),
        MCP,
        "the access token's own audience"
    );
    assert_eq!((found.issued_at, found.expires_at), (now, now + 3600));
    let rec = store
        .find_refresh_token(&TokenHash::of(&rt))
        .await
        .unwrap()
        .expect("the refresh token");
    assert_eq!(rec.grant, g);
    assert_eq!(rec.state, RefreshTokenState::Active);
    assert_eq!(rec.access_token, Some(TokenHash::of(&at)));
    assert_eq!((rec.generation, rec.family_generation), (0, 0));
    assert!(store.revoke_grant(id).await.unwrap());
    assert!(!store.revoke_grant(id).await.unwrap());
    assert!(!holds_access(&*store, &at).await);
}

/// A bulk revocation covers every matching grant, however many (more than one batch of the
/// Redis store's 500), and no other.
pub async fn bulk_revocation_covers_more_than_one_batch(store: Arc<dyn TokenStore>) {
    let now = SystemClock.now();
    let mut tokens = Vec::new();
    for _ in 0..1200 {
        let (mut g, a, r, at, _) = new_grant(GrantId::generate(), now);
        g.subject = Some(Arc::from("many"));
        store.create_grant(g, a, Some(r)).await.unwrap();
        tokens.push(at);
    }
    let (other, a, r, other_at, _) = new_grant(GrantId::generate(), now);
    store.create_grant(other, a, Some(r)).await.unwrap();
    let many = GrantFilter::Subject("many".into());
    assert_eq!(store.revoke_grants(&many).await.unwrap(), 1200);
    for at in tokens.iter().step_by(97).chain(tokens.last()) {
        assert!(!holds_access(&*store, at).await);
    }
    assert!(
        holds_access(&*store, &other_at).await,
        "another subject's grant survives"
    );
    assert_eq!(store.revoke_grants(&many).await.unwrap(), 0);
}

/// A pending authorization request (a typed record over the store's record primitive) is
/// found as it was kept, taken at most once however many ask at the same time, and gone once it
/// lapsed or was purged.
pub async fn pending_requests_are_taken_once(store: Arc<dyn TokenStore>) {
    let now = SystemClock.now();
    let kind = <crate::grant::PendingAuthorization as RecordType>::KIND;
    let kept = |expires_at| Record {
        data: Arc::from(&b"{\"client_id\":\"app\"}"[..]),
        expires_at,
    };
    let key = RecordKey::new(kind, token::generate().hash());
    let request = kept(now + 600);
    assert!(put(&store, &key, request.clone(), Put::Always, now).await);
    assert_eq!(
        store.get_record(&key, now).await.unwrap(),
        Some(request.clone())
    );
    assert_eq!(
        store.get_record(&key, now).await.unwrap(),
        Some(request.clone()),
        "a get keeps it"
    );
    let takers: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.take_record(&key, now).await.unwrap() })
        })
        .collect();
    let mut taken = Vec::new();
    for t in takers {
        taken.extend(t.await.expect("a take task"));
    }
    assert_eq!(taken, std::slice::from_ref(&request), "taken once");
    assert_eq!(store.get_record(&key, now).await.unwrap(), None);
    assert_eq!(store.take_record(&key, now).await.unwrap(), None);
    // Lapses at its expiry, not before; purged then.
    let lapsing = RecordKey::new(kind, token::generate().hash());
    assert!(put(&store, &lapsing, kept(now + 60), Put::Always, now).await);
    assert!(
        store
            .get_record(&lapsing, now + 59)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(store.get_record(&lapsing, now + 60).await.unwrap(), None);
    assert_eq!(
        store.take_record(&lapsing, now + 60).await.unwrap(),
        None,
        "lapsed"
    );
    let purged = RecordKey::new(kind, token::generate().hash());
    assert!(put(&store, &purged, kept(now + 60), Put::Always, now).await);
    store.purge_expired(now + 59).await.unwrap();
    assert!(store.get_record(&purged, now).await.unwrap().is_some());
    store.purge_expired(now + 60).await.unwrap();
    assert_eq!(
        store.get_record(&purged, now).await.unwrap(),
        None,
        "purged"
    );
}

const NONCE: RecordKind = RecordKind::new("conformance_nonce");
const HITS: RecordKind = RecordKind::new("conformance_hits");

async fn put(store: &Arc<dyn TokenStore>, key: &RecordKey, r: Record, mode: Put, now: u64) -> bool {
    store.put_record(key, r, mode, now).await.unwrap()
}

fn bytes(data: &str, expires_at: u64) -> Record {
    Record {
        data: Arc::from(data.as_bytes()),
        expires_at,
    }
}

/// Records of different kinds never meet under one id; a put replaces, a delete removes, and a
/// record is absent from its expiry on, whatever the store's own clock.
pub async fn records_are_kept_by_kind_replaced_and_deleted(store: Arc<dyn TokenStore>) {
    let now = SystemClock.now();
    let id = token::generate().hash();
    let (a, b) = (RecordKey::new(NONCE, id), RecordKey::new(HITS, id));
    assert!(put(&store, &a, bytes("one", now + 600), Put::Always, now).await);
    assert_eq!(
        store.get_record(&b, now).await.unwrap(),
        None,
        "another kind"
    );
    assert!(put(&store, &a, bytes("two", now + 900), Put::Always, now).await);
    assert_eq!(
        store.get_record(&a, now).await.unwrap(),
        Some(bytes("two", now + 900)),
        "replaced, with its new expiry"
    );
    assert_eq!(
        store.get_record(&a, now + 899).await.unwrap(),
        Some(bytes("two", now + 900))
    );
    assert_eq!(
        store.get_record(&a, now + 900).await.unwrap(),
        None,
        "lapsed"
    );
    assert!(store.delete_record(&a).await.unwrap());
    assert!(!store.delete_record(&a).await.unwrap(), "deleted once");
    assert_eq!(store.get_record(&a, now).await.unwrap(), None);
    // Any bytes at all, kept as they were.
    let binary = Record {
        data: Arc::from(&[0u8, 255, 10, 13, 0][..]),
        expires_at: now + 60,
    };
    assert!(put(&store, &a, binary.clone(), Put::Always, now).await);
    assert_eq!(store.take_record(&a, now).await.unwrap(), Some(binary));
}

/// Of concurrent puts-if-absent on one key, exactly one writes; a lapsed record counts as
/// absent.
pub async fn put_if_absent_has_exactly_one_winner(store: Arc<dyn TokenStore>) {
    let now = SystemClock.now();
    let key = RecordKey::new(NONCE, token::generate().hash());
    let puts: Vec<_> = (0..16)
        .map(|i| {
            let store = Arc::clone(&store);
            let record = bytes(&format!("writer {i}"), now + 600);
            tokio::spawn(async move { store.put_record(&key, record, Put::IfAbsent, now).await })
        })
        .collect();
    let mut winners = Vec::new();
    for (i, p) in puts.into_iter().enumerate() {
        if p.await.expect("a put task").unwrap() {
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1, "one winner: {winners:?}");
    let held = store
        .get_record(&key, now)
        .await
        .unwrap()
        .expect("the winner's");
    assert_eq!(&*held.data, format!("writer {}", winners[0]).as_bytes());
    // Live: refused. Lapsed (as of a later now): written over.
    assert!(
        !put(
            &store,
            &key,
            bytes("late", now + 600),
            Put::IfAbsent,
            now + 599
        )
        .await
    );
    assert!(
        put(
            &store,
            &key,
            bytes("after", now + 1200),
            Put::IfAbsent,
            now + 600
        )
        .await
    );
    assert_eq!(
        store.get_record(&key, now + 600).await.unwrap(),
        Some(bytes("after", now + 1200))
    );
}

/// A counter counts every increment, concurrent ones included, within its window, keeps the
/// expiry its first increment set, and starts again at 1 once the window is over.
pub async fn counters_count_every_hit_in_their_window(store: Arc<dyn TokenStore>) {
    let now = SystemClock.now();
    let key = RecordKey::new(HITS, token::generate().hash());
    let hits: Vec<_> = (0..20)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.increment(&key, now + 60, now).await.unwrap() })
        })
        .collect();
    let mut seen = Vec::new();
    for h in hits {
        seen.push(h.await.expect("an increment task"));
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        (1..=20).collect::<Vec<u64>>(),
        "each hit counted once"
    );
    // A later expiry does not move the window's end.
    assert_eq!(
        store.increment(&key, now + 3600, now + 59).await.unwrap(),
        21
    );
    assert_eq!(
        store.increment(&key, now + 120, now + 60).await.unwrap(),
        1,
        "a new window"
    );
    assert_eq!(
        store.increment(&key, now + 500, now + 119).await.unwrap(),
        2
    );
    assert_eq!(
        store.increment(&key, now + 500, now + 120).await.unwrap(),
        1
    );
    assert!(store.delete_record(&key).await.unwrap(), "reset");
    assert_eq!(store.increment(&key, now + 60, now).await.unwrap(), 1);
}

/// Resource indicators (RFC 8707) survive the store: a code keeps the resources its approval
/// covers, the grant it starts keeps them all, and each access token its own audience — the
/// subset its request named, at the code exchange and at a refresh (rotating or not), or the
/// grant's whole set.
pub async fn resources_and_audiences_are_kept(store: Arc<dyn TokenStore>) {
    let h = Harness::new(Arc::clone(&store), |c| {
        c.resources = vec![MCP.to_owned(), OTHER_RESOURCE.to_owned()];
    });
    let code = h
        .server
        .issue_authorization_code(
            AuthorizationRequest::new("spa", "alice")
                .redirect_uri("https://spa.example/cb")
                .scope("read")
                .resource(MCP)
                .resource(OTHER_RESOURCE)
                .code_challenge(CHALLENGE, Some("S256")),
        )
        .await
        .unwrap();
    let both = Resources::parse([MCP, OTHER_RESOURCE]).unwrap();
    let found = store.find_code(&TokenHash::of(&code)).await.unwrap();
    assert_eq!(found.expect("the code").resources, both);
    let v = h
        .token(
            None,
            &format!(
                "grant_type=authorization_code&code={code}&client_id=spa\
                 &redirect_uri=https%3A%2F%2Fspa.example%2Fcb&code_verifier={VERIFIER}\
                 &resource=https%3A%2F%2Fmcp.example%2Fmcp"
            ),
        )
        .await
        .assert_token();
    let audience_of = |token: String| {
        let store = Arc::clone(&store);
        async move {
            let found = store.find_access_token(&TokenHash::of(&token)).await;
            let record = found.unwrap().expect("the access token");
            (record.audience, record.grant.resources)
        }
    };
    let only_mcp = Resources::parse([MCP]).unwrap();
    let (audience, granted) = audience_of(text(&v, "access_token")).await;
    assert_eq!((&audience, &granted), (&only_mcp, &both));
    let rt = text(&v, "refresh_token");
    let rec = store.find_refresh_token(&TokenHash::of(&rt)).await.unwrap();
    assert_eq!(rec.expect("the refresh token").grant.resources, both);
    // A refresh without `resource`: the grant's whole set.
    let v = h
        .token(
            None,
            &format!("grant_type=refresh_token&refresh_token={rt}&client_id=spa"),
        )
        .await
        .assert_token();
    assert_eq!(
        audience_of(text(&v, "access_token")).await,
        (both.clone(), both.clone())
    );
    // For one of them: that one alone, and the grant keeps both.
    let rt = text(&v, "refresh_token");
    let v = h
        .token(
            None,
            &format!(
                "grant_type=refresh_token&refresh_token={rt}&client_id=spa\
                 &resource=https%3A%2F%2Fmcp.example%2Fother"
            ),
        )
        .await
        .assert_token();
    let only_other = Resources::parse([OTHER_RESOURCE]).unwrap();
    assert_eq!(
        audience_of(text(&v, "access_token")).await,
        (only_other, both.clone())
    );
    // Rotation off: the same refresh token, the audience still per request.
    let h = Harness::new(Arc::clone(&store), |c| {
        c.resources = vec![MCP.to_owned(), OTHER_RESOURCE.to_owned()];
        c.rotate_refresh_token = false;
    });
    let v = h
        .token(
            Some(APP),
            "grant_type=password&username=alice&password=wonderland&scope=read\
             &resource=https%3A%2F%2Fmcp.example%2Fmcp&resource=https%3A%2F%2Fmcp.example%2Fother",
        )
        .await
        .assert_token();
    assert_eq!(
        audience_of(text(&v, "access_token")).await,
        (both.clone(), both.clone())
    );
    let rt = text(&v, "refresh_token");
    let v = h
        .token(
            Some(APP),
            &format!(
                "grant_type=refresh_token&refresh_token={rt}&resource=https%3A%2F%2Fmcp.example%2Fmcp"
            ),
        )
        .await
        .assert_token();
    assert!(v.get("refresh_token").is_none());
    assert_eq!(
        audience_of(text(&v, "access_token")).await,
        (only_mcp, both)
    );
}

/// A put-if-present replaces a live record and never creates one: not where none was, not where
/// one lapsed, not after a delete. An extension moves a live record's expiry later (never
/// sooner), keeps its data, and never brings back a lapsed or deleted record. Of concurrent
/// updates and a delete, the record ends deleted or updated, never resurrected after the delete.
pub async fn put_if_present_and_extend_never_bring_a_record_back(store: Arc<dyn TokenStore>) {
    let now = SystemClock.now();
    let key = RecordKey::new(NONCE, token::generate().hash());
    assert!(
        !put(&store, &key, bytes("new", now + 600), Put::IfPresent, now).await,
        "nothing to replace"
    );
    assert_eq!(
        store.get_record(&key, now).await.unwrap(),
        None,
        "not created"
    );
    assert!(!store.extend_record(&key, now + 600, now).await.unwrap());
    assert_eq!(
        store.get_record(&key, now).await.unwrap(),
        None,
        "not created"
    );
    assert!(put(&store, &key, bytes("one", now + 600), Put::Always, now).await);
    assert!(put(&store, &key, bytes("two", now + 300), Put::IfPresent, now).await);
    assert_eq!(
        store.get_record(&key, now).await.unwrap(),
        Some(bytes("two", now + 300)),
        "replaced, with its new expiry"
    );
    assert!(store.extend_record(&key, now + 900, now).await.unwrap());
    assert_eq!(
        store.get_record(&key, now + 600).await.unwrap(),
        Some(bytes("two", now + 900)),
        "extended, the data kept"
    );
    assert!(store.extend_record(&key, now + 100, now).await.unwrap());
    assert_eq!(
        store.get_record(&key, now + 800).await.unwrap(),
        Some(bytes("two", now + 900)),
        "never shortened"
    );
    // Lapsed: neither replaced nor extended.
    let later = now + 900;
    assert!(
        !put(
            &store,
            &key,
            bytes("three", later + 600),
            Put::IfPresent,
            later
        )
        .await
    );
    assert!(!store.extend_record(&key, later + 600, later).await.unwrap());
    assert_eq!(store.get_record(&key, later).await.unwrap(), None);
    // Deleted: likewise. From here on time runs on from `later` (a store may sweep what had
    // lapsed by then, as the memory store does in the background).
    let now = later;
    assert!(put(&store, &key, bytes("four", now + 600), Put::Always, now).await);
    assert!(store.delete_record(&key).await.unwrap());
    assert!(!put(&store, &key, bytes("five", now + 600), Put::IfPresent, now).await);
    assert!(!store.extend_record(&key, now + 900, now).await.unwrap());
    assert_eq!(store.get_record(&key, now).await.unwrap(), None);
    // 16 concurrent updates and one delete: once the delete has answered, the record is gone
    // for good.
    assert!(put(&store, &key, bytes("base", now + 600), Put::Always, now).await);
    let updates: Vec<_> = (0..16)
        .map(|i| {
            let (store, key) = (Arc::clone(&store), key);
            tokio::spawn(async move {
                let r = bytes(&format!("update {i}"), now + 600);
                store
                    .put_record(&key, r, Put::IfPresent, now)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let deleted = store.delete_record(&key).await.unwrap();
    let mut after_delete = 0;
    for u in updates {
        u.await.unwrap();
    }
    for i in 0..16 {
        let r = bytes(&format!("late {i}"), now + 600);
        if store
            .put_record(&key, r, Put::IfPresent, now)
            .await
            .unwrap()
        {
            after_delete += 1;
        }
    }
    assert_eq!(after_delete, 0, "an update after the delete wrote");
    // Updates before the delete replaced a live record, the delete removed it, updates after
    // it found none: whatever the interleaving, nothing is there now.
    assert!(deleted, "the delete found the record");
    assert_eq!(
        store.get_record(&key, now).await.unwrap(),
        None,
        "resurrected"
    );
}

/// Clients registered at run time ([`StoredClients`](crate::client::StoredClients)) are seen by
/// every instance on the store with every setting intact; an id is registered once; an update
/// and a touch apply to a live registration only; a registration lapses at its expiry; and
/// deleting one revokes the tokens it holds and refuses it at the token endpoint, for good.
pub async fn stored_clients_are_shared_updated_touched_and_deleted(store: Arc<dyn TokenStore>) {
    use crate::client::{Client, ClientStore, InMemoryClients, StoredClients};
    let clock = Arc::new(crate::clock::ManualClock::new(SystemClock.now()));
    let now = clock.now();
    let (a, b) = (
        StoredClients::new(Arc::clone(&store)).with_clock(clock.clone()),
        StoredClients::new(Arc::clone(&store)).with_clock(clock.clone()),
    );
    let id = format!("registered-{}", &token::generate().expose()[3..15]);
    let client = Client::confidential(&id, "first-secret")
        .grant_types([GrantType::ClientCredentials, GrantType::AuthorizationCode])
        .redirect_uri("https://app.example/cb")
        .scope("read write")
        .default_scope("read")
        .resource("https://mcp.example/mcp")
        .introspect(true)
        .build()
        .unwrap();
    assert!(a.register(&client, now + 600).await.unwrap());
    assert!(
        !b.register(&client, now + 600).await.unwrap(),
        "an id is registered once"
    );
    let found = b
        .find_client(&id)
        .await
        .unwrap()
        .expect("seen by another instance");
    assert_eq!(
        format!("{found:?}"),
        format!("{client:?}"),
        "every setting kept"
    );
    assert!(found.verify_secret("first-secret").await);
    assert!(!found.verify_secret("second-secret").await);
    assert_eq!(
        a.find_client("registered-nobody")
            .await
            .unwrap()
            .map(|c| c.id().to_owned()),
        None
    );
    // Update: the new settings, at once, everywhere.
    let updated = Client::confidential(&id, "second-secret")
        .grant_types([GrantType::ClientCredentials])
        .scope("read")
        .build()
        .unwrap();
    assert!(b.update(&updated, now + 600).await.unwrap());
    let found = a.find_client(&id).await.unwrap().expect("still registered");
    assert!(
        found.verify_secret("second-secret").await && !found.verify_secret("first-secret").await
    );
    // Touched: it lives longer, never shorter.
    assert_eq!(a.expires_at(&id).await.unwrap(), Some(now + 600));
    assert!(a.touch(&id, now + 1200).await.unwrap());
    assert!(a.touch(&id, now + 700).await.unwrap());
    assert_eq!(b.expires_at(&id).await.unwrap(), Some(now + 1200));
    // A server on this store: code clients first, then the registered ones.
    let server = crate::AuthServer::builder()
        .clients(InMemoryClients::new().then(a.clone()))
        .shared_store(Arc::clone(&store))
        .clock(clock.clone())
        .build()
        .unwrap();
    let token_request = || {
        let server = server.clone();
        let id = id.clone();
        async move {
            call(
                server.token_endpoint(),
                form(
                    "/oauth/token",
                    Some((&id, "second-secret")),
                    "grant_type=client_credentials",
                ),
            )
            .await
        }
    };
    let v = token_request().await.assert_token();
    let at = text(&v, "access_token");
    assert!(server.validate_access_token(&at).await.unwrap().is_some());
    // Deleted: its tokens revoked, the client refused, and nothing brings it back.
    assert!(a.delete(&id).await.unwrap());
    assert!(!a.delete(&id).await.unwrap(), "deleted once");
    let revoked = async {
        for _ in 0..200 {
            if server.validate_access_token(&at).await.unwrap().is_none() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    };
    assert!(revoked.await, "the deleted client's token still works");
    token_request().await.assert_error(401, "invalid_client");
    assert!(
        !b.update(&updated, now + 600).await.unwrap(),
        "an update brought it back"
    );
    assert!(
        !b.touch(&id, now + 600).await.unwrap(),
        "a touch brought it back"
    );
    assert!(a.find_client(&id).await.unwrap().is_none());
    // A registration lapses at its expiry, and the id may then be registered again.
    assert!(a.register(&client, now + 60).await.unwrap());
    clock.advance(Duration::from_secs(60));
    assert!(b.find_client(&id).await.unwrap().is_none(), "lapsed");
    assert!(!b.touch(&id, now + 600).await.unwrap());
    assert!(b.register(&client, clock.now() + 60).await.unwrap());
    assert!(a.delete(&id).await.unwrap());
}
