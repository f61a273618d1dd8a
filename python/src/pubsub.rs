//! Pub/sub for Python: `Subscription`, `SubscriptionGroup`, the `subscribe*()` methods and
//! poll mode. Callbacks take the GIL once per batch of events (groups: per event) and stop
//! at the core's closed flag; the core's close guarantees the rest.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use pyo3::prelude::*;
use pyo3::types::{PyCFunction, PyDict, PyTuple};
use redipc::{ErrorKind, Event, SubscribeOptions, SubscriptionKind, blocking};

use crate::client::Client;
use crate::convert::{Arg, Callable, Count, Policy, Seconds, Seq, With};
use crate::errors::{self, Core};
use crate::guard::{self, Detached};
use crate::handler::{Callback, PollScope};
use crate::records::{Message, Messages, SubscriptionStats, kind_name};

/// The options shared by `subscribe*()` and `subscribe_group()`.
pub(crate) fn options(capacity: Option<Count<1>>, overflow: Option<Policy>) -> SubscribeOptions {
    SubscribeOptions::default()
        .with(capacity, |o, n| o.capacity(n.usize()))
        .with(overflow, |o, p| o.overflow(p.0))
}

/// A subscription to channels, patterns or shard channels of one kind.
#[pyclass(frozen, module = "redipc._native")]
pub(crate) struct Subscription {
    sub: Detached<blocking::Subscription>,
    has_callback: bool,
    /// A subscription keeps its client alive.
    _client: blocking::Client,
}

impl Subscription {
    /// A subscription without a callback, made by an async call (`redipc.asyncio`).
    pub(crate) fn pulled(sub: blocking::Subscription, client: blocking::Client) -> Self {
        Subscription {
            sub: Detached::new(sub),
            has_callback: false,
            _client: client,
        }
    }

    /// Its events, to await from the event loop's bridge.
    pub(crate) fn events(&self) -> redipc::Events {
        self.sub.events()
    }

    /// Its `add()` as a future owning what it needs, to await from the event loop's
    /// bridge (the names are recorded at once).
    pub(crate) fn add_owned(
        &self,
        names: &[Arg],
    ) -> redipc::Result<impl Future<Output = redipc::Result<()>> + Send + 'static> {
        self.sub.add_owned(names)
    }

    /// Its kind.
    pub(crate) fn kind_of(&self) -> SubscriptionKind {
        self.sub.kind()
    }

    /// The next event within `timeout` (`None`: no limit); `None` when the time passed.
    fn pull(&self, py: Python<'_>, timeout: Option<Seconds>) -> PyResult<Option<Message>> {
        // What is waiting already is taken without releasing the GIL.
        let known = |e: Option<Event>| e.filter(Messages::known);
        let event = match known(self.sub.try_next().map_err(errors::raise)?) {
            Some(e) => Some(e),
            None => guard::wait(py, timeout.map(|t| t.0), |slice| {
                Ok(known(self.sub.next(Some(slice))?))
            })?,
        };
        Ok(event.and_then(|e| Messages::new(py, self.sub.kind()).of(&e)))
    }
}

context_manager!(Subscription);

#[pymethods]
impl Subscription {
    /// `"channel"`, `"pattern"` or `"shard"`.
    #[getter]
    fn kind(&self) -> &'static str {
        kind_name(self.sub.kind())
    }

    /// Whether a callback receives this subscription's messages.
    #[getter]
    fn has_callback(&self) -> bool {
        self.has_callback
    }

    /// Whether it was closed.
    #[getter]
    fn closed(&self) -> bool {
        self.sub.is_closed()
    }

    /// The names subscribed to now, sorted (empty once closed).
    #[getter]
    fn names(&self) -> Vec<Bytes> {
        let mut names = self.sub.names();
        names.sort();
        names
    }

    /// Subscribe to more names; returns once the server confirmed them.
    #[pyo3(signature = (*names))]
    fn add(&self, py: Python<'_>, names: Seq<Arg>) -> PyResult<()> {
        py.core(|| self.sub.add(&names.0))
    }

    /// Stop receiving these names. Unknown names are ignored.
    #[pyo3(signature = (*names))]
    fn remove(&self, names: Seq<Arg>) {
        self.sub.remove(&names.0)
    }

    /// Remove every name; the subscription stays open for `add()`.
    fn clear(&self) {
        self.sub.clear()
    }

    /// The queue's counters.
    fn stats(&self) -> SubscriptionStats {
        self.sub.stats().into()
    }

    /// The next event within `timeout` seconds (`None`: wait without limit); `None` when
    /// the time passed.
    #[pyo3(signature = (timeout = None))]
    fn get(&self, py: Python<'_>, timeout: Option<Seconds>) -> PyResult<Option<Message>> {
        self.pull(py, timeout)
    }

    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Message>> {
        match self.pull(py, None) {
            // Closed (the subscription or its client): the iteration ends.
            Err(e) if errors::is(py, &e, ErrorKind::Closed) => Ok(None),
            other => other,
        }
    }

    /// Unsubscribe and close. After it returns no callback of this subscription runs
    /// (called from inside its own callback: none after that callback returns).
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.sub.close());
        Ok(())
    }

    fn __repr__(&self) -> String {
        let how = if self.has_callback {
            "callback"
        } else {
            "pull"
        };
        let kind = kind_name(self.sub.kind());
        match self.sub.names().len() {
            _ if self.sub.is_closed() => format!("<redipc.Subscription {kind} {how} closed>"),
            1 => format!("<redipc.Subscription {kind} {how}, 1 name>"),
            n => format!("<redipc.Subscription {kind} {how}, {n} names>"),
        }
    }
}

