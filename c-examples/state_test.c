/* state_test.c: the cache (ipc_cache_*), hash state (ipc_hash_*), lock (ipc_lock_*) and
 * keyspace (ipc_watch_keys) C API against a running server.
 *
 *   ./state_test URL           URL: redis://127.0.0.1:PORT/0 or unix:///path/redis.sock
 *
 * Covers: cache set/get/exists/delete, cache_wait returning within 50 ms of another
 * client's write, timing out cleanly (IPC_OK, found=false), TTL expiry; hash publisher
 * and watcher: initial sync then changes, deletions (NULL value), set_if_changed
 * publishing once for repeated values, set_many, replace_all, debounce, no initial sync,
 * a concurrent writer (the watcher's final view equals HGETALL), freeing from inside the
 * callback, WRONGTYPE changing nothing; locks: 8 processes incrementing a counter under
 * the lock 1,000 times each (exact), tokens strictly increasing, a holder that dies losing
 * the lock after its TTL, extend/release/auto-renew, waiting timing out; keyspace events
 * (set, del, expired) with key and event name, filtering, all events, the server's
 * configuration left alone; a poll-mode client (waits wake, hash watchers run, keyspace
 * callbacks only inside ipc_client_poll()); NULL arguments.
 *
 * Environment: REDIPC_TEST_QUICK=1 uses fewer iterations (for valgrind) and allows 500 ms
 * instead of 50 ms for the cache wake-up. Prints "N passed, M failed" last and exits
 * non-zero on any failure.
 *
 * (Internal: `state_test --lock-child URL LOCK COUNTER ITERATIONS` and `state_test
 * --lock-die URL LOCK TTL_MS` are the child processes of the lock tests.)
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
static const char *k(const char *name) {
    static char bufs[32][128];
    static int next = 0;
    char *b = bufs[next++ % 32];
    snprintf(b, sizeof bufs[0], "%s%s", prefix, name);
    return b;
}

static ipc_client *connect_or_null(const char *url) {
    ipc_client *c = NULL;
    CHECK_OK(ipc_client_new(url, NULL, &c));
    return c;
}

/* A command of up to 5 NUL-terminated arguments (NULL ends them). */
static ipc_result cmd(ipc_client *c, ipc_reply **out, const char *a0, const char *a1,
                      const char *a2, const char *a3, const char *a4) {
    const char *argv[5];
    size_t argc = 0;
    argv[argc++] = a0;
    if (a1) argv[argc++] = a1;
    if (a2) argv[argc++] = a2;
    if (a3) argv[argc++] = a3;
    if (a4) argv[argc++] = a4;
    return ipc_command(c, argv, NULL, argc, out);
}

static ipc_result run(ipc_client *c, const char *a0, const char *a1, const char *a2,
                      const char *a3, const char *a4) {
    ipc_reply *r = NULL;
    ipc_result rc = cmd(c, &r, a0, a1, a2, a3, a4);
    ipc_reply_free(r);
    return rc;
}

/* GET key as a string into buf (""): whether it exists. */
static int get_str(ipc_client *c, const char *key, char *buf, size_t cap) {
    char *v = NULL;
    size_t n = 0;
    bool found = false;
    buf[0] = '\0';
    if (ipc_get(c, key, strlen(key), &v, &n, &found) != IPC_OK || !found) return 0;
    if (n >= cap) n = cap - 1;
    memcpy(buf, v, n);
    buf[n] = '\0';
    ipc_buf_free(v, n);
    return 1;
}

static ipc_result set_str(ipc_client *c, const char *key, const char *value) {
    return ipc_set(c, key, strlen(key), value, strlen(value), 0);
}

static ipc_field fld(const char *name, const char *value) {
    ipc_field f;
    f.name = name;
    f.name_len = strlen(name);
    f.value = value;
    f.value_len = strlen(value);
    return f;
}

/* ---- cache -------------------------------------------------------------------------- */

struct waiter {
    ipc_client *c;
    const char *key;
    uint64_t timeout_ms;
    ipc_result rc;
    bool found;
    char value[64];
    double woke;
};

static void *waiter_main(void *arg) {
    struct waiter *w = arg;
    char *buf = NULL;
    size_t len = 0;
    w->rc = ipc_cache_wait(w->c, w->key, strlen(w->key), w->timeout_ms, &buf, &len, &w->found);
    w->woke = now_ms();
    if (w->rc == IPC_OK && w->found && len < sizeof w->value) {
        memcpy(w->value, buf, len);
        w->value[len] = '\0';
    }
    ipc_buf_free(buf, len);
    return NULL;
}

