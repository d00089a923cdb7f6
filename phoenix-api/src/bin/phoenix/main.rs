//! `phoenix`: the Phoenix server and its command-line client. Exit codes: 0 success, 1
//! failure, 2 usage error. See docs/cli.md.

mod app;
mod args;
mod client;
mod credentials;
mod experiment;
mod login;
mod output;
mod pipeline;
mod serve;
mod sim;
mod user;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Usage errors print clap's message and exit 2; --help and --version exit 0.
    let cli = args::Cli::parse();
    match app::run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of standard output went away (`phoenix experiment list | head -1`):
        // nothing is wrong, and nobody is left to tell.
        Err(e) if output::is_closed_stdout(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
