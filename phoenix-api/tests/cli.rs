//! The `phoenix` binary's commands that need no server: usage errors, `pipeline` and `sim`
//! in every output format, and the refusal of server commands without a login.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_phoenix");

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("cli-fixtures")
        .join(name)
}

/// Runs the binary with an empty config directory and no server in the environment.
fn phoenix(args: &[&str]) -> Output {
    let config = tempfile::tempdir().unwrap();
    Command::new(BIN)
        .args(args)
        .env("PHOENIX_CONFIG_DIR", config.path())
        .env_remove("PHOENIX_SERVER")
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// Runs a command that must succeed, in `format`, and parses its standard output.
fn parsed(args: &[&str], format: &str) -> Value {
    let mut all = args.to_vec();
    all.extend(["--output", format]);
    let out = phoenix(&all);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    let text = stdout(&out);
    match format {
        "json" => serde_json::from_str(&text).unwrap(),
        "yaml" => serde_yaml::from_str(&text).unwrap(),
        other => panic!("not a machine format: {other}"),
    }
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &[][..],
        &["no-such-command"],
        &["experiment", "get"],
        &["sim", "profiles", "--output", "xml"],
        &["sim", "run", "--duration", "0s"],
        &["pipeline", "predict"],
        // Bad values are usage errors, found before anything runs.
        &["experiment", "list", "--phase", "done"],
        &["experiment", "get", "not-an-id"],
        &["experiment", "watch", "exp-abcd1234", "--timeout", "0s"],
        &["pipeline", "render", "process-topk-v1", "--param", "topK"],
        &["pipeline", "validate", "x.yaml", "--critical", "(unclosed"],
        &["experiment", "list", "--server", "example.com:8080"],
        &["whoami", "--server", "https://example.invalid"],
        &["user", "create", "bob", "--role", "root"],
        // --server belongs to the commands that talk to a server.
        &["sim", "profiles", "--server", "http://127.0.0.1:9"],
        &["--server", "http://127.0.0.1:9", "experiment", "list"],
    ] {
        let out = phoenix(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).is_empty(), "{args:?} explains itself");
    }
    let help = phoenix(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    let text = stdout(&help);
    assert!(text.contains("no server needed"), "{text}");
    assert!(text.contains("Exit codes"), "{text}");

    let out = phoenix(&["whoami", "--server", "https://example.invalid"]);
    let err = stderr(&out);
    assert!(
        err.contains("not supported") && err.contains("port-forward"),
        "{err}"
    );
    let out = phoenix(&["experiment", "get", "not-an-id"]);
    assert!(
        stderr(&out).contains("invalid experiment id"),
        "{}",
        stderr(&out)
    );
    let out = phoenix(&["experiment", "list", "--phase", "done"]);
    assert!(stderr(&out).contains("rolledBack"), "{}", stderr(&out));
}

#[test]
fn templates_in_every_format() {
    for format in ["json", "yaml"] {
        let list = parsed(&["pipeline", "templates"], format);
        let names: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"process-topk-v1"), "{names:?}");
        assert_eq!(names.len(), 5);
    }
    let out = phoenix(&["pipeline", "templates"]);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("TEMPLATE"), "{text}");
    // Columns line up: the second column starts at the same offset on every line.
    let offset = lines[0].find("EXPECTED EFFECT").unwrap();
    for line in &lines[1..] {
        assert_eq!(line.as_bytes()[offset - 1], b' ', "{line}");
        assert_ne!(line.as_bytes()[offset], b' ', "{line}");
    }
}

