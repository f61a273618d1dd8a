/* stream_test.c: the event stream C API (ipc_stream_*, ipc_entries, ipc_entry) against a
 * running server.
 *
 *   ./stream_test URL          URL: redis://127.0.0.1:PORT/0 or unix:///path/redis.sock
 *
 * Covers: the MAXLEN bound (explicit, client default, unbounded); last, len, read (from
 * "0", after an id, blocking on "$"); binary-safe fields; a follower seeing every entry
 * in order while another thread publishes; a group of 3 consumers handling 10,000 entries
 * exactly once; a poison entry retried, never acked, and dead-lettered with its error
 * after max_deliveries; a consumer process killed mid-entry, its entry claimed by another
 * after min_idle; an existing group (created=false, IPC_OK); invalid ids
 * (IPC_ERR_INVALID_ARGUMENT); WRONGTYPE changing nothing; userdata_free exactly once (also
 * when the consumer is freed from inside its handler); NULL arguments.
 *
 * Environment: REDIPC_TEST_QUICK=1 uses 1,000 entries instead of 10,000 (for valgrind).
 * Prints "N passed, M failed" last and exits non-zero on any failure.
 *
 * (Internal: `stream_test --die-consumer URL STREAM GROUP` is the child process of the
 * killed-consumer test: it consumes as "doomed" and _exit()s inside its first handler
 * call.)
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static int quick = 0;
static char prefix[64];
static const char *self_path;
static pthread_t main_thread;

/* ---- small helpers ------------------------------------------------------------------ */

/* `name` under this run's prefix (one of a few rotating static buffers). */
static const char *s(const char *name) {
    static char bufs[32][128];
    static int next = 0;
    char *b = bufs[next++ % 32];
    snprintf(b, sizeof bufs[0], "%s%s", prefix, name);
    return b;
}

/* A report callback that ignores what it gets: it silences the reports of handler failures
 * these tests cause on purpose. */
static void quiet(void *userdata, const ipc_report *report) {
    (void)userdata;
    (void)report;
}

/* Consumer options (0: the default) with reports silenced; free with
 * ipc_consumer_options_free(). */
static ipc_consumer_options *consumer_options(size_t count, uint64_t block_ms,
                                              uint64_t min_idle_ms, uint64_t claim_interval_ms,
                                              uint64_t max_deliveries) {
    ipc_consumer_options *o = NULL;
    CHECK_OK(ipc_consumer_options_new(&o));
    if (count) CHECK_OK(ipc_consumer_options_set_count(o, count));
    if (block_ms) CHECK_OK(ipc_consumer_options_set_block_ms(o, block_ms));
    if (min_idle_ms) CHECK_OK(ipc_consumer_options_set_min_idle_ms(o, min_idle_ms));
    if (claim_interval_ms) CHECK_OK(ipc_consumer_options_set_claim_interval_ms(o, claim_interval_ms));
    if (max_deliveries) CHECK_OK(ipc_consumer_options_set_max_deliveries(o, max_deliveries));
    CHECK_OK(ipc_consumer_options_set_report_cb(o, quiet, NULL, NULL));
    return o;
}

static ipc_field fld(const char *name, const char *value) {
    ipc_field f;
    f.name = name;
    f.name_len = strlen(name);
    f.value = value;
    f.value_len = strlen(value);
    return f;
}

static ipc_result publish1(ipc_client *c, const char *stream, const char *name,
                           const char *value, int64_t maxlen, char *id) {
    ipc_field f = fld(name, value);
    return ipc_stream_publish(c, stream, strlen(stream), &f, 1, maxlen, id,
                              id ? IPC_STREAM_ID_MAX : 0);
}

static ipc_result publish_n(ipc_client *c, const char *stream, long n, int64_t maxlen) {
    char v[32];
    snprintf(v, sizeof v, "%ld", n);
    return publish1(c, stream, "n", v, maxlen, NULL);
}

static uint64_t stream_len(ipc_client *c, const char *stream) {
    uint64_t n = 0;
    CHECK_OK(ipc_stream_len(c, stream, strlen(stream), &n));
    return n;
}

/* Whether field `name` of `e` equals the string `want`. */
static int entry_is(const ipc_entry *e, const char *name, const char *want) {
    const char *v = NULL;
    size_t vl = 0;
    bool found = false;
    if (e == NULL) return 0;
    if (ipc_entry_get(e, name, strlen(name), &v, &vl, &found) != IPC_OK || !found) return 0;
    return bytes_eq(v, vl, want);
}

