use std::{fmt, sync::Arc};

use tower_layer::Layer;

use super::{
    challenge::Challenges,
    service::{Bearer, Shared},
    validator::{LocalValidator, Validator},
};
use crate::{AuthServer, scope::Scope};

/// A tower [`Layer`] that guards a service with bearer tokens (RFC 6750). Holds settings only;
/// cheap to clone, so each route can have its own required scope.
#[derive(Clone)]
#[must_use]
pub struct BearerLayer {
    validator: Arc<dyn Validator>,
    realm: Arc<str>,
    required: Scope,
    allow_query: bool,
}

impl fmt::Debug for BearerLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerLayer")
            .field("realm", &self.realm)
            .field("required", &self.required)
            .field("allow_query", &self.allow_query)
            .finish_non_exhaustive()
    }
}

impl BearerLayer {
    /// A layer validating against `server`'s store, with its realm.
    pub fn new(server: &AuthServer) -> Self {
        Self::with_validator(
            LocalValidator::new(
                Arc::clone(&server.inner.store),
                Arc::clone(&server.inner.clock),
            ),
            &server.config().realm,
        )
    }

    /// A layer using any [`Validator`] (e.g. introspection against a remote server).
    pub fn with_validator(validator: impl Validator, realm: &str) -> Self {
        Self {
            validator: Arc::new(validator),
            realm: Arc::from(realm),
            required: Scope::empty(),
            allow_query: false,
        }
    }

    /// Require every token of `scope` (403 `insufficient_scope` otherwise).
    pub fn require_scope(mut self, scope: Scope) -> Self {
        self.required = scope;
        self
    }

    /// Also accept the token in an `access_token` query parameter (RFC 6750 §2.3). Off by
    /// default: URLs end up in logs and browser history.
    pub fn allow_query_token(mut self, allow: bool) -> Self {
        self.allow_query = allow;
        self
    }
}

impl<S> Layer<S> for BearerLayer {
    type Service = Bearer<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Bearer::new(
            inner,
            Arc::new(Shared {
                validator: Arc::clone(&self.validator),
                challenges: Challenges::new(&self.realm, &self.required),
                required: self.required.clone(),
                allow_query: self.allow_query,
            }),
        )
    }
}
