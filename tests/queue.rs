//! Request queues, plain and reliable, against a private redis-server.

mod common;

use std::collections::HashSet;
use std::process::Child;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Server, spawn_child};
use redipc::{Options, Reply, WorkerOptions, blocking};

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
fn ten_thousand_requests_over_four_consumers_each_handled_once() {
    let server = Server::start();
    let c = connect(&server.unix_url());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let worker = c
        .handle_requests(
            &["jobs"],
            move |req| {
                s.lock()
                    .unwrap()
                    .push(String::from_utf8(req.payload.to_vec()).unwrap());
                Ok(())
            },
            WorkerOptions::default().concurrency(4),
        )
        .unwrap();
    let mut p = c.pipeline();
    for i in 0..10_000 {
        p.add(&[
            "LPUSH".to_string(),
            "ipc:{q:jobs}:pending".to_string(),
            i.to_string(),
        ])
        .unwrap();
        if p.len() == 1000 {
            p.exec().unwrap();
            p.clear();
        }
    }
    c.send_request("jobs", "").unwrap(); // empty payloads are fine
    wait_until(Duration::from_secs(20), "all handled", || {
        seen.lock().unwrap().len() == 10_001
    });
    worker.stop(Duration::from_secs(5)).unwrap();
    let seen = seen.lock().unwrap();
    let distinct: HashSet<_> = seen.iter().collect();
    assert_eq!(distinct.len(), 10_001, "each exactly once");
    assert_eq!(worker.stats().handled, 10_001);
    assert_eq!(c.queue_stats("jobs").unwrap().pending, 0);
}

#[test]
fn one_worker_serves_two_queues_fairly() {
    let server = Server::start();
    let c = connect(&server.tcp_url());
    for i in 0..200 {
        c.send_request("a", format!("a{i}")).unwrap();
        c.send_request("b", format!("b{i}")).unwrap();
    }
    let order = Arc::new(Mutex::new(Vec::new()));
    let o = order.clone();
    let w = c
        .handle_requests(
            &["a", "b"],
            move |req| {
                o.lock().unwrap().push(req.queue.to_vec());
                Ok(())
            },
            WorkerOptions::default().prefetch(1),
        )
        .unwrap();
    wait_until(Duration::from_secs(10), "all handled", || {
        order.lock().unwrap().len() == 400
    });
    w.stop(Duration::from_secs(5)).unwrap();
    let order = order.lock().unwrap();
    let first_half_a = order[..200].iter().filter(|q| q.as_slice() == b"a").count();
    assert!(
        (80..=120).contains(&first_half_a),
        "unfair: {first_half_a} of the first 200 from a"
    );
}

#[test]
fn stop_waits_for_running_handlers_and_big_payloads_pass() {
    let server = Server::start_with(&["--proto-max-bulk-len", "64mb"]);
    let c = connect(&server.tcp_url());
    let done = Arc::new(AtomicUsize::new(0));
    let d = done.clone();
    let w = c
        .handle_requests(
            &["slow"],
            move |req| {
                std::thread::sleep(Duration::from_millis(300));
                assert_eq!(req.payload.len(), 16 * 1024 * 1024);
                d.fetch_add(1, Ordering::SeqCst);
                Ok(())
            },
            WorkerOptions::default(),
        )
        .unwrap();
    c.send_request("slow", vec![7u8; 16 * 1024 * 1024]).unwrap();
    wait_until(Duration::from_secs(5), "picked up", || {
        c.queue_stats("slow").unwrap().pending == 0
    });
    std::thread::sleep(Duration::from_millis(50));
    w.stop(Duration::from_secs(5)).unwrap();
    assert_eq!(
        done.load(Ordering::SeqCst),
        1,
        "stop waited for the handler"
    );
}

