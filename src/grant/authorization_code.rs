//! RFC 6749 §4.1 with PKCE (RFC 7636): minting codes for the app's consent handler, and
//! exchanging them at the token endpoint.

use std::sync::Arc;

use super::{
    Approval, NewGrant, TokenRequest, TokenResponse, context::Context, invalid_target,
    narrow_resources, openid, pkce, resolve_scope,
};
use crate::{
    client::{Client, GrantType},
    error::{ErrorKind, OAuthError},
    events::{Event, ReusedCredential},
    store::{AuthorizationCodeRecord, CodeChallengeMethod, Redemption},
    token::{self, TokenHash},
    wire::form::Form,
};

/// What the resource owner approved, handed to [`AuthServer::issue_authorization_code`](crate::AuthServer::issue_authorization_code) by the
/// app's own authorization/consent handler (this crate does not render login or consent pages).
///
/// ```
/// use tower_oauth2::AuthorizationRequest;
///
/// let request = AuthorizationRequest::new("spa", "user-42")
///     .redirect_uri("https://app.example/cb")
///     .scope("read")
///     .code_challenge("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", Some("S256"));
/// # let _ = request;
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct AuthorizationRequest {
    client_id: String,
    subject: String,
    redirect_uri: Option<String>,
    scope: Option<String>,
    resources: Vec<String>,
    code_challenge: Option<(String, Option<String>)>,
}

impl AuthorizationRequest {
    /// A request by `client_id`, approved by the resource owner `subject`.
    pub fn new(client_id: impl Into<String>, subject: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            subject: subject.into(),
            redirect_uri: None,
            scope: None,
            resources: Vec::new(),
            code_challenge: None,
        }
    }

    /// The `redirect_uri` parameter of the authorization request, if it had one.
    pub fn redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.redirect_uri = Some(uri.into());
        self
    }

    /// The `scope` parameter (the scope approved).
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// A `resource` parameter (RFC 8707) the approval covers; call once per resource. Each
    /// must be one the server knows and the client may ask for (else `invalid_target`); none:
    /// the server's default resource, if any.
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resources.push(resource.into());
        self
    }

    /// The `code_challenge` and `code_challenge_method` parameters (RFC 7636 §4.3; the method
    /// defaults to `plain` when absent, which is refused unless enabled).
    pub fn code_challenge(mut self, challenge: impl Into<String>, method: Option<&str>) -> Self {
        self.code_challenge = Some((challenge.into(), method.map(str::to_owned)));
        self
    }
}

pub(crate) async fn issue(
    ctx: &Context,
    request: AuthorizationRequest,
) -> Result<String, OAuthError> {
    let client = ctx
        .find_client(&request.client_id)
        .await?
        .ok_or_else(|| OAuthError::new(ErrorKind::InvalidClient, "unknown client_id"))?;
    if !ctx.grant_allowed(&client, GrantType::AuthorizationCode) {
        return Err(OAuthError::unauthorized_client(
            "this client may not use the authorization code grant",
        ));
    }
    // RFC 6749 §3.1.2.3 (and RFC 8252 §7.3 for loopback URIs); with one registered URI the
    // parameter may be omitted.
    match &request.redirect_uri {
        Some(uri) if client.registered_redirect_uri(uri).is_none() => {
            return Err(OAuthError::invalid_request(
                "redirect_uri is not registered",
            ));
        }
        None if client.redirect_uris().len() != 1 => {
            return Err(OAuthError::invalid_request("redirect_uri is required"));
        }
        _ => {}
    }
    let scope = resolve_scope(&ctx.config, &client, request.scope.as_deref())?;
    let named =
        crate::resource::Resources::parse(&request.resources).map_err(|e| invalid_target(&e))?;
    let resources = ctx.requested_resources(&client, &named)?;
    let code_challenge = match request.code_challenge {
        Some((challenge, method)) => Some(checked_challenge(ctx, &challenge, method.as_deref())?),
        None => {
            if pkce::required(&ctx.config().pkce, &client) {
                return Err(OAuthError::invalid_request("code challenge required"));
            }
            None
        }
    };
    mint_code(
        ctx,
        Arc::clone(client.id_arc()),
        &request.subject,
        request.redirect_uri,
        scope,
        resources,
        code_challenge,
        None,
    )
    .await
}

