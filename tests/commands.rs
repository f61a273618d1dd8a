//! Direct commands and typed helpers against a private redis-server, over TCP and the unix
//! socket, from the blocking and the async client.

mod common;

use std::time::{Duration, Instant};

use common::Server;
use redipc::{ErrorKind, Options, Reply, SetOptions, blocking};

fn connect(url: &str) -> blocking::Client {
    blocking::Client::connect(url, Options::default()).expect("connect")
}

#[test]
fn typed_helpers_over_tcp_and_unix() {
    let server = Server::start();
    for url in server.urls() {
        let c = connect(&url);
        c.command(&["FLUSHALL"]).unwrap();
        c.ping().unwrap();

        assert_eq!(c.get("missing").unwrap(), None);
        c.set("k", "v").unwrap();
        assert_eq!(c.get("k").unwrap().as_deref(), Some(&b"v"[..]));
        assert!(
            !c.set_with("k", "other", SetOptions::default().nx())
                .unwrap()
        );
        assert!(
            c.set_with("k", "other", SetOptions::default().xx())
                .unwrap()
        );
        assert!(!c.set_with("nope", "x", SetOptions::default().xx()).unwrap());
        assert!(
            c.set_with(
                "ttl",
                "x",
                SetOptions::default().ttl(Duration::from_millis(50))
            )
            .unwrap()
        );
        let pttl = c.command(&["PTTL", "ttl"]).unwrap().as_int().unwrap();
        assert!(pttl > 0 && pttl <= 50, "{pttl}");
        std::thread::sleep(Duration::from_millis(120));
        assert_eq!(c.get("ttl").unwrap(), None);

        assert_eq!(c.exists(&["k", "missing"]).unwrap(), 1);
        assert!(c.expire("k", Duration::from_secs(100)).unwrap());
        assert!(!c.expire("missing", Duration::from_secs(100)).unwrap());
        assert_eq!(c.del(&["k", "missing"]).unwrap(), 1);

        assert_eq!(c.incr("n").unwrap(), 1);
        assert_eq!(c.incr_by("n", 41).unwrap(), 42);
        assert_eq!(c.decr("n").unwrap(), 41);

        assert_eq!(c.hset("h", &[("a", "1"), ("b", "2")]).unwrap(), 2);
        assert_eq!(c.hset("h", &[("a", "3")]).unwrap(), 0);
        assert_eq!(c.hget("h", "a").unwrap().as_deref(), Some(&b"3"[..]));
        assert_eq!(c.hget("h", "zz").unwrap(), None);
        let mut all = c.hgetall("h").unwrap();
        all.sort();
        assert_eq!(
            all,
            vec![
                (b"a".to_vec(), b"3".to_vec()),
                (b"b".to_vec(), b"2".to_vec())
            ]
        );
        assert_eq!(c.hgetall("missing").unwrap(), vec![]);
        assert_eq!(c.hdel("h", &["a", "zz"]).unwrap(), 1);

        assert_eq!(c.lpush("l", &["b", "a"]).unwrap(), 2);
        assert_eq!(c.rpush("l", &["c"]).unwrap(), 3);
        assert_eq!(c.llen("l").unwrap(), 3);
        assert_eq!(c.lpop("l").unwrap().as_deref(), Some(&b"a"[..]));
        assert_eq!(c.rpop("l").unwrap().as_deref(), Some(&b"c"[..]));
        assert_eq!(c.rpop("l").unwrap().as_deref(), Some(&b"b"[..]));
        assert_eq!(c.lpop("l").unwrap(), None);

        assert_eq!(c.publish("nobody", "hi").unwrap(), 0);

        // Binary-safe keys and values.
        let bin: Vec<u8> = (0..=255u8).collect();
        c.set(&bin, &bin).unwrap();
        assert_eq!(c.get(&bin).unwrap(), Some(bin.clone()));
    }
}

