//! What the fuzz targets of `fuzz/` found (docs/RELIABILITY.md, "Fuzzing and sanitizers"),
//! each replayed through the public API against a private redis-server.

mod common;

use std::time::{Duration, Instant};

use common::Server;
use redipc::blocking::Client;
use redipc::{ErrorKind, Event, Options, Reply, SubscribeOptions};

/// fuzz/resp_differential: `:-9223372036854775808` (i64::MIN, which Redis sends) was a
/// protocol error, its magnitude overflowing an i64 while being read; the connection was
/// dropped instead of the reply returned.
#[test]
fn the_smallest_integer_is_read() {
    let server = Server::start();
    for url in server.urls() {
        for resp3 in [false, true] {
            let c = Client::connect(&url, Options::default().resp3(resp3)).unwrap();
            let min = i64::MIN.to_string();
            assert_eq!(
                c.command(&["INCRBY", "fuzz:min", &min]).unwrap(),
                Reply::Int(i64::MIN)
            );
            // Inside an aggregate too, next to i64::MAX (BITFIELD answers with an array of
            // the old and new values).
            let max = i64::MAX.to_string();
            assert_eq!(
                c.command(&[
                    "BITFIELD", "fuzz:bf", "SET", "i64", "0", &min, "GET", "i64", "0", "SET",
                    "i64", "64", &max, "GET", "i64", "64",
                ])
                .unwrap(),
                Reply::Array(vec![
                    Reply::Int(0),
                    Reply::Int(i64::MIN),
                    Reply::Int(0),
                    Reply::Int(i64::MAX)
                ])
            );
            c.command(&["DEL", "fuzz:min", "fuzz:bf"]).unwrap();
            c.ping().unwrap();
        }
    }
}

/// fuzz/url: a password holding `/`, `#` or `@` unescaped makes a URL ambiguous, and pieces
/// of it were shown: the whole URL in the error of the URL parser, a "scheme" made of the
/// user info, a socket path or host that the password became; and (2026-12-06) the `pass=`
/// parameter of a URL naming several nodes, or of a sentinel URL, in the parser's error
/// about the URL made of its first host. Every such URL now fails (or connects nowhere)
/// without a piece of the password in the error.
#[test]
fn no_piece_of_a_password_in_an_ambiguous_url_is_shown() {
    let server = Server::start();
    let sock = server.sock();
    let sock = sock.display();
    let cases = [
        // The URL parser reads `S3cr` as a port: the URL was quoted whole.
        (
            "redis://user:S3cr/et@127.0.0.1:1".to_owned(),
            &["S3cr", "/et"][..],
        ),
        // No scheme before the first `://`: the "unknown scheme" was the user info.
        (
            "http:/:S3cret@:1/?x=&x=diss://u:pw@host:@/tmp/x".to_owned(),
            &["S3cret"][..],
        ),
        // `unix://a/b:...` is the socket path `/b:S3cret@...` (which does not exist).
        (format!("unix://a/b:S3cret@{sock}.missing"), &["S3cret"][..]),
        (
            format!("redis+unix:///d]:S3cret@{sock}.missing:"),
            &["S3cret"][..],
        ),
        // Up to `#` is the address: the host is what the password holds after its `@`.
        (
            "redis://u:S3@127.0.0.3:1#cret@localhost:1".to_owned(),
            &["S3", "cret", "127.0.0.3"][..],
        ),
        // A list of nodes: the URL the parser read (the first node and the rest of the
        // given URL) was shown with its `pass=` parameter.
        (
            "redis://no host,h2:1/?pass=S3cret".to_owned(),
            &["S3cret"][..],
        ),
        // An ambiguous URL put a `pass=` parameter among the hosts (after the last `@`),
        // whose errors quoted it.
        (
            "redis://u:p@x?y=//v:w@h1,h2:&pass=S3cret".to_owned(),
            &["S3cret"][..],
        ),
        // ... or carried the rest of a password into the path after the hosts.
        (
            "redis://u:p@x?y=//v:w@no host,h2&password=S3#cret".to_owned(),
            &["S3", "cret"][..],
        ),
        // The TLS server name is the host, which a password holding `@` and `#` became.
        (
            "rediss://u:p@S3@cr\u{1f}et#x@/tmp/s.sock:1".to_owned(),
            &["S3", "cr", "et"][..],
        ),
        // The same in the URL a sentinel URL is read as.
        (
            "redis-sentinel://no host,h2:1/?pass=S3cret#mymaster".to_owned(),
            &["S3cret"][..],
        ),
        (
            "redis-sentinel://no host:1/?pass=S3cret#mymaster".to_owned(),
            &["S3cret"][..],
        ),
        (
            "redis://\0\u{1}h,=2r/r?pass=S3cret&user=\0".to_owned(),
            &["S3cret"][..],
        ),
    ];
    let opts = Options::default().connect_timeout(Duration::from_millis(500));
    for (url, secrets) in &cases {
        let t = Instant::now();
        let Err(e) = Client::connect(url, opts.clone()) else {
            panic!("{url}: connected");
        };
        let text = format!("{e} | {e:?}");
        for s in *secrets {
            assert!(!text.contains(s), "{url}: the error shows {s:?}: {text}");
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{url}: {:?}",
            t.elapsed()
        );
    }
}

/// fuzz/resp_reader: a frame over the reply limit was refused when it arrived over several
/// reads but accepted when one read brought it whole (and a pub/sub message over the value
/// limit likewise): the limits now apply to the frame, whatever the reads.
#[test]
fn a_frame_over_the_limits_is_refused_however_it_arrives() {
    let server = Server::start();
    let url = server.tcp_url();
    let writer = Client::connect(&url, Options::default()).unwrap();
    // The limits never go below 64 KiB (the handshake's replies must fit).
    let big = vec![b'v'; 70_000];
    writer.set("fuzz:big", &big).unwrap();

    // The command connection: the reply of GET is over the reply limit.
    let limited = Client::connect(&url, Options::default().max_reply_size(64 * 1024)).unwrap();
    for _ in 0..3 {
        let e = limited.get("fuzz:big").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
        assert!(e.to_string().contains("maximum reply size"), "{e}");
    }
    // The connection is made again for what fits.
    limited.ping().unwrap();

    // The pub/sub connection: a message over the reply limit, then over the value limit.
    for (opts, what) in [
        (
            Options::default().max_reply_size(64 * 1024),
            "maximum reply size",
        ),
        (
            Options::default().max_value_size(64 * 1024),
            "value-size limit",
        ),
    ] {
        let c = Client::connect(&url, opts).unwrap();
        let sub = c
            .subscribe(&["fuzz:ch"], SubscribeOptions::default())
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut refused = false;
        while !refused {
            writer.publish("fuzz:ch", &big[..]).unwrap();
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "{what}: no Disconnected within 10 s");
            match sub.next_blocking(Some(Duration::from_millis(200))).unwrap() {
                Some(Event::Disconnected { error }) => {
                    assert_eq!(error.kind(), ErrorKind::Protocol, "{error}");
                    assert!(error.to_string().contains(what), "{error}");
                    refused = true;
                }
                Some(Event::Message(m)) => panic!("{what}: a message got through: {m:?}"),
                _ => {}
            }
        }
    }
    writer.command(&["DEL", "fuzz:big"]).unwrap();
}
