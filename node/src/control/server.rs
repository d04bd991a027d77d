//! The daemon side: serves one call per connection, many connections at once.

use std::{
    io,
    os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt},
    path::Path,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    task::{Context, Poll, ready},
    time::Duration,
};

use clive_cas::Progress;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, DuplexStream, ReadBuf},
    net::{
        UnixListener, UnixStream,
        unix::{OwnedReadHalf, OwnedWriteHalf},
    },
    sync::{mpsc, oneshot, watch},
    task::JoinHandle,
};

use super::{
    protocol::{ErrorMessage, Hello, PROTOCOL, VERSION},
    wire::{
        DATA_CHUNK, Frame, Kind, MAX_FRAME, ProgressSnapshot, WireError, decode_json, read_frame,
        write_frame, write_json,
    },
};
use crate::{
    Node, NodeError, PassphraseSource,
    api::{ApiError, Call, CallContext, CallOutput, DaemonInfo, NodeReply, Reply, handle},
};

/// How long a client may take to send its hello, and then its request.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How often progress is sent while it changes.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// Standard input chunks queued for the handler.
const STDIN_QUEUE: usize = 8;

/// What every connection shares.
pub(crate) struct Shared {
    /// The node.
    pub node: Arc<Node>,
    /// The daemon, as calls see it.
    pub daemon: DaemonInfo,
    /// The passphrase of the node's key, unlocked at start.
    pub passphrase: Arc<dyn PassphraseSource + Send + Sync>,
    /// Becomes true when the daemon stops.
    pub shutdown: watch::Receiver<bool>,
    /// Where the connection of a `stop` goes once answered: the daemon
    /// keeps it open until it has stopped.
    pub stop: mpsc::UnboundedSender<OwnedWriteHalf>,
}

/// Binds the control socket at `path` with mode 0600, replacing a stale
/// one. The socket is created in a fresh 0700 directory, restricted, then
/// renamed into place, so it is never reachable with wider permissions.
/// Returns the listener and the socket's inode.
pub(crate) fn bind(path: &Path) -> Result<(UnixListener, u64), ApiError> {
    let io = |what: &str, cause: io::Error| ApiError::Control {
        path: path.to_owned(),
        reason: format!("{what}: {cause}"),
    };
    let parent = path.parent().unwrap_or(Path::new("."));
    let private = parent.join(format!(".c{}", std::process::id()));
    match std::fs::remove_dir_all(&private) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("removing a leftover directory", e)),
    }
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&private)
        .map_err(|e| io("creating a private directory", e))?;
    let temp = private.join("s");
    let bound = (|| {
        let listener =
            std::os::unix::net::UnixListener::bind(&temp).map_err(|e| io("binding", e))?;
        std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| io("restricting to mode 0600", e))?;
        std::fs::rename(&temp, path).map_err(|e| io("moving into place", e))?;
        let ino = std::fs::symlink_metadata(path)
            .map_err(|e| io("reading", e))?
            .ino();
        listener
            .set_nonblocking(true)
            .map_err(|e| io("configuring", e))?;
        let listener = UnixListener::from_std(listener).map_err(|e| io("listening", e))?;
        Ok((listener, ino))
    })();
    let _ = std::fs::remove_file(&temp);
    let _ = std::fs::remove_dir(&private);
    bound
}

/// Removes the control socket if it is still the one bound (inode `ino`).
pub(crate) fn unlink(path: &Path, ino: u64) {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.ino() == ino)
        && let Err(e) = std::fs::remove_file(path)
    {
        tracing::warn!("removing {}: {e}", path.display());
    }
}

/// Says why to the client and closes. Failures to say so are ignored: the
/// client may be gone.
pub(crate) async fn refuse(mut stream: UnixStream, message: &str) {
    let _ = send_error(&mut stream, message).await;
}

async fn send_error<W: AsyncWrite + Unpin>(w: &mut W, message: &str) -> Result<(), WireError> {
    let message = ErrorMessage {
        message: message.to_owned(),
    };
    write_json(w, Kind::Error, &message).await
}

