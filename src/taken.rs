//! What a blocking command took, when its caller stops waiting for it.
//!
//! A blocking pop (`BLPOP`, `BRPOP`, `BLMPOP`, `BZPOPMIN`, `BZPOPMAX`, `BZMPOP`, `BLMOVE`,
//! `BRPOPLPUSH`) removes its item on the server when the item comes; the reply is then on
//! its way. A caller that gives up at that moment (a cancelled future or asyncio task, the
//! call's limit passed, an event loop whose task was cancelled after the reply came) would
//! lose the item with the reply. So:
//!
//! - the command is awaited by its caller ([`run`]) on a dedicated connection; a caller
//!   that stops waiting leaves the pending reply to a task, which ends the server's wait at
//!   once (`CLIENT UNBLOCK` on the shared connection, with the connection's id, asked once
//!   per connection) and reads what the command answered (an unblocked pop answers nil, or
//!   what it had taken), so the connection goes back to the pool instead of being closed
//!   under a pending reply;
//! - the reply travels as a [`Taken`]: dropped without [`Taken::into_reply`] (its caller
//!   gone, or an event loop that discards it), it puts back what the pop took (`LPUSH`
//!   or `RPUSH` to the end it came from, `ZADD NX` with its score; for `BLMOVE` a script
//!   moves the item back from its destination if it is still there), sent on the shared
//!   connection. A put-back that fails is logged as a warning (target `redipc::conn`).
//!
//! `XREAD` and `XREADGROUP` take nothing (a group's entries stay pending, to be claimed);
//! `WAIT` has nothing to give back. Without `CLIENT ID` (ACLs), a caller that gives up
//! leaves the command to end by its own block time, read within it (at most the response
//! timeout for a block time of 0, after which the connection is closed).

use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};
use crate::net::conn::{Conn, Dedicated, LOG_TARGET};
use crate::net::runtime::Rt;
use crate::net::wire::{Expect, Failure, Outcome, Pending};
use crate::reply::Reply;

/// A command's reply that may hold what a blocking pop took off the server: dropped
/// without [`into_reply`](Taken::into_reply), it puts the items back where they were
/// (see [`Client::command_taken`](crate::Client::command_taken)).
pub struct Taken {
    reply: Option<Reply>,
    back: Option<Back>,
}

/// How to put the items back.
struct Back {
    args: Vec<Vec<u8>>,
    conn: Arc<Conn>,
    rt: Rt,
}

impl std::fmt::Debug for Taken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Taken")
            .field("reply", &self.reply)
            .field("puts_back", &self.back.is_some())
            .finish()
    }
}

impl Taken {
    /// A reply that took nothing.
    pub(crate) fn plain(reply: Reply) -> Taken {
        Taken {
            reply: Some(reply),
            back: None,
        }
    }

    /// The reply, now the caller's: nothing is put back any more.
    pub fn into_reply(mut self) -> Reply {
        self.back = None;
        self.reply.take().unwrap_or(Reply::Nil)
    }

    /// The reply, still held (dropping the `Taken` puts back what it took).
    pub fn reply(&self) -> &Reply {
        self.reply.as_ref().unwrap_or(&Reply::Nil)
    }
}

impl Drop for Taken {
    fn drop(&mut self) {
        let (Some(reply), Some(back)) = (self.reply.take(), self.back.take()) else {
            return;
        };
        let Some(cmd) = put_back(&back.args, &reply) else {
            return;
        };
        let what = crate::error::describe(&back.args);
        if back.rt.inherited() {
            // A fork() child holding its parent's reply: the parent's connections are not
            // ours to use here.
            log::warn!(target: LOG_TARGET,
                "{what}: what it took is not put back from a forked child (the client is the parent's)");
            return;
        }
        let conn = back.conn;
        back.rt.spawn(async move {
            let limit = conn.response_timeout();
            let why = match tokio::time::timeout(limit, conn.send(&cmd)).await {
                Ok(Ok(Reply::Error(e))) => Error::from(e).to_string(),
                Ok(Ok(_)) => {
                    log::debug!(target: LOG_TARGET,
                        "{what}: its caller stopped waiting; what it took was put back");
                    return;
                }
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("no reply within {limit:?}"),
            };
            log::warn!(target: LOG_TARGET,
                "{what}: its caller stopped waiting, and what it took could not be put back ({why})");
        });
    }
}

