//! Reading RESP2/RESP3: [`Scan`] (where a frame ends, resumable across reads),
//! [`decode_reply`] (a complete frame into a [`Reply`], in one pass; the command
//! connections of `wire.rs` use these two), and [`Reader`], the pub/sub connection's reader.
//!
//! The pub/sub connection spends nearly all its time turning socket reads into messages (the
//! `redis` crate's parser, a `combine` parser building a `redis::Value` per frame, took two
//! thirds of the CPU time of a subscriber; the `redis-protocol` crate measured slower still).
//! [`Reader`] works in two passes over what one read brought:
//!
//! 1. *scan*: find where each complete frame ends, and for a pub/sub message (`>3
//!    message channel payload`, `>4 pmessage pattern channel payload`, `>3 smessage ...`)
//!    where its strings are; nothing is allocated;
//! 2. cut the scanned bytes off the buffer once (`BytesMut::split_to` + `freeze`) and hand
//!    out messages whose channel and payload are slices of that one shared buffer (no copy;
//!    the pub/sub router decides what to copy so that queued messages do not pin buffers),
//!    and decode anything else (confirmations, replies, errors: rare) into a [`Reply`].
//!
//! Every RESP3 type is understood (attributes are skipped); RESP2's null bulk string and
//! null array too. A malformed stream is a protocol error: the caller drops the connection.

use std::ops::Range;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::error::{Error, ErrorKind};
use crate::reply::{Reply, ServerError};

/// How deep aggregates may nest before the stream is called malformed (the server never
/// nests pub/sub replies more than two deep; this only stops a runaway recursion).
const MAX_DEPTH: usize = 32;

/// How much room a read asks for at least.
const READ_SIZE: usize = 64 * 1024;

/// The largest bulk string Redis accepts by default (`proto-max-bulk-len`, 512 MiB).
pub const DEFAULT_MAX_VALUE_SIZE: usize = 512 * 1024 * 1024;

/// The largest reply the client accepts by default (1 GiB): a reply growing past it is a
/// protocol error that drops the connection, not a buffer without limit.
pub const DEFAULT_MAX_REPLY_SIZE: usize = 1024 * 1024 * 1024;

/// The smallest limit replies are read with (64 KiB): the handshake's own replies (`HELLO`,
/// `CONFIG GET`) must fit whatever the options say, or the connection could never be made.
pub(crate) const MIN_REPLY_LIMIT: usize = 64 * 1024;

/// What a reply may announce and take: a string longer than `value` bytes, or a frame that
/// has grown past `reply` bytes before it is complete, is a protocol error (the connection
/// is dropped) instead of a buffer that grows with whatever a server, or something
/// pretending to be one, announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) value: usize,
    pub(crate) reply: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            value: DEFAULT_MAX_VALUE_SIZE,
            reply: DEFAULT_MAX_REPLY_SIZE,
        }
    }
}

fn over_limit(what: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Protocol,
        format!("the server's reply is too large: {what}; the connection is dropped"),
    )
}

impl Limits {
    /// A string of `len` bytes is refused when over the value limit.
    fn value(&self, len: usize) -> std::result::Result<(), Error> {
        if len > self.value {
            return Err(over_limit(format_args!(
                "a string of {len} bytes, over the value-size limit of {} bytes",
                self.value
            )));
        }
        Ok(())
    }

    /// A frame that has `len` bytes (complete or not) is refused when over the reply limit,
    /// whether it arrived in one read or in many (found by fuzz/resp_reader).
    fn reply(&self, len: usize) -> std::result::Result<(), Error> {
        if len > self.reply {
            return Err(over_limit(format_args!(
                "more than the maximum reply size of {} bytes",
                self.reply
            )));
        }
        Ok(())
    }
}

/// Which pub/sub message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MessageKind {
    /// `message`: to a channel subscription.
    Message,
    /// `pmessage`: to a pattern subscription.
    PMessage,
    /// `smessage`: to a shard channel subscription.
    SMessage,
}

/// A pub/sub message; its strings share the read buffer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PushMessage {
    pub(crate) kind: MessageKind,
    pub(crate) pattern: Option<Bytes>,
    pub(crate) channel: Bytes,
    pub(crate) payload: Bytes,
}

