//! The authorization request (RFC 6749 §4.1.1), validated in the order that keeps it safe, and
//! its answer (§4.1.2) once the resource owner has decided. Nothing here knows about HTTP: the
//! endpoint hands in the parameters and turns a [`Refusal`] or an [`Answer`] into a response.
//!
//! One pipeline, which the authorization endpoint, the pushed authorization request endpoint
//! (and next the device verification page) all call:
//!
//! 1. [`validate_request`] (or [`push`] for a client at the PAR endpoint, RFC 9126);
//! 2. [`suspend`]: bound to the user agent ([`bind`]), kept as a short-lived record under a
//!    single-use handle while the app's page asks the resource owner;
//! 3. [`resume`]: taken back once, and only by the user agent it is bound to ([`peek`] looks
//!    without taking);
//! 4. [`decide`]: the app's [`Decision`] becomes the code (or the error) at the client's
//!    redirect URI.
//!
//! The order is the security. A request whose `client_id` or `redirect_uri` cannot be trusted
//! is never redirected (an open redirector otherwise, RFC 6749 §4.1.2.1): the user agent is
//! shown the error. Only once both are known good does any error travel back to the client, at
//! the validated redirect URI, with `state` and `iss`.

mod answer;
mod validate;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use self::answer::Decision;
pub(crate) use self::answer::{Answer, decide};
pub(crate) use self::validate::REQUEST_URI_PREFIX;
use super::context::Context;
use crate::{
    client::Client,
    error::{OAuthError, StoreError},
    events::Event,
    resource::Resources,
    scope::Scope,
    store::records::{RecordKind, RecordType, Records},
    token::{self, SecretToken, TokenHash},
    wire::form::Form,
};

/// A validated authorization request, waiting for the resource owner's decision: what the app's
/// login and consent page shows, and what the code will be bound to. Nothing in it can change
/// between the first request and the decision: it is kept in the token store, not round-tripped
/// through the page.
#[derive(Clone, Serialize, Deserialize)]
pub struct PendingAuthorization {
    client_id: String,
    /// Where the answer goes: the presented `redirect_uri`, or the client's only registered one.
    redirect_uri: String,
    /// Whether the request named `redirect_uri` (the token request must then repeat it).
    redirect_uri_sent: bool,
    scope: String,
    /// The resources (RFC 8707) asked for, or the default one: normalised, space-separated.
    #[serde(default)]
    resources: String,
    state: Option<String>,
    code_challenge: Option<(String, String)>,
    /// The hash of the user agent's binding cookie.
    binding: String,
    /// Pushed by its client (RFC 9126) and not yet resumed by a browser: usable only as a
    /// `request_uri`, never as a completion handle.
    #[serde(default)]
    pushed: bool,
    /// A device request (RFC 8628) entered at the verification page: its user code
    /// (normalised). No redirect then: the decision goes to the device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    device: Option<String>,
    /// The OpenID parameters, when the scope has `openid` on a server that speaks OpenID
    /// Connect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    openid: Option<crate::openid::OpenIdRequest>,
    created_at: u64,
    expires_at: u64,
}

