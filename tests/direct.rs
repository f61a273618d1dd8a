//! A lone blocking caller's single commands take its own connection (`net/direct.rs`):
//! one write and one read on the caller's thread. These tests show that they do, and that
//! the rules of the shared connection hold there too: a timeout never lets a late reply
//! answer the next call, closing ends a wait at once, concurrent callers get their own
//! replies, a connection the server closed while idle is not used.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Server, direct_id, shared_id};
use redipc::{ErrorKind, Options, Reply, blocking};

fn client(url: &str, timeout: Duration) -> blocking::Client {
    blocking::Client::connect(url, Options::default().response_timeout(timeout)).unwrap()
}

#[test]
fn a_lone_caller_takes_its_own_connection_on_both_transports() {
    let server = Server::start();
    for url in server.urls() {
        let c = client(&url, Duration::from_secs(5));
        let shared = shared_id(&c);
        let direct = direct_id(&c, shared);
        assert_ne!(direct, shared);
        // Typed helpers take it too, with the same replies and counters.
        let before = c.stats();
        c.set("k", "v").unwrap();
        assert_eq!(c.get("k").unwrap().as_deref(), Some(&b"v"[..]));
        assert_eq!(c.incr("n").unwrap(), 1);
        let e = c.command(&["INCR", "k"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Server, "{e}");
        assert!(e.to_string().contains("INCR k"), "{e}");
        let after = c.stats();
        assert_eq!(after.commands - before.commands, 4, "{after:?}");
        assert!(after.bytes_out > before.bytes_out && after.bytes_in > before.bytes_in);
        // Still the same connection.
        assert_eq!(
            c.command(&["CLIENT", "ID"]).unwrap().into_int().unwrap(),
            direct
        );
        // The client's name and database are set on it too.
        let mut p = c.pipeline();
        p.add(&["DEL", "n", "k"]).unwrap();
        p.exec().unwrap();
    }
}

#[test]
fn a_timed_out_call_never_lets_its_late_reply_answer_the_next_one() {
    let server = Server::start_with(&["--enable-debug-command", "yes"]);
    let c = client(&server.tcp_url(), Duration::from_millis(300));
    let shared = shared_id(&c);
    direct_id(&c, shared);
    c.set("k", "v").unwrap();
    let t = Instant::now();
    let e = c.command(&["DEBUG", "SLEEP", "0.6"]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(
        t.elapsed() < Duration::from_millis(550),
        "{:?}",
        t.elapsed()
    );
    // The late "+OK" of DEBUG SLEEP must not be taken for GET's reply.
    std::thread::sleep(Duration::from_millis(400));
    for _ in 0..20 {
        assert_eq!(c.get("k").unwrap().as_deref(), Some(&b"v"[..]));
    }
}

#[test]
fn closing_ends_a_direct_wait_at_once() {
    let server = Server::start_with(&["--enable-debug-command", "yes"]);
    let c = client(&server.unix_url(), Duration::from_secs(10));
    let shared = shared_id(&c);
    direct_id(&c, shared);
    let c2 = c.clone();
    let waiter = std::thread::spawn(move || {
        let t = Instant::now();
        let e = c2.command(&["DEBUG", "SLEEP", "2"]).unwrap_err();
        (e, t.elapsed())
    });
    std::thread::sleep(Duration::from_millis(200));
    c.close();
    let (e, took) = waiter.join().unwrap();
    assert_eq!(e.kind(), ErrorKind::Closed, "{e}");
    assert!(took < Duration::from_millis(1500), "{took:?}");
    assert_eq!(c.get("k").unwrap_err().kind(), ErrorKind::Closed);
}

#[test]
fn concurrent_callers_each_get_their_own_reply() {
    // One of them holds the direct connection at a time, the others share the
    // auto-pipelined one: every reply reaches its own caller.
    let server = Server::start();
    let c = Arc::new(client(&server.tcp_url(), Duration::from_secs(5)));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let c = c.clone();
            std::thread::spawn(move || {
                for i in 0..500 {
                    let k = format!("k:{t}:{i}");
                    c.set(&k, &k).unwrap();
                    assert_eq!(c.get(&k).unwrap().as_deref(), Some(k.as_bytes()));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn concurrent_callers_open_direct_connections_of_their_own() {
    // A lone caller has one; callers that overlap open more (up to 16; the rest share the
    // auto-pipelined connection): 8 threads, at most 8 and at least 2.
    let server = Server::start();
    let c = Arc::new(client(&server.unix_url(), Duration::from_secs(5)));
    let shared = shared_id(&c);
    let first = direct_id(&c, shared);
    for _ in 0..50 {
        assert_eq!(
            c.command(&["CLIENT", "ID"]).unwrap().into_int().unwrap(),
            first
        );
    }
    let mut ids = ids_from_threads(&c, 8, 400);
    ids.remove(&shared);
    assert!((2..=8).contains(&ids.len()), "direct connections: {ids:?}");
    // The server sees no more than that: the shared one and a direct one per thread.
    let list = match server.cmd(&["CLIENT", "LIST"]) {
        redis::Value::BulkString(b) => String::from_utf8(b).unwrap(),
        redis::Value::VerbatimString { text, .. } => text,
        other => panic!("CLIENT LIST: {other:?}"),
    };
    let mine = list
        .lines()
        .filter(|l| !l.contains("cmd=client|list"))
        .count();
    assert!(mine <= 9, "{list}");
}

/// CLIENT IDs seen by `threads` threads making `calls` calls each at once.
fn ids_from_threads(
    c: &Arc<blocking::Client>,
    threads: usize,
    calls: usize,
) -> std::collections::HashSet<i64> {
    let threads: Vec<_> = (0..threads)
        .map(|_| {
            let c = c.clone();
            std::thread::spawn(move || {
                let mut ids = std::collections::HashSet::new();
                for _ in 0..calls {
                    ids.insert(c.command(&["CLIENT", "ID"]).unwrap().into_int().unwrap());
                }
                ids
            })
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    for t in threads {
        ids.extend(t.join().unwrap());
    }
    ids
}

#[test]
fn direct_connections_can_be_bounded_or_turned_off() {
    let server = Server::start();
    let url = server.unix_url();
    // Off: every call, from any number of threads, takes the one shared connection.
    let opts = Options::default().direct_connections(0);
    let c = Arc::new(blocking::Client::connect(&url, opts).unwrap());
    let shared = shared_id(&c);
    for _ in 0..100 {
        assert_eq!(
            c.command(&["CLIENT", "ID"]).unwrap().into_int().unwrap(),
            shared
        );
    }
    assert_eq!(ids_from_threads(&c, 4, 300), [shared].into());
    drop(c);
    // Two at most: four threads overlap, the rest share.
    let opts = Options::default().direct_connections(2);
    let c = Arc::new(blocking::Client::connect(&url, opts).unwrap());
    let shared = shared_id(&c);
    direct_id(&c, shared);
    let mut ids = ids_from_threads(&c, 4, 300);
    ids.remove(&shared);
    assert!((1..=2).contains(&ids.len()), "direct connections: {ids:?}");
    // More than the largest is refused with a clear error, nothing opened.
    let too_many = redipc::MAX_DIRECT_CONNECTIONS + 1;
    let opts = Options::default().direct_connections(too_many);
    let e = blocking::Client::connect(&url, opts).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    assert!(e.to_string().contains("direct_connections"), "{e}");
}

#[test]
fn a_connection_the_server_closed_while_idle_is_not_used() {
    // INCR shows each call ran exactly once: the killed direct connection is noticed
    // before the write, and the call takes the shared connection (reconnected) instead.
    let server = Server::start();
    let c = client(&server.unix_url(), Duration::from_secs(2));
    let shared = shared_id(&c);
    direct_id(&c, shared);
    for i in 1..=10 {
        server.cmd(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"]);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(c.incr("n").unwrap(), i);
    }
    // And it is dialled again: lone calls take their own connection once more.
    let shared = shared_id(&c);
    direct_id(&c, shared);
    assert_eq!(
        c.command(&["GET", "n"]).unwrap(),
        Reply::Bulk(b"10".to_vec())
    );
}

#[test]
fn after_a_direct_connection_breaks_under_a_call_is_connected_tells_the_truth() {
    // A scripted server that goes away the way a killed one does, except that the shared
    // connection (connection 1) is closed only when something reaches it: in a real
    // restart both sockets get their end-of-file at once, but the runtime's driver may not
    // have read the shared one's yet when the caller hears of its direct connection's end
    // (CI saw `is_connected` still true after such a failure). The client must find out
    // before the failed call returns.
    let port = common::scripted_server(|conn, cmd| {
        let name = String::from_utf8_lossy(&cmd[0]).to_uppercase();
        let arg = |i: usize| cmd.get(i).map(|a| String::from_utf8_lossy(a).into_owned());
        match (name.as_str(), conn) {
            ("HELLO", _) => Some(b"%1\r\n+server\r\n+fake\r\n".to_vec()),
            ("CLIENT", _) if arg(1).as_deref() == Some("ID") => {
                Some(format!(":{conn}\r\n").into_bytes())
            }
            ("GET", c) if c > 1 && arg(1).as_deref() == Some("gone") => None,
            ("GET", _) => Some(b"$1\r\nv\r\n".to_vec()),
            ("PING", 1) => None,
            _ => Some(b"+OK\r\n".to_vec()),
        }
    });
    let c = blocking::Client::connect(
        &format!("redis://127.0.0.1:{port}"),
        Options::default().response_timeout(Duration::from_secs(2)),
    )
    .unwrap();
    let shared = shared_id(&c);
    direct_id(&c, shared);
    assert_eq!(c.get("k").unwrap().as_deref(), Some(&b"v"[..]));
    assert!(c.is_connected());
    let e = c.get("gone").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connection, "{e}");
    assert!(
        !c.is_connected(),
        "a call failed for a lost connection, and is_connected says up"
    );
}
