//! [`Batch`]: commands sent together, as a pipeline (one write, answered in order, not
//! atomic) or, with `atomic`, as a `MULTI`/`EXEC` transaction (atomic, a result per
//! command); and optimistic transactions (`WATCH` on a connection of their own, the user's
//! function run again while a watched key changed: [`Client::transaction`]).

use crate::client::{Client, describe};
use crate::error::{Error, ErrorKind, Result};
use crate::net::conn::Dedicated;
use crate::patterns::script::Script;
use crate::reply::{Reply, ServerError};

/// Commands sent together: a pipeline, or with [`atomic`](Batch::is_atomic) a
/// `MULTI`/`EXEC` transaction. Made by [`Client::pipeline`], [`Client::tx`] or
/// [`Client::batch`]. The commands are encoded when added and sent as they are (an atomic
/// batch is wrapped in `MULTI` ... `EXEC` as it is written).
#[derive(Clone)]
pub struct Batch {
    client: Client,
    pipe: redis::Pipeline,
    atomic: bool,
    /// Scripts queued as `EVALSHA` (non-atomic batches): their index and `EVAL` form, sent
    /// after the batch in place of any that the server answered `NOSCRIPT`.
    by_sha: Vec<(usize, redis::Cmd)>,
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("atomic", &self.atomic)
            .field("commands", &self.names())
            .finish()
    }
}

impl Batch {
    pub(crate) fn new(client: Client, atomic: bool) -> Self {
        let mut pipe = redis::Pipeline::new();
        if atomic {
            pipe.atomic();
        }
        Batch {
            client,
            pipe,
            atomic,
            by_sha: Vec::new(),
        }
    }

    /// Queue a command (checked now: an empty command, an oversized value, what
    /// [`Client::command`] refuses, and in a pipeline a blocking command, which would hold up
    /// every call on the shared connection, are errors of kind `InvalidArgument`).
    pub fn add<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<&mut Self> {
        let cmd = self.client.build(args)?;
        if let Some(why) = crate::client::batch_refusal(args, self.atomic) {
            return Err(Error::invalid(format!("{}: {why}", describe(args))));
        }
        self.pipe.add_command(cmd);
        Ok(self)
    }

    /// Queue a run of `script` (see [`Client::run_script`]). In a pipeline a script the
    /// client ran before goes as `EVALSHA`; one the server answers `NOSCRIPT` (it restarted
    /// or flushed its scripts) is sent again as `EVAL` right after the pipeline, so it runs
    /// after the pipeline's later commands in that case. An atomic batch sends the source
    /// (`EVAL`): a transaction cannot run a part again.
    pub fn add_script(
        &mut self,
        script: &Script,
        keys: &[impl AsRef<[u8]>],
        args: &[impl AsRef<[u8]>],
    ) -> Result<&mut Self> {
        let numkeys = keys.len().to_string();
        let by_sha = !self.atomic && script.loaded();
        let cmd = self
            .client
            .build(&script.args(by_sha, numkeys.as_bytes(), keys, args))?;
        if by_sha {
            let eval = self
                .client
                .build(&script.args(false, numkeys.as_bytes(), keys, args))?;
            self.by_sha.push((self.pipe.len(), eval));
        } else {
            // Loaded by this run: later batches may use the SHA.
            script.set_loaded(true);
        }
        self.pipe.add_command(cmd);
        Ok(self)
    }

    /// How many commands are queued.
    pub fn len(&self) -> usize {
        self.pipe.len()
    }

    /// Whether no command is queued.
    pub fn is_empty(&self) -> bool {
        self.pipe.len() == 0
    }

    /// Whether the batch runs as one `MULTI`/`EXEC` transaction.
    pub fn is_atomic(&self) -> bool {
        self.atomic
    }