/// One frame read from the connection.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Incoming {
    Message(PushMessage),
    /// Anything else (confirmations, replies, errors: rare), decoded into a [`Reply`].
    Reply(Reply),
}

/// What the scan learnt of one complete frame.
#[derive(Clone)]
enum Shape {
    Message {
        kind: MessageKind,
        pattern: Option<Range<usize>>,
        channel: Range<usize>,
        payload: Range<usize>,
    },
    Other,
}

fn malformed(what: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Protocol,
        format!("malformed RESP from the server: {what}"),
    )
}

/// A scan result: `Ok(None)` when the frame is not complete yet.
type Partial<T> = std::result::Result<Option<T>, Error>;

/// The line starting at `p`: its content's range and where the next line starts.
fn line(buf: &[u8], p: usize) -> Partial<(Range<usize>, usize)> {
    let Some(rest) = buf.get(p..) else {
        return Ok(None);
    };
    match rest.iter().position(|&b| b == b'\n') {
        Some(i) if i >= 1 && rest[i - 1] == b'\r' => Ok(Some((p..p + i - 1, p + i + 1))),
        Some(_) => Err(malformed("a line not ending in CRLF")),
        None => Ok(None),
    }
}

fn parse_int(s: &[u8]) -> std::result::Result<i64, Error> {
    let (neg, digits) = match s.split_first() {
        Some((b'-', d)) => (true, d),
        Some((b'+', d)) => (false, d),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 19 {
        return Err(malformed("a bad integer"));
    }
    // At most 19 digits: the magnitude fits an i128, and i64::MIN (whose magnitude is not
    // an i64) is read too (found by fuzz/resp_differential).
    let mut v: i128 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return Err(malformed("a bad integer"));
        }
        v = v * 10 + i128::from(d - b'0');
    }
    i64::try_from(if neg { -v } else { v }).map_err(|_| malformed("an integer out of range"))
}

/// The header line at `p` (type byte, then a number): the number and where the body starts.
fn header(buf: &[u8], p: usize) -> Partial<(i64, usize)> {
    let Some((r, next)) = line(buf, p)? else {
        return Ok(None);
    };
    Ok(Some((parse_int(&buf[r.start + 1..r.end])?, next)))
}

/// A length from a header: `None` for RESP2's `-1` null.
fn length(n: i64) -> std::result::Result<Option<usize>, Error> {
    match n {
        -1 => Ok(None),
        n if n < 0 => Err(malformed("a negative length")),
        n => usize::try_from(n)
            .map(Some)
            .map_err(|_| malformed("a length out of range")),
    }
}

/// A blob body of `len` bytes starting at `p`: its range and where the next frame starts.
fn blob_body(buf: &[u8], p: usize, len: usize) -> Partial<(Range<usize>, usize)> {
    let end = p
        .checked_add(len)
        .ok_or_else(|| malformed("a length out of range"))?;
    if buf.len() < end + 2 {
        return Ok(None);
    }
    if &buf[end..end + 2] != b"\r\n" {
        return Err(malformed("a bulk string not ending in CRLF"));
    }
    Ok(Some((p..end, end + 2)))
}

/// A string element at `p` (`$` or `+`) of a push: its range and where the next one starts.
/// `Ok(None)` both when incomplete and when it is not a string (the caller then falls back to
/// the general path, which tells the two apart). A `$` string over the value limit is
/// refused as [`Scan`] refuses it.
fn string_at(buf: &[u8], p: usize, limits: &Limits) -> Partial<(Range<usize>, usize)> {
    match buf.get(p) {
        Some(b'$') => {
            let Some((n, body)) = header(buf, p)? else {
                return Ok(None);
            };
            match length(n)? {
                Some(len) => {
                    limits.value(len)?;
                    blob_body(buf, body, len)
                }
                None => Ok(None),
            }
        }
        Some(b'+') => Ok(line(buf, p)?.map(|(r, next)| (r.start + 1..r.end, next))),
        _ => Ok(None),
    }
}

