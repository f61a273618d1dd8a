//! The RESP reader fed arbitrary bytes in arbitrary read splits, with the default limits or
//! small ones: no panic, no allocation beyond what the bytes and the limits allow (run with
//! `-malloc_limit_mb`), and the same frames whatever the splits, on both connections' paths
//! (the command connection's `Scan` + `decode_reply`, the pub/sub connection's `Reader`).
//!
//! Input: `data ++ control ++ [t]`: the last byte `t` says how many bytes before it are
//! control (`t & 31`) and whether the limits are small (`t & 32`: a value limit of
//! `control[0]` bytes and a reply limit of `64 + 4 * control[1]`); the rest of the control
//! bytes are the sizes of the reads (each + 1, cycled).
#![no_main]

mod common;

use common::{End, frame_is, pieces, reference, same, workout};
use libfuzzer_sys::fuzz_target;
use redipc::Reply;
use redipc::fuzzing::{Frame, Reader, Scan, decode_reply};

const DEFAULT_VALUE: usize = redipc::DEFAULT_MAX_VALUE_SIZE;
const DEFAULT_REPLY: usize = 1024 * 1024 * 1024;

/// The command connection's reading: `Scan` over a buffer that grows by `pieces`.
fn wire(pieces: &[&[u8]], value: usize, reply: usize) -> (Vec<Reply>, End) {
    let mut scan = Scan::new(value, reply);
    let mut buf: Vec<u8> = Vec::new();
    let mut frames = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            match scan.complete(&buf) {
                Ok(Some(len)) => match decode_reply(&buf[..len], 0) {
                    Ok((r, end)) => {
                        assert_eq!(end, len);
                        frames.push(r);
                        buf.drain(..len);
                    }
                    Err(e) => {
                        assert_eq!(e.kind(), redipc::ErrorKind::Protocol, "{e}");
                        return (frames, End::Error);
                    }
                },
                Ok(None) => break,
                Err(e) => {
                    assert_eq!(e.kind(), redipc::ErrorKind::Protocol, "{e}");
                    return (frames, End::Error);
                }
            }
        }
    }
    (frames, End::Leftover(buf.len()))
}

/// The pub/sub connection's reading: one `Reader` given `pieces` read by read.
fn pubsub(pieces: &[&[u8]], value: usize, reply: usize) -> (Vec<Frame>, End) {
    let mut reader = Reader::new(value, reply);
    let mut frames = Vec::new();
    let (mut fed, mut taken) = (0, 0);
    for piece in pieces {
        fed += piece.len();
        match reader.feed(piece) {
            Ok((got, n)) => {
                frames.extend(got);
                taken += n;
            }
            Err(e) => {
                assert_eq!(e.kind(), redipc::ErrorKind::Protocol, "{e}");
                return (frames, End::Error);
            }
        }
    }
    (frames, End::Leftover(fed - taken))
}

/// A path's frames and end agree with the reference's: the same frames and the same end,
/// or, where the reference found an error, an error too after a prefix of its frames (a
/// reader may drop the frames of the read that brought the error).
fn agrees<F>(
    what: &str,
    got: &[F],
    end: End,
    want: &[Reply],
    want_end: End,
    eq: impl Fn(&F, &Reply) -> bool,
) where
    F: std::fmt::Debug,
{
    match want_end {
        End::Error => {
            assert_eq!(
                end,
                End::Error,
                "{what}: no error where the reference has one"
            );
            assert!(
                got.len() <= want.len(),
                "{what}: more frames than the reference"
            );
        }
        End::Leftover(_) => {
            assert_eq!(end, want_end, "{what}: ends unlike the reference");
            assert_eq!(got.len(), want.len(), "{what}: not the reference's frames");
        }
    }
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            eq(g, w),
            "{what}: frame {i} is {g:?}, the reference's {w:?}"
        );
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&t, rest)) = input.split_last() else {
        return;
    };
    let ctl_len = usize::from(t & 31).min(rest.len());
    let (data, ctl) = rest.split_at(rest.len() - ctl_len);
    let (value, reply) = if t & 32 != 0 {
        (
            usize::from(ctl.first().copied().unwrap_or(16)),
            64 + 4 * usize::from(ctl.get(1).copied().unwrap_or(0)),
        )
    } else {
        (DEFAULT_VALUE, DEFAULT_REPLY)
    };
    let cuts = ctl.get(2..).unwrap_or(&[]);

    let (want, want_end) = reference(data, value, reply);
    want.iter().for_each(workout);

    let whole = [data];
    let split = pieces(data, cuts);
    // Byte by byte too, for inputs short enough (the pub/sub reader rescans a message
    // that is not complete yet from its start).
    let bytes = if data.len() <= 1024 {
        pieces(data, &[0])
    } else {
        Vec::new()
    };
    for (name, p) in [
        ("whole", &whole[..]),
        ("split", &split),
        ("bytewise", &bytes),
    ] {
        if p.is_empty() && !data.is_empty() {
            continue;
        }
        let (got, end) = wire(p, value, reply);
        agrees(
            &format!("command connection, {name}"),
            &got,
            end,
            &want,
            want_end,
            same,
        );
        let (got, end) = pubsub(p, value, reply);
        agrees(
            &format!("pub/sub reader, {name}"),
            &got,
            end,
            &want,
            want_end,
            frame_is,
        );
    }
});
