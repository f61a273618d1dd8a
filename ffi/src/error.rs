//! Error codes (`ipc_result`), the thread's last error, and the mapping from
//! `redipc::ErrorKind`.

use std::any::Any;
use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char, c_int};

/// The result of a fallible call. `IPC_OK` is 0; error codes are grouped in ranges of 100
/// by what went wrong, and a number is never reused for another meaning:
///
/// | range | group |
/// |---|---|
/// | 100..199 | connection |
/// | 200..299 | timeout |
/// | 300..399 | error reply of the server |
/// | 400..499 | protocol |
/// | 500..599 | closed |
/// | 600..699 | bad argument from the caller |
/// | 700..799 | transactions |
/// | 800..899 | RPC and handlers |
/// | 900..999 | internal failures of the library |
///
/// After any code other than `IPC_OK`, `ipc_last_error_message()` says what happened.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ipc_result {
    /// Success.
    IPC_OK = 0,
    /// The server could not be reached within the connect timeout, or the connection broke
    /// (it is re-established in the background; a later call may succeed).
    IPC_ERR_CONNECTION = 100,
    /// No reply came within the response timeout.
    IPC_ERR_TIMEOUT = 200,
    /// The server answered with an error reply (`WRONGTYPE ...`, `ERR ...`); the code is in
    /// `ipc_last_error_code()`, the text in `ipc_last_error_message()`.
    IPC_ERR_SERVER = 300,
    /// The server's reply could not be understood or did not have the expected type.
    IPC_ERR_PROTOCOL = 400,
    /// The client was closed with `ipc_client_close()`.
    IPC_ERR_CLOSED = 500,
    /// An unusable argument: an invalid URL, an empty command, a string that is not UTF-8,
    /// a value over the size limit, a reply accessor used on a reply of another type.
    IPC_ERR_INVALID_ARGUMENT = 600,
    /// A pointer argument that must not be NULL was NULL.
    IPC_ERR_NULL_ARG = 601,
    /// A feature that is not built into this library (for example TLS, `rediss://`), or a
    /// process-wide setting another component owns (`ipc_set_log_callback()`).
    IPC_ERR_UNSUPPORTED = 602,
    /// An output array given with its capacity was too small. The exception to "outputs only
    /// on `IPC_OK`": the function filled what fit and wrote the capacity it needs (see
    /// `ipc_client_latency_histogram()`); call again with that much room.
    IPC_ERR_BUFFER_TOO_SMALL = 603,
    /// A `WATCH`ed key changed and an optimistic transaction gave up after its retries.
    IPC_ERR_WATCH = 700,
    /// The callback of `ipc_transaction()` returned non-zero: the transaction was given up
    /// and none of its queued commands ran.
    IPC_ERR_TX_ABORTED = 701,
    /// The RPC handler of the called service reported an error; `ipc_last_error_message()`
    /// holds its text.
    IPC_ERR_REMOTE = 800,
    /// No server of the called RPC service is running (no reply came, and none is
    /// registered).
    IPC_ERR_NO_SERVER = 801,
    /// A handler failed: it returned non-zero (its text set with `ipc_error_set()`) or
    /// panicked. Seen as the `error` of an `ipc_report` of kind
    /// `IPC_REPORT_HANDLER_FAILED`.
    IPC_ERR_HANDLER = 802,
    /// A bug: the library panicked. The call had no effect on its outputs.
    IPC_ERR_PANIC = 900,
    /// An error of a kind this version of the C API does not know.
    IPC_ERR_INTERNAL = 901,
}

impl ipc_result {
    /// Every code, for tests and for `ipc_result_name`.
    pub(crate) const ALL: [ipc_result; 17] = [
        ipc_result::IPC_OK,
        ipc_result::IPC_ERR_CONNECTION,
        ipc_result::IPC_ERR_TIMEOUT,
        ipc_result::IPC_ERR_SERVER,
        ipc_result::IPC_ERR_PROTOCOL,
        ipc_result::IPC_ERR_CLOSED,
        ipc_result::IPC_ERR_INVALID_ARGUMENT,
        ipc_result::IPC_ERR_NULL_ARG,
        ipc_result::IPC_ERR_UNSUPPORTED,
        ipc_result::IPC_ERR_BUFFER_TOO_SMALL,
        ipc_result::IPC_ERR_WATCH,
        ipc_result::IPC_ERR_TX_ABORTED,
        ipc_result::IPC_ERR_REMOTE,
        ipc_result::IPC_ERR_NO_SERVER,
        ipc_result::IPC_ERR_HANDLER,
        ipc_result::IPC_ERR_PANIC,
        ipc_result::IPC_ERR_INTERNAL,
    ];

