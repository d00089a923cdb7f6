//! The command line: every command, flag and environment variable. Values are checked here,
//! by clap's value parsers, so that a bad value is a usage error (exit 2) before anything runs.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use phoenix_core::experiment::ExperimentId;
use phoenix_core::phase::Phase;
use phoenix_generator::catalog::Override;
use phoenix_sim::profile::parse_positive_duration;
use phoenix_store::Role;

use crate::output::Format;

/// Phoenix: cut the cost of host process metrics while keeping critical processes visible.
///
/// `serve` runs the API server; `login`, `logout`, `whoami`, `experiment` and `user` talk to
/// it (see their `--server`). `pipeline` and `sim` run on this machine through the generator
/// and simulator libraries and need no server.
///
/// Exit codes: 0 success, 1 failure, 2 usage error.
#[derive(Debug, Parser)]
#[command(name = "phoenix", version, propagate_version = true)]
pub struct Cli {
    /// Output format: aligned tables for people, JSON or YAML for programs.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Format::Table)]
    pub output: Format,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the API server (REST, gRPC and WebSocket on one port) until Ctrl-C or SIGTERM.
    Serve(ServeArgs),
    /// Log in to the server and keep the tokens under the user's config directory.
    Login(LoginArgs),
    /// Forget the tokens kept for the server.
    Logout(ServerArgs),
    /// Show who the saved session of the server belongs to, and its role.
    Whoami(ServerArgs),
    /// Create, run, follow and promote experiments on the server.
    Experiment(ExperimentArgs),
    /// Users of the server: list and create (admin).
    User(UserArgs),
    /// Collector pipeline templates: list, render, validate, predict (local, no server needed).
    #[command(subcommand)]
    Pipeline(PipelineCommand),
    /// The process-load simulator: profiles and synthetic runs (local, no server needed).
    #[command(subcommand)]
    Sim(SimCommand),
}

/// A Phoenix API server's URL: `http://HOST[:PORT][/PREFIX]`, without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl(String);

impl ServerUrl {
    /// Checks `text`: plain `http://` with a host (this build has no TLS).
    pub fn parse(text: &str) -> Result<Self, String> {
        let trimmed = text.trim().trim_end_matches('/');
        if trimmed.starts_with("https://") {
            return Err(
                "https:// is not supported (this build has no TLS): reach a TLS server through a local port-forward or proxy and use its http:// address".to_owned(),
            );
        }
        let Some(rest) = trimmed.strip_prefix("http://") else {
            return Err("expected an http:// URL, e.g. http://127.0.0.1:8080".to_owned());
        };
        let uri: ureq::http::Uri = trimmed
            .parse()
            .map_err(|e| format!("not a valid URL: {e}"))?;
        let host = uri.host().unwrap_or_default();
        if host.is_empty() || rest.contains(['?', '#']) || rest.contains('@') {
            return Err(
                "expected http://HOST[:PORT][/PREFIX] without user, query or fragment".to_owned(),
            );
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The URL, without a trailing slash.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The server a command talks to.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// The Phoenix API server: plain http:// only (for a TLS ingress, use a local
    /// port-forward or proxy and its http:// address).
    #[arg(
        long,
        global = true,
        env = "PHOENIX_SERVER",
        default_value = "http://127.0.0.1:8080",
        value_name = "URL",
        value_parser = ServerUrl::parse
    )]
    pub server: ServerUrl,
}

/// `phoenix serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(
        long,
        env = "PHOENIX_BIND",
        default_value = "127.0.0.1:8080",
        value_name = "ADDR"
    )]
    pub bind: SocketAddr,
    /// Store URL: `sqlite://FILE`, `postgres://...` or `memory:`.
    #[arg(
        long,
        env = "PHOENIX_DATABASE_URL",
        default_value = "sqlite://phoenix.db",
        value_name = "URL"
    )]
    pub database: String,
    /// File holding the JWT signing secret. Precedence: this flag, then env
    /// PHOENIX_JWT_SECRET_FILE, then env PHOENIX_JWT_SECRET (the secret itself), else a random
    /// secret per process.
    #[arg(long, env = "PHOENIX_JWT_SECRET_FILE", value_name = "PATH")]
    pub jwt_secret_file: Option<PathBuf>,
    /// Git working tree that promotion commits winning configs into.
    #[arg(long, env = "PHOENIX_GITOPS_REPO", value_name = "PATH")]
    pub gitops_repo: Option<PathBuf>,
}

