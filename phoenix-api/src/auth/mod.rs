//! Authentication: who is calling ([`Principal`]), the JWTs that say so ([`TokenIssuer`]),
//! password hashes ([`password`]) and the login rate limit ([`LoginLimiter`]).
//!
//! Tokens are HS256 JWTs. An access token (`typ: "access"`) authorises API calls for
//! [`ServerConfig::access_token_ttl`](crate::ServerConfig::access_token_ttl); a refresh token
//! (`typ: "refresh"`) only buys a new pair, for
//! [`ServerConfig::refresh_token_ttl`](crate::ServerConfig::refresh_token_ttl). Each kind is
//! refused where the other is expected.

mod hs256;
mod limiter;
pub mod password;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use phoenix_store::Role;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use limiter::LoginLimiter;

use crate::config::JwtSecret;
use crate::{Error, Result};

/// The issuer written into and required from every token.
pub const ISSUER: &str = "phoenix";

/// The caller of an operation: a user name and the role the token grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// The user name.
    pub name: String,
    /// The role.
    pub role: Role,
}

impl Principal {
    /// A principal with this name and role.
    pub fn new(name: impl Into<String>, role: Role) -> Self {
        Self {
            name: name.into(),
            role,
        }
    }

    /// `Ok` when the role is at least `needed`; otherwise [`Error::Forbidden`] naming
    /// `action`.
    pub fn require(&self, needed: Role, action: &str) -> Result<()> {
        if self.role >= needed {
            Ok(())
        } else {
            Err(Error::Forbidden {
                action: action.to_owned(),
                needed,
                user: self.name.clone(),
                role: self.role,
            })
        }
    }
}

/// Which kind of token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// Authorises API calls.
    Access,
    /// Buys a new token pair.
    Refresh,
}

/// The claims of a Phoenix token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user name.
    pub sub: String,
    /// The role at issue time.
    pub role: Role,
    /// Access or refresh.
    pub typ: TokenKind,
    /// The issuer, [`ISSUER`].
    pub iss: String,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
    /// Expires at, seconds since the epoch.
    pub exp: u64,
    /// When the user logged in with a password, seconds since the epoch: refresh tokens
    /// carry it down the chain of refreshes, which ends [`TokenIssuer::session_limit`]
    /// after it. Absent from tokens issued before it was introduced (then `iat` counts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<u64>,
}

/// A new access and refresh token pair, as login and refresh return it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TokenPair {
    /// Send as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    /// Send to `POST /api/v1/auth/refresh` for a new pair.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

/// Issues and verifies tokens with one HS256 secret.
#[derive(Clone)]
pub struct TokenIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    access_ttl: Duration,
    refresh_ttl: Duration,
    session_limit: Duration,
}