/// A PKCE challenge and its method (RFC 7636 §4.2, §4.3): S256, or plain where allowed (the
/// method defaults to plain when absent).
pub(crate) fn checked_challenge(
    ctx: &Context,
    challenge: &str,
    method: Option<&str>,
) -> Result<(String, CodeChallengeMethod), OAuthError> {
    let method = match method {
        Some("S256") => CodeChallengeMethod::S256,
        Some("plain") | None if ctx.config().pkce.allow_plain => CodeChallengeMethod::Plain,
        _ => {
            return Err(OAuthError::invalid_request(
                "transform algorithm not supported",
            ));
        }
    };
    let valid = match method {
        CodeChallengeMethod::S256 => pkce::well_formed_s256(challenge),
        CodeChallengeMethod::Plain => pkce::well_formed(challenge),
    };
    if !valid {
        return Err(OAuthError::invalid_request("malformed code_challenge"));
    }
    Ok((challenge.to_owned(), method))
}

/// Store a new code bound to all it was issued for, and return it. An OpenID request's login
/// is kept first, so a code that exists always finds it.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn mint_code(
    ctx: &Context,
    client_id: Arc<str>,
    subject: &str,
    redirect_uri: Option<String>,
    scope: crate::scope::Scope,
    resources: crate::resource::Resources,
    code_challenge: Option<(String, CodeChallengeMethod)>,
    login: Option<openid::CodeLogin>,
) -> Result<String, OAuthError> {
    let now = ctx.now();
    let code = token::generate();
    let lifetime = ctx.config().authorization_code_lifetime.as_secs();
    if let Some(login) = &login {
        openid::remember_code(ctx, &code.hash(), login, now.saturating_add(lifetime)).await?;
    }
    ctx.store
        .create_code(AuthorizationCodeRecord {
            hash: code.hash(),
            client_id,
            subject: Arc::from(subject),
            redirect_uri,
            scope,
            resources,
            code_challenge,
            issued_at: now,
            expires_at: now.saturating_add(lifetime),
            redeemed_by: None,
        })
        .await?;
    Ok(code.expose().to_owned())
}

pub(super) async fn exchange(
    ctx: &Context,
    request: &TokenRequest<'_>,
) -> Result<TokenResponse, OAuthError> {
    let (client, form) = (request.client, request.form);
    let code = form
        .get("code")
        .ok_or_else(|| OAuthError::invalid_request("missing code"))?;
    let hash = TokenHash::of(code);
    let store = &ctx.store;
    // First what this instance may already know of the code (a near-cache's record of a code
    // issued here: one round trip less), then, should any check fail on it, the store's own
    // answer, so a refusal is always the store's. A record's only change is its redemption,
    // which the redemption below checks atomically.
    let mut record = store.find_code_to_use(&hash).await?;
    let mut fresh = false;
    let record = loop {
        match check(ctx, client, form, record.as_ref()) {
            Ok(()) => break record.ok_or_else(invalid_code)?,
            Err(Refusal::Reused(first)) => {
                return Err(code_reused(ctx, first, client.id_arc()).await);
            }
            Err(Refusal::Invalid(e)) if fresh || record.is_none() => return Err(e),
            Err(Refusal::Invalid(_)) => {
                record = store.find_code(&hash).await?;
                fresh = true;
            }
        }
    };
    // The grant goes on the code's route, so the store redeems the one and creates the other in
    // one atomic step wherever it keeps them.
    // RFC 8707 §2.2: a token for some of the resources approved (the grant keeps them all).
    let audience = narrow_resources(&record.resources, request)?;
    let userinfo_reachable = openid::reaches_userinfo(ctx, &audience);
    let route = hash.route().unwrap_or_else(crate::token::Route::random);
    let new = NewGrant::prepare(
        ctx,
        client,
        route,
        Approval {
            subject: Some(Arc::clone(&record.subject)),
            scope: record.scope.clone(),
            resources: record.resources.clone(),
        },
        audience,
        GrantType::AuthorizationCode,
    )?;
    let mut response = new.response();
    if openid::is_openid(ctx, &record.scope) {
        response.id_token =
            Some(id_token(ctx, client, &hash, &record, &new, userinfo_reachable).await?);
    }
    let event = new.issued_event();
    match store
        .redeem_code(&hash, new.record, new.access, new.refresh)
        .await?
    {
        Redemption::Redeemed => {
            ctx.emit(event);
            Ok(response)
        }
        Redemption::AlreadyRedeemed(first) => Err(code_reused(ctx, first, client.id_arc()).await),
        Redemption::Missing => Err(invalid_code()),
    }
}

