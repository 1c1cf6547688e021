//! Results: every sample, the machine they were taken on, and the summary table (medians,
//! ratios hoist/buildah, peak RSS) as Markdown and JSON.

use std::fmt::Write as _;
use std::process::Command;

use anyhow::{Context as _, Result};
use serde::Serialize;

use crate::measure::Measurement;
use crate::tools::Tool;

/// Scenario ids in table order, with what each measures.
pub const SCENARIOS: [(&str, &str); 9] = [
    ("1-cold", "1 cold build, simple Dockerfile (base present)"),
    ("2-noop", "2 no-op rebuild"),
    ("3-edit", "3 rebuild after editing a file of a late COPY"),
    (
        "4-stages",
        "4 four stages `RUN sleep 1` + final COPY (floor 1.0 s)",
    ),
    ("5-cold", "5 COPY of a 20,000-file 1 GiB context, cold"),
    ("5-touch", "5 same, after touching one file"),
    ("6-cold", "6 20-stage 500-line Dockerfile, cold"),
    ("6-noop", "6 same, no-op"),
    (
        "7-solver",
        "7 fully cached 10,000-vertex LLB graph (hoist only)",
    ),
];

/// One measured build.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Scenario id ("1-cold", ...).
    pub scenario: String,
    /// Tool label.
    pub tool: String,
    /// Repetition, from 1.
    pub rep: usize,
    /// What it cost.
    #[serde(flatten)]
    pub m: Measurement,
}

/// Scenario 7's figures, from `bench_solver`'s 10,000-vertex row.
#[derive(Debug, Clone, Serialize)]
pub struct SolverFigures {
    /// Cold solve, ms.
    pub cold_ms: f64,
    /// Best cached re-solve, ms.
    pub cached_best_ms: f64,
    /// Median cached re-solve, ms.
    pub cached_median_ms: f64,
    /// Peak RSS of the benchmark process, as printed ("28096 kB").
    pub peak_rss: String,
}

impl SolverFigures {
    /// Parses "10000,cold_ms,cached_best_ms,cached_median_ms,target_ms,peak_rss".
    pub fn parse(line: &str) -> Result<SolverFigures> {
        let f: Vec<&str> = line.split(',').collect();
        let num = |i: usize| -> Result<f64> {
            f.get(i)
                .with_context(|| format!("field {i} of {line:?}"))?
                .parse()
                .with_context(|| format!("field {i} of {line:?}"))
        };
        Ok(SolverFigures {
            cold_ms: num(1)?,
            cached_best_ms: num(2)?,
            cached_median_ms: num(3)?,
            peak_rss: f.get(5).unwrap_or(&"").to_string(),
        })
    }
}

/// One row of the summary: a scenario, medians of each tool.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Scenario id.
    pub scenario: String,
    /// Tool label.
    pub tool: String,
    /// Samples.
    pub n: usize,
    /// Median wall seconds.
    pub median_s: f64,
    /// Fastest wall seconds.
    pub min_s: f64,
    /// Median peak RSS, KiB.
    pub median_rss_kib: u64,
    /// Median hoist / median of this tool (for the buildah rows).
    pub ratio_hoist: Option<f64>,
}

/// Everything a run produced.
#[derive(Debug, Serialize)]
pub struct Report {
    /// When the run started (UTC, RFC 3339).
    pub date: String,
    /// Logical CPUs.
    pub cores: usize,
    /// CPU model.
    pub cpu: String,
    /// MemTotal.
    pub memory: String,
    /// Kernel release.
    pub kernel: String,
    /// /proc/loadavg at the start and at the end.
    pub loadavg: Vec<String>,
    /// Versions of the tools.
    pub versions: Vec<(String, String)>,
    /// Repetitions.
    pub reps: usize,
    /// Repetitions of the slow scenarios (5 and 6).
    pub reps_slow: usize,
    /// Every measured build.
    pub samples: Vec<Sample>,
    /// Medians per scenario and tool.
    pub summary: Vec<Row>,
    /// Scenario 7.
    pub solver: Option<SolverFigures>,
}