/// The pub/sub message starting at `p`, if it is one and complete: its shape and end. The
/// `limits` apply as [`Scan`] applies them, so a message is refused whatever the reads that
/// brought it.
fn scan_message(buf: &[u8], p: usize, limits: &Limits) -> Partial<(Shape, usize)> {
    let Some((n, q)) = header(buf, p)? else {
        return Ok(None);
    };
    if n != 3 && n != 4 {
        return Ok(None);
    }
    let Some((kind_r, q)) = string_at(buf, q, limits)? else {
        return Ok(None);
    };
    let kind = match (&buf[kind_r], n) {
        (b"message", 3) => MessageKind::Message,
        (b"smessage", 3) => MessageKind::SMessage,
        (b"pmessage", 4) => MessageKind::PMessage,
        _ => return Ok(None),
    };
    let (pattern, q) = if kind == MessageKind::PMessage {
        let Some((r, q)) = string_at(buf, q, limits)? else {
            return Ok(None);
        };
        (Some(r), q)
    } else {
        (None, q)
    };
    let Some((channel, q)) = string_at(buf, q, limits)? else {
        return Ok(None);
    };
    let Some((payload, q)) = string_at(buf, q, limits)? else {
        return Ok(None);
    };
    limits.reply(q - p)?;
    Ok(Some((
        Shape::Message {
            kind,
            pattern,
            channel,
            payload,
        },
        q,
    )))
}

/// A resumable check that the frame at the start of a buffer is complete: it remembers how
/// far it got, so a large reply arriving over many reads is scanned once, not once per read.
#[derive(Default)]
pub(crate) struct Scan {
    pos: usize,
    /// Elements still to come in each open aggregate, innermost last.
    open: Vec<usize>,
    limits: Limits,
}

impl Scan {
    /// A scan that refuses what is over `limits`.
    pub(crate) fn new(limits: Limits) -> Scan {
        Scan {
            limits,
            ..Scan::default()
        }
    }

    /// `Ok(Some(len))` when the frame at `buf[0..]` is complete (then the scan starts afresh
    /// for the next frame), `Ok(None)` when more bytes are needed. `buf` must keep the bytes
    /// already scanned between calls. A frame over the [`Limits`] is an error.
    pub(crate) fn complete(&mut self, buf: &[u8]) -> Partial<usize> {
        let done = self.complete_within(buf)?;
        self.limits.reply(done.unwrap_or(buf.len()))?;
        Ok(done)
    }

    fn complete_within(&mut self, buf: &[u8]) -> Partial<usize> {
        loop {
            let p = self.pos;
            let Some(&t) = buf.get(p) else {
                return Ok(None);
            };
            let next = match t {
                b'+' | b'-' | b':' | b',' | b'#' | b'(' | b'_' => match line(buf, p)? {
                    Some((_, next)) => next,
                    None => return Ok(None),
                },
                b'$' | b'!' | b'=' => {
                    let Some((n, body)) = header(buf, p)? else {
                        return Ok(None);
                    };
                    match length(n)? {
                        None => body,
                        Some(len) => {
                            self.limits.value(len)?;
                            match blob_body(buf, body, len)? {
                                Some((_, next)) => next,
                                None => return Ok(None),
                            }
                        }
                    }
                }
                b'*' | b'~' | b'>' | b'%' | b'|' => {
                    let Some((n, body)) = header(buf, p)? else {
                        return Ok(None);
                    };
                    let count = match length(n)? {
                        None => 0,
                        Some(c) if matches!(t, b'%') => c
                            .checked_mul(2)
                            .ok_or_else(|| malformed("a length out of range"))?,
                        // An attribute belongs to the value that follows it.
                        Some(c) if matches!(t, b'|') => c
                            .checked_mul(2)
                            .and_then(|c| c.checked_add(1))
                            .ok_or_else(|| malformed("a length out of range"))?,
                        Some(c) => c,
                    };
                    // Every element takes at least 3 bytes.
                    if count > self.limits.reply / 3 {
                        return Err(over_limit(format_args!(
                            "an aggregate of {count} elements cannot fit in the maximum reply size of {} bytes",
                            self.limits.reply
                        )));
                    }
                    if count > 0 {
                        if self.open.len() >= MAX_DEPTH {
                            return Err(malformed("aggregates nested too deep"));
                        }
                        self.pos = body;
                        self.open.push(count);
                        continue;
                    }
                    body
                }
                other => return Err(malformed(format_args!("unknown type byte 0x{other:02x}"))),
            };
            self.pos = next;
            // One element done: close every aggregate it completes.
            loop {
                match self.open.last_mut() {
                    None => {
                        let len = self.pos;
                        self.pos = 0;
                        return Ok(Some(len));
                    }
                    Some(left) => {
                        *left -= 1;
                        if *left > 0 {
                            break;
                        }
                        self.open.pop();
                    }
                }
            }
        }
    }
}

