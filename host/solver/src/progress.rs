//! Typed progress events, the channel they travel on, and the log handle executors write to.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use hoist_llb::Digest;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// Which output stream of a process a log chunk comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One progress event; serialisable for a `rawjson` progress mode (log data as base64).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ProgressEvent {
    /// A vertex began executing.
    VertexStarted {
        /// Op digest.
        vertex: Digest,
        /// Description shown to the user.
        name: String,
        /// When.
        at: SystemTime,
    },
    /// A vertex's result came from the cache index.
    VertexCached {
        /// Op digest.
        vertex: Digest,
        /// Description shown to the user.
        name: String,
        /// When.
        at: SystemTime,
    },
    /// A vertex finished executing successfully.
    VertexCompleted {
        /// Op digest.
        vertex: Digest,
        /// Description shown to the user.
        name: String,
        /// When.
        at: SystemTime,
        /// Time from start to completion.
        duration: Duration,
    },
    /// A vertex failed (or was cancelled).
    VertexFailed {
        /// Op digest.
        vertex: Digest,
        /// Description shown to the user.
        name: String,
        /// When.
        at: SystemTime,
        /// The error, rendered.
        error: String,
    },
    /// Why a vertex is (not) taken from the cache, compared with the previous build of the
    /// same target; sent once per vertex of an explained solve, before it starts.
    VertexExplained {
        /// Op digest.
        vertex: Digest,
        /// Description shown to the user.
        name: String,
        /// The explanation.
        explanation: crate::explain::Explanation,
    },
    /// Output of a running vertex.
    Log {
        /// Op digest.
        vertex: Digest,
        /// Which stream.
        stream: LogStream,
        /// The bytes (base64 in JSON).
        #[serde(with = "b64")]
        data: Vec<u8>,
        /// When.
        at: SystemTime,
    },
}

mod b64 {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(serde::de::Error::custom)
    }
}

/// Where a job's progress events go; cloneable, and sending never blocks or fails.
#[derive(Debug, Clone, Default)]
pub struct ProgressSender(Option<mpsc::UnboundedSender<ProgressEvent>>);

impl ProgressSender {
    /// A sender and the receiver its events arrive on.
    pub fn channel() -> (ProgressSender, mpsc::UnboundedReceiver<ProgressEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (ProgressSender(Some(tx)), rx)
    }

    /// A sender that drops every event.
    pub fn discard() -> ProgressSender {
        ProgressSender(None)
    }

    /// Sends one event; a closed receiver is ignored.
    pub fn send(&self, ev: ProgressEvent) {
        if let Some(tx) = &self.0 {
            let _ = tx.send(ev);
        }
    }

    fn is_closed(&self) -> bool {
        self.0.as_ref().is_none_or(|tx| tx.is_closed())
    }
}

/// Every job waiting on one execution: events of a shared vertex go to all of them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Subscribers(Arc<Mutex<Vec<ProgressSender>>>);

impl Subscribers {
    pub(crate) fn new(first: ProgressSender) -> Subscribers {
        Subscribers(Arc::new(Mutex::new(vec![first])))
    }

    pub(crate) fn add(&self, p: ProgressSender) {
        let mut subs = self.0.lock().unwrap_or_else(|e| e.into_inner());
        subs.retain(|s| !s.is_closed());
        subs.push(p);
    }

    pub(crate) fn send(&self, ev: ProgressEvent) {
        let subs = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let [only] = subs.as_slice() {
            only.send(ev);
        } else {
            subs.iter().for_each(|s| s.send(ev.clone()));
        }
    }
}

/// The handle an executor writes a vertex's process output to.
#[derive(Debug, Clone)]
pub struct LogSink {
    vertex: Digest,
    subs: Subscribers,
}

impl LogSink {
    pub(crate) fn new(vertex: Digest, subs: Subscribers) -> LogSink {
        LogSink { vertex, subs }
    }

    /// A sink that drops everything (for executors used outside a solve).
    pub fn discard(vertex: Digest) -> LogSink {
        LogSink {
            vertex,
            subs: Subscribers::default(),
        }
    }

    /// Reports a chunk of output on `stream`.
    pub fn write(&self, stream: LogStream, data: &[u8]) {
        self.subs.send(ProgressEvent::Log {
            vertex: self.vertex,
            stream,
            data: data.to_vec(),
            at: SystemTime::now(),
        });
    }

    /// Reports a chunk of standard output.
    pub fn stdout(&self, data: &[u8]) {
        self.write(LogStream::Stdout, data);
    }

    /// Reports a chunk of standard error.
    pub fn stderr(&self, data: &[u8]) {
        self.write(LogStream::Stderr, data);
    }
}