impl std::fmt::Debug for PendingAuthorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingAuthorization")
            .field("client_id", &self.client_id)
            .field("redirect_uri", &self.redirect_uri)
            .field("scope", &self.scope)
            .field("resources", &self.resources)
            .field("state", &self.state.as_ref().map(|_| "…"))
            .field(
                "code_challenge_method",
                &self.code_challenge.as_ref().map(|(_, m)| m),
            )
            .field("openid", &self.openid.is_some())
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl PendingAuthorization {
    /// The client asking.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Where the answer will be sent (validated against the client's registration).
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// The scope asked for (or the client's default): the most an approval may grant.
    pub fn scope(&self) -> Scope {
        Scope::parse(&self.scope).unwrap_or_default()
    }

    /// The resources (RFC 8707) the token will be for: those the request named, each one the
    /// server knows and this client may ask for, or the server's default resource. A consent
    /// page names them; an approval covers them all. Empty: a token for no resource in
    /// particular.
    pub fn resources(&self) -> Resources {
        Resources::from_stored(&self.resources)
    }

    /// The client's `state`, returned to it verbatim.
    pub fn state(&self) -> Option<&str> {
        self.state.as_deref()
    }

    /// The PKCE method (`S256`, or `plain` where allowed), if the request carried a challenge.
    pub fn code_challenge_method(&self) -> Option<&str> {
        self.code_challenge.as_ref().map(|(_, m)| m.as_str())
    }

    /// The OpenID parameters (OpenID Connect Core §3.1.2.1) of a request whose scope has
    /// `openid`, on a server that speaks OpenID Connect: `prompt`, `max_age`, `login_hint`,
    /// `id_token_hint`, `acr_values`, `ui_locales`, … for the app's login page.
    pub fn openid(&self) -> Option<&crate::openid::OpenIdRequest> {
        self.openid.as_ref()
    }

    /// When the request lapses (Unix seconds).
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// For a device request (RFC 8628) entered at the verification page, the user code as the
    /// device shows it (`XXXX-XXXX`): the page asks the user to check it against the device's
    /// screen (§5.4). `None` for an authorization request from a browser redirect.
    pub fn device_user_code(&self) -> Option<String> {
        self.device
            .as_deref()
            .map(|c| format!("{}-{}", &c[..4.min(c.len())], &c[4.min(c.len())..]))
    }

    /// The user code (normalised) of a device request.
    pub(crate) fn device_code(&self) -> Option<&str> {
        self.device.as_deref()
    }

    /// A device request (RFC 8628), found by its user code, as the app's login and consent
    /// see it: no redirect, no state, no PKCE.
    pub(crate) fn for_device(
        client_id: &str,
        scope: &Scope,
        resources: &Resources,
        user_code: String,
    ) -> Self {
        Self {
            client_id: client_id.to_owned(),
            redirect_uri: String::new(),
            redirect_uri_sent: false,
            scope: scope.to_string(),
            resources: resources.as_str().to_owned(),
            state: None,
            code_challenge: None,
            binding: String::new(),
            pushed: false,
            device: Some(user_code),
            openid: None,
            created_at: 0,
            expires_at: 0,
        }
    }

    pub(crate) fn bind(&mut self, agent: &str, created_at: u64, expires_at: u64) {
        self.pushed = false;
        self.binding = TokenHash::of(agent).to_hex();
        self.created_at = created_at;
        self.expires_at = expires_at;
    }

    /// Keep as a pushed request (RFC 9126): no browser yet.
    pub(crate) fn push(&mut self, created_at: u64, expires_at: u64) {
        self.pushed = true;
        self.binding = String::new();
        self.created_at = created_at;
        self.expires_at = expires_at;
    }

    /// Whether `agent` is the binding this request was started with (constant time). A pushed
    /// request has no browser yet, so none is.
    pub(crate) fn bound_to(&self, agent: &str) -> bool {
        if self.pushed {
            return false;
        }
        use subtle::ConstantTimeEq;
        let presented = TokenHash::of(agent).to_hex();
        bool::from(presented.as_bytes().ct_eq(self.binding.as_bytes()))
    }
}

// Kept as a short-lived record between the request and the decision (or, pushed, between PAR
// and the browser's visit), under the hash of an unguessable handle, taken once.
crate::store::records::json_record!(PendingAuthorization, "authz_request");

/// Why an authorization request is refused, and how the refusal must travel.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// Shown to the user agent, never redirected: the client or its redirect URI is unknown.
    Page(OAuthError),
    /// Sent to the client at its validated redirect URI: the full URL, parameters included,
    /// and the error it carries.
    Redirect(String, OAuthError),
}

/// (1) Validate an authorization request from the front channel; one with a `request_uri`
/// resumes a pushed request instead. `repeated` names the parameters that appear more than
/// once. A refusal is reported (`authorization_failed`) before it is returned.
pub(crate) async fn validate_request(
    ctx: &Context,
    form: &Form,
    repeated: &[String],
) -> Result<PendingAuthorization, Refusal> {
    let validated = if form.get("request_uri").is_some() {
        validate::resume_pushed(ctx, form, repeated).await
    } else {
        match validate::validate(ctx, form, repeated).await {
            Ok((client, request)) => {
                validate::check_push_required(ctx, &client, &request).map(|()| (client, request))
            }
            Err(e) => Err(e),
        }
    };
    match validated {
        Ok((_, request)) => Ok(request),
        Err(refusal) => {
            let (client_id, error) = match &refusal {
                // Nothing in the request can be trusted: no client named.
                Refusal::Page(e) => (None, e.code()),
                Refusal::Redirect(_, e) => (form.get("client_id").map(Arc::from), e.code()),
            };
            ctx.emit(Event::AuthorizationFailed { client_id, error });
            Err(refusal)
        }
    }
}

