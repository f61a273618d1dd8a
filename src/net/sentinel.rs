//! Redis Sentinel: find the master of a name, and follow it through failovers.
//!
//! Discovery follows the redis.io client guidelines: ask the sentinels in order (the first
//! to answer moves to the front), `SENTINEL get-master-addr-by-name`, connect, and check
//! with `ROLE` that the server is a master (`wire.rs` does that for every connection of a
//! sentinel endpoint). Every new connection resolves again, so a reconnect finds the new
//! master. The [`watch`] task keeps one sentinel connection subscribed to
//! `+switch-master` (messages for other master names are ignored) and asks for the address
//! every poll interval as a backstop; when the address changes, every connection to the
//! old one ends (`Sentinel::moved`), so its users reconnect to the new master at once
//! instead of writing to a demoted server.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::{Error, ErrorKind, Result};
use crate::net::dial::{Io, hello, io_error, open_addr};
use crate::net::resp::{Incoming, Limits, Reader};
use crate::net::tls::Tls;
use crate::reply::Reply;

/// The `log` target of sentinel discovery and failovers.
const LOG_TARGET: &str = "redipc::sentinel";

/// The default port of a sentinel.
pub(crate) const DEFAULT_PORT: u16 = 26379;

/// An address: host and port.
pub(crate) type Addr = (String, u16);

/// The sentinels of one master name, and where that master is now.
pub(crate) struct Sentinel {
    /// The master's name (`#mymaster` in the URL).
    pub(crate) master: String,
    /// The sentinels, the last one that answered first.
    sentinels: Mutex<Vec<Addr>>,
    username: Option<String>,
    password: Option<String>,
    tls: Option<Arc<Tls>>,
    connect_timeout: Duration,
    /// The master's address as last learnt (`None` before the first answer).
    current: watch::Sender<Option<Addr>>,
    /// The configuration epoch of `current`: an answer from a sentinel that has not heard
    /// of the last failover yet (a lower epoch) never replaces a newer address.
    epoch: Mutex<u64>,
}

/// A sentinel's answer: the master's address and the configuration epoch it is from.
type Answer = (Addr, u64);

impl Sentinel {
    pub(crate) fn new(
        master: String,
        sentinels: Vec<Addr>,
        username: Option<String>,
        password: Option<String>,
        tls: Option<Arc<Tls>>,
        connect_timeout: Duration,
    ) -> Sentinel {
        Sentinel {
            master,
            sentinels: Mutex::new(sentinels),
            username,
            password,
            tls,
            connect_timeout,
            current: watch::Sender::new(None),
            epoch: Mutex::new(0),
        }
    }

