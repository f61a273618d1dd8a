/* queue_rpc_test.c: request queues (ipc_send_request, ipc_worker) and RPC (ipc_call,
 * ipc_serve) of the C API against a running server.
 *
 *   ./queue_rpc_test URL          URL: redis://127.0.0.1:PORT/0 or unix:///path/redis.sock
 *
 * Covers: 10,000 requests over 4 workers, each handled exactly once; fairness of one worker
 * over two busy queues; stop while handlers run (IPC_ERR_TIMEOUT, then IPC_OK, nothing runs
 * after); a handler freeing its own worker and using the client; reliable mode: a failing
 * handler's requests end in the dead-letter list after max_attempts with its message (read
 * with ipc_queue_stats and LRANGE on ipc:{q:NAME}:dead), requeued and then handled; RPC:
 * happy path with methods, remote errors, no server (after the timeout and fail-fast), a
 * timeout with a slow server, 16 concurrent callers, no leftover keys or subscriptions after
 * 1,000 calls, 16 MiB and 0-byte payloads, a handler calling the client, a server freed from
 * its own handler, a worker and a server stopped from their own handlers (IPC_OK: the stop is
 * asked for); bad input (NULL handler, empty names, ...); userdata_free exactly once.
 *
 * Environment: REDIPC_TEST_QUICK=1 uses smaller counts (for runs under valgrind).
 * Prints "N passed, M failed" last and exits non-zero on any failure.
 *
 * Waiting polls shared counters with generous deadlines; a deadline passing is a failure.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static int quick = 0;
static char prefix[64];

/* ---- small helpers ------------------------------------------------------------------ */

/* The name `name` under this run's prefix (one of a few rotating static buffers). */
static const char *name(const char *n) {
    static char bufs[32][128];
    static int next = 0;
    char *b = bufs[next++ % 32];
    snprintf(b, sizeof bufs[0], "%s%s", prefix, n);
    return b;
}

/* Counters shared between threads (GCC/Clang builtins; the tests are C99). */
/* Wait until *p >= want, up to ms; whether it got there. */
static int wait_for(volatile long *p, long want, double ms) {
    double deadline = now_ms() + ms;
    while (load(p) < want) {
        if (now_ms() > deadline) return 0;
        sleep_ms(2);
    }
    return 1;
}

static int last_error_has(const char *text) {
    return strstr(ipc_last_error_message(), text) != NULL;
}

static ipc_result cmd(ipc_client *c, ipc_reply **out, ...) {
    const char *argv[8];
    size_t argc = 0;
    va_list ap;
    va_start(ap, out);
    for (;;) {
        const char *a = va_arg(ap, const char *);
        if (a == NULL || argc == 8) break;
        argv[argc++] = a;
    }
    va_end(ap);
    return ipc_command(c, argv, NULL, argc, out);
}

/* How many keys match `pattern` (KEYS; the test server is private); -1 on error. */
static long count_keys(ipc_client *c, const char *pattern) {
    ipc_reply *r = NULL;
    long n;
    if (cmd(c, &r, "KEYS", pattern, NULL) != IPC_OK) return -1;
    n = (long)ipc_reply_len(r);
    ipc_reply_free(r);
    return n;
}

/* How many channels matching `pattern` have subscribers (PUBSUB CHANNELS); -1 on error. */
static long count_channels(ipc_client *c, const char *pattern) {
    ipc_reply *r = NULL;
    long n;
    if (cmd(c, &r, "PUBSUB", "CHANNELS", pattern, NULL) != IPC_OK) return -1;
    n = (long)ipc_reply_len(r);
    ipc_reply_free(r);
    return n;
}

static ipc_result send_str(ipc_client *c, const char *queue, const char *payload) {
    return ipc_send_request(c, queue, strlen(queue), payload,
                            strlen(payload));
}

/* A report callback that ignores what it gets: it silences the reports of handler failures
 * these tests cause on purpose. */
static void quiet(void *userdata, const ipc_report *report) {
    (void)userdata;
    (void)report;
}

static ipc_worker_options *worker_options(size_t concurrency, int reliable) {
    ipc_worker_options *o = NULL;
    CHECK_OK(ipc_worker_options_new(&o));
    CHECK_OK(ipc_worker_options_set_concurrency(o, concurrency));
    CHECK_OK(ipc_worker_options_set_block_timeout_ms(o, 100));
    CHECK_OK(ipc_worker_options_set_reliable(o, reliable != 0));
    CHECK_OK(ipc_worker_options_set_report_cb(o, quiet, NULL, NULL));
    return o;
}

/* ipc_serve with `concurrency` handlers. */
static ipc_result serve(ipc_client *c, const char *service, size_t concurrency, ipc_rpc_cb cb,
                        void *userdata, ipc_userdata_free_cb userdata_free, ipc_server **out) {
    ipc_worker_options *o = worker_options(concurrency, 0);
    ipc_result rc = ipc_serve(c, service, service == NULL ? 0 : strlen(service), o, cb,
                              userdata, userdata_free, out);
    ipc_worker_options_free(o);
    return rc;
}

/* ipc_call with a NUL-terminated service and method (NULL: none), a timeout and fail-fast. */
static ipc_result call(ipc_client *c, const char *service, const char *method,
                       const char *payload, size_t payload_len, uint64_t timeout_ms,
                       bool fail_fast, char **reply, size_t *reply_len) {
    ipc_call_options *o = NULL;
    ipc_result rc;
    if (method == NULL) method = "";
    CHECK_OK(ipc_call_options_new(&o));
    CHECK_OK(ipc_call_options_set_timeout_ms(o, timeout_ms));
    CHECK_OK(ipc_call_options_set_fail_fast(o, fail_fast));
    rc = ipc_call(c, service, service == NULL ? 0 : strlen(service), method, strlen(method),
                  payload, payload_len, o, reply, reply_len);
    ipc_call_options_free(o);
    return rc;
}

static ipc_queue_counts queue_counts(ipc_client *c, const char *q) {
    ipc_queue_counts qc;
    memset(&qc, 0xff, sizeof qc);
    CHECK_OK(ipc_queue_stats(c, q, strlen(q), &qc));
    return qc;
}

