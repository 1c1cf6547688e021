//! The app's own settings: `project.toml` (the Cloud Native Buildpacks project descriptor,
//! schema 0.2 with `[_]` and `[io.buildpacks]`, or the older `[build]` table) and `Procfile`.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::Error;

/// What `project.toml` sets for this frontend.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProjectDescriptor {
    /// `[_] name`, if given.
    pub name: Option<String>,
    /// Only these paths of the app go into the image (`include`).
    pub include: Vec<String>,
    /// These paths of the app stay out of the image (`exclude`).
    pub exclude: Vec<String>,
    /// Environment of the build steps (`[[io.buildpacks.build.env]]`), by name.
    pub build_env: BTreeMap<String, String>,
    /// Provider ids in the order to try them (`[[io.buildpacks.group]] id`), if given.
    pub providers: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
struct RawDescriptor {
    #[serde(rename = "_", default)]
    project: Option<RawProject>,
    #[serde(default)]
    io: Option<RawIo>,
    /// Schema 0.1 kept build settings here.
    #[serde(default)]
    build: Option<RawBuild>,
}

#[derive(Debug, Default, Deserialize)]
struct RawProject {
    #[serde(default)]
    name: Option<String>,
    #[serde(rename = "schema-version", default)]
    schema_version: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct RawIo {
    #[serde(default)]
    buildpacks: Option<RawBuild>,
}

#[derive(Debug, Default, Deserialize)]
struct RawBuild {
    #[serde(default)]
    include: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    build: Option<RawBuildEnv>,
    /// Schema 0.1: `[[build.env]]` directly under `[build]`.
    #[serde(default)]
    env: Vec<RawEnv>,
    #[serde(default)]
    group: Vec<RawGroup>,
    /// Schema 0.1: `[[build.buildpacks]]`.
    #[serde(default)]
    buildpacks: Vec<RawGroup>,
}

#[derive(Debug, Default, Deserialize)]
struct RawBuildEnv {
    #[serde(default)]
    env: Vec<RawEnv>,
}

#[derive(Debug, Deserialize)]
struct RawEnv {
    name: String,
    #[serde(default)]
    value: String,
}

#[derive(Debug, Deserialize)]
struct RawGroup {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    uri: Option<String>,
}

/// The schema versions of `[_] schema-version` this frontend reads.
const SCHEMA_VERSIONS: &[&str] = &["0.1", "0.2"];

/// Parses `project.toml`.
pub fn parse_project_toml(text: &str) -> Result<ProjectDescriptor, Error> {
    let raw: RawDescriptor = toml::from_str(text).map_err(|e| Error::ProjectToml {
        message: e.to_string(),
    })?;
    if let Some(version) = raw
        .project
        .as_ref()
        .and_then(|p| p.schema_version.as_deref())
    {
        if !SCHEMA_VERSIONS.contains(&version) {
            return Err(Error::ProjectToml {
                message: format!(
                    "[_] schema-version {version:?} is not supported (supported: {})",
                    SCHEMA_VERSIONS.join(", ")
                ),
            });
        }
    }
    let build = raw
        .io
        .and_then(|io| io.buildpacks)
        .or(raw.build)
        .unwrap_or_default();
    if !build.include.is_empty() && !build.exclude.is_empty() {
        return Err(Error::ProjectToml {
            message: "include and exclude cannot both be set (the project descriptor allows one)"
                .into(),
        });
    }
    let env = build
        .build
        .map(|b| b.env)
        .unwrap_or_default()
        .into_iter()
        .chain(build.env);
    let mut build_env = BTreeMap::new();
    for e in env {
        if e.name.is_empty() || e.name.contains('=') {
            return Err(Error::ProjectToml {
                message: format!("build env name {:?} is not a valid variable name", e.name),
            });
        }
        build_env.insert(e.name, e.value);
    }
    let providers = build
        .group
        .into_iter()
        .chain(build.buildpacks)
        .filter_map(|g| g.id.or(g.uri))
        .collect();
    Ok(ProjectDescriptor {
        name: raw.project.and_then(|p| p.name),
        include: build.include,
        exclude: build.exclude,
        build_env,
        providers,
    })
}

/// One `Procfile` line: a process type and its command.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Process {
    /// The process type (`web`, `worker`, …).
    pub name: String,
    /// The shell command it runs.
    pub command: String,
}