fn lossy(b: &[u8]) -> String {
    // Valid UTF-8 (nearly always) takes the fast check; only invalid bytes get replaced.
    match std::str::from_utf8(b) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(b).into_owned(),
    }
}

/// The error reply `text` (`CODE message`) as a [`ServerError`].
pub(crate) fn server_error(text: &[u8]) -> ServerError {
    let text = String::from_utf8_lossy(text);
    let (code, message) = text.split_once(' ').unwrap_or((&text, ""));
    ServerError {
        code: code.to_string(),
        message: message.to_string(),
    }
}

/// Decode the complete frame at `buf[p..]` (checked by [`Scan`]) into a [`Reply`].
pub(crate) fn decode_reply(buf: &[u8], p: usize) -> std::result::Result<(Reply, usize), Error> {
    let incomplete = || malformed("a frame ended early");
    let t = *buf.get(p).ok_or_else(incomplete)?;
    match t {
        b'+' | b'-' | b':' | b',' | b'#' | b'(' | b'_' => {
            let (r, next) = line(buf, p)?.ok_or_else(incomplete)?;
            let body = &buf[r.start + 1..r.end];
            let reply = match t {
                b'+' => Reply::Status(lossy(body)),
                b'-' => Reply::Error(server_error(body)),
                b':' => Reply::Int(parse_int(body)?),
                b',' => Reply::Double(
                    std::str::from_utf8(body)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| malformed("a bad double"))?,
                ),
                b'#' => match body {
                    b"t" => Reply::Bool(true),
                    b"f" => Reply::Bool(false),
                    _ => return Err(malformed("a bad boolean")),
                },
                b'(' => Reply::BigNumber(lossy(body)),
                _ => Reply::Nil,
            };
            Ok((reply, next))
        }
        b'$' | b'!' | b'=' => {
            let (n, body) = header(buf, p)?.ok_or_else(incomplete)?;
            let Some(len) = length(n)? else {
                return Ok((Reply::Nil, body));
            };
            let (r, next) = blob_body(buf, body, len)?.ok_or_else(incomplete)?;
            let data = &buf[r];
            let reply = match t {
                b'$' => Reply::Bulk(data.to_vec()),
                b'!' => Reply::Error(server_error(data)),
                _ => {
                    let (format, text) = match data.get(3) {
                        Some(b':') => (&data[..3], &data[4..]),
                        _ => (&b""[..], data),
                    };
                    Reply::Verbatim {
                        format: lossy(format),
                        text: lossy(text),
                    }
                }
            };
            Ok((reply, next))
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let (n, mut q) = header(buf, p)?.ok_or_else(incomplete)?;
            let Some(count) = length(n)? else {
                return Ok((Reply::Nil, q));
            };
            // Every element takes at least 3 bytes: do not trust a count beyond the data.
            let cap = count.min((buf.len() - q) / 3);
            let mut items = || -> std::result::Result<Vec<Reply>, Error> {
                let mut v = Vec::with_capacity(cap);
                for _ in 0..count {
                    let (r, next) = decode_reply(buf, q)?;
                    v.push(r);
                    q = next;
                }
                Ok(v)
            };
            let reply = match t {
                b'%' | b'|' => {
                    let mut v = Vec::with_capacity(cap);
                    for _ in 0..count {
                        let (k, next) = decode_reply(buf, q)?;
                        let (val, next) = decode_reply(buf, next)?;
                        v.push((k, val));
                        q = next;
                    }
                    if t == b'|' {
                        return decode_reply(buf, q);
                    }
                    Reply::Map(v)
                }
                b'~' => Reply::Set(items()?),
                b'>' => {
                    let mut v = items()?.into_iter();
                    let kind = match v.next() {
                        Some(Reply::Bulk(b)) => lossy(&b),
                        Some(Reply::Status(s)) => s,
                        _ => String::new(),
                    };
                    Reply::Push {
                        kind,
                        data: v.collect(),
                    }
                }
                _ => Reply::Array(items()?),
            };
            Ok((reply, q))
        }
        other => Err(malformed(format_args!("unknown type byte 0x{other:02x}"))),
    }
}

