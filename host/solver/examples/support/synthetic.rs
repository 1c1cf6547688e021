//! The synthetic graph the solver and engine benchmarks solve (`bench_solver`, `bench_engine`
//! part a), shared so that both measure the same thing. Included with `#[path]`.

use futures::future::BoxFuture;
use hoist_llb::*;
use hoist_solver::{ExecError, ExecJob, OpExecutor, ResultId};

/// Executes nothing; every result is named after its cache key.
pub struct Noop;

impl OpExecutor for Noop {
    fn execute(&self, job: ExecJob) -> BoxFuture<'_, Result<Vec<ResultId>, ExecError>> {
        Box::pin(async move { Ok(vec![ResultId(format!("snap-{}", job.cache_key.0.hex()))]) })
    }
}

/// A layered DAG, 10 ops wide: the first layer sources, then execs on the op 10 places back
/// with a read-only mount of a pseudo-random earlier op; the output merges the last layer.
pub fn graph(n: usize) -> Definition {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut ops = Vec::with_capacity(n);
    for i in 0..n - 1 {
        let op = if i < 10 {
            Op::new(OpKind::Source(SourceOp {
                identifier: format!("docker-image://registry.example/g{n}/img{i}:latest"),
                include_patterns: vec![],
                exclude_patterns: vec![],
                follow_paths: vec![],
                attrs: vec![],
            }))
        } else {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let other = u32::try_from((seed >> 33) % i as u64).unwrap_or(0);
            let prev = u32::try_from(i - 10).unwrap_or(0);
            Op::new(OpKind::Exec(ExecOp {
                args: vec!["/bin/sh".into(), "-c".into(), format!("make step-{i}")],
                env: vec!["PATH=/usr/bin:/bin".into(), format!("STEP={i}")],
                cwd: "/src".into(),
                user: String::new(),
                hostname: String::new(),
                network: NetworkMode::None,
                security: SecurityMode::Sandbox,
                mounts: vec![
                    Mount {
                        dest: "/".into(),
                        input: Some(OpRef {
                            op: prev,
                            output: 0,
                        }),
                        selector: String::new(),
                        readonly: false,
                        output: Some(0),
                        kind: MountKind::Bind,
                    },
                    Mount {
                        dest: "/other".into(),
                        input: Some(OpRef {
                            op: other,
                            output: 0,
                        }),
                        selector: String::new(),
                        readonly: true,
                        output: None,
                        kind: MountKind::Bind,
                    },
                ],
            }))
        };
        let mut op = op;
        op.description = Some(format!("[step {i}]"));
        ops.push(op);
    }
    // The output: a merge of the last layer, so every op is needed.
    let last = u32::try_from(n - 1).unwrap_or(0);
    let inputs = (last - 10..last)
        .map(|op| OpRef { op, output: 0 })
        .collect();
    ops.push(Op::new(OpKind::Merge(MergeOp { inputs })));
    Definition {
        ops,
        output: Some(OpRef {
            op: last,
            output: 0,
        }),
    }
}
