/* observability_test.c: client statistics (ipc_client_stats, ipc_client_latency_histogram),
 * the log callback (ipc_set_log_callback), the reply size limit
 * (ipc_options_set_max_reply_size), and a server at maxmemory, against a server of its own.
 *
 *   ./observability_test URL TCP_URL
 *
 * URL: redis://127.0.0.1:PORT/0 or unix:///path/redis.sock; TCP_URL: the same server over TCP
 * (its passwords go in a redis:// URL). The test changes the server's configuration
 * (maxmemory, requirepass, CLIENT PAUSE) and restores it, so run-tests.sh gives it a private
 * server that nothing else uses at the same time.
 *
 * - counters follow a scripted workload: N SETs and GETs, a WRONGTYPE, a timeout, a killed
 *   connection, pub/sub messages received and dropped, a killed pub/sub connection;
 * - the struct's versioning rule (size in, size out, too small refused);
 * - the log: a connection killed with CLIENT KILL ID is logged lost (with the reason) and
 *   restored, a failing handler's report is logged, levels filter, replacing the callback
 *   waits for a running call and runs userdata_free, nothing reaches stderr;
 * - no password in any log line or error message;
 * - at maxmemory (noeviction) set, send_request, stream publish and hash set fail with
 *   IPC_ERR_SERVER code "OOM"; get and publish work; the configuration is restored.
 *
 * Prints "N passed, M failed" last and exits non-zero on any failure.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

static char prefix[64];
static const char *url;
static const char *tcp_url;

static const char *name(const char *what) {
    static char buf[8][128];
    static int i;
    char *b = buf[i++ % 8];
    snprintf(b, sizeof buf[0], "%s:%s", prefix, what);
    return b;
}

/* ---- helpers ------------------------------------------------------------------------- */

/* A command of up to 5 NUL-terminated arguments (NULL ends the list early); the reply is
 * freed, or returned in *out when out is not NULL. */
static ipc_result cmd_r(const ipc_client *c, ipc_reply **out, const char *a0, const char *a1,
                        const char *a2, const char *a3, const char *a4) {
    const char *args[5];
    size_t n = 0;
    ipc_reply *r = NULL;
    ipc_result rc;
    args[n++] = a0;
    if (a1) args[n++] = a1;
    if (a1 && a2) args[n++] = a2;
    if (a1 && a2 && a3) args[n++] = a3;
    if (a1 && a2 && a3 && a4) args[n++] = a4;
    rc = ipc_command(c, args, NULL, n, &r);
    if (out != NULL && rc == IPC_OK) {
        *out = r;
    } else {
        ipc_reply_free(r);
    }
    return rc;
}

static ipc_result cmd(const ipc_client *c, const char *a0, const char *a1, const char *a2,
                      const char *a3, const char *a4) {
    return cmd_r(c, NULL, a0, a1, a2, a3, a4);
}

static int64_t cmd_int(const ipc_client *c, const char *a0, const char *a1, const char *a2) {
    ipc_reply *r = NULL;
    int64_t v = -1;
    if (cmd_r(c, &r, a0, a1, a2, NULL, NULL) == IPC_OK) {
        if (ipc_reply_integer(r, &v) != IPC_OK) v = -1;
        ipc_reply_free(r);
    }
    return v;
}

static ipc_client_counts stats(const ipc_client *c) {
    ipc_client_counts st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    CHECK_OK(ipc_client_stats(c, &st));
    return st;
}

static ipc_client *connect_url(const char *u, const char *client_name) {
    ipc_options *o = NULL;
    ipc_client *c = NULL;
    CHECK_OK(ipc_options_new(&o));
    if (client_name != NULL) CHECK_OK(ipc_options_set_client_name(o, client_name));
    CHECK_OK(ipc_client_new(u, o, &c));
    ipc_options_free(o);
    return c;
}

/* Whether a GET works on the client (the value, if any, is freed). */
static int get_ok(const ipc_client *c) {
    char *v = NULL;
    size_t vl = 0;
    bool found = false;
    if (ipc_get(c, "obs:probe", 9, &v, &vl, &found) != IPC_OK) return 0;
    if (found) ipc_buf_free(v, vl);
    return 1;
}

/* CLIENT ID of the client's shared command connection (a batch always takes it). */
static int64_t shared_id(const ipc_client *c) {
    ipc_batch *b = NULL;
    ipc_reply *r = NULL;
    const char *argv[2] = {"CLIENT", "ID"};
    int64_t v = -1;
    if (ipc_batch_new(c, false, &b) != IPC_OK) return -1;
    if (ipc_batch_add(b, argv, NULL, 2) == IPC_OK && ipc_batch_exec(b, &r) == IPC_OK) {
        if (ipc_reply_integer(ipc_reply_element(r, 0), &v) != IPC_OK) v = -1;
        ipc_reply_free(r);
    }
    ipc_batch_free(b);
    return v;
}

