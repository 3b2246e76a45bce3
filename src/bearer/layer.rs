//! [`BearerLayer`]: the settings of the bearer check, cheap to clone.

use std::{fmt, sync::Arc};

use tower_layer::Layer;

use super::{
    requirement::{AudienceRule, Requirement, Shared},
    response::DefaultRejection,
    service::Bearer,
    validator::{LocalValidator, Validator},
};
use crate::{scope::Scope, server::AuthServer};

/// A tower [`Layer`] that guards a service with bearer tokens (RFC 6750). Holds settings only;
/// cheap to clone, so each route can have its own required scope. `R` words the refusals
/// ([`render_rejection`](Self::render_rejection)).
#[derive(Clone)]
#[must_use]
pub struct BearerLayer<R = DefaultRejection> {
    realm: Arc<str>,
    /// The URL of the protected resource's metadata (RFC 9728), named by every challenge.
    resource_metadata: Option<Arc<str>>,
    /// The resource protected (RFC 8707, normalised), when tokens' audience is checked.
    audience: Option<String>,
    /// [`allow_no_audience`](Self::allow_no_audience).
    allow_no_audience: bool,
    /// Built once here, not in `layer()`: frameworks may wrap a service per request (axum does
    /// for routes it converts lazily), and rendering the challenges costs microseconds.
    shared: Arc<Shared>,
    render: R,
}

impl<R> fmt::Debug for BearerLayer<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerLayer")
            .field("realm", &self.realm)
            .field("required", &self.shared.default.scope)
            .field(
                "per_path",
                &self
                    .shared
                    .per_path
                    .iter()
                    .map(|(p, r)| (p, &r.scope))
                    .collect::<Vec<_>>(),
            )
            .field("allow_query", &self.shared.allow_query)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl BearerLayer {
    /// A layer validating against `server`'s store, with its realm.
    pub fn new(server: &AuthServer) -> Self {
        let validator = LocalValidator::new(
            Arc::clone(&server.inner.store),
            Arc::clone(&server.inner.clock),
        );
        #[cfg(feature = "jwt")]
        let validator = match (&server.inner.keys, &server.config().issuer) {
            (Some(keys), Some(issuer)) => validator.with_signing_keys(keys, issuer),
            _ => validator,
        };
        Self::with_validator(validator, &server.config().realm)
    }

    /// A layer using any [`Validator`] (e.g. introspection against a remote server).
    pub fn with_validator(validator: impl Validator, realm: &str) -> Self {
        let realm: Arc<str> = Arc::from(realm);
        Self {
            shared: Arc::new(Shared {
                validator: Arc::new(validator),
                default: Arc::new(Requirement::new(&realm, Scope::empty(), None, None)),
                per_path: Vec::new(),
                allow_query: false,
            }),
            realm,
            resource_metadata: None,
            audience: None,
            allow_no_audience: false,
            render: DefaultRejection,
        }
    }
}

impl<R> BearerLayer<R> {
    /// Word the refusals with `render` (a closure `Fn(&RejectionContext<'_>) -> Response<B>`
    /// will do, `B` the guarded service's body): the app's own JSON, RFC 9457 problem details,
    /// a page. The layer still sets the status, `WWW-Authenticate` and `Cache-Control:
    /// no-store` over what it returns; gRPC requests are answered in gRPC's terms as before.
    /// See [`RenderRejection`](super::RenderRejection).
    pub fn render_rejection<R2>(self, render: R2) -> BearerLayer<R2> {
        BearerLayer {
            realm: self.realm,
            resource_metadata: self.resource_metadata,
            audience: self.audience,
            allow_no_audience: self.allow_no_audience,
            shared: self.shared,
            render,
        }
    }

    /// Name the protected resource's metadata (RFC 9728 §5.1) in every challenge:
    /// `resource_metadata="{url}"`, and on a 401 also the scope the route needs (`scope="…"`),
    /// which is how an MCP client discovers where to get a token and what to ask for. `url` is
    /// where [`ProtectedResourceMetadata`](super::ProtectedResourceMetadata) is served
    /// ([`metadata_url`](super::ProtectedResourceMetadata::metadata_url)). Applies to the
    /// scopes required before and after this call.
    pub fn resource_metadata(mut self, url: impl Into<String>) -> Self {
        self.resource_metadata = Some(Arc::from(url.into()));
        self.with_requirements_rebuilt()
    }

    /// Accept only tokens for `resource`, this resource's identifier (RFC 8707; the
    /// `resource` of its [metadata](super::ProtectedResourceMetadata)): a token whose audience
    /// does not name it is refused with 401 `invalid_token`, "The access token is not meant
    /// for this resource" — a token obtained for another server cannot be replayed here (the
    /// confused deputy of the MCP authorization spec). A token with no audience is refused too,
    /// unless [`allow_no_audience`](Self::allow_no_audience). Compared after normalising
    /// scheme and host case and a default port (RFC 3986 §6.2.2).
    ///
    /// # Panics
    /// When `resource` is not an absolute URI without a fragment: a resource identifier is
    /// the app's own constant.
    pub fn audience(mut self, resource: impl AsRef<str>) -> Self {
        let resource = crate::resource::normalize(resource.as_ref())
            .unwrap_or_else(|e| panic!("BearerLayer::audience: {e}"));
        self.audience = Some(resource);
        self.with_requirements_rebuilt()
    }

