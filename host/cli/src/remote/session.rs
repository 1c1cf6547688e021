//! The client half of a session: lists a local context (with `.dockerignore` applied here),
//! sends the listing, sends the files the daemon asks for, hands over secrets.
//!
//! The listing is the entries [`walk_selected`] yields, the same selection the embedded engine
//! would copy, preceded by the root; only metadata travels until the daemon names the files whose
//! size or modification time differ from its copy.

use std::collections::HashMap;
use std::io::Read as _;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use hoist_api::proto::control_client::ControlClient;
use hoist_api::proto::{self, session_message, session_reply, Entry, EntryKind, SessionMessage};
use hoist_engine::context::{walk_selected, Filter, PathFilter};
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::Streaming;

/// An open session.
pub struct Session {
    /// The id Solve requests name.
    pub id: String,
    tx: mpsc::Sender<SessionMessage>,
    replies: Streaming<proto::SessionReply>,
}

/// A listed context: the wire entries and where each one is on disk.
pub struct Listing {
    entries: Vec<Entry>,
    paths: Vec<PathBuf>,
}

impl Session {
    /// Opens a session on `control`.
    pub async fn open(control: &mut ControlClient<Channel>) -> anyhow::Result<Session> {
        let id = random_id()?;
        let (tx, rx) = mpsc::channel(64);
        let open = session_message::Message::Open(proto::SessionOpen {
            session_id: id.clone(),
        });
        tx.send(SessionMessage {
            message: Some(open),
        })
        .await
        .context("starting the session")?;
        let replies = control
            .session(ReceiverStream::new(rx))
            .await
            .context("opening a session with hoistd")?
            .into_inner();
        Ok(Session { id, tx, replies })
    }

    /// Syncs `listing` as context `name` whose copy the daemon keeps under `key`.
    pub async fn sync(
        &mut self,
        name: &str,
        key: &str,
        listing: Listing,
    ) -> anyhow::Result<()> {
        let total = listing.entries.len();
        let mut entries = listing.entries.into_iter().peekable();
        let mut sent = 0;
        loop {
            let batch: Vec<Entry> = entries.by_ref().take(hoist_api::MANIFEST_BATCH).collect();
            sent += batch.len();
            let last = sent == total;
            let manifest = proto::ContextManifest {
                name: name.into(),
                key: key.into(),
                entries: batch,
                last,
            };
            self.send(session_message::Message::Manifest(manifest))
                .await?;
            if last {
                break;
            }
        }
        let need = match self.reply().await? {
            session_reply::Reply::Need(need) if need.name == name => need,
            other => anyhow::bail!("hoistd answered {other:?} to the listing of context {name:?}"),
        };
        for index in need.indexes {
            let path = listing.paths.get(index as usize).with_context(|| {
                format!("hoistd asked for entry {index} of {name:?}, which is not listed")
            })?;
            self.send_file(name, index, path).await?;
        }
        match self.reply().await? {
            session_reply::Reply::Synced(s) if s.name == name => {
                tracing::debug!(
                    context = name,
                    files = s.files_received,
                    bytes = s.bytes_received,
                    "context synced"
                );
                Ok(())
            }
            other => anyhow::bail!("hoistd answered {other:?} while syncing context {name:?}"),
        }
    }

    /// Hands over a secret (memory only on the daemon).
    pub async fn secret(&mut self, id: &str, value: &[u8]) -> anyhow::Result<()> {
        self.send(session_message::Message::Secret(proto::Secret {
            id: id.into(),
            value: value.to_vec(),
        }))
        .await
    }

    /// Publishes what was sent; Solve may name the session afterwards.
    pub async fn commit(&mut self) -> anyhow::Result<()> {
        self.send(session_message::Message::Commit(proto::Commit {}))
            .await?;
        match self.reply().await? {
            session_reply::Reply::Ready(_) => Ok(()),
            other => anyhow::bail!("hoistd answered {other:?} to commit"),
        }
    }

    /// Ends the session: the daemon forgets its secrets and releases its copies.
    pub async fn close(self) {
        drop(self.tx);
        let mut replies = self.replies;
        while let Ok(Some(_)) = replies.message().await {}
    }

