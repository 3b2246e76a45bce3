//! OpenID Connect: what the server needs to sign users in to other apps — ID tokens (Core 1.0,
//! the code flow), the userinfo endpoint, discovery, and RP-initiated logout. Enabled with
//! [`AuthServerBuilder::openid`](crate::AuthServerBuilder::openid) and the `jwt` feature (ID
//! tokens are signed with the server's [`KeySet`](crate::jose::KeySet), which must hold an RS256
//! key, the algorithm OpenID Connect requires every provider to offer).
//!
//! An authorization request whose scope has `openid` is an OpenID request: its `nonce`,
//! `prompt`, `max_age`, `login_hint`, `id_token_hint`, `acr_values`, `ui_locales`,
//! `claims_locales` and `display` are validated and shown to the app's authorization handler
//! ([`OpenIdRequest`], from `PendingAuthorization::openid`); the app's decision says when and
//! how the user authenticated ([`Authentication`]); the token response then carries an
//! `id_token`, and so does every refresh of that grant.
//!
//! ```
//! use tower_oauth2::{
//!     AuthServer, Client, InMemoryClients,
//!     jose::{KeySet, SigningKey},
//!     openid::{ClaimsRequest, OpenId},
//! };
//!
//! # fn main() -> Result<(), tower_oauth2::ConfigError> {
//! let server = AuthServer::builder()
//!     .clients(InMemoryClients::new().with(
//!         Client::confidential("app", "s3cret")
//!             .redirect_uri("https://app.example/cb")
//!             .scope("openid profile email")
//!             .build()?,
//!     ))
//!     .configure(|c| c.issuer = Some("https://auth.example.com".into()))
//!     .signing_keys(KeySet::new(SigningKey::generate_rs256()))
//!     .openid(OpenId::new().claims(|request: ClaimsRequest| async move {
//!         // Look the user up; only the claims the granted scopes allow leave the server.
//!         let mut claims = serde_json::Map::new();
//!         claims.insert("name".into(), "Ada Lovelace".into());
//!         claims.insert("email".into(), format!("{}@example.com", request.subject).into());
//!         claims
//!     }))
//!     .authorization_handler(|_ctx: tower_oauth2::endpoint::AuthorizationContext| async {
//!         tower_oauth2::endpoint::Interaction::Decided(tower_oauth2::endpoint::Decision::Deny)
//!     })
//!     .build()?;
//! # let _ = server;
//! # Ok(())
//! # }
//! ```
//!
//! Subjects are `public` (the app's own user id) unless a client asks for `pairwise` ones
//! ([`SubjectType`]): then each sector (the host of the client's redirect URIs) sees its own
//! stable identifier for a user, a keyed hash ([`OpenId::pairwise_key`]) that no two sectors
//! can correlate.

mod claims;
mod logout;
mod request;
mod subject;

use std::{fmt, sync::Arc, time::Duration};

pub use self::{
    claims::{ClaimsRequest, ClaimsSource, STANDARD_SCOPES},
    logout::{EndSession, LogoutHandler},
    request::{Authentication, OpenIdRequest, Prompt},
    subject::SubjectType,
};
pub(crate) use self::{
    claims::{PROTOCOL_CLAIMS, allowed_claims},
    request::parse_request,
    subject::pairwise_subject,
};
use crate::error::ConfigError;

/// OpenID Connect, as this server offers it: where claims come from, how subjects are made,
/// how long ID tokens live, and what logout does.
#[derive(Clone)]
#[must_use]
pub struct OpenId {
    pub(crate) claims: Option<Arc<dyn ClaimsSource>>,
    pub(crate) pairwise_key: Option<Arc<[u8]>>,
    pub(crate) id_token_lifetime: Duration,
    pub(crate) scope_claims: Vec<(String, Vec<String>)>,
    pub(crate) acr_values: Vec<String>,
    pub(crate) logout: Option<Arc<dyn LogoutHandler>>,
    pub(crate) logout_revokes: LogoutRevokes,
}

/// Which grants RP-initiated logout revokes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LogoutRevokes {
    /// Those of the session the ID token hint names (its `sid`, the app's
    /// [`Authentication::session_id`]); for a hint without one, those of the client for the
    /// user. The default.
    #[default]
    Session,
    /// Every grant of the client that asked, for the user: the user stays signed in to the
    /// app's other clients.
    ClientForUser,
}

impl fmt::Debug for OpenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenId")
            .field("claims", &self.claims.as_ref().map(|_| "<source>"))
            .field(
                "pairwise_key",
                &self.pairwise_key.as_ref().map(|_| "<redacted>"),
            )
            .field("id_token_lifetime", &self.id_token_lifetime)
            .field("scope_claims", &self.scope_claims)
            .field("acr_values", &self.acr_values)
            .field("logout_revokes", &self.logout_revokes)
            .finish_non_exhaustive()
    }
}

