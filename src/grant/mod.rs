//! The grants (RFC 6749 §4, §6): pure protocol logic, request in, [`TokenResponse`] or
//! [`OAuthError`] out. Nothing here knows about HTTP; the endpoints in [`crate::endpoint`] are thin
//! adapters around it.

pub(crate) mod authorization_code;
pub(crate) mod authorize;
mod client_credentials;
pub(crate) mod context;
pub(crate) mod device;
mod grace;
pub(crate) mod openid;
mod password;
pub(crate) mod pkce;
mod refresh_token;

use std::{fmt, sync::Arc};

use self::context::Context;
pub use self::{
    authorization_code::AuthorizationRequest, authorize::PendingAuthorization,
    device::PendingDevice,
};
use crate::{
    client::{Client, GrantType},
    clock::UnixTime,
    config::Config,
    error::OAuthError,
    events::Event,
    resource::{InvalidResource, Resources},
    scope::Scope,
    store::{GrantRecord, NewAccessToken, NewRefreshToken},
    token::{self, GrantId, SecretToken},
    wire::form::Form,
};

/// A successful token response (RFC 6749 §5.1). `Debug` hides the tokens.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// The refresh token, when one is issued.
    pub refresh_token: Option<String>,
    /// The scope of the access token.
    pub scope: Scope,
    /// The ID token of an OpenID grant (OpenID Connect Core §3.1.3.3, §12.2).
    pub id_token: Option<String>,
}

impl TokenResponse {
    /// Always `"Bearer"` (RFC 6750).
    pub const TOKEN_TYPE: &'static str = "Bearer";
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .field("scope", &self.scope)
            .field("id_token", &self.id_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// One token request (RFC 6749 §3.2) as the grants see it: the authenticated client and the
/// parsed form, read once by the endpoint. What later inputs add (resource indicators, a DPoP
/// proof's key thumbprint) becomes a field here, never a new parameter of every grant.
#[non_exhaustive]
pub(crate) struct TokenRequest<'a> {
    /// The client, authenticated (or identified, when public).
    pub(crate) client: &'a Arc<Client>,
    /// The request's parameters.
    pub(crate) form: &'a Form,
    /// The resources it names (RFC 8707 `resource`, repeatable), checked and normalised once;
    /// a malformed one is reported where a grant reads them.
    resources: Result<Resources, InvalidResource>,
}

impl<'a> TokenRequest<'a> {
    pub(crate) fn new(client: &'a Arc<Client>, form: &'a Form) -> Self {
        Self {
            client,
            form,
            resources: Resources::parse(form.get_all("resource")),
        }
    }

    /// The resources the request names (none: empty), or `invalid_target`.
    pub(crate) fn resources(&self) -> Result<&Resources, OAuthError> {
        self.resources.as_ref().map_err(invalid_target)
    }
}

/// `invalid_target` for a resource indicator that is not one.
pub(crate) fn invalid_target(e: &InvalidResource) -> OAuthError {
    OAuthError::invalid_target(e.0)
}

/// Run the grant the form asks for, for an authenticated client.
pub(crate) async fn exchange(
    ctx: &Context,
    request: &TokenRequest<'_>,
) -> Result<TokenResponse, OAuthError> {
    let (client, form) = (request.client, request.form);
    let name = form
        .get("grant_type")
        .ok_or_else(|| OAuthError::invalid_request("missing grant_type"))?;
    let grant = GrantType::parse(name)
        .filter(|g| ctx.config().allowed_grant_types.contains(*g))
        .ok_or_else(|| OAuthError::unsupported_grant_type("grant type not supported"))?;
    if !ctx.grant_allowed(client, grant) {
        return Err(OAuthError::unauthorized_client(
            "this client may not use this grant type",
        ));
    }
    match grant {
        GrantType::AuthorizationCode => authorization_code::exchange(ctx, request).await,
        GrantType::Password => password::exchange(ctx, request).await,
        GrantType::ClientCredentials => client_credentials::exchange(ctx, request).await,
        GrantType::RefreshToken => refresh_token::exchange(ctx, request).await,
        GrantType::DeviceCode => device::exchange(ctx, request).await,
    }
}

/// The scope to grant: the requested one (checked against what the client may have), or the
/// client's default when the request names none (RFC 6749 §3.3).
pub(crate) fn resolve_scope(
    config: &Config,
    client: &Client,
    requested: Option<&str>,
) -> Result<Scope, OAuthError> {
    let scope = match requested {
        None => return Ok(client.default_scope()),
        Some(s) => parse_scope(config, s)?,
    };
    if let Some(allowed) = client.allowed_scope() {
        if !scope.is_subset_of(allowed) {
            return Err(OAuthError::invalid_scope(
                "requested scope exceeds what this client may be granted",
            ));
        }
    }
    Ok(scope)
}

/// The audience of a token asked of an existing grant (the code exchange, a refresh): the
/// resources the request names, each one the grant was approved for (RFC 8707 §2.2), or the
/// grant's whole set when it names none.
pub(crate) fn narrow_resources(
    granted: &Resources,
    request: &TokenRequest<'_>,
) -> Result<Resources, OAuthError> {
    let named = request.resources()?;
    if named.is_empty() {
        return Ok(granted.clone());
    }
    if !named.is_subset_of(granted) {
        return Err(OAuthError::invalid_target(
            "a requested resource is not one this grant was approved for",
        ));
    }
    Ok(named.clone())
}

/// A requested scope: well-formed, and within the configured bounds.
pub(crate) fn parse_scope(config: &Config, requested: &str) -> Result<Scope, OAuthError> {
    let scope =
        Scope::parse(requested).map_err(|_| OAuthError::invalid_scope("malformed scope"))?;
    if scope.as_str().len() > config.max_scope_bytes || scope.len() > config.max_scope_tokens {
        return Err(OAuthError::invalid_scope("requested scope is too large"));
    }
    Ok(scope)
}

/// What an access token is for: its user (none when the client acts for itself), its scope and
/// its audience (RFC 8707).
pub(crate) struct AccessFor<'a> {
    /// Read by the JWT format only (an opaque token's record has its grant's user).
    #[cfg_attr(not(feature = "jwt"), allow(dead_code))]
    pub(crate) subject: Option<&'a str>,
    pub(crate) scope: Scope,
    pub(crate) audience: Resources,
}

