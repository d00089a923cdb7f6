//! Experiment specs as users write them: parsing, defaults and validation.

use std::path::Path;
use std::time::Duration;

use phoenix_core::cost::CostModel;
use phoenix_core::experiment::{
    CriticalProcess, ExperimentSpec, PipelineRef, ProfilePreset, SuccessCriteria, Target,
    WorkloadSource,
};
use phoenix_core::telemetry::Attributes;

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/specs")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn parse(yaml: &str) -> Result<ExperimentSpec, serde_yaml::Error> {
    serde_yaml::from_str(yaml)
}

#[test]
fn a_minimal_spec_takes_the_documented_defaults() {
    let spec = parse(&fixture("minimal.yaml")).unwrap();
    spec.validate().unwrap();
    assert_eq!(spec.target, Target::Local);
    assert_eq!(
        spec.workload.source,
        WorkloadSource::Profile {
            preset: ProfilePreset::Realistic,
            processes: None
        }
    );
    assert_eq!(spec.workload.seed, 0);
    assert_eq!(spec.duration, Duration::from_secs(3600));
    assert_eq!(spec.warm_up, Duration::ZERO);
    assert_eq!(spec.scrape_interval, Duration::from_secs(10));
    assert_eq!(spec.success_criteria, SuccessCriteria::default());
    assert_eq!(spec.success_criteria.max_critical_process_loss, 0.0);
    assert_eq!(spec.cost_model, None);
    // 1 h in 60 windows of whole 10 s scrapes: one minute each.
    assert_eq!(spec.window_length(), Duration::from_secs(60));
    assert_eq!(spec.windows().len(), 60);
}

#[test]
fn every_field_parses_and_round_trips() {
    let spec = parse(&fixture("full.yaml")).unwrap();
    spec.validate().unwrap();
    assert_eq!(
        spec.target,
        Target::Kubernetes {
            namespace: "observability".into(),
            node_selector: [("kubernetes.io/os".to_owned(), "linux".to_owned())].into(),
        }
    );
    assert_eq!(
        spec.workload.source,
        WorkloadSource::Profile {
            preset: ProfilePreset::HighChurn,
            processes: Some(300)
        }
    );
    assert_eq!(spec.workload.seed, 42);
    assert_eq!(spec.warm_up, Duration::from_secs(600));
    assert_eq!(
        spec.windows().len(),
        22,
        "110 measured minutes in 5-minute windows"
    );
    assert_eq!(
        spec.critical_processes,
        [
            CriticalProcess::name("^postgres$"),
            CriticalProcess {
                name: "^nginx$".into(),
                path: Some("^/usr/sbin/".into())
            },
        ]
    );
    match &spec.candidate {
        PipelineRef::Template { name, parameters } => {
            assert_eq!(name, "process-topk-v1");
            assert_eq!(parameters["k"], 20);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        spec.cost_model.as_ref().map(|c| c.currency.as_str()),
        Some("EUR")
    );

    let yaml = serde_yaml::to_string(&spec).unwrap();
    assert_eq!(parse(&yaml).unwrap(), spec);
    let json = serde_json::to_string(&spec).unwrap();
    assert_eq!(serde_json::from_str::<ExperimentSpec>(&json).unwrap(), spec);
}

#[test]
fn a_spec_with_three_invalid_fields_yields_three_errors_naming_them() {
    let spec = parse(&fixture("three-invalid-fields.yaml")).unwrap();
    let errors = spec.validate().unwrap_err();
    let paths: Vec<&str> = errors.errors().iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "spec.name",
            "spec.criticalProcesses[0].name",
            "spec.successCriteria.minCardinalityReduction"
        ]
    );
    let text = errors.to_string();
    assert!(text.starts_with("3 invalid fields:"), "{text}");
    assert!(
        text.contains(
            "spec.successCriteria.minCardinalityReduction: must be within 0..=1, got 1.5"
        ),
        "{text}"
    );
    assert!(text.contains("invalid regex"), "{text}");
}

