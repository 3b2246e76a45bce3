//! `WWW-Authenticate: Bearer …` challenges (RFC 6750 §3), rendered once per layer.

use http::{
    HeaderValue, Response, Version,
    header::{CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE},
};

pub(crate) use super::response::Rejection;
use crate::{scope::Scope, wire::header::quote};

/// The precomputed header values of one layer.
#[derive(Debug)]
pub(crate) struct Challenges {
    missing: HeaderValue,
    malformed: HeaderValue,
    invalid: HeaderValue,
    expired: HeaderValue,
    wrong_audience: HeaderValue,
    insufficient: HeaderValue,
}

fn render(realm: &str, params: &[(&str, &str)]) -> HeaderValue {
    let mut s = format!("Bearer realm=\"{}\"", quote(realm));
    for (name, value) in params {
        s.push_str(&format!(", {name}=\"{}\"", quote(value)));
    }
    // Realm and scope are restricted to visible ASCII when configured; fall back rather than fail.
    HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
}

impl Challenges {
    /// The challenges of a route requiring `required`. With `resource_metadata` (RFC 9728
    /// §5.1), every challenge names it, and those of a 401 also name the scope the route needs,
    /// so a client (an MCP client, say) knows where to learn about the resource and what to ask
    /// for.
    pub(crate) fn new(realm: &str, required: &Scope, resource_metadata: Option<&str>) -> Self {
        let scope = (!required.is_empty()).then(|| ("scope", required.as_str()));
        let discovery: Vec<(&str, &str)> = resource_metadata
            .map(|url| ("resource_metadata", url))
            .into_iter()
            .collect();
        // A 401's extras: the metadata and, with it, the scope to ask for.
        let unauthorized = |base: &[(&str, &str)]| {
            let mut params = base.to_vec();
            params.extend(&discovery);
            if !discovery.is_empty() {
                params.extend(scope);
            }
            render(realm, &params)
        };
        let mut insufficient = vec![
            ("error", "insufficient_scope"),
            (
                "error_description",
                "The access token does not grant the scope this resource requires",
            ),
        ];
        insufficient.extend(scope);
        insufficient.extend(&discovery);
        Self {
            missing: unauthorized(&[]),
            malformed: render(
                realm,
                &[
                    ("error", "invalid_request"),
                    ("error_description", "Malformed bearer credentials"),
                ],
            ),
            invalid: unauthorized(&[
                ("error", "invalid_token"),
                (
                    "error_description",
                    "The access token is invalid or revoked",
                ),
            ]),
            expired: unauthorized(&[
                ("error", "invalid_token"),
                ("error_description", "The access token expired"),
            ]),
            wrong_audience: unauthorized(&[
                ("error", "invalid_token"),
                (
                    "error_description",
                    "The access token is not meant for this resource",
                ),
            ]),
            insufficient: render(realm, &insufficient),
        }
    }

    /// The rejection as a response: the app's rendering (`http`) with the status and
    /// challenge set over it, or for a gRPC request (`http` is `None`) a trailers-only gRPC
    /// response (HTTP 200 with `grpc-status`) that gRPC clients turn into a proper `Status`.
    /// Either way `Cache-Control: no-store`: a refusal must not be cached as the resource.
    pub(crate) fn response<B: Default>(
        &self,
        rejection: Rejection,
        http: Option<Response<B>>,
    ) -> Response<B> {
        let mut res = match http {
            Some(rendered) => self.http_response(rejection, rendered),
            None => self.grpc_response(rejection),
        };
        res.headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        res
    }

    /// The status and the challenge, over whatever the renderer set.
    fn http_response<B>(&self, rejection: Rejection, mut res: Response<B>) -> Response<B> {
        let challenge = match rejection {
            Rejection::Missing => Some(&self.missing),
            Rejection::Malformed => Some(&self.malformed),
            Rejection::Invalid => Some(&self.invalid),
            Rejection::Expired => Some(&self.expired),
            Rejection::WrongAudience => Some(&self.wrong_audience),
            Rejection::InsufficientScope => Some(&self.insufficient),
            Rejection::Unavailable => None,
        };
        *res.status_mut() = rejection.status();
        let headers = res.headers_mut();
        match challenge {
            Some(v) => headers.insert(WWW_AUTHENTICATE, v.clone()),
            None => headers.remove(WWW_AUTHENTICATE),
        };
        res
    }
}

impl Challenges {
    fn grpc_response<B: Default>(&self, rejection: Rejection) -> Response<B> {
        // gRPC status codes: 16 UNAUTHENTICATED, 7 PERMISSION_DENIED, 14 UNAVAILABLE.
        let (code, message, challenge) = match rejection {
            Rejection::Missing => ("16", "missing bearer token", Some(&self.missing)),
            Rejection::Malformed => ("16", "malformed bearer credentials", Some(&self.malformed)),
            Rejection::Invalid => ("16", "invalid or revoked access token", Some(&self.invalid)),
            Rejection::Expired => ("16", "access token expired", Some(&self.expired)),
            Rejection::WrongAudience => (
                "16",
                "access token not meant for this resource",
                Some(&self.wrong_audience),
            ),
            Rejection::InsufficientScope => ("7", "insufficient scope", Some(&self.insufficient)),
            Rejection::Unavailable => ("14", "token validation unavailable", None),
        };
        let mut res = Response::new(B::default());
        let h = res.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        h.insert("grpc-status", HeaderValue::from_static(code));
        // Plain ASCII without '%', so already valid percent-encoded grpc-message text.
        h.insert("grpc-message", HeaderValue::from_static(message));
        if let Some(v) = challenge {
            h.insert(WWW_AUTHENTICATE, v.clone());
        }
        res
    }
}

/// Whether a request is gRPC: HTTP/2 (gRPC runs on nothing else) with
/// `content-type: application/grpc…`. A REST route called over HTTP/1.1 with that content type
/// gets a plain HTTP answer, so monitoring and caches never see a refusal as `200 OK`.
pub(crate) fn is_grpc<B>(req: &http::Request<B>) -> bool {
    req.version() == Version::HTTP_2
        && req
            .headers()
            .get(CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}
