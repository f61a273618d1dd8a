//! Cache with blocking get, hash state publishing and watching, locks, keyspace events.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Server, spawn_child};
use redipc::{ErrorKind, LockOptions, Options, WatchOptions, blocking};

fn connect(url: &str) -> blocking::Client {
    blocking::Client::connect(url, Options::default()).expect("connect")
}

#[test]
fn cache_wait_wakes_on_a_write_times_out_cleanly_and_ttl_expires() {
    let server = Server::start();
    let c = connect(&server.tcp_url());
    let writer = connect(&server.unix_url());
    assert_eq!(c.cache_get("k").unwrap(), None);
    assert!(!c.cache_exists("k").unwrap());

    // Present already: returns at once.
    c.cache_set("ready", "1", None).unwrap();
    assert_eq!(
        c.cache_wait("ready", Duration::from_secs(1))
            .unwrap()
            .as_deref(),
        Some(&b"1"[..])
    );

    // Written by another client through the library while we wait.
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        let at = Instant::now();
        writer
            .cache_set("later", "v", Some(Duration::from_secs(10)))
            .unwrap();
        at
    });
    let got = c.cache_wait("later", Duration::from_secs(5)).unwrap();
    let woke = Instant::now();
    let written = t.join().unwrap();
    assert_eq!(got.as_deref(), Some(&b"v"[..]));
    assert!(
        woke.duration_since(written) < Duration::from_millis(50),
        "woke {:?} after the write",
        woke.duration_since(written)
    );

    // Timeout is not an error.
    let t0 = Instant::now();
    assert_eq!(
        c.cache_wait("never", Duration::from_millis(200)).unwrap(),
        None
    );
    assert!(t0.elapsed() >= Duration::from_millis(200) && t0.elapsed() < Duration::from_secs(1));

    // TTL.
    c.cache_set("short", "x", Some(Duration::from_millis(100)))
        .unwrap();
    assert!(c.cache_exists("short").unwrap());
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(c.cache_get("short").unwrap(), None);
    assert!(c.cache_delete("ready").unwrap());
    assert!(!c.cache_delete("ready").unwrap());
    assert!(
        c.cache_set("", "x", None)
            .unwrap_err()
            .is_invalid_argument()
    );
    // No waiter left subscribed.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        server.cmd(&["PUBSUB", "NUMSUB", "ipc:cache-set:later"]),
        redis::Value::Array(vec![
            redis::Value::BulkString(b"ipc:cache-set:later".to_vec()),
            redis::Value::Int(0)
        ])
    );
}