/* Kill the client's command connections: the shared one and, when a lone call takes
 * another (a blocking caller's direct connection), that one too. */
static ipc_result kill_client(const ipc_client *admin, const ipc_client *c) {
    char id[32];
    int64_t shared = shared_id(c), lone = cmd_int(c, "CLIENT", "ID", NULL);
    ipc_result rc;
    snprintf(id, sizeof id, "%lld", (long long)shared);
    rc = cmd(admin, "CLIENT", "KILL", "ID", id, NULL);
    if (lone >= 0 && lone != shared) {
        snprintf(id, sizeof id, "%lld", (long long)lone);
        (void)cmd(admin, "CLIENT", "KILL", "ID", id, NULL);
    }
    return rc;
}

/* ---- recording the log --------------------------------------------------------------- */

#define MAX_LINES 1024
#define LINE 512

struct line {
    int level;
    char target[64];
    char message[LINE];
};

struct log_rec {
    pthread_mutex_t mu;
    struct line lines[MAX_LINES];
    int n;
    volatile long freed;
    volatile long in_cb;      /* a call runs now */
    volatile long slow_ms;    /* each call sleeps this long */
    volatile long calls;
};

/* Secrets no log line may contain (checked in every call, whatever the line limit). */
static const char *secrets[2];
static volatile long secret_seen;
static volatile long inner_rc = -1;

static void log_init(struct log_rec *l) {
    memset(l, 0, sizeof *l);
    pthread_mutex_init(&l->mu, NULL);
}

static void log_cb(void *userdata, int level, const char *target, const char *message) {
    struct log_rec *l = userdata;
    int i;
    add(&l->in_cb, 1);
    add(&l->calls, 1);
    for (i = 0; i < 2; i++) {
        if (secrets[i] != NULL && strstr(message, secrets[i]) != NULL) add(&secret_seen, 1);
    }
    /* Replacing the callback from inside it is refused. */
    if (load(&inner_rc) == -1) {
        ipc_result rc = ipc_set_log_callback(IPC_LOG_OFF, NULL, NULL, NULL);
        __sync_bool_compare_and_swap(&inner_rc, -1, (long)rc);
    }
    pthread_mutex_lock(&l->mu);
    if (l->n < MAX_LINES) {
        struct line *x = &l->lines[l->n++];
        x->level = level;
        snprintf(x->target, sizeof x->target, "%s", target);
        snprintf(x->message, sizeof x->message, "%s", message);
    }
    pthread_mutex_unlock(&l->mu);
    if (load(&l->slow_ms) > 0) sleep_ms(load(&l->slow_ms));
    add(&l->in_cb, -1);
}

static void log_free(void *userdata) {
    struct log_rec *l = userdata;
    add(&l->freed, 1);
}

/* Whether a line of `level` (0: any) and `target` contains every one of words[0..n). */
static int has_line(struct log_rec *l, int level, const char *target, const char *w1,
                    const char *w2) {
    int i, found = 0;
    pthread_mutex_lock(&l->mu);
    for (i = 0; i < l->n && !found; i++) {
        struct line *x = &l->lines[i];
        found = (level == 0 || x->level == level) && strcmp(x->target, target) == 0 &&
                (w1 == NULL || strstr(x->message, w1) != NULL) &&
                (w2 == NULL || strstr(x->message, w2) != NULL);
    }
    pthread_mutex_unlock(&l->mu);
    return found;
}

static int count_lines(struct log_rec *l, int min_level) {
    int i, n = 0;
    pthread_mutex_lock(&l->mu);
    for (i = 0; i < l->n; i++) n += l->lines[i].level >= min_level;
    pthread_mutex_unlock(&l->mu);
    return n;
}

static void dump(struct log_rec *l) {
    int i;
    pthread_mutex_lock(&l->mu);
    for (i = 0; i < l->n; i++) {
        fprintf(stderr, "  log %d %s %s\n", l->lines[i].level, l->lines[i].target,
                l->lines[i].message);
    }
    pthread_mutex_unlock(&l->mu);
}

/* ---- the API's edges ------------------------------------------------------------------ */

