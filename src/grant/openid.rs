//! OpenID Connect in the grants: the OpenID parameters of an authorization request, the login
//! a code and then its grant remember, the subject a client sees, and the ID token (Core
//! §3.1.3.6, §12.2). No HTTP here.
//!
//! What an ID token needs beyond the grant is kept beside it as short-lived records, so no
//! store changes its schema: the login (nonce, authentication) under the code's hash until the
//! code is exchanged, then under the grant's id for its refreshes, and each session's grants
//! under the session id, for logout.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::context::Context;
use crate::{
    client::Client,
    clock::UnixTime,
    error::{ErrorKind, OAuthError, StoreError},
    openid::{Authentication, ClaimsRequest, OpenId, OpenIdRequest, SubjectType},
    resource::Resources,
    scope::Scope,
    store::records::{RecordKind, Records},
    token::{GrantId, TokenHash},
    wire::form::Form,
};

/// The OpenID configuration, when the server speaks OpenID Connect.
pub(crate) fn config(ctx: &Context) -> Option<&OpenId> {
    ctx.openid.as_deref()
}

/// Whether a grant of `scope` is an OpenID one on this server.
pub(crate) fn is_openid(ctx: &Context, scope: &Scope) -> bool {
    config(ctx).is_some() && scope.contains("openid")
}

/// The OpenID parameters of an authorization request by `client` for `scope`, validated
/// (Core §3.1.2.1, §3.1.2.2); `None` when it is not an OpenID request.
pub(crate) fn validate_request(
    ctx: &Context,
    client: &Client,
    scope: &Scope,
    form: &Form,
) -> Result<Option<OpenIdRequest>, OAuthError> {
    if !is_openid(ctx, scope) {
        return Ok(None);
    }
    // Core §3.1.2.1: `redirect_uri` is required of an OpenID request, even for a client with
    // one registered URI (the error goes to that URI: it is the only one the client has).
    if form.get("redirect_uri").is_none() {
        return Err(OAuthError::invalid_request(
            "redirect_uri is required in an OpenID request",
        ));
    }
    let with_pkce = form.get("code_challenge").is_some();
    let max = ctx.config().max_state_bytes;
    let (request, hint) = crate::openid::parse_request(form, with_pkce, max)?;
    let Some(hint) = hint else {
        return Ok(Some(request));
    };
    let subject = hinted_subject(ctx, client, &hint).ok_or_else(|| {
        OAuthError::invalid_request(
            "id_token_hint is not an ID token this server issued to this client",
        )
    })?;
    Ok(Some(request.with_hint_subject(subject)))
}

/// The `sub` of an ID token this server issued to `client` (signature and issuer checked;
/// expiry not judged, as a hint may have expired).
fn hinted_subject(ctx: &Context, client: &Client, token: &str) -> Option<String> {
    let claims = verify_id_token(ctx, token)?;
    claims
        .aud
        .iter()
        .any(|a| a == client.id())
        .then_some(claims.sub)
}

/// An ID token this server issued: its `sub`, audience and `sid`.
pub(crate) struct IdTokenClaims {
    pub(crate) sub: String,
    pub(crate) aud: Vec<String>,
    pub(crate) sid: Option<String>,
}

/// Verify an ID token this server issued (an `id_token_hint`): signature, algorithm, issuer.
#[cfg(feature = "jwt")]
pub(crate) fn verify_id_token(ctx: &Context, token: &str) -> Option<IdTokenClaims> {
    let keys = ctx.keys.as_ref()?;
    let issuer = ctx.config().issuer.as_deref()?;
    let claims = crate::jose::verify_id_token(token, keys.verifying_keys(), issuer)?;
    Some(IdTokenClaims {
        sub: claims.sub,
        aud: claims.aud.values().to_vec(),
        sid: claims.sid,
    })
}

/// Without the `jwt` feature no ID token is ever issued, so none verifies.
#[cfg(not(feature = "jwt"))]
pub(crate) fn verify_id_token(_: &Context, _: &str) -> Option<IdTokenClaims> {
    None
}

/// What an authorization code of an OpenID request remembers until it is exchanged.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CodeLogin {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) nonce: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) authentication: Option<Authentication>,
}

crate::store::records::json_record!(CodeLogin, "oidc_code");

/// What an OpenID grant remembers for the ID tokens of its refreshes and for logout.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct GrantLogin {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) authentication: Option<Authentication>,
}

