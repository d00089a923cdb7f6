//! `phoenix-sim`: the process-load simulator's command line.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use phoenix_core::experiment::ProfilePreset;
use phoenix_core::telemetry::{ProcessMetric, Timestamp};
use phoenix_sim::capture::{CaptureOptions, Capturer};
use phoenix_sim::export::{ExportOptions, OtlpGrpc, OtlpHttp, PrometheusServer};
use phoenix_sim::output::{Discard, JsonLines, JsonLinesFile, Pace, Sink};
use phoenix_sim::profile::parse_positive_duration;
use phoenix_sim::workers::{self, Caps, Supervisor, WORKER_COMMAND};
use phoenix_sim::{
    DEFAULT_START, Error, MetricSelection, Profile, Result, SimConfig, SimStats, Simulator,
};

/// Deterministic process-load simulator: synthetic hosts, real worker processes, /proc
/// capture and replay, in the OpenTelemetry hostmetrics process scraper's schema.
#[derive(Debug, Parser)]
#[command(name = "phoenix-sim", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Simulate a host and write its scrapes to a file, a collector or a Prometheus endpoint.
    Run(RunArgs),
    /// Real mode: start bounded worker processes with distinct names that burn CPU and hold
    /// memory by pattern; they all die with this command.
    Spawn(SpawnArgs),
    /// Read this host's /proc as the hostmetrics process scraper would.
    Capture(CaptureArgs),
    /// Read OTLP JSON lines (the simulator's or a collector's file exporter output) and send
    /// them to an output.
    Replay(ReplayArgs),
    /// List, show or describe profiles.
    Profiles {
        #[command(subcommand)]
        command: ProfilesCommand,
    },
    /// Runs as a real-mode worker (internal).
    #[command(name = WORKER_COMMAND, hide = true)]
    Worker {
        /// The worker spec.
        spec: String,
    },
}

#[derive(Debug, Args)]
struct ProfileArgs {
    /// A preset: realistic, high-cardinality, high-churn or chaos. A value with a path
    /// separator or an extension (`./host`, `host.yaml`) is read as a profile file.
    #[arg(long, default_value = "realistic", conflicts_with = "profile_file")]
    profile: String,
    /// A custom profile (YAML or JSON); see `phoenix-sim profiles schema`.
    #[arg(long, value_name = "PATH")]
    profile_file: Option<PathBuf>,
    /// Scale the profile's counted groups to this many processes.
    #[arg(long)]
    processes: Option<u32>,
    /// Seed: the same seed, profile and duration give the same output.
    #[arg(long, default_value_t = phoenix_sim::DEFAULT_SEED)]
    seed: u64,
}

impl ProfileArgs {
    fn load(&self) -> Result<Profile> {
        Profile::load(&self.profile, self.profile_file.as_deref(), self.processes)
    }
}

#[derive(Debug, Args)]
#[group(multiple = false)]
struct OutputArgs {
    /// Write OTLP JSON lines (the collector file exporter's format) to this file (`-` for
    /// standard output).
    #[arg(long, value_name = "PATH")]
    output: Option<PathBuf>,
    /// Export over OTLP/gRPC to this collector endpoint, e.g. http://127.0.0.1:4317.
    #[arg(long, value_name = "URL")]
    otlp_grpc: Option<String>,
    /// Export over OTLP/HTTP (protobuf) to this endpoint, e.g. http://127.0.0.1:4318.
    #[arg(long, value_name = "URL")]
    otlp_http: Option<String>,
    /// Serve the current snapshot and the simulator's metrics at http://ADDR/metrics
    /// (implies --realtime).
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:9464")]
    prometheus: Option<SocketAddr>,
}

impl OutputArgs {
    fn is_network(&self) -> bool {
        self.otlp_grpc.is_some() || self.otlp_http.is_some() || self.prometheus.is_some()
    }

    /// Creates the sink; called only once everything else is valid.
    fn open(&self, export: &ExportArgs) -> Result<Box<dyn Sink>> {
        let options = export.options();
        Ok(
            match (
                &self.output,
                &self.otlp_grpc,
                &self.otlp_http,
                self.prometheus,
            ) {
                (Some(path), ..) if path.as_os_str() == "-" => {
                    Box::new(JsonLines::new(std::io::stdout().lock(), "-"))
                }
                (Some(path), ..) => Box::new(JsonLinesFile::create(path)?),
                (_, Some(url), ..) => Box::new(OtlpGrpc::connect_with(url, options)?),
                (_, _, Some(url), _) => Box::new(OtlpHttp::with_options(url, options)?),
                (_, _, _, Some(addr)) => {
                    let server = PrometheusServer::start(addr)?;
                    eprintln!("serving http://{}/metrics", server.local_addr());
                    Box::new(server)
                }
                _ => Box::new(Discard),
            },
        )
    }
}

