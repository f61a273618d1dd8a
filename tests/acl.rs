//! ACL users: a user limited to some keys and channels (`~app:* &app:*`) gets `NOPERM`
//! server errors for the rest and the client stays usable; the library's own keys under a
//! prefix the user may touch work; a subscription to a forbidden channel fails clearly.

mod common;

use std::time::{Duration, Instant};

use common::Server;
use redipc::{ErrorKind, Event, Options, SubscribeOptions, WorkerOptions, blocking};

const PASSWORD: &str = "app-Pa55-acl";

fn app_user(server: &Server) {
    server.cmd(&[
        "ACL",
        "SETUSER",
        "app",
        "on",
        &format!(">{PASSWORD}"),
        "~app:*",
        "&app:*",
        "+@all",
    ]);
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
