//! The background driver of the caller-driven runtime must not wake up periodically while
//! a caller sits in a long blocking call (embedded hosts pay for every wake-up). Its own
//! test binary: the runtime is per process, and other tests would be callers too.

mod common;

use std::time::Duration;

use common::Server;
use redipc::{Options, blocking};

/// Voluntary context switches of the thread named `redipc-io` (Linux).
fn io_thread_switches() -> Option<u64> {
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let dir = task.ok()?.path();
        let comm = std::fs::read_to_string(dir.join("comm")).ok()?;
        if comm.trim() != "redipc-io" {
            continue;
        }
        let status = std::fs::read_to_string(dir.join("status")).ok()?;
        return status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|v| v.trim().parse().ok());
    }
    None
}

#[test]
fn the_background_driver_sleeps_through_a_long_blocking_call() {
    let server = Server::start();
    let c = blocking::Client::connect(&server.unix_url(), Options::default()).unwrap();
    c.ping().unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let Some(before) = io_thread_switches() else {
        eprintln!("no /proc or no redipc-io thread: skipped");
        return;
    };
    // A 2 s BLPOP on the calling thread (it drives the runtime meanwhile).
    let r = c.command(&["BLPOP", "nothing-here", "2"]).unwrap();
    assert!(r.is_nil());
    let after = io_thread_switches().unwrap();
    // Polling every 0.5-2 ms would be 1,000-4,000 wake-ups; sleeping on the caller's exit
    // is a handful (the first 10 ms are polled at the 2 ms grace period).
    assert!(
        after - before < 100,
        "the background thread woke {} times during a 2 s blocking call",
        after - before
    );
}
