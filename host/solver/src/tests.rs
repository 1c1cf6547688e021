use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use hoist_llb::{
    ExecOp, LineRange, MergeOp, Mount, MountKind, NetworkMode, OpRef, SecurityMode, SourceOp,
};

use super::*;

/// Behaviour by description prefix: `slow` sleeps 200 ms, `veryslow` 3 s, `fail` errors.
#[derive(Default)]
struct Fake {
    runs: Mutex<HashMap<String, usize>>,
    spans: Mutex<Vec<(String, Instant, Instant)>>,
    finished: Mutex<Vec<String>>,
    active: AtomicUsize,
    max_active: AtomicUsize,
    content: Mutex<HashMap<String, String>>,
    /// Source identifier → checksum of the paths its consumers select from it.
    selected: Mutex<HashMap<String, String>>,
}

impl Fake {
    fn runs(&self, name: &str) -> usize {
        self.runs.lock().unwrap().get(name).copied().unwrap_or(0)
    }
    fn total(&self) -> usize {
        self.runs.lock().unwrap().values().sum()
    }
}

impl OpExecutor for Fake {
    fn content_key<'a>(
        &'a self,
        _v: &'a VertexInfo,
        op: &'a Op,
    ) -> BoxFuture<'a, Result<Option<String>, ExecError>> {
        Box::pin(async move {
            let OpKind::Source(s) = &op.kind else {
                return Ok(None);
            };
            Ok(self.content.lock().unwrap().get(&s.identifier).cloned())
        })
    }

    fn selected_content<'a>(
        &'a self,
        _v: &'a VertexInfo,
        _op: &'a Op,
        inputs: &'a [&'a Op],
    ) -> BoxFuture<'a, Result<Vec<Option<SelectedContent>>, ExecError>> {
        Box::pin(async move {
            let selected = self.selected.lock().unwrap();
            Ok(inputs
                .iter()
                .map(|input| {
                    let OpKind::Source(s) = &input.kind else {
                        return None;
                    };
                    selected.get(&s.identifier).map(|sum| SelectedContent {
                        paths: vec!["/a.txt".into()],
                        checksum: sum.clone(),
                    })
                })
                .collect())
        })
    }

    fn execute(&self, job: ExecJob) -> BoxFuture<'_, Result<Vec<ResultId>, ExecError>> {
        Box::pin(async move {
            let name = job.vertex.name.clone();
            *self.runs.lock().unwrap().entry(name.clone()).or_default() += 1;
            let now = self.active.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_active.fetch_max(now, Ordering::SeqCst);
            let start = Instant::now();
            job.log.stdout(b"hello\n");
            if name.starts_with("veryslow") {
                tokio::time::sleep(Duration::from_secs(3)).await;
            } else if name.starts_with("slow") {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            self.active.fetch_sub(1, Ordering::SeqCst);
            self.spans
                .lock()
                .unwrap()
                .push((name.clone(), start, Instant::now()));
            if name.starts_with("fail") {
                return Err(ExecError::msg("exit code 1"));
            }
            self.finished.lock().unwrap().push(name);
            let n = outputs_needed(&job.op);
            Ok((0..n)
                .map(|k| ResultId(format!("{}#{k}", job.cache_key)))
                .collect())
        })
    }
}

fn named(mut op: Op, name: &str) -> Op {
    op.description = Some(name.into());
    op
}

fn src(id: &str, name: &str) -> Op {
    named(
        Op::new(OpKind::Source(SourceOp {
            identifier: id.into(),
            include_patterns: vec![],
            exclude_patterns: vec![],
            follow_paths: vec![],
            attrs: vec![],
        })),
        name,
    )
}

fn run(input: u32, cmd: &str, name: &str) -> Op {
    named(
        Op::new(OpKind::Exec(ExecOp {
            args: vec!["sh".into(), "-c".into(), cmd.into()],
            env: vec![],
            cwd: "/".into(),
            user: String::new(),
            hostname: String::new(),
            network: NetworkMode::None,
            security: SecurityMode::Sandbox,
            mounts: vec![Mount {
                dest: "/".into(),
                input: Some(OpRef {
                    op: input,
                    output: 0,
                }),
                selector: String::new(),
                readonly: false,
                output: Some(0),
                kind: MountKind::Bind,
            }],
        })),
        name,
    )
}

