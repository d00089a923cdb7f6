//! Collector pipeline configuration for Phoenix.
//!
//! The typed collector config model ([`config`]), the template catalog ([`catalog`]),
//! validation ([`validate`]), Kubernetes rendering ([`kubernetes`]), the GitOps writer
//! ([`gitops`]), and the pipeline emulator ([`emulator`], [`predict`]) with its OTTL subset
//! ([`ottl`]). Every config targets the pinned `otelcol-contrib` release
//! ([`catalog::COLLECTOR_RELEASE`]).
//!
//! Render a template, check it, and read it back:
//!
//! ```
//! use phoenix_generator::catalog::{TemplateId, render_template};
//! use phoenix_generator::config::Config;
//! use phoenix_generator::validate::{ValidateOptions, has_errors, validate};
//!
//! let params = serde_json::json!({
//!     "experimentId": "exp-docs0001",
//!     "criticalProcesses": ["^postgres$", "^nginx$"],
//!     "topK": 10,
//! });
//! let rendered = render_template(TemplateId::TopK, params.as_object().unwrap())?;
//! let yaml = rendered.to_yaml()?;
//! assert!(yaml.contains("filter/topk"));
//!
//! // Structure, memory_limiter placement, ports, OTTL, and that no data point of a critical
//! // process is dropped or changed on its way to the exporters.
//! let problems = validate(&rendered.config, &ValidateOptions::with_critical_names(["^postgres$"]));
//! assert!(!has_errors(&problems), "{problems:?}");
//!
//! // The YAML parses back into the same typed config.
//! assert_eq!(Config::from_yaml(&yaml)?, rendered.config);
//!
//! // Bad parameters name the field.
//! let err = render_template(TemplateId::TopK, serde_json::json!({"topK": 0}).as_object().unwrap())
//!     .unwrap_err();
//! assert_eq!(err.to_string(), "parameter `topK`: must be at least 1, got 0");
//! # Ok::<(), phoenix_generator::Error>(())
//! ```
//!
//! See `docs/generator.md` for the config model subset, the catalog and its parameters, and the
//! validation rules, and `docs/emulator.md` for the emulator.

pub mod catalog;
pub mod config;
pub mod emulator;
pub mod error;
pub mod gitops;
pub mod kubernetes;
pub mod ottl;
pub mod predict;
pub mod validate;

pub use error::{Error, Result};
