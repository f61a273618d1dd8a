//! Coordination primitives against a private redis-server: the script helper, the rate
//! limiter, the semaphore with leases, delayed requests and the service registry, across
//! threads and processes (children are this test binary run again: `child_*` tests).

mod common;

use std::collections::HashSet;
use std::process::Child;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use common::{Server, spawn_child};
use redipc::{CallOptions, ErrorKind, Options, Reply, Script, WorkerOptions, blocking};

fn connect(url: &str) -> blocking::Client {
    blocking::Client::connect(url, Options::default()).expect("connect")
}

fn int(v: redis::Value) -> i64 {
    match v {
        redis::Value::Int(n) => n,
        redis::Value::BulkString(b) => String::from_utf8(b).unwrap().parse().unwrap(),
        redis::Value::Nil => 0,
        other => panic!("not a number: {other:?}"),
    }
}

fn commandstat(server: &Server, cmd: &str) -> i64 {
    let redis::Value::BulkString(info) = server.cmd(&["INFO", "commandstats"]) else {
        panic!("INFO");
    };
    let info = String::from_utf8(info).unwrap();
    let prefix = format!("cmdstat_{cmd}:calls=");
    info.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|rest| rest.split(',').next().unwrap().parse().unwrap())
        .unwrap_or(0)
}

/// Record "now" (server time, µs) in the list `key`.
static STAMP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "local t = redis.call('TIME') \
         return redis.call('RPUSH', KEYS[1], t[1] * 1000000 + t[2])",
    )
});

/// INCR the holders counter and keep its maximum.
static ENTER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "local n = redis.call('INCR', KEYS[1]) \
         if n > tonumber(redis.call('GET', KEYS[2]) or '0') then redis.call('SET', KEYS[2], n) end \
         return n",
    )
});

// ---------------------------------------------------------------------------------------
// Script helper

#[test]
fn scripts_run_by_sha_and_a_script_flush_is_invisible() {
    let server = Server::start();
    let c = connect(&server.unix_url());
    let s = Script::new("return {KEYS[1], ARGV[1], redis.call('INCR', KEYS[1])}");
    assert_eq!(s.sha().len(), 40);
    let r = c.run_script(&s, &["k"], &["a"]).unwrap();
    assert_eq!(
        r,
        Reply::Array(vec![
            Reply::Bulk(b"k".to_vec()),
            Reply::Bulk(b"a".to_vec()),
            Reply::Int(1)
        ])
    );
    // The first call sent the source, the next ones only the SHA.
    assert_eq!(commandstat(&server, "eval"), 1);
    c.run_script(&s, &["k"], &["a"]).unwrap();
    assert_eq!(commandstat(&server, "evalsha"), 1);
    // The server forgets every script: the caller does not notice.
    server.cmd(&["SCRIPT", "FLUSH"]);
    let r = c.run_script(&s, &["k"], &["a"]).unwrap();
    assert_eq!(r.as_slice().unwrap()[2], Reply::Int(3));
    assert_eq!(commandstat(&server, "evalsha"), 2, "tried by SHA once");
    assert_eq!(commandstat(&server, "eval"), 2, "then sent once as EVAL");
    // A script's own error is a server error, and the client goes on.
    let bad = Script::new("return redis.call('INCR', KEYS[1])");
    c.set("text", "x").unwrap();
    let e = c.run_script(&bad, &["text"], &[] as &[&str]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Server);
    let broken = Script::new("this is not lua");
    let e = c
        .run_script(&broken, &[] as &[&str], &[] as &[&str])
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Server);
    assert!(e.to_string().contains("compiling"), "{e}");
}

