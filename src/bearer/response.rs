//! The bearer layer's refusals as the app wants them worded: a [`RenderRejection`] writes the
//! body (RFC 9457 problem details, the app's own JSON, a page), the layer keeps what the
//! protocol needs. Whatever the renderer returns, the layer sets the status, the
//! `WWW-Authenticate` challenge (RFC 6750 §3; removed where there is none, as on a 503) and
//! `Cache-Control: no-store` afterwards, so none of them can be dropped. gRPC requests are
//! answered in gRPC's terms, unchanged, without the renderer.
//!
//! ```
//! use http::{Request, Response, StatusCode, header};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//! use tower_oauth2::{AuthServer, Client, InMemoryClients, bearer::RejectionContext};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = AuthServer::builder()
//!     .clients(InMemoryClients::new().with(Client::confidential("svc", "s3cret").build()?))
//!     .build()?;
//! // RFC 9457 problem details for every refusal.
//! let problem = |r: &RejectionContext<'_>| {
//!     let body = format!(
//!         r#"{{"type":"about:blank","status":{},"title":"{}"}}"#,
//!         r.status().as_u16(),
//!         r.description(),
//!     );
//!     Response::builder()
//!         .header(header::CONTENT_TYPE, "application/problem+json")
//!         // Ignored: the status is the layer's.
//!         .status(StatusCode::OK)
//!         .body(body)
//!         .unwrap()
//! };
//! let app = ServiceBuilder::new()
//!     .layer(server.bearer_layer().render_rejection(problem))
//!     .service(service_fn(|_: Request<String>| async {
//!         Ok::<_, std::convert::Infallible>(Response::new(String::from("secret")))
//!     }));
//! let response = app.oneshot(Request::get("/notes").body(String::new())?).await?;
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//! assert_eq!(response.headers()["www-authenticate"], "Bearer realm=\"tower-oauth2\"");
//! assert_eq!(response.headers()["cache-control"], "no-store");
//! assert_eq!(response.headers()["content-type"], "application/problem+json");
//! assert!(response.body().contains(r#""status":401"#));
//! # Ok(())
//! # }
//! ```

use http::{HeaderMap, Response, StatusCode, Uri};

use crate::scope::Scope;

/// Why the bearer layer refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// No bearer credentials at all (RFC 6750 §3.1: no error code). 401.
    Missing,
    /// A malformed Authorization header or token, or more than one method. 400.
    Malformed,
    /// Unknown or revoked. 401.
    Invalid,
    /// Expired. 401.
    Expired,
    /// Valid, but meant for another resource (its audience does not name this one). 401.
    WrongAudience,
    /// Valid, but without the required scope. 403.
    InsufficientScope,
    /// The token could not be checked (the store or the authorization server is down): never
    /// reported as an invalid token. 503.
    Unavailable,
}

impl Rejection {
    /// The HTTP status the layer answers with.
    pub fn status(self) -> StatusCode {
        match self {
            Self::Missing | Self::Invalid | Self::Expired | Self::WrongAudience => {
                StatusCode::UNAUTHORIZED
            }
            Self::Malformed => StatusCode::BAD_REQUEST,
            Self::InsufficientScope => StatusCode::FORBIDDEN,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The RFC 6750 §3.1 error code, when there is one.
    pub fn error_code(self) -> Option<&'static str> {
        match self {
            Self::Missing | Self::Unavailable => None,
            Self::Malformed => Some("invalid_request"),
            Self::Invalid | Self::Expired | Self::WrongAudience => Some("invalid_token"),
            Self::InsufficientScope => Some("insufficient_scope"),
        }
    }

    /// A sentence for people: the challenge's `error_description` where it has one.
    pub fn description(self) -> &'static str {
        match self {
            Self::Missing => "Bearer credentials are required",
            Self::Malformed => "Malformed bearer credentials",
            Self::Invalid => "The access token is invalid or revoked",
            Self::Expired => "The access token expired",
            Self::WrongAudience => "The access token is not meant for this resource",
            Self::InsufficientScope => {
                "The access token does not grant the scope this resource requires"
            }
            Self::Unavailable => "The access token cannot be checked now",
        }
    }
}

/// What a [`RenderRejection`] is told about a refusal.
#[derive(Debug)]
pub struct RejectionContext<'a> {
    pub(crate) rejection: Rejection,
    pub(crate) required: &'a Scope,
    pub(crate) uri: &'a Uri,
    pub(crate) headers: &'a HeaderMap,
}

impl RejectionContext<'_> {
    /// Why.
    pub fn rejection(&self) -> Rejection {
        self.rejection
    }

    /// The status the answer will have.
    pub fn status(&self) -> StatusCode {
        self.rejection.status()
    }

    /// The RFC 6750 error code, when there is one.
    pub fn error_code(&self) -> Option<&'static str> {
        self.rejection.error_code()
    }

    /// A sentence for people.
    pub fn description(&self) -> &'static str {
        self.rejection.description()
    }

    /// The scope this route requires (empty when it requires none).
    pub fn required_scope(&self) -> &Scope {
        self.required
    }

    /// The refused request's URI.
    pub fn uri(&self) -> &Uri {
        self.uri
    }

    /// The refused request's headers (to choose a format by `Accept`, say). The token is in
    /// them: never log them whole.
    pub fn headers(&self) -> &HeaderMap {
        self.headers
    }
}

/// Renders the bearer layer's refusals: the body and any headers of the app's choosing. The
/// status, `WWW-Authenticate` and `Cache-Control` are set by the layer afterwards.
///
/// A closure `Fn(&RejectionContext<'_>) -> Response<B>` is one; [`DefaultRejection`] (an empty
/// body) is the default.
pub trait RenderRejection<B>: Clone + Send + Sync + 'static {
    /// The answer to a refused request.
    fn render(&self, rejection: &RejectionContext<'_>) -> Response<B>;
}

impl<B, F> RenderRejection<B> for F
where
    F: Fn(&RejectionContext<'_>) -> Response<B> + Clone + Send + Sync + 'static,
{
    fn render(&self, rejection: &RejectionContext<'_>) -> Response<B> {
        self(rejection)
    }
}

/// The default refusal: an empty body, the status and challenge alone (RFC 6750 §3).
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultRejection;

impl<B: Default> RenderRejection<B> for DefaultRejection {
    fn render(&self, _: &RejectionContext<'_>) -> Response<B> {
        Response::new(B::default())
    }
}
