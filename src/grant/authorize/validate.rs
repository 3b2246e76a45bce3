//! Validation of an authorization request, in the order that keeps it safe (see the module
//! above): the client, its redirect URI, then everything else at that redirect URI. A pushed
//! request (RFC 9126) is resumed here by its `request_uri`.

use std::sync::Arc;

use super::{PendingAuthorization, Refusal, answer::error_redirect};
use crate::{
    client::{Client, GrantType},
    error::{ErrorKind, OAuthError},
    grant::{context::Context, invalid_target, resolve_scope},
    resource::Resources,
    store::{CodeChallengeMethod, records::Records},
    token::TokenHash,
    wire::form::Form,
};

/// The parameters an authorization request may carry only once. A repeat of `client_id` or
/// `redirect_uri` is answered on a page; of the others, at the redirect URI.
const UNIQUE: [&str; 17] = [
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "request_uri",
    // OpenID Connect Core §3.1.2.1.
    "nonce",
    "prompt",
    "max_age",
    "id_token_hint",
    "login_hint",
    "acr_values",
    "ui_locales",
    "claims_locales",
    "display",
];

/// Validate an authorization request. `repeated` names the parameters that appear more than
/// once. On success: the client and the request, not yet bound to a user agent.
pub(super) async fn validate(
    ctx: &Context,
    form: &Form,
    repeated: &[String],
) -> Result<(Arc<Client>, PendingAuthorization), Refusal> {
    // (1) The client.
    let client = named_client(ctx, form, repeated).await?;
    validate_for(ctx, client, form, repeated)
}

/// The client `client_id` names: present once and registered, or a page.
async fn named_client(
    ctx: &Context,
    form: &Form,
    repeated: &[String],
) -> Result<Arc<Client>, Refusal> {
    let page = |description: &'static str| Refusal::Page(OAuthError::invalid_request(description));
    if repeated.iter().any(|r| r == "client_id") {
        return Err(page("client_id is repeated"));
    }
    let client_id = form
        .get("client_id")
        .ok_or_else(|| page("client_id is missing"))?;
    ctx.find_client(client_id)
        .await
        .map_err(Refusal::Page)?
        .ok_or_else(|| page("unknown client_id"))
}

/// Validate an authorization request of a client already known (the one named by `client_id`,
/// or the one authenticated at the pushed authorization request endpoint), from step (2) on.
pub(super) fn validate_for(
    ctx: &Context,
    client: Arc<Client>,
    form: &Form,
    repeated: &[String],
) -> Result<(Arc<Client>, PendingAuthorization), Refusal> {
    let repeats = |name: &str| repeated.iter().any(|r| r == name);
    let page = |description: &'static str| Refusal::Page(OAuthError::invalid_request(description));
    // (2) Its redirect URI.
    if repeats("redirect_uri") {
        return Err(page("redirect_uri is repeated"));
    }
    let presented = form.get("redirect_uri");
    let redirect_uri = match presented {
        Some(uri) => client
            .registered_redirect_uri(uri)
            .map(|_| uri.to_owned())
            .ok_or_else(|| page("redirect_uri is not registered for this client"))?,
        None => match client.redirect_uris() {
            [only] => only.clone(),
            [] => return Err(page("this client has no registered redirect_uri")),
            _ => return Err(page("redirect_uri is required: this client has several")),
        },
    };
    // (3) From here on, errors go back to the client.
    // A `state` too long to keep is not sent back either (it would be the flood's payload).
    let too_long = form
        .get("state")
        .is_some_and(|s| s.len() > ctx.config().max_state_bytes);
    let state = if repeats("state") || too_long {
        None
    } else {
        form.get("state").map(str::to_owned)
    };
    let back = |err: OAuthError| {
        let to = error_redirect(ctx, &redirect_uri, state.as_deref(), &err);
        Refusal::Redirect(to, err)
    };
    if too_long {
        return Err(back(OAuthError::invalid_request("state is too long")));
    }
    if let Some(name) = UNIQUE.iter().find(|n| repeats(n)) {
        return Err(back(OAuthError::invalid_request(format!(
            "{name} is repeated"
        ))));
    }
    if form.get("request").is_some() {
        return Err(back(OAuthError::new(
            ErrorKind::RequestNotSupported,
            "request objects are not supported",
        )));
    }
    match form.get("response_type") {
        None => {
            return Err(back(OAuthError::invalid_request(
                "response_type is missing",
            )));
        }
        Some("code") => {}
        Some(_) => {
            return Err(back(OAuthError::new(
                ErrorKind::UnsupportedResponseType,
                "only response_type=code is supported",
            )));
        }
    }
    if !ctx.grant_allowed(&client, GrantType::AuthorizationCode) {
        return Err(back(OAuthError::unauthorized_client(
            "this client may not use the authorization code grant",
        )));
    }
    let scope = resolve_scope(ctx.config(), &client, form.get("scope")).map_err(back)?;
    let resources = Resources::parse(form.get_all("resource"))
        .map_err(|e| invalid_target(&e))
        .and_then(|named| ctx.requested_resources(&client, &named))
        .map_err(back)?;
    let code_challenge = challenge(ctx, &client, form).map_err(back)?;
    let openid =
        crate::grant::openid::validate_request(ctx, &client, &scope, form).map_err(back)?;
    Ok((
        Arc::clone(&client),
        PendingAuthorization {
            client_id: client.id().to_owned(),
            redirect_uri,
            redirect_uri_sent: presented.is_some(),
            scope: scope.as_str().to_owned(),
            resources: resources.as_str().to_owned(),
            state,
            code_challenge: code_challenge.map(|(c, m)| (c, m.as_str().to_owned())),
            binding: String::new(),
            pushed: false,
            device: None,
            openid,
            created_at: 0,
            expires_at: 0,
        },
    ))
}

