//! The answer to a request once the resource owner (or the app) has decided: the code at the
//! client's redirect URI (RFC 6749 §4.1.2), or the error there (§4.1.2.1), always with `state`
//! and `iss` (RFC 9207).

use std::sync::Arc;

use super::PendingAuthorization;
use crate::{
    error::{ErrorKind, OAuthError},
    events::Event,
    grant::{authorization_code::mint_code, context::Context},
    scope::Scope,
    store::CodeChallengeMethod,
    wire::uri,
};

/// What the app decided about an authorization request.
#[derive(Debug, Clone)]
pub enum Decision {
    /// The resource owner `subject` approved; `scope`, when given, narrows the requested one.
    Approve {
        /// Who approved.
        subject: String,
        /// What was granted: at most what was asked; `None` for all of it.
        scope: Option<Scope>,
    },
    /// Denied: the client gets `access_denied`.
    Deny,
}

impl Decision {
    /// Approved by `subject`, for the whole requested scope.
    pub fn approve(subject: impl Into<String>) -> Self {
        Self::Approve {
            subject: subject.into(),
            scope: None,
        }
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
        Decision::Approve { subject, scope } => {
            match approve(ctx, request, &subject, scope.as_ref()).await {
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
