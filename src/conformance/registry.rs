//! The conformance cases every [`ClientRegistry`] must pass: what
//! [`client_registry_conformance!`](crate::client_registry_conformance) runs, one test per case.
//! Each takes a fresh, empty registry; time is the `now` each call passes, so no case waits.

use std::sync::Arc;

use crate::{
    client::{Client, ClientRegistry, GrantType, RegisteredClient},
    clock::{Clock, SystemClock},
    token,
};

/// A client with every setting a registry must keep.
fn full_client(id: &str) -> Client {
    Client::confidential(id, "a generated secret")
        .redirect_uri("https://app.example/cb")
        .redirect_uri("http://127.0.0.1/callback")
        .grant_types([GrantType::AuthorizationCode, GrantType::RefreshToken])
        .scope("read write")
        .default_scope("read")
        .name("An app")
        .resource("https://api.example/mcp")
        .introspect(true)
        .require_pushed_authorization_requests(true)
        .build()
        .expect("a valid client")
}

fn fresh_id() -> String {
    format!("c-{}", &token::generate().expose()[3..19])
}

/// What a registration inserted reads back as: every setting (the secret still checks), the
/// expiry, and its stored form round-trips.
pub async fn inserted_reads_back_whole(registry: Arc<dyn ClientRegistry>) {
    let now = SystemClock.now();
    let id = fresh_id();
    let client = RegisteredClient::new(full_client(&id), now + 600);
    assert!(registry.get(&id, now).await.unwrap().is_none());
    assert!(registry.insert(&client, now).await.unwrap());
    let back = registry.get(&id, now).await.unwrap().expect("inserted");
    assert_eq!(back.id(), id);
    assert_eq!(back.expires_at(), now + 600);
    assert_eq!(back.client().registered_until(), Some(now + 600));
    assert_eq!(
        format!("{:?}", back.client()),
        format!("{:?}", client.client()),
        "every setting kept"
    );
    assert!(back.client().verify_secret("a generated secret").await);
    assert!(!back.client().verify_secret("another").await);
    assert_eq!(back.encode().unwrap(), client.encode().unwrap());
    // Another id is another registration.
    assert!(registry.get(&fresh_id(), now).await.unwrap().is_none());
}

/// Of sixteen concurrent inserts of one id, exactly one succeeds; the id is free again once
/// its registration is removed or lapsed.
pub async fn one_insert_per_live_id(registry: Arc<dyn ClientRegistry>) {
    let now = SystemClock.now();
    let id = fresh_id();
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let (registry, id) = (Arc::clone(&registry), id.clone());
            tokio::spawn(async move {
                let client = Client::public(id)
                    .name(format!("racer {i}"))
                    .build()
                    .unwrap();
                registry
                    .insert(&RegisteredClient::new(client, now + 600), now)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.unwrap());
    }
    assert_eq!(won, 1, "exactly one insert wins");
    let again = RegisteredClient::new(Client::public(&id).build().unwrap(), now + 600);
    assert!(!registry.insert(&again, now).await.unwrap(), "taken");
    assert!(registry.remove(&id).await.unwrap());
    assert!(!registry.remove(&id).await.unwrap(), "removed once");
    assert!(
        registry.insert(&again, now).await.unwrap(),
        "free after removal"
    );
    // Lapsed at its expiry: absent, and free.
    assert!(registry.get(&id, now + 600).await.unwrap().is_none());
    let later = RegisteredClient::new(Client::public(&id).build().unwrap(), now + 1200);
    assert!(
        registry.insert(&later, now + 600).await.unwrap(),
        "free after it lapsed"
    );
    assert_eq!(
        registry
            .get(&id, now + 600)
            .await
            .unwrap()
            .unwrap()
            .expires_at(),
        now + 1200
    );
}

/// `replace` and `extend` apply to a live registration only: never to one removed or lapsed,
/// and neither creates one; `extend` never shortens.
pub async fn replace_and_extend_touch_live_registrations_only(registry: Arc<dyn ClientRegistry>) {
    let now = SystemClock.now();
    let id = fresh_id();
    let named = |name: &str, until| {
        RegisteredClient::new(Client::public(&id).name(name).build().unwrap(), until)
    };
    assert!(
        !registry
            .replace(&named("new", now + 600), now)
            .await
            .unwrap()
    );
    assert!(!registry.extend(&id, now + 600, now).await.unwrap());
    assert!(
        registry.get(&id, now).await.unwrap().is_none(),
        "not created"
    );
    assert!(
        registry
            .insert(&named("one", now + 600), now)
            .await
            .unwrap()
    );
    assert!(
        registry
            .replace(&named("two", now + 300), now)
            .await
            .unwrap()
    );
    let back = registry.get(&id, now).await.unwrap().unwrap();
    assert_eq!(back.client().name(), Some("two"));
    assert_eq!(back.expires_at(), now + 300, "replaced with its expiry");
    assert!(registry.extend(&id, now + 900, now).await.unwrap());
    assert_eq!(
        registry.get(&id, now).await.unwrap().unwrap().expires_at(),
        now + 900
    );
    assert!(registry.extend(&id, now + 100, now).await.unwrap());
    let back = registry.get(&id, now).await.unwrap().unwrap();
    assert_eq!(back.expires_at(), now + 900, "never shortened");
    assert_eq!(
        back.client().name(),
        Some("two"),
        "extending keeps the client"
    );
    // Lapsed: neither replaced nor extended.
    let later = now + 900;
    assert!(
        !registry
            .replace(&named("three", later + 600), later)
            .await
            .unwrap()
    );
    assert!(!registry.extend(&id, later + 600, later).await.unwrap());
    assert!(registry.get(&id, later).await.unwrap().is_none());
    // Removed: likewise, however the calls interleave.
    let now = later;
    assert!(
        registry
            .insert(&named("four", now + 600), now)
            .await
            .unwrap()
    );
    let updates: Vec<_> = (0..16)
        .map(|i| {
            let (registry, client) = (Arc::clone(&registry), named(&format!("u{i}"), now + 600));
            tokio::spawn(async move { registry.replace(&client, now).await.unwrap() })
        })
        .collect();
    assert!(registry.remove(&id).await.unwrap());
    for u in updates {
        u.await.unwrap();
    }
    assert!(
        !registry
            .replace(&named("late", now + 600), now)
            .await
            .unwrap()
    );
    assert!(!registry.extend(&id, now + 600, now).await.unwrap());
    assert!(
        registry.get(&id, now).await.unwrap().is_none(),
        "never brought back"
    );
}

/// A client that cannot be written down (a custom secret verifier) is refused, not stored
/// half.
pub async fn a_client_with_a_custom_verifier_is_refused(registry: Arc<dyn ClientRegistry>) {
    struct Never;
    #[async_trait::async_trait]
    impl crate::client::SecretVerifier for Never {
        async fn verify(&self, _: &str) -> bool {
            false
        }
    }
    let now = SystemClock.now();
    let id = fresh_id();
    let client = Client::confidential(&id, "x")
        .secret_verifier(Never)
        .build()
        .unwrap();
    assert!(
        registry
            .insert(&RegisteredClient::new(client, now + 600), now)
            .await
            .is_err()
    );
    assert!(registry.get(&id, now).await.unwrap().is_none());
}