/// The read buffer of one connection, and the frames found in it.
pub(crate) struct Reader {
    buf: BytesMut,
    spans: Vec<(Shape, usize)>,
    /// Where the scan of an incomplete frame (other than a message) got to.
    scan: Scan,
}

impl Default for Reader {
    fn default() -> Self {
        Reader::new(Limits::default())
    }
}

impl Reader {
    /// A reader that refuses what is over `limits`.
    pub(crate) fn new(limits: Limits) -> Reader {
        Reader {
            buf: BytesMut::with_capacity(READ_SIZE),
            spans: Vec::new(),
            scan: Scan::new(limits),
        }
    }
}

impl Reader {
    /// Read once more from `io`; `Ok(0)` when the peer closed. Cancel-safe (what was read
    /// stays in the buffer).
    pub(crate) async fn fill<R: AsyncRead + Unpin>(
        &mut self,
        io: &mut R,
    ) -> std::io::Result<usize> {
        // Grow by the buffer's own size at least, so a large frame costs O(n) copies.
        let want = READ_SIZE.max(self.buf.len());
        if self.buf.capacity() - self.buf.len() < want / 2 {
            self.buf.reserve(want);
        }
        io.read_buf(&mut self.buf).await
    }

    /// Append every complete frame in the buffer to `out`, in order; returns how many bytes
    /// they took (the size of the buffer their slices share).
    pub(crate) fn decode(&mut self, out: &mut Vec<Incoming>) -> std::result::Result<usize, Error> {
        self.spans.clear();
        let mut p = 0;
        {
            let buf = &self.buf[..];
            while p < buf.len() {
                if buf[p] == b'>'
                    && let Some((shape, end)) = scan_message(buf, p, &self.scan.limits)?
                {
                    self.scan = Scan::new(self.scan.limits);
                    self.spans.push((shape, end));
                    p = end;
                    continue;
                }
                match self.scan.complete(&buf[p..])? {
                    Some(len) => {
                        self.spans.push((Shape::Other, p + len));
                        p += len;
                    }
                    None => break,
                }
            }
        }
        if p == 0 {
            return Ok(0);
        }
        let chunk = self.buf.split_to(p).freeze();
        let mut start = 0;
        for (shape, end) in self.spans.drain(..) {
            let item = match shape {
                Shape::Message {
                    kind,
                    pattern,
                    channel,
                    payload,
                } => Incoming::Message(PushMessage {
                    kind,
                    pattern: pattern.map(|r| chunk.slice(r)),
                    channel: chunk.slice(channel),
                    payload: chunk.slice(payload),
                }),
                Shape::Other => Incoming::Reply(decode_reply(&chunk[..end], start)?.0),
            };
            out.push(item);
            start = end;
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8]) -> std::result::Result<Vec<Incoming>, Error> {
        let mut r = Reader::default();
        r.buf.extend_from_slice(input);
        let mut out = Vec::new();
        r.decode(&mut out)?;
        assert!(r.buf.is_empty(), "left over: {:?}", &r.buf[..]);
        Ok(out)
    }

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn msg(channel: &str, payload: &str) -> Incoming {
        Incoming::Message(PushMessage {
            kind: MessageKind::Message,
            pattern: None,
            channel: b(channel),
            payload: b(payload),
        })
    }

    #[test]
    fn messages_of_every_kind() {
        let out = all(concat!(
            ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n",
            ">4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nch\r\n$0\r\n\r\n",
            ">3\r\n$8\r\nsmessage\r\n$1\r\ns\r\n$3\r\na\r\n\r\n",
            ">3\r\n+message\r\n+ch\r\n+simple\r\n",
        )
        .as_bytes())
        .unwrap();
        assert_eq!(
            out,
            vec![
                msg("ch", "hello"),
                Incoming::Message(PushMessage {
                    kind: MessageKind::PMessage,
                    pattern: Some(b("c*")),
                    channel: b("ch"),
                    payload: b(""),
                }),
                Incoming::Message(PushMessage {
                    kind: MessageKind::SMessage,
                    pattern: None,
                    channel: b("s"),
                    payload: b("a\r\n"),
                }),
                msg("ch", "simple"),
            ]
        );
    }