/// How long after a password login refreshes keep working, by default: 7 days.
pub const DEFAULT_SESSION_LIMIT: Duration = Duration::from_secs(7 * 24 * 3600);

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("access_ttl", &self.access_ttl)
            .field("refresh_ttl", &self.refresh_ttl)
            .finish_non_exhaustive()
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl TokenIssuer {
    /// An issuer signing with `secret`, with these lifetimes.
    pub fn new(secret: &JwtSecret, access_ttl: Duration, refresh_ttl: Duration) -> Self {
        hs256::install();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = 0;
        Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
            access_ttl,
            refresh_ttl,
            session_limit: DEFAULT_SESSION_LIMIT,
        }
    }

    /// Ends every chain of refreshes `limit` after its password login.
    #[must_use]
    pub fn with_session_limit(mut self, limit: Duration) -> Self {
        self.session_limit = limit;
        self
    }

    /// How long after a password login refreshes keep working.
    pub fn session_limit(&self) -> Duration {
        self.session_limit
    }

    /// A token of `kind` for `principal`, issued now.
    pub fn issue(&self, principal: &Principal, kind: TokenKind) -> Result<String> {
        let ttl = match kind {
            TokenKind::Access => self.access_ttl,
            TokenKind::Refresh => self.refresh_ttl,
        };
        self.issue_at(principal, kind, now_secs(), ttl)
    }

    /// A token issued at `iat` (seconds since the epoch), valid for `ttl`.
    pub fn issue_at(
        &self,
        principal: &Principal,
        kind: TokenKind,
        iat: u64,
        ttl: Duration,
    ) -> Result<String> {
        let claims = Claims {
            sub: principal.name.clone(),
            role: principal.role,
            typ: kind,
            iss: ISSUER.to_owned(),
            iat,
            exp: iat.saturating_add(ttl.as_secs()),
            auth_time: (kind == TokenKind::Refresh).then_some(iat),
        };
        self.sign(&claims)
    }

    fn sign(&self, claims: &Claims) -> Result<String> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| Error::Internal(format!("signing a token failed: {e}")))
    }

    /// A fresh access and refresh token pair for `principal`, after a password login now.
    pub fn pair(&self, principal: &Principal) -> Result<TokenPair> {
        self.pair_since(principal, now_secs())
    }

    /// A token pair for `principal`, whose password login was at `auth_time` (seconds since
    /// the epoch): the refresh token expires no later than the session limit after it.
    /// [`Error::Unauthenticated`] once that limit has passed.
    pub fn pair_since(&self, principal: &Principal, auth_time: u64) -> Result<TokenPair> {
        let now = now_secs();
        let session_end = auth_time.saturating_add(self.session_limit.as_secs());
        if now >= session_end {
            return Err(Error::Unauthenticated(
                "the session has reached its maximum lifetime: log in again".to_owned(),
            ));
        }
        let refresh = Claims {
            sub: principal.name.clone(),
            role: principal.role,
            typ: TokenKind::Refresh,
            iss: ISSUER.to_owned(),
            iat: now,
            exp: now
                .saturating_add(self.refresh_ttl.as_secs())
                .min(session_end),
            auth_time: Some(auth_time),
        };
        Ok(TokenPair {
            access_token: self.issue(principal, TokenKind::Access)?,
            refresh_token: self.sign(&refresh)?,
            token_type: "Bearer".to_owned(),
            expires_in: self.access_ttl.as_secs(),
        })
    }

    /// The claims of a valid token of `kind`: signed with this secret by HS256, issued by
    /// Phoenix, not expired. Anything else is [`Error::Unauthenticated`] with the reason.
    pub fn verify(&self, token: &str, kind: TokenKind) -> Result<Claims> {
        use jsonwebtoken::errors::ErrorKind as Jwt;
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| {
                let reason = match e.kind() {
                    Jwt::ExpiredSignature => "the token has expired",
                    Jwt::InvalidSignature => "the token's signature is not valid",
                    Jwt::InvalidAlgorithm | Jwt::InvalidAlgorithmName => {
                        "the token is not signed with HS256"
                    }
                    Jwt::InvalidIssuer => "the token was not issued by Phoenix",
                    _ if foreign_algorithm(token) => "the token is not signed with HS256",
                    _ => "the token is malformed",
                };
                Error::Unauthenticated(reason.to_owned())
            })?;
        let claims = data.claims;
        if claims.typ != kind {
            let message = match kind {
                TokenKind::Access => "a refresh token cannot be used as an access token",
                TokenKind::Refresh => "an access token cannot be used as a refresh token",
            };
            return Err(Error::Unauthenticated(message.to_owned()));
        }
        Ok(claims)
    }

    /// The principal a bearer access token names. `bearer` is the token, or a whole
    /// `Authorization` header value (`Bearer <token>`).
    pub fn authenticate(&self, bearer: &str) -> Result<Principal> {
        let token = bearer_token(bearer)?;
        let claims = self.verify(token, TokenKind::Access)?;
        Ok(Principal::new(claims.sub, claims.role))
    }
}

/// Whether the token's header names an algorithm other than HS256 (such as `none`, which
/// the JWT library does not even parse).
fn foreign_algorithm(token: &str) -> bool {
    use base64::Engine as _;
    let Some(header) = token.split('.').next() else {
        return false;
    };
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header) else {
        return false;
    };
    let Ok(header) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return false;
    };
    header
        .get("alg")
        .and_then(serde_json::Value::as_str)
        .is_some_and(|alg| alg != "HS256")
}

