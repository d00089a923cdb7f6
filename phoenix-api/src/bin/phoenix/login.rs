//! `phoenix login`, `phoenix logout` and `phoenix whoami`: the saved session of a server.

use std::io::Read;

use anyhow::{Context, Result, bail};
use phoenix_api::service::UserInfo;
use phoenix_store::Role;
use serde::Serialize;

use crate::args::{LoginArgs, ServerUrl};
use crate::client::{ApiClient, session_from};
use crate::output::{Details, Format};

/// What login reports.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct LoginReport {
    server: String,
    username: String,
    role: String,
    token_file: String,
    access_expires_at: u64,
}

/// Asks for the password, logs in, saves the tokens and reports who the server says we are.
pub fn login(args: &LoginArgs, format: Format) -> Result<()> {
    let client = ApiClient::new(&args.server.server)?;
    let password = read_password(
        args.password_stdin,
        &format!("Password for {} on {}: ", args.username, client.base()),
    )?;
    let tokens = client.login(&args.username, &password)?;
    let session = session_from(tokens, &args.username);
    let expires = session.access_expires_at;
    client.credentials().put(client.base(), session)?;
    let me: UserInfo = client.get("/api/v1/auth/me")?;
    let report = LoginReport {
        server: client.base().to_owned(),
        username: me.username,
        role: Role::from(me.role).to_string(),
        token_file: client.credentials().path().display().to_string(),
        access_expires_at: expires,
    };
    format.print(&report, |r| {
        format!(
            "Logged in to {} as {} (role {}).\nTokens saved in {}.\n",
            r.server, r.username, r.role, r.token_file
        )
    })
}

/// Forgets the tokens of the server.
pub fn logout(server: &ServerUrl, format: Format) -> Result<()> {
    let client = ApiClient::new(server)?;
    let removed = client.credentials().remove(client.base())?;
    let report = serde_json::json!({
        "server": client.base(),
        "loggedOut": removed,
    });
    format.print(&report, |_| {
        let mut d = Details::new();
        d.add("server", client.base());
        d.add(
            "status",
            if removed {
                "logged out"
            } else {
                "was not logged in"
            },
        );
        d.render()
    })
}

/// Asks the server who the saved session belongs to.
pub fn whoami(server: &ServerUrl, format: Format) -> Result<()> {
    let client = ApiClient::new(server)?;
    let me: UserInfo = client.get("/api/v1/auth/me")?;
    format.print(&me, |me| {
        let mut d = Details::new();
        d.add("server", client.base())
            .add("username", me.username.as_str())
            .add("role", Role::from(me.role).to_string());
        d.render()
    })
}

/// A password: the first line of standard input with `from_stdin`, else asked on the
/// terminal without echo with `prompt`. An empty password is refused.
pub fn read_password(from_stdin: bool, prompt: &str) -> Result<String> {
    let password = if from_stdin {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the password from standard input")?;
        text.lines().next().unwrap_or_default().to_owned()
    } else {
        rpassword::prompt_password(prompt)
            .context("cannot read the password from the terminal (use --password-stdin)")?
    };
    if password.is_empty() {
        bail!("the password is empty");
    }
    Ok(password)
}
