//! Request/reply RPC over a request queue and pub/sub.
//!
//! A call pushes an envelope (call id, reply channel, absolute deadline, method, payload)
//! into the service's queue `{prefix}{rpc:SERVICE}:pending`; a server (a plain queue
//! worker) pops it, drops it unrun if its deadline passed, runs the handler, and publishes
//! the reply envelope on the caller's reply channel. Each client has one reply channel
//! (`{prefix}rpc:reply:<random>`), subscribed on its first call and shared by all its calls,
//! so a call leaves no key and no subscription behind. Servers are instances in the service
//! registry (`patterns/registry.rs`: heartbeat, metadata, expiry on the server's clock),
//! which tells a caller that timed out whether anybody serves the service at all.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::{OnceCell, oneshot};

use crate::client::Client;
use crate::error::{Error, ErrorKind, Result};
use crate::net::runtime;
use crate::patterns::call::{CLEANUP_GRACE, Call, Waited, push_and_wait, within};
use crate::patterns::queue::{Protocol, QueueKeys, Request, Worker, WorkerOptions};
use crate::patterns::registry::{self, ServiceKeys};
use crate::pubsub::{Event, SubscribeOptions, Subscription};
use crate::report::{ReportSource, call_handler};

const REQ_MAGIC: &[u8] = b"RPQ1";
const REP_MAGIC: &[u8] = b"RPR1";
const STATUS_OK: u8 = 0;
const STATUS_ERR: u8 = 1;

/// An RPC handler: the reply payload, or an error (make one with [`Error::handler`]) whose
/// message goes back to the caller as a [`ErrorKind::Remote`] error. A panic is a remote
/// error too.
pub type RpcHandler = Arc<dyn Fn(&Call) -> Result<Vec<u8>> + Send + Sync>;

/// Options of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallOptions {
    /// How long to wait for the reply (default 5 s).
    pub timeout: Duration,
    /// Fail at once with [`ErrorKind::NoServer`] when no live server of the service is
    /// registered (costs one round trip more; default off: then a call nobody answers
    /// fails after its timeout, with `NoServer` when no server is registered).
    pub fail_fast: bool,
    /// The wire protocol (default [`Protocol::Redipc`]); with [`Protocol::RedisIpc`] the
    /// service is the Redis list itself and the payload JSON text.
    pub protocol: Protocol,
}

impl Default for CallOptions {
    fn default() -> Self {
        CallOptions {
            timeout: Duration::from_secs(5),
            fail_fast: false,
            protocol: Protocol::Redipc,
        }
    }
}

impl CallOptions {
    /// Set the timeout.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }
    /// Turn fail-fast on or off.
    pub fn fail_fast(mut self, on: bool) -> Self {
        self.fail_fast = on;
        self
    }
    /// Set the wire protocol (see [`Protocol`]).
    pub fn protocol(mut self, p: Protocol) -> Self {
        self.protocol = p;
        self
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn put_short(out: &mut Vec<u8>, b: &[u8]) -> Result<()> {
    let n = u16::try_from(b.len()).map_err(|_| Error::invalid("name longer than 65535 bytes"))?;
    out.extend_from_slice(&n.to_be_bytes());
    out.extend_from_slice(b);
    Ok(())
}

fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if b.len() < n {
        return None;
    }
    let (head, rest) = b.split_at(n);
    *b = rest;
    Some(head)
}

fn take_u64(b: &mut &[u8]) -> Option<u64> {
    take(b, 8).map(|s| u64::from_be_bytes(s.try_into().unwrap_or([0; 8])))
}

fn take_short<'a>(b: &mut &'a [u8]) -> Option<&'a [u8]> {
    let n = take(b, 2).map(|s| u16::from_be_bytes([s[0], s[1]]))? as usize;
    take(b, n)
}

struct RequestEnvelope<'a> {
    deadline_ms: u64,
    call_id: u64,
    reply_to: &'a [u8],
    method: &'a [u8],
    payload: &'a [u8],
}

