//! ACL users: a user limited to some keys and channels (`~app:* &app:*`) gets `NOPERM`
//! server errors for the rest and the client stays usable; the library's own keys under a
//! prefix the user may touch work; a subscription to a forbidden channel fails clearly.

mod common;

use std::time::{Duration, Instant};

use common::Server;
use redipc::{ErrorKind, Event, Options, SubscribeOptions, WorkerOptions, blocking};

const PASSWORD: &str = "app-Pa55-acl";

fn app_user(server: &Server) {
    app_user_with(server, &[]);
}

/// The `app` user, with `rules` added to its ACL rules.
fn app_user_with(server: &Server, rules: &[&str]) {
    let password = format!(">{PASSWORD}");
    let mut args = vec![
        "ACL", "SETUSER", "app", "on", &password, "~app:*", "&app:*", "+@all",
    ];
    args.extend_from_slice(rules);
    server.cmd(&args);
}

fn connect(server: &Server) -> blocking::Client {
    let url = format!("redis://app:{PASSWORD}@127.0.0.1:{}/0", server.port);
    blocking::Client::connect(&url, Options::default().key_prefix("app:ipc:")).unwrap()
}

#[test]
fn commands_outside_the_users_rights_are_noperm_errors() {
    let server = Server::start();
    app_user(&server);
    let c = connect(&server);
    c.set("app:k", "v").unwrap();
    let e = c.set("other:k", "v").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Server, "{e}");
    assert_eq!(e.code(), Some("NOPERM"), "{e}");
    assert!(!e.to_string().contains(PASSWORD), "{e}");
    let e = c.command(&["GET", "other:k"]).unwrap_err();
    assert_eq!(e.code(), Some("NOPERM"), "{e}");
    // Still usable, on the same connection.
    assert_eq!(c.get("app:k").unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(c.stats().reconnects, 0);
    // A wrong password for the user, and a disabled user.
    let url = format!("redis://app:wrong-{PASSWORD}@127.0.0.1:{}/0", server.port);
    let e = blocking::Client::connect(&url, Options::default()).unwrap_err();
    assert!(e.to_string().contains("WRONGPASS"), "{e}");
    assert!(!e.to_string().contains(PASSWORD), "{e}");
}

#[test]
fn the_librarys_own_keys_work_under_a_permitted_prefix() {
    let server = Server::start();
    app_user(&server);
    let c = connect(&server);
    // Request queue (a worker's blocking pop on a dedicated connection), RPC (its reply
    // channel), streams, hash state, locks.
    let (tx, rx) = std::sync::mpsc::channel();
    let w = c
        .handle_requests(
            &["jobs"],
            move |r| {
                tx.send(r.payload.to_vec()).ok();
                Ok(())
            },
            WorkerOptions::default(),
        )
        .unwrap();
    c.send_request("jobs", "j1").unwrap();
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), b"j1");
    w.stop(Duration::from_secs(2)).unwrap();
    let s = c
        .serve("echo", |call| Ok(call.payload.to_vec()), 1)
        .unwrap();
    assert_eq!(
        &c.call("echo", "hi", Duration::from_secs(5)).unwrap()[..],
        b"hi"
    );
    s.stop(Duration::from_secs(2)).unwrap();
    let id = c.stream_publish("app:events", &[("k", "v")], None).unwrap();
    assert!(!id.is_empty());
    // The RPC server's presence and the caller's reply channel are under the prefix too
    // (the user could not have touched anything else).
    c.command(&["XLEN", "app:events"]).unwrap();
}

#[test]
fn a_forbidden_channel_is_a_clear_subscription_error() {
    let server = Server::start();
    app_user(&server);
    let c = connect(&server);
    let ok = c
        .subscribe(&["app:news"], SubscribeOptions::default())
        .unwrap();
    let e = c
        .subscribe(&["secret:news"], SubscribeOptions::default())
        .map(|_| ())
        .unwrap_err();
    assert_eq!(e.code(), Some("NOPERM"), "{e}");
    assert!(e.to_string().contains("secret:news"), "{e}");
    // The permitted subscription goes on.
    c.publish("app:news", "still here").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        assert!(Instant::now() < deadline, "no message");
        if let Ok(Some(Event::Message(m))) = ok.next(Some(Duration::from_millis(100)))
            && &m.payload[..] == b"still here"
        {
            break;
        }
    }
    let e = c.publish("secret:news", "x").unwrap_err();
    assert_eq!(e.code(), Some("NOPERM"), "{e}");
}

#[test]
fn a_blocking_pop_given_up_without_client_rights_loses_nothing() {
    // A user who may not run CLIENT: its connections' ids are unknown, so a pop given up is
    // read until its own block time ends (no CLIENT UNBLOCK), and what it took meanwhile
    // is put back; CLIENT ID is asked once per connection, not before every pop.
    let server = Server::start();
    app_user_with(&server, &["-client"]);
    let url = format!("redis://app:{PASSWORD}@127.0.0.1:{}/0", server.port);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = redipc::Client::connect(&url, Options::default())
            .await
            .unwrap();
        for _ in 0..3 {
            assert_eq!(
                c.command(&["BLPOP", "app:none", "0.05"]).await.unwrap(),
                redipc::Reply::Nil
            );
        }
        let mut pop = Box::pin(c.command(&["BLPOP", "app:q", "1"]));
        tokio::select! {
            r = &mut pop => panic!("nothing to pop yet: {r:?}"),
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        drop(pop);
        // The pop still waits on the server, and takes this.
        c.rpush("app:q", &["a"]).await.unwrap();
        let t = Instant::now();
        loop {
            let got = c.command(&["LRANGE", "app:q", "0", "-1"]).await.unwrap();
            if got == redipc::Reply::Array(vec![redipc::Reply::Bulk(b"a".to_vec())]) {
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(5), "{got:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let stats = server.cmd(&["INFO", "commandstats"]);
    let redis::Value::BulkString(text) = stats else {
        panic!("{stats:?}")
    };
    let text = String::from_utf8_lossy(&text).into_owned();
    let line = text
        .lines()
        .find(|l| l.starts_with("cmdstat_client|id:"))
        .unwrap_or_default();
    assert!(line.contains("rejected_calls=1,"), "{line}");
}