/// The uid this process runs as.
fn own_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Serves one connection: hello, one call, its reply.
pub(crate) async fn serve_connection(stream: UnixStream, shared: Arc<Shared>) {
    match stream.peer_cred() {
        Ok(cred) if cred.uid() == own_uid() => {}
        Ok(cred) => {
            tracing::warn!(uid = cred.uid(), "refused a control client of another user");
            return;
        }
        Err(e) => {
            tracing::warn!("refused a control client whose uid cannot be read: {e}");
            return;
        }
    }
    let (mut rd, mut wr) = stream.into_split();
    let mut shutdown = shared.shutdown.clone();
    let accepted = tokio::select! {
        biased;
        () = stopping(&mut shutdown) => None,
        accepted = accept_call(&mut rd, &mut wr, shared.daemon.pid) => Some(accepted),
    };
    let call = match accepted {
        None => {
            let _ = send_error(&mut wr, "the daemon is stopping").await;
            return;
        }
        Some(Ok(Some(call))) => call,
        Some(Ok(None)) => return,
        Some(Err(e)) => {
            tracing::debug!("control client refused: {e}");
            let _ = send_error(&mut wr, &e.to_string()).await;
            return;
        }
    };
    tracing::debug!(request = ?call.request, "control call");
    run_call(call, rd, wr, &shared).await;
}

async fn next_frame(rd: &mut OwnedReadHalf) -> Result<Option<Frame>, WireError> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, read_frame(rd)).await {
        Ok(frame) => frame,
        Err(_) => Err(WireError::Timeout {
            secs: HANDSHAKE_TIMEOUT.as_secs(),
        }),
    }
}

/// Hello both ways, then the request; `None` if the client left.
async fn accept_call(
    rd: &mut OwnedReadHalf,
    wr: &mut OwnedWriteHalf,
    pid: u32,
) -> Result<Option<Call>, WireError> {
    let Some(frame) = next_frame(rd).await? else {
        return Ok(None);
    };
    if frame.kind != Kind::Hello {
        return Err(WireError::Unexpected {
            expected: "HELLO",
            got: frame.kind,
        });
    }
    let hello: Hello = decode_json("hello", &frame.payload)?;
    if hello.protocol != PROTOCOL || hello.version != VERSION {
        return Err(WireError::Malformed {
            what: "hello",
            reason: format!(
                "this daemon speaks {PROTOCOL} version {VERSION}, not {} version {}",
                hello.protocol, hello.version
            ),
        });
    }
    write_json(wr, Kind::Hello, &Hello::new(Some(pid))).await?;
    let Some(frame) = next_frame(rd).await? else {
        return Ok(None);
    };
    if frame.kind != Kind::Request {
        return Err(WireError::Unexpected {
            expected: "REQUEST",
            got: frame.kind,
        });
    }
    Ok(Some(decode_json("request", &frame.payload)?))
}

/// Why a call was abandoned before its handler finished.
enum Abandon {
    /// The client left.
    Gone,
    /// The client broke the protocol.
    Violation(String),
    /// The daemon is stopping.
    Stopping,
}