    /// With [`audience`](Self::audience): also accept tokens that name no resource at all
    /// (issued to clients that sent no `resource`, on a server without a default resource).
    /// Off by default.
    pub fn allow_no_audience(mut self, allow: bool) -> Self {
        self.allow_no_audience = allow;
        self.with_requirements_rebuilt()
    }

    /// Every requirement again, with the layer's current challenge parameters and audience.
    fn with_requirements_rebuilt(self) -> Self {
        let requirement = |r: &Requirement| Arc::new(self.requirement(r.scope.clone()));
        let default = requirement(&self.shared.default);
        let per_path: Vec<_> = self
            .shared
            .per_path
            .iter()
            .map(|(p, r)| (p.clone(), requirement(r)))
            .collect();
        self.rebuild(|s| {
            s.default = default;
            s.per_path = per_path;
        })
    }

    /// A requirement of `scope` with this layer's challenge parameters.
    fn requirement(&self, scope: Scope) -> Requirement {
        Requirement::new(
            &self.realm,
            scope,
            self.resource_metadata.as_deref(),
            self.audience.as_ref().map(|resource| AudienceRule {
                resource: resource.clone(),
                allow_none: self.allow_no_audience,
            }),
        )
    }

    fn rebuild(self, f: impl FnOnce(&mut Shared)) -> Self {
        let old = &self.shared;
        let mut shared = Shared {
            validator: Arc::clone(&old.validator),
            default: Arc::clone(&old.default),
            per_path: old.per_path.clone(),
            allow_query: old.allow_query,
        };
        f(&mut shared);
        Self {
            shared: Arc::new(shared),
            realm: self.realm,
            resource_metadata: self.resource_metadata,
            audience: self.audience,
            allow_no_audience: self.allow_no_audience,
            render: self.render,
        }
    }

    /// Require every token of `scope` (403 `insufficient_scope` otherwise; gRPC
    /// `PERMISSION_DENIED`).
    pub fn require_scope(self, scope: Scope) -> Self {
        let requirement = Arc::new(self.requirement(scope));
        self.rebuild(|s| s.default = requirement)
    }

    /// Require `scope` on requests to exactly `path` instead of the layer's default — e.g. one
    /// gRPC method, `/notes.Notes/Add`, on a server where the layer guards every service.
    ///
    /// `path` is compared with the request path **as this layer sees it**, byte for byte (no
    /// decoding, no trailing-slash folding). Routers that rewrite the path before calling the
    /// layer change what it sees: under axum's `nest("/api", inner)`, a layer applied to
    /// `inner` sees `/admin` for a request to `/api/admin`, while one applied to the outer
    /// router sees `/api/admin`. Name the path as the layer sees it; and prefer the strictest
    /// requirement as the layer's default with rules that relax it, so that a rule that does
    /// not match (a renamed route, a rewritten path) fails closed rather than open.
    ///
    /// ```
    /// use tower_oauth2::{AuthServer, Client, InMemoryClients, Scope};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = AuthServer::builder()
    /// #     .clients(InMemoryClients::new().with(Client::confidential("app", "s").build()?))
    /// #     .build()?;
    /// // Inside `nest("/api", …)`: the paths are the nested router's.
    /// let layer = server
    ///     .bearer_layer()
    ///     .require_scope(Scope::parse("notes:write")?)
    ///     .require_scope_for("/notes", Scope::parse("notes:read")?);
    /// # let _ = layer;
    /// # Ok(())
    /// # }
    /// ```
    pub fn require_scope_for(self, path: &str, scope: Scope) -> Self {
        let requirement = Arc::new(self.requirement(scope));
        let path: Box<str> = Box::from(path);
        self.rebuild(|s| {
            s.per_path.retain(|(p, _)| *p != path);
            s.per_path.push((path, requirement));
        })
    }

    /// Also accept the token in an `access_token` query parameter (RFC 6750 §2.3). Off by
    /// default: URLs end up in logs and browser history.
    pub fn allow_query_token(self, allow: bool) -> Self {
        self.rebuild(|s| s.allow_query = allow)
    }
}

impl<S, R: Clone> Layer<S> for BearerLayer<R> {
    type Service = Bearer<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        Bearer::new(inner, Arc::clone(&self.shared), self.render.clone())
    }
}

/// The bearer layer of a server, validating against its store.
impl AuthServer {
    /// A bearer-token layer (RFC 6750) validating against this server's store.
    pub fn bearer_layer(&self) -> BearerLayer {
        BearerLayer::new(self)
    }
}