crate::store::records::json_record!(GrantLogin, "oidc_grant");

/// Grants indexed under one key, for logout: those of a session (`sid`), or of a client for a
/// user. Each with when it lapses, so an index drops what is gone.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct GrantIndex {
    pub(crate) subject: String,
    pub(crate) grants: Vec<(String, UnixTime)>,
}

crate::store::records::json_record!(GrantIndex, "oidc_grants");

/// Grants remembered per index: enough for every app a user signs in to in one session.
const MAX_INDEXED_GRANTS: usize = 64;

/// A session's key in the store.
pub(crate) fn session_key(sid: &str) -> TokenHash {
    TokenHash::of(&format!("sid\0{sid}"))
}

/// The key of a client's grants for a user.
fn client_user_key(client_id: &str, subject: &str) -> TokenHash {
    TokenHash::of(&format!("cu\0{client_id}\0{subject}"))
}

/// Add `grant` (lapsing at `until`) to the index under `key`, without losing a concurrent
/// addition: the index is taken (atomically, so only one caller holds it), merged, and put back
/// only if nobody put one meanwhile — else taken again and merged with that one. A logout that
/// comes between a take and a put misses the grants in flight, as it would miss a sign-in that
/// finishes a moment after it.
async fn index_grant(
    ctx: &Context,
    key: &TokenHash,
    subject: &str,
    grant: GrantId,
    until: UnixTime,
) -> Result<(), StoreError> {
    let records = Records::<GrantIndex>::new(&ctx.store);
    let now = ctx.now();
    let mut merged = vec![(grant.to_string(), until)];
    // Each round, one of the callers contending for this index puts it back and is done: as
    // many rounds as there can be contenders, and then some.
    for _ in 0..4 * MAX_INDEXED_GRANTS {
        if let Some(held) = records.take(key, now).await? {
            // Another user's index under this key (an app reusing a session id) is replaced.
            if held.subject == subject {
                for entry in held.grants {
                    if entry.1 > now && !merged.iter().any(|(g, _)| *g == entry.0) {
                        merged.push(entry);
                    }
                }
            }
        }
        // The most recent ones, when there are too many.
        merged.sort_by_key(|entry| std::cmp::Reverse(entry.1));
        merged.truncate(MAX_INDEXED_GRANTS);
        let lapses = merged.iter().map(|(_, u)| *u).max().unwrap_or(until);
        let index = GrantIndex {
            subject: subject.to_owned(),
            grants: merged.clone(),
        };
        if records.put_if_absent(key, &index, lapses, now).await? {
            return Ok(());
        }
    }
    tracing::warn!("an OpenID grant index stayed contended: one grant left out of it");
    Ok(())
}

fn grant_key(grant: GrantId) -> TokenHash {
    TokenHash::of(&grant.to_string())
}

/// Keep what the code `code` (a hash) of an OpenID request must remember, until `expires_at`.
pub(crate) async fn remember_code(
    ctx: &Context,
    code: &TokenHash,
    login: &CodeLogin,
    expires_at: UnixTime,
) -> Result<(), StoreError> {
    Records::<CodeLogin>::new(&ctx.store)
        .put(code, login, expires_at, ctx.now())
        .await
}

/// What the code `code` remembered (none for a code the app minted itself).
pub(crate) async fn code_login(
    ctx: &Context,
    code: &TokenHash,
) -> Result<Option<CodeLogin>, StoreError> {
    Records::<CodeLogin>::new(&ctx.store)
        .get(code, ctx.now())
        .await
}

/// Remember the login of a new OpenID grant until `expires_at` (its family's end), and add it
/// to its session's grants.
pub(crate) async fn remember_grant(
    ctx: &Context,
    grant: GrantId,
    client_id: &str,
    subject: &str,
    login: GrantLogin,
    expires_at: UnixTime,
) -> Result<(), StoreError> {
    let now = ctx.now();
    let sid = login
        .authentication
        .as_ref()
        .and_then(|a| a.session())
        .map(str::to_owned);
    Records::<GrantLogin>::new(&ctx.store)
        .put(&grant_key(grant), &login, expires_at, now)
        .await?;
    index_grant(
        ctx,
        &client_user_key(client_id, subject),
        subject,
        grant,
        expires_at,
    )
    .await?;
    match sid {
        Some(sid) => index_grant(ctx, &session_key(&sid), subject, grant, expires_at).await,
        None => Ok(()),
    }
}

