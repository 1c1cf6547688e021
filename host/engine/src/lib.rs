//! The hoist engine: one build = a frontend run, the LLB it solves, and an export.
//!
//! This crate is the adapter layer of the picture in DESIGN.md: it turns LLB ops into work for
//! the store (snapshots, layers), the worker (runc), the sources (registries, OCI layouts, local
//! contexts), and serves the frontend host's gateway imports from the solver. It owns the state
//! directory's layout and the job-level concerns (named contexts, secrets, exports). It must not
//! parse build languages (frontends do) nor format progress for people (the CLI does).
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), hoist_engine::Error> {
//! use hoist_engine::{BuildRequest, Engine, EngineConfig};
//! let engine = Engine::open(EngineConfig::new("/var/lib/hoist".into()))?;
//! let request = BuildRequest::dockerfile("/src/app".into());
//! let outcome = engine.build(request, hoist_engine::Progress::discard()).await?;
//! println!("{:?}", outcome.exported);
//! # Ok(()) }
//! ```
//!
//! # Key decisions
//!
//! * A vertex result is a [`chain::Chain`] of committed overlay layers; the solver stores its
//!   string form. Merge is concatenation, an exec or file op adds one layer.
//! * Local contexts enter the graph as `local://NAME` sources; the job rewrites them to carry the
//!   client directory and keys them on a content checksum of exactly the selected paths.
//! * Secrets live only in the job's memory and in a per-exec scratch file bound read-only.

#![deny(unsafe_code)]

pub mod chain;
pub mod checksum;
pub mod context;
mod direct;
mod error;
pub mod exec;
mod explain;
mod export;
pub mod fileop;
pub mod frontend_ref;
pub mod fsutil;
mod gateway;
pub mod gc;
mod job;
mod ops;
mod remote_sources;
pub mod selection;
mod state;

pub use error::Error;
pub use export::{ExportKind, ExportSpec, Exported};
pub use direct::Solved;
pub use gc::{DiskUsage, PruneOptions, PruneReport, UsageItem, UsageKind};
pub use frontend_ref::{FrontendPolicy, FrontendSettings, PolicyRule, MAX_FRONTEND_DEPTH};
pub use job::{BuildOutcome, BuildRequest, ContextSource, FrontendChoice};
pub use state::{Engine, EngineConfig, Event, Progress, Secrets, SshSockets};
