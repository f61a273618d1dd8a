//! One lifecycle for every handle that runs user handlers (worker, RPC server, stream
//! consumer, hash watcher, keyspace watch): stop from inside a handler, stop with a
//! deadline, the "stopped" callback exactly once; and a report of each kind reaching the
//! hook. Against a private redis-server.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::Server;
use redipc::blocking::Client;
use redipc::{
    ConsumerOptions, ErrorKind, Options, Report, ReportKind, ReportSource, WatchOptions,
    WorkerOptions,
};

fn connect(url: &str) -> Client {
    Client::connect(url, Options::default()).unwrap()
}

fn wait_for(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// What every such handle offers.
trait Handle: Send + Sync + 'static {
    fn stop(&self, d: Duration) -> redipc::Result<()>;
    fn on_stopped(&self, f: Box<dyn FnOnce() + Send>);
    fn is_stopped(&self) -> bool;
}

macro_rules! handle {
    ($($t:ty),*) => {$(
        impl Handle for $t {
            fn stop(&self, d: Duration) -> redipc::Result<()> {
                <$t>::stop(self, d)
            }
            fn on_stopped(&self, f: Box<dyn FnOnce() + Send>) {
                <$t>::on_stopped(self, f)
            }
            fn is_stopped(&self) -> bool {
                <$t>::is_stopped(self)
            }
        }
    )*};
}
handle!(
    redipc::Worker,
    redipc::RpcServer,
    redipc::StreamConsumer,
    redipc::HashWatcher,
    redipc::KeyspaceWatch
);

/// What a `stop` from inside a handler returned, and how long it took.
type Outcome = (redipc::Result<()>, Duration);

/// Called from inside the handle's handler.
type Inside = Arc<dyn Fn() + Send + Sync>;

/// Start one kind of handle whose handler calls `inside`; returns the handle and a way to
/// make its handler run once.
type Start = fn(&Client, Inside) -> (Box<dyn Handle>, Box<dyn Fn()>);

fn worker(c: &Client, inside: Inside) -> (Box<dyn Handle>, Box<dyn Fn()>) {
    let w = c
        .handle_requests(
            &["lc-q"],
            move |_| {
                inside();
                Ok(())
            },
            WorkerOptions::default(),
        )
        .unwrap();
    let c2 = c.clone();
    (
        Box::new(w),
        Box::new(move || c2.send_request("lc-q", "x").unwrap()),
    )
}

fn rpc_server(c: &Client, inside: Inside) -> (Box<dyn Handle>, Box<dyn Fn()>) {
    let s = c
        .serve(
            "lc-svc",
            move |_| {
                inside();
                Ok(b"ok".to_vec())
            },
            1,
        )
        .unwrap();
    let c2 = c.clone();
    (
        Box::new(s),
        Box::new(move || {
            let c3 = c2.clone();
            // The call waits for the reply; the handler may be held: call on a thread.
            std::thread::spawn(move || {
                let _ = c3.call("lc-svc", "x", Duration::from_secs(20));
            });
        }),
    )
}

fn stream_consumer(c: &Client, inside: Inside) -> (Box<dyn Handle>, Box<dyn Fn()>) {
    c.stream_group_create("lc-s", "g", "$").unwrap();
    let k = c
        .stream_consume(
            "lc-s",
            "g",
            "me",
            move |_| {
                inside();
                Ok(())
            },
            ConsumerOptions::default(),
        )
        .unwrap();
    let c2 = c.clone();
    (
        Box::new(k),
        Box::new(move || {
            c2.stream_publish("lc-s", &[("f", "v")], None).unwrap();
        }),
    )
}

fn hash_watcher(c: &Client, inside: Inside) -> (Box<dyn Handle>, Box<dyn Fn()>) {
    let w = c
        .hash_watch(
            "lc-h",
            WatchOptions::new()
                .initial_sync(false)
                .on_any(move |_, _| inside()),
        )
        .unwrap();
    let c2 = c.clone();
    let n = AtomicUsize::new(0);
    (
        Box::new(w),
        Box::new(move || {
            let v = n.fetch_add(1, Ordering::SeqCst).to_string();
            c2.hash_set("lc-h", "f", v).unwrap();
        }),
    )
}

fn keyspace_watch(c: &Client, inside: Inside) -> (Box<dyn Handle>, Box<dyn Fn()>) {
    let w = c
        .watch_keys("lc-k:*", &["set"], true, move |_, _| inside())
        .unwrap();
    let c2 = c.clone();
    (
        Box::new(w),
        Box::new(move || c2.set("lc-k:1", "v").unwrap()),
    )
}

