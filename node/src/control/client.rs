//! The client side: a daemon's control socket, or the home in-process.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use clive_cas::Progress;
use clive_trust::Clock;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWriteExt},
    net::{UnixStream, unix::OwnedWriteHalf},
};

use super::{
    protocol::{ErrorMessage, Hello, MAX_REPLY, PROTOCOL, VERSION},
    wire::{
        DATA_CHUNK, Kind, ProgressSnapshot, WireError, decode_json, read_frame, write_frame,
        write_json,
    },
};
use crate::{
    Home, Node,
    api::{
        ApiError, Call, CallContext, CallOutput, NameReply, Reply, Request, handle,
        names::{read_only_reply, receipt_reply},
    },
    names::StateView,
};

/// How long a daemon may take to answer a hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// How long `stop` waits for the daemon to be gone.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a publish whose connection broke waits to learn whether it was
/// committed.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// How often [`ControlClient::wait`] tries the socket.
const WAIT_INTERVAL: Duration = Duration::from_millis(50);

/// Where calls go: the daemon that owns the home, or the home opened here.
#[derive(Debug)]
pub enum Connection {
    /// No daemon runs: this process owns the home.
    InProcess(Box<Node>),
    /// A daemon owns the home; calls go through its control socket.
    Daemon(ControlClient),
    /// No daemon runs and the calls only read state: this process opened
    /// just `state.redb`.
    State {
        /// The state, opened read-only.
        view: StateView,
        /// Decides what has expired.
        clock: Arc<dyn Clock>,
    },
}

impl Connection {
    /// The daemon if one answers on the home's control socket, else the home
    /// opened in-process (which fails, saying who holds it, if another
    /// process does).
    /// `clock` is the node's, when it is opened here.
    pub async fn open(home: &Home, clock: Arc<dyn Clock>) -> Result<Connection, ApiError> {
        if let Some(client) = ControlClient::connect(home).await? {
            return Ok(Connection::Daemon(client));
        }
        Ok(Connection::InProcess(Box::new(
            Node::open(home, clock).await?,
        )))
    }

    /// Like [`Connection::open`], but when no daemon runs and every request
    /// is [read-only](Request::read_only), opens only the state. When the
    /// state cannot be opened read-only (another process has it open for
    /// writing, or it needs recovery), warns why and opens the
    /// node.
    pub async fn open_for(
        home: &Home,
        requests: &[Request],
        clock: Arc<dyn Clock>,
    ) -> Result<Connection, ApiError> {
        if requests.iter().all(Request::read_only) && !requests.is_empty() {
            if let Some(client) = ControlClient::connect(home).await? {
                return Ok(Connection::Daemon(client));
            }
            match StateView::open(home) {
                Ok(view) => return Ok(Connection::State { view, clock }),
                Err(e) => tracing::warn!(
                    "the state cannot be opened read-only ({}): opening the node instead",
                    crate::api::error_chain(&e)
                ),
            }
        }
        Self::open(home, clock).await
    }

    /// Runs one call.
    pub async fn call(&mut self, call: Call, ctx: &mut dyn CallContext) -> Result<Reply, ApiError> {
        match self {
            Connection::InProcess(node) => handle(node, call, ctx).await,
            Connection::Daemon(client) => client.call(call, ctx).await,
            Connection::State { view, clock } => {
                let Request::Name(request) = &call.request else {
                    return Err(needs_node(&call.request));
                };
                let now = clock.now();
                let reply =
                    view.read(|zones, me| read_only_reply(zones, me, request, now).transpose())?;
                reply
                    .map(Reply::Name)
                    .ok_or_else(|| needs_node(&call.request))
            }
        }
    }

    /// Closes the home (in-process) or the connection.
    pub async fn close(self) -> Result<(), ApiError> {
        match self {
            Connection::InProcess(node) => Ok(node.close().await?),
            Connection::Daemon(_) | Connection::State { .. } => Ok(()),
        }
    }
}

/// A client of a running daemon.
#[derive(Debug)]
pub struct ControlClient {
    home: Home,
    path: PathBuf,
    pid: u32,
    /// A connection that said hello and has not carried a call yet.
    ready: Option<UnixStream>,
}

/// Why a connection attempt found no daemon, or failed.
enum Attempt {
    /// Nothing listens there.
    Absent,
    /// Something is wrong.
    Failed(ApiError),
}

