//! Users: list and create (admin only).

use phoenix_store::{NewUser, Role, User, UserStore};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Service;
use crate::auth::{Principal, password};
use crate::{Error, Result};

/// A role, as the API writes it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum RoleName {
    /// Reads experiments, pipelines and results.
    Viewer,
    /// Also creates and runs experiments.
    Experimenter,
    /// Also promotes and rolls back pipelines, and manages anyone's experiments.
    Operator,
    /// Also manages users.
    Admin,
}

impl From<Role> for RoleName {
    fn from(role: Role) -> Self {
        match role {
            Role::Viewer => Self::Viewer,
            Role::Experimenter => Self::Experimenter,
            Role::Operator => Self::Operator,
            Role::Admin => Self::Admin,
        }
    }
}

impl From<RoleName> for Role {
    fn from(role: RoleName) -> Self {
        match role {
            RoleName::Viewer => Self::Viewer,
            RoleName::Experimenter => Self::Experimenter,
            RoleName::Operator => Self::Operator,
            RoleName::Admin => Self::Admin,
        }
    }
}

/// A user as the API shows it (never the password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UserInfo {
    /// The login name.
    pub username: String,
    /// The role.
    pub role: RoleName,
}

impl From<User> for UserInfo {
    fn from(user: User) -> Self {
        Self {
            username: user.name,
            role: user.role.into(),
        }
    }
}

/// `POST /api/v1/users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserRequest {
    /// The login name: 1 to 128 bytes, no control characters, no surrounding spaces.
    pub username: String,
    /// At least 8 characters.
    pub password: String,
    /// The role.
    pub role: RoleName,
}

impl Service {
    /// Every user, by name.
    pub async fn list_users(&self, principal: &Principal) -> Result<Vec<UserInfo>> {
        principal.require(Role::Admin, "listing users")?;
        let users = self.inner.store.users().await?;
        Ok(users.into_iter().map(UserInfo::from).collect())
    }

    /// Creates a user.
    pub async fn create_user(
        &self,
        principal: &Principal,
        request: &NewUserRequest,
    ) -> Result<UserInfo> {
        principal.require(Role::Admin, "creating users")?;
        let mut errors = Vec::new();
        if let Err(e) = phoenix_store::user::validate_name(&request.username) {
            errors.push(phoenix_core::experiment::FieldError {
                path: "username".to_owned(),
                message: e.to_string(),
            });
        }
        if let Err(e) = password::check_new(&request.password) {
            errors.extend(e.field_errors());
        }
        if !errors.is_empty() {
            return Err(Error::InvalidInput {
                message: format!("{} invalid field(s) in the new user", errors.len()),
                errors,
            });
        }
        let secret = request.password.clone();
        let hash = tokio::task::spawn_blocking(move || password::hash(&secret))
            .await
            .map_err(|e| Error::Internal(format!("password hashing failed: {e}")))??;
        let user = NewUser {
            name: request.username.clone(),
            password_hash: hash,
            role: request.role.into(),
        };
        let created = self.inner.store.create_user(&user).await?;
        tracing::info!(by = %principal.name, user = %created.name, role = %created.role, "user created");
        Ok(created.into())
    }
}
