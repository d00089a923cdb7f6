#![allow(clippy::unwrap_used)]
//! Bad input gives an error naming the field or the line: an invalid regex, K = 0, an unknown
//! template, malformed YAML, an unknown processor type, unknown keys.

use phoenix_generator::Error;
use phoenix_generator::catalog::{TemplateId, render};
use phoenix_generator::config::Config;
use phoenix_generator::validate::{ValidateOptions, has_errors, validate};

fn params(json: &serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    json.as_object().unwrap().clone()
}

#[test]
fn invalid_regex_names_the_parameter_index() {
    let err = render(
        TemplateId::PriorityFilter,
        &params(&serde_json::json!({"criticalProcesses": ["^ok$", "^(broken$"]})),
    )
    .unwrap_err();
    let Error::Parameter { field, message } = &err else {
        panic!("{err}");
    };
    assert_eq!(field, "criticalProcesses[1]");
    assert!(message.contains("invalid regex"), "{message}");

    let err = render(
        TemplateId::Aggregated,
        &params(&serde_json::json!({
            "aggregationKey": "class",
            "classes": [{"class": "web", "pattern": "[a-z&&[^x]]"}],
        })),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("classes[0].pattern"), "{err}");
}

#[test]
fn k_zero_names_top_k() {
    let err = render(TemplateId::TopK, &params(&serde_json::json!({"topK": 0}))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "parameter `topK`: must be at least 1, got 0"
    );
}

#[test]
fn unknown_template_lists_the_catalog() {
    let err = "process-top-k".parse::<TemplateId>().unwrap_err();
    let Error::UnknownTemplate { name, known } = &err else {
        panic!("{err}");
    };
    assert_eq!(name, "process-top-k");
    assert!(known.contains("process-topk-v1"));
}

#[test]
fn malformed_yaml_names_the_line() {
    let text = include_str!("fixtures/config/malformed.yaml");
    let err = Config::from_yaml(text).unwrap_err();
    let Error::Yaml { line, column, .. } = err else {
        panic!("{err}");
    };
    assert_eq!(line, 4, "the badly indented key");
    assert!(column > 0);
}

#[test]
fn unknown_processor_type_is_named_with_its_line() {
    let text = include_str!("fixtures/config/unknown-processor.yaml");
    let err = Config::from_yaml(text).unwrap_err();
    let Error::Yaml { line, message, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(*line, 9, "{err}");
    assert!(message.contains("routing/by-name"), "{message}");
    assert!(
        message.contains("transform"),
        "lists the supported processors: {message}"
    );
}

#[test]
fn unknown_key_in_a_template_parameter_is_named() {
    let err = render(
        TemplateId::Baseline,
        &params(&serde_json::json!({"topk": 3})),
    )
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("parameter `topk`"), "{err}");
}

#[test]
fn a_filter_that_drops_critical_processes_is_caught() {
    // memory_limiter comes first in the fixture, so only the safety check can complain.
    let text = include_str!("fixtures/config/drops-critical.yaml");
    let config = Config::from_yaml(text).unwrap();
    let problems = validate(
        &config,
        &ValidateOptions::with_critical_names(["^postgres$"]),
    );
    assert!(has_errors(&problems));
    assert!(
        problems
            .iter()
            .any(|p| p.location == "exporters.debug" && p.message.contains("`postgres`")),
        "{problems:?}"
    );
    // Without the critical pattern the config is fine.
    let problems = validate(
        &config,
        &ValidateOptions::with_critical_names(Vec::<String>::new()),
    );
    assert!(!has_errors(&problems), "{problems:?}");
}

#[test]
fn a_receiver_excluding_a_critical_process_is_caught() {
    let text = include_str!("fixtures/config/excludes-critical.yaml");
    let config = Config::from_yaml(text).unwrap();
    let problems = validate(&config, &ValidateOptions::with_critical_names(["^sshd$"]));
    assert!(
        problems.iter().any(
            |p| p.location == "receivers.hostmetrics.scrapers.process.exclude"
                && p.message.contains("`sshd`")
        ),
        "{problems:?}"
    );
    assert!(has_errors(&problems));
    // An include that leaves the critical process out is caught too.
    let text = text
        .replace("exclude:", "include:")
        .replace("[sshd]", "[nginx]");
    let config = Config::from_yaml(&text).unwrap();
    let problems = validate(&config, &ValidateOptions::with_critical_names(["^sshd$"]));
    assert!(
        problems
            .iter()
            .any(|p| p.location == "receivers.hostmetrics.scrapers.process.include"),
        "{problems:?}"
    );
}