/// What a new grant was approved for: the user, the scope and the resources, each the ceiling
/// for its tokens.
pub(crate) struct Approval {
    pub(crate) subject: Option<Arc<str>>,
    pub(crate) scope: Scope,
    pub(crate) resources: Resources,
}

/// A new access token for `client`, issued `now`, living the configured lifetime but never past
/// the family's end: opaque, or a JWT (RFC 9068) carrying what it is for, as the client's or the
/// server's format says, on the grant's `route`. Either way the store keeps only its hash.
pub(crate) fn mint_access_token(
    ctx: &Context,
    client: &Client,
    route: token::Route,
    what: AccessFor<'_>,
    now: UnixTime,
    family_end: Option<UnixTime>,
) -> Result<(token::SecretToken, NewAccessToken), OAuthError> {
    let lifetime = ctx.config().access_token_lifetime.as_secs();
    let expires_at = cap(now.saturating_add(lifetime), family_end);
    let format = client
        .access_token_format_override()
        .unwrap_or(ctx.config().access_token_format);
    let token = match format {
        crate::config::AccessTokenFormat::Opaque => token::generate_for(route),
        #[cfg(feature = "jwt")]
        crate::config::AccessTokenFormat::Jwt => {
            jwt_access_token(ctx, client, route, &what, now, expires_at)?
        }
        #[cfg(not(feature = "jwt"))]
        crate::config::AccessTokenFormat::Jwt => {
            let _ = route;
            tracing::error!(
                client_id = client.id(),
                "JWT access tokens need the crate's `jwt` feature"
            );
            return Err(OAuthError::bare(crate::error::ErrorKind::ServerError));
        }
    };
    let access = NewAccessToken {
        hash: token.hash(),
        scope: what.scope,
        audience: what.audience,
        issued_at: now,
        expires_at,
    };
    Ok((token, access))
}

#[cfg(feature = "jwt")]
fn jwt_access_token(
    ctx: &Context,
    client: &Client,
    route: token::Route,
    what: &AccessFor<'_>,
    issued_at: UnixTime,
    expires_at: UnixTime,
) -> Result<token::SecretToken, OAuthError> {
    let (subject, scope, audience) = (what.subject, &what.scope, &what.audience);
    let config = ctx.config();
    let misconfigured = |what: &'static str| {
        tracing::error!(client_id = client.id(), "{what}");
        OAuthError::bare(crate::error::ErrorKind::ServerError)
    };
    let keys = ctx.keys.as_ref().ok_or_else(|| {
        misconfigured("a JWT access token was asked for, but no signing keys are set")
    })?;
    let iss = config.issuer.as_deref().ok_or_else(|| {
        misconfigured("a JWT access token was asked for, but Config::issuer is unset")
    })?;
    // RFC 9068 §3: the resources the request named (RFC 8707); else the configured audience,
    // else the issuer.
    let aud: Vec<&str> = if !audience.is_empty() {
        audience.iter().collect()
    } else if config.access_token_audience.is_empty() {
        vec![iss]
    } else {
        config
            .access_token_audience
            .iter()
            .map(String::as_str)
            .collect()
    };
    // The jti is the token's randomness: 256 bits, so no two tokens (and hashes) are alike. It
    // carries the grant's route, so a store finds the JWT's record as an opaque token's.
    let jti = token::generate_for(route);
    let sub = subject.unwrap_or(client.id());
    let extra = crate::jose::extra_claims(
        ctx.claims_hook.as_deref(),
        &crate::jose::ClaimsContext {
            client_id: client.id(),
            subject,
            scope,
            audience,
        },
    );
    let claims = crate::jose::AccessClaims {
        iss,
        // RFC 9068 §2.2: the user, or the client itself when no user is involved.
        sub,
        aud: &aud,
        exp: expires_at,
        iat: issued_at,
        jti: jti.expose(),
        client_id: client.id(),
        scope: scope.as_str(),
        gty: subject.is_none().then_some("client_credentials"),
        extra,
    };
    let jwt = keys
        .sign(&claims)
        .map_err(|_| misconfigured("a JWT access token could not be signed"))?;
    Ok(token::issued(jwt, route))
}