/// The command that puts back what `args` (a blocking pop) took, as `reply` says; `None`
/// when it took nothing.
fn put_back(args: &[Vec<u8>], reply: &Reply) -> Option<redis::Cmd> {
    let mut buf = [0u8; 12];
    let name = crate::cluster::upper_in(args.first()?, &mut buf)?;
    let items = match reply {
        Reply::Array(items) => items.as_slice(),
        Reply::Bulk(item) => {
            // BLMOVE / BRPOPLPUSH: the item is in the destination now.
            let (src, dst, from, to) = match name {
                b"BLMOVE" => (
                    args.get(1)?.as_slice(),
                    args.get(2)?.as_slice(),
                    args.get(3)?.as_slice(),
                    args.get(4)?.as_slice(),
                ),
                b"BRPOPLPUSH" => (
                    args.get(1)?.as_slice(),
                    args.get(2)?.as_slice(),
                    b"RIGHT".as_slice(),
                    b"LEFT".as_slice(),
                ),
                _ => return None,
            };
            let mut cmd = redis::cmd("EVAL");
            cmd.arg(MOVE_BACK).arg(2).arg(src).arg(dst).arg(item);
            // Taken from the destination's end it was pushed to, pushed to the source's
            // end it came from.
            cmd.arg(if to.eq_ignore_ascii_case(b"LEFT") {
                1
            } else {
                -1
            });
            cmd.arg(if from.eq_ignore_ascii_case(b"LEFT") {
                "LPUSH"
            } else {
                "RPUSH"
            });
            return Some(cmd);
        }
        _ => return None,
    };
    let key = items.first()?.as_bytes()?;
    match name {
        b"BLPOP" | b"BRPOP" => {
            let mut cmd = redis::cmd(if name == b"BLPOP" { "LPUSH" } else { "RPUSH" });
            cmd.arg(key).arg(items.get(1)?.as_bytes()?);
            Some(cmd)
        }
        b"BLMPOP" => {
            // BLMPOP timeout numkeys key... LEFT|RIGHT [COUNT n] -> [key, [item...]]: the
            // first item taken goes back last, so that it is at the end again.
            let numkeys: usize = std::str::from_utf8(args.get(2)?).ok()?.parse().ok()?;
            let end = args.get(3 + numkeys)?;
            let mut cmd = redis::cmd(if end.eq_ignore_ascii_case(b"LEFT") {
                "LPUSH"
            } else {
                "RPUSH"
            });
            cmd.arg(key);
            let taken = items.get(1)?.as_slice()?;
            if taken.is_empty() {
                return None;
            }
            for item in taken.iter().rev() {
                cmd.arg(item.as_bytes()?);
            }
            Some(cmd)
        }
        b"BZPOPMIN" | b"BZPOPMAX" => {
            // [key, member, score]; NX: a member added again meanwhile keeps its score.
            let mut cmd = redis::cmd("ZADD");
            cmd.arg(key).arg("NX");
            cmd.arg(score(items.get(2)?)?)
                .arg(items.get(1)?.as_bytes()?);
            Some(cmd)
        }
        b"BZMPOP" => {
            // [key, [[member, score]...]]
            let mut cmd = redis::cmd("ZADD");
            cmd.arg(key).arg("NX");
            let taken = items.get(1)?.as_slice()?;
            if taken.is_empty() {
                return None;
            }
            for pair in taken {
                let pair = pair.as_slice()?;
                cmd.arg(score(pair.get(1)?)?).arg(pair.first()?.as_bytes()?);
            }
            Some(cmd)
        }
        _ => None,
    }
}

/// A sorted-set score as text: bulk in RESP2, a double in RESP3.
fn score(r: &Reply) -> Option<Vec<u8>> {
    match r {
        Reply::Bulk(b) => Some(b.clone()),
        Reply::Double(d) => Some(format!("{d:?}").into_bytes()),
        Reply::Int(i) => Some(i.to_string().into_bytes()),
        _ => None,
    }
}

