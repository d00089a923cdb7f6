//! The validator hooks: OTTL checks with locations and the critical-process safety check.
#![allow(clippy::unwrap_used)]

use phoenix_core::experiment::{CriticalMatcher, CriticalProcess};
use phoenix_generator::catalog::{TemplateId, render};
use phoenix_generator::config::Config;
use phoenix_generator::emulator::{critical_safety, critical_safety_with_names};
use phoenix_generator::ottl::check_config;

fn matcher(pattern: &str) -> CriticalMatcher {
    CriticalMatcher::new(&[CriticalProcess::name(pattern)]).unwrap()
}

fn params(template: TemplateId, critical: &[&str]) -> serde_json::Map<String, serde_json::Value> {
    let mut json = serde_json::json!({
        "criticalProcesses": critical,
        "experimentId": "exp-safety01",
    });
    if template == TemplateId::PriorityFilter {
        json["highPriorityProcesses"] = serde_json::json!(["^nginx$"]);
    }
    let serde_json::Value::Object(map) = json else {
        panic!()
    };
    map
}

#[test]
fn every_template_keeps_its_critical_processes() {
    for template in TemplateId::ALL {
        let config = render(template, &params(template, &["^postgres$", "^ssh.$"])).unwrap();
        assert_eq!(
            critical_safety(&config, &matcher("^postgres$")),
            vec![],
            "{template}"
        );
        assert_eq!(
            critical_safety(&config, &matcher("^ssh.$")),
            vec![],
            "{template}"
        );
    }
}

#[test]
fn a_config_dropping_a_critical_process_is_reported_per_exporter() {
    // Critical for the experiment, but the template was rendered without it.
    let config = render(
        TemplateId::PriorityFilter,
        &params(TemplateId::PriorityFilter, &["^sshd$"]),
    )
    .unwrap();
    let problems = critical_safety(&config, &matcher("^postgres$"));
    assert!(!problems.is_empty());
    assert!(
        problems
            .iter()
            .all(|p| p.location.starts_with("exporters.") && p.message.contains("postgres")),
        "{problems:?}"
    );
    let problems = critical_safety_with_names(&config, &matcher("^my-db$"), &["my-db"]);
    assert!(!problems.is_empty());
    let problems = critical_safety_with_names(&config, &matcher("^my-db$"), &["other"]);
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].location, "criticalProcesses");
}

#[test]
fn check_config_reports_ottl_problems_with_their_location() {
    let config = Config::from_yaml(
        r#"
receivers:
  hostmetrics:
    scrapers:
      process: {}
processors:
  filter/x:
    metrics:
      datapoint:
        - 'IsMatch(resource.attributes["process.executable.name"], "(")'
        - 'metric.name == "a"'
  transform/y:
    metric_statements:
      - context: resource
        statements:
          - 'frobnicate(attributes, "a")'
          - 'replace_pattern(attributes["a"], "x", "y")'
exporters:
  debug: {}
service:
  pipelines:
    metrics:
      receivers: [hostmetrics]
      processors: [filter/x, transform/y]
      exporters: [debug]
"#,
    )
    .unwrap();
    let problems = check_config(&config);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert_eq!(
        problems[0].location,
        "processors.filter/x.metrics.datapoint[0]"
    );
    assert!(
        problems[0].message.contains("\"(\""),
        "{}",
        problems[0].message
    );
    assert_eq!(
        problems[1].location,
        "processors.transform/y.metric_statements[0].statements[0]"
    );
    assert!(problems[1].message.contains("frobnicate"));
    // Valid OTTL outside the emulator's subset (replace_pattern) is not a config problem.
}