/// The user agents this server gave a binding cookie to and bound a waiting request to: a
/// record each, under the hash of the cookie's value, so that a value nobody was given (planted,
/// or made up) binds nothing.
struct IssuedAgent;

impl RecordType for IssuedAgent {
    const KIND: RecordKind = RecordKind::new("authz_agent");

    fn encode(&self) -> Vec<u8> {
        Vec::new()
    }

    fn decode(_: &[u8]) -> Option<Self> {
        Some(Self)
    }
}

/// How long an issued binding is remembered (the cookie lives for the browser's session).
const AGENT_REMEMBERED_FOR: u64 = 86_400;

/// The user agent a new request is bound to: the binding cookie `presented` when this server
/// issued it, else a new value from the CSPRNG. `true` when the cookie is to be set.
pub(crate) async fn user_agent(
    ctx: &Context,
    presented: Option<String>,
) -> Result<(String, bool), OAuthError> {
    if let Some(agent) = presented {
        let issued = Records::<IssuedAgent>::new(&ctx.store)
            .get(&TokenHash::of(&agent), ctx.now())
            .await?;
        if issued.is_some() {
            return Ok((agent, false));
        }
    }
    Ok((token::generate().expose().to_owned(), true))
}

/// Remember `agent` as a binding this server issued (so its cookie binds its next requests),
/// for a page that set the cookie without suspending a request (the device verification page
/// counts wrong codes per browser).
pub(crate) async fn remember_agent(ctx: &Context, agent: &str) -> Result<(), StoreError> {
    let now = ctx.now();
    Records::<IssuedAgent>::new(&ctx.store)
        .put(
            &TokenHash::of(agent),
            &IssuedAgent,
            now.saturating_add(AGENT_REMEMBERED_FOR),
            now,
        )
        .await
}

/// Bind a validated request to the user agent `agent` (the value of its binding cookie), for
/// the configured lifetime from now.
pub(crate) fn bind(ctx: &Context, request: &mut PendingAuthorization, agent: &str) {
    let now = ctx.now();
    let lifetime = ctx.config().authorization_request_idle_lifetime.as_secs();
    request.bind(agent, now, now.saturating_add(lifetime));
}

/// (2) Keep a bound request under `handle` until it lapses, for the app's page to complete —
/// within the bounds on requests left waiting, per user agent and in all.
pub(crate) async fn suspend(
    ctx: &Context,
    request: &PendingAuthorization,
    handle: &SecretToken,
) -> Result<(), OAuthError> {
    let config = ctx.config();
    let agent = TokenHash::of(&request.binding);
    ctx.within_bound(
        PER_AGENT,
        &agent,
        config.max_pending_authorizations_per_agent,
        BUSY,
    )
    .await?;
    ctx.within_bound(
        IN_ALL,
        &TokenHash::of("all"),
        config.max_pending_authorizations,
        BUSY,
    )
    .await?;
    // The binding is the agent's hash already: remembered as issued, for its next requests.
    if let Some(agent) = TokenHash::parse_hex(&request.binding) {
        let now = ctx.now();
        Records::<IssuedAgent>::new(&ctx.store)
            .put(
                &agent,
                &IssuedAgent,
                now.saturating_add(AGENT_REMEMBERED_FOR),
                now,
            )
            .await?;
    }
    Records::<PendingAuthorization>::new(&ctx.store)
        .put(&handle.hash(), request, request.expires_at(), ctx.now())
        .await
        .map_err(OAuthError::from)
}

/// Requests left waiting by one user agent, in the current window.
const PER_AGENT: RecordKind = RecordKind::new("authz_pending_agent");
/// Requests left waiting in all, in the current window.
const IN_ALL: RecordKind = RecordKind::new("authz_pending_all");
/// What a request past the bounds is told.
const BUSY: &str = "too many authorization requests are waiting; try again later";