#[derive(Debug, Args)]
struct ExportArgs {
    /// OTLP outputs: longest wait for a connection.
    #[arg(long, default_value = "10s", value_parser = parse_positive_duration)]
    otlp_connect_timeout: Duration,
    /// OTLP outputs: longest wait for one request and its response.
    #[arg(long, default_value = "30s", value_parser = parse_positive_duration)]
    otlp_timeout: Duration,
    /// OTLP outputs: largest request in bytes; a larger snapshot is split between resources
    /// into several requests [default: 4 MiB minus 256 KiB, under the collector's default
    /// gRPC receive limit].
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1024..))]
    otlp_max_request_bytes: Option<u64>,
}

impl ExportArgs {
    fn options(&self) -> ExportOptions {
        let defaults = ExportOptions::default();
        ExportOptions {
            connect_timeout: self.otlp_connect_timeout,
            request_timeout: self.otlp_timeout,
            max_request_bytes: self
                .otlp_max_request_bytes
                .map_or(defaults.max_request_bytes, |b| {
                    usize::try_from(b).unwrap_or(usize::MAX)
                }),
        }
    }
}

#[derive(Debug, Args)]
struct MetricArgs {
    /// Turn every optional metric on.
    #[arg(long)]
    all_metrics: bool,
    /// Turn a metric on (repeatable), e.g. process.threads.
    #[arg(long, value_name = "METRIC", value_parser = parse_metric)]
    enable: Vec<ProcessMetric>,
    /// Turn a metric off (repeatable).
    #[arg(long, value_name = "METRIC", value_parser = parse_metric)]
    disable: Vec<ProcessMetric>,
}

impl MetricArgs {
    fn selection(&self) -> MetricSelection {
        let mut selection = if self.all_metrics {
            MetricSelection::all()
        } else {
            MetricSelection::default()
        };
        for m in &self.enable {
            selection = selection.with(*m, true);
        }
        for m in &self.disable {
            selection = selection.with(*m, false);
        }
        selection
    }
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    profile: ProfileArgs,
    /// Simulated time to cover, e.g. 10m, 24h.
    #[arg(long, default_value = "1h", value_parser = parse_positive_duration)]
    duration: Duration,
    /// Time between scrapes.
    #[arg(long, default_value = "10s", value_parser = parse_positive_duration)]
    scrape_interval: Duration,
    /// Simulated start: `now`, an RFC 3339 time or Unix seconds [default: 2026-01-01T00:00:00Z;
    /// for network outputs, now with --realtime, else now minus --duration].
    #[arg(long, value_parser = parse_start)]
    start: Option<Timestamp>,
    /// Produce one scrape per scrape interval of wall time instead of as fast as possible.
    #[arg(long)]
    realtime: bool,
    #[command(flatten)]
    metrics: MetricArgs,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    export: ExportArgs,
}

#[derive(Debug, Args)]
struct SpawnArgs {
    #[command(flatten)]
    profile: ProfileArgs,
    /// How long to run the workers [default: until interrupted].
    #[arg(long, value_parser = parse_positive_duration)]
    duration: Option<Duration>,
    /// Cap: most workers at once (at most 1024).
    #[arg(long, default_value_t = Caps::default().max_processes)]
    max_processes: u32,
    /// Cap: most memory all workers may hold at their peaks, in MiB.
    #[arg(long, default_value_t = Caps::default().max_memory_mib)]
    max_memory_mib: u64,
    /// Cap: most CPU all workers may use at their peaks, as a share of the cores (0..=1).
    #[arg(long, default_value_t = Caps::default().max_cpu_share)]
    max_cpu: f64,
}

#[derive(Debug, Args)]
struct CaptureArgs {
    /// How many captures to take.
    #[arg(long, default_value_t = 1)]
    count: u64,
    /// Time between captures.
    #[arg(long, default_value = "10s", value_parser = parse_positive_duration)]
    interval: Duration,
    #[command(flatten)]
    metrics: MetricArgs,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    export: ExportArgs,
}

