//! The pub/sub multiplexer against a private redis-server.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Server;
use redipc::{Event, Options, Overflow, SubscribeOptions, blocking};

fn connect(url: &str) -> blocking::Client {
    blocking::Client::connect(url, Options::default()).expect("connect")
}

/// Publish `n` numbered messages on `channel` in pipelined batches.
fn burst(c: &blocking::Client, channel: &str, n: usize) {
    let mut i = 0;
    while i < n {
        let batch: Vec<Vec<Vec<u8>>> = (i..(i + 1000).min(n))
            .map(|k| {
                vec![
                    b"PUBLISH".to_vec(),
                    channel.as_bytes().to_vec(),
                    k.to_string().into_bytes(),
                ]
            })
            .collect();
        i += batch.len();
        c.pipeline_raw(&batch).unwrap();
    }
}

/// Take events until `pred` says stop or `within` passes.
fn collect_until(
    sub: &blocking::Subscription,
    within: Duration,
    mut pred: impl FnMut(&Event) -> bool,
) -> Vec<Event> {
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    while Instant::now() < deadline {
        if let Some(e) = sub.next(Some(Duration::from_millis(50))).unwrap() {
            let stop = pred(&e);
            out.push(e);
            if stop {
                return out;
            }
        }
    }
    panic!(
        "condition not met within {within:?}; got {} events: {:?}",
        out.len(),
        out.iter().rev().take(3).collect::<Vec<_>>()
    );
}

fn payloads(events: &[Event]) -> Vec<usize> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some(std::str::from_utf8(&m.payload).unwrap().parse().unwrap()),
            _ => None,
        })
        .collect()
}

