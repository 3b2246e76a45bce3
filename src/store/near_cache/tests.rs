use std::sync::Weak;

use super::*;
use crate::{
    client::GrantType,
    clock::ManualClock,
    error::StoreError,
    future::BoxFuture,
    scope::Scope,
    store::{
        Announcements, CodeStore, GrantFilter, GrantRecord, GrantStore, MemoryStore,
        NewAccessToken, NewRefreshToken, Outgoing, Redemption, RefreshTokenState, Rotation,
        RotationOutcome,
        wrap::{Wraps, WrapsCodes, WrapsGrants, WrapsPurge, WrapsRecords},
    },
    token::{self, GrantId, Route, SecretToken, TokenHash},
};

const NOW: u64 = 1_700_000_000;

/// A memory store that "announces": the test plays the channel, and can hold a lookup
/// between its read and its return.
#[derive(Default)]
struct Announcing {
    memory: MemoryStore,
    listener: Mutex<Option<Weak<dyn InvalidationListener>>>,
    /// While set, a lookup waits after reading until it is notified.
    hold: Mutex<Option<Arc<tokio::sync::Notify>>>,
    /// Where revocations are announced, when several instances share this store.
    bus: Option<Arc<Bus>>,
    /// Refresh-token reads that reached the store.
    refresh_reads: AtomicUsize,
    /// Code reads that reached the store.
    code_reads: AtomicUsize,
}

impl Announcing {
    fn listener(&self) -> Arc<dyn InvalidationListener> {
        let l = self.listener.lock().unwrap();
        l.as_ref().and_then(Weak::upgrade).expect("listening")
    }
}

impl Wraps for Announcing {
    type Inner = MemoryStore;
    fn wrapped(&self) -> &MemoryStore {
        &self.memory
    }
}

impl WrapsGrants for Announcing {
    fn find_access_token<'a>(
        &'a self,
        h: &'a TokenHash,
    ) -> BoxFuture<'a, Result<Option<AccessTokenRecord>, StoreError>> {
        Box::pin(async move {
            let found = self.memory.find_access_token(h).await;
            let hold = self.hold.lock().unwrap().clone();
            if let Some(n) = hold {
                n.notified().await;
            }
            found
        })
    }
    /// Lookups go through the hold above: never answered at once.
    fn find_access_token_now(
        &self,
        _: &TokenHash,
    ) -> Option<Result<Option<AccessTokenRecord>, StoreError>> {
        None
    }
    fn find_refresh_token<'a>(
        &'a self,
        h: &'a TokenHash,
    ) -> BoxFuture<'a, Result<Option<RefreshTokenRecord>, StoreError>> {
        self.refresh_reads.fetch_add(1, Ordering::SeqCst);
        self.memory.find_refresh_token(h)
    }
    fn find_refresh_token_to_use<'a>(
        &'a self,
        h: &'a TokenHash,
    ) -> BoxFuture<'a, Result<Option<RefreshTokenRecord>, StoreError>> {
        WrapsGrants::find_refresh_token(self, h)
    }
    fn revoke_access_token<'a>(
        &'a self,
        h: &'a TokenHash,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let revoked = self.memory.revoke_access_token(h).await?;
            if let (true, Some(bus)) = (revoked, &self.bus) {
                bus.send(Invalidation::AccessToken(*h).encode());
            }
            Ok(revoked)
        })
    }
}

impl WrapsCodes for Announcing {
    fn find_code<'a>(
        &'a self,
        h: &'a TokenHash,
    ) -> BoxFuture<'a, Result<Option<AuthorizationCodeRecord>, StoreError>> {
        self.code_reads.fetch_add(1, Ordering::SeqCst);
        self.memory.find_code(h)
    }
    fn find_code_to_use<'a>(
        &'a self,
        h: &'a TokenHash,
    ) -> BoxFuture<'a, Result<Option<AuthorizationCodeRecord>, StoreError>> {
        WrapsCodes::find_code(self, h)
    }
}

