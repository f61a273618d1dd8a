//! Keyspace notifications: `(key, event)` pairs for keys matching a pattern.
//!
//! [`Client::watch_keys`] makes sure the server's `notify-keyspace-events` has the flags the
//! wanted events need (adding, never removing, flags; an option leaves the server's
//! configuration alone), then `PSUBSCRIBE`s `__keyspace@<db>__:<pattern>`.

use std::sync::Arc;

use bytes::Bytes;

use crate::delivery::runner::Runner;
use crate::error::{Error, ErrorKind, Result};
use crate::pubsub::{Event, SubscribeOptions, Subscription};
use crate::reply::Reply;
use crate::report::{ReportKind, ReportSource, call_handler};

/// The `notify-keyspace-events` class flag an event name needs (`A`: all, when unknown).
fn class_of(event: &str) -> char {
    match event {
        "set" | "setrange" | "append" | "incrby" | "incrbyfloat" => '$',
        "del" | "expire" | "rename_from" | "rename_to" | "copy_to" | "restore" | "move_from"
        | "move_to" => 'g',
        "expired" => 'x',
        "evicted" => 'e',
        "new" => 'n',
        e if e.starts_with('h') => 'h',
        e if e.starts_with('l') || e.starts_with('r') => 'l',
        e if e.starts_with('s') => 's',
        e if e.starts_with('z') => 'z',
        e if e.starts_with('x') => 't',
        _ => 'A',
    }
}

/// The `notify-keyspace-events` value to set, from a `CONFIG GET` reply, so that it has
/// `wanted` too (`None`: it has them already).
fn with_flags(config_get: Reply, wanted: &[char]) -> Result<Option<String>> {
    let current = config_get
        .into_pairs()?
        .into_iter()
        .next()
        .map(|(_, v)| String::from_utf8_lossy(&v).into_owned())
        .unwrap_or_default();
    let mut flags: Vec<char> = current.chars().collect();
    let has_all = flags.contains(&'A');
    let mut changed = false;
    for &w in wanted {
        let covered = flags.contains(&w) || (has_all && "g$lshzxetd".contains(w));
        if !covered {
            flags.push(w);
            changed = true;
        }
    }
    Ok(changed.then(|| flags.into_iter().collect()))
}

/// A keyspace watch: its handler runs like a subscription's (on a dispatcher thread, or in
/// poll mode inside [`Client::poll`](crate::Client::poll)), one event at a time, in order.
/// Stop it with [`KeyspaceWatch::stop`] (or drop it): after that returns no handler runs.
pub struct KeyspaceWatch {
    runner: Runner,
    _sub: Arc<Subscription>,
}

impl std::fmt::Debug for KeyspaceWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyspaceWatch").finish_non_exhaustive()
    }
}

impl KeyspaceWatch {
    runner_methods!([runner], "keyspace watch", "no handler call follows.");
}

/// A keyspace handler: called with the key and the event name (`set`, `del`, `expired`...).
pub type KeyHandler = Box<dyn FnMut(&[u8], &str) + Send>;

client_methods! {
    /// Call `handler(key, event)` for keyspace events on keys matching `pattern` (a glob),
    /// for the events named in `events` (all when empty). With `configure_server`, the
    /// needed flags are added to the server's `notify-keyspace-events`.
    pub async fn watch_keys(
        &self,
        pattern: impl AsRef<[u8]>,
        events: &[&str],
        configure_server: bool,
        handler: impl FnMut(&[u8], &str) + Send + 'static,
    ) -> Result<KeyspaceWatch> {
        if pattern.as_ref().is_empty() {
            return Err(Error::invalid("watch_keys: the key pattern must not be empty"));
        }
        if events.iter().any(|e| e.is_empty()) {
            return Err(Error::invalid("watch_keys: an event name must not be empty"));
        }
        // Where CONFIG is renamed away or forbidden (embedded boards often do), say why the
        // watch cannot be set up rather than pass the server's bare "unknown command".
        let no_config = |e: Error| {
            if e.is_server() {
                Error::new(
                    ErrorKind::Unsupported,
                    format!(
                        "watch_keys needs keyspace notifications, and this server does not let \
                         CONFIG switch them on ({}): enable notify-keyspace-events in the \
                         server's configuration and pass configure_server=false",
                        e.text()
                    ),
                )
            } else {
                e
            }
        };
        if configure_server {
            let mut wanted = vec!['K'];
            if events.is_empty() {
                wanted.push('A');
            } else {
                wanted.extend(events.iter().map(|e| class_of(e)));
            }
            match self.conn().cluster() {
                None => {
                    let current = self
                        .command(&["CONFIG", "GET", "notify-keyspace-events"])
                        .await
                        .map_err(no_config)?;
                    if let Some(value) = with_flags(current, &wanted)? {
                        self.command(&["CONFIG", "SET", "notify-keyspace-events", &value])
                            .await
                            .map_err(no_config)?;
                    }
                }
                // On a cluster each primary publishes its own keys' events: each keeps its
                // own flags, plus the ones needed.
                Some(router) => {
                    let get: Bytes = redis::cmd("CONFIG")
                        .arg("GET")
                        .arg("notify-keyspace-events")
                        .get_packed_command()
                        .into();
                    for addr in router.primaries() {
                        let at = |r: Result<Reply>| {
                            let r = match r {
                                Ok(Reply::Error(e)) => Err(Error::from(e)),
                                other => other,
                            };
                            r.map_err(|e| no_config(e.context(format!("node {}:{}", addr.0, addr.1))))
                        };
                        let current = at(router.request_at(&addr, get.clone()).await)?;
                        if let Some(value) = with_flags(current, &wanted)? {
                            let set: Bytes = redis::cmd("CONFIG")
                                .arg("SET")
                                .arg("notify-keyspace-events")
                                .arg(&value)
                                .get_packed_command()
                                .into();
                            at(router.request_at(&addr, set).await)?;
                        }
                    }
                }
            }
        }
        let db = self.target_db();
        let mut channel = format!("__keyspace@{db}__:").into_bytes();
        let prefix_len = channel.len();
        channel.extend_from_slice(pattern.as_ref());
        let mut handler = handler;
        let wanted: Vec<String> = events.iter().map(|e| e.to_string()).collect();
        let mut runner = Runner::new(
            ReportSource::KeyspaceWatch,
            Bytes::copy_from_slice(pattern.as_ref()),
            self.reporter(None),
        );
        // The handler owns a hold on the watch: it has stopped once the subscription has
        // dropped the handler, after its last call.
        let hold = runner.hold();
        let opts = SubscribeOptions::default().handler(move |e| {
            let Event::Message(m) = e else { return };
            let key: Bytes = m.channel.slice(prefix_len.min(m.channel.len())..);
            let event = String::from_utf8_lossy(&m.payload);
            if !(wanted.is_empty() || wanted.iter().any(|w| *w == event)) {
                return;
            }
            hold.enter(|lp| {
                if lp.stopped() {
                    return;
                }
                if let Err(e) = call_handler(|| {
                    handler(&key, &event);
                    Ok(())
                }) {
                    lp.report(
                        lp.report_of(ReportKind::HandlerFailed)
                            .item(String::from_utf8_lossy(&key))
                            .error(e),
                    );
                }
            })
        });
        let sub = Arc::new(self.psubscribe(&[channel], opts).await?);
        let s = sub.clone();
        runner.waker(Arc::new(move || s.close_nowait()));
        runner.started();
        Ok(KeyspaceWatch { runner, _sub: sub })
    }
}
