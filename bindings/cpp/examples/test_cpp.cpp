// test_cpp.cpp: tests of the C++ wrapper (redipc.hpp) against a private redis-server.
//
//     ./test_cpp URL        prints one line per check that fails, and "N passed, M failed"
//
// Every key, channel, queue and service name carries a per-run tag, so TCP and unix runs
// against one server do not meet.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "redipc.hpp"

namespace {

int passed = 0;
int failed = 0;

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (cond) {                                                                      \
            ++passed;                                                                    \
        } else {                                                                         \
            ++failed;                                                                    \
            std::cerr << __FILE__ << ":" << __LINE__ << ": CHECK failed: " #cond "\n"; \
        }                                                                                \
    } while (0)

// Runs `f`; passes when it throws redipc::error with `code`; returns the error.
template <class F>
std::optional<redipc::error> expect_error(ipc_result code, F f, int line) {
    try {
        f();
    } catch (const redipc::error &e) {
        if (e.result() == code) {
            ++passed;
            return e;
        }
        ++failed;
        std::cerr << "line " << line << ": expected " << ipc_result_name(code) << ", got " << e.what() << "\n";
        return e;
    } catch (const std::exception &e) {
        ++failed;
        std::cerr << "line " << line << ": expected " << ipc_result_name(code) << ", got " << e.what() << "\n";
        return std::nullopt;
    }
    ++failed;
    std::cerr << "line " << line << ": expected " << ipc_result_name(code) << ", nothing was thrown\n";
    return std::nullopt;
}
#define EXPECT_ERROR(code, ...) expect_error(code, [&] { __VA_ARGS__; }, __LINE__)

