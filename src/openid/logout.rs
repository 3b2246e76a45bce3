//! The app's part of RP-initiated logout (RP-Initiated Logout 1.0): ending its own session.

use std::{future::Future, sync::Arc};

use async_trait::async_trait;
use http::HeaderMap;

/// A logout the end-session endpoint has checked (and, when the ID token hint did not name
/// the session, the user confirmed): whose session to end.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EndSession {
    /// The user, as the app knows them, when the hint or the session named one.
    pub subject: Option<Arc<str>>,
    /// The session (`sid` of the hint, the app's [`session_id`](super::Authentication::session_id)).
    pub session_id: Option<String>,
    /// The client that asked, when known.
    pub client_id: Option<Arc<str>>,
    /// The request's headers (the app's session cookie).
    pub headers: HeaderMap,
}

/// What the app does at logout: end its own session (drop its session record; return the
/// `Set-Cookie` headers that clear its cookie, which go on the endpoint's answer). An async
/// closure `Fn(EndSession) -> impl Future<Output = HeaderMap>` is one.
#[async_trait]
pub trait LogoutHandler: Send + Sync + 'static {
    /// End the session; the headers returned are added to the response.
    async fn end_session(&self, session: EndSession) -> HeaderMap;
}

#[async_trait]
impl<F, Fut> LogoutHandler for F
where
    F: Fn(EndSession) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HeaderMap> + Send,
{
    async fn end_session(&self, session: EndSession) -> HeaderMap {
        self(session).await
    }
}
