//! Errors: [`OAuthError`] carries an RFC 6749 §5.2 / RFC 6750 §3.1 / RFC 7009 error code and maps
//! to an HTTP status; [`StoreError`] is a storage failure, which every endpoint answers with 503.

use std::{borrow::Cow, error::Error as StdError, fmt, sync::Arc};

use http::StatusCode;

use crate::wire::WireError;

/// A boxed error, as tower uses.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// An OAuth 2.0 protocol error: the `error` code and an optional human-readable description.
///
/// ```
/// use http::StatusCode;
/// use tower_oauth2::OAuthError;
///
/// let err = OAuthError::invalid_grant("refresh token expired");
/// assert_eq!(err.code(), "invalid_grant");
/// assert_eq!(err.status(), StatusCode::BAD_REQUEST);
/// ```
#[derive(Debug, Clone)]
pub struct OAuthError {
    kind: ErrorKind,
    description: Option<Cow<'static, str>>,
    /// The store failure behind a `temporarily_unavailable`, for the log line written where the
    /// error is answered. Never sent to the client.
    cause: Option<Arc<StoreError>>,
}

/// Two errors are equal when the client would see the same answer; the cause is not compared.
impl PartialEq for OAuthError {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.description == other.description
    }
}

impl Eq for OAuthError {}

/// The error codes this crate answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// RFC 6749 §5.2: a missing, repeated or malformed parameter.
    InvalidRequest,
    /// RFC 6749 §5.2: client authentication failed.
    InvalidClient,
    /// RFC 6749 §5.2: the grant (code, refresh token, user credentials) is invalid, expired, revoked
    /// or was issued to another client.
    InvalidGrant,
    /// RFC 6749 §5.2: the client may not use this grant type.
    UnauthorizedClient,
    /// RFC 6749 §5.2: the grant type is not supported by this server.
    UnsupportedGrantType,
    /// RFC 6749 §5.2: the requested scope is invalid, unknown or exceeds what was granted.
    InvalidScope,
    /// RFC 8707 §2: a `resource` is malformed, unknown, or not one this client (or this grant)
    /// may have a token for.
    InvalidTarget,
    /// RFC 7009 §2.2.1: the server cannot revoke this kind of token.
    UnsupportedTokenType,
    /// RFC 6749 §4.1.2.1: the token store or another dependency is unavailable (answered as 503).
    TemporarilyUnavailable,
    /// RFC 6749 §4.1.2.1: an unexpected condition (answered as 500). Never produced for bad input.
    ServerError,
    /// The endpoint only accepts POST (answered as 405 with `Allow: POST`).
    MethodNotAllowed,
    /// The request body exceeds the configured cap (answered as 413 with `invalid_request`).
    BodyTooLarge,
    /// An authenticated client asked for something it is not permitted (answered as 403 with
    /// `unauthorized_client`), e.g. introspection by a client not allowed to introspect.
    Forbidden,
    /// RFC 6749 §4.1.2.1: the resource owner or the server denied the request.
    AccessDenied,
    /// RFC 6749 §4.1.2.1: the server does not support this `response_type`.
    UnsupportedResponseType,
    /// OpenID Connect Core §3.1.2.6 (used by OAuth servers alike): `request` objects are not
    /// supported.
    RequestNotSupported,
    /// RFC 7591 §3.2.2: a redirect URI in a registration is not one this server accepts.
    InvalidRedirectUri,
    /// RFC 7591 §3.2.2: a registration's metadata is invalid or not allowed.
    InvalidClientMetadata,
    /// RFC 6750 §3.1 (as RFC 7592 uses it): the registration access token is missing, wrong,
    /// or its client is gone (answered as 401 with a `Bearer` challenge).
    InvalidToken,
    /// RFC 8628 §3.5: the user has not decided yet; poll again after the interval.
    AuthorizationPending,
    /// RFC 8628 §3.5: polled sooner than the interval, which grows by 5 s.
    SlowDown,
    /// RFC 8628 §3.5: the device code expired; start again.
    ExpiredToken,
    /// OpenID Connect Core §3.1.2.6: `prompt=none`, and the user must sign in (or sign in
    /// again: `max_age` passed, `prompt=login`).
    LoginRequired,
    /// OpenID Connect Core §3.1.2.6: `prompt=none`, and the user must consent.
    ConsentRequired,
    /// OpenID Connect Core §3.1.2.6: `prompt=none`, and the app must show a page.
    InteractionRequired,
    /// OpenID Connect Core §3.1.2.6: `prompt=none`, and the user must choose an account.
    AccountSelectionRequired,
}