template <class P>
bool wait_for(P pred, int ms = 5000) {
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (!pred()) {
        if (std::chrono::steady_clock::now() > until) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
}

std::string tag;
std::string k(const std::string &name) { return "cpp:" + tag + ":" + name; }

// Kill the client's command connections: the shared one (a pipeline always takes it) and,
// when a lone call takes another (the blocking caller's direct connection), that one too.
void kill_client(redipc::client &admin, redipc::client &c) {
    auto p = c.pipeline();
    p.add("CLIENT", "ID");
    int64_t shared = p.exec()[0].integer();
    int64_t lone = c.command("CLIENT", "ID").integer();
    admin.command("CLIENT", "KILL", "ID", shared);
    if (lone != shared) admin.command("CLIENT", "KILL", "ID", lone);
}

void test_commands(const std::string &url) {
    redipc::client c(url);
    c.ping();
    CHECK(c.is_connected());
    c.set(k("a"), "1");
    CHECK(c.get(k("a")) == std::optional<std::string>("1"));
    CHECK(!c.get(k("missing")).has_value());
    CHECK(c.incr(k("a")) == 2);
    CHECK(c.incr(k("a"), 40) == 42);
    CHECK(c.set_ex(k("a"), "x", 0, IPC_SET_NX) == false);
    CHECK(c.hset(k("h"), "f", "v") == 1);
    CHECK(c.hget(k("h"), "f") == std::optional<std::string>("v"));
    CHECK(!c.hget(k("h"), "nope"));
    // Binary values: {pointer, size} and std::vector<std::byte>.
    const char raw[] = {'a', '\0', 'b', '\xff'};
    c.set(k("bin"), {raw, sizeof raw});
    CHECK(c.get(k("bin")) == std::string(raw, sizeof raw));
    std::vector<std::byte> bytes{std::byte{0}, std::byte{1}, std::byte{2}};
    c.set(k("bytes"), bytes);
    CHECK(c.get(k("bytes"))->size() == 3);
    // Variadic command with numbers; replies of several types.
    CHECK(c.command("SET", k("n"), 10).str() == "OK");
    CHECK(c.command("INCRBY", k("n"), int64_t{5}).integer() == 15);
    CHECK(c.command("GET", k("missing")).is_nil());
    CHECK(c.command("RPUSH", k("l"), "x", "y", 3).integer() == 3);
    redipc::reply list = c.command("LRANGE", k("l"), 0, -1);
    CHECK(list.type() == IPC_REPLY_ARRAY && list.size() == 3);
    std::vector<std::string> items;
    for (auto e : list) items.push_back(e.string());
    CHECK((items == std::vector<std::string>{"x", "y", "3"}));
    redipc::reply map = c.command("HGETALL", k("h"));
    CHECK(map.type() == IPC_REPLY_MAP && map.size() == 2 && map[0].str() == "f" && map[1].str() == "v");
    CHECK(c.command(std::vector<redipc::arg>{"ZADD", k("z"), 1.5, "m"}).integer() == 1);
    CHECK(c.command("ZSCORE", k("z"), "m").number() == 1.5);
    // A big value.
    std::string big(8 * 1024 * 1024, 'z');
    big[12345] = '\0';
    c.set(k("big"), big);
    CHECK(c.get(k("big")) == big);
    for (const char *name : {"a", "h", "bin", "bytes", "n", "l", "z", "big"}) c.del(k(name));
    CHECK(c.del(k("a")) == 0);
}

void test_errors(const std::string &url) {
    redipc::client c(url);
    c.command("RPUSH", k("list"), "a");
    auto e = EXPECT_ERROR(IPC_ERR_SERVER, c.get(k("list")));
    CHECK(e && e->server_code() == "WRONGTYPE");
    CHECK(e && std::string(e->name()) == "IPC_ERR_SERVER" && e->is_server());
    CHECK(e && e->message().find("Operation against a key holding the wrong kind of value") != std::string::npos);
    CHECK(e && std::string(e->what()).rfind("IPC_ERR_SERVER: ", 0) == 0);
    // An exception is a std::runtime_error too.
    try {
        c.incr(k("list"));
        CHECK(false);
    } catch (const std::runtime_error &x) {
        CHECK(std::string(x.what()).find("WRONGTYPE") != std::string::npos);
    }
    auto e2 = EXPECT_ERROR(IPC_ERR_SERVER, c.command("NOSUCHCOMMAND"));
    CHECK(e2 && e2->server_code() == "ERR");
    // A reply accessor of the wrong type.
    redipc::reply r = c.command("PING");
    EXPECT_ERROR(IPC_ERR_INVALID_ARGUMENT, (void)r.integer());
    EXPECT_ERROR(IPC_ERR_INVALID_ARGUMENT, (void)r[0]);
    // URLs, unreachable servers, TLS.
    EXPECT_ERROR(IPC_ERR_INVALID_ARGUMENT, redipc::client("not a url"));
    EXPECT_ERROR(IPC_ERR_CONNECTION, redipc::client("redis://127.0.0.1:1", redipc::options().connect_timeout_ms(500)));
    EXPECT_ERROR(IPC_ERR_CONNECTION, redipc::client("rediss://127.0.0.1:1", redipc::options().connect_timeout_ms(500)));
    // TLS settings are read when the client is made (c-examples/tls_test.c connects over TLS).
    EXPECT_ERROR(IPC_ERR_INVALID_ARGUMENT, redipc::client(url, redipc::options().tls_insecure(true)));
    auto tls_err = EXPECT_ERROR(IPC_ERR_INVALID_ARGUMENT,
        redipc::client("rediss://127.0.0.1:1", redipc::options().tls_server_name("localhost")
            .tls_ca_pem("not PEM").tls_cert_file("/nonexistent/c.crt").tls_key_pem("k")));
    CHECK(tls_err && std::string(tls_err->what()).find("CA") != std::string::npos);
    EXPECT_ERROR(IPC_ERR_INVALID_ARGUMENT,
        redipc::client("rediss://127.0.0.1:1", redipc::options().tls_ca_file("/nonexistent/ca.crt")
            .tls_cert_pem("c").tls_key_file("/nonexistent/c.key")));
    // Options only store; the client checks them when it is made.
    EXPECT_ERROR(IPC_ERR_INVALID_ARGUMENT, redipc::client(url, redipc::options().connect_timeout_ms(0)));
    EXPECT_ERROR(IPC_ERR_INVALID_ARGUMENT, redipc::client(url, redipc::options().direct_connections(257)));
    {
        // No direct connections: a lone caller's commands take the shared one too.
        redipc::client one(url, redipc::options().direct_connections(0));
        auto p = one.pipeline();
        p.add("CLIENT", "ID");
        int64_t shared = p.exec()[0].integer();
        for (int i = 0; i < 20; i++) CHECK(one.command("CLIENT", "ID").integer() == shared);
    }
    // Too big for the client's limit: refused before sending, the client goes on.
    redipc::client small(url, redipc::options().max_value_size(10));
    EXPECT_ERROR(IPC_ERR_INVALID_ARGUMENT, small.set(k("s"), "more than ten bytes"));
    small.ping();
    // Empty (moved-from) owners and NULL strings are refused, not crashes.
    redipc::client moved = std::move(small);
    EXPECT_ERROR(IPC_ERR_NULL_ARG, small.ping());
    moved.ping();
    const char *null = nullptr;
    EXPECT_ERROR(IPC_ERR_NULL_ARG, c.get(null));
    redipc::subscription none;
    EXPECT_ERROR(IPC_ERR_NULL_ARG, (void)none.stats());
    // close(): later calls fail with IPC_ERR_CLOSED.
    redipc::client closing(url);
    closing.close();
    EXPECT_ERROR(IPC_ERR_CLOSED, closing.ping());
    c.del(k("list"));
}

struct counter {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::string> got;
    void add(std::string s) {
        std::lock_guard<std::mutex> g(mu);
        got.push_back(std::move(s));
        cv.notify_all();
    }
    size_t size() {
        std::lock_guard<std::mutex> g(mu);
        return got.size();
    }
    std::vector<std::string> copy() {
        std::lock_guard<std::mutex> g(mu);
        return got;
    }
};

void test_pubsub(const std::string &url) {
    redipc::client c(url);
    redipc::client pub(url);
    auto seen = std::make_shared<counter>();
    std::atomic<int> after_reset{0};
    std::atomic<bool> reset_done{false};
    {
        // The lambda holds a shared_ptr: when the box is deleted by userdata_free, the
        // use count drops back.
        auto sub = c.subscribe(k("ch"), [seen, &after_reset, &reset_done](const redipc::message &m) {
            if (reset_done) ++after_reset;
            if (m.is_message()) seen->add(std::string(m.payload()));
        });
        CHECK(seen.use_count() == 2);
        for (int i = 0; i < 100; ++i) pub.publish(k("ch"), std::to_string(i));
        CHECK(wait_for([&] { return seen->size() == 100; }));
        auto got = seen->copy();
        bool in_order = true;
        for (int i = 0; i < 100 && i < static_cast<int>(got.size()); ++i) in_order = in_order && got[i] == std::to_string(i);
        CHECK(in_order);
        CHECK(wait_for([&] { return sub.stats().delivered == 101; }));  // the activation and 100 messages
        sub.add({k("ch2")});
        pub.publish(k("ch2"), "second");
        CHECK(wait_for([&] { return seen->size() == 101; }));
        // RAII: reset (or leaving the scope) unsubscribes; no callback after it returns.
        std::thread flood([&] {
            for (int i = 0; i < 200; ++i) pub.publish(k("ch"), "late");
        });
        sub.reset();
        reset_done = true;
        flood.join();
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        CHECK(after_reset == 0);
        CHECK(!sub);
    }
    CHECK(seen.use_count() == 1);
    CHECK(pub.publish(k("ch"), "nobody") == 0);

    // Patterns report their pattern.
    std::mutex mu;
    std::string pattern, channel;
    auto psub = c.psubscribe(k("news.*"), [&](const redipc::message &m) {
        if (!m.is_message()) return;
        std::lock_guard<std::mutex> g(mu);
        pattern = std::string(m.pattern().value_or("?"));
        channel = std::string(m.channel());
    });
    pub.publish(k("news.x"), "x");
    CHECK(wait_for([&] {
        std::lock_guard<std::mutex> g(mu);
        return !channel.empty();
    }));
    CHECK(pattern == k("news.*") && channel == k("news.x"));
}

void test_throwing_callback(const std::string &url) {
    redipc::client c(url);
    redipc::client pub(url);
    std::atomic<int> reported{0};
    std::string last_where, last_what;
    std::mutex mu;
    redipc::set_callback_error_handler([&](const char *where, std::exception_ptr e) {
        std::lock_guard<std::mutex> g(mu);
        last_where = where;
        last_what = redipc::detail::describe(e);
        ++reported;
    });
    auto seen = std::make_shared<counter>();
    {
        auto sub = c.subscribe(k("throws"), [seen](const redipc::message &m) {
            if (!m.is_message()) return;
            if (m.payload() == "bad") throw std::runtime_error("bad payload");
            if (m.payload() == "int") throw 42;
            seen->add(std::string(m.payload()));
        });
        for (const char *p : {"bad", "ok1", "int", "ok2"}) pub.publish(k("throws"), p);
        CHECK(wait_for([&] { return seen->size() == 2; }));
        CHECK(wait_for([&] { return reported == 2; }));
    }
    CHECK((seen->copy() == std::vector<std::string>{"ok1", "ok2"}));
    {
        std::lock_guard<std::mutex> g(mu);
        CHECK(last_where == "a subscription callback");
        CHECK(last_what == "an exception not derived from std::exception");
    }
    redipc::set_callback_error_handler(nullptr);
    c.ping();
}

void test_transactions(const std::string &url) {
    redipc::client c(url);
    c.command("LPUSH", k("list"), "x");
    auto t = c.tx();
    t.add("SET", k("a"), 1).add("INCR", k("a")).add("INCR", k("list")).add("GET", k("a"));
    CHECK(t.size() == 4);
    redipc::reply r = t.exec();
    CHECK(r.size() == 4);
    CHECK(r[0].str() == "OK" && r[1].integer() == 2 && r[3].str() == "2");
    CHECK(r[2].is_error() && r[2].str().rfind("WRONGTYPE", 0) == 0);
    t.clear();
    CHECK(t.size() == 0 && t.exec().size() == 0);
    auto bad = c.tx();
    bad.add("SET", k("b"), 1).add("NOSUCHCOMMAND");
    auto e = EXPECT_ERROR(IPC_ERR_SERVER, bad.exec());
    CHECK(e && e->server_code() == "EXECABORT");
    CHECK(!c.get(k("b")));

    auto p = c.pipeline();
    for (int i = 0; i < 100; ++i) p.add("INCR", k("p"));
    redipc::reply pr = p.exec();
    CHECK(pr.size() == 100 && pr[99].integer() == 100);

    // Optimistic transaction: read, decide, write.
    c.set(k("balance"), "100");
    int attempts = 0;
    redipc::reply tr = c.transaction({k("balance")}, [&](redipc::watch_session &s) {
        ++attempts;
        int64_t balance = std::stoll(s.command("GET", k("balance")).string());
        s.queue("SET", k("balance"), balance - 30);
        return true;
    });
    CHECK(attempts == 1 && tr.size() == 1 && c.get(k("balance")) == std::optional<std::string>("70"));
    EXPECT_ERROR(IPC_ERR_TX_ABORTED, c.transaction({k("balance")}, [](redipc::watch_session &) { return false; }));
    // An exception of the function aborts and comes back out of transaction().
    bool caught = false;
    try {
        c.transaction({k("balance")}, [&](redipc::watch_session &s) -> bool {
            s.queue("SET", k("balance"), 0);
            throw std::logic_error("no such account");
        });
    } catch (const std::logic_error &x) {
        caught = std::string(x.what()) == "no such account";
    }
    CHECK(caught);
    CHECK(c.get(k("balance")) == std::optional<std::string>("70"));
    for (const char *name : {"a", "list", "p", "balance"}) c.del(k(name));
}

void test_queues_and_rpc(const std::string &url) {
    redipc::client c(url);
    auto seen = std::make_shared<counter>();
    {
        auto w = c.worker({k("jobs")}, [seen](const redipc::request &r) {
            if (r.payload() == "fail") throw std::runtime_error("cannot do it");
            seen->add(std::string(r.payload()));
        }, redipc::worker_options().block_timeout_ms(100).concurrency(2).report([](const redipc::report &) {}));
        for (int i = 0; i < 50; ++i) c.send_request(k("jobs"), std::to_string(i));
        c.send_request(k("jobs"), "fail");
        CHECK(wait_for([&] { return seen->size() == 50; }));
        CHECK(wait_for([&] { return w.stats().failed == 1; }));
        CHECK(w.stats().handled == 50);
        w.stop(5000);
    }
    CHECK(seen.use_count() == 1);
    CHECK(c.queue_stats(k("jobs")).pending == 0);

    std::string svc = k("svc");
    {
        auto s = c.serve(svc, [](const redipc::call_info &call) -> std::string {
            if (call.method() == "fail") throw std::invalid_argument("bad input " + std::string(call.payload()));
            std::string out(call.payload());
            std::transform(out.begin(), out.end(), out.begin(), [](char ch) { return static_cast<char>(std::toupper(ch)); });
            return out;
        }, 2);
        CHECK(c.call(svc, "hello") == "HELLO");
        CHECK(c.call(svc, "") == "");
        auto e = EXPECT_ERROR(IPC_ERR_REMOTE, c.call(svc, "7", "fail"));
        CHECK(e && e->message().find("bad input 7") != std::string::npos);
        CHECK(c.call(svc, "still") == "STILL");
    }
    EXPECT_ERROR(IPC_ERR_NO_SERVER, c.call(k("nobody"), "x", "", 5000, true));
}

void test_state_and_streams(const std::string &url) {
    redipc::client c(url);
    std::string st = k("stream");
    std::string id0 = c.stream_publish(st, {{"n", "0"}, {"kind", "tick"}});
    c.stream_publish(st, {{"n", "1"}});
    CHECK(c.stream_len(st) == 2);
    redipc::entries es = c.stream_read(st, "0", 10);
    CHECK(es.size() == 2 && es[0].id() == id0 && es[0].get("kind") == std::optional<std::string_view>("tick"));
    CHECK(es[0].field(0).first == "n" && es[1].get("n") == std::optional<std::string_view>("1"));
    auto f = c.stream_follow(st, "0");
    CHECK(f.next(100).size() == 1 && f.position() == id0);

    c.cache_set(k("cache"), "v", 10000);
    CHECK(c.cache_get(k("cache")) == std::optional<std::string>("v"));
    CHECK(!c.cache_wait(k("never"), 50));

    auto fields = std::make_shared<counter>();
    c.hash_set(k("dev"), "battery", "90");
    {
        auto w = c.hash_watch(k("dev"), [fields](std::string_view field, std::optional<std::string_view> v) {
            fields->add(std::string(field) + "=" + std::string(v.value_or("<deleted>")));
        });
        CHECK(wait_for([&] { return fields->size() == 1; }));  // the initial sync
        CHECK(!c.hash_set_if_changed(k("dev"), "battery", "90"));
        CHECK(c.hash_delete(k("dev"), "battery"));
        CHECK(wait_for([&] { return fields->size() == 2; }));
    }
    CHECK((fields->copy() == std::vector<std::string>{"battery=90", "battery=<deleted>"}));

    uint64_t t1 = 0;
    {
        redipc::lock l = c.lock(k("lock"), 5000);
        t1 = l.token();
        EXPECT_ERROR(IPC_ERR_TIMEOUT, c.lock(k("lock"), 5000, 50));
    }  // released here
    redipc::lock l2 = c.lock(k("lock"), 5000, 1000);
    CHECK(l2.token() > t1 && l2.release() && !l2.release());
    c.del(st);
    c.cache_delete(k("cache"));
}

// Coordination: scripts (also after SCRIPT FLUSH and in a batch), a rate limiter, a
// semaphore's permits, delayed requests, the service registry.
void test_coordination(const std::string &url) {
    redipc::client c(url);
    redipc::script echo("return {KEYS[1], ARGV[1]}");
    CHECK(echo.sha().size() == 40);
    redipc::reply r = c.run_script(echo, {k("key")}, {"arg"});
    CHECK(r.size() == 2 && r[0].str() == k("key") && r[1].str() == "arg");
    c.command("SCRIPT", "FLUSH");
    CHECK(c.run_script(echo, {"a"}, {"b"})[1].str() == "b");
    redipc::batch b = c.pipeline();
    b.add("SET", k("skey"), "v").add_script(redipc::script("return redis.call('GET', KEYS[1])"), {k("skey")});
    r = b.exec();
    CHECK(r.size() == 2 && r[1].str() == "v");
    EXPECT_ERROR(IPC_ERR_SERVER, c.run_script(redipc::script("return redis.error_reply('X no')")));

    redipc::rate_limiter rl = c.rate_limiter(k("rate"), 10, 1000, 1);
    CHECK(!rl.acquire());
    std::optional<uint64_t> wait = rl.acquire();
    CHECK(wait && *wait > 0 && *wait <= 100000);
    CHECK(!rl.acquire_wait(1, 0));
    CHECK(rl.acquire_wait());
    EXPECT_ERROR(IPC_ERR_INVALID_ARGUMENT, rl.acquire(2));
    EXPECT_ERROR(IPC_ERR_INVALID_ARGUMENT, c.rate_limiter(k("rate"), 0));

    redipc::semaphore sem = c.semaphore(k("sem"), 1, 5000);
    {
        redipc::permit p = sem.acquire();
        CHECK(p.id().size() == 32 && sem.held() == 1);
        EXPECT_ERROR(IPC_ERR_TIMEOUT, sem.acquire(0));
        CHECK(p.extend(5000));
    }  // released here
    redipc::permit p2 = sem.acquire(1000);
    CHECK(p2.release() && !p2.release() && sem.held() == 0);

    auto got = std::make_shared<counter>();
    std::string q = k("delayed");
    auto w = c.worker(q, [got](const redipc::request &req) { got->add(std::string(req.payload())); },
                      redipc::worker_options().block_timeout_ms(100));
    auto t0 = std::chrono::steady_clock::now();
    c.send_request_delayed(q, "later", 200);
    CHECK(c.queue_stats(q).delayed == 1);
    CHECK(wait_for([&] { return got->size() == 1; }));
    CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(199));
    w.stop();

    std::string svc = k("registry");
    {
        auto s = c.serve(svc, [](const redipc::call_info &call) { return std::string(call.payload()); },
                         redipc::worker_options().version("2.0").metadata("zone", "eu"));
        auto svcs = c.services();
        CHECK(std::find(svcs.begin(), svcs.end(), svc) != svcs.end());
        auto in = c.instances(svc);
        CHECK(in.size() == 1 && in[0].service == svc && in[0].version == "2.0" && in[0].pid == (uint32_t)getpid());
        CHECK(in.size() == 1 && in[0].metadata == (std::vector<std::pair<std::string, std::string>>{{"zone", "eu"}}));
    }  // stopped here
    CHECK(c.instances(svc).empty());
}

