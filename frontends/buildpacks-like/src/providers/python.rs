//! Python apps: dependencies into a virtual environment at `/app/.venv` with pip (from
//! `requirements.lock`, `requirements.txt` or `pyproject.toml`'s dependencies), uv (`uv.lock`)
//! or poetry (`poetry.lock`); the Python version from `.python-version`, `runtime.txt` or
//! `requires-python`.

use serde::Deserialize;

use super::{context_app_layer, env, major_minor, present, strings, Draft};
use crate::plan::{CacheMount, Decision, GeneratedFile, Layer, Step};
use crate::tree::SourceTree;
use crate::Error;

pub(super) const LOOKED_FOR: &str =
    "requirements.txt, requirements.lock, pyproject.toml, uv.lock, poetry.lock";

/// The Python used when nothing names one.
const DEFAULT_VERSION: &str = "3.12";
/// Where the dependencies go, in the build and in the run image.
const VENV: &str = "/app/.venv";
/// Where the generated requirements list goes (never into the run image).
const DERIVED_REQUIREMENTS: &str = "/tmp/hoist-requirements.txt";

pub(super) fn detect(tree: &dyn SourceTree) -> Option<String> {
    present(
        tree,
        &[
            "requirements.txt",
            "requirements.lock",
            "pyproject.toml",
            "uv.lock",
            "poetry.lock",
        ],
    )
}

#[derive(Debug, Default, Deserialize)]
struct PyProject {
    #[serde(default)]
    project: Option<PyProjectTable>,
}

#[derive(Debug, Default, Deserialize)]
struct PyProjectTable {
    #[serde(default)]
    dependencies: Vec<String>,
    #[serde(rename = "requires-python", default)]
    requires_python: Option<String>,
    #[serde(default)]
    scripts: toml::Table,
}

pub(super) fn draft(tree: &dyn SourceTree) -> Result<Draft, Error> {
    let pyproject = match tree.read_text("pyproject.toml") {
        Some(text) => toml::from_str::<PyProject>(&text)
            .map_err(|e| Error::Manifest {
                file: "pyproject.toml".into(),
                message: e.to_string(),
            })?
            .project
            .unwrap_or_default(),
        None => PyProjectTable::default(),
    };
    let mut decisions = Vec::new();
    let version = python_version(tree, &pyproject, &mut decisions);
    let install = install_step(tree, &pyproject, &mut decisions);
    let default_start = default_start(tree, &pyproject);
    Ok(Draft {
        decisions,
        builder_image: Some(format!("python:{version}-bookworm")),
        run_image: format!("python:{version}-slim-bookworm"),
        steps: vec![install],
        layers: vec![Layer::from_step("install dependencies", VENV)],
        source_excludes: strings(&[".venv", "**/__pycache__", "**/*.pyc"]),
        app: context_app_layer(),
        env: env([
            ("PYTHONDONTWRITEBYTECODE", "1"),
            ("PYTHONUNBUFFERED", "1"),
            ("VIRTUAL_ENV", VENV),
        ]),
        path: vec![format!("{VENV}/bin")],
        ports: Vec::new(),
        default_start,
        start_looked_for:
            "Procfile, [project.scripts] in pyproject.toml, app.py, main.py, manage.py",
        start_example: "python app.py",
    })
}

/// The Python version, with a decision saying where it came from.
fn python_version(
    tree: &dyn SourceTree,
    pyproject: &PyProjectTable,
    decisions: &mut Vec<Decision>,
) -> String {
    let first_line = |file: &str| {
        tree.read_text(file).and_then(|t| {
            t.lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string)
        })
    };
    if let Some(v) = first_line(".python-version").and_then(|l| major_minor(&l)) {
        decisions.push(Decision::new("python-version", &v, ".python-version"));
        return v;
    }
    if let Some(v) = first_line("runtime.txt")
        .and_then(|l| l.strip_prefix("python-").map(str::to_string))
        .and_then(|l| major_minor(&l))
    {
        decisions.push(Decision::new("python-version", &v, "runtime.txt"));
        return v;
    }
    if let Some(spec) = &pyproject.requires_python {
        let (v, why) = from_requires_python(spec);
        decisions.push(Decision::new(
            "python-version",
            &v,
            format!("pyproject.toml requires-python {spec:?}{why}"),
        ));
        return v;
    }
    decisions.push(Decision::new(
        "python-version",
        DEFAULT_VERSION,
        "default (no .python-version, runtime.txt or requires-python)",
    ));
    DEFAULT_VERSION.to_string()
}

/// Picks a version for a `requires-python` specifier: the one it pins (`==3.11.*`, `~=3.11`),
/// else the default when a lower bound (`>=3.9`) allows it.
fn from_requires_python(spec: &str) -> (String, &'static str) {
    let first = spec.split(',').next().unwrap_or("").trim();
    for op in ["==", "~="] {
        if let Some(v) = first
            .strip_prefix(op)
            .and_then(|v| major_minor(v.trim_end_matches(".*")))
        {
            if v.contains('.') {
                return (v, "");
            }
        }
    }
    if let Some(min) = first.strip_prefix(">=").and_then(major_minor) {
        if version_key(&min) > version_key(DEFAULT_VERSION) {
            return (min, " (its lower bound)");
        }
    }
    (DEFAULT_VERSION.to_string(), " (the default satisfies it)")
}

