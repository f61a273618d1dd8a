//! `redipc.asyncio`: awaitables completed on the caller's event loop, with no thread per
//! awaited call and no polling. Single commands go on the client's `redipc::LocalWire`,
//! which the loop's thread writes and reads itself. Every other call starts on the
//! library's runtime (`blocking::Client::spawn_into`); what it produced goes into the
//! client's `redipc::Completions` queue. The event loop watches one descriptor for both
//! (`loop.add_reader`): the loop drains it on its own thread, converts each result and
//! completes its `asyncio.Future`. The runtime's threads never take the GIL. Cancelling the
//! future cancels a runtime call (`redipc::Abort`).

use std::sync::{Arc, Mutex, MutexGuard};

use pyo3::IntoPyObjectExt;
use pyo3::prelude::*;
use redipc::{
    CallOptions, Completions, LocalWire, LockOptions, Reply, Sent, SetOptions, SubscriptionKind,
    Taken, blocking,
};

use crate::batch::Batch;
use crate::client::Client;
use crate::convert::{self, Arg, Callable, Count, Dict, Policy, Seconds, Seq, Stamp, With};
use crate::coord::{Permit, RateLimiter, Script, Semaphore};
use crate::errors::to_pyerr;
use crate::pubsub::{self, Subscription, SubscriptionGroup};
use crate::records::{
    DeadLetter, Instance, Message, Messages, PendingInfo, QueueCounts, StreamEntry,
};
use crate::state::{self, Lock};

/// Turns a finished call's output into its Python value, on the loop's thread.
type Finish = Box<dyn FnOnce(Python<'_>) -> PyResult<Py<PyAny>> + Send>;

/// A finished call: its future and how to complete it.
struct Done {
    fut: Py<PyAny>,
    finish: Finish,
}

/// A call on the local connection: its future and how to convert its reply.
struct Token {
    fut: Py<PyAny>,
    conv: fn(Python<'_>, Reply) -> PyResult<Py<PyAny>>,
}

/// A local call that went through the shared connection comes back as a [`Done`]. A
/// blocking pop's reply stays a `Taken` until its future gets it: dropped with a future
/// cancelled meanwhile, it puts back what the pop took.
fn wrap(t: Token, r: redipc::Result<Taken>) -> Done {
    Done {
        fut: t.fut,
        finish: Box::new(move |py| match r {
            Ok(v) => (t.conv)(py, v.into_reply()),
            Err(e) => Err(to_pyerr(py, e)),
        }),
    }
}

type Local = Mutex<LocalWire<Token, Done>>;

/// The awaitable side of a [`Client`]: bound to the event loop it was made on.
#[pyclass(frozen, module = "redipc._native")]
pub(crate) struct AsyncClient {
    c: blocking::Client,
    event_loop: Py<PyAny>,
    done: Arc<Completions<Done>>,
    /// The connection the loop's thread drives itself, for single commands (plain TCP and
    /// unix sockets; `None` otherwise).
    local: Option<Local>,
    /// `asyncio._get_running_loop`, to refuse a call from another loop.
    running_loop: Py<PyAny>,
}

/// An optimistic transaction's session for `redipc.asyncio` (`AsyncClient.watch`): its
/// commands are awaited one at a time (`watch_command`), writes queued (`queue`), and
/// `watch_exec` ends it. A command whose await was cancelled drops the session (its
/// connection and `WATCH` with it): later calls raise `ClosedError`.
#[pyclass(frozen, module = "redipc._native")]
pub(crate) struct AsyncWatchSession {
    /// The session while no call uses it; `None` while one does, and once finished.
    slot: Arc<Mutex<Option<redipc::WatchSession>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl AsyncWatchSession {
    /// Take the session for one call; `ClosedError` while another call uses it or once
    /// it is finished.
    fn take(&self) -> PyResult<redipc::WatchSession> {
        lock(&self.slot).take().ok_or_else(|| {
            py_err!(
                Closed,
                "the transaction is finished (or another call of it is still awaited)"
            )
        })
    }
}

#[pymethods]
impl AsyncWatchSession {
    /// Queue a command for the `MULTI`/`EXEC` at the end.
    #[pyo3(signature = (*args))]
    fn queue(&self, py: Python<'_>, args: Seq<Arg>) -> PyResult<()> {
        let mut slot = lock(&self.slot);
        let Some(s) = slot.as_mut() else {
            return Err(py_err!(
                Closed,
                "the transaction is finished (or a command of it is still awaited)"
            ));
        };
        s.queue(&args.0).map_err(|e| to_pyerr(py, e))
    }

    /// Give the session up (its connection and `WATCH` with it); nothing queued runs.
    fn close(&self) {
        drop(lock(&self.slot).take());
    }

    fn __repr__(&self) -> &'static str {
        match lock(&self.slot).is_some() {
            true => "<redipc.asyncio.WatchSession>",
            false => "<redipc.asyncio.WatchSession busy or finished>",
        }
    }
}

/// Cancels a call when its future is cancelled (an `add_done_callback`).
#[pyclass(frozen, module = "redipc._native")]
struct Canceller(redipc::Abort);

#[pymethods]
impl Canceller {
    fn __call__(&self, fut: &Bound<'_, PyAny>) -> PyResult<()> {
        if fut.call_method0("cancelled")?.is_truthy()? {
            self.0.abort();
        }
        Ok(())
    }
}

impl AsyncClient {
    /// Start `call` on the runtime and return the future it completes with `conv` of its
    /// output.
    fn start<'py, T: Send + 'static>(
        &self,
        py: Python<'py>,
        call: impl Future<Output = redipc::Result<T>> + Send + 'static,
        conv: impl FnOnce(Python<'_>, T) -> PyResult<Py<PyAny>> + Send + 'static,
    ) -> PyResult<Bound<'py, PyAny>> {
        let fut = self.new_future(py)?;
        let theirs = fut.clone().unbind();
        let abort = self
            .c
            .spawn_into(&self.done, call, move |r| Done {
                fut: theirs,
                finish: Box::new(move |py| match r {
                    Ok(v) => conv(py, v),
                    Err(e) => Err(to_pyerr(py, e)),
                }),
            })
            .map_err(|e| to_pyerr(py, e))?;
        fut.call_method1("add_done_callback", (Canceller(abort),))?;
        Ok(fut)
    }

    /// A future of this client's loop, refused from another loop.
    fn new_future<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        // In the child of a fork(), before the loop check (the child's loop is not this).
        self.c.check_process().map_err(|e| to_pyerr(py, e))?;
        let running = self.running_loop.bind(py).call0()?;
        if !running.is(self.event_loop.bind(py)) {
            return Err(py_err!(
                InvalidArgument,
                "this redipc.asyncio.Client belongs to another event loop (or none runs here): make one client per loop"
            ));
        }
        self.event_loop
            .bind(py)
            .call_method0(pyo3::intern!(py, "create_future"))
    }

    /// Send one command on the local connection (see `redipc::LocalWire`); its future,
    /// completed with `conv` of the reply. `None` when this client has no local connection
    /// (TLS, sentinels): the call goes through the runtime then.
    fn local<'py>(
        slf: &Bound<'py, Self>,
        send: impl FnOnce(&mut LocalWire<Token, Done>, Token) -> redipc::Result<Sent>,
        conv: fn(Python<'_>, Reply) -> PyResult<Py<PyAny>>,
    ) -> Option<PyResult<Bound<'py, PyAny>>> {
        let local = slf.get().local.as_ref()?;
        Some(Self::send_local(slf, local, send, conv))
    }

    fn send_local<'py>(
        slf: &Bound<'py, Self>,
        local: &Local,
        send: impl FnOnce(&mut LocalWire<Token, Done>, Token) -> redipc::Result<Sent>,
        conv: fn(Python<'_>, Reply) -> PyResult<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let this = slf.get();
        let fut = this.new_future(py)?;
        let token = Token {
            fut: fut.clone().unbind(),
            conv,
        };
        let sent = {
            let mut w = local.lock().unwrap_or_else(|p| p.into_inner());
            send(&mut w, token).map_err(|e| to_pyerr(py, e))?
        };
        let lp = this.event_loop.bind(py);
        if sent.flush {
            lp.call_method1("call_soon", (slf.getattr("_flush")?,))?;
        }
        if let Some(after) = sent.arm {
            lp.call_method1("call_later", (after.as_secs_f64(), slf.getattr("_expire")?))?;
        }
        if let Some(abort) = sent.abort {
            fut.call_method1("add_done_callback", (Canceller(abort),))?;
        }
        Ok(fut)
    }

    /// Complete the futures of finished local calls.
    fn finish_local(py: Python<'_>, done: Vec<redipc::Finished<Token>>) {
        // Converted in place: no boxed `Done` per reply (that is for the runtime's queue).
        for (Token { fut, conv }, r) in done {
            let fut = fut.bind(py);
            let finish = |py: Python<'_>| match r {
                Ok(v) => conv(py, v),
                Err(e) => Err(to_pyerr(py, e)),
            };
            if let Err(e) = complete(py, fut, finish) {
                e.write_unraisable(py, Some(fut));
            }
        }
    }

    fn core(&self) -> redipc::Client {
        self.c.as_async().clone()
    }
}