/// `phoenix login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The server.
    #[command(flatten)]
    pub server: ServerArgs,
    /// User name.
    #[arg(long, short = 'u', env = "PHOENIX_USERNAME", default_value = "admin")]
    pub username: String,
    /// Read the password from standard input instead of asking on the terminal.
    #[arg(long)]
    pub password_stdin: bool,
}

/// `phoenix experiment ...`.
#[derive(Debug, Args)]
pub struct ExperimentArgs {
    /// The server.
    #[command(flatten)]
    pub server: ServerArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: ExperimentCommand,
}

/// An experiment id (`exp-` and 8 lowercase letters or digits).
fn parse_id(text: &str) -> Result<ExperimentId, String> {
    text.parse::<ExperimentId>().map_err(|e| e.to_string())
}

/// A phase name.
fn parse_phase(text: &str) -> Result<Phase, String> {
    Phase::parse(text).ok_or_else(|| {
        let known: Vec<_> = Phase::ALL.iter().map(|p| p.as_str()).collect();
        format!("expected one of {}", known.join(", "))
    })
}

/// A role name.
fn parse_role(text: &str) -> Result<Role, String> {
    text.parse::<Role>().map_err(|_| {
        let known: Vec<_> = Role::ALL.iter().map(ToString::to_string).collect();
        format!("expected one of {}", known.join(", "))
    })
}

/// A `--param` item.
fn parse_override(text: &str) -> Result<Override, String> {
    text.parse::<Override>().map_err(|e| e.to_string())
}

/// A `--critical` pattern, checked as the catalog checks its own.
fn parse_critical(text: &str) -> Result<String, String> {
    phoenix_generator::catalog::pattern::check_portable(text)?;
    Ok(text.to_owned())
}

/// `phoenix experiment ...` subcommands.
#[derive(Debug, Subcommand)]
pub enum ExperimentCommand {
    /// Create an experiment from a spec file (YAML or JSON; see examples/experiments/).
    Create {
        /// The spec file; `-` reads standard input.
        #[arg(short = 'f', long = "file", value_name = "PATH")]
        file: PathBuf,
    },
    /// List experiments, oldest first.
    List {
        /// Only experiments in this phase: pending, initializing, running, analyzing,
        /// completed, failed, cancelled, promoted or rolledBack.
        #[arg(long, value_parser = parse_phase)]
        phase: Option<Phase>,
        /// Only experiments of this owner.
        #[arg(long)]
        owner: Option<String>,
        /// One page of at most this many (1 to 1000); without it, every page is fetched.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: Option<u32>,
        /// Start after this paging token (printed on standard error when more remain).
        #[arg(long, value_name = "TOKEN")]
        after: Option<String>,
    },
    /// Show an experiment: its spec, phase and results.
    Get {
        /// Experiment id (exp-xxxxxxxx).
        #[arg(value_parser = parse_id)]
        id: ExperimentId,
    },
    /// Replace a pending experiment's spec with a spec file (YAML or JSON).
    Update {
        /// Experiment id.
        #[arg(value_parser = parse_id)]
        id: ExperimentId,
        /// The new spec file; `-` reads standard input.
        #[arg(short = 'f', long = "file", value_name = "PATH")]
        file: PathBuf,
    },
    /// Delete an experiment that is not running.
    Delete {
        /// Experiment id.
        #[arg(value_parser = parse_id)]
        id: ExperimentId,
    },
    /// Start a pending experiment.
    Start {
        /// Experiment id.
        #[arg(value_parser = parse_id)]
        id: ExperimentId,
    },
    /// Stop (cancel) a running experiment.
    Stop {
        /// Experiment id.
        #[arg(value_parser = parse_id)]
        id: ExperimentId,
    },
    /// Promote a completed experiment's candidate to the target's active pipeline.
    Promote {
        /// Experiment id.
        #[arg(value_parser = parse_id)]
        id: ExperimentId,
    },
    /// Roll a completed or promoted experiment back.
    Rollback {
        /// Experiment id.
        #[arg(value_parser = parse_id)]
        id: ExperimentId,
    },
    /// Print an experiment's event log.
    Events {
        /// Experiment id.
        #[arg(value_parser = parse_id)]
        id: ExperimentId,
    },
    /// Print the results of an analysed experiment.
    Results {
        /// Experiment id.
        #[arg(value_parser = parse_id)]
        id: ExperimentId,
    },
    /// Follow an experiment's events until the server ends the stream: exit 0 when the run
    /// completed (or was promoted or rolled back), 1 when it failed or was cancelled.
    Watch {
        /// Experiment id.
        #[arg(value_parser = parse_id)]
        id: ExperimentId,
        /// Give up (exit 1) when the run has not ended after this long, e.g. 30m.
        #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration)]
        timeout: Option<Duration>,
    },
}

