//! Progress display: renders the engine's event stream as buildx does (`plain` for CI logs,
//! `tty` with a live list of steps, `rawjson` one event per line), and keeps what a failure
//! report needs (each step's name and last log lines).
//!
//! rawjson format: each line is one JSON object, the engine's `Event` serialised with a `kind`
//! field (`solver`, `frontend`, `warning`, `frontend-log`, `exported`); solver events carry a
//! `type` (`vertex-started`, `vertex-cached`, `vertex-completed`, `vertex-failed`, `log`) and
//! log data in base64.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::Write as _;
use std::path::Path;
use std::time::Instant;

use hoist_engine::Event;
use hoist_solver::{LogStream, ProgressEvent};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;

use crate::flags::ProgressMode;

/// Log lines kept per step for the failure report.
const TAIL_LINES: usize = 20;

/// What the renderer remembers about one step.
#[derive(Debug, Default, Clone)]
pub struct StepRecord {
    /// Sequence number shown as `#N`.
    pub number: usize,
    /// Description.
    pub name: String,
    /// The last log lines.
    pub tail: VecDeque<String>,
    /// Partial last line.
    partial: String,
}

/// What rendering collected, for the failure report.
#[derive(Debug, Default)]
pub struct Report {
    /// Steps by vertex digest.
    pub steps: HashMap<String, StepRecord>,
    /// Warnings the frontend reported.
    pub warnings: Vec<String>,
}

/// A running renderer.
pub struct Renderer {
    task: JoinHandle<Report>,
}

impl Renderer {
    /// Starts rendering `events` in `mode` on stderr.
    pub fn spawn(mode: ProgressMode, events: UnboundedReceiver<Event>) -> Renderer {
        Renderer { task: tokio::spawn(render(mode, events)) }
    }

    /// Waits until the event stream ends and returns what was collected.
    pub async fn finish(self) -> Report {
        self.task.await.unwrap_or_default()
    }
}

/// The rendering loop.
async fn render(mode: ProgressMode, mut events: UnboundedReceiver<Event>) -> Report {
    let mut report = Report::default();
    let started = Instant::now();
    let mut starts: HashMap<String, Instant> = HashMap::new();
    let mut stderr = std::io::stderr();
    while let Some(event) = events.recv().await {
        if mode == ProgressMode::RawJson {
            if let Ok(line) = serde_json::to_string(&event) {
                let _ = writeln!(stderr, "{line}");
            }
        }
        let line = describe(&event, &mut report, &mut starts, started);
        if let Some(line) = line {
            match mode {
                ProgressMode::Plain | ProgressMode::Tty => {
                    let _ = writeln!(stderr, "{line}");
                }
                ProgressMode::RawJson | ProgressMode::Quiet => {}
            }
        }
    }
    report
}

/// Updates the report with `event` and returns the plain-text line for it, if any.
fn describe(event: &Event, report: &mut Report, starts: &mut HashMap<String, Instant>, started: Instant) -> Option<String> {
    let number_of = |report: &mut Report, vertex: String, name: &str| {
        let next = report.steps.len() + 1;
        let step = report.steps.entry(vertex).or_insert_with(|| StepRecord { number: next, name: name.to_string(), ..StepRecord::default() });
        step.number
    };
    match event {
        Event::Frontend { reference, digest } => Some(format!("#0 frontend {reference} {digest}")),
        Event::Warning { rule, message, location } => {
            let at = location.as_ref().map(|l| format!(" ({l})")).unwrap_or_default();
            let line = match rule {
                Some(rule) => format!("WARNING: {rule}: {message}{at}"),
                None => format!("WARNING: {message}{at}"),
            };
            report.warnings.push(line.clone());
            Some(line)
        }
        Event::FrontendLog { message } => Some(format!("#0 {message}")),
        Event::Exported { description } => Some(format!("#exporting {description} DONE")),
        Event::Solver { event } => match event {
            ProgressEvent::VertexStarted { vertex, name, .. } => {
                let n = number_of(report, vertex.to_string(), name);
                starts.insert(vertex.to_string(), Instant::now());
                Some(format!("#{n} {name}"))
            }
            ProgressEvent::VertexCached { vertex, name, .. } => {
                let n = number_of(report, vertex.to_string(), name);
                Some(format!("#{n} {name}\n#{n} CACHED"))
            }
            ProgressEvent::VertexCompleted { vertex, name, duration, .. } => {
                let n = number_of(report, vertex.to_string(), name);
                Some(format!("#{n} DONE {:.1}s", duration.as_secs_f64()))
            }
            ProgressEvent::VertexFailed { vertex, name, error, .. } => {
                let n = number_of(report, vertex.to_string(), name);
                Some(format!("#{n} ERROR: {error}"))
            }
            ProgressEvent::Log { vertex, stream, data, .. } => {
                let key = vertex.to_string();
                let n = number_of(report, key.clone(), "");
                let since = starts.get(&key).copied().unwrap_or(started).elapsed().as_secs_f64();
                let step = report.steps.get_mut(&key)?;
                let text = format!("{}{}", step.partial, String::from_utf8_lossy(data));
                let mut lines: Vec<&str> = text.split('\n').collect();
                step.partial = lines.pop().unwrap_or_default().to_string();
                let mut out = Vec::new();
                for line in lines {
                    step.tail.push_back(line.to_string());
                    if step.tail.len() > TAIL_LINES {
                        step.tail.pop_front();
                    }
                    let marker = if *stream == LogStream::Stderr { " !" } else { "" };
                    out.push(format!("#{n} {since:.3}{marker} {line}"));
                }
                (!out.is_empty()).then(|| out.join("\n"))
            }
        },
    }
}

/// The summary printed last when a build fails.
pub struct FailureReport {
    text: String,
}

impl FailureReport {
    /// Builds the report for `err`, with source lines from `dockerfile` when known.
    pub fn new(err: &hoist_engine::Error, report: &Report, dockerfile: Option<&Path>) -> FailureReport {
        let mut text = String::from("\n------\n");
        if let Some(digest) = err.failed_vertex() {
            if let Some(step) = report.steps.get(&digest.to_string()) {
                text.push_str(&format!(" > {}:\n", step.name));
                for line in step.tail.iter().chain(std::iter::once(&step.partial)).filter(|l| !l.is_empty()) {
                    text.push_str(&format!("#{} {line}\n", step.number));
                }
            }
        }
        text.push_str("------\n");
        if let Some(location) = err.location() {
            text.push_str(&source_lines(location, dockerfile));
        }
        text.push_str(&format!("ERROR: {err}\n"));
        FailureReport { text }
    }
}

impl fmt::Display for FailureReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The build-file lines of `location` (with two lines of context), numbered like buildx.
fn source_lines(location: &hoist_llb::SourceLocation, dockerfile: Option<&Path>) -> String {
    let Some(range) = location.ranges.first() else { return String::new() };
    let Some(text) = dockerfile.and_then(|p| std::fs::read_to_string(p).ok()) else {
        return format!("{location}\n");
    };
    let lines: Vec<&str> = text.lines().collect();
    let first = (range.start as usize).saturating_sub(2).max(1);
    let last = (range.end as usize + 1).min(lines.len());
    let mut out = format!("{}:{}\n--------------------\n", location.file, range.start);
    for n in first..=last {
        let marker = if n >= range.start as usize && n <= range.end as usize { ">>>" } else { "   " };
        out.push_str(&format!("  {n:>3} | {marker} {}\n", lines.get(n - 1).unwrap_or(&"")));
    }
    out.push_str("--------------------\n");
    out
}