// Joining a redis-ipc fleet: the fleet's side is played with raw commands.
void test_fleet(const std::string &url) {
    redipc::client c(url), raw(url);
    // Bare queues both ways.
    auto seen = std::make_shared<counter>();
    {
        auto w = c.worker({k("scooter:state"), k("scooter:seatbox")}, [seen](const redipc::request &r) {
            seen->add(std::string(r.queue()) + " " + std::string(r.payload()));
        }, redipc::worker_options().bare(true).block_timeout_ms(100));
        raw.command("LPUSH", k("scooter:state"), "lock");
        raw.command("LPUSH", k("scooter:seatbox"), "open");
        CHECK(wait_for([&] { return seen->size() == 2; }));
        auto got = seen->copy();
        std::sort(got.begin(), got.end());
        CHECK((got == std::vector<std::string>{k("scooter:seatbox") + " open", k("scooter:state") + " lock"}));
    }
    c.send_request_bare(k("out"), "unlock");
    auto popped = raw.command("BRPOP", k("out"), "1");
    CHECK(popped.size() == 2 && popped[1].str() == "unlock");
    EXPECT_ERROR(IPC_ERR_INVALID_ARGUMENT,
                 c.worker({k("x")}, [](const redipc::request &) {}, redipc::worker_options().bare(true).reliable(true)));

    // RPC on the redis-ipc wire: serve_methods answered by a C++ caller on the same wire.
    redipc::worker_options fleet;
    fleet.protocol(IPC_PROTOCOL_REDIS_IPC).block_timeout_ms(100);
    redipc::call_options json;
    json.protocol(IPC_PROTOCOL_REDIS_IPC).timeout_ms(5000);
    {
        auto s = c.serve_methods(k("rpc"), {
            {"ping", [](const redipc::call_info &) -> std::string { return "\"pong\""; }},
            {"echo", [](const redipc::call_info &call) { return std::string(call.payload()); }},
            {"none", [](const redipc::call_info &) { return std::string(); }},
            {"fail", [](const redipc::call_info &) -> std::string { throw std::runtime_error("no way"); }},
        }, fleet);
        CHECK(c.call(k("rpc"), "null", "ping", json) == "\"pong\"");
        CHECK(c.call(k("rpc"), "{\"a\":1}", "echo", json) == "{\"a\":1}");
        CHECK(c.call(k("rpc"), "1", "none", json) == "null");
        auto e = EXPECT_ERROR(IPC_ERR_REMOTE, c.call(k("rpc"), "null", "jump", json));
        CHECK(e && e->message().find("unknown method: jump") != std::string::npos);
        e = EXPECT_ERROR(IPC_ERR_REMOTE, c.call(k("rpc"), "null", "fail", json));
        CHECK(e && e->message().find("no way") != std::string::npos);
        EXPECT_ERROR(IPC_ERR_INVALID_ARGUMENT, c.call(k("rpc"), "not json", "ping", json));
    }
    // A fleet server played by hand: BRPOP the envelope, PUBLISH the reply.
    {
        std::string answer;
        std::thread caller([&] { answer = c.call(k("nav"), "{\"to\":\"home\"}", "plan", json); });
        auto env = raw.command("BRPOP", k("nav"), "5");
        std::string e = env.size() == 2 ? env[1].string() : "";
        auto at = e.find("\"reply_channel\":\"");
        auto end = at == std::string::npos ? at : e.find('"', at + 17);
        std::string channel = end == std::string::npos ? "" : e.substr(at + 17, end - at - 17);
        CHECK(e.find("\"method\":\"plan\"") != std::string::npos);
        CHECK(e.find("\"payload\":{\"to\":\"home\"}") != std::string::npos);
        CHECK(channel.rfind(k("nav") + ":reply:", 0) == 0);
        raw.command("PUBLISH", channel, "{\"ok\":true,\"payload\":[1,2,3]}");
        caller.join();
        CHECK(answer == "[1,2,3]");
    }

    // Hash state: every notification, events, the fleet's clear; writes in its words.
    auto log = std::make_shared<counter>();
    raw.command("HSET", k("keycard"), "uid", "04ab");
    {
        auto w = c.hash_watch(k("keycard"),
            [log](std::string_view f, std::optional<std::string_view> v) {
                log->add(std::string(f) + "=" + std::string(v.value_or("<gone>")));
            },
            [log](std::string_view e) { log->add("event:" + std::string(e)); },
            redipc::hash_watch_options().every_notification(true));
        CHECK(wait_for([&] { return log->size() == 1; }));
        raw.command("PUBLISH", k("keycard"), "uid");
        CHECK(wait_for([&] { return log->size() == 2; }));  // read before the DEL below
        raw.command("PUBLISH", k("keycard"), "seatbox:opened");
        raw.command("DEL", k("keycard"));
        raw.command("PUBLISH", k("keycard"), "cleared");
        CHECK(wait_for([&] { return log->size() == 4; }));
    }
    CHECK((log->copy() == std::vector<std::string>{"uid=04ab", "uid=04ab", "event:seatbox:opened", "uid=<gone>"}));
    auto msgs = std::make_shared<counter>();
    {
        auto sub = raw.subscribe(k("vehicle"), [msgs](const redipc::message &m) {
            if (m.is_message()) msgs->add(std::string(m.payload()));
        });
        c.hash_set(k("vehicle"), "state", "ready", redipc::hash_write_options().timestamp(IPC_TIMESTAMP_UNIX_MS));
        c.hash_set_many(k("vehicle"), {{"a", "1"}, {"b", "2"}}, redipc::hash_write_options().announce("blinker:state"));
        c.hash_replace_all(k("vehicle"), {{"a", "1"}}, redipc::hash_write_options().announce("replaced"));
        c.hash_clear(k("vehicle"));
        CHECK(wait_for([&] { return msgs->size() == 4; }));
        CHECK((msgs->copy() == std::vector<std::string>{"state", "blinker:state", "replaced", "cleared"}));
    }
    // Faults.
    CHECK(c.fault_set(k("battery"), 35, "too hot"));
    CHECK(!c.fault_set(k("battery"), 35, "too hot"));
    CHECK(raw.command("SISMEMBER", k("battery") + ":fault", "35").integer() == 1);
    CHECK(c.fault_clear(k("battery"), 35));
    CHECK(!c.fault_clear(k("battery"), 35));
    EXPECT_ERROR(IPC_ERR_INVALID_ARGUMENT, c.fault_set(k("battery"), 0, "x"));
}

