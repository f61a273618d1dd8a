/* lifecycle_test.c: the one lifecycle of every handle that runs callbacks (worker, RPC server,
 * stream consumer, hash watcher, key watch, subscription, subscription group), against a
 * running server.
 *
 *   ./lifecycle_test URL          URL: redis://127.0.0.1:PORT/0 or unix:///path/redis.sock
 *
 * For each handle:
 *   - `_stop(h, timeout)` from inside one of its own callbacks returns IPC_OK at once (the stop
 *     is asked for), the handle stops when that callback returns (userdata_free runs then),
 *     and no callback follows;
 *   - `_stop(h, short)` while a callback runs on another thread gives IPC_ERR_TIMEOUT (the
 *     callback still runs, userdata_free has not run), then `_stop(h, long)` gives IPC_OK
 *     once it returned, with userdata_free run; stopping again is IPC_OK at once;
 *   - `_free` alone stops and frees; `_free(NULL)` is a no-op;
 *   - userdata_free runs exactly once in every case (and never before the last callback
 *     returned).
 *
 * And a fork() after the client is made (a daemon's double fork, a pre-forking server): in
 * the child the inherited client's calls fail at once with IPC_ERR_CLOSED without touching
 * the parent's connections, a client made in the child works, freeing the inherited one
 * there leaves the parent's alone, and the parent's client goes on answering its own calls.
 *
 * Environment: REDIPC_TEST_QUICK=1 (runs under valgrind) leaves the fork test out: in a
 * forked child the parent's other threads are gone, and valgrind counts their
 * thread-local memory as lost when the child exits.
 *
 * Prints "N passed, M failed" last and exits non-zero on any failure.
 */
#include <pthread.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

enum kind { WORKER, SERVER, CONSUMER, HASH_WATCHER, KEY_WATCH, SUBSCRIPTION, GROUP, KINDS };

static const char *kind_names[KINDS] = {"worker",      "rpc server", "stream consumer",
                                        "hash watcher", "key watch",  "subscription",
                                        "group"};

static char prefix[64];
static ipc_client *client;

/* What one handle's callbacks see and do. */
struct ctx {
    enum kind kind;
    void *volatile handle;  /* the handle, for a stop from inside */
    char name[128];         /* its queue, service, stream, hash, key or channel */
    volatile long calls;    /* callback calls (messages only, for pub/sub) */
    volatile long freed;    /* userdata_free calls */
    volatile long running;  /* a callback runs now */
    volatile long freed_while_running;
    volatile long stop_inside; /* the next callback stops its own handle */
    volatile long stop_rc;     /* what that stop returned (+1000) */
    volatile double stop_ms;   /* and how long it took */
    volatile long block;       /* callbacks wait for `release` */
    volatile long release;
};

static ipc_result stop_handle(enum kind k, void *h, uint64_t ms) {
    switch (k) {
    case WORKER: return ipc_worker_stop(h, ms);
    case SERVER: return ipc_server_stop(h, ms);
    case CONSUMER: return ipc_stream_consumer_stop(h, ms);
    case HASH_WATCHER: return ipc_hash_watcher_stop(h, ms);
    case KEY_WATCH: return ipc_key_watch_stop(h, ms);
    case SUBSCRIPTION: return ipc_subscription_stop(h, ms);
    case GROUP: return ipc_group_stop(h, ms);
    default: return IPC_ERR_INTERNAL;
    }
}

static void free_handle(enum kind k, void *h) {
    switch (k) {
    case WORKER: ipc_worker_free(h); break;
    case SERVER: ipc_server_free(h); break;
    case CONSUMER: ipc_stream_consumer_free(h); break;
    case HASH_WATCHER: ipc_hash_watcher_free(h); break;
    case KEY_WATCH: ipc_key_watch_free(h); break;
    case SUBSCRIPTION: ipc_subscription_free(h); break;
    case GROUP: ipc_group_free(h); break;
    default: break;
    }
}

/* Every callback of every kind comes here. */
static void on_call(struct ctx *x) {
    if (add(&x->running, 1) != 0) add(&x->freed_while_running, 100); /* never two at once */
    add(&x->calls, 1);
    if (load(&x->stop_inside)) {
        double t0 = now_ms();
        x->stop_rc = 1000 + (long)stop_handle(x->kind, x->handle, 5000);
        x->stop_ms = now_ms() - t0;
        __sync_synchronize();
        add(&x->stop_inside, -1);
    }
    while (load(&x->block) && !load(&x->release)) sleep_ms(2);
    add(&x->running, -1);
}