/* Field `name` of `e` as a number; -1 when missing. */
static long entry_num(const ipc_entry *e, const char *name) {
    const char *v = NULL;
    size_t vl = 0;
    bool found = false;
    char buf[32];
    if (ipc_entry_get(e, name, strlen(name), &v, &vl, &found) != IPC_OK || !found) return -1;
    if (vl >= sizeof buf) return -1;
    memcpy(buf, v, vl);
    buf[vl] = '\0';
    return atol(buf);
}

static ipc_result cmd(ipc_client *c, ipc_reply **out, const char *a0, const char *a1,
                      const char *a2) {
    const char *argv[3];
    size_t argc = 0;
    argv[argc++] = a0;
    if (a1) argv[argc++] = a1;
    if (a2) argv[argc++] = a2;
    return ipc_command(c, argv, NULL, argc, out);
}

/* ---- publishing, bounds, reading ---------------------------------------------------- */

static void test_publish_bound_and_read(const char *url, ipc_client *c) {
    const char *bounded = s("bounded"), *open_ = s("unbounded"), *dflt = s("default");
    long total = quick ? 600 : 3000, i;
    uint64_t n;
    char id[IPC_STREAM_ID_MAX], first_id[IPC_STREAM_ID_MAX];
    ipc_entries *es = NULL;
    const ipc_entry *e;
    ipc_options *opts = NULL;
    ipc_client *c2 = NULL;
    double t0;

    /* explicit bound: MAXLEN ~ 100 keeps about 100 (whole nodes of 100 are trimmed) */
    for (i = 0; i < total; i++) CHECK_OK(publish_n(c, bounded, i, 100));
    n = stream_len(c, bounded);
    CHECK(n >= 100 && n < 400);
    /* the id goes to the caller's buffer */
    CHECK_OK(publish1(c, bounded, "n", "last", 100, id));
    CHECK(strchr(id, '-') != NULL && strlen(id) >= 3);
    CHECK_OK(ipc_stream_last(c, bounded, strlen(bounded), &es));
    CHECK(ipc_entries_len(es) == 1);
    e = ipc_entries_get(es, 0);
    CHECK(e != NULL && strcmp(e->id, id) == 0 && e->field_count == 1 && e->deliveries == 0);
    CHECK(entry_is(e, "n", "last"));
    ipc_entries_free(es);

    /* unbounded */
    for (i = 0; i < 300; i++) CHECK_OK(publish_n(c, open_, i, 0));
    CHECK(stream_len(c, open_) == 300);

    /* -1: the client's default bound */
    CHECK_OK(ipc_options_new(&opts));
    CHECK_OK(ipc_options_set_stream_maxlen(opts, 50));
    CHECK_OK(ipc_client_new(url, opts, &c2));
    ipc_options_free(opts);
    if (c2 != NULL) {
        for (i = 0; i < 1000; i++) CHECK_OK(publish_n(c2, dflt, i, -1));
        n = stream_len(c2, dflt);
        CHECK(n >= 50 && n < 300);
        ipc_client_free(c2);
    }

    /* a missing stream: no last entry, length 0 */
    es = NULL;
    CHECK_OK(ipc_stream_last(c, s("missing"), strlen(s("missing")), &es));
    CHECK(es != NULL && ipc_entries_len(es) == 0);
    CHECK(ipc_entries_get(es, 0) == NULL);
    ipc_entries_free(es);
    CHECK(stream_len(c, s("missing")) == 0);

    /* read from the start, then after an id */
    es = NULL;
    CHECK_OK(ipc_stream_read(c, open_, strlen(open_), "0", 10, -1, &es));
    CHECK(ipc_entries_len(es) == 10);
    e = ipc_entries_get(es, 9);
    CHECK(entry_is(ipc_entries_get(es, 0), "n", "0") && entry_is(e, "n", "9"));
    snprintf(first_id, sizeof first_id, "%s", e ? e->id : "0");
    ipc_entries_free(es);
    es = NULL;
    CHECK_OK(ipc_stream_read(c, open_, strlen(open_), first_id, 5, 0, &es));
    CHECK(ipc_entries_len(es) == 5 && entry_is(ipc_entries_get(es, 0), "n", "10"));
    ipc_entries_free(es);

    /* a blocking read of new entries only: nothing comes within 100 ms */
    es = NULL;
    t0 = now_ms();
    CHECK_OK(ipc_stream_read(c, open_, strlen(open_), "$", 1, 100, &es));
    CHECK(ipc_entries_len(es) == 0);
    CHECK(now_ms() - t0 >= 90.0);
    ipc_entries_free(es);

    /* binary-safe fields: a NUL inside, an empty value, several fields in order */
    {
        const char *bin = s("binary");
        ipc_field f[3];
        const char *v = NULL;
        size_t vl = 0;
        bool found = true;
        f[0].name = "a\0b";
        f[0].name_len = 3;
        f[0].value = "x\0y";
        f[0].value_len = 3;
        f[1] = fld("empty", "");
        f[2] = fld("z", "last");
        CHECK_OK(ipc_stream_publish(c, bin, strlen(bin), f, 3, 0, NULL, 0));
        es = NULL;
        CHECK_OK(ipc_stream_read(c, bin, strlen(bin), "0", 10, -1, &es));
        e = ipc_entries_get(es, 0);
        CHECK(ipc_entries_len(es) == 1 && e != NULL && e->field_count == 3);
        if (e != NULL && e->field_count == 3) {
            CHECK(e->fields[0].name_len == 3 && memcmp(e->fields[0].name, "a\0b", 3) == 0);
            CHECK(e->fields[0].value_len == 3 && memcmp(e->fields[0].value, "x\0y", 3) == 0);
            CHECK(e->fields[1].value != NULL && e->fields[1].value_len == 0);
            CHECK(bytes_eq(e->fields[2].name, e->fields[2].name_len, "z"));
            CHECK_OK(ipc_entry_get(e, "a\0b", 3, &v, &vl, &found));
            CHECK(found && vl == 3 && memcmp(v, "x\0y", 3) == 0);
            CHECK_OK(ipc_entry_get(e, "nope", 4, &v, &vl, &found));
            CHECK(!found && v == NULL && vl == 0);
        }
        ipc_entries_free(es);
    }
}