fn encode_request(e: &RequestEnvelope<'_>) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(32 + e.reply_to.len() + e.method.len() + e.payload.len());
    out.extend_from_slice(REQ_MAGIC);
    out.extend_from_slice(&e.deadline_ms.to_be_bytes());
    out.extend_from_slice(&e.call_id.to_be_bytes());
    put_short(&mut out, e.reply_to)?;
    put_short(&mut out, e.method)?;
    out.extend_from_slice(e.payload);
    Ok(out)
}

fn decode_request(mut b: &[u8]) -> Option<RequestEnvelope<'_>> {
    if take(&mut b, 4)? != REQ_MAGIC {
        return None;
    }
    Some(RequestEnvelope {
        deadline_ms: take_u64(&mut b)?,
        call_id: take_u64(&mut b)?,
        reply_to: take_short(&mut b)?,
        method: take_short(&mut b)?,
        payload: b,
    })
}

fn encode_reply(call_id: u64, status: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(13 + payload.len());
    out.extend_from_slice(REP_MAGIC);
    out.extend_from_slice(&call_id.to_be_bytes());
    out.push(status);
    out.extend_from_slice(payload);
    out
}

fn decode_reply(mut b: &[u8]) -> Option<(u64, u8, &[u8])> {
    if take(&mut b, 4)? != REP_MAGIC {
        return None;
    }
    let id = take_u64(&mut b)?;
    let status = *take(&mut b, 1)?.first()?;
    Some((id, status, b))
}

type Waiters = Arc<Mutex<HashMap<u64, oneshot::Sender<(u8, Bytes)>>>>;

/// The caller side of a client: its reply channel and the calls waiting on it.
pub(crate) struct Caller {
    channel: Bytes,
    waiters: Waiters,
    next_id: AtomicU64,
    _sub: Subscription,
}

impl Caller {
    async fn start(client: &Client) -> Result<Caller> {
        let channel = Bytes::from(format!(
            "{}rpc:reply:{:016x}",
            client.options().key_prefix,
            rand::random::<u64>()
        ));
        let waiters: Waiters = Arc::default();
        let w = waiters.clone();
        let mut opts = SubscribeOptions::default().batch_handler(move |events| {
            for e in events {
                if let Event::Message(m) = e
                    && let Some((id, status, payload)) = decode_reply(&m.payload)
                {
                    let tx = w.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                    if let Some(tx) = tx {
                        let _ = tx.send((status, Bytes::copy_from_slice(payload)));
                    }
                }
            }
        });
        // Replies go straight to the waiting call from the connection task.
        opts.inline = true;
        let sub = client.subscribe(&[&channel[..]], opts).await?;
        Ok(Caller {
            channel,
            waiters,
            next_id: AtomicU64::new(1),
            _sub: sub,
        })
    }
}

fn service_keys(client: &Client, service: &[u8]) -> Result<QueueKeys> {
    QueueKeys::new(&client.options().key_prefix, "rpc", service)
        .map_err(|e| e.context("RPC service name"))
}

/// A running RPC server (a worker on the service's queue, and its registry instance); stop it with
/// [`RpcServer::stop`] (or drop it).
#[derive(Debug)]
pub struct RpcServer {
    worker: Worker,
}

impl RpcServer {
    pub(crate) fn from_worker(worker: Worker) -> RpcServer {
        RpcServer { worker }
    }

    runner_methods!(
        [worker.runner()],
        "RPC server",
        "no more calls are taken, and it leaves the service registry at once (callers see `NoServer` once no server is left)."
    );

    /// Counters of the underlying worker (handled = calls answered).
    pub fn stats(&self) -> crate::WorkerStats {
        self.worker.stats()
    }
}

