//! `phoenix user ...`: the server's users (admin only).

use anyhow::Result;
use phoenix_api::service::UserInfo;
use phoenix_store::Role;

use crate::args::{UserArgs, UserCommand};
use crate::client::ApiClient;
use crate::login::read_password;
use crate::output::{Format, Table};

/// Runs one user command.
pub fn run(args: &UserArgs, format: Format) -> Result<()> {
    let client = ApiClient::new(&args.server.server)?;
    match &args.command {
        UserCommand::List => {
            let users: Vec<UserInfo> = client.get("/api/v1/users")?;
            format.print(&users, |users| table(users))
        }
        UserCommand::Create {
            username,
            role,
            password_stdin,
        } => {
            let password = read_password(
                *password_stdin,
                &format!("Password for the new user {username}: "),
            )?;
            let body = serde_json::json!({
                "username": username,
                "password": password,
                "role": role.to_string(),
            });
            let created: UserInfo = client.post("/api/v1/users", Some(&body))?;
            format.print(&created, |user| table(std::slice::from_ref(user)))
        }
    }
}

fn table(users: &[UserInfo]) -> String {
    if users.is_empty() {
        return "no users\n".to_owned();
    }
    let mut table = Table::new(["USERNAME", "ROLE"]);
    for user in users {
        table.row([user.username.clone(), Role::from(user.role).to_string()]);
    }
    table.render()
}