    #[test]
    fn other_frames_become_replies() {
        let out = all(concat!(
            ">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n",
            "+PONG\r\n",
            "-ERR unknown command\r\n",
            "%1\r\n+server\r\n$5\r\nredis\r\n",
            "$-1\r\n",
            ">2\r\n$7\r\nmessage\r\n$2\r\nch\r\n",
            ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n:5\r\n",
        )
        .as_bytes())
        .unwrap();
        let r = Incoming::Reply;
        let bulk = |s: &str| Reply::Bulk(s.as_bytes().to_vec());
        assert_eq!(
            out,
            vec![
                r(Reply::Push {
                    kind: "subscribe".into(),
                    data: vec![bulk("ch"), Reply::Int(1)],
                }),
                r(Reply::Status("PONG".into())),
                r(Reply::Error(ServerError {
                    code: "ERR".into(),
                    message: "unknown command".into(),
                })),
                r(Reply::Map(vec![(
                    Reply::Status("server".into()),
                    bulk("redis")
                )])),
                r(Reply::Nil),
                // Pushes shaped unlike a message are not taken for one.
                r(Reply::Push {
                    kind: "message".into(),
                    data: vec![bulk("ch")],
                }),
                r(Reply::Push {
                    kind: "message".into(),
                    data: vec![bulk("ch"), Reply::Int(5)],
                }),
            ]
        );
    }

    #[test]
    fn every_split_point_waits_for_the_rest() {
        let input = concat!(
            ">4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nch\r\n$10\r\n0123456789\r\n",
            "%1\r\n+a\r\n*2\r\n:1\r\n$-1\r\n",
            ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nx\r\n",
        )
        .as_bytes();
        let whole = all(input).unwrap();
        assert_eq!(whole.len(), 3);
        for cut in 0..input.len() {
            let mut r = Reader::default();
            let mut out = Vec::new();
            r.buf.extend_from_slice(&input[..cut]);
            r.decode(&mut out).unwrap();
            r.buf.extend_from_slice(&input[cut..]);
            r.decode(&mut out).unwrap();
            assert!(r.buf.is_empty(), "cut {cut}");
            assert_eq!(out, whole, "cut {cut}");
        }
    }

    #[test]
    fn malformed_input_is_a_protocol_error() {
        for bad in [
            &b"?x\r\n"[..],
            b"$3\r\nabcd\r\n",
            b"$-2\r\n",
            b"*x\r\n",
            b":12a\r\n",
            b"+no cr\n",
            b":99999999999999999999\r\n",
        ] {
            let e = all(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Protocol, "{bad:?}");
        }
        let deep = "*1\r\n".repeat(MAX_DEPTH + 2) + ":1\r\n";
        assert_eq!(
            all(deep.as_bytes()).unwrap_err().kind(),
            ErrorKind::Protocol
        );
    }

    #[test]
    fn a_large_payload_arrives_whole() {
        let payload = "p".repeat(3 * READ_SIZE + 17);
        let frame = format!(
            ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n${}\r\n{payload}\r\n",
            payload.len()
        );
        assert_eq!(all(frame.as_bytes()).unwrap(), vec![msg("ch", &payload)]);
    }

    /// Every frame of `input`, fed in pieces of `step` bytes, through [`Scan`] and
    /// [`decode_reply`] as the command connection does.
    fn replies(input: &[u8], step: usize) -> Vec<Reply> {
        let mut scan = Scan::default();
        let mut buf: Vec<u8> = Vec::new();
        let mut out = Vec::new();
        for piece in input.chunks(step.max(1)) {
            buf.extend_from_slice(piece);
            while let Some(len) = scan.complete(&buf).unwrap() {
                let (r, end) = decode_reply(&buf[..len], 0).unwrap();
                assert_eq!(end, len);
                out.push(r);
                buf.drain(..len);
            }
        }
        assert!(buf.is_empty());
        out
    }

