/* tx_test.c: transactions (ipc_tx), pipelines (ipc_pipeline) and optimistic transactions
 * (ipc_transaction with WATCH) of the C API against a running server.
 *
 *   ./tx_test URL          URL: redis://127.0.0.1:PORT/0 or unix:///path/redis.sock
 *
 * Covers: per-command results with error slots (the others keep their values), binary
 * arguments, exec twice / clear / empty; EXECABORT naming the refused command (nothing
 * ran); a pipeline of 1000 commands and its error slots; WATCH: a retry after a concurrent
 * change, exhausted retries (IPC_ERR_WATCH), abort from the callback (IPC_ERR_TX_ABORTED),
 * errors inside the callback, EXECABORT in the WATCH form; 8 threads incrementing one key
 * through WATCH transactions (the total is exact); bad input.
 *
 * Environment: REDIPC_TEST_QUICK=1 uses fewer increments (for runs under valgrind).
 * Prints "N passed, M failed" last and exits non-zero on any failure.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

static int quick = 0;
static char prefix[64];
static const char *url;

/* The key `name` under this run's prefix (one of a few rotating static buffers). */
static const char *key(const char *name) {
    static char bufs[32][128];
    static int next = 0;
    char *b = bufs[next++ % 32];
    snprintf(b, sizeof bufs[0], "%s%s", prefix, name);
    return b;
}

static int last_error_has(const char *text) {
    return strstr(ipc_last_error_message(), text) != NULL;
}

/* Collect NUL-terminated arguments ended by NULL into argv (at most 8); returns argc. */
static size_t collect(const char **argv, va_list ap) {
    size_t argc = 0;
    for (;;) {
        const char *a = va_arg(ap, const char *);
        if (a == NULL || argc == 8) break;
        argv[argc++] = a;
    }
    return argc;
}

static ipc_result cmd(ipc_client *c, ipc_reply **out, ...) {
    const char *argv[8];
    size_t argc;
    va_list ap;
    va_start(ap, out);
    argc = collect(argv, ap);
    va_end(ap);
    return ipc_command(c, argv, NULL, argc, out);
}

static ipc_result tx_add(ipc_batch *tx, ...) {
    const char *argv[8];
    size_t argc;
    va_list ap;
    va_start(ap, tx);
    argc = collect(argv, ap);
    va_end(ap);
    return ipc_batch_add(tx, argv, NULL, argc);
}

static ipc_result pipe_add(ipc_batch *p, ...) {
    const char *argv[8];
    size_t argc;
    va_list ap;
    va_start(ap, p);
    argc = collect(argv, ap);
    va_end(ap);
    return ipc_batch_add(p, argv, NULL, argc);
}

static ipc_result watch_cmd(ipc_watch *w, ipc_reply **out, ...) {
    const char *argv[8];
    size_t argc;
    va_list ap;
    va_start(ap, out);
    argc = collect(argv, ap);
    va_end(ap);
    return ipc_watch_command(w, argv, NULL, argc, out);
}

static ipc_result watch_queue(ipc_watch *w, ...) {
    const char *argv[8];
    size_t argc;
    va_list ap;
    va_start(ap, w);
    argc = collect(argv, ap);
    va_end(ap);
    return ipc_watch_queue(w, argv, NULL, argc);
}

/* Whether a reply is a string-like reply of `kind` holding exactly s. */
static int reply_is(const ipc_reply *r, ipc_reply_kind kind, const char *s) {
    const char *p = NULL;
    size_t n = 0;
    if (r == NULL || ipc_reply_type(r) != kind) return 0;
    if (ipc_reply_string(r, &p, &n) != IPC_OK) return 0;
    return bytes_eq(p, n, s);
}

/* Whether a reply is an error reply whose text starts with `code`. */
static int reply_error_starts(const ipc_reply *r, const char *code) {
    const char *p = NULL;
    size_t n = 0;
    if (r == NULL || ipc_reply_type(r) != IPC_REPLY_ERROR) return 0;
    if (ipc_reply_string(r, &p, &n) != IPC_OK) return 0;
    return n >= strlen(code) && memcmp(p, code, strlen(code)) == 0;
}

