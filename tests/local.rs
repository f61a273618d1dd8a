//! `LocalWire`: the command connection an event loop drives itself (Python's asyncio). The
//! tests drive it as a loop would: wait for its descriptor, then `ready()` and drain the
//! completions queue; `flush()` and `expire()` when they ask for it.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Server;
use redipc::{Completions, ErrorKind, LocalWire, Options, Reply, blocking};

type Out = (u32, redipc::Result<Reply>);

fn wrap(t: u32, r: redipc::Result<redipc::Taken>) -> Out {
    (t, r.map(redipc::Taken::into_reply))
}

struct Loop {
    w: LocalWire<u32, Out>,
    done: Arc<Completions<Out>>,
    got: Vec<Out>,
    timer: Option<Instant>,
}

impl Loop {
    fn new(c: &blocking::Client) -> Loop {
        let done = Arc::new(Completions::new().unwrap());
        let w = LocalWire::new(c, done.clone(), wrap)
            .unwrap()
            .expect("a plain endpoint has a local connection");
        Loop {
            w,
            done,
            got: Vec::new(),
            timer: None,
        }
    }

    fn send(&mut self, args: &[&str], t: u32) -> redipc::Result<()> {
        let sent = self.w.send(args, t)?;
        if let Some(after) = sent.arm {
            self.timer = Some(Instant::now() + after);
        }
        if sent.flush {
            self.got.extend(self.w.flush());
        }
        Ok(())
    }

    /// One turn of the loop: wait up to 20 ms for the descriptor, then collect what is done.
    fn turn(&mut self) {
        let mut pfd = libc::pollfd {
            fd: self.w.fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd on the stack.
        unsafe { libc::poll(&mut pfd, 1, 20) };
        self.got.extend(self.w.ready());
        self.done.drain(|o| self.got.push(o));
        if let Some(at) = self.timer
            && Instant::now() >= at
        {
            let (out, next) = self.w.expire();
            self.got.extend(out);
            self.timer = next.map(|d| Instant::now() + d);
        }
    }

    /// Run the loop until `n` outcomes arrived (or `limit` passed); they come back.
    fn run(&mut self, n: usize, limit: Duration) -> Vec<Out> {
        let end = Instant::now() + limit;
        while self.got.len() < n && Instant::now() < end {
            self.turn();
        }
        std::mem::take(&mut self.got)
    }

    /// One call under tag 0, run to its outcome. Outcomes of other tags (a late answer to an
    /// earlier `send`) stay collected for a later `run`: they are never taken for this reply.
    fn call(&mut self, args: &[&str]) -> redipc::Result<Reply> {
        self.send(args, 0)?;
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(i) = self.got.iter().position(|(t, _)| *t == 0) {
                let (_, r) = self.got.remove(i);
                assert!(
                    self.got.iter().all(|(t, _)| *t != 0),
                    "one outcome for {args:?}"
                );
                return r;
            }
            assert!(Instant::now() < end, "no outcome for {args:?}");
            self.turn();
        }
    }
}

fn client(url: &str, response_timeout: Duration) -> blocking::Client {
    blocking::Client::connect(
        url,
        Options::default()
            .response_timeout(response_timeout)
            .client_name("local-test"),
    )
    .unwrap()
}

