//! Runs a parsed command line.

use anyhow::Result;

use crate::args::{Cli, Command};

/// Runs `cli`'s command; an error means exit code 1.
pub fn run(cli: &Cli) -> Result<()> {
    let format = cli.output;
    match &cli.command {
        Command::Serve(args) => crate::serve::run(args),
        Command::Login(args) => crate::login::login(args, format),
        Command::Logout(args) => crate::login::logout(&args.server, format),
        Command::Whoami(args) => crate::login::whoami(&args.server, format),
        Command::Experiment(args) => crate::experiment::run(args, format),
        Command::User(args) => crate::user::run(args, format),
        Command::Pipeline(command) => crate::pipeline::run(command, format),
        Command::Sim(command) => crate::sim::run(command, format),
    }
}