/// A grant about to be created, with its first tokens.
pub(crate) struct NewGrant {
    pub(crate) record: GrantRecord,
    pub(crate) access_token: SecretToken,
    pub(crate) access: NewAccessToken,
    pub(crate) refresh_token: Option<SecretToken>,
    pub(crate) refresh: Option<NewRefreshToken>,
}

impl NewGrant {
    /// Prepare a grant for `client` on `route` (a code's, or a random one), deciding whether it
    /// gets a refresh token.
    pub(crate) fn prepare(
        ctx: &Context,
        client: &Client,
        route: token::Route,
        approval: Approval,
        audience: Resources,
        grant_type: GrantType,
    ) -> Result<Self, OAuthError> {
        let Approval {
            subject,
            scope,
            resources,
        } = approval;
        let config = ctx.config();
        let now = ctx.now();
        let issue_refresh = grant_type != GrantType::ClientCredentials // RFC 6749 §4.4.3
            && config.issue_refresh_token
            && config.issue_refresh_token_for.contains(grant_type)
            && client.issues_refresh_tokens()
            && ctx.grant_allowed(client, GrantType::RefreshToken)
            && (!config.refresh_token_requires_offline_access || scope.contains("offline_access"));
        let family_end = issue_refresh
            .then(|| {
                config
                    .refresh_token_max_lifetime
                    .map(|m| now.saturating_add(m.as_secs()))
            })
            .flatten();
        let record = GrantRecord {
            id: GrantId::generate_in(route),
            client_id: Arc::clone(client.id_arc()),
            subject,
            scope: scope.clone(),
            resources,
            grant_type,
            created_at: now,
            expires_at: family_end,
        };
        let (access_token, access) = mint_access_token(
            ctx,
            client,
            route,
            AccessFor {
                subject: record.subject.as_deref(),
                scope,
                audience,
            },
            now,
            family_end,
        )?;
        let (refresh_token, refresh) = if issue_refresh {
            let t = token::generate_for(route);
            let r = NewRefreshToken {
                hash: t.hash(),
                issued_at: now,
                expires_at: cap(
                    now.saturating_add(config.refresh_token_lifetime.as_secs()),
                    family_end,
                ),
                generation: 0,
            };
            (Some(t), Some(r))
        } else {
            (None, None)
        };
        Ok(Self {
            record,
            access_token,
            access,
            refresh_token,
            refresh,
        })
    }

    pub(crate) fn response(&self) -> TokenResponse {
        TokenResponse {
            access_token: self.access_token.expose().to_owned(),
            expires_in: self.access.expires_at - self.access.issued_at,
            refresh_token: self.refresh_token.as_ref().map(|t| t.expose().to_owned()),
            scope: self.access.scope.clone(),
            id_token: None,
        }
    }

    pub(crate) fn issued_event(&self) -> Event {
        Event::TokenIssued {
            grant_id: self.record.id,
            grant_type: self.record.grant_type,
            client_id: Arc::clone(&self.record.client_id),
            subject: self.record.subject.clone(),
            scope: self.record.scope.clone(),
            audience: self.access.audience.clone(),
            refresh_token: self.refresh.is_some(),
        }
    }

    /// Create the grant in the store and report it.
    pub(crate) async fn create(self, ctx: &Context) -> Result<TokenResponse, OAuthError> {
        let response = self.response();
        let event = self.issued_event();
        ctx.store
            .create_grant(self.record, self.access, self.refresh)
            .await?;
        ctx.emit(event);
        Ok(response)
    }
}

/// `t`, but never past the family's end.
pub(crate) fn cap(t: UnixTime, end: Option<UnixTime>) -> UnixTime {
    end.map_or(t, |e| t.min(e))
}
