//! RFC 6749 §4.3: resource owner password credentials. Off unless allowed (RFC 9700 §2.4).

use std::sync::Arc;

use super::{NewGrant, TokenResponse, resolve_scope};
use crate::{AuthServer, Client, GrantType, OAuthError, wire::form::Form};

pub(super) async fn exchange(
    server: &AuthServer,
    client: &Arc<Client>,
    form: &Form,
) -> Result<TokenResponse, OAuthError> {
    let username = form
        .get("username")
        .ok_or_else(|| OAuthError::invalid_request("missing username"))?;
    let password = form
        .get("password")
        .ok_or_else(|| OAuthError::invalid_request("missing password"))?;
    // Checked before the user store is asked, so a bad scope costs no password hash.
    let scope = resolve_scope(&server.inner.config, client, form.get("scope"))?;
    let Some(users) = &server.inner.users else {
        // `build` refuses a server that allows the password grant without users.
        return Err(OAuthError::unsupported_grant_type(
            "grant type not supported",
        ));
    };
    let subject = users
        .authenticate(username, password, client)
        .await?
        .ok_or_else(|| OAuthError::invalid_grant("invalid resource owner credentials"))?;
    NewGrant::prepare(
        server,
        client,
        crate::token::Route::random(),
        Some(Arc::from(subject)),
        scope,
        GrantType::Password,
    )?
    .create(server)
    .await
}