/// A logout request (RP-Initiated Logout 1.0 §2), checked: who asked, where to go after, and
/// whose session ends.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Logout {
    /// The client that asked (by `client_id`, or the hint's audience).
    pub(crate) client_id: Option<String>,
    /// The registered `post_logout_redirect_uri`, `state` appended: validated.
    pub(crate) redirect: Option<String>,
    /// The user, as the app knows them, when known.
    pub(crate) subject: Option<String>,
    /// The session the hint named, when this server knows it.
    pub(crate) sid: Option<String>,
    /// Waiting for confirmation: the hash of the binding cookie of the browser that was asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    binding: Option<String>,
}

crate::store::records::json_record!(Logout, "oidc_logout");

/// Logouts waiting for confirmation, per browser and in all, in the current window.
const LOGOUTS_PER_AGENT: RecordKind = RecordKind::new("oidc_logout_agent");
const LOGOUTS_IN_ALL: RecordKind = RecordKind::new("oidc_logout_all");
const TOO_MANY_LOGOUTS: &str = "too many logout requests are waiting; try again later";

impl Logout {
    /// Whether the hint identified the session: then no confirmation is asked (§2).
    pub(crate) fn identifies_session(&self) -> bool {
        self.sid.is_some()
    }
}

/// Check a logout request's parameters (§2, §3): the hint is an ID token of this server's
/// (its expiry tolerated); `client_id` is among its audience; `post_logout_redirect_uri` is
/// one the client registered, compared exactly — or nothing is redirected anywhere.
pub(crate) async fn validate_logout(ctx: &Context, form: &Form) -> Result<Logout, OAuthError> {
    let hint = match form.get("id_token_hint") {
        Some(token) => Some(verify_id_token(ctx, token).ok_or_else(|| {
            OAuthError::invalid_request("id_token_hint is not an ID token this server issued")
        })?),
        None => None,
    };
    let client_id = match (form.get("client_id"), &hint) {
        (Some(id), Some(h)) if !h.aud.iter().any(|a| a == id) => {
            return Err(OAuthError::invalid_request(
                "client_id is not the id_token_hint's audience",
            ));
        }
        (Some(id), _) => Some(id.to_owned()),
        (None, Some(h)) => h.aud.first().cloned(),
        (None, None) => None,
    };
    let client = match &client_id {
        Some(id) => Some(
            ctx.find_client(id)
                .await?
                .ok_or_else(|| OAuthError::invalid_request("unknown client_id"))?,
        ),
        None => None,
    };
    let redirect = match form.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let registered = client
                .as_ref()
                .is_some_and(|c| c.post_logout_redirect_uris().iter().any(|r| r == uri));
            if !registered {
                return Err(OAuthError::invalid_request(
                    "post_logout_redirect_uri is not registered for this client (or no client was named)",
                ));
            }
            let state = form
                .get("state")
                .filter(|s| s.len() <= ctx.config().max_state_bytes);
            Some(match state {
                Some(s) => crate::wire::uri::with_query(uri, &[("state", s)]),
                None => uri.to_owned(),
            })
        }
    };
    // The session the hint names, when this server kept it; its user is the app's own id.
    let mut subject = None;
    let mut sid = None;
    if let Some(h) = &hint {
        if let Some(named) = &h.sid {
            let found = Records::<GrantIndex>::new(&ctx.store)
                .get(&session_key(named), ctx.now())
                .await?;
            if let Some(session) = found {
                subject = Some(session.subject);
                sid = Some(named.clone());
            }
        }
        let public = client
            .as_ref()
            .is_some_and(|c| c.subject_type() == SubjectType::Public);
        if subject.is_none() && public {
            subject = Some(h.sub.clone());
        }
    }
    Ok(Logout {
        client_id,
        redirect,
        subject,
        sid,
        binding: None,
    })
}

/// Keep a logout waiting for the confirmation of the browser whose binding cookie is `agent`,
/// under `handle`, for an authorization request's lifetime — within the bounds on requests left
/// waiting, per browser and in all (a link anyone can open must not fill the store).
pub(crate) async fn suspend_logout(
    ctx: &Context,
    handle: &TokenHash,
    mut logout: Logout,
    agent: &str,
) -> Result<(), OAuthError> {
    let config = ctx.config();
    let binding = TokenHash::of(agent);
    ctx.within_bound(
        LOGOUTS_PER_AGENT,
        &binding,
        config.max_pending_authorizations_per_agent,
        TOO_MANY_LOGOUTS,
    )
    .await?;
    ctx.within_bound(
        LOGOUTS_IN_ALL,
        &TokenHash::of("all"),
        config.max_pending_authorizations,
        TOO_MANY_LOGOUTS,
    )
    .await?;
    logout.binding = Some(binding.to_hex());
    let now = ctx.now();
    let until = now.saturating_add(config.authorization_request_lifetime.as_secs());
    Records::<Logout>::new(&ctx.store)
        .put(handle, &logout, until, now)
        .await
        .map_err(OAuthError::from)
}