/// The prefix of a `request_uri` this server issues (RFC 9126 §2.2).
pub(crate) const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// Resume a pushed request (RFC 9126 §4): `client_id` and `request_uri` name it; it is taken
/// once, must be this client's and unexpired. Every failure is a page: nothing in the
/// authorization request itself can be trusted for a redirect.
pub(super) async fn resume_pushed(
    ctx: &Context,
    form: &Form,
    repeated: &[String],
) -> Result<(Arc<Client>, PendingAuthorization), Refusal> {
    let page = |description: &'static str| Refusal::Page(OAuthError::invalid_request(description));
    let client = named_client(ctx, form, repeated).await?;
    if repeated.iter().any(|r| r == "request_uri") {
        return Err(page("request_uri is repeated"));
    }
    let handle = form
        .get("request_uri")
        .and_then(|u| u.strip_prefix(REQUEST_URI_PREFIX))
        .ok_or_else(|| page("request_uri was not issued by this ctx"))?;
    let hash = TokenHash::of(handle);
    let requests = Records::<PendingAuthorization>::new(&ctx.store);
    let unusable = || page("request_uri is unknown, expired, used, or another client's");
    // Looked at first, taken only if it is this client's: another client cannot use it up.
    let found = requests
        .get(&hash, ctx.now())
        .await
        .map_err(|e| Refusal::Page(e.into()))?
        .filter(|r| r.pushed && r.client_id == client.id())
        .ok_or_else(unusable)?;
    match requests.take(&hash, ctx.now()).await {
        Ok(Some(_)) => Ok((client, found)),
        Ok(None) => Err(unusable()),
        Err(e) => Err(Refusal::Page(e.into())),
    }
}

/// A client (or the server) that requires pushed requests refuses any other, at the client's
/// validated redirect URI.
pub(super) fn check_push_required(
    ctx: &Context,
    client: &Client,
    request: &PendingAuthorization,
) -> Result<(), Refusal> {
    if ctx.config().require_pushed_authorization_requests
        || client.requires_pushed_authorization_requests()
    {
        let err = OAuthError::invalid_request(
            "this client must push its authorization requests (RFC 9126)",
        );
        let to = error_redirect(ctx, &request.redirect_uri, request.state.as_deref(), &err);
        return Err(Refusal::Redirect(to, err));
    }
    Ok(())
}

/// The PKCE challenge (RFC 7636 §4.3), or whether its absence is allowed.
fn challenge(
    ctx: &Context,
    client: &Client,
    form: &Form,
) -> Result<Option<(String, CodeChallengeMethod)>, OAuthError> {
    let method = form.get("code_challenge_method");
    let Some(challenge) = form.get("code_challenge") else {
        if method.is_some() {
            return Err(OAuthError::invalid_request(
                "code_challenge_method without code_challenge",
            ));
        }
        return if crate::grant::pkce::required(&ctx.config().pkce, client) {
            Err(OAuthError::invalid_request("code_challenge is required"))
        } else {
            Ok(None)
        };
    };
    crate::grant::authorization_code::checked_challenge(ctx, challenge, method).map(Some)
}
