use super::*;

const CUSTOM: &str = r#"
name: workers
groups:
  - name: "worker-{index}"
    count: 20
    commandLine: "{path} --shard {index}"
    cpu: { pattern: sine, cores: 0.2, peak: 0.6, period: 10m }
    memory: { pattern: leaking, rssMib: 64, leakMibPerHour: 30, limitMib: 512 }
    lifetime: 10m..2h
    churnRate: 0.01
"#;

fn field_of(yaml: &str) -> String {
    let err = Profile::from_yaml(yaml).unwrap_err();
    err.field_name()
        .unwrap_or_else(|| panic!("no field in {err}"))
        .to_owned()
}

#[test]
fn custom_profiles_parse() {
    let profile = Profile::from_yaml(CUSTOM).unwrap();
    assert_eq!(profile.groups[0].count, 20);
    assert_eq!(profile.groups[0].cpu.pattern, CpuPatternKind::Sine);
    assert_eq!(profile.groups[0].memory.pattern, MemoryPatternKind::Leaking);
    let value: serde_json::Value = serde_yaml::from_str(CUSTOM).unwrap();
    assert_eq!(Profile::from_value(&value).unwrap(), profile);
    assert_eq!(Profile::from_yaml(&profile.to_yaml()).unwrap(), profile);
}

#[test]
fn bad_input_names_the_field() {
    let unknown_pattern = CUSTOM.replace("pattern: sine", "pattern: wavy");
    assert_eq!(field_of(&unknown_pattern), "groups[0].cpu.pattern");
    let negative = CUSTOM.replace("count: 20", "count: -3");
    assert_eq!(field_of(&negative), "groups[0].count");
    let churn = CUSTOM.replace("churnRate: 0.01", "churnRate: 1.5");
    assert_eq!(field_of(&churn), "groups[0].churnRate");
    let duration = CUSTOM.replace("lifetime: 10m..2h", "lifetime: soonish");
    assert_eq!(field_of(&duration), "groups[0].lifetime");
    let unknown_field = CUSTOM.replace("churnRate", "churnRat");
    assert!(field_of(&unknown_field).starts_with("groups[0]"));
    let unknown_variable = CUSTOM.replace("{path} --shard", "{path} --shard {nope}");
    assert_eq!(field_of(&unknown_variable), "groups[0].commandLine");
    let parent = CUSTOM.replace("churnRate: 0.01", "churnRate: 0.01\n    parent: nobody");
    assert_eq!(field_of(&parent), "groups[0].parent");
    let value: serde_json::Value = serde_yaml::from_str(&churn).unwrap();
    let err = Profile::from_value(&value).unwrap_err();
    assert_eq!(err.field_name(), Some("groups[0].churnRate"), "{err}");
    let value: serde_json::Value = serde_yaml::from_str(&negative).unwrap();
    let err = Profile::from_value(&value).unwrap_err();
    assert_eq!(err.field_name(), Some("groups[0].count"), "{err}");
    assert!(matches!(
        Profile::from_yaml("name: \"unterminated"),
        Err(Error::Document { .. })
    ));
}

#[test]
fn presets_are_valid_and_scale_exactly() {
    for preset in ProfilePreset::ALL {
        let profile = Profile::preset(preset);
        profile.validate().unwrap();
        assert_eq!(profile.name, preset.as_str());
        for n in [1, 7, 50, 333, 5000] {
            let scaled = profile.clone().with_processes(n).unwrap();
            assert_eq!(
                scaled.steady_processes(),
                u64::from(n),
                "{preset} scaled to {n}"
            );
        }
        assert_eq!(
            Profile::preset(preset)
                .with_processes(0)
                .unwrap_err()
                .field_name(),
            Some("processes")
        );
    }
    let realistic = Profile::preset(ProfilePreset::Realistic).steady_processes();
    assert!((100..=200).contains(&realistic), "{realistic}");
    let hc = Profile::preset(ProfilePreset::HighCardinality).steady_processes();
    assert!((1000..=2000).contains(&hc), "{hc}");
    assert!(Profile::preset_named("nope").is_err());
}

#[test]
fn published_schema_matches_the_types() {
    let published: serde_json::Value =
        serde_json::from_str(include_str!("../../schema/custom-profile.schema.json")).unwrap();
    assert_eq!(
        published,
        Profile::json_schema(),
        "schema/custom-profile.schema.json is out of date: regenerate it with \
         `phoenix-sim profiles schema > phoenix-sim/schema/custom-profile.schema.json`"
    );
}

#[test]
fn the_documented_example_is_valid_and_shown() {
    let example = include_str!("../../tests/fixtures/custom-profile.yaml");
    let profile = Profile::from_yaml(example).unwrap();
    assert_eq!(profile.groups.len(), 3);
    assert!(profile.chaos.is_some());
    let docs = include_str!("../../../docs/simulator.md");
    assert!(
        docs.contains(example),
        "docs/simulator.md shows the fixture"
    );
}
