//! RPC over the JSON wire of redis-ipc fleets ([`Protocol::RedisIpc`]), both ways.
//!
//! The service name is the Redis list itself. A caller subscribes to its reply channel
//! `<list>:reply:<id>` (32 hex digits), waits for the confirmation, then
//! `LPUSH <list> {"id":..,"method":..,"reply_channel":..,"deadline":<unix ms>,"payload":<JSON>}`
//! (`method` omitted when empty). A server `BRPOP`s the list, drops an envelope whose
//! deadline passed (without a reply), runs the handler and publishes
//! `{"ok":true,"payload":<JSON>}` or `{"ok":false,"error":"<text>"}` on the reply channel;
//! an unknown method answers `"unknown method: <m>"`. Replies carry no id: they are
//! matched by their channel.
//!
//! Payloads are JSON text, given and returned as bytes (callers need no JSON library): a
//! payload that is not JSON is refused before anything is sent, and a handler's reply that
//! is not JSON goes back as an error reply. Each client subscribes once per list to the
//! pattern `<list>:reply:<its own 16-hex prefix>*`; its calls' ids start with that prefix,
//! so it receives only its own replies.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::oneshot;

use crate::client::Client;
use crate::error::{Error, ErrorKind, Result};
use crate::net::runtime;
use crate::patterns::call::{CLEANUP_GRACE, Call, Waited, push_and_wait, within};
use crate::patterns::queue::{QueueKeys, Request, Worker, WorkerOptions};
use crate::pubsub::{Event, SubscribeOptions, Subscription};
use crate::report::{ReportSource, call_handler};

#[derive(Serialize)]
struct EnvelopeOut<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    method: &'a str,
    reply_channel: &'a str,
    deadline: u64,
    payload: &'a RawValue,
}

#[derive(Deserialize)]
struct EnvelopeIn<'a> {
    #[serde(default)]
    method: Option<String>,
    reply_channel: String,
    #[serde(default)]
    deadline: i64,
    #[serde(borrow, default)]
    payload: Option<&'a RawValue>,
}

#[derive(Serialize)]
struct ReplyOut<'a> {
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

#[derive(Deserialize)]
struct ReplyIn<'a> {
    ok: bool,
    #[serde(borrow, default)]
    payload: Option<&'a RawValue>,
    #[serde(default)]
    error: String,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `payload` as JSON text, or a clear error naming `what`.
fn json<'a>(payload: &'a [u8], what: &str) -> Result<&'a RawValue> {
    serde_json::from_slice::<&RawValue>(payload)
        .map_err(|e| Error::invalid(format!("{what} is not JSON: {e}")))
}

/// `s` with the glob characters of a pattern escaped, so that it matches only itself.
fn glob_escape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() + 8);
    for &b in s {
        if matches!(b, b'*' | b'?' | b'[' | b']' | b'\\') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
}

type Waiters = Arc<Mutex<HashMap<Bytes, oneshot::Sender<Bytes>>>>;

/// The caller side of a client on this wire: its id prefix, one reply pattern subscription
/// per list, and the calls waiting.
pub(crate) struct JsonCaller {
    prefix: String,
    next: AtomicU64,
    waiters: Waiters,
    lists: tokio::sync::Mutex<HashMap<Bytes, Subscription>>,
}

impl Default for JsonCaller {
    fn default() -> Self {
        JsonCaller {
            prefix: format!("{:016x}", rand::random::<u64>()),
            next: AtomicU64::new(1),
            waiters: Arc::default(),
            lists: tokio::sync::Mutex::new(HashMap::new()),
        }
    }
}

