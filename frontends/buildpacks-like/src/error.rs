//! The frontend's one error type: what was wrong, in which file, and what to do about it.

/// Why a plan could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// `project.toml` is not a valid project descriptor.
    #[error("project.toml: {message}")]
    ProjectToml {
        /// What is wrong.
        message: String,
    },
    /// A `Procfile` line is malformed.
    #[error("Procfile:{line}: {message}")]
    Procfile {
        /// The 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A manifest (`package.json`, `pyproject.toml`, `go.mod`) cannot be read.
    #[error("{file}: {message}")]
    Manifest {
        /// The manifest's path in the context.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// No provider recognized the tree.
    #[error("{}", nothing_detected(.found, .looked_for))]
    NothingDetected {
        /// Top-level entries of the context (empty for an empty context).
        found: Vec<String>,
        /// Each provider tried, in order, with the files it looks for.
        looked_for: Vec<(String, String)>,
    },
    /// The app was recognized but nothing says how to start it.
    #[error(
        "no start command for this {provider} app (looked for: {looked_for}); add a Procfile \
         with a line such as `web: {example}`, or pass --build-arg BP_START_COMMAND='{example}'"
    )]
    MissingStart {
        /// The provider that recognized the app.
        provider: String,
        /// Where a start command was looked for.
        looked_for: String,
        /// An example command for this kind of app.
        example: String,
    },
    /// A provider id (from `project.toml` or `BP_PROVIDERS`) is not known.
    #[error("unknown provider {id:?} in {origin} (known: {known})")]
    UnknownProvider {
        /// The id as written.
        id: String,
        /// Where it was written.
        origin: String,
        /// The ids this frontend knows.
        known: String,
    },
    /// `BP_PROCESS` names a process the Procfile does not define.
    #[error("BP_PROCESS={name:?} is not a process type of the Procfile (it defines: {defined})")]
    UnknownProcess {
        /// The name asked for.
        name: String,
        /// The process types the Procfile defines.
        defined: String,
    },
}

fn nothing_detected(found: &[String], looked_for: &[(String, String)]) -> String {
    let what = if found.is_empty() {
        "the build context is empty".to_string()
    } else {
        format!(
            "no provider recognized the build context (it holds: {})",
            found.join(", ")
        )
    };
    let mut text = format!("{what}; looked for, in order:");
    for (provider, files) in looked_for {
        text.push_str(&format!("\n  {provider}: {files}"));
    }
    text.push_str(
        "\nadd one of these files, or build with a Dockerfile (-f PATH or --frontend dockerfile)",
    );
    text
}
