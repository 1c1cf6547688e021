//! The flags of `hoist frontend`: publishing, fetching and inspecting frontends in registries.

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// `hoist frontend SUBCOMMAND`.
#[derive(Debug, Args)]
pub struct FrontendFlags {
    /// What to do.
    #[command(subcommand)]
    pub command: FrontendCommand,
}

/// The subcommands of `hoist frontend`.
#[derive(Debug, Subcommand)]
pub enum FrontendCommand {
    /// Publish a frontend component to a registry as a Wasm OCI artifact.
    ///
    /// Writes the CNCF Wasm artifact layout: config application/vnd.wasm.config.v0+json
    /// listing the component's imports and exports, and one application/wasm layer. A
    /// Dockerfile then selects it with "# syntax=REF".
    Push {
        /// The component (a .wasm file built for wasm32-wasip2).
        #[arg(value_name = "FILE.wasm")]
        file: PathBuf,
        /// Where to publish it, e.g. "registry.example/team/frontend:1".
        #[arg(value_name = "REF", value_parser = super::parse_image_name)]
        reference: String,
    },
    /// Download a frontend's component.
    Pull {
        /// The frontend, e.g. "registry.example/team/frontend:1" or "...@sha256:...".
        #[arg(value_name = "REF")]
        reference: String,
        /// Write the component here ("-" for stdout); defaults to its title in the current
        /// directory.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Show a frontend's contract version, imports and exports, digests and size.
    Inspect {
        /// The frontend.
        #[arg(value_name = "REF")]
        reference: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}
