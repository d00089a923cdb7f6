//! OTLP JSON lines read back into snapshots: the simulator's own output, or what a real
//! collector's `file` exporter wrote (one `ExportMetricsServiceRequest` per line).
//!
//! Blank lines are skipped. Errors name the file and the 1-based line.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use phoenix_core::telemetry::Snapshot;

use crate::{Error, Result};

/// Snapshots read from OTLP JSON lines, one per non-blank line.
#[derive(Debug)]
pub struct Replay<R> {
    reader: R,
    name: String,
    line: usize,
    buffer: String,
}

/// Opens an OTLP JSON lines file.
///
/// # Errors
///
/// [`Error::Io`] if the file cannot be opened. Each line's problems come from the iterator.
pub fn read_file(path: impl AsRef<Path>) -> Result<Replay<BufReader<File>>> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    Ok(read(BufReader::new(file), path.display().to_string()))
}

/// Reads OTLP JSON lines from `reader`; `name` appears in errors.
pub fn read<R: BufRead>(reader: R, name: impl Into<String>) -> Replay<R> {
    Replay {
        reader,
        name: name.into(),
        line: 0,
        buffer: String::new(),
    }
}

impl<R: BufRead> Iterator for Replay<R> {
    type Item = Result<Snapshot>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.buffer.clear();
            self.line += 1;
            match self.reader.read_line(&mut self.buffer) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => {
                    return Some(Err(Error::Replay {
                        path: self.name.clone(),
                        line: self.line,
                        source: phoenix_core::Error::Otlp {
                            path: "$".to_owned(),
                            message: format!("cannot read the line: {e}"),
                        },
                    }));
                }
            }
            let text = self.buffer.trim();
            if text.is_empty() {
                continue;
            }
            return Some(
                phoenix_core::otlp::from_json(text).map_err(|source| Error::Replay {
                    path: self.name.clone(),
                    line: self.line,
                    source,
                }),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/collector-file-exporter.jsonl"
    );

    #[test]
    fn reads_a_collector_file_exporter_output() {
        let snapshots: Vec<Snapshot> = read_file(FIXTURE).unwrap().collect::<Result<_>>().unwrap();
        assert_eq!(snapshots.len(), 2);
        assert_eq!(snapshots[0].resources.len(), 2);
        assert_eq!(
            snapshots[0].resources[1]
                .attributes
                .get_str("process.executable.name"),
            Some("nginx")
        );
    }

    #[test]
    fn reads_phoenix_cores_scraper_fixture() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../phoenix-core/tests/fixtures/otlp/hostmetrics-process.json"
        );
        let snapshots: Vec<Snapshot> = read_file(path).unwrap().collect::<Result<_>>().unwrap();
        assert_eq!(snapshots.len(), 1);
        assert_eq!(
            snapshots[0].resources[0]
                .attributes
                .get_str("process.executable.name"),
            Some("systemd")
        );
    }

    #[test]
    fn errors_name_the_line() {
        let text = "\n{\"resourceMetrics\":[]}\nnot json\n";
        let results: Vec<_> = read(text.as_bytes(), "input").collect();
        assert_eq!(results.len(), 2);
        assert!(results[0].is_ok());
        let err = results[1].as_ref().unwrap_err().to_string();
        assert!(err.starts_with("input:3: "), "{err}");
    }

    #[test]
    fn missing_files_are_errors() {
        assert!(matches!(
            read_file("/nonexistent/file.jsonl"),
            Err(Error::Io { .. })
        ));
    }
}
