//! Resource-owner authentication for the password grant: the [`UserAuthenticator`] trait, which
//! any `Fn(String, String) -> impl Future<Output = Option<String>>` closure implements.
//!
//! ```
//! use tower_oauth2::{user::UserAuthenticator, Client};
//!
//! // Username and password in, the user's subject identifier out (None: wrong credentials).
//! let users = |username: String, password: String| async move {
//!     (username == "alice" && password == "correct horse").then(|| "user-42".to_owned())
//! };
//! # let client = Client::public("c").build().unwrap();
//! # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! let subject = rt.block_on(users.authenticate("alice", "correct horse", &client)).unwrap();
//! assert_eq!(subject.as_deref(), Some("user-42"));
//! ```

use std::{collections::HashMap, future::Future};

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use crate::{client::Client, error::StoreError, token::sha256_matches};

/// Checks a resource owner's username and password (RFC 6749 §4.3).
///
/// Implement it over your user database with a slow password hash (argon2, bcrypt); run the hash
/// off the async executor.
#[async_trait]
pub trait UserAuthenticator: Send + Sync + 'static {
    /// The user's subject identifier if the credentials are right, `None` if not.
    /// An `Err` (the user database is down) is answered with 503, not `invalid_grant`.
    async fn authenticate(
        &self,
        username: &str,
        password: &str,
        client: &Client,
    ) -> Result<Option<String>, StoreError>;
}

#[async_trait]
impl<F, Fut> UserAuthenticator for F
where
    F: Fn(String, String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Option<String>> + Send,
{
    async fn authenticate(
        &self,
        username: &str,
        password: &str,
        _client: &Client,
    ) -> Result<Option<String>, StoreError> {
        Ok(self(username.to_owned(), password.to_owned()).await)
    }
}

/// A fixed set of users for demos and tests. Passwords are kept as SHA-256 and compared in
/// constant time — fine for demo accounts, **not** for real users' passwords (use a slow hash).
#[derive(Default, Clone)]
pub struct DemoUsers {
    users: HashMap<String, [u8; 32]>,
}

impl std::fmt::Debug for DemoUsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.users.keys()).finish()
    }
}

impl DemoUsers {
    /// No users.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a user whose subject is the username.
    #[must_use]
    pub fn with(mut self, username: impl Into<String>, password: impl AsRef<str>) -> Self {
        self.users.insert(
            username.into(),
            Sha256::digest(password.as_ref().as_bytes()).into(),
        );
        self
    }
}

#[async_trait]
impl UserAuthenticator for DemoUsers {
    async fn authenticate(
        &self,
        username: &str,
        password: &str,
        _client: &Client,
    ) -> Result<Option<String>, StoreError> {
        // Compare against a fixed value for unknown users so timing does not reveal which exist.
        let (stored, known) = match self.users.get(username) {
            Some(h) => (h, true),
            None => (&[0u8; 32], false),
        };
        Ok((sha256_matches(password, stored) && known).then(|| username.to_owned()))
    }
}
