//! The C API's conversions that are pure Rust: byte strings `(ptr, len)`, NUL-terminated
//! text, lists `(ptrs, lens, n)` (with and without lengths, with NULL elements, impossible
//! counts), text and buffers handed to C, every options setter but the report callbacks
//! (values stored as given; enums refused outside their range), and the reply tree C walks (each node's type, length,
//! elements and values against the core's reply; elements refused by `ipc_reply_free`).
//! Built with the fuzzer's AddressSanitizer and leak checker, so a bad read or a leak fails.
#![no_main]

mod common;

use std::ffi::{CStr, CString, c_char, c_int};
use std::ptr::{NonNull, null, null_mut};

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use redipc::Reply;
use redipc_ffi::commands::ipc_buf_free;
use redipc_ffi::error::ipc_last_error_message;
use redipc_ffi::fuzzing;
use redipc_ffi::ipc_result::{IPC_ERR_INVALID_ARGUMENT, IPC_ERR_NULL_ARG, IPC_OK};
use redipc_ffi::options::*;
use redipc_ffi::reply::*;

fn last_error() -> String {
    // SAFETY: a NUL-terminated string valid until the next failing call on this thread.
    unsafe { CStr::from_ptr(ipc_last_error_message()) }
        .to_string_lossy()
        .into_owned()
}

/// `s` up to its first NUL, as C would pass it.
fn c_string(s: &[u8]) -> CString {
    let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
    CString::new(&s[..end]).expect("no NUL")
}

fn strings(u: &mut Unstructured) -> Result<Vec<Vec<u8>>> {
    (0..u.int_in_range(0..=8)?)
        .map(|_| {
            let n = u.int_in_range(0..=40)?;
            Ok(u.bytes(n)?.to_vec())
        })
        .collect()
}

fn conversions(u: &mut Unstructured) -> Result<()> {
    let items = strings(u)?;
    // SAFETY (every block below): the pointers are NULL, dangling with a zero length, or
    // point into `items` / `cs`, alive for the call.
    unsafe {
        for s in &items {
            let got = fuzzing::bytes(s.as_ptr().cast(), s.len()).expect("bytes");
            assert_eq!(got, &s[..]);
            let c = c_string(s);
            match fuzzing::text(c.as_ptr()) {
                Ok(t) => assert_eq!(t.as_bytes(), c.as_bytes()),
                Err((code, msg)) => {
                    assert!(std::str::from_utf8(c.as_bytes()).is_err(), "{msg}");
                    assert_eq!(code, "IPC_ERR_INVALID_ARGUMENT");
                }
            }
        }
        assert_eq!(fuzzing::bytes(null(), 3).unwrap_err().0, "IPC_ERR_NULL_ARG");
        let dangling = NonNull::<c_char>::dangling().as_ptr();
        assert_eq!(fuzzing::bytes(dangling, 0).expect("empty"), b"");
        // A length no allocation can have is refused without reading.
        let huge = usize::MAX - u.int_in_range(0..=(usize::MAX >> 1))?;
        assert_eq!(
            fuzzing::bytes(dangling, huge).unwrap_err().0,
            "IPC_ERR_INVALID_ARGUMENT"
        );
        assert_eq!(fuzzing::text(null()).unwrap_err().0, "IPC_ERR_NULL_ARG");

        // Lists: with lengths, NUL-terminated, with a NULL element, empty, impossibly long.
        let ptrs: Vec<*const c_char> = items.iter().map(|s| s.as_ptr().cast()).collect();
        let lens: Vec<usize> = items.iter().map(Vec::len).collect();
        let got = fuzzing::byte_list(ptrs.as_ptr(), lens.as_ptr(), items.len()).expect("list");
        assert_eq!(got, items.iter().map(Vec::as_slice).collect::<Vec<_>>());
        let cs: Vec<CString> = items.iter().map(|s| c_string(s)).collect();
        let cptrs: Vec<*const c_char> = cs.iter().map(|c| c.as_ptr()).collect();
        let got = fuzzing::byte_list(cptrs.as_ptr(), null(), cs.len()).expect("C strings");
        assert_eq!(got, cs.iter().map(|c| c.as_bytes()).collect::<Vec<_>>());
        if !items.is_empty() {
            let at = u.choose_index(items.len())?;
            let mut holed = ptrs.clone();
            holed[at] = null();
            let (code, msg) = fuzzing::byte_list(holed.as_ptr(), lens.as_ptr(), holed.len())
                .expect_err("a NULL element");
            assert_eq!(code, "IPC_ERR_NULL_ARG");
            assert!(msg.contains(&format!("[{at}]")), "{msg}");
        }
        assert!(
            fuzzing::byte_list(null(), null(), 0)
                .expect("none")
                .is_empty()
        );
        assert_eq!(
            fuzzing::byte_list(null(), null(), 1).unwrap_err().0,
            "IPC_ERR_NULL_ARG"
        );
        let n = usize::MAX - u.int_in_range(0..=(usize::MAX >> 3))?;
        assert_eq!(
            fuzzing::byte_list(ptrs.as_ptr(), lens.as_ptr(), n.max(1))
                .unwrap_err()
                .0,
            "IPC_ERR_INVALID_ARGUMENT"
        );

        // What goes back to C.
        for s in &items {
            let text = String::from_utf8_lossy(s);
            let c = fuzzing::c_text(&text);
            assert_eq!(c.to_str().expect("UTF-8"), text.replace('\0', "\\0"));
            let (p, n) = fuzzing::present(s);
            assert!(!p.is_null());
            assert_eq!(std::slice::from_raw_parts(p.cast::<u8>(), n), &s[..]);
            let (p, n) = fuzzing::into_buf(s.clone());
            assert!(!p.is_null());
            assert_eq!(std::slice::from_raw_parts(p.cast::<u8>(), n), &s[..]);
            ipc_buf_free(p, n);
        }
    }
    Ok(())
}

