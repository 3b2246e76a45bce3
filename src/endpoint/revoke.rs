//! RFC 7009 token revocation.
//!
//! **A deliberate deviation from RFC 7009 §2.1.** The RFC says the server refuses a request to
//! revoke a token that was not issued to the requesting client. This endpoint answers such a
//! request exactly as it answers an unknown or already-revoked token: 200, with no effect. A
//! refusal would tell any authenticated client that a token it holds (leaked, guessed, found in
//! a log) is live and belongs to someone else; the 200 tells it nothing, and the token stays
//! untouched either way. The `token_revoked` event is emitted only when something was revoked.

use std::sync::Arc;

use http::StatusCode;

use super::response::{self, EndpointResponse};
use crate::{
    client::Client,
    error::OAuthError,
    events::{Event, TokenKind},
    server::AuthServer,
    token::TokenHash,
    wire::form::Form,
};

/// Which kind to look up first: RFC 7009 §2.1, the hint is only an optimisation, and the search
/// extends to the other kind when the hinted one misses. Unknown hints are ignored.
pub(super) fn access_first(form: &Form) -> bool {
    form.get("token_type_hint") != Some("refresh_token")
}

pub(super) async fn revoke(
    server: &AuthServer,
    client: &Arc<Client>,
    form: &Form,
) -> Result<EndpointResponse, OAuthError> {
    let token = form
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("missing token"))?;
    let hash = TokenHash::of(token);
    let order = if access_first(form) {
        [TokenKind::Access, TokenKind::Refresh]
    } else {
        [TokenKind::Refresh, TokenKind::Access]
    };
    for kind in order {
        if revoke_kind(server, client, &hash, kind).await? {
            break;
        }
    }
    // RFC 7009 §2.2: 200 whether or not the token was valid, so the answer reveals nothing.
    Ok(response::json(StatusCode::OK, b"{}".to_vec()))
}

/// Returns whether the token was found as this kind (revoked or, if another client's, left).
async fn revoke_kind(
    server: &AuthServer,
    client: &Client,
    hash: &TokenHash,
    kind: TokenKind,
) -> Result<bool, OAuthError> {
    let store = &server.inner.store;
    let grant = match kind {
        TokenKind::Access => store.find_access_token(hash).await?.map(|r| r.grant),
        TokenKind::Refresh => store.find_refresh_token(hash).await?.map(|r| r.grant),
    };
    let Some(grant) = grant else {
        return Ok(false);
    };
    // RFC 7009 §2.1: only the client the token was issued to may revoke it.
    if *grant.client_id != *client.id() {
        return Ok(true);
    }
    let revoked = match kind {
        TokenKind::Access => store.revoke_access_token(hash).await?,
        TokenKind::Refresh => store.revoke_grant(grant.id).await?,
    };
    if revoked {
        server.emit(Event::TokenRevoked {
            grant_id: grant.id,
            client_id: grant.client_id,
            kind,
        });
    }
    Ok(true)
}
