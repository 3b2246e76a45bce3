//! RFC 8628, the device authorization grant: a device (a CLI, a TV) asks for a device code and a
//! short user code; the user enters the code elsewhere and decides; the device polls the token
//! endpoint until then.
//!
//! Three short-lived records over the store's record primitive, so every backend serves the
//! flow and polls and decisions may land on different instances:
//! - the request (`device`, keyed by the device code's hash): client, scope, resources, the user
//!   code, and its state — pending, approved (by whom, for what) or denied. It outlives its
//!   expiry by one lifetime so a late poll is told `expired_token`, not `invalid_grant`;
//! - the user code (`device_user`, keyed by the normalised code's hash): which request it names,
//!   until the request expires; taken (single use) by the decision;
//! - the polling clock (`device_poll`): when the device last polled and its interval, kept apart
//!   from the request so a poll never overwrites a decision.
//!
//! The approved request is taken atomically by the poll that gets the tokens: of concurrent
//! polls exactly one does; any later one is `invalid_grant`.

use std::sync::Arc;

use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::{
    Approval, NewGrant, TokenRequest, TokenResponse, authorize::Decision, context::Context,
    resolve_scope,
};
use crate::{
    client::{Client, GrantType},
    clock::UnixTime,
    error::{ErrorKind, OAuthError},
    resource::Resources,
    scope::Scope,
    store::records::Records,
    token::{self, TokenHash},
};

/// The RFC 8628 §6.1 alphabet: consonants only, no look-alikes, no words.
const ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
/// Characters in a user code (34.6 bits).
const USER_CODE_LEN: usize = 8;
/// RFC 8628 §3.5: a `slow_down` adds this to the interval.
const SLOW_DOWN_STEP: u64 = 5;

/// What the device authorization endpoint answers (RFC 8628 §3.2), before the URLs are added.
pub(crate) struct DeviceAuthorization {
    pub(crate) device_code: token::SecretToken,
    /// As shown to the user: `XXXX-XXXX`.
    pub(crate) user_code: String,
    pub(crate) expires_in: u64,
    pub(crate) interval: u64,
}

#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
enum State {
    Pending,
    Approved { subject: String, scope: String },
    Denied,
}

#[derive(Serialize, Deserialize)]
struct Request {
    client_id: String,
    scope: String,
    resources: String,
    /// Normalised (no dash, upper case).
    user_code: String,
    expires_at: UnixTime,
    state: State,
}

crate::store::records::json_record!(Request, "device");

/// Which request a user code names: the device code's hash.
#[derive(Serialize, Deserialize)]
struct UserCode {
    device: String,
}

crate::store::records::json_record!(UserCode, "device_user");

/// When the device last polled, and the interval it must keep.
#[derive(Serialize, Deserialize)]
struct Poll {
    last: UnixTime,
    interval: u64,
}

crate::store::records::json_record!(Poll, "device_poll");

/// A user code as typed: case and a dash (or spaces) do not matter. `None` when it cannot be
/// one.
pub(crate) fn normalize_user_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == USER_CODE_LEN && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

fn new_user_code() -> String {
    let mut rng = rand::rng();
    (0..USER_CODE_LEN)
        .map(|_| {
            // Rejection sampling: 240 is the largest multiple of 20 below 256, so every letter
            // is equally likely.
            loop {
                let b = (rng.next_u32() & 0xff) as u8;
                if b < 240 {
                    break char::from(ALPHABET[usize::from(b % 20)]);
                }
            }
        })
        .collect()
}

/// `ABCDEFGH` as shown: `ABCD-EFGH`.
pub(crate) fn display_user_code(code: &str) -> String {
    format!("{}-{}", &code[..4], &code[4..])
}

/// The device grant must be on, for the server and the client.
fn check_allowed(ctx: &Context, client: &Client) -> Result<(), OAuthError> {
    if !ctx
        .config()
        .allowed_grant_types
        .contains(GrantType::DeviceCode)
    {
        return Err(OAuthError::unsupported_grant_type(
            "the device grant is not enabled on this server",
        ));
    }
    if !ctx.grant_allowed(client, GrantType::DeviceCode) {
        return Err(OAuthError::unauthorized_client(
            "this client may not use the device grant",
        ));
    }
    Ok(())
}

