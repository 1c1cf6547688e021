//! Client sessions: the Session stream that syncs a client's local contexts into the daemon's
//! copies and hands over its secrets, and the registry Solve looks sessions up in.
//!
//! A session lives as long as its stream. Once a context is synced the session holds its copy
//! shared (no other sync can change it under a build); a `commit` publishes what the session has
//! so far, and Solve takes a snapshot of it. When the stream ends the session is unpublished:
//! its secrets are dropped with the last snapshot, and the copies are released.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use hoist_api::proto::{self, session_message, session_reply, SessionMessage, SessionReply};
use hoist_engine::Secrets;
use tokio::sync::{mpsc, OwnedRwLockReadGuard, OwnedRwLockWriteGuard};
use tonic::{Status, Streaming};

use crate::sync::{Incoming, SyncError};
use crate::Daemon;

/// Longest session id accepted.
const MAX_SESSION_ID: usize = 128;

/// What a session has published: its synced contexts and its secrets.
#[derive(Clone, Default)]
pub struct SessionData {
    /// The copy (tree directory) of each synced context, by its session name.
    pub contexts: HashMap<String, PathBuf>,
    /// The session's secrets (memory only).
    pub secrets: Secrets,
    /// Shared holds on the copies, released with the last snapshot.
    holds: Vec<Arc<OwnedRwLockReadGuard<()>>>,
}

impl std::fmt::Debug for SessionData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionData")
            .field("contexts", &self.contexts)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The open sessions, by id.
#[derive(Debug, Default)]
pub struct Sessions {
    open: Mutex<HashMap<String, Arc<SessionData>>>,
}

impl Sessions {
    /// A snapshot of session `id`, if it is open and has committed.
    pub fn get(&self, id: &str) -> Option<Arc<SessionData>> {
        self.lock().get(id).cloned()
    }

    /// How many sessions are open.
    pub fn count(&self) -> usize {
        self.lock().len()
    }

    fn publish(&self, id: &str, data: SessionData) {
        self.lock().insert(id.to_string(), Arc::new(data));
    }

    fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<SessionData>>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Unpublishes a session when its stream handler ends, however it ends.
struct Unpublish<'a>(&'a Sessions, String);

impl Drop for Unpublish<'_> {
    fn drop(&mut self) {
        self.0.remove(&self.1);
    }
}

/// A context whose listing is arriving or whose files are being received.
enum Pending {
    /// Manifest batches so far.
    Listing {
        name: String,
        key: String,
        entries: Vec<proto::Entry>,
    },
    /// The listing is applied; asked-for files are arriving.
    Receiving {
        name: String,
        incoming: Box<Incoming>,
        hold: OwnedRwLockWriteGuard<()>,
    },
}

