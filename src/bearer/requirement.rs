//! What a request must carry and the verdict on what it did carry: a layer's settings
//! ([`Shared`]), each required scope with its rendered challenges ([`Requirement`]), and
//! [`decide`], which turns a validator's answer into the token's details or a [`Rejection`].

use std::sync::Arc;

use http::{HeaderMap, Request, Response, Uri};

use super::{
    TokenInfo,
    challenge::{Challenges, Rejection},
    response::{RejectionContext, RenderRejection},
    validator::{Validation, Validator},
};
use crate::{error::StoreError, resource::Resources, scope::Scope};

/// A required scope with its rendered challenges, and the resource a token must be for.
pub(crate) struct Requirement {
    pub(crate) scope: Scope,
    pub(crate) challenges: Challenges,
    pub(crate) audience: Option<AudienceRule>,
}

/// The resource a layer protects (RFC 8707): a token's audience must name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AudienceRule {
    /// In normal form.
    pub(crate) resource: String,
    /// Accept a token with no audience at all.
    pub(crate) allow_none: bool,
}

impl AudienceRule {
    fn admits(&self, audience: &Resources) -> bool {
        if audience.is_empty() {
            return self.allow_none;
        }
        audience.iter().any(|a| a == self.resource)
    }
}

impl Requirement {
    pub(crate) fn new(
        realm: &str,
        scope: Scope,
        resource_metadata: Option<&str>,
        audience: Option<AudienceRule>,
    ) -> Self {
        Self {
            challenges: Challenges::new(realm, &scope, resource_metadata),
            scope,
            audience,
        }
    }

    /// The answer to a refused request: in `render`'s words over HTTP, with this requirement's
    /// status and challenge; in gRPC's terms to a gRPC request.
    pub(crate) fn refuse<B: Default, R: RenderRejection<B>>(
        &self,
        rejection: Rejection,
        render: &R,
        (uri, headers): (&Uri, &HeaderMap),
        grpc: bool,
    ) -> Response<B> {
        let http = (!grpc).then(|| {
            render.render(&RejectionContext {
                rejection,
                required: &self.scope,
                uri,
                headers,
            })
        });
        self.challenges.response(rejection, http)
    }
}

/// A layer's settings, shared by every service it makes.
pub(crate) struct Shared {
    pub(crate) validator: Arc<dyn Validator>,
    /// What every path requires unless `per_path` names it.
    pub(crate) default: Arc<Requirement>,
    /// Exact paths (e.g. gRPC methods `/pkg.Service/Method`) with their own requirement.
    pub(crate) per_path: Vec<(Box<str>, Arc<Requirement>)>,
    pub(crate) allow_query: bool,
}

impl Shared {
    /// The requirement for this request's path.
    pub(crate) fn requirement<B>(&self, req: &Request<B>) -> &Arc<Requirement> {
        if self.per_path.is_empty() {
            return &self.default;
        }
        let path = req.uri().path();
        self.per_path
            .iter()
            .find(|(p, _)| &**p == path)
            .map_or(&self.default, |(_, r)| r)
    }
}

/// The verdict on a request: the token's details to pass on, or why it is refused. A token
/// for another resource is refused before its scope is looked at.
pub(crate) fn decide(
    verdict: Result<Validation, StoreError>,
    requirement: &Requirement,
) -> Result<TokenInfo, Rejection> {
    let required = &requirement.scope;
    match verdict {
        Ok(Validation::Valid(info))
            if requirement
                .audience
                .as_ref()
                .is_some_and(|rule| !rule.admits(&info.audience)) =>
        {
            Err(Rejection::WrongAudience)
        }
        Ok(Validation::Valid(info)) if required.is_subset_of(&info.scope) => Ok(info),
        Ok(Validation::Valid(_)) => Err(Rejection::InsufficientScope),
        Ok(Validation::Expired) => Err(Rejection::Expired),
        Ok(Validation::WrongAudience) => Err(Rejection::WrongAudience),
        Ok(_) => Err(Rejection::Invalid),
        Err(err) => {
            tracing::error!(error = %err, "bearer validation failed: store unavailable");
            Err(Rejection::Unavailable)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::future::BoxFuture;

    fn info(scope: &str) -> TokenInfo {
        TokenInfo::new("c", Scope::parse(scope).unwrap(), 0, 10)
    }

    #[test]
    fn decide_cases() {
        let scope = |s: &str| Scope::parse(s).unwrap();
        type Case = (
            Result<Validation, StoreError>,
            &'static str,
            Result<(), Rejection>,
        );
        let cases: Vec<Case> = vec![
            (Ok(Validation::Valid(info("read write"))), "", Ok(())),
            (Ok(Validation::Valid(info("read write"))), "read", Ok(())),
            (
                Ok(Validation::Valid(info("read write"))),
                "write read",
                Ok(()),
            ),
            (
                Ok(Validation::Valid(info("read"))),
                "read write",
                Err(Rejection::InsufficientScope),
            ),
            (
                Ok(Validation::Valid(info(""))),
                "read",
                Err(Rejection::InsufficientScope),
            ),
            (Ok(Validation::Expired), "", Err(Rejection::Expired)),
            (Ok(Validation::Invalid), "", Err(Rejection::Invalid)),
            (Err(StoreError::Timeout), "", Err(Rejection::Unavailable)),
            (
                Err(StoreError::unavailable("down")),
                "read",
                Err(Rejection::Unavailable),
            ),
        ];
        for (verdict, required, expected) in cases {
            let shown = format!("{verdict:?} requiring {required:?}");
            assert_eq!(
                decide(verdict, &Requirement::new("r", scope(required), None, None)).map(drop),
                expected,
                "{shown}"
            );
        }
    }

    struct Never;
    impl Validator for Never {
        fn validate(&self, _: &str) -> BoxFuture<'static, Result<Validation, StoreError>> {
            Box::pin(async { Ok(Validation::Invalid) })
        }
    }

    #[test]
    fn a_path_with_its_own_requirement_uses_it_and_others_the_default() {
        let req = |s: &str| Arc::new(Requirement::new("r", Scope::parse(s).unwrap(), None, None));
        let shared = Shared {
            validator: Arc::new(Never),
            default: req("read"),
            per_path: vec![("/notes.Notes/Add".into(), req("write"))],
            allow_query: false,
        };
        let cases = [
            ("/notes.Notes/Add", "write"),
            ("/notes.Notes/List", "read"),
            ("/notes.Notes/Add/", "read"),
            ("/", "read"),
        ];
        for (path, expected) in cases {
            let request = Request::get(path).body(()).unwrap();
            assert_eq!(
                shared.requirement(&request).scope.as_str(),
                expected,
                "{path}"
            );
        }
    }
}