static void test_cache(const char *url, ipc_client *c) {
    ipc_client *writer = connect_or_null(url);
    char *buf = (char *)"sentinel";
    size_t len = 99;
    bool found = true, existed = false, exists = true;
    struct waiter w;
    pthread_t t;
    double t0, written, limit = quick ? 500.0 : 50.0;
    char raw[64], rawval[64];

    if (writer == NULL) return;
    /* missing */
    CHECK_OK(ipc_cache_get(c, "k", 1, &buf, &len, &found));
    CHECK(!found && buf == NULL && len == 0);
    CHECK_OK(ipc_cache_exists(c, "k", 1, &exists));
    CHECK(!exists);

    /* set, get, exists, delete; the key lives under the prefix */
    CHECK_OK(ipc_cache_set(c, k("c1"), strlen(k("c1")), "v1", 2, 0));
    CHECK_OK(ipc_cache_get(c, k("c1"), strlen(k("c1")), &buf, &len, &found));
    CHECK(found && bytes_eq(buf, len, "v1"));
    ipc_buf_free(buf, len);
    CHECK_OK(ipc_cache_exists(c, k("c1"), strlen(k("c1")), &exists));
    CHECK(exists);
    snprintf(raw, sizeof raw, "ipc:cache:%s", k("c1"));
    CHECK(get_str(c, raw, rawval, sizeof rawval) && strcmp(rawval, "v1") == 0);
    CHECK_OK(ipc_cache_delete(c, k("c1"), strlen(k("c1")), &existed));
    CHECK(existed);
    CHECK_OK(ipc_cache_delete(c, k("c1"), strlen(k("c1")), &existed));
    CHECK(!existed);

    /* an empty value is found, with a non-NULL buffer */
    CHECK_OK(ipc_cache_set(c, k("empty"), strlen(k("empty")), "", 0, 0));
    buf = NULL;
    CHECK_OK(ipc_cache_get(c, k("empty"), strlen(k("empty")), &buf, &len, &found));
    CHECK(found && buf != NULL && len == 0);
    ipc_buf_free(buf, len);

    /* present already: returns at once */
    CHECK_OK(ipc_cache_set(c, k("ready"), strlen(k("ready")), "1", 1, 0));
    t0 = now_ms();
    CHECK_OK(ipc_cache_wait(c, k("ready"), strlen(k("ready")), 1000, &buf, &len, &found));
    CHECK(found && bytes_eq(buf, len, "1") && now_ms() - t0 < 500.0);
    ipc_buf_free(buf, len);

    /* written by another client while we wait: wakes within 50 ms of the write */
    memset(&w, 0, sizeof w);
    w.c = c;
    w.key = k("later");
    w.timeout_ms = 5000;
    CHECK(pthread_create(&t, NULL, waiter_main, &w) == 0);
    sleep_ms(300);
    written = now_ms();
    CHECK_OK(ipc_cache_set(writer, w.key, strlen(w.key), "v", 1, 10000));
    pthread_join(t, NULL);
    CHECK_OK(w.rc);
    CHECK(w.found && strcmp(w.value, "v") == 0);
    CHECK(w.woke - written < limit);
    if (w.woke - written >= limit)
        fprintf(stderr, "cache_wait woke %.1f ms after the write\n", w.woke - written);

    /* a timeout is not an error */
    buf = (char *)"sentinel";
    found = true;
    t0 = now_ms();
    CHECK_OK(ipc_cache_wait(c, k("never"), strlen(k("never")), 200, &buf, &len, &found));
    CHECK(!found && buf == NULL && len == 0);
    CHECK(now_ms() - t0 >= 195.0 && now_ms() - t0 < 1000.0);
    found = true;
    CHECK_OK(ipc_cache_wait(c, k("never"), strlen(k("never")), 0, &buf, &len, &found));
    CHECK(!found);

    /* TTL expiry */
    CHECK_OK(ipc_cache_set(c, k("ttl"), strlen(k("ttl")), "t", 1, 100));
    CHECK_OK(ipc_cache_exists(c, k("ttl"), strlen(k("ttl")), &exists));
    CHECK(exists);
    sleep_ms(250);
    CHECK_OK(ipc_cache_get(c, k("ttl"), strlen(k("ttl")), &buf, &len, &found));
    CHECK(!found);
    CHECK_OK(ipc_cache_exists(c, k("ttl"), strlen(k("ttl")), &exists));
    CHECK(!exists);

    ipc_client_free(writer);
}

/* ---- hash state --------------------------------------------------------------------- */

#define MAXF 64
#define FLEN 64

/* The watcher's view of a hash: the last value delivered per field. */
struct view {
    pthread_mutex_t mu;
    int n;
    char name[MAXF][FLEN];
    char value[MAXF][FLEN];
    int present[MAXF];
    long calls_of[MAXF];
    long calls, deletes, on_main, freed, bad;
    void **free_me; /* a handle to free from inside the callback (the first call) */
    long calls_after_free;
    int freed_inside;
};

static void view_init(struct view *v) {
    memset(v, 0, sizeof *v);
    pthread_mutex_init(&v->mu, NULL);
}

static void view_destroy(struct view *v) { pthread_mutex_destroy(&v->mu); }

static int view_slot(struct view *v, const char *name, size_t nlen) {
    int i;
    for (i = 0; i < v->n; i++)
        if (strlen(v->name[i]) == nlen && memcmp(v->name[i], name, nlen) == 0) return i;
    if (v->n == MAXF || nlen >= FLEN) return -1;
    memcpy(v->name[v->n], name, nlen);
    v->name[v->n][nlen] = '\0';
    return v->n++;
}

static void view_cb(void *userdata, const char *field, size_t flen, const char *value,
                    size_t vlen) {
    struct view *v = userdata;
    int i;
    pthread_mutex_lock(&v->mu);
    if (v->freed_inside) v->calls_after_free++;
    v->calls++;
    if (pthread_equal(pthread_self(), main_thread)) v->on_main++;
    i = view_slot(v, field, flen);
    if (i < 0 || vlen >= FLEN) {
        v->bad++;
    } else {
        v->calls_of[i]++;
        if (value == NULL) {
            v->deletes++;
            v->present[i] = 0;
            v->value[i][0] = '\0';
        } else {
            v->present[i] = 1;
            memcpy(v->value[i], value, vlen);
            v->value[i][vlen] = '\0';
        }
    }
    if (v->free_me != NULL && !v->freed_inside) {
        v->freed_inside = 1;
        pthread_mutex_unlock(&v->mu);
        ipc_hash_watcher_free((ipc_hash_watcher *)*v->free_me);
        return;
    }
    pthread_mutex_unlock(&v->mu);
}

static void view_free(void *userdata) {
    struct view *v = userdata;
    pthread_mutex_lock(&v->mu);
    v->freed++;
    pthread_mutex_unlock(&v->mu);
}

/* Whether field `name` currently has `value` in the view (NULL: absent). */
static int view_has(struct view *v, const char *name, const char *value) {
    int i, ok = 0;
    pthread_mutex_lock(&v->mu);
    for (i = 0; i < v->n; i++) {
        if (strcmp(v->name[i], name) != 0) continue;
        ok = value == NULL ? !v->present[i] : (v->present[i] && strcmp(v->value[i], value) == 0);
        break;
    }
    if (i == v->n) ok = value == NULL;
    pthread_mutex_unlock(&v->mu);
    return ok;
}

static long view_get(struct view *v, long *field) {
    long x;
    pthread_mutex_lock(&v->mu);
    x = *field;
    pthread_mutex_unlock(&v->mu);
    return x;
}

static long view_calls_of(struct view *v, const char *name) {
    int i;
    long x = 0;
    pthread_mutex_lock(&v->mu);
    for (i = 0; i < v->n; i++)
        if (strcmp(v->name[i], name) == 0) x = v->calls_of[i];
    pthread_mutex_unlock(&v->mu);
    return x;
}

/* Whether the view equals HGETALL hash (same fields, same values). */
static int view_equals_server(struct view *v, ipc_client *c, const char *hash) {
    ipc_reply *r = NULL;
    size_t i, n, present = 0;
    int same = 1, j;
    if (cmd(c, &r, "HGETALL", hash, NULL, NULL, NULL) != IPC_OK) return 0;
    n = ipc_reply_len(r);
    pthread_mutex_lock(&v->mu);
    for (j = 0; j < v->n; j++) present += (size_t)v->present[j];
    if (present * 2 != n) same = 0;
    for (i = 0; same && i + 1 < n; i += 2) {
        const char *f = NULL, *val = NULL;
        size_t fl = 0, vl = 0;
        int found = 0;
        if (ipc_reply_string(ipc_reply_element(r, i), &f, &fl) != IPC_OK ||
            ipc_reply_string(ipc_reply_element(r, i + 1), &val, &vl) != IPC_OK) {
            same = 0;
            break;
        }
        for (j = 0; j < v->n; j++) {
            if (strlen(v->name[j]) == fl && memcmp(v->name[j], f, fl) == 0) {
                found = v->present[j] && strlen(v->value[j]) == vl &&
                        memcmp(v->value[j], val, vl) == 0;
                break;
            }
        }
        if (!found) same = 0;
    }
    pthread_mutex_unlock(&v->mu);
    ipc_reply_free(r);
    return same;
}