/* ---- the follower ------------------------------------------------------------------- */

struct publisher {
    ipc_client *c;
    const char *stream;
    long count;
    long errors;
};

static void *publisher_main(void *arg) {
    struct publisher *p = arg;
    long i;
    for (i = 0; i < p->count; i++)
        if (publish_n(p->c, p->stream, i, 0) != IPC_OK) p->errors++;
    return NULL;
}

static void test_follower(const char *url, ipc_client *c) {
    const char *stream = s("events");
    long count = quick ? 200 : 1000, i, in_order = 0, got = 0;
    struct publisher p;
    pthread_t t;
    ipc_stream_follower *f = NULL;
    ipc_entries *es = NULL;
    char pos[IPC_STREAM_ID_MAX], last_id[IPC_STREAM_ID_MAX] = "";
    ipc_client *pc = NULL;

    CHECK_OK(ipc_client_new(url, NULL, &pc));
    CHECK_OK(ipc_stream_follow(c, stream, strlen(stream), "0", &f));
    if (f == NULL || pc == NULL) {
        ipc_client_free(pc);
        return;
    }
    CHECK_OK(ipc_stream_follower_position(f, pos, sizeof pos));
    CHECK(strcmp(pos, "0") == 0);
    p.c = pc;
    p.stream = stream;
    p.count = count;
    p.errors = 0;
    CHECK(pthread_create(&t, NULL, publisher_main, &p) == 0);
    for (i = 0; i < count; i++) {
        const ipc_entry *e;
        char want[32];
        es = NULL;
        if (ipc_stream_follower_next(f, 5000, &es) != IPC_OK || ipc_entries_len(es) != 1) {
            ipc_entries_free(es);
            break;
        }
        got++;
        e = ipc_entries_get(es, 0);
        snprintf(want, sizeof want, "%ld", i);
        if (entry_is(e, "n", want)) in_order++;
        snprintf(last_id, sizeof last_id, "%s", e->id);
        ipc_entries_free(es);
    }
    pthread_join(t, NULL);
    CHECK(p.errors == 0);
    CHECK(got == count);
    CHECK(in_order == count);
    /* nothing more: an empty list after the timeout, not an error */
    es = NULL;
    CHECK_OK(ipc_stream_follower_next(f, 50, &es));
    CHECK(es != NULL && ipc_entries_len(es) == 0);
    ipc_entries_free(es);
    CHECK_OK(ipc_stream_follower_position(f, pos, sizeof pos));
    CHECK(strcmp(pos, last_id) == 0);
    CHECK_RC(ipc_stream_follower_position(f, pos, 8), IPC_ERR_INVALID_ARGUMENT);
    ipc_stream_follower_free(f);
    ipc_stream_follower_free(NULL);
    ipc_client_free(pc);
}

