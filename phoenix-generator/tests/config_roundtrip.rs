#![allow(clippy::unwrap_used)]
//! Config model round trips: parse → render → parse gives the same config, and rendering is
//! deterministic, for a fixture covering every component type and for every template.

use phoenix_generator::catalog::{TemplateId, render};
use phoenix_generator::config::{
    ComponentId, ComponentKind, Config, Exporter, Processor, Receiver, StatementGroup,
};

const FULL: &str = include_str!("fixtures/config/full.yaml");

#[test]
fn full_fixture_round_trips() {
    let config = Config::from_yaml(FULL).unwrap();
    let yaml = config.to_yaml().unwrap();
    let again = Config::from_yaml(&yaml).unwrap();
    assert_eq!(again, config);
    assert_eq!(again.to_yaml().unwrap(), yaml);
}

#[test]
fn full_fixture_is_typed() {
    let config = Config::from_yaml(FULL).unwrap();
    let Some(Receiver::HostMetrics(h)) =
        config.receiver(&ComponentId::new(ComponentKind::HostMetrics))
    else {
        panic!("hostmetrics missing");
    };
    assert_eq!(h.root_path.as_deref(), Some("/hostfs"));
    let process = h.scrapers.process.as_ref().unwrap();
    assert!(process.mute_process_name_error);
    assert!(h.scrapers.cpu.is_some(), "opaque scrapers are kept");
    let Some(Processor::Transform(t)) =
        config.processor(&ComponentId::named(ComponentKind::Transform, "agg"))
    else {
        panic!("transform/agg missing");
    };
    assert!(matches!(t.metric_statements[0], StatementGroup::Grouped(_)));
    assert!(matches!(t.metric_statements[1], StatementGroup::Grouped(_)));
    let Some(Processor::Transform(flat)) =
        config.processor(&ComponentId::named(ComponentKind::Transform, "flat"))
    else {
        panic!("transform/flat missing");
    };
    assert!(
        flat.metric_statements
            .iter()
            .all(|s| matches!(s, StatementGroup::Flat(_)))
    );
    let Some(Exporter::OtlpHttp(e)) = config.exporter(&ComponentId::new(ComponentKind::OtlpHttp))
    else {
        panic!("otlphttp missing");
    };
    assert_eq!(
        e.headers["Authorization"],
        "Bearer ${env:PHOENIX_OTLP_TOKEN}"
    );
    assert_eq!(config.service.pipelines.len(), 2);
}

#[test]
fn every_template_round_trips_through_yaml() {
    for template in TemplateId::ALL {
        let config = render(template, &serde_json::Map::new()).unwrap();
        let yaml = config.to_yaml().unwrap();
        assert_eq!(Config::from_yaml(&yaml).unwrap(), config, "{template}");
        // Rendering twice gives identical bytes.
        let again = render(template, &serde_json::Map::new()).unwrap();
        assert_eq!(again.to_yaml().unwrap(), yaml, "{template}");
    }
}
