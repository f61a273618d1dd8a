//! Request/reply RPC against a private redis-server.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::Server;
use redipc::{CallOptions, ErrorKind, Options, RpcHandler, blocking};

fn connect(url: &str) -> blocking::Client {
    blocking::Client::connect(url, Options::default()).expect("connect")
}

fn upper() -> impl Fn(&redipc::Call) -> redipc::Result<Vec<u8>> + Send + Sync + 'static {
    |call| {
        if &call.payload[..] == b"fail" {
            return Err("told to fail".into());
        }
        Ok(call.payload.to_ascii_uppercase())
    }
}

#[test]
fn happy_path_remote_error_and_sixteen_concurrent_callers() {
    let server = Server::start();
    let srv = connect(&server.tcp_url());
    let s = srv.serve("upper", upper(), 4).unwrap();
    let c = connect(&server.unix_url());
    assert_eq!(
        &c.call("upper", "hello", Duration::from_secs(2)).unwrap()[..],
        b"HELLO"
    );
    assert_eq!(
        &c.call("upper", "", Duration::from_secs(2)).unwrap()[..],
        b""
    );
    let e = c.call("upper", "fail", Duration::from_secs(2)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Remote);
    assert_eq!(e.message(), "told to fail");

    std::thread::scope(|sc| {
        for t in 0..16 {
            let c = &c;
            sc.spawn(move || {
                for i in 0..50 {
                    let msg = format!("t{t}-{i}");
                    let r = c.call("upper", &msg, Duration::from_secs(5)).unwrap();
                    assert_eq!(r, msg.to_uppercase().as_bytes());
                }
            });
        }
    });
    s.stop(Duration::from_secs(5)).unwrap();
}

#[test]
fn methods_and_unknown_methods() {
    let server = Server::start();
    let c = connect(&server.tcp_url());
    let mut methods: HashMap<String, RpcHandler> = HashMap::new();
    methods.insert(
        "add".into(),
        Arc::new(|call: &redipc::Call| {
            let s = std::str::from_utf8(&call.payload).map_err(|e| e.to_string())?;
            let (a, b) = s.split_once('+').ok_or("want a+b")?;
            let n: i64 = a.parse::<i64>().map_err(|e| e.to_string())?
                + b.parse::<i64>().map_err(|e| e.to_string())?;
            Ok(n.to_string().into_bytes())
        }),
    );
    methods.insert(
        "echo".into(),
        Arc::new(|call: &redipc::Call| Ok(call.payload.to_vec())),
    );
    let _s = c.serve_methods("calc", methods, 1).unwrap();
    let opts = CallOptions::default().timeout(Duration::from_secs(2));
    assert_eq!(&c.call_with("calc", "add", "2+3", opts).unwrap()[..], b"5");
    assert_eq!(&c.call_with("calc", "echo", "x", opts).unwrap()[..], b"x");
    let e = c.call_with("calc", "mul", "2*3", opts).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Remote);
    assert!(e.message().contains("unknown method \"mul\""), "{e}");
}

#[test]
fn no_server_timeout_and_expired_requests_are_not_run() {
    let server = Server::start();
    let c = connect(&server.tcp_url());
    // Nobody serves it: NoServer after the timeout, or at once with fail_fast.
    let t = Instant::now();
    let e = c
        .call("nobody", "x", Duration::from_millis(200))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoServer, "{e}");
    assert!(t.elapsed() < Duration::from_secs(1));
    let t = Instant::now();
    let e = c
        .call_with("nobody", "", "x", CallOptions::default().fail_fast(true))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoServer);
    assert!(t.elapsed() < Duration::from_millis(500));

    // A server that is busy past the caller's deadline: the caller times out, and the
    // request left in the queue is dropped without running.
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let _s = c
        .serve(
            "slow",
            move |call| {
                r.fetch_add(1, Ordering::SeqCst);
                if &call.payload[..] == b"block" {
                    std::thread::sleep(Duration::from_millis(600));
                }
                Ok(vec![])
            },
            1,
        )
        .unwrap();
    let c2 = c.clone();
    let blocker = std::thread::spawn(move || c2.call("slow", "block", Duration::from_secs(3)));
    std::thread::sleep(Duration::from_millis(100));
    let e = c
        .call("slow", "late", Duration::from_millis(200))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    blocker.join().unwrap().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        ran.load(Ordering::SeqCst),
        1,
        "the expired request was not run"
    );
}