/* Counts messages on a channel whose payload is `want` (a subscription callback). */
struct counter {
    const char *want;
    volatile long hits, activated;
};

static void counter_cb(void *userdata, const ipc_message *m) {
    struct counter *ct = userdata;
    if (m->kind == IPC_EVENT_ACTIVATED) add(&ct->activated, 1);
    if (m->kind == IPC_EVENT_MESSAGE && bytes_eq(m->payload, m->payload_len, ct->want))
        add(&ct->hits, 1);
}

static ipc_result hset(ipc_client *c, const char *hash, const char *field, const char *value) {
    return ipc_hash_set(c, hash, strlen(hash), field, strlen(field), value,
                        strlen(value), NULL);
}

static void test_hash_watch_and_publish(ipc_client *c) {
    const char *hash = k("device");
    struct view v;
    ipc_hash_watcher *w = NULL;
    struct counter ct;
    ipc_subscription *sub = NULL;
    const char *chan[1];
    bool changed = false, existed = false;
    ipc_hash_write_options *star = NULL;
    ipc_field fs[3];
    int i, ok;
    const char *vals[] = {"10", "10", "10", "10", "10"};

    view_init(&v);
    CHECK_OK(hset(c, hash, "a", "1"));
    CHECK_OK(hset(c, hash, "b", "2"));
    CHECK_OK(ipc_hash_watch(c, hash, strlen(hash), NULL, view_cb, NULL, &v, view_free, &w));
    /* initial sync */
    WAIT_UNTIL(ok, view_has(&v, "a", "1") && view_has(&v, "b", "2"), 5000);
    CHECK(ok);
    CHECK(view_get(&v, &v.calls) == 2);
    /* changes */
    CHECK_OK(hset(c, hash, "c", "3"));
    WAIT_UNTIL(ok, view_has(&v, "c", "3"), 5000);
    CHECK(ok);
    CHECK_OK(ipc_hash_delete(c, hash, strlen(hash), "a", 1, NULL, &existed));
    CHECK(existed);
    WAIT_UNTIL(ok, view_get(&v, &v.deletes) == 1 && view_has(&v, "a", NULL), 5000);
    CHECK(ok);
    CHECK_OK(ipc_hash_delete(c, hash, strlen(hash), "a", 1, NULL, &existed));
    CHECK(!existed);

    /* set_if_changed publishes once for repeated values */
    memset(&ct, 0, sizeof ct);
    ct.want = "speed";
    chan[0] = hash;
    CHECK_OK(ipc_subscribe(c, IPC_SUB_CHANNEL, chan, NULL, 1, NULL, counter_cb, &ct, NULL, &sub));
    for (i = 0; i < 5; i++) {
        CHECK_OK(ipc_hash_set_if_changed(c, hash, strlen(hash), "speed", 5,
                                         vals[i], 2, &changed));
        CHECK(changed == (i == 0));
    }
    CHECK_OK(ipc_hash_set_if_changed(c, hash, strlen(hash), "speed", 5, "11", 2,
                                     &changed));
    CHECK(changed);
    WAIT_UNTIL(ok, load(&ct.hits) >= 2 && view_has(&v, "speed", "11"), 5000);
    CHECK(ok);
    sleep_ms(100);
    CHECK(load(&ct.hits) == 2);
    /* "10" once, then "11" (or only "11" when the watcher reads after both writes: it
     * delivers the current value, never the same value twice) */
    CHECK(view_calls_of(&v, "speed") >= 1 && view_calls_of(&v, "speed") <= 2);
    ipc_subscription_free(sub);

    /* set_many: per field, and with one summary publish ("*": the watcher re-reads) */
    fs[0] = fld("m1", "x");
    fs[1] = fld("m2", "y");
    CHECK_OK(ipc_hash_set_many(c, hash, strlen(hash), fs, 2, NULL));
    WAIT_UNTIL(ok, view_has(&v, "m1", "x") && view_has(&v, "m2", "y"), 5000);
    CHECK(ok);
    fs[0] = fld("m1", "x2");
    fs[1] = fld("m3", "z");
    CHECK_OK(ipc_hash_write_options_new(&star));
    CHECK_OK(ipc_hash_write_options_set_announce(star, "*", 1));
    CHECK_OK(ipc_hash_set_many(c, hash, strlen(hash), fs, 2, star));
    ipc_hash_write_options_free(star);
    WAIT_UNTIL(ok, view_has(&v, "m1", "x2") && view_has(&v, "m3", "z"), 5000);
    CHECK(ok);

    /* replace_all: removed fields are delivered with NULL */
    fs[0] = fld("only", "1");
    CHECK_OK(ipc_hash_replace_all(c, hash, strlen(hash), fs, 1, NULL));
    WAIT_UNTIL(ok, view_has(&v, "only", "1") && view_has(&v, "b", NULL) &&
                       view_has(&v, "speed", NULL) && view_has(&v, "m3", NULL),
               5000);
    CHECK(ok);
    CHECK(view_equals_server(&v, c, hash));
    CHECK_OK(ipc_hash_replace_all(c, hash, strlen(hash), NULL, 0, NULL)); /* empties it */
    WAIT_UNTIL(ok, view_has(&v, "only", NULL), 5000);
    CHECK(ok);
    CHECK(view_equals_server(&v, c, hash));

    CHECK(view_get(&v, &v.on_main) == 0 && view_get(&v, &v.bad) == 0);
    CHECK(view_get(&v, &v.freed) == 0);
    ipc_hash_watcher_free(w);
    CHECK(view_get(&v, &v.freed) == 1);
    view_destroy(&v);
}

