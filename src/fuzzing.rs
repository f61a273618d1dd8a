//! Internals for the fuzz targets in `fuzz/` (the `fuzzing` feature; not part of the API).
//!
//! Thin wrappers over `pub(crate)` items, so that the targets drive exactly the code the
//! connections run: the command connection's [`Scan`] + [`decode_reply`], the pub/sub
//! connection's [`Reader`] (fed through its own `fill`), and URL parsing.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use crate::error::Result;
use crate::net::resp;
use crate::{Options, Reply};

/// The reader's limits: `value` bytes per string, `reply` bytes per frame.
fn limits(value: usize, reply: usize) -> resp::Limits {
    resp::Limits { value, reply }
}

/// The command connection's completeness scan (`net::resp::Scan`).
pub struct Scan(resp::Scan);

impl Scan {
    /// A scan with the given limits.
    pub fn new(value: usize, reply: usize) -> Scan {
        Scan(resp::Scan::new(limits(value, reply)))
    }

    /// `Ok(Some(len))` when the frame at `buf[0..]` is complete; `Ok(None)` for more bytes.
    pub fn complete(&mut self, buf: &[u8]) -> Result<Option<usize>> {
        self.0.complete(buf)
    }
}

/// Decode the complete frame at `buf[p..]` (as checked by [`Scan`]).
pub fn decode_reply(buf: &[u8], p: usize) -> Result<(Reply, usize)> {
    resp::decode_reply(buf, p)
}

/// One frame of the pub/sub reader.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// A pub/sub message: its kind (`message`, `pmessage`, `smessage`) and strings.
    Message {
        /// `message`, `pmessage` or `smessage`.
        kind: &'static str,
        /// The pattern of a `pmessage`.
        pattern: Option<Vec<u8>>,
        /// The channel.
        channel: Vec<u8>,
        /// The payload.
        payload: Vec<u8>,
    },
    /// Anything else.
    Reply(Reply),
}

/// The pub/sub connection's reader (`net::resp::Reader`).
pub struct Reader(resp::Reader);

impl Reader {
    /// A reader with the given limits.
    pub fn new(value: usize, reply: usize) -> Reader {
        Reader(resp::Reader::new(limits(value, reply)))
    }

    /// Give the reader `bytes` as one socket read would (its `fill` may take them in
    /// several reads when its buffer is short of room), decoding after each read as the
    /// connection does. Returns the frames, and how many bytes they took.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(Vec<Frame>, usize)> {
        let mut out = Vec::new();
        let mut taken = 0;
        while !bytes.is_empty() {
            let n = match pin!(self.0.fill(&mut bytes))
                .as_mut()
                .poll(&mut Context::from_waker(Waker::noop()))
            {
                Poll::Ready(Ok(n)) => n,
                // Reading from a slice is never pending and never fails.
                Poll::Ready(Err(e)) => panic!("reading from a slice failed: {e}"),
                Poll::Pending => panic!("reading from a slice is pending"),
            };
            assert!(n > 0, "the reader took nothing of {} bytes", bytes.len());
            let mut incoming = Vec::new();
            taken += self.0.decode(&mut incoming)?;
            out.extend(incoming.into_iter().map(|i| match i {
                resp::Incoming::Message(m) => Frame::Message {
                    kind: match m.kind {
                        resp::MessageKind::Message => "message",
                        resp::MessageKind::PMessage => "pmessage",
                        resp::MessageKind::SMessage => "smessage",
                    },
                    pattern: m.pattern.map(|p| p.to_vec()),
                    channel: m.channel.to_vec(),
                    payload: m.payload.to_vec(),
                },
                resp::Incoming::Reply(r) => Frame::Reply(r),
            }));
        }
        Ok((out, taken))
    }
}

/// Parse a connection URL with `opts` as a client does; on success, what messages show of
/// the address (`host:port` or the socket path).
pub fn parse_url(url: &str, opts: &Options) -> Result<String> {
    crate::config::parse_url(url, opts).map(|t| t.display)
}
