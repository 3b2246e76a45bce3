//! Client metadata (RFC 7591 §2): read from a registration request, checked, and written back.

use serde_json::{Map, Value};

use crate::{
    client::{ClientBuilder, GrantType, SIGNING_ALGORITHMS},
    error::OAuthError,
    openid::SubjectType,
    scope::Scope,
    wire::uri,
};

/// At most this many redirect URIs in one registration.
pub const MAX_REDIRECT_URIS: usize = 16;
/// At most this many bytes in one URI of a registration.
pub const MAX_URI_BYTES: usize = 2048;
/// At most this many characters in a name or other short text field.
const MAX_TEXT_CHARS: usize = 256;
/// At most this many contacts.
const MAX_CONTACTS: usize = 8;

/// How a registered client authenticates at the token endpoint
/// (`token_endpoint_auth_method`, RFC 7591 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthMethod {
    /// A public client: no secret (`none`).
    None,
    /// A secret in HTTP Basic (`client_secret_basic`, RFC 7591's default).
    ClientSecretBasic,
    /// A secret in the form body (`client_secret_post`).
    ClientSecretPost,
}

impl AuthMethod {
    /// The metadata value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Self::None, Self::ClientSecretBasic, Self::ClientSecretPost]
            .into_iter()
            .find(|m| m.as_str() == s)
    }

    /// Whether a client with this method holds a secret.
    pub fn is_confidential(self) -> bool {
        self != Self::None
    }
}

/// What kind of application registers (`application_type`, OpenID Connect Registration §2):
/// it decides which redirect URIs it may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApplicationType {
    /// A web application (the default): `https` redirect URIs, or `http` on loopback.
    Web,
    /// A native application (RFC 8252): `http` on loopback, `https`, or a private-use scheme
    /// (`com.example.app:/callback`, RFC 8252 §7.1).
    Native,
}

impl ApplicationType {
    /// The metadata value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Web => "web",
            Self::Native => "native",
        }
    }
}

/// The kind of a redirect URI, for a [policy](super::RegistrationPolicy) to judge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RedirectKind {
    /// `https`.
    Https,
    /// `http` on `127.0.0.1`, `[::1]` or `localhost` (any port at authorization time).
    Loopback,
    /// A private-use scheme (native applications only).
    PrivateUse,
}

/// The client metadata of a registration request (RFC 7591 §2), checked: what a
/// [`RegistrationPolicy`](super::RegistrationPolicy) sees and what is registered. Metadata this
/// server does not understand is ignored (RFC 7591 §2), and not echoed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMetadata {
    redirect_uris: Vec<String>,
    auth_method: AuthMethod,
    grant_types: Vec<GrantType>,
    application_type: ApplicationType,
    scope: Option<Scope>,
    /// `client_name`, `client_uri`, `logo_uri`, `tos_uri`, `policy_uri`, `software_id`,
    /// `software_version`, as sent (checked).
    texts: Vec<(&'static str, String)>,
    contacts: Vec<String>,
    /// OpenID Connect Registration 1.0 §2: `id_token_signed_response_alg`,
    /// `userinfo_signed_response_alg`, `subject_type`; RP-Initiated Logout §3.1:
    /// `post_logout_redirect_uris`.
    id_token_alg: Option<String>,
    userinfo_alg: Option<String>,
    subject_type: Option<SubjectType>,
    post_logout_redirect_uris: Vec<String>,
}

/// The text fields kept as they are: (name, whether it is a URI).
const TEXTS: [(&str, bool); 7] = [
    ("client_name", false),
    ("client_uri", true),
    ("logo_uri", true),
    ("tos_uri", true),
    ("policy_uri", true),
    ("software_id", false),
    ("software_version", false),
];

fn bad(description: impl Into<std::borrow::Cow<'static, str>>) -> OAuthError {
    OAuthError::invalid_client_metadata(description)
}

