//! RFC 6749 §4.4: the client acts on its own behalf. Confidential clients only; never a refresh
//! token (§4.4.3).

use super::{Approval, NewGrant, TokenRequest, TokenResponse, context::Context, resolve_scope};
use crate::{client::GrantType, error::OAuthError};

pub(super) async fn exchange(
    ctx: &Context,
    request: &TokenRequest<'_>,
) -> Result<TokenResponse, OAuthError> {
    let (client, form) = (request.client, request.form);
    // RFC 6749 §4.4: "MUST only be used by confidential clients".
    if !client.is_confidential() {
        return Err(OAuthError::unauthorized_client(
            "client_credentials requires a confidential client",
        ));
    }
    let scope = resolve_scope(&ctx.config, client, form.get("scope"))?;
    let resources = ctx.requested_resources(client, request.resources()?)?;
    NewGrant::prepare(
        ctx,
        client,
        crate::token::Route::random(),
        Approval {
            subject: None,
            scope,
            resources: resources.clone(),
        },
        resources,
        GrantType::ClientCredentials,
    )?
    .create(ctx)
    .await
}