static int reply_int_is(const ipc_reply *r, int64_t want) {
    int64_t v = 0;
    return r != NULL && ipc_reply_integer(r, &v) == IPC_OK && v == want;
}

/* GET key as an integer; -1 when missing or on error. */
static long long get_int(ipc_client *c, const char *k) {
    ipc_reply *r = NULL;
    const char *p = NULL;
    size_t n = 0;
    char buf[32];
    long long v = -1;
    if (cmd(c, &r, "GET", k, NULL) != IPC_OK) return -1;
    if (ipc_reply_type(r) == IPC_REPLY_BULK && ipc_reply_string(r, &p, &n) == IPC_OK &&
        n < sizeof buf) {
        memcpy(buf, p, n);
        buf[n] = '\0';
        v = strtoll(buf, NULL, 10);
    }
    ipc_reply_free(r);
    return v;
}

static void del(ipc_client *c, const char *k) {
    ipc_reply *r = NULL;
    CHECK_OK(cmd(c, &r, "DEL", k, NULL));
    ipc_reply_free(r);
}

/* ---- MULTI/EXEC ------------------------------------------------------------------------ */

static void test_tx_results_and_error_slots(ipc_client *c) {
    ipc_batch *tx = NULL;
    ipc_reply *r = NULL;
    const char *k = key("tx:str");
    const char *n = key("tx:n");
    del(c, k);
    del(c, n);

    CHECK_OK(ipc_batch_new(c, true, &tx));
    if (tx == NULL) return;
    CHECK(ipc_batch_len(tx) == 0);
    CHECK_OK(tx_add(tx, "SET", k, "v", NULL));
    CHECK_OK(tx_add(tx, "INCR", k, NULL));         /* ERR value is not an integer */
    CHECK_OK(tx_add(tx, "LPUSH", k, "x", NULL));   /* WRONGTYPE */
    CHECK_OK(tx_add(tx, "GET", k, NULL));
    CHECK_OK(tx_add(tx, "INCR", n, NULL));
    CHECK(ipc_batch_len(tx) == 5);
    CHECK_OK(ipc_batch_exec(tx, &r));
    CHECK(r != NULL && ipc_reply_type(r) == IPC_REPLY_ARRAY);
    CHECK(ipc_reply_len(r) == 5);
    if (r != NULL && ipc_reply_len(r) == 5) {
        CHECK(reply_is(ipc_reply_element(r, 0), IPC_REPLY_STATUS, "OK"));
        CHECK(reply_error_starts(ipc_reply_element(r, 1), "ERR value is not an integer"));
        CHECK(reply_error_starts(ipc_reply_element(r, 2), "WRONGTYPE"));
        CHECK(reply_is(ipc_reply_element(r, 3), IPC_REPLY_BULK, "v"));
        CHECK(reply_int_is(ipc_reply_element(r, 4), 1));
    }
    ipc_reply_free(r);
    r = NULL;

    /* The commands stay queued: exec again runs them again. */
    CHECK(ipc_batch_len(tx) == 5);
    CHECK_OK(ipc_batch_exec(tx, &r));
    CHECK(r != NULL && ipc_reply_len(r) == 5 && reply_int_is(ipc_reply_element(r, 4), 2));
    ipc_reply_free(r);
    r = NULL;

    /* Cleared: an empty transaction gives an empty array. */
    CHECK_OK(ipc_batch_clear(tx));
    CHECK(ipc_batch_len(tx) == 0);
    CHECK_OK(ipc_batch_exec(tx, &r));
    CHECK(r != NULL && ipc_reply_type(r) == IPC_REPLY_ARRAY && ipc_reply_len(r) == 0);
    ipc_reply_free(r);
    r = NULL;

    /* Binary arguments with lengths. */
    {
        const char *argv[3];
        size_t lens[3];
        const char *p = NULL;
        size_t len = 0;
        argv[0] = "SET";
        lens[0] = 3;
        argv[1] = k;
        lens[1] = strlen(k);
        argv[2] = "a\0b";
        lens[2] = 3;
        CHECK_OK(ipc_batch_add(tx, argv, lens, 3));
        argv[0] = "GET";
        CHECK_OK(ipc_batch_add(tx, argv, lens, 2));
        CHECK_OK(ipc_batch_exec(tx, &r));
        CHECK(r != NULL && ipc_reply_len(r) == 2);
        CHECK(r != NULL &&
              ipc_reply_string(ipc_reply_element(r, 1), &p, &len) == IPC_OK && len == 3 &&
              memcmp(p, "a\0b", 3) == 0);
        ipc_reply_free(r);
        r = NULL;
    }
    ipc_batch_free(tx);
    del(c, k);
    del(c, n);
}