/// Every setter of every options type, with fuzzed values; what the core's options hold
/// afterwards is what was given.
fn options(u: &mut Unstructured) -> Result<()> {
    let text = c_string(&strings(u)?.concat());
    let text_ok = std::str::from_utf8(text.as_bytes()).is_ok();
    let want_text = if text_ok {
        IPC_OK
    } else {
        IPC_ERR_INVALID_ARGUMENT
    };
    let ms: u64 = u.arbitrary()?;
    let int: i64 = u.arbitrary()?;
    let n: usize = u.arbitrary()?;
    let num: u32 = u.arbitrary()?;
    let on: bool = u.arbitrary()?;
    let e: c_int = if u.arbitrary()? {
        u.int_in_range(-1..=3)?
    } else {
        u.arbitrary()?
    };
    let bytes = strings(u)?.concat();
    // SAFETY: each handle is made by its `_new`, used on this thread only, freed once; the
    // strings live across the calls.
    unsafe {
        let mut o = null_mut();
        assert_eq!(ipc_options_new(&mut o), IPC_OK);
        assert_eq!(ipc_options_set_connect_timeout_ms(o, ms), IPC_OK);
        assert_eq!(ipc_options_set_response_timeout_ms(o, ms), IPC_OK);
        assert_eq!(ipc_options_set_client_name(o, text.as_ptr()), want_text);
        assert_eq!(ipc_options_set_database(o, int), IPC_OK);
        assert_eq!(ipc_options_set_username(o, text.as_ptr()), want_text);
        assert_eq!(ipc_options_set_password(o, text.as_ptr()), want_text);
        assert_eq!(ipc_options_set_key_prefix(o, text.as_ptr()), want_text);
        assert_eq!(ipc_options_set_io_threads(o, n), IPC_OK);
        assert_eq!(ipc_options_set_resp3(o, on), IPC_OK);
        assert_eq!(ipc_options_set_max_value_size(o, n), IPC_OK);
        assert_eq!(ipc_options_set_max_reply_size(o, n), IPC_OK);
        assert_eq!(ipc_options_set_reconnect_min_delay_ms(o, ms), IPC_OK);
        assert_eq!(ipc_options_set_reconnect_max_delay_ms(o, ms), IPC_OK);
        assert_eq!(ipc_options_set_reconnect_max_attempts(o, num), IPC_OK);
        assert_eq!(ipc_options_set_poll_mode(o, on), IPC_OK);
        assert_eq!(ipc_options_set_health_check_interval_ms(o, ms), IPC_OK);
        assert_eq!(ipc_options_set_stream_maxlen(o, n), IPC_OK);
        assert_eq!(ipc_options_set_client_name(o, null()), IPC_ERR_NULL_ARG);
        assert_eq!(
            ipc_options_set_connect_timeout_ms(null_mut(), ms),
            IPC_ERR_NULL_ARG
        );
        // `ipc_options` owns a `redipc::Options` (its `box_castable!`).
        let core = &*o.cast::<redipc::Options>();
        let d = std::time::Duration::from_millis(ms);
        assert_eq!((core.connect_timeout, core.response_timeout), (d, d));
        assert_eq!(core.database, Some(int));
        assert_eq!(
            (core.io_threads, core.max_value_size, core.stream_maxlen),
            (n, n, n)
        );
        assert_eq!(core.max_reply_size, n);
        assert_eq!((core.resp3, core.poll_mode), (on, on));
        assert_eq!((core.reconnect.min_delay, core.reconnect.max_delay), (d, d));
        assert_eq!(core.reconnect.max_attempts, (num != 0).then_some(num));
        assert_eq!(core.health_check_interval, Some(d));
        if text_ok {
            let t = text.to_str().expect("UTF-8");
            assert_eq!(core.client_name.as_deref(), Some(t));
            assert_eq!(core.password.as_deref(), Some(t));
            assert_eq!(core.key_prefix, t);
        }
        ipc_options_free(o);
        ipc_options_free(null_mut());

        let mut s = null_mut();
        assert_eq!(ipc_subscribe_options_new(&mut s), IPC_OK);
        assert_eq!(ipc_subscribe_options_set_capacity(s, n), IPC_OK);
        let want = if (0..=2).contains(&e) {
            IPC_OK
        } else {
            IPC_ERR_INVALID_ARGUMENT
        };
        assert_eq!(ipc_subscribe_options_set_overflow(s, e), want);
        ipc_subscribe_options_free(s);

        let mut w = null_mut();
        assert_eq!(ipc_worker_options_new(&mut w), IPC_OK);
        assert_eq!(ipc_worker_options_set_concurrency(w, n), IPC_OK);
        assert_eq!(ipc_worker_options_set_block_timeout_ms(w, ms), IPC_OK);
        assert_eq!(ipc_worker_options_set_reliable(w, on), IPC_OK);
        assert_eq!(ipc_worker_options_set_max_attempts(w, num), IPC_OK);
        assert_eq!(ipc_worker_options_set_lease_ms(w, ms), IPC_OK);
        assert_eq!(ipc_worker_options_set_prefetch(w, n), IPC_OK);
        assert_eq!(ipc_worker_options_set_bare(w, on), IPC_OK);
        let want = if (0..=1).contains(&e) {
            IPC_OK
        } else {
            IPC_ERR_INVALID_ARGUMENT
        };
        assert_eq!(ipc_worker_options_set_protocol(w, e), want);
        ipc_worker_options_free(w);

        let mut c = null_mut();
        assert_eq!(ipc_consumer_options_new(&mut c), IPC_OK);
        assert_eq!(ipc_consumer_options_set_count(c, n), IPC_OK);
        assert_eq!(ipc_consumer_options_set_block_ms(c, ms), IPC_OK);
        assert_eq!(ipc_consumer_options_set_min_idle_ms(c, ms), IPC_OK);
        assert_eq!(
            ipc_consumer_options_set_max_deliveries(c, u64::from(num)),
            IPC_OK
        );
        assert_eq!(ipc_consumer_options_set_claim_interval_ms(c, ms), IPC_OK);
        ipc_consumer_options_free(c);

        let mut h = null_mut();
        assert_eq!(ipc_hash_watch_options_new(&mut h), IPC_OK);
        assert_eq!(ipc_hash_watch_options_set_initial_sync(h, on), IPC_OK);
        assert_eq!(ipc_hash_watch_options_set_debounce_ms(h, ms), IPC_OK);
        assert_eq!(ipc_hash_watch_options_set_every_notification(h, on), IPC_OK);
        let bp: *const c_char = if bytes.is_empty() {
            NonNull::dangling().as_ptr()
        } else {
            bytes.as_ptr().cast()
        };
        assert_eq!(
            ipc_hash_watch_options_set_channel(h, bp, bytes.len()),
            IPC_OK
        );
        assert_eq!(
            ipc_hash_watch_options_set_channel(h, null(), 1),
            IPC_ERR_NULL_ARG
        );
        ipc_hash_watch_options_free(h);

        let mut k = null_mut();
        assert_eq!(ipc_call_options_new(&mut k), IPC_OK);
        assert_eq!(ipc_call_options_set_timeout_ms(k, ms), IPC_OK);
        assert_eq!(ipc_call_options_set_fail_fast(k, on), IPC_OK);
        assert_eq!(ipc_call_options_set_protocol(k, e), want);
        ipc_call_options_free(k);

        let mut hw = null_mut();
        assert_eq!(ipc_hash_write_options_new(&mut hw), IPC_OK);
        assert_eq!(
            ipc_hash_write_options_set_channel(hw, bp, bytes.len()),
            IPC_OK
        );
        assert_eq!(
            ipc_hash_write_options_set_announce(hw, bp, bytes.len()),
            IPC_OK
        );
        let want = if (0..=2).contains(&e) {
            IPC_OK
        } else {
            IPC_ERR_INVALID_ARGUMENT
        };
        assert_eq!(ipc_hash_write_options_set_timestamp(hw, e), want);
        let hwc = &*hw.cast::<redipc::HashWrite>();
        let _ = format!("{hwc:?}");
        ipc_hash_write_options_free(hw);

        let mut l = null_mut();
        assert_eq!(ipc_lock_options_new(&mut l), IPC_OK);
        assert_eq!(ipc_lock_options_set_ttl_ms(l, ms), IPC_OK);
        assert_eq!(ipc_lock_options_set_wait_ms(l, ms), IPC_OK);
        assert_eq!(ipc_lock_options_set_auto_renew(l, on), IPC_OK);
        ipc_lock_options_free(l);
    }
    let _ = last_error();
    Ok(())
}

