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
//! and referrers. The binding cookie is `HttpOnly`, `SameSite=Lax`, and `Secure` with the
//! `__Host-` prefix ([`SECURE_AGENT_COOKIE`]) unless the issuer is plain `http` on a loopback
//! host ([`AGENT_COOKIE`]). It binds a request only when this server issued its value (a
//! short-lived record of each binding a waiting request used); any other value gets a new one.
//!
#![doc = include_str!("../../../docs/authorization.md")]

mod cookie;
pub(crate) mod handler;
mod logout;
mod page;
mod verify;

use std::sync::Arc;

use bytes::Bytes;
use http::{
    HeaderMap, HeaderValue, Method, Request, Response, StatusCode,
    header::{self, CACHE_CONTROL, LOCATION, PRAGMA},
};
use http_body::Body;
use http_body_util::Full;

use self::page::{page, with_page_headers};
pub use self::{
    cookie::{AGENT_COOKIE, SECURE_AGENT_COOKIE},
    handler::{AuthorizationContext, AuthorizationHandler, Interaction},
    logout::EndSessionEndpoint,
    page::html_escape,
    verify::DeviceVerificationEndpoint,
};
use super::{body, future::endpoint_service, response::EndpointResponse};
pub use crate::grant::authorize::Decision;
use crate::{
    error::{BoxError, ErrorKind, OAuthError, StoreError},
    events::Event,
    grant::{
        PendingAuthorization,
        authorize::{self, Answer, Refusal},
    },
    server::AuthServer,
    token,
    wire::form::Form,
};

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

endpoint_service!(AuthorizationEndpoint, |server, req| handle(server, req));

async fn handle<B>(server: AuthServer, req: Request<B>) -> EndpointResponse
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let (parts, body) = req.into_parts();
    let ctx = server.context();
    let Some(handler) = server.inner.authorization.clone() else {
        return page(&server, &OAuthError::bare(ErrorKind::ServerError));
    };
    let input = match front_channel_input(&server, &parts, body).await {
        Ok(input) => input,
        Err(res) => return res,
    };
    let parsed = input.and_then(|b| Form::parse_with_repeats(&b).map_err(OAuthError::from));
    let (form, repeated) = match parsed {
        Ok(p) => p,
        Err(e) => {
            ctx.emit(Event::AuthorizationFailed {
                client_id: None,
                error: e.code(),
            });
            return page(&server, &e);
        }
    };
    let mut request = match authorize::validate_request(ctx, &form, &repeated).await {
        Ok(request) => request,
        Err(Refusal::Page(e)) => return page(&server, &e),
        Err(Refusal::Redirect(to, _)) => return redirect(&parts.method, &to),
    };
    // The user agent's binding: its cookie if it has one, or a new one set below.
    let presented = cookie::agent(&server, &parts.headers);
    let (agent, new_cookie) = match authorize::user_agent(ctx, presented).await {
        Ok(found) => found,
        Err(e) => return page(&server, &e),
    };
    authorize::bind(ctx, &mut request, &agent);
    // The client again, for the app's page (validation found it a moment ago).
    let client = match server.find_client(request.client_id()).await {
        Ok(Some(client)) => client,
        Ok(None) => return page(&server, &OAuthError::invalid_client("unknown client")),
        Err(e) => return page(&server, &e),
    };
    let handle = token::generate();
    let app_ctx = AuthorizationContext {
        client,
        handle: handle.expose().to_owned(),
        request: request.clone(),
        uri: parts.uri.clone(),
        headers: parts.headers.clone(),
    };
    let mut res = match handler.authorize(app_ctx).await {
        // Decided at once (a session and a remembered consent): nothing to keep, no store
        // round trip; the handle was never shown to anyone.
        Interaction::Decided(decision) => {
            let answer = authorize::decide(ctx, &request, decision).await;
            answered(&server, answer, &parts.method)
        }
        // OpenID Connect Core §3.1.2.1: with `prompt=none` no page is shown; the app could not
        // decide at once, so the client hears `interaction_required`.
        Interaction::Respond(_) if request.openid().is_some_and(|o| o.prompt().none()) => {
            let answer = authorize::decide(ctx, &request, Decision::InteractionRequired).await;
            answered(&server, answer, &parts.method)
        }
        // A page that will complete the request later: keep it under the handle first.
        Interaction::Respond(res) => match authorize::suspend(ctx, &request, &handle).await {
            Ok(()) => with_page_headers(res),
            Err(e) => page(&server, &e),
        },
    };
    if new_cookie {
        cookie::set_agent(&server, &mut res, &agent);
    }
    res
}

