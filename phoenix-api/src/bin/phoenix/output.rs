//! Output formats: aligned tables for people, JSON and YAML for programs.

use std::io::Write;

use anyhow::{Context, Result};
use clap::ValueEnum;
use serde::Serialize;

/// How a command prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns (or `key: value` lines for one object).
    Table,
    /// Pretty-printed JSON.
    Json,
    /// YAML.
    Yaml,
}

impl Format {
    /// Serializes `value` as JSON or YAML; `None` for [`Format::Table`], which each command
    /// renders itself.
    pub fn machine(self, value: &impl Serialize) -> Result<Option<String>> {
        Ok(match self {
            Self::Table => None,
            Self::Json => Some(
                serde_json::to_string_pretty(value).context("cannot encode the output as JSON")?
                    + "\n",
            ),
            Self::Yaml => {
                Some(serde_yaml::to_string(value).context("cannot encode the output as YAML")?)
            }
        })
    }

    /// Prints `value` as JSON or YAML, or the table `table` builds.
    pub fn print<T: Serialize>(self, value: &T, table: impl FnOnce(&T) -> String) -> Result<()> {
        match self.machine(value)? {
            Some(text) => print(&text),
            None => print(&table(value)),
        }
    }
}

/// Standard output was closed by its reader (a broken pipe).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClosedStdout;

impl std::fmt::Display for ClosedStdout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("standard output was closed")
    }
}

impl std::error::Error for ClosedStdout {}

/// Whether `error` is a [`ClosedStdout`]: the command should stop quietly with success.
pub fn is_closed_stdout(error: &anyhow::Error) -> bool {
    error
        .chain()
        .any(|e| e.downcast_ref::<ClosedStdout>().is_some())
}

/// Writes `text` to standard output. A reader that went away is a [`ClosedStdout`] error.
pub fn print(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(ClosedStdout.into()),
        Err(e) => Err(e).context("cannot write to standard output"),
    }
}

/// Rows under a header, each column as wide as its widest cell.
#[derive(Debug, Clone, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new<I, S>(header: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells are blank, extra cells are dropped.
    pub fn row<I, S>(&mut self, cells: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut row: Vec<String> = cells.into_iter().map(Into::into).collect();
        row.resize(self.header.len(), String::new());
        self.rows.push(row);
        self
    }

    /// The table as text, one line per row, columns two spaces apart, without trailing
    /// spaces.
    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut text = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                let pad = width.saturating_sub(cell.chars().count());
                line.extend(std::iter::repeat_n(' ', pad));
            }
            text.push_str(line.trim_end());
            text.push('\n');
        }
        text
    }
}

/// `key: value` lines with the values aligned.
#[derive(Debug, Clone, Default)]
pub struct Details {
    entries: Vec<(String, String)>,
}

impl Details {
    /// No entries yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one entry.
    pub fn add(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.entries.push((key.into(), value.into()));
        self
    }

    /// The entries as text.
    pub fn render(&self) -> String {
        let width = self
            .entries
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        let mut text = String::new();
        for (key, value) in &self.entries {
            let pad = width - key.chars().count();
            text.push_str(key);
            text.push(':');
            text.extend(std::iter::repeat_n(' ', pad + 1));
            text.push_str(value);
            text.push('\n');
        }
        text
    }
}

/// A fraction as a percentage with one decimal, e.g. `0.625` → `62.5%`.
pub fn percent(fraction: f64) -> String {
    format!("{:.1}%", fraction * 100.0)
}

/// A number with thousands separators and `decimals` decimals, e.g. `12,345.6`.
pub fn number(value: f64, decimals: usize) -> String {
    phoenix_core::analysis::fixed(value, decimals)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let mut t = Table::new(["ID", "NAME"]);
        t.row(["exp-1", "short"]).row(["exp-long-id", "x"]);
        assert_eq!(
            t.render(),
            "ID           NAME\nexp-1        short\nexp-long-id  x\n"
        );
    }

    #[test]
    fn details_align_values() {
        let mut d = Details::new();
        d.add("id", "exp-1").add("phase", "running");
        assert_eq!(d.render(), "id:    exp-1\nphase: running\n");
    }

    #[test]
    fn numbers_are_grouped() {
        assert_eq!(number(1_234_567.0, 0), "1,234,567");
        assert_eq!(number(-1234.5, 1), "-1,234.5");
        assert_eq!(number(999.0, 0), "999");
        assert_eq!(number(-0.01, 1), "0.0");
        assert_eq!(percent(0.625), "62.5%");
    }

    #[test]
    fn machine_formats_parse_back() {
        let value = serde_json::json!({"a": [1, 2]});
        let json = Format::Json.machine(&value).unwrap().unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&json).unwrap(),
            value
        );
        let yaml = Format::Yaml.machine(&value).unwrap().unwrap();
        assert_eq!(
            serde_yaml::from_str::<serde_json::Value>(&yaml).unwrap(),
            value
        );
        assert!(Format::Table.machine(&value).unwrap().is_none());
    }
}
