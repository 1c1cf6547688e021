//! The live tty display (indicatif): a header with the build's elapsed time and step count, one
//! line per step (`=> #5 COPY . /app — rebuilt: a.txt changed   1.2s`, `CACHED`, `ERROR`), and
//! under each running step the tail of its output. Lines fit the terminal's width; the log file
//! and the failure report keep everything.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use hoist_engine::Event;
use hoist_solver::{ProgressEvent, StepStatus};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::mpsc::UnboundedReceiver;

use super::{describe, LogFile, Report};

/// Log lines shown under a running step.
const TAIL_SHOWN: usize = 6;

/// How often running steps' times are redrawn.
const TICK: Duration = Duration::from_millis(100);

/// What a step's line shows.
enum State {
    Running(Instant),
    Done(Duration),
    Cached,
    Failed,
}

/// One step's bars.
struct StepView {
    number: usize,
    name: String,
    suffix: String,
    state: State,
    line: ProgressBar,
    tail: Option<ProgressBar>,
    lines: VecDeque<String>,
}

/// The whole display.
struct View {
    multi: MultiProgress,
    header: ProgressBar,
    started: Instant,
    steps: HashMap<String, StepView>,
    width: usize,
}

fn style() -> ProgressStyle {
    ProgressStyle::with_template("{msg}").unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// Cuts `s` to `width` characters.
fn fit(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
        out.push('\u{2026}');
        out
    }
}

impl View {
    fn new() -> View {
        let term = console::Term::stderr();
        let width = usize::from(term.size_checked().map_or(100, |(_, w)| w)).max(40);
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::term_like_with_hz(
            Box::new(term),
            10,
        ));
        let header = multi.add(ProgressBar::new_spinner().with_style(style()));
        View {
            multi,
            header,
            started: Instant::now(),
            steps: HashMap::new(),
            width,
        }
    }

    fn step(&mut self, vertex: &str, number: usize, name: &str) -> &mut StepView {
        let multi = &self.multi;
        self.steps
            .entry(vertex.to_string())
            .or_insert_with(|| StepView {
                number,
                name: name.to_string(),
                suffix: String::new(),
                state: State::Running(Instant::now()),
                line: multi.add(ProgressBar::new_spinner().with_style(style())),
                tail: None,
                lines: VecDeque::new(),
            })
    }

    fn redraw(&mut self, finished: bool) {
        let total = self.steps.len();
        let done = self
            .steps
            .values()
            .filter(|s| !matches!(s.state, State::Running(_)))
            .count();
        let word = if finished { "FINISHED" } else { "" };
        self.header.set_message(format!(
            "[+] Building {:.1}s ({done}/{total}) {word}",
            self.started.elapsed().as_secs_f64()
        ));
        let width = self.width;
        for step in self.steps.values_mut() {
            let (time, mark) = match step.state {
                State::Running(t) => (format!("{:.1}s", t.elapsed().as_secs_f64()), ""),
                State::Done(d) => (format!("{:.1}s", d.as_secs_f64()), ""),
                State::Cached => (String::new(), "CACHED "),
                State::Failed => (String::new(), "ERROR "),
            };
            let head = format!("=> #{} {mark}{}{}", step.number, step.name, step.suffix);
            let room = width.saturating_sub(time.len() + 2);
            let head = fit(&head, room);
            let pad = room.saturating_sub(head.chars().count());
            step.line
                .set_message(format!("{head}{}  {time}", " ".repeat(pad)));
            if let Some(tail) = &step.tail {
                let shown: Vec<String> = step
                    .lines
                    .iter()
                    .map(|l| fit(&format!("   > {l}"), width))
                    .collect();
                tail.set_message(shown.join("\n"));
            }
        }
    }

    fn apply(&mut self, event: &Event, report: &Report) {
        let Event::Solver { event } = event else {
            return;
        };
        match event {
            ProgressEvent::VertexStarted { vertex, name, .. } => {
                let key = vertex.to_string();
                let number = report.steps.get(&key).map_or(0, |s| s.number);
                let suffix = suffix_of(report, &key);
                let step = self.step(&key, number, name);
                step.state = State::Running(Instant::now());
                step.suffix = suffix;
            }
            ProgressEvent::VertexCached { vertex, name, .. } => {
                let key = vertex.to_string();
                let number = report.steps.get(&key).map_or(0, |s| s.number);
                let step = self.step(&key, number, name);
                step.state = State::Cached;
                step.line.finish();
            }
            ProgressEvent::VertexExplained { vertex, .. } => {
                let key = vertex.to_string();
                let suffix = suffix_of(report, &key);
                if let Some(step) = self.steps.get_mut(&key) {
                    step.suffix = suffix;
                }
            }
            ProgressEvent::VertexCompleted {
                vertex, duration, ..
            } => {
                if let Some(step) = self.steps.get_mut(&vertex.to_string()) {
                    step.state = State::Done(*duration);
                    if let Some(tail) = step.tail.take() {
                        tail.finish_and_clear();
                    }
                }
            }
            ProgressEvent::VertexFailed { vertex, .. } => {
                if let Some(step) = self.steps.get_mut(&vertex.to_string()) {
                    step.state = State::Failed;
                    if let Some(tail) = step.tail.take() {
                        tail.finish_and_clear();
                    }
                }
            }
            ProgressEvent::Log { vertex, .. } => {
                let key = vertex.to_string();
                let Some(record) = report.steps.get(&key) else {
                    return;
                };
                let mut lines: VecDeque<String> = record
                    .tail
                    .iter()
                    .chain(std::iter::once(&record.partial))
                    .filter(|l| !l.is_empty())
                    .cloned()
                    .collect();
                while lines.len() > TAIL_SHOWN {
                    lines.pop_front();
                }
                let multi = self.multi.clone();
                if let Some(step) = self.steps.get_mut(&key) {
                    if step.tail.is_none() && matches!(step.state, State::Running(_)) {
                        let bar = multi.insert_after(
                            &step.line,
                            ProgressBar::new_spinner().with_style(style()),
                        );
                        step.tail = Some(bar);
                    }
                    step.lines = lines;
                }
            }
            #[allow(
                unreachable_patterns,
                reason = "solver events added later are not drawn"
            )]
            _ => {}
        }
    }

    fn finish(mut self) {
        self.redraw(true);
        for step in self.steps.values_mut() {
            if let Some(tail) = step.tail.take() {
                tail.finish_and_clear();
            }
            step.line.finish();
        }
        self.header.finish();
        let _ = self.multi.clear();
        // The final frame, printed once as plain lines so it stays on screen in order.
        let mut steps: Vec<&StepView> = self.steps.values().collect();
        steps.sort_by_key(|s| s.number);
        let mut out = format!(
            "[+] Building {:.1}s ({}/{}) FINISHED\n",
            self.started.elapsed().as_secs_f64(),
            steps.len(),
            steps.len()
        );
        for s in steps {
            let (mark, time) = match s.state {
                State::Done(d) => ("", format!("  {:.1}s", d.as_secs_f64())),
                State::Running(t) => ("", format!("  {:.1}s", t.elapsed().as_secs_f64())),
                State::Cached => ("CACHED ", String::new()),
                State::Failed => ("ERROR ", String::new()),
            };
            out.push_str(&fit(
                &format!("=> #{} {mark}{}{}{time}", s.number, s.name, s.suffix),
                self.width,
            ));
            out.push('\n');
        }
        eprint!("{out}");
    }
}