impl ErrorKind {
    /// The `error` code sent on the wire.
    pub fn code(self) -> &'static str {
        match self {
            Self::InvalidRequest | Self::MethodNotAllowed | Self::BodyTooLarge => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient | Self::Forbidden => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::ServerError => "server_error",
            Self::AccessDenied => "access_denied",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::RequestNotSupported => "request_not_supported",
            Self::InvalidRedirectUri => "invalid_redirect_uri",
            Self::InvalidClientMetadata => "invalid_client_metadata",
            Self::InvalidToken => "invalid_token",
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown => "slow_down",
            Self::ExpiredToken => "expired_token",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
            Self::InteractionRequired => "interaction_required",
            Self::AccountSelectionRequired => "account_selection_required",
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(self) -> StatusCode {
        match self {
            Self::InvalidClient | Self::InvalidToken => StatusCode::UNAUTHORIZED,
            Self::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Forbidden => StatusCode::FORBIDDEN,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

macro_rules! constructors {
    ($($(#[$doc:meta])* $name:ident => $kind:ident;)*) => {
        $(
            $(#[$doc])*
            pub fn $name(description: impl Into<Cow<'static, str>>) -> Self {
                Self::new(ErrorKind::$kind, description)
            }
        )*
    };
}

impl OAuthError {
    /// An error of `kind` with a description.
    pub fn new(kind: ErrorKind, description: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind,
            description: Some(description.into()),
            cause: None,
        }
    }

    /// An error of `kind` without a description.
    pub fn bare(kind: ErrorKind) -> Self {
        Self {
            kind,
            description: None,
            cause: None,
        }
    }

    constructors! {
        /// `invalid_request` (400).
        invalid_request => InvalidRequest;
        /// `invalid_client` (401).
        invalid_client => InvalidClient;
        /// `invalid_grant` (400).
        invalid_grant => InvalidGrant;
        /// `unauthorized_client` (400).
        unauthorized_client => UnauthorizedClient;
        /// `unsupported_grant_type` (400).
        unsupported_grant_type => UnsupportedGrantType;
        /// `invalid_scope` (400).
        invalid_scope => InvalidScope;
        /// `invalid_target` (400, RFC 8707).
        invalid_target => InvalidTarget;
        /// `invalid_client_metadata` (400, RFC 7591).
        invalid_client_metadata => InvalidClientMetadata;
        /// `invalid_redirect_uri` (400, RFC 7591).
        invalid_redirect_uri => InvalidRedirectUri;
        /// `temporarily_unavailable` (503).
        temporarily_unavailable => TemporarilyUnavailable;
    }

    /// What kind of error this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The `error` code sent on the wire.
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }

    /// The `error_description`, if any.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The store failure this error reports, if it reports one (also its
    /// [`source`](StdError::source)).
    pub fn store_error(&self) -> Option<&StoreError> {
        self.cause.as_deref()
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())?;
        if let Some(d) = &self.description {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

impl StdError for OAuthError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.cause
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

impl From<StoreError> for OAuthError {
    /// `temporarily_unavailable`: the client learns only that it may retry. The cause is kept
    /// for whoever answers the error to log.
    fn from(err: StoreError) -> Self {
        Self {
            cause: Some(Arc::new(err)),
            ..Self::new(
                ErrorKind::TemporarilyUnavailable,
                "the token store is temporarily unavailable",
            )
        }
    }
}

impl From<WireError> for OAuthError {
    /// A form or header that cannot be read is `invalid_request` (RFC 6749 §5.2).
    fn from(err: WireError) -> Self {
        Self::invalid_request(err.to_string())
    }
}

/// A failure of a token, client or user store. Endpoints answer it with 503
/// `temporarily_unavailable` and the bearer layer with 503 — never with "invalid token".
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend could not be reached or failed the operation.
    Unavailable(BoxError),
    /// The backend did not answer within the configured timeout.
    Timeout,
    /// The backend returned data this crate cannot read.
    Corrupt(BoxError),
}

impl StoreError {
    /// A backend failure with its cause.
    pub fn unavailable(cause: impl Into<BoxError>) -> Self {
        Self::Unavailable(cause.into())
    }

    /// A record the backend returned that this crate cannot read.
    pub fn corrupt(cause: impl Into<BoxError>) -> Self {
        Self::Corrupt(cause.into())
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unavailable(e) => write!(f, "store unavailable: {e}"),
            Self::Timeout => f.write_str("store operation timed out"),
            Self::Corrupt(e) => write!(f, "store returned unreadable data: {e}"),
        }
    }
}

impl StdError for StoreError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Unavailable(e) | Self::Corrupt(e) => Some(&**e),
            Self::Timeout => None,
        }
    }
}

/// A configuration that cannot work, reported by [`crate::AuthServerBuilder::build`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A lifetime is zero or out of its allowed range.
    Lifetime(&'static str),
    /// The refresh-token grace period exceeds its maximum (300 s).
    GracePeriodTooLong,
    /// No client store was given.
    MissingClients,
    /// The password grant is allowed but no user authenticator was given.
    MissingUserAuthenticator,
    /// The body cap is zero.
    BodyLimit,
    /// A scope string breaks the RFC 6749 §3.3 grammar, or a default scope is not allowed.
    Scope,
    /// A client id is empty.
    ClientId,
    /// An endpoint URL cannot be used.
    Endpoint(&'static str),
    /// A store cannot be built as configured (a URL that does not parse, an invalid schema name).
    Store(&'static str),
    /// A registered redirect URI is not absolute, or has a fragment (RFC 6749 §3.1.2).
    RedirectUri(&'static str),
    /// The authorization endpoint is configured without what it needs (an issuer for `iss`).
    Authorization(&'static str),
    /// A signing key cannot be used, or JWT access tokens lack what they need (keys, an issuer).
    Key(&'static str),
    /// A client's PKCE settings are unsafe (a public client without PKCE).
    Pkce(&'static str),
    /// A configured resource indicator is not an absolute URI without a fragment (RFC 8707),
    /// or the default resource is not among the configured ones.
    Resource(&'static str),
    /// The registration endpoint's configuration ([`Registration`](crate::registration::Registration)).
    Registration(&'static str),
    /// The OpenID Connect configuration ([`OpenId`](crate::openid::OpenId)), or a client's
    /// OpenID settings.
    OpenId(&'static str),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Lifetime(what) => write!(f, "invalid lifetime: {what}"),
            Self::GracePeriodTooLong => f.write_str("refresh_token_grace_period exceeds 300 s"),
            Self::MissingClients => f.write_str("no client store configured"),
            Self::MissingUserAuthenticator => {
                f.write_str("the password grant is allowed but no user authenticator is configured")
            }
            Self::BodyLimit => f.write_str("max_body_bytes must be greater than zero"),
            Self::Scope => f.write_str("invalid scope in configuration"),
            Self::ClientId => f.write_str("client id must not be empty"),
            Self::Endpoint(what) => write!(f, "invalid endpoint: {what}"),
            Self::Store(what) => write!(f, "invalid store configuration: {what}"),
            Self::RedirectUri(what) => write!(f, "invalid redirect URI: {what}"),
            Self::Authorization(what) => write!(f, "invalid authorization endpoint: {what}"),
            Self::Key(what) => write!(f, "invalid signing configuration: {what}"),
            Self::Pkce(what) => write!(f, "invalid PKCE setting: {what}"),
            Self::Resource(what) => write!(f, "invalid resource indicator: {what}"),
            Self::Registration(what) => write!(f, "invalid registration setting: {what}"),
            Self::OpenId(what) => write!(f, "invalid OpenID Connect setting: {what}"),
        }
    }
}

impl StdError for ConfigError {}