void test_lifecycle_groups_and_reports(const std::string &url) {
    // A worker stopped from inside its own handler: the stop is asked for and returns at
    // once; the handler's box is freed (userdata_free) once it returned.
    auto reports = std::make_shared<counter>();
    redipc::client c(url, redipc::options().report([reports](const redipc::report &r) {
        reports->add(std::string(r.text()));
    }));
    auto calls = std::make_shared<std::atomic<int>>(0);
    redipc::worker *self = nullptr;
    std::atomic<long> stop_ms{-1};
    {
        auto w = c.worker({k("selfstop")}, [calls, &self, &stop_ms](const redipc::request &) {
            ++*calls;
            auto t0 = std::chrono::steady_clock::now();
            self->stop(5000);
            stop_ms = static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                            std::chrono::steady_clock::now() - t0)
                                            .count());
        }, redipc::worker_options().block_timeout_ms(100));
        self = &w;
        c.send_request(k("selfstop"), "x");
        CHECK(wait_for([&] { return stop_ms >= 0; }));
        CHECK(stop_ms < 1000);
        CHECK(wait_for([&] { return calls.use_count() == 1; }));  // the box is gone
        c.send_request(k("selfstop"), "y");
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        CHECK(*calls == 1);
    }
    c.del("ipc:{q:" + k("selfstop") + "}:pending");

    // A deadline while a callback runs: IPC_ERR_TIMEOUT, then done.
    redipc::client pub(url);
    std::atomic<bool> running{false}, release{false};
    auto sub = c.subscribe(k("slow"), [&](const redipc::message &m) {
        if (!m.is_message()) return;
        running = true;
        while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    });
    pub.publish(k("slow"), "x");
    CHECK(wait_for([&] { return running.load(); }));
    EXPECT_ERROR(IPC_ERR_TIMEOUT, sub.stop(100));
    release = true;
    sub.stop(5000);
    sub.stop(0);

    // A subscription group: a callback per channel; replaced, unhandled and stopped routes
    // free their boxes.
    auto a = std::make_shared<counter>();
    auto b = std::make_shared<counter>();
    {
        auto g = c.subscribe_group(redipc::subscribe_options().capacity(100));
        g.handle(k("ga"), [a](const redipc::message &m) {
            if (m.is_message()) a->add(std::string(m.payload()));
        });
        g.handle(k("gb"), [b](const redipc::message &m) {
            if (m.is_message()) b->add(std::string(m.payload()));
        });
        CHECK(pub.publish(k("ga"), "1") == 1 && pub.publish(k("gb"), "2") == 1);
        CHECK(wait_for([&] { return a->size() == 1 && b->size() == 1; }));
        CHECK(a->copy()[0] == "1" && b->copy()[0] == "2");
        g.unhandle(k("gb"));
        CHECK(wait_for([&] { return b.use_count() == 1; }));
        EXPECT_ERROR(IPC_ERR_INVALID_ARGUMENT, g.handle("", [](const redipc::message &) {}));
        g.stop(5000);
        CHECK(a.use_count() == 1);
    }

    // Typed reports: a handler's failure reaches the client's report handler.
    {
        auto w = c.worker({k("failing")}, [](const redipc::request &) { throw std::runtime_error("nope"); },
                          redipc::worker_options().block_timeout_ms(100));
        c.send_request(k("failing"), "x");
        CHECK(wait_for([&] { return reports->size() >= 1; }));
    }
    auto texts = reports->copy();
    CHECK(!texts.empty() && texts[0].find("handler failed on queue") != std::string::npos &&
          texts[0].find("nope") != std::string::npos);
    // And a handle's own report handler sees the fields.
    std::mutex mu;
    ipc_report_kind kind = IPC_REPORT_OTHER;
    ipc_result err = IPC_OK;
    std::string name;
    {
        auto w = c.worker({k("own")}, [](const redipc::request &) { throw std::runtime_error("own"); },
                          redipc::worker_options().block_timeout_ms(100).report([&](const redipc::report &r) {
                              std::lock_guard<std::mutex> g(mu);
                              kind = r.kind();
                              err = r.error();
                              name = std::string(r.name());
                          }));
        c.send_request(k("own"), "x");
        CHECK(wait_for([&] {
            std::lock_guard<std::mutex> g(mu);
            return !name.empty();
        }));
    }
    std::lock_guard<std::mutex> g(mu);
    CHECK(kind == IPC_REPORT_HANDLER_FAILED && err == IPC_ERR_HANDLER && name == k("own"));
}

