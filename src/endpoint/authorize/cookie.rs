//! The cookie that binds a pending request to the user agent that started it: a random value,
//! `HttpOnly`, `SameSite=Lax`, and `Secure` unless the issuer is plain `http` on a loopback host.

use http::{
    HeaderMap, HeaderValue,
    header::{self, SET_COOKIE},
};

use crate::{endpoint::response::EndpointResponse, server::AuthServer, token};

/// The cookie that binds a pending request to the user agent that started it, on a plain-http
/// loopback issuer (a development server).
pub const AGENT_COOKIE: &str = "tower_oauth2_agent";

/// The same cookie wherever it is `Secure` (every issuer but plain-http loopback): with the
/// `__Host-` prefix, a browser takes it only from this very host, over https, for the whole
/// path, so a sibling subdomain can neither plant nor shadow it.
pub const SECURE_AGENT_COOKIE: &str = "__Host-tower_oauth2_agent";

/// The binding cookie's name for this server.
fn name(server: &AuthServer) -> &'static str {
    if secure(server) {
        SECURE_AGENT_COOKIE
    } else {
        AGENT_COOKIE
    }
}

/// Whether the cookie is `Secure`: unless the issuer is plain `http` on a loopback host.
fn secure(server: &AuthServer) -> bool {
    let issuer = server.config().issuer.as_deref().unwrap_or("");
    !["http://127.0.0.1", "http://[::1]", "http://localhost"]
        .iter()
        .any(|p| {
            issuer
                .strip_prefix(p)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/']))
        })
}

/// The binding cookie's value, when the request has exactly one well-formed one (under this
/// server's name for it).
pub(super) fn agent(server: &AuthServer, headers: &HeaderMap) -> Option<String> {
    let wanted = name(server);
    let mut found = None;
    for value in headers.get_all(header::COOKIE) {
        for pair in value.to_str().ok()?.split(';') {
            if let Some((name, v)) = pair.trim().split_once('=') {
                if name == wanted {
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

pub(super) fn set_agent(server: &AuthServer, res: &mut EndpointResponse, agent: &str) {
    let secure = if secure(server) { "; Secure" } else { "" };
    let name = name(server);
    // `__Host-`: Secure, Path=/ and no Domain, as the prefix requires.
    let cookie = format!("{name}={agent}; Path=/; HttpOnly; SameSite=Lax{secure}");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().append(SET_COOKIE, v);
    }
}
