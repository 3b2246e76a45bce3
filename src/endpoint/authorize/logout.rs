//! The end-session endpoint (OpenID Connect RP-Initiated Logout 1.0): a client sends the user
//! here to sign out. The request is checked (the `id_token_hint` is an ID token of this
//! server's, expired or not; `post_logout_redirect_uri` is one the client registered, compared
//! exactly); unless the hint names a session this server knows, the user confirms first (so
//! that nobody can sign users out with a link); then the session's grants are revoked, the
//! app's [`LogoutHandler`](crate::openid::LogoutHandler) ends its own session, and the user
//! agent goes to the validated URI with `state`, or is told it is signed out.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header::CONTENT_TYPE};
use http_body::Body;
use http_body_util::Full;

use super::{
    cookie, front_channel_input,
    page::{html_escape, titled_page, with_page_headers},
    redirect,
};
use crate::{
    endpoint::{future::endpoint_service, response::EndpointResponse},
    error::{BoxError, OAuthError},
    events::Event,
    grant::{
        authorize,
        openid::{self, Logout},
    },
    openid::EndSession,
    server::AuthServer,
    token::{self, TokenHash},
    wire::form::Form,
};

/// `GET` and `POST` `/oauth/logout` (RP-Initiated Logout 1.0 §2). Built by
/// [`AuthServer::end_session_endpoint`].
#[derive(Clone, Debug)]
pub struct EndSessionEndpoint {
    server: AuthServer,
}

impl EndSessionEndpoint {
    pub(crate) fn new(server: AuthServer) -> Self {
        Self { server }
    }
}

endpoint_service!(EndSessionEndpoint, |server, req| handle(server, req));

/// The confirmation form's field that carries the waiting logout's handle.
const HANDLE: &str = "logout_handle";

async fn handle<B>(server: AuthServer, req: Request<B>) -> EndpointResponse
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let (parts, body) = req.into_parts();
    let ctx = server.context();
    if ctx.openid.is_none() {
        return error_page(
            &server,
            &OAuthError::invalid_request("this server does not speak OpenID Connect"),
        );
    }
    let input = match front_channel_input(&server, &parts, body).await {
        Ok(input) => input,
        Err(res) => return res,
    };
    let form = match input.and_then(|b| Form::parse(&b).map_err(OAuthError::from)) {
        Ok(form) => form,
        Err(e) => return error_page(&server, &e),
    };
    // The user's answer on the confirmation page, from the browser it was shown to.
    if parts.method == Method::POST {
        if let Some(handle) = form.get(HANDLE) {
            let gone = || {
                OAuthError::invalid_request(
                    "the logout request expired, was already answered, or was shown to another browser",
                )
            };
            let Some(agent) = cookie::agent(&server, &parts.headers) else {
                return error_page(&server, &gone());
            };
            let logout = match openid::resume_logout(ctx, &TokenHash::of(handle), &agent).await {
                Ok(Some(logout)) => logout,
                Ok(None) => return error_page(&server, &gone()),
                Err(e) => return error_page(&server, &e.into()),
            };
            if form.get("confirm") != Some("yes") {
                return message(
                    "Still signed in",
                    "You are still signed in. You can close this page.",
                );
            }
            return finish(&server, &parts, logout).await;
        }
    }
    let logout = match openid::validate_logout(ctx, &form).await {
        Ok(logout) => logout,
        Err(e) => return error_page(&server, &e),
    };
    if logout.identifies_session() {
        return finish(&server, &parts, logout).await;
    }
    // Ask first: a bare link must not sign anybody out. The answer must come from this browser
    // (its binding cookie, as for an authorization request).
    let presented = cookie::agent(&server, &parts.headers);
    let (agent, new_cookie) = match authorize::user_agent(ctx, presented).await {
        Ok(found) => found,
        Err(e) => return error_page(&server, &e),
    };
    if new_cookie {
        if let Err(e) = authorize::remember_agent(ctx, &agent).await {
            return error_page(&server, &e.into());
        }
    }
    let handle = token::generate();
    if let Err(e) = openid::suspend_logout(ctx, &handle.hash(), logout.clone(), &agent).await {
        return error_page(&server, &e);
    }
    let mut res = confirmation(&server, handle.expose(), &logout);
    if new_cookie {
        cookie::set_agent(&server, &mut res, &agent);
    }
    res
}

/// End the session: revoke its grants, let the app end its own, then go where the client asked
/// (validated) or say it is done.
async fn finish(
    server: &AuthServer,
    parts: &http::request::Parts,
    logout: Logout,
) -> EndpointResponse {
    let ctx = server.context();
    let revoked = match openid::revoke_for_logout(ctx, &logout).await {
        Ok(n) => n,
        Err(e) => return error_page(server, &e.into()),
    };
    let client_id: Option<Arc<str>> = logout.client_id.as_deref().map(Arc::from);
    let subject: Option<Arc<str>> = logout.subject.as_deref().map(Arc::from);
    let extra = match ctx.openid.as_ref().and_then(|o| o.logout.clone()) {
        Some(hook) => {
            hook.end_session(EndSession {
                subject: subject.clone(),
                session_id: logout.sid.clone(),
                client_id: client_id.clone(),
                headers: parts.headers.clone(),
            })
            .await
        }
        None => http::HeaderMap::new(),
    };
    ctx.emit(Event::LoggedOut {
        client_id,
        subject,
        revoked,
    });
    let mut res = match &logout.redirect {
        Some(to) => redirect(&parts.method, to),
        None => message("Signed out", "You are signed out. You can close this page."),
    };
    for (name, value) in &extra {
        res.headers_mut().append(name, value.clone());
    }
    res
}

/// The page that asks the user to confirm (§2: the OP SHOULD ask when the hint does not
/// identify the session). Posted back to the same URL (no `action`: wherever the app mounted
/// the endpoint) with the waiting logout's handle.
fn confirmation(server: &AuthServer, handle: &str, logout: &Logout) -> EndpointResponse {
    let issuer = server.config().issuer.as_deref().unwrap_or("this server");
    let client = logout
        .client_id
        .as_deref()
        .map(|c| {
            format!(
                " <small>(asked by <code id=client>{}</code>)</small>",
                html_escape(c)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign out</title>\n\
         <style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}}button{{padding:.5rem 1rem;margin-right:.5rem}}</style></head>\n\
         <body><h1>Sign out?</h1>\n<p>Sign out of <strong>{}</strong>?{client}</p>\n\
         <form method=\"post\">\n<input type=\"hidden\" name=\"{HANDLE}\" value=\"{}\">\n\
         <button type=\"submit\" name=\"confirm\" value=\"yes\" id=\"confirm\">Sign out</button>\n\
         <button type=\"submit\" name=\"confirm\" value=\"no\" id=\"cancel\">Stay signed in</button>\n</form></body></html>\n",
        html_escape(issuer),
        html_escape(handle),
    );
    html(StatusCode::OK, body)
}

/// The error page of a sign-out request (never a redirect).
fn error_page(server: &AuthServer, err: &OAuthError) -> EndpointResponse {
    titled_page(server, err, "This sign-out request cannot be completed")
}

/// A plain page saying `text`.
fn message(title: &str, text: &str) -> EndpointResponse {
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\n\
         <style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}}</style></head>\n\
         <body><h1 id=title>{t}</h1>\n<p>{}</p></body></html>\n",
        html_escape(text),
        t = html_escape(title),
    );
    html(StatusCode::OK, body)
}

fn html(status: StatusCode, body: String) -> EndpointResponse {
    let mut res = Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = status;
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    with_page_headers(res)
}
