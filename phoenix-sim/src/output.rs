//! Where snapshots go, and the loop that drives a simulation into them.
//!
//! [`JsonLinesFile`] writes OTLP JSON lines as the collector's `file` exporter does: one
//! `ExportMetricsServiceRequest` per line, from [`phoenix_core::otlp::to_json`]. It writes
//! to `<path>.partial` and renames on [`Sink::finish`], so a failed run leaves no
//! half-written file under the final name.

use std::fmt;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use phoenix_core::telemetry::Snapshot;

use crate::{Error, Result, SimStats, Simulator};

/// A destination for snapshots.
pub trait Sink {
    /// Takes one snapshot.
    ///
    /// # Errors
    ///
    /// Whatever the destination reports.
    fn send(&mut self, snapshot: &Snapshot, stats: &SimStats) -> Result<()>;

    /// Completes the output (flushes, renames, closes).
    ///
    /// # Errors
    ///
    /// Whatever the destination reports.
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}

/// A sink that drops everything: for measuring generation alone.
#[derive(Debug, Default, Clone, Copy)]
pub struct Discard;

impl Sink for Discard {
    fn send(&mut self, _: &Snapshot, _: &SimStats) -> Result<()> {
        Ok(())
    }
}

/// OTLP JSON lines to any writer.
#[derive(Debug)]
pub struct JsonLines<W: Write> {
    writer: W,
    name: PathBuf,
}

impl<W: Write> JsonLines<W> {
    /// JSON lines to `writer`; `name` appears in errors.
    pub fn new(writer: W, name: impl Into<PathBuf>) -> Self {
        Self {
            writer,
            name: name.into(),
        }
    }

    /// The writer back.
    pub fn into_inner(self) -> W {
        self.writer
    }
}

impl<W: Write> Sink for JsonLines<W> {
    fn send(&mut self, snapshot: &Snapshot, _: &SimStats) -> Result<()> {
        let line = phoenix_core::otlp::to_json(snapshot);
        self.writer
            .write_all(line.as_bytes())
            .and_then(|()| self.writer.write_all(b"\n"))
            .map_err(|e| Error::io(&self.name, e))
    }

    fn finish(&mut self) -> Result<()> {
        self.writer.flush().map_err(|e| Error::io(&self.name, e))
    }
}

/// OTLP JSON lines to a file, written under `<path>.partial` until finished.
#[derive(Debug)]
pub struct JsonLinesFile {
    lines: Option<JsonLines<BufWriter<File>>>,
    path: PathBuf,
    partial: PathBuf,
}

impl JsonLinesFile {
    /// Creates `<path>.partial`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if it cannot be created.
    pub fn create(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let mut partial = path.clone().into_os_string();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let file = File::create(&partial).map_err(|e| Error::io(&partial, e))?;
        Ok(Self {
            lines: Some(JsonLines::new(
                BufWriter::with_capacity(1 << 20, file),
                &path,
            )),
            path,
            partial,
        })
    }
}

impl Sink for JsonLinesFile {
    fn send(&mut self, snapshot: &Snapshot, stats: &SimStats) -> Result<()> {
        match &mut self.lines {
            Some(lines) => lines.send(snapshot, stats),
            None => Ok(()),
        }
    }

    fn finish(&mut self) -> Result<()> {
        if let Some(mut lines) = self.lines.take() {
            lines.finish()?;
            drop(lines);
            std::fs::rename(&self.partial, &self.path).map_err(|e| Error::io(&self.path, e))?;
        }
        Ok(())
    }
}

impl Drop for JsonLinesFile {
    fn drop(&mut self) {
        if self.lines.is_some() {
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}

/// How fast a run goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Pace {
    /// As fast as possible.
    #[default]
    Fast,
    /// One scrape per scrape interval of wall time.
    Realtime,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSummary {
    /// The simulator's counters at the end.
    pub stats: SimStats,
    /// Simulated time covered.
    pub simulated: Duration,
    /// Wall time taken.
    pub wall: Duration,
}

impl RunSummary {
    /// Data points per second of wall time.
    pub fn points_per_second(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let points = self.stats.data_points as f64;
        points / self.wall.as_secs_f64().max(1e-9)
    }
}

impl fmt::Display for RunSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.stats;
        write!(
            f,
            "{} scrapes over {} simulated in {:.3} s: {} processes alive at the end, {} started, {} exited ({} crashed), {} series, {} data points ({:.1} M points/s)",
            s.scrapes,
            humantime::format_duration(self.simulated),
            self.wall.as_secs_f64(),
            s.live_processes,
            s.starts,
            s.exits,
            s.crashes,
            s.series_emitted,
            s.data_points,
            self.points_per_second() / 1e6,
        )
    }
}

/// Runs `sim` for `scrapes` scrapes into `sink`, calling `on_scrape` with the number done
/// after each, then finishes the sink.
///
/// # Errors
///
/// The first error of the sink; the sink is not finished then.
pub fn run(
    sim: &mut Simulator,
    scrapes: u64,
    pace: Pace,
    sink: &mut dyn Sink,
    on_scrape: &mut dyn FnMut(u64),
) -> Result<RunSummary> {
    let started = Instant::now();
    let interval = sim.scrape_interval();
    let before = sim.now();
    for i in 0..scrapes {
        if pace == Pace::Realtime {
            let due = interval.saturating_mul(u32::try_from(i + 1).unwrap_or(u32::MAX));
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        let (snapshot, stats) = sim.next_with_stats();
        sink.send(snapshot, stats)?;
        on_scrape(i + 1);
    }
    sink.finish()?;
    Ok(RunSummary {
        stats: sim.stats().clone(),
        simulated: sim.now().saturating_duration_since(before),
        wall: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Profile, SimConfig};
    use phoenix_core::experiment::ProfilePreset;

    #[test]
    fn json_lines_files_appear_only_when_finished() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let profile = Profile::preset(ProfilePreset::Realistic)
            .with_processes(10)
            .unwrap();
        let mut sim = Simulator::new(&profile, SimConfig::default()).unwrap();
        {
            let mut sink = JsonLinesFile::create(&path).unwrap();
            sink.send(sim.next_snapshot(), &SimStats::default())
                .unwrap();
            assert!(!path.exists());
        }
        assert!(!path.exists(), "an unfinished file is removed");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let mut sink = JsonLinesFile::create(&path).unwrap();
        let mut ticks = 0;
        let summary = run(&mut sim, 3, Pace::Fast, &mut sink, &mut |n| ticks = n).unwrap();
        assert_eq!(ticks, 3);
        assert_eq!(summary.simulated, Duration::from_secs(30));
        assert_eq!(summary.stats.data_points, 4 * 70);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3);
        let back: Vec<_> = crate::replay::read_file(&path)
            .unwrap()
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(&back[2], sim.snapshot());
        assert!(summary.to_string().contains("10 processes alive"));
    }
}