#[test]
fn a_thousand_calls_leave_no_keys_or_subscriptions_behind() {
    let server = Server::start();
    let c = connect(&server.tcp_url());
    let s = c
        .serve("echo", |call| Ok(call.payload.to_vec()), 2)
        .unwrap();
    for i in 0..1000 {
        let m = i.to_string();
        assert_eq!(
            c.call("echo", &m, Duration::from_secs(2)).unwrap(),
            m.as_bytes()
        );
    }
    s.stop(Duration::from_secs(5)).unwrap();
    let keys = server.cmd(&["KEYS", "*"]);
    assert_eq!(keys, redis::Value::Array(vec![]), "left behind: {keys:?}");
    // One reply channel for the whole client, not one per call.
    match server.cmd(&["PUBSUB", "CHANNELS"]) {
        redis::Value::Array(v) => assert!(v.len() <= 1, "{v:?}"),
        other => panic!("{other:?}"),
    }
    // Closing the client (and the server object that shares it) leaves nothing at all.
    drop(s);
    drop(c);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        server.cmd(&["PUBSUB", "CHANNELS"]),
        redis::Value::Array(vec![])
    );
}

#[test]
fn a_panicking_handler_is_a_remote_error_and_the_server_survives() {
    let server = Server::start();
    let c = connect(&server.tcp_url());
    let _s = c
        .serve(
            "fragile",
            |call| {
                if &call.payload[..] == b"panic" {
                    panic!("oops");
                }
                Ok(b"fine".to_vec())
            },
            1,
        )
        .unwrap();
    let e = c
        .call("fragile", "panic", Duration::from_secs(2))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Remote);
    assert_eq!(
        &c.call("fragile", "ok", Duration::from_secs(2)).unwrap()[..],
        b"fine"
    );
    assert!(
        c.call("", "x", Duration::from_secs(1))
            .unwrap_err()
            .is_invalid_argument()
    );
}

#[test]
fn presence_is_immediate_and_withdrawn_and_unanswered_calls_leave_nothing() {
    let server = Server::start();
    let c = connect(&server.tcp_url());
    // A timed-out call to nobody takes its request back.
    let e = c
        .call("ghost", "x", Duration::from_millis(100))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoServer);
    assert!(e.to_string().contains("call ghost:"), "{e}");
    assert_eq!(server.cmd(&["KEYS", "*"]), redis::Value::Array(vec![]));

    // fail_fast right after serve() finds the server.
    let s = c.serve("svc", |call| Ok(call.payload.to_vec()), 1).unwrap();
    let opts = CallOptions::default()
        .fail_fast(true)
        .timeout(Duration::from_secs(2));
    assert_eq!(&c.call_with("svc", "", "hi", opts).unwrap()[..], b"hi");
    // Dropping the server withdraws it: fail_fast says NoServer at once.
    drop(s);
    let e = c.call_with("svc", "", "hi", opts).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoServer);
    assert_eq!(server.cmd(&["KEYS", "*"]), redis::Value::Array(vec![]));
}

#[test]
fn the_timeout_bounds_the_whole_call_when_the_server_stops_answering() {
    // With a 5 s response timeout, a frozen server used to make a 400 ms call take the
    // push's 5 s, then 5 s more to take the request back: the call's timeout is its bound.
    let server = Server::start();
    let srv = connect(&server.tcp_url());
    let _s = srv.serve("upper", upper(), 1).unwrap();
    let c = connect(&server.tcp_url());
    let t = Duration::from_millis(400);
    assert_eq!(c.call("upper", "warm", t).unwrap(), b"WARM".to_vec());
    let fleet = CallOptions::default()
        .protocol(redipc::Protocol::RedisIpc)
        .timeout(t);
    let cold = connect(&server.tcp_url());
    server.pause();
    for (who, opts) in [
        ("warm caller", CallOptions::default().timeout(t)),
        ("redis-ipc wire", fleet),
    ] {
        let start = Instant::now();
        let e = c.call_with("upper", "", "1", opts).unwrap_err();
        let took = start.elapsed();
        assert_eq!(e.kind(), ErrorKind::Timeout, "{who}: {e}");
        assert!(took < Duration::from_millis(1200), "{who}: took {took:?}");
    }
    // A caller whose reply subscription is not made yet is bounded the same way.
    let start = Instant::now();
    let e = cold.call("upper", "x", t).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(
        start.elapsed() < Duration::from_millis(1200),
        "{:?}",
        start.elapsed()
    );
    server.resume();
    assert_eq!(
        c.call("upper", "back", Duration::from_secs(5)).unwrap(),
        b"BACK".to_vec()
    );
}
