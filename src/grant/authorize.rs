//! The authorization request (RFC 6749 §4.1.1), validated in the order that keeps it safe, and
//! its answer (§4.1.2) once the resource owner has decided. Nothing here knows about HTTP: the
//! endpoint hands in the parameters and turns a [`Refusal`] or a redirect URL into a response.
//!
//! The order is the security. A request whose `client_id` or `redirect_uri` cannot be trusted
//! is never redirected (an open redirector otherwise, RFC 6749 §4.1.2.1): the user agent is
//! shown the error. Only once both are known good does any error travel back to the client, at
//! the validated redirect URI, with `state` and `iss`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{authorization_code::mint_code, resolve_scope};
use crate::{
    AuthServer, Client, GrantType, OAuthError,
    error::ErrorKind,
    scope::Scope,
    store::{
        CodeChallengeMethod,
        records::{RecordKind, RecordType, Records},
    },
    token::TokenHash,
    wire::{form::Form, uri},
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
    state: Option<String>,
    code_challenge: Option<(String, String)>,
    /// The hash of the user agent's binding cookie.
    binding: String,
    /// Pushed by its client (RFC 9126) and not yet resumed by a browser: usable only as a
    /// `request_uri`, never as a completion handle.
    #[serde(default)]
    pushed: bool,
    created_at: u64,
    expires_at: u64,
}

impl std::fmt::Debug for PendingAuthorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingAuthorization")
            .field("client_id", &self.client_id)
            .field("redirect_uri", &self.redirect_uri)
            .field("scope", &self.scope)
            .field("state", &self.state.as_ref().map(|_| "…"))
            .field(
                "code_challenge_method",
                &self.code_challenge.as_ref().map(|(_, m)| m),
            )
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

    /// The client's `state`, returned to it verbatim.
    pub fn state(&self) -> Option<&str> {
        self.state.as_deref()
    }

    /// The PKCE method (`S256`, or `plain` where allowed), if the request carried a challenge.
    pub fn code_challenge_method(&self) -> Option<&str> {
        self.code_challenge.as_ref().map(|(_, m)| m.as_str())
    }

    /// When the request lapses (Unix seconds).
    pub fn expires_at(&self) -> u64 {
        self.expires_at
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

/// Kept as a short-lived record between the request and the decision (or, pushed, between PAR
/// and the browser's visit), under the hash of an unguessable handle, taken once.
impl RecordType for PendingAuthorization {
    const KIND: RecordKind = RecordKind::new("authz_request");

    fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }
}

/// Why an authorization request is refused, and how the refusal must travel.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// Shown to the user agent, never redirected: the client or its redirect URI is unknown.
    Page(OAuthError),
    /// Sent to the client at its validated redirect URI: the full URL, parameters included,
    /// and the error it carries.
    Redirect(String, OAuthError),
}

/// The parameters an authorization request may carry only once. A repeat of `client_id` or
/// `redirect_uri` is answered on a page; of the others, at the redirect URI.
const UNIQUE: [&str; 8] = [
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "request_uri",
];

/// Validate an authorization request. `repeated` names the parameters that appear more than
/// once. On success: the client and the request, not yet bound to a user agent.
pub(crate) async fn validate(
    server: &AuthServer,
    form: &Form,
    repeated: &[String],
) -> Result<(Arc<Client>, PendingAuthorization), Refusal> {
    // (1) The client.
    let client = named_client(server, form, repeated).await?;
    validate_for(server, client, form, repeated)
}

/// The client `client_id` names: present once and registered, or a page.
async fn named_client(
    server: &AuthServer,
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
    server
        .find_client(client_id)
        .await
        .map_err(|e| Refusal::Page(e.into()))?
        .ok_or_else(|| page("unknown client_id"))
}