static void test_execabort(ipc_client *c) {
    ipc_batch *tx = NULL;
    ipc_reply *r = NULL;
    const char *k = key("tx:abort");
    del(c, k);
    CHECK_OK(ipc_batch_new(c, true, &tx));
    if (tx == NULL) return;
    CHECK_OK(tx_add(tx, "SET", k, "1", NULL));
    CHECK_OK(tx_add(tx, "NOSUCHCMD", "x", NULL));
    CHECK_OK(tx_add(tx, "INCR", k, NULL));
    CHECK_RC(ipc_batch_exec(tx, &r), IPC_ERR_SERVER);
    CHECK(r == NULL); /* untouched on failure */
    CHECK(strcmp(ipc_last_error_code(), "EXECABORT") == 0);
    CHECK(last_error_has("NOSUCHCMD"));
    CHECK(last_error_has("command 1"));
    CHECK(get_int(c, k) == -1); /* nothing ran */

    /* Wrong number of arguments is refused while queueing too. */
    CHECK_OK(ipc_batch_clear(tx));
    CHECK_OK(tx_add(tx, "SET", k, "1", NULL));
    CHECK_OK(tx_add(tx, "GET", NULL));
    CHECK_RC(ipc_batch_exec(tx, &r), IPC_ERR_SERVER);
    CHECK(strcmp(ipc_last_error_code(), "EXECABORT") == 0);
    CHECK(last_error_has("(GET)"));
    CHECK(get_int(c, k) == -1);

    /* The client is fine afterwards. */
    CHECK_OK(ipc_batch_clear(tx));
    CHECK_OK(tx_add(tx, "SET", k, "5", NULL));
    CHECK_OK(ipc_batch_exec(tx, &r));
    ipc_reply_free(r);
    CHECK(get_int(c, k) == 5);
    ipc_batch_free(tx);
    del(c, k);
}

/* ---- pipelines ------------------------------------------------------------------------ */

static void test_pipeline(ipc_client *c) {
    ipc_batch *p = NULL;
    ipc_reply *r = NULL;
    const char *k = key("pipe:n");
    const char *s = key("pipe:s");
    size_t i, ok = 0;
    del(c, k);
    del(c, s);
    CHECK_OK(ipc_batch_new(c, false, &p));
    if (p == NULL) return;
    for (i = 0; i < 1000; i++) CHECK_OK(pipe_add(p, "INCR", k, NULL));
    CHECK(ipc_batch_len(p) == 1000);
    CHECK_OK(ipc_batch_exec(p, &r));
    CHECK(r != NULL && ipc_reply_type(r) == IPC_REPLY_ARRAY && ipc_reply_len(r) == 1000);
    if (r != NULL && ipc_reply_len(r) == 1000) {
        for (i = 0; i < 1000; i++) ok += reply_int_is(ipc_reply_element(r, i), (int64_t)i + 1);
    }
    CHECK(ok == 1000);
    ipc_reply_free(r);
    r = NULL;
    CHECK(get_int(c, k) == 1000);

    /* Error slots; unlike MULTI/EXEC, an unknown command does not stop the others. */
    CHECK_OK(ipc_batch_clear(p));
    CHECK(ipc_batch_len(p) == 0);
    CHECK_OK(pipe_add(p, "SET", s, "x", NULL));
    CHECK_OK(pipe_add(p, "INCR", s, NULL));
    CHECK_OK(pipe_add(p, "NOSUCHCMD", NULL));
    CHECK_OK(pipe_add(p, "GET", s, NULL));
    CHECK_OK(ipc_batch_exec(p, &r));
    CHECK(r != NULL && ipc_reply_len(r) == 4);
    if (r != NULL && ipc_reply_len(r) == 4) {
        CHECK(reply_is(ipc_reply_element(r, 0), IPC_REPLY_STATUS, "OK"));
        CHECK(reply_error_starts(ipc_reply_element(r, 1), "ERR"));
        CHECK(reply_error_starts(ipc_reply_element(r, 2), "ERR unknown command"));
        CHECK(reply_is(ipc_reply_element(r, 3), IPC_REPLY_BULK, "x"));
    }
    ipc_reply_free(r);
    r = NULL;

    /* Empty pipeline. */
    CHECK_OK(ipc_batch_clear(p));
    CHECK_OK(ipc_batch_exec(p, &r));
    CHECK(r != NULL && ipc_reply_type(r) == IPC_REPLY_ARRAY && ipc_reply_len(r) == 0);
    ipc_reply_free(r);
    ipc_batch_free(p);
    del(c, k);
    del(c, s);
}