/// Serves one Session stream until the client closes it.
pub async fn serve(
    daemon: Arc<Daemon>,
    mut inbound: Streaming<SessionMessage>,
    tx: mpsc::Sender<Result<SessionReply, Status>>,
) -> Result<(), Status> {
    let id = match next(&mut inbound).await? {
        Some(session_message::Message::Open(open)) if valid_id(&open.session_id) => open.session_id,
        _ => {
            return Err(Status::invalid_argument(
                "a session must start with `open` and an id of 1 to 128 characters",
            ))
        }
    };
    let _unpublish = Unpublish(&daemon.sessions, id.clone());
    let mut data = SessionData::default();
    let mut keys_held: Vec<String> = Vec::new();
    let mut pending: Option<Pending> = None;
    while let Some(message) = next(&mut inbound).await? {
        match message {
            session_message::Message::Open(_) => {
                return Err(Status::invalid_argument("`open` sent twice"))
            }
            session_message::Message::Manifest(batch) => {
                let (name, key, mut entries) = match pending.take() {
                    None => (batch.name.clone(), batch.key.clone(), Vec::new()),
                    Some(Pending::Listing { name, key, entries })
                        if name == batch.name && key == batch.key =>
                    {
                        (name, key, entries)
                    }
                    Some(_) => {
                        return Err(Status::invalid_argument(format!(
                            "context {:?}: listing sent while another context is syncing",
                            batch.name
                        )))
                    }
                };
                if data.contexts.contains_key(&name) {
                    return Err(Status::invalid_argument(format!(
                        "context {name:?} synced twice in one session"
                    )));
                }
                if keys_held.contains(&key) {
                    return Err(Status::invalid_argument(format!(
                        "context {name:?}: its key is already synced in this session"
                    )));
                }
                entries.extend(batch.entries);
                if entries.len() > crate::sync::MAX_ENTRIES {
                    return Err(Status::invalid_argument(format!(
                        "context {name:?}: more than {} entries",
                        crate::sync::MAX_ENTRIES
                    )));
                }
                if !batch.last {
                    pending = Some(Pending::Listing { name, key, entries });
                    continue;
                }
                daemon
                    .transfer
                    .entries_listed
                    .fetch_add(entries.len() as u64, Ordering::Relaxed);
                let dir = daemon.copies.dir_of(&key).map_err(sync_status)?;
                // A copy that is already current is shared at once, without waiting for builds
                // that read it.
                let shared = daemon.copies.lock_shared(&key).await.map_err(sync_status)?;
                let (current, entries) = {
                    let dir = dir.clone();
                    tokio::task::spawn_blocking(move || {
                        (crate::sync::is_current(&dir, &entries), entries)
                    })
                    .await
                    .map_err(|e| Status::internal(format!("sync task failed: {e}")))?
                };
                if current {
                    keys_held.push(key);
                    send(
                        &tx,
                        session_reply::Reply::Need(proto::NeedFiles {
                            name: name.clone(),
                            indexes: Vec::new(),
                        }),
                    )
                    .await?;
                    daemon
                        .transfer
                        .contexts_synced
                        .fetch_add(1, Ordering::Relaxed);
                    data.holds.push(Arc::new(shared));
                    data.contexts.insert(name.clone(), dir.join("tree"));
                    let synced = proto::ContextSynced {
                        name,
                        files_received: 0,
                        bytes_received: 0,
                        entries: entries.len() as u64,
                    };
                    send(&tx, session_reply::Reply::Synced(synced)).await?;
                    continue;
                }
                drop(shared);
                let hold = daemon.copies.lock(&key).await.map_err(sync_status)?;
                let context = name.clone();
                let incoming =
                    tokio::task::spawn_blocking(move || Incoming::plan(&context, &dir, entries))
                        .await
                        .map_err(|e| Status::internal(format!("sync task failed: {e}")))?
                        .map_err(sync_status)?;
                keys_held.push(key);
                let indexes = incoming.needed().to_vec();
                send(
                    &tx,
                    session_reply::Reply::Need(proto::NeedFiles {
                        name: name.clone(),
                        indexes,
                    }),
                )
                .await?;
                pending = Some(Pending::Receiving {
                    name,
                    incoming: Box::new(incoming),
                    hold,
                });
                pending = finish_if_complete(&daemon, pending, &mut data, &tx).await?;
            }
            session_message::Message::File(chunk) => {
                let Some(Pending::Receiving { name, incoming, .. }) = pending.as_mut() else {
                    return Err(Status::invalid_argument(format!(
                        "file data for context {:?} that is not syncing",
                        chunk.name
                    )));
                };
                if *name != chunk.name {
                    return Err(Status::invalid_argument(format!(
                        "file data for context {:?} while {name:?} is syncing",
                        chunk.name
                    )));
                }
                let counters = &daemon.transfer;
                tokio::task::block_in_place(|| {
                    incoming.receive(chunk.index, &chunk.data, chunk.eof, counters)
                })
                .map_err(sync_status)?;
                pending = finish_if_complete(&daemon, pending, &mut data, &tx).await?;
            }
            session_message::Message::Secret(secret) => {
                data.secrets.insert(secret.id, secret.value);
            }
            session_message::Message::Commit(_) => {
                if pending.is_some() {
                    return Err(Status::invalid_argument(
                        "commit while a context is still syncing",
                    ));
                }
                daemon.sessions.publish(&id, data.clone());
                send(&tx, session_reply::Reply::Ready(proto::Ready {})).await?;
            }
        }
    }
    Ok(())
}

/// When every asked-for file of the syncing context has arrived: finishes the copy, records it in
/// the session (held shared from now on) and tells the client.
async fn finish_if_complete(
    daemon: &Daemon,
    pending: Option<Pending>,
    data: &mut SessionData,
    tx: &mpsc::Sender<Result<SessionReply, Status>>,
) -> Result<Option<Pending>, Status> {
    let Some(Pending::Receiving {
        name,
        incoming,
        hold,
    }) = pending
    else {
        return Ok(pending);
    };
    let complete = incoming.needed().len() == incoming_done(&incoming);
    if !complete {
        return Ok(Some(Pending::Receiving {
            name,
            incoming,
            hold,
        }));
    }
    let tree = incoming.tree().to_path_buf();
    let stats = tokio::task::spawn_blocking(move || incoming.finish())
        .await
        .map_err(|e| Status::internal(format!("sync task failed: {e}")))?
        .map_err(sync_status)?;
    daemon
        .transfer
        .contexts_synced
        .fetch_add(1, Ordering::Relaxed);
    data.holds.push(Arc::new(hold.downgrade()));
    data.contexts.insert(name.clone(), tree);
    let synced = proto::ContextSynced {
        name,
        files_received: stats.files,
        bytes_received: stats.bytes,
        entries: stats.entries,
    };
    send(tx, session_reply::Reply::Synced(synced)).await?;
    Ok(None)
}

/// How many asked-for files are complete.
fn incoming_done(incoming: &Incoming) -> usize {
    incoming.received()
}

/// The next message's payload, or None at the end of the stream.
async fn next(
    inbound: &mut Streaming<SessionMessage>,
) -> Result<Option<session_message::Message>, Status> {
    loop {
        match inbound.message().await? {
            None => return Ok(None),
            Some(SessionMessage { message: Some(m) }) => return Ok(Some(m)),
            // An empty message (a newer client's unknown kind): skip it.
            Some(SessionMessage { message: None }) => continue,
        }
    }
}

async fn send(
    tx: &mpsc::Sender<Result<SessionReply, Status>>,
    reply: session_reply::Reply,
) -> Result<(), Status> {
    tx.send(Ok(SessionReply { reply: Some(reply) }))
        .await
        .map_err(|_| Status::cancelled("the client closed the session"))
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_SESSION_ID
}

/// A sync failure as a gRPC status: the client's fault unless the daemon's disk failed.
fn sync_status(e: SyncError) -> Status {
    match e {
        SyncError::Io { .. } => Status::internal(e.to_string()),
        _ => Status::invalid_argument(e.to_string()),
    }
}