const KINDS: [(&str, Start); 5] = [
    ("worker", worker),
    ("rpc server", rpc_server),
    ("stream consumer", stream_consumer),
    ("hash watcher", hash_watcher),
    ("keyspace watch", keyspace_watch),
];

#[test]
fn stop_from_inside_a_handler_returns_ok_at_once_and_the_handle_stops() {
    let server = Server::start();
    let c = connect(&server.unix_url());
    for (name, start) in KINDS {
        let slot: Arc<OnceLock<Box<dyn Handle>>> = Arc::default();
        let result: Arc<Mutex<Option<Outcome>>> = Arc::default();
        let (s, r) = (slot.clone(), result.clone());
        let inside: Inside = Arc::new(move || {
            let Some(h) = s.get() else { return };
            let t = Instant::now();
            let got = h.stop(Duration::from_secs(5));
            r.lock().unwrap().get_or_insert((got, t.elapsed()));
        });
        let (h, trigger) = start(&c, inside);
        let stopped = Arc::new(AtomicUsize::new(0));
        let n = stopped.clone();
        h.on_stopped(Box::new(move || {
            n.fetch_add(1, Ordering::SeqCst);
        }));
        assert!(slot.set(h).is_ok());
        trigger();
        wait_for(&format!("{name}: the handler's stop"), || {
            result.lock().unwrap().is_some()
        });
        let (got, took) = result.lock().unwrap().take().unwrap();
        assert!(got.is_ok(), "{name}: {got:?}");
        assert!(took < Duration::from_secs(1), "{name}: took {took:?}");
        let h = slot.get().unwrap();
        wait_for(&format!("{name}: stopped"), || h.is_stopped());
        assert_eq!(stopped.load(Ordering::SeqCst), 1, "{name}");
        // Stopping again is fine and changes nothing.
        h.stop(Duration::from_secs(1)).unwrap();
        assert_eq!(stopped.load(Ordering::SeqCst), 1, "{name}");
    }
}

#[test]
fn stop_with_a_deadline_times_out_while_a_handler_runs_then_completes() {
    let server = Server::start();
    let c = connect(&server.unix_url());
    for (name, start) in KINDS {
        let entered = Arc::new(AtomicBool::new(false));
        let release = Arc::new(AtomicBool::new(false));
        let (e, rel) = (entered.clone(), release.clone());
        let inside: Inside = Arc::new(move || {
            e.store(true, Ordering::SeqCst);
            while !rel.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        let (h, trigger) = start(&c, inside);
        let stopped = Arc::new(AtomicUsize::new(0));
        let n = stopped.clone();
        h.on_stopped(Box::new(move || {
            n.fetch_add(1, Ordering::SeqCst);
        }));
        trigger();
        wait_for(&format!("{name}: the handler"), || {
            entered.load(Ordering::SeqCst)
        });
        let t = Instant::now();
        let e = h.stop(Duration::from_millis(100)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout, "{name}: {e}");
        assert!(t.elapsed() < Duration::from_secs(2), "{name}");
        assert!(!h.is_stopped(), "{name}");
        assert_eq!(stopped.load(Ordering::SeqCst), 0, "{name}");
        release.store(true, Ordering::SeqCst);
        h.stop(Duration::from_secs(5)).unwrap();
        assert!(h.is_stopped(), "{name}");
        assert_eq!(stopped.load(Ordering::SeqCst), 1, "{name}");
        drop(h);
        assert_eq!(stopped.load(Ordering::SeqCst), 1, "{name}");
    }
}

#[test]
fn dropping_an_idle_handle_stops_it_at_once_and_runs_on_stopped_once() {
    let server = Server::start();
    let c = connect(&server.unix_url());
    for (name, start) in KINDS {
        let (h, _trigger) = start(&c, Arc::new(|| {}));
        let stopped = Arc::new(AtomicUsize::new(0));
        let n = stopped.clone();
        h.on_stopped(Box::new(move || {
            n.fetch_add(1, Ordering::SeqCst);
        }));
        let t = Instant::now();
        drop(h);
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "{name}: {:?}",
            t.elapsed()
        );
        assert_eq!(stopped.load(Ordering::SeqCst), 1, "{name}");
    }
}

fn collect(reports: &Arc<Mutex<Vec<Report>>>) -> impl Fn(&Report) + Send + Sync + 'static {
    let r = reports.clone();
    move |report: &Report| r.lock().unwrap().push(report.clone())
}

