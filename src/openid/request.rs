//! The OpenID parameters of an authorization request (Core §3.1.2.1), and what the app's
//! decision says about the user's authentication.

use serde::{Deserialize, Serialize};

use crate::{clock::UnixTime, error::OAuthError, wire::form::Form};

/// The `prompt` parameter (Core §3.1.2.1): a set of `none`, `login`, `consent` and
/// `select_account`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Prompt(u8);

const PROMPTS: [(&str, u8); 4] = [
    ("none", 1),
    ("login", 2),
    ("consent", 4),
    ("select_account", 8),
];

impl Prompt {
    /// `prompt=none`: no page may be shown. The app decides at once (a session and a remembered
    /// consent) or refuses with `Decision::LoginRequired`, `ConsentRequired`,
    /// `InteractionRequired` or `AccountSelectionRequired`; a page it answers with anyway is
    /// not shown, and the client gets `interaction_required`.
    pub fn none(self) -> bool {
        self.0 & 1 != 0
    }

    /// `prompt=login`: the user must authenticate again, now, whatever session they have; an
    /// approval must say so ([`Authentication::at`] no earlier than the request), or the client
    /// gets `login_required`.
    pub fn login(self) -> bool {
        self.0 & 2 != 0
    }

    /// `prompt=consent`: ask for consent again, even if it was given before.
    pub fn consent(self) -> bool {
        self.0 & 4 != 0
    }

    /// `prompt=select_account`: let the user choose among their accounts.
    pub fn select_account(self) -> bool {
        self.0 & 8 != 0
    }

    fn parse(value: &str) -> Result<Self, OAuthError> {
        let mut bits = 0;
        for word in value.split(' ').filter(|w| !w.is_empty()) {
            let (_, bit) = PROMPTS
                .iter()
                .find(|(name, _)| *name == word)
                .ok_or_else(|| OAuthError::invalid_request("unsupported prompt value"))?;
            bits |= bit;
        }
        // Core §3.1.2.1: `none` with any other value is an error.
        if bits & 1 != 0 && bits != 1 {
            return Err(OAuthError::invalid_request(
                "prompt=none cannot be combined with another value",
            ));
        }
        Ok(Self(bits))
    }
}

/// The OpenID parameters of an authorization request whose scope has `openid`, validated:
/// what the app's authorization handler reads from `PendingAuthorization::openid`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OpenIdRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nonce: Option<String>,
    #[serde(default)]
    prompt: Prompt,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_age: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    login_hint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    acr_values: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ui_locales: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    claims_locales: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    display: Option<String>,
    /// The `sub` of a verified `id_token_hint` (as issued to this client).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hint_subject: Option<String>,
}

impl OpenIdRequest {
    /// The client's `nonce`, returned in the ID token.
    pub fn nonce(&self) -> Option<&str> {
        self.nonce.as_deref()
    }

    /// The `prompt` values.
    pub fn prompt(&self) -> Prompt {
        self.prompt
    }

    /// `max_age` (seconds): the user must have authenticated at most this long ago, or
    /// authenticate again; an approval must say when ([`Authentication::at`]), or the client
    /// gets `login_required`.
    pub fn max_age(&self) -> Option<u64> {
        self.max_age
    }

    /// `login_hint`: who the client thinks is signing in (an email, a user name).
    pub fn login_hint(&self) -> Option<&str> {
        self.login_hint.as_deref()
    }

    /// `acr_values`, in order of preference.
    pub fn acr_values(&self) -> impl Iterator<Item = &str> {
        words(self.acr_values.as_deref())
    }

    /// `ui_locales` (BCP 47 tags), in order of preference.
    pub fn ui_locales(&self) -> impl Iterator<Item = &str> {
        words(self.ui_locales.as_deref())
    }

    /// `claims_locales`, in order of preference.
    pub fn claims_locales(&self) -> impl Iterator<Item = &str> {
        words(self.claims_locales.as_deref())
    }

    /// `display`: `page`, `popup`, `touch` or `wap`.
    pub fn display(&self) -> Option<&str> {
        self.display.as_deref()
    }

    /// The `sub` of the `id_token_hint`, when the request had one: an ID token this server
    /// issued to this client (its signature checked; it may have expired). With `prompt=none`,
    /// a signed-in user other than this one is `Decision::LoginRequired`. For a client with
    /// pairwise subjects it is the pairwise one: compare with
    /// [`AuthServer::subject_for`](crate::AuthServer::subject_for).
    pub fn id_token_hint_subject(&self) -> Option<&str> {
        self.hint_subject.as_deref()
    }

    /// With the verified hint's subject.
    pub(crate) fn with_hint_subject(mut self, subject: String) -> Self {
        self.hint_subject = Some(subject);
        self
    }

    /// Whether an authentication at `auth_time` satisfies this request at `now`, for a request
    /// that started at `started`: not older than `max_age`, and for `prompt=login` not older
    /// than the request.
    pub(crate) fn fresh_enough(
        &self,
        auth_time: Option<UnixTime>,
        started: UnixTime,
        now: UnixTime,
    ) -> bool {
        let needs_time = self.max_age.is_some() || self.prompt.login();
        let Some(at) = auth_time else {
            return !needs_time;
        };
        let within_max_age = self.max_age.is_none_or(|max| now.saturating_sub(at) <= max);
        let after_start = !self.prompt.login() || at >= started;
        within_max_age && after_start
    }
}

fn words(value: Option<&str>) -> impl Iterator<Item = &str> {
    value.unwrap_or("").split(' ').filter(|w| !w.is_empty())
}

