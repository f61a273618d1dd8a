//! The async client's futures are `Send`: they can be spawned on a multi-thread runtime
//! (and by `blocking::Client::spawn_into`, which Python's asyncio bridge uses). A future
//! that captured a non-`Sync` borrow across an await (once `call_with`'s) fails to compile
//! here.

use std::time::Duration;

use redipc::{CallOptions, Client, LockOptions, Script};

fn send<T: Send>(_: T) {}

#[allow(dead_code)]
fn futures_are_send(c: &Client, script: &Script) {
    send(c.command(&["GET", "k"]));
    send(c.get("k"));
    send(c.call_with("svc", "m", "p", CallOptions::default()));
    send(c.call("svc", "p", Duration::from_secs(1)));
    send(c.send_request("q", "p"));
    send(c.send_request_delayed("q", "p", Duration::from_secs(1)));
    send(c.cache_wait("k", Duration::from_secs(1)));
    send(c.lock("l", LockOptions::default()));
    send(c.run_script(script, &["k"], &["a"]));
    send(c.subscribe(&["ch"], Default::default()));
    send(c.services());
    send(c.instances("svc"));
    if let Ok(sem) = c.semaphore("s", 1, Duration::from_secs(1)) {
        send(sem.acquire(None));
    }
    if let Ok(rl) = c.rate_limiter("r", 1.0, Duration::from_secs(1), None) {
        send(rl.acquire_wait(1, None));
    }
}

#[test]
fn the_async_clients_futures_are_send() {
    // The check is at compile time (above); this only makes the file a test.
}