impl JsonCaller {
    /// Subscribe to this client's replies on `list` (once per list; waits for the server's
    /// confirmation, so a reply published after the request is never missed).
    async fn listen(&self, client: &Client, list: &[u8]) -> Result<()> {
        let mut lists = self.lists.lock().await;
        if lists.contains_key(list) {
            return Ok(());
        }
        let mut pattern = glob_escape(list);
        pattern.extend_from_slice(b":reply:");
        pattern.extend_from_slice(self.prefix.as_bytes());
        pattern.push(b'*');
        let w = self.waiters.clone();
        let mut opts = SubscribeOptions::default().batch_handler(move |events| {
            for e in events {
                if let Event::Message(m) = e {
                    let tx = w
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&m.channel);
                    if let Some(tx) = tx {
                        let _ = tx.send(m.payload.clone());
                    }
                }
            }
        });
        // Replies go straight to the waiting call from the connection task.
        opts.inline = true;
        let sub = client.psubscribe(&[pattern], opts).await?;
        lists.insert(Bytes::copy_from_slice(list), sub);
        Ok(())
    }

    fn forget(&self, channel: &Bytes) {
        self.waiters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(channel);
    }
}

/// A call on the redis-ipc wire: see the [module docs](self).
pub(crate) async fn call(
    client: &Client,
    list: &[u8],
    method: &[u8],
    payload: &[u8],
    timeout: Duration,
    what: &(dyn Fn() -> String + Sync),
) -> Result<Bytes> {
    if list.is_empty() {
        return Err(Error::invalid("the RPC list name must not be empty").context(what()));
    }
    let method = std::str::from_utf8(method)
        .map_err(|_| Error::invalid("a redis-ipc method name must be UTF-8").context(what()))?;
    let payload = json(payload, "the request payload").map_err(|e| e.context(what()))?;
    // The timeout bounds the whole call, as in `Client::call_with`.
    let deadline = tokio::time::Instant::now() + timeout;
    let caller = client.extension::<JsonCaller>();
    within(deadline, timeout, caller.listen(client, list))
        .await
        .map_err(|e| e.context(what()))?;
    let id = format!(
        "{}{:016x}",
        caller.prefix,
        caller.next.fetch_add(1, Ordering::Relaxed)
    );
    let mut channel = list.to_vec();
    channel.extend_from_slice(b":reply:");
    channel.extend_from_slice(id.as_bytes());
    let reply_channel = String::from_utf8(channel.clone())
        .map_err(|_| Error::invalid("a redis-ipc list name must be UTF-8").context(what()))?;
    let channel = Bytes::from(channel);
    let envelope = serde_json::to_vec(&EnvelopeOut {
        id: &id,
        method,
        reply_channel: &reply_channel,
        deadline: now_ms() + timeout.as_millis() as u64,
        payload,
    })
    .map_err(|e| Error::invalid(format!("cannot encode the request: {e}")).context(what()))?;
    let (tx, rx) = oneshot::channel();
    caller
        .waiters
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(channel.clone(), tx);
    let outcome = match push_and_wait(client, list, &envelope, deadline, timeout, rx).await {
        Ok(Waited::Reply(reply)) => Ok(reply),
        Ok(Waited::TimedOut(e)) => Err(e),
        Err(e) => {
            caller.forget(&channel);
            return Err(e.context(what()));
        }
    };
    let reply = match outcome {
        Ok(reply) => reply,
        Err(e) => {
            caller.forget(&channel);
            // Take the request back if no server took it yet, so nothing is left behind
            // (within a short grace: a request left behind has passed its deadline).
            let _ = tokio::time::timeout(
                CLEANUP_GRACE,
                client.command(&[b"LREM".as_slice(), list, b"1", &envelope]),
            )
            .await;
            return Err(e.context(what()));
        }
    };
    let parsed: ReplyIn<'_> = serde_json::from_slice(&reply).map_err(|e| {
        Error::new(
            ErrorKind::Protocol,
            format!("the reply is not a redis-ipc reply: {e}"),
        )
        .context(what())
    })?;
    if !parsed.ok {
        return Err(Error::new(ErrorKind::Remote, parsed.error).context(what()));
    }
    Ok(Bytes::copy_from_slice(
        parsed.payload.map_or("null", RawValue::get).as_bytes(),
    ))
}