#[test]
fn commands_round_trip_in_order_on_both_transports() {
    let server = Server::start();
    for url in server.urls() {
        let c = client(&url, Duration::from_secs(5));
        let mut l = Loop::new(&c);
        assert!(l.w.is_up());
        assert_eq!(
            l.call(&["SET", "k", "v"]).unwrap(),
            Reply::Status("OK".into())
        );
        assert_eq!(
            l.call(&["GET", "k"]).unwrap().into_opt_bytes().unwrap(),
            Some(b"v".to_vec())
        );
        // 500 concurrent calls: one write for those queued behind the first, answered in
        // order.
        l.call(&["DEL", "n"]).unwrap();
        for i in 0..500 {
            l.send(&["INCR", "n"], i).unwrap();
        }
        let out = l.run(500, Duration::from_secs(10));
        assert_eq!(out.len(), 500);
        for (i, (t, r)) in out.into_iter().enumerate() {
            assert_eq!(t, i as u32);
            assert_eq!(r.unwrap(), Reply::Int(i as i64 + 1));
        }
        assert_eq!(l.w.in_flight(), 0);
        // A server error is an error of its call only.
        let e = l.call(&["INCR", "k"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Server);
        assert!(e.to_string().contains("INCR k"), "{e}");
        // A blocking command takes its own connection (through the completions queue).
        assert_eq!(l.call(&["BLPOP", "none", "0.05"]).unwrap(), Reply::Nil);
        // An invalid call is refused at once.
        assert_eq!(
            l.w.send(&[""], 9).unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
        assert!(l.w.is_up());
        // Counted like every call.
        assert!(c.stats().commands >= 505);
    }
}

#[test]
fn a_killed_connection_fails_its_calls_then_comes_back() {
    let server = Server::start();
    let c = client(&server.unix_url(), Duration::from_secs(5));
    let mut l = Loop::new(&c);
    assert_eq!(l.call(&["PING"]).unwrap(), Reply::Status("PONG".into()));
    // A call in flight when the connection is killed: answered or a connection error.
    l.send(&["BLPOP", "x", "0"], 1).unwrap();
    l.send(&["GET", "k"], 2).unwrap();
    server.cmd(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"]);
    let out = l.run(1, Duration::from_secs(5));
    for (t, r) in &out {
        if *t == 2 {
            match r {
                Ok(_) => {}
                Err(e) => assert_eq!(e.kind(), ErrorKind::Connection, "{e}"),
            }
        }
    }
    // Calls go on (through the shared connection while the local one is redialled), and
    // the local connection is back within a few seconds.
    let end = Instant::now() + Duration::from_secs(5);
    let mut ok = 0;
    while Instant::now() < end && !(l.w.is_up() && ok > 3) {
        match l.call(&["SET", "k", "again"]) {
            Ok(_) => ok += 1,
            Err(e) => assert_eq!(e.kind(), ErrorKind::Connection, "{e}"),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(l.w.is_up(), "the local connection came back");
    assert_eq!(
        l.call(&["GET", "k"]).unwrap().into_opt_bytes().unwrap(),
        Some(b"again".to_vec())
    );
    drop(l.run(1, Duration::from_millis(100)));
}

#[test]
fn a_silent_server_times_calls_out_and_the_connection_recovers() {
    let mut server = Server::start();
    let c = client(&server.tcp_url(), Duration::from_millis(300));
    let mut l = Loop::new(&c);
    assert_eq!(l.call(&["PING"]).unwrap(), Reply::Status("PONG".into()));
    server.pause();
    let began = Instant::now();
    let e = l.call(&["GET", "k"]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(began.elapsed() < Duration::from_secs(2));
    // Silent all along: the connection was dropped rather than kept for a late reply.
    assert!(!l.w.is_up());
    server.resume();
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end && !l.w.is_up() {
        let _ = l.call(&["PING"]);
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(l.w.is_up());
    assert_eq!(l.call(&["PING"]).unwrap(), Reply::Status("PONG".into()));
    // A restarted server: calls fail (connection) or succeed, then succeed.
    server.restart();
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        match l.call(&["SET", "after", "restart"]) {
            Ok(_) => break,
            Err(e) => assert!(
                matches!(e.kind(), ErrorKind::Connection | ErrorKind::Timeout),
                "{e}"
            ),
        }
        assert!(Instant::now() < end, "no recovery after the restart");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn closing_fails_what_is_in_flight() {
    let server = Server::start();
    let c = client(&server.unix_url(), Duration::from_secs(5));
    let mut l = Loop::new(&c);
    l.send(&["BLPOP", "never", "0"], 1).unwrap();
    l.send(&["DEBUG", "SLEEP", "0.3"], 2).unwrap();
    let out = l.w.close();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, 2);
    assert_eq!(out[0].1.as_ref().unwrap_err().kind(), ErrorKind::Closed);
    c.close();
    // The blocking call on the runtime ends too.
    let out = l.run(1, Duration::from_secs(5));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1.as_ref().unwrap_err().kind(), ErrorKind::Closed);
}
