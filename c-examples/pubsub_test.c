/* pubsub_test.c: the pub/sub C API against a running server.
 *
 *   ./pubsub_test URL          URL: redis://127.0.0.1:PORT/0 or unix:///path/redis.sock
 *
 * Covers: 100,000 messages in order (threaded publishers and Lua bursts); two
 * subscriptions sharing a channel and the last one leaving unsubscribing; add/remove;
 * pattern, shard and binary-safe subscriptions; CLIENT KILL TYPE pubsub (disconnected,
 * reactivated, messages after); overflow policies and their counters; the unsubscribe
 * guarantee under a race (and from inside the callback, and by closing the client);
 * blocking calls from callbacks; poll mode; bad input.
 *
 * Environment: REDIPC_TEST_QUICK=1 uses 5,000 messages and 100 race iterations (for runs
 * under valgrind). Prints "N passed, M failed" last and exits non-zero on any failure.
 *
 * Waiting is done on events (condition variables, poll() on the descriptor) with generous
 * deadlines; a deadline passing is a failure, never a synchronization.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static int quick = 0;
static char prefix[64];
static pthread_t main_thread;

/* ---- small helpers ------------------------------------------------------------------ */

/* The channel `name` under this run's prefix (one of a few rotating static buffers). */
static const char *chan(const char *name) {
    static char bufs[32][128];
    static int next = 0;
    char *b = bufs[next++ % 32];
    snprintf(b, sizeof bufs[0], "%s%s", prefix, name);
    return b;
}

static void sleep_us(long us) {
    struct timespec ts;
    ts.tv_sec = us / 1000000;
    ts.tv_nsec = (us % 1000000) * 1000;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Counters shared between threads (GCC/Clang builtins; the tests are C99). */
static ipc_client *new_client(const char *url, int poll_mode) {
    ipc_options *opts = NULL;
    ipc_client *c = NULL;
    CHECK_OK(ipc_options_new(&opts));
    if (poll_mode) CHECK_OK(ipc_options_set_poll_mode(opts, true));
    CHECK_OK(ipc_client_new(url, opts, &c));
    ipc_options_free(opts);
    return c;
}

/* A command given as NUL-terminated strings, ended by NULL. */
static ipc_result cmd(ipc_client *c, ipc_reply **out, const char *a0, const char *a1,
                      const char *a2, const char *a3) {
    const char *argv[4];
    size_t argc = 0;
    argv[argc++] = a0;
    if (a1) argv[argc++] = a1;
    if (a2) argv[argc++] = a2;
    if (a3) argv[argc++] = a3;
    return ipc_command(c, argv, NULL, argc, out);
}

/* PUBSUB NUMSUB channel: how many connections subscribe to it; -1 on error. */
static long numsub(ipc_client *c, const char *channel) {
    ipc_reply *r = NULL;
    int64_t n = -1;
    if (cmd(c, &r, "PUBSUB", "NUMSUB", channel, NULL) != IPC_OK) return -1;
    if (ipc_reply_len(r) == 2 && ipc_reply_integer(ipc_reply_element(r, 1), &n) != IPC_OK) n = -1;
    ipc_reply_free(r);
    return (long)n;
}

/* Wait until NUMSUB channel equals `want` (up to `ms`); whether it did. */
static int numsub_becomes(ipc_client *c, const char *channel, long want, double ms) {
    double deadline = now_ms() + ms;
    for (;;) {
        if (numsub(c, channel) == want) return 1;
        if (now_ms() > deadline) return 0;
        sleep_us(5000);
    }
}

static long publish(ipc_client *c, const char *channel, const char *payload) {
    int64_t receivers = -1;
    if (ipc_publish(c, channel, strlen(channel), payload, strlen(payload),
                    &receivers) != IPC_OK)
        return -1;
    return (long)receivers;
}

/* Publish "TAG:i" for i in [from, to) on `channel` in one Lua script: the server writes
 * them to the subscriber back to back, a true burst. */
static ipc_result lua_burst(ipc_client *c, const char *channel, int tag, long from, long to) {
    static const char *script =
        "for i = tonumber(ARGV[2]), tonumber(ARGV[3]) - 1 do "
        "redis.call('PUBLISH', KEYS[1], ARGV[1] .. ':' .. i) end return 1";
    char t[32], f[32], e[32];
    const char *argv[7];
    ipc_reply *r = NULL;
    ipc_result rc;
    snprintf(t, sizeof t, "%d", tag);
    snprintf(f, sizeof f, "%ld", from);
    snprintf(e, sizeof e, "%ld", to);
    argv[0] = "EVAL";
    argv[1] = script;
    argv[2] = "1";
    argv[3] = channel;
    argv[4] = t;
    argv[5] = f;
    argv[6] = e;
    rc = ipc_command(c, argv, NULL, 7, &r);
    ipc_reply_free(r);
    return rc;
}

/* Whether fd is readable within timeout_ms (0: right now). */
static int readable(int fd, int timeout_ms) {
    struct pollfd p;
    p.fd = fd;
    p.events = POLLIN;
    p.revents = 0;
    return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN) != 0;
}

/* ---- a recording callback ----------------------------------------------------------- */

#define FIELD 256
#define TAGS 8

struct rec {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long events, messages, activated, disconnected, reactivated;
    long reactivated_early; /* REACTIVATED before any DISCONNECTED */
    long order_errors;      /* "TAG:i" payloads not in order per tag */
    long next[TAGS];
    long freed; /* userdata_free calls */
    volatile long busy, overlap;
    long sleep_us_per_message;
    long *seen; /* numbers of the payloads, in arrival order (when not NULL) */
    long nseen, maxseen;
    pthread_t cb_thread;
    int cb_thread_set, other_threads;
    /* the last event */
    int kind, sub_kind;
    char channel[FIELD], pattern[FIELD], payload[FIELD];
    size_t channel_len, pattern_len, payload_len;
    int channel_null, pattern_null, payload_null, payload_nul_terminated;
};

static void rec_init(struct rec *r) {
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
}

static void rec_destroy(struct rec *r) {
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r->seen);
    r->seen = NULL;
}

static void copy_field(char *dst, size_t *dlen, int *isnull, const char *p, size_t n) {
    *isnull = p == NULL;
    *dlen = n;
    if (n > FIELD - 1) n = FIELD - 1;
    if (p != NULL && n > 0) memcpy(dst, p, n);
    dst[n] = '\0';
}

/* The number after the ':' of a "TAG:i" payload, and the tag; -1 if malformed. */
static long parse_tagged(const char *p, size_t n, int *tag) {
    char buf[64];
    char *colon;
    if (n == 0 || n >= sizeof buf) return -1;
    memcpy(buf, p, n);
    buf[n] = '\0';
    colon = strchr(buf, ':');
    if (colon == NULL) return -1;
    *tag = atoi(buf);
    return atol(colon + 1);
}

static void rec_cb(void *userdata, const ipc_message *m) {
    struct rec *r = userdata;
    if (__sync_lock_test_and_set(&r->busy, 1) != 0) add(&r->overlap, 1);
    if (m->kind == IPC_EVENT_MESSAGE && r->sleep_us_per_message > 0)
        sleep_us(r->sleep_us_per_message);
    pthread_mutex_lock(&r->mu);
    if (!r->cb_thread_set) {
        r->cb_thread = pthread_self();
        r->cb_thread_set = 1;
    } else if (!pthread_equal(r->cb_thread, pthread_self())) {
        r->other_threads++;
    }
    r->events++;
    r->kind = (int)m->kind;
    r->sub_kind = (int)m->sub_kind;
    copy_field(r->channel, &r->channel_len, &r->channel_null, m->channel, m->channel_len);
    copy_field(r->pattern, &r->pattern_len, &r->pattern_null, m->pattern, m->pattern_len);
    copy_field(r->payload, &r->payload_len, &r->payload_null, m->payload, m->payload_len);
    switch (m->kind) {
    case IPC_EVENT_MESSAGE: {
        int tag = 0;
        long i = parse_tagged(m->payload, m->payload_len, &tag);
        r->messages++;
        if (i >= 0 && tag >= 0 && tag < TAGS) {
            if (i != r->next[tag]) r->order_errors++;
            r->next[tag] = i + 1;
            if (r->seen != NULL && r->nseen < r->maxseen) r->seen[r->nseen++] = i;
        }
        break;
    }
    case IPC_EVENT_ACTIVATED:
        r->activated++;
        break;
    case IPC_EVENT_DISCONNECTED:
        r->disconnected++;
        r->payload_nul_terminated = m->payload != NULL && m->payload[m->payload_len] == '\0';
        break;
    case IPC_EVENT_REACTIVATED:
        if (r->disconnected == 0) r->reactivated_early++;
        r->reactivated++;
        break;
    }
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    __sync_lock_release(&r->busy);
}