/// What a front-channel page was sent: the query of a GET, the form body of a POST (capped);
/// any other method is answered 405 with `Allow: GET, POST`.
pub(super) async fn front_channel_input<B>(
    server: &AuthServer,
    parts: &http::request::Parts,
    body: B,
) -> Result<Result<Bytes, OAuthError>, EndpointResponse>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    match parts.method {
        Method::GET => Ok(Ok(Bytes::copy_from_slice(
            parts.uri.query().unwrap_or("").as_bytes(),
        ))),
        Method::POST => {
            Ok(body::read_form_bytes(&parts.headers, body, server.config().max_body_bytes).await)
        }
        _ => {
            let mut res = page(
                server,
                &OAuthError::new(ErrorKind::MethodNotAllowed, "use GET or POST"),
            );
            *res.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            res.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
            Err(res)
        }
    }
}

/// The app's page completes what the authorization endpoint suspended.
impl AuthServer {
    /// Complete the pending authorization request `handle` with the resource owner's decision,
    /// from the app's login or consent form: the answer to send the browser — the redirect to
    /// the client (with `code` or `access_denied`, `state` and `iss`), or an error page when the
    /// handle is unknown, used, lapsed, or was started by another browser. `headers` are the
    /// form post's, which carry the binding cookie.
    pub async fn complete_authorization(
        &self,
        handle: &str,
        headers: &http::HeaderMap,
        decision: Decision,
    ) -> EndpointResponse {
        complete(self, handle, headers, decision).await
    }

    /// The pending request `handle`, while it is pending and bound to this browser (`headers`
    /// carry the binding cookie): for re-rendering a login page after a wrong password.
    pub async fn pending_authorization(
        &self,
        handle: &str,
        headers: &http::HeaderMap,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        pending(self, handle, headers).await
    }
}

/// Complete a pending request (see [`AuthServer::complete_authorization`]): take it (once, and
/// only for the user agent it is bound to) and answer it.
async fn complete(
    server: &AuthServer,
    handle: &str,
    headers: &HeaderMap,
    decision: Decision,
) -> EndpointResponse {
    let Some(agent) = cookie::agent(server, headers) else {
        let e = OAuthError::invalid_request("this browser did not start the authorization request");
        return page(server, &e);
    };
    let ctx = server.context();
    match authorize::resume(ctx, handle, &agent).await {
        // A device request (RFC 8628): the decision goes to the device, the browser is told.
        Ok(request) if request.device_code().is_some() => {
            let code = request.device_code().unwrap_or_default().to_owned();
            verify::decide(server, &request, &code, decision).await
        }
        Ok(request) => {
            let answer = authorize::decide(ctx, &request, decision).await;
            answered(server, answer, &Method::POST)
        }
        Err(e) => page(server, &e),
    }
}

/// The pending request for `handle`, if it is still pending and bound to this user agent.
async fn pending(
    server: &AuthServer,
    handle: &str,
    headers: &HeaderMap,
) -> Result<Option<PendingAuthorization>, StoreError> {
    match cookie::agent(server, headers) {
        Some(agent) => authorize::peek(server.context(), handle, &agent).await,
        None => Ok(None),
    }
}

/// The pushed authorization request endpoint's part (RFC 9126 §2), after the client has
/// authenticated: the request validated and kept by the pipeline, answered with its
/// `request_uri` (201).
pub(crate) async fn push(
    server: &AuthServer,
    client: &Arc<crate::client::Client>,
    form: &Form,
) -> Result<EndpointResponse, OAuthError> {
    let (handle, lifetime) = authorize::push(server.context(), client, form).await?;
    let body = serde_json::json!({
        "request_uri": format!("{}{}", authorize::REQUEST_URI_PREFIX, handle.expose()),
        "expires_in": lifetime,
    });
    Ok(super::response::json(
        StatusCode::CREATED,
        super::response::to_json(&body),
    ))
}

/// The answer as the user agent gets it: the redirect, or the error page.
fn answered(server: &AuthServer, answer: Answer, method: &Method) -> EndpointResponse {
    match answer {
        Answer::Redirect(to) => redirect(method, &to),
        Answer::Page(e) => page(server, &e),
    }
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