fn merge(inputs: &[u32], name: &str) -> Op {
    let inputs = inputs.iter().map(|&op| OpRef { op, output: 0 }).collect();
    named(Op::new(OpKind::Merge(MergeOp { inputs })), name)
}

fn def(ops: Vec<Op>) -> Definition {
    let output = Some(OpRef {
        op: ops.len() as u32 - 1,
        output: 0,
    });
    Definition { ops, output }
}

fn chain() -> Definition {
    def(vec![
        src("docker-image://alpine", "base"),
        run(0, "make", "make"),
        run(1, "make install", "install"),
    ])
}

fn setup(par: usize) -> (tempfile::TempDir, sled::Db, Arc<Fake>, Solver) {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path()).unwrap();
    let fake = Arc::new(Fake::default());
    let solver = Solver::new(&db, fake.clone(), SolverLimits { parallelism: par }).unwrap();
    (dir, db, fake, solver)
}

async fn solve(s: &Solver, d: &Definition) -> Result<SolveResult, Error> {
    s.solve(d, SolveOptions::default(), ProgressSender::discard())
        .await
}

#[tokio::test]
async fn second_solve_executes_nothing() {
    let (_dir, _db, fake, solver) = setup(4);
    let d = chain();
    let a = solve(&solver, &d).await.unwrap();
    assert_eq!(fake.total(), 3);
    assert_eq!(
        a.stats,
        SolveStats {
            cached: 0,
            executed: 3,
            joined: 0
        }
    );
    let b = solve(&solver, &d).await.unwrap();
    assert_eq!(fake.total(), 3);
    assert_eq!(a.output, b.output);
    assert_eq!(a.cache_keys, b.cache_keys);
    // Lazy: only the output vertex is looked up.
    assert_eq!(
        b.stats,
        SolveStats {
            cached: 1,
            executed: 0,
            joined: 0
        }
    );
    // Metadata does not change keys.
    let mut d2 = d.clone();
    d2.ops[1].description = Some("renamed".into());
    let c = solve(&solver, &d2).await.unwrap();
    assert_eq!(c.cache_keys, a.cache_keys);
    assert_eq!(fake.total(), 3);
}