#[test]
fn hash_watcher_starts_with_a_full_sync_and_follows_a_concurrent_writer_without_gaps() {
    let server = Server::start();
    let c = connect(&server.tcp_url());
    c.hash_set_many("vehicle", &[("speed", "0"), ("battery", "100")], false)
        .unwrap();
    let view: Arc<Mutex<HashMap<Vec<u8>, Vec<u8>>>> = Arc::default();
    let speed_calls = Arc::new(Mutex::new(0usize));
    let (v, sc) = (view.clone(), speed_calls.clone());
    let writer = connect(&server.unix_url());
    let w = std::thread::spawn(move || {
        for i in 0..10_000 {
            writer
                .hash_set("vehicle", format!("f{}", i % 50), i.to_string())
                .unwrap();
        }
        writer.hash_delete("vehicle", "battery").unwrap();
    });
    let watcher = c
        .hash_watch(
            "vehicle",
            WatchOptions::new()
                .on_field("speed", move |_, _| *sc.lock().unwrap() += 1)
                .on_any(move |f, val| {
                    let mut v = v.lock().unwrap();
                    match val {
                        Some(val) => v.insert(f.to_vec(), val.to_vec()),
                        None => v.remove(f),
                    };
                }),
        )
        .unwrap();
    w.join().unwrap();
    let expected: HashMap<Vec<u8>, Vec<u8>> = c.hgetall("vehicle").unwrap().into_iter().collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while *view.lock().unwrap() != expected {
        assert!(
            Instant::now() < deadline,
            "watcher view differs from HGETALL"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        *speed_calls.lock().unwrap(),
        1,
        "initial sync delivered speed once"
    );
    watcher.stop(Duration::from_secs(5)).unwrap();

    // set_if_changed publishes once for repeated values.
    let sub = c.subscribe(&["vehicle"], Default::default()).unwrap();
    assert!(c.hash_set_if_changed("vehicle", "speed", "30").unwrap());
    assert!(!c.hash_set_if_changed("vehicle", "speed", "30").unwrap());
    assert!(!c.hash_set_if_changed("vehicle", "speed", "30").unwrap());
    let mut msgs = 0;
    while let Some(e) = sub.next(Some(Duration::from_millis(200))).unwrap() {
        if matches!(e, redipc::Event::Message(_)) {
            msgs += 1;
        }
    }
    assert_eq!(msgs, 1);
    c.hash_replace_all("vehicle", &[("only", "1")]).unwrap();
    assert_eq!(
        c.hgetall("vehicle").unwrap(),
        vec![(b"only".to_vec(), b"1".to_vec())]
    );
    c.set("plain", "x").unwrap();
    assert_eq!(
        c.hash_set("plain", "f", "v").unwrap_err().code(),
        Some("WRONGTYPE")
    );
    assert_eq!(c.get("plain").unwrap().as_deref(), Some(&b"x"[..]));
}

/// Run by `eight_processes_increment_under_the_lock` as a child process.
#[test]
fn child_locker() {
    let Ok(url) = std::env::var("REDIPC_LOCK_CHILD_URL") else {
        return;
    };
    let c = connect(&url);
    let mut last = 0;
    for _ in 0..1000 {
        let g = c
            .lock(
                "counter",
                LockOptions::default()
                    .ttl(Duration::from_secs(5))
                    .wait(Duration::from_secs(60)),
            )
            .unwrap();
        assert!(g.token() > last, "tokens strictly increase");
        last = g.token();
        let v = c
            .get("count")
            .unwrap()
            .map(|v| String::from_utf8(v).unwrap().parse::<i64>().unwrap())
            .unwrap_or(0);
        c.set("count", (v + 1).to_string()).unwrap();
        c.rpush("tokens", &[g.token().to_string()]).unwrap();
        assert!(g.release().unwrap());
    }
}

#[test]
fn eight_processes_increment_under_the_lock() {
    let server = Server::start();
    let c = connect(&server.tcp_url());
    let children: Vec<_> = (0..8)
        .map(|_| {
            spawn_child(
                "child_locker",
                "REDIPC_LOCK_CHILD_URL",
                &server.unix_url(),
                true,
            )
        })
        .collect();
    for ch in children {
        let out = ch.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "a locker failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(c.get("count").unwrap().as_deref(), Some(&b"8000"[..]));
    // The tokens, in the order the holders wrote them, strictly increase.
    let tokens: Vec<u64> = match c.command(&["LRANGE", "tokens", "0", "-1"]).unwrap() {
        redipc::Reply::Array(v) => v.iter().map(|r| r.as_int().unwrap() as u64).collect(),
        other => panic!("{other:?}"),
    };
    assert_eq!(tokens.len(), 8000);
    assert!(tokens.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn a_dead_holder_loses_the_lock_after_its_ttl_and_waiting_times_out() {
    let server = Server::start();
    let c = connect(&server.tcp_url());
    let g = c
        .lock(
            "res",
            LockOptions::default().ttl(Duration::from_millis(300)),
        )
        .unwrap();
    let t1 = g.token();
    std::mem::forget(g); // the holder "dies": nobody releases it
    let e = c
        .lock(
            "res",
            LockOptions::default().wait(Duration::from_millis(50)),
        )
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    let t = Instant::now();
    let g2 = c
        .lock("res", LockOptions::default().wait(Duration::from_secs(2)))
        .unwrap();
    assert!(t.elapsed() < Duration::from_millis(600));
    assert!(g2.token() > t1);
    // Release wakes a waiter at once.
    let c2 = c.clone();
    let waiter = std::thread::spawn(move || {
        let t = Instant::now();
        let g = c2
            .lock("res", LockOptions::default().wait(Duration::from_secs(5)))
            .unwrap();
        (t.elapsed(), g.token())
    });
    std::thread::sleep(Duration::from_millis(300));
    let released_at = Instant::now();
    assert!(g2.release().unwrap());
    let (waited, t3) = waiter.join().unwrap();
    assert!(
        waited < Duration::from_millis(300) + released_at.elapsed() + Duration::from_millis(100)
    );
    assert!(t3 > t1);

    // extend and auto-renew keep it.
    let g = c
        .lock(
            "renewed",
            LockOptions::default()
                .ttl(Duration::from_millis(300))
                .auto_renew(true),
        )
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        c.lock("renewed", LockOptions::default().wait(Duration::ZERO))
            .is_err(),
        "still held"
    );
    assert!(g.extend(Duration::from_secs(5)).unwrap());
    drop(g);
    assert!(
        c.lock("renewed", LockOptions::default().wait(Duration::ZERO))
            .is_ok(),
        "released on drop"
    );
    assert!(
        c.lock("", LockOptions::default())
            .unwrap_err()
            .is_invalid_argument()
    );
}

#[test]
fn keyspace_watcher_delivers_key_and_event() {
    let server = Server::start();
    let c = connect(&server.tcp_url());
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    let _w = c
        .watch_keys("sensor:*", &["set", "del", "expired"], true, move |k, e| {
            g.lock().unwrap().push((k.to_vec(), e.to_string()));
        })
        .unwrap();
    c.set("sensor:1", "a").unwrap();
    c.set("other", "b").unwrap();
    c.lpush("sensor:list", &["x"]).unwrap(); // not a wanted event
    c.del(&["sensor:1"]).unwrap();
    c.set_with(
        "sensor:2",
        "t",
        redipc::SetOptions::default().ttl(Duration::from_millis(50)),
    )
    .unwrap();
    let want = vec![
        (b"sensor:1".to_vec(), "set".to_string()),
        (b"sensor:1".to_vec(), "del".to_string()),
        (b"sensor:2".to_vec(), "set".to_string()),
        (b"sensor:2".to_vec(), "expired".to_string()),
    ];
    let deadline = Instant::now() + Duration::from_secs(3);
    while got.lock().unwrap().len() < 4 && Instant::now() < deadline {
        let _ = c.get("sensor:2"); // touching an expired key makes it expire now
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(*got.lock().unwrap(), want);
}

#[test]
fn back_to_back_waits_on_the_same_channel_do_not_deadlock() {
    let server = Server::start();
    let c = connect(&server.tcp_url());
    // The second wait registers its interest while the first one's channel may still be
    // active in the server: that must not hang.
    for _ in 0..20 {
        assert_eq!(
            c.cache_wait("same", Duration::from_millis(20)).unwrap(),
            None
        );
    }
    std::thread::scope(|s| {
        for _ in 0..2 {
            let c = &c;
            s.spawn(move || {
                for _ in 0..100 {
                    let g = c
                        .lock("busy", LockOptions::default().wait(Duration::from_secs(10)))
                        .unwrap();
                    assert!(g.release().unwrap());
                }
            });
        }
    });
}

#[test]
fn a_failed_read_is_reported_and_retried_whole_so_no_change_is_lost() {
    let server = Server::start();
    let c = connect(&server.unix_url());
    c.hash_set("h", "a", "1").unwrap();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let (s, e) = (seen.clone(), errors.clone());
    let watcher = c
        .hash_watch(
            "h",
            WatchOptions::new()
                .on_field("a", move |_, v| {
                    s.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(v.unwrap_or(b"<gone>")).into_owned())
                })
                .on_field("boom", |_, _| panic!("handler bug"))
                .error_hook(move |text| e.lock().unwrap().push(text.to_string())),
        )
        .unwrap();
    let wait_for = |what: &str, f: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    wait_for("the initial sync", &|| *seen.lock().unwrap() == ["1"]);
    // The key stops being a hash: the watcher's read of the announced field fails.
    c.command(&["DEL", "h"]).unwrap();
    c.command(&["SET", "h", "not a hash"]).unwrap();
    c.command(&["PUBLISH", "h", "a"]).unwrap();
    wait_for("the read error", &|| {
        errors
            .lock()
            .unwrap()
            .iter()
            .any(|t| t.contains("WRONGTYPE"))
    });
    // Fixed behind the watcher's back, with no announcement: the retry (a whole read)
    // still delivers the new value.
    c.command(&["DEL", "h"]).unwrap();
    c.command(&["HSET", "h", "a", "2", "boom", "x"]).unwrap();
    wait_for("the value after the retry", &|| {
        seen.lock().unwrap().last().map(String::as_str) == Some("2")
    });
    // A panicking handler is reported, and later changes still arrive.
    wait_for("the panic report", &|| {
        errors
            .lock()
            .unwrap()
            .iter()
            .any(|t| t.contains("handler bug"))
    });
    c.hash_set("h", "a", "3").unwrap();
    wait_for("a change after the panic", &|| {
        seen.lock().unwrap().last().map(String::as_str) == Some("3")
    });
    watcher.stop(Duration::from_secs(5)).unwrap();
}
