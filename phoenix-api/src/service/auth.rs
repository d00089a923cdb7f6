//! Login, refresh, `me`, and the first admin.

use std::net::IpAddr;

use phoenix_store::{NewUser, Role, UserStore};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Service, UserInfo};
use crate::auth::{Principal, TokenKind, TokenPair, password};
use crate::config::BOOTSTRAP_ADMIN;
use crate::{Error, Result};

/// `POST /api/v1/auth/login`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The user name.
    pub username: String,
    /// The password.
    pub password: String,
}

/// `POST /api/v1/auth/refresh`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// A refresh token from login or an earlier refresh.
    pub refresh_token: String,
}

/// The longest user name a login may name, in bytes; longer ones are bad credentials.
pub const MAX_USERNAME_LEN: usize = 128;

/// The one message for every failed login, so that it does not tell which names exist.
const BAD_CREDENTIALS: &str = "invalid user name or password";

impl Service {
    /// Checks a user's password and returns a token pair. Attempts are rate limited per
    /// user name and per `client` address.
    ///
    /// A user name longer than [`MAX_USERNAME_LEN`] bytes is refused as bad credentials
    /// before it reaches the limiter; a successful login gives its attempt back, so that
    /// only failures count (see [`LoginLimiter`](crate::auth::LoginLimiter)).
    pub async fn login(&self, request: &LoginRequest, client: Option<IpAddr>) -> Result<TokenPair> {
        if request.username.len() > MAX_USERNAME_LEN {
            return Err(Error::Unauthenticated(BAD_CREDENTIALS.to_owned()));
        }
        self.inner.limiter.check(&request.username, client)?;
        let user = match self.inner.store.user(&request.username).await {
            Ok(user) => Some(user),
            Err(phoenix_store::Error::UserNotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        let password = request.password.clone();
        // Hashing takes tens of milliseconds: keep it off the async workers. An unknown
        // user is checked against a fixed hash so that both cases take as long.
        let hash = user
            .as_ref()
            .map_or_else(dummy_hash, |u| u.password_hash.clone());
        let matches = tokio::task::spawn_blocking(move || password::verify(&password, &hash))
            .await
            .map_err(|e| Error::Internal(format!("password check failed: {e}")))?;
        match user {
            Some(user) if matches && !user.disabled => {
                tracing::info!(user = %user.name, "login");
                self.inner.limiter.succeeded(&request.username, client);
                self.inner
                    .tokens
                    .pair(&Principal::new(user.name, user.role))
            }
            _ => Err(Error::Unauthenticated(BAD_CREDENTIALS.to_owned())),
        }
    }

    /// A new token pair for a valid refresh token, with the user's current role. A user
    /// deleted or disabled since gets none.
    pub async fn refresh(&self, request: &RefreshRequest) -> Result<TokenPair> {
        let claims = self
            .inner
            .tokens
            .verify(&request.refresh_token, TokenKind::Refresh)?;
        let user = match self.inner.store.user(&claims.sub).await {
            Ok(user) if !user.disabled => user,
            Ok(_) | Err(phoenix_store::Error::UserNotFound { .. }) => {
                return Err(Error::Unauthenticated(
                    "the user no longer exists or is disabled".to_owned(),
                ));
            }
            Err(e) => return Err(e.into()),
        };
        let auth_time = claims.auth_time.unwrap_or(claims.iat);
        self.inner
            .tokens
            .pair_since(&Principal::new(user.name, user.role), auth_time)
    }

    /// The caller whose access token `bearer` is (`Bearer <token>` or the token alone).
    pub fn authenticate(&self, bearer: &str) -> Result<Principal> {
        self.inner.tokens.authenticate(bearer)
    }

    /// The caller, as the token names them.
    pub fn me(&self, principal: &Principal) -> UserInfo {
        UserInfo {
            username: principal.name.clone(),
            role: principal.role.into(),
        }
    }

    /// Creates the first admin, `admin`, when the store has no user: with `password`, or a
    /// random one that is returned so that the caller can show it once. `None` when users
    /// exist already.
    pub async fn bootstrap_admin(&self, password: Option<&str>) -> Result<Option<String>> {
        if self.inner.store.user_count().await? > 0 {
            return Ok(None);
        }
        let (password, generated) = match password {
            Some(p) => (p.to_owned(), false),
            None => (password::random(), true),
        };
        password::check_new(&password).map_err(|_| {
            Error::Config(format!(
                "the bootstrap admin password must have at least {} characters",
                password::MIN_PASSWORD_LEN
            ))
        })?;
        let hash = password::hash(&password)?;
        let user = NewUser {
            name: BOOTSTRAP_ADMIN.to_owned(),
            password_hash: hash,
            role: Role::Admin,
        };
        match self.inner.store.create_user(&user).await {
            Ok(_) => Ok(generated.then_some(password)),
            // Another server created users at the same moment: nothing to do.
            Err(phoenix_store::Error::UserExists { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// A valid Argon2 hash of a random password, computed once.
fn dummy_hash() -> String {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        password::hash(&password::random())
            .expect("hashing a random password with the fixed Argon2 parameters cannot fail")
    })
    .clone()
}