static void rec_free(void *userdata) {
    struct rec *r = userdata;
    pthread_mutex_lock(&r->mu);
    r->freed++;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* Field of struct rec, read under its lock. */
enum rec_field { F_MESSAGES, F_ACTIVATED, F_DISCONNECTED, F_REACTIVATED, F_FREED, F_EVENTS };

static long rec_get(struct rec *r, enum rec_field f) {
    long v = 0;
    pthread_mutex_lock(&r->mu);
    switch (f) {
    case F_MESSAGES: v = r->messages; break;
    case F_ACTIVATED: v = r->activated; break;
    case F_DISCONNECTED: v = r->disconnected; break;
    case F_REACTIVATED: v = r->reactivated; break;
    case F_FREED: v = r->freed; break;
    case F_EVENTS: v = r->events; break;
    }
    pthread_mutex_unlock(&r->mu);
    return v;
}

/* Wait until field f of r is at least `want`, up to `ms`; whether it got there. */
static int rec_wait(struct rec *r, enum rec_field f, long want, double ms) {
    struct timespec ts;
    long ns;
    int ok;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(ms / 1000.0);
    ns = ts.tv_nsec + (long)((ms - (double)(long)(ms / 1000.0) * 1000.0) * 1e6);
    ts.tv_sec += ns / 1000000000L;
    ts.tv_nsec = ns % 1000000000L;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        long v = 0;
        switch (f) {
        case F_MESSAGES: v = r->messages; break;
        case F_ACTIVATED: v = r->activated; break;
        case F_DISCONNECTED: v = r->disconnected; break;
        case F_REACTIVATED: v = r->reactivated; break;
        case F_FREED: v = r->freed; break;
        case F_EVENTS: v = r->events; break;
        }
        if (v >= want) {
            ok = 1;
            break;
        }
        if (pthread_cond_timedwait(&r->cv, &r->mu, &ts) == ETIMEDOUT) {
            ok = 0;
            /* one last look */
            switch (f) {
            case F_MESSAGES: ok = r->messages >= want; break;
            case F_ACTIVATED: ok = r->activated >= want; break;
            case F_DISCONNECTED: ok = r->disconnected >= want; break;
            case F_REACTIVATED: ok = r->reactivated >= want; break;
            case F_FREED: ok = r->freed >= want; break;
            case F_EVENTS: ok = r->events >= want; break;
            }
            break;
        }
    }
    pthread_mutex_unlock(&r->mu);
    return ok;
}

static ipc_result sub1(ipc_client *c, const char *name, struct rec *r, ipc_subscription **out) {
    return ipc_subscribe(c, IPC_SUB_CHANNEL, &name, NULL, 1, NULL, rec_cb, r, rec_free, out);
}

/* ---- (a) 100,000 messages complete and in order ------------------------------------- */

struct publisher {
    ipc_client *c;
    char channel[128];
    int tag;
    long count;
    long failed;
};

static void *publisher_run(void *arg) {
    struct publisher *p = arg;
    char payload[64];
    long i;
    for (i = 0; i < p->count; i++) {
        snprintf(payload, sizeof payload, "%d:%ld", p->tag, i);
        if (publish(p->c, p->channel, payload) != 1) p->failed++;
    }
    return NULL;
}

static void check_in_order(struct rec *r, long total, int tags, ipc_subscription *sub) {
    ipc_sub_stats st;
    int t;
    double t0;
    CHECK(rec_wait(r, F_MESSAGES, total, 60000));
    t0 = now_ms();
    pthread_mutex_lock(&r->mu);
    CHECK(r->messages == total);
    CHECK(r->order_errors == 0);
    for (t = 0; t < tags; t++) CHECK(r->next[t] == total / tags);
    CHECK(r->disconnected == 0);
    CHECK(r->cb_thread_set && !pthread_equal(r->cb_thread, main_thread));
    pthread_mutex_unlock(&r->mu);
    CHECK(load(&r->overlap) == 0);
    /* `delivered` counts a batch when its callback calls are done: wait for the last one */
    do {
        if (ipc_subscription_stats(sub, &st) != IPC_OK) break;
        if (st.delivered >= (uint64_t)total + 1) break;
        sleep_us(1000);
    } while (now_ms() - t0 < 5000);
    CHECK_OK(ipc_subscription_stats(sub, &st));
    CHECK(st.dropped == 0);
    CHECK(st.capacity == 10000);
    CHECK(st.delivered == (uint64_t)total + 1); /* ACTIVATED and the messages */
}

static void test_order(const char *url) {
    enum { PUBLISHERS = 4 };
    long total = quick ? 5000 : 100000;
    ipc_client *c = new_client(url, 0), *pc = new_client(url, 0);
    ipc_subscription *sub = NULL;
    struct publisher pubs[PUBLISHERS];
    pthread_t threads[PUBLISHERS];
    struct rec r;
    const char *ch = chan("burst");
    long from;
    int i;
    double t0;
    if (c == NULL || pc == NULL) goto out;

    /* Four threads publish through one shared client; each thread's messages in order. */
    rec_init(&r);
    CHECK_OK(sub1(c, ch, &r, &sub));
    CHECK(rec_wait(&r, F_ACTIVATED, 1, 5000));
    t0 = now_ms();
    for (i = 0; i < PUBLISHERS; i++) {
        pubs[i].c = pc;
        snprintf(pubs[i].channel, sizeof pubs[i].channel, "%s", ch);
        pubs[i].tag = i;
        pubs[i].count = total / PUBLISHERS;
        pubs[i].failed = 0;
        CHECK(pthread_create(&threads[i], NULL, publisher_run, &pubs[i]) == 0);
    }
    for (i = 0; i < PUBLISHERS; i++) {
        pthread_join(threads[i], NULL);
        CHECK(pubs[i].failed == 0);
    }
    check_in_order(&r, total, PUBLISHERS, sub);
    printf("order: %ld messages from %d threads in %.0f ms\n", total, PUBLISHERS, now_ms() - t0);
    ipc_subscription_free(sub);
    sub = NULL;
    CHECK(rec_get(&r, F_FREED) == 1);
    rec_destroy(&r);

    /* Lua bursts of 1,000: the server writes them back to back. */
    rec_init(&r);
    ch = chan("burst2");
    CHECK_OK(sub1(c, ch, &r, &sub));
    t0 = now_ms();
    for (from = 0; from < total; from += 1000)
        CHECK_OK(lua_burst(pc, ch, 0, from, from + 1000 < total ? from + 1000 : total));
    check_in_order(&r, total, 1, sub);
    printf("order: %ld messages in Lua bursts in %.0f ms\n", total, now_ms() - t0);
    ipc_subscription_free(sub);
    CHECK(rec_get(&r, F_FREED) == 1);
    rec_destroy(&r);
out:
    ipc_client_free(pc);
    ipc_client_free(c);
}

/* ---- (b) shared channels, add/remove, the last leaving unsubscribes ----------------- */