/* The payload as a number (payloads here are decimal); -1 if not. */
static long payload_number(const ipc_request *req) {
    char buf[32];
    if (req->payload_len == 0 || req->payload_len >= sizeof buf) return -1;
    memcpy(buf, req->payload, req->payload_len);
    buf[req->payload_len] = '\0';
    return strtol(buf, NULL, 10);
}

/* ---- (a) many requests over four workers --------------------------------------------- */

struct many {
    volatile long *seen; /* per request index: how many times handled */
    long n;
    volatile long total;
    volatile long bad;
    volatile long freed;
};

static int many_handler(void *userdata, const ipc_request *req, ipc_error_out *err) {
    struct many *m = userdata;
    long i = payload_number(req);
    (void)err;
    if (i < 0 || i >= m->n) {
        add(&m->bad, 1);
    } else {
        add(&m->seen[i], 1);
    }
    add(&m->total, 1);
    return 0;
}

static void many_free(void *userdata) {
    struct many *m = userdata;
    add(&m->freed, 1);
}

static void test_many_requests(ipc_client *c) {
    enum { WORKERS = 4 };
    const char *q = name("many");
    const char *queues[1];
    ipc_worker *w[WORKERS];
    ipc_worker_options *o = worker_options(1, 0);
    struct many m;
    long n = quick ? 1000 : 10000, i, once = 0, handled = 0, busy_workers = 0;
    char buf[32];
    double t0;
    memset(&m, 0, sizeof m);
    m.n = n;
    m.seen = calloc((size_t)n, sizeof(long));
    queues[0] = q;
    for (i = 0; i < WORKERS; i++) {
        w[i] = NULL;
        CHECK_OK(ipc_worker_new(c, queues, NULL, 1, o, many_handler, &m, many_free, &w[i]));
    }
    ipc_worker_options_free(o);
    t0 = now_ms();
    for (i = 0; i < n; i++) {
        snprintf(buf, sizeof buf, "%ld", i);
        CHECK_OK(send_str(c, q, buf));
    }
    CHECK(wait_for(&m.total, n, 60000));
    printf("%ld requests over %d workers: %.0f ms\n", n, WORKERS, now_ms() - t0);
    sleep_ms(50); /* a duplicate would show up now */
    for (i = 0; i < n; i++) once += load(&m.seen[i]) == 1;
    CHECK(once == n);
    CHECK(load(&m.total) == n);
    CHECK(load(&m.bad) == 0);
    for (i = 0; i < WORKERS; i++) {
        ipc_worker_counts st;
        memset(&st, 0, sizeof st);
        CHECK_OK(ipc_worker_stats(w[i], &st));
        handled += (long)st.handled;
        busy_workers += st.handled > 0;
        CHECK(st.failed == 0);
        printf("  worker %ld handled %" PRIu64 "\n", i, st.handled);
    }
    CHECK(handled == n);
    if (!quick) CHECK(busy_workers == WORKERS);
    CHECK(load(&m.freed) == 0);
    for (i = 0; i < WORKERS; i++) CHECK_OK(ipc_worker_stop(w[i], 5000));
    CHECK(load(&m.freed) == WORKERS); /* userdata_free once per worker, when it stopped */
    for (i = 0; i < WORKERS; i++) ipc_worker_free(w[i]);
    CHECK(load(&m.freed) == WORKERS); /* and never again */
    CHECK(queue_counts(c, q).pending == 0);
    free((void *)m.seen);
}

/* ---- (b) fairness over two queues ---------------------------------------------------- */

struct fair {
    char qa[128];
    char *order; /* 'a' or 'b' per handled request */
    volatile long n;
    long cap;
};

static int fair_handler(void *userdata, const ipc_request *req, ipc_error_out *err) {
    struct fair *f = userdata;
    long i = add(&f->n, 1);
    (void)err;
    if (i < f->cap) {
        f->order[i] = bytes_eq(req->queue, req->queue_len, f->qa) ? 'a' : 'b';
    }
    return 0;
}

static void test_fairness(ipc_client *c) {
    const char *queues[2];
    ipc_worker *w = NULL;
    ipc_worker_options *o = worker_options(1, 0);
    struct fair f;
    long per = quick ? 100 : 300, i, a = 0, b = 0, window;
    char buf[32];
    memset(&f, 0, sizeof f);
    snprintf(f.qa, sizeof f.qa, "%s", name("fair:a"));
    queues[0] = f.qa;
    queues[1] = name("fair:b");
    f.cap = 2 * per;
    f.order = calloc((size_t)f.cap, 1);
    /* Both queues are full before the worker starts. */
    for (i = 0; i < per; i++) {
        snprintf(buf, sizeof buf, "%ld", i);
        CHECK_OK(send_str(c, queues[0], buf));
        CHECK_OK(send_str(c, queues[1], buf));
    }
    CHECK_OK(ipc_worker_new(c, queues, NULL, 2, o, fair_handler, &f, NULL, &w));
    ipc_worker_options_free(o);
    CHECK(wait_for(&f.n, 2 * per, 30000));
    CHECK_OK(ipc_worker_stop(w, 5000));
    ipc_worker_free(w);
    /* In the first half of the work, each queue got at least a third of the turns. */
    window = per;
    for (i = 0; i < window; i++) {
        a += f.order[i] == 'a';
        b += f.order[i] == 'b';
    }
    printf("fairness: first %ld requests: %ld from queue a, %ld from queue b\n", window, a, b);
    CHECK(a + b == window);
    CHECK(a >= window / 3 && b >= window / 3);
    free(f.order);
}

/* ---- (c) stop while busy ------------------------------------------------------------- */

struct busy {
    volatile long started, finished, freed;
    long sleep_ms;
};

static int busy_handler(void *userdata, const ipc_request *req, ipc_error_out *err) {
    struct busy *b = userdata;
    (void)req;
    (void)err;
    add(&b->started, 1);
    sleep_ms(b->sleep_ms);
    add(&b->finished, 1);
    return 0;
}

