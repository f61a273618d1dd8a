//! Client statistics and the log: counters move as a scripted workload says they must,
//! connection state changes are logged with their reason, reports are logged at their
//! kind's level, and no credential ever appears in a log line or an error.

mod common;

use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use common::Server;
use redipc::{
    ConsumerOptions, ErrorKind, Event, Options, Overflow, SubscribeOptions, WorkerOptions, blocking,
};

/// Every record the library logs, from every test of this binary.
static LINES: Mutex<Vec<(log::Level, String, String)>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, r: &log::Record<'_>) {
        if r.target().starts_with("redipc") {
            LINES
                .lock()
                .unwrap()
                .push((r.level(), r.target().to_string(), r.args().to_string()));
        }
    }
    fn flush(&self) {}
}

fn capture() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        log::set_logger(&Capture).unwrap();
        log::set_max_level(log::LevelFilter::Trace);
    });
}

fn lines() -> Vec<(log::Level, String, String)> {
    LINES.lock().unwrap().clone()
}

fn wait_until(within: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < within, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn failed(s: &redipc::ClientStats, kind: ErrorKind) -> u64 {
    s.failed
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or(0, |(_, n)| *n)
}

#[test]
fn counters_follow_a_scripted_workload() {
    let server = Server::start();
    let c = blocking::Client::connect(&server.tcp_url(), Options::default()).unwrap();
    let base = c.stats();
    for i in 0..10 {
        c.set(format!("k{i}"), "v").unwrap();
    }
    for i in 0..5 {
        c.get(format!("k{i}")).unwrap();
    }
    let mut p = c.pipeline();
    for _ in 0..3 {
        p.add(&["INCR", "n"]).unwrap();
    }
    p.exec().unwrap();
    c.lpush("list", &["x"]).unwrap();
    assert!(c.command(&["INCR", "list"]).is_err()); // WRONGTYPE
    let s = c.stats();
    assert_eq!(s.commands - base.commands, 10 + 5 + 3 + 1 + 1, "{s:?}");
    assert_eq!(
        failed(&s, ErrorKind::Server) - failed(&base, ErrorKind::Server),
        1
    );
    // Every successful call is timed: 10 + 5 + the pipeline + LPUSH.
    assert_eq!(s.latency.count - base.latency.count, 17, "{s:?}");
    assert!(s.latency.p50 <= s.latency.p99 && s.latency.p99 <= s.latency.max.max(s.latency.p99));
    assert!(s.latency.buckets.iter().map(|(_, n)| n).sum::<u64>() == s.latency.count);
    assert_eq!(s.in_flight, 0);
    // 10 SETs of `*3\r\n$3\r\nSET\r\n$2\r\nkN\r\n$1\r\nv\r\n` alone are 290 bytes out.
    assert!(s.bytes_out - base.bytes_out >= 290, "{s:?}");
    assert!(s.bytes_in - base.bytes_in >= 10 * 5, "{s:?}"); // +OK\r\n each

    // A call that times out is counted as such, and is not in flight afterwards.
    let slow = blocking::Client::connect(
        &server.tcp_url(),
        Options::default().response_timeout(Duration::from_millis(100)),
    )
    .unwrap();
    server.pause();
    assert_eq!(slow.get("k0").unwrap_err().kind(), ErrorKind::Timeout);
    server.resume();
    let t = slow.stats();
    assert_eq!(failed(&t, ErrorKind::Timeout), 1, "{t:?}");
    assert_eq!(t.in_flight, 0);

    // Reconnects of the command connection.
    server.cmd(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"]);
    wait_until(Duration::from_secs(5), "reconnect", || {
        c.get("k0").is_ok() && c.stats().reconnects == 1
    });

    // Pub/sub: messages received, dropped by an overflow policy, reconnects.
    let sub = c
        .subscribe(
            &["ticks"],
            SubscribeOptions::default()
                .capacity(4)
                .overflow(Overflow::DropOldest),
        )
        .unwrap();
    for i in 0..20 {
        c.publish("ticks", i.to_string()).unwrap();
    }
    wait_until(Duration::from_secs(5), "20 messages received", || {
        c.stats().pubsub_received == 20
    });
    let dropped = sub.stats().dropped;
    // At most 4 are kept (the Activated event may take a place too).
    assert!((16..=17).contains(&dropped), "{dropped}");
    assert_eq!(c.stats().pubsub_dropped, dropped);
    drop(sub); // a closed subscription's drops still count
    assert_eq!(c.stats().pubsub_dropped, dropped);
    let sub = c
        .subscribe(&["ticks"], SubscribeOptions::default())
        .unwrap();
    server.cmd(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    wait_until(Duration::from_secs(5), "pub/sub back", || {
        matches!(sub.try_next(), Ok(Some(Event::Reactivated { .. })))
    });
    assert_eq!(c.stats().pubsub_reconnects, 1);
}

#[test]
fn the_client_sums_the_counters_of_its_workers_and_consumers() {
    let server = Server::start();
    let c = blocking::Client::connect(&server.tcp_url(), Options::default()).unwrap();
    let quiet = |_: &redipc::Report| {};
    let mut workers = Vec::new();
    for _ in 0..2 {
        workers.push(
            c.handle_requests(
                &["jobs"],
                |r| match &r.payload[..] {
                    b"fail" => Err("told to fail".into()),
                    _ => Ok(()),
                },
                WorkerOptions::default().error_hook(quiet),
            )
            .unwrap(),
        );
    }
    for _ in 0..10 {
        c.send_request("jobs", "ok").unwrap();
    }
    c.send_request("jobs", "fail").unwrap();
    wait_until(Duration::from_secs(10), "11 requests handled", || {
        let w = c.stats().workers;
        w.handled == 10 && w.failed == 1
    });
    let each: u64 = workers.iter().map(|w| w.stats().handled).sum();
    assert_eq!(each, 10);
    drop(workers); // a stopped worker's counts stay in the sum
    assert_eq!(c.stats().workers.handled, 10);

    for i in 0..5 {
        c.stream_publish("events", &[("n", i.to_string())], None)
            .unwrap();
    }
    let consumer = c
        .stream_consume("events", "g", "me", |_| Ok(()), ConsumerOptions::default())
        .unwrap();
    wait_until(Duration::from_secs(10), "5 entries acked", || {
        c.stats().consumers.acked == 5
    });
    assert_eq!(consumer.stats().acked, 5);
    drop(consumer);
    assert_eq!(c.stats().consumers.acked, 5);
}

#[test]
fn the_log_tells_connection_changes_with_their_reason_and_every_report() {
    capture();
    let server = Server::start();
    let url = server.tcp_url();
    let c = blocking::Client::connect(&url, Options::default()).unwrap();
    let port = server.port.to_string();
    let _sub = c.subscribe(&["x"], SubscribeOptions::default()).unwrap();
    server.cmd(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"]);
    server.cmd(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    let has = |level: log::Level, target: &str, words: &[&str]| {
        lines().iter().any(|(l, t, m)| {
            *l == level && t == target && m.contains(&port) && words.iter().all(|w| m.contains(w))
        })
    };
    wait_until(Duration::from_secs(5), "down, with the reason", || {
        has(log::Level::Warn, "redipc::connection", &["lost", "closed"])
    });
    wait_until(Duration::from_secs(5), "up again", || {
        c.get("k").is_ok() && has(log::Level::Info, "redipc::connection", &["restored"])
    });
    wait_until(Duration::from_secs(5), "pub/sub down and up", || {
        has(log::Level::Warn, "redipc::pubsub", &["lost"])
            && has(log::Level::Info, "redipc::pubsub", &["restored"])
    });
    // A report: a handler that fails is logged at WARN, even with no hook set.
    let w = c
        .handle_requests(
            &["jobs"],
            |_| Err("no such job".into()),
            WorkerOptions::default().max_attempts(1),
        )
        .unwrap();
    c.send_request("jobs", "j1").unwrap();
    wait_until(Duration::from_secs(5), "the report logged", || {
        lines().iter().any(|(l, t, m)| {
            *l == log::Level::Warn && t == "redipc::report" && m.contains("no such job")
        })
    });
    drop(w);
}

#[test]
fn no_credential_appears_in_a_log_line_or_an_error() {
    capture();
    let secret = "s3cret-Pa55word";
    let server = Server::start();
    server.cmd(&["CONFIG", "SET", "requirepass", secret]);
    let url = format!("redis://:{secret}@127.0.0.1:{}/0", server.port);
    let c = blocking::Client::connect(&url, Options::default()).unwrap();
    let _sub = c.subscribe(&["x"], SubscribeOptions::default()).unwrap();
    // Connection changes, with the password in the URL.
    let admin = blocking::Client::connect(&url, Options::default()).unwrap();
    admin
        .command(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"])
        .unwrap();
    admin
        .command(&["CLIENT", "KILL", "TYPE", "pubsub"])
        .unwrap();
    wait_until(Duration::from_secs(5), "reconnected", || c.get("k").is_ok());
    // A wrong password, and malformed URLs that carry one.
    let wrong = format!("redis://:{secret}-wrong@127.0.0.1:{}/0", server.port);
    let mut errors = vec![
        blocking::Client::connect(&wrong, Options::default())
            .unwrap_err()
            .to_string(),
    ];
    for bad in [
        format!("redis://:{secret}@127.0.0.1:notaport/0"),
        format!("rediss://user:{secret}@[::1/0"),
        format!("user:{secret}@host"),
    ] {
        errors.push(
            blocking::Client::connect(&bad, Options::default())
                .unwrap_err()
                .to_string(),
        );
    }
    // The server refusing a reconnect with a changed password.
    admin
        .command(&["CONFIG", "SET", "requirepass", "another-Secret"])
        .unwrap();
    admin
        .command(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"])
        .ok();
    std::thread::sleep(Duration::from_millis(300));
    errors.push(format!("{:?}", c.get("k")));
    for e in &errors {
        assert!(!e.contains(secret), "an error repeats the password: {e}");
    }
    let logged = lines();
    assert!(logged.iter().any(|(_, t, _)| t == "redipc::connection"));
    for (_, _, m) in &logged {
        assert!(!m.contains(secret), "a log line repeats the password: {m}");
        assert!(
            !m.contains("another-Secret"),
            "a log line repeats the password: {m}"
        );
    }
    let debug = format!("{:?}", c.options());
    assert!(!debug.contains(secret), "{debug}");
}