/// The reply to publish for a handler's outcome (an empty reply is JSON `null`: the
/// nothing of every surface, as a Python handler's `None`).
fn reply(outcome: Result<Vec<u8>>) -> Vec<u8> {
    let encode = |r: &ReplyOut<'_>| serde_json::to_vec(r).unwrap_or_default();
    match outcome {
        Ok(v) if v.is_empty() => br#"{"ok":true,"payload":null}"#.to_vec(),
        Ok(v) => match json(&v, "the handler's reply") {
            Ok(raw) => encode(&ReplyOut {
                ok: true,
                payload: Some(raw),
                error: None,
            }),
            Err(e) => encode(&ReplyOut {
                ok: false,
                payload: None,
                error: Some(e.message()),
            }),
        },
        // The caller gets the handler's own words; another error (one of the client's,
        // passed on with `?`) says its kind too.
        Err(e) if e.kind() == ErrorKind::Handler => encode(&ReplyOut {
            ok: false,
            payload: None,
            error: Some(e.message()),
        }),
        Err(e) => encode(&ReplyOut {
            ok: false,
            payload: None,
            error: Some(&e.to_string()),
        }),
    }
}

/// Serve `list` on the redis-ipc wire with `handler` (a plain worker on the list itself;
/// no presence: the fleet has no server registry).
pub(crate) fn serve(
    client: &Client,
    list: &[u8],
    handler: impl Fn(&Call) -> Result<Vec<u8>> + Send + Sync + 'static,
    opts: WorkerOptions,
) -> Result<Worker> {
    let keys = QueueKeys::bare(list).map_err(|e| e.context("RPC list name"))?;
    let publisher = client.clone();
    let wrapped = move |req: &Request| -> Result<()> {
        let env: EnvelopeIn<'_> = serde_json::from_slice(&req.payload)
            .map_err(|e| Error::handler(format!("not a redis-ipc request envelope: {e}")))?;
        if env.deadline > 0 && now_ms() > env.deadline as u64 {
            return Ok(()); // the caller stopped waiting: no reply, as the fleet does
        }
        let call = Call {
            method: Bytes::from(env.method.unwrap_or_default()),
            payload: Bytes::copy_from_slice(env.payload.map_or("null", RawValue::get).as_bytes()),
            deadline: UNIX_EPOCH + Duration::from_millis(env.deadline.max(0) as u64),
        };
        let body = reply(call_handler(|| handler(&call)));
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(env.reply_channel).arg(body);
        runtime::block_on(publisher.runtime_handle(), publisher.run_cmd(&cmd))
            .and_then(|r| r)
            .map_err(|e| e.context("sending the reply"))?;
        Ok(())
    };
    Worker::start(
        client.clone(),
        vec![keys],
        Arc::new(wrapped),
        opts.reliable(false).bare(true).prefetch(1),
        ReportSource::RpcServer,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_and_envelopes_are_the_fleets_json() {
        let raw = json(br#"{"a":1}"#, "x").unwrap();
        let e = serde_json::to_string(&EnvelopeOut {
            id: "ab",
            method: "",
            reply_channel: "s:reply:ab",
            deadline: 5,
            payload: raw,
        })
        .unwrap();
        assert_eq!(
            e,
            r#"{"id":"ab","reply_channel":"s:reply:ab","deadline":5,"payload":{"a":1}}"#
        );
        assert_eq!(
            reply(Ok(b"[1, 2]".to_vec())),
            br#"{"ok":true,"payload":[1, 2]}"#
        );
        assert_eq!(reply(Ok(Vec::new())), br#"{"ok":true,"payload":null}"#);
        assert_eq!(
            reply(Err(Error::handler("boom"))),
            br#"{"ok":false,"error":"boom"}"#
        );
        let bad = String::from_utf8(reply(Ok(b"not json".to_vec()))).unwrap();
        assert!(
            bad.starts_with(r#"{"ok":false,"error":"the handler's reply is not JSON"#),
            "{bad}"
        );
        assert_eq!(glob_escape(b"a*b?[c]\\"), b"a\\*b\\?\\[c\\]\\\\".to_vec());
        assert!(json(b"{oops", "the request payload").is_err());
    }
}