static void busy_free(void *userdata) {
    struct busy *b = userdata;
    /* No handler runs any more when this runs. */
    if (load(&b->started) != load(&b->finished)) add(&b->freed, 1000);
    add(&b->freed, 1);
}

static void test_stop_while_busy(ipc_client *c) {
    const char *q = name("busy");
    const char *queues[1];
    ipc_worker *w = NULL;
    ipc_worker_options *o = worker_options(2, 0);
    ipc_worker_counts st;
    ipc_queue_counts qc;
    struct busy b;
    long i, started;
    memset(&b, 0, sizeof b);
    b.sleep_ms = 300;
    queues[0] = q;
    CHECK_OK(ipc_worker_options_set_prefetch(o, 1)); /* one request per pop */
    CHECK_OK(ipc_worker_new(c, queues, NULL, 1, o, busy_handler, &b, busy_free, &w));
    ipc_worker_options_free(o);
    for (i = 0; i < 10; i++) CHECK_OK(send_str(c, q, "x"));
    CHECK(wait_for(&b.started, 2, 10000));
    /* Two handlers sleep now: a short deadline passes. */
    CHECK_RC(ipc_worker_stop(w, 20), IPC_ERR_TIMEOUT);
    CHECK(last_error_has("still running"));
    /* Stopping again waits for them. */
    CHECK_OK(ipc_worker_stop(w, 5000));
    started = load(&b.started);
    CHECK(started == load(&b.finished));
    CHECK_OK(ipc_worker_stop(w, 0)); /* stopped: at once */
    sleep_ms(150);
    CHECK(load(&b.started) == started); /* nothing runs after a stop */
    memset(&st, 0, sizeof st);
    CHECK_OK(ipc_worker_stats(w, &st));
    CHECK((long)st.handled == started);
    qc = queue_counts(c, q);
    CHECK((long)qc.pending == 10 - started); /* the rest waits in the queue */
    CHECK(load(&b.freed) == 1);              /* when the stop returned IPC_OK */
    ipc_worker_free(w);
    CHECK(load(&b.freed) == 1);

    /* Free while busy: waits for the handlers, then userdata_free. */
    memset(&b, 0, sizeof b);
    b.sleep_ms = 200;
    o = worker_options(2, 0);
    CHECK_OK(ipc_worker_options_set_prefetch(o, 1));
    w = NULL;
    CHECK_OK(ipc_worker_new(c, queues, NULL, 1, o, busy_handler, &b, busy_free, &w));
    ipc_worker_options_free(o);
    CHECK(wait_for(&b.started, 2, 10000));
    ipc_worker_free(w);
    CHECK(load(&b.freed) == 1);
    CHECK(load(&b.started) == load(&b.finished));
    {
        ipc_reply *r = NULL;
        char key[160];
        snprintf(key, sizeof key, "ipc:{q:%s}:pending", q);
        CHECK_OK(cmd(c, &r, "DEL", key, NULL));
        ipc_reply_free(r);
    }
}

/* ---- (d) a handler that uses the client and frees its own worker ---------------------- */

struct self_free {
    ipc_client *c;
    ipc_worker *volatile w;
    char counter[128];
    volatile long calls, freed, stop_rc, incr_ok;
};

static int self_free_handler(void *userdata, const ipc_request *req, ipc_error_out *err) {
    struct self_free *s = userdata;
    int64_t v = 0;
    (void)req;
    (void)err;
    if (ipc_incr(s->c, s->counter, strlen(s->counter), &v) == IPC_OK && v >= 1) {
        add(&s->incr_ok, 1);
    }
    if (add(&s->calls, 1) == 0) {
        /* From its own handler a stop only asks for it: IPC_OK at once. */
        add(&s->stop_rc, 1000 + (long)ipc_worker_stop(s->w, 1000));
        ipc_worker_free(s->w); /* returns at once */
    }
    return 0;
}

static void self_free_free(void *userdata) {
    struct self_free *s = userdata;
    add(&s->freed, 1);
}

static void test_handler_frees_its_worker(ipc_client *c) {
    const char *q = name("selffree");
    const char *queues[1];
    ipc_worker *w = NULL;
    ipc_worker_options *o = worker_options(1, 0);
    struct self_free s;
    ipc_reply *r = NULL;
    memset(&s, 0, sizeof s);
    s.c = c;
    snprintf(s.counter, sizeof s.counter, "%s", name("selffree:counter"));
    queues[0] = q;
    CHECK_OK(ipc_worker_new(c, queues, NULL, 1, o, self_free_handler, &s, self_free_free, &w));
    ipc_worker_options_free(o);
    s.w = w;
    CHECK_OK(send_str(c, q, "go"));
    CHECK(wait_for(&s.freed, 1, 10000)); /* after the handler returned */
    CHECK(load(&s.calls) == 1);
    CHECK(load(&s.incr_ok) == 1);
    CHECK(load(&s.stop_rc) == 1000 + IPC_OK);
    sleep_ms(50);
    CHECK(load(&s.freed) == 1);
    CHECK_OK(cmd(c, &r, "DEL", s.counter, NULL));
    ipc_reply_free(r);
}

/* ---- (e) reliable mode: retries, dead letters with the message, requeue --------------- */

struct failing {
    volatile long calls;
    volatile long attempts_seen[8]; /* by req->attempt, for the non-empty payload */
    volatile long succeed;          /* when set, handled successfully */
    volatile long ok;
    volatile long ok_attempt_nonzero;
    volatile long empty_seen;
};

static int failing_handler(void *userdata, const ipc_request *req, ipc_error_out *err) {
    struct failing *f = userdata;
    char msg[128];
    add(&f->calls, 1);
    if (load(&f->succeed)) {
        add(&f->ok, 1);
        if (req->attempt != 0) add(&f->ok_attempt_nonzero, 1);
        return 0;
    }
    if (req->payload_len == 0) {
        add(&f->empty_seen, 1);
        return 5; /* no message: "the handler returned 5" */
    }
    if (req->attempt < 8) add(&f->attempts_seen[req->attempt], 1);
    snprintf(msg, sizeof msg, "boom: %.*s (attempt %u)", (int)req->payload_len,
             (const char *)req->payload, (unsigned)req->attempt);
    if (ipc_error_set(err, msg) != IPC_OK) return 2;
    return 1;
}