    /// Sends one file in chunks, exactly as many bytes as listed.
    async fn send_file(&mut self, name: &str, index: u32, path: &Path) -> anyhow::Result<()> {
        let mut file =
            std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
        let mut buf = vec![0u8; hoist_api::CHUNK_BYTES];
        loop {
            let n = file
                .read(&mut buf)
                .with_context(|| format!("reading {}", path.display()))?;
            let chunk = proto::FileData {
                name: name.into(),
                index,
                data: buf[..n].to_vec(),
                eof: n == 0,
            };
            self.send(session_message::Message::File(chunk)).await?;
            if n == 0 {
                return Ok(());
            }
        }
    }

    async fn send(&mut self, message: session_message::Message) -> anyhow::Result<()> {
        if self
            .tx
            .send(SessionMessage {
                message: Some(message),
            })
            .await
            .is_err()
        {
            // The daemon ended the stream: its status says why.
            let status = self.replies.message().await.err();
            match status {
                Some(status) => anyhow::bail!("hoistd ended the session: {}", status.message()),
                None => anyhow::bail!("hoistd ended the session"),
            }
        }
        Ok(())
    }

    async fn reply(&mut self) -> anyhow::Result<session_reply::Reply> {
        loop {
            match self.replies.message().await {
                Ok(Some(proto::SessionReply { reply: Some(reply) })) => return Ok(reply),
                Ok(Some(_)) => continue,
                Ok(None) => anyhow::bail!("hoistd ended the session unexpectedly"),
                Err(status) => anyhow::bail!("hoistd: {}", status.message()),
            }
        }
    }
}

/// Lists `dir` as `filter` selects it: the root, then every selected entry, parents first.
pub fn list(dir: &Path, filter: &dyn PathFilter) -> anyhow::Result<Listing> {
    let root = std::fs::symlink_metadata(dir)
        .with_context(|| format!("reading build context {}", dir.display()))?;
    let walked = walk_selected(dir, filter)
        .with_context(|| format!("listing build context {}", dir.display()))?;
    let mut entries = Vec::with_capacity(walked.len() + 1);
    let mut paths = Vec::with_capacity(walked.len() + 1);
    entries.push(entry_of(String::new(), &root, EntryKind::Dir));
    paths.push(dir.to_path_buf());
    let mut first_link: HashMap<(u64, u64), String> = HashMap::new();
    for walked in walked {
        let rel = walked.rel.to_str().with_context(|| {
            format!(
                "{}: file names in a context sent to hoistd must be UTF-8",
                walked.rel.display()
            )
        })?;
        let rel = rel.to_string();
        let meta = &walked.meta;
        let file_type = meta.file_type();
        let mut entry = if file_type.is_dir() {
            entry_of(rel.clone(), meta, EntryKind::Dir)
        } else if file_type.is_symlink() {
            let target = std::fs::read_link(dir.join(&rel))
                .with_context(|| format!("reading link {rel}"))?;
            let target = target
                .to_str()
                .with_context(|| format!("{rel}: symlink target is not UTF-8"))?
                .to_string();
            Entry {
                link_target: target,
                ..entry_of(rel.clone(), meta, EntryKind::Symlink)
            }
        } else if file_type.is_file() {
            entry_of(rel.clone(), meta, EntryKind::File)
        } else {
            anyhow::bail!(
                "{}: sockets, pipes and devices in a build context are not sent to hoistd",
                dir.join(&rel).display()
            );
        };
        if file_type.is_file() && meta.nlink() > 1 {
            match first_link.get(&(meta.dev(), meta.ino())) {
                Some(first) => entry.hardlink_to = first.clone(),
                None => {
                    first_link.insert((meta.dev(), meta.ino()), rel.clone());
                }
            }
        }
        paths.push(dir.join(&rel));
        entries.push(entry);
    }
    Ok(Listing { entries, paths })
}