    /// Forget the queued commands.
    pub fn clear(&mut self) {
        self.pipe.clear();
        self.by_sha.clear();
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

    fn what(&self) -> String {
        let n = self.len();
        if self.atomic {
            format!("MULTI/EXEC of {n} commands")
        } else {
            format!("pipeline of {n} commands")
        }
    }

    /// Send the queued commands; one reply per command, in order. A command that failed
    /// when it ran (e.g. `WRONGTYPE`) has [`Reply::Error`] in its slot while the others
    /// carry their values. Atomic: a command refused while queueing (wrong arity, unknown
    /// command) aborts the whole transaction: an `EXECABORT` server error that names the
    /// refused command(s). The queue is kept (exec again to resend).
    pub async fn exec(&self) -> Result<Vec<Reply>> {
        if self.is_empty() && !self.atomic {
            return Ok(Vec::new());
        }
        let timer = self.client.counters().start();
        let vals = self.client.conn().send_pipeline(&self.pipe).await;
        timer.finish(&vals);
        let mut vals = vals.map_err(|e| e.context(self.what()))?;
        if !self.atomic {
            self.resend_noscript(&mut vals).await?;
            return Ok(vals);
        }
        match exec_result(vals, self)? {
            Some(r) => Ok(r),
            // Cannot happen on the shared connection (it never WATCHes).
            None => Err(Error::new(ErrorKind::Watch, "EXEC aborted")),
        }
    }
}

impl Batch {
    /// Scripts sent by SHA that the server did not know: send them again as `EVAL`, and
    /// put their replies in their slots.
    async fn resend_noscript(&self, vals: &mut [Reply]) -> Result<()> {
        let missing: Vec<&(usize, redis::Cmd)> = self
            .by_sha
            .iter()
            .filter(|(i, _)| matches!(vals.get(*i), Some(Reply::Error(e)) if e.code == "NOSCRIPT"))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::Pipeline::with_capacity(missing.len());
        for (_, cmd) in &missing {
            pipe.add_command((*cmd).clone());
        }
        let again = self
            .client
            .conn()
            .send_pipeline(&pipe)
            .await
            .map_err(|e| e.context(self.what()))?;
        for ((i, _), r) in missing.into_iter().zip(again) {
            vals[*i] = r;
        }
        Ok(())
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

/// An optimistic transaction in progress: `WATCH`ed keys on a connection of its own. Read
/// with [`command`](WatchSession::command), queue writes with
/// [`queue`](WatchSession::queue), then [`exec`](WatchSession::exec).
pub struct WatchSession {
    client: Client,
    conn: Option<Dedicated>,
    /// The writes queued for `EXEC` (atomic).
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
        let conn = client.conn().dedicated(Some(&cmd)).await?;
        let mut s = WatchSession {
            batch: Batch::new(client.clone(), true),
            client,
            conn: Some(conn),
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
        self.batch.add(args).map(drop)
    }

    /// `MULTI`, the queued commands, `EXEC`. `Ok(None)` when a watched key changed since
    /// `WATCH` (nothing ran); otherwise one result per queued command.
    pub async fn exec(mut self) -> Result<Option<Vec<Reply>>> {
        let timeout = self.client.conn().response_timeout();
        let Some(conn) = self.conn.take() else {
            return Err(Error::new(ErrorKind::Closed, "the transaction is finished"));
        };
        let what = || self.batch.what();
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

/// The attempts of an optimistic transaction: the first, then up to `max_retries` more
/// while a watched key changed; then the [`ErrorKind::Watch`] error. The one retry rule of
/// [`Client::transaction`] and its blocking twin.
pub(crate) struct Attempts {
    left: usize,
    max_retries: usize,
}

impl Attempts {
    pub(crate) fn new(max_retries: usize) -> Self {
        Attempts {
            left: max_retries.saturating_add(1),
            max_retries,
        }
    }

    /// Whether another attempt may run (counting it).
    pub(crate) fn next(&mut self) -> bool {
        let more = self.left > 0;
        self.left = self.left.saturating_sub(1);
        more
    }

    /// The error after the last attempt found a watched key changed.
    pub(crate) fn gave_up(&self) -> Error {
        Error::new(
            ErrorKind::Watch,
            format!(
                "a watched key kept changing: gave up after {} attempts",
                self.max_retries.saturating_add(1)
            ),
        )
    }
}

impl Client {
    /// A new, empty pipeline: a non-atomic [`Batch`].
    pub fn pipeline(&self) -> Batch {
        Batch::new(self.clone(), false)
    }

    /// A new, empty `MULTI`/`EXEC` transaction: an atomic [`Batch`].
    pub fn tx(&self) -> Batch {
        Batch::new(self.clone(), true)
    }

    /// A new, empty [`Batch`], atomic (`MULTI`/`EXEC`) or not (a pipeline).
    pub fn batch(&self, atomic: bool) -> Batch {
        Batch::new(self.clone(), atomic)
    }

    /// An optimistic transaction: `WATCH keys` on a connection of its own, run `f` to read
    /// (with [`WatchSession::command`]) and queue writes ([`WatchSession::queue`]), then
    /// `EXEC`. When a watched key changed meanwhile, all of it runs again, up to
    /// `max_retries` more times; then a [`ErrorKind::Watch`] error. An error from `f`
    /// (for example [`Error::aborted`], [`ErrorKind::Aborted`]) gives the transaction up
    /// (nothing queued runs) and is returned as it is.
    ///
    /// ```no_run
    /// # async fn f(c: &redipc::Client) -> redipc::Result<()> {
    /// let replies = c
    ///     .transaction(&["balance"], 5, async |tx| {
    ///         let v = tx.command(&["GET", "balance"]).await?.into_opt_bytes()?;
    ///         let n: i64 = v.map(|v| String::from_utf8_lossy(&v).parse().unwrap_or(0)).unwrap_or(0);
    ///         if n < 10 {
    ///             return Err(redipc::Error::aborted("not enough"));
    ///         }
    ///         tx.queue(&["DECRBY", "balance", "10"])
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn transaction<K, F>(
        &self,
        keys: &[K],
        max_retries: usize,
        mut f: F,
    ) -> Result<Vec<Reply>>
    where
        K: AsRef<[u8]>,
        F: AsyncFnMut(&mut WatchSession) -> Result<()>,
    {
        let mut attempts = Attempts::new(max_retries);
        while attempts.next() {
            let mut session = self.watch(keys).await?;
            f(&mut session).await?;
            if let Some(replies) = session.exec().await? {
                return Ok(replies);
            }
        }
        Err(attempts.gave_up())
    }
}

client_handles! {
    /// Start an optimistic transaction by hand: `WATCH keys` on a connection of its own
    /// (see [`transaction`](Client::transaction) for the retry loop).
    pub async fn watch(&self, keys: &[impl AsRef<[u8]>]) -> Result<WatchSession> {
        WatchSession::start(self.clone(), keys).await
    }
}