static void test_shared_and_add_remove(const char *url) {
    ipc_client *c = new_client(url, 0), *pc = new_client(url, 0);
    ipc_subscription *a = NULL, *b = NULL, *e = NULL;
    struct rec ra, rb, re;
    const char *shared = chan("shared");
    const char *xy[2];
    if (c == NULL || pc == NULL) goto out;
    rec_init(&ra);
    rec_init(&rb);
    rec_init(&re);

    CHECK_OK(sub1(c, shared, &ra, &a));
    CHECK_OK(sub1(c, shared, &rb, &b));
    CHECK(numsub(pc, shared) == 1); /* Redis is subscribed once for both */
    CHECK(publish(pc, shared, "hello") == 1);
    CHECK(rec_wait(&ra, F_MESSAGES, 1, 5000));
    CHECK(rec_wait(&rb, F_MESSAGES, 1, 5000));
    CHECK(strcmp(ra.payload, "hello") == 0 && strcmp(rb.payload, "hello") == 0);
    CHECK(strcmp(ra.channel, shared) == 0 && ra.pattern_null && ra.pattern_len == 0);
    CHECK(ra.sub_kind == IPC_SUB_CHANNEL && ra.kind == IPC_EVENT_MESSAGE);
    CHECK(ra.activated == 1 && rb.activated == 1);

    /* a leaves: b still gets messages, Redis stays subscribed */
    ipc_subscription_free(a);
    CHECK(rec_get(&ra, F_FREED) == 1);
    CHECK(publish(pc, shared, "second") == 1);
    CHECK(rec_wait(&rb, F_MESSAGES, 2, 5000));
    CHECK(strcmp(rb.payload, "second") == 0);
    CHECK(rec_get(&ra, F_MESSAGES) == 1);
    CHECK(numsub(pc, shared) == 1);

    /* an empty subscription, filled later, then shrunk */
    CHECK_OK(ipc_subscribe(c, IPC_SUB_CHANNEL, NULL, NULL, 0, NULL, rec_cb, &re, rec_free, &e));
    xy[0] = chan("x");
    xy[1] = chan("y");
    CHECK_OK(ipc_subscription_add(e, xy, NULL, 2));
    CHECK(rec_wait(&re, F_ACTIVATED, 2, 5000));
    CHECK_OK(ipc_subscription_add(e, xy, NULL, 2)); /* already there: skipped */
    CHECK_OK(ipc_subscription_add(e, NULL, NULL, 0));
    CHECK(publish(pc, xy[0], "to-x") == 1);
    CHECK(publish(pc, xy[1], "to-y") == 1);
    CHECK(rec_wait(&re, F_MESSAGES, 2, 5000));
    CHECK_OK(ipc_subscription_remove(e, xy, NULL, 1));
    CHECK_OK(ipc_subscription_remove(e, NULL, NULL, 0));
    CHECK(numsub_becomes(pc, xy[0], 0, 3000));
    CHECK(numsub(pc, xy[1]) == 1);
    CHECK(publish(pc, xy[0], "lost") == 0);
    CHECK(publish(pc, xy[1], "kept") == 1);
    CHECK(rec_wait(&re, F_MESSAGES, 3, 5000));
    CHECK(strcmp(re.payload, "kept") == 0 && re.messages == 3);
    CHECK(rec_get(&re, F_ACTIVATED) == 2);

    /* the last subscription of a channel leaving unsubscribes in Redis */
    ipc_subscription_free(b);
    CHECK(rec_get(&rb, F_FREED) == 1);
    CHECK(numsub_becomes(pc, shared, 0, 3000));
    ipc_subscription_free(e);
    CHECK(numsub_becomes(pc, xy[1], 0, 3000));
    CHECK(rec_get(&re, F_FREED) == 1);
    CHECK(load(&ra.overlap) == 0 && load(&rb.overlap) == 0 && load(&re.overlap) == 0);
    rec_destroy(&ra);
    rec_destroy(&rb);
    rec_destroy(&re);
out:
    ipc_client_free(pc);
    ipc_client_free(c);
}

/* ---- (c) patterns, shard channels, binary names, options ---------------------------- */

static void test_kinds(const char *url) {
    ipc_client *c = new_client(url, 0), *pc = new_client(url, 0);
    ipc_subscription *p = NULL, *s = NULL, *bin = NULL;
    ipc_subscribe_options *so = NULL;
    ipc_sub_stats st;
    struct rec rp, rs, rbin;
    const char *pat = chan("pat.*");
    const char *shard = chan("shard.a");
    char binname[64];
    const char *names[1];
    size_t lens[1];
    int64_t receivers = -1;
    size_t binlen;
    if (c == NULL || pc == NULL) goto out;
    rec_init(&rp);
    rec_init(&rs);
    rec_init(&rbin);

    /* pattern */
    CHECK_OK(ipc_subscribe(c, IPC_SUB_PATTERN, &pat, NULL, 1, NULL, rec_cb, &rp, rec_free, &p));
    CHECK(rec_wait(&rp, F_ACTIVATED, 1, 5000));
    CHECK(rp.kind == IPC_EVENT_ACTIVATED && rp.sub_kind == IPC_SUB_PATTERN);
    CHECK(strcmp(rp.channel, pat) == 0 && strcmp(rp.pattern, pat) == 0);
    CHECK(rp.payload_null && rp.payload_len == 0);
    CHECK(publish(pc, chan("pat.one"), "p1") == 1);
    CHECK(rec_wait(&rp, F_MESSAGES, 1, 5000));
    CHECK(rp.kind == IPC_EVENT_MESSAGE && rp.sub_kind == IPC_SUB_PATTERN);
    CHECK(strcmp(rp.channel, chan("pat.one")) == 0);
    CHECK(!rp.pattern_null && strcmp(rp.pattern, pat) == 0);
    CHECK(strcmp(rp.payload, "p1") == 0);
    /* an empty payload is a valid pointer with length 0 */
    CHECK(publish(pc, chan("pat.two"), "") == 1);
    CHECK(rec_wait(&rp, F_MESSAGES, 2, 5000));
    CHECK(!rp.payload_null && rp.payload_len == 0);

    /* shard channel */
    CHECK_OK(ipc_subscribe(c, IPC_SUB_SHARD, &shard, NULL, 1, NULL, rec_cb, &rs, NULL, &s));
    CHECK(rec_wait(&rs, F_ACTIVATED, 1, 5000));
    CHECK(rs.sub_kind == IPC_SUB_SHARD && strcmp(rs.channel, shard) == 0 && rs.pattern_null);
    CHECK_OK(ipc_spublish(pc, shard, strlen(shard), "s1", 2, &receivers));
    CHECK(receivers == 1);
    CHECK(rec_wait(&rs, F_MESSAGES, 1, 5000));
    CHECK(rs.kind == IPC_EVENT_MESSAGE && rs.sub_kind == IPC_SUB_SHARD);
    CHECK(strcmp(rs.channel, shard) == 0 && rs.pattern_null && strcmp(rs.payload, "s1") == 0);

    /* binary-safe name (a NUL byte inside), with options */
    binlen = (size_t)snprintf(binname, sizeof binname, "%sbin", prefix);
    binname[binlen++] = '\0';
    binname[binlen++] = 'x';
    names[0] = binname;
    lens[0] = binlen;
    CHECK_OK(ipc_subscribe_options_new(&so));
    CHECK_OK(ipc_subscribe_options_set_capacity(so, 123));
    CHECK_OK(ipc_subscribe_options_set_overflow(so, IPC_OVERFLOW_DROP_OLDEST));
    CHECK_OK(ipc_subscribe(c, IPC_SUB_CHANNEL, names, lens, 1, so, rec_cb, &rbin, rec_free,
                              &bin));
    ipc_subscribe_options_free(so);
    CHECK(rec_wait(&rbin, F_ACTIVATED, 1, 5000));
    CHECK(rbin.channel_len == binlen && memcmp(rbin.channel, binname, binlen) == 0);
    receivers = -1;
    CHECK_OK(ipc_publish(pc, binname, binlen, "b\0y", 3, &receivers));
    CHECK(receivers == 1);
    CHECK(rec_wait(&rbin, F_MESSAGES, 1, 5000));
    CHECK(rbin.channel_len == binlen && memcmp(rbin.channel, binname, binlen) == 0);
    CHECK(rbin.payload_len == 3 && memcmp(rbin.payload, "b\0y", 3) == 0);
    {
        /* `delivered` counts a batch once its callback calls are done */
        double deadline = now_ms() + 5000;
        memset(&st, 0, sizeof st);
        while (now_ms() < deadline)
            if (ipc_subscription_stats(bin, &st) != IPC_OK || st.delivered >= 2) break;
            else sleep_us(1000);
    }
    CHECK(st.capacity == 123 && st.dropped == 0 && st.queued == 0 && st.delivered == 2);

    /* NUL-terminated names (lens NULL) and no options: a pattern */
    ipc_subscription_free(bin);
    bin = NULL;
    CHECK(rec_get(&rbin, F_FREED) == 1);
    rec_destroy(&rbin);
    rec_init(&rbin);
    names[0] = chan("ex.*");
    CHECK_OK(ipc_subscribe(c, IPC_SUB_PATTERN, names, NULL, 1, NULL, rec_cb, &rbin, NULL,
                              &bin));
    CHECK(publish(pc, chan("ex.1"), "e") == 1);
    CHECK(rec_wait(&rbin, F_MESSAGES, 1, 5000));
    CHECK(rbin.sub_kind == IPC_SUB_PATTERN && strcmp(rbin.pattern, chan("ex.*")) == 0);

    ipc_subscription_free(p);
    ipc_subscription_free(s);
    ipc_subscription_free(bin);
    CHECK(rec_get(&rp, F_FREED) == 1);
    CHECK(rec_get(&rs, F_FREED) == 0); /* no userdata_free given */
    CHECK(rec_get(&rbin, F_FREED) == 0);
    rec_destroy(&rp);
    rec_destroy(&rs);
    rec_destroy(&rbin);
out:
    ipc_client_free(pc);
    ipc_client_free(c);
}

