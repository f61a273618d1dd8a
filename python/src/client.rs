//! `redipc.Client`: the blocking core client, with the GIL released for every wait.

use pyo3::prelude::*;
use pyo3::types::PyList;
use redipc::{ClusterMode, Options, SetOptions, TlsOptions, blocking};

use crate::convert::{self, Arg, Callable, Count, Dict, PemArg, Seconds, Seq, With};
use crate::errors::Core;
use crate::guard;
use crate::logs;
use crate::records::{ClientStats, NodeStats};
use crate::report;

/// A connection to one Redis server, shared by every thread that uses this object.
#[pyclass(frozen, module = "redipc._native")]
pub(crate) struct Client {
    pub(crate) c: blocking::Client,
}

context_manager!(Client);

/// `decr(key, amount)`'s amount as `INCRBY`'s (shared with `redipc.asyncio`).
pub(crate) fn decr_amount(amount: i64) -> PyResult<i64> {
    amount
        .checked_neg()
        .ok_or_else(|| py_err!(InvalidArgument, "decr(): amount {amount} is too small"))
}

/// `hset(key, field, value, mapping=)`'s pairs, `field` first (shared with
/// `redipc.asyncio`).
pub(crate) fn hset_fields(
    field: Option<Arg>,
    value: Option<Arg>,
    mapping: Option<Dict<Arg, Arg>>,
) -> PyResult<Vec<(Arg, Arg)>> {
    let mut fields = mapping.unwrap_or_default().0;
    match (field, value) {
        (Some(f), Some(v)) => fields.insert(0, (f, v)),
        (None, None) => {}
        _ => {
            return Err(py_err!(
                TypeError,
                "hset(): give both field and value, or mapping="
            ));
        }
    }
    Ok(fields)
}

