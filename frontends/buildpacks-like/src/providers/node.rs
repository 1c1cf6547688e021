//! Node.js apps: `npm ci`, `pnpm install` or `yarn install` from `package.json` and its lock
//! file; `scripts.build` run on the whole app; the Node version from `engines.node`, `.nvmrc`
//! or `.node-version`.

use serde::Deserialize;
use std::collections::BTreeMap;

use super::{context_app_layer, env, major_minor, present, strings, Draft};
use crate::plan::{CacheMount, Decision, Layer, Step};
use crate::tree::SourceTree;
use crate::Error;

pub(super) const LOOKED_FOR: &str = "package.json";

/// The Node.js major version used when nothing names one.
const DEFAULT_VERSION: &str = "22";

pub(super) fn detect(tree: &dyn SourceTree) -> Option<String> {
    present(tree, &["package.json"])
}

#[derive(Debug, Default, Deserialize)]
struct PackageJson {
    #[serde(default)]
    main: Option<String>,
    #[serde(default)]
    scripts: BTreeMap<String, String>,
    #[serde(default)]
    engines: BTreeMap<String, String>,
    #[serde(rename = "packageManager", default)]
    package_manager: Option<String>,
}

/// A package manager and how it installs, builds and prunes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Manager {
    Npm { locked: bool },
    Pnpm,
    Yarn,
}

impl Manager {
    fn name(self) -> &'static str {
        match self {
            Manager::Npm { .. } => "npm",
            Manager::Pnpm => "pnpm",
            Manager::Yarn => "yarn",
        }
    }

    fn lock_files(self) -> &'static [&'static str] {
        match self {
            Manager::Npm { .. } => &["package-lock.json", "npm-shrinkwrap.json"],
            Manager::Pnpm => &["pnpm-lock.yaml"],
            Manager::Yarn => &["yarn.lock"],
        }
    }

    /// Install commands; `production` leaves dev dependencies out.
    fn install(self, production: bool) -> Vec<String> {
        match self {
            Manager::Npm { locked } => {
                let verb = if locked { "npm ci" } else { "npm install" };
                vec![if production {
                    format!("{verb} --omit=dev")
                } else {
                    verb.to_string()
                }]
            }
            Manager::Pnpm => vec![
                "corepack enable pnpm".into(),
                format!(
                    "pnpm install --frozen-lockfile{}",
                    if production { " --prod" } else { "" }
                ),
            ],
            Manager::Yarn => vec![
                "corepack enable yarn".into(),
                format!(
                    "yarn install --frozen-lockfile{}",
                    if production { " --production" } else { "" }
                ),
            ],
        }
    }

    fn build_then_prune(self) -> Vec<String> {
        match self {
            Manager::Npm { .. } => vec!["npm run build".into(), "npm prune --omit=dev".into()],
            Manager::Pnpm => vec!["pnpm run build".into(), "pnpm prune --prod".into()],
            Manager::Yarn => vec![
                "yarn run build".into(),
                "yarn install --frozen-lockfile --production --ignore-scripts --prefer-offline"
                    .into(),
            ],
        }
    }

    fn cache(self) -> CacheMount {
        match self {
            Manager::Npm { .. } => CacheMount::new("/root/.npm", "npm"),
            Manager::Pnpm => CacheMount::new("/root/.local/share/pnpm/store", "pnpm"),
            Manager::Yarn => CacheMount::new("/usr/local/share/.cache/yarn", "yarn"),
        }
    }
}

