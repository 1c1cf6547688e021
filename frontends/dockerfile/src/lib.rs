//! The Dockerfile frontend's pure logic: parsing a Dockerfile into an AST and
//! typed instructions, and lexing shell words.
//!
//! This crate owns the Dockerfile language up to (not including) LLB: the
//! BuildKit-compatible [`parser`] (directives, continuations, heredocs, JSON vs
//! shell form, the AST dump format), the typed [`instructions`] and build
//! stages, and the [`shell`] word lexer used for variable expansion. It must
//! not do I/O: it is compiled to `wasm32-wasip2` and runs in the sandbox with
//! no filesystem; everything arrives as strings.
//!
//! # Example
//!
//! ```
//! use hoist_dockerfile::{instructions, parser};
//!
//! let result = parser::parse("ARG TAG=3\nFROM alpine:$TAG AS base\nRUN echo hi\n").unwrap();
//! let (meta_args, stages) = instructions::parse_stages(&result.ast).unwrap();
//! assert_eq!(meta_args[0].arg.args[0].key, "TAG");
//! assert_eq!(stages[0].name.as_deref(), Some("base"));
//! assert_eq!(stages[0].base_name, "alpine:$TAG");
//! ```
//!
//! # Guarantees
//!
//! * `parser::parse` accepts exactly what BuildKit's parser accepts, and
//!   [`parser::Node::dump`] matches BuildKit's dump byte-for-byte (checked by
//!   `tests/parser_conformance.rs` against upstream test data).
//! * Every error is an [`Error`] carrying the Dockerfile lines concerned.
//! * Words are kept raw: no quote removal or variable expansion happens before
//!   the converter applies [`shell`] with the build's arguments.
//!
//! # Key decision
//!
//! The AST keeps BuildKit's shape (keyword node, argument nodes, flags,
//! heredocs) rather than a richer syntax tree, so BuildKit's dump format,
//! line-number rules and quirks carry over unchanged; typing happens in a
//! separate pass that can report located errors per instruction.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod component;
pub mod convert;
pub mod instructions;
pub mod parser;
pub mod shell;
pub mod subrequest;

pub use parser::{Error, ErrorKind, Location};
