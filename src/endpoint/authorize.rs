//! The authorization endpoint (RFC 6749 §3.1): it validates the request, keeps it in the token
//! store under a single-use handle bound to the user agent, and hands the decision to the app's
//! [`AuthorizationHandler`] — which approves at once (a session and a remembered consent),
//! denies, or shows its own login or consent page and later completes the handle with
//! [`AuthServer::complete_authorization`].
//!
//! ```
//! use tower_oauth2::{
//!     AuthServer, Client, GrantType, InMemoryClients, endpoint::{AuthorizationContext, Decision, Interaction},
//! };
//!
//! # fn main() -> Result<(), tower_oauth2::ConfigError> {
//! let server = AuthServer::builder()
//!     .clients(InMemoryClients::new().with(
//!         Client::public("spa").redirect_uri("http://127.0.0.1/callback").build()?,
//!     ))
//!     .configure(|c| c.issuer = Some("https://auth.example.com".into()))
//!     // An app with its own session would look at `ctx.headers()` here.
//!     .authorization_handler(|ctx: AuthorizationContext| async move {
//!         let _ = ctx.request().scope();
//!         Interaction::Decided(Decision::approve("user-42"))
//!     })
//!     .build()?;
//! let endpoint = server.authorization_endpoint(); // route_service("/oauth/authorize", endpoint)
//! # let _ = endpoint;
//! # Ok(())
//! # }
//! ```
//!
//! Every answer carries `Cache-Control: no-store`; pages also forbid framing (RFC 6749 §10.13)
//! and referrers. The binding cookie is `HttpOnly`, `SameSite=Lax`, and `Secure` unless the
//! issuer is plain `http` on a loopback host.

use std::{
    convert::Infallible,
    sync::Arc,
    task::{Context, Poll},
};

use async_trait::async_trait;
use bytes::Bytes;
use http::{
    HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri,
    header::{self, CACHE_CONTROL, CONTENT_TYPE, LOCATION, PRAGMA, SET_COOKIE},
};
use http_body::Body;
use http_body_util::Full;

use super::{ResponseFuture, body, response::EndpointResponse};
use crate::{
    AuthServer, OAuthError,
    error::{BoxError, ErrorKind},
    events::Event,
    grant::{
        PendingAuthorization,
        authorize::{self, Refusal},
    },
    scope::Scope,
    store::records::Records,
    token::{self, TokenHash},
    wire::form::Form,
};

/// The cookie that binds a pending request to the user agent that started it.
pub const AGENT_COOKIE: &str = "tower_oauth2_agent";

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

/// The app's answer to a new authorization request.
#[derive(Debug)]
pub enum Interaction {
    /// Decided at once (a session and a remembered consent, or a policy).
    Decided(Decision),
    /// A page of the app's own (login, consent) to show; it completes the request later with
    /// [`AuthServer::complete_authorization`] and the [handle](AuthorizationContext::handle).
    /// The endpoint adds its security headers and the binding cookie.
    Respond(EndpointResponse),
}

/// A validated authorization request as the app's [`AuthorizationHandler`] sees it.
#[derive(Debug, Clone)]
pub struct AuthorizationContext {
    handle: String,
    request: PendingAuthorization,
    uri: Uri,
    headers: HeaderMap,
}

impl AuthorizationContext {
    /// The single-use handle that completes this request: put it in the login or consent form
    /// (it is worthless without the user agent's binding cookie).
    pub fn handle(&self) -> &str {
        &self.handle
    }

    /// The validated request.
    pub fn request(&self) -> &PendingAuthorization {
        &self.request
    }

    /// The request's URI, as received.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// The request's headers, for the app's own session cookie.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }
}