/// Runs a call in its own task while relaying its output and progress, and
/// cancels it if the client leaves or the daemon stops.
async fn run_call(call: Call, rd: OwnedReadHalf, mut wr: OwnedWriteHalf, shared: &Shared) {
    let (stdin_tx, stdin_rx) = mpsc::channel(STDIN_QUEUE);
    let (gone_tx, mut gone_rx) = oneshot::channel();
    let (cancel_tx, cancel_rx) = watch::channel(false);
    let stdin_tx = call.request.reads_stdin().then_some(stdin_tx);
    let _watcher = Task(tokio::spawn(watch_client(rd, stdin_tx, gone_tx, cancel_tx)));

    let relay = Arc::new(Relay::default());
    let (out_w, mut out_r) = tokio::io::duplex(DATA_CHUNK);
    let (err_w, mut err_r) = tokio::io::duplex(DATA_CHUNK);
    let ctx = ServerContext {
        progress: relay.clone(),
        stdout: out_w,
        stderr: err_w,
        cancel: cancel_rx,
        stdin: Some(Box::new(ChannelReader {
            rx: stdin_rx,
            buf: Vec::new(),
            at: 0,
        })),
        passphrase: shared.passphrase.clone(),
        daemon: shared.daemon.clone(),
    };
    let node = shared.node.clone();
    let mut handler = Task(tokio::spawn(async move {
        let mut ctx = ctx;
        handle(&node, call, &mut ctx).await
    }));

    let mut shutdown = shared.shutdown.clone();
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut sent = ProgressSnapshot::default();
    let mut buf = vec![0u8; DATA_CHUNK];
    let mut err_buf = vec![0u8; DATA_CHUNK];
    let mut out_open = true;
    let mut err_open = true;
    let outcome = loop {
        tokio::select! {
            biased;
            () = stopping(&mut shutdown) => break Err(Abandon::Stopping),
            why = &mut gone_rx => break Err(why.unwrap_or(Abandon::Gone)),
            read = out_r.read(&mut buf), if out_open => match read {
                Ok(0) | Err(_) => out_open = false,
                Ok(n) => {
                    if write_frame(&mut wr, Kind::Data, &buf[..n]).await.is_err() {
                        break Err(Abandon::Gone);
                    }
                }
            },
            read = err_r.read(&mut err_buf), if err_open => match read {
                Ok(0) | Err(_) => err_open = false,
                Ok(n) => {
                    if write_frame(&mut wr, Kind::ErrData, &err_buf[..n]).await.is_err() {
                        break Err(Abandon::Gone);
                    }
                }
            },
            _ = tick.tick() => {
                let now = relay.snapshot();
                if now != sent {
                    if write_frame(&mut wr, Kind::Progress, &now.encode()).await.is_err() {
                        break Err(Abandon::Gone);
                    }
                    sent = now;
                }
            },
            joined = &mut handler.0 => break Ok(joined.unwrap_or_else(|e| {
                Err(ApiError::Node {
                    cause: NodeError::Io {
                        context: "running the call".into(),
                        cause: io::Error::other(e.to_string()),
                    },
                })
            })),
        }
    };
    let result = match outcome {
        Ok(result) => result,
        Err(why) => {
            handler.cancel().await;
            let message = match why {
                Abandon::Gone => return,
                Abandon::Violation(message) => message,
                Abandon::Stopping => "the daemon is stopping; the call was cancelled".to_owned(),
            };
            tracing::debug!("control call abandoned: {message}");
            let _ = send_error(&mut wr, &message).await;
            return;
        }
    };
    // The handler is done, so its end of the output pipe is closed: send
    // what it wrote last, the last progress, then the answer.
    if send_rest(&mut wr, &mut out_r, Kind::Data, &mut buf, out_open)
        .await
        .is_err()
        || send_rest(&mut wr, &mut err_r, Kind::ErrData, &mut buf, err_open)
            .await
            .is_err()
    {
        return;
    }
    let now = relay.snapshot();
    if now != sent
        && write_frame(&mut wr, Kind::Progress, &now.encode())
            .await
            .is_err()
    {
        return;
    }
    match result {
        Ok(reply) => {
            let stopping = matches!(reply, Reply::Node(NodeReply::Stopping(_)));
            if send_reply(&mut wr, &reply).await.is_ok() && stopping {
                let _ = shared.stop.send(wr);
            }
        }
        Err(e) => {
            let _ = send_error(&mut wr, &e.to_string()).await;
        }
    }
}

/// Resolves once the daemon stops (or can no longer say).
async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stopping| *stopping).await;
}

/// Sends what is left in one of the call's streams as `kind` frames.
async fn send_rest(
    wr: &mut OwnedWriteHalf,
    out_r: &mut DuplexStream,
    kind: Kind,
    buf: &mut [u8],
    open: bool,
) -> Result<(), WireError> {
    if !open {
        return Ok(());
    }
    loop {
        match out_r.read(buf).await {
            Ok(0) | Err(_) => return Ok(()),
            Ok(n) => write_frame(wr, kind, &buf[..n]).await?,
        }
    }
}

/// Sends a reply, in as many frames as its JSON needs.
pub(crate) async fn send_reply<W: AsyncWrite + Unpin>(
    wr: &mut W,
    reply: &Reply,
) -> Result<(), WireError> {
    let json = match serde_json::to_vec(reply) {
        Ok(json) => json,
        Err(e) => {
            return send_error(wr, &format!("cannot encode the reply: {e}")).await;
        }
    };
    let piece = (MAX_FRAME - 1) as usize;
    let mut rest = &json[..];
    while rest.len() > piece {
        let (part, more) = rest.split_at(piece);
        write_frame(wr, Kind::ReplyPart, part).await?;
        rest = more;
    }
    write_frame(wr, Kind::Reply, rest).await
}