    #[test]
    fn replies_of_every_type_at_every_split() {
        let input = concat!(
            "+OK\r\n-WRONGTYPE Operation against a key\r\n:-42\r\n$3\r\nabc\r\n$-1\r\n*-1\r\n_\r\n",
            "*3\r\n:1\r\n*2\r\n$1\r\na\r\n-ERR inner\r\n*0\r\n",
            "%2\r\n+k1\r\n:1\r\n+k2\r\n~2\r\n#t\r\n#f\r\n",
            ",3.5\r\n,inf\r\n(12345678901234567890\r\n=9\r\ntxt:hello\r\n!5\r\nERR x\r\n",
            "|1\r\n+ttl\r\n:3\r\n$1\r\nv\r\n",
            ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n:7\r\n",
        )
        .as_bytes();
        let err = |c: &str, m: &str| {
            Reply::Error(ServerError {
                code: c.into(),
                message: m.into(),
            })
        };
        let want = vec![
            Reply::Status("OK".into()),
            err("WRONGTYPE", "Operation against a key"),
            Reply::Int(-42),
            Reply::Bulk(b"abc".to_vec()),
            Reply::Nil,
            Reply::Nil,
            Reply::Nil,
            Reply::Array(vec![
                Reply::Int(1),
                Reply::Array(vec![Reply::Bulk(b"a".to_vec()), err("ERR", "inner")]),
                Reply::Array(vec![]),
            ]),
            Reply::Map(vec![
                (Reply::Status("k1".into()), Reply::Int(1)),
                (
                    Reply::Status("k2".into()),
                    Reply::Set(vec![Reply::Bool(true), Reply::Bool(false)]),
                ),
            ]),
            Reply::Double(3.5),
            Reply::Double(f64::INFINITY),
            Reply::BigNumber("12345678901234567890".into()),
            Reply::Verbatim {
                format: "txt".into(),
                text: "hello".into(),
            },
            err("ERR", "x"),
            Reply::Bulk(b"v".to_vec()),
            Reply::Push {
                kind: "invalidate".into(),
                data: vec![Reply::Array(vec![Reply::Bulk(b"k".to_vec())])],
            },
            Reply::Int(7),
        ];
        // Fed whole, byte by byte, and in uneven pieces: the same replies.
        for step in [input.len(), 1, 2, 3, 7, 64] {
            assert_eq!(replies(input, step), want, "step {step}");
        }
    }

    #[test]
    fn the_scan_resumes_instead_of_starting_over() {
        // A 10,000-element array arriving in 100 pieces is scanned once in total.
        let mut input = b"*10000\r\n".to_vec();
        for i in 0..10_000 {
            input.extend_from_slice(format!("${}\r\n{i}\r\n", i.to_string().len()).as_bytes());
        }
        let mut scan = Scan::default();
        let step = input.len() / 100 + 1;
        let mut fed = 0;
        let mut done = None;
        while done.is_none() {
            fed = (fed + step).min(input.len());
            done = scan.complete(&input[..fed]).unwrap();
            if done.is_none() {
                assert!(
                    scan.pos <= fed && scan.pos + 20 >= fed,
                    "resumes near the end"
                );
            }
        }
        assert_eq!(done, Some(input.len()));
        let (r, _) = decode_reply(&input, 0).unwrap();
        assert_eq!(r.len(), 10_000);
    }

    #[test]
    fn malformed_replies_are_protocol_errors() {
        for bad in [&b"?\r\n"[..], b"$2\r\nabc\r\n", b"*-5\r\n", b"#x\r\n"] {
            let mut scan = Scan::default();
            let r = scan.complete(bad).and_then(|len| match len {
                Some(len) => decode_reply(&bad[..len], 0).map(|_| ()),
                None => Ok(()),
            });
            assert_eq!(r.unwrap_err().kind(), ErrorKind::Protocol, "{bad:?}");
        }
        let deep = "*1\r\n".repeat(MAX_DEPTH + 2) + ":1\r\n";
        assert_eq!(
            Scan::default()
                .complete(deep.as_bytes())
                .unwrap_err()
                .kind(),
            ErrorKind::Protocol
        );
    }
}