#[derive(Debug, Args)]
struct ReplayArgs {
    /// OTLP JSON lines to read.
    file: PathBuf,
    /// Send one snapshot per interval of wall time instead of as fast as possible.
    #[arg(long, value_parser = parse_positive_duration)]
    interval: Option<Duration>,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    export: ExportArgs,
}

#[derive(Debug, Subcommand)]
enum ProfilesCommand {
    /// List the presets with their descriptions.
    List,
    /// Print a preset (or a custom profile file, validated) in full.
    Show {
        /// The preset name, or a path to a profile file.
        profile: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Yaml)]
        format: Format,
    },
    /// Print the JSON Schema of profile documents.
    Schema,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Yaml,
    Json,
}

fn parse_metric(text: &str) -> std::result::Result<ProcessMetric, String> {
    ProcessMetric::from_name(text).ok_or_else(|| {
        let names: Vec<_> = ProcessMetric::ALL.iter().map(|m| m.name()).collect();
        format!("unknown metric (known: {})", names.join(", "))
    })
}

fn parse_start(text: &str) -> std::result::Result<Timestamp, String> {
    let time = if text == "now" {
        SystemTime::now()
    } else if let Ok(secs) = text.parse::<u64>() {
        return Ok(Timestamp::from_secs(secs));
    } else {
        humantime::parse_rfc3339_weak(text)
            .map_err(|e| format!("{e} (write now, an RFC 3339 time or Unix seconds)"))?
    };
    let nanos = time
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_nanos();
    Ok(Timestamp::from_nanos(
        u64::try_from(nanos).unwrap_or(u64::MAX),
    ))
}

fn now() -> Timestamp {
    parse_start("now").unwrap_or(DEFAULT_START)
}

fn progress(total: u64) -> ProgressBar {
    if total < 200 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} scrapes {elapsed}/{eta}")
    {
        bar.set_style(style);
    }
    bar
}

fn run(args: &RunArgs) -> Result<()> {
    // Everything is checked before the output is created, so bad input writes nothing.
    let profile = args.profile.load()?;
    let realtime = args.realtime || args.output.prometheus.is_some();
    let start = args
        .start
        .unwrap_or(match (args.output.is_network(), realtime) {
            // Live: scrapes happen as the wall clock passes their times.
            (true, true) => now(),
            // Backfill: the last scrape is now.
            (true, false) => Timestamp::from_nanos(
                now()
                    .as_nanos()
                    .saturating_sub(u64::try_from(args.duration.as_nanos()).unwrap_or(0)),
            ),
            (false, _) => DEFAULT_START,
        });
    let config = SimConfig {
        seed: args.profile.seed,
        scrape_interval: args.scrape_interval,
        start,
        metrics: args.metrics.selection(),
    };
    let mut sim = Simulator::new(&profile, config)?;
    let scrapes = sim.scrapes_in(args.duration);
    if scrapes == 0 {
        return Err(Error::InvalidOption {
            option: "--duration".to_owned(),
            message: "is shorter than one scrape interval".to_owned(),
        });
    }
    let pace = if realtime { Pace::Realtime } else { Pace::Fast };
    let mut sink = args.output.open(&args.export)?;
    let bar = progress(scrapes);
    let summary = phoenix_sim::output::run(&mut sim, scrapes, pace, sink.as_mut(), &mut |n| {
        bar.set_position(n);
    })?;
    bar.finish_and_clear();
    eprintln!("{}: {summary}", profile.name);
    Ok(())
}

fn spawn(args: &SpawnArgs) -> Result<()> {
    let profile = args.profile.load()?;
    for ignored in workers::ignored_fields(&profile) {
        eprintln!(
            "warning: real mode ignores {}: {}",
            ignored.field, ignored.reason
        );
    }
    let caps = Caps {
        max_processes: args.max_processes,
        max_memory_mib: args.max_memory_mib,
        max_cpu_share: args.max_cpu,
    };
    let specs = workers::plan(&profile, &caps, args.profile.seed)?;
    let stop = Arc::new(AtomicBool::new(false));
    watch_signals(Arc::clone(&stop));
    let exe = std::env::current_exe().map_err(|e| Error::Worker {
        message: format!("finding this executable: {e}"),
    })?;
    let mut supervisor = Supervisor::spawn(&exe, specs)?;
    let mut out = std::io::stdout().lock();
    for worker in supervisor.workers() {
        let _ = writeln!(out, "worker {} {}", worker.pid, worker.spec.name);
    }
    let _ = writeln!(out, "ready {} workers", supervisor.workers().len());
    let _ = out.flush();
    drop(out);
    supervisor.run(args.duration, &stop, &mut |w| {
        println!("worker {} {} (replacement)", w.pid, w.spec.name);
    })?;
    eprintln!(
        "stopped: {} workers started, {} exited on their own",
        supervisor.starts(),
        supervisor.exits()
    );
    Ok(())
}