impl ControlClient {
    /// The daemon of `home`, or `None` when nothing listens on its control
    /// socket (no socket, or a stale one).
    pub async fn connect(home: &Home) -> Result<Option<ControlClient>, ApiError> {
        let path = home.control_path();
        match hello(&path, HELLO_TIMEOUT).await {
            Ok((stream, pid)) => Ok(Some(ControlClient {
                home: home.clone(),
                path,
                pid,
                ready: Some(stream),
            })),
            Err(Attempt::Absent) => Ok(None),
            Err(Attempt::Failed(e)) => Err(e),
        }
    }

    /// Waits until the daemon of `home` answers, trying every 50 ms for at
    /// most `timeout`.
    pub async fn wait(home: &Home, timeout: Duration) -> Result<ControlClient, ApiError> {
        let path = home.control_path();
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let last = match hello(&path, left.min(HELLO_TIMEOUT)).await {
                Ok((stream, pid)) => {
                    return Ok(ControlClient {
                        home: home.clone(),
                        path,
                        pid,
                        ready: Some(stream),
                    });
                }
                Err(Attempt::Absent) => "nothing listens there".to_owned(),
                Err(Attempt::Failed(e)) => e.to_string(),
            };
            if Instant::now() + WAIT_INTERVAL > deadline {
                return Err(ApiError::Control {
                    path,
                    reason: format!("no daemon answered within {} ({last})", humanize(timeout)),
                });
            }
            tokio::time::sleep(WAIT_INTERVAL).await;
        }
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The control socket.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, e: impl std::fmt::Display) -> ApiError {
        ApiError::Control {
            path: self.path.clone(),
            reason: e.to_string(),
        }
    }

    /// Runs one call in the daemon, streaming standard input and output and
    /// progress through `ctx`.
    pub async fn call(&mut self, call: Call, ctx: &mut dyn CallContext) -> Result<Reply, ApiError> {
        let stream = match self.ready.take() {
            Some(stream) => stream,
            None => match hello(&self.path, HELLO_TIMEOUT).await {
                Ok((stream, _)) => stream,
                Err(Attempt::Absent) => {
                    return Err(self.error("the daemon is no longer running"));
                }
                Err(Attempt::Failed(e)) => return Err(e),
            },
        };
        let (mut rd, mut wr) = stream.into_split();
        let stop = matches!(call.request, Request::Stop);
        let settle = call
            .request
            .receipt()
            .map(|r| (r.to_owned(), call.request.clone()));
        let stdin = call.request.reads_stdin().then(|| ctx.take_stdin());
        if let Err(e) = write_json(&mut wr, Kind::Request, &call).await {
            // The daemon went away between its hello and the request: a
            // publish learns from the state that nothing was committed.
            return match settle {
                Some((receipt, request)) => self.settle(&receipt, &request, e).await,
                None => Err(self.error(e)),
            };
        }
        let progress = ctx.progress();
        let reply = match stdin {
            // A call that reads standard input (`add -`) cannot be cancelled.
            Some(stdin) => {
                let reading = read_reply(&mut rd, ctx.output(), progress.as_ref());
                let pumping = pump_stdin(Some(stdin), &mut wr);
                tokio::pin!(reading, pumping);
                let mut pumped = false;
                loop {
                    tokio::select! {
                        reply = &mut reading => break reply,
                        pumped_all = &mut pumping, if !pumped => {
                            pumped = true;
                            pumped_all?;
                        }
                    }
                }
            }
            None => {
                let mut cancel = ctx.cancel_requested();
                let reading = read_reply(&mut rd, ctx.output(), progress.as_ref());
                tokio::pin!(reading);
                let mut cancel_sent = false;
                loop {
                    tokio::select! {
                        reply = &mut reading => break reply,
                        asked = async { cancel.wait_for(|asked| *asked).await.is_ok() }, if !cancel_sent => {
                            cancel_sent = true;
                            // The answer says what the cancel did; a daemon
                            // that is gone is the reader's to report.
                            if asked {
                                tracing::debug!("asking the daemon to cancel the call");
                                let _ = write_frame(&mut wr, Kind::Cancel, &[]).await;
                            }
                        }
                    }
                }
            }
        };
        let reply = match (reply, settle) {
            (Ok(reply), _) => reply,
            (Err(Failure::Api(e)), _) => return Err(e),
            (Err(Failure::Wire(e)), Some((receipt, request))) => {
                return self.settle(&receipt, &request, e).await;
            }
            (Err(Failure::Wire(e)), None) => return Err(self.error(e)),
        };
        if stop {
            // The daemon closes the connection once it has stopped.
            let gone = tokio::time::timeout(STOP_TIMEOUT, async {
                while let Ok(Some(_)) = read_frame(&mut rd).await {}
            })
            .await;
            if gone.is_err() {
                return Err(self.error(format!(
                    "the daemon (process {}) did not stop within {}",
                    self.pid,
                    humanize(STOP_TIMEOUT)
                )));
            }
        }
        Ok(reply)
    }
}

