//! RFC 6749 §4.4: the client acts on its own behalf. Confidential clients only; never a refresh
//! token (§4.4.3).

use std::sync::Arc;

use super::{NewGrant, TokenResponse, resolve_scope};
use crate::{AuthServer, Client, GrantType, OAuthError, wire::form::Form};

pub(super) async fn exchange(
    server: &AuthServer,
    client: &Arc<Client>,
    form: &Form,
) -> Result<TokenResponse, OAuthError> {
    // RFC 6749 §4.4: "MUST only be used by confidential clients".
    if !client.is_confidential() {
        return Err(OAuthError::unauthorized_client(
            "client_credentials requires a confidential client",
        ));
    }
    let scope = resolve_scope(&server.inner.config, client, form.get("scope"))?;
    NewGrant::prepare(
        server,
        client,
        crate::token::Route::random(),
        None,
        scope,
        GrantType::ClientCredentials,
    )?
    .create(server)
    .await
}