/// The ID token of an OpenID grant's first tokens (Core §3.1.3.3), and what the grant keeps
/// for its refreshes and its logout — kept before the code is redeemed, so a redeemed code
/// never lacks it.
async fn id_token(
    ctx: &Context,
    client: &Client,
    code: &TokenHash,
    record: &AuthorizationCodeRecord,
    new: &NewGrant,
    userinfo_reachable: bool,
) -> Result<String, OAuthError> {
    // None for a code the app minted itself (`issue_authorization_code`): no nonce was sent.
    let login = openid::code_login(ctx, code).await?;
    let (nonce, authentication) = match login {
        Some(l) => (l.nonce, l.authentication),
        None => (None, None),
    };
    let claims = if userinfo_reachable {
        serde_json::Map::new()
    } else {
        openid::claims(ctx, client, &record.subject, &record.scope).await
    };
    let now = ctx.now();
    let token = openid::id_token(
        ctx,
        openid::IdTokenFor {
            client,
            subject: &record.subject,
            nonce: nonce.as_deref(),
            authentication: authentication.as_ref(),
            access_token: new.access_token.expose(),
            claims,
            now,
        },
    )?;
    let config = ctx.config();
    let lives = config
        .refresh_token_lifetime
        .max(config.access_token_lifetime)
        .as_secs();
    let until = new.record.expires_at.unwrap_or(now.saturating_add(lives));
    openid::remember_grant(
        ctx,
        new.record.id,
        client.id(),
        &record.subject,
        openid::GrantLogin { authentication },
        until,
    )
    .await?;
    Ok(token)
}

fn invalid_code() -> OAuthError {
    OAuthError::invalid_grant("invalid authorization code")
}

/// Why a code is refused.
enum Refusal {
    /// Used already: its first use's grant is revoked.
    Reused(crate::token::GrantId),
    /// Anything else.
    Invalid(OAuthError),
}

/// Every check of a code presented by `client` with `form`, in the order RFC 6749 §4.1.3 and
/// OAuth 2.1 set.
fn check(
    ctx: &Context,
    client: &Client,
    form: &Form,
    record: Option<&AuthorizationCodeRecord>,
) -> Result<(), Refusal> {
    let refuse = |e| Err(Refusal::Invalid(e));
    let Some(record) = record else {
        return refuse(invalid_code());
    };
    // The client first: another client's presentation of a code (leaked, say, and already used)
    // must neither revoke the grant it started nor tell whether it exists.
    if *record.client_id != *client.id() {
        return refuse(invalid_code());
    }
    if let Some(first) = record.redeemed_by {
        return Err(Refusal::Reused(first));
    }
    if record.expires_at <= ctx.now() {
        return refuse(OAuthError::invalid_grant("authorization code expired"));
    }
    // RFC 6749 §4.1.3: identical to the authorization request's redirect_uri, if it had one.
    if let Some(expected) = &record.redirect_uri {
        if form.get("redirect_uri") != Some(expected.as_str()) {
            return refuse(OAuthError::invalid_grant("redirect_uri does not match"));
        }
    }
    match (&record.code_challenge, form.get("code_verifier")) {
        (Some((challenge, method)), Some(verifier)) => {
            if !pkce::verify(verifier, challenge, *method) {
                return refuse(OAuthError::invalid_grant("PKCE verification failed"));
            }
        }
        (Some(_), None) => return refuse(OAuthError::invalid_grant("missing code_verifier")),
        // OAuth 2.1 §4.1.3: a verifier without a challenge is a downgrade attempt.
        (None, Some(_)) => {
            return refuse(OAuthError::invalid_grant(
                "code_verifier sent for a code issued without a challenge",
            ));
        }
        (None, None) => {}
    }
    Ok(())
}

/// RFC 6749 §4.1.2: a code used twice is refused, and what its first use issued is revoked.
async fn code_reused(
    ctx: &Context,
    first: crate::token::GrantId,
    client_id: &Arc<str>,
) -> OAuthError {
    match ctx.store.revoke_grant(first).await {
        Ok(_) => {
            ctx.emit(Event::ReuseDetected {
                grant_id: first,
                client_id: Arc::clone(client_id),
                subject: None,
                what: ReusedCredential::AuthorizationCode,
            });
            OAuthError::invalid_grant("authorization code already used")
        }
        Err(e) => e.into(),
    }
}
