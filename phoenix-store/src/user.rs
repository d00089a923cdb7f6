//! Users of the API: name, password hash, role, disabled flag.
//!
//! The store keeps the password hash as an opaque string; hashing and checking passwords is
//! the API's job.

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The longest user name, in bytes.
pub const MAX_USER_NAME_LEN: usize = 128;

/// What a user may do. Roles are ordered: each includes what the ones below it may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads experiments, pipelines and results.
    Viewer,
    /// Also creates and runs experiments.
    Experimenter,
    /// Also promotes and rolls back pipelines.
    Operator,
    /// Also manages users.
    Admin,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Self; 4] = [
        Self::Viewer,
        Self::Experimenter,
        Self::Operator,
        Self::Admin,
    ];

    /// The role as written in APIs and stores: `viewer`, `experimenter`, `operator`, `admin`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Experimenter => "experimenter",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| Error::UnknownRole(s.to_owned()))
    }
}

/// A stored user. Its `Debug` output leaves the password hash out.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// The login name; unique.
    pub name: String,
    /// The password hash, as the API wrote it.
    pub password_hash: String,
    /// What the user may do.
    pub role: Role,
    /// Whether the user is locked out.
    pub disabled: bool,
    /// When the user was created.
    pub created_at: DateTime<Utc>,
    /// When the user was last changed.
    pub updated_at: DateTime<Utc>,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .field("password_hash", &"<redacted>")
            .field("role", &self.role)
            .field("disabled", &self.disabled)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

/// A user to create; it starts enabled. Its `Debug` output leaves the password hash out.
#[derive(Clone, PartialEq, Eq)]
pub struct NewUser {
    /// The login name: 1 to [`MAX_USER_NAME_LEN`] bytes, no control characters, no
    /// surrounding spaces.
    pub name: String,
    /// The password hash.
    pub password_hash: String,
    /// What the user may do.
    pub role: Role,
}

impl NewUser {
    /// Checks the name and the password hash; the store refuses what fails here.
    pub fn validate(&self) -> Result<()> {
        validate_name(&self.name)?;
        validate_password_hash(&self.password_hash)
    }
}

impl fmt::Debug for NewUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewUser")
            .field("name", &self.name)
            .field("password_hash", &"<redacted>")
            .field("role", &self.role)
            .finish()
    }
}

/// Changes to a user; `None` keeps the stored value. Its `Debug` output leaves the password
/// hash out.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct UserUpdate {
    /// A new password hash.
    pub password_hash: Option<String>,
    /// A new role.
    pub role: Option<Role>,
}

impl UserUpdate {
    /// Checks the new password hash, if any; the store refuses what fails here.
    pub fn validate(&self) -> Result<()> {
        self.password_hash
            .as_deref()
            .map_or(Ok(()), validate_password_hash)
    }
}

impl fmt::Debug for UserUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hash = self.password_hash.as_ref().map(|_| "<redacted>");
        f.debug_struct("UserUpdate")
            .field("password_hash", &hash)
            .field("role", &self.role)
            .finish()
    }
}

/// Checks a user name: 1 to [`MAX_USER_NAME_LEN`] bytes, no control characters, no
/// surrounding spaces.
pub fn validate_name(name: &str) -> Result<()> {
    let invalid = |message: &str| {
        Err(Error::InvalidUser {
            field: "name",
            message: format!("{name:?} {message}"),
        })
    };
    if name.is_empty() {
        return invalid("is empty");
    }
    if name.len() > MAX_USER_NAME_LEN {
        return invalid(&format!("is longer than {MAX_USER_NAME_LEN} bytes"));
    }
    if name.chars().any(char::is_control) {
        return invalid("contains a control character");
    }
    if name.trim() != name {
        return invalid("starts or ends with a space");
    }
    Ok(())
}

/// Checks a password hash: any text without a NUL character (which PostgreSQL text cannot
/// store). The hash itself is not shown in the error.
pub fn validate_password_hash(hash: &str) -> Result<()> {
    if hash.contains('\0') {
        return Err(Error::InvalidUser {
            field: "password_hash",
            message: "contains a NUL character, which cannot be stored".to_owned(),
        });
    }
    Ok(())
}

/// Keeps the API's users.
///
/// Errors: [`Error::UserNotFound`], [`Error::UserExists`], [`Error::InvalidUser`], and
/// [`Error::Database`] for anything the backend reports.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Stores a new, enabled user and returns it.
    async fn create_user(&self, user: &NewUser) -> Result<User>;

    /// The user with this name.
    async fn user(&self, name: &str) -> Result<User>;

    /// Every user, by name.
    async fn users(&self) -> Result<Vec<User>>;

    /// Applies `update` to the user and returns what is stored.
    async fn update_user(&self, name: &str, update: &UserUpdate) -> Result<User>;

    /// Locks the user out, or lets them back in; returns what is stored.
    async fn set_user_disabled(&self, name: &str, disabled: bool) -> Result<User>;

    /// How many users there are (the API creates the first admin when there are none).
    async fn user_count(&self) -> Result<u64>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_round_trip() {
        assert!(Role::Viewer < Role::Experimenter);
        assert!(Role::Experimenter < Role::Operator);
        assert!(Role::Operator < Role::Admin);
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        let err = "root".parse::<Role>().unwrap_err();
        assert!(err.to_string().contains("\"root\""), "{err}");
    }

    #[test]
    fn debug_output_leaves_the_hash_out() {
        let user = NewUser {
            name: "alice".into(),
            password_hash: "$argon2id$secret".into(),
            role: Role::Admin,
        };
        let text = format!("{user:?}");
        assert!(text.contains("alice") && !text.contains("secret"), "{text}");
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_name("alice@example.com").is_ok());
        for bad in ["", " alice", "alice ", "al\nice"] {
            let err = validate_name(bad).unwrap_err();
            assert!(err.to_string().starts_with("invalid user name"), "{err}");
        }
        assert!(validate_name(&"a".repeat(MAX_USER_NAME_LEN + 1)).is_err());
        assert!(validate_name("al\0ice").is_err());
    }

    #[test]
    fn password_hashes_without_nul_are_accepted() {
        assert!(validate_password_hash("$argon2id$v=19$abc").is_ok());
        let err = validate_password_hash("secret\0hash").unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidUser {
                    field: "password_hash",
                    ..
                }
            ),
            "{err}"
        );
        assert!(!err.to_string().contains("secret"), "{err}");
        let update = UserUpdate {
            password_hash: Some("a\0b".into()),
            role: None,
        };
        assert!(update.validate().is_err());
        assert!(UserUpdate::default().validate().is_ok());
    }
}