/* ---- (d) CLIENT KILL TYPE pubsub ---------------------------------------------------- */

static void test_client_kill(const char *url) {
    ipc_client *c = new_client(url, 0), *pc = new_client(url, 0);
    ipc_subscription *a = NULL, *b = NULL;
    struct rec ra, rb;
    const char *ch = chan("kill.ch");
    const char *pat = chan("kill.*");
    ipc_reply *r = NULL;
    int64_t killed = 0;
    double t0, took;
    if (c == NULL || pc == NULL) goto out;
    rec_init(&ra);
    rec_init(&rb);
    CHECK_OK(sub1(c, ch, &ra, &a));
    CHECK_OK(ipc_subscribe(c, IPC_SUB_PATTERN, &pat, NULL, 1, NULL, rec_cb, &rb, rec_free, &b));
    CHECK(rec_wait(&ra, F_ACTIVATED, 1, 5000) && rec_wait(&rb, F_ACTIVATED, 1, 5000));

    t0 = now_ms();
    CHECK_OK(cmd(pc, &r, "CLIENT", "KILL", "TYPE", "pubsub"));
    CHECK(r != NULL && ipc_reply_integer(r, &killed) == IPC_OK && killed >= 1);
    ipc_reply_free(r);
    CHECK(rec_wait(&ra, F_DISCONNECTED, 1, 3000));
    CHECK(rec_wait(&rb, F_DISCONNECTED, 1, 3000));
    CHECK(rec_wait(&ra, F_REACTIVATED, 1, 3000 - (now_ms() - t0)));
    CHECK(rec_wait(&rb, F_REACTIVATED, 1, 3000 - (now_ms() - t0)));
    took = now_ms() - t0;
    CHECK(took < 3000);
    printf("client kill: reactivated after %.0f ms\n", took);
    pthread_mutex_lock(&ra.mu);
    CHECK(ra.reactivated_early == 0 && ra.activated == 1);
    pthread_mutex_unlock(&ra.mu);
    pthread_mutex_lock(&rb.mu);
    CHECK(rb.reactivated_early == 0 && rb.activated == 1);
    CHECK(rb.kind == IPC_EVENT_REACTIVATED && strcmp(rb.channel, pat) == 0);
    pthread_mutex_unlock(&rb.mu);

    /* a message published after reactivation arrives at both */
    CHECK(publish(pc, ch, "after") == 2);
    CHECK(rec_wait(&ra, F_MESSAGES, 1, 3000));
    CHECK(rec_wait(&rb, F_MESSAGES, 1, 3000));
    CHECK(strcmp(ra.payload, "after") == 0 && strcmp(rb.payload, "after") == 0);

    ipc_subscription_free(a);
    ipc_subscription_free(b);
    rec_destroy(&ra);
    rec_destroy(&rb);
out:
    ipc_client_free(pc);
    ipc_client_free(c);
}

/* The DISCONNECTED event's fields, on its own: kill, then look at the first event. */
static void test_disconnected_fields(const char *url) {
    ipc_client *c = new_client(url, 0), *pc = new_client(url, 0);
    ipc_subscription *a = NULL;
    struct rec ra;
    ipc_reply *r = NULL;
    if (c == NULL || pc == NULL) goto out;
    rec_init(&ra);
    CHECK_OK(sub1(c, chan("kill2"), &ra, &a));
    CHECK(rec_wait(&ra, F_ACTIVATED, 1, 5000));
    CHECK_OK(cmd(pc, &r, "CLIENT", "KILL", "TYPE", "pubsub"));
    ipc_reply_free(r);
    CHECK(rec_wait(&ra, F_DISCONNECTED, 1, 3000));
    pthread_mutex_lock(&ra.mu);
    /* the second event is the DISCONNECTED one unless REACTIVATED already followed */
    if (ra.kind == IPC_EVENT_DISCONNECTED) {
        CHECK(ra.channel_null && ra.channel_len == 0 && ra.pattern_null);
        CHECK(!ra.payload_null && ra.payload_len > 0);
        CHECK(ra.sub_kind == IPC_SUB_CHANNEL);
    }
    CHECK(ra.payload_nul_terminated);
    pthread_mutex_unlock(&ra.mu);
    CHECK(rec_wait(&ra, F_REACTIVATED, 1, 3000));
    ipc_subscription_free(a);
    rec_destroy(&ra);
out:
    ipc_client_free(pc);
    ipc_client_free(c);
}

/* ---- (e) overflow policies ---------------------------------------------------------- */

static void test_overflow(const char *url) {
    static const struct {
        int policy;
        const char *name;
    } cases[3] = {{IPC_OVERFLOW_DROP_NEWEST, "dn"},
                  {IPC_OVERFLOW_DROP_OLDEST, "do"},
                  {IPC_OVERFLOW_BLOCK, "bl"}};
    enum { N = 300 };
    ipc_client *c = new_client(url, 0), *pc = new_client(url, 0);
    int k;
    if (c == NULL || pc == NULL) goto out;
    for (k = 0; k < 3; k++) {
        ipc_subscribe_options *so = NULL;
        ipc_subscription *sub = NULL;
        ipc_sub_stats st;
        struct rec r;
        const char *ch = chan(cases[k].name);
        const char *name = ch;
        double deadline = now_ms() + 20000;
        long i, increasing = 1;

        rec_init(&r);
        r.sleep_us_per_message = 2000;
        r.seen = calloc(N, sizeof *r.seen);
        r.maxseen = N;
        CHECK_OK(ipc_subscribe_options_new(&so));
        CHECK_OK(ipc_subscribe_options_set_capacity(so, 10));
        CHECK_OK(ipc_subscribe_options_set_overflow(so, cases[k].policy));
        CHECK_OK(ipc_subscribe(c, IPC_SUB_CHANNEL, &name, NULL, 1, so, rec_cb, &r, rec_free,
                                  &sub));
        ipc_subscribe_options_free(so);
        if (sub == NULL) {
            rec_destroy(&r);
            continue;
        }
        CHECK_OK(lua_burst(pc, ch, 0, 0, N));
        /* until every message is seen or counted as dropped, and the queue is empty */
        for (;;) {
            long seen;
            memset(&st, 0, sizeof st);
            if (ipc_subscription_stats(sub, &st) != IPC_OK) break;
            seen = rec_get(&r, F_MESSAGES);
            if ((uint64_t)seen + st.dropped >= N && st.queued == 0) break;
            if (now_ms() > deadline) break;
            rec_wait(&r, F_MESSAGES, seen + 1, 20);
        }
        CHECK_OK(ipc_subscription_stats(sub, &st));
        pthread_mutex_lock(&r.mu);
        CHECK((uint64_t)r.nseen + st.dropped == N);
        CHECK(st.capacity == 10 && st.queued == 0);
        for (i = 1; i < r.nseen; i++)
            if (r.seen[i] <= r.seen[i - 1]) increasing = 0;
        CHECK(increasing);
        if (cases[k].policy == IPC_OVERFLOW_BLOCK) {
            CHECK(st.dropped == 0 && r.nseen == N);
        } else if (cases[k].policy == IPC_OVERFLOW_DROP_NEWEST) {
            CHECK(st.dropped > 0);
            CHECK(r.nseen > 0 && r.seen[0] == 0); /* the first ones are kept */
        } else {
            CHECK(st.dropped > 0);
            CHECK(r.nseen > 0 && r.seen[r.nseen - 1] == N - 1); /* the newest is kept */
        }
        printf("overflow %s: %ld delivered, %" PRIu64 " dropped\n", cases[k].name, r.nseen,
               st.dropped);
        pthread_mutex_unlock(&r.mu);
        CHECK(load(&r.overlap) == 0);
        ipc_subscription_free(sub);
        CHECK(rec_get(&r, F_FREED) == 1);
        rec_destroy(&r);
    }
out:
    ipc_client_free(pc);
    ipc_client_free(c);
}

