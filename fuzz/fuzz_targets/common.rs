//! What the RESP targets share: the reference reading of a byte stream, comparisons, and a
//! workout of the reply conversions.
#![allow(dead_code)]

use redipc::Reply;
use redipc::fuzzing::{Frame, Scan, decode_reply};

/// How a stream of bytes ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Every byte is part of a complete frame, or `n` bytes of an incomplete one are left.
    Leftover(usize),
    /// A protocol error: the connection would be dropped.
    Error,
}

/// The reference: the frames of `data` read one at a time from one buffer holding all of
/// it, as the command connection reads them (`Scan`, then `decode_reply`).
pub fn reference(data: &[u8], value: usize, reply: usize) -> (Vec<Reply>, End) {
    let mut scan = Scan::new(value, reply);
    let mut frames = Vec::new();
    let mut p = 0;
    loop {
        match scan.complete(&data[p..]) {
            // The scan checks framing only: the decoder still refuses what is malformed
            // inside a line (`:12a`, `#x`, `,1.2.3`), also a protocol error.
            Ok(Some(len)) => match decode_reply(&data[p..p + len], 0) {
                Ok((r, end)) => {
                    assert_eq!(
                        end, len,
                        "the scan and the decoder disagree on a frame's end"
                    );
                    frames.push(r);
                    p += len;
                }
                Err(e) => {
                    assert_eq!(e.kind(), redipc::ErrorKind::Protocol, "{e}");
                    return (frames, End::Error);
                }
            },
            Ok(None) => return (frames, End::Leftover(data.len() - p)),
            Err(e) => {
                assert_eq!(e.kind(), redipc::ErrorKind::Protocol, "{e}");
                return (frames, End::Error);
            }
        }
    }
}

/// `data` cut into pieces of the sizes in `cuts` (cycled; each at least 1 byte).
pub fn pieces<'a>(data: &'a [u8], cuts: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    let mut i = 0;
    while !rest.is_empty() {
        let n = match cuts.get(i % cuts.len().max(1)) {
            Some(&c) => usize::from(c) + 1,
            None => rest.len(),
        };
        let n = n.min(rest.len());
        out.push(&rest[..n]);
        rest = &rest[n..];
        i += 1;
    }
    out
}

/// Replies compared by their debug text: a NaN double equals itself, 0.0 differs from -0.0.
pub fn same(a: &Reply, b: &Reply) -> bool {
    format!("{a:?}") == format!("{b:?}")
}

/// Whether the pub/sub reader's `frame` is what the reference decoded as `reply`.
pub fn frame_is(frame: &Frame, reply: &Reply) -> bool {
    match frame {
        Frame::Reply(r) => same(r, reply),
        Frame::Message {
            kind,
            pattern,
            channel,
            payload,
        } => {
            let Reply::Push { kind: k, data } = reply else {
                return false;
            };
            let strings: Vec<&[u8]> = pattern
                .iter()
                .map(|p| p.as_slice())
                .chain([channel.as_slice(), payload.as_slice()])
                .collect();
            k == kind
                && data.len() == strings.len()
                && data.iter().zip(strings).all(|(d, s)| match d {
                    Reply::Bulk(b) => b.as_slice() == s,
                    // A simple string is decoded as text (invalid UTF-8 replaced).
                    Reply::Status(t) => *t == String::from_utf8_lossy(s),
                    _ => false,
                })
        }
    }
}

/// Every conversion of a reply: none may panic.
pub fn workout(r: &Reply) {
    let _ = r.kind();
    let _ = r.is_nil();
    let _ = r.as_bytes();
    let _ = r.as_int();
    let _ = r.as_f64();
    let _ = r.as_map();
    let _ = r.len();
    let _ = r.is_empty();
    let _ = r.clone().into_opt_bytes();
    let _ = r.clone().into_int();
    let _ = r.clone().into_pairs();
    let _ = r.clone().into_ok();
    if let Some(items) = r.as_slice() {
        items.iter().for_each(workout);
    }
    if let Reply::Map(pairs) = r {
        for (k, v) in pairs {
            workout(k);
            workout(v);
        }
    }
}
