//! The quickstart's demo login and consent page: what an app writes for the authorization
//! endpoint. The endpoint validates the request and keeps it; this page asks who the user is
//! and whether they approve, then completes the request with
//! `AuthServer::complete_authorization`. A real app would check its own session first and
//! approve at once when it has one and a remembered consent.

use std::sync::Arc;

use axum::{Form, Router, extract::State, http::HeaderMap, response::Response, routing::post};
use bytes::Bytes;
use http_body_util::Full;
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tower_oauth2::{
    AuthServer, Client, PendingAuthorization,
    endpoint::{AuthorizationContext, Decision, EndpointResponse, Interaction, html_escape},
    openid::{Authentication, ClaimsRequest},
    store::records::{Counter, RecordKind},
    token,
    user::{DemoUsers, UserAuthenticator},
};

/// Where the page's form is posted.
pub const LOGIN_PATH: &str = "/oauth/authorize/login";

/// The demo login: users to check (and to name on the page), and a secret for the form's CSRF
/// token.
pub struct DemoLogin {
    users: DemoUsers,
    accounts: String,
    csrf_key: String,
}

impl DemoLogin {
    /// A login for these demo accounts (user, password), which the page lists.
    pub fn new(accounts: &[(&str, &str)]) -> Arc<Self> {
        Arc::new(Self {
            users: Self::users_of(accounts),
            accounts: accounts
                .iter()
                .map(|(u, p)| {
                    format!(
                        "<code>{}</code> / <code>{}</code>",
                        html_escape(u),
                        html_escape(p)
                    )
                })
                .collect::<Vec<_>>()
                .join(", "),
            csrf_key: token::generate().expose().to_owned(),
        })
    }

    /// The accounts as users an `AuthServer` checks (for the password grant).
    pub fn users_of(accounts: &[(&str, &str)]) -> DemoUsers {
        accounts
            .iter()
            .fold(DemoUsers::new(), |users, (u, p)| users.with(*u, *p))
    }

    /// The authorization handler: always the login page (the demo keeps no session), so an
    /// OpenID request with `prompt=none` is answered `login_required` at once.
    pub fn handler(
        self: &Arc<Self>,
    ) -> impl Fn(AuthorizationContext) -> std::future::Ready<Interaction> + Send + Sync + 'static
    {
        let login = Arc::clone(self);
        move |ctx: AuthorizationContext| {
            let silent = ctx.request().openid().is_some_and(|o| o.prompt().none());
            std::future::ready(if silent {
                Interaction::Decided(Decision::LoginRequired)
            } else {
                Interaction::Respond(login.page(ctx.handle(), ctx.request(), ctx.client(), None))
            })
        }
    }

    /// The demo users' OpenID claims (what a user directory would answer): the server sends
    /// only those the granted scopes release (`profile`: the name; `email`: the email).
    // The MCP example shares this page and does not speak OpenID.
    #[allow(dead_code)]
    pub fn claims(request: ClaimsRequest) -> std::future::Ready<Map<String, Value>> {
        let (name, email) = match &*request.subject {
            "bshaffer" => ("Brent Shaffer", "bshaffer@example.com"),
            "test" => ("Test User", "test@example.com"),
            other => (other, ""),
        };
        let mut claims = Map::new();
        claims.insert("name".into(), name.into());
        claims.insert(
            "preferred_username".into(),
            request.subject.to_string().into(),
        );
        if !email.is_empty() {
            claims.insert("email".into(), email.into());
            claims.insert("email_verified".into(), true.into());
        }
        std::future::ready(claims)
    }

    /// The route that receives the page's form.
    pub fn routes(self: &Arc<Self>, server: AuthServer) -> Router {
        Router::new()
            .route(LOGIN_PATH, post(submit))
            .with_state((Arc::clone(self), server))
    }

    /// The form's CSRF token: tied to the handle by a key only this process knows.
    fn csrf(&self, handle: &str) -> String {
        let digest = Sha256::digest(format!("{}\n{handle}", self.csrf_key).as_bytes());
        digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
    }