impl WrapsRecords for Announcing {}
impl WrapsPurge for Announcing {}

impl Announcements for Announcing {
    fn announces_revocations(&self) -> bool {
        true
    }
    fn listen(&self, listener: Weak<dyn InvalidationListener>) {
        *self.listener.lock().unwrap() = Some(listener);
    }
}

struct Setup {
    store: Arc<Announcing>,
    cache: NearCache,
    clock: Arc<ManualClock>,
}

fn setup(config: NearCacheConfig) -> Setup {
    let store = Arc::new(Announcing::default());
    let clock = Arc::new(ManualClock::new(NOW));
    let cache = NearCache::new(
        Arc::clone(&store) as Arc<dyn TokenStore>,
        Arc::clone(&clock) as Arc<dyn Clock>,
        config,
    );
    cache.start();
    connect(&store);
    Setup {
        store,
        cache,
        clock,
    }
}

/// Bring the channel up: what the listener publishes comes back to it, as on a real one.
fn connect(store: &Announcing) {
    let (outbox, mut outgoing) = Outbox::channel();
    let listener = store.listener();
    listener.connected(outbox);
    let weak = Arc::downgrade(&listener);
    tokio::spawn(async move {
        while let Some(Outgoing { text, .. }) = outgoing.recv().await {
            let Some(l) = weak.upgrade() else { return };
            l.message(&text);
        }
    });
}

fn announce(s: &Setup, what: Invalidation) {
    s.store.listener().message(&what.encode());
}

/// A password grant of `subject` for `client`, made at `at`.
fn grant_for(subject: &str, client: &str, scope: &Scope, at: UnixTime) -> GrantRecord {
    GrantRecord {
        id: GrantId::generate(),
        client_id: Arc::from(client),
        subject: Some(Arc::from(subject)),
        scope: scope.clone(),
        resources: Default::default(),
        grant_type: GrantType::Password,
        created_at: at,
        expires_at: None,
    }
}

/// A grant of `subject` for `client` with one access token living `secs`.
async fn issue(s: &Setup, subject: &str, client: &str, secs: u64) -> (SecretToken, GrantId) {
    let at = token::generate();
    let scope = Scope::parse("read").unwrap();
    let grant = grant_for(subject, client, &scope, NOW);
    let id = grant.id;
    let access = NewAccessToken {
        hash: at.hash(),
        scope,
        audience: Default::default(),
        issued_at: NOW,
        expires_at: NOW + secs,
    };
    s.cache.create_grant(grant, access, None).await.unwrap();
    (at, id)
}

async fn found(s: &Setup, at: &SecretToken) -> bool {
    s.cache
        .find_access_token(&at.hash())
        .await
        .unwrap()
        .is_some()
}

/// A grant with an access token and a refresh token living 8 days, issued at `at`; the
/// refresh token's hash.
async fn issue_refresh(s: &Setup, at: UnixTime) -> TokenHash {
    let scope = Scope::parse("read offline_access").unwrap();
    let grant = grant_for("alice", "app", &scope, at);
    let access = NewAccessToken {
        hash: token::generate().hash(),
        scope,
        audience: Default::default(),
        issued_at: at,
        expires_at: at + 3600,
    };
    let refresh = NewRefreshToken {
        hash: token::generate().hash(),
        issued_at: at,
        expires_at: at + 8 * 86_400,
        generation: 0,
    };
    let hash = refresh.hash;
    s.cache
        .create_grant(grant, access, Some(refresh))
        .await
        .unwrap();
    hash
}