/// The batch handler given to the core: the GIL once per batch, the callback once per
/// event, until the subscription is closed.
fn batch_handler(
    cb: Callback,
    kind: SubscriptionKind,
    closed: Arc<AtomicBool>,
) -> impl FnMut(&[Event]) + Send + 'static {
    move |events| {
        guard::attach(|py| {
            let Some(target) = cb.target(py) else { return };
            let mut messages = Messages::new(py, kind);
            for event in events {
                if closed.load(Ordering::Acquire) {
                    return;
                }
                if let Some(m) = messages.of(event) {
                    target.notify(|f| f.call1((m,)).map(drop));
                }
            }
        });
    }
}

/// A channel subscription whose channels each have their own callback.
#[pyclass(frozen, module = "redipc._native")]
pub(crate) struct SubscriptionGroup {
    group: Detached<blocking::SubscriptionGroup>,
    name: String,
    on_error: Option<Callable>,
    _client: blocking::Client,
}

impl SubscriptionGroup {
    /// A group made by `client` (also by an async call of `redipc.asyncio`).
    pub(crate) fn made(
        group: blocking::SubscriptionGroup,
        name: String,
        on_error: Option<Callable>,
        client: blocking::Client,
    ) -> Self {
        SubscriptionGroup {
            group: Detached::new(group),
            name,
            on_error,
            _client: client,
        }
    }

    /// Route `channel` to `f` and subscribe to it.
    fn register(&self, py: Python<'_>, channel: Bytes, f: Callable) -> PyResult<()> {
        let cb = Callback::new(py, f, self.on_error.as_ref());
        let call = cb.clone();
        let route = move |event: &Event| {
            call.notify_now(
                |f| match Messages::new(f.py(), SubscriptionKind::Channel).of(event) {
                    Some(m) => f.call1((m,)).map(drop),
                    None => Ok(()),
                },
            )
        };
        py.core(|| {
            self.group
                .handle_with(&channel, route, move || cb.release())
        })
    }
}

context_manager!(SubscriptionGroup);

#[pymethods]
impl SubscriptionGroup {
    /// The name given to `subscribe_group()`.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// Whether it was closed.
    #[getter]
    fn closed(&self) -> bool {
        self.group.subscription().is_closed()
    }

    /// The channels handled now, sorted.
    #[getter]
    fn names(&self) -> Vec<Bytes> {
        let mut names = self.group.channels();
        names.sort();
        names
    }

    /// Handle `channel` with `callback` (replacing an earlier handler of it) and subscribe
    /// to it. Without `callback`, returns a decorator.
    #[pyo3(signature = (channel, callback = None))]
    fn handle<'py>(
        slf: &Bound<'py, Self>,
        channel: Arg,
        callback: Option<Callable>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        if let Some(f) = callback {
            let same = f.0.clone_ref(py).into_bound(py);
            slf.get().register(py, channel.into(), f)?;
            return Ok(same);
        }
        let group = slf.clone().unbind();
        let channel = Bytes::from(channel);
        let decorator = move |args: &Bound<'_, PyTuple>, _: Option<&Bound<'_, PyDict>>| {
            let (f,): (Callable,) = args.extract()?;
            let same = f.0.clone_ref(args.py());
            group.get().register(args.py(), channel.clone(), f)?;
            Ok::<_, PyErr>(same)
        };
        let doc = Some(c"Register the decorated function as the channel's handler.");
        Ok(PyCFunction::new_closure(py, Some(c"handle"), doc, decorator)?.into_any())
    }

    /// Stop handling `channel` and unsubscribe from it.
    fn unhandle(&self, channel: Arg) {
        self.group.unhandle(channel)
    }

    /// The queue's counters.
    fn stats(&self) -> SubscriptionStats {
        self.group.subscription().stats().into()
    }

    /// Unsubscribe every channel and close. After it returns no handler runs.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.group.close());
        Ok(())
    }

    fn __repr__(&self) -> String {
        let n = self.group.channels().len();
        let state = if self.closed() { " closed" } else { "" };
        let s = if n == 1 { "" } else { "s" };
        format!(
            "<redipc.SubscriptionGroup {:?}, {n} handler{s}{state}>",
            self.name
        )
    }
}

