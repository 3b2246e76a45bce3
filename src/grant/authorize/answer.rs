//! The answer to a request once the resource owner (or the app) has decided: the code at the
//! client's redirect URI (RFC 6749 §4.1.2), or the error there (§4.1.2.1), always with `state`
//! and `iss` (RFC 9207).

use std::sync::Arc;

use super::PendingAuthorization;
use crate::{
    error::{ErrorKind, OAuthError},
    events::Event,
    grant::{authorization_code::mint_code, context::Context, openid::CodeLogin},
    openid::Authentication,
    scope::Scope,
    store::CodeChallengeMethod,
    wire::uri,
};

/// What the app decided about an authorization request.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Decision {
    /// The resource owner `subject` approved; `scope`, when given, narrows the requested one.
    Approve {
        /// Who approved.
        subject: String,
        /// What was granted: at most what was asked; `None` for all of it.
        scope: Option<Scope>,
        /// How and when they authenticated (OpenID Connect: the ID token's `auth_time`,
        /// `acr`, `amr`, `sid`). Required when an OpenID request had `max_age` or
        /// `prompt=login`.
        authentication: Option<Authentication>,
    },
    /// Denied: the client gets `access_denied`.
    Deny,
    /// `prompt=none` (OpenID Connect Core §3.1.2.6), and the user is not signed in (or must
    /// sign in again): the client gets `login_required`.
    LoginRequired,
    /// `prompt=none`, and the user must consent first: `consent_required`.
    ConsentRequired,
    /// `prompt=none`, and a page must be shown for another reason: `interaction_required`.
    InteractionRequired,
    /// `prompt=none`, and the user must choose an account: `account_selection_required`.
    AccountSelectionRequired,
}

impl Decision {
    /// Approved by `subject`, for the whole requested scope.
    pub fn approve(subject: impl Into<String>) -> Self {
        Self::Approve {
            subject: subject.into(),
            scope: None,
            authentication: None,
        }
    }

    /// An approval narrowed to `scope` (at most what was asked); no change to a refusal.
    #[must_use]
    pub fn with_scope(mut self, granted: Scope) -> Self {
        if let Self::Approve { scope, .. } = &mut self {
            *scope = Some(granted);
        }
        self
    }

    /// An approval that says how the user authenticated; no change to a refusal.
    #[must_use]
    pub fn authenticated(mut self, how: Authentication) -> Self {
        if let Self::Approve { authentication, .. } = &mut self {
            *authentication = Some(how);
        }
        self
    }

    /// The error a refusal sends the client; `None` for an approval.
    pub(crate) fn refusal(&self) -> Option<OAuthError> {
        let (kind, description) = match self {
            Self::Approve { .. } => return None,
            Self::Deny => (
                ErrorKind::AccessDenied,
                "the resource owner denied the request",
            ),
            Self::LoginRequired => (ErrorKind::LoginRequired, "the user must sign in"),
            Self::ConsentRequired => (ErrorKind::ConsentRequired, "the user must consent"),
            Self::InteractionRequired => (
                ErrorKind::InteractionRequired,
                "the request needs the user's interaction",
            ),
            Self::AccountSelectionRequired => (
                ErrorKind::AccountSelectionRequired,
                "the user must choose an account",
            ),
        };
        Some(OAuthError::new(kind, description))
    }
}

/// Where the user agent goes once a request is decided.
#[derive(Debug)]
pub(crate) enum Answer {
    /// To the client's validated redirect URI, with the code or the error.
    Redirect(String),
    /// Nowhere: shown this error (the store failed; the client can start again).
    Page(OAuthError),
}

/// (4) Decide: approve (mint the code) or deny, and say where the user agent goes. Reports
/// `authorization_approved`, `_denied` or `_failed`.
pub(crate) async fn decide(
    ctx: &Context,
    request: &PendingAuthorization,
    decision: Decision,
) -> Answer {
    let client_id: Arc<str> = Arc::from(request.client_id());
    match decision {
        Decision::Approve {
            subject,
            scope,
            authentication,
        } => {
            match approve(ctx, request, &subject, scope.as_ref(), authentication).await {
                Ok(to) => {
                    ctx.emit(Event::AuthorizationApproved {
                        client_id,
                        subject: Arc::from(subject),
                    });
                    Answer::Redirect(to)
                }
                // The store failed: the client can retry from the start.
                Err(e) if e.kind() == ErrorKind::TemporarilyUnavailable => Answer::Page(e),
                Err(e) => {
                    let to = error_redirect(ctx, request.redirect_uri(), request.state(), &e);
                    ctx.emit(Event::AuthorizationFailed {
                        client_id: Some(client_id),
                        error: e.code(),
                    });
                    Answer::Redirect(to)
                }
            }
        }
        Decision::Deny => {
            ctx.emit(Event::AuthorizationDenied { client_id });
            Answer::Redirect(deny(ctx, request))
        }
        refusal => {
            let err = refusal
                .refusal()
                .unwrap_or_else(|| OAuthError::bare(ErrorKind::AccessDenied));
            ctx.emit(Event::AuthorizationFailed {
                client_id: Some(client_id),
                error: err.code(),
            });
            let to = error_redirect(ctx, request.redirect_uri(), request.state(), &err);
            Answer::Redirect(to)
        }
    }
}