static void test_hash_options(ipc_client *c) {
    const char *hash = k("opts");
    struct view v1, v2;
    ipc_hash_watcher *w1 = NULL, *w2 = NULL;
    ipc_hash_watch_options *o = NULL;
    char val[16];
    int i, ok;

    view_init(&v1);
    view_init(&v2);
    CHECK_OK(hset(c, hash, "old", "1"));
    CHECK_OK(ipc_hash_watch_options_new(&o));
    /* no initial sync: only changes */
    CHECK_OK(ipc_hash_watch_options_set_initial_sync(o, false));
    CHECK_OK(ipc_hash_watch(c, hash, strlen(hash), o, view_cb, NULL, &v1, NULL, &w1));
    /* debounce: a burst becomes one delivery of the latest value */
    CHECK_OK(ipc_hash_watch_options_set_initial_sync(o, true));
    CHECK_OK(ipc_hash_watch_options_set_debounce_ms(o, 300));
    CHECK_OK(ipc_hash_watch(c, hash, strlen(hash), o, view_cb, NULL, &v2, view_free, &w2));
    ipc_hash_watch_options_free(o);
    WAIT_UNTIL(ok, view_has(&v2, "old", "1"), 5000);
    CHECK(ok);
    for (i = 0; i < 10; i++) {
        snprintf(val, sizeof val, "%d", i);
        CHECK_OK(hset(c, hash, "burst", val));
    }
    WAIT_UNTIL(ok, view_has(&v2, "burst", "9") && view_has(&v1, "burst", "9"), 5000);
    CHECK(ok);
    sleep_ms(400);
    CHECK(quick ? view_calls_of(&v2, "burst") <= 3 : view_calls_of(&v2, "burst") == 1);
    CHECK(view_calls_of(&v1, "old") == 0);
    ipc_hash_watcher_free(w1);
    ipc_hash_watcher_free(w2);
    CHECK(view_get(&v2, &v2.freed) == 1 && view_get(&v1, &v1.freed) == 0);
    ipc_hash_watcher_free(NULL);
    view_destroy(&v1);
    view_destroy(&v2);
}

struct writer_arg {
    ipc_client *c;
    const char *hash;
    long count;
    volatile long done, errors;
};

static void *writer_main(void *arg) {
    struct writer_arg *a = arg;
    long i;
    char f[16], val[32];
    for (i = 0; i < a->count; i++) {
        snprintf(f, sizeof f, "f%ld", i % 10);
        snprintf(val, sizeof val, "%ld", i);
        if (hset(a->c, a->hash, f, val) != IPC_OK) add(&a->errors, 1);
        add(&a->done, 1);
    }
    return NULL;
}

static void test_hash_concurrent_writer(const char *url, ipc_client *c) {
    const char *hash = k("busy");
    struct view v;
    struct writer_arg a;
    ipc_hash_watcher *w = NULL;
    pthread_t t;
    int ok;

    view_init(&v);
    memset(&a, 0, sizeof a);
    a.c = connect_or_null(url);
    a.hash = hash;
    a.count = quick ? 1000 : 10000;
    if (a.c == NULL) return;
    CHECK(pthread_create(&t, NULL, writer_main, &a) == 0);
    /* start watching in the middle of the writes */
    WAIT_UNTIL(ok, load(&a.done) >= a.count / 4, 30000);
    CHECK_OK(ipc_hash_watch(c, hash, strlen(hash), NULL, view_cb, NULL, &v, NULL, &w));
    pthread_join(t, NULL);
    CHECK(a.errors == 0);
    WAIT_UNTIL(ok, view_equals_server(&v, c, hash), 10000);
    CHECK(ok);
    CHECK(view_has(&v, "f9", quick ? "999" : "9999"));
    ipc_hash_watcher_free(w);
    ipc_client_free(a.c);
    view_destroy(&v);
}

static void test_hash_free_inside_callback(ipc_client *c) {
    const char *hash = k("selffree");
    struct view v;
    ipc_hash_watcher *w = NULL;
    int ok;

    view_init(&v);
    CHECK_OK(hset(c, hash, "a", "1"));
    CHECK_OK(hset(c, hash, "b", "2"));
    CHECK_OK(hset(c, hash, "c", "3"));
    pthread_mutex_lock(&v.mu); /* the first call waits until w is known */
    v.free_me = (void **)&w;
    CHECK_OK(ipc_hash_watch(c, hash, strlen(hash), NULL, view_cb, NULL, &v, view_free, &w));
    pthread_mutex_unlock(&v.mu);
    WAIT_UNTIL(ok, view_get(&v, &v.freed) == 1, 5000);
    CHECK(ok);
    CHECK_OK(hset(c, hash, "d", "4"));
    sleep_ms(200);
    CHECK(view_get(&v, &v.calls) == 1); /* the other two fields of the sync: not delivered */
    CHECK(view_get(&v, &v.calls_after_free) == 0);
    CHECK(view_get(&v, &v.freed) == 1);
    view_destroy(&v);
}

static void test_hash_wrongtype(ipc_client *c) {
    const char *plain = k("plainhash");
    char got[16];
    bool changed = true, existed = true;
    ipc_field f = fld("f", "v");
    struct view v;
    ipc_hash_watcher *w = NULL;

    view_init(&v);
    CHECK_OK(set_str(c, plain, "x"));
    CHECK_RC(hset(c, plain, "f", "v"), IPC_ERR_SERVER);
    CHECK(strcmp(ipc_last_error_code(), "WRONGTYPE") == 0);
    CHECK_RC(ipc_hash_set_if_changed(c, plain, strlen(plain), "f", 1, "v", 1,
                                     &changed),
             IPC_ERR_SERVER);
    CHECK(strcmp(ipc_last_error_code(), "WRONGTYPE") == 0);
    CHECK_RC(ipc_hash_set_many(c, plain, strlen(plain), &f, 1, NULL), IPC_ERR_SERVER);
    CHECK_RC(ipc_hash_delete(c, plain, strlen(plain), "f", 1, NULL, &existed), IPC_ERR_SERVER);
    CHECK_RC(ipc_hash_watch(c, plain, strlen(plain), NULL, view_cb, NULL, &v, view_free, &w),
             IPC_ERR_SERVER);
    CHECK(changed && existed && w == NULL);
    CHECK(get_str(c, plain, got, sizeof got) && strcmp(got, "x") == 0);
    sleep_ms(50);
    CHECK(view_get(&v, &v.freed) == 0 && view_get(&v, &v.calls) == 0);
    view_destroy(&v);
}

/* ---- locks -------------------------------------------------------------------------- */

/* Child: ITERATIONS times, under the lock: check the token is above the last one written,
 * write it, and increment COUNTER with GET + SET (a race without the lock). */
/* ipc_lock_acquire with a time to live, a wait (0: try once) and automatic renewal. */
static ipc_result lock_acquire(ipc_client *c, const char *name, size_t name_len, uint64_t ttl_ms,
                               uint64_t wait_ms, bool auto_renew, ipc_lock **out) {
    ipc_lock_options *o = NULL;
    ipc_result rc;
    if (ipc_lock_options_new(&o) != IPC_OK) return IPC_ERR_INTERNAL;
    if (ipc_lock_options_set_ttl_ms(o, ttl_ms) != IPC_OK ||
        ipc_lock_options_set_wait_ms(o, wait_ms) != IPC_OK ||
        ipc_lock_options_set_auto_renew(o, auto_renew) != IPC_OK) {
        ipc_lock_options_free(o);
        return IPC_ERR_INTERNAL;
    }
    rc = ipc_lock_acquire(c, name, name_len, o, out);
    ipc_lock_options_free(o);
    return rc;
}