#[tokio::test]
async fn cache_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let d = chain();
    let first = {
        let db = sled::open(dir.path()).unwrap();
        let fake = Arc::new(Fake::default());
        let solver = Solver::new(&db, fake.clone(), SolverLimits { parallelism: 2 }).unwrap();
        let r = solve(&solver, &d).await.unwrap();
        assert_eq!(fake.total(), 3);
        r
    };
    let db = sled::open(dir.path()).unwrap();
    let fake = Arc::new(Fake::default());
    let solver = Solver::new(&db, fake.clone(), SolverLimits { parallelism: 2 }).unwrap();
    let again = solve(&solver, &d).await.unwrap();
    assert_eq!(fake.total(), 0);
    assert_eq!(again.output, first.output);
    let key = again.cache_keys[2].unwrap();
    assert_eq!(
        solver.cache_lookup(&key).unwrap().unwrap(),
        vec![again.output.clone().unwrap()]
    );
    assert!(solver.forget(&key).unwrap());
    solve(&solver, &d).await.unwrap();
    assert_eq!(fake.total(), 1, "only the forgotten vertex re-runs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_solves_share_a_vertex() {
    let (_dir, _db, fake, solver) = setup(4);
    let shared = vec![
        src("docker-image://alpine", "base"),
        run(0, "sleep", "slow shared"),
    ];
    let mut d1 = shared.clone();
    d1.push(run(1, "a", "job1 tail"));
    let mut d2 = shared;
    d2.push(run(1, "b", "job2 tail"));
    let (d1, d2) = (def(d1), def(d2));
    let (a, b) = tokio::join!(solve(&solver, &d1), solve(&solver, &d2));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(fake.runs("slow shared"), 1);
    assert_eq!(fake.runs("base"), 1);
    assert_eq!(fake.runs("job1 tail"), 1);
    assert_eq!(fake.runs("job2 tail"), 1);
    assert_eq!(a.cache_keys[1], b.cache_keys[1]);
    assert_ne!(a.output, b.output);
    let shared_total = a.stats.joined + b.stats.joined + a.stats.cached + b.stats.cached;
    assert!(shared_total >= 1, "{:?} {:?}", a.stats, b.stats);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn same_definition_twice_concurrently_executes_once() {
    let (_dir, _db, fake, solver) = setup(4);
    let d = def(vec![
        src("docker-image://alpine", "slow base"),
        run(0, "x", "slow step"),
    ]);
    let rs = futures::future::join_all((0..5).map(|_| solve(&solver, &d))).await;
    let outs: Vec<_> = rs.into_iter().map(|r| r.unwrap().output).collect();
    assert!(outs.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(fake.total(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn independent_vertices_run_in_parallel() {
    let (_dir, _db, fake, solver) = setup(4);
    let d = def(vec![
        src("local://a", "slow a"),
        src("local://b", "slow b"),
        src("local://c", "slow c"),
        src("local://d", "slow d"),
        merge(&[0, 1, 2, 3], "merge"),
    ]);
    solve(&solver, &d).await.unwrap();
    let spans = fake.spans.lock().unwrap().clone();
    let slow: Vec<_> = spans.iter().filter(|s| s.0.starts_with("slow")).collect();
    assert_eq!(slow.len(), 4);
    let last_start = slow.iter().map(|s| s.1).max().unwrap();
    let first_end = slow.iter().map(|s| s.2).min().unwrap();
    assert!(last_start < first_end, "all four overlapped");
    let merge_start = spans.iter().find(|s| s.0 == "merge").unwrap().1;
    let last_end = slow.iter().map(|s| s.2).max().unwrap();
    assert!(merge_start >= last_end, "merge ran after its inputs");
    assert_eq!(fake.max_active.load(Ordering::SeqCst), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallelism_is_bounded() {
    let (_dir, _db, fake, solver) = setup(2);
    let d = def(vec![
        src("local://a", "slow a"),
        src("local://b", "slow b"),
        src("local://c", "slow c"),
        src("local://d", "slow d"),
        merge(&[0, 1, 2, 3], "merge"),
    ]);
    solve(&solver, &d).await.unwrap();
    assert_eq!(fake.max_active.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn upstream_change_changes_downstream_keys() {
    let (_dir, _db, fake, solver) = setup(2);
    let a = solve(&solver, &chain()).await.unwrap();
    let mut d = chain();
    d.ops[0] = src("docker-image://alpine:3.21", "base");
    let b = solve(&solver, &d).await.unwrap();
    for i in 0..3 {
        assert_ne!(a.cache_keys[i], b.cache_keys[i], "op {i}");
    }
    assert_eq!(fake.total(), 6);
    // Same op, new content key (e.g. the local context changed): everything downstream re-keys.
    fake.content
        .lock()
        .unwrap()
        .insert("docker-image://alpine:3.21".into(), "sha256:new".into());
    let c = solve(&solver, &d).await.unwrap();
    assert_eq!(c.digests, b.digests);
    for i in 0..3 {
        assert_ne!(c.cache_keys[i], b.cache_keys[i], "op {i}");
    }
    assert_eq!(fake.total(), 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failure_propagates_and_cancels() {
    let (_dir, _db, fake, solver) = setup(4);
    let mut failing = src("local://b", "fail b");
    failing.location = Some(SourceLocation {
        file: "Dockerfile".into(),
        ranges: vec![LineRange { start: 7, end: 7 }],
    });
    let d = def(vec![
        src("local://a", "veryslow a"),
        failing,
        merge(&[0, 1], "merge"),
        run(2, "x", "after"),
    ]);
    let (progress, mut rx) = ProgressSender::channel();
    let t0 = Instant::now();
    let err = solver
        .solve(&d, SolveOptions::default(), progress)
        .await
        .unwrap_err();
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "did not wait for the slow sibling"
    );
    match &err {
        Error::Vertex {
            index,
            name,
            location,
            ..
        } => {
            assert_eq!(*index, 1);
            assert_eq!(name, "fail b");
            assert_eq!(location.as_ref().unwrap().file, "Dockerfile");
        }
        other => panic!("unexpected {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("fail b") && msg.contains("Dockerfile:7") && msg.contains("exit code 1"),
        "{msg}"
    );
    assert_eq!(err.location().unwrap().file, "Dockerfile");
    assert_eq!(fake.runs("merge"), 0);
    assert_eq!(fake.runs("after"), 0);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !fake
            .finished
            .lock()
            .unwrap()
            .iter()
            .any(|n| n == "veryslow a"),
        "sibling was cancelled"
    );
    let mut failed = false;
    while let Ok(ev) = rx.try_recv() {
        failed |= matches!(ev, ProgressEvent::VertexFailed { name, .. } if name == "fail b");
    }
    assert!(failed);
    // Nothing was recorded for the failed vertex: it runs again.
    assert!(solve(&solver, &d).await.is_err());
    assert_eq!(fake.runs("fail b"), 2);
    assert!(solver.inner.flights().is_empty(), "no leftover flights");
}

#[tokio::test]
async fn no_cache_options() {
    let (_dir, _db, fake, solver) = setup(2);
    let d = chain();
    solve(&solver, &d).await.unwrap();
    assert_eq!(fake.total(), 3);
    let all = SolveOptions {
        no_cache: true,
        ..Default::default()
    };
    solver
        .solve(&d, all, ProgressSender::discard())
        .await
        .unwrap();
    assert_eq!(fake.total(), 6);
    // Filter on op 1: op 1 and its dependent re-run, op 0 does not.
    let f = SolveOptions {
        no_cache_filter: vec![1],
        ..Default::default()
    };
    let r = solver
        .solve(&d, f, ProgressSender::discard())
        .await
        .unwrap();
    assert_eq!(
        (fake.runs("base"), fake.runs("make"), fake.runs("install")),
        (2, 3, 3)
    );
    assert_eq!(
        r.stats,
        SolveStats {
            cached: 1,
            executed: 2,
            joined: 0
        }
    );
    // Per-op ignore_cache on the output only.
    let mut d2 = d.clone();
    d2.ops[2].ignore_cache = true;
    solve(&solver, &d2).await.unwrap();
    assert_eq!(
        (fake.runs("base"), fake.runs("make"), fake.runs("install")),
        (2, 3, 4)
    );
    // Overwritten record still serves normal solves.
    solve(&solver, &d).await.unwrap();
    assert_eq!(fake.total(), 9);
}

#[tokio::test]
async fn progress_events() {
    let (_dir, _db, _fake, solver) = setup(2);
    let d = chain();
    let (p, mut rx) = ProgressSender::channel();
    solver.solve(&d, SolveOptions::default(), p).await.unwrap();
    let mut evs = vec![];
    while let Ok(ev) = rx.try_recv() {
        evs.push(ev);
    }
    let count = |f: &dyn Fn(&ProgressEvent) -> bool| evs.iter().filter(|e| f(e)).count();
    assert_eq!(
        count(&|e| matches!(e, ProgressEvent::VertexStarted { .. })),
        3
    );
    assert_eq!(
        count(&|e| matches!(e, ProgressEvent::VertexCompleted { .. })),
        3
    );
    assert_eq!(
        count(&|e| matches!(
            e,
            ProgressEvent::Log {
                stream: LogStream::Stdout,
                ..
            }
        )),
        3
    );
    for ev in &evs {
        let json = serde_json::to_string(ev).unwrap();
        assert_eq!(&serde_json::from_str::<ProgressEvent>(&json).unwrap(), ev);
    }
    let log = evs
        .iter()
        .find(|e| matches!(e, ProgressEvent::Log { .. }))
        .unwrap();
    let json = serde_json::to_string(log).unwrap();
    assert!(
        json.contains("\"type\":\"log\"") && json.contains("aGVsbG8K"),
        "{json}"
    );
    let (p, mut rx) = ProgressSender::channel();
    solver.solve(&d, SolveOptions::default(), p).await.unwrap();
    assert!(
        matches!(rx.try_recv().unwrap(), ProgressEvent::VertexCached { name, .. } if name == "install")
    );
}

#[tokio::test]
async fn invalid_definition_and_empty_output() {
    let (_dir, _db, fake, solver) = setup(2);
    let mut d = chain();
    d.ops[1] = run(2, "x", "forward");
    let e = solve(&solver, &d).await.unwrap_err();
    assert!(matches!(e, Error::Definition(_)));
    assert_eq!(e.op_index(), Some(1));
    let r = solve(&solver, &Definition::default()).await.unwrap();
    assert_eq!(r.output, None);
    let mut d = chain();
    d.output = None;
    assert_eq!(solve(&solver, &d).await.unwrap().output, None);
    assert_eq!(fake.total(), 0);
}

#[tokio::test]
async fn unneeded_ops_are_not_run() {
    let (_dir, _db, fake, solver) = setup(2);
    let mut d = chain();
    d.output = Some(OpRef { op: 1, output: 0 });
    let r = solve(&solver, &d).await.unwrap();
    assert_eq!(fake.runs("install"), 0);
    assert!(r.cache_keys[2].is_none());
}

struct Short;
impl OpExecutor for Short {
    fn execute(&self, _job: ExecJob) -> BoxFuture<'_, Result<Vec<ResultId>, ExecError>> {
        Box::pin(async { Ok(vec![]) })
    }
}

#[tokio::test]
async fn executor_returning_too_few_results_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path()).unwrap();
    let solver = Solver::new(&db, Arc::new(Short), SolverLimits { parallelism: 1 }).unwrap();
    let e = solve(&solver, &chain()).await.unwrap_err();
    assert_eq!(e.op_index(), Some(0));
    assert!(e.to_string().contains("0 results"), "{e}");
}

#[test]
fn cache_key_formula() {
    let d = Digest::of(b"op");
    let k1 = cache_key(&d, &[], None);
    assert_ne!(k1, cache_key(&d, &[], Some("")));
    assert_ne!(
        cache_key(&d, &[(k1, 0)], None),
        cache_key(&d, &[(k1, 1)], None)
    );
    assert_eq!(k1, cache_key(&d, &[], None));
}

/// Regression: sled's `flush_async` deadlocked with many concurrent record writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_concurrent_records_do_not_deadlock() {
    let (_dir, _db, fake, solver) = setup(32);
    let mut ops: Vec<Op> = (0..300)
        .map(|i| src(&format!("local://c{i}"), &format!("s{i}")))
        .collect();
    ops.push(merge(&(0..300).collect::<Vec<u32>>(), "merge"));
    let d = def(ops);
    let r = tokio::time::timeout(Duration::from_secs(60), solve(&solver, &d)).await;
    assert_eq!(r.expect("no deadlock").unwrap().stats.executed, 301);
    assert_eq!(fake.total(), 301);
}

#[tokio::test]
async fn selected_content_stands_for_the_input() {
    let (_dir, _db, fake, solver) = setup(2);
    let d = def(vec![src("local://ctx", "ctx"), run(0, "cat a.txt", "copy")]);
    let set = |content: &str, selected: &str| {
        let id = "local://ctx".to_string();
        fake.content.lock().unwrap().insert(id.clone(), content.into());
        fake.selected.lock().unwrap().insert(id, selected.into());
    };
    set("whole-1", "a-1");
    let first = solve(&solver, &d).await.unwrap();
    assert_eq!(fake.runs("copy"), 1);
    let expected = SelectedContent {
        paths: vec!["/a.txt".into()],
        checksum: "a-1".into(),
    };
    assert_eq!(first.selected[1], vec![Some(expected)]);

    // Another file of the context changed: the source's key changes, the consumer's does not.
    set("whole-2", "a-1");
    let second = solve(&solver, &d).await.unwrap();
    assert_ne!(first.cache_keys[0], second.cache_keys[0]);
    assert_eq!(first.cache_keys[1], second.cache_keys[1]);
    assert_eq!((fake.runs("copy"), fake.runs("ctx")), (1, 1));

    // The selected paths changed: the consumer runs again.
    set("whole-2", "a-2");
    solve(&solver, &d).await.unwrap();
    assert_eq!((fake.runs("copy"), fake.runs("ctx")), (2, 2));
}
