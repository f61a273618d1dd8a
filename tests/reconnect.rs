//! The command connection comes back by itself after the server drops it or restarts,
//! and a call made while it is down fails within the response timeout.

mod common;

use std::time::{Duration, Instant};

use common::Server;
use redipc::{ErrorKind, Options, blocking};

fn opts() -> Options {
    Options::default()
        .response_timeout(Duration::from_secs(2))
        .connect_timeout(Duration::from_secs(1))
}

/// Call `f` until it succeeds or `within` passes; returns how long it took.
fn until_ok(within: Duration, mut f: impl FnMut() -> redipc::Result<()>) -> Duration {
    let t = Instant::now();
    loop {
        match f() {
            Ok(()) => return t.elapsed(),
            Err(e) if t.elapsed() < within => {
                assert!(e.is_connection() || e.is_timeout(), "unexpected error {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("no recovery within {within:?}: {e}"),
        }
    }
}

#[test]
fn client_kill_then_next_call_succeeds() {
    let server = Server::start();
    for url in server.urls() {
        let c = blocking::Client::connect(&url, opts().client_name("victim")).unwrap();
        c.set("k", "v").unwrap();
        server.cmd(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "no"]);
        // RESP3 tells the client at once that the connection closed, so the very next call
        // waits for the reconnect instead of failing.
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(c.get("k").unwrap().as_deref(), Some(&b"v"[..]));
        assert!(c.is_connected());
        // The connection setup ran again (client name).
        assert_eq!(
            c.command(&["CLIENT", "GETNAME"]).unwrap(),
            redipc::Reply::Bulk(b"victim".to_vec())
        );
    }
}

#[test]
fn client_kill_with_resp2_the_next_call_succeeds_too() {
    // The connection's own reader notices the close, whatever the protocol.
    let server = Server::start();
    let c = blocking::Client::connect(&server.tcp_url(), opts().resp3(false)).unwrap();
    c.set("k", "v").unwrap();
    server.cmd(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "no"]);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(c.get("k").unwrap().as_deref(), Some(&b"v"[..]));
}

#[test]
fn a_call_made_right_after_a_kill_is_sent_again_not_failed_and_runs_once() {
    // No pause between the kill and the call: the call is queued before the client has
    // seen the close. Never written to the dead socket, it is sent again after the
    // reconnect; INCR shows it ran exactly once each time.
    let server = Server::start();
    for resp3 in [true, false] {
        let c = blocking::Client::connect(&server.unix_url(), opts().resp3(resp3)).unwrap();
        let key = format!("n:{resp3}");
        for i in 1..=30 {
            server.cmd(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"]);
            assert_eq!(c.incr(&key).unwrap(), i, "resp3={resp3}, call {i}");
        }
    }
}

#[test]
fn server_restart_is_survived_and_calls_while_down_fail_in_time() {
    let mut server = Server::start();
    let c = blocking::Client::connect(&server.tcp_url(), opts()).unwrap();
    c.set("k", "v").unwrap();
    server.kill();

    // While the server is down: a connection error within the response timeout, no hang.
    let t = Instant::now();
    let e = c.get("k").unwrap_err();
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(e.kind(), ErrorKind::Connection, "{e}");
    assert!(e.to_string().contains("GET k"), "{e}");
    assert!(!c.is_connected());

    server.restart();
    // Back within the backoff cap (2 s by default) plus a margin; no new client needed.
    let took = until_ok(Duration::from_secs(5), || c.set("k", "again"));
    assert!(took < Duration::from_secs(5));
    assert_eq!(c.get("k").unwrap().as_deref(), Some(&b"again"[..]));
}

#[test]
fn a_frozen_server_gives_a_timeout_not_a_hang() {
    let server = Server::start();
    let c = blocking::Client::connect(
        &server.tcp_url(),
        opts().response_timeout(Duration::from_millis(300)),
    )
    .unwrap();
    c.ping().unwrap();
    server.pause();
    let t = Instant::now();
    let e = c.ping().unwrap_err();
    let took = t.elapsed();
    server.resume();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    until_ok(Duration::from_secs(3), || c.ping());
}

#[test]
fn reconnect_gives_up_after_max_attempts() {
    let mut server = Server::start();
    let mut policy = redipc::ReconnectPolicy::default();
    policy.max_attempts = Some(2);
    policy.max_delay = Duration::from_millis(50);
    let c = blocking::Client::connect(&server.tcp_url(), opts().reconnect(policy)).unwrap();
    server.kill();
    std::thread::sleep(Duration::from_millis(500));
    let e = c.ping().unwrap_err();
    assert!(e.to_string().contains("gave up"), "{e}");
}

#[test]
fn a_pooled_blocking_connection_closed_by_the_server_is_not_reused() {
    // BLPOP runs on a pooled connection of its own; the server closes the idle pooled
    // connection; the next BLPOP gets a fresh one instead of a connection error.
    let server = Server::start();
    let c = blocking::Client::connect(&server.unix_url(), opts()).unwrap();
    for round in 0..3 {
        let r = c.command(&["BLPOP", "nothing", "0.05"]).unwrap();
        assert!(r.is_nil(), "round {round}");
        server.cmd(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"]);
        std::thread::sleep(Duration::from_millis(50));
        c.command(&["LPUSH", "something", "x"]).unwrap();
        let r = c.command(&["BLPOP", "something", "1"]).unwrap();
        assert_eq!(
            r,
            redipc::Reply::Array(vec![
                redipc::Reply::Bulk(b"something".to_vec()),
                redipc::Reply::Bulk(b"x".to_vec())
            ]),
            "round {round}"
        );
    }
}