#[tokio::test]
async fn a_full_refresh_memo_lets_new_sessions_in_once_unused_ones_lapse_after_a_day() {
    let s = setup(NearCacheConfig {
        max_entries: 2,
        ..NearCacheConfig::default()
    });
    let (a, b) = (issue_refresh(&s, NOW).await, issue_refresh(&s, NOW).await);
    let c = issue_refresh(&s, NOW + 10).await;
    let memo = &s.cache.shared.refresh;
    assert!(memo.get(&a).is_some() && memo.get(&b).is_some());
    assert!(
        memo.get(&c).is_none(),
        "full of live tokens: the third is not remembered"
    );
    // A day on, a and b (8-day tokens, never used) have lapsed from the memo, not from the
    // store: the next session is remembered.
    s.clock.advance(std::time::Duration::from_secs(86_400 + 1));
    let d = issue_refresh(&s, NOW + 86_401).await;
    assert!(memo.get(&d).is_some(), "room made by the lapsed ones");
    assert!(memo.get(&a).is_none() && memo.get(&b).is_none());
    // Forgotten here, still good in the store.
    let found = s
        .cache
        .find_refresh_token_to_use(&a)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.state, RefreshTokenState::Active);
}

/// Revoked behind the cache's back (no announcement): only a cached token still shows.
async fn revoke_silently(s: &Setup, at: &SecretToken) {
    s.store
        .memory
        .revoke_access_token(&at.hash())
        .await
        .unwrap();
}