/// RFC 8628 §3.1–3.2: a new device authorization request for `client`, asking `scope` and
/// `resources` (checked as at the authorization endpoint).
pub(crate) async fn start(
    ctx: &Context,
    request: &TokenRequest<'_>,
) -> Result<DeviceAuthorization, OAuthError> {
    let client = request.client;
    check_allowed(ctx, client)?;
    let scope = resolve_scope(&ctx.config, client, request.form.get("scope"))?;
    let resources = ctx.requested_resources(client, request.resources()?)?;
    let now = ctx.now();
    let lifetime = ctx.config().device_code_lifetime.as_secs();
    let expires_at = now.saturating_add(lifetime);
    let device_code = token::generate();
    let device = device_code.hash();
    // A user code unique among live ones: put-if-absent, a few tries (34.6 bits each).
    let codes = Records::<UserCode>::new(&*ctx.store);
    let mut user_code = None;
    for _ in 0..8 {
        let candidate = new_user_code();
        let entry = UserCode {
            device: device.to_hex(),
        };
        if codes
            .put_if_absent(&TokenHash::of(&candidate), &entry, expires_at, now)
            .await?
        {
            user_code = Some(candidate);
            break;
        }
    }
    let user_code = user_code
        .ok_or_else(|| OAuthError::temporarily_unavailable("no free user code: try again"))?;
    let record = Request {
        client_id: client.id().to_owned(),
        scope: scope.to_string(),
        resources: resources.as_str().to_owned(),
        user_code: user_code.clone(),
        expires_at,
        state: State::Pending,
    };
    // Kept one lifetime past its expiry, so a late poll hears `expired_token`.
    Records::<Request>::new(&*ctx.store)
        .put(&device, &record, expires_at.saturating_add(lifetime), now)
        .await?;
    Ok(DeviceAuthorization {
        device_code,
        user_code: display_user_code(&user_code),
        expires_in: lifetime,
        interval: ctx.config().device_poll_interval.as_secs(),
    })
}

/// RFC 8628 §3.4–3.5: a poll with `device_code`.
pub(super) async fn exchange(
    ctx: &Context,
    request: &TokenRequest<'_>,
) -> Result<TokenResponse, OAuthError> {
    let client = request.client;
    let code = request
        .form
        .get("device_code")
        .ok_or_else(|| OAuthError::invalid_request("missing device_code"))?;
    let unknown = || OAuthError::invalid_grant("unknown, used or expired device_code");
    let device = TokenHash::of(code);
    let requests = Records::<Request>::new(&*ctx.store);
    let now = ctx.now();
    let Some(found) = requests.get(&device, now).await? else {
        return Err(unknown());
    };
    // Another client's code: as if unknown, and nothing changes.
    if found.client_id != client.id() {
        return Err(unknown());
    }
    if now >= found.expires_at {
        return Err(OAuthError::new(
            ErrorKind::ExpiredToken,
            "the device code expired: start again",
        ));
    }
    match found.state {
        State::Pending => Err(pending(ctx, &device, found.expires_at, now).await?),
        State::Denied => {
            // Told once; the request is gone after.
            requests.take(&device, now).await?;
            Err(OAuthError::new(
                ErrorKind::AccessDenied,
                "the user denied the request",
            ))
        }
        State::Approved { .. } => {
            // Of concurrent polls, the one that takes the record gets the tokens.
            let Some(taken) = requests.take(&device, now).await? else {
                return Err(unknown());
            };
            let State::Approved { subject, scope } = taken.state else {
                return Err(unknown());
            };
            let scope = Scope::parse(&scope).map_err(|_| unknown())?;
            let resources = Resources::from_stored(&taken.resources);
            NewGrant::prepare(
                ctx,
                client,
                token::Route::random(),
                Approval {
                    subject: Some(Arc::from(subject)),
                    scope,
                    resources: resources.clone(),
                },
                resources,
                GrantType::DeviceCode,
            )?
            .create(ctx)
            .await
        }
    }
}

/// The answer to a poll of an undecided request: `slow_down` (the interval grows by 5 s) when
/// it came sooner than the interval after the last, else `authorization_pending`.
async fn pending(
    ctx: &Context,
    device: &TokenHash,
    expires_at: UnixTime,
    now: UnixTime,
) -> Result<OAuthError, OAuthError> {
    let polls = Records::<Poll>::new(&*ctx.store);
    let last = polls.get(device, now).await?;
    let (answer, interval) = match last {
        Some(p) if now < p.last.saturating_add(p.interval) => (
            OAuthError::new(ErrorKind::SlowDown, "polling too fast: wait the interval"),
            p.interval + SLOW_DOWN_STEP,
        ),
        Some(p) => (pending_error(), p.interval),
        // The first poll may come at once.
        None => (pending_error(), ctx.config().device_poll_interval.as_secs()),
    };
    polls
        .put(
            device,
            &Poll {
                last: now,
                interval,
            },
            expires_at,
            now,
        )
        .await?;
    Ok(answer)
}

fn pending_error() -> OAuthError {
    OAuthError::new(
        ErrorKind::AuthorizationPending,
        "the user has not decided yet",
    )
}

/// A device request as the user's page sees it, found by its user code. `Debug` hides the code.
#[derive(Clone)]
pub struct PendingDevice {
    client_id: String,
    scope: Scope,
    resources: Resources,
    user_code: String,
    expires_at: UnixTime,
}