impl ControlClient {
    /// A publish whose connection broke before its answer (the daemon
    /// stopped, or was killed): learns from the state whether it was
    /// committed, asking whoever holds the state now (a daemon started
    /// since, or the state file itself once no process has it open). The
    /// publish's answer when it was; an error saying nothing was published
    /// when it was not; an error saying it cannot tell when the daemon that
    /// had it still runs and has not committed it yet.
    async fn settle(
        &self,
        receipt: &str,
        request: &Request,
        lost: WireError,
    ) -> Result<Reply, ApiError> {
        let ask = Request::Name(crate::NameRequest::Receipt {
            receipt: receipt.to_owned(),
        });
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            let mut still_running = false;
            let answer = match hello(&self.path, HELLO_TIMEOUT).await {
                Ok((stream, pid)) => {
                    still_running = pid == self.pid;
                    let (mut rd, mut wr) = stream.into_split();
                    match write_json(&mut wr, Kind::Request, &Call::here(ask.clone())?).await {
                        Ok(()) => read_reply(
                            &mut rd,
                            CallOutput {
                                stdout: &mut tokio::io::sink(),
                                stderr: &mut tokio::io::sink(),
                            },
                            &clive_cas::NoProgress,
                        )
                        .await
                        .ok(),
                        Err(_) => None,
                    }
                }
                Err(_) => receipt_from_state(&self.home, receipt),
            };
            match answer {
                Some(Reply::Name(NameReply::NamesPublished(all))) if !all.is_empty() => {
                    return Ok(Reply::Name(match request {
                        Request::Name(crate::NameRequest::Publish { more, .. })
                            if !more.is_empty() =>
                        {
                            NameReply::NamesPublished(all)
                        }
                        _ => match all.into_iter().next() {
                            Some(one) => NameReply::NamePublished(one),
                            None => NameReply::NamesPublished(Vec::new()),
                        },
                    }));
                }
                Some(Reply::Name(NameReply::NamesPublished(_))) if !still_running => {
                    return Err(self.error(format!(
                        "the daemon stopped before the publish was committed ({lost}): nothing \
                         was published; run it again"
                    )));
                }
                _ => {}
            }
            if Instant::now() + WAIT_INTERVAL > deadline {
                return Err(self.error(format!(
                    "the connection to the daemon was lost ({lost}): the publish may or may not \
                     have happened; run `clive-node name resolve NAME` to see"
                )));
            }
            tokio::time::sleep(WAIT_INTERVAL).await;
        }
    }
}

/// Answers a receipt lookup from the home's state while no daemon runs.
/// A state last written by a killed process may need redb's recovery,
/// which a read-only open cannot do: then, when no process holds the home,
/// it is opened for writing under the home lock, which recovers it, and
/// read there. Either way a damaged state is no answer, not a panic.
fn receipt_from_state(home: &Home, receipt: &str) -> Option<Reply> {
    let reply = match StateView::open(home) {
        Ok(view) => view.read(|zones, _| receipt_reply(zones, receipt)),
        Err(_) => {
            let _lock = crate::HomeLock::acquire(home).ok()?;
            let db = crate::statedb::open_state(home).ok()?;
            let zones = clive_naming::Zones::new(Arc::new(db));
            crate::statedb::read_state(home, || receipt_reply(&zones, receipt))
        }
    };
    reply.ok().map(Reply::Name)
}

/// The refusal of a request that is not read-only by a connection that
/// opened only the state.
fn needs_node(request: &Request) -> ApiError {
    tracing::debug!(?request, "not read-only");
    ApiError::Invalid {
        reason: "this request needs the whole node".into(),
    }
}