    /// The name of the code as written in C: `"IPC_OK"`, `"IPC_ERR_TIMEOUT"`, ...
    pub fn name(self) -> &'static CStr {
        match self {
            ipc_result::IPC_OK => c"IPC_OK",
            ipc_result::IPC_ERR_CONNECTION => c"IPC_ERR_CONNECTION",
            ipc_result::IPC_ERR_TIMEOUT => c"IPC_ERR_TIMEOUT",
            ipc_result::IPC_ERR_SERVER => c"IPC_ERR_SERVER",
            ipc_result::IPC_ERR_PROTOCOL => c"IPC_ERR_PROTOCOL",
            ipc_result::IPC_ERR_CLOSED => c"IPC_ERR_CLOSED",
            ipc_result::IPC_ERR_INVALID_ARGUMENT => c"IPC_ERR_INVALID_ARGUMENT",
            ipc_result::IPC_ERR_NULL_ARG => c"IPC_ERR_NULL_ARG",
            ipc_result::IPC_ERR_UNSUPPORTED => c"IPC_ERR_UNSUPPORTED",
            ipc_result::IPC_ERR_BUFFER_TOO_SMALL => c"IPC_ERR_BUFFER_TOO_SMALL",
            ipc_result::IPC_ERR_WATCH => c"IPC_ERR_WATCH",
            ipc_result::IPC_ERR_TX_ABORTED => c"IPC_ERR_TX_ABORTED",
            ipc_result::IPC_ERR_REMOTE => c"IPC_ERR_REMOTE",
            ipc_result::IPC_ERR_NO_SERVER => c"IPC_ERR_NO_SERVER",
            ipc_result::IPC_ERR_HANDLER => c"IPC_ERR_HANDLER",
            ipc_result::IPC_ERR_PANIC => c"IPC_ERR_PANIC",
            ipc_result::IPC_ERR_INTERNAL => c"IPC_ERR_INTERNAL",
        }
    }

    /// The code for an `ErrorKind` of the core.
    pub fn from_kind(kind: redipc::ErrorKind) -> ipc_result {
        use redipc::ErrorKind as K;
        match kind {
            K::Connection => ipc_result::IPC_ERR_CONNECTION,
            K::Timeout => ipc_result::IPC_ERR_TIMEOUT,
            K::Server => ipc_result::IPC_ERR_SERVER,
            K::Protocol => ipc_result::IPC_ERR_PROTOCOL,
            K::Closed => ipc_result::IPC_ERR_CLOSED,
            K::InvalidArgument => ipc_result::IPC_ERR_INVALID_ARGUMENT,
            K::Unsupported => ipc_result::IPC_ERR_UNSUPPORTED,
            K::Watch => ipc_result::IPC_ERR_WATCH,
            K::Remote => ipc_result::IPC_ERR_REMOTE,
            K::NoServer => ipc_result::IPC_ERR_NO_SERVER,
            K::Handler => ipc_result::IPC_ERR_HANDLER,
            K::Aborted => ipc_result::IPC_ERR_TX_ABORTED,
            // `ErrorKind` is non-exhaustive: a kind added later without a code here.
            _ => ipc_result::IPC_ERR_INTERNAL,
        }
    }
}

/// An error on its way to C: a code, the message, and a server reply's error code.
///
/// Made from the core's `redipc::Error` (`From`), or here for what only the conversion can
/// see: a NULL pointer, text that is not UTF-8, a panic.
#[derive(Debug)]
pub struct Error {
    code: ipc_result,
    message: String,
    server_code: Option<String>,
}

