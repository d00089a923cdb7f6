#![allow(clippy::unwrap_used)]
//! The `phoenix-generator` binary: subcommands, outputs and exit codes (0 ok, 1 failure,
//! 2 usage).

use std::path::Path;
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_phoenix-generator"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn templates_lists_the_catalog_as_table_and_json() {
    let o = run(&["templates"]);
    assert_eq!(o.status.code(), Some(0));
    for name in [
        "process-baseline-v1",
        "process-priority-filter-v1",
        "process-topk-v1",
        "process-aggregated-v1",
        "process-adaptive-filter-v1",
    ] {
        assert!(stdout(&o).contains(name), "{name}");
    }
    let o = run(&["templates", "--output", "json"]);
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 5);
    assert!(list[0]["expectedEffect"].is_string());
}

#[test]
fn describe_shows_schema_and_effect() {
    let o = run(&["describe", "process-topk-v1", "--output", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["parameters"]["properties"]["topK"]["default"], 20);
    assert!(doc["expectedEffect"].as_str().unwrap().contains("K"));
    let o = run(&["describe", "process-topk-v1"]);
    assert!(
        stdout(&o).contains("topK (integer) default 20"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn render_matches_the_golden_file_and_accepts_parameters() {
    let o = run(&["render", "process-aggregated-v1"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let golden = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/process-aggregated-v1.yaml"),
    )
    .unwrap();
    assert_eq!(stdout(&o), golden);

    let o = run(&[
        "render",
        "process-topk-v1",
        "--params-file",
        "tests/fixtures/params/topk.yaml",
        "--param",
        "topK=5",
        "--param",
        "otlpHeaders.X-Team=sre",
        "--configmap",
        "--namespace",
        "observability",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("kind: ConfigMap"));
    assert!(text.contains("namespace: observability"));
    assert!(text.contains("\"topK\":5"), "{text}");
    assert!(text.contains("X-Team: sre"), "{text}");
    assert!(text.contains("root_path: /hostfs"), "{text}");
}

#[test]
fn render_writes_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("baseline.yaml");
    let o = run(&[
        "render",
        "process-baseline-v1",
        "-o",
        path.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(phoenix_generator::config::Config::from_yaml(&text).is_ok());
}

#[test]
fn exit_codes_separate_usage_from_failure() {
    // Unknown template and malformed --param: usage.
    let o = run(&["render", "process-nope-v1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown template `process-nope-v1`"));
    let o = run(&["render", "process-topk-v1", "--param", "topK"]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["no-such-command"]);
    assert_eq!(o.status.code(), Some(2));
    // Out-of-range parameter: failure naming the field.
    let o = run(&["render", "process-topk-v1", "--param", "topK=0"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("parameter `topK`: must be at least 1, got 0"));
    let o = run(&[
        "render",
        "process-priority-filter-v1",
        "--param",
        r#"criticalProcesses=["^ok$", "(bad"]"#,
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("criticalProcesses[1]"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn validate_reports_locations_and_exit_status() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yaml");
    let o = run(&[
        "render",
        "process-priority-filter-v1",
        "-o",
        good.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let o = run(&["validate", good.to_str().unwrap(), "--critical", "^sshd$"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).ends_with(": ok\n"));

    let o = run(&[
        "validate",
        "tests/fixtures/config/drops-critical.yaml",
        "--critical",
        "^postgres$",
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let problems: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let problems = problems.as_array().unwrap();
    assert!(problems.iter().any(|p| p["location"] == "exporters.debug"
        && p["message"].as_str().unwrap().contains("`postgres`")));

    let o = run(&["validate", "tests/fixtures/config/malformed.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("line 4"), "{}", stderr(&o));

    let o = run(&["validate", "tests/fixtures/config/unknown-processor.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("routing/by-name"), "{}", stderr(&o));
}

#[test]
fn validate_alongside_reports_shared_ports() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.yaml");
    let b = dir.path().join("b.yaml");
    run(&["render", "process-baseline-v1", "-o", a.to_str().unwrap()]);
    run(&[
        "render",
        "process-topk-v1",
        "--param",
        "variant=baseline",
        "-o",
        b.to_str().unwrap(),
    ]);
    let o = run(&[
        "validate",
        b.to_str().unwrap(),
        "--alongside",
        a.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("port 8888"), "{}", stdout(&o));
}

#[test]
fn invalid_critical_patterns_are_failures_not_usage_errors() {
    for command in [
        vec!["validate", "tests/fixtures/config/full.yaml"],
        vec![
            "predict",
            "--template",
            "process-baseline-v1",
            "--profile",
            "realistic",
            "--scrapes",
            "1",
        ],
    ] {
        for (pattern, why) in [("(bad", "invalid regex"), (r"^pg\d+$", "ASCII")] {
            let mut args = command.clone();
            args.extend(["--critical", pattern]);
            let o = run(&args);
            assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
            assert!(stderr(&o).contains("--critical[0]"), "{}", stderr(&o));
            assert!(stderr(&o).contains(why), "{}", stderr(&o));
        }
    }
    // The same value given as a template parameter: also 1.
    let o = run(&[
        "predict",
        "--template",
        "process-baseline-v1",
        "--param",
        r#"criticalProcesses=["(bad"]"#,
        "--profile",
        "realistic",
        "--scrapes",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let o = run(&[
        "predict",
        "--template",
        "process-baseline-v1",
        "--profile",
        "realistic",
        "--scrapes",
        "0",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
}

#[test]
fn predict_checks_param_usage_before_reading_files() {
    // The config file does not exist: the usage error comes first.
    let o = run(&[
        "predict",
        "no-such-config.yaml",
        "--param",
        "topK=3",
        "--profile",
        "realistic",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--template"), "{}", stderr(&o));
}

#[test]
fn predict_follows_the_collection_interval() {
    let figures = |interval: &str| {
        let o = run(&[
            "predict",
            "--template",
            "process-baseline-v1",
            "--param",
            &format!("collectionInterval={interval}"),
            "--profile",
            "realistic",
            "--scrapes",
            "12",
            "--output",
            "json",
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let p: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        p["candidate"]["dataPointsPerMinute"].as_f64().unwrap()
    };
    let fast = figures("10s");
    let slow = figures("60s");
    let ratio = slow / fast;
    assert!(
        (ratio - 1.0 / 6.0).abs() < 0.05,
        "{slow} / {fast} = {ratio}"
    );
}

#[test]
fn predict_runs_a_template_over_a_simulated_workload() {
    let o = run(&[
        "predict",
        "--template",
        "process-priority-filter-v1",
        "--profile",
        "realistic",
        "--scrapes",
        "3",
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let p: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(p["cardinalityReduction"].as_f64().unwrap() > 0.5, "{p}");
    assert_eq!(p["criticalLoss"], 0.0);
    let o = run(&[
        "predict",
        "--template",
        "process-topk-v1",
        "--profile",
        "nope",
    ]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn publish_and_promote_commit_into_a_git_working_tree() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().to_str().unwrap();
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(args)
            .output()
            .unwrap()
    };
    assert!(git(&["init", "-q"]).status.success());
    assert!(git(&["config", "commit.gpgsign", "false"]).status.success());
    let o = run(&[
        "publish",
        "--repo",
        repo,
        "--candidate",
        "process-topk-v1",
        "--candidate-param",
        "topK=5",
        "--experiment-id",
        "exp-cli00001",
        "--namespace",
        "obs",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("committed"), "{}", stdout(&o));
    let candidate = dir.path().join("experiments/exp-cli00001/candidate.yaml");
    assert!(candidate.exists());
    let cm = std::fs::read_to_string(
        dir.path()
            .join("experiments/exp-cli00001/baseline.configmap.yaml"),
    )
    .unwrap();
    assert!(cm.contains("namespace: obs") && cm.contains("phoenix.dev/variant: baseline"));

    let o = run(&[
        "promote",
        "--repo",
        repo,
        "--target",
        "prod-nodes",
        "process-topk-v1",
        "--param",
        "topK=5",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let log = String::from_utf8_lossy(&git(&["log", "--format=%s"]).stdout).into_owned();
    assert!(
        log.contains("promote") && log.contains("experiment exp-cli00001"),
        "{log}"
    );

    // Not a working tree: a failure, not a usage error.
    let plain = tempfile::tempdir().unwrap();
    let o = run(&[
        "publish",
        "--repo",
        plain.path().to_str().unwrap(),
        "--candidate",
        "process-topk-v1",
    ]);
    assert_eq!(o.status.code(), Some(1));
}