/// `phoenix user ...`.
#[derive(Debug, Args)]
pub struct UserArgs {
    /// The server.
    #[command(flatten)]
    pub server: ServerArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: UserCommand,
}

/// `phoenix user ...` subcommands (admin only).
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// List the server's users and their roles.
    List,
    /// Create a user; the password is asked on the terminal (or read with --password-stdin).
    Create {
        /// The new user's name.
        username: String,
        /// Role: viewer, experimenter, operator or admin.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Read the password from standard input instead of asking on the terminal.
        #[arg(long)]
        password_stdin: bool,
    },
}

/// `phoenix pipeline ...` (runs locally).
#[derive(Debug, Subcommand)]
pub enum PipelineCommand {
    /// List the catalog's templates (local).
    Templates,
    /// Render a template to collector YAML or a Kubernetes ConfigMap (local).
    Render {
        /// Template name, e.g. process-topk-v1.
        template: String,
        #[command(flatten)]
        params: ParamArgs,
        /// Emit a v1 ConfigMap holding the config instead of the bare config.
        #[arg(long)]
        configmap: bool,
        /// Namespace of the ConfigMap.
        #[arg(long, requires = "configmap")]
        namespace: Option<String>,
    },
    /// Validate a collector config file; exits 1 when it has errors (local).
    Validate {
        /// The collector YAML.
        config: PathBuf,
        /// Critical process name pattern (regex) for the safety check; repeatable.
        #[arg(long = "critical", value_name = "PATTERN", value_parser = parse_critical)]
        critical: Vec<String>,
        /// Another config meant to run on the same node: report shared ports.
        #[arg(long, value_name = "CONFIG")]
        alongside: Option<PathBuf>,
    },
    /// Predict a config's effect on a simulated workload against a baseline (local).
    Predict(PredictArgs),
}

/// Template parameters.
#[derive(Debug, Clone, Args)]
pub struct ParamArgs {
    /// A template parameter, `name=value`; the value is JSON when it parses as JSON, else a
    /// string. `name.key=value` sets one key of a map parameter. Repeatable; applied after
    /// --params-file.
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = parse_override)]
    pub param: Vec<Override>,
    /// YAML or JSON file with a mapping of parameters.
    #[arg(long = "params-file", value_name = "FILE")]
    pub params_file: Option<PathBuf>,
}

/// `phoenix pipeline predict`.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// Candidate collector YAML (or use --template).
    #[arg(conflicts_with = "template", required_unless_present = "template")]
    pub config: Option<PathBuf>,
    /// Candidate template name.
    #[arg(long)]
    pub template: Option<String>,
    #[command(flatten)]
    pub params: ParamArgs,
    /// Baseline collector YAML; default: process-baseline-v1 with default parameters.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// OTLP JSON-lines recording (the collector's `file` exporter output).
    #[arg(long, conflicts_with_all = ["profile", "profile_file"])]
    pub recording: Option<PathBuf>,
    /// Simulator profile preset: realistic, high-cardinality, high-churn or chaos. A value
    /// with a path separator or an extension (`./host`, `host.yaml`) is read as a profile
    /// file; a bare name is always a preset.
    #[arg(long, default_value = "realistic", conflicts_with = "profile_file")]
    pub profile: String,
    /// A custom simulator profile file (YAML or JSON).
    #[arg(long, value_name = "PATH")]
    pub profile_file: Option<PathBuf>,
    /// Simulator seed (the same default as `sim run`).
    #[arg(long, default_value_t = phoenix_sim::DEFAULT_SEED)]
    pub seed: u64,
    /// Snapshots to simulate, at the faster of the two configs' collection intervals.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub scrapes: u64,
    /// Critical process name pattern (regex); repeatable. Default: the template's
    /// criticalProcesses when --template is used.
    #[arg(long = "critical", value_name = "PATTERN", value_parser = parse_critical)]
    pub critical: Vec<String>,
}