/* ---- WATCH ----------------------------------------------------------------------------- */

struct incr_ctx {
    const char *key;
    ipc_client *other;      /* changes the key during the callback when set */
    int interfere_until;    /* ... on attempts 1..interfere_until */
    int attempts;
    int abort_with;         /* return this (non-zero: abort) */
    int bad_read;           /* also send a command the server refuses */
    int bad_queue;          /* queue a command the server refuses (EXECABORT) */
    ipc_result read_rc;
};

/* GET key; queue SET key value+1. */
static int incr_cb(void *userdata, ipc_watch *w) {
    struct incr_ctx *ctx = userdata;
    ipc_reply *r = NULL;
    const char *p = NULL;
    size_t n = 0;
    char buf[32];
    long long v = 0;
    ctx->attempts++;
    if (ctx->bad_read) {
        ctx->read_rc = watch_cmd(w, &r, "INCRBY", ctx->key, "notanumber", NULL);
        ipc_reply_free(r);
        r = NULL;
    }
    if (watch_cmd(w, &r, "GET", ctx->key, NULL) != IPC_OK) return 1;
    if (ipc_reply_type(r) == IPC_REPLY_BULK && ipc_reply_string(r, &p, &n) == IPC_OK &&
        n < sizeof buf) {
        memcpy(buf, p, n);
        buf[n] = '\0';
        v = strtoll(buf, NULL, 10);
    }
    ipc_reply_free(r);
    r = NULL;
    if (ctx->other != NULL && ctx->attempts <= ctx->interfere_until) {
        /* Another client changes the watched key between WATCH and EXEC. */
        if (cmd(ctx->other, &r, "INCR", ctx->key, NULL) != IPC_OK) return 1;
        ipc_reply_free(r);
        r = NULL;
    }
    snprintf(buf, sizeof buf, "%lld", v + 1);
    if (watch_queue(w, "SET", ctx->key, buf, NULL) != IPC_OK) return 1;
    if (watch_queue(w, "GET", ctx->key, NULL) != IPC_OK) return 1;
    if (ctx->bad_queue && watch_queue(w, "NOSUCHCMD", ctx->key, NULL) != IPC_OK) return 1;
    return ctx->abort_with;
}

static ipc_result watch_incr(ipc_client *c, struct incr_ctx *ctx, int max_retries,
                             ipc_reply **out) {
    const char *keys[1];
    keys[0] = ctx->key;
    return ipc_transaction(c, keys, NULL, 1, max_retries, incr_cb, ctx, out);
}

static void ctx_init(struct incr_ctx *ctx, const char *k) {
    memset(ctx, 0, sizeof *ctx);
    ctx->key = k;
}

