//! Idle cost: a client with one subscription and nothing to do wakes only for its health
//! check (twice per interval: the timer and the PONG), and never with the check off over a
//! unix socket (embedded boards pay for every wake-up). Its own test binary: wake-ups are
//! counted over the whole process.

mod common;

use std::time::Duration;

use common::Server;
use redipc::{ErrorKind, Options, SubscribeOptions, blocking};

/// Voluntary context switches of every thread of this process but the calling one (Linux).
fn switches() -> Option<u64> {
    let me = std::fs::read_link("/proc/thread-self").ok()?;
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let dir = task.ok()?.path();
        if me.file_name() == dir.file_name() {
            continue;
        }
        let status = std::fs::read_to_string(dir.join("status")).ok()?;
        total += status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|v| v.trim().parse::<u64>().ok())?;
    }
    Some(total)
}

/// Wake-ups of the process's other threads over `secs` seconds of doing nothing.
fn idle_wakeups(secs: u64) -> Option<u64> {
    std::thread::sleep(Duration::from_millis(300));
    let before = switches()?;
    std::thread::sleep(Duration::from_secs(secs));
    Some(switches()? - before)
}

#[test]
fn an_idle_subscriber_wakes_only_for_its_health_check() {
    let server = Server::start();
    // The check every second: a timer and a PONG per interval, ≈ 6 in 3 s.
    let c = blocking::Client::connect(
        &server.unix_url(),
        Options::default().health_check_interval(Duration::from_secs(1)),
    )
    .unwrap();
    let sub = c.subscribe(&["idle"], SubscribeOptions::default()).unwrap();
    c.ping().unwrap();
    let Some(n) = idle_wakeups(3) else {
        eprintln!("no /proc: skipped");
        return;
    };
    eprintln!("idle wake-ups in 3 s, 1 s health check: {n}");
    // 6, plus a write's readiness edge now and then; tokio's timer wheel made it 13 (a
    // long deadline woken for twice, and once more after each move: net/timer.rs).
    assert!(n <= 11, "{n} wake-ups in 3 s with a 1 s health check");
    drop(sub);
    c.close();

    // Off over a unix socket: nothing wakes.
    let c = blocking::Client::connect(
        &server.unix_url(),
        Options::default().health_check_interval(Duration::ZERO),
    )
    .unwrap();
    let sub = c.subscribe(&["idle"], SubscribeOptions::default()).unwrap();
    c.ping().unwrap();
    let n = idle_wakeups(3).unwrap();
    eprintln!("idle wake-ups in 3 s, health check off: {n}");
    assert!(n <= 2, "{n} wake-ups in 3 s with the health check off");
    // It still works.
    c.publish("idle", "x").unwrap();
    assert!(sub.next(Some(Duration::from_secs(2))).unwrap().is_some());

    drop(sub);
    c.close();

    // The default over a unix socket: no check, so nothing wakes either.
    let c = blocking::Client::connect(&server.unix_url(), Options::default()).unwrap();
    let sub = c.subscribe(&["idle"], SubscribeOptions::default()).unwrap();
    c.ping().unwrap();
    let n = idle_wakeups(3).unwrap();
    eprintln!("idle wake-ups in 3 s, default options, unix socket: {n}");
    assert!(
        n <= 2,
        "{n} wake-ups in 3 s with the default options over a unix socket"
    );
    drop(sub);
    c.close();

    // Off over TCP: refused (a half-open connection would never be found).
    let e = blocking::Client::connect(
        &server.tcp_url(),
        Options::default().health_check_interval(Duration::ZERO),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(e.to_string().contains("unix socket"), "{e}");
}