/// The redirect carrying `err` to the client (RFC 6749 §4.1.2.1, RFC 9207 `iss`).
pub(super) fn error_redirect(
    ctx: &Context,
    redirect_uri: &str,
    state: Option<&str>,
    err: &OAuthError,
) -> String {
    let mut params = vec![("error", err.code())];
    if let Some(d) = err.description() {
        params.push(("error_description", d));
    }
    if let Some(s) = state {
        params.push(("state", s));
    }
    if let Some(iss) = &ctx.config().issuer {
        params.push(("iss", iss));
    }
    uri::with_query(redirect_uri, &params)
}

/// The resource owner approved: mint the code, bound to everything the request said, and answer
/// with the redirect that carries it (RFC 6749 §4.1.2, RFC 9207). `scope` narrows the request's;
/// wider is `invalid_scope`.
async fn approve(
    ctx: &Context,
    request: &PendingAuthorization,
    subject: &str,
    scope: Option<&Scope>,
    authentication: Option<Authentication>,
) -> Result<String, OAuthError> {
    let requested = request.scope();
    let granted = match scope {
        Some(s) if !s.is_subset_of(&requested) => {
            return Err(OAuthError::invalid_scope(
                "the approved scope exceeds the requested one",
            ));
        }
        Some(s) => s.clone(),
        None => requested,
    };
    let challenge = match &request.code_challenge {
        Some((c, m)) => Some((
            c.clone(),
            CodeChallengeMethod::parse(m)
                .ok_or_else(|| OAuthError::bare(ErrorKind::ServerError))?,
        )),
        None => None,
    };
    // OpenID Connect Core §3.1.2.1: `max_age` and `prompt=login` are the user's authentication
    // re-done, not a session's; an approval that cannot show it is `login_required`.
    let login = match &request.openid {
        // Core §2: a `sub` is at most 255 ASCII characters; the app's user id is the sub.
        Some(_) if subject.len() > 255 || !subject.is_ascii() || subject.is_empty() => {
            tracing::error!(
                client_id = request.client_id(),
                "an OpenID approval's subject must be 1 to 255 ASCII characters"
            );
            return Err(OAuthError::bare(ErrorKind::ServerError));
        }
        Some(openid) => {
            let at = authentication.as_ref().map(Authentication::time);
            if !openid.fresh_enough(at, request.created_at, ctx.now()) {
                tracing::warn!(
                    client_id = request.client_id(),
                    "an approval of an OpenID request with max_age or prompt=login did not say the user authenticated recently enough (Decision::authenticated)"
                );
                return Err(OAuthError::new(
                    ErrorKind::LoginRequired,
                    "the user must sign in again",
                ));
            }
            Some(CodeLogin {
                nonce: openid.nonce().map(str::to_owned),
                authentication,
            })
        }
        None => None,
    };
    let client: Arc<str> = Arc::from(request.client_id.as_str());
    let code = mint_code(
        ctx,
        client,
        subject,
        request
            .redirect_uri_sent
            .then(|| request.redirect_uri.clone()),
        granted,
        request.resources(),
        challenge,
        login,
    )
    .await?;
    let mut params = vec![("code", code.as_str())];
    if let Some(s) = &request.state {
        params.push(("state", s));
    }
    if let Some(iss) = &ctx.config().issuer {
        params.push(("iss", iss));
    }
    Ok(uri::with_query(&request.redirect_uri, &params))
}

/// The resource owner (or the app) denied: `access_denied` at the redirect URI.
fn deny(ctx: &Context, request: &PendingAuthorization) -> String {
    let err = OAuthError::new(
        ErrorKind::AccessDenied,
        "the resource owner denied the request",
    );
    error_redirect(ctx, &request.redirect_uri, request.state.as_deref(), &err)
}