static void test_watch(ipc_client *c, ipc_client *other) {
    struct incr_ctx ctx;
    ipc_reply *r = NULL;
    ipc_reply *set = NULL;
    const char *k = key("watch:n");
    del(c, k);
    CHECK_OK(cmd(c, &set, "SET", k, "10", NULL));
    ipc_reply_free(set);

    /* No interference: one attempt, results of the queued commands. */
    ctx_init(&ctx, k);
    CHECK_OK(watch_incr(c, &ctx, 3, &r));
    CHECK(ctx.attempts == 1);
    CHECK(r != NULL && ipc_reply_type(r) == IPC_REPLY_ARRAY && ipc_reply_len(r) == 2);
    CHECK(r != NULL && reply_is(ipc_reply_element(r, 0), IPC_REPLY_STATUS, "OK"));
    CHECK(r != NULL && reply_is(ipc_reply_element(r, 1), IPC_REPLY_BULK, "11"));
    ipc_reply_free(r);
    r = NULL;

    /* A concurrent change on the first attempt: retried once, and nothing is lost. */
    ctx_init(&ctx, k);
    ctx.other = other;
    ctx.interfere_until = 1;
    CHECK_OK(watch_incr(c, &ctx, 3, &r));
    CHECK(ctx.attempts == 2);
    CHECK(r != NULL && reply_is(ipc_reply_element(r, 1), IPC_REPLY_BULK, "13"));
    ipc_reply_free(r);
    r = NULL;
    CHECK(get_int(c, k) == 13);

    /* Changed on every attempt: gives up after max_retries + 1 attempts. */
    ctx_init(&ctx, k);
    ctx.other = other;
    ctx.interfere_until = 1000;
    CHECK_RC(watch_incr(c, &ctx, 2, &r), IPC_ERR_WATCH);
    CHECK(r == NULL);
    CHECK(ctx.attempts == 3);
    CHECK(last_error_has("3 attempts"));
    CHECK(get_int(c, k) == 16); /* only the other client's three INCRs */

    /* max_retries 0: exactly one attempt. */
    ctx_init(&ctx, k);
    ctx.other = other;
    ctx.interfere_until = 1000;
    CHECK_RC(watch_incr(c, &ctx, 0, &r), IPC_ERR_WATCH);
    CHECK(ctx.attempts == 1);
    CHECK(get_int(c, k) == 17);

    /* The callback aborts: nothing queued runs. */
    ctx_init(&ctx, k);
    ctx.abort_with = 7;
    CHECK_RC(watch_incr(c, &ctx, 3, &r), IPC_ERR_TX_ABORTED);
    CHECK(r == NULL);
    CHECK(ctx.attempts == 1);
    CHECK(last_error_has("returned 7"));
    CHECK(get_int(c, k) == 17);
    ctx_init(&ctx, k);
    ctx.abort_with = -1;
    CHECK_RC(watch_incr(c, &ctx, 3, &r), IPC_ERR_TX_ABORTED);
    CHECK(get_int(c, k) == 17);

    /* An error reply inside the callback is the callback's business; the rest goes on. */
    ctx_init(&ctx, k);
    ctx.bad_read = 1;
    CHECK_OK(watch_incr(c, &ctx, 3, &r));
    CHECK(ctx.read_rc == IPC_ERR_SERVER);
    ipc_reply_free(r);
    r = NULL;
    CHECK(get_int(c, k) == 18);

    /* A queued command the server refuses: EXECABORT, nothing ran. */
    ctx_init(&ctx, k);
    ctx.bad_queue = 1;
    CHECK_RC(watch_incr(c, &ctx, 3, &r), IPC_ERR_SERVER);
    CHECK(strcmp(ipc_last_error_code(), "EXECABORT") == 0);
    CHECK(last_error_has("NOSUCHCMD"));
    CHECK(get_int(c, k) == 18);

    /* Several keys, binary-safe with lengths. */
    {
        const char *keys[2];
        size_t lens[2];
        keys[0] = k;
        lens[0] = strlen(k);
        keys[1] = "bin\0key";
        lens[1] = 7;
        ctx_init(&ctx, k);
        CHECK_OK(ipc_transaction(c, keys, lens, 2, 1, incr_cb, &ctx, &r));
        ipc_reply_free(r);
        r = NULL;
        CHECK(get_int(c, k) == 19);
    }
    del(c, k);
}

/* ---- 8 threads incrementing through WATCH -------------------------------------------- */

struct incr_thread {
    ipc_client *c;
    const char *key;
    int n;
    int ok;
    int failed;
    long attempts;
};

static void *incr_thread_main(void *arg) {
    struct incr_thread *t = arg;
    int i;
    for (i = 0; i < t->n; i++) {
        struct incr_ctx ctx;
        ipc_reply *r = NULL;
        ctx_init(&ctx, t->key);
        if (watch_incr(t->c, &ctx, 1000, &r) == IPC_OK) {
            t->ok++;
        } else {
            t->failed++;
            fprintf(stderr, "increment failed: %s\n", ipc_last_error_message());
        }
        t->attempts += ctx.attempts;
        ipc_reply_free(r);
    }
    return NULL;
}