/* Decode one dead letter: "\0ipd\x01", attempts (u32 BE), error length (u32 BE), error,
 * payload. Whether it matched. */
static int dead_letter_is(const ipc_reply *item, uint32_t attempts, const char *error,
                          const char *payload) {
    const char *s = NULL;
    const unsigned char *p;
    size_t n = 0;
    uint32_t a, elen;
    if (ipc_reply_string(item, &s, &n) != IPC_OK || n < 13) return 0;
    p = (const unsigned char *)s;
    if (memcmp(p, "\0ipd\x01", 5) != 0) return 0;
    a = ((uint32_t)p[5] << 24) | ((uint32_t)p[6] << 16) | ((uint32_t)p[7] << 8) | p[8];
    elen = ((uint32_t)p[9] << 24) | ((uint32_t)p[10] << 16) | ((uint32_t)p[11] << 8) | p[12];
    if (a != attempts || 13 + (size_t)elen > n) return 0;
    if (elen != strlen(error) || memcmp(p + 13, error, elen) != 0) return 0;
    return bytes_eq(p + 13 + elen, n - 13 - elen, payload) ||
           (payload[0] == '\0' && n == 13 + (size_t)elen);
}

static void test_reliable_dead_letters(ipc_client *c) {
    const char *q = name("reliable");
    const char *queues[1];
    ipc_worker *w = NULL;
    ipc_worker_options *o = worker_options(1, 1);
    ipc_worker_counts st;
    ipc_queue_counts qc;
    struct failing f;
    char dead_key[160];
    ipc_reply *r = NULL;
    uint64_t moved = 0;
    int found_msg = 0, found_empty = 0;
    size_t i;
    memset(&f, 0, sizeof f);
    queues[0] = q;
    snprintf(dead_key, sizeof dead_key, "ipc:{q:%s}:dead", q);
    CHECK_OK(ipc_worker_options_set_max_attempts(o, 3));
    CHECK_OK(ipc_worker_options_set_lease_ms(o, 2000));
    CHECK_OK(ipc_worker_new(c, queues, NULL, 1, o, failing_handler, &f, NULL, &w));
    CHECK_OK(send_str(c, q, "payload-x"));
    CHECK_OK(ipc_send_request(c, q, strlen(q), "", 0));

    /* Both fail 3 times, then are dead letters. */
    {
        double deadline = now_ms() + 20000;
        for (;;) {
            memset(&st, 0, sizeof st);
            if (ipc_worker_stats(w, &st) != IPC_OK) break;
            if (st.dead_lettered >= 2 || now_ms() > deadline) break;
            sleep_ms(5);
        }
    }
    CHECK(st.dead_lettered == 2);
    CHECK(st.failed == 6);
    CHECK(st.handled == 0);
    CHECK(load(&f.attempts_seen[0]) == 1);
    CHECK(load(&f.attempts_seen[1]) == 1);
    CHECK(load(&f.attempts_seen[2]) == 1);
    CHECK(load(&f.attempts_seen[3]) == 0);
    CHECK(load(&f.empty_seen) == 3);
    qc = queue_counts(c, q);
    CHECK(qc.dead == 2);
    CHECK(qc.pending == 0);
    CHECK(qc.inflight == 0);

    /* The dead letters carry the attempts, the handler's message and the payload. */
    CHECK_OK(cmd(c, &r, "LRANGE", dead_key, "0", "-1", NULL));
    CHECK(r != NULL && ipc_reply_len(r) == 2);
    for (i = 0; r != NULL && i < ipc_reply_len(r); i++) {
        const ipc_reply *item = ipc_reply_element(r, i);
        found_msg += dead_letter_is(item, 3, "boom: payload-x (attempt 2)", "payload-x");
        found_empty += dead_letter_is(item, 3, "the handler returned 5", "");
    }
    CHECK(found_msg == 1);
    CHECK(found_empty == 1);
    ipc_reply_free(r);
    r = NULL;

    /* Requeued, they are handled again (attempts start over). */
    CHECK_OK(ipc_worker_stop(w, 5000));
    ipc_worker_free(w);
    w = NULL;
    add(&f.succeed, 1);
    CHECK_OK(ipc_queue_requeue_dead(c, q, strlen(q), &moved));
    CHECK(moved == 2);
    qc = queue_counts(c, q);
    CHECK(qc.dead == 0 && qc.pending == 2);
    CHECK_OK(ipc_worker_new(c, queues, NULL, 1, o, failing_handler, &f, NULL, &w));
    CHECK(wait_for(&f.ok, 2, 10000));
    CHECK(load(&f.ok_attempt_nonzero) == 0);
    CHECK_OK(ipc_worker_stop(w, 5000));
    memset(&st, 0, sizeof st);
    CHECK_OK(ipc_worker_stats(w, &st));
    CHECK(st.handled == 2);
    ipc_worker_free(w);
    qc = queue_counts(c, q);
    CHECK(qc.dead == 0 && qc.pending == 0 && qc.inflight == 0);
    CHECK_OK(ipc_queue_requeue_dead(c, q, strlen(q), &moved));
    CHECK(moved == 0);
    ipc_worker_options_free(o);
}

/* ---- (f) queue bad input -------------------------------------------------------------- */

static volatile long bad_freed = 0;
static int never_handler(void *userdata, const ipc_request *req, ipc_error_out *err) {
    (void)userdata;
    (void)req;
    (void)err;
    return 0;
}
static void bad_free(void *userdata) {
    (void)userdata;
    add(&bad_freed, 1);
}

