//! Render time per template: parameters → checked → typed config → YAML, and the ConfigMap.
//!
//! `cargo bench -p phoenix-generator --bench render`

use criterion::{Criterion, criterion_group, criterion_main};
use phoenix_generator::catalog::{TemplateId, render_template};
use phoenix_generator::config::Config;
use phoenix_generator::kubernetes::ConfigMap;
use std::hint::black_box;

fn params() -> serde_json::Map<String, serde_json::Value> {
    let value = serde_json::json!({
        "experimentId": "exp-bench001",
        "criticalProcesses": ["^postgres$", "^nginx$", {"name": "^java$", "path": "^/opt/app/"}],
        "otlpHeaders": {"Authorization": "Bearer ${env:PHOENIX_OTLP_TOKEN}"},
    });
    match value {
        serde_json::Value::Object(map) => map,
        _ => serde_json::Map::new(),
    }
}

fn bench_render(c: &mut Criterion) {
    let params = params();
    let mut group = c.benchmark_group("render");
    for template in TemplateId::ALL {
        group.bench_function(format!("{}/yaml", template.name()), |b| {
            b.iter(|| {
                let rendered = render_template(black_box(template), black_box(&params));
                rendered.and_then(|r| r.to_yaml()).map(|yaml| yaml.len())
            });
        });
    }
    if let Ok(rendered) = render_template(TemplateId::AdaptiveFilter, &params) {
        group.bench_function("process-adaptive-filter-v1/configmap", |b| {
            b.iter(|| {
                ConfigMap::for_rendered(black_box(&rendered), Some("observability"))
                    .and_then(|cm| cm.to_yaml())
            });
        });
        if let Ok(yaml) = rendered.to_yaml() {
            group.bench_function("process-adaptive-filter-v1/parse", |b| {
                b.iter(|| Config::from_yaml(black_box(&yaml)));
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_render);
criterion_main!(benches);