    fn page(
        &self,
        handle: &str,
        request: &PendingAuthorization,
        client: &Client,
        error: Option<&str>,
    ) -> EndpointResponse {
        let scopes: String = request
            .scope()
            .iter()
            .map(|s| format!("<li><code>{}</code></li>", html_escape(s)))
            .collect();
        // RFC 8707: the resources the token will be for, when the request named some.
        let resources = request.resources();
        let resources = if resources.is_empty() {
            String::new()
        } else {
            let items: String = resources
                .iter()
                .map(|r| format!("<li><code>{}</code></li>", html_escape(r)))
                .collect();
            format!("<p>at these resources:</p>\n<ul id=resources>{items}</ul>")
        };
        let error = error
            .map(|e| format!("<p class=error role=alert>{}</p>", html_escape(e)))
            .unwrap_or_default();
        // A device (RFC 8628): the user checks the code against the device's screen (§5.4).
        let device = request
            .device_user_code()
            .map(|code| {
                format!(
                    "<p>Check that your device shows this code: <strong id=user-code>{}</strong>. \
                     If it does not, choose Deny.</p>\n",
                    html_escape(&code)
                )
            })
            .unwrap_or_default();
        let body = format!(
            r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in — tower-oauth2 quickstart</title>
<style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}}
label{{display:block;margin:.6rem 0}}input[type=text],input[type=password]{{width:100%;padding:.4rem}}
.error{{color:#b00020}}button{{padding:.5rem 1rem;margin-right:.5rem}}</style></head>
<body>
<h1>Sign in</h1>
<p><strong id=client>{client}</strong>{registered} asks to access your account with these scopes:</p>
<ul id=scopes>{scopes}</ul>
{resources}
{device}{error}
<form method="post" action="{action}">
<input type="hidden" name="handle" value="{handle}">
<input type="hidden" name="csrf" value="{csrf}">
<label>Username <input type="text" name="username" id="username" autocomplete="username" autofocus></label>
<label>Password <input type="password" name="password" id="password" autocomplete="current-password"></label>
<button type="submit" name="action" value="approve" id="approve">Sign in and approve</button>
<button type="submit" name="action" value="deny" id="deny">Deny</button>
</form>
<p><small>Demo users: {accounts}.</small></p>
</body></html>
"#,
            client = html_escape(client.name().unwrap_or(request.client_id())),
            // A client that registered itself, or is known by its metadata document, names
            // itself: say so, with where it comes from (the draft's phishing advice).
            registered = match (client.metadata_document_host(), client.registered_until()) {
                (Some(host), _) => format!(
                    " <small id=document>({} claiming this name, described by <code id=document-host>{}</code>)</small>",
                    if client.redirects_only_to_loopback() {
                        "<strong id=local-app>a local app on this computer</strong>"
                    } else {
                        "an app"
                    },
                    html_escape(host)
                ),
                (None, Some(_)) => format!(
                    " <small id=self-registered>(registered itself as <code>{}</code>; its name is its own claim)</small>",
                    html_escape(client.id())
                ),
                (None, None) => String::new(),
            },
            action = LOGIN_PATH,
            handle = html_escape(handle),
            csrf = self.csrf(handle),
            accounts = self.accounts,
        );
        let mut res = http::Response::new(Full::new(Bytes::from(body)));
        res.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/html; charset=utf-8"),
        );
        res
    }
}

#[derive(Deserialize)]
struct Submitted {
    handle: String,
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    action: String,
}

async fn submit(
    State((login, server)): State<(Arc<DemoLogin>, AuthServer)>,
    headers: HeaderMap,
    Form(form): Form<Submitted>,
) -> Response {
    use subtle::ConstantTimeEq;
    let csrf_ok = bool::from(
        login
            .csrf(&form.handle)
            .as_bytes()
            .ct_eq(form.csrf.as_bytes()),
    );
    if !csrf_ok {
        let mut res = http::Response::new(Full::new(Bytes::from_static(
            b"the form's CSRF token is wrong",
        )));
        *res.status_mut() = http::StatusCode::FORBIDDEN;
        res.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        return respond(secured(res));
    }
    if form.action != "approve" {
        return respond(
            server
                .complete_authorization(&form.handle, &headers, Decision::Deny)
                .await,
        );
    }
    // Still pending for this browser? If not, completing answers with the error page.
    let request = server
        .pending_authorization(&form.handle, &headers)
        .await
        .ok()
        .flatten();
    let client = match &request {
        Some(r) => server.client(r.client_id()).await.ok().flatten(),
        None => None,
    };
    let (Some(request), Some(client)) = (request, client) else {
        return respond(
            server
                .complete_authorization(&form.handle, &headers, Decision::Deny)
                .await,
        );
    };
    match login
        .users
        .authenticate(&form.username, &form.password, &client)
        .await
    {
        // Signed in just now, with a password (OpenID: `auth_time`, `amr`), in a new session
        // (`sid`: logout with this sign-in's ID token ends it without asking again).
        Ok(Some(subject)) => respond(
            server
                .complete_authorization(
                    &form.handle,
                    &headers,
                    Decision::approve(subject).authenticated(
                        Authentication::at(server.now())
                            .amr(["pwd"])
                            .session_id(&token::generate().expose()[..22]),
                    ),
                )
                .await,
        ),
        // Wrong credentials: the same page again, the request still pending — a few times.
        // The failures are counted per handle in the token store (a counter over its
        // short-lived records, so every instance counts the same); past the limit the request
        // is answered with access_denied and its handle is used up.
        _ => {
            let failures = Counter::new(server.store(), FAILED_LOGINS);
            let lifetime = server.config().authorization_request_lifetime.as_secs();
            let id = token::TokenHash::of(&form.handle);
            match failures.hit(&id, lifetime, server.now()).await {
                Ok(n) if n < MAX_FAILED_LOGINS => {
                    let mut res = login.page(
                        &form.handle,
                        &request,
                        &client,
                        Some("Wrong username or password."),
                    );
                    *res.status_mut() = http::StatusCode::UNAUTHORIZED;
                    respond(secured(res))
                }
                // Too many guesses, or the count is unavailable (fail closed).
                _ => respond(
                    server
                        .complete_authorization(&form.handle, &headers, Decision::Deny)
                        .await,
                ),
            }
        }
    }
}

/// Wrong passwords tried on one authorization request before it is denied.
const MAX_FAILED_LOGINS: u64 = 5;

/// The kind of the failed-login counters (one per pending request).
const FAILED_LOGINS: RecordKind = RecordKind::new("demo_failed_logins");

/// A page served by the app itself carries the headers the endpoint puts on its own.
fn secured(mut res: EndpointResponse) -> EndpointResponse {
    let h = res.headers_mut();
    for (name, value) in [
        ("cache-control", "no-store"),
        ("content-security-policy", "frame-ancestors 'none'"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
    ] {
        h.insert(name, http::HeaderValue::from_static(value));
    }
    res
}

fn respond(res: EndpointResponse) -> Response {
    res.map(axum::body::Body::new)
}