impl Default for OpenId {
    fn default() -> Self {
        Self::new()
    }
}

/// Bytes a pairwise key must have at least.
const MIN_PAIRWISE_KEY: usize = 32;

impl OpenId {
    /// OpenID Connect with no claims beyond `sub` (add a [`claims`](Self::claims) source),
    /// public subjects, ID tokens valid for an hour.
    pub fn new() -> Self {
        Self {
            claims: None,
            pairwise_key: None,
            id_token_lifetime: Duration::from_secs(3600),
            scope_claims: Vec::new(),
            acr_values: Vec::new(),
            logout: None,
            logout_revokes: LogoutRevokes::Session,
        }
    }

    /// Where the user's claims come from (an async closure
    /// `Fn(ClaimsRequest) -> impl Future<Output = serde_json::Map<String, Value>>` is one). It
    /// may return everything it knows: only the claims the granted scopes allow are sent
    /// (Core §5.4, and [`scope_claims`](Self::scope_claims) for the app's own).
    pub fn claims(mut self, source: impl ClaimsSource) -> Self {
        self.claims = Some(Arc::new(source));
        self
    }

    /// The app's own scope `scope` releases the claims `claims` (say `groups` for a
    /// `groups` scope); advertised in discovery. The standard scopes' claims are built in.
    pub fn scope_claims<I, S>(mut self, scope: impl Into<String>, claims: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let scope = scope.into();
        self.scope_claims.retain(|(s, _)| *s != scope);
        self.scope_claims
            .push((scope, claims.into_iter().map(Into::into).collect()));
        self
    }

    /// The secret pairwise subjects are derived with (at least 32 bytes; the same on every
    /// instance and across restarts, or every pairwise subject changes). Required for a
    /// client with [`SubjectType::Pairwise`].
    pub fn pairwise_key(mut self, key: impl AsRef<[u8]>) -> Self {
        self.pairwise_key = Some(Arc::from(key.as_ref()));
        self
    }

    /// How long an ID token is valid (default an hour). Its `exp` says so; it is not a session.
    pub fn id_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.id_token_lifetime = lifetime;
        self
    }

    /// The authentication context classes the app's login can satisfy, advertised as
    /// `acr_values_supported` (the app's decision names the one it met, [`Authentication::acr`]).
    pub fn acr_values_supported<I, S>(mut self, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.acr_values = values.into_iter().map(Into::into).collect();
        self
    }

    /// What the app does at logout (RP-Initiated Logout 1.0): end its own session. Without
    /// one, the end-session endpoint still revokes the session's grants and redirects.
    pub fn logout(mut self, handler: impl LogoutHandler) -> Self {
        self.logout = Some(Arc::new(handler));
        self
    }

    /// Which grants logout revokes (default [`LogoutRevokes::Session`]).
    pub fn logout_revokes(mut self, which: LogoutRevokes) -> Self {
        self.logout_revokes = which;
        self
    }

    /// The scopes this configuration knows: `openid`, the standard ones, `offline_access`,
    /// the app's.
    pub(crate) fn scopes(&self) -> impl Iterator<Item = &str> {
        std::iter::once("openid")
            .chain(STANDARD_SCOPES.iter().map(|(s, _)| *s))
            // Core §11: a refresh token for when the user is away.
            .chain(std::iter::once("offline_access"))
            .chain(self.scope_claims.iter().map(|(s, _)| s.as_str()))
    }

    /// Every claim this server may send: the protocol's, then each scope's.
    pub(crate) fn claims_supported(&self) -> Vec<&str> {
        let mut all: Vec<&str> = PROTOCOL_CLAIMS.to_vec();
        for (_, claims) in STANDARD_SCOPES {
            all.extend(claims.iter().copied());
        }
        for (_, claims) in &self.scope_claims {
            all.extend(claims.iter().map(String::as_str));
        }
        let mut seen = std::collections::HashSet::new();
        all.retain(|c| seen.insert(*c));
        all
    }

    /// Check the settings.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self
            .pairwise_key
            .as_ref()
            .is_some_and(|k| k.len() < MIN_PAIRWISE_KEY)
        {
            return Err(ConfigError::OpenId(
                "the pairwise key must have at least 32 bytes",
            ));
        }
        if self.id_token_lifetime.as_secs() == 0 {
            return Err(ConfigError::OpenId(
                "id_token_lifetime must be at least 1 s",
            ));
        }
        for (scope, _) in &self.scope_claims {
            if crate::scope::Scope::parse(scope).map_or(true, |s| s.len() != 1) {
                return Err(ConfigError::OpenId("scope_claims needs one scope token"));
            }
        }
        Ok(())
    }
}