fn numsub(server: &Server, channel: &str) -> i64 {
    match server.cmd(&["PUBSUB", "NUMSUB", channel]) {
        redis::Value::Array(v) => match &v[1] {
            redis::Value::Int(n) => *n,
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

#[test]
fn hundred_thousand_messages_arrive_complete_and_in_order() {
    let server = Server::start();
    for url in server.urls() {
        let c = connect(&url);
        // Pull mode.
        let sub = c
            .subscribe(&["burst"], SubscribeOptions::default())
            .unwrap();
        assert!(matches!(
            sub.next(Some(Duration::from_secs(1))).unwrap(),
            Some(Event::Activated { .. })
        ));
        let publisher = connect(&url);
        let t = std::thread::spawn(move || burst(&publisher, "burst", 100_000));
        let mut next = 0usize;
        while next < 100_000 {
            match sub.next(Some(Duration::from_secs(10))).unwrap() {
                Some(Event::Message(m)) => {
                    let k: usize = std::str::from_utf8(&m.payload).unwrap().parse().unwrap();
                    assert_eq!(k, next, "out of order or lost");
                    next += 1;
                }
                Some(other) => panic!("unexpected {other:?}"),
                None => panic!("stalled at {next}"),
            }
        }
        t.join().unwrap();
        assert_eq!(sub.stats().dropped, 0);

        // Handler mode.
        let seen = Arc::new(Mutex::new(Vec::with_capacity(100_000)));
        let s2 = seen.clone();
        let _sub2 = c
            .subscribe(
                &["burst2"],
                SubscribeOptions::default().handler(move |e| {
                    if let Event::Message(m) = e {
                        s2.lock().unwrap().push(
                            std::str::from_utf8(&m.payload)
                                .unwrap()
                                .parse::<usize>()
                                .unwrap(),
                        );
                    }
                }),
            )
            .unwrap();
        burst(&c, "burst2", 100_000);
        let deadline = Instant::now() + Duration::from_secs(20);
        while seen.lock().unwrap().len() < 100_000 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 100_000);
        assert!(
            seen.iter().enumerate().all(|(i, k)| i == *k),
            "out of order"
        );
    }
}

#[test]
fn shared_channels_patterns_shards_and_unsubscribe_of_the_last() {
    let server = Server::start();
    let c = connect(&server.tcp_url());
    let a = c
        .subscribe(&["news", "sport"], SubscribeOptions::default())
        .unwrap();
    let b = c.subscribe(&["news"], SubscribeOptions::default()).unwrap();
    let p = c.psubscribe(&["n*"], SubscribeOptions::default()).unwrap();
    let s = c
        .ssubscribe(&["shard1"], SubscribeOptions::default())
        .unwrap();
    assert_eq!(
        numsub(&server, "news"),
        1,
        "Redis is subscribed once for two subscriptions"
    );

    assert_eq!(
        c.publish("news", "hello").unwrap(),
        2,
        "one channel + one pattern subscriber on the connection"
    );
    assert_eq!(c.spublish("shard1", "sharded").unwrap(), 1);
    for sub in [&a, &b] {
        let ev = collect_until(sub, Duration::from_secs(2), |e| {
            matches!(e, Event::Message(_))
        });
        let Event::Message(m) = ev.last().unwrap() else {
            unreachable!()
        };
        assert_eq!(&m.channel[..], b"news");
        assert_eq!(&m.payload[..], b"hello");
        assert_eq!(m.pattern, None);
    }
    let ev = collect_until(&p, Duration::from_secs(2), |e| {
        matches!(e, Event::Message(_))
    });
    let Event::Message(m) = ev.last().unwrap() else {
        unreachable!()
    };
    assert_eq!(m.pattern.as_deref(), Some(&b"n*"[..]));
    assert_eq!(&m.channel[..], b"news");
    let ev = collect_until(&s, Duration::from_secs(2), |e| {
        matches!(e, Event::Message(_))
    });
    let Event::Message(m) = ev.last().unwrap() else {
        unreachable!()
    };
    assert_eq!(&m.payload[..], b"sharded");
    assert_eq!(m.kind, redipc::SubscriptionKind::Shard);

    // Add and remove while messages flow.
    a.add(&["extra"]).unwrap();
    c.publish("extra", "1").unwrap();
    collect_until(
        &a,
        Duration::from_secs(2),
        |e| matches!(e, Event::Message(m) if &m.channel[..] == b"extra"),
    );
    a.remove(&["extra"]);
    let mut names: Vec<_> = a.names().iter().map(|n| n.to_vec()).collect();
    names.sort();
    assert_eq!(names, vec![b"news".to_vec(), b"sport".to_vec()]);

    // The last subscription leaving a channel unsubscribes in Redis.
    drop(b);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(numsub(&server, "news"), 1, "a still has it");
    a.clear();
    let deadline = Instant::now() + Duration::from_secs(2);
    while (numsub(&server, "news") != 0 || numsub(&server, "extra") != 0)
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(numsub(&server, "news"), 0);
    assert_eq!(numsub(&server, "sport"), 0);
    assert_eq!(numsub(&server, "extra"), 0);

    // Bad input.
    assert!(
        c.subscribe(&[""], SubscribeOptions::default())
            .unwrap_err()
            .is_invalid_argument()
    );
}

fn wait_for(
    sub: &blocking::Subscription,
    within: Duration,
    what: &str,
    pred: impl Fn(&Event) -> bool,
) -> Duration {
    let t = Instant::now();
    while t.elapsed() < within {
        if let Some(e) = sub.next(Some(Duration::from_millis(50))).unwrap()
            && pred(&e)
        {
            return t.elapsed();
        }
    }
    panic!("no {what} within {within:?}");
}

fn check_recovery(
    c: &blocking::Client,
    subs: &[&blocking::Subscription],
    channel: &str,
    within: Duration,
) {
    for s in subs {
        wait_for(s, within, "disconnected", |e| {
            matches!(e, Event::Disconnected { .. })
        });
    }
    for s in subs {
        wait_for(s, within, "reactivated", |e| {
            matches!(e, Event::Reactivated { .. })
        });
    }
    c.publish(channel, "after").unwrap_or_else(|_| {
        std::thread::sleep(Duration::from_millis(500));
        c.publish(channel, "after").unwrap()
    });
    for s in subs {
        wait_for(
            s,
            Duration::from_secs(2),
            "message after reactivation",
            |e| matches!(e, Event::Message(m) if &m.payload[..] == b"after"),
        );
    }
}

#[test]
fn client_kill_type_pubsub_gives_disconnected_then_reactivated() {
    let server = Server::start();
    let c = connect(&server.unix_url());
    let a = c.subscribe(&["ch"], SubscribeOptions::default()).unwrap();
    let b = c.psubscribe(&["c*"], SubscribeOptions::default()).unwrap();
    server.cmd(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    check_recovery(&c, &[&a, &b], "ch", Duration::from_secs(3));
}

#[test]
fn server_restart_restores_every_subscription() {
    let mut server = Server::start();
    let c = blocking::Client::connect(
        &server.tcp_url(),
        Options::default().connect_timeout(Duration::from_millis(500)),
    )
    .unwrap();
    let a = c.subscribe(&["ch"], SubscribeOptions::default()).unwrap();
    let b = c.ssubscribe(&["sh"], SubscribeOptions::default()).unwrap();
    server.kill();
    std::thread::sleep(Duration::from_millis(300));
    server.restart();
    for s in [&a, &b] {
        wait_for(s, Duration::from_secs(5), "disconnected", |e| {
            matches!(e, Event::Disconnected { .. })
        });
        wait_for(s, Duration::from_secs(5), "reactivated", |e| {
            matches!(e, Event::Reactivated { .. })
        });
    }
    // The command connection comes back too.
    let deadline = Instant::now() + Duration::from_secs(5);
    while c.publish("ch", "x").is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    c.spublish("sh", "y").unwrap();
    wait_for(&a, Duration::from_secs(2), "message", |e| {
        matches!(e, Event::Message(_))
    });
    wait_for(&b, Duration::from_secs(2), "message", |e| {
        matches!(e, Event::Message(_))
    });
}

#[test]
fn a_half_open_connection_is_found_by_the_health_check() {
    let server = Server::start();
    let c = blocking::Client::connect(
        &server.tcp_url(),
        Options::default()
            .health_check_interval(Duration::from_millis(400))
            .connect_timeout(Duration::from_millis(300)),
    )
    .unwrap();
    let a = c.subscribe(&["ch"], SubscribeOptions::default()).unwrap();
    server.pause();
    let took = wait_for(&a, Duration::from_secs(3), "disconnected", |e| {
        matches!(e, Event::Disconnected { .. })
    });
    // Within 1.5 intervals of the last byte received (documented), with room for a
    // loaded machine's scheduling.
    assert!(took < Duration::from_millis(1000), "{took:?}");
    std::thread::sleep(Duration::from_millis(500));
    server.resume();
    wait_for(&a, Duration::from_secs(5), "reactivated", |e| {
        matches!(e, Event::Reactivated { .. })
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while c.publish("ch", "after").is_err() && Instant::now() < deadline {}
    wait_for(&a, Duration::from_secs(2), "message", |e| {
        matches!(e, Event::Message(_))
    });
}

fn slow_subscriber(
    c: &blocking::Client,
    channel: &str,
    overflow: Overflow,
) -> (blocking::Subscription, Arc<Mutex<Vec<usize>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let sub = c
        .subscribe(
            &[channel],
            SubscribeOptions::default()
                .capacity(10)
                .overflow(overflow)
                .handler(move |e| {
                    if let Event::Message(m) = e {
                        std::thread::sleep(Duration::from_millis(2));
                        s2.lock()
                            .unwrap()
                            .push(std::str::from_utf8(&m.payload).unwrap().parse().unwrap());
                    }
                }),
        )
        .unwrap();
    (sub, seen)
}

#[test]
fn overflow_policies_drop_and_count_or_block_and_lose_nothing() {
    let server = Server::start();
    let c = connect(&server.tcp_url());
    for (overflow, name) in [
        (Overflow::DropNewest, "dn"),
        (Overflow::DropOldest, "do"),
        (Overflow::Block, "bl"),
    ] {
        let (sub, seen) = slow_subscriber(&c, name, overflow);
        burst(&c, name, 300);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let st = sub.stats();
            let n = seen.lock().unwrap().len() as u64;
            if n + st.dropped >= 300 && st.queued == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{name}: stuck at {n} seen, {st:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let st = sub.stats();
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len() as u64 + st.dropped, 300, "{name}: {st:?}");
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "{name}: order kept");
        match overflow {
            Overflow::Block => assert_eq!(st.dropped, 0),
            Overflow::DropNewest => {
                assert!(st.dropped > 0);
                assert_eq!(seen[0], 0, "the first ones are kept");
            }
            _ => {
                assert!(st.dropped > 0);
                assert_eq!(*seen.last().unwrap(), 299, "the newest is kept");
            }
        }
    }
}

#[test]
fn a_slow_handler_does_not_delay_other_subscriptions() {
    let server = Server::start();
    let c = connect(&server.tcp_url());
    let gate = Arc::new(AtomicBool::new(false));
    let g = gate.clone();
    let _slow = c
        .subscribe(
            &["slow"],
            SubscribeOptions::default().handler(move |_| {
                while !g.load(Ordering::Acquire) {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }),
        )
        .unwrap();
    let fast = c.subscribe(&["fast"], SubscribeOptions::default()).unwrap();
    c.publish("slow", "x").unwrap();
    c.publish("fast", "y").unwrap();
    wait_for(&fast, Duration::from_secs(2), "fast message", |e| {
        matches!(e, Event::Message(_))
    });
    gate.store(true, Ordering::Release);
}

struct DropCounter(Arc<AtomicUsize>);
impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn no_callback_after_close_returns_and_the_handler_is_dropped_once() {
    let server = Server::start();
    let c = connect(&server.tcp_url());
    let publisher = connect(&server.tcp_url());
    let stop = Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    let pub_thread = std::thread::spawn(move || {
        while !st.load(Ordering::Relaxed) {
            let _ = publisher.pipeline_raw(&vec![vec!["PUBLISH", "race", "m"]; 50]);
        }
    });
    let drops = Arc::new(AtomicUsize::new(0));
    for i in 0..1000 {
        let closed = Arc::new(AtomicBool::new(false));
        let violated = Arc::new(AtomicBool::new(false));
        let (cl, vi) = (closed.clone(), violated.clone());
        let guard = DropCounter(drops.clone());
        let sub = c
            .subscribe(
                &["race"],
                SubscribeOptions::default().handler(move |_| {
                    let _keep = &guard;
                    if cl.load(Ordering::SeqCst) {
                        vi.store(true, Ordering::SeqCst);
                    }
                    if i % 7 == 0 {
                        std::thread::sleep(Duration::from_micros(200));
                    }
                }),
            )
            .unwrap();
        if i % 3 == 0 {
            std::thread::sleep(Duration::from_micros(500));
        }
        sub.close();
        closed.store(true, Ordering::SeqCst);
        std::thread::sleep(Duration::from_micros(50));
        assert!(
            !violated.load(Ordering::SeqCst),
            "callback ran after close returned (iteration {i})"
        );
        assert_eq!(
            drops.load(Ordering::SeqCst),
            i + 1,
            "handler dropped exactly once"
        );
    }
    stop.store(true, Ordering::Relaxed);
    pub_thread.join().unwrap();
}

#[test]
fn closing_from_inside_the_own_handler_is_allowed() {
    let server = Server::start();
    let c = connect(&server.tcp_url());
    let slot: Arc<Mutex<Option<blocking::Subscription>>> = Arc::default();
    let calls = Arc::new(AtomicUsize::new(0));
    let drops = Arc::new(AtomicUsize::new(0));
    let (s2, c2, guard) = (slot.clone(), calls.clone(), DropCounter(drops.clone()));
    let sub = c
        .subscribe(
            &["selfclose"],
            SubscribeOptions::default().handler(move |e| {
                let _keep = &guard;
                if matches!(e, Event::Message(_)) {
                    c2.fetch_add(1, Ordering::SeqCst);
                    if let Some(s) = s2.lock().unwrap().take() {
                        s.close();
                    }
                }
            }),
        )
        .unwrap();
    *slot.lock().unwrap() = Some(sub);
    // All ten in one burst, so they reach the handler in one batch.
    c.pipeline_raw(&vec![vec!["PUBLISH", "selfclose", "m"]; 10])
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "no call after the one that closed it"
    );
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn poll_mode_runs_callbacks_only_inside_poll_and_the_fd_signals_work() {
    let server = Server::start();
    let c =
        blocking::Client::connect(&server.tcp_url(), Options::default().poll_mode(true)).unwrap();
    let fd = c.poll_fd().unwrap();
    let readable = || {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, zero timeout.
        let n = unsafe { libc::poll(&mut pfd, 1, 0) };
        n == 1 && pfd.revents & libc::POLLIN != 0
    };
    let me = std::thread::current().id();
    let outside = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicUsize::new(0));
    let (o, n) = (outside.clone(), count.clone());
    let _sub = c
        .subscribe(
            &["p"],
            SubscribeOptions::default().handler(move |e| {
                if std::thread::current().id() != me {
                    o.store(true, Ordering::SeqCst);
                }
                if matches!(e, Event::Message(_)) {
                    n.fetch_add(1, Ordering::SeqCst);
                }
            }),
        )
        .unwrap();
    // The Activated event is waiting.
    assert!(readable());
    assert!(c.poll(Some(Duration::ZERO)).unwrap() >= 1);
    assert!(!readable());
    for i in 0..5 {
        c.publish("p", i.to_string()).unwrap();
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(count.load(Ordering::SeqCst), 0, "nothing runs outside poll");
    assert!(readable());
    let mut handled = 0;
    while handled < 5 {
        handled += c.poll(Some(Duration::from_secs(1))).unwrap();
    }
    assert_eq!(count.load(Ordering::SeqCst), 5);
    assert!(!outside.load(Ordering::SeqCst));
    assert!(!readable());
    assert_eq!(c.poll(Some(Duration::from_millis(10))).unwrap(), 0);

    let plain = connect(&server.tcp_url());
    assert!(
        plain
            .poll(Some(Duration::ZERO))
            .unwrap_err()
            .is_invalid_argument()
    );
}

#[test]
fn poll_mode_work_never_polled_is_freed_with_the_client() {
    // A scheduled queue and the poll queue hold each other: a client freed with events
    // still waiting for `poll` used to leak both (found by the C observability test under
    // valgrind). The poll queue owns the descriptor `poll_fd` gives: it must be closed.
    let server = Server::start();
    let inode = |fd: i32| {
        // SAFETY: fstat on a descriptor number with a zeroed out-struct.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        (unsafe { libc::fstat(fd, &mut st) } == 0).then_some((st.st_dev, st.st_ino))
    };
    let c =
        blocking::Client::connect(&server.tcp_url(), Options::default().poll_mode(true)).unwrap();
    let fd = c.poll_fd().unwrap();
    let before = inode(fd).unwrap();
    let sub = c
        .subscribe(
            &["p"],
            SubscribeOptions::default()
                .capacity(4)
                .overflow(Overflow::DropOldest)
                .handler(|_| {}),
        )
        .unwrap();
    for i in 0..20 {
        c.publish("p", i.to_string()).unwrap();
    }
    // Connection events wait too (they are never dropped).
    server.cmd(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    std::thread::sleep(Duration::from_millis(300));
    drop(sub);
    drop(c);
    let deadline = Instant::now() + Duration::from_secs(5);
    // Closed, or its number reused by another test's descriptor.
    while inode(fd) == Some(before) {
        assert!(Instant::now() < deadline, "the poll queue was never freed");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_panicking_handler_does_not_stop_later_messages() {
    let server = Server::start();
    let c = connect(&server.tcp_url());
    let reported = Arc::new(AtomicUsize::new(0));
    let got = Arc::new(AtomicUsize::new(0));
    let (r, g) = (reported.clone(), got.clone());
    let _sub = c
        .subscribe(
            &["boom"],
            SubscribeOptions::default()
                .error_hook(move |_| {
                    r.fetch_add(1, Ordering::SeqCst);
                })
                .handler(move |e| {
                    if let Event::Message(m) = e {
                        if &m.payload[..] == b"panic" {
                            panic!("handler failure");
                        }
                        g.fetch_add(1, Ordering::SeqCst);
                    }
                }),
        )
        .unwrap();
    c.publish("boom", "panic").unwrap();
    c.publish("boom", "ok").unwrap();
    c.publish("boom", "panic").unwrap();
    c.publish("boom", "ok").unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while got.load(Ordering::SeqCst) < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(got.load(Ordering::SeqCst), 2);
    assert_eq!(reported.load(Ordering::SeqCst), 2);
}

#[test]
fn a_subscription_group_routes_by_channel() {
    let server = Server::start();
    let c = connect(&server.tcp_url());
    let group = c.subscribe_group(SubscribeOptions::default()).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    for ch in ["battery", "speed"] {
        let l = log.clone();
        group
            .handle(ch, move |e| {
                if let Event::Message(m) = e {
                    l.lock().unwrap().push((ch, m.payload.to_vec()));
                }
            })
            .unwrap();
    }
    c.publish("battery", "80").unwrap();
    c.publish("speed", "25").unwrap();
    c.publish("other", "x").unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while log.lock().unwrap().len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        *log.lock().unwrap(),
        vec![("battery", b"80".to_vec()), ("speed", b"25".to_vec())]
    );
    group.unhandle("speed");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(numsub(&server, "speed"), 0);
}

#[test]
fn ten_thousand_channels_on_one_client() {
    let server = Server::start();
    let c = connect(&server.tcp_url());
    let names: Vec<String> = (0..10_000).map(|i| format!("ch:{i}")).collect();
    let sub = c.subscribe(&names, SubscribeOptions::default()).unwrap();
    assert_eq!(sub.names().len(), 10_000);
    c.publish("ch:9999", "last").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match sub.next(Some(Duration::from_millis(100))).unwrap() {
            Some(Event::Message(m)) => {
                assert_eq!(&m.channel[..], b"ch:9999");
                break;
            }
            _ => assert!(Instant::now() < deadline),
        }
    }
    let _ = payloads(&[]);
}

#[test]
fn a_handler_may_call_the_blocking_client() {
    let server = Server::start();
    let c = connect(&server.tcp_url());
    let c2 = c.clone();
    let _sub = c
        .subscribe(
            &["cmd"],
            SubscribeOptions::default().handler(move |e| {
                if let Event::Message(m) = e {
                    c2.set("echoed", &m.payload[..]).unwrap();
                }
            }),
        )
        .unwrap();
    c.publish("cmd", "hello").unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while c.get("echoed").unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the handler could not use the client"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(c.get("echoed").unwrap().as_deref(), Some(&b"hello"[..]));
}

#[test]
fn add_from_inside_a_handler_does_not_stall_on_a_full_queue() {
    let server = Server::start();
    let c = blocking::Client::connect(
        &server.tcp_url(),
        Options::default().response_timeout(Duration::from_secs(1)),
    )
    .unwrap();
    let slot: Arc<Mutex<Option<blocking::Subscription>>> = Arc::default();
    let errors = Arc::new(AtomicUsize::new(0));
    let slowest = Arc::new(Mutex::new(Duration::ZERO));
    let (s2, e2, w2) = (slot.clone(), errors.clone(), slowest.clone());
    let sub = c
        .subscribe(
            &["flood"],
            SubscribeOptions::default().capacity(4).handler(move |e| {
                if let Event::Message(_) = e {
                    std::thread::sleep(Duration::from_millis(5));
                    if let Some(s) = s2.lock().unwrap().as_ref() {
                        let t = Instant::now();
                        if s.add(&["other"]).is_err() {
                            e2.fetch_add(1, Ordering::SeqCst);
                        }
                        let mut w = w2.lock().unwrap();
                        *w = (*w).max(t.elapsed());
                    }
                }
            }),
        )
        .unwrap();
    *slot.lock().unwrap() = Some(sub);
    c.pipeline_raw(&vec![vec!["PUBLISH", "flood", "m"]; 100])
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while slot.lock().unwrap().as_ref().unwrap().stats().delivered < 101 {
        assert!(Instant::now() < deadline, "stalled");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(errors.load(Ordering::SeqCst), 0);
    assert!(*slowest.lock().unwrap() < Duration::from_millis(200));
    let names = slot.lock().unwrap().as_ref().unwrap().names();
    assert_eq!(names.len(), 2);
    slot.lock().unwrap().take();
}

fn wait_until(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn on_closed_runs_once_after_the_last_handler_call() {
    let server = Server::start();
    let c = connect(&server.unix_url());
    // Closed from another thread while the handler runs: on_closed waits for it.
    let (entered, release) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let (e, r) = (entered.clone(), release.clone());
    let sub = c
        .subscribe(
            &["oc"],
            SubscribeOptions::default().handler(move |_| {
                e.store(true, Ordering::SeqCst);
                while !r.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }),
        )
        .unwrap();
    let closed = Arc::new(AtomicUsize::new(0));
    let n = closed.clone();
    sub.on_closed(move || {
        n.fetch_add(1, Ordering::SeqCst);
    });
    c.publish("oc", "x").unwrap();
    wait_until("the handler", || entered.load(Ordering::SeqCst));
    let s = Arc::new(sub);
    let s2 = s.clone();
    let closer = std::thread::spawn(move || s2.close());
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        closed.load(Ordering::SeqCst),
        0,
        "not while the handler runs"
    );
    release.store(true, Ordering::SeqCst);
    closer.join().unwrap();
    assert_eq!(closed.load(Ordering::SeqCst), 1);
    drop(s);
    assert_eq!(closed.load(Ordering::SeqCst), 1);
    // Registered on a closed subscription: at once.
    let sub = c.subscribe(&["oc2"], SubscribeOptions::default()).unwrap();
    sub.close();
    let n = closed.clone();
    sub.on_closed(move || {
        n.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(closed.load(Ordering::SeqCst), 2);
}

#[test]
fn group_routes_run_outside_the_lock_and_their_on_removed_runs_once() {
    let server = Server::start();
    let c = connect(&server.unix_url());
    let group = Arc::new(c.subscribe_group(SubscribeOptions::default()).unwrap());
    let removed = Arc::new(Mutex::new(Vec::<&'static str>::new()));
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let (g, s) = (Arc::downgrade(&group), seen.clone());
    let rm = removed.clone();
    // A handler that changes its own group's routes (would deadlock under the lock).
    group
        .handle_with(
            "a",
            move |e| {
                if let Event::Message(m) = e {
                    s.lock()
                        .unwrap()
                        .push(format!("a:{}", String::from_utf8_lossy(&m.payload)));
                    if let Some(g) = g.upgrade() {
                        g.unhandle("a");
                    }
                }
            },
            move || rm.lock().unwrap().push("a"),
        )
        .unwrap();
    let (s, rm) = (seen.clone(), removed.clone());
    group
        .handle_with(
            "b",
            move |e| {
                if let Event::Message(m) = e {
                    s.lock()
                        .unwrap()
                        .push(format!("b:{}", String::from_utf8_lossy(&m.payload)));
                }
            },
            move || rm.lock().unwrap().push("b"),
        )
        .unwrap();
    c.publish("a", "1").unwrap();
    wait_until("a's message and removal", || {
        *removed.lock().unwrap() == ["a"]
    });
    // The route goes at once; the UNSUBSCRIBE it sends reaches the server on the pub/sub
    // connection, which `publish` does not wait for (under AddressSanitizer it came later).
    wait_until("a unsubscribed at the server", || numsub(&server, "a") == 0);
    assert_eq!(c.publish("a", "2").unwrap(), 0, "a is unsubscribed");
    c.publish("b", "1").unwrap();
    wait_until("b's message", || seen.lock().unwrap().len() == 2);
    assert_eq!(*seen.lock().unwrap(), ["a:1", "b:1"]);
    // Replacing a route removes the old one.
    let rm = removed.clone();
    group
        .handle_with("b", |_| {}, move || rm.lock().unwrap().push("b2"))
        .unwrap();
    assert_eq!(*removed.lock().unwrap(), ["a", "b"]);
    group.close();
    assert_eq!(*removed.lock().unwrap(), ["a", "b", "b2"]);
    // A failed handle never runs on_removed.
    let rm = removed.clone();
    assert!(
        group
            .handle_with("c", |_| {}, move || rm.lock().unwrap().push("c"))
            .is_err()
    );
    drop(group);
    assert_eq!(*removed.lock().unwrap(), ["a", "b", "b2"]);
}

/// One outage, one `Disconnected`: not one per reconnect attempt that fails during it.
#[test]
fn an_outage_gives_one_disconnected_then_one_reactivated() {
    let mut server = Server::start();
    let c = blocking::Client::connect(
        &server.tcp_url(),
        Options::default().connect_timeout(Duration::from_millis(200)),
    )
    .unwrap();
    let sub = c.subscribe(&["ch"], SubscribeOptions::default()).unwrap();
    assert!(matches!(
        sub.next(Some(Duration::from_secs(2))).unwrap(),
        Some(Event::Activated { .. })
    ));
    server.kill();
    // Long enough for several failed reconnect attempts (10 ms doubling).
    std::thread::sleep(Duration::from_millis(1000));
    server.restart();
    let mut kinds = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !kinds.contains(&"reactivated") && Instant::now() < deadline {
        match sub.next(Some(Duration::from_millis(200))).unwrap() {
            Some(Event::Disconnected { .. }) => kinds.push("disconnected"),
            Some(Event::Reactivated { .. }) => kinds.push("reactivated"),
            Some(_) => kinds.push("other"),
            None => {}
        }
    }
    assert_eq!(kinds, ["disconnected", "reactivated"]);
}

#[test]
fn add_owned_confirms_without_borrowing_the_subscription() {
    // What Python's asyncio awaits: the names are recorded at once, the future (owning all
    // it needs) waits for the server; a dropped future leaves them subscribed.
    let server = Server::start();
    let c = connect(&server.tcp_url());
    let sub = c.subscribe(&["a"], SubscribeOptions::default()).unwrap();
    let confirm = sub.add_owned(&["b"]).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(confirm).unwrap();
    assert_eq!(numsub(&server, "b"), 1, "confirmed: the server has it");
    let mut names = sub.names();
    names.sort();
    assert_eq!(names, vec!["a", "b"]);

    drop(sub.add_owned(&["c"]).unwrap());
    wait_for(
        &sub,
        Duration::from_secs(5),
        "activation of c",
        |e| matches!(e, Event::Activated { name, .. } if name.as_ref() == b"c"),
    );
    assert_eq!(numsub(&server, "c"), 1);
    rt.block_on(sub.add_owned(&["a"]).unwrap()).unwrap(); // nothing new: nothing to wait for
}

/// Events taken with `take_batch` and dropped without `accept` (a cancelled asyncio wait)
/// come back first, in order; a take waits while a batch is out; accepted ones are gone;
/// the queue's counters agree.
#[test]
fn a_batch_taken_and_not_accepted_is_put_back_in_order() {
    let server = Server::start();
    let url = &server.urls()[0];
    let c = connect(url);
    let publisher = connect(url);
    let sub = c.subscribe(&["back"], SubscribeOptions::default()).unwrap();
    assert!(matches!(
        sub.next(Some(Duration::from_secs(5))).unwrap(),
        Some(Event::Activated { .. })
    ));
    burst(&publisher, "back", 10);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let events = sub.events();
    let take = |max| {
        rt.block_on(events.take_batch(Some(Duration::from_secs(5)), max))
            .unwrap()
    };
    // Wait until all ten are queued.
    let deadline = Instant::now() + Duration::from_secs(5);
    while sub.stats().queued < 10 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let first = take(4);
    // While it is out, another take waits (what it holds may come back first).
    let waiting = rt.block_on(events.take_batch(Some(Duration::from_millis(100)), 100));
    assert!(waiting.unwrap().accept().is_empty());
    drop(first);
    let second = take(3);
    assert_eq!(payloads(&second.accept()), vec![0, 1, 2]);
    let rest = take(100);
    drop(rest);
    assert_eq!(sub.stats().queued, 7);
    assert_eq!(
        sub.stats().delivered,
        4,
        "the activated event and three messages"
    );
    let all = take(100).accept();
    assert_eq!(payloads(&all), (3..10).collect::<Vec<_>>());
}