#[test]
fn scripts_in_pipelines_and_transactions_survive_a_script_flush() {
    let server = Server::start();
    let c = connect(&server.tcp_url());
    let s = Script::new("return redis.call('INCRBY', KEYS[1], ARGV[1])");
    c.run_script(&s, &["n"], &["1"]).unwrap();
    server.cmd(&["SCRIPT", "FLUSH"]);
    // The pipeline sends it by SHA; the server forgot it: resent, replies in their slots.
    let mut p = c.pipeline();
    p.add_script(&s, &["n"], &["10"]).unwrap();
    p.add(&["GET", "n"]).unwrap();
    p.add_script(&s, &["n"], &["100"]).unwrap();
    let r = p.exec().unwrap();
    assert_eq!(r[0], Reply::Int(11));
    assert_eq!(r[2], Reply::Int(111));
    assert_eq!(c.get("n").unwrap().unwrap(), b"111");
    // A transaction carries the source: atomic whatever the server remembers.
    server.cmd(&["SCRIPT", "FLUSH"]);
    let mut t = c.tx();
    t.add_script(&s, &["n"], &["1"]).unwrap();
    t.add(&["GET", "n"]).unwrap();
    let r = t.exec().unwrap();
    assert_eq!(r[0], Reply::Int(112));
    assert_eq!(r[1], Reply::Bulk(b"112".to_vec()));
}

#[test]
fn the_librarys_own_scripts_survive_a_script_flush() {
    let server = Server::start();
    let c = connect(&server.unix_url());
    let g = c
        .lock("l", redipc::LockOptions::default().wait(Duration::ZERO))
        .unwrap();
    server.cmd(&["SCRIPT", "FLUSH"]);
    assert!(g.extend(Duration::from_secs(5)).unwrap());
    assert!(g.release().unwrap());
    c.cache_set("k", "v", None).unwrap();
    server.cmd(&["SCRIPT", "FLUSH"]);
    c.cache_set("k", "w", None).unwrap();
    assert_eq!(c.cache_get("k").unwrap().unwrap(), b"w");
}

// ---------------------------------------------------------------------------------------
// Rate limiter

#[test]
fn rate_limiter_refuses_with_the_exact_wait_and_acquire_wait_sleeps_it() {
    let server = Server::start();
    let c = connect(&server.unix_url());
    let rl = c
        .rate_limiter("api", 10.0, Duration::from_secs(1), Some(2))
        .unwrap();
    assert_eq!(rl.acquire(1).unwrap(), None);
    assert_eq!(rl.acquire(1).unwrap(), None, "burst of 2");
    let wait = rl.acquire(1).unwrap().expect("refused");
    assert!(
        wait > Duration::from_millis(50) && wait <= Duration::from_millis(100),
        "{wait:?}"
    );
    // acquire_wait sleeps about the retry-after, no more.
    let t = Instant::now();
    assert!(rl.acquire_wait(1, Some(Duration::from_secs(2))).unwrap());
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(40) && took < Duration::from_millis(250),
        "{took:?}"
    );
    // A timeout shorter than the wait: false at once, without sleeping in vain.
    let t = Instant::now();
    assert!(!rl.acquire_wait(2, Some(Duration::from_millis(20))).unwrap());
    assert!(t.elapsed() < Duration::from_millis(15), "{:?}", t.elapsed());
    // Bad arguments.
    assert!(rl.acquire(0).unwrap_err().is_invalid_argument());
    assert!(
        rl.acquire(3).unwrap_err().is_invalid_argument(),
        "more than the burst"
    );
    for bad in [
        c.rate_limiter("", 1.0, Duration::from_secs(1), None).err(),
        c.rate_limiter("x", 0.0, Duration::from_secs(1), None).err(),
        c.rate_limiter("x", f64::NAN, Duration::from_secs(1), None)
            .err(),
        c.rate_limiter("x", 1.0, Duration::ZERO, None).err(),
        c.rate_limiter("x", 1.0, Duration::from_secs(1), Some(0))
            .err(),
        c.rate_limiter("{x}", 1.0, Duration::from_secs(1), None)
            .err(),
    ] {
        assert!(bad.expect("refused").is_invalid_argument());
    }
}

