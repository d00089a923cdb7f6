#![allow(clippy::unwrap_used)]
//! Property tests of rendering: for random parameters (process names full of regex and OTTL
//! metacharacters), every template renders, its YAML parses back to the same config, and the
//! result passes structural and OTTL validation. A name turned into an anchored pattern matches
//! exactly that name inside the rendered OTTL, once the OTTL string escaping is undone.

use phoenix_generator::catalog::pattern::{exact, ottl_string};
use phoenix_generator::catalog::{TemplateId, render};
use phoenix_generator::config::Config;
use phoenix_generator::validate::{Severity, ValidateOptions, validate};
use proptest::prelude::*;
use serde_json::{Value, json};

fn name() -> impl Strategy<Value = String> {
    // Letters plus the characters that break naive escaping: regex metacharacters, quotes,
    // backslashes, spaces and non-ASCII.
    proptest::string::string_regex(r#"[a-z0-9.+*?()\[\]{}|^$\\"' /:é-]{1,12}"#).unwrap()
}

fn params() -> impl Strategy<Value = serde_json::Map<String, Value>> {
    (
        proptest::collection::vec(name(), 0..4),
        proptest::collection::vec(name(), 0..3),
        1u32..500,
        prop_oneof![
            Just(None),
            (1u32..99).prop_map(|p| Some(f64::from(p) / 100.0))
        ],
        prop_oneof![Just(None), (1u64..1 << 34).prop_map(Some)],
        prop_oneof![Just("10s"), Just("1m"), Just("15s"), Just("500ms")],
        any::<bool>(),
    )
        .prop_map(
            |(critical, high, top_k, cpu, memory, interval, class_key)| {
                let critical: Vec<String> = critical.iter().map(|n| exact(n)).collect();
                let high: Vec<String> = high.iter().map(|n| exact(n)).collect();
                let (cpu, memory) = if cpu.is_none() && memory.is_none() {
                    (Some(0.1), None)
                } else {
                    (cpu, memory)
                };
                let mut map = json!({
                    "criticalProcesses": critical,
                    "collectionInterval": interval,
                    "highPriorityProcesses": high,
                    "topK": top_k,
                    "cpuUtilizationThreshold": cpu,
                    "memoryUsageThreshold": memory,
                    "aggregationKey": if class_key { "class" } else { "executableName" },
                    "classes": [{"class": "web \"x\"", "pattern": "^(?:nginx|httpd)$"}],
                });
                let obj = map.as_object_mut().unwrap();
                obj.remove("dummy");
                obj.clone()
            },
        )
}

/// The subset of `all` that `template` accepts.
fn for_template(
    template: TemplateId,
    all: &serde_json::Map<String, Value>,
) -> serde_json::Map<String, Value> {
    let allowed: &[&str] = match template {
        TemplateId::Baseline => &["criticalProcesses", "collectionInterval"],
        TemplateId::PriorityFilter => &[
            "criticalProcesses",
            "collectionInterval",
            "highPriorityProcesses",
        ],
        TemplateId::TopK => &[
            "criticalProcesses",
            "collectionInterval",
            "topK",
            "cpuUtilizationThreshold",
            "memoryUsageThreshold",
        ],
        TemplateId::Aggregated => &[
            "criticalProcesses",
            "collectionInterval",
            "aggregationKey",
            "classes",
        ],
        TemplateId::AdaptiveFilter => &[
            "criticalProcesses",
            "collectionInterval",
            "cpuUtilizationThreshold",
            "memoryUsageThreshold",
            "aggregationKey",
            "classes",
        ],
    };
    all.iter()
        .filter(|(k, _)| allowed.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn every_template_round_trips_and_validates(all in params()) {
        for template in TemplateId::ALL {
            let params = for_template(template, &all);
            let empty_keep = template == TemplateId::PriorityFilter
                && params["criticalProcesses"].as_array().unwrap().is_empty()
                && params["highPriorityProcesses"].as_array().unwrap().is_empty();
            let config = match render(template, &params) {
                Ok(config) => config,
                Err(e) => {
                    // The only refusal: a priority filter with nothing to keep.
                    prop_assert!(empty_keep, "{template}: {e}");
                    continue;
                }
            };
            let yaml = config.to_yaml().unwrap();
            prop_assert_eq!(&Config::from_yaml(&yaml).unwrap(), &config);
            let errors: Vec<_> = validate(&config, &ValidateOptions::default())
                .into_iter()
                .filter(|p| p.severity == Severity::Error)
                .collect();
            prop_assert!(errors.is_empty(), "{template}: {errors:?}\n{yaml}");
        }
    }

    #[test]
    fn exact_patterns_survive_ottl_escaping(n in name()) {
        let pattern = exact(&n);
        let literal = ottl_string(&pattern);
        // Undo the OTTL escaping the way the collector's parser does.
        let inner = &literal[1..literal.len() - 1];
        let mut unescaped = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                unescaped.push(chars.next().unwrap());
            } else {
                unescaped.push(c);
            }
        }
        prop_assert_eq!(&unescaped, &pattern);
        let re = regex::Regex::new(&unescaped).unwrap();
        prop_assert!(re.is_match(&n));
        let longer = format!("{n}x");
        prop_assert!(!re.is_match(&longer));
    }
}