#[test]
fn bad_input_is_refused_and_a_panicking_handler_does_not_kill_the_worker() {
    let server = Server::start();
    let c = connect(&server.tcp_url());
    assert!(c.send_request("", "x").unwrap_err().is_invalid_argument());
    assert!(
        c.send_request("a{b", "x")
            .unwrap_err()
            .is_invalid_argument()
    );
    assert!(
        c.handle_requests(&["q"], |_| Ok(()), WorkerOptions::default().concurrency(0))
            .unwrap_err()
            .is_invalid_argument()
    );
    assert!(
        c.handle_requests::<&str>(&[], |_| Ok(()), WorkerOptions::default())
            .is_err()
    );

    let ok = Arc::new(AtomicUsize::new(0));
    let o = ok.clone();
    let reports = Arc::new(AtomicUsize::new(0));
    let r = reports.clone();
    let w = c
        .handle_requests(
            &["p"],
            move |req| {
                if &req.payload[..] == b"boom" {
                    panic!("boom");
                }
                o.fetch_add(1, Ordering::SeqCst);
                Ok(())
            },
            WorkerOptions::default().error_hook(move |_| {
                r.fetch_add(1, Ordering::SeqCst);
            }),
        )
        .unwrap();
    c.send_request("p", "boom").unwrap();
    c.send_request("p", "fine").unwrap();
    wait_until(Duration::from_secs(5), "later request handled", || {
        ok.load(Ordering::SeqCst) == 1
    });
    w.stop(Duration::from_secs(5)).unwrap();
    assert_eq!(w.stats().failed, 1);
    assert!(reports.load(Ordering::SeqCst) >= 1);
}

#[test]
fn reliable_failures_retry_then_dead_letter_with_the_error() {
    let server = Server::start();
    let c = connect(&server.tcp_url());
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let a = attempts.clone();
    let w = c
        .handle_requests(
            &["r"],
            move |req| {
                a.lock().unwrap().push(req.attempt);
                if &req.payload[..] == b"poison" {
                    Err("cannot digest".into())
                } else {
                    Ok(())
                }
            },
            WorkerOptions::default()
                .reliable(true)
                .max_attempts(3)
                .error_hook(|_| {}),
        )
        .unwrap();
    c.send_request("r", "poison").unwrap();
    c.send_request("r", "good").unwrap();
    wait_until(Duration::from_secs(5), "dead letter", || {
        c.queue_stats("r").unwrap().dead == 1
    });
    let dead = c.dead_letters("r").unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(&dead[0].payload[..], b"poison");
    assert_eq!(dead[0].attempts, 3);
    assert_eq!(dead[0].error, "cannot digest");
    let mut seen = attempts.lock().unwrap().clone();
    seen.sort();
    assert_eq!(seen, vec![0, 0, 1, 2]);
    let st = c.queue_stats("r").unwrap();
    assert_eq!((st.pending, st.inflight), (0, 0));
    w.stop(Duration::from_secs(5)).unwrap();
    assert_eq!(w.stats().dead_lettered, 1);

    // Requeue: it comes back with its attempts starting over.
    assert_eq!(c.requeue_dead_letters("r").unwrap(), 1);
    assert_eq!(c.queue_stats("r").unwrap().pending, 1);
    let got = Arc::new(Mutex::new(None));
    let g = got.clone();
    let w = c
        .handle_requests(
            &["r"],
            move |req| {
                *g.lock().unwrap() = Some((req.payload.to_vec(), req.attempt));
                Ok(())
            },
            WorkerOptions::default().reliable(true),
        )
        .unwrap();
    wait_until(Duration::from_secs(5), "requeued handled", || {
        got.lock().unwrap().is_some()
    });
    w.stop(Duration::from_secs(5)).unwrap();
    assert_eq!(*got.lock().unwrap(), Some((b"poison".to_vec(), 0)));
    // A clean stop leaves no consumer keys behind.
    let keys = server.cmd(&["KEYS", "ipc:{q:r}:*"]);
    assert_eq!(keys, redis::Value::Array(vec![]), "left behind: {keys:?}");
}

