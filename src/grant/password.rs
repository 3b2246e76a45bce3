//! RFC 6749 §4.3: resource owner password credentials. Off unless allowed (RFC 9700 §2.4).

use std::sync::Arc;

use super::{Approval, NewGrant, TokenRequest, TokenResponse, context::Context, resolve_scope};
use crate::{client::GrantType, error::OAuthError};

pub(super) async fn exchange(
    ctx: &Context,
    request: &TokenRequest<'_>,
) -> Result<TokenResponse, OAuthError> {
    let (client, form) = (request.client, request.form);
    let username = form
        .get("username")
        .ok_or_else(|| OAuthError::invalid_request("missing username"))?;
    let password = form
        .get("password")
        .ok_or_else(|| OAuthError::invalid_request("missing password"))?;
    // Checked before the user store is asked, so a bad scope costs no password hash.
    let scope = resolve_scope(&ctx.config, client, form.get("scope"))?;
    let resources = ctx.requested_resources(client, request.resources()?)?;
    let Some(users) = &ctx.users else {
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
        ctx,
        client,
        crate::token::Route::random(),
        Approval {
            subject: Some(Arc::from(subject)),
            scope,
            resources: resources.clone(),
        },
        resources,
        GrantType::Password,
    )?
    .create(ctx)
    .await
}