/// Complete `fut` with what `finish` makes (unless it was cancelled meanwhile).
fn complete(
    py: Python<'_>,
    fut: &Bound<'_, PyAny>,
    finish: impl FnOnce(Python<'_>) -> PyResult<Py<PyAny>>,
) -> PyResult<()> {
    if fut.call_method0(pyo3::intern!(py, "done"))?.is_truthy()? {
        return Ok(());
    }
    match finish(py) {
        Ok(v) => fut.call_method1(pyo3::intern!(py, "set_result"), (v,))?,
        Err(e) => fut.call_method1(pyo3::intern!(py, "set_exception"), (e.into_value(py),))?,
    };
    Ok(())
}

/// Reply conversions of the local connection's calls (as the core's typed calls do).
fn reply_any(py: Python<'_>, r: Reply) -> PyResult<Py<PyAny>> {
    Ok(convert::reply(py, r)?.unbind())
}

fn reply_bytes(py: Python<'_>, r: Reply) -> PyResult<Py<PyAny>> {
    any(py, r.into_opt_bytes().map_err(|e| to_pyerr(py, e))?)
}

fn reply_int(py: Python<'_>, r: Reply) -> PyResult<Py<PyAny>> {
    any(py, r.into_int().map_err(|e| to_pyerr(py, e))?)
}

fn reply_set(py: Python<'_>, r: Reply) -> PyResult<Py<PyAny>> {
    any(py, !r.is_nil())
}

fn reply_flag(py: Python<'_>, r: Reply) -> PyResult<Py<PyAny>> {
    any(py, r.into_flag().map_err(|e| to_pyerr(py, e))?)
}

fn reply_pong(py: Python<'_>, r: Reply) -> PyResult<Py<PyAny>> {
    r.into_pong().map_err(|e| to_pyerr(py, e))?;
    any(py, true)
}

fn reply_pairs(py: Python<'_>, r: Reply) -> PyResult<Py<PyAny>> {
    any(py, Dict(r.into_pairs().map_err(|e| to_pyerr(py, e))?))
}

fn any<T: for<'py> IntoPyObject<'py>>(py: Python<'_>, v: T) -> PyResult<Py<PyAny>> {
    v.into_py_any(py)
}

#[pymethods]
impl AsyncClient {
    /// The awaitable side of `client`, on `event_loop` (the running loop).
    #[new]
    fn new(py: Python<'_>, client: &Client, event_loop: Bound<'_, PyAny>) -> PyResult<Self> {
        let done = Arc::new(Completions::new().map_err(|e| to_pyerr(py, e))?);
        let running_loop = py.import("asyncio")?.getattr("_get_running_loop")?;
        let local = py
            .detach(|| LocalWire::new(&client.c, done.clone(), wrap))
            .map_err(|e| to_pyerr(py, e))?
            .map(Mutex::new);
        Ok(AsyncClient {
            c: client.c.clone(),
            event_loop: event_loop.unbind(),
            done,
            local,
            running_loop: running_loop.unbind(),
        })
    }

    /// The descriptor the event loop watches (`loop.add_reader(fd, client._drain)`): the
    /// local connection's, which includes the completions queue, or the queue's.
    #[getter]
    fn fd(&self) -> i32 {
        match &self.local {
            Some(l) => l.lock().unwrap_or_else(|p| p.into_inner()).fd(),
            None => self.done.fd(),
        }
    }

    /// Write the local connection's waiting commands (scheduled with `call_soon`).
    fn _flush(&self, py: Python<'_>) {
        if let Some(l) = &self.local {
            let done = l.lock().unwrap_or_else(|p| p.into_inner()).flush();
            Self::finish_local(py, done);
        }
    }

    /// Fail the local calls past the response timeout (scheduled with `call_later`).
    fn _expire(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        if let Some(l) = &this.local {
            let (done, next) = l.lock().unwrap_or_else(|p| p.into_inner()).expire();
            Self::finish_local(py, done);
            if let Some(after) = next {
                this.event_loop
                    .bind(py)
                    .call_method1("call_later", (after.as_secs_f64(), slf.getattr("_expire")?))?;
            }
        }
        Ok(())
    }

    /// Calls started and not finished (or cancelled) yet.
    #[getter]
    fn in_flight(&self) -> usize {
        let local = self.local.as_ref().map_or(0, |l| {
            l.lock().unwrap_or_else(|p| p.into_inner()).in_flight()
        });
        self.done.in_flight() + local
    }

    /// The event loop's reader callback (`loop.add_reader(fd, a._readable, closed)`):
    /// [`_drain`](Self::_drain), then `closed()` once the client is closed and every call
    /// was told (no Python frame per reply on the way).
    fn _readable(&self, py: Python<'_>, closed: &Bound<'_, PyAny>) -> PyResult<()> {
        if self._drain(py)? {
            closed.call0()?;
        }
        Ok(())
    }

    /// Complete the futures of every finished call. `True` once the client is closed and
    /// every call has completed: the reader can go.
    fn _drain(&self, py: Python<'_>) -> PyResult<bool> {
        if let Some(l) = &self.local {
            let done = l.lock().unwrap_or_else(|p| p.into_inner()).ready();
            Self::finish_local(py, done);
        }
        // Looked at before draining: when nothing is in flight, everything was pushed.
        Ok(self.done.drain(|Done { fut, finish }| {
            // Every future is completed, whatever happens to one of them.
            if let Err(e) = complete(py, fut.bind(py), finish) {
                e.write_unraisable(py, Some(fut.bind(py)));
            }
        }))
    }

    /// Send any command; the reply as `Client.command` returns it.
    #[pyo3(signature = (*args))]
    fn command<'py>(slf: &Bound<'py, Self>, args: Seq<Arg>) -> PyResult<Bound<'py, PyAny>> {
        if let Some(r) = Self::local(slf, |w, t| w.send(&args.0, t), reply_any) {
            return r;
        }
        let c = slf.get().core();
        // A blocking pop's reply stays a `Taken` until its future gets it: dropped with a
        // future cancelled meanwhile, it puts back what the pop took.
        slf.get().start(
            slf.py(),
            async move { c.command_taken(&args.0).await },
            |py, t| Ok(convert::reply(py, t.into_reply())?.unbind()),
        )
    }

    /// `GET key`.
    fn get<'py>(slf: &Bound<'py, Self>, key: Arg) -> PyResult<Bound<'py, PyAny>> {
        if let Some(r) = Self::local(slf, |w, t| w.get(&key, t), reply_bytes) {
            return r;
        }
        let c = slf.get().core();
        slf.get()
            .start(slf.py(), async move { c.get(key).await }, any)
    }

    /// `SET key value [PX ttl] [NX|XX]`: whether the value was set.
    #[pyo3(signature = (key, value, ttl = None, *, nx = false, xx = false))]
    fn set<'py>(
        slf: &Bound<'py, Self>,
        key: Arg,
        value: Arg,
        ttl: Option<Seconds>,
        nx: bool,
        xx: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let opts = SetOptions::default()
            .with(ttl, |o, t| o.ttl(t.0))
            .with(nx.then_some(()), |o, ()| o.nx())
            .with(xx.then_some(()), |o, ()| o.xx());
        if let Some(r) = Self::local(slf, |w, t| w.set_with(&key, &value, opts, t), reply_set) {
            return r;
        }
        let c = slf.get().core();
        slf.get().start(
            slf.py(),
            async move { c.set_with(key, value, opts).await },
            any,
        )
    }

    /// `DEL key...`: how many keys were removed.
    #[pyo3(signature = (*keys))]
    fn delete<'py>(slf: &Bound<'py, Self>, keys: Seq<Arg>) -> PyResult<Bound<'py, PyAny>> {
        if let Some(r) = Self::local(slf, |w, t| w.keys("DEL", &keys.0, t), reply_int) {
            return r;
        }
        let c = slf.get().core();
        slf.get()
            .start(slf.py(), async move { c.del(&keys.0).await }, any)
    }

    /// `EXISTS key...`: how many of the keys exist.
    #[pyo3(signature = (*keys))]
    fn exists<'py>(slf: &Bound<'py, Self>, keys: Seq<Arg>) -> PyResult<Bound<'py, PyAny>> {
        if let Some(r) = Self::local(slf, |w, t| w.keys("EXISTS", &keys.0, t), reply_int) {
            return r;
        }
        let c = slf.get().core();
        slf.get()
            .start(slf.py(), async move { c.exists(&keys.0).await }, any)
    }

    /// `INCRBY key amount`: the new value.
    #[pyo3(signature = (key, amount = 1))]
    fn incr<'py>(slf: &Bound<'py, Self>, key: Arg, amount: i64) -> PyResult<Bound<'py, PyAny>> {
        if let Some(r) = Self::local(slf, |w, t| w.incr_by(&key, amount, t), reply_int) {
            return r;
        }
        let c = slf.get().core();
        slf.get()
            .start(slf.py(), async move { c.incr_by(key, amount).await }, any)
    }

    /// `PUBLISH channel message`: how many subscribers got it.
    fn publish<'py>(
        slf: &Bound<'py, Self>,
        channel: Arg,
        message: Arg,
    ) -> PyResult<Bound<'py, PyAny>> {
        if let Some(r) = Self::local(slf, |w, t| w.publish(&channel, &message, t), reply_int) {
            return r;
        }
        let c = slf.get().core();
        slf.get().start(
            slf.py(),
            async move { c.publish(channel, message).await },
            any,
        )
    }

    /// `DECRBY key amount` (sent as `INCRBY key -amount`, as `Client.decr`): the new value.
    #[pyo3(signature = (key, amount = 1))]
    fn decr<'py>(slf: &Bound<'py, Self>, key: Arg, amount: i64) -> PyResult<Bound<'py, PyAny>> {
        let by = crate::client::decr_amount(amount)?;
        if let Some(r) = Self::local(slf, |w, t| w.incr_by(&key, by, t), reply_int) {
            return r;
        }
        let c = slf.get().core();
        slf.get()
            .start(slf.py(), async move { c.incr_by(key, by).await }, any)
    }

    /// `PEXPIRE key ms`: whether the timeout was set (the key exists).
    fn expire<'py>(
        slf: &Bound<'py, Self>,
        key: Arg,
        seconds: Seconds,
    ) -> PyResult<Bound<'py, PyAny>> {
        if let Some(r) = Self::local(slf, |w, t| w.pexpire(&key, seconds.0, t), reply_flag) {
            return r;
        }
        let c = slf.get().core();
        slf.get()
            .start(slf.py(), async move { c.expire(key, seconds.0).await }, any)
    }

    /// `HGET key field`: the value, or `None`.
    fn hget<'py>(slf: &Bound<'py, Self>, key: Arg, field: Arg) -> PyResult<Bound<'py, PyAny>> {
        if let Some(r) = Self::local(slf, |w, t| w.hget(&key, &field, t), reply_bytes) {
            return r;
        }
        let c = slf.get().core();
        slf.get()
            .start(slf.py(), async move { c.hget(key, field).await }, any)
    }

    /// `HSET key field value [field value ...]`: how many fields were added.
    #[pyo3(signature = (key, field = None, value = None, *, mapping = None))]
    fn hset<'py>(
        slf: &Bound<'py, Self>,
        key: Arg,
        field: Option<Arg>,
        value: Option<Arg>,
        mapping: Option<Dict<Arg, Arg>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let fields = crate::client::hset_fields(field, value, mapping)?;
        if let Some(r) = Self::local(slf, |w, t| w.hset(&key, &fields, t), reply_int) {
            return r;
        }
        let c = slf.get().core();
        slf.get()
            .start(slf.py(), async move { c.hset(key, &fields).await }, any)
    }

    /// `HGETALL key`: every field and value (empty when the key does not exist).
    fn hgetall<'py>(slf: &Bound<'py, Self>, key: Arg) -> PyResult<Bound<'py, PyAny>> {
        if let Some(r) = Self::local(slf, |w, t| w.hgetall(&key, t), reply_pairs) {
            return r;
        }
        let c = slf.get().core();
        slf.get()
            .start(slf.py(), async move { c.hgetall(key).await }, |py, p| {
                any(py, Dict(p))
            })
    }

    /// `HDEL key field...`: how many fields were removed.
    #[pyo3(signature = (key, *fields))]
    fn hdel<'py>(
        slf: &Bound<'py, Self>,
        key: Arg,
        fields: Seq<Arg>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if let Some(r) = Self::local(slf, |w, t| w.hdel(&key, &fields.0, t), reply_int) {
            return r;
        }
        let c = slf.get().core();
        slf.get()
            .start(slf.py(), async move { c.hdel(key, &fields.0).await }, any)
    }

    /// `LPUSH key value...`: the new length.
    #[pyo3(signature = (key, *values))]
    fn lpush<'py>(
        slf: &Bound<'py, Self>,
        key: Arg,
        values: Seq<Arg>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if let Some(r) = Self::local(slf, |w, t| w.lpush(&key, &values.0, t), reply_int) {
            return r;
        }
        let c = slf.get().core();
        slf.get()
            .start(slf.py(), async move { c.lpush(key, &values.0).await }, any)
    }

    /// `RPUSH key value...`: the new length.
    #[pyo3(signature = (key, *values))]
    fn rpush<'py>(
        slf: &Bound<'py, Self>,
        key: Arg,
        values: Seq<Arg>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if let Some(r) = Self::local(slf, |w, t| w.rpush(&key, &values.0, t), reply_int) {
            return r;
        }
        let c = slf.get().core();
        slf.get()
            .start(slf.py(), async move { c.rpush(key, &values.0).await }, any)
    }

    /// `LPOP key`: the first element, or `None`.
    fn lpop<'py>(slf: &Bound<'py, Self>, key: Arg) -> PyResult<Bound<'py, PyAny>> {
        if let Some(r) = Self::local(slf, |w, t| w.lpop(&key, t), reply_bytes) {
            return r;
        }
        let c = slf.get().core();
        slf.get()
            .start(slf.py(), async move { c.lpop(key).await }, any)
    }

    /// `RPOP key`: the last element, or `None`.
    fn rpop<'py>(slf: &Bound<'py, Self>, key: Arg) -> PyResult<Bound<'py, PyAny>> {
        if let Some(r) = Self::local(slf, |w, t| w.rpop(&key, t), reply_bytes) {
            return r;
        }
        let c = slf.get().core();
        slf.get()
            .start(slf.py(), async move { c.rpop(key).await }, any)
    }

    /// `LLEN key`.
    fn llen<'py>(slf: &Bound<'py, Self>, key: Arg) -> PyResult<Bound<'py, PyAny>> {
        if let Some(r) = Self::local(slf, |w, t| w.llen(&key, t), reply_int) {
            return r;
        }
        let c = slf.get().core();
        slf.get()
            .start(slf.py(), async move { c.llen(key).await }, any)
    }

    /// `PING`: `True` when the server answers.
    fn ping<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        if let Some(r) = Self::local(slf, |w, t| w.ping(t), reply_pong) {
            return r;
        }
        let c = slf.get().core();
        slf.get()
            .start(slf.py(), async move { c.ping().await }, |py, ()| {
                any(py, true)
            })
    }

    /// `SPUBLISH channel message`: how many subscribers got it.
    fn spublish<'py>(
        slf: &Bound<'py, Self>,
        channel: Arg,
        message: Arg,
    ) -> PyResult<Bound<'py, PyAny>> {
        if let Some(r) = Self::local(slf, |w, t| w.spublish(&channel, &message, t), reply_int) {
            return r;
        }
        let c = slf.get().core();
        slf.get().start(
            slf.py(),
            async move { c.spublish(channel, message).await },
            any,
        )
    }

    /// Several commands in one write; one reply per command, error replies in their slots.
    fn pipeline_raw<'py>(
        &self,
        py: Python<'py>,
        commands: Seq<Seq<Arg>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let commands: Vec<Vec<Arg>> = commands.0.into_iter().map(|c| c.0).collect();
        let c = self.core();
        self.start(
            py,
            async move { c.pipeline_raw(&commands).await },
            |py, rs| Ok(convert::replies(py, rs)?.into_any().unbind()),
        )
    }

    /// Run `script` with `keys` and `args`; its reply, converted as `command`'s.
    fn run_script<'py>(
        &self,
        py: Python<'py>,
        script: &Script,
        keys: Seq<Arg>,
        args: Seq<Arg>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (c, script) = (self.core(), script.core());
        self.start(
            py,
            async move { c.run_script(&script, &keys.0, &args.0).await },
            |py, r| Ok(convert::reply(py, r)?.unbind()),
        )
    }

    /// Pending, in-flight, dead-letter and delayed counts of a queue.
    fn queue_stats<'py>(&self, py: Python<'py>, queue: Arg) -> PyResult<Bound<'py, PyAny>> {
        let c = self.core();
        self.start(py, async move { c.queue_stats(queue).await }, |py, q| {
            QueueCounts::from(q).into_py_any(py)
        })
    }

    /// The dead letters of a queue, oldest first.
    fn dead_letters<'py>(&self, py: Python<'py>, queue: Arg) -> PyResult<Bound<'py, PyAny>> {
        let c = self.core();
        self.start(py, async move { c.dead_letters(queue).await }, |py, ls| {
            let list: Vec<DeadLetter> = ls.into_iter().map(Into::into).collect();
            list.into_py_any(py)
        })
    }

    /// Put every dead letter of a queue back into it; how many.
    fn requeue_dead_letters<'py>(
        &self,
        py: Python<'py>,
        queue: Arg,
    ) -> PyResult<Bound<'py, PyAny>> {
        let c = self.core();
        self.start(py, async move { c.requeue_dead_letters(queue).await }, any)
    }

    /// The services with at least one live server, sorted.
    fn services<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let c = self.core();
        self.start(py, async move { c.services().await }, any)
    }

    /// The live servers of `service`, with what they announced.
    fn instances<'py>(&self, py: Python<'py>, service: Arg) -> PyResult<Bound<'py, PyAny>> {
        let c = self.core();
        self.start(
            py,
            async move { c.instances(service).await },
            |py, found| {
                let list: Vec<Instance> = found.into_iter().map(Into::into).collect();
                list.into_py_any(py)
            },
        )
    }

    /// `LPUSH` a request into `queue`; with `delay` (seconds) into its delayed set.
    #[pyo3(signature = (queue, payload, delay = None))]
    fn send_request<'py>(
        &self,
        py: Python<'py>,
        queue: Arg,
        payload: Arg,
        delay: Option<Seconds>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let c = self.core();
        self.start(
            py,
            async move {
                match delay {
                    None => c.send_request(queue, payload).await,
                    Some(d) => c.send_request_delayed(queue, payload, d.0).await,
                }
            },
            any,
        )
    }

    /// Call `service` (an RPC server) with `payload`; its reply payload.
    #[pyo3(signature = (service, payload, *, method = None, timeout = None, fail_fast = None))]
    fn call<'py>(
        &self,
        py: Python<'py>,
        service: Arg,
        payload: Arg,
        method: Option<Arg>,
        timeout: Option<Seconds>,
        fail_fast: Option<bool>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let opts = CallOptions::default()
            .with(timeout, |o, t| o.timeout(t.0))
            .with(fail_fast, CallOptions::fail_fast);
        let c = self.core();
        self.start(
            py,
            async move {
                let method = method.as_ref().map_or(&b""[..], |m| m.as_ref());
                c.call_with(service, method, payload, opts).await
            },
            any,
        )
    }

    /// Set a cache entry (waking its waiters); `ttl` in seconds, `None`: no expiry.
    #[pyo3(signature = (key, value, ttl = None))]
    fn cache_set<'py>(
        &self,
        py: Python<'py>,
        key: Arg,
        value: Arg,
        ttl: Option<Seconds>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let c = self.core();
        self.start(
            py,
            async move { c.cache_set(key, value, ttl.map(|t| t.0)).await },
            any,
        )
    }

    /// A cache entry's value, or `None`.
    fn cache_get<'py>(&self, py: Python<'py>, key: Arg) -> PyResult<Bound<'py, PyAny>> {
        let c = self.core();
        self.start(py, async move { c.cache_get(key).await }, any)
    }

    /// Delete a cache entry; whether it existed.
    fn cache_delete<'py>(&self, py: Python<'py>, key: Arg) -> PyResult<Bound<'py, PyAny>> {
        let c = self.core();
        self.start(py, async move { c.cache_delete(key).await }, any)
    }

    /// Whether a cache entry exists.
    fn cache_exists<'py>(&self, py: Python<'py>, key: Arg) -> PyResult<Bound<'py, PyAny>> {
        let c = self.core();
        self.start(py, async move { c.cache_exists(key).await }, any)
    }

    /// Wait until a cache entry exists (woken by its writer) and return its value; `None`
    /// when `timeout` seconds passed.
    fn cache_wait<'py>(
        &self,
        py: Python<'py>,
        key: Arg,
        timeout: Seconds,
    ) -> PyResult<Bound<'py, PyAny>> {
        let c = self.core();
        self.start(py, async move { c.cache_wait(key, timeout.0).await }, any)
    }

    /// Acquire the lock `name` (a fencing-token lock, as `Client.lock`), waiting up to
    /// `wait` seconds (the core's default when `None`); a `Lock`. `TimeoutError` when it
    /// stayed taken.
    #[pyo3(signature = (name, ttl = None, wait = None, auto_renew = None))]
    fn lock<'py>(
        &self,
        py: Python<'py>,
        name: Arg,
        ttl: Option<Seconds>,
        wait: Option<Seconds>,
        auto_renew: Option<bool>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let opts = LockOptions::default()
            .with(ttl, |o, t| o.ttl(t.0))
            .with(wait, |o, t| o.wait(t.0))
            .with(auto_renew, LockOptions::auto_renew);
        let (c, owner) = (self.core(), self.c.clone());
        self.start(py, async move { c.lock(name, opts).await }, move |py, g| {
            Lock::held_by(owner.adopt(g)).into_py_any(py)
        })
    }

    /// Release `lock`; `False` if it was no longer ours or was released already.
    fn release_lock<'py>(&self, py: Python<'py>, lock: &Lock) -> PyResult<Bound<'py, PyAny>> {
        let guard = lock.take(py);
        self.start(
            py,
            async move {
                match guard {
                    Some(g) => g.into_async().release().await,
                    None => Ok(false),
                }
            },
            any,
        )
    }

    /// Append an entry (`fields`, or one `payload` field) to `stream`; its id.
    #[pyo3(signature = (stream, fields = None, *, payload = None, maxlen = None))]
    fn stream_publish<'py>(
        &self,
        py: Python<'py>,
        stream: Arg,
        fields: Option<Dict<Arg, Arg>>,
        payload: Option<Arg>,
        maxlen: Option<Count<0>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let fields = crate::stream::entry_fields(fields, payload)?;
        let c = self.core();
        self.start(
            py,
            async move {
                c.stream_publish(stream, &fields, maxlen.map(Count::usize))
                    .await
            },
            any,
        )
    }

    /// Up to `count` entries of `stream` after `from_id`, waiting up to `block` seconds
    /// for the first when there is none (`None`: do not wait).
    #[pyo3(signature = (stream, from_id = "0".to_string(), count = Count(100), block = None))]
    #[pyo3(text_signature = "($self, stream, from_id='0', count=100, block=None)")]
    fn stream_read<'py>(
        &self,
        py: Python<'py>,
        stream: Arg,
        from_id: String,
        count: Count<1>,
        block: Option<Seconds>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let c = self.core();
        self.start(
            py,
            async move {
                c.stream_read(stream, &from_id, count.usize(), block.map(|b| b.0))
                    .await
            },
            |py, entries| {
                let list: Vec<StreamEntry> = entries.into_iter().map(Into::into).collect();
                list.into_py_any(py)
            },
        )
    }

    /// `HSET` and publish the field name on the hash's channel, atomically (`timestamp`,
    /// `channel` as `Client.hash_set`).
    #[pyo3(signature = (hash, field, value, *, timestamp = None, channel = None))]
    fn hash_set<'py>(
        &self,
        py: Python<'py>,
        hash: Arg,
        field: Arg,
        value: Arg,
        timestamp: Option<Stamp>,
        channel: Option<Arg>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let write = state::hash_write(channel, None, timestamp);
        let c = self.core();
        self.start(
            py,
            async move { c.hash_set_with(hash, field, value, write).await },
            any,
        )
    }

    /// Like `hash_set`, only when the value differs; whether it changed.
    fn hash_set_if_changed<'py>(
        &self,
        py: Python<'py>,
        hash: Arg,
        field: Arg,
        value: Arg,
    ) -> PyResult<Bound<'py, PyAny>> {
        let c = self.core();
        self.start(
            py,
            async move { c.hash_set_if_changed(hash, field, value).await },
            any,
        )
    }

    /// Set several fields at once; publish each field, or one word: `*` with `summary`,
    /// or `announce`.
    #[pyo3(signature = (
        hash, mapping, summary = false, *, announce = None, channel = None, timestamp = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn hash_set_many<'py>(
        &self,
        py: Python<'py>,
        hash: Arg,
        mapping: Dict<Arg, Arg>,
        summary: bool,
        announce: Option<Arg>,
        channel: Option<Arg>,
        timestamp: Option<Stamp>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let write = state::hash_many_write(summary, announce, channel, timestamp)?;
        let c = self.core();
        self.start(
            py,
            async move { c.hash_set_many_with(hash, &mapping.0, write).await },
            any,
        )
    }

    /// Delete a field and publish it; whether it existed.
    #[pyo3(signature = (hash, field, *, channel = None))]
    fn hash_delete<'py>(
        &self,
        py: Python<'py>,
        hash: Arg,
        field: Arg,
        channel: Option<Arg>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let write = state::hash_write(channel, None, None);
        let c = self.core();
        self.start(
            py,
            async move { c.hash_delete_with(hash, field, write).await },
            any,
        )
    }

    /// Replace the whole hash and publish `*` (or `announce`).
    #[pyo3(signature = (hash, mapping, *, announce = None, channel = None, timestamp = None))]
    fn hash_replace_all<'py>(
        &self,
        py: Python<'py>,
        hash: Arg,
        mapping: Dict<Arg, Arg>,
        announce: Option<Arg>,
        channel: Option<Arg>,
        timestamp: Option<Stamp>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let write = state::hash_write(channel, announce, timestamp);
        let c = self.core();
        self.start(
            py,
            async move { c.hash_replace_all_with(hash, &mapping.0, write).await },
            any,
        )
    }

    /// Delete the whole hash and publish `cleared` (or `announce`), atomically.
    #[pyo3(signature = (hash, *, channel = None, announce = None))]
    fn hash_clear<'py>(
        &self,
        py: Python<'py>,
        hash: Arg,
        channel: Option<Arg>,
        announce: Option<Arg>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let write = state::hash_write(channel, announce, None);
        let c = self.core();
        self.start(py, async move { c.hash_clear(hash, write).await }, any)
    }

    /// Raise fault `code` of `group` in the fleet's layout; whether it is new.
    fn fault_set<'py>(
        &self,
        py: Python<'py>,
        group: Arg,
        code: i64,
        description: Arg,
    ) -> PyResult<Bound<'py, PyAny>> {
        let c = self.core();
        self.start(
            py,
            async move { c.fault_set(group, code, description).await },
            any,
        )
    }

    /// Clear fault `code` of `group`; whether it was set.
    fn fault_clear<'py>(
        &self,
        py: Python<'py>,
        group: Arg,
        code: i64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let c = self.core();
        self.start(py, async move { c.fault_clear(group, code).await }, any)
    }

    /// Send what `batch` queued (a pipeline or a transaction; the batch is empty after it);
    /// one result per command, as `Batch.exec` returns them.
    fn exec_batch<'py>(&self, py: Python<'py>, batch: &Batch) -> PyResult<Bound<'py, PyAny>> {
        let b = batch.take().into_async();
        self.start(py, async move { b.exec().await }, |py, rs| {
            Ok(convert::replies(py, rs)?.into_any().unbind())
        })
    }

    /// Subscribe (`kind`: "channel", "pattern" or "shard") without a callback; resolves
    /// once the server confirmed it, to a `Subscription` whose events
    /// [`next_event`](Self::next_event) awaits.
    #[pyo3(signature = (kind, names, capacity = None, overflow = None))]
    fn subscribe<'py>(
        &self,
        py: Python<'py>,
        kind: &str,
        names: Seq<Arg>,
        capacity: Option<Count<1>>,
        overflow: Option<Policy>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let kind = match kind {
            "channel" => SubscriptionKind::Channel,
            "pattern" => SubscriptionKind::Pattern,
            "shard" => SubscriptionKind::Shard,
            other => {
                return Err(py_err!(
                    InvalidArgument,
                    "unknown subscription kind {other:?}"
                ));
            }
        };
        let opts = pubsub::options(capacity, overflow);
        let (c, owner) = (self.core(), self.c.clone());
        self.start(
            py,
            async move { c.subscribe_kind(kind, &names.0, opts).await },
            move |py, sub| Subscription::pulled(owner.adopt(sub), owner).into_py_any(py),
        )
    }

    /// A subscription group (as `Client.subscribe_group`); resolves to the
    /// `SubscriptionGroup` once it is made.
    #[pyo3(signature = (name = String::new(), capacity = None, overflow = None, on_error = None))]
    #[pyo3(text_signature = "($self, name='', capacity=None, overflow=None, on_error=None)")]
    fn subscribe_group<'py>(
        &self,
        py: Python<'py>,
        name: String,
        capacity: Option<Count<1>>,
        overflow: Option<Policy>,
        on_error: Option<Callable>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let opts = pubsub::options(capacity, overflow);
        let (c, owner) = (self.core(), self.c.clone());
        self.start(
            py,
            async move { c.subscribe_group(opts).await },
            move |py, g| {
                let g = owner.adopt(g);
                SubscriptionGroup::made(g, name, on_error, owner).into_py_any(py)
            },
        )
    }

    /// The next events of `sub` (the first within `timeout` seconds, `None`: no limit,
    /// then those queued behind it, `max` at most) as `Message`s; empty when none came in
    /// time. `ClosedError` once the subscription is closed. Cancelled before it completed,
    /// it puts the events it took back (the next call gets them first).
    #[pyo3(signature = (sub, timeout = None, max = Count(256)))]
    #[pyo3(text_signature = "($self, sub, timeout=None, max=256)")]
    fn next_events<'py>(
        &self,
        py: Python<'py>,
        sub: &Subscription,
        timeout: Option<Seconds>,
        max: Count<1>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (events, kind) = (sub.events(), sub.kind_of());
        self.start(
            py,
            // A batch whose future was cancelled before it got them is dropped unaccepted:
            // its events go back to the head of the queue (`EventBatch`).
            async move { events.take_batch(timeout.map(|t| t.0), max.usize()).await },
            move |py, batch| {
                let es = batch.accept();
                let mut messages = Messages::new(py, kind);
                let list: Vec<Message> = es.iter().filter_map(|e| messages.of(e)).collect();
                list.into_py_any(py)
            },
        )
    }

    /// The last entry of `stream`, or `None`.
    fn stream_last<'py>(&self, py: Python<'py>, stream: Arg) -> PyResult<Bound<'py, PyAny>> {
        let c = self.core();
        self.start(py, async move { c.stream_last(stream).await }, |py, e| {
            e.map(StreamEntry::from).into_py_any(py)
        })
    }

    /// `XLEN stream`.
    fn stream_len<'py>(&self, py: Python<'py>, stream: Arg) -> PyResult<Bound<'py, PyAny>> {
        let c = self.core();
        self.start(py, async move { c.stream_len(stream).await }, any)
    }

    /// Create a consumer group (and the stream); `False` if it existed.
    #[pyo3(signature = (stream, group, from_id = "$".to_string()))]
    #[pyo3(text_signature = "($self, stream, group, from_id='$')")]
    fn stream_group_create<'py>(
        &self,
        py: Python<'py>,
        stream: Arg,
        group: Arg,
        from_id: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let c = self.core();
        self.start(
            py,
            async move { c.stream_group_create(stream, group, &from_id).await },
            any,
        )
    }

    /// Pending entries of a group.
    fn stream_pending<'py>(
        &self,
        py: Python<'py>,
        stream: Arg,
        group: Arg,
    ) -> PyResult<Bound<'py, PyAny>> {
        let c = self.core();
        self.start(
            py,
            async move { c.stream_pending(stream, group).await },
            |py, p| PendingInfo::from(p).into_py_any(py),
        )
    }

    /// The dead letters of a stream (`<stream>:dead`), oldest first.
    #[pyo3(signature = (stream, count = Count(100)), text_signature = "($self, stream, count=100)")]
    fn stream_dead_letters<'py>(
        &self,
        py: Python<'py>,
        stream: Arg,
        count: Count<1>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let c = self.core();
        self.start(
            py,
            async move { c.stream_dead_letters(stream, count.usize()).await },
            |py, entries| {
                let list: Vec<StreamEntry> = entries.into_iter().map(Into::into).collect();
                list.into_py_any(py)
            },
        )
    }

    /// Subscribe `sub` to more names; resolves once the server confirmed them. The names
    /// are recorded at once: a cancelled await leaves them subscribed.
    #[pyo3(signature = (sub, *names))]
    fn subscription_add<'py>(
        &self,
        py: Python<'py>,
        sub: &Subscription,
        names: Seq<Arg>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let confirm = sub.add_owned(&names.0).map_err(|e| to_pyerr(py, e))?;
        self.start(py, confirm, any)
    }

    /// `WATCH keys` on a connection of its own: an `AsyncWatchSession`.
    #[pyo3(signature = (*keys))]
    fn watch<'py>(&self, py: Python<'py>, keys: Seq<Arg>) -> PyResult<Bound<'py, PyAny>> {
        let c = self.core();
        self.start(py, async move { c.watch(&keys.0).await }, |py, s| {
            AsyncWatchSession {
                slot: Arc::new(Mutex::new(Some(s))),
            }
            .into_py_any(py)
        })
    }

    /// Run a command now on the session's connection; its reply.
    #[pyo3(signature = (session, *args))]
    fn watch_command<'py>(
        &self,
        py: Python<'py>,
        session: &AsyncWatchSession,
        args: Seq<Arg>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (mut s, slot) = (session.take()?, session.slot.clone());
        self.start(
            py,
            async move {
                let r = s.command(&args.0).await;
                *lock(&slot) = Some(s);
                r
            },
            |py, r| Ok(convert::reply(py, r)?.unbind()),
        )
    }

    /// `MULTI`, the queued commands, `EXEC`: one result per command, or `None` when a
    /// watched key changed (nothing ran). The session is finished afterwards.
    fn watch_exec<'py>(
        &self,
        py: Python<'py>,
        session: &AsyncWatchSession,
    ) -> PyResult<Bound<'py, PyAny>> {
        let s = session.take()?;
        self.start(py, async move { s.exec().await }, |py, r| match r {
            Some(rs) => Ok(convert::replies(py, rs)?.into_any().unbind()),
            None => Ok(py.None()),
        })
    }

    /// Take `n` units of `limiter` if the rate allows it now: `(True, 0.0)`, else
    /// `(False, seconds until it would)`.
    #[pyo3(signature = (limiter, n = Count(1)), text_signature = "($self, limiter, n=1)")]
    fn rate_acquire<'py>(
        &self,
        py: Python<'py>,
        limiter: &RateLimiter,
        n: Count<0>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let l = limiter.core();
        self.start(py, async move { l.acquire(n.0).await }, |py, wait| {
            match wait {
                None => (true, 0.0),
                Some(w) => (false, w.as_secs_f64()),
            }
            .into_py_any(py)
        })
    }

    /// Take `n` units of `limiter`, waiting as the rate says (up to `timeout` seconds);
    /// whether they were taken.
    #[pyo3(signature = (limiter, n = Count(1), timeout = None))]
    #[pyo3(text_signature = "($self, limiter, n=1, timeout=None)")]
    fn rate_acquire_wait<'py>(
        &self,
        py: Python<'py>,
        limiter: &RateLimiter,
        n: Count<0>,
        timeout: Option<Seconds>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let l = limiter.core();
        self.start(
            py,
            async move { l.acquire_wait(n.0, timeout.map(|t| t.0)).await },
            any,
        )
    }

    /// Take a permit of `semaphore`, waiting up to `timeout` seconds (`None`: as long as
    /// it takes); a `Permit`. `TimeoutError` when none came.
    #[pyo3(signature = (semaphore, timeout = None))]
    fn semaphore_acquire<'py>(
        &self,
        py: Python<'py>,
        semaphore: &Semaphore,
        timeout: Option<Seconds>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (sem, owner) = (semaphore.core(), self.c.clone());
        self.start(
            py,
            async move { sem.acquire(timeout.map(|t| t.0)).await },
            move |py, p| Permit::held_by(owner.adopt(p)).into_py_any(py),
        )
    }

    /// Release `permit`; `False` if it was no longer held or was released already.
    fn permit_release<'py>(&self, py: Python<'py>, permit: &Permit) -> PyResult<Bound<'py, PyAny>> {
        let taken = permit.take(py);
        self.start(
            py,
            async move {
                match taken {
                    Some(p) => p.into_async().release().await,
                    None => Ok(false),
                }
            },
            any,
        )
    }

    /// Give `exc`, raised by a callback `obj` of `redipc.asyncio`, to
    /// `sys.unraisablehook`: where the sync client's callbacks' exceptions go.
    #[staticmethod]
    #[pyo3(signature = (exc, obj = None))]
    fn _unraisable(
        py: Python<'_>,
        exc: Bound<'_, pyo3::exceptions::PyBaseException>,
        obj: Option<Bound<'_, PyAny>>,
    ) {
        PyErr::from_value(exc.into_any()).write_unraisable(py, obj.as_ref());
    }

    /// Resolves (to `None`) once the client is closed: what iterators and callback tasks
    /// of `redipc.asyncio` end on. Cancelling it only stops waiting.
    fn closed<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let closed = self.c.as_async().closed();
        self.start(
            py,
            async move {
                closed.await;
                Ok(())
            },
            any,
        )
    }

    /// Close the client: every call still waiting fails with `ClosedError`.
    fn close(&self, py: Python<'_>) {
        if let Some(l) = &self.local {
            let done = l.lock().unwrap_or_else(|p| p.into_inner()).close();
            Self::finish_local(py, done);
        }
        self.done.close();
        py.detach(|| self.c.close());
    }

    fn __repr__(&self) -> String {
        format!("<redipc.asyncio.Client {}>", self.c.url())
    }
}