/// Validate an authorization request of a client already known (the one named by `client_id`,
/// or the one authenticated at the pushed authorization request endpoint), from step (2) on.
pub(crate) fn validate_for(
    server: &AuthServer,
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
    let state = if repeats("state") {
        None
    } else {
        form.get("state").map(str::to_owned)
    };
    let back = |err: OAuthError| {
        let to = error_redirect(server, &redirect_uri, state.as_deref(), &err);
        Refusal::Redirect(to, err)
    };
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
    if !server.grant_allowed(&client, GrantType::AuthorizationCode) {
        return Err(back(OAuthError::unauthorized_client(
            "this client may not use the authorization code grant",
        )));
    }
    let scope = resolve_scope(server.config(), &client, form.get("scope")).map_err(back)?;
    let code_challenge = challenge(server, &client, form).map_err(back)?;
    Ok((
        Arc::clone(&client),
        PendingAuthorization {
            client_id: client.id().to_owned(),
            redirect_uri,
            redirect_uri_sent: presented.is_some(),
            scope: scope.as_str().to_owned(),
            state,
            code_challenge: code_challenge.map(|(c, m)| (c, m.as_str().to_owned())),
            binding: String::new(),
            pushed: false,
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
pub(crate) async fn resume_pushed(
    server: &AuthServer,
    form: &Form,
    repeated: &[String],
) -> Result<(Arc<Client>, PendingAuthorization), Refusal> {
    let page = |description: &'static str| Refusal::Page(OAuthError::invalid_request(description));
    let client = named_client(server, form, repeated).await?;
    if repeated.iter().any(|r| r == "request_uri") {
        return Err(page("request_uri is repeated"));
    }
    let handle = form
        .get("request_uri")
        .and_then(|u| u.strip_prefix(REQUEST_URI_PREFIX))
        .ok_or_else(|| page("request_uri was not issued by this server"))?;
    let hash = TokenHash::of(handle);
    let requests = Records::<PendingAuthorization>::new(&server.inner.store);
    let unusable = || page("request_uri is unknown, expired, used, or another client's");
    // Looked at first, taken only if it is this client's: another client cannot use it up.
    let found = requests
        .get(&hash, server.now())
        .await
        .map_err(|e| Refusal::Page(e.into()))?
        .filter(|r| r.pushed && r.client_id == client.id())
        .ok_or_else(unusable)?;
    match requests.take(&hash, server.now()).await {
        Ok(Some(_)) => Ok((client, found)),
        Ok(None) => Err(unusable()),
        Err(e) => Err(Refusal::Page(e.into())),
    }
}

/// A client (or the server) that requires pushed requests refuses any other, at the client's
/// validated redirect URI.
pub(crate) fn check_push_required(
    server: &AuthServer,
    client: &Client,
    request: &PendingAuthorization,
) -> Result<(), Refusal> {
    if server.config().require_pushed_authorization_requests
        || client.requires_pushed_authorization_requests()
    {
        let err = OAuthError::invalid_request(
            "this client must push its authorization requests (RFC 9126)",
        );
        let to = error_redirect(
            server,
            &request.redirect_uri,
            request.state.as_deref(),
            &err,
        );
        return Err(Refusal::Redirect(to, err));
    }
    Ok(())
}

/// The PKCE challenge (RFC 7636 §4.3), or whether its absence is allowed.
fn challenge(
    server: &AuthServer,
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
        let pkce = &server.config().pkce;
        let required = if client.is_confidential() {
            pkce.required_for_confidential_clients
        } else {
            pkce.required_for_public_clients
        };
        return if required {
            Err(OAuthError::invalid_request("code_challenge is required"))
        } else {
            Ok(None)
        };
    };
    super::authorization_code::checked_challenge(server, challenge, method).map(Some)
}

/// The redirect carrying `err` to the client (RFC 6749 §4.1.2.1, RFC 9207 `iss`).
pub(crate) fn error_redirect(
    server: &AuthServer,
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
    if let Some(iss) = &server.config().issuer {
        params.push(("iss", iss));
    }
    uri::with_query(redirect_uri, &params)
}

/// The resource owner approved: mint the code, bound to everything the request said, and answer
/// with the redirect that carries it (RFC 6749 §4.1.2, RFC 9207). `scope` narrows the request's;
/// wider is `invalid_scope`.
pub(crate) async fn approve(
    server: &AuthServer,
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
        server,
        client,
        subject,
        request
            .redirect_uri_sent
            .then(|| request.redirect_uri.clone()),
        granted,
        challenge,
    )
    .await?;
    let mut params = vec![("code", code.as_str())];
    if let Some(s) = &request.state {
        params.push(("state", s));
    }
    if let Some(iss) = &server.config().issuer {
        params.push(("iss", iss));
    }
    Ok(uri::with_query(&request.redirect_uri, &params))
}

/// The resource owner (or the app) denied: `access_denied` at the redirect URI.
pub(crate) fn deny(server: &AuthServer, request: &PendingAuthorization) -> String {
    let err = OAuthError::new(
        ErrorKind::AccessDenied,
        "the resource owner denied the request",
    );
    error_redirect(
        server,
        &request.redirect_uri,
        request.state.as_deref(),
        &err,
    )
}
