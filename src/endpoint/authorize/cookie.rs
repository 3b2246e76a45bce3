//! The cookie that binds a pending request to the user agent that started it: a random value,
//! `HttpOnly`, `SameSite=Lax`, and `Secure` unless the issuer is plain `http` on a loopback host.

use http::{
    HeaderMap, HeaderValue,
    header::{self, SET_COOKIE},
};

use crate::{endpoint::response::EndpointResponse, server::AuthServer, token};

/// The cookie that binds a pending request to the user agent that started it.
pub const AGENT_COOKIE: &str = "tower_oauth2_agent";

/// The binding cookie's value, when the request has exactly one well-formed one.
pub(super) fn agent(headers: &HeaderMap) -> Option<String> {
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

pub(super) fn set_agent(server: &AuthServer, res: &mut EndpointResponse, agent: &str) {
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
