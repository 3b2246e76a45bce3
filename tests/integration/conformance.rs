//! The store conformance suite (`tower_oauth2::conformance`), run against every store this
//! crate ships: memory, Redis (one server and a six-node cluster) and PostgreSQL, and the last two again behind a near-cache, each
//! case as a test of its own (as tower-sessions does). The cases themselves live in the library, so that a third-party `TokenStore` proves
//! itself against the very same behaviours.

use std::sync::Arc;

use tower_oauth2::client::{ClientRegistry, StoredClients};

use crate::support::backends::{Backend, open, open_cached};

/// The default client registry, on `backend`'s token store.
async fn stored_clients(backend: Backend, test: &'static str) -> Option<Arc<dyn ClientRegistry>> {
    let store = open(backend, test).await?;
    Some(Arc::new(StoredClients::new(store)))
}

tower_oauth2::token_store_conformance!(memory, |test| open(Backend::Memory, test));
tower_oauth2::token_store_conformance!(redis, |test| open(Backend::Redis, test));
tower_oauth2::token_store_conformance!(redis_cluster, |test| open(Backend::RedisCluster, test));
tower_oauth2::token_store_conformance!(postgres, |test| open(Backend::Postgres, test));
tower_oauth2::token_store_conformance!(redis_near_cache, |test| open_cached(Backend::Redis, test));
tower_oauth2::token_store_conformance!(redis_cluster_near_cache, |test| open_cached(
    Backend::RedisCluster,
    test
));
tower_oauth2::token_store_conformance!(postgres_near_cache, |test| open_cached(
    Backend::Postgres,
    test
));

// The client registry suite, on the default registry over each backend.
tower_oauth2::client_registry_conformance!(registry_memory, |test| stored_clients(
    Backend::Memory,
    test
));
tower_oauth2::client_registry_conformance!(registry_redis, |test| stored_clients(
    Backend::Redis,
    test
));
tower_oauth2::client_registry_conformance!(registry_redis_cluster, |test| stored_clients(
    Backend::RedisCluster,
    test
));
tower_oauth2::client_registry_conformance!(registry_postgres, |test| stored_clients(
    Backend::Postgres,
    test
));