fn has(reports: &Arc<Mutex<Vec<Report>>>, f: impl Fn(&Report) -> bool) -> bool {
    reports.lock().unwrap().iter().any(f)
}

#[test]
fn reports_of_every_kind_reach_the_hook_typed() {
    let server = Server::start();
    let reports: Arc<Mutex<Vec<Report>>> = Arc::default();
    // The client's hook gets the reports of handles without a hook of their own.
    let c = Client::connect(
        &server.unix_url(),
        Options::default().error_hook(collect(&reports)),
    )
    .unwrap();

    // HandlerFailed and DeadLettered: a reliable worker whose handler fails twice.
    let w = c
        .handle_requests(
            &["rq"],
            |_| Err("bad request".into()),
            WorkerOptions::default().reliable(true).max_attempts(2),
        )
        .unwrap();
    c.send_request("rq", "x").unwrap();
    wait_for("the dead letter", || {
        has(&reports, |r| r.kind == ReportKind::DeadLettered)
    });
    w.stop(Duration::from_secs(5)).unwrap();
    {
        let r = reports.lock().unwrap();
        let failed = r
            .iter()
            .find(|r| r.kind == ReportKind::HandlerFailed)
            .unwrap();
        assert_eq!(failed.source, ReportSource::Worker);
        assert_eq!(&failed.name[..], b"rq");
        assert_eq!((failed.attempt, failed.max_attempts), (1, 2));
        let e = failed.error.as_ref().unwrap();
        assert_eq!((e.kind(), e.message()), (ErrorKind::Handler, "bad request"));
        assert_eq!(
            failed.to_string(),
            "redipc worker: handler failed on queue rq (attempt 1 of 2): bad request"
        );
        let dead = r
            .iter()
            .find(|r| r.kind == ReportKind::DeadLettered)
            .unwrap();
        assert_eq!((dead.count, dead.attempt), (1, 2));
    }

    // Recovered: the in-flight request of a "dead" consumer (no lease) goes back.
    c.command(&["SADD", "ipc:{q:rec}:consumers", "gone"])
        .unwrap();
    c.command(&["LPUSH", "ipc:{q:rec}:inflight:gone", "lost"])
        .unwrap();
    let handled = Arc::new(AtomicUsize::new(0));
    let h2 = handled.clone();
    let w = c
        .handle_requests(
            &["rec"],
            move |_| {
                h2.fetch_add(1, Ordering::SeqCst);
                Ok(())
            },
            WorkerOptions::default().reliable(true),
        )
        .unwrap();
    wait_for("the recovered request", || {
        handled.load(Ordering::SeqCst) == 1
    });
    assert!(has(&reports, |r| r.kind == ReportKind::Recovered
        && r.count == 1
        && &r.name[..] == b"rec"));

    // ConnectionLost, then ConnectionRestored: the worker's blocking connection is killed.
    let lost_before = reports
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.kind == ReportKind::ConnectionLost)
        .count();
    std::thread::sleep(Duration::from_millis(100));
    server.cmd(&["CLIENT", "KILL", "TYPE", "normal"]);
    wait_for("the lost connection", || {
        reports
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.kind == ReportKind::ConnectionLost)
            .count()
            > lost_before
    });
    wait_for("the restored connection", || {
        has(&reports, |r| r.kind == ReportKind::ConnectionRestored)
    });
    w.stop(Duration::from_secs(5)).unwrap();
    {
        let r = reports.lock().unwrap();
        let lost = r
            .iter()
            .rfind(|r| r.kind == ReportKind::ConnectionLost)
            .unwrap();
        assert_eq!(lost.source, ReportSource::Worker);
        assert!(lost.error.as_ref().unwrap().is_connection(), "{lost}");
    }

    // ReadFailed: the watched hash stops being a hash.
    c.hash_set("rh", "a", "1").unwrap();
    let watcher = c
        .hash_watch("rh", WatchOptions::new().on_any(|_, _| {}))
        .unwrap();
    c.command(&["DEL", "rh"]).unwrap();
    c.command(&["SET", "rh", "not a hash"]).unwrap();
    c.command(&["PUBLISH", "rh", "a"]).unwrap();
    wait_for("the read failure", || {
        has(&reports, |r| {
            r.kind == ReportKind::ReadFailed
                && r.source == ReportSource::HashWatcher
                && r.error.as_ref().and_then(|e| e.code()) == Some("WRONGTYPE")
        })
    });
    watcher.stop(Duration::from_secs(5)).unwrap();

    // A subscription handler's panic names the channel; a handle's own hook wins.
    let own: Arc<Mutex<Vec<Report>>> = Arc::default();
    let sub = c
        .subscribe(
            &["boom"],
            redipc::SubscribeOptions::default()
                .error_hook(collect(&own))
                .handler(|_| panic!("subscriber bug")),
        )
        .unwrap();
    c.publish("boom", "x").unwrap();
    wait_for("the subscription's report", || {
        has(&own, |r| {
            r.kind == ReportKind::HandlerFailed
                && r.source == ReportSource::Subscription
                && &r.name[..] == b"boom"
                && r.error.as_ref().unwrap().message() == "handler panicked: subscriber bug"
        })
    });
    sub.close();
    assert!(!has(&reports, |r| r.source == ReportSource::Subscription));
}