/// The app's part of the authorization endpoint: who the resource owner is and what they
/// allow. An async closure `Fn(AuthorizationContext) -> impl Future<Output = Interaction>` is
/// one.
#[async_trait]
pub trait AuthorizationHandler: Send + Sync + 'static {
    /// Decide, or show a page that will decide later.
    async fn authorize(&self, ctx: AuthorizationContext) -> Interaction;

    /// The page for a request that cannot be answered at the client's redirect URI (unknown
    /// client or redirect URI, a handle that lapsed). `None` (the default) for the built-in one.
    fn error_page(&self, _error: &OAuthError) -> Option<EndpointResponse> {
        None
    }
}

#[async_trait]
impl<F, Fut> AuthorizationHandler for F
where
    F: Fn(AuthorizationContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Interaction> + Send,
{
    async fn authorize(&self, ctx: AuthorizationContext) -> Interaction {
        self(ctx).await
    }
}

/// The authorization endpoint (RFC 6749 §3.1): GET and POST. Built by
/// [`AuthServer::authorization_endpoint`].
#[derive(Clone, Debug)]
pub struct AuthorizationEndpoint {
    server: AuthServer,
}

impl AuthorizationEndpoint {
    pub(crate) fn new(server: AuthServer) -> Self {
        Self { server }
    }
}

super::endpoint_service!(AuthorizationEndpoint, |server, req| handle(server, req));

async fn handle<B>(server: AuthServer, req: Request<B>) -> EndpointResponse
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let (parts, body) = req.into_parts();
    let Some(handler) = server.inner.authorization.clone() else {
        return page(&server, &OAuthError::bare(ErrorKind::ServerError));
    };
    let input = match parts.method {
        Method::GET => Ok(Bytes::copy_from_slice(
            parts.uri.query().unwrap_or("").as_bytes(),
        )),
        Method::POST => {
            body::read_form_bytes(&parts.headers, body, server.config().max_body_bytes).await
        }
        _ => {
            let mut res = page(
                &server,
                &OAuthError::new(ErrorKind::MethodNotAllowed, "use GET or POST"),
            );
            *res.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            res.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
            return res;
        }
    };
    let parsed = input.and_then(|b| Form::parse_with_repeats(&b).map_err(OAuthError::from));
    let (form, repeated) = match parsed {
        Ok(p) => p,
        Err(e) => return refused(&server, None, &e, page(&server, &e)),
    };
    let client_id = form.get("client_id").map(Arc::<str>::from);
    let validated = if form.get("request_uri").is_some() {
        authorize::resume_pushed(&server, &form, &repeated).await
    } else {
        match authorize::validate(&server, &form, &repeated).await {
            Ok((client, request)) => authorize::check_push_required(&server, &client, &request)
                .map(|()| (client, request)),
            Err(e) => Err(e),
        }
    };
    let (_, mut request) = match validated {
        Ok(v) => v,
        Err(Refusal::Page(e)) => return refused(&server, None, &e, page(&server, &e)),
        Err(Refusal::Redirect(to, error)) => {
            let error = error.code();
            server.emit(Event::AuthorizationFailed { client_id, error });
            return redirect(&parts.method, &to);
        }
    };
    // The user agent's binding: its cookie if it has one, or a new one set below.
    let existing = agent_cookie(&parts.headers);
    let agent = existing
        .clone()
        .unwrap_or_else(|| token::generate().expose().to_owned());
    let now = server.now();
    let lifetime = server.config().authorization_request_lifetime.as_secs();
    request.bind(&agent, now, now.saturating_add(lifetime));
    let handle = token::generate();
    let ctx = AuthorizationContext {
        handle: handle.expose().to_owned(),
        request: request.clone(),
        uri: parts.uri.clone(),
        headers: parts.headers.clone(),
    };
    let mut res = match handler.authorize(ctx).await {
        // Decided at once (a session and a remembered consent): nothing to keep, no store
        // round trip; the handle was never shown to anyone.
        Interaction::Decided(decision) => answer(&server, &request, decision, &parts.method).await,
        // A page that will complete the request later: keep it under the handle first.
        Interaction::Respond(res) => {
            let requests = Records::<PendingAuthorization>::new(&server.inner.store);
            let id = handle.hash();
            match requests.put(&id, &request, request.expires_at(), now).await {
                Ok(()) => with_page_headers(res),
                Err(e) => page(&server, &OAuthError::from(e)),
            }
        }
    };
    if existing.is_none() {
        set_agent_cookie(&server, &mut res, &agent);
    }
    res
}