/// End the heartbeat task, then remove the instance (after it, so no late renewal re-adds
/// it: a renewal already sent is ahead of the removal on the connection). The task is
/// aborted, not waited for: the server may stop without `stop()` (its client closed), and
/// then nothing else ends the task.
fn withdraw(client: Client, task: tokio::task::JoinHandle<()>, keys: ServiceKeys, id: String) {
    let c = client.clone();
    let work = async move {
        task.abort();
        let _ = task.await;
        let _ = registry::withdraw(&c, &keys, &id).await;
    };
    client.runtime_handle().run_or_spawn(work);
}

impl Client {
    async fn caller(&self) -> Result<Arc<Caller>> {
        self.extension::<CallerCell>()
            .get_or_try_init(|| async { Caller::start(self).await.map(Arc::new) })
            .await
            .cloned()
    }

    async fn has_server(&self, keys: &QueueKeys) -> Result<bool> {
        registry::has_server(self, &ServiceKeys::new(self, keys)).await
    }
}

client_methods! {
    /// Call `method` of `service` with `payload`. `opts.timeout` bounds the whole call
    /// (sending the request and waiting for the reply, whatever the connection's response
    /// timeout), plus at most 200 ms to take back a request no server took. Errors: [`ErrorKind::Remote`] with the handler's message,
    /// [`ErrorKind::Timeout`], [`ErrorKind::NoServer`] when nobody serves the service.
    pub async fn call_with(
        &self,
        service: impl AsRef<[u8]>,
        method: impl AsRef<[u8]>,
        payload: impl AsRef<[u8]>,
        opts: CallOptions,
    ) -> Result<Bytes> {
        let service = service.as_ref();
        // Borrowed as plain bytes, so that the future is `Send` (shared with `what`).
        let method = method.as_ref();
        let what = || match method {
            [] => format!("call {}", String::from_utf8_lossy(service)),
            m => format!(
                "call {}.{}",
                String::from_utf8_lossy(service),
                String::from_utf8_lossy(m)
            ),
        };
        if opts.timeout.is_zero() {
            return Err(Error::invalid("a call timeout must be greater than zero"));
        }
        if opts.protocol == Protocol::RedisIpc {
            if opts.fail_fast {
                return Err(Error::invalid(
                    "fail_fast needs redipc's server registry; the redis-ipc protocol has none",
                )
                .context(what()));
            }
            return crate::patterns::rpc_json::call(
                self,
                service,
                method,
                payload.as_ref(),
                opts.timeout,
                &what,
            )
            .await;
        }
        let keys = service_keys(self, service)?;
        // The timeout bounds the whole call: registering the caller, sending the request,
        // the reply, and (within a short grace) taking a late request back.
        let deadline = tokio::time::Instant::now() + opts.timeout;
        if opts.fail_fast && !within(deadline, opts.timeout, self.has_server(&keys)).await? {
            return Err(no_server(service).context(what()));
        }
        let caller = within(deadline, opts.timeout, self.caller())
            .await
            .map_err(|e| e.context(what()))?;
        let id = caller.next_id.fetch_add(1, Ordering::Relaxed);
        let envelope = encode_request(&RequestEnvelope {
            deadline_ms: now_ms() + opts.timeout.as_millis() as u64,
            call_id: id,
            reply_to: &caller.channel,
            method,
            payload: payload.as_ref(),
        })?;
        let (tx, rx) = oneshot::channel();
        caller
            .waiters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, tx);
        let forget = || {
            caller
                .waiters
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
        };
        let pending = keys.pending();
        let outcome = match push_and_wait(self, &pending, &envelope, deadline, opts.timeout, rx)
            .await
        {
            Ok(Waited::Reply(reply)) => Ok(reply),
            Ok(Waited::TimedOut(e)) => Err(e),
            Err(e) => {
                forget();
                return Err(e.context(what()));
            }
        };
        match outcome {
            Ok((STATUS_OK, payload)) => Ok(payload),
            Ok((_, message)) => Err(Error::new(
                ErrorKind::Remote,
                String::from_utf8_lossy(&message).into_owned(),
            )
            .context(what())),
            Err(timeout) => {
                forget();
                // Take our request back if no server took it yet, so nothing is left behind,
                // and tell "no server" from "too slow"; both within a short grace (a request
                // left behind is dropped by the server: its deadline has passed).
                let settle = async {
                    let _ = self
                        .command(&[b"LREM".as_slice(), &keys.pending(), b"1", &envelope])
                        .await;
                    self.has_server(&keys).await.unwrap_or(true)
                };
                match tokio::time::timeout(CLEANUP_GRACE, settle).await {
                    Ok(false) => Err(no_server(service).context(what())),
                    _ => Err(timeout.context(what())),
                }
            }
        }
    }

    /// [`call_with`](Client::call_with) with a timeout and no method name.
    pub async fn call(
        &self,
        service: impl AsRef<[u8]>,
        payload: impl AsRef<[u8]>,
        timeout: Duration,
    ) -> Result<Bytes> {
        self.call_with(
            service,
            b"",
            payload,
            CallOptions::default().timeout(timeout),
        )
        .await
    }

    /// Answer calls to `service` with `handler` (`concurrency` handlers in parallel); see
    /// [`serve_with`](Client::serve_with).
    pub async fn serve(
        &self,
        service: impl AsRef<[u8]>,
        handler: impl Fn(&Call) -> Result<Vec<u8>> + Send + Sync + 'static,
        concurrency: usize,
    ) -> Result<RpcServer> {
        self.serve_with(
            service,
            handler,
            WorkerOptions::default().concurrency(concurrency),
        )
        .await
    }

    /// Answer calls to `service` with `handler`, with the worker options `opts`
    /// (concurrency, block timeout = how fast an idle server notices `stop`, error hook;
    /// the queue options `reliable` and `prefetch` are fixed: RPC is at-most-once, one call
    /// at a time per handler). Requests whose deadline passed are dropped without running
    /// the handler. Returns once the server is announced, so a `fail_fast` call made right
    /// after finds it.
    pub async fn serve_with(
        &self,
        service: impl AsRef<[u8]>,
        handler: impl Fn(&Call) -> Result<Vec<u8>> + Send + Sync + 'static,
        opts: WorkerOptions,
    ) -> Result<RpcServer> {
        if self.conn().is_closed() {
            return Err(Error::closed());
        }
        if opts.protocol == Protocol::RedisIpc {
            let worker = crate::patterns::rpc_json::serve(self, service.as_ref(), handler, opts)?;
            return Ok(RpcServer::from_worker(worker));
        }
        let keys = service_keys(self, service.as_ref())?;
        let worker_keys = keys.clone();
        let reg = ServiceKeys::new(self, &keys);
        let meta = registry::metadata(&opts.version, &opts.metadata);
        let id = format!("{:016x}", rand::random::<u64>());
        let publisher = self.clone();
        let wrapped = move |req: &Request| -> Result<()> {
            let Some(env) = decode_request(&req.payload) else {
                return Err(Error::handler("not an RPC request envelope; dropped"));
            };
            if now_ms() > env.deadline_ms {
                return Ok(()); // the caller stopped waiting: do not run it
            }
            let call = Call {
                method: Bytes::copy_from_slice(env.method),
                payload: Bytes::copy_from_slice(env.payload),
                deadline: UNIX_EPOCH + Duration::from_millis(env.deadline_ms),
            };
            let reply = match call_handler(|| handler(&call)) {
                Ok(v) => encode_reply(env.call_id, STATUS_OK, &v),
                // The caller gets the handler's own words; another error (one of the
                // client's, passed on with `?`) says its kind too.
                Err(e) if e.kind() == ErrorKind::Handler => {
                    encode_reply(env.call_id, STATUS_ERR, e.message().as_bytes())
                }
                Err(e) => encode_reply(env.call_id, STATUS_ERR, e.to_string().as_bytes()),
            };
            let mut cmd = redis::cmd("PUBLISH");
            cmd.arg(env.reply_to).arg(reply);
            runtime::block_on(publisher.runtime_handle(), publisher.run_cmd(&cmd))
                .and_then(|r| r)
                .map_err(|e| e.context("sending the reply"))?;
            Ok(())
        };
        registry::announce(self, &reg, &id, &meta).await?;
        let worker = Worker::start(
            self.clone(),
            vec![keys],
            Arc::new(wrapped),
            opts.reliable(false).prefetch(1),
            ReportSource::RpcServer,
        )?;
        let c = self.clone();
        let stop_heartbeat = Arc::new(tokio::sync::Notify::new());
        let stop = stop_heartbeat.clone();
        let (hb_keys, member) = (ServiceKeys::new(self, &worker_keys), id.clone());
        let heartbeat = self.runtime_handle().spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(registry::HEARTBEAT) => {}
                    _ = stop.notified() => return,
                }
                let _ = registry::announce(&c, &hb_keys, &member, &meta).await;
            }
        });
        // A stopping server is withdrawn at once (no renewal), and removed from the
        // registry when it has stopped.
        worker
            .runner()
            .waker(Arc::new(move || stop_heartbeat.notify_one()));
        let client = self.clone();
        worker.on_stopped(move || withdraw(client, heartbeat, reg, id));
        Ok(RpcServer { worker })
    }

    /// Serve several methods: each call is routed by its method name; an unknown method is
    /// a remote error naming it.
    pub async fn serve_methods(
        &self,
        service: impl AsRef<[u8]>,
        methods: HashMap<String, RpcHandler>,
        concurrency: usize,
    ) -> Result<RpcServer> {
        self.serve_methods_with(
            service,
            methods,
            WorkerOptions::default().concurrency(concurrency),
        )
        .await
    }

    /// [`serve_methods`](Client::serve_methods) with the worker options `opts` (as for
    /// [`serve_with`](Client::serve_with)); on the redis-ipc wire an unknown method
    /// answers the fleet's `"unknown method: <m>"`.
    pub async fn serve_methods_with(
        &self,
        service: impl AsRef<[u8]>,
        methods: HashMap<String, RpcHandler>,
        opts: WorkerOptions,
    ) -> Result<RpcServer> {
        let fleet = opts.protocol == Protocol::RedisIpc;
        let handler = move |call: &Call| {
            let name = String::from_utf8_lossy(&call.method);
            match methods.get(&*name) {
                Some(h) => h(call),
                None if fleet => Err(Error::handler(format!("unknown method: {name}"))),
                None => Err(Error::handler(format!("unknown method {name:?}"))),
            }
        };
        self.serve_with(service, handler, opts).await
    }
}

fn no_server(service: &[u8]) -> Error {
    Error::new(
        ErrorKind::NoServer,
        format!(
            "no server of service {:?} is running",
            String::from_utf8_lossy(service)
        ),
    )
}

/// The lazily started caller state of a client.
type CallerCell = OnceCell<Arc<Caller>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip() {
        let e = encode_request(&RequestEnvelope {
            deadline_ms: 42,
            call_id: 7,
            reply_to: b"chan",
            method: b"add",
            payload: b"\x00\x01",
        })
        .unwrap();
        let d = decode_request(&e).unwrap();
        assert_eq!(
            (d.deadline_ms, d.call_id, d.reply_to, d.method, d.payload),
            (42, 7, &b"chan"[..], &b"add"[..], &b"\x00\x01"[..])
        );
        assert!(decode_request(b"RPQ1short").is_none());
        let r = encode_reply(9, STATUS_ERR, b"bad");
        assert_eq!(decode_reply(&r), Some((9, STATUS_ERR, &b"bad"[..])));
        assert!(decode_reply(b"xx").is_none());
    }
}