/// Closing the client ends every handle made from it on its own (no `stop()` needed), and
/// each runs its `on_stopped` once: a C `userdata_free` or a Python release is not lost.
#[test]
fn closing_the_client_stops_its_handles_and_runs_on_stopped_once() {
    let server = Server::start();
    for (name, start) in KINDS {
        let c = connect(&server.unix_url());
        let (h, _trigger) = start(&c, Arc::new(|| {}));
        let stopped = Arc::new(AtomicUsize::new(0));
        let n = stopped.clone();
        h.on_stopped(Box::new(move || {
            n.fetch_add(1, Ordering::SeqCst);
        }));
        c.close();
        wait_for(&format!("{name}: stopped after the client closed"), || {
            h.is_stopped()
        });
        assert_eq!(stopped.load(Ordering::SeqCst), 1, "{name}");
        let t = Instant::now();
        h.stop(Duration::from_secs(5)).unwrap();
        drop(h);
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "{name}: {:?}",
            t.elapsed()
        );
        assert_eq!(stopped.load(Ordering::SeqCst), 1, "{name}");
    }
}

#[test]
fn the_closed_future_completes_when_the_client_is_closed() {
    // What Python's asyncio ends its own waits on a client's handles with.
    let server = Server::start();
    let c = connect(&server.unix_url());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let closed = c.as_async().closed();
    // The timers are made inside the runtime (async blocks).
    let early =
        rt.block_on(async { tokio::time::timeout(Duration::from_millis(50), closed).await });
    assert!(early.is_err(), "still open");
    let closed = c.as_async().closed();
    let closer = c.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        closer.close();
    });
    rt.block_on(async { tokio::time::timeout(Duration::from_secs(5), closed).await })
        .expect("completes on close");
    t.join().unwrap();
    let again = c.as_async().closed();
    rt.block_on(async { tokio::time::timeout(Duration::from_secs(1), again).await })
        .expect("at once once closed");
}

#[test]
fn closing_ends_the_blocking_waits_of_other_threads_at_once() {
    // An RPC call waiting for its reply, a lock wait and a cache wait: each returns a
    // Closed error when another thread closes the client, not at its own timeout.
    let server = Server::start();
    let holder = connect(&server.unix_url());
    let _held = holder
        .lock(
            "lifecycle:close-lock",
            redipc::LockOptions::default().ttl(Duration::from_secs(10)),
        )
        .unwrap();
    type Wait = fn(&Client) -> redipc::Result<()>;
    let waits: [(&str, Wait); 3] = [
        ("rpc call", |c| {
            c.call_with(
                "lifecycle:nobody",
                "",
                "x",
                redipc::CallOptions::default()
                    .timeout(Duration::from_secs(5))
                    .fail_fast(false),
            )
            .map(|_| ())
        }),
        ("lock wait", |c| {
            c.lock(
                "lifecycle:close-lock",
                redipc::LockOptions::default()
                    .ttl(Duration::from_secs(10))
                    .wait(Duration::from_secs(5)),
            )
            .map(|_| ())
        }),
        ("cache wait", |c| {
            c.cache_wait("lifecycle:absent", Duration::from_secs(5))
                .map(|_| ())
        }),
    ];
    for (name, wait) in waits {
        let c = connect(&server.unix_url());
        let waiter = c.clone();
        let t = std::thread::spawn(move || {
            let start = Instant::now();
            (wait(&waiter), start.elapsed())
        });
        std::thread::sleep(Duration::from_millis(200));
        c.close();
        let (got, took) = t.join().unwrap();
        let e = got.expect_err(name);
        assert_eq!(e.kind(), ErrorKind::Closed, "{name}: {e}");
        assert!(took < Duration::from_secs(2), "{name}: took {took:?}");
    }
}
