//! RFC 6749 §6 with the RFC 9700 §4.14.2 protections: client binding, scope ceiling, rotation,
//! reuse detection with family revocation, an optional grace window, idle and absolute expiry.
//!
//! One use of a refresh token:
//!
//! 1. Read the token. Unknown, revoked, or another client's → `invalid_grant`, nothing changes.
//! 2. Already rotated away? Inside the grace window, and no successor rotated since → the same
//!    response again (see `grace`). Otherwise it is a replay: revoke the whole family and answer
//!    `invalid_grant`.
//! 3. Expired (idle or absolute), or a scope wider than the grant → error, nothing changes.
//! 4. Compare-and-set in the store: mark it rotated and store its successors atomically. If another
//!    request got there first, read it again and go to 2 — so of N concurrent uses exactly one
//!    rotates; without a grace window the others are replays and revoke the family, with one
//!    they all receive the same pair.

use std::sync::Arc;

use super::{
    AccessFor, TokenRequest, TokenResponse, cap,
    context::Context,
    grace::{self, Kept},
    mint_access_token, narrow_resources, openid, parse_scope,
};
use crate::{
    client::{Client, GrantType},
    config::OnRefresh,
    error::OAuthError,
    events::{Event, ReusedCredential},
    resource::Resources,
    scope::Scope,
    store::{
        NewRefreshToken, RefreshTokenRecord, RefreshTokenState, Rotation, RotationOutcome, Sealed,
    },
    token::{self, TokenHash},
};

pub(super) async fn exchange(
    ctx: &Context,
    request: &TokenRequest<'_>,
) -> Result<TokenResponse, OAuthError> {
    let (client, form) = (request.client, request.form);
    let presented = form
        .get("refresh_token")
        .ok_or_else(|| OAuthError::invalid_request("missing refresh_token"))?;
    let requested = form
        .get("scope")
        .map(|s| parse_scope(&ctx.config, s))
        .transpose()?;
    let hash = TokenHash::of(presented);
    let store = &ctx.store;
    let invalid = || OAuthError::invalid_grant("invalid refresh token");

    // Two reads at most: the second only after losing a compare-and-set, when the token is
    // no longer active and step 2 decides. The first may be answered from what this instance
    // already knows of the token (a near-cache): the compare-and-set checks it in the store.
    for attempt in 0..2 {
        let found = if attempt == 0 {
            store.find_refresh_token_to_use(&hash).await?
        } else {
            store.find_refresh_token(&hash).await?
        };
        let record = found.ok_or_else(invalid)?;
        // RFC 6749 §6: a refresh token is bound to the client it was issued to; only that client may
        // use it.
        if *record.grant.client_id != *client.id() {
            return Err(invalid());
        }
        let now = ctx.now();
        if let RefreshTokenState::Rotated { at, sealed } = &record.state {
            return retry_or_replay(ctx, presented, &record, *at, sealed.as_ref(), now).await;
        }
        if record.expires_at <= now {
            return Err(OAuthError::invalid_grant("refresh token expired"));
        }
        if record.grant.expires_at.is_some_and(|end| end <= now) {
            return Err(OAuthError::invalid_grant("refresh token family expired"));
        }
        // RFC 6749 §6: equal to or narrower than the original grant. The grant's scope stays the
        // ceiling, so asking for less now does not shrink what a later refresh may ask for.
        let scope = match &requested {
            Some(s) if !s.is_subset_of(&record.grant.scope) => {
                return Err(OAuthError::invalid_scope(
                    "requested scope exceeds the original grant",
                ));
            }
            Some(s) => s.clone(),
            None => record.grant.scope.clone(),
        };
        // RFC 8707 §2.2, likewise: some of the grant's resources, or all of them.
        let audience = narrow_resources(&record.grant.resources, request)?;
        let login = openid_login(ctx, client, &record, &scope, &audience).await?;
        let (rotation, response) = prepare(
            ctx,
            client,
            presented,
            &record,
            scope,
            audience.clone(),
            now,
            login.as_ref(),
        )?;
        let rotated = rotation.refresh.is_some();
        match store.rotate_refresh_token(rotation).await? {
            RotationOutcome::Rotated => {
                // A family without an absolute end lives as long as it is refreshed: so does
                // what its ID tokens need.
                if login.is_some() && record.grant.expires_at.is_none() {
                    let until = now.saturating_add(ctx.config().refresh_token_lifetime.as_secs());
                    // The tokens are rotated already: a failure here must not lose them.
                    if let Err(e) = openid::keep_grant_until(ctx, record.grant.id, until).await {
                        tracing::warn!(error = %e, "an OpenID grant's login could not be extended");
                    }
                }
                if let OnRefresh::Call(f) = &ctx.config().on_refresh {
                    f(record.clone()).await;
                }
                ctx.emit(Event::TokenRefreshed {
                    grant_id: record.grant.id,
                    client_id: Arc::clone(&record.grant.client_id),
                    subject: record.grant.subject.clone(),
                    scope: response.scope.clone(),
                    audience,
                    rotated,
                    grace_retry: false,
                });
                return Ok(response);
            }
            RotationOutcome::Conflict => continue,
        }
    }
    Err(invalid())
}

/// What the ID token of an OpenID grant's refresh says beyond the grant (Core §12.2): the
/// original authentication, and the claims when the new access token cannot fetch them.
struct RefreshLogin {
    subject: Arc<str>,
    authentication: Option<crate::openid::Authentication>,
    claims: serde_json::Map<String, serde_json::Value>,
}