static void on_free(void *userdata) {
    struct ctx *x = userdata;
    if (load(&x->running) != 0) add(&x->freed_while_running, 1);
    add(&x->freed, 1);
}

static int request_cb(void *userdata, const ipc_request *req, ipc_error_out *err) {
    (void)req;
    (void)err;
    on_call(userdata);
    return 0;
}

static int rpc_cb(void *userdata, const ipc_call_info *call, ipc_rpc_reply *reply,
                  ipc_error_out *err) {
    (void)call;
    (void)reply;
    (void)err;
    on_call(userdata);
    return 0;
}

static int entry_cb(void *userdata, const ipc_entry *entry, ipc_error_out *err) {
    (void)entry;
    (void)err;
    on_call(userdata);
    return 0;
}

static void field_cb(void *userdata, const char *f, size_t fl, const char *v, size_t vl) {
    (void)f;
    (void)fl;
    (void)v;
    (void)vl;
    on_call(userdata);
}

static void key_cb(void *userdata, const char *key, size_t kl, const char *event) {
    (void)key;
    (void)kl;
    (void)event;
    on_call(userdata);
}

static void message_cb(void *userdata, const ipc_message *m) {
    if (m->kind == IPC_EVENT_MESSAGE) on_call(userdata);
}

/* Make the handle of `x->kind` on `x->name`. */
static ipc_result start(struct ctx *x, void **out) {
    const char *n = x->name;
    size_t nl = strlen(n);
    ipc_result rc;
    switch (x->kind) {
    case WORKER: {
        ipc_worker_options *o = NULL;
        ipc_worker *w = NULL;
        CHECK_OK(ipc_worker_options_new(&o));
        CHECK_OK(ipc_worker_options_set_block_timeout_ms(o, 100));
        CHECK_OK(ipc_worker_options_set_prefetch(o, 1));
        rc = ipc_worker_new(client, &n, &nl, 1, o, request_cb, x, on_free, &w);
        ipc_worker_options_free(o);
        *out = w;
        return rc;
    }
    case SERVER: {
        ipc_server *s = NULL;
        rc = ipc_serve(client, n, nl, NULL, rpc_cb, x, on_free, &s);
        *out = s;
        return rc;
    }
    case CONSUMER: {
        ipc_consumer_options *o = NULL;
        ipc_stream_consumer *k = NULL;
        CHECK_OK(ipc_consumer_options_new(&o));
        CHECK_OK(ipc_consumer_options_set_block_ms(o, 100));
        CHECK_OK(ipc_consumer_options_set_count(o, 1));
        rc = ipc_stream_consume(client, n, nl, "g", 1, "c", 1, o, entry_cb, x, on_free, &k);
        ipc_consumer_options_free(o);
        *out = k;
        return rc;
    }
    case HASH_WATCHER: {
        ipc_hash_watcher *w = NULL;
        rc = ipc_hash_watch(client, n, nl, NULL, field_cb, NULL, x, on_free, &w);
        *out = w;
        return rc;
    }
    case KEY_WATCH: {
        ipc_key_watch *w = NULL;
        const char *events[1] = {"set"};
        rc = ipc_watch_keys(client, n, nl, events, 1, true, key_cb, x, on_free, &w);
        *out = w;
        return rc;
    }
    case SUBSCRIPTION: {
        ipc_subscription *s = NULL;
        rc = ipc_subscribe(client, IPC_SUB_CHANNEL, &n, &nl, 1, NULL, message_cb, x, on_free,
                           &s);
        *out = s;
        return rc;
    }
    case GROUP: {
        ipc_group *g = NULL;
        rc = ipc_subscribe_group(client, NULL, &g);
        if (rc == IPC_OK) rc = ipc_group_handle(g, n, nl, message_cb, x, on_free);
        if (rc != IPC_OK) {
            ipc_group_free(g);
            g = NULL;
        }
        *out = g;
        return rc;
    }
    default: return IPC_ERR_INTERNAL;
    }
}

/* An RPC call on a thread of its own (it waits for the handler). */
struct call_thread {
    pthread_t t;
    char service[128];
    int started;
};

static void *call_main(void *arg) {
    struct call_thread *ct = arg;
    ipc_call_options *o = NULL;
    char *reply = NULL;
    size_t len = 0;
    if (ipc_call_options_new(&o) == IPC_OK && ipc_call_options_set_timeout_ms(o, 3000) == IPC_OK &&
        ipc_call(client, ct->service, strlen(ct->service), "", 0, "x", 1, o, &reply, &len) ==
            IPC_OK)
        ipc_buf_free(reply, len);
    ipc_call_options_free(o);
    return NULL;
}