void test_poll_mode(const std::string &url) {
    redipc::client c(url, redipc::options().poll_mode(true));
    redipc::client pub(url);
    std::vector<std::string> got;
    std::thread::id cb_thread;
    auto sub = c.subscribe(k("polled"), [&](const redipc::message &m) {
        cb_thread = std::this_thread::get_id();
        if (m.is_message()) got.emplace_back(m.payload());
    });
    pub.publish(k("polled"), "x");
    CHECK(c.fd() >= 0);
    for (int i = 0; i < 50 && got.empty(); ++i) c.poll(100);
    CHECK(got == std::vector<std::string>{"x"} && cb_thread == std::this_thread::get_id());
    EXPECT_ERROR(IPC_ERR_INVALID_ARGUMENT, pub.poll(0));
}

// Counters under a scripted workload, the histogram, and the reply size limit.
void test_stats(const std::string &url) {
    redipc::client c(url);
    redipc::client admin(url);
    ipc_client_counts base = c.stats();
    CHECK(base.size == sizeof(ipc_client_counts) && base.commands > 0 && base.in_flight == 0);
    for (int i = 0; i < 10; ++i) c.set(k("st" + std::to_string(i)), "v");
    for (int i = 0; i < 5; ++i) CHECK(c.get(k("st" + std::to_string(i))) == std::optional<std::string>("v"));
    c.command("LPUSH", k("stlist"), "x");
    auto e = EXPECT_ERROR(IPC_ERR_SERVER, c.command("INCR", k("stlist")));
    CHECK(e && e->server_code() == "WRONGTYPE");
    ipc_client_counts s = c.stats();
    CHECK(s.commands - base.commands == 10 + 5 + 1 + 1);
    CHECK(s.failed_server - base.failed_server == 1 && s.failed - base.failed == 1);
    CHECK(s.latency_count - base.latency_count == 16);
    CHECK(s.in_flight == 0);
    CHECK(s.bytes_out - base.bytes_out >= 290 && s.bytes_in - base.bytes_in >= 50);
    CHECK(s.latency_p50_us > 0 && s.latency_p50_us <= s.latency_p99_us && s.latency_p99_us <= s.latency_p999_us);
    auto hist = c.latency_histogram();
    uint64_t sum = 0;
    for (size_t i = 0; i < hist.size(); ++i) {
        sum += hist[i].second;
        if (i > 0) CHECK(hist[i].first > hist[i - 1].first);
    }
    CHECK(hist.size() == s.latency_buckets && !hist.empty() && sum == s.latency_count);
    // A killed connection is re-established and counted.
    kill_client(admin, c);
    CHECK(wait_for([&] {
        try {
            c.get(k("st0"));
        } catch (const redipc::error &) {
            return false;
        }
        return c.stats().reconnects == 1;
    }));
    EXPECT_ERROR(IPC_ERR_INVALID_ARGUMENT, redipc::client(url, redipc::options().max_reply_size(1000)));
    redipc::client small(url, redipc::options().max_reply_size(1 << 20));
    c.set(k("big"), std::string(2 << 20, 'x'));
    EXPECT_ERROR(IPC_ERR_PROTOCOL, small.get(k("big")));
    CHECK(small.stats().failed_protocol == 1);
}

