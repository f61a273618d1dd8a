//! `redipc.Client`: the blocking core client, with the GIL released for every wait.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};
use redipc::{Options, SetOptions, SubscriptionKind, blocking};

use crate::convert::{self, Arg, arg, args, duration, opt_bytes};
use crate::errors::{invalid_argument, to_pyerr};
use crate::pubsub;

/// A connection to one Redis server, shared by every thread that uses this object.
#[pyclass(frozen, module = "redipc._native", name = "Client")]
pub(crate) struct Client {
    pub(crate) inner: blocking::Client,
    /// The URL without its password, for `repr`.
    shown: String,
    closed: AtomicBool,
}

/// `url` with the password of its user-info part replaced by `***`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = match userinfo.split_once(':') {
                Some((user, _)) => format!("{user}:***"),
                None => userinfo.to_string(),
            };
            format!("{scheme}://{user}@{host}{tail}")
        }
        None => url.to_string(),
    }
}

impl Client {
    /// Run `f` on the core client with the GIL released; map its error.
    pub(crate) fn run<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&blocking::Client) -> redipc::Result<T> + Send,
    ) -> PyResult<T> {
        let inner = &self.inner;
        py.detach(|| f(inner)).map_err(|e| to_pyerr(py, e))
    }
}

fn named(method: &'static str, name: &'static str) -> impl Fn() -> String {
    move || format!("{method}(): argument '{name}'")
}

fn nth(method: &'static str, name: &'static str) -> impl Fn(usize) -> String {
    move |i| format!("{method}(): {name} {i}")
}