/* ---- (f) the unsubscribe guarantee -------------------------------------------------- */

struct race_ud {
    volatile long closed; /* set after ipc_subscription_free returned */
    volatile long freed;  /* userdata_free calls */
    volatile long calls;
    long slow;
};

static volatile long race_violations = 0;

static void race_cb(void *userdata, const ipc_message *m) {
    struct race_ud *u = userdata;
    if (load(&u->closed) != 0 || load(&u->freed) != 0) add(&race_violations, 1);
    if (m->kind == IPC_EVENT_MESSAGE) add(&u->calls, 1);
    if (u->slow) sleep_us(200);
    if (load(&u->freed) != 0) add(&race_violations, 1);
}

static void race_free(void *userdata) {
    struct race_ud *u = userdata;
    add(&u->freed, 1);
}

struct race_pub {
    ipc_client *c;
    const char *channel;
    volatile long stop;
    long published;
};

static void *race_publisher(void *arg) {
    struct race_pub *p = arg;
    long i = 0;
    while (load(&p->stop) == 0) {
        if (i++ % 2 == 0) {
            if (publish(p->c, p->channel, "m") >= 0) p->published++;
        } else if (lua_burst(p->c, p->channel, 0, 0, 20) == IPC_OK) {
            p->published += 20;
        }
    }
    return NULL;
}

static void test_unsubscribe_race(const char *url) {
    long iterations = quick ? 100 : 1000;
    ipc_client *c = new_client(url, 0), *pc = new_client(url, 0);
    struct race_ud *uds = calloc((size_t)iterations, sizeof *uds);
    struct race_pub rp;
    pthread_t t;
    const char *ch = chan("race");
    long i, failures = 0, not_freed_on_return = 0, freed_wrong = 0, calls = 0;
    double t0 = now_ms();
    if (c == NULL || pc == NULL || uds == NULL) goto out;

    rp.c = pc;
    rp.channel = ch;
    rp.stop = 0;
    rp.published = 0;
    CHECK(pthread_create(&t, NULL, race_publisher, &rp) == 0);
    for (i = 0; i < iterations; i++) {
        struct race_ud *u = &uds[i];
        ipc_subscription *sub = NULL;
        u->slow = i % 7 == 0;
        if (ipc_subscribe(c, IPC_SUB_CHANNEL, &ch, NULL, 1, NULL, race_cb, u, race_free, &sub) != IPC_OK) {
            failures++;
            continue;
        }
        if (i % 3 == 0) {
            /* sometimes free while a callback is surely under way or just done */
            double deadline = now_ms() + 2000;
            while (load(&u->calls) == 0 && now_ms() < deadline) sleep_us(50);
        }
        ipc_subscription_free(sub);
        if (load(&u->freed) != 1) not_freed_on_return++;
        add(&u->closed, 1);
    }
    add(&rp.stop, 1);
    pthread_join(t, NULL);
    /* Room for a stray late callback to show itself (it would be counted). */
    sleep_us(100000);
    for (i = 0; i < iterations; i++) {
        if (load(&uds[i].freed) != 1) freed_wrong++;
        calls += load(&uds[i].calls);
    }
    CHECK(failures == 0);
    CHECK(not_freed_on_return == 0);
    CHECK(freed_wrong == 0);
    CHECK(load(&race_violations) == 0);
    CHECK(calls > 0);
    CHECK(numsub_becomes(pc, ch, 0, 3000));
    printf("race: %ld iterations, %ld callbacks, %ld published, %.0f ms\n", iterations, calls,
           rp.published, now_ms() - t0);
out:
    free(uds);
    ipc_client_free(pc);
    ipc_client_free(c);
}

/* Freeing the subscription from inside its own callback. */
struct self_ud {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    ipc_subscription *sub;
    long messages, after_free, freed, freed_inside_callback;
    int self_freed, in_cb, holding, release;
    pthread_t cb_thread, free_thread;
};

static void self_cb(void *userdata, const ipc_message *m) {
    struct self_ud *u = userdata;
    ipc_subscription *s = NULL;
    struct timespec ts;
    if (m->kind == IPC_EVENT_ACTIVATED) {
        /* Hold the subscription busy until the messages are all queued: they then reach
         * this callback in one batch, the case where the rest of a batch must be skipped. */
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 5;
        pthread_mutex_lock(&u->mu);
        u->holding = 1;
        pthread_cond_broadcast(&u->cv);
        while (!u->release)
            if (pthread_cond_timedwait(&u->cv, &u->mu, &ts) == ETIMEDOUT) break;
        pthread_mutex_unlock(&u->mu);
        return;
    }
    if (m->kind != IPC_EVENT_MESSAGE) return;
    pthread_mutex_lock(&u->mu);
    u->in_cb = 1;
    u->messages++;
    if (u->self_freed) u->after_free++;
    if (u->sub != NULL) {
        s = u->sub;
        u->sub = NULL;
        u->self_freed = 1;
        u->cb_thread = pthread_self();
    }
    pthread_mutex_unlock(&u->mu);
    if (s != NULL) ipc_subscription_free(s); /* takes effect when this callback returns */
    pthread_mutex_lock(&u->mu);
    u->in_cb = 0;
    pthread_mutex_unlock(&u->mu);
}

static void self_free(void *userdata) {
    struct self_ud *u = userdata;
    pthread_mutex_lock(&u->mu);
    u->freed++;
    if (u->in_cb) u->freed_inside_callback++;
    u->free_thread = pthread_self();
    pthread_cond_broadcast(&u->cv);
    pthread_mutex_unlock(&u->mu);
}

static void test_free_inside_callback(const char *url) {
    ipc_client *c = new_client(url, 0), *pc = new_client(url, 0);
    int round;
    if (c == NULL || pc == NULL) goto out;
    for (round = 0; round < 5; round++) {
        struct self_ud u;
        ipc_subscription *sub = NULL;
        const char *ch = chan("selfclose");
        struct timespec ts;
        memset(&u, 0, sizeof u);
        pthread_mutex_init(&u.mu, NULL);
        pthread_cond_init(&u.cv, NULL);
        CHECK_OK(ipc_subscribe(c, IPC_SUB_CHANNEL, &ch, NULL, 1, NULL, self_cb, &u, self_free, &sub));
        pthread_mutex_lock(&u.mu);
        u.sub = sub;
        pthread_mutex_unlock(&u.mu);
        /* the ACTIVATED call holds the subscription: what is published now queues up */
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 5;
        pthread_mutex_lock(&u.mu);
        while (!u.holding)
            if (pthread_cond_timedwait(&u.cv, &u.mu, &ts) == ETIMEDOUT) break;
        CHECK(u.holding);
        pthread_mutex_unlock(&u.mu);
        CHECK_OK(lua_burst(pc, ch, 0, 0, 10));
        {
            ipc_sub_stats st;
            double deadline = now_ms() + 5000;
            memset(&st, 0, sizeof st);
            while (now_ms() < deadline)
                if (ipc_subscription_stats(sub, &st) != IPC_OK || st.queued >= 10) break;
                else sleep_us(1000);
            CHECK(st.queued == 10);
        }
        pthread_mutex_lock(&u.mu);
        u.release = 1;
        pthread_cond_broadcast(&u.cv);
        pthread_mutex_unlock(&u.mu);
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 5;
        pthread_mutex_lock(&u.mu);
        while (u.freed == 0)
            if (pthread_cond_timedwait(&u.cv, &u.mu, &ts) == ETIMEDOUT) break;
        CHECK(u.freed == 1);
        CHECK(u.messages == 1 && u.after_free == 0);
        CHECK(u.freed_inside_callback == 0);
        CHECK(u.freed == 1 && pthread_equal(u.free_thread, u.cb_thread));
        pthread_mutex_unlock(&u.mu);
        /* Room for a wrong late call to show itself. */
        sleep_us(50000);
        pthread_mutex_lock(&u.mu);
        CHECK(u.messages == 1 && u.freed == 1);
        pthread_mutex_unlock(&u.mu);
        pthread_mutex_destroy(&u.mu);
        pthread_cond_destroy(&u.cv);
    }
out:
    ipc_client_free(pc);
    ipc_client_free(c);
}