/// Run by `reliable_consumer_processes_killed_mid_request_lose_nothing` as a child process.
#[test]
fn child_consumer() {
    let Ok(url) = std::env::var("REDIPC_CHILD_URL") else {
        return;
    };
    let c = connect(&url);
    let c2 = c.clone();
    let _w = c
        .handle_requests(
            &["kill"],
            move |req| {
                std::thread::sleep(Duration::from_millis(2));
                c2.command(&[b"SADD".as_slice(), b"done", &req.payload])
                    .map_err(|e| e.to_string())?;
                c2.incr("handled").map_err(|e| e.to_string())?;
                Ok(())
            },
            WorkerOptions::default()
                .reliable(true)
                .lease(Duration::from_millis(500))
                .concurrency(2),
        )
        .unwrap();
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Run by `a_request_that_kills_every_worker_ends_in_the_dead_letters` as a child process:
/// a reliable worker whose process dies on the request "poison".
#[test]
fn child_poisoned_consumer() {
    let Ok(url) = std::env::var("REDIPC_POISON_URL") else {
        return;
    };
    let c = connect(&url);
    let c2 = c.clone();
    let _w = c
        .handle_requests(
            &["poisoned"],
            move |req| {
                if &req.payload[..] == b"poison" {
                    std::process::exit(3); // the crash a poison pill causes
                }
                c2.command(&[b"SADD".as_slice(), b"poisoned-done", &req.payload])
                    .map_err(|e| e.to_string())?;
                Ok(())
            },
            WorkerOptions::default()
                .reliable(true)
                .lease(Duration::from_millis(300)),
        )
        .unwrap();
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn a_request_that_kills_every_worker_ends_in_the_dead_letters() {
    let server = Server::start();
    let c = connect(&server.unix_url());
    c.send_request("poisoned", "poison").unwrap();
    for i in 0..5 {
        c.send_request("poisoned", format!("ok-{i}")).unwrap();
    }
    let spawn = || {
        spawn_child(
            "child_poisoned_consumer",
            "REDIPC_POISON_URL",
            &server.unix_url(),
            false,
        )
    };
    let done = || match server.cmd(&["SCARD", "poisoned-done"]) {
        redis::Value::Int(n) => n,
        _ => 0,
    };
    // A worker process at a time; each one the poison kills is replaced.
    let mut child = spawn();
    let mut deaths = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while (done() < 5 || c.queue_stats("poisoned").unwrap().dead == 0) && Instant::now() < deadline
    {
        if child.try_wait().unwrap().is_some() {
            deaths += 1;
            child = spawn();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(done(), 5, "the other requests were handled");
    let dead = c.dead_letters("poisoned").unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(&dead[0].payload[..], b"poison");
    assert_eq!(dead[0].attempts, 3);
    assert!(dead[0].error.contains("died"), "{}", dead[0].error);
    assert_eq!(
        deaths, 3,
        "the poison took down max_attempts workers, no more"
    );
}

#[test]
fn reliable_consumer_processes_killed_mid_request_lose_nothing() {
    let server = Server::start();
    let c = connect(&server.tcp_url());
    for i in 0..1000 {
        c.send_request("kill", i.to_string()).unwrap();
    }
    let spawn = || {
        spawn_child(
            "child_consumer",
            "REDIPC_CHILD_URL",
            &server.tcp_url(),
            false,
        )
    };
    let mut children: Vec<Child> = (0..2).map(|_| spawn()).collect();
    let mut kills = 0;
    let t = Instant::now();
    // Kill a consumer every 150 ms for a while, starting a fresh one each time.
    while t.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(150));
        let victim = kills % children.len();
        children[victim].kill().unwrap();
        children[victim].wait().unwrap();
        children[victim] = spawn();
        kills += 1;
    }
    let done = || match server.cmd(&["SCARD", "done"]) {
        redis::Value::Int(n) => n,
        _ => 0,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while done() < 1000 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    for mut ch in children {
        let _ = ch.kill();
        let _ = ch.wait();
    }
    assert_eq!(done(), 1000, "lost requests");
    let handled = c
        .get("handled")
        .unwrap()
        .map(|v| String::from_utf8(v).unwrap().parse::<i64>().unwrap())
        .unwrap_or(0);
    eprintln!(
        "{kills} kills, 1000 requests, {} duplicates",
        handled - 1000
    );
    assert!(handled >= 1000);
    let _ = Reply::Nil;
}

#[test]
fn stopping_gives_back_prefetched_requests() {
    let server = Server::start();
    let c = connect(&server.tcp_url());
    for i in 0..20 {
        c.send_request("pf", i.to_string()).unwrap();
    }
    let handled = Arc::new(Mutex::new(Vec::new()));
    let h = handled.clone();
    let w = c
        .handle_requests(
            &["pf"],
            move |req| {
                h.lock()
                    .unwrap()
                    .push(String::from_utf8(req.payload.to_vec()).unwrap());
                std::thread::sleep(Duration::from_millis(50));
                Ok(())
            },
            WorkerOptions::default().prefetch(16),
        )
        .unwrap();
    wait_until(Duration::from_secs(5), "first handled", || {
        !handled.lock().unwrap().is_empty()
    });
    let t = Instant::now();
    w.stop(Duration::from_secs(5)).unwrap();
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "stop waited for the whole prefetch"
    );
    let done = handled.lock().unwrap().len() as u64;
    assert_eq!(
        c.queue_stats("pf").unwrap().pending + done,
        20,
        "nothing lost"
    );
    // The next worker gets the rest in order.
    let rest = Arc::new(Mutex::new(Vec::new()));
    let r = rest.clone();
    let w2 = c
        .handle_requests(
            &["pf"],
            move |req| {
                r.lock().unwrap().push(
                    String::from_utf8(req.payload.to_vec())
                        .unwrap()
                        .parse::<u32>()
                        .unwrap(),
                );
                Ok(())
            },
            WorkerOptions::default().prefetch(1),
        )
        .unwrap();
    wait_until(Duration::from_secs(5), "rest handled", || {
        rest.lock().unwrap().len() as u64 + done == 20
    });
    w2.stop(Duration::from_secs(5)).unwrap();
    let rest = rest.lock().unwrap();
    assert!(rest.windows(2).all(|w| w[0] < w[1]), "order kept: {rest:?}");
}

#[test]
fn idle_workers_stop_at_once_and_lose_nothing() {
    // Loops blocked in BRPOP / BLMOVE with a long block time are unblocked by `stop`
    // (CLIENT UNBLOCK) instead of finishing their block time; requests sent right before
    // and after are neither lost nor stuck.
    let server = Server::start();
    let c = connect(&server.unix_url());
    for reliable in [false, true] {
        let queue = format!("idle-{reliable}");
        let seen = Arc::new(AtomicUsize::new(0));
        let s = seen.clone();
        let w = c
            .handle_requests(
                &[queue.as_str()],
                move |_req| {
                    s.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                },
                WorkerOptions::default()
                    .reliable(reliable)
                    .concurrency(3)
                    .block_timeout(Duration::from_secs(10)),
            )
            .unwrap();
        c.send_request(queue.as_str(), "one").unwrap();
        wait_until(Duration::from_secs(5), "handled", || {
            seen.load(Ordering::SeqCst) == 1
        });
        std::thread::sleep(Duration::from_millis(200)); // every loop is blocked now
        let t = Instant::now();
        w.stop(Duration::from_secs(20)).unwrap();
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "reliable={reliable}: stop took {:?} with a 10 s block time",
            t.elapsed()
        );
        // Nothing taken by a stopped loop: a request sent now waits in the queue.
        c.send_request(queue.as_str(), "two").unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let stats = c.queue_stats(queue.as_str()).unwrap();
        assert_eq!(stats.pending, 1, "reliable={reliable}: {stats:?}");
        assert_eq!(seen.load(Ordering::SeqCst), 1);
    }
}

#[test]
fn a_failed_ack_or_nack_is_retried_until_it_is_settled() {
    // The server stops taking writes while each handler returns, so the worker's ack (or
    // nack) times out: it must be settled again once the server is back, not left in the
    // worker's in-flight list for as long as the worker lives.
    let server = Server::start();
    let c = connect(&server.tcp_url());
    let worker_client = blocking::Client::connect(
        &server.tcp_url(),
        Options::default().response_timeout(Duration::from_millis(300)),
    )
    .unwrap();
    let url = server.tcp_url();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let w = worker_client
        .handle_requests(
            &["r"],
            move |req| {
                s.lock().unwrap().push((req.payload.to_vec(), req.attempt));
                let admin = connect(&url);
                admin
                    .command(&["CLIENT", "PAUSE", "1000", "WRITE"])
                    .unwrap();
                match &req.payload[..] {
                    b"nack" if req.attempt == 0 => Err("first try fails".into()),
                    _ => Ok(()),
                }
            },
            WorkerOptions::default()
                .reliable(true)
                .max_attempts(3)
                .error_hook(|_| {}),
        )
        .unwrap();
    c.send_request("r", "ack").unwrap();
    c.send_request("r", "nack").unwrap();
    wait_until(Duration::from_secs(15), "all settled", || {
        let st = c.queue_stats("r").unwrap();
        (st.pending, st.inflight) == (0, 0) && w.stats().handled == 2
    });
    let mut got = seen.lock().unwrap().clone();
    got.sort();
    assert_eq!(
        got,
        vec![
            (b"ack".to_vec(), 0),
            (b"nack".to_vec(), 0),
            (b"nack".to_vec(), 1)
        ]
    );
    assert_eq!(w.stats().failed, 1);
    w.stop(Duration::from_secs(5)).unwrap();
}