fn version_key(v: &str) -> Vec<u32> {
    v.split('.').filter_map(|p| p.parse().ok()).collect()
}

/// The dependency step: only the manifests and lock files go in, so changing app code does
/// not reinstall.
fn install_step(
    tree: &dyn SourceTree,
    pyproject: &PyProjectTable,
    decisions: &mut Vec<Decision>,
) -> Step {
    let venv = format!("python3 -m venv {VENV}");
    let pip_cache = CacheMount::new("/root/.cache/pip", "pip");
    let mut step = Step {
        name: "install dependencies".into(),
        after: None,
        inputs: Vec::new(),
        files: Vec::new(),
        commands: Vec::new(),
        env: env([("PIP_DISABLE_PIP_VERSION_CHECK", "1")]),
        cache_mounts: vec![pip_cache],
        network: "host".into(),
    };
    if tree.has_file("uv.lock") {
        decisions.push(Decision::new("package-manager", "uv", "uv.lock"));
        step.inputs = vec!["pyproject.toml".into(), "uv.lock".into()];
        step.commands = vec![
            "python3 -m venv /opt/uv".into(),
            "/opt/uv/bin/pip install uv".into(),
            "/opt/uv/bin/uv sync --frozen --no-dev --no-install-project".into(),
        ];
        step.env
            .insert("UV_PROJECT_ENVIRONMENT".into(), VENV.into());
        step.env.insert("UV_LINK_MODE".into(), "copy".into());
        step.cache_mounts
            .push(CacheMount::new("/root/.cache/uv", "uv"));
    } else if tree.has_file("poetry.lock") {
        decisions.push(Decision::new("package-manager", "poetry", "poetry.lock"));
        step.inputs = vec!["pyproject.toml".into(), "poetry.lock".into()];
        step.commands = vec![
            "python3 -m venv /opt/poetry".into(),
            "/opt/poetry/bin/pip install poetry".into(),
            venv,
            "/opt/poetry/bin/poetry install --no-root --only main --no-interaction".into(),
        ];
        step.env.insert("VIRTUAL_ENV".into(), VENV.into());
        step.cache_mounts
            .push(CacheMount::new("/root/.cache/pypoetry", "poetry"));
    } else if let Some(file) = ["requirements.lock", "requirements.txt"]
        .into_iter()
        .find(|f| tree.has_file(f))
    {
        decisions.push(Decision::new("package-manager", "pip", file));
        step.inputs = vec![file.into()];
        step.commands = vec![venv, format!("{VENV}/bin/pip install -r {file}")];
    } else {
        let n = pyproject.dependencies.len();
        decisions.push(Decision::new(
            "package-manager",
            "pip",
            format!("pyproject.toml [project] dependencies ({n}), no lock file"),
        ));
        step.inputs = vec!["pyproject.toml".into()];
        let mut list = pyproject.dependencies.join("\n");
        list.push('\n');
        step.files = vec![GeneratedFile {
            path: DERIVED_REQUIREMENTS.into(),
            contents: list,
        }];
        step.commands = vec![
            venv,
            format!("{VENV}/bin/pip install -r {DERIVED_REQUIREMENTS}"),
        ];
    }
    step
}

/// The start command when there is no Procfile: a `[project.scripts]` entry, else the first
/// of `app.py`, `main.py`, `manage.py`.
fn default_start(tree: &dyn SourceTree, pyproject: &PyProjectTable) -> Option<(String, String)> {
    // The project itself is not installed (only its dependencies are), so the entry point is
    // called from the app directory rather than through an installed script.
    let script = pyproject.scripts.iter().find_map(|(name, target)| {
        let (module, function) = target.as_str()?.split_once(':')?;
        let valid = |s: &str| {
            !s.is_empty()
                && s.split('.')
                    .all(|p| !p.is_empty() && p.chars().all(|c| c.is_alphanumeric() || c == '_'))
        };
        (valid(module.trim()) && valid(function.trim()))
            .then(|| (name, module.trim(), function.trim()))
    });
    if let Some((name, module, function)) = script {
        let (head, _) = function.split_once('.').unwrap_or((function, ""));
        let command =
            format!("python -c 'import sys; from {module} import {head}; sys.exit({function}())'");
        let reason = format!("pyproject.toml [project.scripts] {name} = \"{module}:{function}\"");
        return Some((command, reason));
    }
    for file in ["app.py", "main.py"] {
        if tree.has_file(file) {
            return Some((format!("python {file}"), file.to_string()));
        }
    }
    tree.has_file("manage.py").then(|| {
        (
            "python manage.py runserver 0.0.0.0:${PORT:-8000}".to_string(),
            "manage.py".to_string(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requires_python_picks_pins_and_bounds() {
        assert_eq!(from_requires_python("==3.11.*").0, "3.11");
        assert_eq!(from_requires_python("~=3.10").0, "3.10");
        assert_eq!(from_requires_python(">=3.9").0, DEFAULT_VERSION);
        assert_eq!(from_requires_python(">=3.13").0, "3.13");
        assert_eq!(from_requires_python("<4").0, DEFAULT_VERSION);
    }
}
