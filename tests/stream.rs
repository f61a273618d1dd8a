//! Event streams and consumer groups against a private redis-server.

mod common;

use std::collections::HashSet;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Server, spawn_child};
use redipc::{ConsumerOptions, ErrorKind, Options, blocking};

fn connect(url: &str) -> blocking::Client {
    blocking::Client::connect(url, Options::default()).expect("connect")
}

fn wait_until(within: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < within, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn publish_bound_read_last_and_follow_in_order() {
    let server = Server::start();
    let c = connect(&server.tcp_url());
    for i in 0..3000 {
        c.stream_publish("bounded", &[("n", i.to_string())], Some(100))
            .unwrap();
    }
    let len = c.stream_len("bounded").unwrap();
    assert!((100..400).contains(&len), "MAXLEN ~ 100 kept {len}");
    let last = c.stream_last("bounded").unwrap().unwrap();
    assert_eq!(last.get(b"n").map(|v| &v[..]), Some(&b"2999"[..]));
    assert_eq!(c.stream_last("nothing").unwrap(), None);

    // A follower sees every entry in order while another thread publishes.
    let mut f = c.stream_follow("events", "0").unwrap();
    let p = c.clone();
    let t = std::thread::spawn(move || {
        for i in 0..1000 {
            p.stream_publish("events", &[("n", i.to_string())], Some(0))
                .unwrap();
        }
    });
    for i in 0..1000 {
        let e = f.next(Duration::from_secs(5)).unwrap().expect("entry");
        assert_eq!(
            e.get(b"n").map(|v| v.to_vec()),
            Some(i.to_string().into_bytes())
        );
    }
    t.join().unwrap();
    assert_eq!(f.next(Duration::from_millis(50)).unwrap(), None);

    let all = c.stream_read("events", "0", 10, None).unwrap();
    assert_eq!(all.len(), 10);
    let after = c.stream_read("events", &all[9].id, 5, None).unwrap();
    assert_eq!(after[0].get(b"n").map(|v| &v[..]), Some(&b"10"[..]));
    // Blocking read of new entries only: nothing comes.
    assert!(
        c.stream_read("events", "$", 1, Some(Duration::from_millis(50)))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn three_consumers_handle_ten_thousand_entries_exactly_once() {
    let server = Server::start();
    let c = connect(&server.unix_url());
    assert!(c.stream_group_create("work", "g", "0").unwrap());
    assert!(
        !c.stream_group_create("work", "g", "0").unwrap(),
        "existing group is not an error"
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut consumers = Vec::new();
    for name in ["c1", "c2", "c3"] {
        let s = seen.clone();
        consumers.push(
            c.stream_consume(
                "work",
                "g",
                name,
                move |e| {
                    s.lock().unwrap().push(e.id.clone());
                    Ok(())
                },
                ConsumerOptions::default().count(50),
            )
            .unwrap(),
        );
    }
    let mut p = c.pipeline();
    for i in 0..10_000 {
        p.add(&[
            "XADD".to_string(),
            "work".into(),
            "*".into(),
            "n".into(),
            i.to_string(),
        ])
        .unwrap();
        if p.len() == 1000 {
            p.exec().unwrap();
            p.clear();
        }
    }
    wait_until(Duration::from_secs(30), "all handled", || {
        seen.lock().unwrap().len() >= 10_000
    });
    std::thread::sleep(Duration::from_millis(100));
    for k in consumers {
        k.stop(Duration::from_secs(5)).unwrap();
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 10_000);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 10_000);
    assert_eq!(c.stream_pending("work", "g").unwrap().count, 0);
}

#[test]
fn a_failing_entry_is_retried_then_dead_lettered_and_never_acked_on_failure() {
    let server = Server::start();
    let c = connect(&server.tcp_url());
    c.stream_publish("jobs", &[("task", "poison")], None)
        .unwrap();
    c.stream_publish("jobs", &[("task", "ok")], None).unwrap();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let k = calls.clone();
    let consumer = c
        .stream_consume(
            "jobs",
            "g",
            "me",
            move |e| {
                k.lock()
                    .unwrap()
                    .push((e.get(b"task").unwrap().to_vec(), e.deliveries));
                if e.get(b"task").map(|v| &v[..]) == Some(b"poison") {
                    Err("cannot do it".into())
                } else {
                    Ok(())
                }
            },
            ConsumerOptions::default()
                .min_idle(Duration::from_millis(100))
                .claim_interval(Duration::from_millis(50))
                .block(Duration::from_millis(50))
                .max_deliveries(3)
                .error_hook(|_| {}),
        )
        .unwrap();
    wait_until(Duration::from_secs(10), "dead letter", || {
        !c.stream_dead_letters("jobs", 10).unwrap().is_empty()
    });
    consumer.stop(Duration::from_secs(5)).unwrap();
    let dead = c.stream_dead_letters("jobs", 10).unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].get(b"task").map(|v| &v[..]), Some(&b"poison"[..]));
    assert_eq!(
        dead[0].get(b"_error").map(|v| &v[..]),
        Some(&b"cannot do it"[..])
    );
    assert_eq!(dead[0].get(b"_deliveries").map(|v| &v[..]), Some(&b"3"[..]));
    let calls = calls.lock().unwrap();
    let poison: Vec<u64> = calls
        .iter()
        .filter(|(t, _)| t == b"poison")
        .map(|(_, d)| *d)
        .collect();
    assert_eq!(
        poison,
        vec![1, 2, 3],
        "handled once per delivery, never more than max_deliveries"
    );
    assert_eq!(calls.iter().filter(|(t, _)| t == b"ok").count(), 1);
    assert_eq!(c.stream_pending("jobs", "g").unwrap().count, 0);
    assert_eq!(consumer.stats().dead_lettered, 1);
}

/// Run by `an_entry_of_a_killed_consumer_process_is_claimed_by_another` as a child.
#[test]
fn child_stream_consumer() {
    let Ok(url) = std::env::var("REDIPC_STREAM_CHILD_URL") else {
        return;
    };
    let c = connect(&url);
    let c2 = c.clone();
    let _k = c
        .stream_consume(
            "crash",
            "g",
            "doomed",
            move |_| {
                c2.set("child-started", "1").unwrap();
                std::thread::sleep(Duration::from_secs(60));
                Ok(())
            },
            ConsumerOptions::default(),
        )
        .unwrap();
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn an_entry_of_a_killed_consumer_process_is_claimed_by_another() {
    let server = Server::start();
    let c = connect(&server.tcp_url());
    c.stream_group_create("crash", "g", "0").unwrap();
    c.stream_publish("crash", &[("task", "important")], None)
        .unwrap();
    let mut child: Child = spawn_child(
        "child_stream_consumer",
        "REDIPC_STREAM_CHILD_URL",
        &server.tcp_url(),
        false,
    );
    wait_until(Duration::from_secs(10), "child handling", || {
        c.get("child-started").unwrap().is_some()
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        c.stream_pending("crash", "g").unwrap().consumers,
        vec![("doomed".to_string(), 1)]
    );
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    let t = Instant::now();
    let rescuer = c
        .stream_consume(
            "crash",
            "g",
            "rescuer",
            move |e| {
                g.lock()
                    .unwrap()
                    .push((e.get(b"task").unwrap().to_vec(), e.deliveries));
                Ok(())
            },
            ConsumerOptions::default()
                .min_idle(Duration::from_millis(300))
                .claim_interval(Duration::from_millis(100))
                .block(Duration::from_millis(100)),
        )
        .unwrap();
    wait_until(Duration::from_secs(5), "claimed", || {
        !got.lock().unwrap().is_empty()
    });
    rescuer.stop(Duration::from_secs(5)).unwrap();
    assert_eq!(*got.lock().unwrap(), vec![(b"important".to_vec(), 2)]);
    assert!(
        t.elapsed() >= Duration::from_millis(200),
        "not before min_idle"
    );
    assert_eq!(c.stream_pending("crash", "g").unwrap().count, 0);
}

#[test]
fn bad_input_is_refused_and_wrong_types_change_nothing() {
    let server = Server::start();
    let c = connect(&server.tcp_url());
    c.set("plain", "x").unwrap();
    let e = c.stream_publish("plain", &[("a", "b")], None).unwrap_err();
    assert_eq!(e.code(), Some("WRONGTYPE"));
    assert_eq!(c.get("plain").unwrap().as_deref(), Some(&b"x"[..]));
    for bad in ["abc", "1-x", "", "-1", ">", "+", "1-*"] {
        assert_eq!(
            c.stream_read("s", bad, 1, None).unwrap_err().kind(),
            ErrorKind::InvalidArgument,
            "{bad}"
        );
    }
    assert!(c.stream_follow("s", "nope").is_err());
    assert!(c.stream_publish("s", &[] as &[(&str, &str)], None).is_err());
    assert!(c.stream_publish("", &[("a", "b")], None).is_err());
    assert!(c.stream_group_create("s", "", "0").is_err());
}

#[test]
fn following_from_dollar_sees_everything_published_after_it_started() {
    let server = Server::start();
    let c = connect(&server.tcp_url());
    c.stream_publish("f", &[("n", "old")], None).unwrap();
    let mut f = c.stream_follow("f", "$").unwrap();
    let mut empty = c.stream_follow("not-yet", "$").unwrap();
    // Published before the first next(): still seen.
    for n in ["a", "b", "c"] {
        c.stream_publish("f", &[("n", n)], None).unwrap();
    }
    c.stream_publish("not-yet", &[("n", "first")], None)
        .unwrap();
    for n in ["a", "b", "c"] {
        let e = f.next(Duration::from_secs(2)).unwrap().expect("entry");
        assert_eq!(e.get(b"n").map(|v| &v[..]), Some(n.as_bytes()));
    }
    assert_eq!(f.next(Duration::from_millis(50)).unwrap(), None);
    let e = empty.next(Duration::from_secs(2)).unwrap().expect("entry");
    assert_eq!(e.get(b"n").map(|v| &v[..]), Some(&b"first"[..]));
}

#[test]
fn an_idle_group_consumer_stops_at_once() {
    // The loop blocks in XREADGROUP for 10 s; stop ends it with CLIENT UNBLOCK.
    let server = Server::start();
    let c = connect(&server.unix_url());
    c.stream_group_create("idle", "g", "$").unwrap();
    let seen = Arc::new(Mutex::new(0usize));
    let s = seen.clone();
    let consumer = c
        .stream_consume(
            "idle",
            "g",
            "c1",
            move |_e| {
                *s.lock().unwrap() += 1;
                Ok(())
            },
            ConsumerOptions::default().block(Duration::from_secs(10)),
        )
        .unwrap();
    c.stream_publish("idle", &[("n", "1")], None).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while *seen.lock().unwrap() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(*seen.lock().unwrap(), 1);
    std::thread::sleep(Duration::from_millis(200)); // blocked again
    let t = Instant::now();
    consumer.stop(Duration::from_secs(20)).unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "stop took {:?} with a 10 s block time",
        t.elapsed()
    );
}