/// Move an item back from a `BLMOVE`'s destination to its source, if it is still there:
/// KEYS = source, destination; ARGV = item, `LREM` count (1: from the left, -1: from the
/// right), the push to the source (`LPUSH`, `RPUSH`).
const MOVE_BACK: &str = "if redis.call('LREM', KEYS[2], ARGV[2], ARGV[1]) == 1 then \
                         return redis.call(ARGV[3], KEYS[1], ARGV[1]) end return 0";

/// Run the blocking command `cmd` (`args`) on `dedicated` and wait for its reply, up to
/// `limit` (`None`: no limit). A caller that stops waiting (its future dropped, or the
/// limit passed) leaves the command to a task (see the module docs).
pub(crate) async fn run(
    conn: &Arc<Conn>,
    rt: &Rt,
    dedicated: Dedicated,
    cmd: &redis::Cmd,
    args: Vec<Vec<u8>>,
    limit: Option<Duration>,
) -> Result<Taken> {
    // Before its first blocking command, the connection's id, for `CLIENT UNBLOCK`.
    dedicated.client_id(conn.response_timeout()).await;
    let pending = dedicated
        .send(cmd.get_packed_command().into(), Expect::One)
        .map_err(Failure::into_error)?;
    let mut call = Call {
        pending: Some(pending),
        dedicated: Some(dedicated),
        back: Some(Back {
            args,
            conn: conn.clone(),
            rt: rt.clone(),
        }),
        limit,
    };
    match limit {
        Some(t) => tokio::time::timeout(t, &mut call).await.map_err(|_| {
            Error::new(
                ErrorKind::Timeout,
                format!(
                    "no reply within {t:?} (the command's block time plus the response timeout)"
                ),
            )
        })?,
        None => (&mut call).await,
    }
}

/// A blocking command in flight on its dedicated connection. Completed, it gives its
/// connection back to the pool (unless it failed) and its reply as a [`Taken`]; dropped
/// before that, a task takes over (`take_over`).
struct Call {
    pending: Option<Pending>,
    dedicated: Option<Dedicated>,
    back: Option<Back>,
    limit: Option<Duration>,
}

impl std::future::Future for Call {
    type Output = Result<Taken>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<Taken>> {
        let this = &mut *self;
        let Some(pending) = this.pending.as_mut() else {
            return std::task::Poll::Ready(Err(Error::closed()));
        };
        let outcome = std::task::ready!(std::pin::Pin::new(pending).poll(cx));
        this.pending = None;
        let (d, back) = (this.dedicated.take(), this.back.take());
        std::task::Poll::Ready(finish(outcome, d, back))
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        let (Some(pending), Some(d), Some(back)) =
            (self.pending.take(), self.dedicated.take(), self.back.take())
        else {
            return;
        };
        if back.rt.inherited() {
            return; // a fork() child: the parent's connection is not ours to use
        }
        let rt = back.rt.clone();
        rt.spawn(take_over(pending, d, back, self.limit));
    }
}

/// The outcome of a blocking command: its connection back in the pool when it is clean
/// (answered), the reply as a [`Taken`].
fn finish(outcome: Outcome, d: Option<Dedicated>, back: Option<Back>) -> Result<Taken> {
    let reply = outcome.map_err(Failure::into_error)?;
    if let (Some(d), Some(back)) = (d, back.as_ref()) {
        back.conn.put_dedicated(d);
    }
    Ok(Taken {
        reply: Some(reply),
        back,
    })
}