fn strings(v: &Value, field: &str) -> Result<Vec<String>, OAuthError> {
    let Value::Array(items) = v else {
        return Err(bad(format!("{field} must be an array of strings")));
    };
    items
        .iter()
        .map(|i| match i {
            Value::String(s) => Ok(s.clone()),
            _ => Err(bad(format!("{field} must be an array of strings"))),
        })
        .collect()
}

fn string<'v>(v: &'v Value, field: &str) -> Result<&'v str, OAuthError> {
    v.as_str()
        .ok_or_else(|| bad(format!("{field} must be a string")))
}

impl ClientMetadata {
    /// Read and check a registration request's JSON body. Errors: `invalid_client_metadata`
    /// (not a JSON object, a field of the wrong type, an unsupported authentication method,
    /// grant or response type, inconsistent grant and response types, a software statement)
    /// and `invalid_redirect_uri` (a redirect URI that is relative, has a fragment, or has a
    /// scheme its application type may not use), each with a description.
    pub fn from_json(body: &[u8]) -> Result<Self, OAuthError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|_| bad("the request body must be a JSON object of client metadata"))?;
        let Value::Object(fields) = value else {
            return Err(bad(
                "the request body must be a JSON object of client metadata",
            ));
        };
        Self::from_fields(&fields)
    }

    pub(crate) fn from_fields(fields: &Map<String, Value>) -> Result<Self, OAuthError> {
        if fields.contains_key("software_statement") {
            return Err(bad("software statements are not accepted by this server"));
        }
        let application_type = match fields.get("application_type") {
            None => ApplicationType::Web,
            Some(v) => match string(v, "application_type")? {
                "web" => ApplicationType::Web,
                "native" => ApplicationType::Native,
                other => {
                    return Err(bad(format!(
                        "application_type must be web or native, not {other:?}"
                    )));
                }
            },
        };
        let auth_method = match fields.get("token_endpoint_auth_method") {
            // RFC 7591 §2: the default is client_secret_basic.
            None => AuthMethod::ClientSecretBasic,
            Some(v) => {
                let name = string(v, "token_endpoint_auth_method")?;
                AuthMethod::parse(name).ok_or_else(|| {
                    bad(format!(
                        "token_endpoint_auth_method {name:?} is not supported: use none, \
                         client_secret_basic or client_secret_post"
                    ))
                })?
            }
        };
        let grant_types = match fields.get("grant_types") {
            None => vec![GrantType::AuthorizationCode],
            Some(v) => {
                let mut out = Vec::new();
                for name in strings(v, "grant_types")? {
                    let g = GrantType::parse(&name)
                        .filter(|g| *g != GrantType::Password)
                        .ok_or_else(|| {
                            bad(format!(
                                "grant type {name:?} is not available to registered clients: \
                                 use authorization_code, refresh_token or client_credentials"
                            ))
                        })?;
                    if !out.contains(&g) {
                        out.push(g);
                    }
                }
                if out.is_empty() {
                    return Err(bad("grant_types must name at least one grant type"));
                }
                out
            }
        };
        let code = grant_types.contains(&GrantType::AuthorizationCode);
        let response_types = match fields.get("response_types") {
            None if code => vec!["code".to_owned()],
            None => Vec::new(),
            Some(v) => strings(v, "response_types")?,
        };
        if let Some(other) = response_types.iter().find(|r| *r != "code") {
            return Err(bad(format!(
                "response type {other:?} is not supported: only code"
            )));
        }
        if code == response_types.is_empty() {
            return Err(bad(
                "grant_types and response_types disagree: authorization_code goes with the \
                 code response type (RFC 7591 §2.1)",
            ));
        }
        if grant_types.contains(&GrantType::ClientCredentials) && !auth_method.is_confidential() {
            return Err(bad(
                "client_credentials is for confidential clients: a public client \
                 (token_endpoint_auth_method none) cannot use it",
            ));
        }
        if grant_types == [GrantType::RefreshToken] {
            return Err(bad(
                "refresh_token alone obtains nothing: add authorization_code",
            ));
        }
        let redirect_uris = match fields.get("redirect_uris") {
            None => Vec::new(),
            Some(v) => strings(v, "redirect_uris")?,
        };
        if code && redirect_uris.is_empty() {
            return Err(OAuthError::invalid_redirect_uri(
                "redirect_uris is required for the authorization_code grant",
            ));
        }
        if redirect_uris.len() > MAX_REDIRECT_URIS {
            return Err(OAuthError::invalid_redirect_uri(format!(
                "at most {MAX_REDIRECT_URIS} redirect URIs"
            )));
        }
        for r in &redirect_uris {
            redirect_kind(r, application_type)?;
        }
        let scope = match fields.get("scope") {
            None => None,
            Some(v) => Some(
                Scope::parse(string(v, "scope")?)
                    .map_err(|_| bad("scope must be space-separated scope tokens"))?,
            ),
        };
        let mut texts = Vec::new();
        for (name, is_uri) in TEXTS {
            let Some(v) = fields.get(name) else { continue };
            let s = string(v, name)?;
            if is_uri {
                web_uri(s, name)?;
            } else if s.chars().count() > MAX_TEXT_CHARS || s.chars().any(char::is_control) {
                return Err(bad(format!(
                    "{name} must be at most {MAX_TEXT_CHARS} characters, without control characters"
                )));
            }
            texts.push((name, s.to_owned()));
        }
        let contacts = match fields.get("contacts") {
            None => Vec::new(),
            Some(v) => strings(v, "contacts")?,
        };
        if contacts.len() > MAX_CONTACTS
            || contacts.iter().any(|c| {
                c.is_empty() || c.len() > MAX_TEXT_CHARS || c.chars().any(char::is_control)
            })
        {
            return Err(bad(format!(
                "contacts: at most {MAX_CONTACTS}, each 1 to {MAX_TEXT_CHARS} characters"
            )));
        }
        let algorithm = |field: &str| -> Result<Option<String>, OAuthError> {
            match fields.get(field) {
                None => Ok(None),
                Some(v) => {
                    let alg = string(v, field)?;
                    if !SIGNING_ALGORITHMS.contains(&alg) {
                        return Err(bad(format!(
                            "{field} must be one of {}",
                            SIGNING_ALGORITHMS.join(", ")
                        )));
                    }
                    Ok(Some(alg.to_owned()))
                }
            }
        };
        let id_token_alg = algorithm("id_token_signed_response_alg")?;
        let userinfo_alg = algorithm("userinfo_signed_response_alg")?;
        let subject_type = match fields.get("subject_type") {
            None => None,
            Some(v) => {
                let name = string(v, "subject_type")?;
                Some(SubjectType::parse(name).ok_or_else(|| {
                    bad(format!(
                        "subject_type must be public or pairwise, not {name:?}"
                    ))
                })?)
            }
        };
        if fields.contains_key("sector_identifier_uri") {
            return Err(bad(
                "sector_identifier_uri is not supported: register redirect URIs on one host",
            ));
        }
        if subject_type == Some(SubjectType::Pairwise) {
            let mut hosts = redirect_uris.iter().filter_map(|u| uri::host_of(u));
            let first = hosts.next();
            if hosts.any(|h| Some(h) != first) {
                return Err(bad(
                    "pairwise subjects need redirect URIs on one host (the sector)",
                ));
            }
        }
        let post_logout_redirect_uris = match fields.get("post_logout_redirect_uris") {
            None => Vec::new(),
            Some(v) => strings(v, "post_logout_redirect_uris")?,
        };
        if post_logout_redirect_uris.len() > MAX_REDIRECT_URIS {
            return Err(bad(format!(
                "at most {MAX_REDIRECT_URIS} post_logout_redirect_uris"
            )));
        }
        for r in &post_logout_redirect_uris {
            redirect_kind(r, application_type).map_err(|e| {
                bad(format!(
                    "post_logout_redirect_uris: {}",
                    e.description().unwrap_or("")
                ))
            })?;
        }
        Ok(Self {
            redirect_uris,
            auth_method,
            grant_types,
            application_type,
            scope,
            texts,
            contacts,
            id_token_alg,
            userinfo_alg,
            subject_type,
            post_logout_redirect_uris,
        })
    }

    /// The JWS algorithm it asked its ID tokens to be signed with.
    pub fn id_token_signed_response_alg(&self) -> Option<&str> {
        self.id_token_alg.as_deref()
    }

    /// The JWS algorithm it asked its userinfo responses to be signed with.
    pub fn userinfo_signed_response_alg(&self) -> Option<&str> {
        self.userinfo_alg.as_deref()
    }

    /// The `subject_type` it asked for.
    pub fn subject_type(&self) -> Option<SubjectType> {
        self.subject_type
    }

    /// Where the user agent may go after logout.
    pub fn post_logout_redirect_uris(&self) -> &[String] {
        &self.post_logout_redirect_uris
    }

    /// The OpenID Connect settings onto a client being built.
    pub(crate) fn openid_onto(&self, mut b: ClientBuilder) -> ClientBuilder {
        if let Some(alg) = &self.id_token_alg {
            b = b.id_token_signed_response_alg(alg);
        }
        if let Some(alg) = &self.userinfo_alg {
            b = b.userinfo_signed_response_alg(alg);
        }
        if let Some(t) = self.subject_type {
            b = b.subject_type(t);
        }
        for r in &self.post_logout_redirect_uris {
            b = b.post_logout_redirect_uri(r);
        }
        b
    }

    /// The redirect URIs.
    pub fn redirect_uris(&self) -> &[String] {
        &self.redirect_uris
    }

    /// Each redirect URI's kind.
    pub fn redirect_kinds(&self) -> impl Iterator<Item = RedirectKind> + '_ {
        self.redirect_uris
            .iter()
            .filter_map(|r| redirect_kind(r, self.application_type).ok())
    }

    /// How it authenticates at the token endpoint.
    pub fn token_endpoint_auth_method(&self) -> AuthMethod {
        self.auth_method
    }

    /// The grant types it asked for.
    pub fn grant_types(&self) -> &[GrantType] {
        &self.grant_types
    }

    /// Web or native.
    pub fn application_type(&self) -> ApplicationType {
        self.application_type
    }

    /// The scope it asked to be able to request, when it named one.
    pub fn scope(&self) -> Option<&Scope> {
        self.scope.as_ref()
    }

    /// `client_name`.
    pub fn client_name(&self) -> Option<&str> {
        self.text("client_name")
    }

    /// A text field as sent (`client_uri`, `logo_uri`, `tos_uri`, `policy_uri`,
    /// `software_id`, `software_version`, `client_name`).
    pub fn text(&self, name: &str) -> Option<&str> {
        self.texts
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn set_scope(&mut self, scope: Scope) {
        self.scope = Some(scope);
    }

    /// The metadata as registered, for the response (RFC 7591 §3.2.1).
    pub(crate) fn to_json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        let list = |v: &[String]| Value::Array(v.iter().cloned().map(Value::String).collect());
        if !self.redirect_uris.is_empty() {
            m.insert("redirect_uris".into(), list(&self.redirect_uris));
        }
        m.insert(
            "token_endpoint_auth_method".into(),
            self.auth_method.as_str().into(),
        );
        m.insert(
            "grant_types".into(),
            Value::Array(
                self.grant_types
                    .iter()
                    .map(|g| Value::from(g.as_str()))
                    .collect(),
            ),
        );
        let code = self.grant_types.contains(&GrantType::AuthorizationCode);
        m.insert(
            "response_types".into(),
            Value::Array(if code {
                vec!["code".into()]
            } else {
                Vec::new()
            }),
        );
        m.insert(
            "application_type".into(),
            self.application_type.as_str().into(),
        );
        if let Some(scope) = &self.scope {
            m.insert("scope".into(), scope.as_str().into());
        }
        for (name, v) in &self.texts {
            m.insert((*name).into(), v.clone().into());
        }
        if !self.contacts.is_empty() {
            m.insert("contacts".into(), list(&self.contacts));
        }
        if let Some(alg) = &self.id_token_alg {
            m.insert("id_token_signed_response_alg".into(), alg.clone().into());
        }
        if let Some(alg) = &self.userinfo_alg {
            m.insert("userinfo_signed_response_alg".into(), alg.clone().into());
        }
        if let Some(t) = self.subject_type {
            m.insert("subject_type".into(), t.as_str().into());
        }
        if !self.post_logout_redirect_uris.is_empty() {
            m.insert(
                "post_logout_redirect_uris".into(),
                list(&self.post_logout_redirect_uris),
            );
        }
        m
    }
}

