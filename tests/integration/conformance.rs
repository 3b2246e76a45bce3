//! The store conformance suite (`tower_oauth2::conformance`), run against every store this
//! crate ships: memory, Redis and PostgreSQL, each case as a test of its own (as tower-sessions
//! does). The cases themselves live in the library, so that a third-party `TokenStore` proves
//! itself against the very same behaviours.

use crate::support::backends::{Backend, open};

tower_oauth2::token_store_conformance!(memory, |test| open(Backend::Memory, test));
tower_oauth2::token_store_conformance!(redis, |test| open(Backend::Redis, test));
tower_oauth2::token_store_conformance!(postgres, |test| open(Backend::Postgres, test));
