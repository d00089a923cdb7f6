//! Configs the emulator cannot execute fail with an error naming the component and construct.
#![allow(clippy::unwrap_used)]

use phoenix_generator::Error;
use phoenix_generator::config::Config;
use phoenix_generator::emulator::Emulator;

fn config(processors: &str, pipeline: &str) -> String {
    format!(
        r#"
receivers:
  hostmetrics:
    scrapers:
      process: {{}}
processors:
{processors}
exporters:
  debug: {{}}
service:
  pipelines:
    metrics:
      receivers: [hostmetrics]
      processors: [{pipeline}]
      exporters: [debug]
"#
    )
}

fn emulate(yaml: &str) -> Result<Emulator, Error> {
    Emulator::new(&Config::from_yaml(yaml)?)
}

#[test]
fn unsupported_processors_are_named() {
    for (kind, body) in [
        ("routing", "    default_pipelines: [metrics]"),
        ("probabilistic_sampler", "    sampling_percentage: 10"),
        ("k8sattributes", "    passthrough: false"),
    ] {
        let yaml = config(&format!("  {kind}:\n{body}"), kind);
        let err = emulate(&yaml).unwrap_err().to_string();
        assert!(err.contains(kind), "{kind}: {err}");
    }
}

#[test]
fn unsupported_ottl_functions_are_named_with_their_component() {
    let yaml = config(
        r#"  transform/rename:
    metric_statements:
      - context: datapoint
        statements:
          - 'replace_pattern(attributes["state"], "^u", "U")'"#,
        "transform/rename",
    );
    let err = emulate(&yaml).unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("processors.transform/rename") && text.contains("replace_pattern"),
        "{text}"
    );
}

#[test]
fn unknown_functions_and_paths_are_errors_with_columns() {
    let yaml = config(
        r#"  filter/x:
    metrics:
      datapoint:
        - 'IsMatchh(resource.attributes["process.executable.name"], "x")'"#,
        "filter/x",
    );
    let err = emulate(&yaml).unwrap_err();
    let Error::Ottl {
        path,
        column,
        message,
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(path, "processors.filter/x.metrics.datapoint[0]");
    assert_eq!(*column, 1);
    assert!(message.contains("IsMatchh"), "{message}");

    let yaml = config(
        r#"  filter/x:
    metrics:
      metric:
        - 'metric.data_points == nil'"#,
        "filter/x",
    );
    let err = emulate(&yaml).unwrap_err().to_string();
    assert!(
        err.contains("filter/x") && err.contains("metric.data_points"),
        "{err}"
    );
}

#[test]
fn invalid_regexes_name_the_pattern() {
    let yaml = config(
        r#"  filter/x:
    metrics:
      datapoint:
        - 'IsMatch(resource.attributes["process.executable.name"], "([a-z]")'"#,
        "filter/x",
    );
    let err = emulate(&yaml).unwrap_err().to_string();
    assert!(err.contains("([a-z]") && err.contains("filter/x"), "{err}");
}

#[test]
fn unsupported_actions_and_scrapers_are_named() {
    let yaml = config(
        "  attributes/h:\n    actions:\n      - {key: state, action: hash}",
        "attributes/h",
    );
    let err = emulate(&yaml).unwrap_err().to_string();
    assert!(
        err.contains("attributes/h") && err.contains("hash"),
        "{err}"
    );

    let yaml = config("  batch: {}", "batch").replace("process: {}", "process: {}\n      cpu: {}");
    let err = emulate(&yaml).unwrap_err().to_string();
    assert!(
        err.contains("receivers.hostmetrics") && err.contains("cpu"),
        "{err}"
    );
}