impl Report {
    /// An empty report describing this machine and the tools.
    pub fn new(reps: usize, reps_slow: usize, tools: &[&Tool]) -> Result<Report> {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let field = |text: &str, key: &str| {
            text.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
                .unwrap_or_default()
        };
        let mut versions: Vec<(String, String)> = tools
            .iter()
            .map(|t| (t.label.clone(), t.version()))
            .collect();
        for (name, args) in [
            ("runc", &["--version"][..]),
            ("docker-registry", &["--version"][..]),
        ] {
            let out = Command::new(name).args(args).output();
            let text = out.map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string()
            });
            versions.push((name.into(), text.unwrap_or_default()));
        }
        Ok(Report {
            date: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            cores: std::thread::available_parallelism()
                .map(usize::from)
                .unwrap_or(0),
            cpu: field(&cpuinfo, "model name"),
            memory: field(&meminfo, "MemTotal"),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_string(),
            loadavg: vec![loadavg()],
            versions,
            reps,
            reps_slow,
            samples: Vec::new(),
            summary: Vec::new(),
            solver: None,
        })
    }

    /// One line on the machine, for the console.
    pub fn machine_line(&self) -> String {
        format!(
            "{} cores ({}), {} memory, kernel {}, load {}",
            self.cores, self.cpu, self.memory, self.kernel, self.loadavg[0]
        )
    }

    /// Records a sample.
    pub fn add(&mut self, sample: Sample) {
        self.samples.push(sample);
    }

    /// Computes the summary and notes the final load.
    pub fn finish(&mut self) {
        self.loadavg.push(loadavg());
        let mut labels: Vec<String> = Vec::new();
        for s in &self.samples {
            if !labels.contains(&s.tool) {
                labels.push(s.tool.clone());
            }
        }
        labels.sort_by_key(|l| l != "hoist");
        for (id, _) in SCENARIOS {
            let mut hoist_median = None;
            for label in &labels {
                let picked: Vec<&Measurement> = self
                    .samples
                    .iter()
                    .filter(|s| s.scenario == id && &s.tool == label)
                    .map(|s| &s.m)
                    .collect();
                if picked.is_empty() {
                    continue;
                }
                let median_s = median(picked.iter().map(|m| m.wall_s).collect());
                let rss = median(picked.iter().map(|m| m.max_rss_kib as f64).collect()) as u64;
                let min_s = picked
                    .iter()
                    .map(|m| m.wall_s)
                    .fold(f64::INFINITY, f64::min);
                if label == "hoist" {
                    hoist_median = Some(median_s);
                }
                let ratio_hoist = if label == "hoist" {
                    None
                } else {
                    hoist_median.map(|h| h / median_s)
                };
                self.summary.push(Row {
                    scenario: id.into(),
                    tool: label.clone(),
                    n: picked.len(),
                    median_s,
                    min_s,
                    median_rss_kib: rss,
                    ratio_hoist,
                });
            }
        }
    }

    /// The summary as a Markdown table (one line per scenario, buildah --jobs=4 in its own line).
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "| scenario | hoist median s | buildah median s | hoist/buildah | hoist peak RSS MiB | buildah peak RSS MiB |"
        );
        let _ = writeln!(out, "| --- | ---: | ---: | ---: | ---: | ---: |");
        let find = |id: &str, tool: &str| {
            self.summary
                .iter()
                .find(|r| r.scenario == id && r.tool == tool)
        };
        let mib = |kib: u64| format!("{:.0}", kib as f64 / 1024.0);
        for (id, what) in SCENARIOS {
            let (Some(h), Some(b)) = (find(id, "hoist"), find(id, "buildah")) else {
                continue;
            };
            let ratio = b.ratio_hoist.map(|r| format!("{r:.2}")).unwrap_or_default();
            let _ = writeln!(
                out,
                "| {what} | {:.2} | {:.2} | **{ratio}** | {} | {} |",
                h.median_s,
                b.median_s,
                mib(h.median_rss_kib),
                mib(b.median_rss_kib)
            );
            if let Some(j) = find(id, "buildah --jobs=4") {
                let ratio = j.ratio_hoist.map(|r| format!("{r:.2}")).unwrap_or_default();
                let _ = writeln!(
                    out,
                    "| {what}, vs `buildah --jobs=4` | {:.2} | {:.2} | **{ratio}** | {} | {} |",
                    h.median_s,
                    j.median_s,
                    mib(h.median_rss_kib),
                    mib(j.median_rss_kib)
                );
            }
        }
        if let Some(s) = &self.solver {
            let _ = writeln!(
                out,
                "| 7 fully cached 10,000-vertex LLB graph (solver only) | {:.3} | n/a | | {} (process) | |",
                s.cached_median_ms / 1000.0,
                s.peak_rss
            );
        }
        let _ = writeln!(
            out,
            "\n{} repetitions per tool ({} for scenarios 5 and 6); {} cores ({}), {}, kernel {}; load average at start {}, at end {}.",
            self.reps,
            self.reps_slow,
            self.cores,
            self.cpu,
            self.memory,
            self.kernel,
            self.loadavg.first().map(String::as_str).unwrap_or(""),
            self.loadavg.get(1).map(String::as_str).unwrap_or("")
        );
        for (name, version) in &self.versions {
            let _ = writeln!(out, "- {name}: {version}");
        }
        out
    }
}

/// The first three fields of /proc/loadavg.
fn loadavg() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The median (mean of the middle two for an even count).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}