fn entry_of(path: String, meta: &std::fs::Metadata, kind: EntryKind) -> Entry {
    Entry {
        path,
        kind: kind as i32,
        mode: meta.mode() & 0o7777,
        size: if kind == EntryKind::File {
            meta.size()
        } else {
            0
        },
        mtime_ns: meta
            .mtime()
            .saturating_mul(1_000_000_000)
            .saturating_add(meta.mtime_nsec()),
        ..Entry::default()
    }
}

/// The stable key of a directory in a role: the daemon keeps one copy per key, so the same
/// directory built again from this machine syncs only what changed.
pub fn context_key(dir: &Path, role: &str) -> String {
    let machine = std::fs::read_to_string("/etc/machine-id")
        .or_else(|_| std::fs::read_to_string("/proc/sys/kernel/hostname"))
        .unwrap_or_default();
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let mut h = Sha256::new();
    for part in [
        b"hoist-context-v1".as_slice(),
        machine.trim().as_bytes(),
        role.as_bytes(),
        dir.as_os_str().as_encoded_bytes(),
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    hex::encode(h.finalize())
}

/// A filter that always keeps the ignore file itself, so the frontend on the daemon reads the
/// same rules the client applied.
pub struct KeepingIgnoreFile<F>(pub F);

impl<F: PathFilter> PathFilter for KeepingIgnoreFile<F> {
    fn matches(&self, rel_path: &str, is_dir: bool) -> Filter {
        if rel_path == ".dockerignore" && !is_dir {
            Filter::Include
        } else {
            self.0.matches(rel_path, is_dir)
        }
    }
}

/// A random session id (16 bytes from the kernel, in hex).
fn random_id() -> anyhow::Result<String> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("reading /dev/urandom")?;
    Ok(hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoist_engine::context::{IncludeAll, PatternFilter};

    #[test]
    fn listing_starts_at_the_root_and_marks_hardlinks_and_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/a"), "aa").unwrap();
        std::fs::hard_link(dir.path().join("sub/a"), dir.path().join("b")).unwrap();
        std::os::unix::fs::symlink("sub/a", dir.path().join("link")).unwrap();
        let listing = list(dir.path(), &IncludeAll).unwrap();
        let shown: Vec<(String, i32, String, String)> = listing
            .entries
            .iter()
            .map(|e| {
                (
                    e.path.clone(),
                    e.kind,
                    e.link_target.clone(),
                    e.hardlink_to.clone(),
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                (
                    String::new(),
                    EntryKind::Dir as i32,
                    String::new(),
                    String::new()
                ),
                (
                    "b".into(),
                    EntryKind::File as i32,
                    String::new(),
                    String::new()
                ),
                (
                    "link".into(),
                    EntryKind::Symlink as i32,
                    "sub/a".into(),
                    String::new()
                ),
                (
                    "sub".into(),
                    EntryKind::Dir as i32,
                    String::new(),
                    String::new()
                ),
                (
                    "sub/a".into(),
                    EntryKind::File as i32,
                    String::new(),
                    "b".into()
                ),
            ]
        );
        assert_eq!(listing.entries[1].size, 2);
    }

    #[test]
    fn ignored_files_are_not_listed_but_the_ignore_file_is() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".dockerignore"), "*.log\n.dockerignore\n").unwrap();
        std::fs::write(dir.path().join("app.log"), "x").unwrap();
        std::fs::write(dir.path().join("main.c"), "x").unwrap();
        let patterns = hoist_patternmatcher::read_ignore_file("*.log\n.dockerignore\n");
        let filter = KeepingIgnoreFile(PatternFilter::new(&[] as &[String], &patterns).unwrap());
        let listing = list(dir.path(), &filter).unwrap();
        let paths: Vec<&str> = listing.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["", ".dockerignore", "main.c"]);
    }

    #[test]
    fn keys_differ_by_role_and_directory_and_are_stable() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        assert_eq!(
            context_key(a.path(), "context"),
            context_key(a.path(), "context")
        );
        assert_ne!(
            context_key(a.path(), "context"),
            context_key(a.path(), "dockerfile")
        );
        assert_ne!(
            context_key(a.path(), "context"),
            context_key(b.path(), "context")
        );
        assert_eq!(context_key(a.path(), "context").len(), 64);
    }
}