/// Complete a pending request (see [`AuthServer::complete_authorization`]).
pub(crate) async fn complete(
    server: &AuthServer,
    handle: &str,
    headers: &HeaderMap,
    decision: Decision,
) -> EndpointResponse {
    let Some(agent) = agent_cookie(headers) else {
        let e = OAuthError::invalid_request("this browser did not start the authorization request");
        return page(server, &e);
    };
    finish(server, handle, &agent, decision, &Method::POST).await
}

/// The pending request for `handle`, if it is still pending and bound to this user agent.
pub(crate) async fn pending(
    server: &AuthServer,
    handle: &str,
    headers: &HeaderMap,
) -> Result<Option<PendingAuthorization>, crate::StoreError> {
    let Some(agent) = agent_cookie(headers) else {
        return Ok(None);
    };
    let requests = Records::<PendingAuthorization>::new(&server.inner.store);
    let found = requests.get(&TokenHash::of(handle), server.now()).await?;
    Ok(found.filter(|r| r.bound_to(&agent)))
}

/// Take the pending request (once, and only for the agent it is bound to) and answer it.
async fn finish(
    server: &AuthServer,
    handle: &str,
    agent: &str,
    decision: Decision,
    method: &Method,
) -> EndpointResponse {
    let gone =
        || OAuthError::invalid_request("the authorization request expired or was already used");
    let hash = TokenHash::of(handle);
    let requests = Records::<PendingAuthorization>::new(&server.inner.store);
    // Found and checked first, taken only if this agent may: someone else's attempt with a
    // stolen handle must not use up the real user's request.
    let request = match requests.get(&hash, server.now()).await {
        Ok(found) => found,
        Err(e) => return page(server, &OAuthError::from(e)),
    };
    let Some(request) = request.filter(|r| r.bound_to(agent)) else {
        return refused(server, None, &gone(), page(server, &gone()));
    };
    match requests.take(&hash, server.now()).await {
        Ok(Some(_)) => answer(server, &request, decision, method).await,
        Ok(None) => refused(server, None, &gone(), page(server, &gone())),
        Err(e) => page(server, &OAuthError::from(e)),
    }
}

/// Answer a validated request with the decision made about it.
async fn answer(
    server: &AuthServer,
    request: &PendingAuthorization,
    decision: Decision,
    method: &Method,
) -> EndpointResponse {
    let client_id: Arc<str> = Arc::from(request.client_id());
    match decision {
        Decision::Approve { subject, scope } => {
            match authorize::approve(server, request, &subject, scope.as_ref()).await {
                Ok(to) => {
                    server.emit(Event::AuthorizationApproved {
                        client_id,
                        subject: Arc::from(subject),
                    });
                    redirect(method, &to)
                }
                // The store failed: the client can retry from the start.
                Err(e) if e.kind() == ErrorKind::TemporarilyUnavailable => page(server, &e),
                Err(e) => {
                    let to = authorize::error_redirect(
                        server,
                        request.redirect_uri(),
                        request.state(),
                        &e,
                    );
                    refused(server, Some(client_id), &e, redirect(method, &to))
                }
            }
        }
        Decision::Deny => {
            server.emit(Event::AuthorizationDenied { client_id });
            redirect(method, &authorize::deny(server, request))
        }
    }
}

fn refused(
    server: &AuthServer,
    client_id: Option<Arc<str>>,
    err: &OAuthError,
    res: EndpointResponse,
) -> EndpointResponse {
    server.emit(Event::AuthorizationFailed {
        client_id,
        error: err.code(),
    });
    res
}

