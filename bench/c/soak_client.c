/*
 * soak_client.c: the C client process of bench/soak (the driver is bench/py/soak_driver.py;
 * docs/RELIABILITY.md, section "Soak", says what is checked and why).
 *
 *   soak_client --role main|victim --name NAME --url URL --ledger FILE [--peers A,B]
 *               [--scale X]
 *
 * Every role serves: a reliable worker of the queue soak-q, an RPC server of soak-rpc and a
 * group consumer of the stream soak-s (group soak-g). A "main" also produces: requests,
 * RPC calls, stream entries, pub/sub messages (on soak:ps:NAME), hash writes (soak:h:NAME),
 * locked and fenced writes (soak-lock), plain commands and transactions; and it subscribes
 * to the peers' channels and watches the peers' hashes. A "victim" only serves (the driver
 * kills it with SIGKILL and starts it again).
 *
 * What happened goes to the ledger, one line per event, written with one write(2) each (so
 * a SIGKILL loses nothing written): the driver reads every ledger at the end and checks
 * that nothing promised was lost. Signals: SIGUSR1 stops producing (then final hash values
 * are written and "PRODUCED" is logged), SIGTERM stops everything, logs a summary ("J"
 * line, JSON) and exits.
 *
 * Built by bench/soak with -std=c99 -Wall -Wextra -Wpedantic -Werror.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <redipc.h>

#define QUEUE "soak-q"
#define SERVICE "soak-rpc"
#define STREAM "soak-s"
#define GROUP "soak-g"
#define LOCK "soak-lock"
#define FENCE_KEY "soak:fence"
#define MAX_PEERS 4
#define NFIELDS 4

/* Client options: every call is bounded by the response timeout; RPC calls by their own. */
#define RESPONSE_TIMEOUT_MS 3000
#define CALL_TIMEOUT_MS 2000
#define LOCK_TTL_MS 2000
#define LOCK_WAIT_MS 1000

/* --- process state ------------------------------------------------------------------------ */

static const char *g_name = "c";
static const char *g_url;
static const char *g_ledger_path;
static bool g_main_role;
static double g_scale = 1.0;
static int g_ledger_fd = -1;
static int g_npeers;
static char g_peers[MAX_PEERS][64];

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static bool g_stop_producing;

static bool producing(void) {
    pthread_mutex_lock(&g_mu);
    bool on = !g_stop_producing;
    pthread_mutex_unlock(&g_mu);
    return on;
}

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(long ms) {
    if (ms <= 0) return;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Sleep the period of a loop running at `rate` per second (scaled). */
static void pace(double rate) {
    sleep_ms((long)(1000.0 / (rate * g_scale)));
}

static uint64_t wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* One ledger line, "TAG WALL_MS rest", in one write(2): survives SIGKILL. */
static void ledger(const char *fmt, ...) {
    char buf[1024];
    const char *sp = strchr(fmt, ' ');
    size_t tag = sp ? (size_t)(sp - fmt) : strlen(fmt);
    if (tag > 16) tag = 16;
    memcpy(buf, fmt, tag);
    int n = (int)tag + snprintf(buf + tag, sizeof buf - tag, " %" PRIu64, wall_ms());
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, sizeof buf - 1 - (size_t)n, fmt + tag, ap);
    va_end(ap);
    if (m < 0) return;
    n += m;
    if ((size_t)n > sizeof buf - 2) n = (int)(sizeof buf - 2);
    buf[n++] = '\n';
    if (write(g_ledger_fd, buf, (size_t)n) < 0) {
        /* nothing to do: the driver notices a short ledger */
    }
}