impl Client {
    /// `subscribe()`, `psubscribe()` or `ssubscribe()`.
    #[allow(clippy::too_many_arguments)]
    fn subscribe_kind(
        &self,
        py: Python<'_>,
        kind: SubscriptionKind,
        names: Seq<Arg>,
        callback: Option<Callable>,
        capacity: Option<Count<1>>,
        overflow: Option<Policy>,
        on_error: Option<Callable>,
    ) -> PyResult<Subscription> {
        let mut opts = options(capacity, overflow);
        let cb = match (callback, &on_error) {
            (Some(f), on_error) => Some(Callback::new(py, f, on_error.as_ref())),
            (None, Some(_)) => return Err(py_err!(InvalidArgument, "on_error needs a callback")),
            (None, None) => None,
        };
        if let Some(cb) = &cb {
            let closed = opts.closed_flag();
            opts = opts.batch_handler(batch_handler(cb.clone(), kind, closed));
        }
        let sub = py.core(|| self.c.subscribe_kind(kind, &names.0, opts))?;
        let has_callback = cb.is_some();
        if let Some(cb) = cb {
            sub.on_closed(move || cb.release());
        }
        Ok(Subscription {
            sub: Detached::new(sub),
            has_callback,
            _client: self.c.clone(),
        })
    }
}

#[pymethods]
impl Client {
    /// `SUBSCRIBE channel...`: a subscription; see the stubs.
    #[pyo3(signature = (*channels, callback = None, capacity = None, overflow = None, on_error = None))]
    fn subscribe(
        &self,
        py: Python<'_>,
        channels: Seq<Arg>,
        callback: Option<Callable>,
        capacity: Option<Count<1>>,
        overflow: Option<Policy>,
        on_error: Option<Callable>,
    ) -> PyResult<Subscription> {
        let kind = SubscriptionKind::Channel;
        self.subscribe_kind(py, kind, channels, callback, capacity, overflow, on_error)
    }

    /// `PSUBSCRIBE pattern...`: a pattern subscription; see the stubs.
    #[pyo3(signature = (*patterns, callback = None, capacity = None, overflow = None, on_error = None))]
    fn psubscribe(
        &self,
        py: Python<'_>,
        patterns: Seq<Arg>,
        callback: Option<Callable>,
        capacity: Option<Count<1>>,
        overflow: Option<Policy>,
        on_error: Option<Callable>,
    ) -> PyResult<Subscription> {
        let kind = SubscriptionKind::Pattern;
        self.subscribe_kind(py, kind, patterns, callback, capacity, overflow, on_error)
    }

    /// `SSUBSCRIBE channel...`: a shard-channel subscription; see the stubs.
    #[pyo3(signature = (*channels, callback = None, capacity = None, overflow = None, on_error = None))]
    fn ssubscribe(
        &self,
        py: Python<'_>,
        channels: Seq<Arg>,
        callback: Option<Callable>,
        capacity: Option<Count<1>>,
        overflow: Option<Policy>,
        on_error: Option<Callable>,
    ) -> PyResult<Subscription> {
        let kind = SubscriptionKind::Shard;
        self.subscribe_kind(py, kind, channels, callback, capacity, overflow, on_error)
    }

    /// A subscription group: a handler per channel; see the stubs.
    #[pyo3(signature = (name = "", *, capacity = None, overflow = None, on_error = None))]
    fn subscribe_group(
        &self,
        py: Python<'_>,
        name: &str,
        capacity: Option<Count<1>>,
        overflow: Option<Policy>,
        on_error: Option<Callable>,
    ) -> PyResult<SubscriptionGroup> {
        let group = py.core(|| self.c.subscribe_group(options(capacity, overflow)))?;
        Ok(SubscriptionGroup::made(
            group,
            name.to_string(),
            on_error,
            self.c.clone(),
        ))
    }

    /// Poll mode: run the callbacks of waiting messages on this thread; see the stubs.
    #[pyo3(signature = (timeout = Some(Seconds::ZERO)), text_signature = "($self, timeout=0)")]
    fn poll(&self, py: Python<'_>, timeout: Option<Seconds>) -> PyResult<usize> {
        let handled = guard::wait(py, timeout.map(|t| t.0), |slice| {
            let _scope = PollScope::enter();
            Ok(Some(self.c.poll(Some(slice))?).filter(|n| *n > 0))
        });
        match PollScope::take_pending() {
            Some(interrupted) => Err(interrupted),
            None => Ok(handled?.unwrap_or(0)),
        }
    }

    /// Poll mode: the file descriptor that is readable while `poll()` has work.
    fn fileno(&self) -> PyResult<i32> {
        self.c.poll_fd().map_err(errors::raise)
    }
}