#[test]
fn render_in_every_format_and_bad_parameters_named() {
    let json = parsed(
        &["pipeline", "render", "process-topk-v1", "--param", "topK=5"],
        "json",
    );
    assert!(json["receivers"]["hostmetrics"].is_object(), "{json}");
    let yaml = parsed(&["pipeline", "render", "process-topk-v1"], "yaml");
    assert!(yaml["service"]["pipelines"].is_object(), "{yaml}");
    let table = phoenix(&["pipeline", "render", "process-aggregated-v1"]);
    assert!(
        stdout(&table).starts_with("# Generated"),
        "{}",
        stdout(&table)
    );
    let configmap = parsed(
        &[
            "pipeline",
            "render",
            "process-baseline-v1",
            "--configmap",
            "--namespace",
            "obs",
        ],
        "yaml",
    );
    assert_eq!(configmap["kind"], "ConfigMap");
    assert_eq!(configmap["metadata"]["namespace"], "obs");

    let out = phoenix(&["pipeline", "render", "process-topk-v1", "--param", "topK=0"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.starts_with("error: ") && err.contains("topK"), "{err}");
    let out = phoenix(&["pipeline", "render", "process-nothing-v1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("process-nothing-v1"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn validate_names_the_bad_field_and_passes_good_configs() {
    let bad = fixture("unknown-field.yaml");
    let out = phoenix(&["pipeline", "validate", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.contains("processors.batch.send_batch_sizee"),
        "names the field: {err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("topk.yaml");
    let rendered = phoenix(&["pipeline", "render", "process-topk-v1"]);
    std::fs::write(&good, &rendered.stdout).unwrap();
    let good = good.to_str().unwrap();
    for format in ["json", "yaml"] {
        let problems = parsed(&["pipeline", "validate", good], format);
        let errors: Vec<&Value> = problems
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["severity"] == "error")
            .collect();
        assert!(errors.is_empty(), "{problems}");
    }

    // A config that parses but drops a critical process: problems listed, exit 1.
    let filter = dir.path().join("filter.yaml");
    let rendered = phoenix(&[
        "pipeline",
        "render",
        "process-priority-filter-v1",
        "--param",
        "highPriorityProcesses=[\"^nginx$\"]",
    ]);
    std::fs::write(&filter, &rendered.stdout).unwrap();
    let out = phoenix(&[
        "pipeline",
        "validate",
        filter.to_str().unwrap(),
        "--critical",
        "^postgres$",
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let problems: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(!problems.as_array().unwrap().is_empty());
    assert!(stderr(&out).contains("error"), "{}", stderr(&out));
}

#[test]
fn predict_runs_locally() {
    let prediction = parsed(
        &[
            "pipeline",
            "predict",
            "--template",
            "process-aggregated-v1",
            "--profile",
            "realistic",
            "--scrapes",
            "6",
        ],
        "json",
    );
    assert_eq!(prediction["scrapes"], 6);
    let reduction = prediction["cardinalityReduction"].as_f64().unwrap();
    assert!(reduction > 0.0, "{prediction}");
}

#[test]
fn sim_profiles_and_runs_in_every_format() {
    for format in ["json", "yaml"] {
        let list = parsed(&["sim", "profiles"], format);
        let names: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["realistic", "high-cardinality", "high-churn", "chaos"]
        );
        assert!(list[0]["processes"].as_u64().unwrap() > 100);
    }
    let table = stdout(&phoenix(&["sim", "profiles"]));
    assert!(table.starts_with("PROFILE"), "{table}");

    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("run.jsonl");
    let report = parsed(
        &[
            "sim",
            "run",
            "--duration",
            "1m",
            "--processes",
            "10",
            "--out",
            out_file.to_str().unwrap(),
        ],
        "json",
    );
    assert_eq!(report["scrapes"], 6);
    assert_eq!(report["liveProcesses"], 10);
    assert_eq!(
        std::fs::read_to_string(&out_file).unwrap().lines().count(),
        6
    );
    let yaml = parsed(&["sim", "run", "--duration", "30s"], "yaml");
    assert_eq!(yaml["scrapes"], 3);

    let out = phoenix(&["sim", "run", "--profile", "no-such-profile"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no-such-profile"), "{}", stderr(&out));
}

#[test]
fn profile_names_are_presets_and_files_need_a_path() {
    // A file named like a preset in the working directory does not shadow the preset.
    let dir = tempfile::tempdir().unwrap();
    let small = "name: tiny\ngroups:\n  - name: init\n    count: 1\n";
    std::fs::write(dir.path().join("chaos"), small).unwrap();
    let config = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(BIN)
            .args(args)
            .args(["--duration", "30s", "--output", "json"])
            .current_dir(dir.path())
            .env("PHOENIX_CONFIG_DIR", config.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    assert_eq!(
        run(&["sim", "run", "--profile", "chaos"])["profile"],
        "chaos"
    );
    assert_eq!(
        run(&["sim", "run", "--profile", "./chaos"])["profile"],
        "tiny"
    );
    assert_eq!(
        run(&["sim", "run", "--profile-file", "chaos"])["profile"],
        "tiny"
    );
}

#[test]
fn a_closed_standard_output_ends_quietly() {
    // The reader of the pipe is gone before the command writes: the write fails with EPIPE.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let config = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["pipeline", "templates"])
        .env("PHOENIX_CONFIG_DIR", config.path())
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
}

#[test]
fn server_commands_need_a_login() {
    for args in [
        &["experiment", "list", "--server", "http://127.0.0.1:9"][..],
        &[
            "experiment",
            "--server",
            "http://127.0.0.1:9",
            "get",
            "exp-abcd1234",
        ],
        &["whoami", "--server", "http://127.0.0.1:9"],
        &["user", "list", "--server", "http://127.0.0.1:9"],
    ] {
        let out = phoenix(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = stderr(&out);
        assert!(
            err.contains("not logged in to http://127.0.0.1:9") && err.contains("phoenix login"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn login_reports_an_unreachable_server() {
    let config = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args([
            "login",
            "--server",
            "http://127.0.0.1:9",
            "--password-stdin",
        ])
        .env("PHOENIX_CONFIG_DIR", config.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"pw\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("cannot reach the Phoenix server"), "{err}");
    assert!(!config.path().join("credentials.json").exists());
}
