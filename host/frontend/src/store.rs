//! Per-build store state: the sandboxed WASI context, the resource table, the memory limiter,
//! the guest clock behind the deadline, and the log sink.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::gateway::{FrontendEvent, Gateway, LogLevel, Warning};
use crate::limits::{truncate_utf8, MAX_LOG_BYTES_PER_BUILD, MAX_LOG_LINE_BYTES};

/// Stderr lines kept to explain a crash (a Rust panic message is the last one).
pub const STDERR_TAIL_LINES: usize = 8;

/// Most table elements (function references) a frontend may grow its tables to.
pub const MAX_TABLE_ELEMENTS: usize = 1 << 20;

/// The data of a build's `Store`.
pub(crate) struct HostState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) gateway: Arc<dyn Gateway>,
    pub(crate) log: Arc<LogSink>,
    pub(crate) memory: MemoryLimiter,
    pub(crate) clock: GuestClock,
    pub(crate) live_refs: usize,
}

impl HostState {
    /// State for one build: no preopens, no sockets, no env, no args; stdio to the gateway log.
    pub(crate) fn new(gateway: Arc<dyn Gateway>, memory_limit: u64, deadline: Duration) -> Self {
        let log = Arc::new(LogSink::new(gateway.clone()));
        let wasi = WasiCtx::builder()
            .stdout(LogOutput {
                sink: log.clone(),
                level: LogLevel::Info,
            })
            .stderr(LogOutput {
                sink: log.clone(),
                level: LogLevel::Warn,
            })
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        HostState {
            wasi,
            table: ResourceTable::new(),
            gateway,
            log,
            memory: MemoryLimiter {
                limit: memory_limit,
                total: 0,
                pending: None,
                exceeded: None,
            },
            clock: GuestClock {
                started: Instant::now(),
                host_time: Duration::ZERO,
                deadline,
            },
            live_refs: 0,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Guest time = wall time since the build started minus time spent in gateway calls.
pub(crate) struct GuestClock {
    pub(crate) started: Instant,
    pub(crate) host_time: Duration,
    pub(crate) deadline: Duration,
}

impl GuestClock {
    /// Guest time left before the deadline; `None` once it has passed.
    pub(crate) fn remaining(&self) -> Option<Duration> {
        let guest = self.started.elapsed().saturating_sub(self.host_time);
        self.deadline.checked_sub(guest).filter(|d| !d.is_zero())
    }
}

/// Raised (as a trap) when the frontend's memory would grow past the limit.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {limit} bytes exceeded: {requested} bytes requested")]
pub(crate) struct MemoryLimitExceeded {
    pub(crate) limit: u64,
    pub(crate) requested: u64,
}

/// Raised (as a trap) when the frontend's guest time passes the deadline.
#[derive(Debug, thiserror::Error)]
#[error("deadline exceeded")]
pub(crate) struct DeadlineExceeded;

/// Caps the total linear memory of a build's instance.
pub(crate) struct MemoryLimiter {
    limit: u64,
    total: u64,
    pending: Option<(u64, u64)>,
    pub(crate) exceeded: Option<u64>,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let wide = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        let (current, desired) = (wide(current), wide(desired));
        let requested = self.total.saturating_sub(current).saturating_add(desired);
        if requested > self.limit {
            self.exceeded = Some(requested);
            return Err(MemoryLimitExceeded {
                limit: self.limit,
                requested,
            }
            .into());
        }
        self.pending = Some((self.total, requested));
        self.total = requested;
        Ok(true)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        if let Some((before, _)) = self.pending.take() {
            self.total = before;
        }
        Ok(())
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// Forwards a build's log lines and warnings to the gateway within a byte budget.
pub(crate) struct LogSink {
    gateway: Arc<dyn Gateway>,
    used: AtomicUsize,
    cut: AtomicBool,
    stderr_tail: Mutex<VecDeque<String>>,
}

impl LogSink {
    fn new(gateway: Arc<dyn Gateway>) -> LogSink {
        LogSink {
            gateway,
            used: AtomicUsize::new(0),
            cut: AtomicBool::new(false),
            stderr_tail: Mutex::new(VecDeque::new()),
        }
    }

    /// The last [`STDERR_TAIL_LINES`] lines the frontend wrote to stderr.
    pub(crate) fn stderr_tail(&self) -> Vec<String> {
        let tail = self.stderr_tail.lock().unwrap_or_else(|p| p.into_inner());
        tail.iter().cloned().collect()
    }

    fn keep_stderr(&self, line: &str) {
        if line.trim().is_empty() {
            return;
        }
        let mut tail = self.stderr_tail.lock().unwrap_or_else(|p| p.into_inner());
        if tail.len() == STDERR_TAIL_LINES {
            tail.pop_front();
        }
        let mut line = line.to_string();
        truncate_utf8(&mut line, 1024);
        tail.push_back(line);
    }

    /// Whether `bytes` more fit the budget (and takes them).
    fn take(&self, bytes: usize) -> bool {
        let before = self.used.fetch_add(bytes, Ordering::Relaxed);
        if before.saturating_add(bytes) <= MAX_LOG_BYTES_PER_BUILD {
            return true;
        }
        if !self.cut.swap(true, Ordering::Relaxed) {
            self.gateway.report(FrontendEvent::Log(
                LogLevel::Warn,
                format!(
                    "frontend output exceeded {MAX_LOG_BYTES_PER_BUILD} bytes \
                     (MAX_LOG_BYTES_PER_BUILD); the rest is dropped"
                ),
            ));
        }
        false
    }

    /// Forwards one log line (cut to [`MAX_LOG_LINE_BYTES`]).
    pub(crate) fn line(&self, level: LogLevel, mut message: String) {
        truncate_utf8(&mut message, MAX_LOG_LINE_BYTES);
        if self.take(message.len()) {
            self.gateway.report(FrontendEvent::Log(level, message));
        }
    }

    /// Forwards one warning (its text fields cut to [`MAX_LOG_LINE_BYTES`]).
    pub(crate) fn warn(&self, mut w: Warning) {
        truncate_utf8(&mut w.message, MAX_LOG_LINE_BYTES);
        w.detail.truncate(64);
        for d in &mut w.detail {
            truncate_utf8(d, MAX_LOG_LINE_BYTES);
        }
        let size = w.message.len() + w.detail.iter().map(String::len).sum::<usize>();
        if self.take(size) {
            self.gateway.report(FrontendEvent::Warn(w));
        }
    }
}

/// The frontend's stdout or stderr, as gateway log lines.
struct LogOutput {
    sink: Arc<LogSink>,
    level: LogLevel,
}

impl IsTerminal for LogOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl LogOutput {
    fn writer(&self) -> LineWriter {
        LineWriter {
            sink: self.sink.clone(),
            level: self.level,
            buf: Vec::new(),
        }
    }
}

impl StdoutStream for LogOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.writer())
    }

    /// Synchronous, unlike the default adapter: every line is reported before `write` returns,
    /// so a panic message is in the log (and the crash error) even when the frontend traps.
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.writer())
    }
}

/// Splits written bytes into lines for the sink.
struct LineWriter {
    sink: Arc<LogSink>,
    level: LogLevel,
    buf: Vec<u8>,
}

impl LineWriter {
    fn emit(&mut self, upto: usize) {
        let rest = self.buf.split_off(upto);
        let mut line = std::mem::replace(&mut self.buf, rest);
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        let line = String::from_utf8_lossy(&line).into_owned();
        if self.level == LogLevel::Warn {
            self.sink.keep_stderr(&line);
        }
        self.sink.line(self.level, line);
    }
}

impl LineWriter {
    fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
        while let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
            self.emit(nl + 1);
        }
        if self.buf.len() >= MAX_LOG_LINE_BYTES {
            self.emit(self.buf.len());
        }
    }
}

impl OutputStream for LineWriter {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(MAX_LOG_LINE_BYTES)
    }
}

#[async_trait::async_trait]
impl Pollable for LineWriter {
    async fn ready(&mut self) {}
}

impl AsyncWrite for LineWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().push(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.buf.is_empty() {
            this.emit(this.buf.len());
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            self.emit(self.buf.len());
        }
    }
}