static int lock_child_main(const char *url, const char *name, const char *counter, long iters) {
    ipc_client *c = NULL;
    long i, violations = 0;
    char last_key[200], buf[32];
    if (ipc_client_new(url, NULL, &c) != IPC_OK) return 10;
    snprintf(last_key, sizeof last_key, "%s:last-token", counter);
    for (i = 0; i < iters; i++) {
        ipc_lock *l = NULL;
        uint64_t token = 0;
        bool held = false;
        long last, n;
        if (lock_acquire(c, name, strlen(name), 5000, 60000, false, &l) != IPC_OK) {
            fprintf(stderr, "acquire: %s\n", ipc_last_error_message());
            return 11;
        }
        if (ipc_lock_token(l, &token) != IPC_OK) return 12;
        last = get_str(c, last_key, buf, sizeof buf) ? atol(buf) : 0;
        if ((long)token <= last) violations++;
        snprintf(buf, sizeof buf, "%" PRIu64, token);
        if (set_str(c, last_key, buf) != IPC_OK) return 13;
        n = get_str(c, counter, buf, sizeof buf) ? atol(buf) : 0;
        snprintf(buf, sizeof buf, "%ld", n + 1);
        if (set_str(c, counter, buf) != IPC_OK) return 14;
        if (ipc_lock_release(l, &held) != IPC_OK || !held) violations++;
        ipc_lock_free(l);
    }
    ipc_client_free(c);
    return violations == 0 ? 0 : 1;
}

/* Child: take the lock with a TTL and die holding it. */
static int lock_die_main(const char *url, const char *name, long ttl) {
    ipc_client *c = NULL;
    ipc_lock *l = NULL;
    if (ipc_client_new(url, NULL, &c) != IPC_OK) return 10;
    if (lock_acquire(c, name, strlen(name), (uint64_t)ttl, 0, false, &l) != IPC_OK) return 11;
    _exit(0);
}

static pid_t spawn(char **args) {
    pid_t pid = fork();
    if (pid == 0) {
        execv(self_path, args);
        _exit(127);
    }
    return pid;
}

static void test_lock_processes(const char *url, ipc_client *c) {
    const char *name = k("counter-lock"), *counter = k("counter");
    long iters = quick ? 100 : 1000, procs = 8, i;
    char iters_s[32], got[32];
    pid_t pids[8];
    int all_ok = 1;
    ipc_lock *l = NULL;
    uint64_t token = 0;
    double t0 = now_ms();

    snprintf(iters_s, sizeof iters_s, "%ld", iters);
    for (i = 0; i < procs; i++) {
        char *args[] = {(char *)self_path, "--lock-child", (char *)url, (char *)name,
                        (char *)counter,   iters_s,        NULL};
        pids[i] = spawn(args);
        CHECK(pids[i] > 0);
    }
    for (i = 0; i < procs; i++) {
        int status = 0;
        if (pids[i] <= 0) continue;
        if (waitpid(pids[i], &status, 0) != pids[i] || !WIFEXITED(status) ||
            WEXITSTATUS(status) != 0) {
            all_ok = 0;
            fprintf(stderr, "lock child %ld: status %d\n", i, status);
        }
    }
    CHECK(all_ok); /* each child saw strictly increasing tokens, and held what it released */
    CHECK(get_str(c, counter, got, sizeof got) && atol(got) == procs * iters);
    printf("%ld processes x %ld increments under the lock: %s in %.0f ms\n", procs, iters, got,
           now_ms() - t0);
    /* the next token is above all of theirs */
    CHECK_OK(lock_acquire(c, name, strlen(name), 1000, 1000, false, &l));
    CHECK_OK(ipc_lock_token(l, &token));
    CHECK(token == (uint64_t)(procs * iters) + 1);
    ipc_lock_free(l);
}

struct locker {
    ipc_client *c;
    const char *name, *counter;
    long iters;
    volatile long errors;
};

static void *locker_main(void *arg) {
    struct locker *a = arg;
    long i;
    char buf[32];
    for (i = 0; i < a->iters; i++) {
        ipc_lock *l = NULL;
        bool held = false;
        long n;
        if (lock_acquire(a->c, a->name, strlen(a->name), 5000, 30000, false, &l) != IPC_OK) {
            add(&a->errors, 1);
            continue;
        }
        n = get_str(a->c, a->counter, buf, sizeof buf) ? atol(buf) : 0;
        snprintf(buf, sizeof buf, "%ld", n + 1);
        if (set_str(a->c, a->counter, buf) != IPC_OK) add(&a->errors, 1);
        if (ipc_lock_release(l, &held) != IPC_OK || !held) add(&a->errors, 1);
        ipc_lock_free(l);
    }
    return NULL;
}

/* Threads of one process sharing one client contend for the lock. */
static void test_lock_threads(ipc_client *c) {
    struct locker a;
    pthread_t t[4];
    int i;
    char got[32];
    a.c = c;
    a.name = k("thread-lock");
    a.counter = k("thread-counter");
    a.iters = quick ? 50 : 250;
    a.errors = 0;
    for (i = 0; i < 4; i++) CHECK(pthread_create(&t[i], NULL, locker_main, &a) == 0);
    for (i = 0; i < 4; i++) pthread_join(t[i], NULL);
    CHECK(a.errors == 0);
    CHECK(get_str(c, a.counter, got, sizeof got) && atol(got) == 4 * a.iters);
}

static void test_lock_dead_holder(const char *url, ipc_client *c) {
    const char *name = k("dead-lock");
    char *args[] = {(char *)self_path, "--lock-die", (char *)url, (char *)name, "600", NULL};
    ipc_lock *l = (ipc_lock *)&args; /* a sentinel: must stay untouched on failure */
    ipc_lock *l0 = l;
    pid_t pid;
    int status = 0;
    double t_spawn, waited;
    uint64_t token = 0;

    t_spawn = now_ms();
    pid = spawn(args);
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* still held by the dead process: trying once times out at once */
    CHECK_RC(lock_acquire(c, name, strlen(name), 1000, 0, false, &l), IPC_ERR_TIMEOUT);
    CHECK(l == l0);
    CHECK(strstr(ipc_last_error_message(), "still taken") != NULL);
    /* its TTL runs out: we get it, not before */
    l = NULL;
    CHECK_OK(lock_acquire(c, name, strlen(name), 1000, 5000, false, &l));
    waited = now_ms() - t_spawn;
    CHECK(waited >= 590.0 && waited < 3000.0);
    CHECK_OK(ipc_lock_token(l, &token));
    CHECK(token == 2);
    ipc_lock_free(l);
}