/* ---- consumer groups ---------------------------------------------------------------- */

struct tally {
    volatile long *seen; /* per entry number: how many times handled */
    long max;
    volatile long total, bad, on_main, freed;
};

static int tally_cb(void *userdata, const ipc_entry *e, ipc_error_out *err) {
    struct tally *t = userdata;
    long n = entry_num(e, "n");
    (void)err;
    if (pthread_equal(pthread_self(), main_thread)) add(&t->on_main, 1);
    if (n < 0 || n >= t->max || e->deliveries != 1)
        add(&t->bad, 1);
    else
        add(&t->seen[n], 1);
    add(&t->total, 1);
    return 0;
}

static void tally_free(void *userdata) {
    struct tally *t = userdata;
    add(&t->freed, 1);
}

static void test_group_exactly_once(ipc_client *c) {
    const char *stream = s("work"), *group = "g";
    long count = quick ? 1000 : 10000, i, once = 0;
    struct tally t;
    ipc_stream_consumer *k[3] = {NULL, NULL, NULL};
    const char *names[3] = {"c1", "c2", "c3"};
    ipc_consumer_options *o;
    ipc_consumer_stats st;
    uint64_t acked = 0, pending = 99;
    bool created = false;
    int ok;

    CHECK_OK(ipc_stream_group_create(c, stream, strlen(stream), group, 1, "0", &created));
    CHECK(created);
    created = true;
    CHECK_OK(ipc_stream_group_create(c, stream, strlen(stream), group, 1, "$", &created));
    CHECK(!created); /* an existing group is not an error */

    memset(&t, 0, sizeof t);
    t.max = count;
    t.seen = calloc((size_t)count, sizeof *t.seen);
    if (t.seen == NULL) return;
    o = consumer_options(50, 100, 0, 0, 0);
    for (i = 0; i < 3; i++)
        CHECK_OK(ipc_stream_consume(c, stream, strlen(stream), group, 1, names[i], 2, o,
                                    tally_cb, &t, i == 0 ? tally_free : NULL, &k[i]));
    ipc_consumer_options_free(o);
    for (i = 0; i < count; i++) CHECK_OK(publish_n(c, stream, i, 0));
    WAIT_UNTIL(ok, load(&t.total) >= count, 60000);
    CHECK(ok);
    sleep_ms(100); /* time for a duplicate to show up */
    for (i = 0; i < 3; i++) {
        if (k[i] == NULL) continue;
        CHECK_OK(ipc_stream_consumer_stop(k[i], 5000));
        CHECK_OK(ipc_stream_consumer_stop(k[i], 5000)); /* twice is fine */
        CHECK_OK(ipc_stream_consumer_stats(k[i], &st));
        acked += st.acked;
        CHECK(st.failed == 0 && st.dead_lettered == 0);
    }
    for (i = 0; i < count; i++)
        if (t.seen[i] == 1) once++;
    CHECK(once == count);
    CHECK(load(&t.total) == count);
    CHECK(t.bad == 0 && t.on_main == 0);
    CHECK(acked == (uint64_t)count);
    CHECK_OK(ipc_stream_pending(c, stream, strlen(stream), group, 1, &pending));
    CHECK(pending == 0);
    CHECK(load(&t.freed) == 1); /* exactly once, when the stop returned IPC_OK */
    for (i = 0; i < 3; i++) ipc_stream_consumer_free(k[i]);
    CHECK(load(&t.freed) == 1);
    free((void *)t.seen);
}

struct poison {
    volatile long calls, poison_calls, ok_calls, freed, wrong_deliveries;
};