impl Error {
    /// An error with `code` and `message`.
    pub fn new(code: ipc_result, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
            server_code: None,
        }
    }

    /// `IPC_ERR_INVALID_ARGUMENT`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::new(ipc_result::IPC_ERR_INVALID_ARGUMENT, message)
    }

    /// `IPC_ERR_NULL_ARG` for the argument named `arg`.
    pub fn null_arg(arg: &str) -> Self {
        Error::new(
            ipc_result::IPC_ERR_NULL_ARG,
            format!("argument `{arg}` is NULL"),
        )
    }

    /// `IPC_ERR_PANIC` with the panic's message.
    pub fn panic(payload: &(dyn Any + Send)) -> Self {
        let what = if let Some(s) = payload.downcast_ref::<&str>() {
            s
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.as_str()
        } else {
            "(no message)"
        };
        Error::new(
            ipc_result::IPC_ERR_PANIC,
            format!("panicked (a bug in redipc, please report it): {what}"),
        )
    }

    /// The code.
    pub fn code(&self) -> ipc_result {
        self.code
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<redipc::Error> for Error {
    fn from(e: redipc::Error) -> Self {
        // "what was being done: CODE server text", e.g.
        // "GET k: WRONGTYPE Operation against a key holding the wrong kind of value".
        let mut message = String::new();
        if let Some(what) = e.context_str() {
            message.push_str(what);
            message.push_str(": ");
        }
        if let Some(code) = e.code() {
            message.push_str(code);
            if !e.message().is_empty() {
                message.push(' ');
            }
        }
        message.push_str(e.message());
        Error {
            code: ipc_result::from_kind(e.kind()),
            message,
            server_code: e.code().map(str::to_string),
        }
    }
}

/// The thread's last error. Clearing only marks it cleared: the strings stay until the next
/// error replaces them, so a pointer from `ipc_last_error_message()` may be passed to another
/// call (say `ipc_error_set()`) that starts by clearing it.
struct LastError {
    message: CString,
    code: CString,
    set: bool,
}

impl LastError {
    fn message(&self) -> *const c_char {
        if self.set {
            self.message.as_ptr()
        } else {
            c"".as_ptr()
        }
    }

    fn code(&self) -> *const c_char {
        if self.set {
            self.code.as_ptr()
        } else {
            c"".as_ptr()
        }
    }
}

thread_local! {
    static LAST_ERROR: RefCell<LastError> = RefCell::new(LastError {
        message: CString::default(),
        code: CString::default(),
        set: false,
    });
}

fn c_string(text: &str) -> CString {
    // Interior NUL bytes (from binary keys) would end the C string early: show them.
    CString::new(text.replace('\0', "\\0")).unwrap_or_default()
}

/// Forget the thread's last error (calls returning `ipc_result` do it when they start).
pub(crate) fn clear_last_error() {
    let _ = LAST_ERROR.try_with(|l| {
        if let Ok(mut l) = l.try_borrow_mut() {
            l.set = false;
        }
    });
}

/// Record `e`, raised by the exported function `function`, as the thread's last error.
pub(crate) fn set_last_error(function: &str, e: Error) {
    let message = c_string(&format!("{function}: {}", e.message));
    let code = c_string(e.server_code.as_deref().unwrap_or(""));
    let _ = LAST_ERROR.try_with(|l| {
        if let Ok(mut l) = l.try_borrow_mut() {
            l.message = message;
            l.code = code;
            l.set = true;
        }
    });
}

/// The text of the last error on the calling thread, such as
/// `"ipc_get: GET k: WRONGTYPE Operation against a key holding the wrong kind of value"`;
/// `""` if there is none.
///
/// Every call that returns `ipc_result` clears it when it starts and sets it when it
/// fails; other calls (reply accessors) set it when they fail and otherwise leave it.
///
/// Lifetime: the string belongs to the library and stays valid until the next call on this
/// thread that fails has returned (so it may be passed to another redipc call, such as
/// `ipc_error_set()`, which clears the last error when it starts); copy it to keep it
/// longer. Never NULL.
///
/// Thread safety: each thread has its own last error.
#[unsafe(no_mangle)]
pub extern "C" fn ipc_last_error_message() -> *const c_char {
    ffi_boundary!(ipc_last_error_message() {
        Ok(LAST_ERROR
            .try_with(|l| l.try_borrow().map(|l| l.message()).ok())
            .ok()
            .flatten()
            .unwrap_or(c"".as_ptr()))
    })
}

/// The server's error code of the last error on the calling thread, when it was an error
/// reply of the server (`IPC_ERR_SERVER`): `"WRONGTYPE"`, `"ERR"`, `"NOSCRIPT"`, ...;
/// `""` otherwise.
///
/// Lifetime: as `ipc_last_error_message()`: valid until the next failing call on this
/// thread has returned. Never NULL. Thread safety: per thread.
#[unsafe(no_mangle)]
pub extern "C" fn ipc_last_error_code() -> *const c_char {
    ffi_boundary!(ipc_last_error_code() {
        Ok(LAST_ERROR
            .try_with(|l| l.try_borrow().map(|l| l.code()).ok())
            .ok()
            .flatten()
            .unwrap_or(c"".as_ptr()))
    })
}

/// The name of a result code, as written in this header: `"IPC_OK"`,
/// `"IPC_ERR_TIMEOUT"`, ...; `"IPC_ERR_UNKNOWN"` for a number that is not a code.
///
/// Takes an `int` so that any number is safe to pass; an `ipc_result` converts to it.
///
/// Lifetime: a static string, never NULL. Thread safety: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn ipc_result_name(code: c_int) -> *const c_char {
    ffi_boundary!(ipc_result_name(code) {
        Ok(ipc_result::ALL
            .iter()
            .find(|r| **r as c_int == code)
            .map_or(c"IPC_ERR_UNKNOWN", |r| r.name())
            .as_ptr())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(p: *const c_char) -> String {
        // SAFETY: the functions under test return NUL-terminated strings.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }

    #[test]
    fn the_last_message_outlives_the_clear_of_the_next_call() {
        set_last_error("f", Error::new(ipc_result::IPC_ERR_TIMEOUT, "slow"));
        let p = ipc_last_error_message();
        // The next call clears it when it starts (`ipc_error_set(err, p)` reads `p` then).
        clear_last_error();
        assert_eq!(text(p), "f: slow");
        assert_eq!(text(ipc_last_error_message()), "");
        assert_eq!(text(ipc_last_error_code()), "");
        set_last_error("g", Error::new(ipc_result::IPC_ERR_CLOSED, "gone"));
        assert_eq!(text(ipc_last_error_message()), "g: gone");
    }

    #[test]
    fn names_and_numbers_are_stable() {
        let expected = [
            (0, "IPC_OK"),
            (100, "IPC_ERR_CONNECTION"),
            (200, "IPC_ERR_TIMEOUT"),
            (300, "IPC_ERR_SERVER"),
            (400, "IPC_ERR_PROTOCOL"),
            (500, "IPC_ERR_CLOSED"),
            (600, "IPC_ERR_INVALID_ARGUMENT"),
            (601, "IPC_ERR_NULL_ARG"),
            (602, "IPC_ERR_UNSUPPORTED"),
            (603, "IPC_ERR_BUFFER_TOO_SMALL"),
            (700, "IPC_ERR_WATCH"),
            (701, "IPC_ERR_TX_ABORTED"),
            (800, "IPC_ERR_REMOTE"),
            (801, "IPC_ERR_NO_SERVER"),
            (802, "IPC_ERR_HANDLER"),
            (900, "IPC_ERR_PANIC"),
            (901, "IPC_ERR_INTERNAL"),
        ];
        assert_eq!(expected.len(), ipc_result::ALL.len());
        for (code, name) in expected {
            assert_eq!(text(ipc_result_name(code)), name);
        }
        for bad in [-1, 1, 99, 604, 1000, c_int::MAX] {
            assert_eq!(text(ipc_result_name(bad)), "IPC_ERR_UNKNOWN");
        }
    }

    #[test]
    fn every_core_kind_has_a_code() {
        use redipc::ErrorKind as K;
        for (kind, code) in [
            (K::Connection, ipc_result::IPC_ERR_CONNECTION),
            (K::Timeout, ipc_result::IPC_ERR_TIMEOUT),
            (K::Server, ipc_result::IPC_ERR_SERVER),
            (K::Protocol, ipc_result::IPC_ERR_PROTOCOL),
            (K::InvalidArgument, ipc_result::IPC_ERR_INVALID_ARGUMENT),
            (K::Closed, ipc_result::IPC_ERR_CLOSED),
            (K::Unsupported, ipc_result::IPC_ERR_UNSUPPORTED),
            (K::Watch, ipc_result::IPC_ERR_WATCH),
            (K::Remote, ipc_result::IPC_ERR_REMOTE),
            (K::NoServer, ipc_result::IPC_ERR_NO_SERVER),
            (K::Handler, ipc_result::IPC_ERR_HANDLER),
            (K::Aborted, ipc_result::IPC_ERR_TX_ABORTED),
        ] {
            assert_eq!(ipc_result::from_kind(kind), code, "{kind}");
        }
    }

    #[test]
    fn server_errors_keep_the_code_before_the_servers_text() {
        let e = redipc::Error::server(
            "WRONGTYPE",
            "Operation against a key holding the wrong kind of value",
        )
        .context("GET k");
        let e = Error::from(e);
        assert_eq!(e.code(), ipc_result::IPC_ERR_SERVER);
        assert_eq!(e.server_code.as_deref(), Some("WRONGTYPE"));
        assert_eq!(
            e.message(),
            "GET k: WRONGTYPE Operation against a key holding the wrong kind of value"
        );
        set_last_error("ipc_get", e);
        assert_eq!(
            text(ipc_last_error_message()),
            "ipc_get: GET k: WRONGTYPE Operation against a key holding the wrong kind of value"
        );
        assert_eq!(text(ipc_last_error_code()), "WRONGTYPE");
        clear_last_error();
        assert_eq!(text(ipc_last_error_message()), "");
        assert_eq!(text(ipc_last_error_code()), "");
    }

    #[test]
    fn other_errors_keep_their_context() {
        let e = redipc::Error::new(redipc::ErrorKind::Timeout, "no reply within 5s")
            .context("GET k")
            .context("cache lookup");
        let e = Error::from(e);
        assert_eq!(e.code(), ipc_result::IPC_ERR_TIMEOUT);
        assert_eq!(e.message(), "cache lookup: GET k: no reply within 5s");
        assert_eq!(e.server_code, None);
    }

    #[test]
    fn interior_nul_bytes_do_not_cut_the_message() {
        set_last_error("f", Error::invalid("a\0b"));
        assert_eq!(text(ipc_last_error_message()), "f: a\\0b");
    }
}
