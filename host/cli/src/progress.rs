//! Progress display: renders the engine's event stream as buildx does (`plain` for CI logs,
//! `tty` with a live list of steps, `rawjson` one event per line), and keeps what a failure
//! report needs (each step's name and last log lines).
//!
//! rawjson format: each line is one JSON object, the engine's `Event` serialised with a `kind`
//! field (`solver`, `frontend`, `warning`, `frontend-log`, `exported`); solver events carry a
//! `type` (`vertex-started`, `vertex-cached`, `vertex-completed`, `vertex-failed`,
//! `vertex-explained`, `log`) and log data in base64. A failed build ends with one
//! `{"kind":"failure-report", ...}` line (see [`FailureData`]).
//!
//! Every step is numbered `#N` in the order it first appears; plain lines show why a step ran
//! next to its name (`#5 COPY . /app — rebuilt: src/main.rs changed (+1 more)`).

mod logfile;
mod tty;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::Write as _;
use std::path::Path;
use std::time::Instant;

use hoist_engine::Event;
use hoist_solver::{Explanation, LogStream, ProgressEvent};
use serde::Serialize;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;

use crate::flags::ProgressMode;
pub use logfile::LogFile;

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
    pub(crate) partial: String,
    /// Why it ran (or was cached), if the engine explained it.
    pub explanation: Option<Explanation>,
}

/// What rendering collected, for the failure report.
#[derive(Debug, Default)]
pub struct Report {
    /// Steps by vertex digest.
    pub steps: HashMap<String, StepRecord>,
    /// Warnings the frontend reported.
    pub warnings: Vec<String>,
    /// Vertex digests in the order they were first explained.
    pub explained: Vec<String>,
    /// The `--log-file`, still open for the failure report.
    pub log_file: Option<LogFile>,
}

impl Report {
    /// Every explained step, in order: (number, name, vertex digest, explanation).
    pub fn explanations(&self) -> Vec<(usize, &str, &str, &Explanation)> {
        self.explained
            .iter()
            .filter_map(|v| {
                let step = self.steps.get(v)?;
                Some((step.number, step.name.as_str(), v.as_str(), step.explanation.as_ref()?))
            })
            .collect()
    }
}

/// A running renderer.
pub struct Renderer {
    task: JoinHandle<Report>,
}

impl Renderer {
    /// Starts rendering `events` in `mode` on stderr, also writing every event in full to `log`.
    pub fn spawn(mode: ProgressMode, events: UnboundedReceiver<Event>, log: Option<LogFile>) -> Renderer {
        let task = if mode == ProgressMode::Tty {
            tokio::spawn(tty::render(events, log))
        } else {
            tokio::spawn(render(mode, events, log))
        };
        Renderer { task }
    }

    /// Waits until the event stream ends and returns what was collected.
    pub async fn finish(self) -> Report {
        self.task.await.unwrap_or_default()
    }
}

/// The rendering loop.
async fn render(mode: ProgressMode, mut events: UnboundedReceiver<Event>, mut log: Option<LogFile>) -> Report {
    let mut report = Report::default();
    let started = Instant::now();
    let mut starts: HashMap<String, Instant> = HashMap::new();
    let mut stderr = std::io::stderr();
    while let Some(event) = events.recv().await {
        if let Some(log) = &mut log {
            log.write_event(&event, &mut report);
        }
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
    if let Some(log) = &mut log {
        log.finish();
    }
    report.log_file = log;
    report
}

/// The step number of `vertex`, numbering it now if it is new.
fn number_of(report: &mut Report, vertex: String, name: &str) -> usize {
    let next = report.steps.len() + 1;
    let step = report.steps.entry(vertex).or_insert_with(|| StepRecord { number: next, ..StepRecord::default() });
    if step.name.is_empty() {
        step.name = name.to_string();
    }
    step.number
}

/// ` — rebuilt: …` after a step's name, when the engine explained it.
fn explained_suffix(report: &Report, vertex: &str) -> String {
    match report.steps.get(vertex).and_then(|s| s.explanation.as_ref()) {
        Some(e) if e.status == hoist_solver::StepStatus::Rebuilt => format!(" \u{2014} {}", e.summary()),
        _ => String::new(),
    }
}

/// Records an explanation in the report; returns the note line of a cached step, if any.
fn record_explanation(report: &mut Report, vertex: &hoist_llb::Digest, name: &str, explanation: &Explanation) -> Option<String> {
    let key = vertex.to_string();
    let n = number_of(report, key.clone(), name);
    if !report.explained.contains(&key) {
        report.explained.push(key.clone());
    }
    if let Some(step) = report.steps.get_mut(&key) {
        step.explanation = Some(explanation.clone());
    }
    (explanation.status == hoist_solver::StepStatus::Cached && !explanation.notes.is_empty())
        .then(|| explanation.notes.iter().map(|r| format!("#{n} note: {}", r.detail().join(" "))).collect::<Vec<_>>().join("\n"))
}

/// Updates the report with `event` and returns the plain-text line for it, if any.
fn describe(event: &Event, report: &mut Report, starts: &mut HashMap<String, Instant>, started: Instant) -> Option<String> {
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
                Some(format!("#{n} {name}{}", explained_suffix(report, &vertex.to_string())))
            }
            ProgressEvent::VertexExplained { vertex, name, explanation } => record_explanation(report, vertex, name, explanation),
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

/// What a failure report says, as data: the same in the metadata file and the rawjson stream.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FailureData {
    /// The failing step's description.
    pub step: Option<String>,
    /// Its number in the progress output (`#N`).
    pub step_number: Option<usize>,
    /// Its op digest.
    pub vertex: Option<String>,
    /// Its build-file location.
    pub location: Option<hoist_llb::SourceLocation>,
    /// The build-file lines of that location (number, text), with two lines of context.
    pub source_lines: Vec<(usize, String)>,
    /// The command that failed, for RUN steps.
    pub command: Option<Vec<String>>,
    /// Its exit code.
    pub exit_code: Option<i32>,
    /// The step's last log lines (up to 20).
    pub log: Vec<String>,
    /// The error.
    pub message: String,
}

