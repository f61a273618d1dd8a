//! The RESP3 reader of the pub/sub connection.
//!
//! The pub/sub connection spends nearly all its time turning socket reads into messages, so
//! it has a reader of its own (the `redis` crate's parser, a `combine` parser building a
//! `redis::Value` per frame, took two thirds of the CPU time of a subscriber; the
//! `redis-protocol` crate measured slower still). It works in two passes over what one read
//! brought:
//!
//! 1. *scan*: find where each complete frame ends, and for a pub/sub message (`>3
//!    message channel payload`, `>4 pmessage pattern channel payload`, `>3 smessage ...`)
//!    where its strings are; nothing is allocated;
//! 2. cut the scanned bytes off the buffer once (`BytesMut::split_to` + `freeze`) and hand
//!    out messages whose channel and payload are slices of that one shared buffer (no copy),
//!    and decode anything else (confirmations, replies, errors: rare) into a [`Frame`].
//!
//! Every RESP3 type is understood (attributes are skipped); RESP2's null bulk string and
//! null array too. A malformed stream is a protocol error: the caller drops the connection.

use std::ops::Range;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::error::{Error, ErrorKind};

/// How deep aggregates may nest before the stream is called malformed (the server never
/// nests pub/sub replies more than two deep; this only stops a runaway recursion).
const MAX_DEPTH: usize = 32;

/// How much room a read asks for at least.
const READ_SIZE: usize = 64 * 1024;

/// A decoded RESP3 value other than a pub/sub message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Frame {
    /// `+`: a simple string.
    Simple(Bytes),
    /// `-` or `!`: an error, its whole text (code first).
    Error(Bytes),
    /// `:`: an integer.
    Int(i64),
    /// `$` or `=`: a bulk (or verbatim) string.
    Blob(Bytes),
    /// `_`, or RESP2's `$-1` / `*-1`.
    Null,
    /// `,` `#` `(`: a double, boolean or big number, as its text.
    Text(Bytes),
    /// `*` or `~`: an array or a set.
    Array(Vec<Frame>),
    /// `%`: a map, as key, value, key, value ...
    Map(Vec<Frame>),
    /// `>`: a push that is not a pub/sub message (subscribe confirmations, ...).
    Push(Vec<Frame>),
}

impl Frame {
    /// The bytes of a string frame.
    pub(crate) fn as_bytes(&self) -> Option<&Bytes> {
        match self {
            Frame::Simple(b) | Frame::Blob(b) | Frame::Text(b) => Some(b),
            _ => None,
        }
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
    Frame(Frame),
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
type Scan<T> = std::result::Result<Option<T>, Error>;

/// The line starting at `p`: its content's range and where the next line starts.
fn line(buf: &[u8], p: usize) -> Scan<(Range<usize>, usize)> {
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
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return Err(malformed("a bad integer"));
        }
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(i64::from(d - b'0')))
            .ok_or_else(|| malformed("an integer out of range"))?;
    }
    Ok(if neg { -v } else { v })
}

