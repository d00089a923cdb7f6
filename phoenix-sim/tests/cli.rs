//! The `phoenix-sim` binary: determinism of `run`, bad input, profiles and capture.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

fn sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_phoenix-sim"))
        .args(args)
        .output()
        .unwrap()
}

fn run_to(path: &Path, seed: &str) -> Output {
    let out = sim(&[
        "run",
        "--profile",
        "high-cardinality",
        "--duration",
        "10m",
        "--seed",
        seed,
        "--output",
        path.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn same_seed_gives_identical_files_another_seed_differs() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a.jsonl"),
        dir.path().join("b.jsonl"),
        dir.path().join("c.jsonl"),
    );
    std::thread::scope(|s| {
        s.spawn(|| run_to(&a, "7"));
        s.spawn(|| run_to(&b, "7"));
        s.spawn(|| run_to(&c, "8"));
    });
    let (a, b, c) = (
        std::fs::read(&a).unwrap(),
        std::fs::read(&b).unwrap(),
        std::fs::read(&c).unwrap(),
    );
    assert_eq!(
        a.iter().filter(|&&x| x == b'\n').count(),
        60,
        "one line per 10 s scrape"
    );
    assert!(a == b, "same seed, same bytes");
    assert!(a != c, "another seed, another file");
    let first = std::str::from_utf8(&a[..a.iter().position(|&x| x == b'\n').unwrap()]).unwrap();
    let snapshot = phoenix_core::otlp::from_json(first).unwrap();
    assert!((1000..=2000).contains(&snapshot.resources.len()));
}

#[test]
fn bad_input_names_the_field_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let profile = dir.path().join("profile.yaml");
    let good = "name: t\ngroups:\n  - name: \"w{index}\"\n    count: 3\n    cpu: { pattern: spiky, cores: 0.1, peak: 0.5 }\n    churnRate: 0.5\n";
    let cases = [
        (
            good.replace("spiky", "wobbly"),
            vec![],
            "groups[0].cpu.pattern",
        ),
        (
            good.replace("count: 3", "count: -3"),
            vec![],
            "groups[0].count",
        ),
        (
            good.replace("churnRate: 0.5", "churnRate: 1.5"),
            vec![],
            "groups[0].churnRate",
        ),
        (
            good.to_owned(),
            vec!["--duration", "ten minutes"],
            "--duration",
        ),
        (
            good.to_owned(),
            vec!["--scrape-interval", "often"],
            "--scrape-interval",
        ),
    ];
    for (text, extra, field) in cases {
        std::fs::write(&profile, text).unwrap();
        let mut args = vec![
            "run",
            "--profile-file",
            profile.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ];
        args.extend(extra);
        let result = sim(&args);
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(!result.status.success(), "{field}: {stderr}");
        assert!(stderr.contains(field), "{field} not named in: {stderr}");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            left,
            [std::ffi::OsString::from("profile.yaml")],
            "{field}: nothing written"
        );
    }
    std::fs::write(&profile, good).unwrap();
    let ok = sim(&[
        "run",
        "--profile-file",
        profile.to_str().unwrap(),
        "--duration",
        "1m",
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let summary = String::from_utf8_lossy(&ok.stderr);
    assert!(
        summary.contains("6 scrapes") && summary.contains("data points"),
        "{summary}"
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 6);
}

#[test]
fn profiles_list_show_and_schema() {
    let list = String::from_utf8(sim(&["profiles", "list"]).stdout).unwrap();
    for name in ["realistic", "high-cardinality", "high-churn", "chaos"] {
        assert!(list.contains(name), "{list}");
    }
    let shown = sim(&["profiles", "show", "chaos"]);
    let profile =
        phoenix_sim::Profile::from_yaml(&String::from_utf8(shown.stdout).unwrap()).unwrap();
    assert_eq!(
        profile,
        phoenix_sim::Profile::preset(phoenix_core::experiment::ProfilePreset::Chaos)
    );
    let schema: serde_json::Value =
        serde_json::from_slice(&sim(&["profiles", "schema"]).stdout).unwrap();
    let committed: serde_json::Value =
        serde_json::from_str(include_str!("../schema/custom-profile.schema.json")).unwrap();
    assert_eq!(schema, committed);
}

#[test]
fn capture_and_replay_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let captured = dir.path().join("capture.jsonl");
    let out = sim(&["capture", "--output", captured.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let snapshots: Vec<_> = phoenix_sim::replay::read_file(&captured)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(snapshots.len(), 1);
    assert!(snapshots[0].resources.len() > 5);
    let copy = dir.path().join("copy.jsonl");
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/collector-file-exporter.jsonl"
    );
    let out = sim(&["replay", fixture, "--output", copy.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let original: Vec<_> = phoenix_sim::replay::read_file(fixture)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let copied: Vec<_> = phoenix_sim::replay::read_file(&copy)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(original, copied);
}

#[test]
fn replay_of_a_file_with_a_bad_line_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/collector-file-exporter.jsonl"
    ))
    .unwrap();
    let input = dir.path().join("bad.jsonl");
    std::fs::write(&input, format!("{fixture}\nnot json\n")).unwrap();
    let output = dir.path().join("out.jsonl");
    let out = sim(&[
        "replay",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines = fixture.lines().count();
    assert!(
        stderr.contains(&format!("bad.jsonl:{}:", lines + 2)),
        "{stderr}"
    );
    assert!(!output.exists(), "bad input writes nothing");
}

#[test]
fn starts_outside_the_supported_range_name_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.jsonl");
    for start in ["0", "99999999999"] {
        let out = sim(&[
            "run",
            "--start",
            start,
            "--duration",
            "1m",
            "--output",
            output.to_str().unwrap(),
        ]);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("invalid start:"), "{stderr}");
        assert!(!output.exists(), "bad input writes nothing");
    }
}