static void test_queue_bad_input(ipc_client *c) {
    const char *q = name("bad");
    const char *queues[1];
    const char *nulls[1] = {NULL};
    const char *empty[1] = {""};
    const char *braces[1] = {"a{b}"};
    ipc_worker *w = NULL;
    ipc_worker_options *o = NULL;
    ipc_worker_counts st;
    ipc_queue_counts qc;
    uint64_t moved = 77;
    queues[0] = q;

    ipc_worker_free(NULL);
    ipc_worker_options_free(NULL);
    CHECK(strcmp(ipc_result_name(IPC_ERR_REMOTE), "IPC_ERR_REMOTE") == 0);
    CHECK(strcmp(ipc_result_name(IPC_ERR_NO_SERVER), "IPC_ERR_NO_SERVER") == 0);
    CHECK(IPC_ERR_REMOTE == 800 && IPC_ERR_NO_SERVER == 801);

    CHECK_RC(ipc_worker_new(c, queues, NULL, 1, NULL, NULL, NULL, bad_free, &w), IPC_ERR_NULL_ARG);
    CHECK(last_error_has("`cb`"));
    CHECK_RC(ipc_worker_new(NULL, queues, NULL, 1, NULL, never_handler, NULL, bad_free, &w),
             IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_worker_new(c, NULL, NULL, 1, NULL, never_handler, NULL, bad_free, &w),
             IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_worker_new(c, nulls, NULL, 1, NULL, never_handler, NULL, bad_free, &w),
             IPC_ERR_NULL_ARG);
    CHECK(last_error_has("queues[0]"));
    CHECK_RC(ipc_worker_new(c, queues, NULL, 1, NULL, never_handler, NULL, bad_free, NULL),
             IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_worker_new(c, empty, NULL, 1, NULL, never_handler, NULL, bad_free, &w),
             IPC_ERR_INVALID_ARGUMENT);
    CHECK(last_error_has("empty"));
    CHECK_RC(ipc_worker_new(c, braces, NULL, 1, NULL, never_handler, NULL, bad_free, &w),
             IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipc_worker_new(c, queues, NULL, 0, NULL, never_handler, NULL, bad_free, &w),
             IPC_ERR_INVALID_ARGUMENT);

    CHECK_RC(ipc_worker_options_new(NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_worker_options_set_concurrency(NULL, 1), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_worker_options_set_block_timeout_ms(NULL, 100), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_worker_options_set_reliable(NULL, true), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_worker_options_set_max_attempts(NULL, 1), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_worker_options_set_lease_ms(NULL, 1000), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_worker_options_set_prefetch(NULL, 1), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_worker_options_set_report_cb(NULL, quiet, NULL, NULL), IPC_ERR_NULL_ARG);
    CHECK_OK(ipc_worker_options_new(&o));
    CHECK_OK(ipc_worker_options_set_concurrency(o, 0));
    CHECK_RC(ipc_worker_new(c, queues, NULL, 1, o, never_handler, NULL, bad_free, &w),
             IPC_ERR_INVALID_ARGUMENT);
    CHECK(last_error_has("concurrency"));
    CHECK_OK(ipc_worker_options_set_concurrency(o, 1));
    CHECK_OK(ipc_worker_options_set_block_timeout_ms(o, 5));
    CHECK_RC(ipc_worker_new(c, queues, NULL, 1, o, never_handler, NULL, bad_free, &w),
             IPC_ERR_INVALID_ARGUMENT);
    CHECK_OK(ipc_worker_options_set_block_timeout_ms(o, 100));
    CHECK_OK(ipc_worker_options_set_reliable(o, true));
    CHECK_OK(ipc_worker_options_set_max_attempts(o, 0));
    CHECK_RC(ipc_worker_new(c, queues, NULL, 1, o, never_handler, NULL, bad_free, &w),
             IPC_ERR_INVALID_ARGUMENT);
    CHECK_OK(ipc_worker_options_set_max_attempts(o, 3));
    CHECK_OK(ipc_worker_options_set_lease_ms(o, 10));
    CHECK_RC(ipc_worker_new(c, queues, NULL, 1, o, never_handler, NULL, bad_free, &w),
             IPC_ERR_INVALID_ARGUMENT);
    CHECK(w == NULL);           /* untouched on failure */
    CHECK(load(&bad_freed) == 0); /* userdata_free never runs when ipc_worker_new fails */
    ipc_worker_options_free(o);

    CHECK_RC(ipc_worker_stop(NULL, 10), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_worker_stats(NULL, &st), IPC_ERR_NULL_ARG);

    CHECK_RC(ipc_send_request(c, q, 0, "x", 1), IPC_ERR_INVALID_ARGUMENT);
    CHECK(last_error_has("empty"));
    CHECK_RC(ipc_send_request(c, NULL, 0, "x", 1), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_send_request(c, q, strlen(q), NULL, 0), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_send_request(NULL, q, strlen(q), "x", 1), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_send_request(c, "a{b}", 4, "x", 1), IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipc_queue_stats(c, q, 0, &qc), IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipc_queue_stats(c, q, strlen(q), NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_queue_stats(NULL, q, strlen(q), &qc), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_queue_requeue_dead(c, q, 0, &moved), IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipc_queue_requeue_dead(c, q, strlen(q), NULL), IPC_ERR_NULL_ARG);
    CHECK(moved == 77);

    /* A 0-byte payload is a request like any other. */
    CHECK_OK(ipc_send_request(c, q, strlen(q), "", 0));
    qc = queue_counts(c, q);
    CHECK(qc.pending == 1);
    {
        ipc_reply *r = NULL;
        char key[160];
        snprintf(key, sizeof key, "ipc:{q:%s}:pending", q);
        CHECK_OK(cmd(c, &r, "DEL", key, NULL));
        ipc_reply_free(r);
    }
}

/* ---- (g) RPC --------------------------------------------------------------------------- */

struct srv {
    ipc_client *c;
    ipc_server *volatile self; /* for "stopself" / "freeself" */
    char counter[128];
    volatile long calls, freed, stop_rc, badset_ok;
};

static int method_is(const ipc_call_info *call, const char *m) {
    return call->method_len == strlen(m) && memcmp(call->method, m, call->method_len) == 0;
}

/* One handler for every method of the service, switching on the name. */
static int srv_handler(void *userdata, const ipc_call_info *call, ipc_rpc_reply *reply,
                       ipc_error_out *err) {
    struct srv *s = userdata;
    add(&s->calls, 1);
    if (call->method_len == 0 || method_is(call, "upper")) {
        char *up = malloc(call->payload_len + 1);
        size_t i;
        int rc;
        if (up == NULL) return 1;
        for (i = 0; i < call->payload_len; i++) {
            char ch = call->payload[i];
            up[i] = (ch >= 'a' && ch <= 'z') ? (char)(ch - 'a' + 'A') : ch;
        }
        rc = ipc_rpc_reply_set(reply, up, call->payload_len) != IPC_OK;
        free(up);
        return rc;
    }
    if (method_is(call, "echo")) {
        return ipc_rpc_reply_set(reply, call->payload, call->payload_len) != IPC_OK;
    }
    if (method_is(call, "fail")) {
        if (ipc_error_set(err, "failed on purpose") != IPC_OK) return 2;
        return 1;
    }
    if (method_is(call, "fail_nomsg")) return 3;
    if (method_is(call, "nothing")) return 0; /* no reply bytes set: 0 bytes */
    if (method_is(call, "sleep")) {
        sleep_ms(800);
        return ipc_rpc_reply_set(reply, "late", 4) != IPC_OK;
    }
    if (method_is(call, "incr")) {
        /* A handler may use the client. */
        int64_t v = 0;
        char buf[32];
        if (ipc_incr(s->c, s->counter, strlen(s->counter), &v) != IPC_OK) return 1;
        snprintf(buf, sizeof buf, "%" PRId64, v);
        return ipc_rpc_reply_set(reply, buf, strlen(buf)) != IPC_OK;
    }
    if (method_is(call, "badset")) {
        long ok = ipc_rpc_reply_set(reply, NULL, 0) == IPC_ERR_NULL_ARG &&
                  ipc_rpc_reply_set(NULL, "x", 1) == IPC_ERR_NULL_ARG &&
                  ipc_error_set(err, NULL) == IPC_ERR_NULL_ARG &&
                  ipc_error_set(NULL, "x") == IPC_ERR_NULL_ARG;
        add(&s->badset_ok, ok);
        /* Set twice: the last one counts. */
        if (ipc_rpc_reply_set(reply, "first", 5) != IPC_OK) return 1;
        return ipc_rpc_reply_set(reply, "second", 6) != IPC_OK;
    }
    if (method_is(call, "deadline")) {
        char buf[32];
        snprintf(buf, sizeof buf, "%" PRIu64, call->deadline_ms);
        return ipc_rpc_reply_set(reply, buf, strlen(buf)) != IPC_OK;
    }
    if (method_is(call, "stopself")) {
        add(&s->stop_rc, (long)ipc_server_stop(s->self, 1000));
        return 0;
    }
    if (method_is(call, "freeself")) {
        ipc_server_free(s->self);
        return ipc_rpc_reply_set(reply, "bye", 3) != IPC_OK;
    }
    {
        char msg[160];
        snprintf(msg, sizeof msg, "unknown method %.*s", (int)call->method_len,
                 (const char *)call->method);
        if (ipc_error_set(err, msg) != IPC_OK) return 2;
        return 1;
    }
}

static void srv_free(void *userdata) {
    struct srv *s = userdata;
    add(&s->freed, 1);
}

/* Call and compare the reply with `want`; returns the ipc_result. */
static ipc_result call_str(ipc_client *c, const char *service, const char *method,
                           const char *payload, uint64_t timeout_ms, const char *want) {
    char *reply = NULL;
    size_t len = 0;
    ipc_result rc = call(c, service, method, payload, strlen(payload), timeout_ms, false,
                         &reply, &len);
    if (rc == IPC_OK) {
        CHECK(reply != NULL);
        if (want != NULL) CHECK(bytes_eq(reply, len, want));
        ipc_buf_free(reply, len);
    }
    return rc;
}

struct caller {
    ipc_client *c;
    const char *service;
    int id, n;
    long ok, wrong, failed;
};

static void *caller_main(void *arg) {
    struct caller *t = arg;
    int i;
    for (i = 0; i < t->n; i++) {
        char msg[64], want[64];
        char *reply = NULL;
        size_t len = 0, j;
        snprintf(msg, sizeof msg, "thread%d-call%d", t->id, i);
        for (j = 0; msg[j]; j++) want[j] = (msg[j] >= 'a' && msg[j] <= 'z') ? msg[j] - 32 : msg[j];
        want[j] = '\0';
        if (call(t->c, t->service, NULL, msg, strlen(msg), 10000, false, &reply, &len) !=
            IPC_OK) {
            t->failed++;
            fprintf(stderr, "call failed: %s\n", ipc_last_error_message());
            continue;
        }
        if (bytes_eq(reply, len, want)) {
            t->ok++;
        } else {
            t->wrong++;
        }
        ipc_buf_free(reply, len);
    }
    return NULL;
}

static void test_rpc(ipc_client *c, const char *url) {
    const char *svc = name("svc");
    ipc_server *server = NULL;
    ipc_client *caller_client = NULL;
    struct srv s;
    ipc_worker_counts st;
    char svc_keys[160], reply_channels[64];
    double t0;
    long keys_before, channels_before, i, n;
    memset(&s, 0, sizeof s);
    s.c = c;
    snprintf(s.counter, sizeof s.counter, "%s", name("rpc:counter"));
    snprintf(svc_keys, sizeof svc_keys, "ipc:{rpc:%s}*", svc);
    snprintf(reply_channels, sizeof reply_channels, "ipc:rpc:reply:*");

    CHECK_OK(serve(c, svc, 4, srv_handler, &s, srv_free, &server));
    if (server == NULL) return;
    s.self = server;
    CHECK_OK(ipc_client_new(url, NULL, &caller_client));
    if (caller_client == NULL) return;

    /* Happy path, methods. */
    CHECK_OK(call_str(caller_client, svc, NULL, "hello", 5000, "HELLO"));
    CHECK_OK(call_str(caller_client, svc, "", "hello", 5000, "HELLO"));
    CHECK_OK(call_str(caller_client, svc, "upper", "MiXed 123", 5000, "MIXED 123"));
    CHECK_OK(call_str(caller_client, svc, "echo", "MiXed", 5000, "MiXed"));
    CHECK_OK(call_str(caller_client, svc, "nothing", "x", 5000, ""));
    CHECK_OK(call_str(caller_client, svc, "incr", "", 5000, "1"));
    CHECK_OK(call_str(c, svc, "incr", "", 5000, "2")); /* the server's own client calls too */
    CHECK_OK(call_str(caller_client, svc, "badset", "", 5000, "second"));
    CHECK(load(&s.badset_ok) == 1);
    {
        /* The deadline the handler sees is now + the timeout (wall clock, ms). */
        char *reply = NULL;
        size_t len = 0;
        struct timespec ts;
        uint64_t now, deadline;
        char buf[32];
        clock_gettime(CLOCK_REALTIME, &ts);
        now = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
        CHECK_OK(call(caller_client, svc, "deadline", "", 0, 7000, false, &reply, &len));
        if (reply != NULL && len < sizeof buf) {
            memcpy(buf, reply, len);
            buf[len] = '\0';
            deadline = strtoull(buf, NULL, 10);
            CHECK(deadline >= now + 6000 && deadline <= now + 8000);
        }
        ipc_buf_free(reply, len);
    }

    /* 0-byte payload and reply: a valid pointer with length 0. */
    {
        char *reply = NULL;
        size_t len = 99;
        CHECK_OK(call(caller_client, svc, NULL, "", 0, 5000, false, &reply, &len));
        CHECK(reply != NULL && len == 0);
        ipc_buf_free(reply, len);
    }

    /* Remote errors carry the handler's text. */
    CHECK_RC(call_str(caller_client, svc, "fail", "x", 5000, NULL), IPC_ERR_REMOTE);
    CHECK(last_error_has("failed on purpose"));
    CHECK(last_error_has(svc));
    CHECK_RC(call_str(caller_client, svc, "fail_nomsg", "x", 5000, NULL), IPC_ERR_REMOTE);
    CHECK(last_error_has("the handler returned 3"));
    CHECK_RC(call_str(caller_client, svc, "nosuch", "x", 5000, NULL), IPC_ERR_REMOTE);
    CHECK(last_error_has("unknown method nosuch"));

    /* 16 MiB there and back. */
    {
        size_t big = 16u << 20;
        char *req = malloc(big);
        char *reply = NULL;
        size_t len = 0, k;
        if (req != NULL) {
            for (k = 0; k < big; k++) req[k] = (char)(k * 131u + 7u);
            t0 = now_ms();
            CHECK_OK(call(caller_client, svc, "echo", req, big, 30000, false, &reply, &len));
            printf("16 MiB round trip: %.0f ms\n", now_ms() - t0);
            CHECK(len == big && reply != NULL && memcmp(reply, req, big) == 0);
            ipc_buf_free(reply, len);
            free(req);
        }
    }

    /* 16 concurrent callers each get their own replies. */
    {
        enum { THREADS = 16 };
        pthread_t th[THREADS];
        struct caller t[THREADS];
        long ok = 0, wrong = 0, failed = 0;
        int per = quick ? 5 : 50;
        t0 = now_ms();
        for (i = 0; i < THREADS; i++) {
            t[i].c = caller_client;
            t[i].service = svc;
            t[i].id = (int)i;
            t[i].n = per;
            t[i].ok = t[i].wrong = t[i].failed = 0;
            CHECK(pthread_create(&th[i], NULL, caller_main, &t[i]) == 0);
        }
        for (i = 0; i < THREADS; i++) {
            pthread_join(th[i], NULL);
            ok += t[i].ok;
            wrong += t[i].wrong;
            failed += t[i].failed;
        }
        printf("16 threads x %d calls: %.0f ms\n", per, now_ms() - t0);
        CHECK(ok == (long)THREADS * per);
        CHECK(wrong == 0);
        CHECK(failed == 0);
    }

    /* No keys and no subscriptions pile up: 1,000 calls (successes and remote errors). */
    keys_before = count_keys(c, svc_keys);
    channels_before = count_channels(c, reply_channels);
    CHECK(keys_before == 2); /* the service's registry: its servers and their metadata */
    CHECK(channels_before >= 1);
    n = quick ? 100 : 1000;
    t0 = now_ms();
    for (i = 0; i < n; i++) {
        char msg[32];
        snprintf(msg, sizeof msg, "m%ld", i);
        if (i % 10 == 9) {
            CHECK_RC(call_str(caller_client, svc, "fail", msg, 5000, NULL), IPC_ERR_REMOTE);
        } else if (call_str(caller_client, svc, "echo", msg, 5000, msg) != IPC_OK) {
            CHECK(0);
        }
    }
    printf("%ld sequential calls: %.0f ms (%.1f us per call)\n", n, now_ms() - t0,
           (now_ms() - t0) * 1000.0 / (double)n);
    CHECK(count_keys(c, svc_keys) == keys_before);
    CHECK(count_channels(c, reply_channels) == channels_before);

    /* A slow handler: IPC_ERR_TIMEOUT (a server is registered). */
    t0 = now_ms();
    CHECK_RC(call_str(caller_client, svc, "sleep", "", 200, NULL), IPC_ERR_TIMEOUT);
    CHECK(now_ms() - t0 >= 190 && now_ms() - t0 < 2000);
    sleep_ms(700); /* let it finish */

    memset(&st, 0, sizeof st);
    CHECK_OK(ipc_server_stats(server, &st));
    CHECK((long)st.handled >= n);
    CHECK_RC(ipc_server_stats(NULL, &st), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_server_stats(server, NULL), IPC_ERR_NULL_ARG);

    CHECK(load(&s.freed) == 0);
    CHECK_OK(ipc_server_stop(server, 5000));
    CHECK(load(&s.freed) == 1); /* when the stop returned IPC_OK */
    ipc_server_free(server);
    CHECK(load(&s.freed) == 1);
    /* Stopped: the service's keys are gone. */
    CHECK(count_keys(c, svc_keys) == 0);

    /* Nobody serves it now: IPC_ERR_NO_SERVER after the timeout, or at once. */
    t0 = now_ms();
    CHECK_RC(call_str(caller_client, svc, NULL, "x", 300, NULL), IPC_ERR_NO_SERVER);
    CHECK(now_ms() - t0 >= 290);
    CHECK(last_error_has("no server"));
    t0 = now_ms();
    {
        char *reply = NULL;
        size_t len = 0;
        CHECK_RC(call(caller_client, svc, NULL, "x", 1, 5000, true, &reply, &len),
                 IPC_ERR_NO_SERVER);
        CHECK(now_ms() - t0 < 1000);
        CHECK(reply == NULL);
    }
    {
        /* The unanswered request stays in the service's queue: clean it up. */
        ipc_reply *r = NULL;
        char key[160];
        snprintf(key, sizeof key, "ipc:{rpc:%s}:pending", svc);
        CHECK_OK(cmd(c, &r, "DEL", key, NULL));
        ipc_reply_free(r);
        CHECK_OK(cmd(c, &r, "DEL", s.counter, NULL));
        ipc_reply_free(r);
    }

    /* A server freed from its own handler: the reply still goes out; userdata_free runs
     * after the handler returned. */
    {
        struct srv s2;
        ipc_server *server2 = NULL;
        const char *svc2 = name("svc2");
        memset(&s2, 0, sizeof s2);
        s2.c = c;
        CHECK_OK(serve(c, svc2, 1, srv_handler, &s2, srv_free, &server2));
        s2.self = server2;
        CHECK_OK(call_str(caller_client, svc2, "freeself", "", 5000, "bye"));
        CHECK(wait_for(&s2.freed, 1, 10000));
        sleep_ms(50);
        CHECK(load(&s2.freed) == 1);
        snprintf(svc_keys, sizeof svc_keys, "ipc:{rpc:%s}*", svc2);
        CHECK(count_keys(c, svc_keys) == 0);
    }

    /* A server stopped from its own handler: the stop is asked for (IPC_OK at once), the
     * reply still goes out, and the server stops (userdata_free) when the handler returned. */
    {
        struct srv s3;
        ipc_server *server3 = NULL;
        const char *svc3 = name("svc3");
        memset(&s3, 0, sizeof s3);
        s3.c = c;
        CHECK_OK(serve(c, svc3, 1, srv_handler, &s3, srv_free, &server3));
        s3.self = server3;
        CHECK_OK(call_str(caller_client, svc3, "stopself", "", 5000, ""));
        CHECK(wait_for(&s3.freed, 1, 10000));
        CHECK(load(&s3.stop_rc) == IPC_OK);
        CHECK_OK(ipc_server_stop(server3, 0)); /* stopped already */
        ipc_server_free(server3);
        CHECK(load(&s3.freed) == 1);
    }
    ipc_client_free(caller_client);
}

static void test_rpc_bad_input(ipc_client *c) {
    const char *svc = name("badsvc");
    ipc_server *server = NULL;
    struct srv s;
    char *reply = NULL;
    size_t len = 0;
    memset(&s, 0, sizeof s);
    ipc_server_free(NULL);
    CHECK_RC(ipc_serve(c, svc, strlen(svc), NULL, NULL, &s, srv_free, &server), IPC_ERR_NULL_ARG);
    CHECK(last_error_has("`cb`"));
    CHECK_RC(serve(NULL, svc, 1, srv_handler, &s, srv_free, &server), IPC_ERR_NULL_ARG);
    CHECK_RC(serve(c, NULL, 1, srv_handler, &s, srv_free, &server), IPC_ERR_NULL_ARG);
    CHECK_RC(serve(c, svc, 1, srv_handler, &s, srv_free, NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(serve(c, "", 1, srv_handler, &s, srv_free, &server), IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(serve(c, "a{b", 1, srv_handler, &s, srv_free, &server), IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(serve(c, svc, 0, srv_handler, &s, srv_free, &server), IPC_ERR_INVALID_ARGUMENT);
    CHECK(last_error_has("concurrency"));
    CHECK(server == NULL);
    CHECK(load(&s.freed) == 0); /* never when ipc_serve fails */
    CHECK_RC(ipc_server_stop(NULL, 10), IPC_ERR_NULL_ARG);

    CHECK_RC(call(NULL, svc, NULL, "x", 1, 100, false, &reply, &len), IPC_ERR_NULL_ARG);
    CHECK_RC(call(c, NULL, NULL, "x", 1, 100, false, &reply, &len), IPC_ERR_NULL_ARG);
    CHECK_RC(call(c, svc, NULL, NULL, 0, 100, false, &reply, &len), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_call(c, svc, strlen(svc), NULL, 0, "x", 1, NULL, &reply, &len),
             IPC_ERR_NULL_ARG); /* a method is a byte string: non-NULL even when empty */
    CHECK(last_error_has("`method`"));
    CHECK_RC(call(c, svc, NULL, "x", 1, 100, false, NULL, &len), IPC_ERR_NULL_ARG);
    CHECK_RC(call(c, svc, NULL, "x", 1, 100, false, &reply, NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(call(c, "", NULL, "x", 1, 100, false, &reply, &len), IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(call(c, "a}b", NULL, "x", 1, 100, false, &reply, &len), IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(call(c, svc, NULL, "x", 1, 0, false, &reply, &len), IPC_ERR_INVALID_ARGUMENT);
    CHECK(last_error_has("timeout"));
    CHECK(reply == NULL && len == 0);
}

int main(int argc, char **argv) {
    ipc_client *c = NULL;
    const char *url;
    const char *quick_env = getenv("REDIPC_TEST_QUICK");
    quick = quick_env != NULL && strcmp(quick_env, "1") == 0;
    if (argc < 2) {
        fprintf(stderr, "usage: %s URL\n", argv[0]);
        return 2;
    }
    url = argv[1];
    snprintf(prefix, sizeof prefix, "qrt:%ld:", (long)getpid());
    CHECK_OK(ipc_client_new(url, NULL, &c));
    if (c == NULL) return check_summary();

    test_queue_bad_input(c);
    test_rpc_bad_input(c);
    test_many_requests(c);
    test_fairness(c);
    test_stop_while_busy(c);
    test_handler_frees_its_worker(c);
    test_reliable_dead_letters(c);
    test_rpc(c, url);

    ipc_client_free(c);
    return check_summary();
}