pub(super) fn draft(tree: &dyn SourceTree) -> Result<Draft, Error> {
    let text = tree.read_text("package.json").unwrap_or_default();
    let package: PackageJson = serde_json::from_str(&text).map_err(|e| Error::Manifest {
        file: "package.json".into(),
        message: e.to_string(),
    })?;
    let mut decisions = Vec::new();
    let version = node_version(tree, &package, &mut decisions);
    let manager = package_manager(tree, &package, &mut decisions);

    let mut inputs = vec!["package.json".to_string()];
    inputs.extend(
        manager
            .lock_files()
            .iter()
            .filter(|f| tree.has_file(f))
            .map(|f| f.to_string()),
    );
    let has_build = package.scripts.contains_key("build");
    let install = Step {
        name: "install dependencies".into(),
        after: None,
        inputs,
        files: Vec::new(),
        commands: manager.install(!has_build),
        env: BTreeMap::new(),
        cache_mounts: vec![manager.cache()],
        network: "host".into(),
    };
    let mut steps = vec![install];
    let (layers, app) = if has_build {
        decisions.push(Decision::new(
            "build",
            format!("{} run build", manager.name()),
            "package.json scripts.build",
        ));
        steps.push(Step {
            name: "build".into(),
            after: Some("install dependencies".into()),
            inputs: vec![".".into()],
            files: Vec::new(),
            commands: manager.build_then_prune(),
            env: BTreeMap::new(),
            cache_mounts: vec![manager.cache()],
            network: "host".into(),
        });
        // The built app, with its production dependencies, is one layer.
        (Vec::new(), Layer::from_step("build", "/app"))
    } else {
        (
            vec![Layer::from_step(
                "install dependencies",
                "/app/node_modules",
            )],
            context_app_layer(),
        )
    };
    Ok(Draft {
        decisions,
        builder_image: Some(format!("node:{version}-bookworm")),
        run_image: format!("node:{version}-bookworm-slim"),
        steps,
        layers,
        source_excludes: strings(&["node_modules"]),
        app,
        env: env([("NODE_ENV", "production")]),
        path: vec!["/app/node_modules/.bin".into()],
        ports: Vec::new(),
        default_start: default_start(tree, &package),
        start_looked_for:
            "Procfile, package.json scripts.start and main, server.js, index.js, app.js",
        start_example: "node server.js",
    })
}

fn node_version(
    tree: &dyn SourceTree,
    package: &PackageJson,
    decisions: &mut Vec<Decision>,
) -> String {
    let major = |spec: &str| {
        let digits: String = spec
            .trim_start_matches(|c: char| !c.is_ascii_digit())
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        (!digits.is_empty()).then_some(digits)
    };
    if let Some(spec) = package.engines.get("node") {
        if let Some(v) = major(spec) {
            decisions.push(Decision::new(
                "node-version",
                &v,
                format!("package.json engines.node {spec:?}"),
            ));
            return v;
        }
    }
    for file in [".nvmrc", ".node-version"] {
        if let Some(v) = tree
            .read_text(file)
            .and_then(|t| t.lines().next().and_then(major_minor))
            .and_then(|v| major(&v))
        {
            decisions.push(Decision::new("node-version", &v, file));
            return v;
        }
    }
    decisions.push(Decision::new(
        "node-version",
        DEFAULT_VERSION,
        "default (no engines.node, .nvmrc or .node-version)",
    ));
    DEFAULT_VERSION.to_string()
}

fn package_manager(
    tree: &dyn SourceTree,
    package: &PackageJson,
    decisions: &mut Vec<Decision>,
) -> Manager {
    let candidates = [
        ("pnpm-lock.yaml", Manager::Pnpm),
        ("yarn.lock", Manager::Yarn),
        ("package-lock.json", Manager::Npm { locked: true }),
        ("npm-shrinkwrap.json", Manager::Npm { locked: true }),
    ];
    if let Some((file, manager)) = candidates.iter().find(|(f, _)| tree.has_file(f)) {
        decisions.push(Decision::new("package-manager", manager.name(), *file));
        return *manager;
    }
    if let Some(field) = &package.package_manager {
        let name = field.split('@').next().unwrap_or("");
        let manager = match name {
            "pnpm" => Some(Manager::Pnpm),
            "yarn" => Some(Manager::Yarn),
            _ => None,
        };
        if let Some(manager) = manager {
            decisions.push(Decision::new(
                "package-manager",
                manager.name(),
                format!("package.json packageManager {field:?}"),
            ));
            return manager;
        }
    }
    decisions.push(Decision::new(
        "package-manager",
        "npm",
        "no lock file (npm install)",
    ));
    Manager::Npm { locked: false }
}

fn default_start(tree: &dyn SourceTree, package: &PackageJson) -> Option<(String, String)> {
    if let Some(start) = package.scripts.get("start") {
        return Some((start.clone(), "package.json scripts.start".into()));
    }
    if let Some(main) = &package.main {
        return Some((format!("node {main}"), "package.json main".into()));
    }
    ["server.js", "index.js", "app.js"]
        .into_iter()
        .find(|f| tree.has_file(f))
        .map(|f| (format!("node {f}"), f.to_string()))
}