static void test_concurrent_increments(ipc_client *c) {
    enum { THREADS = 8 };
    pthread_t th[THREADS];
    struct incr_thread t[THREADS];
    const char *k = key("watch:concurrent");
    int per = quick ? 25 : 250;
    int i, ok = 0, failed = 0;
    long attempts = 0;
    del(c, k);
    for (i = 0; i < THREADS; i++) {
        t[i].c = c;
        t[i].key = k;
        t[i].n = per;
        t[i].ok = 0;
        t[i].failed = 0;
        t[i].attempts = 0;
        CHECK(pthread_create(&th[i], NULL, incr_thread_main, &t[i]) == 0);
    }
    for (i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        ok += t[i].ok;
        failed += t[i].failed;
        attempts += t[i].attempts;
    }
    CHECK(failed == 0);
    CHECK(ok == THREADS * per);
    CHECK(get_int(c, k) == (long long)THREADS * per);
    CHECK(attempts >= (long)THREADS * per);
    printf("8 threads x %d WATCH increments: total %lld, %ld attempts (%ld retries)\n", per,
           get_int(c, k), attempts, attempts - (long)THREADS * per);
    del(c, k);
}

/* ---- bad input ------------------------------------------------------------------------- */

static int bad_input_cb(void *userdata, ipc_watch *w) {
    int *ok = userdata;
    ipc_reply *r = NULL;
    const char *nulls[1] = {NULL};
    const char *empty[1] = {""};
    const char *get[1] = {"GET"};
    *ok = 1;
    if (ipc_watch_command(w, NULL, NULL, 1, &r) != IPC_ERR_NULL_ARG) *ok = 0;
    if (ipc_watch_command(w, nulls, NULL, 1, &r) != IPC_ERR_NULL_ARG) *ok = 0;
    if (ipc_watch_command(w, get, NULL, 0, &r) != IPC_ERR_INVALID_ARGUMENT) *ok = 0;
    if (ipc_watch_command(w, empty, NULL, 1, &r) != IPC_ERR_INVALID_ARGUMENT) *ok = 0;
    if (ipc_watch_command(w, get, NULL, 1, NULL) != IPC_ERR_NULL_ARG) *ok = 0;
    if (ipc_watch_command(NULL, get, NULL, 1, &r) != IPC_ERR_NULL_ARG) *ok = 0;
    if (ipc_watch_queue(w, NULL, NULL, 1) != IPC_ERR_NULL_ARG) *ok = 0;
    if (ipc_watch_queue(w, get, NULL, 0) != IPC_ERR_INVALID_ARGUMENT) *ok = 0;
    if (ipc_watch_queue(NULL, get, NULL, 1) != IPC_ERR_NULL_ARG) *ok = 0;
    if (r != NULL) *ok = 0;
    return 0;
}

