//! Security events: what happened to grants and tokens, for audit logs and alerts.
//!
//! Every event is also written as a `tracing` event (target `tower_oauth2::events`). Events carry
//! identifiers — grant ids, client ids, subjects — never a token, a code or a secret.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use tower_oauth2::events::Event;
//!
//! let seen = Arc::new(Mutex::new(Vec::new()));
//! let sink = {
//!     let seen = seen.clone();
//!     move |event: &Event| seen.lock().unwrap().push(event.name())
//! };
//! # let _ = sink;
//! ```

use std::sync::Arc;

use crate::{client::GrantType, resource::Resources, scope::Scope, token::GrantId};

/// Which kind of token an event concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// An access token.
    Access,
    /// A refresh token (and so its family).
    Refresh,
}

/// Why a client failed to authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClientAuthFailure {
    /// No client credentials were sent.
    Missing,
    /// The client id is not registered.
    UnknownClient,
    /// The secret was wrong.
    WrongSecret,
    /// A confidential client sent no secret.
    SecretRequired,
    /// The Authorization header used a scheme other than Basic.
    UnsupportedMethod,
}

/// Something that happened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A grant was created and its first tokens issued.
    TokenIssued {
        /// The new grant.
        grant_id: GrantId,
        /// How.
        grant_type: GrantType,
        /// To whom.
        client_id: Arc<str>,
        /// For whom.
        subject: Option<Arc<str>>,
        /// With what scope.
        scope: Scope,
        /// For which resources (RFC 8707): the access token's audience, empty for none.
        audience: Resources,
        /// Whether a refresh token was issued.
        refresh_token: bool,
    },
    /// A refresh token was used.
    TokenRefreshed {
        /// The family.
        grant_id: GrantId,
        /// The client.
        client_id: Arc<str>,
        /// The resource owner.
        subject: Option<Arc<str>>,
        /// The scope of the new access token.
        scope: Scope,
        /// The new access token's audience (RFC 8707), empty for none — and on a grace retry,
        /// which hands out the pair issued before (reported then).
        audience: Resources,
        /// Whether the refresh token was rotated.
        rotated: bool,
        /// Whether this was a retry answered from the grace window.
        grace_retry: bool,
    },
    /// A rotated refresh token (or a redeemed authorization code) was presented again: the whole
    /// family was revoked.
    ReuseDetected {
        /// The revoked family.
        grant_id: GrantId,
        /// The client that presented it.
        client_id: Arc<str>,
        /// The resource owner.
        subject: Option<Arc<str>>,
        /// Whether it was a refresh token or an authorization code.
        what: ReusedCredential,
    },
    /// A token was revoked through the revocation endpoint or the Rust API.
    TokenRevoked {
        /// The family, when known.
        grant_id: GrantId,
        /// The client.
        client_id: Arc<str>,
        /// Access or refresh (a refresh token takes its family with it).
        kind: TokenKind,
    },
    /// The resource owner approved an authorization request: a code was issued.
    AuthorizationApproved {
        /// The client that asked.
        client_id: Arc<str>,
        /// Who approved.
        subject: Arc<str>,
    },
    /// An authorization request was denied (by the resource owner or the app).
    AuthorizationDenied {
        /// The client that asked.
        client_id: Arc<str>,
    },
    /// An authorization request was refused before any decision: on a page (unknown client or
    /// redirect URI) or at the client's redirect URI.
    AuthorizationFailed {
        /// The client, when the request named a known one.
        client_id: Option<Arc<str>>,
        /// The error code answered.
        error: &'static str,
    },
    /// Grants were revoked in bulk.
    GrantsRevoked {
        /// What was matched: `grant`, `subject` or `client`.
        by: &'static str,
        /// How many live grants were revoked.
        count: u64,
    },
    /// A client failed to authenticate.
    ClientAuthenticationFailed {
        /// The client id it claimed, if any.
        client_id: Option<String>,
        /// Why.
        reason: ClientAuthFailure,
    },
    /// A client registered itself (RFC 7591).
    ClientRegistered {
        /// The `client_id` it was given.
        client_id: Arc<str>,
        /// Whether it authenticates with a secret.
        confidential: bool,
        /// Whether it presented an initial access token.
        with_initial_access_token: bool,
    },
    /// A registered client changed its registration (RFC 7592).
    ClientUpdated {
        /// The client.
        client_id: Arc<str>,
    },
    /// RP-initiated logout (OpenID Connect) ended a session: its grants were revoked.
    LoggedOut {
        /// The client that asked, when known.
        client_id: Option<Arc<str>>,
        /// The user, when known.
        subject: Option<Arc<str>>,
        /// How many grants were revoked.
        revoked: u64,
    },
    /// A registered client was deleted (RFC 7592, or the Rust API); its grants were revoked.
    ClientDeleted {
        /// The client.
        client_id: Arc<str>,
    },
    /// A registration lapsed unused or idle (reported when its place is taken by a new
    /// registration, or by [`AuthServer::sweep_registrations`](crate::AuthServer::sweep_registrations)).
    ClientExpired {
        /// The client.
        client_id: Arc<str>,
    },
    /// A registration was refused by a bound: too many registrations in the window, or too
    /// many live ones.
    RegistrationLimited {
        /// `"rate"` or `"live"`.
        bound: &'static str,
    },
}

