//! Validate conformance: every catalog template over a grid of parameter combinations passes
//! the pinned collector's `validate`, and deliberately broken configs
//! (`tests/fixtures/conformance/broken/`) are refused by both the collector and Phoenix's
//! own validation, while the warning-only ones (`tests/fixtures/conformance/accepted/`) are
//! accepted by both. Needs `PHOENIX_OTELCOL` (see `docs/conformance.md`); skipped without it.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod conformance;

use std::path::{Path, PathBuf};
use std::time::Instant;

use phoenix_generator::catalog::{TemplateId, render};
use phoenix_generator::config::Config;
use phoenix_generator::validate::{ValidateOptions, has_errors, validate};
use serde_json::{Value, json};

/// Critical and high-priority pattern lists, regex metacharacters and OTTL escaping included.
fn pattern_lists() -> Vec<Value> {
    vec![
        Value::Null,
        json!(["^postgres$", "^nginx: worker"]),
        json!(["^java$", {"name": "^java$", "path": "^/opt/billing/"}]),
        json!([
            "^(postgres|mysqld)$",
            "kworker/[0-9]+:[0-9]+",
            "^php-fpm[0-9.]+$"
        ]),
        json!(["a\\.b", "[[:alpha:]]+d$", "(?i)^SSHD$", "x{2,3}"]),
        json!([
            "quote\"name",
            "back\\\\slash",
            "^a\\.b\\+$",
            "\\pL+[\\t\\n\\f\\r ][A-Za-z0-9_]"
        ]),
        json!(["^(?:a|b)+$", "[^/]+/[a-z]{1,4}", "tab\\there", "\\$HOME"]),
        json!([{"name": "^node$", "path": "^/usr/(local/)?bin/"}, "^\\[kthreadd\\]$"]),
    ]
}

fn intervals() -> [&'static str; 6] {
    ["10s", "1s", "1m", "15s", "500ms", "1m30s"]
}

fn metric_sets() -> Vec<Value> {
    vec![
        json!({}),
        json!({"process.cpu.utilization": true, "process.memory.utilization": true}),
        json!({"process.disk.io": false, "process.memory.virtual": false}),
        json!({
            "process.threads": true,
            "process.open_file_descriptors": true,
            "process.context_switches": true,
            "process.paging.faults": true,
            "process.signals_pending": true,
            "process.uptime": true,
            "process.disk.operations": true,
        }),
    ]
}

fn endpoints() -> Vec<Value> {
    vec![
        json!("http://localhost:4318"),
        json!("https://otlp.example.com:4318"),
        Value::Null,
        json!("http://10.0.0.5:4318/"),
    ]
}

fn header_sets() -> Vec<Value> {
    vec![
        json!({}),
        json!({"Authorization": "Bearer ${env:PHOENIX_OTLP_TOKEN}"}),
        json!({"X-Scope-OrgID": "tenant-1", "X-Other": "v"}),
    ]
}

/// The `i`-th combination of the grid for `template`: every dimension cycles with a different
/// period so that the combinations differ pairwise. `root_path` is a directory that exists (the
/// collector's `validate` checks it), standing in for `/hostfs` on Kubernetes.
fn combination(template: TemplateId, i: usize, root_path: &Path) -> Value {
    let lists = pattern_lists();
    let mut p = json!({
        "experimentId": format!("exp-grid{i:04}"),
        "variant": if i.is_multiple_of(2) { "baseline" } else { "candidate" },
        "collectionInterval": intervals()[i % 6],
        "metrics": metric_sets()[i % 4],
        "otlpEndpoint": endpoints()[i % 4],
        "otlpHeaders": header_sets()[i % 3],
        "prometheus": i % 5 != 1,
        "debug": i % 7 == 3,
        "memoryLimitPercentage": ([80, 50, 90])[i % 3],
        "memorySpikeLimitPercentage": ([25, 10, 40])[i % 3],
    });
    let o = p.as_object_mut().unwrap();
    if !lists[i % lists.len()].is_null() {
        o.insert("criticalProcesses".into(), lists[i % lists.len()].clone());
    }
    if i % 4 == 2 {
        o.insert("rootPath".into(), json!(root_path.display().to_string()));
    }
    if i % 6 == 5 {
        o.insert("prometheusPort".into(), json!(9464));
        o.insert("telemetryPort".into(), json!(9465));
    }
    // At least one exporter.
    if o["otlpEndpoint"].is_null() && !o["prometheus"].as_bool().unwrap() {
        o.insert("debug".into(), json!(true));
    }
    let thresholds = |o: &mut serde_json::Map<String, Value>| {
        o.insert(
            "cpuUtilizationThreshold".into(),
            [
                json!(0.05),
                json!(0.001),
                json!(0.5),
                Value::Null,
                json!(0.999),
            ][i % 5]
                .clone(),
        );
        o.insert(
            "memoryUsageThreshold".into(),
            [
                json!(268_435_456),
                json!(1),
                Value::Null,
                json!(8_589_934_592_u64),
            ][i % 4]
                .clone(),
        );
        // At least one criterion.
        if o["cpuUtilizationThreshold"].is_null() && o["memoryUsageThreshold"].is_null() {
            o.insert("memoryUsageThreshold".into(), json!(1_048_576));
        }
    };
    let aggregation = |o: &mut serde_json::Map<String, Value>| {
        if i % 3 == 1 {
            o.insert("aggregationKey".into(), json!("class"));
            o.insert(
                "classes".into(),
                json!([
                    {"class": "web", "pattern": "^(nginx|gunicorn|php-fpm[0-9.]*)$"},
                    {"class": "db", "pattern": "^(postgres|mysqld|redis-server)$"},
                    {"class": "kernel \"threads\"", "pattern": "^(kworker|ksoftirqd)/[0-9]+"},
                ]),
            );
            o.insert(
                "otherClass".into(),
                json!(["other", "misc", "rest.of.them"][i % 3]),
            );
        } else if i % 3 == 2 {
            o.insert("aggregationKey".into(), json!("executableName"));
        }
    };
    match template {
        TemplateId::Baseline => {}
        TemplateId::PriorityFilter => {
            o.insert(
                "highPriorityProcesses".into(),
                match &lists[(i + 3) % lists.len()] {
                    Value::Null => json!([]),
                    v => v.clone(),
                },
            );
        }
        TemplateId::TopK => {
            o.insert("topK".into(), json!([1, 5, 20, 1000][i % 4]));
            thresholds(o);
        }
        TemplateId::Aggregated => aggregation(o),
        TemplateId::AdaptiveFilter => {
            thresholds(o);
            aggregation(o);
        }
    }
    p
}