static void test_lock_semantics(const char *url, ipc_client *c) {
    const char *name = k("sem-lock");
    ipc_client *other = connect_or_null(url);
    ipc_lock *l = NULL, *l2 = NULL;
    bool held = false;
    uint64_t t1 = 0, t2 = 0;
    double t0;

    if (other == NULL) return;
    /* extend, release, release again */
    CHECK_OK(lock_acquire(c, name, strlen(name), 200, 0, false, &l));
    CHECK_OK(ipc_lock_token(l, &t1));
    CHECK(t1 >= 1);
    CHECK_OK(ipc_lock_extend(l, 5000, &held));
    CHECK(held);
    sleep_ms(300); /* past the first TTL: the extension keeps it */
    CHECK_RC(lock_acquire(other, name, strlen(name), 1000, 0, false, &l2), IPC_ERR_TIMEOUT);
    /* a waiter wakes as soon as it is released */
    CHECK_OK(ipc_lock_release(l, &held));
    CHECK(held);
    CHECK_OK(ipc_lock_release(l, &held));
    CHECK(!held);
    CHECK_OK(ipc_lock_extend(l, 1000, &held));
    CHECK(!held);
    CHECK_OK(ipc_lock_token(l, &t2));
    CHECK(t2 == t1); /* still there after release */
    ipc_lock_free(l);

    /* expired: extend and release say it is no longer ours */
    l = NULL;
    CHECK_OK(lock_acquire(c, name, strlen(name), 100, 0, false, &l));
    sleep_ms(250);
    CHECK_OK(ipc_lock_extend(l, 1000, &held));
    CHECK(!held);
    CHECK_OK(lock_acquire(other, name, strlen(name), 5000, 0, false, &l2));
    CHECK_OK(ipc_lock_token(l2, &t2));
    CHECK_OK(ipc_lock_token(l, &t1));
    CHECK(t2 > t1);
    CHECK_OK(ipc_lock_release(l, &held));
    CHECK(!held); /* and l2's lock is untouched */
    ipc_lock_free(l);
    l = NULL;
    CHECK_RC(lock_acquire(c, name, strlen(name), 1000, 0, false, &l), IPC_ERR_TIMEOUT);
    /* ipc_lock_free releases a held lock */
    ipc_lock_free(l2);
    l = NULL;
    CHECK_OK(lock_acquire(c, name, strlen(name), 1000, 0, false, &l));
    ipc_lock_free(l);

    /* auto-renew keeps it past its TTL */
    l = NULL;
    CHECK_OK(lock_acquire(c, name, strlen(name), 300, 0, true, &l));
    sleep_ms(1000);
    l2 = NULL;
    t0 = now_ms();
    CHECK_RC(lock_acquire(other, name, strlen(name), 1000, 200, false, &l2), IPC_ERR_TIMEOUT);
    CHECK(now_ms() - t0 >= 190.0);
    CHECK_OK(ipc_lock_release(l, &held));
    CHECK(held);
    ipc_lock_free(l);

    /* bad names and TTLs */
    l = NULL;
    CHECK_RC(lock_acquire(c, "", 0, 1000, 0, false, &l), IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(lock_acquire(c, "a{b}", 4, 1000, 0, false, &l), IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(lock_acquire(c, name, strlen(name), 0, 0, false, &l), IPC_ERR_INVALID_ARGUMENT);
    CHECK(l == NULL);
    ipc_lock_free(NULL);
    ipc_client_free(other);
}

/* ---- keyspace ----------------------------------------------------------------------- */

#define MAXEV 64

struct events {
    pthread_mutex_t mu;
    int n;
    char line[MAXEV][160]; /* "key event" */
    long freed, on_main;
};

static void events_cb(void *userdata, const char *key, size_t klen, const char *event) {
    struct events *e = userdata;
    pthread_mutex_lock(&e->mu);
    if (pthread_equal(pthread_self(), main_thread)) e->on_main++;
    if (e->n < MAXEV && klen < 100) {
        snprintf(e->line[e->n], sizeof e->line[0], "%.*s %s", (int)klen, key, event);
        e->n++;
    }
    pthread_mutex_unlock(&e->mu);
}

static void events_free(void *userdata) {
    struct events *e = userdata;
    pthread_mutex_lock(&e->mu);
    e->freed++;
    pthread_mutex_unlock(&e->mu);
}

static int events_has(struct events *e, const char *key, const char *event) {
    char want[200];
    int i, found = 0;
    snprintf(want, sizeof want, "%s %s", key, event);
    pthread_mutex_lock(&e->mu);
    for (i = 0; i < e->n; i++)
        if (strcmp(e->line[i], want) == 0) found = 1;
    pthread_mutex_unlock(&e->mu);
    return found;
}

static int events_count(struct events *e) {
    int n;
    pthread_mutex_lock(&e->mu);
    n = e->n;
    pthread_mutex_unlock(&e->mu);
    return n;
}

static void test_keyspace(ipc_client *c) {
    char pattern[128], pattern2[128], config_before[128], config_after[128];
    const char *a = k("ks:a"), *b = k("ks:b"), *n = k("ks:n"), *h = k("ks2:h"), *h2 = k("ks2:s");
    const char *wanted[] = {"set", "del", "expired"};
    struct events e, e2;
    ipc_key_watch *w = NULL, *w2 = NULL;
    ipc_reply *r = NULL;
    int ok;

    memset(&e, 0, sizeof e);
    memset(&e2, 0, sizeof e2);
    pthread_mutex_init(&e.mu, NULL);
    pthread_mutex_init(&e2.mu, NULL);
    snprintf(pattern, sizeof pattern, "%sks:*", prefix);
    snprintf(pattern2, sizeof pattern2, "%sks2:*", prefix);
    CHECK_OK(ipc_watch_keys(c, pattern, strlen(pattern), wanted, 3, true, events_cb, &e,
                            events_free, &w));
    CHECK_OK(set_str(c, a, "1"));
    CHECK_OK(run(c, "DEL", a, NULL, NULL, NULL));
    CHECK_OK(run(c, "INCR", n, NULL, NULL, NULL)); /* "incrby": not asked for */
    CHECK_OK(run(c, "SET", b, "1", "PX", "50"));
    WAIT_UNTIL(ok,
               events_has(&e, a, "set") && events_has(&e, a, "del") && events_has(&e, b, "set") &&
                   events_has(&e, b, "expired"),
               5000);
    CHECK(ok);
    CHECK(!events_has(&e, n, "incrby"));
    CHECK(events_count(&e) == 4);

    /* all events (nevents 0, events NULL); the server's config is left alone */
    CHECK_OK(cmd(c, &r, "CONFIG", "GET", "notify-keyspace-events", NULL, NULL));
    config_before[0] = '\0';
    if (r != NULL && ipc_reply_len(r) == 2) {
        const char *p = NULL;
        size_t len = 0;
        if (ipc_reply_string(ipc_reply_element(r, 1), &p, &len) == IPC_OK && len < 128) {
            memcpy(config_before, p, len);
            config_before[len] = '\0';
        }
    }
    ipc_reply_free(r);
    CHECK_OK(ipc_watch_keys(c, pattern2, strlen(pattern2), NULL, 0, false, events_cb, &e2, NULL,
                            &w2));
    CHECK_OK(run(c, "HSET", h, "f", "v", NULL)); /* the server publishes no hash events */
    CHECK_OK(set_str(c, h2, "1"));
    CHECK_OK(run(c, "DEL", h2, NULL, NULL, NULL));
    WAIT_UNTIL(ok, events_has(&e2, h2, "set") && events_has(&e2, h2, "del"), 5000);
    CHECK(ok);
    if (strchr(config_before, 'h') == NULL && strchr(config_before, 'A') == NULL)
        CHECK(!events_has(&e2, h, "hset"));
    r = NULL;
    CHECK_OK(cmd(c, &r, "CONFIG", "GET", "notify-keyspace-events", NULL, NULL));
    config_after[0] = '\0';
    if (r != NULL && ipc_reply_len(r) == 2) {
        const char *p = NULL;
        size_t len = 0;
        if (ipc_reply_string(ipc_reply_element(r, 1), &p, &len) == IPC_OK && len < 128) {
            memcpy(config_after, p, len);
            config_after[len] = '\0';
        }
    }
    ipc_reply_free(r);
    CHECK(strcmp(config_before, config_after) == 0);

    CHECK(e.on_main == 0 && e2.on_main == 0);
    ipc_key_watch_free(w);
    ipc_key_watch_free(w2);
    ipc_key_watch_free(NULL);
    CHECK(e.freed == 1 && e2.freed == 0);
    /* after free: nothing more */
    CHECK_OK(set_str(c, a, "2"));
    sleep_ms(100);
    CHECK(events_count(&e) == 4);
    pthread_mutex_destroy(&e.mu);
    pthread_mutex_destroy(&e2.mu);
}

/* ---- poll mode ---------------------------------------------------------------------- */

struct delayed {
    ipc_client *c;
    const char *key;
    ipc_lock *lock;
    double at;
};

static void *delayed_write(void *arg) {
    struct delayed *d = arg;
    bool held = false;
    sleep_ms(200);
    d->at = now_ms();
    if (d->lock != NULL) {
        if (ipc_lock_release(d->lock, &held) != IPC_OK || !held) d->at = -1.0;
    } else if (ipc_cache_set(d->c, d->key, strlen(d->key), "p", 1, 0) != IPC_OK) {
        d->at = -1.0;
    }
    return NULL;
}

/* A poll-mode client never runs library callbacks in the background: its waits (cache,
 * lock) still wake on notifications, its hash watchers run on their own thread, and its
 * keyspace callbacks run inside ipc_client_poll() on the calling thread. */
static void test_poll_mode(const char *url, ipc_client *c) {
    ipc_options *opts = NULL;
    ipc_client *p = NULL;
    struct delayed d;
    pthread_t t;
    char *buf = NULL;
    size_t len = 0, n = 0;
    bool found = false;
    ipc_lock *l = NULL;
    struct view v;
    ipc_hash_watcher *w = NULL;
    struct events e;
    ipc_key_watch *kw = NULL;
    const char *hash = k("pollhash"), *key = k("pollks:a");
    const char *set_only[] = {"set"};
    char pattern[128];
    int ok;
    double t0;

    CHECK_OK(ipc_options_new(&opts));
    CHECK_OK(ipc_options_set_poll_mode(opts, true));
    CHECK_OK(ipc_client_new(url, opts, &p));
    ipc_options_free(opts);
    if (p == NULL) return;

    /* cache_wait */
    memset(&d, 0, sizeof d);
    d.c = c;
    d.key = k("pollcache");
    CHECK(pthread_create(&t, NULL, delayed_write, &d) == 0);
    CHECK_OK(ipc_cache_wait(p, d.key, strlen(d.key), 5000, &buf, &len, &found));
    t0 = now_ms();
    pthread_join(t, NULL);
    CHECK(found && bytes_eq(buf, len, "p") && d.at > 0 && t0 - d.at < 1000.0);
    ipc_buf_free(buf, len);

    /* a lock wait wakes on the release (long before the 10 s TTL) */
    memset(&d, 0, sizeof d);
    CHECK_OK(lock_acquire(c, k("polllock"), strlen(k("polllock")), 10000, 0, false, &d.lock));
    CHECK(pthread_create(&t, NULL, delayed_write, &d) == 0);
    CHECK_OK(lock_acquire(p, k("polllock"), strlen(k("polllock")), 1000, 5000, false, &l));
    t0 = now_ms();
    pthread_join(t, NULL);
    CHECK(l != NULL && d.at > 0 && t0 - d.at < 1000.0);
    ipc_lock_free(l);
    ipc_lock_free(d.lock);

    /* a hash watcher runs without ipc_client_poll() */
    view_init(&v);
    CHECK_OK(hset(c, hash, "x", "1"));
    CHECK_OK(ipc_hash_watch(p, hash, strlen(hash), NULL, view_cb, NULL, &v, NULL, &w));
    CHECK_OK(hset(c, hash, "y", "2"));
    WAIT_UNTIL(ok, view_has(&v, "x", "1") && view_has(&v, "y", "2"), 5000);
    CHECK(ok);
    ipc_hash_watcher_free(w);
    view_destroy(&v);

    /* keyspace callbacks run inside ipc_client_poll() on this thread */
    memset(&e, 0, sizeof e);
    pthread_mutex_init(&e.mu, NULL);
    snprintf(pattern, sizeof pattern, "%spollks:*", prefix);
    CHECK_OK(ipc_watch_keys(p, pattern, strlen(pattern), set_only, 1, true, events_cb, &e,
                            events_free, &kw));
    CHECK_OK(set_str(c, key, "1"));
    sleep_ms(100);
    CHECK(events_count(&e) == 0); /* nothing runs in the background */
    WAIT_UNTIL(ok, ipc_client_poll(p, 10, &n) == IPC_OK && events_has(&e, key, "set"), 5000);
    CHECK(ok);
    CHECK(e.on_main == 1);
    ipc_key_watch_free(kw);
    CHECK(e.freed == 1);
    pthread_mutex_destroy(&e.mu);
    ipc_client_free(p);
}

/* ---- bad input ---------------------------------------------------------------------- */

static void nop_field(void *u, const char *f, size_t fl, const char *v, size_t vl) {
    (void)u;
    (void)f;
    (void)fl;
    (void)v;
    (void)vl;
}

static void nop_key(void *u, const char *key, size_t kl, const char *ev) {
    (void)u;
    (void)key;
    (void)kl;
    (void)ev;
}

static void test_null_arguments(ipc_client *c) {
    char *buf = NULL;
    size_t len = 0;
    bool b = false;
    uint64_t token = 0;
    ipc_field f = fld("f", "v");
    ipc_hash_watcher *w = NULL;
    ipc_lock *l = NULL;
    ipc_key_watch *kw = NULL;
    const char *evs[] = {"set", NULL};
    const char *h = k("nullhash");

    /* cache */
    CHECK_RC(ipc_cache_set(NULL, "k", 1, "v", 1, 0), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_cache_set(c, NULL, 0, "v", 1, 0), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_cache_set(c, "k", 1, NULL, 0, 0), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_cache_set(c, "", 0, "v", 1, 0), IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipc_cache_get(c, "k", 1, NULL, &len, &b), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_cache_get(c, "k", 1, &buf, NULL, &b), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_cache_get(c, "k", 1, &buf, &len, NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_cache_delete(c, "k", 1, NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_cache_exists(NULL, "k", 1, &b), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_cache_wait(c, NULL, 1, 0, &buf, &len, &b), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_cache_wait(c, "k", 1, 0, &buf, &len, NULL), IPC_ERR_NULL_ARG);
    CHECK(buf == NULL && len == 0 && !b);

    /* hash */
    CHECK_RC(ipc_hash_set(NULL, h, strlen(h), "f", 1, "v", 1, NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_hash_set(c, NULL, 0, "f", 1, "v", 1, NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_hash_set(c, h, strlen(h), NULL, 0, "v", 1, NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_hash_set(c, h, strlen(h), "f", 1, NULL, 0, NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_hash_set(c, "", 0, "f", 1, "v", 1, NULL), IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipc_hash_set_if_changed(c, h, strlen(h), "f", 1, "v", 1, NULL),
             IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_hash_set_many(c, h, strlen(h), NULL, 1, NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_hash_set_many(c, h, strlen(h), &f, 0, NULL), IPC_ERR_INVALID_ARGUMENT);
    f.value = NULL;
    CHECK_RC(ipc_hash_set_many(c, h, strlen(h), &f, 1, NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_hash_replace_all(c, h, strlen(h), &f, 1, NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_hash_replace_all(c, h, strlen(h), NULL, 2, NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_hash_delete(c, h, strlen(h), "f", 1, NULL, NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_hash_watch(c, h, strlen(h), NULL, NULL, NULL, NULL, NULL, &w), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_hash_watch(c, h, strlen(h), NULL, nop_field, NULL, NULL, NULL, NULL),
             IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_hash_watch(c, "", 0, NULL, nop_field, NULL, NULL, NULL, &w), IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipc_hash_watch_options_new(NULL), IPC_ERR_NULL_ARG);
    CHECK(w == NULL);
    CHECK(!b);
    {
        ipc_reply *r = NULL;
        int64_t n = -1;
        CHECK_OK(cmd(c, &r, "EXISTS", h, NULL, NULL, NULL));
        CHECK_OK(ipc_reply_integer(r, &n));
        CHECK(n == 0); /* nothing was written */
        ipc_reply_free(r);
    }

    /* locks */
    CHECK_RC(lock_acquire(NULL, "n", 1, 1000, 0, false, &l), IPC_ERR_NULL_ARG);
    CHECK_RC(lock_acquire(c, NULL, 1, 1000, 0, false, &l), IPC_ERR_NULL_ARG);
    CHECK_RC(lock_acquire(c, "n", 1, 1000, 0, false, NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_lock_token(NULL, &token), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_lock_extend(NULL, 1000, &b), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_lock_release(NULL, &b), IPC_ERR_NULL_ARG);
    CHECK(l == NULL);
    CHECK_OK(lock_acquire(c, k("nl"), strlen(k("nl")), 1000, 0, false, &l));
    CHECK_RC(ipc_lock_token(l, NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_lock_extend(l, 1000, NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_lock_release(l, NULL), IPC_ERR_NULL_ARG);
    CHECK_OK(ipc_lock_release(l, &b));
    CHECK(b); /* the NULL calls did nothing */
    ipc_lock_free(l);

    /* keyspace */
    CHECK_RC(ipc_watch_keys(NULL, "*", 1, NULL, 0, false, nop_key, NULL, NULL, &kw),
             IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_watch_keys(c, NULL, 1, NULL, 0, false, nop_key, NULL, NULL, &kw),
             IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_watch_keys(c, "*", 1, NULL, 1, false, nop_key, NULL, NULL, &kw),
             IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_watch_keys(c, "*", 1, evs, 2, false, nop_key, NULL, NULL, &kw),
             IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_watch_keys(c, "*", 1, NULL, 0, false, NULL, NULL, NULL, &kw), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_watch_keys(c, "*", 1, NULL, 0, false, nop_key, NULL, NULL, NULL),
             IPC_ERR_NULL_ARG);
    CHECK(kw == NULL);
}

int main(int argc, char **argv) {
    const char *url;
    const char *quick_env = getenv("REDIPC_TEST_QUICK");
    ipc_client *c = NULL;
    quick = quick_env != NULL && strcmp(quick_env, "1") == 0;
    self_path = argv[0];
    if (argc == 6 && strcmp(argv[1], "--lock-child") == 0)
        return lock_child_main(argv[2], argv[3], argv[4], atol(argv[5]));
    if (argc == 5 && strcmp(argv[1], "--lock-die") == 0)
        return lock_die_main(argv[2], argv[3], atol(argv[4]));
    if (argc < 2) {
        fprintf(stderr, "usage: %s URL\n", argv[0]);
        return 2;
    }
    url = argv[1];
    main_thread = pthread_self();
    snprintf(prefix, sizeof prefix, "state_test:%ld:", (long)getpid());

    CHECK_OK(ipc_client_new(url, NULL, &c));
    if (c == NULL) return check_summary();
    test_null_arguments(c);
    test_cache(url, c);
    test_hash_watch_and_publish(c);
    test_hash_options(c);
    test_hash_concurrent_writer(url, c);
    test_hash_free_inside_callback(c);
    test_hash_wrongtype(c);
    test_lock_semantics(url, c);
    test_lock_threads(c);
    test_lock_dead_holder(url, c);
    test_lock_processes(url, c);
    test_keyspace(c);
    test_poll_mode(url, c);
    ipc_client_free(c);
    return check_summary();
}