/* Closing or freeing the client ends its subscriptions and runs their userdata_free. */
static void test_client_close_ends_subscriptions(const char *url) {
    ipc_client *c = new_client(url, 0);
    ipc_subscription *sub = NULL, *sub2 = NULL, *never = (ipc_subscription *)&sub;
    struct rec r, r2, r3;
    const char *ch = chan("closing");
    if (c == NULL) return;
    rec_init(&r);
    rec_init(&r2);
    rec_init(&r3);
    CHECK_OK(sub1(c, ch, &r, &sub));
    CHECK_OK(ipc_client_close(c));
    CHECK(rec_get(&r, F_FREED) == 1); /* before ipc_client_close returned */
    CHECK_RC(ipc_subscription_add(sub, &ch, NULL, 1), IPC_ERR_CLOSED);
    CHECK_RC(sub1(c, ch, &r2, &never), IPC_ERR_CLOSED);
    CHECK(never == (ipc_subscription *)&sub); /* untouched */
    CHECK(rec_get(&r2, F_FREED) == 0);      /* failure: the caller keeps userdata */
    ipc_subscription_free(sub);             /* still to be freed; no second userdata_free */
    CHECK(rec_get(&r, F_FREED) == 1);
    ipc_client_free(c);

    /* the client freed before its subscription */
    c = new_client(url, 0);
    if (c == NULL) goto out;
    CHECK_OK(sub1(c, ch, &r3, &sub2));
    ipc_client_free(c);
    CHECK(rec_get(&r3, F_FREED) == 1);
    CHECK_OK(ipc_subscription_remove(sub2, &ch, NULL, 1));
    ipc_subscription_free(sub2);
    CHECK(rec_get(&r3, F_FREED) == 1);
out:
    rec_destroy(&r);
    rec_destroy(&r2);
    rec_destroy(&r3);
}

/* Callbacks on dispatcher threads may use the blocking API: publish, command, and add a
 * channel to their own subscription. */
struct blocking_ud {
    pthread_mutex_t mu;
    ipc_client *pub;
    ipc_subscription *self;
    const char *reply_channel, *extra_channel;
    volatile long ok, failed, extra_seen, extra_active;
};

static void blocking_cb(void *userdata, const ipc_message *m) {
    struct blocking_ud *u = userdata;
    ipc_subscription *self;
    ipc_reply *r = NULL;
    if (m->kind == IPC_EVENT_ACTIVATED && bytes_eq(m->channel, m->channel_len, u->extra_channel))
        add(&u->extra_active, 1);
    if (m->kind != IPC_EVENT_MESSAGE) return;
    if (bytes_eq(m->channel, m->channel_len, u->extra_channel)) {
        add(&u->extra_seen, 1);
        return;
    }
    pthread_mutex_lock(&u->mu);
    self = u->self;
    pthread_mutex_unlock(&u->mu);
    if (publish(u->pub, u->reply_channel, "answer") == 1) add(&u->ok, 1);
    else add(&u->failed, 1);
    if (cmd(u->pub, &r, "PING", NULL, NULL, NULL) == IPC_OK) add(&u->ok, 1);
    else add(&u->failed, 1);
    ipc_reply_free(r);
    if (self != NULL && ipc_subscription_add(self, &u->extra_channel, NULL, 1) == IPC_OK)
        add(&u->ok, 1);
    else
        add(&u->failed, 1);
}

static void test_blocking_calls_in_callbacks(const char *url) {
    ipc_client *c = new_client(url, 0), *pc = new_client(url, 0);
    ipc_subscription *sub = NULL, *replies = NULL;
    struct blocking_ud u;
    struct rec rr;
    const char *ch = chan("ask");
    double deadline;
    if (c == NULL || pc == NULL) goto out;
    memset(&u, 0, sizeof u);
    pthread_mutex_init(&u.mu, NULL);
    rec_init(&rr);
    u.pub = pc;
    u.reply_channel = chan("answer");
    u.extra_channel = chan("extra");
    CHECK_OK(sub1(pc, u.reply_channel, &rr, &replies));
    CHECK_OK(ipc_subscribe(c, IPC_SUB_CHANNEL, &ch, NULL, 1, NULL, blocking_cb, &u, NULL, &sub));
    pthread_mutex_lock(&u.mu);
    u.self = sub;
    pthread_mutex_unlock(&u.mu);
    CHECK(publish(pc, ch, "ask") == 1);
    CHECK(rec_wait(&rr, F_MESSAGES, 1, 5000));
    CHECK(strcmp(rr.payload, "answer") == 0);
    deadline = now_ms() + 5000;
    while (load(&u.ok) + load(&u.failed) < 3 && now_ms() < deadline) sleep_us(1000);
    CHECK(load(&u.ok) == 3 && load(&u.failed) == 0);
    /* Added from a callback, the channel activates later: its event says when. */
    deadline = now_ms() + 5000;
    while (load(&u.extra_active) == 0 && now_ms() < deadline) sleep_us(1000);
    CHECK(load(&u.extra_active) == 1);
    CHECK(publish(pc, u.extra_channel, "x") == 1);
    deadline = now_ms() + 5000;
    while (load(&u.extra_seen) == 0 && now_ms() < deadline) sleep_us(1000);
    CHECK(load(&u.extra_seen) == 1);
    ipc_subscription_free(sub);
    ipc_subscription_free(replies);
    rec_destroy(&rr);
    pthread_mutex_destroy(&u.mu);
out:
    ipc_client_free(pc);
    ipc_client_free(c);
}

/* ---- (g) poll mode ------------------------------------------------------------------ */

static volatile long inside_poll = 0;

struct poll_ud {
    ipc_client *pub;
    const char *reply_channel;
    long events, messages, activated, outside, wrong_thread, replies_ok;
};

static void poll_cb(void *userdata, const ipc_message *m) {
    struct poll_ud *u = userdata;
    if (load(&inside_poll) == 0) add(&u->outside, 1);
    if (!pthread_equal(pthread_self(), main_thread)) add(&u->wrong_thread, 1);
    u->events++;
    if (m->kind == IPC_EVENT_ACTIVATED) u->activated++;
    if (m->kind == IPC_EVENT_MESSAGE) {
        u->messages++;
        /* On the host's thread, blocking calls are fine: answer on another channel. */
        if (bytes_eq(m->payload, m->payload_len, "ask") &&
            publish(u->pub, u->reply_channel, "answer") == 1)
            u->replies_ok++;
    }
}

static ipc_result poll_once(ipc_client *c, int timeout_ms, size_t *n) {
    ipc_result rc;
    add(&inside_poll, 1);
    rc = ipc_client_poll(c, timeout_ms, n);
    add(&inside_poll, -1);
    return rc;
}