/// Parameter combinations per template.
const COMBINATIONS: usize = 52;

#[test]
fn every_template_over_the_grid_passes_collector_validate() {
    let Some(bin) =
        conformance::collector("every_template_over_the_grid_passes_collector_validate")
    else {
        return;
    };
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let hostfs = dir.path().join("hostfs");
    std::fs::create_dir(&hostfs).unwrap();
    let mut configs = Vec::new();
    for template in TemplateId::ALL {
        for i in 0..COMBINATIONS {
            let params = combination(template, i, &hostfs);
            let config = render(template, params.as_object().unwrap()).unwrap_or_else(|e| {
                panic!("{} #{i}: render refused {params}: {e}", template.name())
            });
            configs.push((
                format!("{}-{i:02}", template.name()),
                config.to_yaml().unwrap(),
                params,
            ));
        }
    }
    let results = conformance::parallel_map(&configs, |(name, yaml, _)| {
        conformance::collector_validate(&bin, dir.path(), name, yaml)
    });
    let failures: Vec<String> = configs
        .iter()
        .zip(&results)
        .filter_map(|((name, yaml, params), r)| {
            r.as_ref()
                .err()
                .map(|e| format!("{name} with {params}:\n{e}\n{yaml}"))
        })
        .collect();
    eprintln!(
        "collector validate: {} configs ({} templates × {COMBINATIONS} parameter combinations), {} refused, {:.1} s",
        configs.len(),
        TemplateId::ALL.len(),
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "the collector refuses rendered configs:\n{}",
        failures.join("\n\n")
    );
}

fn fixtures(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/conformance")
        .join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// Phoenix's verdict on a config: `Err` with the first error when parsing or validation
/// refuses it.
fn phoenix_verdict(yaml: &str) -> Result<(), String> {
    let config = Config::from_yaml(yaml).map_err(|e| e.to_string())?;
    let problems = validate(&config, &ValidateOptions::default());
    if has_errors(&problems) {
        let p = problems.iter().find(|p| p.is_error()).unwrap();
        Err(format!("{}: {}", p.location, p.message))
    } else {
        Ok(())
    }
}

fn first_line(text: &str, max: usize) -> String {
    let line = text
        .lines()
        .find(|l| l.starts_with("Error:"))
        .or_else(|| text.lines().next())
        .unwrap_or("")
        .replace('|', "\\|");
    if line.chars().count() > max {
        format!("{}…", line.chars().take(max).collect::<String>())
    } else {
        line
    }
}

#[test]
fn broken_configs_are_refused_by_the_collector_and_by_phoenix() {
    let Some(bin) =
        conformance::collector("broken_configs_are_refused_by_the_collector_and_by_phoenix")
    else {
        return;
    };
    let cases: Vec<(String, bool, String)> = fixtures("broken")
        .into_iter()
        .map(|p| (p, false))
        .chain(fixtures("accepted").into_iter().map(|p| (p, true)))
        .map(|(p, ok)| {
            (
                p.file_stem().unwrap().to_string_lossy().into_owned(),
                ok,
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    assert!(cases.iter().filter(|c| !c.1).count() >= 10);
    let dir = tempfile::tempdir().unwrap();
    let collector = conformance::parallel_map(&cases, |(name, _, yaml)| {
        conformance::collector_validate(&bin, dir.path(), name, yaml)
    });
    let mut rows = Vec::new();
    let mut disagreements = Vec::new();
    for ((name, expect_ok, yaml), c) in cases.iter().zip(&collector) {
        let p = phoenix_verdict(yaml);
        let verdict = |r: &Result<(), String>| match r {
            Ok(()) => "accepts".to_owned(),
            Err(e) => format!("refuses: {}", first_line(e, 90)),
        };
        let agree = c.is_ok() == *expect_ok && p.is_ok() == *expect_ok;
        rows.push(vec![
            name.clone(),
            verdict(c),
            verdict(&p),
            if agree { "yes" } else { "no" }.to_owned(),
        ]);
        if !agree {
            disagreements.push(format!(
                "{name} (expected {}): collector {c:?}; phoenix {p:?}",
                if *expect_ok { "accepted" } else { "refused" }
            ));
        }
    }
    eprintln!(
        "collector validate vs Phoenix validation:\n{}",
        conformance::table(&["config", "collector", "phoenix", "agree"], &rows)
    );
    assert!(
        disagreements.is_empty(),
        "verdicts differ:\n{}",
        disagreements.join("\n")
    );
}
