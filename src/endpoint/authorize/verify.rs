//! The device grant's verification page (RFC 8628 §3.3): the user enters the code the device
//! shows (or arrives with it, from `verification_uri_complete`); the request it names goes
//! through the same hand-off as an authorization request — bound to this browser, kept under
//! a single-use handle, decided by the app's [`AuthorizationHandler`](super::AuthorizationHandler)
//! (whose page shows the client and the code to compare with the device's screen, §5.4) and
//! completed with [`AuthServer::complete_authorization`]. The decision reaches the device at
//! its next poll. Wrong codes are bounded per browser and in all.

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header::CONTENT_TYPE};
use http_body::Body;
use http_body_util::Full;

use super::{
    AuthorizationContext, Interaction, cookie,
    page::{html_escape, page, with_page_headers},
};
use crate::{
    endpoint::{future::endpoint_service, response::EndpointResponse},
    error::{BoxError, ErrorKind, OAuthError},
    events::Event,
    grant::{
        PendingAuthorization,
        authorize::{self, Decision},
        device,
    },
    server::AuthServer,
    store::records::{Counter, Put, Record, RecordKey, RecordKind},
    token::{self, TokenHash},
    wire::form::Form,
};

/// Wrong codes entered by one user agent, in the current window.
const FAILED_PER_AGENT: RecordKind = RecordKind::new("device_failed_agent");
/// Wrong codes entered in all, in the current window.
const FAILED_IN_ALL: RecordKind = RecordKind::new("device_failed_all");
/// A user agent, or everyone, past the limit: no code is looked at until this lapses.
const BLOCKED: RecordKind = RecordKind::new("device_blocked");

/// The device grant's verification page (RFC 8628 §3.3), at `Config::device_verification_uri`:
/// GET shows the code form (or, with `user_code`, goes on at once), POST takes the form.
/// Built by [`AuthServer::device_verification_endpoint`].
#[derive(Clone, Debug)]
pub struct DeviceVerificationEndpoint {
    server: AuthServer,
}

impl DeviceVerificationEndpoint {
    pub(crate) fn new(server: AuthServer) -> Self {
        Self { server }
    }
}

endpoint_service!(DeviceVerificationEndpoint, |server, req| handle(
    server, req
));

/// A page of this endpoint's own: `title`, a message, and the code form.
fn code_page(status: StatusCode, message: &str, form: bool) -> EndpointResponse {
    let form = if form {
        "<form method=\"post\"><label>Code <input name=\"user_code\" id=\"user_code\" \
         autocomplete=\"off\" autocapitalize=\"characters\" spellcheck=\"false\" autofocus \
         placeholder=\"XXXX-XXXX\"></label> <button type=\"submit\" id=\"continue\">Continue</button></form>"
    } else {
        ""
    };
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Connect a device</title>\n\
         <style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}}\
         input{{font-size:1.4rem;letter-spacing:.15rem;width:10rem;text-transform:uppercase}}</style></head>\n\
         <body><h1>Connect a device</h1>\n<p id=\"message\">{}</p>\n{form}</body></html>\n",
        html_escape(message)
    );
    let mut res = Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = status;
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    with_page_headers(res)
}

/// After the decision: back to the device.
pub(super) fn decided_page(approved: bool) -> EndpointResponse {
    if approved {
        code_page(
            StatusCode::OK,
            "Done: the device is connected. You can return to it now.",
            false,
        )
    } else {
        code_page(
            StatusCode::OK,
            "The device was not connected. You can close this page.",
            false,
        )
    }
}

/// Apply the decision to the device request `user_code` names, and say so to the browser.
pub(super) async fn decide(
    server: &AuthServer,
    request: &PendingAuthorization,
    user_code: &str,
    decision: Decision,
) -> EndpointResponse {
    let approved = matches!(decision, Decision::Approve { .. });
    let event = match &decision {
        Decision::Approve { subject, .. } => Event::AuthorizationApproved {
            client_id: request.client_id().into(),
            subject: subject.as_str().into(),
        },
        _ => Event::AuthorizationDenied {
            client_id: request.client_id().into(),
        },
    };
    match device::decide(server.context(), user_code, decision).await {
        Ok(true) => {
            server.emit(event);
            decided_page(approved)
        }
        Ok(false) => page(
            server,
            &OAuthError::invalid_request("the device code expired or was already used"),
        ),
        Err(e) => page(server, &e),
    }
}

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
    let input = match super::front_channel_input(&server, &parts, body).await {
        Ok(input) => input,
        Err(res) => return res,
    };
    let form = match input.and_then(|b| Form::parse(&b).map_err(OAuthError::from)) {
        Ok(form) => form,
        Err(e) => return page(&server, &e),
    };
    let Some(typed) = form.get("user_code").filter(|c| !c.trim().is_empty()) else {
        return code_page(StatusCode::OK, "Enter the code shown on your device.", true);
    };
    // The browser's binding: its cookie if this server issued it, else a new one.
    let presented = cookie::agent(&server, &parts.headers);
    let (agent, new_cookie) = match authorize::user_agent(ctx, presented).await {
        Ok(found) => found,
        Err(e) => return page(&server, &e),
    };
    let mut res = verify(&server, &handler, &parts, &agent, new_cookie, typed).await;
    if new_cookie {
        cookie::set_agent(&server, &mut res, &agent);
    }
    res
}