/// The type C sees for a core reply.
fn kind_of(r: &Reply) -> ipc_reply_kind {
    use ipc_reply_kind as K;
    match r {
        Reply::Nil => K::IPC_REPLY_NIL,
        Reply::Int(_) => K::IPC_REPLY_INT,
        Reply::Bulk(_) => K::IPC_REPLY_BULK,
        Reply::Status(_) => K::IPC_REPLY_STATUS,
        Reply::Error(_) => K::IPC_REPLY_ERROR,
        Reply::Array(_) => K::IPC_REPLY_ARRAY,
        Reply::Map(_) => K::IPC_REPLY_MAP,
        Reply::Set(_) => K::IPC_REPLY_SET,
        Reply::Double(_) => K::IPC_REPLY_DOUBLE,
        Reply::Bool(_) => K::IPC_REPLY_BOOL,
        Reply::BigNumber(_) => K::IPC_REPLY_BIGNUMBER,
        Reply::Verbatim { .. } => K::IPC_REPLY_VERBATIM,
        Reply::Push { .. } => K::IPC_REPLY_PUSH,
        _ => K::IPC_REPLY_STATUS,
    }
}

/// Walk the C tree `node` against the core reply `r`.
///
/// # Safety
/// `node` is a live node of a reply tree.
unsafe fn walk(node: *const ipc_reply, r: &Reply) {
    // SAFETY: `node` is live (the caller); outputs point at locals.
    unsafe {
        assert_eq!(ipc_reply_type(node), kind_of(r));
        let (mut p, mut n) = (null(), 0usize);
        let string = match ipc_reply_string(node, &mut p, &mut n) {
            IPC_OK => {
                assert!(!p.is_null());
                Some(std::slice::from_raw_parts(p.cast::<u8>(), n).to_vec())
            }
            code => {
                assert_eq!(code, IPC_ERR_INVALID_ARGUMENT);
                None
            }
        };
        let want_string = match r {
            Reply::Bulk(b) => Some(b.clone()),
            Reply::Status(s) | Reply::BigNumber(s) => Some(s.clone().into_bytes()),
            Reply::Verbatim { text, .. } => Some(text.clone().into_bytes()),
            Reply::Error(e) if e.message.is_empty() => Some(e.code.clone().into_bytes()),
            Reply::Error(e) => Some(format!("{} {}", e.code, e.message).into_bytes()),
            _ => None,
        };
        assert_eq!(string, want_string);
        let mut i = 0i64;
        let code = ipc_reply_integer(node, &mut i);
        assert_eq!(code == IPC_OK, matches!(r, Reply::Int(x) if *x == i));
        let mut d = 0f64;
        let code = ipc_reply_double(node, &mut d);
        assert_eq!(
            code == IPC_OK,
            matches!(r, Reply::Double(x) if x.to_bits() == d.to_bits())
        );
        let mut b = false;
        let code = ipc_reply_bool(node, &mut b);
        assert_eq!(code == IPC_OK, matches!(r, Reply::Bool(x) if *x == b));
        let elements: Vec<Reply> = match r {
            Reply::Array(v) | Reply::Set(v) => v.clone(),
            Reply::Map(m) => m.iter().flat_map(|(k, v)| [k.clone(), v.clone()]).collect(),
            Reply::Push { kind, data } => std::iter::once(Reply::Bulk(kind.clone().into_bytes()))
                .chain(data.iter().cloned())
                .collect(),
            _ => Vec::new(),
        };
        assert_eq!(ipc_reply_len(node), elements.len());
        for (i, e) in elements.iter().enumerate() {
            let child = ipc_reply_element(node, i);
            assert!(!child.is_null());
            assert_eq!(child, ipc_reply_element(node, i), "stable element pointers");
            walk(child, e);
            // An element is not freed (the root owns it); the call says so.
            ipc_reply_free(child.cast_mut());
            assert!(last_error().contains("free its root"));
        }
        assert!(ipc_reply_element(node, elements.len()).is_null());
        assert!(ipc_reply_element(node, usize::MAX).is_null());
    }
}

/// The first frames of `data` as C sees them.
fn replies(data: &[u8]) {
    let (frames, _) = common::reference(data, 4096, 64 * 1024);
    for reply in frames.into_iter().take(4) {
        let root = fuzzing::new_reply(reply.clone());
        // SAFETY: `root` is a live root, freed once.
        unsafe {
            walk(root, &reply);
            ipc_reply_free(root);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let _ = conversions(&mut u);
    let _ = options(&mut u);
    replies(data);
});