/// A blocking command whose caller stopped waiting: end the server's wait now
/// (`CLIENT UNBLOCK`, when the connection's id is known) and read what it answered, which
/// is dropped as a [`Taken`], putting back what the command took. No answer within the
/// response timeout after the unblock (without an id: within the call's limit): the
/// connection is dropped (closed).
async fn take_over(pending: Pending, d: Dedicated, back: Back, limit: Option<Duration>) {
    let response = back.conn.response_timeout();
    let grace = match d.id().flatten() {
        Some(id) => {
            let mut unblock = redis::cmd("CLIENT");
            unblock.arg("UNBLOCK").arg(id);
            let _ = tokio::time::timeout(response, d.node().send(&unblock)).await;
            response
        }
        None => limit.unwrap_or(response),
    };
    if let Ok(outcome) = tokio::time::timeout(grace, pending).await {
        drop(finish(outcome, Some(d), Some(back)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<Vec<u8>> {
        a.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    fn bulk(s: &str) -> Reply {
        Reply::Bulk(s.as_bytes().to_vec())
    }

    fn packed(cmd: Option<redis::Cmd>) -> Option<String> {
        cmd.map(|c| {
            c.args_iter()
                .map(|a| match a {
                    redis::Arg::Simple(b) => String::from_utf8_lossy(b).into_owned(),
                    _ => "?".into(),
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
    }

    #[test]
    fn what_each_pop_took_goes_back_where_it_was() {
        let pair = Reply::Array(vec![bulk("q"), bulk("a")]);
        assert_eq!(
            packed(put_back(&args(&["blpop", "q", "p", "1"]), &pair)).as_deref(),
            Some("LPUSH q a")
        );
        assert_eq!(
            packed(put_back(&args(&["BRPOP", "q", "0"]), &pair)).as_deref(),
            Some("RPUSH q a")
        );
        let many = Reply::Array(vec![bulk("q"), Reply::Array(vec![bulk("a"), bulk("b")])]);
        assert_eq!(
            packed(put_back(
                &args(&["BLMPOP", "1", "2", "p", "q", "LEFT", "COUNT", "2"]),
                &many
            ))
            .as_deref(),
            Some("LPUSH q b a")
        );
        assert_eq!(
            packed(put_back(&args(&["BLMPOP", "1", "1", "q", "right"]), &many)).as_deref(),
            Some("RPUSH q b a")
        );
        let z = Reply::Array(vec![bulk("z"), bulk("m"), bulk("1.5")]);
        assert_eq!(
            packed(put_back(&args(&["BZPOPMIN", "z", "1"]), &z)).as_deref(),
            Some("ZADD z NX 1.5 m")
        );
        let z3 = Reply::Array(vec![bulk("z"), bulk("m"), Reply::Double(2.0)]);
        assert_eq!(
            packed(put_back(&args(&["BZPOPMAX", "z", "1"]), &z3)).as_deref(),
            Some("ZADD z NX 2.0 m")
        );
        let zm = Reply::Array(vec![
            bulk("z"),
            Reply::Array(vec![
                Reply::Array(vec![bulk("m"), bulk("1")]),
                Reply::Array(vec![bulk("n"), bulk("2")]),
            ]),
        ]);
        assert_eq!(
            packed(put_back(&args(&["BZMPOP", "1", "1", "z", "MIN"]), &zm)).as_deref(),
            Some("ZADD z NX 1 m 2 n")
        );
        let moved = packed(put_back(
            &args(&["BLMOVE", "src", "dst", "LEFT", "RIGHT", "1"]),
            &bulk("a"),
        ))
        .unwrap();
        assert!(moved.ends_with(" 2 src dst a -1 LPUSH"), "{moved}");
        let moved = packed(put_back(&args(&["BRPOPLPUSH", "s", "d", "1"]), &bulk("a"))).unwrap();
        assert!(moved.ends_with(" 2 s d a 1 RPUSH"), "{moved}");
    }

    #[test]
    fn nothing_goes_back_for_what_took_nothing() {
        for (a, r) in [
            (&["BLPOP", "q", "1"][..], Reply::Nil),
            (&["BLMPOP", "1", "1", "q", "LEFT"][..], Reply::Nil),
            (&["BLMOVE", "s", "d", "LEFT", "LEFT", "1"][..], Reply::Nil),
            (
                &["XREAD", "BLOCK", "1", "STREAMS", "s", "$"][..],
                Reply::Nil,
            ),
            (&["WAIT", "1", "10"][..], Reply::Int(0)),
            (
                &[
                    "XREADGROUP",
                    "GROUP",
                    "g",
                    "c",
                    "BLOCK",
                    "1",
                    "STREAMS",
                    "s",
                    ">",
                ][..],
                Reply::Array(vec![bulk("s"), Reply::Array(vec![])]),
            ),
        ] {
            assert!(put_back(&args(a), &r).is_none(), "{a:?}");
        }
    }
}
