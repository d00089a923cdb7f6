#![allow(clippy::unwrap_used)]
//! Golden files: every template rendered with its default parameters must equal
//! `tests/golden/<template>.yaml` byte for byte, and parsing the file must give back the config
//! that was rendered.
//!
//! After an intended change, regenerate the files with
//! `PHOENIX_BLESS=1 cargo test -p phoenix-generator --test golden` and review the diff.

use std::path::PathBuf;

use phoenix_generator::catalog::{TemplateId, render_template};
use phoenix_generator::config::Config;

fn golden_path(template: TemplateId) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{}.yaml", template.name()))
}

fn blessing() -> bool {
    std::env::var("PHOENIX_BLESS").is_ok_and(|v| v == "1")
}

#[test]
fn default_renders_match_the_golden_files() {
    let mut drift = Vec::new();
    for template in TemplateId::ALL {
        let rendered = render_template(template, &serde_json::Map::new()).unwrap();
        let yaml = rendered.to_yaml().unwrap();
        let path = golden_path(template);
        if blessing() {
            std::fs::write(&path, &yaml).unwrap();
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(golden) if golden == yaml => {}
            Ok(golden) => {
                let line = golden
                    .lines()
                    .zip(yaml.lines())
                    .position(|(a, b)| a != b)
                    .unwrap_or_else(|| golden.lines().count().min(yaml.lines().count()))
                    + 1;
                drift.push(format!("{}: differs from line {line}", path.display()));
            }
            Err(e) => drift.push(format!("{}: {e}", path.display())),
        }
    }
    assert!(
        drift.is_empty(),
        "rendered templates drifted from the golden files (regenerate with PHOENIX_BLESS=1 and review):\n{}",
        drift.join("\n")
    );
}

#[test]
fn parsing_a_golden_file_gives_the_rendered_config() {
    for template in TemplateId::ALL {
        let rendered = render_template(template, &serde_json::Map::new()).unwrap();
        let text = if blessing() {
            rendered.to_yaml().unwrap()
        } else {
            std::fs::read_to_string(golden_path(template)).unwrap()
        };
        let parsed = Config::from_yaml(&text).unwrap();
        assert_eq!(parsed, rendered.config, "{template}");
        // And rendering the parsed config gives the same YAML body.
        assert_eq!(
            parsed.to_yaml().unwrap(),
            rendered.config.to_yaml().unwrap()
        );
    }
}
