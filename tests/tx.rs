//! Pipelines, MULTI/EXEC transactions and WATCH-based optimistic transactions.

mod common;

use common::Server;
use redipc::{ErrorKind, Options, Reply, blocking};

fn connect(url: &str) -> blocking::Client {
    blocking::Client::connect(url, Options::default()).expect("connect")
}

#[test]
fn exec_gives_one_result_per_command_with_errors_in_their_slots() {
    let server = Server::start();
    let c = connect(&server.tcp_url());
    c.lpush("list", &["x"]).unwrap();
    let mut tx = c.tx();
    tx.add(&["SET", "a", "1"]).unwrap();
    tx.add(&["INCR", "a"]).unwrap();
    tx.add(&["INCR", "list"]).unwrap(); // fails when it runs: WRONGTYPE
    tx.add(&["GET", "a"]).unwrap();
    let r = tx.exec().unwrap();
    assert_eq!(r.len(), 4);
    assert_eq!(r[0], Reply::Status("OK".into()));
    assert_eq!(r[1], Reply::Int(2));
    assert!(
        matches!(&r[2], Reply::Error(e) if e.code == "WRONGTYPE"),
        "{:?}",
        r[2]
    );
    assert_eq!(r[3], Reply::Bulk(b"2".to_vec()));

    // Empty transaction.
    assert_eq!(c.tx().exec().unwrap(), vec![]);
}

#[test]
fn a_command_rejected_while_queueing_aborts_everything() {
    let server = Server::start();
    let c = connect(&server.unix_url());
    let mut tx = c.tx();
    tx.add(&["SET", "a", "1"]).unwrap();
    tx.add(&["NOSUCHCOMMAND", "x"]).unwrap();
    tx.add(&["SET", "b", "2"]).unwrap();
    let e = tx.exec().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Server);
    assert_eq!(e.code(), Some("EXECABORT"));
    assert!(
        e.to_string()
            .contains("command 1 (NOSUCHCOMMAND x) was rejected"),
        "{e}"
    );
    assert_eq!(c.exists(&["a", "b"]).unwrap(), 0, "nothing ran");
    // The shared connection is fine afterwards.
    c.ping().unwrap();
}

#[test]
fn pipelines_are_fast_and_keep_errors_in_slots() {
    let server = Server::start();
    let c = connect(&server.tcp_url());
    let mut p = c.pipeline();
    for i in 0..1000 {
        p.add(&["INCR".to_string(), format!("k{}", i % 10)])
            .unwrap();
    }
    p.add(&["HGET", "k0", "f"]).unwrap();
    let r = p.exec().unwrap();
    assert_eq!(r.len(), 1001);
    assert_eq!(r[999], Reply::Int(100));
    assert!(matches!(&r[1000], Reply::Error(e) if e.code == "WRONGTYPE"));
    assert!(c.pipeline().exec().unwrap().is_empty());
    assert!(c.pipeline().add::<&str>(&[]).is_err());
}