static void test_poll_mode(const char *url) {
    ipc_client *c = new_client(url, 1), *pc = new_client(url, 0);
    ipc_subscription *sub = NULL, *replies = NULL;
    struct poll_ud u;
    struct rec rr;
    ipc_sub_stats st;
    const char *ch = chan("poll");
    const char *reply_ch = chan("poll.reply");
    int fd = -1;
    size_t n = 0, total = 0;
    double deadline;
    int i;
    if (c == NULL || pc == NULL) goto out;
    memset(&u, 0, sizeof u);
    rec_init(&rr);
    u.pub = pc;
    u.reply_channel = reply_ch;

    CHECK_OK(ipc_client_fd(c, &fd));
    CHECK(fd >= 0);
    CHECK(!readable(fd, 0));
    CHECK_OK(ipc_subscribe(c, IPC_SUB_CHANNEL, &ch, NULL, 1, NULL, poll_cb, &u, NULL, &sub));
    if (sub == NULL) goto out;
    /* the ACTIVATED event waits for ipc_client_poll */
    CHECK(readable(fd, 0));
    CHECK(u.events == 0);
    CHECK_OK(poll_once(c, 0, &n));
    CHECK(n >= 1 && u.activated == 1);
    CHECK(!readable(fd, 0));

    for (i = 0; i < 5; i++) CHECK(publish(pc, ch, "m") == 1);
    /* all five queued, none run: nothing runs outside ipc_client_poll */
    deadline = now_ms() + 5000;
    do {
        if (ipc_subscription_stats(sub, &st) != IPC_OK || st.queued == 5) break;
        sleep_us(1000);
    } while (now_ms() < deadline);
    CHECK_OK(ipc_subscription_stats(sub, &st));
    CHECK(st.queued == 5);
    CHECK(readable(fd, 0));
    CHECK(u.messages == 0);
    deadline = now_ms() + 5000;
    while (total < 5 && now_ms() < deadline) {
        n = 0;
        if (poll_once(c, 1000, &n) != IPC_OK) break;
        total += n;
    }
    CHECK(total == 5 && u.messages == 5);
    CHECK(!readable(fd, 0));
    n = 99;
    CHECK_OK(poll_once(c, 10, &n));
    CHECK(n == 0);
    CHECK_OK(poll_once(c, 0, NULL));
    /* a negative timeout waits without limit: it returns when the message is there */
    CHECK(publish(pc, ch, "more") == 1);
    n = 0;
    CHECK_OK(poll_once(c, -1, &n));
    CHECK(n == 1 && u.messages == 6);

    /* wait on the descriptor, as a host event loop does; the callback answers */
    CHECK_OK(sub1(pc, reply_ch, &rr, &replies));
    CHECK(publish(pc, ch, "ask") == 1);
    CHECK(readable(fd, 5000));
    deadline = now_ms() + 5000;
    while (u.messages < 7 && now_ms() < deadline)
        if (poll_once(c, 100, NULL) != IPC_OK) break;
    CHECK(u.messages == 7 && u.replies_ok == 1);
    CHECK(rec_wait(&rr, F_MESSAGES, 1, 5000));
    CHECK(strcmp(rr.payload, "answer") == 0);

    CHECK(load(&u.outside) == 0);
    CHECK(load(&u.wrong_thread) == 0);
    ipc_subscription_free(sub);
    sub = NULL;
    ipc_subscription_free(replies);
    CHECK(rec_get(&rr, F_FREED) == 1);
    CHECK(!readable(fd, 0));
out:
    ipc_subscription_free(sub);
    rec_destroy(&rr);
    ipc_client_free(pc);
    ipc_client_free(c);
}

/* ---- (h) bad input ------------------------------------------------------------------ */

