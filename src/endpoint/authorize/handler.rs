//! The app's part of the authorization endpoint: the [`AuthorizationHandler`] it implements (an
//! async closure will do), what it is shown ([`AuthorizationContext`]) and what it answers
//! ([`Interaction`]).

use std::future::Future;

use async_trait::async_trait;
use http::{HeaderMap, Uri};

use crate::{
    endpoint::response::EndpointResponse,
    error::OAuthError,
    grant::{PendingAuthorization, authorize::Decision},
};

/// The app's answer to a new authorization request.
#[derive(Debug)]
pub enum Interaction {
    /// Decided at once (a session and a remembered consent, or a policy).
    Decided(Decision),
    /// A page of the app's own (login, consent) to show; it completes the request later with
    /// [`AuthServer::complete_authorization`](crate::AuthServer::complete_authorization) and the [handle](AuthorizationContext::handle).
    /// The endpoint adds its security headers and the binding cookie.
    Respond(EndpointResponse),
}

/// A validated authorization request as the app's [`AuthorizationHandler`] sees it.
#[derive(Debug, Clone)]
pub struct AuthorizationContext {
    pub(super) handle: String,
    pub(super) request: PendingAuthorization,
    pub(super) uri: Uri,
    pub(super) headers: HeaderMap,
    pub(super) client: std::sync::Arc<crate::client::Client>,
}

impl AuthorizationContext {
    /// The single-use handle that completes this request: put it in the login or consent form
    /// (it is worthless without the user agent's binding cookie).
    pub fn handle(&self) -> &str {
        &self.handle
    }

    /// The validated request.
    pub fn request(&self) -> &PendingAuthorization {
        &self.request
    }

    /// The client that asks: its [name](crate::client::Client::name) for the page, and for a
    /// registered one, when it registered.
    pub fn client(&self) -> &crate::client::Client {
        &self.client
    }

    /// The request's URI, as received.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// The request's headers, for the app's own session cookie.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }
}

/// The app's part of the authorization endpoint: who the resource owner is and what they
/// allow. An async closure `Fn(AuthorizationContext) -> impl Future<Output = Interaction>` is
/// one.
#[async_trait]
pub trait AuthorizationHandler: Send + Sync + 'static {
    /// Decide, or show a page that will decide later.
    async fn authorize(&self, ctx: AuthorizationContext) -> Interaction;

    /// The page for a request that cannot be answered at the client's redirect URI (unknown
    /// client or redirect URI, a handle that lapsed). `None` (the default) for the built-in one.
    fn error_page(&self, _error: &OAuthError) -> Option<EndpointResponse> {
        None
    }
}

#[async_trait]
impl<F, Fut> AuthorizationHandler for F
where
    F: Fn(AuthorizationContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Interaction> + Send,
{
    async fn authorize(&self, ctx: AuthorizationContext) -> Interaction {
        self(ctx).await
    }
}