/// Take the logout waiting under `handle` — once, and only for the browser it was shown to
/// (constant time): a page elsewhere posting a handle it obtained cannot end this user's
/// session. Looked at first, so another browser's attempt does not use it up.
pub(crate) async fn resume_logout(
    ctx: &Context,
    handle: &TokenHash,
    agent: &str,
) -> Result<Option<Logout>, StoreError> {
    use subtle::ConstantTimeEq;
    let records = Records::<Logout>::new(&ctx.store);
    let now = ctx.now();
    let presented = TokenHash::of(agent).to_hex();
    let bound = records.get(handle, now).await?.is_some_and(|l| {
        l.binding
            .as_deref()
            .is_some_and(|b| bool::from(b.as_bytes().ct_eq(presented.as_bytes())))
    });
    if !bound {
        return Ok(None);
    }
    records.take(handle, now).await
}

/// Revoke what the logout ends (as [`LogoutRevokes`](crate::openid::LogoutRevokes) says):
/// the session's grants, or the client's for the user. Returns how many were revoked.
pub(crate) async fn revoke_for_logout(ctx: &Context, logout: &Logout) -> Result<u64, StoreError> {
    let mode = config(ctx).map(|o| o.logout_revokes).unwrap_or_default();
    let records = Records::<GrantIndex>::new(&ctx.store);
    let now = ctx.now();
    let grants = match (&logout.sid, mode, &logout.client_id, &logout.subject) {
        (Some(sid), crate::openid::LogoutRevokes::Session, _, _) => {
            records.take(&session_key(sid), now).await?
        }
        (_, _, Some(client), Some(subject)) => {
            records.take(&client_user_key(client, subject), now).await?
        }
        _ => None,
    };
    let mut revoked = 0;
    for (id, _) in grants.iter().flat_map(|g| &g.grants) {
        if let Some(id) = GrantId::parse_hex(id) {
            if ctx.store.revoke_grant(id).await? {
                revoked += 1;
            }
        }
    }
    Ok(revoked)
}

/// Let what an OpenID grant remembers last until `until` (never shorter).
pub(crate) async fn keep_grant_until(
    ctx: &Context,
    grant: GrantId,
    until: UnixTime,
) -> Result<(), StoreError> {
    Records::<GrantLogin>::new(&ctx.store)
        .extend(&grant_key(grant), until, ctx.now())
        .await
        .map(drop)
}

/// The login of an OpenID grant, for a refresh.
pub(crate) async fn grant_login(
    ctx: &Context,
    grant: GrantId,
) -> Result<Option<GrantLogin>, StoreError> {
    Records::<GrantLogin>::new(&ctx.store)
        .get(&grant_key(grant), ctx.now())
        .await
}

/// The `sub` `client` sees for the user `subject` (Core §8): the app's own, or the pairwise
/// one of the client's sector.
pub(crate) fn subject_for(
    ctx: &Context,
    client: &Client,
    subject: &str,
) -> Result<String, OAuthError> {
    match client.subject_type() {
        SubjectType::Pairwise => {
            let key = config(ctx)
                .and_then(|o| o.pairwise_key.as_deref())
                .ok_or_else(|| {
                    tracing::error!(
                        client_id = client.id(),
                        "a client with pairwise subjects needs OpenId::pairwise_key"
                    );
                    OAuthError::bare(ErrorKind::ServerError)
                })?;
            let sector = client.sector_identifier().unwrap_or(client.id());
            Ok(crate::openid::pairwise_subject(key, sector, subject))
        }
        _ => Ok(subject.to_owned()),
    }
}