static int poison_cb(void *userdata, const ipc_entry *e, ipc_error_out *err) {
    struct poison *p = userdata;
    add(&p->calls, 1);
    if (entry_is(e, "task", "poison")) {
        long k = add(&p->poison_calls, 1) + 1;
        if (e->deliveries != (uint64_t)k) add(&p->wrong_deliveries, 1);
        CHECK_OK(ipc_error_set(err, "first message"));
        CHECK_OK(ipc_error_set(err, "cannot digest poison")); /* the last one counts */
        return 1;
    }
    if (entry_is(e, "task", "silent")) return 7; /* fails without a message */
    add(&p->ok_calls, 1);
    return 0;
}

static void poison_free(void *userdata) {
    struct poison *p = userdata;
    add(&p->freed, 1);
}

static void test_poison_dead_letter(ipc_client *c) {
    const char *stream = s("jobs"), *dead_stream = s("jobs:dead");
    char poison_id[IPC_STREAM_ID_MAX], silent_id[IPC_STREAM_ID_MAX];
    struct poison p;
    ipc_consumer_options *o;
    ipc_stream_consumer *k = NULL;
    ipc_consumer_stats st;
    ipc_entries *dead = NULL;
    uint64_t pending = 99;
    size_t i;
    int got_poison = 0, got_silent = 0, ok;

    memset(&p, 0, sizeof p);
    CHECK_OK(publish1(c, stream, "task", "fine", 0, NULL));
    CHECK_OK(publish1(c, stream, "task", "poison", 0, poison_id));
    CHECK_OK(publish1(c, stream, "task", "silent", 0, silent_id));
    o = consumer_options(0, 50, 100, 50, 2);
    CHECK_OK(ipc_stream_consume(c, stream, strlen(stream), "g", 1, "only", 4, o, poison_cb, &p,
                                poison_free, &k));
    ipc_consumer_options_free(o);
    WAIT_UNTIL(ok, stream_len(c, dead_stream) >= 2, 15000);
    CHECK(ok);
    CHECK_OK(ipc_stream_dead_letters(c, stream, strlen(stream), 10, &dead));
    for (i = 0; i < ipc_entries_len(dead); i++) {
        const ipc_entry *e = ipc_entries_get(dead, i);
        if (entry_is(e, "_id", poison_id)) {
            got_poison = 1;
            CHECK(entry_is(e, "task", "poison"));
            CHECK(entry_is(e, "_error", "cannot digest poison"));
            CHECK(entry_is(e, "_deliveries", "2"));
            CHECK(entry_is(e, "_group", "g"));
        } else if (entry_is(e, "_id", silent_id)) {
            got_silent = 1;
            CHECK(entry_is(e, "_error", "the handler returned 7"));
        }
    }
    CHECK(got_poison && got_silent);
    ipc_entries_free(dead);
    WAIT_UNTIL(ok,
               ipc_stream_pending(c, stream, strlen(stream), "g", 1, &pending) == IPC_OK &&
                   pending == 0,
               5000);
    CHECK(ok);
    CHECK_OK(ipc_stream_consumer_stop(k, 5000));
    CHECK_OK(ipc_stream_consumer_stats(k, &st));
    CHECK(st.acked == 1 && st.failed == 4 && st.dead_lettered == 2);
    CHECK(load(&p.poison_calls) == 2); /* max_deliveries, never more */
    CHECK(load(&p.ok_calls) == 1);
    CHECK(load(&p.wrong_deliveries) == 0);
    CHECK(load(&p.freed) == 1); /* the stop returned IPC_OK */
    ipc_stream_consumer_free(k);
    CHECK(load(&p.freed) == 1);
    CHECK(stream_len(c, dead_stream) == 2);
}

/* The child process: consume as "doomed" and die inside the first handler call. */
static int die_cb(void *userdata, const ipc_entry *e, ipc_error_out *err) {
    (void)userdata;
    (void)e;
    (void)err;
    _exit(3);
}

static int die_consumer_main(const char *url, const char *stream, const char *group) {
    ipc_client *c = NULL;
    ipc_stream_consumer *k = NULL;
    ipc_consumer_options *o = NULL;
    if (ipc_client_new(url, NULL, &c) != IPC_OK) return 1;
    if (ipc_consumer_options_new(&o) != IPC_OK) return 1;
    if (ipc_consumer_options_set_block_ms(o, 100) != IPC_OK) return 1;
    if (ipc_stream_consume(c, stream, strlen(stream), group, strlen(group), "doomed", 6, o,
                           die_cb, NULL, NULL, &k) != IPC_OK)
        return 1;
    ipc_consumer_options_free(o);
    sleep_ms(20000); /* the handler exits long before */
    ipc_stream_consumer_free(k);
    ipc_client_free(c);
    return 2;
}