/* A thread-safe, bounded copy of a (ptr, len) byte string as text. */
static void copy_text(char *dst, size_t cap, const char *src, size_t len) {
    if (len >= cap) len = cap - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

/* --- counters ------------------------------------------------------------------------------ */

/* Outcomes of one kind of call: by result code, with latency bounds. */
typedef struct {
    const char *name;
    uint64_t limit_ms; /* the call's own bound: a call above limit + 1 s is "late" */
    uint64_t n;
    uint64_t by_code[10]; /* index code / 100 (0 ok, 1 connection, 2 timeout, ...) */
    uint64_t late;
    uint64_t max_ms;
} op_stats;

enum { OP_SEND, OP_CALL, OP_XADD, OP_PUBLISH, OP_HSET, OP_LOCK, OP_INCR, OP_TX, OP_SET, OP_GET,
       OP_FENCE, OP_RELEASE, OP_COUNT };

static op_stats g_ops[OP_COUNT] = {
    {"send_request", RESPONSE_TIMEOUT_MS, 0, {0}, 0, 0},
    {"call", CALL_TIMEOUT_MS, 0, {0}, 0, 0},
    {"stream_publish", RESPONSE_TIMEOUT_MS, 0, {0}, 0, 0},
    {"publish", RESPONSE_TIMEOUT_MS, 0, {0}, 0, 0},
    {"hash_set", RESPONSE_TIMEOUT_MS, 0, {0}, 0, 0},
    {"lock", LOCK_WAIT_MS + RESPONSE_TIMEOUT_MS, 0, {0}, 0, 0},
    {"incr", RESPONSE_TIMEOUT_MS, 0, {0}, 0, 0},
    {"tx", RESPONSE_TIMEOUT_MS, 0, {0}, 0, 0},
    {"set", RESPONSE_TIMEOUT_MS, 0, {0}, 0, 0},
    {"get", RESPONSE_TIMEOUT_MS, 0, {0}, 0, 0},
    {"fence", RESPONSE_TIMEOUT_MS, 0, {0}, 0, 0},
    {"lock_release", RESPONSE_TIMEOUT_MS, 0, {0}, 0, 0},
};

static void op_done(int op, ipc_result rc, uint64_t t0) {
    uint64_t dt = now_ms() - t0;
    unsigned idx = (unsigned)rc / 100u;
    if (idx > 9) idx = 9;
    pthread_mutex_lock(&g_mu);
    op_stats *s = &g_ops[op];
    s->n++;
    s->by_code[idx]++;
    if (dt > s->max_ms) s->max_ms = dt;
    if (dt > s->limit_ms + 1000) s->late++;
    pthread_mutex_unlock(&g_mu);
}

/* Everything else, named counters. */
typedef struct {
    const char *name;
    uint64_t v;
} counter;

static counter g_counters[] = {
    {"q_sent", 0}, {"q_uncertain", 0}, {"q_handled", 0}, {"q_failed_on_purpose", 0},
    {"x_sent", 0}, {"x_uncertain", 0}, {"x_handled", 0}, {"x_failed_on_purpose", 0},
    {"rpc_served", 0}, {"rpc_ok", 0}, {"rpc_wrong_reply", 0},
    {"pub_sent", 0}, {"pub_uncertain", 0},
    {"sub_messages", 0}, {"sub_disconnected", 0}, {"sub_reactivated", 0}, {"sub_activated", 0},
    {"sub_gaps_announced", 0}, {"sub_gaps_unannounced", 0}, {"sub_out_of_order", 0},
    {"hash_set_ok", 0}, {"hash_set_uncertain", 0}, {"hash_seen", 0}, {"hash_backwards", 0},
    {"hash_events", 0},
    {"lock_acquired", 0}, {"lock_timeout", 0}, {"lock_error", 0}, {"lock_token_backwards", 0},
    {"fence_accepted", 0}, {"fence_refused", 0}, {"lock_release_not_held", 0},
    {"incr_ok", 0}, {"incr_uncertain", 0}, {"incr_backwards", 0},
    {"tx_ok", 0}, {"tx_uncertain", 0}, {"tx_mismatch", 0},
    {"kv_ok", 0}, {"kv_uncertain", 0}, {"kv_mismatch", 0},
    {"report_handler_failed", 0}, {"report_dead_lettered", 0}, {"report_recovered", 0},
    {"report_connection_lost", 0}, {"report_connection_restored", 0},
    {"report_read_failed", 0}, {"report_other", 0},
};
#define NCOUNTERS (sizeof g_counters / sizeof g_counters[0])

static void count(const char *name, uint64_t by) {
    pthread_mutex_lock(&g_mu);
    for (size_t i = 0; i < NCOUNTERS; i++) {
        if (strcmp(g_counters[i].name, name) == 0) {
            g_counters[i].v += by;
            break;
        }
    }
    pthread_mutex_unlock(&g_mu);
}

static void die(const char *what, ipc_result rc) {
    fprintf(stderr, "soak_client %s: %s: %s (%s)\n", g_name, what, ipc_result_name(rc),
            ipc_last_error_message());
    ledger("E %s %s", what, ipc_result_name(rc));
    exit(2);
}

#define CHECK(call)                                   \
    do {                                              \
        ipc_result rc_ = (call);                      \
        if (rc_ != IPC_OK) die(#call, rc_);           \
    } while (0)

/* --- reports -------------------------------------------------------------------------------- */

static void on_report(void *ud, const ipc_report *r) {
    (void)ud;
    switch (r->kind) {
    case IPC_REPORT_HANDLER_FAILED: count("report_handler_failed", 1); break;
    case IPC_REPORT_DEAD_LETTERED: count("report_dead_lettered", r->count ? r->count : 1); break;
    case IPC_REPORT_RECOVERED: count("report_recovered", r->count); break;
    case IPC_REPORT_CONNECTION_LOST: count("report_connection_lost", 1); break;
    case IPC_REPORT_CONNECTION_RESTORED: count("report_connection_restored", 1); break;
    case IPC_REPORT_READ_FAILED: count("report_read_failed", 1); break;
    default: count("report_other", 1); break;
    }
    if (r->kind != IPC_REPORT_HANDLER_FAILED) ledger("R %s", r->text);
}

/* --- serving: reliable worker, RPC server, group consumer ---------------------------------- */

/* Victims take a little time per item, so that a SIGKILL often lands mid-handler. */
static void victim_delay(void) {
    if (!g_main_role) sleep_ms(rand() % 8);
}

static int on_request(void *ud, const ipc_request *req, ipc_error_out *err) {
    (void)ud;
    char payload[128];
    copy_text(payload, sizeof payload, req->payload, req->payload_len);
    /* "F <id>": fail the first attempt (the retry path); "N <id>": plain. */
    if (payload[0] == 'F' && req->attempt == 0) {
        count("q_failed_on_purpose", 1);
        if (ipc_error_set(err, "failing the first attempt on purpose") != IPC_OK) return 1;
        return 1;
    }
    victim_delay();
    ledger("QH %s %" PRIu32 " %s", payload + 2, req->attempt, g_name);
    count("q_handled", 1);
    victim_delay();
    return 0;
}

static int on_call(void *ud, const ipc_call_info *call, ipc_rpc_reply *reply, ipc_error_out *err) {
    (void)ud;
    (void)err;
    char buf[256];
    char payload[128];
    copy_text(payload, sizeof payload, call->payload, call->payload_len);
    victim_delay();
    int n = snprintf(buf, sizeof buf, "echo:%s|%s", payload, g_name);
    count("rpc_served", 1);
    return ipc_rpc_reply_set(reply, buf, (size_t)n) == IPC_OK ? 0 : 1;
}

static int on_entry(void *ud, const ipc_entry *entry, ipc_error_out *err) {
    (void)ud;
    const char *v;
    size_t vl;
    bool found;
    char id[128] = "?";
    bool fail = false;
    if (ipc_entry_get(entry, "id", 2, &v, &vl, &found) == IPC_OK && found) copy_text(id, sizeof id, v, vl);
    if (ipc_entry_get(entry, "fail", 4, &v, &vl, &found) == IPC_OK && found && vl == 1 && v[0] == '1')
        fail = true;
    if (fail && entry->deliveries <= 1) {
        count("x_failed_on_purpose", 1);
        if (ipc_error_set(err, "failing the first delivery on purpose") != IPC_OK) return 1;
        return 1;
    }
    victim_delay();
    ledger("XH %s %" PRIu64 " %s %s", id, entry->deliveries, entry->id, g_name);
    count("x_handled", 1);
    return 0;
}

/* --- pub/sub: sequence numbers per publisher channel --------------------------------------- */

typedef struct {
    char channel[80];
    long last; /* -1: nothing yet */
    bool disconnected_since;
} chan_state;

static chan_state g_chans[MAX_PEERS];

static void on_message(void *ud, const ipc_message *m) {
    (void)ud;
    if (m->kind == IPC_EVENT_DISCONNECTED) {
        count("sub_disconnected", 1);
        for (int i = 0; i < g_npeers; i++) g_chans[i].disconnected_since = true;
        char why[160];
        copy_text(why, sizeof why, m->payload ? m->payload : "", m->payload_len);
        ledger("PD %s", why);
        return;
    }
    if (m->kind == IPC_EVENT_REACTIVATED) {
        count("sub_reactivated", 1);
        ledger("PR");
        return;
    }
    if (m->kind == IPC_EVENT_ACTIVATED) {
        count("sub_activated", 1);
        return;
    }
    char text[32];
    copy_text(text, sizeof text, m->payload, m->payload_len);
    long seq = strtol(text, NULL, 10);
    count("sub_messages", 1);
    for (int i = 0; i < g_npeers; i++) {
        chan_state *c = &g_chans[i];
        if (strlen(c->channel) != m->channel_len || memcmp(c->channel, m->channel, m->channel_len) != 0)
            continue;
        if (c->last >= 0) {
            if (seq <= c->last) {
                count("sub_out_of_order", 1);
                ledger("PO %s %ld %ld", c->channel, c->last, seq);
            } else if (seq != c->last + 1) {
                count(c->disconnected_since ? "sub_gaps_announced" : "sub_gaps_unannounced", 1);
                ledger("PG %s %ld %ld %d", c->channel, c->last + 1, seq - 1, c->disconnected_since ? 1 : 0);
            }
        }
        c->last = seq;
        c->disconnected_since = false;
    }
}

/* --- hash watch: per (hash, field), values only grow ---------------------------------------- */

typedef struct {
    char hash[80];
    long last[NFIELDS];
} hash_state;

static hash_state g_hashes[MAX_PEERS];

static void on_field(void *ud, const char *field, size_t field_len, const char *value, size_t value_len) {
    hash_state *h = ud;
    if (field_len != 2 || field[0] != 'f' || field[1] < '0' || field[1] >= '0' + NFIELDS) return;
    int f = field[1] - '0';
    if (value == NULL) return;
    char text[32];
    copy_text(text, sizeof text, value, value_len);
    long v = strtol(text, NULL, 10);
    count("hash_seen", 1);
    pthread_mutex_lock(&g_mu);
    long before = h->last[f];
    if (v >= before) h->last[f] = v;
    pthread_mutex_unlock(&g_mu);
    if (v < before) {
        count("hash_backwards", 1);
        ledger("HB %s f%d %ld %ld", h->hash, f, before, v);
    }
}

static void on_hash_event(void *ud, const char *payload, size_t len) {
    (void)ud;
    (void)payload;
    (void)len;
    count("hash_events", 1);
}

/* --- producers ------------------------------------------------------------------------------ */

static ipc_client *g_client;

static void *produce_requests(void *arg) {
    (void)arg;
    for (long seq = 0; producing(); seq++) {
        char id[96], payload[128];
        snprintf(id, sizeof id, "%s:q:%ld", g_name, seq);
        bool fail = seq % 50 == 7;
        int n = snprintf(payload, sizeof payload, "%c %s", fail ? 'F' : 'N', id);
        uint64_t t0 = now_ms();
        ipc_result rc = ipc_send_request(g_client, QUEUE, strlen(QUEUE), payload, (size_t)n);
        op_done(OP_SEND, rc, t0);
        if (rc == IPC_OK) {
            ledger("QS %s", id);
            count("q_sent", 1);
        } else {
            ledger("QU %s %s", id, ipc_result_name(rc));
            count("q_uncertain", 1);
        }
        pace(20);
    }
    return NULL;
}

static void *produce_calls(void *arg) {
    (void)arg;
    ipc_call_options *co;
    CHECK(ipc_call_options_new(&co));
    CHECK(ipc_call_options_set_timeout_ms(co, CALL_TIMEOUT_MS));
    for (long seq = 0; producing(); seq++) {
        char payload[96];
        int n = snprintf(payload, sizeof payload, "%s:r:%ld", g_name, seq);
        char *reply = NULL;
        size_t reply_len = 0;
        uint64_t t0 = now_ms();
        ipc_result rc = ipc_call(g_client, SERVICE, strlen(SERVICE), "echo", 4, payload, (size_t)n, co,
                                 &reply, &reply_len);
        op_done(OP_CALL, rc, t0);
        if (rc == IPC_OK) {
            char want[128];
            int wn = snprintf(want, sizeof want, "echo:%s|", payload);
            if (reply_len > (size_t)wn && memcmp(reply, want, (size_t)wn) == 0) {
                count("rpc_ok", 1);
            } else {
                count("rpc_wrong_reply", 1);
                char got[160];
                copy_text(got, sizeof got, reply, reply_len);
                ledger("RW %s %s", payload, got);
            }
            ipc_buf_free(reply, reply_len);
        } else {
            ledger("RE %s %s %" PRIu64, payload, ipc_result_name(rc), now_ms() - t0);
        }
        pace(8);
    }
    ipc_call_options_free(co);
    return NULL;
}

static void *produce_entries(void *arg) {
    (void)arg;
    for (long seq = 0; producing(); seq++) {
        char id[96];
        snprintf(id, sizeof id, "%s:x:%ld", g_name, seq);
        const char *fail = seq % 50 == 11 ? "1" : "0";
        ipc_field fields[2] = {{"id", 2, id, strlen(id)}, {"fail", 4, fail, 1}};
        char entry_id[IPC_STREAM_ID_MAX];
        uint64_t t0 = now_ms();
        ipc_result rc = ipc_stream_publish(g_client, STREAM, strlen(STREAM), fields, 2, -1, entry_id,
                                           sizeof entry_id);
        op_done(OP_XADD, rc, t0);
        if (rc == IPC_OK) {
            ledger("XS %s %s", id, entry_id);
            count("x_sent", 1);
        } else {
            ledger("XU %s %s", id, ipc_result_name(rc));
            count("x_uncertain", 1);
        }
        pace(20);
    }
    return NULL;
}

static void *produce_messages(void *arg) {
    (void)arg;
    char channel[96];
    snprintf(channel, sizeof channel, "soak:ps:%s", g_name);
    long seq = 0;
    for (; producing(); seq++) {
        char payload[32];
        int n = snprintf(payload, sizeof payload, "%ld", seq);
        int64_t receivers = 0;
        uint64_t t0 = now_ms();
        ipc_result rc = ipc_publish(g_client, channel, strlen(channel), payload, (size_t)n, &receivers);
        op_done(OP_PUBLISH, rc, t0);
        if (rc == IPC_OK) {
            count("pub_sent", 1);
        } else {
            ledger("PU %s %ld", channel, seq);
            count("pub_uncertain", 1);
        }
        pace(50);
    }
    ledger("PX %s %ld", channel, seq - 1);
    return NULL;
}

static void *produce_hash(void *arg) {
    (void)arg;
    char hash[96];
    snprintf(hash, sizeof hash, "soak:h:%s", g_name);
    long seq = 1;
    for (; producing(); seq++) {
        char field[8], value[32];
        snprintf(field, sizeof field, "f%ld", seq % NFIELDS);
        int n = snprintf(value, sizeof value, "%ld", seq);
        uint64_t t0 = now_ms();
        ipc_result rc = ipc_hash_set(g_client, hash, strlen(hash), field, 2, value, (size_t)n, NULL);
        op_done(OP_HSET, rc, t0);
        count(rc == IPC_OK ? "hash_set_ok" : "hash_set_uncertain", 1);
        pace(10);
    }
    /* The final values, written until they are written: every watcher must end on them. */
    for (int f = 0; f < NFIELDS; f++, seq++) {
        char field[8], value[32];
        snprintf(field, sizeof field, "f%d", f);
        int n = snprintf(value, sizeof value, "%ld", seq);
        uint64_t give_up = now_ms() + 30000;
        ipc_result rc;
        while ((rc = ipc_hash_set(g_client, hash, strlen(hash), field, 2, value, (size_t)n, NULL)) != IPC_OK &&
               now_ms() < give_up)
            sleep_ms(200);
        if (rc == IPC_OK)
            ledger("HF %s %s %ld", hash, field, seq);
        else
            ledger("HF %s %s ? %s", hash, field, ipc_result_name(rc));
    }
    return NULL;
}

static const char FENCE_SCRIPT[] =
    "local cur = tonumber(redis.call('GET', KEYS[1]) or '0') "
    "if tonumber(ARGV[1]) > cur then redis.call('SET', KEYS[1], ARGV[1]) return 1 end return 0";

static void *produce_locks(void *arg) {
    (void)arg;
    ipc_lock_options *lo;
    CHECK(ipc_lock_options_new(&lo));
    CHECK(ipc_lock_options_set_ttl_ms(lo, LOCK_TTL_MS));
    CHECK(ipc_lock_options_set_wait_ms(lo, LOCK_WAIT_MS));
    uint64_t last_token = 0;
    while (producing()) {
        ipc_lock *lock = NULL;
        uint64_t t0 = now_ms();
        ipc_result rc = ipc_lock_acquire(g_client, LOCK, strlen(LOCK), lo, &lock);
        op_done(OP_LOCK, rc, t0);
        if (rc == IPC_ERR_TIMEOUT) {
            count("lock_timeout", 1);
        } else if (rc != IPC_OK) {
            count("lock_error", 1);
        } else {
            uint64_t token = 0;
            if (ipc_lock_token(lock, &token) != IPC_OK) token = 0;
            count("lock_acquired", 1);
            ledger("LT %" PRIu64, token);
            if (token <= last_token) {
                count("lock_token_backwards", 1);
                ledger("LB %" PRIu64 " %" PRIu64, last_token, token);
            }
            last_token = token;
            /* The protected resource refuses writes with an older token (fencing). */
            char tok[32];
            snprintf(tok, sizeof tok, "%" PRIu64, token);
            const char *args[] = {"EVAL", FENCE_SCRIPT, "1", FENCE_KEY, tok};
            ipc_reply *r = NULL;
            t0 = now_ms();
            rc = ipc_command(g_client, args, NULL, 5, &r);
            op_done(OP_FENCE, rc, t0);
            if (rc == IPC_OK) {
                int64_t ok = 0;
                if (ipc_reply_integer(r, &ok) == IPC_OK && ok == 1)
                    count("fence_accepted", 1);
                else
                    count("fence_refused", 1);
                ipc_reply_free(r);
            }
            sleep_ms(20);
            bool was_held = false;
            t0 = now_ms();
            rc = ipc_lock_release(lock, &was_held);
            op_done(OP_RELEASE, rc, t0);
            if (rc == IPC_OK && !was_held) count("lock_release_not_held", 1);
            ipc_lock_free(lock);
        }
        pace(5);
    }
    ipc_lock_options_free(lo);
    return NULL;
}

static bool reply_int(const ipc_reply *r, int64_t *v) {
    return r != NULL && ipc_reply_integer(r, v) == IPC_OK;
}

static void *produce_commands(void *arg) {
    (void)arg;
    char cnt[96], txa[96], txb[96], kv[96];
    snprintf(cnt, sizeof cnt, "soak:cnt:%s", g_name);
    snprintf(txa, sizeof txa, "soak:txa:%s", g_name);
    snprintf(txb, sizeof txb, "soak:txb:%s", g_name);
    snprintf(kv, sizeof kv, "soak:kv:%s", g_name);
    ipc_batch *tx;
    CHECK(ipc_batch_new(g_client, true, &tx));
    const char *a1[] = {"INCR", txa};
    const char *a2[] = {"INCR", txb};
    CHECK(ipc_batch_add(tx, a1, NULL, 2));
    CHECK(ipc_batch_add(tx, a2, NULL, 2));
    static char value[4096];
    int64_t last = 0;
    for (long seq = 0; producing(); seq++) {
        int64_t v = 0;
        uint64_t t0 = now_ms();
        ipc_result rc = ipc_incr(g_client, cnt, strlen(cnt), &v);
        op_done(OP_INCR, rc, t0);
        if (rc == IPC_OK) {
            count("incr_ok", 1);
            if (v <= last) {
                count("incr_backwards", 1);
                ledger("CB %" PRId64 " %" PRId64, last, v);
            }
            last = v;
        } else {
            count("incr_uncertain", 1);
        }
        if (seq % 5 == 0) {
            ipc_reply *r = NULL;
            t0 = now_ms();
            rc = ipc_batch_exec(tx, &r);
            op_done(OP_TX, rc, t0);
            if (rc == IPC_OK) {
                int64_t va = -1, vb = -2;
                if (ipc_reply_len(r) == 2 && reply_int(ipc_reply_element(r, 0), &va) &&
                    reply_int(ipc_reply_element(r, 1), &vb) && va == vb) {
                    count("tx_ok", 1);
                } else {
                    count("tx_mismatch", 1);
                    ledger("TM %" PRId64 " %" PRId64, va, vb);
                }
                ipc_reply_free(r);
            } else {
                count("tx_uncertain", 1);
            }
        }
        if (seq % 3 == 0) {
            size_t len = 1 + (size_t)(seq * 7919 % (long)(sizeof value - 1));
            for (size_t i = 0; i < len; i++) value[i] = (char)('a' + (seq + (long)i) % 26);
            t0 = now_ms();
            rc = ipc_set(g_client, kv, strlen(kv), value, len, 0);
            op_done(OP_SET, rc, t0);
            if (rc != IPC_OK) {
                count("kv_uncertain", 1);
            } else {
                char *got = NULL;
                size_t got_len = 0;
                bool found = false;
                t0 = now_ms();
                rc = ipc_get(g_client, kv, strlen(kv), &got, &got_len, &found);
                op_done(OP_GET, rc, t0);
                if (rc == IPC_OK) {
                    if (found && got_len == len && memcmp(got, value, len) == 0) {
                        count("kv_ok", 1);
                    } else {
                        count("kv_mismatch", 1);
                        ledger("KM %ld %zu %zu", seq, len, got_len);
                    }
                    if (found) ipc_buf_free(got, got_len);
                } else {
                    count("kv_uncertain", 1);
                }
            }
        }
        pace(40);
    }
    ipc_batch_free(tx);
    return NULL;
}

/* --- summary ------------------------------------------------------------------------------- */

static void summary(void) {
    static char buf[16384];
    size_t off = 0;
#define PUT(...) off += (size_t)snprintf(buf + off, off < sizeof buf ? sizeof buf - off : 0, __VA_ARGS__)
    pthread_mutex_lock(&g_mu);
    PUT("J %" PRIu64 " {\"name\":\"%s\",\"lang\":\"c\",\"role\":\"%s\",\"counters\":{", wall_ms(), g_name, g_main_role ? "main" : "victim");
    for (size_t i = 0; i < NCOUNTERS; i++) PUT("%s\"%s\":%" PRIu64, i ? "," : "", g_counters[i].name, g_counters[i].v);
    PUT("},\"ops\":{");
    static const char *code_names[10] = {"ok", "connection", "timeout", "server", "protocol",
                                         "closed", "invalid", "tx", "rpc", "internal"};
    for (int i = 0; i < OP_COUNT; i++) {
        op_stats *s = &g_ops[i];
        PUT("%s\"%s\":{\"n\":%" PRIu64 ",\"late\":%" PRIu64 ",\"max_ms\":%" PRIu64 ",\"limit_ms\":%" PRIu64,
            i ? "," : "", s->name, s->n, s->late, s->max_ms, s->limit_ms);
        for (int c = 0; c < 10; c++)
            if (s->by_code[c]) PUT(",\"%s\":%" PRIu64, code_names[c], s->by_code[c]);
        PUT("}");
    }
    PUT("},\"hash_seen\":{");
    int first = 1;
    if (g_main_role) {
        for (int p = 0; p < g_npeers; p++)
            for (int f = 0; f < NFIELDS; f++) {
                PUT("%s\"%s f%d\":%ld", first ? "" : ",", g_hashes[p].hash, f, g_hashes[p].last[f]);
                first = 0;
            }
    }
    PUT("}}");
    pthread_mutex_unlock(&g_mu);
#undef PUT
    /* Longer than ledger()'s lines: written as is, with its newline, in one write(2). */
    if (off > sizeof buf - 2) off = sizeof buf - 2;
    buf[off++] = '\n';
    if (write(g_ledger_fd, buf, off) < 0) {
        /* nothing to do: the driver notices a missing summary */
    }
}

/* --- main ---------------------------------------------------------------------------------- */

static void usage(void) {
    fprintf(stderr, "usage: soak_client --role main|victim --name NAME --url URL --ledger FILE "
                    "[--peers A,B] [--scale X]\n");
    exit(2);
}

int main(int argc, char **argv) {
    const char *peers = "";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) usage();
        if (strcmp(a, "--role") == 0) g_main_role = strcmp(v, "main") == 0;
        else if (strcmp(a, "--name") == 0) g_name = v;
        else if (strcmp(a, "--url") == 0) g_url = v;
        else if (strcmp(a, "--ledger") == 0) g_ledger_path = v;
        else if (strcmp(a, "--peers") == 0) peers = v;
        else if (strcmp(a, "--scale") == 0) g_scale = atof(v);
        else usage();
        i++;
    }
    if (!g_url || !g_ledger_path || g_scale <= 0) usage();
    g_ledger_fd = open(g_ledger_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (g_ledger_fd < 0) {
        perror(g_ledger_path);
        return 2;
    }
    srand((unsigned)getpid());
    while (*peers && g_npeers < MAX_PEERS) {
        const char *end = strchr(peers, ',');
        size_t len = end ? (size_t)(end - peers) : strlen(peers);
        copy_text(g_peers[g_npeers++], sizeof g_peers[0], peers, len);
        peers += len + (end ? 1 : 0);
    }

    /* Signals are taken by sigwait() here only: block them before any thread exists (the
     * library's threads inherit the mask). */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGUSR1);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    ipc_options *opts;
    CHECK(ipc_options_new(&opts));
    CHECK(ipc_options_set_client_name(opts, g_name));
    CHECK(ipc_options_set_response_timeout_ms(opts, RESPONSE_TIMEOUT_MS));
    CHECK(ipc_options_set_report_cb(opts, on_report, NULL, NULL));
    /* The server may be restarting when a victim comes back: try for a while. */
    ipc_result rc;
    uint64_t give_up = now_ms() + 20000;
    while ((rc = ipc_client_new(g_url, opts, &g_client)) != IPC_OK && now_ms() < give_up) sleep_ms(200);
    if (rc != IPC_OK) die("ipc_client_new", rc);
    ipc_options_free(opts);

    /* Serving, in every role. */
    ipc_worker_options *wo;
    CHECK(ipc_worker_options_new(&wo));
    CHECK(ipc_worker_options_set_reliable(wo, true));
    CHECK(ipc_worker_options_set_lease_ms(wo, 3000));
    CHECK(ipc_worker_options_set_max_attempts(wo, 20));
    CHECK(ipc_worker_options_set_concurrency(wo, 2));
    CHECK(ipc_worker_options_set_block_timeout_ms(wo, 500));
    const char *queues[] = {QUEUE};
    ipc_worker *worker;
    CHECK(ipc_worker_new(g_client, queues, NULL, 1, wo, on_request, NULL, NULL, &worker));
    ipc_server *server;
    CHECK(ipc_serve(g_client, SERVICE, strlen(SERVICE), wo, on_call, NULL, NULL, &server));
    ipc_worker_options_free(wo);

    ipc_consumer_options *co;
    CHECK(ipc_consumer_options_new(&co));
    CHECK(ipc_consumer_options_set_count(co, 10));
    CHECK(ipc_consumer_options_set_block_ms(co, 500));
    CHECK(ipc_consumer_options_set_min_idle_ms(co, 3000));
    CHECK(ipc_consumer_options_set_claim_interval_ms(co, 1000));
    CHECK(ipc_consumer_options_set_max_deliveries(co, 20));
    ipc_stream_consumer *consumer;
    CHECK(ipc_stream_consume(g_client, STREAM, strlen(STREAM), GROUP, strlen(GROUP), g_name, strlen(g_name), co,
                             on_entry, NULL, NULL, &consumer));
    ipc_consumer_options_free(co);

    /* Mains: subscribe to the peers' channels, watch their hashes, produce. */
    ipc_subscription *sub = NULL;
    ipc_hash_watcher *watchers[MAX_PEERS] = {NULL};
    pthread_t producers[7];
    int nproducers = 0;
    if (g_main_role) {
        const char *names[MAX_PEERS];
        for (int i = 0; i < g_npeers; i++) {
            snprintf(g_chans[i].channel, sizeof g_chans[i].channel, "soak:ps:%s", g_peers[i]);
            g_chans[i].last = -1;
            names[i] = g_chans[i].channel;
        }
        CHECK(ipc_subscribe(g_client, IPC_SUB_CHANNEL, names, NULL, (size_t)g_npeers, NULL, on_message, NULL,
                            NULL, &sub));
        for (int i = 0; i < g_npeers; i++) {
            snprintf(g_hashes[i].hash, sizeof g_hashes[i].hash, "soak:h:%s", g_peers[i]);
            CHECK(ipc_hash_watch(g_client, g_hashes[i].hash, strlen(g_hashes[i].hash), NULL, on_field,
                                 on_hash_event, &g_hashes[i], NULL, &watchers[i]));
        }
        void *(*fns[])(void *) = {produce_requests, produce_calls,  produce_entries, produce_messages,
                                  produce_hash,     produce_locks, produce_commands};
        for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
            if (pthread_create(&producers[nproducers], NULL, fns[i], NULL) != 0) {
                fprintf(stderr, "pthread_create failed\n");
                return 2;
            }
            nproducers++;
        }
    }
    ledger("READY %d", (int)getpid());

    for (;;) {
        int sig = 0;
        if (sigwait(&sigs, &sig) != 0) continue;
        if (sig == SIGUSR1) {
            pthread_mutex_lock(&g_mu);
            g_stop_producing = true;
            pthread_mutex_unlock(&g_mu);
            for (int i = 0; i < nproducers; i++) pthread_join(producers[i], NULL);
            nproducers = 0;
            ledger("PRODUCED");
        } else {
            break;
        }
    }

    /* Stop: producers first (if SIGTERM came without SIGUSR1), then the handles. */
    pthread_mutex_lock(&g_mu);
    g_stop_producing = true;
    pthread_mutex_unlock(&g_mu);
    for (int i = 0; i < nproducers; i++) pthread_join(producers[i], NULL);
    uint64_t t0 = now_ms();
    rc = ipc_worker_stop(worker, 10000);
    if (rc != IPC_OK) ledger("E worker_stop %s", ipc_result_name(rc));
    rc = ipc_server_stop(server, 10000);
    if (rc != IPC_OK) ledger("E server_stop %s", ipc_result_name(rc));
    rc = ipc_stream_consumer_stop(consumer, 10000);
    if (rc != IPC_OK) ledger("E consumer_stop %s", ipc_result_name(rc));
    for (int i = 0; i < g_npeers; i++) {
        if (watchers[i] && (rc = ipc_hash_watcher_stop(watchers[i], 10000)) != IPC_OK)
            ledger("E watcher_stop %s", ipc_result_name(rc));
    }
    if (sub && (rc = ipc_subscription_stop(sub, 10000)) != IPC_OK) ledger("E subscription_stop %s", ipc_result_name(rc));
    ledger("STOPPED %" PRIu64, now_ms() - t0);
    summary();
    ipc_worker_free(worker);
    ipc_server_free(server);
    ipc_stream_consumer_free(consumer);
    for (int i = 0; i < g_npeers; i++) ipc_hash_watcher_free(watchers[i]);
    ipc_subscription_free(sub);
    ipc_client_free(g_client);
    ledger("EXIT");
    close(g_ledger_fd);
    return 0;
}