struct log_lines {
    std::mutex mu;
    std::vector<std::tuple<ipc_log_level, std::string, std::string>> lines;
    void add(ipc_log_level l, std::string_view t, std::string_view m) {
        std::lock_guard<std::mutex> g(mu);
        lines.emplace_back(l, std::string(t), std::string(m));
    }
    bool has(ipc_log_level l, const std::string &target, const std::string &w1, const std::string &w2 = "") {
        std::lock_guard<std::mutex> g(mu);
        for (const auto &x : lines) {
            if (std::get<0>(x) == l && std::get<1>(x) == target && std::get<2>(x).find(w1) != std::string::npos &&
                std::get<2>(x).find(w2) != std::string::npos)
                return true;
        }
        return false;
    }
    size_t size() {
        std::lock_guard<std::mutex> g(mu);
        return lines.size();
    }
};

// The log handler sees a killed connection with its reason, its restoration and a report;
// replacing it destroys the previous one; its exceptions reach the callback error handler.
void test_log(const std::string &url) {
    auto lines = std::make_shared<log_lines>();
    EXPECT_ERROR(IPC_ERR_INVALID_ARGUMENT, redipc::set_log_handler([](ipc_log_level, std::string_view, std::string_view) {},
                                                                   static_cast<ipc_log_level>(9)));
    redipc::set_log_handler(
        [lines](ipc_log_level l, std::string_view t, std::string_view m) { lines->add(l, t, m); }, IPC_LOG_DEBUG);
    redipc::client c(url);
    redipc::client admin(url);
    CHECK(wait_for([&] { return lines->has(IPC_LOG_DEBUG, "redipc::connection", "connected"); }));
    kill_client(admin, c);
    CHECK(wait_for([&] { return lines->has(IPC_LOG_WARN, "redipc::connection", "lost", "closed"); }));
    CHECK(wait_for([&] {
        try {
            c.get(k("x"));
        } catch (const redipc::error &) {
            return false;
        }
        return lines->has(IPC_LOG_INFO, "redipc::connection", "restored");
    }));
    {
        auto w = c.worker({k("logq")}, [](const redipc::request &) { throw std::runtime_error("no such job"); },
                          redipc::worker_options().block_timeout_ms(100));
        c.send_request(k("logq"), "j1");
        CHECK(wait_for([&] { return lines->has(IPC_LOG_WARN, "redipc::report", "no such job"); }));
    }
    // Replacing: the previous handler is destroyed before set_log_handler returns.
    std::mutex emu;
    std::vector<std::string> errors;
    redipc::set_callback_error_handler([&](const char *where, std::exception_ptr) {
        std::lock_guard<std::mutex> g(emu);
        errors.emplace_back(where);
    });
    redipc::set_log_handler([](ipc_log_level, std::string_view, std::string_view) { throw std::runtime_error("x"); },
                            IPC_LOG_WARN);
    CHECK(lines.use_count() == 1);
    size_t n = lines->size();
    kill_client(admin, c);
    CHECK(wait_for([&] {
        std::lock_guard<std::mutex> g(emu);
        return !errors.empty() && errors[0] == std::string("a log callback");
    }));
    CHECK(wait_for([&] { return c.stats().reconnects == 2; }));
    redipc::set_log_handler({});
    redipc::set_callback_error_handler({});
    CHECK(lines->size() == n);
}