#[pymethods]
impl Client {
    #[new]
    #[pyo3(signature = (
        url,
        *,
        connect_timeout = None,
        response_timeout = None,
        client_name = None,
        database = None,
        username = None,
        password = None,
        key_prefix = None,
        io_threads = None,
        resp3 = true,
        max_value_size = None,
        poll_mode = false,
        health_check_interval = None,
        stream_maxlen = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        url: &str,
        connect_timeout: Option<&Bound<'_, PyAny>>,
        response_timeout: Option<&Bound<'_, PyAny>>,
        client_name: Option<String>,
        database: Option<i64>,
        username: Option<String>,
        password: Option<String>,
        key_prefix: Option<String>,
        io_threads: Option<i64>,
        resp3: bool,
        max_value_size: Option<i64>,
        poll_mode: bool,
        health_check_interval: Option<&Bound<'_, PyAny>>,
        stream_maxlen: Option<i64>,
    ) -> PyResult<Self> {
        let mut opts = Options::default().resp3(resp3).poll_mode(poll_mode);
        if let Some(n) = stream_maxlen {
            let n = usize::try_from(n).map_err(|_| {
                invalid_argument(
                    py,
                    format!("stream_maxlen must be >= 0 (0: unbounded), not {n}"),
                )
            })?;
            opts = opts.stream_maxlen(n);
        }
        if let Some(t) = health_check_interval {
            opts = opts.health_check_interval(duration(t, "health_check_interval")?);
        }
        if let Some(t) = connect_timeout {
            opts = opts.connect_timeout(duration(t, "connect_timeout")?);
        }
        if let Some(t) = response_timeout {
            opts = opts.response_timeout(duration(t, "response_timeout")?);
        }
        if let Some(name) = client_name {
            opts = opts.client_name(name);
        }
        if let Some(db) = database {
            opts = opts.database(db);
        }
        if let Some(user) = username {
            opts = opts.username(user);
        }
        if let Some(password) = password {
            opts = opts.password(password);
        }
        if let Some(prefix) = key_prefix {
            opts = opts.key_prefix(prefix);
        }
        if let Some(n) = io_threads {
            let n = usize::try_from(n)
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| invalid_argument(py, format!("io_threads must be >= 1, not {n}")))?;
            opts = opts.io_threads(n);
        }
        if let Some(n) = max_value_size {
            let n = usize::try_from(n).ok().filter(|n| *n >= 1).ok_or_else(|| {
                invalid_argument(py, format!("max_value_size must be >= 1, not {n}"))
            })?;
            opts = opts.max_value_size(n);
        }
        let inner = py
            .detach(|| blocking::Client::connect(url, opts))
            .map_err(|e| to_pyerr(py, e))?;
        Ok(Client {
            inner,
            shown: redact(url),
            closed: AtomicBool::new(false),
        })
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (_exc_type = None, _exc_value = None, _traceback = None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: Option<&Bound<'_, PyAny>>,
        _exc_value: Option<&Bound<'_, PyAny>>,
        _traceback: Option<&Bound<'_, PyAny>>,
    ) -> bool {
        self.close(py);
        false
    }

    /// Close the client; later calls raise `ClosedError`. Closing twice is harmless.
    fn close(&self, py: Python<'_>) {
        self.closed.store(true, Ordering::Relaxed);
        let inner = &self.inner;
        py.detach(|| inner.close());
    }

    /// Whether the connection is up now (it is re-established in the background).
    #[getter]
    fn is_connected(&self) -> bool {
        self.inner.is_connected()
    }

    fn __repr__(&self) -> String {
        let state = if self.closed.load(Ordering::Relaxed) {
            "closed"
        } else if self.inner.is_connected() {
            "connected"
        } else {
            "disconnected"
        };
        format!("<redipc.Client {} {state}>", self.shown)
    }

    /// Send any command and return its reply (see the type mapping in the stubs).
    #[pyo3(signature = (*args))]
    fn command<'py>(
        &self,
        py: Python<'py>,
        args: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let argv = convert::args(args, &nth("command", "argument"))?;
        let r = self.run(py, |c| c.command(&argv))?;
        convert::reply(py, r)
    }

    /// Send several commands in one write; one reply per command, error replies as
    /// `ResponseError` instances in their slots.
    fn pipeline_raw<'py>(
        &self,
        py: Python<'py>,
        commands: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let mut cmds: Vec<Vec<Arg>> = Vec::new();
        for (i, cmd) in commands.try_iter()?.enumerate() {
            let cmd = cmd?;
            let tuple = if let Ok(list) = cmd.cast::<PyList>() {
                list.to_tuple()
            } else if let Ok(tuple) = cmd.cast::<PyTuple>() {
                tuple.clone()
            } else {
                return Err(PyTypeError::new_err(format!(
                    "pipeline_raw(): command {i} must be a list or tuple of arguments, not {}",
                    convert::type_name(&cmd)
                )));
            };
            let what = move |j: usize| format!("pipeline_raw(): command {i} argument {j}");
            cmds.push(args(&tuple, &what)?);
        }
        if cmds.is_empty() {
            // Nothing to send (the core refuses an empty pipeline with a ProtocolError).
            return Ok(PyList::empty(py));
        }
        let replies = self.run(py, |c| c.pipeline_raw(&cmds))?;
        let items = replies
            .into_iter()
            .map(|r| convert::reply(py, r))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, items)
    }

    /// `GET key`: the value, or `None`.
    fn get<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let key = arg(key, &named("get", "key"))?;
        let v = self.run(py, |c| c.get(&key))?;
        Ok(opt_bytes(py, v))
    }

    /// `SET key value [PX ttl] [NX|XX]`: whether the value was set.
    #[pyo3(signature = (key, value, ttl = None, *, nx = false, xx = false))]
    fn set(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
        ttl: Option<&Bound<'_, PyAny>>,
        nx: bool,
        xx: bool,
    ) -> PyResult<bool> {
        let key = arg(key, &named("set", "key"))?;
        let value = arg(value, &named("set", "value"))?;
        let mut opts = SetOptions::default();
        if let Some(ttl) = ttl {
            opts = opts.ttl(duration(ttl, "set(): ttl")?);
        }
        if nx {
            opts = opts.nx();
        }
        if xx {
            opts = opts.xx();
        }
        self.run(py, |c| c.set_with(&key, &value, opts))
    }

    /// `DEL key...`: how many keys were removed.
    #[pyo3(signature = (*keys))]
    fn delete(&self, py: Python<'_>, keys: &Bound<'_, PyTuple>) -> PyResult<i64> {
        let keys = args(keys, &nth("delete", "key"))?;
        self.run(py, |c| c.del(&keys))
    }

    /// `EXISTS key...`: how many of the keys exist.
    #[pyo3(signature = (*keys))]
    fn exists(&self, py: Python<'_>, keys: &Bound<'_, PyTuple>) -> PyResult<i64> {
        let keys = args(keys, &nth("exists", "key"))?;
        self.run(py, |c| c.exists(&keys))
    }

    /// `PEXPIRE key ms`: whether the timeout was set (the key exists).
    fn expire(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        seconds: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let key = arg(key, &named("expire", "key"))?;
        let ttl = duration(seconds, "expire(): seconds")?;
        self.run(py, |c| c.expire(&key, ttl))
    }

    /// `INCRBY key amount`: the new value.
    #[pyo3(signature = (key, amount = 1))]
    fn incr(&self, py: Python<'_>, key: &Bound<'_, PyAny>, amount: i64) -> PyResult<i64> {
        let key = arg(key, &named("incr", "key"))?;
        if amount == 1 {
            self.run(py, |c| c.incr(&key))
        } else {
            self.run(py, |c| c.incr_by(&key, amount))
        }
    }

    /// `DECRBY key amount`: the new value.
    #[pyo3(signature = (key, amount = 1))]
    fn decr(&self, py: Python<'_>, key: &Bound<'_, PyAny>, amount: i64) -> PyResult<i64> {
        let key = arg(key, &named("decr", "key"))?;
        if amount == 1 {
            return self.run(py, |c| c.decr(&key));
        }
        let by = amount
            .checked_neg()
            .ok_or_else(|| invalid_argument(py, format!("decr(): amount {amount} is too small")))?;
        self.run(py, |c| c.incr_by(&key, by))
    }

    /// `HGET key field`: the value, or `None`.
    fn hget<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        field: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let key = arg(key, &named("hget", "key"))?;
        let field = arg(field, &named("hget", "field"))?;
        let v = self.run(py, |c| c.hget(&key, &field))?;
        Ok(opt_bytes(py, v))
    }

    /// `HSET key field value [field value ...]`: how many fields were added.
    #[pyo3(signature = (key, field = None, value = None, *, mapping = None))]
    fn hset(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        field: Option<&Bound<'_, PyAny>>,
        value: Option<&Bound<'_, PyAny>>,
        mapping: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<i64> {
        let key = arg(key, &named("hset", "key"))?;
        let mut fields: Vec<(Arg, Arg)> = Vec::new();
        match (field, value) {
            (Some(f), Some(v)) => fields.push((
                arg(f, &named("hset", "field"))?,
                arg(v, &named("hset", "value"))?,
            )),
            (None, None) => {}
            _ => {
                return Err(PyTypeError::new_err(
                    "hset(): give both field and value, or mapping=",
                ));
            }
        }
        if let Some(mapping) = mapping {
            let items = match mapping.cast::<PyDict>() {
                Ok(d) => d.items().into_any(),
                Err(_) => mapping
                    .call_method0(pyo3::intern!(py, "items"))
                    .map_err(|_| {
                        PyTypeError::new_err(format!(
                            "hset(): argument 'mapping' must be a mapping, not {}",
                            convert::type_name(mapping)
                        ))
                    })?,
            };
            for item in items.try_iter()? {
                let (f, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item?.extract()?;
                fields.push((
                    arg(&f, &named("hset", "mapping key"))?,
                    arg(&v, &named("hset", "mapping value"))?,
                ));
            }
        }
        if fields.is_empty() {
            return Err(PyTypeError::new_err(
                "hset(): give a field and a value, or a non-empty mapping=",
            ));
        }
        self.run(py, |c| c.hset(&key, &fields))
    }

    /// `HGETALL key`: every field and value, in the server's order (empty when the key does
    /// not exist).
    fn hgetall<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let key = arg(key, &named("hgetall", "key"))?;
        let pairs = self.run(py, |c| c.hgetall(&key))?;
        let dict = PyDict::new(py);
        for (f, v) in pairs {
            dict.set_item(PyBytes::new(py, &f), PyBytes::new(py, &v))?;
        }
        Ok(dict)
    }

    /// `HDEL key field...`: how many fields were removed.
    #[pyo3(signature = (key, *fields))]
    fn hdel(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        fields: &Bound<'_, PyTuple>,
    ) -> PyResult<i64> {
        let key = arg(key, &named("hdel", "key"))?;
        let fields = args(fields, &nth("hdel", "field"))?;
        self.run(py, |c| c.hdel(&key, &fields))
    }

    /// `LPUSH key value...`: the new length.
    #[pyo3(signature = (key, *values))]
    fn lpush(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        values: &Bound<'_, PyTuple>,
    ) -> PyResult<i64> {
        let key = arg(key, &named("lpush", "key"))?;
        let values = args(values, &nth("lpush", "value"))?;
        self.run(py, |c| c.lpush(&key, &values))
    }

    /// `RPUSH key value...`: the new length.
    #[pyo3(signature = (key, *values))]
    fn rpush(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        values: &Bound<'_, PyTuple>,
    ) -> PyResult<i64> {
        let key = arg(key, &named("rpush", "key"))?;
        let values = args(values, &nth("rpush", "value"))?;
        self.run(py, |c| c.rpush(&key, &values))
    }

    /// `LPOP key`: the first element, or `None`.
    fn lpop<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let key = arg(key, &named("lpop", "key"))?;
        let v = self.run(py, |c| c.lpop(&key))?;
        Ok(opt_bytes(py, v))
    }

    /// `RPOP key`: the last element, or `None`.
    fn rpop<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let key = arg(key, &named("rpop", "key"))?;
        let v = self.run(py, |c| c.rpop(&key))?;
        Ok(opt_bytes(py, v))
    }

    /// `LLEN key`.
    fn llen(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<i64> {
        let key = arg(key, &named("llen", "key"))?;
        self.run(py, |c| c.llen(&key))
    }

    /// `PUBLISH channel message`: how many subscribers received it.
    fn publish(
        &self,
        py: Python<'_>,
        channel: &Bound<'_, PyAny>,
        message: &Bound<'_, PyAny>,
    ) -> PyResult<i64> {
        let channel = arg(channel, &named("publish", "channel"))?;
        let message = arg(message, &named("publish", "message"))?;
        self.run(py, |c| c.publish(&channel, &message))
    }

    /// `PING`: `True` when the server answers (an error is raised otherwise).
    fn ping(&self, py: Python<'_>) -> PyResult<bool> {
        self.run(py, |c| c.ping())?;
        Ok(true)
    }

    /// `SPUBLISH channel message`: how many subscribers received it.
    fn spublish(
        &self,
        py: Python<'_>,
        channel: &Bound<'_, PyAny>,
        message: &Bound<'_, PyAny>,
    ) -> PyResult<i64> {
        let channel = arg(channel, &named("spublish", "channel"))?;
        let message = arg(message, &named("spublish", "message"))?;
        self.run(py, |c| c.spublish(&channel, &message))
    }

    /// `SUBSCRIBE channel...`: a subscription; see the stubs.
    #[pyo3(signature = (*channels, callback = None, capacity = 10_000, overflow = "block", on_error = None))]
    fn subscribe(
        &self,
        py: Python<'_>,
        channels: &Bound<'_, PyTuple>,
        callback: Option<Bound<'_, PyAny>>,
        capacity: i64,
        overflow: &str,
        on_error: Option<Bound<'_, PyAny>>,
    ) -> PyResult<pubsub::Subscription> {
        let common = pubsub::Common::new(py, "subscribe", capacity, overflow, on_error)?;
        pubsub::subscribe(
            py,
            &self.inner,
            SubscriptionKind::Channel,
            channels,
            callback,
            common,
        )
    }

    /// `PSUBSCRIBE pattern...`: a pattern subscription; see the stubs.
    #[pyo3(signature = (*patterns, callback = None, capacity = 10_000, overflow = "block", on_error = None))]
    fn psubscribe(
        &self,
        py: Python<'_>,
        patterns: &Bound<'_, PyTuple>,
        callback: Option<Bound<'_, PyAny>>,
        capacity: i64,
        overflow: &str,
        on_error: Option<Bound<'_, PyAny>>,
    ) -> PyResult<pubsub::Subscription> {
        let common = pubsub::Common::new(py, "psubscribe", capacity, overflow, on_error)?;
        pubsub::subscribe(
            py,
            &self.inner,
            SubscriptionKind::Pattern,
            patterns,
            callback,
            common,
        )
    }

    /// `SSUBSCRIBE channel...`: a shard-channel subscription; see the stubs.
    #[pyo3(signature = (*channels, callback = None, capacity = 10_000, overflow = "block", on_error = None))]
    fn ssubscribe(
        &self,
        py: Python<'_>,
        channels: &Bound<'_, PyTuple>,
        callback: Option<Bound<'_, PyAny>>,
        capacity: i64,
        overflow: &str,
        on_error: Option<Bound<'_, PyAny>>,
    ) -> PyResult<pubsub::Subscription> {
        let common = pubsub::Common::new(py, "ssubscribe", capacity, overflow, on_error)?;
        pubsub::subscribe(
            py,
            &self.inner,
            SubscriptionKind::Shard,
            channels,
            callback,
            common,
        )
    }

    /// A subscription group: a handler per channel; see the stubs.
    #[pyo3(signature = (name = "", *, capacity = 10_000, overflow = "block", on_error = None))]
    fn subscribe_group(
        &self,
        py: Python<'_>,
        name: &str,
        capacity: i64,
        overflow: &str,
        on_error: Option<Bound<'_, PyAny>>,
    ) -> PyResult<pubsub::SubscriptionGroup> {
        let common = pubsub::Common::new(py, "subscribe_group", capacity, overflow, on_error)?;
        pubsub::subscribe_group(py, &self.inner, name.to_string(), common)
    }

    /// Poll mode: run the callbacks of waiting messages on this thread; see the stubs.
    #[pyo3(signature = (timeout = convert::Wait::ZERO), text_signature = "($self, timeout=0)")]
    fn poll(&self, py: Python<'_>, timeout: convert::Wait) -> PyResult<usize> {
        let deadline = timeout.0.map(|t| Instant::now() + t);
        let inner = &self.inner;
        loop {
            let slice = match deadline {
                None => pubsub::SLICE,
                Some(d) => d
                    .saturating_duration_since(Instant::now())
                    .min(pubsub::SLICE),
            };
            let n = {
                let Some(_busy) = pubsub::Busy::enter() else {
                    return Ok(0); // the interpreter exits: no more callbacks
                };
                let _scope = pubsub::PollScope::enter();
                py.detach(|| inner.poll(Some(slice)))
            };
            if let Some(err) = pubsub::PollScope::take_pending() {
                return Err(err);
            }
            let n = n.map_err(|e| to_pyerr(py, e))?;
            if n > 0 || deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(n);
            }
            py.check_signals()?;
        }
    }

    /// Poll mode: the file descriptor that is readable while `poll()` has work.
    fn fileno(&self, py: Python<'_>) -> PyResult<i32> {
        self.inner.poll_fd().map_err(|e| to_pyerr(py, e))
    }

    /// Whether the client was made with `poll_mode=True`.
    #[getter]
    fn poll_mode(&self) -> bool {
        self.inner.options().poll_mode
    }
}