#[pymethods]
impl Client {
    #[new]
    #[pyo3(signature = (
        url, *, connect_timeout = None, response_timeout = None, client_name = None,
        database = None, username = None, password = None, sentinel_username = None,
        sentinel_password = None, key_prefix = None, io_threads = None,
        resp3 = None, max_value_size = None, max_reply_size = None, poll_mode = None,
        health_check_interval = None, stream_maxlen = None, on_report = None, tls_ca = None,
        tls_cert = None, tls_key = None, tls_server_name = None, tls_insecure = false,
        cluster = None, read_from_replicas = None, direct_connections = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        url: &str,
        connect_timeout: Option<Seconds>,
        response_timeout: Option<Seconds>,
        client_name: Option<String>,
        database: Option<i64>,
        username: Option<String>,
        password: Option<String>,
        sentinel_username: Option<String>,
        sentinel_password: Option<String>,
        key_prefix: Option<String>,
        io_threads: Option<Count<1>>,
        resp3: Option<bool>,
        max_value_size: Option<Count<1>>,
        max_reply_size: Option<Count<0>>,
        poll_mode: Option<bool>,
        health_check_interval: Option<Seconds>,
        stream_maxlen: Option<Count<0>>,
        on_report: Option<Callable>,
        tls_ca: Option<PemArg>,
        tls_cert: Option<PemArg>,
        tls_key: Option<PemArg>,
        tls_server_name: Option<String>,
        tls_insecure: bool,
        cluster: Option<bool>,
        read_from_replicas: Option<bool>,
        direct_connections: Option<Count<0>>,
    ) -> PyResult<Self> {
        logs::sync(py)?;
        // Set field by field: the core checks the combination (a key without its
        // certificate, TLS options with a redis:// URL).
        let mut tls = TlsOptions::default()
            .with(tls_ca, |t, pem| t.ca(pem.0))
            .with(tls_server_name, TlsOptions::server_name)
            .insecure(tls_insecure);
        tls.cert = tls_cert.map(|pem| pem.0);
        tls.key = tls_key.map(|pem| pem.0);
        let opts = Options::default()
            .error_hook(report::hook(on_report.map(|f| f.0)))
            .with(connect_timeout, |o, t| o.connect_timeout(t.0))
            .with(response_timeout, |o, t| o.response_timeout(t.0))
            .with(client_name, Options::client_name)
            .with(database, Options::database)
            .with(username, Options::username)
            .with(password, Options::password)
            .with(sentinel_username, Options::sentinel_username)
            .with(sentinel_password, Options::sentinel_password)
            .with(key_prefix, Options::key_prefix)
            .with(io_threads, |o, n| o.io_threads(n.usize()))
            .with(resp3, Options::resp3)
            .with(max_value_size, |o, n| o.max_value_size(n.usize()))
            .with(max_reply_size, |o, n| o.max_reply_size(n.usize()))
            .with(poll_mode, Options::poll_mode)
            .with(health_check_interval, |o, t| o.health_check_interval(t.0))
            .with(stream_maxlen, |o, n| o.stream_maxlen(n.usize()))
            .with(cluster, |o, on| {
                o.cluster(if on {
                    ClusterMode::Cluster
                } else {
                    ClusterMode::Standalone
                })
            })
            .with(read_from_replicas, Options::read_from_replicas)
            .with(direct_connections, |o, n| o.direct_connections(n.usize()))
            .tls(tls);
        Ok(Client {
            c: py.core(|| blocking::Client::connect(url, opts))?,
        })
    }

    /// Close the client; later calls raise `ClosedError`. Closing twice is harmless.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.c.close());
        Ok(())
    }

    /// Whether the connection is up now (it is re-established in the background).
    #[getter]
    fn is_connected(&self) -> bool {
        self.c.is_connected()
    }

    /// Whether the client was made with `poll_mode=True`.
    #[getter]
    fn poll_mode(&self) -> bool {
        self.c.options().poll_mode
    }

    /// The client's counters and latency histogram since it was made.
    fn stats(&self, py: Python<'_>) -> ClientStats {
        py.detach(|| self.c.stats()).into()
    }

    /// Each server's share of the client's traffic (every node of a cluster).
    fn node_stats(&self, py: Python<'_>) -> Vec<NodeStats> {
        py.detach(|| self.c.node_stats())
            .into_iter()
            .map(NodeStats::from)
            .collect()
    }

    /// A hash tag whose keys land on the cluster's primary at `addr` (`"host:port"`).
    fn hash_tag_for_node(&self, py: Python<'_>, addr: &str) -> PyResult<String> {
        py.core(|| self.c.hash_tag_for_node(addr))
    }

    fn __repr__(&self) -> String {
        let state = match (self.c.is_closed(), self.c.is_connected()) {
            (true, _) => "closed",
            (false, true) => "connected",
            (false, false) => "disconnected",
        };
        format!("<redipc.Client {} {state}>", self.c.url())
    }

    /// Send any command and return its reply (see the type mapping in the stubs).
    #[pyo3(signature = (*args))]
    fn command<'py>(&self, py: Python<'py>, args: Seq<Arg>) -> PyResult<Bound<'py, PyAny>> {
        // A blocking command (`BLPOP ... 0`) waits with Ctrl-C checked.
        let reply = py.core(|| {
            self.c
                .command_checked(&args.0, guard::SLICE, guard::signals)
        })?;
        convert::reply(py, reply)
    }

    /// Several commands in one write; one reply per command, error replies in their slots.
    fn pipeline_raw<'py>(
        &self,
        py: Python<'py>,
        commands: Seq<Seq<Arg>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let commands: Vec<Vec<Arg>> = commands.0.into_iter().map(|c| c.0).collect();
        if commands.is_empty() {
            return Ok(PyList::empty(py));
        }
        convert::replies(py, py.core(|| self.c.pipeline_raw(&commands))?)
    }

    /// `GET key`: the value, or `None`.
    fn get(&self, py: Python<'_>, key: Arg) -> PyResult<Option<Vec<u8>>> {
        py.core(|| self.c.get(key))
    }

    /// `SET key value [PX ttl] [NX|XX]`: whether the value was set.
    #[pyo3(signature = (key, value, ttl = None, *, nx = false, xx = false))]
    fn set(
        &self,
        py: Python<'_>,
        key: Arg,
        value: Arg,
        ttl: Option<Seconds>,
        nx: bool,
        xx: bool,
    ) -> PyResult<bool> {
        let opts = SetOptions::default()
            .with(ttl, |o, t| o.ttl(t.0))
            .with(nx.then_some(()), |o, ()| o.nx())
            .with(xx.then_some(()), |o, ()| o.xx());
        py.core(|| self.c.set_with(key, value, opts))
    }

    /// `DEL key...`: how many keys were removed.
    #[pyo3(signature = (*keys))]
    fn delete(&self, py: Python<'_>, keys: Seq<Arg>) -> PyResult<i64> {
        py.core(|| self.c.del(&keys.0))
    }

    /// `EXISTS key...`: how many of the keys exist.
    #[pyo3(signature = (*keys))]
    fn exists(&self, py: Python<'_>, keys: Seq<Arg>) -> PyResult<i64> {
        py.core(|| self.c.exists(&keys.0))
    }

    /// `PEXPIRE key ms`: whether the timeout was set (the key exists).
    fn expire(&self, py: Python<'_>, key: Arg, seconds: Seconds) -> PyResult<bool> {
        py.core(|| self.c.expire(key, seconds.0))
    }

    /// `INCRBY key amount`: the new value.
    #[pyo3(signature = (key, amount = 1))]
    fn incr(&self, py: Python<'_>, key: Arg, amount: i64) -> PyResult<i64> {
        py.core(|| self.c.incr_by(key, amount))
    }

    /// `DECRBY key amount`: the new value.
    #[pyo3(signature = (key, amount = 1))]
    fn decr(&self, py: Python<'_>, key: Arg, amount: i64) -> PyResult<i64> {
        let by = decr_amount(amount)?;
        py.core(|| self.c.incr_by(key, by))
    }

    /// `HGET key field`: the value, or `None`.
    fn hget(&self, py: Python<'_>, key: Arg, field: Arg) -> PyResult<Option<Vec<u8>>> {
        py.core(|| self.c.hget(key, field))
    }

    /// `HSET key field value [field value ...]`: how many fields were added.
    #[pyo3(signature = (key, field = None, value = None, *, mapping = None))]
    fn hset(
        &self,
        py: Python<'_>,
        key: Arg,
        field: Option<Arg>,
        value: Option<Arg>,
        mapping: Option<Dict<Arg, Arg>>,
    ) -> PyResult<i64> {
        let fields = hset_fields(field, value, mapping)?;
        py.core(|| self.c.hset(key, &fields))
    }

    /// `HGETALL key`: every field and value (empty when the key does not exist).
    fn hgetall(&self, py: Python<'_>, key: Arg) -> PyResult<Dict<Vec<u8>, Vec<u8>>> {
        py.core(|| self.c.hgetall(key)).map(Dict)
    }

    /// `HDEL key field...`: how many fields were removed.
    #[pyo3(signature = (key, *fields))]
    fn hdel(&self, py: Python<'_>, key: Arg, fields: Seq<Arg>) -> PyResult<i64> {
        py.core(|| self.c.hdel(key, &fields.0))
    }

    /// `LPUSH key value...`: the new length.
    #[pyo3(signature = (key, *values))]
    fn lpush(&self, py: Python<'_>, key: Arg, values: Seq<Arg>) -> PyResult<i64> {
        py.core(|| self.c.lpush(key, &values.0))
    }

    /// `RPUSH key value...`: the new length.
    #[pyo3(signature = (key, *values))]
    fn rpush(&self, py: Python<'_>, key: Arg, values: Seq<Arg>) -> PyResult<i64> {
        py.core(|| self.c.rpush(key, &values.0))
    }

    /// `LPOP key`: the first element, or `None`.
    fn lpop(&self, py: Python<'_>, key: Arg) -> PyResult<Option<Vec<u8>>> {
        py.core(|| self.c.lpop(key))
    }

    /// `RPOP key`: the last element, or `None`.
    fn rpop(&self, py: Python<'_>, key: Arg) -> PyResult<Option<Vec<u8>>> {
        py.core(|| self.c.rpop(key))
    }

    /// `LLEN key`.
    fn llen(&self, py: Python<'_>, key: Arg) -> PyResult<i64> {
        py.core(|| self.c.llen(key))
    }

    /// `PUBLISH channel message`: how many subscribers received it.
    fn publish(&self, py: Python<'_>, channel: Arg, message: Arg) -> PyResult<i64> {
        py.core(|| self.c.publish(channel, message))
    }

    /// `SPUBLISH channel message`: how many subscribers received it.
    fn spublish(&self, py: Python<'_>, channel: Arg, message: Arg) -> PyResult<i64> {
        py.core(|| self.c.spublish(channel, message))
    }

    /// `PING`: `True` when the server answers (an error is raised otherwise).
    fn ping(&self, py: Python<'_>) -> PyResult<bool> {
        py.core(|| self.c.ping()).map(|()| true)
    }
}