/// A pushed authorization request (RFC 9126 §2) from `client`, already authenticated: validated
/// as at the authorization endpoint, with every error for the client (none is redirected), and
/// kept under a new handle. Returns the handle and its lifetime in seconds.
pub(crate) async fn push(
    ctx: &Context,
    client: &Arc<Client>,
    form: &Form,
) -> Result<(SecretToken, u64), OAuthError> {
    if form.get("request_uri").is_some() {
        return Err(OAuthError::invalid_request(
            "request_uri is not allowed in a pushed request",
        ));
    }
    if form.get("client_id").is_some_and(|id| id != client.id()) {
        return Err(OAuthError::invalid_request(
            "client_id is not the authenticated client",
        ));
    }
    // The form was parsed strictly (no repeats) by the endpoint already.
    let (_, mut request) =
        validate::validate_for(ctx, Arc::clone(client), form, &[]).map_err(|r| match r {
            Refusal::Page(e) | Refusal::Redirect(_, e) => e,
        })?;
    let max = ctx.config().max_pending_authorizations;
    ctx.within_bound(IN_ALL, &TokenHash::of("all"), max, BUSY)
        .await?;
    let now = ctx.now();
    let lifetime = ctx.config().pushed_authorization_request_lifetime.as_secs();
    request.push(now, now.saturating_add(lifetime));
    let handle = token::generate();
    Records::<PendingAuthorization>::new(&ctx.store)
        .put(&handle.hash(), &request, request.expires_at(), now)
        .await?;
    Ok((handle, lifetime))
}

/// (3) Take the request kept under `handle` — once, and only for the user agent it is bound
/// to. It is looked at first and taken only if this agent may: someone else's attempt with a
/// stolen handle must not use up the real user's request. A request that is gone (lapsed, used,
/// another agent's) is `invalid_request`, reported as `authorization_failed`.
pub(crate) async fn resume(
    ctx: &Context,
    handle: &str,
    agent: &str,
) -> Result<PendingAuthorization, OAuthError> {
    let gone = || {
        let e =
            OAuthError::invalid_request("the authorization request expired or was already used");
        ctx.emit(Event::AuthorizationFailed {
            client_id: None,
            error: e.code(),
        });
        e
    };
    let hash = TokenHash::of(handle);
    let requests = Records::<PendingAuthorization>::new(&ctx.store);
    let Some(request) = peek_at(&requests, &hash, agent, ctx.now()).await? else {
        return Err(gone());
    };
    match requests.take(&hash, ctx.now()).await? {
        Some(_) => Ok(request),
        None => Err(gone()),
    }
}

/// The request kept under `handle`, while it is pending and bound to `agent`; not taken (for
/// re-rendering a login page after a wrong password). The first look moves its end from the
/// idle lifetime to the full one, counted from its start: somebody came back to it.
pub(crate) async fn peek(
    ctx: &Context,
    handle: &str,
    agent: &str,
) -> Result<Option<PendingAuthorization>, StoreError> {
    let requests = Records::<PendingAuthorization>::new(&ctx.store);
    let hash = TokenHash::of(handle);
    let now = ctx.now();
    let Some(found) = peek_at(&requests, &hash, agent, now).await? else {
        return Ok(None);
    };
    let full = found
        .created_at
        .saturating_add(ctx.config().authorization_request_lifetime.as_secs());
    if found.expires_at >= full {
        return Ok(Some(found));
    }
    // Taken and kept again: the store has no compare-and-set for a record, and a plain put
    // could bring back a request that a concurrent completion has just taken.
    match requests.take(&hash, now).await? {
        Some(mut request) => {
            request.expires_at = full;
            requests.put(&hash, &request, full, now).await?;
            Ok(Some(request))
        }
        None => Ok(None),
    }
}

async fn peek_at(
    requests: &Records<'_, PendingAuthorization>,
    hash: &TokenHash,
    agent: &str,
    now: crate::clock::UnixTime,
) -> Result<Option<PendingAuthorization>, StoreError> {
    let found = requests.get(hash, now).await?;
    Ok(found.filter(|r| r.bound_to(agent)))
}
