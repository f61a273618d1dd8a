//! Pipelines (many commands, one write, non-atomic), transactions (`MULTI`/`EXEC`, atomic,
//! a result per command) and optimistic transactions (`WATCH`, on a connection of their
//! own, retried when a watched key changed).

use crate::net::wire::Wire;

use crate::client::{Client, describe};
use crate::error::{Error, ErrorKind, Result};
use crate::reply::{Reply, ServerError};

/// Commands queued for one [`Pipeline::exec`] or [`Transaction::exec`]: sent as they are,
/// without a copy (an atomic `redis::Pipeline` wraps them in `MULTI` ... `EXEC` as it
/// writes them).
#[derive(Clone)]
struct Batch {
    pipe: redis::Pipeline,
}

impl Batch {
    fn new(atomic: bool) -> Self {
        let mut pipe = redis::Pipeline::new();
        if atomic {
            pipe.atomic();
        }
        Batch { pipe }
    }

    fn add<A: AsRef<[u8]>>(&mut self, client: &Client, args: &[A]) -> Result<()> {
        self.pipe.add_command(client.build(args)?);
        Ok(())
    }

    fn len(&self) -> usize {
        self.pipe.len()
    }

    fn clear(&mut self) {
        self.pipe.clear();
    }

    /// What the `i`th command is, for messages (worked out only when one is needed).
    fn name(&self, i: usize) -> String {
        let Some(cmd) = self.pipe.cmd_iter().nth(i) else {
            return String::new();
        };
        let args: Vec<&[u8]> = cmd
            .args_iter()
            .take(2)
            .map(|a| match a {
                redis::Arg::Simple(b) => b,
                _ => &b"?"[..],
            })
            .collect();
        describe(&args)
    }

    fn names(&self) -> Vec<String> {
        (0..self.len()).map(|i| self.name(i)).collect()
    }
}

/// A pipeline: commands sent in one write and answered in order. Not atomic: other clients'
/// commands may run between them. Each command's error sits in its own slot.
#[derive(Clone)]
pub struct Pipeline {
    client: Client,
    batch: Batch,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("commands", &self.batch.names())
            .finish()
    }
}

impl Pipeline {
    pub(crate) fn new(client: Client) -> Self {
        Pipeline {
            client,
            batch: Batch::new(false),
        }
    }

    /// Queue a command (checked now: an empty command or an oversized value is an error).
    pub fn add<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<&mut Self> {
        self.batch.add(&self.client, args)?;
        Ok(self)
    }

    /// How many commands are queued.
    pub fn len(&self) -> usize {
        self.batch.len()
    }

    /// Whether no command is queued.
    pub fn is_empty(&self) -> bool {
        self.batch.len() == 0
    }

    /// Forget the queued commands.
    pub fn clear(&mut self) {
        self.batch.clear();
    }

    /// Send the queued commands; one reply per command, in order, a server error as
    /// [`Reply::Error`] in its slot. The queue is kept (exec again to resend).
    pub async fn exec(&self) -> Result<Vec<Reply>> {
        let n = self.batch.len();
        if n == 0 {
            return Ok(Vec::new());
        }
        let vals = self
            .client
            .conn()
            .send_pipeline(&self.batch.pipe)
            .await
            .map_err(|e| e.context(format!("pipeline of {n} commands")))?;
        Ok(vals)
    }
}

/// A transaction: `MULTI`, the queued commands, `EXEC`: atomic, one result per command.
#[derive(Clone)]
pub struct Transaction {
    client: Client,
    batch: Batch,
}

impl std::fmt::Debug for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("commands", &self.batch.names())
            .finish()
    }
}

/// Read the replies of `MULTI, cmd..., EXEC`: the `EXEC` array, or the reason it failed.
/// `Ok(None)` when a `WATCH`ed key changed (`EXEC` answered nil).
fn exec_result(mut replies: Vec<Reply>, batch: &Batch) -> Result<Option<Vec<Reply>>> {
    let n = batch.len();
    if replies.len() != n + 2 {
        return Err(Error::new(
            ErrorKind::Protocol,
            format!(
                "expected {} replies to MULTI/EXEC, got {}",
                n + 2,
                replies.len()
            ),
        ));
    }
    if let Reply::Error(e) = &replies[0] {
        return Err(Error::from(e.clone()).context("MULTI"));
    }
    // A command refused while queueing (wrong arity, unknown command) aborts it all.
    let rejected: Vec<String> = replies[1..=n]
        .iter()
        .enumerate()
        .filter_map(|(i, r)| match r {
            Reply::Error(ServerError { code, message }) => Some(format!(
                "command {i} ({}) was rejected: {code} {message}",
                batch.name(i)
            )),
            _ => None,
        })
        .collect();
    let exec = replies.pop().unwrap_or(Reply::Nil);
    match exec {
        Reply::Array(results) => Ok(Some(results)),
        Reply::Nil => Ok(None),
        Reply::Error(e) => {
            let mut err = Error::from(e);
            if !rejected.is_empty() {
                err = err.context(format!("EXEC ({})", rejected.join("; ")));
            } else {
                err = err.context("EXEC");
            }
            Err(err)
        }
        other => Err(Error::new(
            ErrorKind::Protocol,
            format!("unexpected EXEC reply {:?}", other.kind()),
        )),
    }
}