impl std::fmt::Debug for PendingDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingDevice")
            .field("client_id", &self.client_id)
            .field("scope", &self.scope)
            .field("resources", &self.resources)
            .field("user_code", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl PendingDevice {
    /// The client that asks.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }
    /// The scope it asks for.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }
    /// The resources (RFC 8707) it asks for, if any.
    pub fn resources(&self) -> &Resources {
        &self.resources
    }
    /// The user code, as the device shows it (`XXXX-XXXX`): for the page to ask the user to
    /// check it against the device's screen (RFC 8628 §5.4).
    pub fn user_code(&self) -> &str {
        &self.user_code
    }
    /// When it expires.
    pub fn expires_at(&self) -> UnixTime {
        self.expires_at
    }
}

/// The undecided, unexpired request a user code names, and its key.
async fn lookup(
    ctx: &Context,
    user_code: &str,
) -> Result<Option<(TokenHash, Request)>, OAuthError> {
    let Some(code) = normalize_user_code(user_code) else {
        return Ok(None);
    };
    let now = ctx.now();
    let Some(entry) = Records::<UserCode>::new(&*ctx.store)
        .get(&TokenHash::of(&code), now)
        .await?
    else {
        return Ok(None);
    };
    let Some(device) = TokenHash::parse_hex(&entry.device) else {
        return Ok(None);
    };
    let found = Records::<Request>::new(&*ctx.store)
        .get(&device, now)
        .await?
        .filter(|r| r.user_code == code && r.state == State::Pending && now < r.expires_at);
    Ok(found.map(|r| (device, r)))
}

/// The pending request `user_code` names, for the user's page.
pub(crate) async fn find(
    ctx: &Context,
    user_code: &str,
) -> Result<Option<PendingDevice>, OAuthError> {
    Ok(lookup(ctx, user_code).await?.map(|(_, r)| PendingDevice {
        client_id: r.client_id,
        scope: Scope::parse(&r.scope).unwrap_or_default(),
        resources: Resources::from_stored(&r.resources),
        user_code: display_user_code(&r.user_code),
        expires_at: r.expires_at,
    }))
}

/// Record the user's decision on the request `user_code` names: the user code is used up
/// (of concurrent decisions, one applies). `Ok(false)` when it names no pending request.
pub(crate) async fn decide(
    ctx: &Context,
    user_code: &str,
    decision: Decision,
) -> Result<bool, OAuthError> {
    let Some((device, request)) = lookup(ctx, user_code).await? else {
        return Ok(false);
    };
    // Checked before the user code is used up, so a refused approval can be made again.
    let state = match decision {
        Decision::Approve { subject, scope, .. } => {
            let asked = Scope::parse(&request.scope).unwrap_or_default();
            let granted = match scope {
                Some(s) if !s.is_subset_of(&asked) => {
                    return Err(OAuthError::invalid_scope(
                        "the approved scope exceeds what the device asked for",
                    ));
                }
                Some(s) => s,
                None => asked,
            };
            State::Approved {
                subject,
                scope: granted.to_string(),
            }
        }
        // Any refusal (a device request has no `prompt`) is a denial.
        _ => State::Denied,
    };
    let now = ctx.now();
    // Single use: the decision that takes the user code applies.
    if Records::<UserCode>::new(&*ctx.store)
        .take(&TokenHash::of(&request.user_code), now)
        .await?
        .is_none()
    {
        return Ok(false);
    }
    let lifetime = ctx.config().device_code_lifetime.as_secs();
    let decided = Request { state, ..request };
    Ok(Records::<Request>::new(&*ctx.store)
        .put_if_present(
            &device,
            &decided,
            decided.expires_at.saturating_add(lifetime),
            now,
        )
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_come_from_the_alphabet_and_are_read_loosely() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let code = new_user_code();
            assert_eq!(code.len(), 8);
            assert!(code.bytes().all(|b| ALPHABET.contains(&b)), "{code}");
            seen.insert(code);
        }
        assert!(seen.len() > 990, "random enough");
        assert_eq!(
            normalize_user_code("wdjb-mjht").as_deref(),
            Some("WDJBMJHT")
        );
        assert_eq!(
            normalize_user_code(" WDJB MJHT ").as_deref(),
            Some("WDJBMJHT")
        );
        assert_eq!(normalize_user_code("WDJBMJHT").as_deref(), Some("WDJBMJHT"));
        for bad in ["WDJB-MJH", "WDJB-MJHTX", "WDJB-MJHA", "WDJB-MJH1", ""] {
            assert_eq!(normalize_user_code(bad), None, "{bad}");
        }
        assert_eq!(display_user_code("WDJBMJHT"), "WDJB-MJHT");
    }
}
