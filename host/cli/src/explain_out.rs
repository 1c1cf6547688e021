//! What `hoist build` prints and records after the progress display: the `--explain` views
//! (text on stderr, JSON on stdout), the `hoist.explain` and `hoist.failure` entries of the
//! metadata file, and the failure report, always last.

use std::io::Write as _;

use anyhow::Context as _;
use hoist_solver::{Explanation, StepStatus};
use serde::Serialize;

use crate::flags::{BuildArgs, ExplainFormat, ProgressMode};
use crate::progress::{FailureReport, Report};

/// One step of the JSON view.
#[derive(Serialize)]
struct StepJson<'a> {
    /// `#N` in the progress output.
    number: usize,
    name: &'a str,
    vertex: &'a str,
    /// One line, as shown next to the step.
    summary: String,
    #[serde(flatten)]
    explanation: &'a Explanation,
}

/// The JSON view: `{"steps": [...]}`.
pub fn explain_json(report: &Report) -> serde_json::Value {
    let steps: Vec<StepJson<'_>> = report
        .explanations()
        .into_iter()
        .map(|(number, name, vertex, explanation)| StepJson {
            number,
            name,
            vertex,
            summary: explanation.summary(),
            explanation,
        })
        .collect();
    serde_json::json!({ "steps": steps })
}

/// The text view.
pub fn explain_text(report: &Report) -> String {
    let steps = report.explanations();
    let mut out =
        String::from("Why each step ran (compared with the last build of this target):\n");
    if steps.is_empty() {
        out.push_str("  (no steps were explained)\n");
    }
    let rebuilt = steps
        .iter()
        .filter(|(_, _, _, e)| e.status == StepStatus::Rebuilt)
        .count();
    for (number, name, _, e) in &steps {
        match e.status {
            StepStatus::Cached => out.push_str(&format!("#{number} {name}: cached\n")),
            StepStatus::Rebuilt => {
                out.push_str(&format!("#{number} {name}: rebuilt\n"));
                for r in &e.reasons {
                    for line in r.detail() {
                        out.push_str(&format!("    {line}\n"));
                    }
                }
            }
        }
        for n in &e.notes {
            for line in n.detail() {
                out.push_str(&format!("    note: {line}\n"));
            }
        }
    }
    out.push_str(&format!(
        "{} step(s), {rebuilt} rebuilt, {} cached\n",
        steps.len(),
        steps.len() - rebuilt
    ));
    out
}

/// Prints the explanation, completes the metadata file and the log file, and prints the
/// failure report last (`failure` is `None` for a successful build).
pub fn finish(
    args: &BuildArgs,
    report: &mut Report,
    failure: Option<&FailureReport>,
) -> anyhow::Result<()> {
    match args.explain {
        Some(ExplainFormat::Text) => eprint!("{}", explain_text(report)),
        Some(ExplainFormat::Json) => {
            let mut stdout = std::io::stdout().lock();
            writeln!(
                stdout,
                "{}",
                serde_json::to_string_pretty(&explain_json(report))?
            )?;
            stdout.flush()?;
        }
        None => {}
    }
    if let Some(path) = &args.metadata_file {
        // A successful build wrote its entries already; add ours beside them.
        let mut meta = match std::fs::read(path) {
            Ok(bytes) if failure.is_none() => {
                serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&bytes)
                    .unwrap_or_default()
            }
            _ => serde_json::Map::new(),
        };
        meta.insert("hoist.explain".into(), explain_json(report));
        if let Some(f) = failure {
            meta.insert("hoist.failure".into(), serde_json::to_value(f.data())?);
        }
        let text = serde_json::to_string_pretty(&meta)?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(f) = failure {
        if let Some(log) = &mut report.log_file {
            log.append(&f.to_string());
        }
        if args.progress == ProgressMode::RawJson {
            eprintln!("{}", f.json_line());
        }
        eprint!("{f}");
    }
    Ok(())
}