/// What the server can do for a client's OpenID settings: the algorithms it signs with, and
/// whether it has a pairwise key. Registration and client ID metadata documents hold a client
/// to it, so that nothing a client asks for fails only later, at sign-in.
#[derive(Debug, Clone, Default)]
pub(crate) struct OpenIdSupport {
    pub(crate) signing_algorithms: Vec<&'static str>,
    pub(crate) pairwise: bool,
}

impl OpenIdSupport {
    /// `invalid_client_metadata` for a setting the server cannot honour.
    pub(crate) fn check(&self, metadata: &ClientMetadata) -> Result<(), OAuthError> {
        for alg in [&metadata.id_token_alg, &metadata.userinfo_alg]
            .into_iter()
            .flatten()
        {
            if !self.signing_algorithms.contains(&alg.as_str()) {
                return Err(bad(format!("this server does not sign with {alg}")));
            }
        }
        if metadata.subject_type == Some(SubjectType::Pairwise) && !self.pairwise {
            return Err(bad("this server does not offer pairwise subjects"));
        }
        Ok(())
    }
}

/// What kind of redirect URI `r` is, or why an application of `app` type may not have it.
fn redirect_kind(r: &str, app: ApplicationType) -> Result<RedirectKind, OAuthError> {
    let refuse = |why: String| Err(OAuthError::invalid_redirect_uri(why));
    if r.len() > MAX_URI_BYTES {
        return refuse(format!("a redirect URI is at most {MAX_URI_BYTES} bytes"));
    }
    if let Some(problem) = uri::registration_problem(r) {
        return refuse(format!("{r:?}: {problem}"));
    }
    match uri::scheme_kind(r) {
        uri::SchemeKind::Https => Ok(RedirectKind::Https),
        uri::SchemeKind::HttpLoopback => Ok(RedirectKind::Loopback),
        uri::SchemeKind::Http => refuse(format!(
            "{r:?}: http is for loopback redirect URIs only (127.0.0.1, [::1], localhost): use https"
        )),
        uri::SchemeKind::PrivateUse if app == ApplicationType::Native => {
            Ok(RedirectKind::PrivateUse)
        }
        uri::SchemeKind::PrivateUse => refuse(format!(
            "{r:?}: a private-use scheme is for application_type native only"
        )),
        uri::SchemeKind::Other => refuse(format!(
            "{r:?}: use https, http on loopback, or (native apps) a private-use scheme with a \
             dot, such as com.example.app:/callback (RFC 8252 §7.1)"
        )),
    }
}

/// An informational URI (`client_uri`, `logo_uri`…): absolute `https` (or `http`), no
/// fragment. Never fetched by the server.
fn web_uri(s: &str, field: &str) -> Result<(), OAuthError> {
    let ok = s.len() <= MAX_URI_BYTES
        && uri::registration_problem(s).is_none()
        && matches!(
            uri::scheme_kind(s),
            uri::SchemeKind::Https | uri::SchemeKind::Http | uri::SchemeKind::HttpLoopback
        );
    if ok {
        Ok(())
    } else {
        Err(bad(format!(
            "{field} must be an absolute https URL without a fragment"
        )))
    }
}