/// A redirect to an already validated URI: 302 after a GET, 303 after a POST (so the browser
/// does not repeat the POST at the client).
fn redirect(method: &Method, to: &str) -> EndpointResponse {
    let mut res = Response::new(Full::new(Bytes::new()));
    *res.status_mut() = if *method == Method::POST {
        StatusCode::SEE_OTHER
    } else {
        StatusCode::FOUND
    };
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(to) {
        h.insert(LOCATION, v);
    }
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}

/// The error page: the app's, if its handler renders one, or the built-in one — the error,
/// plainly, with no link back to the client.
fn page(server: &AuthServer, err: &OAuthError) -> EndpointResponse {
    if let Some(cause) = err.store_error() {
        tracing::warn!(error = %cause, "token store failure at the authorization endpoint");
    }
    if let Some(res) = server
        .inner
        .authorization
        .as_ref()
        .and_then(|h| h.error_page(err))
    {
        return with_page_headers(res);
    }
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Authorization error</title>\n<style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem}}</style></head>\n<body><h1>This authorization request cannot be completed</h1>\n<p><code>{}</code>: {}</p>\n<p>Return to the application you came from and try again.</p></body></html>\n",
        html_escape(err.code()),
        html_escape(err.description().unwrap_or("")),
    );
    let mut res = Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = match err.kind() {
        ErrorKind::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    with_page_headers(res)
}

/// What every page of the endpoint carries: not cached, not framed, no referrer.
fn with_page_headers(mut res: EndpointResponse) -> EndpointResponse {
    let h = res.headers_mut();
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("frame-ancestors 'none'"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}

/// Escape text for HTML element content and attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The binding cookie's value, when the request has exactly one well-formed one.
fn agent_cookie(headers: &HeaderMap) -> Option<String> {
    let mut found = None;
    for value in headers.get_all(header::COOKIE) {
        for pair in value.to_str().ok()?.split(';') {
            if let Some((name, v)) = pair.trim().split_once('=') {
                if name == AGENT_COOKIE {
                    if found.is_some() {
                        return None;
                    }
                    found = Some(v.to_owned());
                }
            }
        }
    }
    found.filter(|v| token::is_b64token(v) && v.len() >= 43)
}

fn set_agent_cookie(server: &AuthServer, res: &mut EndpointResponse, agent: &str) {
    let issuer = server.config().issuer.as_deref().unwrap_or("");
    let loopback_http = ["http://127.0.0.1", "http://[::1]", "http://localhost"]
        .iter()
        .any(|p| {
            issuer
                .strip_prefix(p)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/']))
        });
    let secure = if loopback_http { "" } else { "; Secure" };
    let cookie = format!("{AGENT_COOKIE}={agent}; Path=/; HttpOnly; SameSite=Lax{secure}");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().append(SET_COOKIE, v);
    }
}

/// The pushed authorization request endpoint's part (RFC 9126 §2), after the client has
/// authenticated: validate as the authorization endpoint does, with every error as JSON, keep
/// the request, and answer its `request_uri`.
pub(crate) async fn push(
    server: &AuthServer,
    client: &Arc<crate::Client>,
    form: &Form,
) -> Result<EndpointResponse, OAuthError> {
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
        authorize::validate_for(server, Arc::clone(client), form, &[]).map_err(|r| match r {
            Refusal::Page(e) | Refusal::Redirect(_, e) => e,
        })?;
    let now = server.now();
    let lifetime = server
        .config()
        .pushed_authorization_request_lifetime
        .as_secs();
    request.push(now, now.saturating_add(lifetime));
    let handle = token::generate();
    Records::<PendingAuthorization>::new(&server.inner.store)
        .put(&handle.hash(), &request, request.expires_at(), now)
        .await?;
    let body = serde_json::json!({
        "request_uri": format!("{}{}", authorize::REQUEST_URI_PREFIX, handle.expose()),
        "expires_in": lifetime,
    });
    Ok(super::response::json(
        StatusCode::CREATED,
        super::response::to_json(&body),
    ))
}
