//! Solving an LLB definition directly, without a frontend: for benchmarks, tests and tools that
//! build a graph themselves. Builds (and their frontends) go through [`Engine::build`].

use hoist_llb::Definition;
use hoist_solver::{SolveOptions, SolveStats};

use crate::state::{Engine, Progress};
use crate::Error;

/// What [`Engine::solve_definition`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Solved {
    /// The output's result (a layer chain, `chain:ID,...`); `None` for an empty definition.
    pub output: Option<String>,
    /// What was cached, executed, or shared with another solve running at the same time.
    pub stats: SolveStats,
}

impl Engine {
    /// Solves `definition` (validated first: a cycle or dangling input is an error naming the
    /// op). `local://` sources are not bound to directories here; use a build for contexts.
    pub async fn solve_definition(
        &self,
        definition: &Definition,
        no_cache: bool,
        progress: Progress,
    ) -> Result<Solved, Error> {
        let _gc = self.shared.gc.build_guard().await;
        let options = SolveOptions {
            no_cache,
            ..SolveOptions::default()
        };
        let result = self
            .solver
            .solve(definition, options, progress.solver_sender())
            .await?;
        self.shared.gc.touch(result.cache_keys.iter().flatten());
        Ok(Solved {
            output: result.output.map(|r| r.0),
            stats: result.stats,
        })
    }
}