/// The summary printed last when a build fails.
pub struct FailureReport {
    data: FailureData,
    source_text: String,
}

impl FailureReport {
    /// Builds the report for `err`, with source lines from `dockerfile` when known.
    pub fn new(err: &hoist_engine::Error, report: &Report, dockerfile: Option<&Path>) -> FailureReport {
        let mut failure = FailureReport::from_parts(&err.to_string(), err.location(), err.failed_vertex(), report, dockerfile);
        if let Some((code, args)) = err.exit_status() {
            failure.data.exit_code = Some(code);
            failure.data.command = Some(args.to_vec());
        }
        failure
    }

    /// Builds the report from an error's parts (a failure a daemon reported): its message, the
    /// build-file location and the failed step, with source lines from `dockerfile` when known.
    pub fn from_parts(
        message: &str,
        location: Option<&hoist_llb::SourceLocation>,
        failed_vertex: Option<hoist_llb::Digest>,
        report: &Report,
        dockerfile: Option<&Path>,
    ) -> FailureReport {
        let mut data = FailureData { message: message.to_string(), location: location.cloned(), ..FailureData::default() };
        if let Some(digest) = failed_vertex {
            data.vertex = Some(digest.to_string());
            if let Some(step) = report.steps.get(&digest.to_string()) {
                data.step = Some(step.name.clone());
                data.step_number = Some(step.number);
                data.log = step.tail.iter().chain(std::iter::once(&step.partial)).filter(|l| !l.is_empty()).cloned().collect();
                let excess = data.log.len().saturating_sub(TAIL_LINES);
                data.log.drain(..excess);
            }
        }
        let (source_text, lines) = match location {
            Some(l) => source_lines(l, dockerfile),
            None => (String::new(), Vec::new()),
        };
        data.source_lines = lines;
        FailureReport { data, source_text }
    }

    /// The report as data.
    pub fn data(&self) -> &FailureData {
        &self.data
    }

    /// The rawjson line of the report: `{"kind":"failure-report", ...}`.
    pub fn json_line(&self) -> String {
        let mut value = serde_json::to_value(&self.data).unwrap_or_default();
        if let Some(map) = value.as_object_mut() {
            map.insert("kind".into(), "failure-report".into());
        }
        value.to_string()
    }
}

impl fmt::Display for FailureReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.data;
        writeln!(f, "\n------")?;
        if let Some(step) = &d.step {
            writeln!(f, " > {step}:")?;
            for line in &d.log {
                writeln!(f, "#{} {line}", d.step_number.unwrap_or(0))?;
            }
        }
        writeln!(f, "------")?;
        f.write_str(&self.source_text)?;
        if let Some(command) = &d.command {
            write!(f, "command: {}", command.join(" "))?;
            match d.exit_code {
                Some(code) => writeln!(f, " (exit code {code})")?,
                None => writeln!(f)?,
            }
        }
        // The ERROR line is the last line, as in buildx. A message's further lines (a process's
        // last output, say) come before it unless the step's log box above shows them already.
        let mut lines = d.message.lines();
        let first = lines.next().unwrap_or_default();
        for line in lines.filter(|l| !d.log.iter().any(|shown| shown.trim_end() == l.trim_end())) {
            writeln!(f, "{line}")?;
        }
        writeln!(f, "ERROR: {first}")
    }
}

/// The build-file lines of `location` (with two lines of context), numbered like buildx, as
/// text and as (number, line) pairs.
fn source_lines(location: &hoist_llb::SourceLocation, dockerfile: Option<&Path>) -> (String, Vec<(usize, String)>) {
    let Some(range) = location.ranges.first() else { return (String::new(), Vec::new()) };
    let Some(text) = dockerfile.and_then(|p| std::fs::read_to_string(p).ok()) else {
        return (format!("{location}\n"), Vec::new());
    };
    let lines: Vec<&str> = text.lines().collect();
    let first = (range.start as usize).saturating_sub(2).max(1);
    let last = (range.end as usize + 1).min(lines.len());
    let mut out = format!("{}:{}\n--------------------\n", location.file, range.start);
    let mut pairs = Vec::new();
    for n in first..=last {
        let marker = if n >= range.start as usize && n <= range.end as usize { ">>>" } else { "   " };
        let line = lines.get(n - 1).unwrap_or(&"");
        out.push_str(&format!("  {n:>3} | {marker} {line}\n"));
        pairs.push((n, line.to_string()));
    }
    out.push_str("--------------------\n");
    (out, pairs)
}