#[test]
fn batches_refuse_what_would_stall_or_change_the_shared_connection() {
    let server = Server::start();
    let c = connect(&server.unix_url());
    // What command() refuses, and in a pipeline a blocking command: each would hold up or
    // change the shared connection for every other call (a SUBSCRIBE left it answering
    // nothing, a BLPOP held every caller for its block time).
    for args in [
        &["SUBSCRIBE", "x"][..],
        &["SELECT", "2"],
        &["MULTI"],
        &["WATCH", "k"],
        &["BLPOP", "q", "1"],
        &["XREAD", "BLOCK", "100", "STREAMS", "s", "$"],
    ] {
        let mut p = c.pipeline();
        let e = p.add(args).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{args:?}: {e}");
        assert!(e.to_string().contains(args[0]), "{e}");
        assert!(p.is_empty());
    }
    let e = c.tx().add(&["SUBSCRIBE", "x"]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    // Inside MULTI a blocking pop does not block: allowed.
    c.rpush("q", &["a"]).unwrap();
    let mut tx = c.tx();
    tx.add(&["BLPOP", "q", "0"]).unwrap();
    tx.add(&["BLPOP", "q", "0"]).unwrap();
    assert_eq!(
        tx.exec().unwrap(),
        vec![
            Reply::Array(vec![Reply::Bulk(b"q".to_vec()), Reply::Bulk(b"a".to_vec())]),
            Reply::Nil
        ]
    );
    // Non-blocking reads of streams and lists go in pipelines as before.
    let mut p = c.pipeline();
    p.add(&["XREAD", "STREAMS", "s", "0"]).unwrap();
    p.add(&["LPOP", "q"]).unwrap();
    assert_eq!(p.exec().unwrap(), vec![Reply::Nil, Reply::Nil]);
}

#[test]
fn watch_transactions_retry_and_eight_concurrent_incrementers_are_exact() {
    let server = Server::start();
    let c = connect(&server.tcp_url());
    c.set("counter", "0").unwrap();
    std::thread::scope(|s| {
        for _ in 0..8 {
            let c = &c;
            s.spawn(move || {
                for _ in 0..100 {
                    c.transaction(&["counter"], 1000, |tx| {
                        let v = tx.command(&["GET", "counter"])?.as_int().unwrap_or(0);
                        tx.queue(&[
                            "SET".to_string(),
                            "counter".to_string(),
                            (v + 1).to_string(),
                        ])?;
                        Ok(())
                    })
                    .unwrap();
                }
            });
        }
    });
    assert_eq!(c.get("counter").unwrap().as_deref(), Some(&b"800"[..]));
}

#[test]
fn transfer_between_accounts_and_giving_up() {
    let server = Server::start();
    let c = connect(&server.tcp_url());
    c.set("alice", "100").unwrap();
    c.set("bob", "0").unwrap();
    let r = c
        .transaction(&["alice", "bob"], 3, |tx| {
            let a = tx.command(&["GET", "alice"])?.as_int().unwrap_or(0);
            if a < 30 {
                return Err(redipc::Error::new(
                    ErrorKind::InvalidArgument,
                    "insufficient funds",
                ));
            }
            tx.queue(&["DECRBY", "alice", "30"])?;
            tx.queue(&["INCRBY", "bob", "30"])?;
            Ok(())
        })
        .unwrap();
    assert_eq!(r, vec![Reply::Int(70), Reply::Int(30)]);

    // A key that changes every time: WatchError after the retries.
    let other = connect(&server.tcp_url());
    let mut attempts = 0;
    let e = c
        .transaction(&["alice"], 2, |tx| {
            attempts += 1;
            tx.command(&["GET", "alice"])?;
            other.incr("alice").unwrap();
            tx.queue(&["SET", "alice", "0"])?;
            Ok(())
        })
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Watch);
    assert_eq!(attempts, 3);
    assert_ne!(c.get("alice").unwrap().as_deref(), Some(&b"0"[..]));

    // An error from the closure aborts and is returned.
    let e = c
        .transaction(&["alice"], 2, |_| {
            Err(redipc::Error::new(ErrorKind::InvalidArgument, "no"))
        })
        .unwrap_err();
    assert_eq!(e.message(), "no");
}

/// The retry loop and the abort live in the core: async Rust gets them too.
#[test]
fn async_transactions_retry_on_conflict_and_abort_with_their_own_kind() {
    let server = Server::start();
    let url = server.unix_url();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = redipc::Client::connect(&url, Options::default())
            .await
            .unwrap();
        let other = redipc::Client::connect(&url, Options::default())
            .await
            .unwrap();
        c.set("n", "0").await.unwrap();
        // The first attempt sees another client change the watched key: it runs again.
        let mut attempts = 0;
        let r = c
            .transaction(&["n"], 3, async |tx| {
                attempts += 1;
                let v = tx.command(&["GET", "n"]).await?.into_opt_bytes()?;
                let n: i64 = String::from_utf8_lossy(&v.unwrap_or_default())
                    .parse()
                    .unwrap_or(0);
                if attempts == 1 {
                    other.incr("n").await?;
                }
                tx.queue(&["SET", "n", &(n + 10).to_string()])
            })
            .await
            .unwrap();
        assert_eq!(attempts, 2);
        assert_eq!(r, vec![Reply::Status("OK".into())]);
        assert_eq!(c.get("n").await.unwrap().as_deref(), Some(&b"11"[..]));

        // Given up by the function: nothing queued runs, the error is Aborted.
        let e = c
            .transaction(&["n"], 3, async |tx| {
                tx.queue(&["SET", "n", "999"])?;
                Err(redipc::Error::aborted("changed my mind"))
            })
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Aborted);
        assert_eq!(e.message(), "changed my mind");
        assert_eq!(c.get("n").await.unwrap().as_deref(), Some(&b"11"[..]));

        // A key that keeps changing: the Watch error after 1 + max_retries attempts.
        let mut attempts = 0;
        let e = c
            .transaction(&["n"], 2, async |tx| {
                attempts += 1;
                other.incr("n").await?;
                tx.queue(&["SET", "n", "0"])
            })
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Watch);
        assert_eq!(attempts, 3);
        assert!(e.to_string().contains("gave up after 3 attempts"), "{e}");

        // One Batch type: atomic or not.
        let mut b = c.batch(true);
        b.add(&["INCR", "n"]).unwrap().add(&["INCR", "n"]).unwrap();
        assert!(b.is_atomic());
        assert_eq!(
            b.exec().await.unwrap(),
            vec![Reply::Int(15), Reply::Int(16)]
        );
        let mut p = c.pipeline();
        p.add(&["GET", "n"]).unwrap();
        assert!(!p.is_atomic());
        assert_eq!(p.exec().await.unwrap(), vec![Reply::Bulk(b"16".to_vec())]);
    });
}