#[test]
fn resp3_reply_types_round_trip() {
    let server = Server::start();
    let c = connect(&server.tcp_url());
    c.hset("h", &[("f", "v")]).unwrap();
    match c.command(&["HGETALL", "h"]).unwrap() {
        Reply::Map(pairs) => assert_eq!(
            pairs,
            vec![(Reply::Bulk(b"f".to_vec()), Reply::Bulk(b"v".to_vec()))]
        ),
        other => panic!("HGETALL should be a map in RESP3: {other:?}"),
    }
    c.command(&["ZADD", "z", "1.5", "m"]).unwrap();
    assert_eq!(
        c.command(&["ZSCORE", "z", "m"]).unwrap(),
        Reply::Double(1.5)
    );
    c.command(&["SADD", "s", "x"]).unwrap();
    assert_eq!(
        c.command(&["SMEMBERS", "s"]).unwrap(),
        Reply::Set(vec![Reply::Bulk(b"x".to_vec())])
    );
    assert_eq!(
        c.command(&["SET", "a", "1"]).unwrap(),
        Reply::Status("OK".into())
    );
    assert_eq!(c.command(&["GET", "nothing"]).unwrap(), Reply::Nil);
    // A verbatim string (LOLWUT answers one in RESP3).
    assert!(matches!(
        c.command(&["LOLWUT", "VERSION", "5", "1", "1", "1"])
            .unwrap(),
        Reply::Verbatim { .. }
    ));
    // Lua returns a boolean true as integer 1 in RESP2 and as a boolean under HELLO 3 scripts.
    let b = c
        .command(&["EVAL", "redis.setresp(3); return true", "0"])
        .unwrap();
    assert_eq!(b, Reply::Bool(true));
    let big = c
        .command(&[
            "EVAL",
            "redis.setresp(3); return {big_number='123456789012345678901234567890'}",
            "0",
        ])
        .unwrap();
    assert_eq!(
        big,
        Reply::BigNumber("123456789012345678901234567890".into())
    );

    // RESP2 gives the same data in its own shapes.
    let c2 = blocking::Client::connect(&server.tcp_url(), Options::default().resp3(false)).unwrap();
    let r = c2.command(&["HGETALL", "h"]).unwrap();
    assert!(matches!(r, Reply::Array(_)));
    assert_eq!(
        c2.hgetall("h").unwrap(),
        vec![(b"f".to_vec(), b"v".to_vec())]
    );
    assert_eq!(
        c2.command(&["ZSCORE", "z", "m"]).unwrap(),
        Reply::Bulk(b"1.5".to_vec())
    );
}

#[test]
fn errors_are_typed_and_say_what_failed() {
    let server = Server::start();
    let c = connect(&server.unix_url());
    c.lpush("list", &["x"]).unwrap();
    let e = c.get("list").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Server);
    assert_eq!(e.code(), Some("WRONGTYPE"));
    assert!(e.to_string().contains("GET list"), "{e}");
    assert!(e.to_string().contains("wrong kind of value"), "{e}");
    // Nothing changed and the client still works.
    assert_eq!(c.llen("list").unwrap(), 1);

    let e = c.command(&[] as &[&str]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    let e = c.command(&["NOSUCHCOMMAND"]).unwrap_err();
    assert_eq!(e.code(), Some("ERR"));
    let e = c
        .set_with("k", "v", SetOptions::default().nx().xx())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    let e = c.del(&[] as &[&str]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);

    for bad in ["", "localhost", "http://x", "redis://h:99999"] {
        let e = blocking::Client::connect(bad, Options::default()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{bad}: {e}");
    }
    // TLS: tests/tls.rs; nothing listens on port 1 (built without TLS: refused first).
    let e = blocking::Client::connect("rediss://127.0.0.1:1", Options::default()).unwrap_err();
    let want = match cfg!(feature = "tls") {
        true => ErrorKind::Connection,
        false => ErrorKind::Unsupported,
    };
    assert_eq!(e.kind(), want, "{e}");
}

#[test]
fn unreachable_server_fails_within_the_connect_timeout() {
    // A port nobody listens on: refused at once.
    let t = Instant::now();
    let e = blocking::Client::connect(
        "redis://127.0.0.1:1/0",
        Options::default().connect_timeout(Duration::from_secs(1)),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connection, "{e}");
    assert!(t.elapsed() < Duration::from_secs(2));
    // A socket path that does not exist.
    let e = blocking::Client::connect("unix:///nonexistent/redis.sock", Options::default())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connection, "{e}");
}