static struct call_thread calls[8];
static int ncalls;

/* Make the handle's callback run once (eventually). */
static void trigger(struct ctx *x) {
    const char *n = x->name;
    size_t nl = strlen(n);
    static long seq = 0;
    char v[32];
    int64_t i64;
    snprintf(v, sizeof v, "%ld", ++seq);
    switch (x->kind) {
    case WORKER: CHECK_OK(ipc_send_request(client, n, nl, v, strlen(v))); break;
    case SERVER: {
        struct call_thread *ct = &calls[ncalls++ % 8];
        snprintf(ct->service, sizeof ct->service, "%s", n);
        ct->started = pthread_create(&ct->t, NULL, call_main, ct) == 0;
        CHECK(ct->started);
        break;
    }
    case CONSUMER: {
        ipc_field f;
        f.name = "v";
        f.name_len = 1;
        f.value = v;
        f.value_len = strlen(v);
        CHECK_OK(ipc_stream_publish(client, n, nl, &f, 1, -1, NULL, 0));
        break;
    }
    case HASH_WATCHER: CHECK_OK(ipc_hash_set(client, n, nl, "f", 1, v, strlen(v), NULL)); break;
    case KEY_WATCH: CHECK_OK(ipc_set(client, n, nl, v, strlen(v), 0)); break;
    case SUBSCRIPTION:
    case GROUP: CHECK_OK(ipc_publish(client, n, nl, v, strlen(v), &i64)); break;
    default: break;
    }
}

static void join_calls(void) {
    int i;
    for (i = 0; i < ncalls && i < 8; i++)
        if (calls[i].started) pthread_join(calls[i].t, NULL);
    ncalls = 0;
}

static void init(struct ctx *x, enum kind k, const char *what) {
    memset(x, 0, sizeof *x);
    x->kind = k;
    snprintf(x->name, sizeof x->name, "%s%s:%s", prefix, what, kind_names[k]);
}

/* A stop from inside the handle's own callback. */
static void test_stop_inside(enum kind k) {
    struct ctx x;
    void *h = NULL;
    int ok;
    init(&x, k, "inside");
    CHECK_OK(start(&x, &h));
    if (h == NULL) return;
    x.handle = h;
    __sync_synchronize();
    add(&x.stop_inside, 1);
    trigger(&x);
    WAIT_UNTIL(ok, load(&x.stop_inside) == 0, 10000);
    CHECK(ok);
    if (!ok) fprintf(stderr, "%s: no callback came\n", kind_names[k]);
    __sync_synchronize();
    CHECK(x.stop_rc == 1000 + IPC_OK);
    CHECK(x.stop_ms < 1000.0); /* at once, not waiting for itself */
    /* The handle stops when that callback returned: userdata_free runs then. */
    WAIT_UNTIL(ok, load(&x.freed) == 1, 10000);
    CHECK(ok);
    if (!ok) fprintf(stderr, "%s: userdata_free did not run after a stop from inside\n",
                     kind_names[k]);
    CHECK_OK(stop_handle(k, h, 1000)); /* stopped: at once */
    trigger(&x);
    sleep_ms(200);
    CHECK(load(&x.calls) == 1); /* no callback after the stop */
    free_handle(k, h);
    join_calls();
    CHECK(load(&x.freed) == 1);
    CHECK(load(&x.freed_while_running) == 0);
}

/* A stop with a deadline while a callback runs on another thread. */
static void test_stop_deadline(enum kind k) {
    struct ctx x;
    void *h = NULL;
    double t0;
    int ok;
    init(&x, k, "deadline");
    x.block = 1;
    CHECK_OK(start(&x, &h));
    if (h == NULL) return;
    x.handle = h;
    trigger(&x);
    WAIT_UNTIL(ok, load(&x.running) == 1, 10000);
    CHECK(ok);
    t0 = now_ms();
    CHECK_RC(stop_handle(k, h, 100), IPC_ERR_TIMEOUT);
    CHECK(now_ms() - t0 >= 90.0 && now_ms() - t0 < 3000.0);
    CHECK(load(&x.running) == 1 && load(&x.freed) == 0); /* it still runs; not freed */
    add(&x.release, 1);
    CHECK_OK(stop_handle(k, h, 5000));
    CHECK(load(&x.running) == 0);
    /* userdata_free ran when the stop returned IPC_OK (or runs right now on the thread of
       the callback that just returned). */
    WAIT_UNTIL(ok, load(&x.freed) == 1, 1000);
    CHECK(ok);
    CHECK_OK(stop_handle(k, h, 0)); /* twice is fine */
    free_handle(k, h);
    join_calls();
    CHECK(load(&x.freed) == 1);
    CHECK(load(&x.calls) == 1);
    CHECK(load(&x.freed_while_running) == 0);
}