static void test_bad_input(ipc_client *c) {
    ipc_batch *tx = NULL;
    ipc_batch *p = NULL;
    ipc_reply *r = NULL;
    const char *nulls[2] = {"GET", NULL};
    const char *empty[1] = {""};
    const char *get[2] = {"GET", "k"};
    const char *keys[1];
    const char *nullkeys[1] = {NULL};
    int ok = 0;
    keys[0] = key("bad");

    ipc_batch_free(NULL);
    CHECK(strcmp(ipc_result_name(IPC_ERR_TX_ABORTED), "IPC_ERR_TX_ABORTED") == 0);
    CHECK(IPC_ERR_TX_ABORTED == 701);
    CHECK(strcmp(ipc_result_name(IPC_ERR_WATCH), "IPC_ERR_WATCH") == 0);

    CHECK_RC(ipc_batch_new(NULL, true, &tx), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_batch_new(c, true, NULL), IPC_ERR_NULL_ARG);
    CHECK_OK(ipc_batch_new(c, true, &tx));
    CHECK_RC(ipc_batch_add(NULL, get, NULL, 2), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_batch_add(tx, NULL, NULL, 2), IPC_ERR_NULL_ARG);
    CHECK(last_error_has("`args`"));
    CHECK_RC(ipc_batch_add(tx, nulls, NULL, 2), IPC_ERR_NULL_ARG);
    CHECK(last_error_has("args[1]"));
    CHECK_RC(ipc_batch_add(tx, get, NULL, 0), IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipc_batch_add(tx, empty, NULL, 1), IPC_ERR_INVALID_ARGUMENT);
    CHECK(ipc_batch_len(tx) == 0); /* nothing was queued */
    CHECK(ipc_batch_len(NULL) == 0);
    CHECK_RC(ipc_batch_clear(NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_batch_exec(NULL, &r), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_batch_exec(tx, NULL), IPC_ERR_NULL_ARG);
    ipc_batch_free(tx);

    CHECK_RC(ipc_batch_new(NULL, false, &p), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_batch_new(c, false, NULL), IPC_ERR_NULL_ARG);
    CHECK_OK(ipc_batch_new(c, false, &p));
    CHECK_RC(ipc_batch_add(NULL, get, NULL, 2), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_batch_add(p, NULL, NULL, 2), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_batch_add(p, nulls, NULL, 2), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_batch_add(p, get, NULL, 0), IPC_ERR_INVALID_ARGUMENT);
    /* what would stall or change the shared connection: refused when queued */
    CHECK_RC(pipe_add(p, "BLPOP", key("q"), "1", NULL), IPC_ERR_INVALID_ARGUMENT);
    CHECK(last_error_has("BLPOP"));
    CHECK_RC(pipe_add(p, "SUBSCRIBE", "x", NULL), IPC_ERR_INVALID_ARGUMENT);
    CHECK(ipc_batch_len(p) == 0);
    CHECK(ipc_batch_len(NULL) == 0);
    CHECK_RC(ipc_batch_clear(NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_batch_exec(NULL, &r), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_batch_exec(p, NULL), IPC_ERR_NULL_ARG);
    ipc_batch_free(p);

    CHECK_RC(ipc_transaction(c, keys, NULL, 1, 1, NULL, &ok, &r), IPC_ERR_NULL_ARG);
    CHECK(last_error_has("`cb`"));
    CHECK_RC(ipc_transaction(NULL, keys, NULL, 1, 1, bad_input_cb, &ok, &r), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_transaction(c, NULL, NULL, 1, 1, bad_input_cb, &ok, &r), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_transaction(c, nullkeys, NULL, 1, 1, bad_input_cb, &ok, &r), IPC_ERR_NULL_ARG);
    CHECK(last_error_has("keys[0]"));
    CHECK_RC(ipc_transaction(c, keys, NULL, 1, 1, bad_input_cb, &ok, NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_transaction(c, keys, NULL, 0, 1, bad_input_cb, &ok, &r),
             IPC_ERR_INVALID_ARGUMENT);
    CHECK(last_error_has("give at least one key"));
    CHECK(ok == 0); /* the callback never ran */
    CHECK(r == NULL);
    CHECK_OK(ipc_transaction(c, keys, NULL, 1, 1, bad_input_cb, &ok, &r));
    CHECK(ok == 1);
    CHECK(r != NULL && ipc_reply_len(r) == 0);
    ipc_reply_free(r);
    CHECK_RC(ipc_watch_queue(NULL, get, NULL, 2), IPC_ERR_NULL_ARG);
}

int main(int argc, char **argv) {
    ipc_client *c = NULL;
    ipc_client *other = NULL;
    const char *quick_env = getenv("REDIPC_TEST_QUICK");
    quick = quick_env != NULL && strcmp(quick_env, "1") == 0;
    if (argc < 2) {
        fprintf(stderr, "usage: %s URL\n", argv[0]);
        return 2;
    }
    url = argv[1];
    snprintf(prefix, sizeof prefix, "tx_test:%ld:", (long)getpid());
    CHECK_OK(ipc_client_new(url, NULL, &c));
    CHECK_OK(ipc_client_new(url, NULL, &other));
    if (c == NULL || other == NULL) return check_summary();

    test_bad_input(c);
    test_tx_results_and_error_slots(c);
    test_execabort(c);
    test_pipeline(c);
    test_watch(c, other);
    test_concurrent_increments(c);

    ipc_client_free(other);
    ipc_client_free(c);
    return check_summary();
}