#[test]
fn big_values_round_trip_and_oversized_ones_are_refused() {
    let server = Server::start_with(&["--proto-max-bulk-len", "20mb"]);
    let c = connect(&server.tcp_url());
    let big: Vec<u8> = (0..16 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    c.set("big", &big).unwrap();
    assert_eq!(c.get("big").unwrap().as_deref(), Some(&big[..]));

    // Over the server's limit: refused before sending, the connection survives.
    let huge = vec![b'x'; 21 * 1024 * 1024];
    let e = c.set("huge", &huge).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(e.message().contains("proto-max-bulk-len"), "{e}");
    c.ping().unwrap();
    assert!(c.is_connected());

    // Our own option applies too.
    let small =
        blocking::Client::connect(&server.tcp_url(), Options::default().max_value_size(1024))
            .unwrap();
    let e = small.set("k", vec![0u8; 2048]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    small.set("k", vec![0u8; 1024]).unwrap();

    // A limit smaller than the handshake's replies still connects, and reads what others
    // wrote up to 64 KiB: the reply-side limit never goes below that.
    let tiny = blocking::Client::connect(&server.tcp_url(), Options::default().max_value_size(10))
        .unwrap();
    tiny.ping().unwrap();
    let e = tiny.set("t", "more than ten bytes").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    c.set("t", vec![7u8; 60_000]).unwrap();
    assert_eq!(tiny.get("t").unwrap(), Some(vec![7u8; 60_000]));
    tiny.ping().unwrap();
    let e = blocking::Client::connect(&server.tcp_url(), Options::default().max_reply_size(1000))
        .unwrap_err();
    assert!(e.to_string().contains("max_reply_size"), "{e}");
}

#[test]
fn options_are_applied() {
    let server = Server::start();
    let c = blocking::Client::connect(
        &server.tcp_url(),
        Options::default().client_name("redipc-test").database(3),
    )
    .unwrap();
    assert_eq!(
        c.command(&["CLIENT", "GETNAME"]).unwrap(),
        Reply::Bulk(b"redipc-test".to_vec())
    );
    c.set("in3", "x").unwrap();
    let c0 = connect(&server.tcp_url());
    assert_eq!(c0.get("in3").unwrap(), None);
    let c3 = connect(&format!("unix://{}?db=3", server.sock().display()));
    assert_eq!(c3.get("in3").unwrap().as_deref(), Some(&b"x"[..]));

    let e = blocking::Client::connect(
        &server.tcp_url(),
        Options::default().client_name("has space"),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);

    // ACL user and password.
    server.cmd(&["ACL", "SETUSER", "app", "on", ">s3cret", "~*", "+@all"]);
    let c = blocking::Client::connect(
        &format!("redis://app:s3cret@127.0.0.1:{}/0", server.port),
        Options::default(),
    )
    .unwrap();
    assert_eq!(
        c.command(&["ACL", "WHOAMI"]).unwrap(),
        Reply::Bulk(b"app".to_vec())
    );
    // The same over RESP2 (AUTH user pass, CLIENT SETNAME and SELECT as commands).
    let c2 = blocking::Client::connect(
        &format!("redis://app:s3cret@127.0.0.1:{}/3", server.port),
        Options::default().resp3(false).client_name("resp2"),
    )
    .unwrap();
    assert_eq!(
        c2.command(&["ACL", "WHOAMI"]).unwrap(),
        Reply::Bulk(b"app".to_vec())
    );
    assert_eq!(
        c2.command(&["CLIENT", "GETNAME"]).unwrap(),
        Reply::Bulk(b"resp2".to_vec())
    );
    assert_eq!(c2.get("in3").unwrap().as_deref(), Some(&b"x"[..]));
    let e = blocking::Client::connect(
        &server.tcp_url(),
        Options::default().username("app").password("wrong"),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("WRONGPASS") || e.to_string().to_lowercase().contains("auth"),
        "{e}"
    );
}

#[test]
fn closed_client_refuses_calls() {
    let server = Server::start();
    let c = connect(&server.tcp_url());
    assert!(!c.is_closed());
    c.clone().close();
    assert!(c.is_closed(), "a clone's close closes the client");
    assert_eq!(c.ping().unwrap_err().kind(), ErrorKind::Closed);
}

/// What the bindings used to check themselves is checked once, here.
#[test]
fn the_core_checks_what_setters_only_store() {
    let server = Server::start();
    let e = blocking::Client::connect(&server.tcp_url(), Options::default().max_value_size(0))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(e.to_string().contains("max_value_size"), "{e}");
    let c = connect(&server.tcp_url());
    let e = c.watch_keys("", &["set"], false, |_, _| {}).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(e.to_string().contains("pattern"), "{e}");
    let e = c.watch_keys("k:*", &[""], false, |_, _| {}).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
}

#[test]
fn eight_threads_share_one_client() {
    let server = Server::start();
    let c = connect(&server.unix_url());
    std::thread::scope(|s| {
        for t in 0..8 {
            let c = &c;
            s.spawn(move || {
                let key = format!("t{t}");
                for i in 0..10_000i64 {
                    if i % 2 == 0 {
                        assert_eq!(c.incr(&key).unwrap(), i / 2 + 1);
                    } else {
                        let v = format!("{t}-{i}");
                        c.set(format!("{key}:v"), &v).unwrap();
                        assert_eq!(c.get(format!("{key}:v")).unwrap(), Some(v.into_bytes()));
                    }
                }
            });
        }
    });
    for t in 0..8 {
        assert_eq!(
            c.get(format!("t{t}")).unwrap().as_deref(),
            Some(&b"5000"[..])
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_client_works_in_a_users_runtime() {
    let server = Server::start();
    let c = redipc::Client::connect(&server.tcp_url(), Options::default())
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for t in 0..16 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..500 {
                c.incr(format!("a{t}")).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(c.get("a7").await.unwrap().as_deref(), Some(&b"500"[..]));
    let replies = c
        .pipeline_raw(&[
            vec!["SET", "p", "1"],
            vec!["INCR", "p"],
            vec!["LPUSH", "p", "x"],
            vec!["GET", "p"],
        ])
        .await
        .unwrap();
    assert_eq!(replies[1], Reply::Int(2));
    assert!(matches!(&replies[2], Reply::Error(e) if e.code == "WRONGTYPE"));
    assert_eq!(replies[3], Reply::Bulk(b"2".to_vec()));

    // The blocking facade refuses to run inside a runtime instead of deadlocking.
    let e = blocking::Client::connect(&server.tcp_url(), Options::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
}

#[test]
fn blocking_commands_get_their_own_connection_and_state_changers_are_refused() {
    let server = Server::start();
    let c = blocking::Client::connect(
        &server.tcp_url(),
        Options::default().response_timeout(Duration::from_millis(300)),
    )
    .unwrap();
    // A BLPOP longer than the response timeout: allowed its own block time, and it does not
    // hold up the other calls of the client meanwhile.
    let c2 = c.clone();
    let t = Instant::now();
    let popper = std::thread::spawn(move || c2.command(&["BLPOP", "q", "1"]));
    std::thread::sleep(Duration::from_millis(100));
    for _ in 0..50 {
        c.ping().unwrap();
    }
    assert!(
        t.elapsed() < Duration::from_millis(800),
        "other calls waited for BLPOP"
    );
    c.rpush("q", &["item"]).unwrap();
    let r = popper.join().unwrap().unwrap();
    assert_eq!(
        r,
        Reply::Array(vec![
            Reply::Bulk(b"q".to_vec()),
            Reply::Bulk(b"item".to_vec())
        ])
    );
    // Nothing comes: nil after the block time, not a timeout error.
    let t = Instant::now();
    assert_eq!(c.command(&["BRPOP", "empty", "0.5"]).unwrap(), Reply::Nil);
    assert!(t.elapsed() >= Duration::from_millis(450));
    assert_eq!(
        c.command(&["XREAD", "BLOCK", "100", "STREAMS", "s", "$"])
            .unwrap(),
        Reply::Nil
    );
    for refused in [
        &["SUBSCRIBE", "x"][..],
        &["MULTI"],
        &["WATCH", "k"],
        &["SELECT", "2"],
        &["MONITOR"],
    ] {
        let e = c.command(refused).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{refused:?}");
    }
    // The shared connection is untouched.
    c.set("k", "v").unwrap();
    assert_eq!(c.get("k").unwrap().as_deref(), Some(&b"v"[..]));
}

#[test]
fn pushes_on_the_command_connection_do_not_shift_replies() {
    // Client-side caching makes the server send `invalidate` pushes on the command
    // connection itself (RESP3): they are out-of-band and must not be taken for replies.
    let server = Server::start();
    let url = server.unix_url();
    let c = connect(&url);
    let other = connect(&url);
    c.command(&["CLIENT", "TRACKING", "ON"]).unwrap();
    for i in 0..200 {
        let key = format!("tracked:{i}");
        c.set(&key, "a").unwrap();
        assert_eq!(c.get(&key).unwrap().as_deref(), Some(&b"a"[..]));
        // Another client changes the key: the server pushes an invalidation to `c`.
        other.set(&key, "b").unwrap();
        assert_eq!(
            c.get(&key).unwrap().as_deref(),
            Some(&b"b"[..]),
            "reply {i}"
        );
        assert_eq!(c.incr_by(format!("n:{i}"), 2).unwrap(), 2);
    }
}

#[test]
fn a_large_reply_arriving_in_many_reads_is_whole() {
    let server = Server::start();
    let c = connect(&server.unix_url());
    let fields: Vec<String> = (0..50_000).map(|i| format!("field-{i}")).collect();
    for chunk in fields.chunks(1000) {
        let mut args: Vec<&str> = vec!["HSET", "big"];
        for f in chunk {
            args.push(f);
            args.push(f);
        }
        c.command(&args).unwrap();
    }
    let pairs = c
        .command(&["HGETALL", "big"])
        .unwrap()
        .into_pairs()
        .unwrap();
    assert_eq!(pairs.len(), 50_000);
    assert!(
        pairs
            .iter()
            .all(|(k, v)| k == v && k.starts_with(b"field-"))
    );
    let value = vec![b'x'; 8 << 20];
    c.set("blob", &value).unwrap();
    assert_eq!(c.get("blob").unwrap().as_deref(), Some(&value[..]));
}

#[test]
fn close_ends_calls_in_flight_even_a_blpop_that_waits_forever() {
    let server = Server::start();
    let c = connect(&server.unix_url());
    let c2 = c.clone();
    let waiter = std::thread::spawn(move || {
        let t = Instant::now();
        (c2.command(&["BLPOP", "never", "0"]), t.elapsed())
    });
    std::thread::sleep(Duration::from_millis(200)); // it is blocked on the server now
    let t = Instant::now();
    c.close();
    let (r, _) = waiter.join().unwrap();
    let e = r.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Closed, "{e}");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    // Nothing of the client is left blocked on the server.
    std::thread::sleep(Duration::from_millis(100));
    let other = connect(&server.unix_url());
    let info = other.command(&["INFO", "clients"]).unwrap();
    let text = String::from_utf8_lossy(info.as_bytes().unwrap_or_default()).into_owned();
    assert!(text.contains("blocked_clients:0"), "{text}");
}

/// `INFO clients`' `blocked_clients`.
async fn blocked_clients(c: &redipc::Client) -> i64 {
    let info = c.command(&["INFO", "clients"]).await.unwrap();
    let text = String::from_utf8_lossy(info.as_bytes().unwrap_or_default()).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("blocked_clients:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap()
}

/// Wait (up to 5 s) until `n` clients are blocked on the server.
async fn until_blocked(c: &redipc::Client, n: i64) {
    let t = Instant::now();
    while blocked_clients(c).await != n {
        assert!(t.elapsed() < Duration::from_secs(5), "never {n} blocked");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Wait (up to 5 s) until `LRANGE key 0 -1` is `want`.
async fn until_list(c: &redipc::Client, key: &str, want: &[&str]) {
    let want: Vec<Reply> = want
        .iter()
        .map(|s| Reply::Bulk(s.as_bytes().to_vec()))
        .collect();
    let t = Instant::now();
    loop {
        let got = c.command(&["LRANGE", key, "0", "-1"]).await.unwrap();
        if got == Reply::Array(want.clone()) {
            return;
        }
        assert!(t.elapsed() < Duration::from_secs(5), "{key}: {got:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `z` holds `a` (score 1) and `b` (2.5) again.
async fn until_list_z(c: &redipc::Client) {
    assert_eq!(
        c.command(&["ZRANGE", "z", "0", "-1"]).await.unwrap(),
        Reply::Array(vec![Reply::Bulk(b"a".to_vec()), Reply::Bulk(b"b".to_vec())])
    );
    let score = c.command(&["ZSCORE", "z", "b"]).await.unwrap();
    assert!(
        matches!(&score, Reply::Double(d) if *d == 2.5) || score == Reply::Bulk(b"2.5".to_vec()),
        "{score:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_pop_whose_caller_stops_waiting_loses_nothing() {
    let server = Server::start();
    let url = server.unix_url();
    let c = redipc::Client::connect(&url, Options::default())
        .await
        .unwrap();
    let other = redipc::Client::connect(&url, Options::default())
        .await
        .unwrap();

    // Given up while it waits: the server's wait ends at once (even a block time of 0), and
    // an item pushed afterwards stays in the list.
    let mut pop = Box::pin(c.command(&["BLPOP", "q", "0"]));
    tokio::select! {
        r = &mut pop => panic!("nothing to pop yet: {r:?}"),
        () = until_blocked(&other, 1) => {}
    }
    drop(pop);
    until_blocked(&other, 0).await;
    other.rpush("q", &["a"]).await.unwrap();
    until_list(&other, "q", &["a"]).await;

    // Given up after the pop took its item, with the reply on its way: the item is put back
    // at the head it came from.
    let mut pop = Box::pin(c.command(&["BLPOP", "q2", "10"]));
    tokio::select! {
        r = &mut pop => panic!("nothing to pop yet: {r:?}"),
        () = until_blocked(&other, 1) => {}
    }
    other.rpush("q2", &["x", "y"]).await.unwrap(); // BLPOP takes "x" now
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(pop);
    until_list(&other, "q2", &["x", "y"]).await;

    // The same given up through the call's limit (a block time of 0.1 s plus a response
    // timeout of 0.6 s) while the server is paused for 1 s: the pop runs when the pause
    // ends, after its caller had its timeout, and the item is put back.
    let slow = redipc::Client::connect(
        &url,
        Options::default().response_timeout(Duration::from_millis(600)),
    )
    .await
    .unwrap();
    // Its connection for blocking commands made first (the pause would hold its dial).
    other.rpush("q3", &["first", "m", "n"]).await.unwrap();
    slow.command(&["BLPOP", "q3", "1"]).await.unwrap();
    other
        .command(&["CLIENT", "PAUSE", "1000", "ALL"])
        .await
        .unwrap();
    let t = Instant::now();
    let e = slow.command(&["BLPOP", "q3", "0.1"]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(
        t.elapsed() < Duration::from_millis(950),
        "{:?}",
        t.elapsed()
    );
    until_list(&other, "q3", &["m", "n"]).await;

    // A reply held as a `Taken` and dropped unread puts back what each kind of pop took;
    // `into_reply` keeps it.
    // (A put-back is sent when the `Taken` is dropped, not waited for: each is awaited here
    // before the next pop.)
    other.rpush("l", &["1", "2", "3", "4"]).await.unwrap();
    drop(c.command_taken(&["BRPOP", "l", "1"]).await.unwrap());
    until_list(&other, "l", &["1", "2", "3", "4"]).await;
    drop(c.command_taken(&["BLPOP", "l", "1"]).await.unwrap());
    until_list(&other, "l", &["1", "2", "3", "4"]).await;
    drop(
        c.command_taken(&["BLMPOP", "1", "1", "l", "LEFT", "COUNT", "2"])
            .await
            .unwrap(),
    );
    until_list(&other, "l", &["1", "2", "3", "4"]).await;
    drop(
        c.command_taken(&["BLMOVE", "l", "dst", "RIGHT", "LEFT", "1"])
            .await
            .unwrap(),
    );
    until_list(&other, "l", &["1", "2", "3", "4"]).await;
    until_list(&other, "dst", &[]).await;
    other
        .command(&["ZADD", "z", "1", "a", "2.5", "b"])
        .await
        .unwrap();
    drop(c.command_taken(&["BZPOPMAX", "z", "1"]).await.unwrap());
    tokio::time::sleep(Duration::from_millis(200)).await;
    until_list_z(&other).await;
    drop(
        c.command_taken(&["BZMPOP", "1", "1", "z", "MIN", "COUNT", "2"])
            .await
            .unwrap(),
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    until_list_z(&other).await;
    let e = c.command_taken(&[] as &[&str]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    let kept = c.command_taken(&["BLPOP", "l", "1"]).await.unwrap();
    assert_eq!(
        kept.into_reply(),
        Reply::Array(vec![Reply::Bulk(b"l".to_vec()), Reply::Bulk(b"1".to_vec())])
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    until_list(&other, "l", &["2", "3", "4"]).await;
}

#[test]
fn a_checked_blocking_command_ends_when_its_check_fails() {
    let server = Server::start();
    let c = connect(&server.unix_url());
    let t = Instant::now();
    let e = c
        .command_checked(&["BLPOP", "q", "0"], Duration::from_millis(50), || {
            match t.elapsed() > Duration::from_millis(300) {
                true => Err(redipc::Error::aborted("interrupted")),
                false => Ok(()),
            }
        })
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Aborted, "{e}");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    // The server stopped waiting: what comes next stays in the list.
    let t = Instant::now();
    loop {
        let info = c.command(&["INFO", "clients"]).unwrap();
        let text = String::from_utf8_lossy(info.as_bytes().unwrap_or_default()).into_owned();
        if text.contains("blocked_clients:0") {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(5), "{text}");
        std::thread::sleep(Duration::from_millis(10));
    }
    c.rpush("q", &["a"]).unwrap();
    assert_eq!(c.llen("q").unwrap(), 1);
    // Other commands go as command() sends them; a reply in time is the caller's.
    let calls = std::cell::Cell::new(0);
    let checked = |args: &[&str]| {
        c.command_checked(args, Duration::from_millis(50), || {
            calls.set(calls.get() + 1);
            Ok(())
        })
    };
    assert_eq!(checked(&["GET", "nothing"]).unwrap(), Reply::Nil);
    assert_eq!(
        checked(&["BLPOP", "q", "1"]).unwrap(),
        Reply::Array(vec![Reply::Bulk(b"q".to_vec()), Reply::Bulk(b"a".to_vec())])
    );
    assert_eq!(checked(&["BLPOP", "q", "0.3"]).unwrap(), Reply::Nil);
    assert!(calls.get() >= 4, "{}", calls.get());
}