#[test]
fn a_rate_limiter_shared_by_three_processes_never_exceeds_rate_plus_burst() {
    let server = Server::start();
    let c = connect(&server.tcp_url());
    let mut children: Vec<Child> = (0..3)
        .map(|_| {
            spawn_child(
                "child_rate_user",
                "REDIPC_RATE_URL",
                &server.tcp_url(),
                false,
            )
        })
        .collect();
    for ch in &mut children {
        assert!(ch.wait().unwrap().success());
    }
    let redis::Value::Array(stamps) = server.cmd(&["LRANGE", "allowed", "0", "-1"]) else {
        panic!("LRANGE");
    };
    let mut t: Vec<i64> = stamps.into_iter().map(int).collect();
    t.sort();
    // 20/s with a burst of 5: at most 5 + 20 * 2 = 45 in any 2 s window (one more for
    // the moment the stamp is taken just after the limiter's decision).
    let mut most = 0;
    for (i, start) in t.iter().enumerate() {
        let n = t[i..]
            .iter()
            .take_while(|s| **s < start + 2_000_000)
            .count();
        most = most.max(n);
    }
    eprintln!(
        "{} allowed in {} ms, at most {most} in 2 s",
        t.len(),
        (t[t.len() - 1] - t[0]) / 1000
    );
    assert!(most <= 46, "{most} allowed in a 2 s window");
    // And the limiter is not too strict: acquire_wait kept the rate close to 20/s.
    assert!(most >= 38, "only {most} in 2 s");
    drop(c);
}

#[test]
fn child_rate_user() {
    let Ok(url) = std::env::var("REDIPC_RATE_URL") else {
        return;
    };
    let c = connect(&url);
    let rl = c
        .rate_limiter("shared", 20.0, Duration::from_secs(1), Some(5))
        .unwrap();
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(2500) {
        if rl.acquire_wait(1, Some(Duration::from_secs(1))).unwrap() {
            c.run_script(&STAMP, &["allowed"], &[] as &[&str]).unwrap();
        }
    }
}

// ---------------------------------------------------------------------------------------
// Semaphore

#[test]
fn semaphore_holders_never_exceed_the_permits_across_8_threads_in_2_processes() {
    let server = Server::start();
    let mut child = spawn_child("child_sem_user", "REDIPC_SEM_URL", &server.tcp_url(), false);
    sem_users(&server.tcp_url());
    assert!(child.wait().unwrap().success());
    let max = int(server.cmd(&["GET", "max"]));
    let total = int(server.cmd(&["GET", "total"]));
    eprintln!("{total} acquisitions, at most {max} holders");
    assert!(max <= 3, "{max} holders of 3 permits");
    assert_eq!(max, 3, "the permits were all in use at some point");
    assert_eq!(int(server.cmd(&["GET", "holders"])), 0);
    let c = connect(&server.tcp_url());
    let sem = c.semaphore("pool", 3, Duration::from_secs(5)).unwrap();
    assert_eq!(sem.held().unwrap(), 0);
}

/// 4 threads taking and giving back permits of "pool" (3 permits) for 2 s, each counted in
/// `holders` while held; every thread must get permits.
fn sem_users(url: &str) {
    let c = connect(url);
    let sem = c.semaphore("pool", 3, Duration::from_secs(5)).unwrap();
    std::thread::scope(|s| {
        for _ in 0..4 {
            let (c, sem) = (&c, &sem);
            s.spawn(move || {
                let t = Instant::now();
                let mut got = 0;
                while t.elapsed() < Duration::from_secs(2) {
                    let p = sem.acquire(Some(Duration::from_secs(10))).unwrap();
                    c.run_script(&ENTER, &["holders", "max"], &[] as &[&str])
                        .unwrap();
                    std::thread::sleep(Duration::from_millis(5));
                    c.command(&["DECR", "holders"]).unwrap();
                    assert!(p.release().unwrap());
                    c.command(&["INCR", "total"]).unwrap();
                    got += 1;
                }
                assert!(got > 0, "a thread never got a permit");
            });
        }
    });
}

#[test]
fn child_sem_user() {
    let Ok(url) = std::env::var("REDIPC_SEM_URL") else {
        return;
    };
    sem_users(&url);
}

