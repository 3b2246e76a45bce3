//! What the grants need of the server, and nothing more: the settings, the client registry, the
//! user authenticator, the token store, the clock, the signing keys and the event listeners.
//! The server holds one [`Context`]; the grants and the authorization pipeline take it by
//! reference, so they know nothing of the server or of HTTP.

use std::sync::Arc;

use crate::{
    client::{Client, ClientStore, GrantType, ResourcePolicy},
    clock::{Clock, UnixTime},
    config::Config,
    error::{ErrorKind, OAuthError},
    events::{self, Event, EventListener},
    resource::Resources,
    store::{
        TokenStore,
        records::{Counter, RecordKind},
    },
    token::TokenHash,
    user::UserAuthenticator,
};

/// The server's shared state as the protocol logic sees it.
pub(crate) struct Context {
    pub(crate) config: Config,
    pub(crate) clients: Arc<dyn ClientStore>,
    pub(crate) users: Option<Arc<dyn UserAuthenticator>>,
    pub(crate) store: Arc<dyn TokenStore>,
    pub(crate) clock: Arc<dyn Clock>,
    /// The keys JWT access tokens are signed with.
    #[cfg(feature = "jwt")]
    pub(crate) keys: Option<crate::jose::KeySet>,
    /// The app's own claims for JWT access tokens.
    #[cfg(feature = "jwt")]
    pub(crate) claims_hook: Option<Arc<dyn crate::jose::ClaimsHook>>,
    /// OpenID Connect, when enabled.
    pub(crate) openid: Option<Arc<crate::openid::OpenId>>,
    /// The app's rule for which resources exist (else `Config::resources`).
    pub(crate) resource_policy: Option<Arc<dyn ResourcePolicy>>,
    pub(crate) listeners: Vec<Arc<dyn EventListener>>,
    /// Client ID metadata documents, when enabled.
    #[cfg(feature = "tls")]
    pub(crate) documents: Option<Arc<crate::registration::Documents>>,
}

impl Context {
    /// The configuration.
    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// The current time according to the server's clock.
    pub(crate) fn now(&self) -> UnixTime {
        self.clock.now()
    }

    /// Tell the listeners (and the trace).
    pub(crate) fn emit(&self, event: Event) {
        events::trace(&event);
        for listener in &self.listeners {
            listener.on_event(&event);
        }
    }

    /// Whether this client may use `grant` at the token endpoint.
    pub(crate) fn grant_allowed(&self, client: &Client, grant: GrantType) -> bool {
        self.config.allowed_grant_types.contains(grant)
            && client.grant_types().is_none_or(|g| g.contains(grant))
    }

    /// Whether `client` may have a token for `resource` (normalised): the server knows it (its
    /// policy, or the configured list) and the client's registration allows it.
    pub(crate) fn resource_allowed(&self, client: &Client, resource: &str) -> bool {
        let known = match &self.resource_policy {
            Some(policy) => policy.allows(client, resource),
            None => self.config.resources.iter().any(|r| r == resource),
        };
        known && client.may_ask_for_resource(resource)
    }

    /// The resources a new request (authorization, PAR, `client_credentials`, `password`)
    /// names, each allowed for `client`; none named: the default resource when this client may
    /// have it, else none (RFC 8707 §2).
    pub(crate) fn requested_resources(
        &self,
        client: &Client,
        named: &Resources,
    ) -> Result<Resources, OAuthError> {
        if named.is_empty() {
            return Ok(match &self.config.default_resource {
                Some(d) if self.resource_allowed(client, d) => Resources::from_stored(d.as_str()),
                _ => Resources::empty(),
            });
        }
        if named.iter().all(|r| self.resource_allowed(client, r)) {
            return Ok(named.clone());
        }
        Err(OAuthError::invalid_target(
            "a requested resource is unknown, or not one this client may have a token for",
        ))
    }

    /// Count one more request left waiting (an authorization, a logout to confirm) under `id`
    /// among those of `kind`, in windows of one authorization-request lifetime; refused past
    /// `max`, as the store being unavailable for it (nothing is kept), saying `busy`.
    pub(crate) async fn within_bound(
        &self,
        kind: RecordKind,
        id: &TokenHash,
        max: u64,
        busy: &'static str,
    ) -> Result<(), OAuthError> {
        let window = self.config.authorization_request_lifetime.as_secs();
        let count = Counter::new(&self.store, kind)
            .hit(id, window, self.now())
            .await?;
        if count > max {
            tracing::warn!(kind = kind.name(), max, "too many requests left waiting");
            return Err(OAuthError::new(ErrorKind::TemporarilyUnavailable, busy));
        }
        Ok(())
    }

    /// A registered client: the app's (and registered ones), else — with client ID metadata
    /// documents enabled and an `https` URL for an id — the one its document describes. A
    /// document that cannot be used is `invalid_client` saying why; a store failure is
    /// `temporarily_unavailable`.
    pub(crate) async fn find_client(&self, id: &str) -> Result<Option<Arc<Client>>, OAuthError> {
        if let Some(client) = self.clients.find_client(id).await? {
            return Ok(Some(client));
        }
        #[cfg(feature = "tls")]
        if let Some(documents) = &self.documents {
            if documents.claims(id) {
                return documents.resolve(id).await.map(Some);
            }
        }
        Ok(None)
    }
}