// At maxmemory with noeviction, writes fail with the server's OOM; reads and publish go on.
void test_oom(const std::string &url) {
    redipc::client c(url);
    redipc::client admin(url);
    std::atomic<int> got{0};
    c.set(k("before"), "1");
    auto sub = c.subscribe(k("news"), [&](const redipc::message &m) {
        if (m.is_message() && m.payload() == "still here") ++got;
    });
    struct restore {
        redipc::client &admin;
        ~restore() {
            try {
                admin.command("CONFIG", "SET", "maxmemory", "0");
            } catch (...) {
            }
        }
    } guard{admin};
    admin.command("CONFIG", "SET", "maxmemory-policy", "noeviction");
    admin.command("CONFIG", "SET", "maxmemory", "1");
    auto oom = [](const std::optional<redipc::error> &e) { return e && e->server_code() == "OOM"; };
    CHECK(oom(EXPECT_ERROR(IPC_ERR_SERVER, c.set(k("k"), "v"))));
    CHECK(oom(EXPECT_ERROR(IPC_ERR_SERVER, c.send_request(k("jobs"), "payload"))));
    CHECK(oom(EXPECT_ERROR(IPC_ERR_SERVER, c.stream_publish(k("events"), {{"f", "v"}}))));
    CHECK(oom(EXPECT_ERROR(IPC_ERR_SERVER, c.hash_set(k("state"), "f", "v"))));
    CHECK(c.get(k("before")) == std::optional<std::string>("1"));
    CHECK(c.publish(k("news"), "still here") == 1);
    CHECK(wait_for([&] { return got == 1; }));
    admin.command("CONFIG", "SET", "maxmemory", "0");
    CHECK(admin.command("EXISTS", k("k"), k("events"), k("state")).integer() == 0);
    c.send_request(k("jobs"), "payload");
}

}  // namespace