/// What was presented twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReusedCredential {
    /// A rotated refresh token.
    RefreshToken,
    /// A redeemed authorization code.
    AuthorizationCode,
}

impl Event {
    /// A short stable name, e.g. `"token_issued"`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::TokenIssued { .. } => "token_issued",
            Self::TokenRefreshed { .. } => "token_refreshed",
            Self::ReuseDetected { .. } => "reuse_detected",
            Self::TokenRevoked { .. } => "token_revoked",
            Self::GrantsRevoked { .. } => "grants_revoked",
            Self::AuthorizationApproved { .. } => "authorization_approved",
            Self::AuthorizationDenied { .. } => "authorization_denied",
            Self::AuthorizationFailed { .. } => "authorization_failed",
            Self::ClientAuthenticationFailed { .. } => "client_authentication_failed",
            Self::ClientRegistered { .. } => "client_registered",
            Self::ClientUpdated { .. } => "client_updated",
            Self::ClientDeleted { .. } => "client_deleted",
            Self::LoggedOut { .. } => "logged_out",
            Self::ClientExpired { .. } => "client_expired",
            Self::RegistrationLimited { .. } => "registration_limited",
        }
    }
}

/// Receives events. Any `Fn(&Event) + Send + Sync` closure is one. Called inline: keep it quick
/// (hand heavy work to a channel).
pub trait EventListener: Send + Sync + 'static {
    /// Called once per event.
    fn on_event(&self, event: &Event);
}

impl<F: Fn(&Event) + Send + Sync + 'static> EventListener for F {
    fn on_event(&self, event: &Event) {
        self(event)
    }
}

pub(crate) fn trace(event: &Event) {
    match event {
        Event::TokenIssued {
            grant_id,
            grant_type,
            client_id,
            subject,
            scope,
            audience,
            refresh_token,
        } => {
            tracing::info!(target: "tower_oauth2::events", event = "token_issued", %grant_id, %grant_type, client_id = &**client_id, subject = subject.as_deref(), scope = scope.as_str(), audience = audience.as_str(), refresh_token)
        }
        Event::TokenRefreshed {
            grant_id,
            client_id,
            subject,
            scope,
            audience,
            rotated,
            grace_retry,
        } => {
            tracing::info!(target: "tower_oauth2::events", event = "token_refreshed", %grant_id, client_id = &**client_id, subject = subject.as_deref(), scope = scope.as_str(), audience = audience.as_str(), rotated, grace_retry)
        }
        Event::ReuseDetected {
            grant_id,
            client_id,
            subject,
            what,
        } => {
            tracing::warn!(target: "tower_oauth2::events", event = "reuse_detected", %grant_id, client_id = &**client_id, subject = subject.as_deref(), what = ?what, "credential reused: family revoked")
        }
        Event::TokenRevoked {
            grant_id,
            client_id,
            kind,
        } => {
            tracing::info!(target: "tower_oauth2::events", event = "token_revoked", %grant_id, client_id = &**client_id, kind = ?kind)
        }
        Event::AuthorizationApproved { client_id, subject } => tracing::info!(
            target: "tower_oauth2::events",
            event = "authorization_approved",
            client_id = &**client_id,
            subject = &**subject
        ),
        Event::AuthorizationDenied { client_id } => tracing::info!(
            target: "tower_oauth2::events",
            event = "authorization_denied",
            client_id = &**client_id
        ),
        Event::AuthorizationFailed { client_id, error } => tracing::info!(
            target: "tower_oauth2::events",
            event = "authorization_failed",
            client_id = client_id.as_deref(),
            error
        ),
        Event::GrantsRevoked { by, count } => {
            tracing::info!(target: "tower_oauth2::events", event = "grants_revoked", by, count)
        }
        Event::ClientAuthenticationFailed { client_id, reason } => {
            tracing::warn!(target: "tower_oauth2::events", event = "client_authentication_failed", client_id = client_id.as_deref(), reason = ?reason)
        }
        Event::ClientRegistered {
            client_id,
            confidential,
            with_initial_access_token,
        } => {
            tracing::info!(target: "tower_oauth2::events", event = "client_registered", client_id = &**client_id, confidential, with_initial_access_token)
        }
        Event::ClientUpdated { client_id } => {
            tracing::info!(target: "tower_oauth2::events", event = "client_updated", client_id = &**client_id)
        }
        Event::LoggedOut {
            client_id,
            subject,
            revoked,
        } => tracing::info!(
            target: "tower_oauth2::events",
            event = "logged_out",
            client_id = client_id.as_deref(),
            subject = subject.as_deref(),
            revoked
        ),
        Event::ClientDeleted { client_id } => {
            tracing::info!(target: "tower_oauth2::events", event = "client_deleted", client_id = &**client_id)
        }
        Event::ClientExpired { client_id } => {
            tracing::info!(target: "tower_oauth2::events", event = "client_expired", client_id = &**client_id)
        }
        Event::RegistrationLimited { bound } => {
            tracing::warn!(target: "tower_oauth2::events", event = "registration_limited", bound)
        }
    }
}