#[test]
fn timing_and_workload_violations_are_all_reported() {
    let mut spec = parse(&fixture("minimal.yaml")).unwrap();
    spec.duration = Duration::ZERO;
    spec.scrape_interval = Duration::from_millis(10);
    spec.warm_up = Duration::from_secs(60);
    spec.measurement_window = Some(Duration::from_secs(1));
    spec.workload.source = WorkloadSource::Profile {
        preset: ProfilePreset::Chaos,
        processes: Some(0),
    };
    spec.candidate = spec.baseline.clone();
    spec.cost_model = Some(CostModel {
        per_gb_ingested: -1.0,
        ..CostModel::default()
    });
    spec.success_criteria.max_cpu_overhead = Some(f64::NAN);
    let errors = spec.validate().unwrap_err();
    let paths: Vec<&str> = errors.errors().iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "spec.candidate",
            "spec.workload.processes",
            "spec.duration",
            "spec.scrapeInterval",
            "spec.warmUp",
            "spec.measurementWindow",
            "spec.successCriteria.maxCpuOverhead",
            "spec.costModel.perGbIngested",
        ]
    );
}

#[test]
fn runs_with_too_many_windows_are_refused() {
    let mut spec = parse(&fixture("minimal.yaml")).unwrap();
    spec.duration = Duration::from_secs(30 * 24 * 3600);
    spec.scrape_interval = Duration::from_secs(1);
    spec.measurement_window = Some(Duration::from_secs(1));
    let errors = spec.validate().unwrap_err();
    assert_eq!(errors.errors().len(), 1, "{errors}");
    assert_eq!(errors.errors()[0].path, "spec.measurementWindow");
    assert!(
        errors.errors()[0].message.contains("2592000 windows"),
        "{errors}"
    );
    // Without an explicit window the run is split into the default number of windows.
    spec.measurement_window = None;
    spec.validate().unwrap();
    assert_eq!(spec.windows().len(), 60);
}

#[test]
fn shape_errors_name_the_construct() {
    let cases = [
        (
            "name: abc\nbaseline: {template: a-v1}\ncandidate: {template: b-v1}\nbogus: 1\n",
            "bogus",
        ),
        (
            "name: abc\nbaseline: {template: a-v1, config: x}\ncandidate: {template: b-v1}\n",
            "not both",
        ),
        (
            "name: abc\nbaseline: {parameters: {k: 1}}\ncandidate: {template: b-v1}\n",
            "needs a `template`",
        ),
        (
            "name: abc\nbaseline: {template: a-v1}\ncandidate: {template: b-v1}\nduration: soon\n",
            "invalid duration",
        ),
        (
            "name: abc\nbaseline: {template: a-v1}\ncandidate: {template: b-v1}\nworkload: {profile: realistic, recording: r.jsonl}\n",
            "only one of",
        ),
        (
            "name: abc\nbaseline: {template: a-v1}\ncandidate: {template: b-v1}\nworkload: {profile: busy}\n",
            "busy",
        ),
        (
            "name: abc\nbaseline: {template: a-v1}\ncandidate: {template: b-v1}\ntarget: {kind: moon}\n",
            "moon",
        ),
        (
            "name: abc\nbaseline: {template: a-v1}\ncandidate: {template: b-v1}\nsuccessCriteria: {minCardinalityReduktion: 1}\n",
            "minCardinalityReduktion",
        ),
        (
            "name: abc\nbaseline: {template: a-v1}\ncandidate: {template: b-v1}\ncriticalProcesses: [{name: a, pth: b}]\n",
            "pth",
        ),
    ];
    for (yaml, needle) in cases {
        let err = parse(yaml).expect_err(yaml).to_string();
        assert!(err.contains(needle), "{needle:?} not in {err:?}");
    }
}

#[test]
fn critical_matchers_use_name_and_optional_path() {
    let spec = parse(&fixture("full.yaml")).unwrap();
    let matcher = spec.critical_matcher().unwrap();
    let process = |name: &str, path: &str| -> Attributes {
        [
            ("process.executable.name", name),
            ("process.executable.path", path),
        ]
        .into_iter()
        .collect()
    };
    assert!(matcher.is_critical(&process("postgres", "/usr/lib/postgresql/16/bin/postgres")));
    assert!(!matcher.is_critical(&process("postgres-exporter", "/usr/bin/postgres-exporter")));
    assert!(matcher.is_critical(&process("nginx", "/usr/sbin/nginx")));
    assert!(
        !matcher.is_critical(&process("nginx", "/opt/nginx/nginx")),
        "the path must match too"
    );
    assert!(!matcher.is_critical(&Attributes::new()));
}