struct claimed {
    volatile long calls;
    volatile long deliveries;
    volatile double at;
};

static int claimed_cb(void *userdata, const ipc_entry *e, ipc_error_out *err) {
    struct claimed *cl = userdata;
    (void)err;
    cl->deliveries = (long)e->deliveries;
    cl->at = now_ms();
    __sync_synchronize();
    add(&cl->calls, 1);
    return 0;
}

static void test_killed_consumer_is_claimed(ipc_client *c, const char *url) {
    const char *stream = s("crash"), *group = "g";
    bool created = false;
    pid_t pid;
    int status = 0;
    double t_spawn;
    uint64_t pending = 0;
    struct claimed cl;
    ipc_consumer_options *o;
    ipc_stream_consumer *k = NULL;
    int ok;

    CHECK_OK(ipc_stream_group_create(c, stream, strlen(stream), group, 1, "0", &created));
    CHECK_OK(publish1(c, stream, "job", "1", 0, NULL));
    t_spawn = now_ms();
    pid = fork();
    if (pid == 0) {
        char *args[] = {(char *)self_path, "--die-consumer", (char *)url, (char *)stream,
                        (char *)group, NULL};
        execv(self_path, args);
        _exit(127);
    }
    CHECK(pid > 0);
    if (pid <= 0) return;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 3); /* died inside the handler */
    CHECK_OK(ipc_stream_pending(c, stream, strlen(stream), group, 1, &pending));
    CHECK(pending == 1);

    memset(&cl, 0, sizeof cl);
    o = consumer_options(0, 100, 300, 100, 0);
    CHECK_OK(ipc_stream_consume(c, stream, strlen(stream), group, 1, "rescuer", 7, o,
                                claimed_cb, &cl, NULL, &k));
    ipc_consumer_options_free(o);
    WAIT_UNTIL(ok, load(&cl.calls) >= 1, 10000);
    CHECK(ok);
    __sync_synchronize();
    CHECK(cl.deliveries == 2);
    CHECK(cl.at - t_spawn >= 290.0); /* not before min_idle */
    ipc_stream_consumer_free(k);
    CHECK(load(&cl.calls) == 1);
    CHECK_OK(ipc_stream_pending(c, stream, strlen(stream), group, 1, &pending));
    CHECK(pending == 0);
}

/* A consumer freed from inside its own handler: no further call, userdata_free once. */
struct selffree {
    ipc_stream_consumer *k;
    volatile long calls, freed, ready;
};

static int selffree_cb(void *userdata, const ipc_entry *e, ipc_error_out *err) {
    struct selffree *sf = userdata;
    (void)e;
    (void)err;
    add(&sf->calls, 1);
    while (load(&sf->ready) == 0) sleep_ms(1);
    ipc_stream_consumer_free(sf->k);
    sleep_ms(50);
    return 0;
}

static void selffree_free(void *userdata) {
    struct selffree *sf = userdata;
    add(&sf->freed, 1);
}

static void test_free_inside_handler(ipc_client *c) {
    const char *stream = s("selffree");
    struct selffree sf;
    ipc_consumer_options *o;
    long i;
    int ok;
    memset(&sf, 0, sizeof sf);
    for (i = 0; i < 20; i++) CHECK_OK(publish_n(c, stream, i, 0));
    o = consumer_options(20, 50, 0, 0, 0);
    CHECK_OK(ipc_stream_consume(c, stream, strlen(stream), "g", 1, "x", 1, o, selffree_cb, &sf,
                                selffree_free, &sf.k));
    ipc_consumer_options_free(o);
    __sync_synchronize();
    add(&sf.ready, 1);
    WAIT_UNTIL(ok, load(&sf.freed) >= 1, 10000);
    CHECK(ok);
    sleep_ms(100);
    CHECK(load(&sf.calls) == 1);
    CHECK(load(&sf.freed) == 1);
}

/* ---- bad input ---------------------------------------------------------------------- */