/// The user's claims that `scope` releases to `client`, from the app's source (none without
/// one).
pub(crate) async fn claims(
    ctx: &Context,
    client: &Client,
    subject: &str,
    scope: &Scope,
) -> Map<String, Value> {
    let Some(openid) = config(ctx) else {
        return Map::new();
    };
    let Some(source) = &openid.claims else {
        return Map::new();
    };
    let all = source
        .claims(ClaimsRequest {
            subject: Arc::from(subject),
            client_id: Arc::clone(client.id_arc()),
            scope: scope.clone(),
        })
        .await;
    crate::openid::allowed_claims(openid, scope, all)
}

/// Whether an access token for `audience` can be presented at the userinfo endpoint: one for
/// no resource in particular, or for the issuer (whose endpoint it is).
pub(crate) fn reaches_userinfo(ctx: &Context, audience: &Resources) -> bool {
    audience.is_empty()
        || ctx
            .config()
            .issuer
            .as_deref()
            .is_some_and(|iss| audience.iter().any(|r| r == iss))
}

/// What an ID token says about its grant.
pub(crate) struct IdTokenFor<'a> {
    pub(crate) client: &'a Client,
    /// The user, as the app knows them.
    pub(crate) subject: &'a str,
    pub(crate) nonce: Option<&'a str>,
    pub(crate) authentication: Option<&'a Authentication>,
    /// The access token issued beside it (`at_hash`).
    pub(crate) access_token: &'a str,
    /// The user's claims, when no access token can fetch them at the userinfo endpoint.
    pub(crate) claims: Map<String, Value>,
    pub(crate) now: UnixTime,
}

#[derive(Serialize)]
struct IdClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: UnixTime,
    iat: UnixTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_time: Option<UnixTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    acr: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    amr: &'a [String],
    azp: &'a str,
    at_hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<&'a str>,
    #[serde(flatten)]
    claims: Map<String, Value>,
}

/// A server misconfigured for what a client asks: logged, and `server_error` to the client.
fn misconfigured(client: &Client, what: &'static str) -> OAuthError {
    tracing::error!(client_id = client.id(), "{what}");
    OAuthError::bare(ErrorKind::ServerError)
}

/// The ID token (Core §2, §3.1.3.6): signed with the algorithm the client registered (RS256
/// by default).
pub(crate) fn id_token(ctx: &Context, what: IdTokenFor<'_>) -> Result<String, OAuthError> {
    let client = what.client;
    let openid = config(ctx).ok_or_else(|| misconfigured(client, "OpenID Connect is off"))?;
    let iss = ctx
        .config()
        .issuer
        .as_deref()
        .ok_or_else(|| misconfigured(client, "an ID token needs Config::issuer"))?;
    let sub = subject_for(ctx, client, what.subject)?;
    let alg = client.id_token_signed_response_alg();
    let auth = what.authentication;
    let claims = IdClaims {
        iss,
        sub: &sub,
        aud: client.id(),
        exp: what.now.saturating_add(openid.id_token_lifetime.as_secs()),
        iat: what.now,
        auth_time: auth.map(Authentication::time),
        nonce: what.nonce,
        acr: auth.and_then(Authentication::acr_value),
        amr: auth.map_or(&[], Authentication::methods),
        azp: client.id(),
        at_hash: half_hash(alg, what.access_token),
        sid: auth.and_then(Authentication::session),
        claims: what.claims,
    };
    sign(ctx, client, alg, None, &claims)
}

#[cfg(feature = "jwt")]
fn half_hash(alg: &str, value: &str) -> String {
    crate::jose::half_hash(alg, value)
}

#[cfg(not(feature = "jwt"))]
fn half_hash(_: &str, _: &str) -> String {
    String::new()
}

/// Sign `claims` for `client` with the server's key for `alg`.
pub(crate) fn sign(
    ctx: &Context,
    client: &Client,
    alg: &str,
    typ: Option<&str>,
    claims: &impl Serialize,
) -> Result<String, OAuthError> {
    #[cfg(feature = "jwt")]
    {
        let keys = ctx
            .keys
            .as_ref()
            .ok_or_else(|| misconfigured(client, "OpenID Connect needs signing keys"))?;
        match keys.sign_as(alg, typ, claims) {
            Some(Ok(jwt)) => Ok(jwt),
            Some(Err(_)) => Err(misconfigured(client, "a JWT could not be signed")),
            None => Err(misconfigured(
                client,
                "the client's signing algorithm has no key in the server's key set",
            )),
        }
    }
    #[cfg(not(feature = "jwt"))]
    {
        let _ = (ctx, alg, typ, claims);
        Err(misconfigured(
            client,
            "OpenID Connect needs the `jwt` feature",
        ))
    }
}