/// Parses a `Procfile`: `NAME: COMMAND` lines; blank lines and `#` comments are skipped.
pub fn parse_procfile(text: &str) -> Result<Vec<Process>, Error> {
    let mut processes: Vec<Process> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: &str| Error::Procfile {
            line: index + 1,
            message: why.to_string(),
        };
        let (name, command) = line
            .split_once(':')
            .ok_or_else(|| bad("want NAME: COMMAND"))?;
        let (name, command) = (name.trim(), command.trim());
        let valid_name = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid_name {
            return Err(bad(&format!(
                "process type {name:?} must be letters, digits, '_' or '-'"
            )));
        }
        if command.is_empty() {
            return Err(bad(&format!("process type {name:?} has no command")));
        }
        if processes.iter().any(|p| p.name == name) {
            return Err(bad(&format!("process type {name:?} is defined twice")));
        }
        processes.push(Process {
            name: name.to_string(),
            command: command.to_string(),
        });
    }
    Ok(processes)
}

/// The process that becomes the entrypoint: `web`, then `worker`, then the first one.
pub fn default_process(processes: &[Process]) -> Option<&Process> {
    ["web", "worker"]
        .iter()
        .find_map(|want| processes.iter().find(|p| p.name == *want))
        .or_else(|| processes.first())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_0_2_descriptor() {
        let text = r#"
[_]
schema-version = "0.2"
name = "shop"

[io.buildpacks]
exclude = ["docs", "*.md"]

[[io.buildpacks.build.env]]
name = "PIP_INDEX_URL"
value = "https://pypi.example/simple"

[[io.buildpacks.group]]
id = "hoist/node"

[[io.buildpacks.group]]
id = "python"
"#;
        let d = parse_project_toml(text).unwrap();
        assert_eq!(d.name.as_deref(), Some("shop"));
        assert_eq!(d.exclude, ["docs", "*.md"]);
        assert!(d.include.is_empty());
        assert_eq!(
            d.build_env.get("PIP_INDEX_URL").map(String::as_str),
            Some("https://pypi.example/simple")
        );
        assert_eq!(d.providers, ["hoist/node", "python"]);
    }

    #[test]
    fn schema_0_1_build_table() {
        let text = "[build]\ninclude = [\"src\"]\n[[build.env]]\nname = \"A\"\nvalue = \"1\"\n";
        let d = parse_project_toml(text).unwrap();
        assert_eq!(d.include, ["src"]);
        assert_eq!(d.build_env.get("A").map(String::as_str), Some("1"));
    }

    #[test]
    fn include_and_exclude_together_is_an_error() {
        let text = "[io.buildpacks]\ninclude = [\"a\"]\nexclude = [\"b\"]\n";
        let err = parse_project_toml(text).unwrap_err().to_string();
        assert!(
            err.contains("include and exclude cannot both be set"),
            "{err}"
        );
    }

    #[test]
    fn unknown_schema_and_bad_toml_are_errors() {
        let err = parse_project_toml("[_]\nschema-version = \"9\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("schema-version \"9\""), "{err}");
        let err = parse_project_toml("[_\n").unwrap_err().to_string();
        assert!(err.starts_with("project.toml: "), "{err}");
    }

    #[test]
    fn procfile_lines_and_default_process() {
        let procs = parse_procfile(
            "# comment\nworker: python worker.py\n\nweb: gunicorn app:app --bind 0.0.0.0:$PORT\n",
        )
        .unwrap();
        assert_eq!(procs.len(), 2);
        assert_eq!(default_process(&procs).unwrap().name, "web");
        let procs = parse_procfile("release: ./migrate\nworker: ./w\n").unwrap();
        assert_eq!(default_process(&procs).unwrap().name, "worker");
        let procs = parse_procfile("release: ./migrate\nclock: ./c\n").unwrap();
        assert_eq!(default_process(&procs).unwrap().name, "release");
        assert_eq!(default_process(&[]), None);
    }

    #[test]
    fn procfile_errors_name_the_line() {
        let err = parse_procfile("web: ok\nnot a process\n")
            .unwrap_err()
            .to_string();
        assert_eq!(err, "Procfile:2: want NAME: COMMAND");
        let err = parse_procfile("web:\n").unwrap_err().to_string();
        assert_eq!(err, "Procfile:1: process type \"web\" has no command");
        let err = parse_procfile("web: a\nweb: b\n").unwrap_err().to_string();
        assert_eq!(err, "Procfile:2: process type \"web\" is defined twice");
    }
}