static void test_bad_input(const char *url) {
    ipc_client *c = new_client(url, 0);
    ipc_subscription *sub = NULL;
    ipc_subscribe_options *so = NULL;
    ipc_options *opts = NULL;
    ipc_client *bad = NULL;
    ipc_sub_stats st;
    struct rec r;
    const char *ch = chan("bad");
    const char *nulls[1] = {NULL};
    const char *empty[1] = {""};
    const char *uname = ch;
    int64_t receivers = 777;
    size_t n = 777;
    int fd = 777;
    if (c == NULL) return;
    rec_init(&r);

    /* _free(NULL) is a no-op */
    ipc_subscription_free(NULL);
    ipc_subscribe_options_free(NULL);

    CHECK_RC(ipc_subscribe(c, IPC_SUB_CHANNEL, &ch, NULL, 1, NULL, NULL, &r, rec_free, &sub), IPC_ERR_NULL_ARG);
    CHECK(strstr(ipc_last_error_message(), "`cb`") != NULL);
    CHECK_RC(ipc_subscribe(c, IPC_SUB_CHANNEL, NULL, NULL, 1, NULL, rec_cb, &r, rec_free, &sub), IPC_ERR_NULL_ARG);
    CHECK(strstr(ipc_last_error_message(), "`names`") != NULL);
    CHECK_RC(ipc_subscribe(c, IPC_SUB_CHANNEL, nulls, NULL, 1, NULL, rec_cb, &r, rec_free, &sub), IPC_ERR_NULL_ARG);
    CHECK(strstr(ipc_last_error_message(), "names[0]") != NULL);
    CHECK_RC(ipc_subscribe(NULL, IPC_SUB_CHANNEL, &ch, NULL, 1, NULL, rec_cb, &r, rec_free, &sub), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_subscribe(c, IPC_SUB_CHANNEL, &ch, NULL, 1, NULL, rec_cb, &r, rec_free, NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_subscribe(c, IPC_SUB_CHANNEL, empty, NULL, 1, NULL, rec_cb, &r, rec_free, &sub), IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipc_subscribe(c, IPC_SUB_PATTERN, NULL, NULL, 2, NULL, rec_cb, &r, rec_free, &sub), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_subscribe(c, IPC_SUB_SHARD, &ch, NULL, 1, NULL, NULL, &r, rec_free, &sub), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_subscribe(c, 7, &uname, NULL, 1, NULL, rec_cb, &r, rec_free, &sub),
             IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipc_subscribe(c, -1, &uname, NULL, 1, NULL, rec_cb, &r, rec_free, &sub),
             IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipc_subscribe(c, IPC_SUB_CHANNEL, NULL, NULL, 1, NULL, rec_cb, &r, rec_free,
                              &sub),
             IPC_ERR_NULL_ARG);
    CHECK(sub == NULL);                 /* outputs untouched on failure */
    CHECK(rec_get(&r, F_FREED) == 0);   /* userdata_free never ran on failure */
    CHECK(rec_get(&r, F_EVENTS) == 0);

    /* subscription functions */
    CHECK_OK(sub1(c, ch, &r, &sub));
    CHECK_RC(ipc_subscription_add(NULL, &ch, NULL, 1), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_subscription_add(sub, NULL, NULL, 1), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_subscription_add(sub, nulls, NULL, 1), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_subscription_add(sub, empty, NULL, 1), IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipc_subscription_remove(NULL, &ch, NULL, 1), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_subscription_remove(sub, NULL, NULL, 1), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_subscription_stats(NULL, &st), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_subscription_stats(sub, NULL), IPC_ERR_NULL_ARG);
    ipc_subscription_free(sub);
    CHECK(rec_get(&r, F_FREED) == 1);

    /* options */
    CHECK_RC(ipc_subscribe_options_new(NULL), IPC_ERR_NULL_ARG);
    CHECK_OK(ipc_subscribe_options_new(&so));
    CHECK_OK(ipc_subscribe_options_set_capacity(so, 0)); /* the core counts it as 1 */
    CHECK_RC(ipc_subscribe_options_set_capacity(NULL, 5), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_subscribe_options_set_overflow(so, 3), IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipc_subscribe_options_set_overflow(so, -1), IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipc_subscribe_options_set_overflow(NULL, 0), IPC_ERR_NULL_ARG);
    ipc_subscribe_options_free(so);
    CHECK_RC(ipc_options_set_poll_mode(NULL, true), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_options_set_health_check_interval_ms(NULL, 100), IPC_ERR_NULL_ARG);
    CHECK_OK(ipc_options_new(&opts));
    CHECK_OK(ipc_options_set_health_check_interval_ms(opts, 5)); /* checked at connect */
    CHECK_RC(ipc_client_new(url, opts, &bad), IPC_ERR_INVALID_ARGUMENT);
    CHECK(bad == NULL);
    CHECK_OK(ipc_options_set_health_check_interval_ms(opts, 500));
    CHECK_OK(ipc_client_new(url, opts, &bad));
    ipc_client_free(bad);
    ipc_options_free(opts);

    /* poll mode functions on a client that is not in poll mode */
    CHECK_RC(ipc_client_poll(c, 0, &n), IPC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(ipc_last_error_message(), "poll_mode") != NULL);
    CHECK(n == 777);
    CHECK_RC(ipc_client_fd(c, &fd), IPC_ERR_INVALID_ARGUMENT);
    CHECK(fd == 777);
    CHECK_RC(ipc_client_poll(NULL, 0, &n), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_client_fd(NULL, &fd), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_client_fd(c, NULL), IPC_ERR_NULL_ARG);

    /* spublish */
    CHECK_RC(ipc_spublish(NULL, ch, strlen(ch), "x", 1, &receivers),
             IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_spublish(c, NULL, 0, "x", 1, &receivers), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_spublish(c, ch, strlen(ch), NULL, 0, &receivers), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_spublish(c, ch, strlen(ch), "x", 1, NULL), IPC_ERR_NULL_ARG);
    CHECK(receivers == 777);
    CHECK_OK(ipc_spublish(c, ch, strlen(ch), "x", 1, &receivers));
    CHECK(receivers == 0);

    rec_destroy(&r);
    ipc_client_free(c);
}

/* ---- subscription groups: a callback per channel ------------------------------------ */

struct group_self {
    ipc_group *volatile g;
    char extra[128];
    volatile long calls, handle_rc, extra_calls, freed, extra_freed;
};

static void count_cb(void *userdata, const ipc_message *m) {
    (void)m;
    add(userdata, 1);
}

static void group_self_cb(void *userdata, const ipc_message *m) {
    struct group_self *gs = userdata;
    if (m->kind != IPC_EVENT_MESSAGE) return;
    if (add(&gs->calls, 1) == 0) {
        /* A callback may add a route to its own group (it does not wait for the server). */
        gs->handle_rc = 1000 + (long)ipc_group_handle(gs->g, gs->extra, strlen(gs->extra),
                                                      count_cb, (void *)&gs->extra_calls, NULL);
    }
}

static void group_self_free(void *userdata) {
    struct group_self *gs = userdata;
    add(&gs->freed, 1);
}

static void test_groups(const char *url) {
    ipc_client *c = NULL, *pc = NULL;
    ipc_group *g = NULL;
    ipc_subscribe_options *so = NULL;
    struct rec ra, ra2, rb;
    const char *a = chan("group.a"), *b = chan("group.b");
    int ok;
    CHECK_OK(ipc_client_new(url, NULL, &c));
    CHECK_OK(ipc_client_new(url, NULL, &pc));
    if (c == NULL || pc == NULL) goto out;
    rec_init(&ra);
    rec_init(&ra2);
    rec_init(&rb);

    CHECK_RC(ipc_subscribe_group(NULL, NULL, &g), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_subscribe_group(c, NULL, NULL), IPC_ERR_NULL_ARG);
    CHECK_OK(ipc_subscribe_options_new(&so));
    CHECK_OK(ipc_subscribe_options_set_capacity(so, 100));
    CHECK_OK(ipc_subscribe_group(c, so, &g));
    ipc_subscribe_options_free(so);
    if (g == NULL) goto out;

    /* Each channel's events reach its own callback only. */
    CHECK_OK(ipc_group_handle(g, a, strlen(a), rec_cb, &ra, rec_free));
    CHECK_OK(ipc_group_handle(g, b, strlen(b), rec_cb, &rb, rec_free));
    CHECK(rec_wait(&ra, F_ACTIVATED, 1, 5000) && rec_wait(&rb, F_ACTIVATED, 1, 5000));
    CHECK(numsub(pc, a) == 1 && numsub(pc, b) == 1);
    CHECK(publish(pc, a, "0:0") == 1);
    CHECK(publish(pc, b, "0:0") == 1);
    CHECK(publish(pc, a, "0:1") == 1);
    CHECK(rec_wait(&ra, F_MESSAGES, 2, 5000) && rec_wait(&rb, F_MESSAGES, 1, 5000));
    sleep_us(50000);
    CHECK(rec_get(&ra, F_MESSAGES) == 2 && rec_get(&rb, F_MESSAGES) == 1);
    CHECK(ra.order_errors == 0 && strcmp(ra.channel, a) == 0 && strcmp(rb.channel, b) == 0);
    CHECK(ra.sub_kind == IPC_SUB_CHANNEL);

    /* Replacing a channel's callback releases the old one's userdata, once. */
    CHECK_OK(ipc_group_handle(g, a, strlen(a), rec_cb, &ra2, rec_free));
    CHECK(rec_wait(&ra, F_FREED, 1, 5000));
    CHECK(publish(pc, a, "0:0") == 1);
    CHECK(rec_wait(&ra2, F_MESSAGES, 1, 5000));
    sleep_us(50000);
    CHECK(rec_get(&ra, F_MESSAGES) == 2 && rec_get(&ra, F_FREED) == 1);

    /* Unhandling unsubscribes and releases; a channel it does not handle is ignored. */
    CHECK_OK(ipc_group_unhandle(g, b, strlen(b)));
    CHECK(rec_wait(&rb, F_FREED, 1, 5000));
    CHECK(numsub_becomes(pc, b, 0, 5000));
    CHECK_OK(ipc_group_unhandle(g, "nothing", 7));

    /* A failed ipc_group_handle leaves userdata with the caller. */
    {
        struct rec bad;
        rec_init(&bad);
        CHECK_RC(ipc_group_handle(g, "", 0, rec_cb, &bad, rec_free), IPC_ERR_INVALID_ARGUMENT);
        CHECK_RC(ipc_group_handle(g, a, strlen(a), NULL, &bad, rec_free), IPC_ERR_NULL_ARG);
        CHECK_RC(ipc_group_handle(NULL, a, strlen(a), rec_cb, &bad, rec_free), IPC_ERR_NULL_ARG);
        CHECK_RC(ipc_group_unhandle(NULL, a, strlen(a)), IPC_ERR_NULL_ARG);
        CHECK_RC(ipc_group_stop(NULL, 0), IPC_ERR_NULL_ARG);
        sleep_us(50000);
        CHECK(rec_get(&bad, F_FREED) == 0);
        rec_destroy(&bad);
    }

    /* A callback adds a route to its own group. */
    {
        struct group_self gs;
        const char *sc = chan("group.self");
        memset(&gs, 0, sizeof gs);
        gs.g = g;
        snprintf(gs.extra, sizeof gs.extra, "%s", chan("group.extra"));
        CHECK_OK(ipc_group_handle(g, sc, strlen(sc), group_self_cb, &gs, group_self_free));
        CHECK(publish(pc, sc, "x") == 1);
        WAIT_UNTIL(ok, load(&gs.handle_rc) != 0, 5000);
        CHECK(ok && gs.handle_rc == 1000 + IPC_OK);
        CHECK(numsub_becomes(pc, gs.extra, 1, 5000));

        /* Stopping the group releases every remaining route, once. */
        CHECK_OK(ipc_group_stop(g, 5000));
        CHECK(load(&gs.freed) == 1);
    }
    CHECK(rec_get(&ra2, F_FREED) == 1);
    CHECK(numsub_becomes(pc, a, 0, 5000));
    CHECK_OK(ipc_group_stop(g, 0)); /* twice is fine */
    CHECK_RC(ipc_group_handle(g, a, strlen(a), rec_cb, &ra, rec_free), IPC_ERR_CLOSED);
    ipc_group_free(g);
    ipc_group_free(NULL);
    CHECK(rec_get(&ra, F_FREED) == 1 && rec_get(&ra2, F_FREED) == 1 && rec_get(&rb, F_FREED) == 1);

    /* Freeing a group with routes releases them, once. */
    {
        struct rec r;
        rec_init(&r);
        g = NULL;
        CHECK_OK(ipc_subscribe_group(c, NULL, &g));
        CHECK_OK(ipc_group_handle(g, a, strlen(a), rec_cb, &r, rec_free));
        ipc_group_free(g);
        CHECK(rec_get(&r, F_FREED) == 1);
        rec_destroy(&r);
    }
    rec_destroy(&ra);
    rec_destroy(&ra2);
    rec_destroy(&rb);
out:
    ipc_client_free(c);
    ipc_client_free(pc);
}

int main(int argc, char **argv) {
    const char *url;
    const char *quick_env = getenv("REDIPC_TEST_QUICK");
    quick = quick_env != NULL && strcmp(quick_env, "1") == 0;
    if (argc < 2) {
        fprintf(stderr, "usage: %s URL\n", argv[0]);
        return 2;
    }
    url = argv[1];
    main_thread = pthread_self();
    snprintf(prefix, sizeof prefix, "pubsub_test:%ld:", (long)getpid());

    test_bad_input(url);
    test_kinds(url);
    test_shared_and_add_remove(url);
    test_order(url);
    test_overflow(url);
    test_poll_mode(url);
    test_blocking_calls_in_callbacks(url);
    test_free_inside_callback(url);
    test_client_close_ends_subscriptions(url);
    test_unsubscribe_race(url);
    test_client_kill(url);
    test_disconnected_fields(url);
    test_groups(url);
    return check_summary();
}
