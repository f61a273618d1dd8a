//! Our RESP decoder against the `redis` crate's parser (`redis::parse_redis_value`).
//!
//! 1. Generated: the input drives a generator of valid RESP2/RESP3 (every type, nested, with
//!    attributes, pushes, RESP2 nulls, extreme integers and doubles). Both parsers must accept
//!    it and agree with each other and with the value it was generated from; our scan must
//!    find the frame complete at its last byte and at no earlier one.
//! 2. Raw: the input itself, parsed by both; where both accept it they must agree.
#![no_main]

mod common;

use common::{same, workout};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use redipc::fuzzing::{Scan, decode_reply};
use redipc::{Reply, ServerError};

const MAX_DEPTH: usize = 6;
const MAX_LEN: usize = 6;

/// Bytes without CR or LF, valid UTF-8 (a simple string's, an error line's).
fn line(u: &mut Unstructured) -> Result<String> {
    let s: String = u.arbitrary()?;
    Ok(s.chars()
        .filter(|c| *c != '\r' && *c != '\n')
        .take(24)
        .collect())
}

fn word(u: &mut Unstructured) -> Result<String> {
    Ok(line(u)?.replace(' ', ""))
}

fn blob(u: &mut Unstructured) -> Result<Vec<u8>> {
    let n = u.int_in_range(0..=48)?;
    Ok(u.bytes(n)?.to_vec())
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn header(out: &mut Vec<u8>, t: u8, n: impl std::fmt::Display) {
    out.push(t);
    out.extend_from_slice(format!("{n}\r\n").as_bytes());
}

fn blob_frame(out: &mut Vec<u8>, t: u8, body: &[u8]) {
    header(out, t, body.len());
    out.extend_from_slice(body);
    out.extend_from_slice(b"\r\n");
}

fn server_error(code: &str, message: &str) -> Reply {
    Reply::Error(ServerError {
        code: code.to_owned(),
        message: message.to_owned(),
    })
}

/// Append one generated value to `out`; returns what our decoder should make of it.
fn value(u: &mut Unstructured, out: &mut Vec<u8>, depth: usize) -> Result<Reply> {
    let aggregate = depth < MAX_DEPTH;
    // 0..=10 are the simple types, 11.. the aggregates (a push is one: 11).
    let kinds = if aggregate { 17 } else { 11 };
    Ok(match u.choose_index(kinds)? {
        0 => {
            let i = match u.choose_index(5)? {
                0 => i64::MIN,
                1 => i64::MAX,
                2 => 0,
                3 => -1,
                _ => u.arbitrary()?,
            };
            header(out, b':', i);
            Reply::Int(i)
        }
        1 => {
            let b = blob(u)?;
            blob_frame(out, b'$', &b);
            Reply::Bulk(b)
        }
        2 => {
            let s = line(u)?;
            header(out, b'+', &s);
            Reply::Status(s)
        }
        3 => {
            let (code, message) = (word(u)?, line(u)?);
            if u.arbitrary()? {
                header(out, b'-', format!("{code} {message}"));
                server_error(&code, &message)
            } else {
                header(out, b'-', &code);
                server_error(&code, "")
            }
        }
        4 => {
            out.extend_from_slice(if u.arbitrary()? {
                b"$-1\r\n"
            } else {
                b"*-1\r\n"
            });
            Reply::Nil
        }
        5 => {
            out.extend_from_slice(b"_\r\n");
            Reply::Nil
        }
        6 => {
            let d = match u.choose_index(8)? {
                0 => f64::NAN,
                1 => f64::INFINITY,
                2 => f64::NEG_INFINITY,
                3 => -0.0,
                4 => f64::MAX,
                5 => f64::MIN_POSITIVE / 4.0,
                _ => u.arbitrary()?,
            };
            let text = match d {
                d if d.is_nan() => "nan".to_owned(),
                d if d == f64::INFINITY => "inf".to_owned(),
                d if d == f64::NEG_INFINITY => "-inf".to_owned(),
                // How Redis writes doubles (%.17g) and how Rust does, both valid.
                d if u.arbitrary()? => format!("{d:e}"),
                d => format!("{d}"),
            };
            header(out, b',', text);
            Reply::Double(d)
        }
        7 => {
            let b: bool = u.arbitrary()?;
            header(out, b'#', if b { "t" } else { "f" });
            Reply::Bool(b)
        }
        8 => {
            let n = u.int_in_range(1..=40)?;
            let mut s = String::new();
            if u.arbitrary()? {
                s.push('-');
            }
            for _ in 0..n {
                s.push(char::from(b'0' + u.int_in_range(0..=9)?));
            }
            header(out, b'(', &s);
            Reply::BigNumber(s)
        }
        9 => {
            let format: String = (0..3)
                .map(|_| Ok(char::from(b'a' + u.int_in_range(0..=25)?)))
                .collect::<Result<_>>()?;
            let text = blob(u)?;
            let mut body = format.clone().into_bytes();
            body.push(b':');
            body.extend_from_slice(&text);
            blob_frame(out, b'=', &body);
            Reply::Verbatim {
                format,
                text: lossy(&text),
            }
        }
        10 => {
            let text = blob(u)?;
            blob_frame(out, b'!', &text);
            let text = lossy(&text);
            let (code, message) = text.split_once(' ').unwrap_or((&text, ""));
            server_error(code, message)
        }
        11 => {
            // A push kind is a string (bulk or simple); the rest anything.
            let n = u.int_in_range(0..=MAX_LEN)?;
            header(out, b'>', n + 1);
            let kind = word(u)?;
            // The redis crate reads `+OK` as its `Okay`, which it refuses as a push's kind
            // (ours takes it).
            if kind == "OK" || u.arbitrary()? {
                blob_frame(out, b'$', kind.as_bytes());
            } else {
                header(out, b'+', &kind);
            }
            let data = (0..n)
                .map(|_| value(u, out, depth + 1))
                .collect::<Result<_>>()?;
            Reply::Push { kind, data }
        }
        12 | 13 => {
            let n = u.int_in_range(0..=MAX_LEN)?;
            let t = if u.arbitrary()? { b'*' } else { b'~' };
            header(out, t, n);
            let v = (0..n)
                .map(|_| value(u, out, depth + 1))
                .collect::<Result<_>>()?;
            if t == b'*' {
                Reply::Array(v)
            } else {
                Reply::Set(v)
            }
        }
        14 | 15 => {
            let n = u.int_in_range(0..=MAX_LEN)?;
            header(out, b'%', n);
            Reply::Map(
                (0..n)
                    .map(|_| Ok((value(u, out, depth + 1)?, value(u, out, depth + 1)?)))
                    .collect::<Result<_>>()?,
            )
        }
        _ => {
            // An attribute: skipped, the value after it is the reply.
            let n = u.int_in_range(0..=3)?;
            header(out, b'|', n);
            for _ in 0..2 * n {
                value(u, out, depth + 1)?;
            }
            value(u, out, depth + 1)?
        }
    })
}

/// The `redis` crate's value as our decoder would give it.
fn normalize(v: redis::Value) -> Reply {
    use redis::Value as V;
    match v {
        V::Nil => Reply::Nil,
        V::Int(i) => Reply::Int(i),
        V::BulkString(b) => Reply::Bulk(b),
        V::SimpleString(s) => Reply::Status(s),
        V::Okay => Reply::Status("OK".into()),
        V::Array(v) => Reply::Array(v.into_iter().map(normalize).collect()),
        V::Set(v) => Reply::Set(v.into_iter().map(normalize).collect()),
        V::Map(m) => Reply::Map(
            m.into_iter()
                .map(|(k, v)| (normalize(k), normalize(v)))
                .collect(),
        ),
        V::Attribute { data, .. } => normalize(*data),
        V::Double(d) => Reply::Double(d),
        V::Boolean(b) => Reply::Bool(b),
        V::VerbatimString { format, text } => Reply::Verbatim {
            format: format.to_string(),
            text,
        },
        V::BigNumber(b) => Reply::BigNumber(lossy(&b)),
        V::Push { kind, data } => Reply::Push {
            kind: kind.to_string(),
            data: data.into_iter().map(normalize).collect(),
        },
        V::ServerError(e) => server_error(e.code(), e.details().unwrap_or("")),
        other => Reply::Status(format!("unknown redis::Value {other:?}")),
    }
}

/// A verbatim string as `format:text` (a malformed one, without the three-letter format,
/// is split differently by the two parsers, but means the same bytes).
fn flatten_verbatim(r: Reply) -> Reply {
    match r {
        Reply::Verbatim { format, text } if format.is_empty() => Reply::Bulk(text.into_bytes()),
        Reply::Verbatim { format, text } => Reply::Bulk(format!("{format}:{text}").into_bytes()),
        Reply::Array(v) => Reply::Array(v.into_iter().map(flatten_verbatim).collect()),
        Reply::Set(v) => Reply::Set(v.into_iter().map(flatten_verbatim).collect()),
        Reply::Map(m) => Reply::Map(
            m.into_iter()
                .map(|(k, v)| (flatten_verbatim(k), flatten_verbatim(v)))
                .collect(),
        ),
        Reply::Push { kind, data } => Reply::Push {
            kind,
            data: data.into_iter().map(flatten_verbatim).collect(),
        },
        other => other,
    }
}

/// Our reading of the first frame of `buf`: scan, then decode.
fn ours(buf: &[u8]) -> Option<(Reply, usize)> {
    let len = Scan::new(usize::MAX, usize::MAX).complete(buf).ok()??;
    // The scan checks framing only; the decoder refuses what is malformed inside a line.
    let (r, end) = decode_reply(&buf[..len], 0).ok()?;
    assert_eq!(end, len);
    Some((r, len))
}

fn generated(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let mut buf = Vec::new();
    let Ok(want) = value(&mut u, &mut buf, 0) else {
        return;
    };
    let Some((got, len)) = ours(&buf) else {
        panic!(
            "we refuse valid RESP {:?} (want {want:?})",
            String::from_utf8_lossy(&buf)
        );
    };
    assert_eq!(len, buf.len(), "frame length");
    assert!(same(&got, &want), "ours {got:?}, want {want:?}");
    let theirs = redis::parse_redis_value(&buf)
        .unwrap_or_else(|e| panic!("redis refuses {:?}: {e}", String::from_utf8_lossy(&buf)));
    let theirs = normalize(theirs);
    assert!(same(&theirs, &want), "redis {theirs:?}, want {want:?}");
    workout(&got);
    // Incomplete at every earlier byte (every one for short frames, some for long ones),
    // fresh and resumed.
    let step = (buf.len() / 64).max(1);
    let mut resumed = Scan::new(usize::MAX, usize::MAX);
    for cut in (0..buf.len()).step_by(step) {
        let fresh = Scan::new(usize::MAX, usize::MAX).complete(&buf[..cut]);
        assert!(
            matches!(fresh, Ok(None)),
            "complete at byte {cut}: {fresh:?}"
        );
        assert!(matches!(resumed.complete(&buf[..cut]), Ok(None)));
    }
    assert_eq!(resumed.complete(&buf).ok().flatten(), Some(buf.len()));
}

fn raw(data: &[u8]) {
    let Some((got, _)) = ours(data) else {
        return;
    };
    workout(&got);
    let Ok(theirs) = redis::parse_redis_value(data) else {
        // The redis crate is stricter in places (text must be UTF-8; a push's kind must
        // be a string); there is nothing to compare.
        return;
    };
    let (got, theirs) = (flatten_verbatim(got), flatten_verbatim(normalize(theirs)));
    assert!(agree(&got, &theirs), "ours {got:?}, redis {theirs:?}");
}

/// Our reply and the redis crate's mean the same. Where RESP says nothing the two read
/// differently and both are fine: a negative length on a type other than `$` and `*`
/// (`>-1`, `~-1`, `%-1`: RESP3's null is `_`) is a nil for us, an empty aggregate for it.
fn agree(ours: &Reply, theirs: &Reply) -> bool {
    let all =
        |a: &[Reply], b: &[Reply]| a.len() == b.len() && a.iter().zip(b).all(|(x, y)| agree(x, y));
    match (ours, theirs) {
        (Reply::Nil, Reply::Push { kind, data }) => kind.is_empty() && data.is_empty(),
        (Reply::Nil, Reply::Set(v) | Reply::Array(v)) => v.is_empty(),
        (Reply::Nil, Reply::Map(m)) => m.is_empty(),
        (Reply::Array(a), Reply::Array(b)) | (Reply::Set(a), Reply::Set(b)) => all(a, b),
        (Reply::Map(a), Reply::Map(b)) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|((k, v), (l, w))| agree(k, l) && agree(v, w))
        }
        (Reply::Push { kind: k, data: a }, Reply::Push { kind: l, data: b }) => k == l && all(a, b),
        _ => same(ours, theirs),
    }
}

fuzz_target!(|data: &[u8]| {
    generated(data);
    raw(data);
});