/// Reads the client's frames during a call: its standard input, if the call
/// reads it, and then nothing until it leaves. Reports a departure or a
/// violation on `gone` before closing standard input, so a client that
/// leaves mid-stream never looks like the end of its input.
async fn watch_client(
    mut rd: OwnedReadHalf,
    mut stdin: Option<mpsc::Sender<io::Result<Vec<u8>>>>,
    gone: oneshot::Sender<Abandon>,
    cancel: watch::Sender<bool>,
) {
    // Once the handler stops reading, the rest of the input is dropped.
    let mut reading = stdin.is_some();
    let why = loop {
        match read_frame(&mut rd).await {
            Ok(Some(Frame {
                kind: Kind::Data,
                payload,
            })) if reading => {
                if let Some(tx) = &stdin
                    && tx.send(Ok(payload)).await.is_err()
                {
                    stdin = None;
                }
            }
            Ok(Some(Frame {
                kind: Kind::End, ..
            })) if reading => {
                reading = false;
                stdin = None;
            }
            Ok(Some(Frame {
                kind: Kind::Cancel, ..
            })) => {
                tracing::debug!("the client cancels the call");
                cancel.send_replace(true);
            }
            Ok(Some(frame)) => {
                break Abandon::Violation(
                    WireError::Unexpected {
                        expected: "nothing during a call",
                        got: frame.kind,
                    }
                    .to_string(),
                );
            }
            Ok(None) => break Abandon::Gone,
            Err(e) => break Abandon::Violation(e.to_string()),
        }
    };
    let _ = gone.send(why);
    if let Some(tx) = stdin {
        let _ = tx.try_send(Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the client left before the end of its standard input",
        )));
    }
}

/// A task aborted when dropped.
struct Task<T>(JoinHandle<T>);

impl<T> Task<T> {
    /// Aborts the task and waits until it is gone (its future dropped).
    async fn cancel(&mut self) {
        self.0.abort();
        let _ = (&mut self.0).await;
    }
}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Progress of a call, read by the connection and sent as it changes.
#[derive(Default)]
struct Relay {
    known: AtomicBool,
    total: AtomicU64,
    done: AtomicU64,
}

impl Relay {
    fn snapshot(&self) -> ProgressSnapshot {
        ProgressSnapshot {
            total: self
                .known
                .load(Ordering::Acquire)
                .then(|| self.total.load(Ordering::Acquire)),
            done: self.done.load(Ordering::Acquire),
        }
    }
}

impl Progress for Relay {
    fn set_total(&self, bytes: u64) {
        self.total.store(bytes, Ordering::Release);
        self.known.store(true, Ordering::Release);
    }

    fn advance(&self, bytes: u64) {
        self.done.fetch_add(bytes, Ordering::AcqRel);
    }
}

/// The client's standard input, as the handler reads it.
struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Vec<u8>>>,
    buf: Vec<u8>,
    at: usize,
}

impl AsyncRead for ChannelReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        while this.at == this.buf.len() {
            match ready!(this.rx.poll_recv(cx)) {
                Some(Ok(chunk)) => {
                    this.buf = chunk;
                    this.at = 0;
                }
                Some(Err(e)) => return Poll::Ready(Err(e)),
                None => return Poll::Ready(Ok(())),
            }
        }
        let n = (this.buf.len() - this.at).min(out.remaining());
        out.put_slice(&this.buf[this.at..this.at + n]);
        this.at += n;
        Poll::Ready(Ok(()))
    }
}

/// What a call in the daemon streams through.
struct ServerContext {
    progress: Arc<Relay>,
    stdout: DuplexStream,
    stderr: DuplexStream,
    cancel: watch::Receiver<bool>,
    stdin: Option<Box<dyn AsyncRead + Unpin + Send>>,
    passphrase: Arc<dyn PassphraseSource + Send + Sync>,
    daemon: DaemonInfo,
}

impl CallContext for ServerContext {
    fn progress(&self) -> Arc<dyn Progress> {
        self.progress.clone()
    }

    fn output(&mut self) -> CallOutput<'_> {
        CallOutput {
            stdout: &mut self.stdout,
            stderr: &mut self.stderr,
        }
    }

    fn cancel_requested(&self) -> watch::Receiver<bool> {
        self.cancel.clone()
    }

    fn take_stdin(&mut self) -> Box<dyn AsyncRead + Unpin + Send> {
        self.stdin
            .take()
            .unwrap_or_else(|| Box::new(tokio::io::empty()))
    }

    fn passphrase(&self) -> &(dyn PassphraseSource + Sync) {
        &*self.passphrase
    }

    fn daemon(&self) -> Option<DaemonInfo> {
        Some(self.daemon.clone())
    }
}