static int never_cb(void *userdata, const ipc_entry *e, ipc_error_out *err) {
    (void)userdata;
    (void)e;
    (void)err;
    return 0;
}

static void count_free(void *userdata) { add((volatile long *)userdata, 1); }

static void test_bad_input(ipc_client *c) {
    const char *st = s("bad"), *plain = s("plain");
    const char *bad_ids[] = {"abc", "1-x", "", "-1", ">", "+", "-", "1-*", "0-0-0"};
    size_t i;
    ipc_field f = fld("a", "b");
    ipc_entries *es = (ipc_entries *)&f; /* a sentinel: must stay untouched */
    ipc_entries *es0 = es;
    ipc_stream_follower *fo = NULL;
    ipc_stream_consumer *k = NULL;
    ipc_consumer_options *o = NULL;
    char id[IPC_STREAM_ID_MAX] = "untouched";
    bool created = true;
    uint64_t n = 777;
    volatile long freed = 0;
    ipc_reply *r = NULL;
    const char *v = NULL;
    size_t vl = 0;
    bool found = false;

    /* invalid stream ids: refused before anything is sent */
    for (i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
        CHECK_RC(ipc_stream_read(c, st, strlen(st), bad_ids[i], 1, -1, &es),
                 IPC_ERR_INVALID_ARGUMENT);
        CHECK_RC(ipc_stream_follow(c, st, strlen(st), bad_ids[i], &fo), IPC_ERR_INVALID_ARGUMENT);
        CHECK_RC(ipc_stream_group_create(c, st, strlen(st), "g", 1, bad_ids[i], &created),
                 IPC_ERR_INVALID_ARGUMENT);
    }
    CHECK(es == es0 && fo == NULL && created);
    CHECK(stream_len(c, st) == 0); /* MKSTREAM never ran */

    /* other invalid arguments */
    CHECK_RC(ipc_stream_publish(c, st, strlen(st), &f, 0, -1, NULL, 0), IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipc_stream_publish(c, "", 0, &f, 1, -1, NULL, 0), IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipc_stream_publish(c, st, strlen(st), &f, 1, -2, NULL, 0), IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipc_stream_publish(c, st, strlen(st), &f, 1, -1, id, 10), IPC_ERR_INVALID_ARGUMENT);
    CHECK(strcmp(id, "untouched") == 0);
    CHECK(stream_len(c, st) == 0); /* nothing was published */
    CHECK_RC(ipc_stream_group_create(c, st, strlen(st), "", 0, "0", &created),
             IPC_ERR_INVALID_ARGUMENT);
    CHECK(es == es0);
    /* options are checked by the consumer, and the error names the option */
    CHECK_OK(ipc_consumer_options_new(&o));
    CHECK_OK(ipc_consumer_options_set_count(o, 0));
    CHECK_RC(ipc_stream_consume(c, st, strlen(st), "g", 1, "c", 1, o, never_cb, (void *)&freed,
                                count_free, &k),
             IPC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(ipc_last_error_message(), "count") != NULL);
    CHECK_OK(ipc_consumer_options_set_count(o, 1));
    CHECK_OK(ipc_consumer_options_set_block_ms(o, 0));
    CHECK_RC(ipc_stream_consume(c, st, strlen(st), "g", 1, "c", 1, o, never_cb, (void *)&freed,
                                count_free, &k),
             IPC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(ipc_last_error_message(), "block") != NULL);
    ipc_consumer_options_free(o);
    CHECK_RC(ipc_stream_consume(c, st, strlen(st), "g", 1, "", 0, NULL, never_cb, (void *)&freed,
                                count_free, &k),
             IPC_ERR_INVALID_ARGUMENT);
    CHECK(k == NULL && load(&freed) == 0); /* on failure the caller keeps userdata */
    CHECK(strlen(ipc_last_error_message()) > 0);

    /* the pending count of a group that does not exist: the server's NOGROUP */
    CHECK_RC(ipc_stream_pending(c, s("nogroup"), strlen(s("nogroup")), "g", 1, &n),
             IPC_ERR_SERVER);
    CHECK(n == 777);

    /* WRONGTYPE: nothing changes */
    CHECK_OK(ipc_set(c, plain, strlen(plain), "x", 1, 0));
    CHECK_RC(publish1(c, plain, "a", "b", -1, id), IPC_ERR_SERVER);
    CHECK(strcmp(ipc_last_error_code(), "WRONGTYPE") == 0);
    CHECK(strcmp(id, "untouched") == 0);
    CHECK_RC(ipc_stream_len(c, plain, strlen(plain), &n), IPC_ERR_SERVER);
    CHECK_RC(ipc_stream_group_create(c, plain, strlen(plain), "g", 1, "0", &created),
             IPC_ERR_SERVER);
    CHECK_OK(cmd(c, &r, "GET", plain, NULL));
    if (r != NULL) {
        const char *p = NULL;
        size_t len = 0;
        CHECK_OK(ipc_reply_string(r, &p, &len));
        CHECK(bytes_eq(p, len, "x"));
        ipc_reply_free(r);
    }

    /* NULL arguments */
    f.name = NULL;
    CHECK_RC(ipc_stream_publish(c, st, strlen(st), &f, 1, -1, NULL, 0), IPC_ERR_NULL_ARG);
    f = fld("a", "b");
    f.value = NULL;
    CHECK_RC(ipc_stream_publish(c, st, strlen(st), &f, 1, -1, NULL, 0), IPC_ERR_NULL_ARG);
    f = fld("a", "b");
    CHECK_RC(ipc_stream_publish(NULL, st, strlen(st), &f, 1, -1, NULL, 0), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_stream_publish(c, NULL, 0, &f, 1, -1, NULL, 0), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_stream_publish(c, st, strlen(st), NULL, 1, -1, NULL, 0), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_stream_read(c, st, strlen(st), NULL, 1, -1, &es), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_stream_read(c, st, strlen(st), "0", 1, -1, NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_stream_last(c, NULL, 0, &es), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_stream_len(c, st, strlen(st), NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_stream_group_create(c, st, strlen(st), NULL, 0, "0", &created), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_stream_group_create(c, st, strlen(st), "g", 1, "0", NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_stream_pending(c, st, strlen(st), "g", 1, NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_stream_dead_letters(NULL, st, strlen(st), 1, &es), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_stream_follow(c, st, strlen(st), "0", NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_stream_follower_next(NULL, 1, &es), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_stream_follower_position(NULL, id, sizeof id), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_stream_consume(c, st, strlen(st), "g", 1, "c", 1, NULL, NULL, NULL, NULL, &k),
             IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_stream_consume(c, st, strlen(st), "g", 1, "c", 1, NULL, never_cb, NULL, NULL,
                                NULL),
             IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_stream_consumer_stop(NULL, 0), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_stream_consumer_stats(NULL, NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_consumer_options_new(NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_error_set(NULL, "x"), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_options_set_stream_maxlen(NULL, 5), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_entry_get(NULL, "a", 1, &v, &vl, &found), IPC_ERR_NULL_ARG);
    CHECK(ipc_entries_len(NULL) == 0);
    CHECK(ipc_entries_get(NULL, 0) == NULL);
    CHECK(strstr(ipc_last_error_message(), "entries") != NULL);
    CHECK(es == es0 && k == NULL && created && n == 777);
    ipc_entries_free(NULL);
    ipc_stream_consumer_free(NULL);
    CHECK(stream_len(c, st) == 0);
}

int main(int argc, char **argv) {
    const char *url;
    const char *quick_env = getenv("REDIPC_TEST_QUICK");
    ipc_client *c = NULL;
    quick = quick_env != NULL && strcmp(quick_env, "1") == 0;
    if (argc == 5 && strcmp(argv[1], "--die-consumer") == 0)
        return die_consumer_main(argv[2], argv[3], argv[4]);
    if (argc < 2) {
        fprintf(stderr, "usage: %s URL\n", argv[0]);
        return 2;
    }
    url = argv[1];
    self_path = argv[0];
    main_thread = pthread_self();
    snprintf(prefix, sizeof prefix, "stream_test:%ld:", (long)getpid());

    CHECK_OK(ipc_client_new(url, NULL, &c));
    if (c == NULL) return check_summary();
    test_bad_input(c);
    test_publish_bound_and_read(url, c);
    test_follower(url, c);
    test_group_exactly_once(c);
    test_poison_dead_letter(c);
    test_killed_consumer_is_claimed(c, url);
    test_free_inside_handler(c);
    ipc_client_free(c);
    return check_summary();
}