/// ` — rebuilt: …` for a rebuilt step the engine explained.
fn suffix_of(report: &Report, vertex: &str) -> String {
    match report
        .steps
        .get(vertex)
        .and_then(|s| s.explanation.as_ref())
    {
        Some(e) if e.status == StepStatus::Rebuilt => format!(" \u{2014} {}", e.summary()),
        _ => String::new(),
    }
}

/// Renders `events` live on the terminal until the stream ends.
pub(super) async fn render(
    mut events: UnboundedReceiver<Event>,
    mut log: Option<LogFile>,
) -> Report {
    let mut report = Report::default();
    let mut view = View::new();
    let started = Instant::now();
    let mut starts = HashMap::new();
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { break };
                if let Some(log) = &mut log {
                    log.write_event(&event, &mut report);
                }
                let line = describe(&event, &mut report, &mut starts, started);
                match &event {
                    // Messages that are not step lines scroll above the live list.
                    Event::Warning { .. } | Event::FrontendLog { .. } | Event::Exported { .. } => {
                        if let Some(line) = line {
                            let _ = view.multi.println(line);
                        }
                    }
                    Event::Solver { event: ProgressEvent::VertexExplained { .. } } => {
                        if let Some(note) = line {
                            let _ = view.multi.println(note);
                        }
                    }
                    _ => {}
                }
                view.apply(&event, &report);
            }
            _ = tick.tick() => view.redraw(false),
        }
    }
    view.finish();
    if let Some(log) = &mut log {
        log.finish();
    }
    report.log_file = log;
    report
}