/// The header line at `p` (type byte, then a number): the number and where the body starts.
fn header(buf: &[u8], p: usize) -> Scan<(i64, usize)> {
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
fn blob_body(buf: &[u8], p: usize, len: usize) -> Scan<(Range<usize>, usize)> {
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

/// Where the frame starting at `p` ends.
fn skip(buf: &[u8], p: usize, depth: usize) -> Scan<usize> {
    if depth > MAX_DEPTH {
        return Err(malformed("aggregates nested too deep"));
    }
    let Some(&t) = buf.get(p) else {
        return Ok(None);
    };
    match t {
        b'+' | b'-' | b':' | b',' | b'#' | b'(' | b'_' => Ok(line(buf, p)?.map(|(_, next)| next)),
        b'$' | b'!' | b'=' => {
            let Some((n, body)) = header(buf, p)? else {
                return Ok(None);
            };
            match length(n)? {
                None => Ok(Some(body)),
                Some(len) => Ok(blob_body(buf, body, len)?.map(|(_, next)| next)),
            }
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let Some((n, mut q)) = header(buf, p)? else {
                return Ok(None);
            };
            let Some(count) = length(n)? else {
                return Ok(Some(q));
            };
            let items = if matches!(t, b'%' | b'|') {
                count
                    .checked_mul(2)
                    .ok_or_else(|| malformed("a length out of range"))?
            } else {
                count
            };
            for _ in 0..items {
                match skip(buf, q, depth + 1)? {
                    Some(next) => q = next,
                    None => return Ok(None),
                }
            }
            if t == b'|' {
                // An attribute belongs to the value that follows it.
                return skip(buf, q, depth + 1);
            }
            Ok(Some(q))
        }
        other => Err(malformed(format_args!("unknown type byte 0x{other:02x}"))),
    }
}

/// A string element at `p` (`$` or `+`) of a push: its range and where the next one starts.
/// `Ok(None)` both when incomplete and when it is not a string (the caller then falls back to
/// the general path, which tells the two apart).
fn string_at(buf: &[u8], p: usize) -> Scan<(Range<usize>, usize)> {
    match buf.get(p) {
        Some(b'$') => {
            let Some((n, body)) = header(buf, p)? else {
                return Ok(None);
            };
            match length(n)? {
                Some(len) => blob_body(buf, body, len),
                None => Ok(None),
            }
        }
        Some(b'+') => Ok(line(buf, p)?.map(|(r, next)| (r.start + 1..r.end, next))),
        _ => Ok(None),
    }
}

/// The pub/sub message starting at `p`, if it is one and complete: its shape and end.
fn scan_message(buf: &[u8], p: usize) -> Scan<(Shape, usize)> {
    let Some((n, q)) = header(buf, p)? else {
        return Ok(None);
    };
    if n != 3 && n != 4 {
        return Ok(None);
    }
    let Some((kind_r, q)) = string_at(buf, q)? else {
        return Ok(None);
    };
    let kind = match (&buf[kind_r], n) {
        (b"message", 3) => MessageKind::Message,
        (b"smessage", 3) => MessageKind::SMessage,
        (b"pmessage", 4) => MessageKind::PMessage,
        _ => return Ok(None),
    };
    let (pattern, q) = if kind == MessageKind::PMessage {
        let Some((r, q)) = string_at(buf, q)? else {
            return Ok(None);
        };
        (Some(r), q)
    } else {
        (None, q)
    };
    let Some((channel, q)) = string_at(buf, q)? else {
        return Ok(None);
    };
    let Some((payload, q)) = string_at(buf, q)? else {
        return Ok(None);
    };
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

/// Decode the (complete, already scanned) frame at `p` of `chunk`.
fn decode(chunk: &Bytes, p: usize, depth: usize) -> std::result::Result<(Frame, usize), Error> {
    let buf = &chunk[..];
    let incomplete = || malformed("a frame ended early");
    if depth > MAX_DEPTH {
        return Err(malformed("aggregates nested too deep"));
    }
    let t = *buf.get(p).ok_or_else(incomplete)?;
    let text = |r: Range<usize>| chunk.slice(r.start + 1..r.end);
    match t {
        b'+' | b'-' | b':' | b',' | b'#' | b'(' | b'_' => {
            let (r, next) = line(buf, p)?.ok_or_else(incomplete)?;
            let f = match t {
                b'+' => Frame::Simple(text(r)),
                b'-' => Frame::Error(text(r)),
                b':' => Frame::Int(parse_int(&buf[r.start + 1..r.end])?),
                b'_' => Frame::Null,
                _ => Frame::Text(text(r)),
            };
            Ok((f, next))
        }
        b'$' | b'!' | b'=' => {
            let (n, body) = header(buf, p)?.ok_or_else(incomplete)?;
            let Some(len) = length(n)? else {
                return Ok((Frame::Null, body));
            };
            let (r, next) = blob_body(buf, body, len)?.ok_or_else(incomplete)?;
            let data = chunk.slice(r);
            let f = match t {
                b'!' => Frame::Error(data),
                _ => Frame::Blob(data),
            };
            Ok((f, next))
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let (n, mut q) = header(buf, p)?.ok_or_else(incomplete)?;
            let Some(count) = length(n)? else {
                return Ok((Frame::Null, q));
            };
            let items = if matches!(t, b'%' | b'|') {
                count
                    .checked_mul(2)
                    .ok_or_else(|| malformed("a length out of range"))?
            } else {
                count
            };
            // Every element takes at least 3 bytes: do not trust a count beyond the data.
            let mut v = Vec::with_capacity(items.min((buf.len() - q) / 3));
            for _ in 0..items {
                let (f, next) = decode(chunk, q, depth + 1)?;
                v.push(f);
                q = next;
            }
            let f = match t {
                b'%' => Frame::Map(v),
                b'>' => Frame::Push(v),
                b'|' => return decode(chunk, q, depth + 1),
                _ => Frame::Array(v),
            };
            Ok((f, q))
        }
        other => Err(malformed(format_args!("unknown type byte 0x{other:02x}"))),
    }
}

/// The read buffer of one connection, and the frames found in it.
pub(crate) struct Reader {
    buf: BytesMut,
    spans: Vec<(Shape, usize)>,
}

impl Default for Reader {
    fn default() -> Self {
        Reader {
            buf: BytesMut::with_capacity(READ_SIZE),
            spans: Vec::new(),
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

    /// Append every complete frame in the buffer to `out`, in order.
    pub(crate) fn decode(&mut self, out: &mut Vec<Incoming>) -> std::result::Result<(), Error> {
        self.spans.clear();
        let mut p = 0;
        {
            let buf = &self.buf[..];
            while p < buf.len() {
                if buf[p] == b'>'
                    && let Some((shape, end)) = scan_message(buf, p)?
                {
                    self.spans.push((shape, end));
                    p = end;
                    continue;
                }
                match skip(buf, p, 0)? {
                    Some(end) => {
                        self.spans.push((Shape::Other, end));
                        p = end;
                    }
                    None => break,
                }
            }
        }
        if p == 0 {
            return Ok(());
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
                Shape::Other => Incoming::Frame(decode(&chunk, start, 0)?.0),
            };
            out.push(item);
            start = end;
        }
        Ok(())
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
    fn other_frames() {
        let out = all(concat!(
            ">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n",
            "+PONG\r\n",
            "-ERR unknown command\r\n",
            "!9\r\nERR x\r\nyz\r\n",
            "%2\r\n+server\r\n$5\r\nredis\r\n+proto\r\n:3\r\n",
            "$-1\r\n*-1\r\n_\r\n",
            "*3\r\n,1.5\r\n#t\r\n(123\r\n",
            "~1\r\n=7\r\ntxt:abc\r\n",
            "|1\r\n+key\r\n+val\r\n:42\r\n",
            ">2\r\n$7\r\nmessage\r\n$2\r\nch\r\n",
        )
        .as_bytes())
        .unwrap();
        let f = |f: Frame| Incoming::Frame(f);
        assert_eq!(
            out,
            vec![
                f(Frame::Push(vec![
                    Frame::Blob(b("subscribe")),
                    Frame::Blob(b("ch")),
                    Frame::Int(1)
                ])),
                f(Frame::Simple(b("PONG"))),
                f(Frame::Error(b("ERR unknown command"))),
                f(Frame::Error(b("ERR x\r\nyz"))),
                f(Frame::Map(vec![
                    Frame::Simple(b("server")),
                    Frame::Blob(b("redis")),
                    Frame::Simple(b("proto")),
                    Frame::Int(3),
                ])),
                f(Frame::Null),
                f(Frame::Null),
                f(Frame::Null),
                f(Frame::Array(vec![
                    Frame::Text(b("1.5")),
                    Frame::Text(b("t")),
                    Frame::Text(b("123")),
                ])),
                f(Frame::Array(vec![Frame::Blob(b("txt:abc"))])),
                f(Frame::Int(42)),
                f(Frame::Push(vec![
                    Frame::Blob(b("message")),
                    Frame::Blob(b("ch"))
                ])),
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
}
