//! Authorization codes: the [`CodeStore`] concern and its records. A code is redeemed at most
//! once, and the grant it starts is created in the same atomic step.

use std::sync::Arc;

use async_trait::async_trait;

use super::{GrantRecord, NewAccessToken, NewRefreshToken};
use crate::{
    clock::UnixTime,
    error::StoreError,
    resource::Resources,
    scope::Scope,
    token::{GrantId, TokenHash},
};

/// PKCE (RFC 7636) challenge method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodeChallengeMethod {
    /// `S256`: BASE64URL(SHA256(verifier)).
    S256,
    /// `plain`: the verifier itself; only when enabled.
    Plain,
}

impl CodeChallengeMethod {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::S256 => "S256",
            Self::Plain => "plain",
        }
    }

    /// The method of a wire name (RFC 7636 §4.3; case-sensitive), if it is one.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "S256" => Some(Self::S256),
            "plain" => Some(Self::Plain),
            _ => None,
        }
    }
}

/// A stored authorization code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationCodeRecord {
    /// The code's hash.
    pub hash: TokenHash,
    /// The client it was issued to.
    pub client_id: Arc<str>,
    /// The resource owner who approved it.
    pub subject: Arc<str>,
    /// The `redirect_uri` of the authorization request, if it named one; the exchange must repeat
    /// it exactly (RFC 6749 §4.1.3).
    pub redirect_uri: Option<String>,
    /// The approved scope.
    pub scope: Scope,
    /// The resources (RFC 8707) the approval covers.
    pub resources: Resources,
    /// PKCE challenge and method.
    pub code_challenge: Option<(String, CodeChallengeMethod)>,
    /// When it was issued.
    pub issued_at: UnixTime,
    /// When it expires.
    pub expires_at: UnixTime,
    /// The grant its first redemption started; set once redeemed.
    pub redeemed_by: Option<GrantId>,
}

/// What [`CodeStore::redeem_code`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redemption {
    /// The code was unused; it is now redeemed and the grant created.
    Redeemed,
    /// The code had already been redeemed, starting this grant.
    AlreadyRedeemed(GrantId),
    /// No such code (or it was purged).
    Missing,
}

/// Authorization codes (RFC 6749 §4.1): kept hashed, redeemed once.
#[async_trait]
pub trait CodeStore: Send + Sync + 'static {
    /// Store a new authorization code.
    async fn create_code(&self, code: AuthorizationCodeRecord) -> Result<(), StoreError>;

    /// An authorization code, redeemed or not.
    async fn find_code(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<AuthorizationCodeRecord>, StoreError>;

    /// The code about to be redeemed: [`find_code`](Self::find_code), or a record of it this
    /// instance wrote earlier, when the caller's next step is
    /// [`redeem_code`](Self::redeem_code) — which checks in the store, atomically, that it is
    /// not redeemed yet (nothing else about a code ever changes). A caller refused on such a
    /// record asks `find_code` before answering. Default: `find_code`.
    async fn find_code_to_use(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<AuthorizationCodeRecord>, StoreError> {
        self.find_code(hash).await
    }

    /// Redeem a code once and create the grant it starts, atomically. If a grant with this id
    /// was already revoked, its tokens are born revoked.
    async fn redeem_code(
        &self,
        hash: &TokenHash,
        grant: GrantRecord,
        access: NewAccessToken,
        refresh: Option<NewRefreshToken>,
    ) -> Result<Redemption, StoreError>;
}