/// Sets `stop` on SIGINT or SIGTERM, from a background thread.
fn watch_signals(stop: Arc<AtomicBool>) {
    let _ = std::thread::Builder::new()
        .name("signals".to_owned())
        .spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                let Ok(mut term) =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                else {
                    return;
                };
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            });
            stop.store(true, Ordering::Relaxed);
        });
}

fn capture(args: &CaptureArgs) -> Result<()> {
    let mut capturer = Capturer::new(CaptureOptions {
        metrics: args.metrics.selection(),
    });
    let mut sink = args.output.open(&args.export)?;
    let mut stats = SimStats::default();
    for i in 0..args.count {
        if i > 0 {
            std::thread::sleep(args.interval);
        }
        let snapshot = capturer.capture()?;
        stats.scrapes += 1;
        stats.live_processes = snapshot.resources.len() as u64;
        stats.data_points += snapshot.data_point_count() as u64;
        sink.send(&snapshot, &stats)?;
    }
    sink.finish()?;
    let report = capturer.report();
    eprintln!(
        "{} captures: {} processes, {} data points in the last; {} processes vanished while read, {} executable paths and {} metrics unreadable",
        stats.scrapes,
        stats.live_processes,
        stats.data_points,
        report.skipped_processes,
        report.unreadable_paths,
        report.unreadable_metrics
    );
    Ok(())
}

fn replay(args: &ReplayArgs) -> Result<()> {
    // A first pass checks every line, so that a bad line writes nothing; the second streams
    // the snapshots one at a time, so that memory does not grow with the file. Reading twice
    // needs a regular file.
    if !std::fs::metadata(&args.file).is_ok_and(|m| m.is_file()) {
        return Err(Error::InvalidOption {
            option: "FILE".to_owned(),
            message: format!(
                "{} is not a readable regular file (replay reads it twice: to check it, then to send it)",
                args.file.display()
            ),
        });
    }
    for snapshot in phoenix_sim::replay::read_file(&args.file)? {
        snapshot?;
    }
    let mut sink = args.output.open(&args.export)?;
    let mut stats = SimStats::default();
    for (i, snapshot) in phoenix_sim::replay::read_file(&args.file)?.enumerate() {
        let snapshot = snapshot?;
        if let (Some(interval), true) = (args.interval, i > 0) {
            std::thread::sleep(interval);
        }
        stats.scrapes += 1;
        stats.live_processes = snapshot.resources.len() as u64;
        stats.data_points += snapshot.data_point_count() as u64;
        sink.send(&snapshot, &stats)?;
    }
    sink.finish()?;
    eprintln!(
        "replayed {} snapshots, {} data points",
        stats.scrapes, stats.data_points
    );
    Ok(())
}

fn profiles(command: &ProfilesCommand) -> Result<()> {
    match command {
        ProfilesCommand::List => {
            for preset in ProfilePreset::ALL {
                let profile = Profile::preset(preset);
                println!(
                    "{:<18} {:>5} processes  {}",
                    preset.as_str(),
                    profile.steady_processes(),
                    profile.description
                );
            }
        }
        ProfilesCommand::Show { profile, format } => {
            let profile = if Path::new(profile).exists() {
                let text = std::fs::read_to_string(profile).map_err(|e| Error::Io {
                    path: profile.into(),
                    source: e,
                })?;
                Profile::from_yaml(&text)?
            } else {
                Profile::preset_named(profile)?
            };
            match format {
                Format::Yaml => print!("{}", profile.to_yaml()),
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&profile).unwrap_or_default()
                ),
            }
        }
        ProfilesCommand::Schema => {
            println!(
                "{}",
                serde_json::to_string_pretty(&Profile::json_schema()).unwrap_or_default()
            );
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Run(args) => run(args),
        Command::Spawn(args) => spawn(args),
        Command::Capture(args) => capture(args),
        Command::Replay(args) => replay(args),
        Command::Profiles { command } => profiles(command),
        Command::Worker { spec } => workers::worker_main(spec),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