/// On a store with a channel per route, a barrier follows what it guards: a token's or a
/// grant's on that route's channel, behind its announcement; a user's grants (any routes)
/// on every lane.
#[tokio::test]
async fn barriers_travel_on_the_route_of_what_was_revoked() {
    let store = Arc::new(Announcing::default());
    let cache = NearCache::new(
        Arc::clone(&store) as Arc<dyn TokenStore>,
        Arc::new(ManualClock::new(NOW)) as Arc<dyn Clock>,
        NearCacheConfig::default(),
    );
    cache.start();
    let lanes = vec![Route::new(7).unwrap(), Route::new(0x800).unwrap()];
    let (outbox, mut outgoing) = Outbox::channel();
    let listener = store.listener();
    listener.connected(outbox.with_lanes(lanes.clone()));
    // Another instance is there; it never confirms, so each barrier waits out its bound and
    // forgets it, and it says hello again before each revocation.
    let hello = || listener.message("~hi:beef");
    hello();
    let barriers = |outgoing: &mut tokio::sync::mpsc::UnboundedReceiver<Outgoing>| {
        let mut routes = Vec::new();
        while let Ok(m) = outgoing.try_recv() {
            if m.text.starts_with("~m:") {
                routes.push(m.route);
            }
        }
        routes
    };
    let id = GrantId::generate();
    assert!(!cache.revoke_grant(id).await.unwrap(), "nothing live");
    assert_eq!(
        barriers(&mut outgoing),
        [],
        "nothing revoked, nothing to guard"
    );
    let at = token::generate_for(id.route());
    let grant = GrantRecord {
        id: GrantId::generate_in(id.route()),
        client_id: Arc::from("app"),
        subject: Some(Arc::from("alice")),
        scope: Scope::parse("read").unwrap(),
        resources: Default::default(),
        grant_type: GrantType::Password,
        created_at: NOW,
        expires_at: None,
    };
    let access = NewAccessToken {
        hash: at.hash(),
        scope: Scope::parse("read").unwrap(),
        audience: Default::default(),
        issued_at: NOW,
        expires_at: NOW + 60,
    };
    cache
        .create_grant(grant.clone(), access, None)
        .await
        .unwrap();
    assert!(cache.revoke_access_token(&at.hash()).await.unwrap());
    assert_eq!(barriers(&mut outgoing), [Some(id.route())]);
    hello();
    assert!(cache.revoke_grant(grant.id).await.unwrap());
    assert_eq!(barriers(&mut outgoing), [Some(id.route())]);
    let (at2, _) = {
        let t = token::generate_for(id.route());
        let mut g = grant.clone();
        g.id = GrantId::generate_in(id.route());
        let a = NewAccessToken {
            hash: t.hash(),
            scope: Scope::parse("read").unwrap(),
            audience: Default::default(),
            issued_at: NOW,
            expires_at: NOW + 60,
        };
        cache.create_grant(g.clone(), a, None).await.unwrap();
        (t, g.id)
    };
    hello();
    assert_eq!(
        cache
            .revoke_grants(&GrantFilter::Subject("alice".into()))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        barriers(&mut outgoing),
        lanes.iter().copied().map(Some).collect::<Vec<_>>()
    );
    assert!(
        cache
            .find_access_token(&at2.hash())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_hit_skips_the_store_and_an_announcement_ends_it() {
    let s = setup(NearCacheConfig::default());
    let (at, _) = issue(&s, "alice", "app", 3600).await;
    assert!(found(&s, &at).await);
    assert_eq!(s.cache.stats().entries, 1);
    revoke_silently(&s, &at).await;
    assert!(found(&s, &at).await, "served from the cache");
    assert!(s.cache.find_access_token_now(&at.hash()).is_some());
    announce(&s, Invalidation::AccessToken(at.hash()));
    assert!(!found(&s, &at).await);
    assert_eq!(s.cache.stats().entries, 0);
}

#[tokio::test]
async fn grants_users_and_clients_are_dropped_through_the_indexes() {
    let s = setup(NearCacheConfig::default());
    let (a1, g1) = issue(&s, "alice", "app", 3600).await;
    let (a2, _) = issue(&s, "alice", "other", 3600).await;
    let (b1, _) = issue(&s, "bob", "app", 3600).await;
    let (b2, _) = issue(&s, "bob", "other", 3600).await;
    for t in [&a1, &a2, &b1, &b2] {
        assert!(found(&s, t).await);
        revoke_silently(&s, t).await;
    }
    announce(&s, Invalidation::Grant(g1));
    assert!(!found(&s, &a1).await);
    assert!(found(&s, &a2).await && found(&s, &b1).await);
    announce(&s, Invalidation::Subject("alice".into()));
    assert!(!found(&s, &a2).await);
    assert!(found(&s, &b1).await && found(&s, &b2).await);
    announce(&s, Invalidation::Client("app".into()));
    assert!(!found(&s, &b1).await);
    assert!(found(&s, &b2).await);
    s.store.listener().message("not an announcement");
    assert!(!found(&s, &b2).await, "anything unclear empties the cache");
    let stats = s.cache.stats();
    assert_eq!((stats.entries, stats.bytes), (0, 0));
}

#[tokio::test]
async fn a_lookup_racing_a_revocation_is_not_cached() {
    let s = setup(NearCacheConfig::default());
    let (at, grant) = issue(&s, "alice", "app", 3600).await;
    let (other, _) = issue(&s, "bob", "app", 3600).await;
    let hold = Arc::new(tokio::sync::Notify::new());
    *s.store.hold.lock().unwrap() = Some(Arc::clone(&hold));
    // Read before the revocation, returned after its announcement.
    let cache = s.cache.clone();
    let hash = at.hash();
    let lookup = tokio::spawn(async move { cache.find_access_token(&hash).await });
    tokio::task::yield_now().await;
    announce(&s, Invalidation::Grant(grant));
    hold.notify_one();
    assert!(
        lookup.await.unwrap().unwrap().is_some(),
        "as the store read it"
    );
    assert_eq!(s.cache.stats().entries, 0, "but not cached");
    // An announcement about something else does not stop a fill.
    let cache = s.cache.clone();
    let hash = other.hash();
    let lookup = tokio::spawn(async move { cache.find_access_token(&hash).await });
    tokio::task::yield_now().await;
    announce(&s, Invalidation::Grant(grant));
    hold.notify_one();
    assert!(lookup.await.unwrap().unwrap().is_some());
    assert_eq!(s.cache.stats().entries, 1);
}

#[tokio::test]
async fn a_lost_channel_empties_and_bypasses_until_it_is_back() {
    let s = setup(NearCacheConfig::default());
    let (at, _) = issue(&s, "alice", "app", 3600).await;
    assert!(found(&s, &at).await);
    s.store.listener().lost();
    let stats = s.cache.stats();
    assert_eq!((stats.entries, stats.connected), (0, false));
    assert!(s.cache.find_access_token_now(&at.hash()).is_none());
    revoke_silently(&s, &at).await;
    assert!(!found(&s, &at).await, "asked the store");
    assert_eq!(s.cache.stats().bypassed, 1);
    let (fresh, _) = issue(&s, "alice", "app", 3600).await;
    assert!(found(&s, &fresh).await);
    assert_eq!(s.cache.stats().entries, 0, "nothing cached while down");
    connect(&s.store);
    assert!(found(&s, &fresh).await);
    assert_eq!(s.cache.stats().entries, 1);
}

#[tokio::test]
async fn bounded_in_entries_and_bytes_and_never_past_expiry() {
    let s = setup(NearCacheConfig {
        max_entries: 2,
        ..NearCacheConfig::default()
    });
    let (short, _) = issue(&s, "alice", "app", 10).await;
    let (long, _) = issue(&s, "alice", "app", 3600).await;
    let (third, _) = issue(&s, "bob", "app", 3600).await;
    for t in [&short, &long, &third] {
        assert!(found(&s, t).await);
    }
    assert_eq!(s.cache.stats().entries, 2, "the third found no room");
    s.clock.advance(std::time::Duration::from_secs(11));
    revoke_silently(&s, &short).await;
    assert!(!found(&s, &short).await, "an expired entry is not served");
    // Room again: the expired entry goes when a new one needs its place.
    assert!(found(&s, &third).await);
    assert_eq!(s.cache.stats().entries, 2);
    revoke_silently(&s, &third).await;
    assert!(found(&s, &third).await, "now cached");

    let s = setup(NearCacheConfig {
        max_bytes: 10,
        ..NearCacheConfig::default()
    });
    let (at, _) = issue(&s, "alice", "app", 3600).await;
    assert!(found(&s, &at).await);
    assert_eq!(s.cache.stats().entries, 0, "larger than the byte bound");
}

#[tokio::test]
async fn a_revocation_here_waits_for_its_echo_and_counts_once() {
    let s = setup(NearCacheConfig::default());
    let (at, _) = issue(&s, "alice", "app", 3600).await;
    assert!(found(&s, &at).await);
    // The channel echoes the revocation shortly after the store call.
    let l = s.store.listener();
    let hash = at.hash();
    let echo = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        l.message(&Invalidation::AccessToken(hash).encode());
    });
    let t = std::time::Instant::now();
    assert!(s.cache.revoke_access_token(&at.hash()).await.unwrap());
    assert!(
        t.elapsed() >= std::time::Duration::from_millis(4),
        "waited for the echo"
    );
    echo.await.unwrap();
    assert!(!found(&s, &at).await);
    // An unknown token is not announced: no wait.
    let t = std::time::Instant::now();
    let unknown = token::generate();
    assert!(!s.cache.revoke_access_token(&unknown.hash()).await.unwrap());
    assert!(t.elapsed() < ECHO_WAIT);
    assert!(s.cache.shared.echoes.lock().unwrap().is_empty());
}