/// The code entered: counted if wrong, else handed to the app's login and consent.
async fn verify(
    server: &AuthServer,
    handler: &std::sync::Arc<dyn super::AuthorizationHandler>,
    parts: &http::request::Parts,
    agent: &str,
    new_agent: bool,
    typed: &str,
) -> EndpointResponse {
    let ctx = server.context();
    let config = ctx.config();
    let window = config.device_code_lifetime.as_secs();
    let per_agent = Counter::new(&ctx.store, FAILED_PER_AGENT);
    let in_all = Counter::new(&ctx.store, FAILED_IN_ALL);
    let agent_id = TokenHash::of(agent);
    let all_id = TokenHash::of("all");
    let too_many = || {
        code_page(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many wrong codes. Wait a few minutes, then try again.",
            false,
        )
    };
    // Past a limit, no code is looked at until the window ends.
    let now = ctx.now();
    let blocked = async {
        for id in [&agent_id, &all_id] {
            if ctx
                .store
                .get_record(&RecordKey::new(BLOCKED, *id), now)
                .await?
                .is_some()
            {
                return Ok::<_, crate::error::StoreError>(true);
            }
        }
        Ok(false)
    };
    match blocked.await {
        Ok(true) => return too_many(),
        Ok(false) => {}
        Err(e) => return page(server, &e.into()),
    }
    // A new browser's cookie is remembered, so that its wrong codes are counted as its own.
    if new_agent {
        if let Err(e) = authorize::remember_agent(ctx, agent).await {
            return page(server, &e.into());
        }
    }
    let found = match device::find(ctx, typed).await {
        Ok(found) => found,
        Err(e) => return page(server, &e),
    };
    let Some(pending) = found else {
        let counted = async {
            let mine = per_agent.hit(&agent_id, window, now).await?;
            let all = in_all.hit(&all_id, window, now).await?;
            for (id, count, max) in [
                (&agent_id, mine, config.device_max_failed_entries_per_agent),
                (&all_id, all, config.device_max_failed_entries),
            ] {
                if count >= max {
                    let block = Record {
                        data: Vec::new().into(),
                        expires_at: now.saturating_add(window),
                    };
                    ctx.store
                        .put_record(&RecordKey::new(BLOCKED, *id), block, Put::Always, now)
                        .await?;
                }
            }
            Ok::<_, crate::error::StoreError>(
                mine >= config.device_max_failed_entries_per_agent
                    || all >= config.device_max_failed_entries,
            )
        };
        match counted.await {
            Ok(true) => return too_many(),
            Ok(false) => {}
            Err(e) => return page(server, &OAuthError::from(e)),
        }
        return code_page(
            StatusCode::BAD_REQUEST,
            "That code is not valid, or it expired. Check the code on your device and enter it again.",
            true,
        );
    };
    let client = match server.find_client(pending.client_id()).await {
        Ok(Some(client)) => client,
        Ok(None) => return page(server, &OAuthError::invalid_client("unknown client")),
        Err(e) => return page(server, &e),
    };
    let Some(user_code) = device::normalize_user_code(typed) else {
        return page(server, &OAuthError::bare(ErrorKind::ServerError));
    };
    let mut request = PendingAuthorization::for_device(
        pending.client_id(),
        pending.scope(),
        pending.resources(),
        user_code.clone(),
    );
    authorize::bind(ctx, &mut request, agent);
    let handle = token::generate();
    let app_ctx = AuthorizationContext {
        client,
        handle: handle.expose().to_owned(),
        request: request.clone(),
        uri: parts.uri.clone(),
        headers: parts.headers.clone(),
    };
    match handler.authorize(app_ctx).await {
        Interaction::Decided(decision) => decide(server, &request, &user_code, decision).await,
        Interaction::Respond(res) => match authorize::suspend(ctx, &request, &handle).await {
            Ok(()) => with_page_headers(res),
            Err(e) => page(server, &e),
        },
    }
}