impl Transaction {
    pub(crate) fn new(client: Client) -> Self {
        Transaction {
            client,
            batch: Batch::new(true),
        }
    }

    /// Queue a command (checked now: an empty command or an oversized value is an error).
    pub fn add<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<&mut Self> {
        self.batch.add(&self.client, args)?;
        Ok(self)
    }

    /// How many commands are queued.
    pub fn len(&self) -> usize {
        self.batch.len()
    }

    /// Whether no command is queued.
    pub fn is_empty(&self) -> bool {
        self.batch.len() == 0
    }

    /// Forget the queued commands.
    pub fn clear(&mut self) {
        self.batch.clear();
    }

    /// Run `MULTI ... EXEC`. One result per command, in order; a command that failed when
    /// it ran (e.g. `WRONGTYPE`) has [`Reply::Error`] in its slot while the others carry
    /// their values. A command refused while queueing aborts the whole transaction: an
    /// `EXECABORT` server error that names the refused command(s).
    pub async fn exec(&self) -> Result<Vec<Reply>> {
        let n = self.batch.len();
        let vals = self
            .client
            .conn()
            .send_pipeline(&self.batch.pipe)
            .await
            .map_err(|e| e.context(format!("MULTI/EXEC of {n} commands")))?;
        match exec_result(vals, &self.batch)? {
            Some(r) => Ok(r),
            // Cannot happen on the shared connection (it never WATCHes).
            None => Err(Error::new(ErrorKind::Watch, "EXEC aborted")),
        }
    }
}

/// An optimistic transaction in progress: `WATCH`ed keys on a connection of its own. Read
/// with [`command`](WatchSession::command), queue writes with
/// [`queue`](WatchSession::queue), then [`exec`](WatchSession::exec).
pub struct WatchSession {
    client: Client,
    conn: Option<Wire>,
    batch: Batch,
}

impl std::fmt::Debug for WatchSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchSession")
            .field("queued", &self.batch.names())
            .finish()
    }
}

impl WatchSession {
    pub(crate) async fn start<K: AsRef<[u8]>>(client: Client, keys: &[K]) -> Result<Self> {
        if keys.is_empty() {
            return Err(Error::invalid("WATCH: give at least one key"));
        }
        let mut args: Vec<&[u8]> = vec![b"WATCH"];
        args.extend(keys.iter().map(|k| k.as_ref()));
        let cmd = client.build(&args)?;
        let conn = client.conn().dedicated().await?;
        let mut s = WatchSession {
            client,
            conn: Some(conn),
            batch: Batch::new(true),
        };
        s.send(&cmd, &describe(&args)).await?;
        Ok(s)
    }

    async fn send(&mut self, cmd: &redis::Cmd, what: &str) -> Result<Reply> {
        let timeout = self.client.conn().response_timeout();
        let Some(conn) = self.conn.as_ref() else {
            return Err(Error::new(ErrorKind::Closed, "the transaction is finished"));
        };
        match tokio::time::timeout(timeout, conn.command(cmd)).await {
            Ok(Ok(Reply::Error(e))) => Err(Error::from(e).context(what)),
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => {
                self.conn = None; // broken: never reuse it
                Err(e.context(what))
            }
            Err(_) => {
                self.conn = None;
                Err(Error::new(
                    ErrorKind::Timeout,
                    format!("no reply within the response timeout of {timeout:?}"),
                )
                .context(what))
            }
        }
    }

    /// Run a command now on the watching connection (reads, typically) and return its reply.
    pub async fn command<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Reply> {
        let cmd = self.client.build(args)?;
        self.send(&cmd, &describe(args)).await
    }

    /// Queue a command for [`exec`](WatchSession::exec).
    pub fn queue<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<()> {
        self.batch.add(&self.client, args)
    }

    /// `MULTI`, the queued commands, `EXEC`. `Ok(None)` when a watched key changed since
    /// `WATCH` (nothing ran); otherwise one result per queued command.
    pub async fn exec(mut self) -> Result<Option<Vec<Reply>>> {
        let n = self.batch.len();
        let timeout = self.client.conn().response_timeout();
        let Some(conn) = self.conn.take() else {
            return Err(Error::new(ErrorKind::Closed, "the transaction is finished"));
        };
        let what = || format!("MULTI/EXEC of {n} commands");
        let vals = match tokio::time::timeout(timeout, conn.pipeline(&self.batch.pipe)).await {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => return Err(e.context(what())),
            Err(_) => {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!("no reply within the response timeout of {timeout:?}"),
                )
                .context(what()));
            }
        };
        // EXEC ends the WATCH: the connection is clean again.
        self.client.conn().put_dedicated(conn);
        exec_result(vals, &self.batch)
    }
}

impl Client {
    /// A new, empty [`Pipeline`].
    pub fn pipeline(&self) -> Pipeline {
        Pipeline::new(self.clone())
    }

    /// A new, empty [`Transaction`] (`MULTI`/`EXEC`).
    pub fn tx(&self) -> Transaction {
        Transaction::new(self.clone())
    }

    /// Start an optimistic transaction: `WATCH keys` on a connection of its own.
    pub async fn watch<K: AsRef<[u8]>>(&self, keys: &[K]) -> Result<WatchSession> {
        WatchSession::start(self.clone(), keys).await
    }
}