/// Several instances on one channel: a bus that delivers every message (the store's
/// announcements, the instances' own) to every member in one order, each member through a
/// queue of its own that the test can hold (a slow instance).
/// A member of the bus: its listener and its delivery queue.
type Member = (
    Weak<dyn InvalidationListener>,
    tokio::sync::mpsc::UnboundedSender<String>,
);

#[derive(Default)]
struct Bus {
    members: Mutex<Vec<Member>>,
}

impl Bus {
    fn send(&self, text: String) {
        for (_, queue) in self.members.lock().unwrap().iter() {
            let _ = queue.send(text.clone());
        }
    }

    /// Join `cache` (over a store on this bus); its deliveries wait while `gate` is closed.
    fn join(self: &Arc<Self>, cache: &NearCache, gate: Arc<tokio::sync::Semaphore>) {
        let listener: Arc<dyn InvalidationListener> = Arc::clone(&cache.shared) as _;
        let (queue, mut incoming) = tokio::sync::mpsc::unbounded_channel::<String>();
        self.members
            .lock()
            .unwrap()
            .push((Arc::downgrade(&listener), queue));
        let weak = Arc::downgrade(&listener);
        tokio::spawn(async move {
            while let Some(text) = incoming.recv().await {
                let _permit = gate.acquire().await;
                let Some(l) = weak.upgrade() else { return };
                l.message(&text);
            }
        });
        let (outbox, mut outgoing) = Outbox::channel();
        listener.connected(outbox);
        let bus = Arc::clone(self);
        tokio::spawn(async move {
            while let Some(Outgoing { text, .. }) = outgoing.recv().await {
                bus.send(text);
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_returns_only_once_every_known_instance_has_applied_it() {
    let bus = Arc::new(Bus::default());
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(NOW));
    let store: Arc<dyn TokenStore> = Arc::new(Announcing {
        bus: Some(Arc::clone(&bus)),
        ..Announcing::default()
    });
    let a = NearCache::new(
        Arc::clone(&store),
        Arc::clone(&clock),
        NearCacheConfig::default(),
    );
    let b = NearCache::new(Arc::clone(&store), clock, NearCacheConfig::default());
    let open = || Arc::new(tokio::sync::Semaphore::new(1 << 20));
    let b_gate = open();
    bus.join(&a, open());
    bus.join(&b, Arc::clone(&b_gate));
    // Each has heard the other's hello (the one who joined first answers the newcomer's).
    let known = async {
        while a.shared.peers.lock().unwrap().is_empty() || b.shared.peers.lock().unwrap().is_empty()
        {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(5), known)
        .await
        .expect("the instances learn of each other");
    let s = Setup {
        store: Arc::new(Announcing::default()),
        cache: a.clone(),
        clock: Arc::new(ManualClock::new(NOW)),
    };
    let (at, _) = issue(&s, "alice", "app", 3600).await;
    for cache in [&a, &b] {
        assert!(cache.find_access_token(&at.hash()).await.unwrap().is_some());
    }
    assert_eq!(b.stats().entries, 1);
    // B is slow: its deliveries wait. A's revocation must not return before B applied it.
    let held = b_gate.acquire_many(1 << 20).await.unwrap();
    let revoking = {
        let a = a.clone();
        let hash = at.hash();
        tokio::spawn(async move { a.revoke_access_token(&hash).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert!(!revoking.is_finished(), "returned before B confirmed");
    assert_eq!(b.stats().entries, 1, "B has not heard yet");
    drop(held);
    assert!(revoking.await.unwrap().unwrap());
    assert_eq!(b.stats().entries, 0, "applied on B before A returned");
    assert!(b.find_access_token_now(&at.hash()).is_none());
}

#[tokio::test]
async fn a_code_issued_here_is_exchanged_without_a_read_and_then_read_again() {
    let s = setup(NearCacheConfig::default());
    let reads = || s.store.code_reads.load(Ordering::SeqCst);
    let code = token::generate();
    let record = AuthorizationCodeRecord {
        hash: code.hash(),
        client_id: Arc::from("app"),
        subject: Arc::from("alice"),
        redirect_uri: None,
        scope: Scope::parse("read").unwrap(),
        resources: Default::default(),
        code_challenge: None,
        issued_at: NOW,
        expires_at: NOW + 60,
        redeemed_by: None,
    };
    s.cache.create_code(record.clone()).await.unwrap();
    let found = s.cache.find_code_to_use(&code.hash()).await.unwrap();
    assert_eq!(found.map(|c| c.subject), Some(Arc::from("alice")));
    assert_eq!(reads(), 0, "known here: no read");
    let route = code.hash().route().unwrap();
    let grant = GrantRecord {
        id: GrantId::generate_in(route),
        client_id: Arc::from("app"),
        subject: Some(Arc::from("alice")),
        scope: Scope::parse("read").unwrap(),
        resources: Default::default(),
        grant_type: GrantType::AuthorizationCode,
        created_at: NOW,
        expires_at: None,
    };
    let access = NewAccessToken {
        hash: token::generate_for(route).hash(),
        scope: Scope::parse("read").unwrap(),
        audience: Default::default(),
        issued_at: NOW,
        expires_at: NOW + 60,
    };
    let redeemed = s
        .cache
        .redeem_code(&code.hash(), grant.clone(), access.clone(), None)
        .await
        .unwrap();
    assert_eq!(redeemed, Redemption::Redeemed);
    // Used up here: the next exchange asks the store, which says who redeemed it.
    let found = s.cache.find_code_to_use(&code.hash()).await.unwrap();
    assert_eq!(found.and_then(|c| c.redeemed_by), Some(grant.id));
    assert_eq!(reads(), 1);
    // A code issued elsewhere (not known here) is read.
    let other = token::generate();
    assert!(
        s.cache
            .find_code_to_use(&other.hash())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(reads(), 2);
}

#[tokio::test]
async fn a_refresh_token_issued_here_is_used_without_a_read_and_a_stale_one_is_read_again() {
    let s = setup(NearCacheConfig::default());
    let reads = || s.store.refresh_reads.load(Ordering::SeqCst);
    let scope = Scope::parse("read").unwrap();
    let grant = grant_for("alice", "app", &scope, NOW);
    let new_access = || NewAccessToken {
        hash: token::generate().hash(),
        scope: scope.clone(),
        audience: Default::default(),
        issued_at: NOW,
        expires_at: NOW + 3600,
    };
    let new_refresh = |generation| NewRefreshToken {
        hash: token::generate().hash(),
        issued_at: NOW,
        expires_at: NOW + 86_400,
        generation,
    };
    let first = new_refresh(0);
    let access = new_access();
    s.cache
        .create_grant(grant.clone(), access.clone(), Some(first.clone()))
        .await
        .unwrap();
    // Known here: no read.
    let known = s
        .cache
        .find_refresh_token_to_use(&first.hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((known.grant.id, known.generation), (grant.id, 0));
    assert_eq!(known.access_token, Some(access.hash));
    assert_eq!(reads(), 0);
    // Introspection and revocation read the store, always.
    assert!(
        s.cache
            .find_refresh_token(&first.hash)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(reads(), 1);
    // Rotated here: the successor is known, the presented token no longer.
    let next = new_refresh(1);
    let rotation = |presented, generation, refresh: Option<NewRefreshToken>| Rotation {
        presented,
        generation,
        access: new_access(),
        refresh,
        sealed: None,
        revoke_previous_access: false,
        previous_access: None,
        now: NOW,
        grant: GrantId::from_u128(1),
        client_id: Arc::from("app"),
        subject: None,
    };
    let outcome = s
        .cache
        .rotate_refresh_token(rotation(first.hash, 0, Some(next.clone())))
        .await
        .unwrap();
    assert_eq!(outcome, RotationOutcome::Rotated);
    let succ = s
        .cache
        .find_refresh_token_to_use(&next.hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((succ.generation, succ.grant.id), (1, grant.id));
    assert_eq!(reads(), 1);
    let old = s
        .cache
        .find_refresh_token_to_use(&first.hash)
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(old.state, RefreshTokenState::Rotated { .. }),
        "read from the store"
    );
    assert_eq!(reads(), 2);
    // Rotated elsewhere (behind this instance's back): the compare-and-set refuses, the
    // record is dropped, and the next use reads the store.
    s.store
        .memory
        .rotate_refresh_token(rotation(next.hash, 1, Some(new_refresh(2))))
        .await
        .unwrap();
    let stale = s
        .cache
        .rotate_refresh_token(rotation(next.hash, 1, Some(new_refresh(2))))
        .await
        .unwrap();
    assert_eq!(stale, RotationOutcome::Conflict);
    let fresh = s
        .cache
        .find_refresh_token_to_use(&next.hash)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(fresh.state, RefreshTokenState::Rotated { .. }));
    assert_eq!(reads(), 3);
}