/* `_free` alone: stop, then free; userdata_free once. */
static void test_free_only(enum kind k) {
    struct ctx x;
    void *h = NULL;
    int ok;
    init(&x, k, "free");
    CHECK_OK(start(&x, &h));
    if (h == NULL) return;
    x.handle = h;
    trigger(&x);
    WAIT_UNTIL(ok, load(&x.calls) == 1, 10000);
    CHECK(ok);
    free_handle(k, h);
    join_calls();
    WAIT_UNTIL(ok, load(&x.freed) == 1, 1000);
    CHECK(ok);
    sleep_ms(50);
    CHECK(load(&x.freed) == 1);
    free_handle(k, NULL);
}

/* The stop functions refuse NULL. */
static void test_null(void) {
    enum kind k;
    for (k = 0; k < KINDS; k++) CHECK_RC(stop_handle(k, NULL, 0), IPC_ERR_NULL_ARG);
}

/* In the child of a fork(): 0 if all went as it should, else the step that did not. */
static int fork_child(const char *url, const char *key) {
    char *buf = NULL;
    size_t len = 0;
    bool found = false;
    ipc_client *mine = NULL;
    double t0 = now_ms();
    if (ipc_get(client, key, strlen(key), &buf, &len, &found) != IPC_ERR_CLOSED) return 1;
    if (now_ms() - t0 > 500.0) return 2;
    if (strstr(ipc_last_error_message(), "fork()") == NULL) return 3;
    if (ipc_set(client, key, strlen(key), "child", 5, 0) != IPC_ERR_CLOSED) return 4;
    if (ipc_client_new(url, NULL, &mine) != IPC_OK) return 5;
    if (ipc_get(mine, key, strlen(key), &buf, &len, &found) != IPC_OK) return 6;
    if (!found || !bytes_eq(buf, len, "parent")) return 7;
    ipc_buf_free(buf, len);
    ipc_client_free(mine);
    ipc_client_free(client); /* the parent's connections stay untouched */
    return 0;
}

static void test_fork(const char *url) {
    char key[96];
    char *buf = NULL;
    size_t len = 0;
    bool found = false;
    int status = 0, i, own = 0;
    pid_t pid;
    snprintf(key, sizeof key, "%sfork", prefix);
    CHECK_OK(ipc_set(client, key, strlen(key), "parent", 6, 0));
    fflush(NULL);
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) _exit(fork_child(url, key));
    /* The parent's calls while the child runs and after it: each answered with its own. */
    for (i = 0; i < 400; i++) {
        if (i == 200) CHECK(waitpid(pid, &status, 0) == pid);
        if (ipc_get(client, key, strlen(key), &buf, &len, &found) == IPC_OK && found &&
            bytes_eq(buf, len, "parent"))
            own++;
        ipc_buf_free(buf, len);
        buf = NULL;
    }
    CHECK(own == 400);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fprintf(stderr, "fork child: status %d (the step that failed)\n", WEXITSTATUS(status));
    printf("%-16s %s\n", "fork", own == 400 && WEXITSTATUS(status) == 0 ? "ok" : "FAILED");
}

int main(int argc, char **argv) {
    enum kind k;
    if (argc < 2) {
        fprintf(stderr, "usage: %s URL\n", argv[0]);
        return 2;
    }
    snprintf(prefix, sizeof prefix, "lifecycle_test:%ld:", (long)getpid());
    CHECK_OK(ipc_client_new(argv[1], NULL, &client));
    if (client == NULL) return check_summary();
    test_null();
    for (k = 0; k < KINDS; k++) {
        unsigned long failed_before = check_failed;
        test_stop_inside(k);
        test_stop_deadline(k);
        test_free_only(k);
        printf("%-16s %s\n", kind_names[k], check_failed == failed_before ? "ok" : "FAILED");
    }
    if (getenv("REDIPC_TEST_QUICK") == NULL || strcmp(getenv("REDIPC_TEST_QUICK"), "1") != 0)
        test_fork(argv[1]);
    ipc_client_free(client);
    return check_summary();
}
