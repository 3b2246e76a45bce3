//! Client authentication at the token, revocation and introspection endpoints (RFC 6749 §2.3):
//! `client_secret_basic`, `client_secret_post`, and public clients (`none`).

use std::sync::Arc;

use base64::{Engine, engine::general_purpose::STANDARD};
use http::{HeaderMap, header::AUTHORIZATION};
use sha2::{Digest, Sha256};

use crate::{
    client::Client,
    error::ErrorKind,
    error::OAuthError,
    events::{ClientAuthFailure, Event},
    server::AuthServer,
    wire::{
        form::{Form, decode},
        header::{single, split_scheme},
    },
};

/// Credentials as presented, before they are checked.
pub(crate) enum Presented {
    /// RFC 6749 §2.3.1 HTTP Basic, id and secret form-urlencoded inside.
    Basic { id: String, secret: Option<String> },
    /// Id (and secret, for `client_secret_post`) in the body.
    Body { id: String, secret: Option<String> },
}

/// Whether the request tried HTTP authentication (so a 401 must carry a Basic challenge).
pub(crate) fn attempted_http_auth(headers: &HeaderMap) -> bool {
    headers.contains_key(AUTHORIZATION)
}

pub(crate) fn presented(
    server: &AuthServer,
    headers: &HeaderMap,
    form: &Form,
) -> Result<Presented, OAuthError> {
    let body_id = form.get("client_id");
    let body_secret = form.get("client_secret");
    let Some(header) = single(headers, AUTHORIZATION, "Authorization")? else {
        return match (body_id, body_secret) {
            (Some(id), secret) => Ok(Presented::Body {
                id: id.to_owned(),
                secret: secret.map(str::to_owned),
            }),
            (None, Some(_)) => Err(OAuthError::invalid_request(
                "client_secret without client_id",
            )),
            (None, None) => Err(failed(
                server,
                None,
                ClientAuthFailure::Missing,
                "client authentication required",
            )),
        };
    };
    let malformed = || OAuthError::invalid_request("malformed Basic credentials");
    let value = header.to_str().map_err(|_| malformed())?;
    let (scheme, rest) = split_scheme(value);
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(failed(
            server,
            body_id,
            ClientAuthFailure::UnsupportedMethod,
            "unsupported client authentication method",
        ));
    }
    let decoded = STANDARD.decode(rest).map_err(|_| malformed())?;
    let colon = decoded
        .iter()
        .position(|&b| b == b':')
        .ok_or_else(malformed)?;
    // RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
    let id = decode(&decoded[..colon]).map_err(|_| malformed())?;
    let secret = decode(&decoded[colon + 1..]).map_err(|_| malformed())?;
    if id.is_empty() {
        return Err(malformed());
    }
    // RFC 6749 §2.3: a client MUST NOT use more than one authentication method.
    if body_secret.is_some() {
        return Err(OAuthError::invalid_request(
            "more than one client authentication method",
        ));
    }
    if body_id.is_some_and(|b| b != id) {
        return Err(OAuthError::invalid_request(
            "client_id does not match the Authorization header",
        ));
    }
    Ok(Presented::Basic {
        id,
        secret: (!secret.is_empty()).then_some(secret),
    })
}

fn failed(
    server: &AuthServer,
    client_id: Option<&str>,
    reason: ClientAuthFailure,
    description: &'static str,
) -> OAuthError {
    server.emit(Event::ClientAuthenticationFailed {
        client_id: client_id.map(|s| s.chars().take(128).collect()),
        reason,
    });
    OAuthError::new(ErrorKind::InvalidClient, description)
}

/// Authenticate the client of a request.
pub(crate) async fn authenticate(
    server: &AuthServer,
    headers: &HeaderMap,
    form: &Form,
) -> Result<Arc<Client>, OAuthError> {
    let (id, secret) = match presented(server, headers, form)? {
        Presented::Basic { id, secret } | Presented::Body { id, secret } => (id, secret),
    };
    let Some(client) = server.find_client(&id).await? else {
        // Spend the work a known client's check costs, so timing does not reveal which exist.
        if let Some(s) = &secret {
            match server.inner.decoy_verifier.get() {
                Some(decoy) => {
                    std::hint::black_box(decoy.verify(s).await);
                }
                None => {
                    std::hint::black_box(Sha256::digest(s.as_bytes()));
                }
            }
        }
        return Err(failed(
            server,
            Some(&id),
            ClientAuthFailure::UnknownClient,
            "client authentication failed",
        ));
    };
    if let Some(verifier) = client.custom_verifier() {
        server
            .inner
            .decoy_verifier
            .get_or_init(|| Arc::clone(verifier));
    }
    let failure = match &secret {
        Some(secret) if !client.verify_secret(secret).await => Some(ClientAuthFailure::WrongSecret),
        None if client.is_confidential() => Some(ClientAuthFailure::SecretRequired),
        _ => None,
    };
    if let Some(reason) = failure {
        return Err(failed(
            server,
            Some(&id),
            reason,
            "client authentication failed",
        ));
    }
    Ok(client)
}