fn humanize(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// Connects and exchanges hellos.
async fn hello(path: &Path, timeout: Duration) -> Result<(UnixStream, u32), Attempt> {
    let failed = |reason: String| {
        Attempt::Failed(ApiError::Control {
            path: path.to_owned(),
            reason,
        })
    };
    let mut stream = match UnixStream::connect(path).await {
        Ok(stream) => stream,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Err(Attempt::Absent);
        }
        Err(e) => return Err(failed(format!("cannot connect: {e}"))),
    };
    let exchange = async {
        write_json(&mut stream, Kind::Hello, &Hello::new(None)).await?;
        read_frame(&mut stream).await
    };
    let frame = match tokio::time::timeout(timeout, exchange).await {
        Err(_) => {
            return Err(failed(format!(
                "the daemon did not answer within {}",
                humanize(timeout)
            )));
        }
        Ok(Err(e)) => return Err(failed(e.to_string())),
        // Accepted, then closed: a daemon on its way out.
        Ok(Ok(None)) => return Err(Attempt::Absent),
        Ok(Ok(Some(frame))) => frame,
    };
    match frame.kind {
        Kind::Hello => {
            let hello: Hello =
                decode_json("hello", &frame.payload).map_err(|e| failed(e.to_string()))?;
            if hello.protocol != PROTOCOL || hello.version != VERSION {
                return Err(failed(format!(
                    "the daemon speaks {} version {}, this client {PROTOCOL} version {VERSION}",
                    hello.protocol, hello.version
                )));
            }
            Ok((stream, hello.pid.unwrap_or(0)))
        }
        Kind::Error => {
            let error: ErrorMessage =
                decode_json("error", &frame.payload).map_err(|e| failed(e.to_string()))?;
            Err(failed(error.message))
        }
        got => Err(failed(
            WireError::Unexpected {
                expected: "HELLO",
                got,
            }
            .to_string(),
        )),
    }
}

/// A call that failed in the protocol, or with an error of its own.
pub(crate) enum Failure {
    Wire(WireError),
    Api(ApiError),
}

impl From<WireError> for Failure {
    fn from(e: WireError) -> Self {
        Failure::Wire(e)
    }
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Failure::Api(e)
    }
}

/// Reads data, progress and finally the reply or error of a call.
pub(crate) async fn read_reply<R: AsyncRead + Unpin>(
    rd: &mut R,
    out: CallOutput<'_>,
    progress: &dyn Progress,
) -> Result<Reply, Failure> {
    let CallOutput { stdout, stderr } = out;
    let mut shown = ProgressSnapshot::default();
    let mut json = Vec::new();
    loop {
        let Some(frame) = read_frame(rd).await? else {
            return Err(Failure::Wire(WireError::Malformed {
                what: "call",
                reason: "the daemon closed the connection before answering".into(),
            }));
        };
        match frame.kind {
            Kind::Data => stdout
                .write_all(&frame.payload)
                .await
                .map_err(|cause| ApiError::Output { cause })?,
            Kind::ErrData => {
                stderr
                    .write_all(&frame.payload)
                    .await
                    .map_err(|cause| ApiError::Output { cause })?;
                stderr
                    .flush()
                    .await
                    .map_err(|cause| ApiError::Output { cause })?;
            }
            Kind::Progress => {
                let now = ProgressSnapshot::decode(&frame.payload)?;
                if let Some(total) = now.total.filter(|_| now.total != shown.total) {
                    progress.set_total(total);
                }
                if now.done > shown.done {
                    progress.advance(now.done - shown.done);
                }
                shown = ProgressSnapshot {
                    total: now.total,
                    done: now.done.max(shown.done),
                };
            }
            Kind::ReplyPart | Kind::Reply => {
                if json.len() + frame.payload.len() > MAX_REPLY {
                    return Err(Failure::Wire(WireError::Malformed {
                        what: "reply",
                        reason: format!("longer than {MAX_REPLY} bytes"),
                    }));
                }
                json.extend_from_slice(&frame.payload);
                if frame.kind == Kind::Reply {
                    stdout
                        .flush()
                        .await
                        .map_err(|cause| ApiError::Output { cause })?;
                    let _ = stderr.flush().await;
                    return Ok(decode_json("reply", &json)?);
                }
            }
            Kind::Error => {
                let _ = stdout.flush().await;
                let error: ErrorMessage = decode_json("error", &frame.payload)?;
                return Err(Failure::Api(ApiError::Remote {
                    message: error.message,
                }));
            }
            got => {
                return Err(Failure::Wire(WireError::Unexpected {
                    expected: "DATA, PROGRESS, REPLY or ERROR",
                    got,
                }));
            }
        }
    }
}

/// Sends standard input as DATA frames and END. A failure to send is left
/// for the reader to explain (the daemon answered, or went away).
async fn pump_stdin(
    stdin: Option<Box<dyn AsyncRead + Unpin + Send>>,
    wr: &mut OwnedWriteHalf,
) -> Result<(), ApiError> {
    let Some(mut stdin) = stdin else {
        return Ok(());
    };
    let mut buf = vec![0u8; DATA_CHUNK];
    loop {
        let n = stdin
            .read(&mut buf)
            .await
            .map_err(|cause| ApiError::Input { cause })?;
        let sent = if n == 0 {
            write_frame(wr, Kind::End, &[]).await
        } else {
            write_frame(wr, Kind::Data, &buf[..n]).await
        };
        if sent.is_err() || n == 0 {
            return Ok(());
        }
    }
}