#[test]
fn a_killed_holders_permit_comes_back_after_its_lease() {
    let server = Server::start();
    let c = connect(&server.tcp_url());
    let mut child = spawn_child(
        "child_sem_holder",
        "REDIPC_HOLDER_URL",
        &server.tcp_url(),
        false,
    );
    let t = Instant::now();
    while int(server.cmd(&["EXISTS", "holding"])) == 0 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the child never held it"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let sem = c.semaphore("one", 1, Duration::from_secs(5)).unwrap();
    let e = sem.acquire(Some(Duration::ZERO)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    child.kill().unwrap();
    child.wait().unwrap();
    // The holder's lease was 1 s: the waiter gets it when that ends, woken by the expiry.
    let t = Instant::now();
    let p = sem.acquire(Some(Duration::from_secs(5))).unwrap();
    let took = t.elapsed();
    assert!(took < Duration::from_millis(1500), "{took:?}");
    assert_eq!(p.id().len(), 32);
    // extend and release; a released permit is no longer held.
    assert!(p.extend(Duration::from_secs(2)).unwrap());
    assert!(p.release().unwrap());
    assert_eq!(sem.held().unwrap(), 0);
    // A permit whose lease ran out is no longer ours.
    let short = c.semaphore("one", 1, Duration::from_millis(100)).unwrap();
    let p = short.acquire(Some(Duration::ZERO)).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(!p.extend(Duration::from_secs(1)).unwrap());
    assert!(!p.release().unwrap());
    // Bad arguments.
    assert!(
        c.semaphore("x", 0, Duration::from_secs(1))
            .unwrap_err()
            .is_invalid_argument()
    );
    assert!(
        c.semaphore("x", 1, Duration::ZERO)
            .unwrap_err()
            .is_invalid_argument()
    );
    assert!(
        c.semaphore("", 1, Duration::from_secs(1))
            .unwrap_err()
            .is_invalid_argument()
    );
}

#[test]
fn child_sem_holder() {
    let Ok(url) = std::env::var("REDIPC_HOLDER_URL") else {
        return;
    };
    let c = connect(&url);
    let sem = c.semaphore("one", 1, Duration::from_secs(1)).unwrap();
    let p = sem.acquire(Some(Duration::from_secs(5))).unwrap();
    c.set("holding", p.id()).unwrap();
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn no_waiter_starves_under_steady_contention() {
    let server = Server::start();
    let c = connect(&server.unix_url());
    let sem = c.semaphore("fair", 1, Duration::from_secs(5)).unwrap();
    let counts: Vec<AtomicU64> = (0..6).map(|_| AtomicU64::new(0)).collect();
    let worst = Mutex::new(Duration::ZERO);
    std::thread::scope(|s| {
        for i in 0..6 {
            let (sem, counts, worst) = (&sem, &counts, &worst);
            s.spawn(move || {
                let t = Instant::now();
                while t.elapsed() < Duration::from_secs(3) {
                    let w = Instant::now();
                    let p = sem.acquire(Some(Duration::from_secs(10))).unwrap();
                    let waited = w.elapsed();
                    let mut m = worst.lock().unwrap();
                    *m = (*m).max(waited);
                    drop(m);
                    std::thread::sleep(Duration::from_millis(10));
                    p.release().unwrap();
                    counts[i].fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    let n: Vec<u64> = counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    let worst = *worst.lock().unwrap();
    eprintln!("acquisitions per thread {n:?}, longest wait {worst:?}");
    let mean = n.iter().sum::<u64>() / 6;
    for k in &n {
        assert!(
            *k * 2 >= mean,
            "a waiter got far less than its share: {n:?}"
        );
    }
    // First come, first served: nobody waits for much more than everyone else's turn.
    assert!(worst < Duration::from_millis(1500), "{worst:?}");
}

// ---------------------------------------------------------------------------------------
// Delayed requests

#[test]
fn delayed_requests_arrive_when_due_not_before_and_not_much_later() {
    let server = Server::start();
    let c = connect(&server.unix_url());
    // Sent before any worker runs: they wait in the delayed set.
    c.send_request_delayed("jobs", "early", Duration::from_millis(200))
        .unwrap();
    assert_eq!(c.queue_stats("jobs").unwrap().delayed, 1);
    let sent = Instant::now();
    let arrived: Arc<Mutex<Vec<(String, Duration)>>> = Arc::default();
    let a = arrived.clone();
    let w = c
        .handle_requests(
            &["jobs"],
            move |r| {
                a.lock()
                    .unwrap()
                    .push((String::from_utf8_lossy(&r.payload).into(), sent.elapsed()));
                Ok(())
            },
            WorkerOptions::default(),
        )
        .unwrap();
    // The worker is idle in a 1 s blocking pop: each send wakes it.
    std::thread::sleep(Duration::from_millis(300));
    let sends = [("d450", 450u64), ("d150", 150), ("d0", 0), ("d700", 700)];
    let base = Instant::now();
    let offset = base - sent;
    for (p, ms) in sends {
        c.send_request_delayed("jobs", p, Duration::from_millis(ms))
            .unwrap();
    }
    let t = Instant::now();
    while arrived.lock().unwrap().len() < 5 {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "{:?}",
            arrived.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let got = arrived.lock().unwrap().clone();
    eprintln!("{got:?}");
    assert_eq!(got[0].0, "early");
    for (p, ms) in sends {
        let at = got.iter().find(|(g, _)| g == p).unwrap().1 - offset;
        let due = Duration::from_millis(ms);
        assert!(
            at + Duration::from_millis(5) >= due,
            "{p} came {at:?}, due {due:?}"
        );
        assert!(
            at <= due + Duration::from_millis(100),
            "{p} came {at:?}, due {due:?}"
        );
    }
    let order: Vec<&str> = got.iter().skip(1).map(|(p, _)| p.as_str()).collect();
    assert_eq!(order, ["d0", "d150", "d450", "d700"]);
    assert_eq!(c.queue_stats("jobs").unwrap().delayed, 0);
    w.stop(Duration::from_secs(5)).unwrap();
    // At a wall-clock time.
    let at = std::time::SystemTime::now() + Duration::from_secs(60);
    c.send_request_at("jobs", "later", at).unwrap();
    assert_eq!(c.queue_stats("jobs").unwrap().delayed, 1);
    assert!(
        c.send_request_delayed("", "x", Duration::ZERO)
            .unwrap_err()
            .is_invalid_argument()
    );
}

#[test]
fn delayed_requests_are_not_lost_when_workers_are_killed_as_they_come_due() {
    let server = Server::start();
    let c = connect(&server.tcp_url());
    for i in 0..300 {
        c.send_request_delayed("later", i.to_string(), Duration::from_millis(300 + i))
            .unwrap();
    }
    let spawn = || {
        spawn_child(
            "child_delayed_worker",
            "REDIPC_DELAYED_URL",
            &server.tcp_url(),
            false,
        )
    };
    let mut children: Vec<Child> = (0..2).map(|_| spawn()).collect();
    let t = Instant::now();
    let mut kills = 0;
    while t.elapsed() < Duration::from_millis(1500) {
        std::thread::sleep(Duration::from_millis(120));
        let victim = kills % children.len();
        children[victim].kill().unwrap();
        children[victim].wait().unwrap();
        children[victim] = spawn();
        kills += 1;
    }
    let done = || int(server.cmd(&["SCARD", "delayed-done"]));
    let deadline = Instant::now() + Duration::from_secs(20);
    while done() < 300 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    for mut ch in children {
        let _ = ch.kill();
        let _ = ch.wait();
    }
    eprintln!("{kills} kills");
    assert_eq!(done(), 300, "lost delayed requests");
    let stats = c.queue_stats("later").unwrap();
    assert_eq!(stats.delayed, 0);
}

#[test]
fn child_delayed_worker() {
    let Ok(url) = std::env::var("REDIPC_DELAYED_URL") else {
        return;
    };
    let c = connect(&url);
    let c2 = c.clone();
    let _w = c
        .handle_requests(
            &["later"],
            move |req| {
                std::thread::sleep(Duration::from_millis(1));
                c2.command(&[b"SADD".as_slice(), b"delayed-done", &req.payload])
                    .map_err(|e| e.to_string())?;
                Ok(())
            },
            WorkerOptions::default()
                .reliable(true)
                .lease(Duration::from_millis(500)),
        )
        .unwrap();
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

// ---------------------------------------------------------------------------------------
// Service registry

#[test]
fn the_registry_lists_live_servers_with_their_metadata_and_forgets_dead_ones() {
    let server = Server::start();
    let c = connect(&server.unix_url());
    assert!(c.services().unwrap().is_empty());
    let s = c
        .serve_with(
            "echo",
            |call| Ok(call.payload.to_vec()),
            WorkerOptions::default()
                .version("1.2.3")
                .metadata("zone", "lab"),
        )
        .unwrap();
    let mut child = spawn_child(
        "child_registered_server",
        "REDIPC_REG_URL",
        &server.tcp_url(),
        false,
    );
    let t = Instant::now();
    while c.instances("echo").unwrap().len() < 2 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the child never registered"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        c.services().unwrap(),
        vec![bytes::Bytes::from_static(b"echo")]
    );
    let list = c.instances("echo").unwrap();
    let me = list.iter().find(|i| i.version == "1.2.3").expect("ours");
    assert_eq!(me.pid, std::process::id());
    assert_eq!(&me.service[..], b"echo");
    assert_eq!(me.metadata, vec![("zone".to_string(), "lab".to_string())]);
    assert!(!me.host.is_empty());
    assert!(me.expires_in > Duration::ZERO && me.expires_in <= Duration::from_secs(3));
    let other = list
        .iter()
        .find(|i| i.version == "child")
        .expect("the child");
    assert_eq!(other.pid, child.id());
    // Our server stops: it leaves at once; the child is killed: gone within its TTL.
    s.stop(Duration::from_secs(5)).unwrap();
    assert_eq!(c.instances("echo").unwrap().len(), 1);
    child.kill().unwrap();
    child.wait().unwrap();
    let t = Instant::now();
    while !c.instances("echo").unwrap().is_empty() {
        assert!(
            t.elapsed() < Duration::from_millis(3500),
            "still listed after its TTL"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("a killed server left the registry after {:?}", t.elapsed());
    assert!(c.services().unwrap().is_empty());
    // And a call fails fast.
    let e = c
        .call_with("echo", "", "x", CallOptions::default().fail_fast(true))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoServer);
    assert!(c.instances("").unwrap_err().is_invalid_argument());
}

#[test]
fn child_registered_server() {
    let Ok(url) = std::env::var("REDIPC_REG_URL") else {
        return;
    };
    let c = connect(&url);
    let _s = c
        .serve_with(
            "echo",
            |call| Ok(call.payload.to_vec()),
            WorkerOptions::default().version("child"),
        )
        .unwrap();
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn async_waits_can_be_cancelled_and_leave_the_queue() {
    let server = Server::start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = redipc::Client::connect(&server.unix_url(), Options::default())
            .await
            .unwrap();
        let sem = c.semaphore("s", 1, Duration::from_secs(5)).unwrap();
        let held = sem.acquire(None).await.unwrap();
        // A waiter given up on (its future dropped) leaves the queue: the next one is not
        // stuck behind it.
        let r = tokio::time::timeout(Duration::from_millis(100), sem.acquire(None)).await;
        assert!(r.is_err());
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(held);
        let t = Instant::now();
        let p = sem.acquire(Some(Duration::from_secs(3))).await.unwrap();
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "{:?}",
            t.elapsed()
        );
        p.release().await.unwrap();
    });
    let keys: HashSet<String> = match server.cmd(&["KEYS", "*"]) {
        redis::Value::Array(v) => v
            .into_iter()
            .map(|k| match k {
                redis::Value::BulkString(b) => String::from_utf8(b).unwrap(),
                other => panic!("{other:?}"),
            })
            .collect(),
        other => panic!("{other:?}"),
    };
    // Only keys that expire on their own are left.
    for k in keys {
        assert!(int(server.cmd(&["PTTL", &k])) > 0, "{k} never expires");
    }
}

#[test]
fn checked_waits_end_when_the_check_says_so_and_the_waiter_leaves() {
    let server = Server::start();
    let c = connect(&server.unix_url());
    let sem = c.semaphore("checked", 1, Duration::from_secs(30)).unwrap();
    let held = sem.acquire(Some(Duration::ZERO)).unwrap();
    let mut checks = 0;
    let t = Instant::now();
    let e = sem
        .acquire_checked(None, Duration::from_millis(20), || {
            checks += 1;
            match checks {
                5 => Err(redipc::Error::aborted("interrupted")),
                _ => Ok(()),
            }
        })
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Aborted);
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    // The interrupted waiter left the queue: the permit is free at once after release.
    assert!(held.release().unwrap());
    sem.acquire(Some(Duration::ZERO))
        .unwrap()
        .release()
        .unwrap();
    let rl = c
        .rate_limiter("checked", 1.0, Duration::from_secs(60), None)
        .unwrap();
    assert_eq!(rl.acquire(1).unwrap(), None);
    let e = rl
        .acquire_wait_checked(1, None, Duration::from_millis(20), || {
            Err(redipc::Error::aborted("interrupted"))
        })
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Aborted);
}