/// `phoenix sim ...` (runs locally).
#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// List the profile presets (local).
    Profiles,
    /// Simulate a host in memory and report what it produced (local).
    Run(SimRunArgs),
}

/// `phoenix sim run`.
#[derive(Debug, Args)]
pub struct SimRunArgs {
    /// A preset: realistic, high-cardinality, high-churn or chaos. A value with a path
    /// separator or an extension (`./host`, `host.yaml`) is read as a profile file; a bare
    /// name is always a preset.
    #[arg(long, default_value = "realistic", conflicts_with = "profile_file")]
    pub profile: String,
    /// A custom profile (YAML or JSON).
    #[arg(long, value_name = "PATH")]
    pub profile_file: Option<PathBuf>,
    /// Scale the profile's counted groups to this many processes.
    #[arg(long)]
    pub processes: Option<u32>,
    /// Seed: the same seed, profile and duration give the same output.
    #[arg(long, default_value_t = phoenix_sim::DEFAULT_SEED)]
    pub seed: u64,
    /// Simulated time to cover, e.g. 10m, 24h.
    #[arg(long, default_value = "1h", value_parser = parse_positive_duration)]
    pub duration: Duration,
    /// Time between scrapes.
    #[arg(long, default_value = "10s", value_parser = parse_positive_duration)]
    pub scrape_interval: Duration,
    /// Also write the scrapes as OTLP JSON lines (the collector file exporter's format).
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn output_is_global() {
        let cli = Cli::try_parse_from(["phoenix", "sim", "profiles", "--output", "json"]).unwrap();
        assert_eq!(cli.output, Format::Json);
    }

    #[test]
    fn server_is_taken_by_server_commands_only() {
        let cli = Cli::try_parse_from(["phoenix", "experiment", "list", "--server", "http://h:1/"])
            .unwrap();
        let Command::Experiment(args) = cli.command else {
            panic!("not an experiment command");
        };
        assert_eq!(args.server.server.as_str(), "http://h:1");
        assert!(
            Cli::try_parse_from(["phoenix", "sim", "profiles", "--server", "http://h"]).is_err()
        );
        assert!(Cli::try_parse_from(["phoenix", "--server", "http://h", "whoami"]).is_err());
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for args in [
            &["phoenix", "experiment", "list", "--phase", "done"][..],
            &["phoenix", "experiment", "get", "../users"],
            &[
                "phoenix",
                "pipeline",
                "render",
                "process-topk-v1",
                "--param",
                "topK",
            ],
            &["phoenix", "whoami", "--server", "https://example.com"],
            &["phoenix", "logout", "--server", "example.com:80"],
            &[
                "phoenix",
                "pipeline",
                "validate",
                "x.yaml",
                "--critical",
                "(bad",
            ],
            &["phoenix", "sim", "run", "--duration", "0s"],
            &[
                "phoenix",
                "experiment",
                "watch",
                "exp-abcd1234",
                "--timeout",
                "soon",
            ],
            &["phoenix", "user", "create", "bob", "--role", "root"],
        ] {
            let e = Cli::try_parse_from(args).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{args:?}");
        }
    }

    #[test]
    fn server_urls() {
        assert_eq!(
            ServerUrl::parse("http://127.0.0.1:8080/").unwrap().as_str(),
            "http://127.0.0.1:8080"
        );
        assert!(ServerUrl::parse("http://h/prefix").is_ok());
        let e = ServerUrl::parse("https://example.invalid").unwrap_err();
        assert!(e.contains("port-forward"), "{e}");
        assert!(ServerUrl::parse("127.0.0.1:8080").is_err());
        assert!(ServerUrl::parse("http://").is_err());
        assert!(ServerUrl::parse("http://user@h").is_err());
    }

    #[test]
    fn predict_and_sim_share_the_seed_default() {
        let sim = Cli::try_parse_from(["phoenix", "sim", "run"]).unwrap();
        let predict = Cli::try_parse_from(["phoenix", "pipeline", "predict", "x.yaml"]).unwrap();
        let Command::Sim(SimCommand::Run(sim)) = sim.command else {
            panic!("not sim run");
        };
        let Command::Pipeline(PipelineCommand::Predict(predict)) = predict.command else {
            panic!("not predict");
        };
        assert_eq!(sim.seed, predict.seed);
    }
}
