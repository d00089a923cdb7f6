//! Validation errors that name every field at fault.

use std::fmt;

/// One invalid field: where it is and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct FieldError {
    /// The field's path, e.g. `spec.successCriteria.minCardinalityReduction`.
    pub path: String,
    /// What is wrong, e.g. `must be within 0..=1`.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every violation found in a document, in document order. Never empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationErrors(Vec<FieldError>);

impl ValidationErrors {
    /// The violations.
    pub fn errors(&self) -> &[FieldError] {
        &self.0
    }

    /// The violations, by value.
    pub fn into_errors(self) -> Vec<FieldError> {
        self.0
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(f, "{n} invalid field{}:", if n == 1 { "" } else { "s" })?;
        for error in &self.0 {
            write!(f, "\n  {error}")?;
        }
        Ok(())
    }
}

/// Collects violations while walking a document.
#[derive(Debug, Default)]
pub(crate) struct Violations(Vec<FieldError>);

impl Violations {
    /// Records a violation at `path`.
    pub(crate) fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            path: path.into(),
            message: message.into(),
        });
    }

    /// Records `message` at `path` unless `ok`.
    pub(crate) fn check(&mut self, ok: bool, path: impl Into<String>, message: impl Into<String>) {
        if !ok {
            self.add(path, message);
        }
    }

    /// Records a violation unless `value` is a finite number within `0..=1`.
    pub(crate) fn fraction(&mut self, value: f64, path: impl Into<String>) {
        self.check(
            (0.0..=1.0).contains(&value),
            path,
            format!("must be within 0..=1, got {value}"),
        );
    }

    /// Records a violation unless `value` is finite and not negative.
    pub(crate) fn non_negative(&mut self, value: f64, path: impl Into<String>) {
        self.check(
            value.is_finite() && value >= 0.0,
            path,
            format!("must be a finite number of at least 0, got {value}"),
        );
    }

    /// `Ok` when nothing was recorded, otherwise every violation.
    pub(crate) fn finish(self) -> Result<(), ValidationErrors> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors(self.0))
        }
    }
}