int main(int argc, char **argv) {
    if (argc < 2) {
        std::cerr << "usage: test_cpp URL\n";
        return 2;
    }
    std::string url = argv[1];
    tag = std::to_string(getpid()) + (url.rfind("unix", 0) == 0 ? "u" : "t");
    struct test {
        const char *name;
        void (*fn)(const std::string &);
    };
    const test tests[] = {
        {"commands", test_commands},       {"errors", test_errors},
        {"pubsub", test_pubsub},           {"throwing callback", test_throwing_callback},
        {"transactions", test_transactions}, {"queues and rpc", test_queues_and_rpc},
        {"state and streams", test_state_and_streams}, {"poll mode", test_poll_mode},
        {"lifecycle, groups and reports", test_lifecycle_groups_and_reports},
        {"fleet", test_fleet},             {"stats", test_stats},
        {"log", test_log},                 {"oom", test_oom},
        {"coordination", test_coordination},
    };
    for (const auto &t : tests) {
        int before = failed;
        try {
            t.fn(url);
        } catch (const std::exception &e) {
            ++failed;
            std::cerr << t.name << ": unexpected exception: " << e.what() << "\n";
        }
        std::cout << (failed == before ? "ok   " : "FAIL ") << t.name << "\n";
    }
    std::cout << passed << " passed, " << failed << " failed\n";
    return failed == 0 ? 0 : 1;
}