/// The OpenID parameters of an authorization request (its scope has `openid`), each checked;
/// `id_token_hint` is returned apart, for the caller to verify. `nonce` is required when the
/// request has no PKCE challenge (`with_pkce` false): then only the nonce binds the code to
/// the client's session (RFC 9700 §2.1.1). Values longer than `max_bytes` are refused.
pub(crate) fn parse_request(
    form: &Form,
    with_pkce: bool,
    max_bytes: usize,
) -> Result<(OpenIdRequest, Option<String>), OAuthError> {
    let text = |name: &'static str| -> Result<Option<String>, OAuthError> {
        match form.get(name) {
            None | Some("") => Ok(None),
            Some(v) if v.len() > max_bytes => {
                Err(OAuthError::invalid_request(format!("{name} is too long")))
            }
            Some(v) => Ok(Some(v.to_owned())),
        }
    };
    let nonce = text("nonce")?;
    if nonce.is_none() && !with_pkce {
        return Err(OAuthError::invalid_request(
            "nonce is required for an OpenID request without PKCE",
        ));
    }
    let prompt = match form.get("prompt") {
        Some(p) => Prompt::parse(p)?,
        None => Prompt::default(),
    };
    let max_age = match form.get("max_age") {
        None | Some("") => None,
        Some(v) if v.len() <= 12 && v.bytes().all(|b| b.is_ascii_digit()) => v.parse().ok(),
        Some(_) => {
            return Err(OAuthError::invalid_request(
                "max_age must be a number of seconds",
            ));
        }
    };
    // Core §15.1: `display` must never make the request fail; a value Core does not define is
    // not passed on.
    let display =
        text("display")?.filter(|d| ["page", "popup", "touch", "wap"].contains(&d.as_str()));
    let request = OpenIdRequest {
        nonce,
        prompt,
        max_age,
        login_hint: text("login_hint")?,
        acr_values: text("acr_values")?,
        ui_locales: text("ui_locales")?,
        claims_locales: text("claims_locales")?,
        display,
        hint_subject: None,
    };
    Ok((request, text("id_token_hint")?))
}

/// How and when the user authenticated, as the app's approval says (Core §2): the ID token's
/// `auth_time`, `acr`, `amr` and `sid`. Needed whenever the request had `max_age` or
/// `prompt=login`.
///
/// ```
/// use tower_oauth2::{endpoint::Decision, openid::Authentication};
///
/// # let session_started_at = 1_700_000_000;
/// let decision = Decision::approve("user-42").authenticated(
///     Authentication::at(session_started_at)
///         .amr(["pwd", "otp"])
///         .session_id("c2Vzc2lvbi0x"),
/// );
/// # let _ = decision;
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authentication {
    time: UnixTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    acr: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    amr: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    session_id: Option<String>,
}

impl Authentication {
    /// The user authenticated at `time` (Unix seconds): their login, not this request.
    pub fn at(time: UnixTime) -> Self {
        Self {
            time,
            acr: None,
            amr: Vec::new(),
            session_id: None,
        }
    }

    /// The authentication context class it satisfied (`acr`).
    #[must_use]
    pub fn acr(mut self, acr: impl Into<String>) -> Self {
        self.acr = Some(acr.into());
        self
    }

    /// The methods used (`amr`, RFC 8176: `pwd`, `otp`, `hwk`, …).
    #[must_use]
    pub fn amr<I, S>(mut self, methods: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.amr = methods.into_iter().map(Into::into).collect();
        self
    }

    /// The app's session (`sid`): logout with an ID token of this session revokes the
    /// session's grants.
    #[must_use]
    pub fn session_id(mut self, sid: impl Into<String>) -> Self {
        self.session_id = Some(sid.into());
        self
    }

    /// When the user authenticated.
    pub fn time(&self) -> UnixTime {
        self.time
    }

    /// The `acr`, if given.
    pub fn acr_value(&self) -> Option<&str> {
        self.acr.as_deref()
    }

    /// The `amr` values.
    pub fn methods(&self) -> &[String] {
        &self.amr
    }

    /// The session id, if given.
    pub fn session(&self) -> Option<&str> {
        self.session_id.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_values() {
        let p = Prompt::parse("login consent").unwrap();
        assert!(p.login() && p.consent() && !p.none() && !p.select_account());
        assert!(Prompt::parse("none").unwrap().none());
        assert_eq!(
            Prompt::parse("none login").unwrap_err().code(),
            "invalid_request"
        );
        assert!(Prompt::parse("sometimes").is_err());
    }

    #[test]
    fn freshness() {
        let form = |q: &str| Form::parse(q.as_bytes()).unwrap();
        let (r, _) = parse_request(&form("max_age=60"), true, 512).unwrap();
        assert!(r.fresh_enough(Some(950), 990, 1000));
        assert!(!r.fresh_enough(Some(939), 990, 1000));
        assert!(!r.fresh_enough(None, 990, 1000));
        let (r, _) = parse_request(&form("prompt=login"), true, 512).unwrap();
        assert!(r.fresh_enough(Some(990), 990, 1000));
        assert!(!r.fresh_enough(Some(989), 990, 1000));
        let (r, _) = parse_request(&form(""), true, 512).unwrap();
        assert!(r.fresh_enough(None, 990, 1000));
        assert!(parse_request(&form("max_age=-1"), true, 512).is_err());
        assert!(parse_request(&form(""), false, 512).is_err());
        assert!(parse_request(&form("nonce=n"), false, 512).is_ok());
    }
}