static void test_edges(ipc_client *c) {
    ipc_client_counts st;
    unsigned char big[sizeof(ipc_client_counts) + 16];
    ipc_client_counts *bigp = (ipc_client_counts *)(void *)big;
    uint64_t up[1], n[1];
    size_t len = 99;
    ipc_options *o = NULL;
    ipc_client *x = NULL;
    size_t i;

    /* The first version was 296 bytes; `redirects` (cluster) came after it. */
    CHECK(sizeof(ipc_client_counts) == 304);
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    CHECK_RC(ipc_client_stats(NULL, &st), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_client_stats(c, NULL), IPC_ERR_NULL_ARG);
    /* A size smaller than the first version is refused, and nothing is written. */
    memset(&st, 0xAB, sizeof st);
    st.size = 0;
    CHECK_RC(ipc_client_stats(c, &st), IPC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(ipc_last_error_message(), "sizeof(ipc_client_counts)") != NULL);
    st.size = 296 - 8;
    CHECK_RC(ipc_client_stats(c, &st), IPC_ERR_INVALID_ARGUMENT);
    CHECK(st.size == 296 - 8 && st.commands == 0xABABABABABABABABull);
    /* A program built against the first version: its fields, nothing past them. */
    st.size = 296;
    CHECK_OK(ipc_client_stats(c, &st));
    CHECK(st.size == 296 && st.commands > 0 && st.redirects == 0xABABABABABABABABull);
    /* The exact size: every field, the size written back. */
    st.size = sizeof st;
    CHECK_OK(ipc_client_stats(c, &st));
    CHECK(st.size == sizeof st);
    CHECK(st.commands > 0); /* the handshake */
    CHECK(st.failed_other == 0 && st.in_flight == 0);
    /* A newer program's larger struct: this library fills what it knows, says how much,
     * and leaves the rest alone. */
    memset(big, 0xCD, sizeof big);
    bigp->size = sizeof big;
    CHECK_OK(ipc_client_stats(c, bigp));
    CHECK(bigp->size == sizeof(ipc_client_counts));
    for (i = sizeof(ipc_client_counts); i < sizeof big; i++) CHECK(big[i] == 0xCD);
    CHECK(bigp->commands >= st.commands);

    CHECK_RC(ipc_client_latency_histogram(NULL, up, n, 1, &len), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_client_latency_histogram(c, up, n, 1, NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_client_latency_histogram(c, NULL, n, 1, &len), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_client_latency_histogram(c, up, NULL, 1, &len), IPC_ERR_NULL_ARG);

    CHECK_RC(ipc_set_log_callback(6, log_cb, NULL, NULL), IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipc_set_log_callback(-1, log_cb, NULL, NULL), IPC_ERR_INVALID_ARGUMENT);
    CHECK_OK(ipc_set_log_callback(IPC_LOG_OFF, NULL, NULL, NULL)); /* none set: fine */
    CHECK(strcmp(ipc_result_name(IPC_ERR_BUFFER_TOO_SMALL), "IPC_ERR_BUFFER_TOO_SMALL") == 0);

    /* max_reply_size: at least 64 KiB, checked by ipc_client_new. */
    CHECK_RC(ipc_options_set_max_reply_size(NULL, 1 << 20), IPC_ERR_NULL_ARG);
    CHECK_OK(ipc_options_new(&o));
    CHECK_OK(ipc_options_set_max_reply_size(o, 1000));
    CHECK_RC(ipc_client_new(url, o, &x), IPC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(ipc_last_error_message(), "max_reply_size") != NULL);
    ipc_options_free(o);
}

/* A reply over max_reply_size fails (IPC_ERR_PROTOCOL, counted), the connection is
 * re-established, and small replies work again. */
static void test_max_reply_size(ipc_client *c) {
    const char *k = name("big");
    size_t size = 2u << 20;
    char *v = malloc(size), *got = NULL;
    size_t got_len = 0;
    bool found = false;
    ipc_options *o = NULL;
    ipc_client *small = NULL;
    ipc_client_counts st;
    ipc_result rc = IPC_ERR_INTERNAL;
    int i;
    if (v == NULL) return;
    memset(v, 'x', size);
    CHECK_OK(ipc_set(c, k, strlen(k), v, size, 60000));
    CHECK_OK(ipc_options_new(&o));
    CHECK_OK(ipc_options_set_max_reply_size(o, 1 << 20));
    CHECK_OK(ipc_client_new(url, o, &small));
    ipc_options_free(o);
    if (small != NULL) {
        CHECK_RC(ipc_get(small, k, strlen(k), &got, &got_len, &found), IPC_ERR_PROTOCOL);
        st = stats(small);
        CHECK(st.failed_protocol == 1 && st.failed == 1);
        for (i = 0; i < 250 && rc != IPC_OK; i++) {
            rc = ipc_set(small, "obs:small", 9, "v", 1, 60000);
            if (rc != IPC_OK) sleep_ms(20);
        }
        CHECK_OK(rc);
        ipc_client_free(small);
    }
    CHECK_OK(cmd(c, "DEL", k, NULL, NULL, NULL));
    free(v);
}

/* ---- counters ------------------------------------------------------------------------- */

static void on_message(void *userdata, const ipc_message *m) {
    if (m->kind == IPC_EVENT_MESSAGE) add((volatile long *)userdata, 1);
}

struct events {
    volatile long messages, reactivated;
};

static void on_event(void *userdata, const ipc_message *m) {
    struct events *e = userdata;
    if (m->kind == IPC_EVENT_MESSAGE) add(&e->messages, 1);
    if (m->kind == IPC_EVENT_REACTIVATED) add(&e->reactivated, 1);
}

/* ipc_options_set_direct_connections: 0 keeps every call of every thread on the one shared
 * connection; more than 256 is refused by ipc_client_new. */
static void test_direct_connections(void) {
    ipc_options *o = NULL;
    ipc_client *c = NULL;
    int64_t shared;
    int i, same = 1;
    CHECK_RC(ipc_options_set_direct_connections(NULL, 1), IPC_ERR_NULL_ARG);
    CHECK_OK(ipc_options_new(&o));
    CHECK_OK(ipc_options_set_direct_connections(o, 257));
    CHECK_RC(ipc_client_new(url, o, &c), IPC_ERR_INVALID_ARGUMENT);
    CHECK(c == NULL && strstr(ipc_last_error_message(), "direct_connections") != NULL);
    CHECK_OK(ipc_options_set_direct_connections(o, 0));
    CHECK_OK(ipc_client_new(url, o, &c));
    ipc_options_free(o);
    if (c == NULL) return;
    shared = shared_id(c);
    CHECK(shared >= 0);
    for (i = 0; i < 50; i++) same &= cmd_int(c, "CLIENT", "ID", NULL) == shared;
    CHECK(same);
    ipc_client_free(c);
}

static void test_counters(ipc_client *admin) {
    ipc_client *c = connect_url(url, NULL), *slow = NULL, *pc = NULL;
    ipc_client_counts base, st, t;
    ipc_options *o = NULL;
    ipc_subscribe_options *so = NULL;
    ipc_subscription *sub = NULL;
    ipc_sub_stats ss;
    const char *list = name("list");
    const char *ch = name("ticks");
    size_t chl = strlen(ch);
    char key[128], *v = NULL;
    size_t vl = 0, len = 0, i, m;
    bool found = false;
    uint64_t up[256], n[256], up2[2], n2[2], sum = 0;
    int64_t receivers = 0;
    int ok;
    if (c == NULL) return;
    base = stats(c);
    for (i = 0; i < 10; i++) {
        snprintf(key, sizeof key, "%s:k%zu", prefix, i);
        CHECK_OK(ipc_set(c, key, strlen(key), "v", 1, 60000));
    }
    for (i = 0; i < 5; i++) {
        snprintf(key, sizeof key, "%s:k%zu", prefix, i);
        CHECK_OK(ipc_get(c, key, strlen(key), &v, &vl, &found));
        CHECK(found && vl == 1);
        ipc_buf_free(v, vl);
    }
    CHECK_OK(cmd(c, "LPUSH", list, "x", NULL, NULL));
    CHECK_RC(cmd(c, "INCR", list, NULL, NULL, NULL), IPC_ERR_SERVER);
    CHECK(strcmp(ipc_last_error_code(), "WRONGTYPE") == 0);
    st = stats(c);
    CHECK(st.commands - base.commands == 10 + 5 + 1 + 1);
    CHECK(st.failed_server - base.failed_server == 1);
    CHECK(st.failed - base.failed == 1);
    CHECK(st.latency_count - base.latency_count == 16);
    CHECK(st.in_flight == 0);
    /* 10 SETs of "*4\r\n$3\r\nSET\r\n$N\r\n<key>\r\n$1\r\nv\r\n..." and 16 replies at least. */
    CHECK(st.bytes_out - base.bytes_out >= 290);
    CHECK(st.bytes_in - base.bytes_in >= 10 * 5);
    CHECK(st.latency_p50_us > 0);
    CHECK(st.latency_p50_us <= st.latency_p90_us && st.latency_p90_us <= st.latency_p99_us &&
          st.latency_p99_us <= st.latency_p999_us);
    CHECK(st.latency_max_us > 0);
    CHECK(st.latency_buckets > 0);

    /* The histogram: the buckets of the same calls, ascending, adding up to the count. */
    CHECK_OK(ipc_client_latency_histogram(c, up, n, 256, &len));
    CHECK(len == st.latency_buckets && len > 0);
    for (i = 0; i < len; i++) {
        sum += n[i];
        CHECK(n[i] > 0);
        if (i > 0) CHECK(up[i] > up[i - 1]);
    }
    CHECK(sum == st.latency_count);
    CHECK(up[len - 1] >= st.latency_p999_us);
    /* Asking for the count, and too small a buffer: what fits, and the count needed. */
    m = 99;
    CHECK_RC(ipc_client_latency_histogram(c, NULL, NULL, 0, &m), IPC_ERR_BUFFER_TOO_SMALL);
    CHECK(m == len);
    if (len >= 2) {
        up2[1] = n2[1] = 12345;
        m = 0;
        CHECK_RC(ipc_client_latency_histogram(c, up2, n2, 1, &m), IPC_ERR_BUFFER_TOO_SMALL);
        CHECK(m == len && up2[0] == up[0] && n2[0] == n[0] && up2[1] == 12345 && n2[1] == 12345);
        CHECK(strstr(ipc_last_error_message(), "buckets") != NULL);
    }

    /* A call that times out is counted as such, and is not in flight afterwards. */
    CHECK_OK(ipc_options_new(&o));
    CHECK_OK(ipc_options_set_response_timeout_ms(o, 100));
    CHECK_OK(ipc_client_new(url, o, &slow));
    ipc_options_free(o);
    if (slow != NULL) {
        CHECK_OK(cmd(admin, "CLIENT", "PAUSE", "600", "ALL", NULL));
        CHECK_RC(ipc_get(slow, "k0", 2, &v, &vl, &found), IPC_ERR_TIMEOUT);
        t = stats(slow);
        CHECK(t.failed_timeout == 1 && t.failed == 1);
        CHECK(t.in_flight == 0);
        sleep_ms(700);
        ipc_client_free(slow);
    }

    /* Reconnects of the command connection: kill exactly this client's connection. */
    CHECK_OK(kill_client(admin, c));
    WAIT_UNTIL(ok, get_ok(c) && stats(c).reconnects == 1, 5000);
    CHECK(ok);

    /* Pub/sub on a poll-mode client: nothing is taken from the queue until it polls, so a
     * queue of 4 that drops the oldest keeps 4 of 20 (the activation event may take one). */
    CHECK_OK(ipc_options_new(&o));
    CHECK_OK(ipc_options_set_poll_mode(o, true));
    CHECK_OK(ipc_client_new(url, o, &pc));
    ipc_options_free(o);
    if (pc != NULL) {
        struct events got = {0, 0};
        CHECK_OK(ipc_subscribe_options_new(&so));
        CHECK_OK(ipc_subscribe_options_set_capacity(so, 4));
        CHECK_OK(ipc_subscribe_options_set_overflow(so, IPC_OVERFLOW_DROP_OLDEST));
        CHECK_OK(ipc_subscribe(pc, IPC_SUB_CHANNEL, &ch, &chl, 1, so, on_event, &got, NULL, &sub));
        ipc_subscribe_options_free(so);
        for (i = 0; i < 20; i++) {
            snprintf(key, sizeof key, "%zu", i);
            CHECK_OK(ipc_publish(c, ch, chl, key, strlen(key), &receivers));
        }
        WAIT_UNTIL(ok, stats(pc).pubsub_received == 20, 5000);
        CHECK(ok);
        CHECK_OK(ipc_subscription_stats(sub, &ss));
        CHECK(ss.dropped >= 16 && ss.dropped <= 17);
        CHECK(stats(pc).pubsub_dropped == ss.dropped);
        CHECK_OK(ipc_client_poll(pc, 0, NULL));
        CHECK(load(&got.messages) >= 3);
        /* A killed pub/sub connection is re-established and counted. */
        CHECK_OK(cmd(admin, "CLIENT", "KILL", "TYPE", "pubsub", NULL));
        WAIT_UNTIL(ok, stats(pc).pubsub_reconnects == 1, 5000);
        CHECK(ok);
        CHECK(stats(pc).reconnects == 0);
        /* Freed with the connection events never polled: nothing may leak (the poll queue
         * and a scheduled subscription queue hold each other until the client is freed;
         * valgrind checks it). */
        sleep_ms(300);
        ipc_subscription_free(sub);
        ipc_client_free(pc);
    }
    ipc_client_free(c);
}

/* ---- the log -------------------------------------------------------------------------- */

static int failing_request(void *userdata, const ipc_request *req, ipc_error_out *err) {
    (void)req;
    add((volatile long *)userdata, 1);
    return ipc_error_set(err, "no such job") == IPC_OK ? 1 : 2;
}

/* Read what was written to fd 2 since `start_capture` (into buf), then restore it. */
struct capture {
    int saved;
    FILE *f;
};

static int start_capture(struct capture *cap) {
    fflush(stderr);
    cap->f = tmpfile();
    cap->saved = dup(2);
    if (cap->f == NULL || cap->saved < 0) return 0;
    return dup2(fileno(cap->f), 2) >= 0;
}

static size_t end_capture(struct capture *cap, char *buf, size_t cap_len) {
    size_t n = 0;
    fflush(stderr);
    dup2(cap->saved, 2);
    close(cap->saved);
    if (cap->f != NULL) {
        rewind(cap->f);
        n = fread(buf, 1, cap_len - 1, cap->f);
        fclose(cap->f);
    }
    buf[n] = '\0';
    return n;
}

static void test_log(ipc_client *admin) {
    static struct log_rec l1, l2;
    char cname[64], where[128], captured[4096];
    const char *q = name("jobs");
    size_t ql = strlen(q);
    ipc_client *c;
    ipc_worker_options *wo = NULL;
    ipc_worker *w = NULL;
    volatile long failures = 0;
    struct capture cap;
    double t0;
    int ok, captured_ok, lines_before;

    log_init(&l1);
    log_init(&l2);
    CHECK_OK(ipc_set_log_callback(IPC_LOG_DEBUG, log_cb, &l1, log_free));
    snprintf(cname, sizeof cname, "obs-log-%ld", (long)getpid());
    c = connect_url(url, cname);
    if (c == NULL) return;
    /* Connecting is logged at DEBUG. */
    WAIT_UNTIL(ok, has_line(&l1, IPC_LOG_DEBUG, "redipc::connection", "connected", NULL), 5000);
    CHECK(ok);
    /* Where the client connects, as the log names it: the port, or the socket's path. */
    if (strncmp(url, "unix://", 7) == 0) {
        snprintf(where, sizeof where, "%s", url + 7);
    } else {
        const char *colon = strrchr(url, ':');
        snprintf(where, sizeof where, "%s", colon ? colon + 1 : url);
        if (strchr(where, '/')) *strchr(where, '/') = '\0';
    }

    /* Killing this client's connection: lost (with the reason) at WARN, restored at INFO. */
    CHECK_OK(kill_client(admin, c));
    WAIT_UNTIL(ok, has_line(&l1, IPC_LOG_WARN, "redipc::connection", "lost", where), 5000);
    CHECK(ok);
    CHECK(has_line(&l1, IPC_LOG_WARN, "redipc::connection", "lost", "closed"));
    WAIT_UNTIL(ok, get_ok(c) && has_line(&l1, IPC_LOG_INFO, "redipc::connection", "restored", where),
               5000);
    CHECK(ok);
    /* Replacing the callback from inside it was refused. */
    CHECK(load(&inner_rc) == IPC_ERR_INVALID_ARGUMENT);

    /* A failing handler: its report is logged at WARN (no report callback is set), and
     * nothing is printed to stderr. */
    captured_ok = start_capture(&cap);
    CHECK(captured_ok);
    CHECK_OK(ipc_worker_options_new(&wo));
    CHECK_OK(ipc_worker_options_set_block_timeout_ms(wo, 100));
    CHECK_OK(ipc_worker_new(c, &q, &ql, 1, wo, failing_request, (void *)&failures, NULL, &w));
    ipc_worker_options_free(wo);
    CHECK_OK(ipc_send_request(c, q, ql, "j1", 2));
    WAIT_UNTIL(ok, has_line(&l1, IPC_LOG_WARN, "redipc::report", "no such job", NULL), 5000);
    CHECK(ok);
    ipc_worker_free(w);
    /* The client sums its workers' counters (stopped ones too). */
    CHECK(stats(c).workers_failed == 1 && stats(c).workers_handled == 0);
    if (captured_ok) {
        end_capture(&cap, captured, sizeof captured);
        CHECK(strcmp(captured, "") == 0);
        if (captured[0] != '\0') fprintf(stderr, "captured on stderr: %s\n", captured);
    }
    if (!ok) dump(&l1);

    /* Replacing waits for a call of the old callback that is still running, and runs its
     * userdata_free before returning. */
    __sync_lock_test_and_set(&l1.slow_ms, 300);
    CHECK_OK(kill_client(admin, c));
    WAIT_UNTIL(ok, load(&l1.in_cb) > 0, 5000);
    CHECK(ok);
    t0 = now_ms();
    CHECK_OK(ipc_set_log_callback(IPC_LOG_WARN, log_cb, &l2, log_free));
    CHECK(load(&l1.in_cb) == 0);
    CHECK(load(&l1.freed) == 1);
    CHECK(!ok || now_ms() - t0 > 50); /* it waited for the running call */
    CHECK(load(&l2.freed) == 0);
    lines_before = count_lines(&l1, 0);

    /* At WARN: a lost connection, no INFO or DEBUG lines. */
    WAIT_UNTIL(ok, get_ok(c), 5000);
    CHECK(ok);
    CHECK_OK(kill_client(admin, c));
    WAIT_UNTIL(ok, has_line(&l2, IPC_LOG_WARN, "redipc::connection", "lost", NULL), 5000);
    CHECK(ok);
    WAIT_UNTIL(ok, get_ok(c), 5000);
    CHECK(ok);
    sleep_ms(100);
    CHECK(count_lines(&l2, IPC_LOG_INFO) == 0);
    CHECK(count_lines(&l1, 0) == lines_before); /* the old one is never called again */

    /* Removing it: userdata_free runs before the call returns; nothing is called after. */
    CHECK_OK(ipc_set_log_callback(IPC_LOG_TRACE, NULL, &l1, log_free));
    CHECK(load(&l2.freed) == 1 && load(&l1.freed) == 1);
    lines_before = count_lines(&l2, 0);
    CHECK_OK(kill_client(admin, c));
    WAIT_UNTIL(ok, get_ok(c) && stats(c).reconnects >= 4, 5000);
    CHECK(ok);
    CHECK(count_lines(&l2, 0) == lines_before);
    ipc_client_free(c);
}

/* ---- credentials ---------------------------------------------------------------------- */

static int leaks(const char *text) {
    int i;
    for (i = 0; i < 2; i++) {
        if (secrets[i] != NULL && strstr(text, secrets[i]) != NULL) return 1;
    }
    return 0;
}

static void test_no_credentials(ipc_client *admin) {
    static struct log_rec l;
    const char *secret = "s3cret-Pa55word";
    const char *hostport = strstr(tcp_url, "127.0.0.1");
    char u[256], bad[256];
    ipc_client *c = NULL, *root = NULL, *x = NULL;
    ipc_subscription *sub = NULL;
    ipc_options *o = NULL;
    const char *ch = "obs:creds";
    size_t chl = strlen(ch), i;
    volatile long got = 0;
    ipc_result rc;
    int ok;
    const char *bads[3];
    if (hostport == NULL) {
        CHECK(hostport != NULL);
        return;
    }
    secrets[0] = secret;
    secrets[1] = "another-Secret";
    __sync_lock_test_and_set(&secret_seen, 0);
    log_init(&l);
    CHECK_OK(ipc_set_log_callback(IPC_LOG_TRACE, log_cb, &l, log_free));

    CHECK_OK(cmd(admin, "CONFIG", "SET", "requirepass", secret, NULL));
    snprintf(u, sizeof u, "redis://:%s@%s", secret, hostport);
    root = connect_url(u, NULL); /* restores the password at the end */
    c = connect_url(u, NULL);
    if (c == NULL || root == NULL) goto restore;
    CHECK_OK(ipc_subscribe(c, IPC_SUB_CHANNEL, &ch, &chl, 1, NULL, on_message, (void *)&got,
                           NULL, &sub));
    /* Connection changes, with the password in the URL. */
    CHECK_OK(kill_client(root, c));
    CHECK_OK(cmd(root, "CLIENT", "KILL", "TYPE", "pubsub", NULL));
    /* The shared connection too (a lone GET takes a direct one): it must be back before the
     * password changes below, or its reconnect would meet the new one. */
    WAIT_UNTIL(ok, get_ok(c) && shared_id(c) >= 0 && stats(c).pubsub_reconnects == 1, 5000);
    CHECK(ok);

    /* A wrong password, in the URL and in the options, and malformed URLs with one. */
    snprintf(bad, sizeof bad, "redis://:%s-wrong@%s", secret, hostport);
    CHECK_RC(ipc_client_new(bad, NULL, &x), IPC_ERR_SERVER);
    CHECK(!leaks(ipc_last_error_message()));
    CHECK_OK(ipc_options_new(&o));
    snprintf(bad, sizeof bad, "%s-wrong", secret);
    CHECK_OK(ipc_options_set_password(o, bad));
    CHECK_RC(ipc_client_new(tcp_url, o, &x), IPC_ERR_SERVER);
    CHECK(!leaks(ipc_last_error_message()));
    ipc_options_free(o);
    bads[0] = "redis://:%s@127.0.0.1:notaport/0";
    bads[1] = "rediss://user:%s@[::1/0";
    bads[2] = "user:%s@host";
    for (i = 0; i < 3; i++) {
        snprintf(bad, sizeof bad, bads[i], secret);
        CHECK(ipc_client_new(bad, NULL, &x) != IPC_OK);
        CHECK(strlen(ipc_last_error_message()) > 0 && !leaks(ipc_last_error_message()));
        if (leaks(ipc_last_error_message())) fprintf(stderr, "  leaks: %s\n", ipc_last_error_message());
    }
    /* The server refusing a reconnect once the password changed. */
    CHECK_OK(cmd(root, "CONFIG", "SET", "requirepass", "another-Secret", NULL));
    rc = kill_client(root, c);
    CHECK_OK(rc);
    if (rc != IPC_OK) dump(&l);
    sleep_ms(300);
    CHECK(!get_ok(c));
    CHECK(!leaks(ipc_last_error_message()));
    CHECK(has_line(&l, 0, "redipc::connection", NULL, NULL));

restore:
    /* The admin's connection was authenticated before the password was set: it stays so. */
    CHECK_OK(cmd(admin, "CONFIG", "SET", "requirepass", "", NULL));
    ipc_subscription_free(sub);
    ipc_client_free(c);
    ipc_client_free(root);
    CHECK_OK(ipc_set_log_callback(IPC_LOG_OFF, NULL, NULL, NULL));
    CHECK(load(&secret_seen) == 0);
    if (load(&secret_seen) != 0) dump(&l);
    secrets[0] = secrets[1] = NULL;
}

/* ---- at maxmemory --------------------------------------------------------------------- */

static void is_oom(const char *what, ipc_result rc) {
    CHECK(rc == IPC_ERR_SERVER);
    CHECK(strcmp(ipc_last_error_code(), "OOM") == 0);
    if (rc != IPC_ERR_SERVER || strcmp(ipc_last_error_code(), "OOM") != 0) {
        fprintf(stderr, "  %s: %s (%s)\n", what, ipc_result_name(rc), ipc_last_error_message());
    }
}

static void test_oom(ipc_client *admin) {
    ipc_client *c = connect_url(url, NULL);
    ipc_subscription *sub = NULL;
    ipc_reply *r = NULL;
    const char *ch = name("news"), *before = name("before"), *k = name("k");
    const char *q = name("jobs"), *stream = name("events"), *hash = name("state");
    size_t chl = strlen(ch);
    char policy[64] = "noeviction", idbuf[IPC_STREAM_ID_MAX];
    const char *p = NULL;
    size_t pl = 0;
    char *v = NULL;
    size_t vl = 0;
    bool found = false;
    ipc_field f = {"f", 1, "v", 1};
    volatile long got = 0;
    ipc_client_counts base, st;
    int64_t receivers = 0;
    int ok;
    if (c == NULL) return;
    CHECK_OK(ipc_set(c, before, strlen(before), "1", 1, 60000));
    CHECK_OK(ipc_subscribe(c, IPC_SUB_CHANNEL, &ch, &chl, 1, NULL, on_message, (void *)&got, NULL,
                           &sub));
    /* The policy to restore. */
    if (cmd_r(admin, &r, "CONFIG", "GET", "maxmemory-policy", NULL, NULL) == IPC_OK &&
        ipc_reply_len(r) == 2 && ipc_reply_string(ipc_reply_element(r, 1), &p, &pl) == IPC_OK &&
        pl < sizeof policy) {
        memcpy(policy, p, pl);
        policy[pl] = '\0';
    }
    ipc_reply_free(r);
    base = stats(c);
    /* Any memory in use is over a 1-byte limit: every write that may grow memory fails. */
    CHECK_OK(cmd(admin, "CONFIG", "SET", "maxmemory-policy", "noeviction", NULL));
    CHECK_OK(cmd(admin, "CONFIG", "SET", "maxmemory", "1", NULL));

    is_oom("set", ipc_set(c, k, strlen(k), "v", 1, 0));
    is_oom("send_request", ipc_send_request(c, q, strlen(q), "payload", 7));
    is_oom("stream_publish", ipc_stream_publish(c, stream, strlen(stream), &f, 1, -1, idbuf,
                                                sizeof idbuf));
    is_oom("hash_set", ipc_hash_set(c, hash, strlen(hash), "f", 1, "v", 1, NULL));
    /* Reads and pub/sub go on. */
    CHECK_OK(ipc_get(c, before, strlen(before), &v, &vl, &found));
    CHECK(found && vl == 1 && v[0] == '1');
    ipc_buf_free(v, vl);
    CHECK_OK(ipc_publish(c, ch, chl, "still here", 10, &receivers));
    CHECK(receivers == 1);
    WAIT_UNTIL(ok, load(&got) == 1, 5000);
    CHECK(ok);
    st = stats(c);
    CHECK(st.failed_server - base.failed_server == 4);

    /* Restore, whatever happened above; nothing was written behind the errors' back. */
    CHECK_OK(cmd(admin, "CONFIG", "SET", "maxmemory", "0", NULL));
    CHECK_OK(cmd(admin, "CONFIG", "SET", "maxmemory-policy", policy, NULL));
    CHECK(cmd_int(admin, "EXISTS", k, NULL) == 0);
    CHECK(cmd_int(admin, "EXISTS", stream, NULL) == 0);
    CHECK(cmd_int(admin, "EXISTS", hash, NULL) == 0);
    CHECK_OK(ipc_send_request(c, q, strlen(q), "payload", 7));
    CHECK_OK(ipc_set(c, k, strlen(k), "v", 1, 60000));
    ipc_subscription_free(sub);
    ipc_client_free(c);
}

int main(int argc, char **argv) {
    ipc_client *admin = NULL;
    if (argc != 3) {
        fprintf(stderr, "usage: %s URL TCP_URL\n", argv[0]);
        return 2;
    }
    url = argv[1];
    tcp_url = argv[2];
    snprintf(prefix, sizeof prefix, "obs:%ld", (long)getpid());
    admin = connect_url(url, NULL);
    if (admin == NULL) return check_summary() | 1;
    test_edges(admin);
    test_max_reply_size(admin);
    test_counters(admin);
    test_direct_connections();
    test_log(admin);
    test_no_credentials(admin);
    test_oom(admin);
    ipc_client_free(admin);
    return check_summary();
}