/// For a refresh of an OpenID grant (from the code flow) that keeps `openid` in its scope,
/// what its new ID token needs.
async fn openid_login(
    ctx: &Context,
    client: &Client,
    record: &RefreshTokenRecord,
    scope: &Scope,
    audience: &Resources,
) -> Result<Option<RefreshLogin>, OAuthError> {
    let Some(subject) = &record.grant.subject else {
        return Ok(None);
    };
    if record.grant.grant_type != GrantType::AuthorizationCode || !openid::is_openid(ctx, scope) {
        return Ok(None);
    }
    let login = openid::grant_login(ctx, record.grant.id).await?;
    let claims = if openid::reaches_userinfo(ctx, audience) {
        serde_json::Map::new()
    } else {
        openid::claims(ctx, client, subject, scope).await
    };
    Ok(Some(RefreshLogin {
        subject: Arc::clone(subject),
        authentication: login.and_then(|l| l.authentication),
        claims,
    }))
}

/// Build the successor tokens and the store operation that installs them.
#[allow(clippy::too_many_arguments)]
fn prepare(
    ctx: &Context,
    client: &Client,
    presented: &str,
    record: &RefreshTokenRecord,
    scope: Scope,
    audience: Resources,
    now: u64,
    login: Option<&RefreshLogin>,
) -> Result<(Rotation, TokenResponse), OAuthError> {
    let config = ctx.config();
    let family_end = record.grant.expires_at;
    // RFC 9700 §2.2.2: public clients' refresh tokens are always sender-constrained or rotated.
    let rotate = config.rotate_refresh_token || !client.is_confidential();
    let route = record.grant.id.route();
    let (access_token, access) = mint_access_token(
        ctx,
        client,
        route,
        AccessFor {
            subject: record.grant.subject.as_deref(),
            scope: scope.clone(),
            audience,
        },
        now,
        family_end,
    )?;
    // Core §12.2: the same `sub`, `auth_time`, `acr`, `amr` and `azp`; a new `iat`; no nonce.
    let id_token = match login {
        Some(login) => Some(openid::id_token(
            ctx,
            openid::IdTokenFor {
                client,
                subject: &login.subject,
                nonce: None,
                authentication: login.authentication.as_ref(),
                access_token: access_token.expose(),
                claims: login.claims.clone(),
                now,
            },
        )?),
        None => None,
    };
    let successor = rotate.then(|| token::generate_for(route));
    let refresh = successor.as_ref().map(|t| NewRefreshToken {
        hash: t.hash(),
        issued_at: now,
        // Idle lifetime starts again; the family's absolute end does not move.
        expires_at: cap(
            now.saturating_add(config.refresh_token_lifetime.as_secs()),
            family_end,
        ),
        generation: record.generation + 1,
    });
    let grace = config.refresh_token_grace_period.as_secs();
    let sealed = match &successor {
        Some(next) if grace > 0 => grace::seal(
            presented,
            &Kept {
                access_token: access_token.expose(),
                access_expires_at: access.expires_at,
                refresh_token: next.expose(),
                scope: &scope,
                id_token: id_token.as_deref().unwrap_or(""),
            },
        )
        .map(|bytes| Sealed {
            bytes: bytes.into(),
            until: now.saturating_add(grace),
        }),
        _ => None,
    };
    let response = TokenResponse {
        access_token: access_token.expose().to_owned(),
        expires_in: access.expires_at - now,
        refresh_token: successor.as_ref().map(|t| t.expose().to_owned()),
        scope,
        id_token,
    };
    let rotation = Rotation {
        presented: record.hash,
        generation: record.generation,
        access,
        refresh,
        sealed,
        revoke_previous_access: matches!(config.on_refresh, OnRefresh::RevokeAccessTokens),
        previous_access: record.access_token,
        now,
        grant: record.grant.id,
        client_id: Arc::clone(&record.grant.client_id),
        subject: record.grant.subject.clone(),
    };
    Ok((rotation, response))
}

/// A rotated token presented again: a retry inside the grace window, or a replay.
async fn retry_or_replay(
    ctx: &Context,
    presented: &str,
    record: &RefreshTokenRecord,
    rotated_at: u64,
    sealed: Option<&Sealed>,
    now: u64,
) -> Result<TokenResponse, OAuthError> {
    let grace = ctx.config().refresh_token_grace_period.as_secs();
    // Only the immediately preceding token: once its successor has itself been rotated, the
    // family's generation has moved past it and it is an ancestor like any other.
    let is_parent_of_head = record.family_generation <= record.generation + 1;
    if grace > 0 && now < rotated_at + grace && is_parent_of_head {
        if let Some(response) = sealed.and_then(|s| grace::open(presented, &s.bytes, now)) {
            ctx.emit(Event::TokenRefreshed {
                grant_id: record.grant.id,
                client_id: Arc::clone(&record.grant.client_id),
                subject: record.grant.subject.clone(),
                scope: response.scope.clone(),
                audience: Resources::empty(),
                rotated: true,
                grace_retry: true,
            });
            return Ok(response);
        }
    }
    // RFC 9700 §4.14.2: a rotated refresh token used again means one of its holders is an
    // attacker; revoke the family so neither keeps access.
    let revoked = ctx.store.revoke_grant(record.grant.id).await?;
    if revoked {
        ctx.emit(Event::ReuseDetected {
            grant_id: record.grant.id,
            client_id: Arc::clone(&record.grant.client_id),
            subject: record.grant.subject.clone(),
            what: ReusedCredential::RefreshToken,
        });
    }
    Err(OAuthError::invalid_grant(
        "refresh token was already used; its grant has been revoked",
    ))
}
