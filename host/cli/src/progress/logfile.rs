//! `--log-file PATH`: every event of a build in full, one line each, with a UTC timestamp and the
//! step's number and name; process output is split into lines and never truncated.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context as _;
use hoist_engine::Event;
use hoist_solver::{LogStream, ProgressEvent};

use super::{number_of, Report};

/// The complete log of a build, written as events arrive.
pub struct LogFile {
    path: PathBuf,
    out: BufWriter<File>,
    /// Unfinished last lines by (vertex, stream).
    partial: HashMap<(String, &'static str), (String, SystemTime)>,
    /// The first write error, reported once.
    failed: bool,
}

impl std::fmt::Debug for LogFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogFile").field("path", &self.path).finish()
    }
}

fn timestamp(at: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(at)
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

impl LogFile {
    /// Creates (truncates) the log file at `path`.
    pub fn create(path: &Path) -> anyhow::Result<LogFile> {
        let file = File::create(path)
            .with_context(|| format!("creating the log file {}", path.display()))?;
        Ok(LogFile {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
            partial: HashMap::new(),
            failed: false,
        })
    }

    fn line(&mut self, at: SystemTime, text: &str) {
        if self.failed {
            return;
        }
        if let Err(e) = writeln!(self.out, "{} {text}", timestamp(at)) {
            eprintln!("hoist: writing the log file {}: {e}", self.path.display());
            self.failed = true;
        }
    }

    /// Writes one event (numbering its step in `report` if new).
    pub(super) fn write_event(&mut self, event: &Event, report: &mut Report) {
        let now = SystemTime::now();
        match event {
            Event::Frontend { reference, digest } => {
                self.line(now, &format!("#0 frontend {reference} {digest}"))
            }
            Event::Warning {
                rule,
                message,
                location,
            } => {
                let at = location
                    .as_ref()
                    .map(|l| format!(" ({l})"))
                    .unwrap_or_default();
                self.line(
                    now,
                    &format!(
                        "WARNING: {}{message}{at}",
                        rule.as_ref().map(|r| format!("{r}: ")).unwrap_or_default()
                    ),
                );
            }
            Event::FrontendLog { message } => {
                for l in message.lines() {
                    self.line(now, &format!("#0 frontend: {l}"));
                }
            }
            Event::Exported { description } => self.line(now, &format!("exported: {description}")),
            Event::Solver { event } => self.solver_event(event, report),
            #[allow(
                unreachable_patterns,
                reason = "other engine events are logged by their JSON form"
            )]
            other => {
                let json = serde_json::to_string(other).unwrap_or_default();
                self.line(now, &json);
            }
        }
    }

    fn solver_event(&mut self, event: &ProgressEvent, report: &mut Report) {
        match event {
            ProgressEvent::VertexStarted { vertex, name, at } => {
                let n = number_of(report, vertex.to_string(), name);
                self.line(*at, &format!("#{n} {name}: started"));
            }
            ProgressEvent::VertexCached { vertex, name, at } => {
                let n = number_of(report, vertex.to_string(), name);
                self.line(*at, &format!("#{n} {name}: CACHED"));
            }
            ProgressEvent::VertexCompleted {
                vertex,
                name,
                at,
                duration,
            } => {
                self.flush_partials(&vertex.to_string(), report);
                let n = number_of(report, vertex.to_string(), name);
                self.line(
                    *at,
                    &format!("#{n} {name}: DONE {:.3}s", duration.as_secs_f64()),
                );
            }
            ProgressEvent::VertexFailed {
                vertex,
                name,
                at,
                error,
            } => {
                self.flush_partials(&vertex.to_string(), report);
                let n = number_of(report, vertex.to_string(), name);
                for (k, l) in error.lines().enumerate() {
                    let lead = if k == 0 { "ERROR: " } else { "  " };
                    self.line(*at, &format!("#{n} {name}: {lead}{l}"));
                }
            }
            ProgressEvent::VertexExplained {
                vertex,
                name,
                explanation,
            } => {
                let n = number_of(report, vertex.to_string(), name);
                let now = SystemTime::now();
                self.line(now, &format!("#{n} {name}: {}", explanation.summary()));
                for r in explanation.reasons.iter().chain(&explanation.notes) {
                    for d in r.detail() {
                        self.line(now, &format!("#{n} {name}:   {d}"));
                    }
                }
            }
            ProgressEvent::Log {
                vertex,
                stream,
                data,
                at,
            } => {
                let key = vertex.to_string();
                let n = number_of(report, key.clone(), "");
                let name = report
                    .steps
                    .get(&key)
                    .map(|s| s.name.clone())
                    .unwrap_or_default();
                let tag = stream_tag(*stream);
                let slot = self
                    .partial
                    .entry((key, tag))
                    .or_insert_with(|| (String::new(), *at));
                slot.0.push_str(&String::from_utf8_lossy(data));
                let text = std::mem::take(&mut slot.0);
                let mut lines: Vec<&str> = text.split('\n').collect();
                let rest = lines.pop().unwrap_or_default().to_string();
                slot.0 = rest;
                slot.1 = *at;
                for l in lines {
                    self.line(*at, &format!("#{n} {name}: {tag}: {l}"));
                }
            }
            #[allow(
                unreachable_patterns,
                reason = "events added later are logged by their JSON form"
            )]
            other => {
                let json = serde_json::to_string(other).unwrap_or_default();
                self.line(SystemTime::now(), &json);
            }
        }
    }

    /// Writes the unfinished last lines of a step's output.
    fn flush_partials(&mut self, vertex: &str, report: &mut Report) {
        for tag in ["stdout", "stderr"] {
            if let Some((text, at)) = self.partial.remove(&(vertex.to_string(), tag)) {
                if !text.is_empty() {
                    let n = number_of(report, vertex.to_string(), "");
                    let name = report
                        .steps
                        .get(vertex)
                        .map(|s| s.name.clone())
                        .unwrap_or_default();
                    self.line(at, &format!("#{n} {name}: {tag}: {text}"));
                }
            }
        }
    }

    /// Writes what is left and flushes the file.
    pub(super) fn finish(&mut self) {
        let rest: Vec<_> = self.partial.drain().collect();
        for ((_, tag), (text, at)) in rest {
            if !text.is_empty() {
                self.line(at, &format!("{tag}: {text}"));
            }
        }
        if let Err(e) = self.out.flush() {
            if !self.failed {
                eprintln!("hoist: writing the log file {}: {e}", self.path.display());
            }
        }
    }

    /// Appends a closing section (the failure report) and flushes.
    pub fn append(&mut self, text: &str) {
        for l in text.lines() {
            self.line(SystemTime::now(), l);
        }
        let _ = self.out.flush();
    }
}

fn stream_tag(stream: LogStream) -> &'static str {
    match stream {
        LogStream::Stdout => "stdout",
        LogStream::Stderr => "stderr",
    }
}