/// The token in `Bearer <token>`, or `value` itself when it has no scheme.
fn bearer_token(value: &str) -> Result<&str> {
    let value = value.trim();
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        Some((scheme, _)) => {
            return Err(Error::Unauthenticated(format!(
                "unsupported authorization scheme {scheme:?}: use Bearer"
            )));
        }
        None => value,
    };
    if token.is_empty() {
        return Err(Error::Unauthenticated(
            "the bearer token is empty".to_owned(),
        ));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer(secret: u8) -> TokenIssuer {
        let secret = JwtSecret::new(vec![secret; 32]).unwrap();
        TokenIssuer::new(
            &secret,
            Duration::from_secs(3600),
            Duration::from_secs(604_800),
        )
    }

    #[test]
    fn tokens_round_trip_by_kind() {
        let issuer = issuer(1);
        let alice = Principal::new("alice", Role::Operator);
        let pair = issuer.pair(&alice).unwrap();
        assert_eq!(pair.expires_in, 3600);
        assert_eq!(
            issuer
                .authenticate(&format!("Bearer {}", pair.access_token))
                .unwrap(),
            alice
        );
        let claims = issuer
            .verify(&pair.refresh_token, TokenKind::Refresh)
            .unwrap();
        assert_eq!(claims.exp - claims.iat, 604_800);
        let err = issuer.authenticate(&pair.refresh_token).unwrap_err();
        assert!(err.to_string().contains("refresh token"), "{err}");
        assert!(
            issuer
                .verify(&pair.access_token, TokenKind::Refresh)
                .is_err()
        );
    }

    #[test]
    fn foreign_expired_and_unsigned_tokens_are_refused() {
        let alice = Principal::new("alice", Role::Admin);
        let other = issuer(2).issue(&alice, TokenKind::Access).unwrap();
        let err = issuer(1).authenticate(&other).unwrap_err();
        assert!(err.to_string().contains("signature"), "{err}");

        let old = issuer(1)
            .issue_at(&alice, TokenKind::Access, 1_000, Duration::from_secs(60))
            .unwrap();
        let err = issuer(1).authenticate(&old).unwrap_err();
        assert!(err.to_string().contains("expired"), "{err}");

        // alg: none, with the claims of a valid token and no signature.
        let valid = issuer(1).issue(&alice, TokenKind::Access).unwrap();
        let claims = valid.split('.').nth(1).unwrap();
        let header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0"; // {"alg":"none","typ":"JWT"}
        for token in [format!("{header}.{claims}."), format!("{header}.{claims}")] {
            assert!(issuer(1).authenticate(&token).is_err(), "{token}");
        }
        assert!(issuer(1).authenticate("Basic abc").is_err());
        assert!(issuer(1).authenticate("Bearer ").is_err());
    }

    #[test]
    fn refresh_chains_end_at_the_session_limit() {
        let issuer = issuer(1).with_session_limit(Duration::from_secs(3600));
        let alice = Principal::new("alice", Role::Viewer);
        let now = now_secs();
        let pair = issuer.pair_since(&alice, now - 1800).unwrap();
        let claims = issuer
            .verify(&pair.refresh_token, TokenKind::Refresh)
            .unwrap();
        assert_eq!(claims.auth_time, Some(now - 1800), "carried down the chain");
        assert!(claims.exp <= now - 1800 + 3600, "never beyond the session");
        let err = issuer.pair_since(&alice, now - 3600).unwrap_err();
        assert!(err.to_string().contains("maximum lifetime"), "{err}");
    }

    #[test]
    fn roles_are_enforced() {
        let viewer = Principal::new("v", Role::Viewer);
        assert!(viewer.require(Role::Viewer, "reading").is_ok());
        let err = viewer
            .require(Role::Operator, "promoting an experiment")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "promoting an experiment needs the operator role; v is viewer"
        );
    }
}
