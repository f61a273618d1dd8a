//! The edges of overload against a real server: Redis at `maxmemory` with `noeviction`
//! (writes fail with a typed `OOM` error, nothing is dropped silently, reads and pub/sub go
//! on), and a subscriber the server disconnects as a slow consumer
//! (`client-output-buffer-limit pubsub`): it reconnects, resubscribes and tells its
//! subscription that messages were lost.

mod common;

use std::time::{Duration, Instant};

use common::Server;
use redipc::{ErrorKind, Event, Options, Overflow, SubscribeOptions, blocking};

fn connect(url: &str) -> blocking::Client {
    blocking::Client::connect(url, Options::default()).expect("connect")
}

fn is_oom<T: std::fmt::Debug>(what: &str, r: redipc::Result<T>) {
    let e = r.expect_err(what);
    assert_eq!(e.kind(), ErrorKind::Server, "{what}: {e}");
    assert_eq!(e.code(), Some("OOM"), "{what}: {e}");
}

#[test]
fn at_maxmemory_writes_fail_with_oom_and_reads_and_pubsub_go_on() {
    let server = Server::start();
    let c = connect(&server.tcp_url());
    c.set("before", "1").unwrap();
    let sub = c.subscribe(&["news"], SubscribeOptions::default()).unwrap();
    // Any memory in use is over a 1-byte limit: every write that may grow memory is refused.
    server.cmd(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    server.cmd(&["CONFIG", "SET", "maxmemory", "1"]);

    is_oom("SET", c.set("k", "v"));
    is_oom("send_request", c.send_request("jobs", "payload"));
    is_oom(
        "stream_publish",
        c.stream_publish("events", &[("f", "v")], None),
    );
    is_oom("hash_set", c.hash_set("state", "f", "v"));
    is_oom("call", c.call("svc", "ping", Duration::from_millis(500)));
    let mut tx = c.tx();
    tx.add(&["SET", "a", "1"]).unwrap();
    let r = tx.exec();
    assert!(r.is_err(), "MULTI/EXEC under OOM: {r:?}");

    // Reads and pub/sub keep working.
    assert_eq!(c.get("before").unwrap(), Some(b"1".to_vec()));
    c.publish("news", "still here").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match sub.next_blocking(Some(left)).unwrap() {
            Some(Event::Message(m)) => {
                assert_eq!(&m.payload[..], b"still here");
                break;
            }
            Some(_) => {}
            None => panic!("no message while at maxmemory"),
        }
    }
    // Nothing was written behind the errors' back, and writes work again with room.
    server.cmd(&["CONFIG", "SET", "maxmemory", "0"]);
    assert_eq!(server.cmd(&["DBSIZE"]), redis::Value::Int(1));
    c.send_request("jobs", "payload").unwrap();
    c.set("k", "v").unwrap();
    let stats = c.stats();
    let server_failures = stats
        .failed
        .iter()
        .find(|(k, _)| *k == ErrorKind::Server)
        .map_or(0, |(_, n)| *n);
    assert!(server_failures >= 5, "{stats:?}");
}

#[test]
fn a_slow_consumer_cut_off_by_the_server_resubscribes_and_hears_of_the_gap() {
    let server = Server::start();
    let c = connect(&server.tcp_url());
    let sub = c
        .subscribe(
            &["firehose"],
            SubscribeOptions::default()
                .capacity(8)
                .overflow(Overflow::Block),
        )
        .unwrap();
    // The server cuts a pub/sub client off once 256 KiB wait for it.
    server.cmd(&[
        "CONFIG",
        "SET",
        "client-output-buffer-limit",
        "pubsub 256kb 128kb 1",
    ]);
    let publisher = connect(&server.tcp_url());
    let payload = vec![b'x'; 4096];
    // Nobody reads: the queue fills, the reader pauses, the socket fills, the server's
    // buffer passes the limit. 40 MB is more than any loopback socket buffers.
    let mut batch = publisher.pipeline();
    for _ in 0..10_000 {
        batch
            .add(&[b"PUBLISH".as_slice(), b"firehose", &payload])
            .unwrap();
    }
    batch.exec().unwrap();
    // Now read everything: some messages, then the gap, then the subscription is back.
    let mut messages = 0;
    let mut disconnected = 0;
    let mut reactivated = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while reactivated == 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        match sub.next_blocking(Some(left)).unwrap() {
            Some(Event::Message(_)) => messages += 1,
            Some(Event::Disconnected { .. }) => disconnected += 1,
            Some(Event::Reactivated { .. }) => reactivated += 1,
            Some(_) => {}
            None => {
                panic!("not reactivated in time: {messages} messages, {disconnected} disconnected")
            }
        }
    }
    assert_eq!(disconnected, 1, "one gap, told once");
    assert!(
        messages < 10_000,
        "the server cut us off: {messages} got through"
    );
    // Messages published after the gap arrive.
    publisher.publish("firehose", "after").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match sub.next_blocking(Some(left)).unwrap() {
            Some(Event::Message(m)) if &m.payload[..] == b"after" => break,
            Some(_) => {}
            None => panic!("nothing after the gap"),
        }
    }
    assert_eq!(c.stats().pubsub_reconnects, 1);
}
