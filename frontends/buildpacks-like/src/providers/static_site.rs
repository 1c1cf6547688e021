//! Static sites: `index.html` (or `public/index.html`) served by busybox `httpd` on `$PORT`.

use super::{context_app_layer, env, Draft};
use crate::plan::Decision;
use crate::tree::SourceTree;
use crate::Error;

pub(super) const LOOKED_FOR: &str = "index.html, public/index.html";

/// The port served when `PORT` is not set.
const PORT: u16 = 8080;

pub(super) fn detect(tree: &dyn SourceTree) -> Option<String> {
    if tree.has_file("index.html") {
        Some("index.html".into())
    } else if tree.is_dir("public") && tree.has_file("public/index.html") {
        Some("public/index.html".into())
    } else {
        None
    }
}

pub(super) fn draft(tree: &dyn SourceTree) -> Result<Draft, Error> {
    let (root, why) = if tree.has_file("index.html") {
        ("/app", "index.html at the top")
    } else {
        ("/app/public", "public/index.html")
    };
    let decisions = vec![Decision::new("document-root", root, why)];
    Ok(Draft {
        decisions,
        builder_image: None,
        run_image: "busybox:stable".into(),
        steps: Vec::new(),
        layers: Vec::new(),
        source_excludes: Vec::new(),
        app: context_app_layer(),
        env: env([("PORT", "8080")]),
        path: Vec::new(),
        ports: vec![PORT],
        default_start: Some((
            format!("httpd -f -v -p ${{PORT:-{PORT}}} -h {root}"),
            format!("static site ({why})"),
        )),
        start_looked_for: "Procfile",
        start_example: "httpd -f -p 8080 -h /app",
    })
}