    fn list(&self) -> Vec<Addr> {
        self.sentinels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The sentinels, for messages (`127.0.0.1:26379,...`).
    pub(crate) fn describe(&self) -> String {
        self.list()
            .iter()
            .map(|(h, p)| format!("{h}:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Told when the master's address changes.
    pub(crate) fn moved(&self) -> watch::Receiver<Option<Addr>> {
        self.current.subscribe()
    }

    /// Record where the master is, unless what is known is newer; returns the address now
    /// believed.
    fn set_current(&self, (addr, epoch): &Answer) -> Addr {
        let mut known = self.epoch.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(cur) = self.current.borrow().clone()
            && *epoch < *known
        {
            log::debug!(
                target: LOG_TARGET,
                "ignored a stale answer for master {} ({}:{} of epoch {epoch}; {}:{} is of epoch {})",
                self.master,
                addr.0,
                addr.1,
                cur.0,
                cur.1,
                *known
            );
            return cur;
        }
        *known = *epoch;
        self.current.send_if_modified(|cur| {
            if cur.as_ref() == Some(addr) {
                return false;
            }
            if let Some(old) = cur.as_ref() {
                log::warn!(
                    target: LOG_TARGET,
                    "master {} moved from {}:{} to {}:{}",
                    self.master,
                    old.0,
                    old.1,
                    addr.0,
                    addr.1
                );
            } else {
                log::debug!(target: LOG_TARGET, "master {} is at {}:{}", self.master, addr.0, addr.1);
            }
            *cur = Some(addr.clone());
            true
        });
        addr.clone()
    }

    /// A connection to the sentinel at `addr`, `HELLO` (with the sentinels' credentials)
    /// and `more` sent; `what` names it in messages.
    async fn open(
        &self,
        addr: &Addr,
        deadline: Instant,
        more: &[&redis::Cmd],
    ) -> Result<(Box<dyn Io>, String)> {
        let what = format!("sentinel {}:{}", addr.0, addr.1);
        let tcp = redis::ConnectionAddr::Tcp(addr.0.clone(), addr.1);
        let limit = deadline.saturating_duration_since(Instant::now());
        let mut io = open_addr(&tcp, self.tls.as_deref(), deadline, limit, &what).await?;
        let mut out =
            hello(self.username.as_deref(), self.password.as_deref(), None).get_packed_command();
        for cmd in more {
            out.extend(cmd.get_packed_command());
        }
        send(&mut io, &out).await.map_err(|e| e.context(&what))?;
        Ok((io, what))
    }

    /// `SENTINEL MASTER name`: the address and its configuration epoch
    /// (`get-master-addr-by-name` has no epoch).
    fn ask_cmd(&self) -> redis::Cmd {
        let mut cmd = redis::cmd("SENTINEL");
        cmd.arg("MASTER").arg(&self.master);
        cmd
    }

    /// Ask the sentinels, in order, where the master is, by `deadline`; the first that
    /// knows moves to the front.
    pub(crate) async fn resolve(&self, deadline: Instant) -> Result<Addr> {
        let mut why = Vec::new();
        for addr in self.list() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                why.push("the connect timeout passed".to_owned());
                break;
            }
            match self.ask(&addr, left.min(self.connect_timeout)).await {
                Ok(Some(master)) => {
                    let mut list = self.sentinels.lock().unwrap_or_else(|p| p.into_inner());
                    if let Some(i) = list.iter().position(|a| *a == addr) {
                        let first = list.remove(i);
                        list.insert(0, first);
                    }
                    drop(list);
                    return Ok(self.set_current(&master));
                }
                Ok(None) => why.push(format!(
                    "{}:{} does not know the master {:?}",
                    addr.0, addr.1, self.master
                )),
                Err(e) => why.push(format!("{}:{}: {}", addr.0, addr.1, e.text())),
            }
        }
        Err(Error::new(
            ErrorKind::Connection,
            format!(
                "no sentinel gave the address of the master {:?} ({})",
                self.master,
                why.join("; ")
            ),
        ))
    }

    /// `SENTINEL get-master-addr-by-name` on the sentinel at `addr`, within `limit`.
    async fn ask(&self, addr: &Addr, limit: Duration) -> Result<Option<Answer>> {
        let deadline = Instant::now() + limit;
        let asked = async {
            let (mut io, what) = self.open(addr, deadline, &[&self.ask_cmd()]).await?;
            // Two replies: HELLO's, then the address (pushes skipped).
            let mut reader = Reader::new(Limits::default());
            let (mut frames, mut replies) = (Vec::new(), Vec::new());
            while replies.len() < 2 {
                match reader.fill(&mut io).await {
                    Ok(0) => {
                        return Err(Error::new(
                            ErrorKind::Connection,
                            "the sentinel closed the connection",
                        )
                        .context(&what));
                    }
                    Ok(_) => {}
                    Err(e) => return Err(conn_error(e).context(&what)),
                }
                reader.decode(&mut frames)?;
                for frame in frames.drain(..) {
                    match frame {
                        Incoming::Reply(Reply::Push { .. }) | Incoming::Message(_) => {}
                        Incoming::Reply(r) => replies.push(r),
                    }
                }
            }
            let answer = replies.pop().unwrap_or(Reply::Nil);
            if let Some(Reply::Error(e)) = replies.pop() {
                return Err(Error::from(e).context(format!("{what}: HELLO")));
            }
            master_info(answer)
        };
        tokio::time::timeout_at(deadline, asked)
            .await
            .map_err(|_| Error::new(ErrorKind::Timeout, format!("no answer within {limit:?}")))?
    }
}

/// The answer to `SENTINEL MASTER name`: the fields `ip`, `port` and `config-epoch`, or
/// `ERR No such master` for an unknown name.
fn master_info(reply: Reply) -> Result<Option<Answer>> {
    if let Reply::Error(e) = &reply {
        if e.message.contains("No such master") {
            return Ok(None);
        }
        return Err(Error::from(e.clone()));
    }
    let bad = || {
        Error::new(
            ErrorKind::Protocol,
            format!("a sentinel answered {reply:?} for a master"),
        )
    };
    let pairs = reply.as_map().ok_or_else(bad)?;
    let field = |name: &[u8]| {
        pairs
            .iter()
            .find(|(k, _)| k.as_bytes() == Some(name))
            .and_then(|(_, v)| v.as_bytes())
            .map(|b| String::from_utf8_lossy(b).into_owned())
    };
    let host = field(b"ip").ok_or_else(bad)?;
    let port = field(b"port")
        .and_then(|p| p.parse::<u16>().ok())
        .ok_or_else(bad)?;
    let epoch = field(b"config-epoch")
        .and_then(|e| e.parse::<u64>().ok())
        .unwrap_or(0);
    Ok(Some(((host, port), epoch)))
}

/// The new address in a `+switch-master` message (`name old-ip old-port new-ip new-port`)
/// if it is about `master`.
pub(crate) fn switch_master(payload: &[u8], master: &str) -> Option<Addr> {
    let text = std::str::from_utf8(payload).ok()?;
    let parts: Vec<&str> = text.split(' ').collect();
    match parts.as_slice() {
        [name, _, _, ip, port] if *name == master => Some((ip.to_string(), port.parse().ok()?)),
        _ => None,
    }
}

/// Follow the master until `shutdown` turns true or the sentinel is gone: one sentinel
/// connection subscribed to `+switch-master`, asking for the address every `poll` as a
/// backstop (and as its health check); on any failure, the next sentinel after a pause.
pub(crate) async fn watch(
    sentinel: Weak<Sentinel>,
    poll: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut attempt: u32 = 0;
    loop {
        let Some(s) = sentinel.upgrade() else { return };
        let started = Instant::now();
        let followed = tokio::select! {
            r = follow(&s, poll) => r,
            _ = shutdown.wait_for(|closed| *closed) => return,
        };
        drop(s);
        if let Err(e) = followed {
            log::debug!(target: LOG_TARGET, "sentinel subscription: {}", e.text());
        }
        // 100 ms doubling to 2 s while the sentinels keep failing (the address is also
        // asked for on every reconnect); a subscription that held for a while starts over.
        if started.elapsed() > poll.saturating_mul(2) {
            attempt = 0;
        }
        let pause = Duration::from_millis(100 << attempt.min(4)).min(Duration::from_secs(2));
        attempt = attempt.saturating_add(1);
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = shutdown.wait_for(|closed| *closed) => return,
        }
    }
}

/// One sentinel connection of [`watch`], until it fails.
async fn follow(s: &Sentinel, poll: Duration) -> Result<()> {
    let mut sub = redis::cmd("SUBSCRIBE");
    sub.arg("+switch-master");
    let ask = s.ask_cmd();
    let ask_bytes = ask.get_packed_command();
    let mut why = String::from("no sentinel");
    let mut opened = None;
    for addr in s.list() {
        let deadline = Instant::now() + s.connect_timeout;
        match s.open(&addr, deadline, &[&sub, &ask]).await {
            Ok((io, _)) => {
                opened = Some((io, addr));
                break;
            }
            Err(e) => why = e.text(),
        }
    }
    let Some((mut io, addr)) = opened else {
        return Err(Error::new(ErrorKind::Connection, why));
    };
    // Replies (not pushes) come in order: HELLO's, then one per question asked.
    let mut hello_pending = true;
    let mut asked: std::collections::VecDeque<Instant> = [Instant::now()].into();
    let mut reader = Reader::new(Limits::default());
    let mut frames = Vec::new();
    let mut ticker = tokio::time::interval(poll);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    log::debug!(target: LOG_TARGET, "following master {} on sentinel {}:{}", s.master, addr.0, addr.1);
    loop {
        tokio::select! {
            read = reader.fill(&mut io) => {
                match read {
                    Ok(0) => return Err(Error::new(ErrorKind::Connection, "the sentinel closed the connection")),
                    Ok(_) => {}
                    Err(e) => return Err(conn_error(e)),
                }
                reader.decode(&mut frames)?;
                for frame in frames.drain(..) {
                    match frame {
                        Incoming::Message(m) => {
                            // Ask at once: the answer carries the epoch of the switch.
                            if &m.channel[..] == b"+switch-master"
                                && let Some(new) = switch_master(&m.payload, &s.master)
                            {
                                log::debug!(target: LOG_TARGET, "+switch-master {} to {}:{}", s.master, new.0, new.1);
                                send(&mut io, &ask_bytes).await?;
                                asked.push_back(Instant::now());
                            }
                        }
                        Incoming::Reply(Reply::Push { .. }) => {}
                        Incoming::Reply(Reply::Error(e)) if hello_pending => {
                            return Err(Error::from(e).context("HELLO"));
                        }
                        Incoming::Reply(_) if hello_pending => hello_pending = false,
                        Incoming::Reply(r) => {
                            asked.pop_front();
                            if let Some(master) = master_info(r)? {
                                s.set_current(&master);
                            }
                        }
                    }
                }
            }
            _ = ticker.tick() => {
                if let Some(at) = asked.front() {
                    if at.elapsed() >= poll {
                        return Err(Error::new(ErrorKind::Timeout, "the sentinel did not answer within the poll interval"));
                    }
                    continue;
                }
                send(&mut io, &ask_bytes).await?;
                asked.push_back(Instant::now());
            }
        }
    }
}

/// Write `bytes` to a sentinel connection and flush them (TLS keeps them until flushed).
async fn send(io: &mut Box<dyn Io>, bytes: &[u8]) -> Result<()> {
    io.write_all(bytes).await.map_err(conn_error)?;
    io.flush().await.map_err(conn_error)
}

fn conn_error(e: std::io::Error) -> Error {
    Error::new(ErrorKind::Connection, io_error(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switch_master_messages_of_other_names_are_ignored() {
        let m = b"mymaster 127.0.0.1 6379 127.0.0.1 6380";
        assert_eq!(
            switch_master(m, "mymaster"),
            Some(("127.0.0.1".to_owned(), 6380))
        );
        assert_eq!(switch_master(m, "other"), None);
        assert_eq!(switch_master(b"mymaster 1 2 3", "mymaster"), None);
        assert_eq!(switch_master(b"mymaster a 1 b notaport", "mymaster"), None);
    }
}
