//! Procfile and shell apps: the tree copied as is onto the run image and started by its
//! Procfile (or `start.sh`); nothing is built.

use std::collections::BTreeMap;

use super::{context_app_layer, present, Draft};
use crate::tree::SourceTree;
use crate::Error;

pub(super) const LOOKED_FOR: &str = "Procfile, start.sh";

pub(super) fn detect(tree: &dyn SourceTree) -> Option<String> {
    present(tree, &["Procfile", "start.sh"])
}

pub(super) fn draft(tree: &dyn SourceTree) -> Result<Draft, Error> {
    let default_start = tree
        .has_file("start.sh")
        .then(|| ("./start.sh".to_string(), "start.sh".to_string()));
    Ok(Draft {
        decisions: Vec::new(),
        builder_image: None,
        run_image: "debian:bookworm-slim".into(),
        steps: Vec::new(),
        layers: Vec::new(),
        source_excludes: Vec::new(),
        app: context_app_layer(),
        env: BTreeMap::new(),
        path: Vec::new(),
        ports: Vec::new(),
        default_start,
        start_looked_for: "Procfile, start.sh",
        start_example: "./start.sh",
    })
}
