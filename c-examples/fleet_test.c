/* fleet_test.c: joining a redis-ipc fleet from C (issue 14). Every convention of the fleet is
 * played from the other side with the raw commands the fleet sends (ipc_command() and a
 * plain SUBSCRIBE from a second client), and the C API is checked both to receive and to
 * produce them, byte for byte:
 *
 *   - bare request queues: LPUSH on the list itself -> a bare worker (one BRPOP over two
 *     lists, FIFO per list); ipc_send_request_bare() -> BRPOP; a bare reliable worker is
 *     refused;
 *   - RPC on the redis-ipc JSON wire: a fleet caller (SUBSCRIBE <list>:reply:<id>, LPUSH the
 *     envelope) against ipc_serve() and ipc_serve_methods() with and without a method: the
 *     reply (no reply set: null), the error form, a reply that is not JSON, the unknown
 *     method, an expired deadline (no reply, the handler never runs); ipc_call() against a fleet server played by hand (BRPOP, PUBLISH): the
 *     exact envelope with and without a method, the reply, the error reply, nobody answering
 *     (a timeout, the request taken back); 16 concurrent C callers against a C server; a
 *     payload that is not JSON and fail-fast refused before sending; a call whose deadline
 *     passed while it waited in the list gets no reply;
 *   - hash state: a watcher with every notification (a repeated value delivered again), an
 *     event payload, the fleet's replace-all and clear re-read with deletions reported,
 *     without every notification (deduplicated), a custom channel; writes with timestamps
 *     (Unix ms and RFC 3339), an announcement word on another channel, replace-all and clear
 *     in the fleet's words, a delete on another channel, and redipc's defaults;
 *   - faults: ipc_fault_set()/ipc_fault_clear() seen in the set, the stream events:faults and
 *     the group's channel, each exactly once;
 *   - with a second URL (a server started with CONFIG renamed away): everything works there,
 *     and ipc_watch_keys(configure_server) fails with IPC_ERR_UNSUPPORTED saying why.
 *
 *   ./fleet_test URL [NOCONFIG_URL]
 *
 * Environment: REDIPC_TEST_QUICK=1 (runs under valgrind) changes nothing but is accepted.
 * Prints "N passed, M failed" last and exits non-zero on any failure.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static char prefix[64];

/* ---- helpers -------------------------------------------------------------------------- */

/* The name `n` under this run's prefix (one of a few rotating static buffers). */
static const char *name(const char *n) {
    static char bufs[32][128];
    static int next = 0;
    char *b = bufs[next++ % 32];
    snprintf(b, sizeof bufs[0], "%s%s", prefix, n);
    return b;
}

/* Wall-clock milliseconds since the Unix epoch (the fleet's deadlines and timestamps). */
static int64_t wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int last_error_has(const char *text) {
    return strstr(ipc_last_error_message(), text) != NULL;
}

/* A raw command: NUL-terminated arguments, NULL last. */
static ipc_result cmd(ipc_client *c, ipc_reply **out, ...) {
    const char *argv[16];
    size_t argc = 0;
    va_list ap;
    va_start(ap, out);
    for (;;) {
        const char *a = va_arg(ap, const char *);
        if (a == NULL || argc == 16) break;
        argv[argc++] = a;
    }
    va_end(ap);
    return ipc_command(c, argv, NULL, argc, out);
}

/* A raw command whose reply does not matter beyond success. */
static ipc_result run(ipc_client *c, ...) {
    const char *argv[16];
    size_t argc = 0;
    ipc_reply *r = NULL;
    ipc_result rc;
    va_list ap;
    va_start(ap, c);
    for (;;) {
        const char *a = va_arg(ap, const char *);
        if (a == NULL || argc == 16) break;
        argv[argc++] = a;
    }
    va_end(ap);
    rc = ipc_command(c, argv, NULL, argc, &r);
    ipc_reply_free(r);
    return rc;
}

/* Copy the string reply `r` (NUL-terminated) into buf; 0 if it is not a string. */
static int reply_text(const ipc_reply *r, char *buf, size_t cap) {
    const char *p = NULL;
    size_t n = 0;
    if (r == NULL || ipc_reply_string(r, &p, &n) != IPC_OK || n + 1 > cap) return 0;
    memcpy(buf, p, n);
    buf[n] = '\0';
    return 1;
}

/* The integer reply of a raw command; -1 on any failure. */
static int64_t int_of(ipc_client *c, const char *a0, const char *a1, const char *a2) {
    ipc_reply *r = NULL;
    int64_t v = -1;
    if (cmd(c, &r, a0, a1, a2, NULL) == IPC_OK && ipc_reply_integer(r, &v) != IPC_OK) v = -1;
    ipc_reply_free(r);
    return v;
}

/* HGET hash field into buf; 0 when missing or on failure. */
static int hget(ipc_client *c, const char *hash, const char *field, char *buf, size_t cap) {
    ipc_reply *r = NULL;
    int ok = cmd(c, &r, "HGET", hash, field, NULL) == IPC_OK && reply_text(r, buf, cap);
    ipc_reply_free(r);
    return ok;
}

static void quiet(void *userdata, const ipc_report *report) {
    (void)userdata;
    (void)report;
}

/* ---- an inbox: a raw subscriber's messages, in order ---------------------------------- */

#define INBOX_MAX 64
#define TEXT_MAX 512

struct inbox {
    pthread_mutex_t mu;
    long n;
    char channel[INBOX_MAX][TEXT_MAX];
    char payload[INBOX_MAX][TEXT_MAX];
};

static void inbox_init(struct inbox *in) {
    memset(in, 0, sizeof *in);
    pthread_mutex_init(&in->mu, NULL);
}

static void inbox_cb(void *userdata, const ipc_message *m) {
    struct inbox *in = userdata;
    if (m->kind != IPC_EVENT_MESSAGE) return;
    pthread_mutex_lock(&in->mu);
    if (in->n < INBOX_MAX && m->channel_len < TEXT_MAX && m->payload_len < TEXT_MAX) {
        memcpy(in->channel[in->n], m->channel, m->channel_len);
        in->channel[in->n][m->channel_len] = '\0';
        memcpy(in->payload[in->n], m->payload, m->payload_len);
        in->payload[in->n][m->payload_len] = '\0';
        in->n++;
    }
    pthread_mutex_unlock(&in->mu);
}

static long inbox_count(struct inbox *in) {
    long n;
    pthread_mutex_lock(&in->mu);
    n = in->n;
    pthread_mutex_unlock(&in->mu);
    return n;
}

/* Whether message `i` arrived within `ms` and is exactly (channel, payload). */
static int inbox_is(struct inbox *in, long i, const char *channel, const char *payload, long ms) {
    int ok, same;
    WAIT_UNTIL(ok, inbox_count(in) > i, ms);
    if (!ok) {
        fprintf(stderr, "  no message %ld (want %s %s)\n", i, channel, payload);
        return 0;
    }
    pthread_mutex_lock(&in->mu);
    same = strcmp(in->channel[i], channel) == 0 && strcmp(in->payload[i], payload) == 0;
    if (!same)
        fprintf(stderr, "  message %ld is (%s, %s), want (%s, %s)\n", i, in->channel[i],
                in->payload[i], channel, payload);
    pthread_mutex_unlock(&in->mu);
    return same;
}

/* Subscribe `raw` to one channel (returns once the server confirmed it). */
static ipc_subscription *listen_on(ipc_client *raw, const char *channel, struct inbox *in) {
    ipc_subscription *s = NULL;
    const char *names[1];
    names[0] = channel;
    CHECK_OK(ipc_subscribe(raw, IPC_SUB_CHANNEL, names, NULL, 1, NULL, inbox_cb, in, NULL, &s));
    return s;
}

/* ---- bare queues ---------------------------------------------------------------------- */

struct taken {
    pthread_mutex_t mu;
    volatile long freed;
    long n;
    char queue[16][64];
    char payload[16][64];
};

static int take_cb(void *userdata, const ipc_request *r, ipc_error_out *err) {
    struct taken *t = userdata;
    (void)err;
    pthread_mutex_lock(&t->mu);
    if (t->n < 16 && r->queue_len < 64 && r->payload_len < 64) {
        memcpy(t->queue[t->n], r->queue, r->queue_len);
        t->queue[t->n][r->queue_len] = '\0';
        memcpy(t->payload[t->n], r->payload, r->payload_len);
        t->payload[t->n][r->payload_len] = '\0';
    }
    t->n++;
    pthread_mutex_unlock(&t->mu);
    return 0;
}

static void taken_free(void *userdata) {
    struct taken *t = userdata;
    add(&t->freed, 1);
}

static long taken_count(struct taken *t) {
    long n;
    pthread_mutex_lock(&t->mu);
    n = t->n;
    pthread_mutex_unlock(&t->mu);
    return n;
}

static void test_bare_queues(ipc_client *c, ipc_client *raw) {
    char state[128], seatbox[128], out[128], got[128];
    const char *lists[2];
    struct taken t;
    ipc_worker_options *o = NULL;
    ipc_worker *w = NULL;
    ipc_reply *r = NULL;
    int ok, i, order = 0;

    snprintf(state, sizeof state, "%s", name("scooter:state"));
    snprintf(seatbox, sizeof seatbox, "%s", name("scooter:seatbox"));
    snprintf(out, sizeof out, "%s", name("scooter:out"));
    memset(&t, 0, sizeof t);
    pthread_mutex_init(&t.mu, NULL);

    /* A bare worker on two lists: the fleet's producers LPUSH on the lists themselves. */
    CHECK_OK(ipc_worker_options_new(&o));
    CHECK_OK(ipc_worker_options_set_bare(o, true));
    CHECK_OK(ipc_worker_options_set_block_timeout_ms(o, 100));
    lists[0] = state;
    lists[1] = seatbox;
    CHECK_OK(ipc_worker_new(c, lists, NULL, 2, o, take_cb, &t, taken_free, &w));
    CHECK_OK(run(raw, "LPUSH", state, "lock", NULL));
    CHECK_OK(run(raw, "LPUSH", state, "unlock", NULL));
    CHECK_OK(run(raw, "LPUSH", seatbox, "open", NULL));
    WAIT_UNTIL(ok, taken_count(&t) == 3, 5000);
    CHECK(ok);
    pthread_mutex_lock(&t.mu);
    for (i = 0; i < 3 && i < t.n; i++) {
        if (strcmp(t.queue[i], state) == 0) {
            /* FIFO per list: lock before unlock */
            CHECK(strcmp(t.payload[i], order == 0 ? "lock" : "unlock") == 0);
            order++;
        } else {
            CHECK(strcmp(t.queue[i], seatbox) == 0 && strcmp(t.payload[i], "open") == 0);
        }
    }
    pthread_mutex_unlock(&t.mu);
    CHECK(order == 2);
    CHECK(int_of(raw, "LLEN", state, NULL) == 0 && int_of(raw, "LLEN", seatbox, NULL) == 0);
    CHECK_OK(ipc_worker_stop(w, 5000));
    CHECK(load(&t.freed) == 1);
    ipc_worker_free(w);
    w = NULL;

    /* ipc_send_request_bare: a fleet consumer BRPOPs it from the list itself. */
    CHECK_OK(ipc_send_request_bare(c, out, strlen(out), "unlock", 6));
    CHECK_OK(cmd(raw, &r, "BRPOP", out, "1", NULL));
    CHECK(ipc_reply_len(r) == 2);
    CHECK(reply_text(ipc_reply_element(r, 0), got, sizeof got) && strcmp(got, out) == 0);
    CHECK(reply_text(ipc_reply_element(r, 1), got, sizeof got) && strcmp(got, "unlock") == 0);
    ipc_reply_free(r);
    r = NULL;
    /* No key of redipc's was made for any of it. */
    CHECK_OK(cmd(raw, &r, "KEYS", "ipc:*scooter*", NULL));
    CHECK(ipc_reply_len(r) == 0);
    ipc_reply_free(r);
    CHECK_RC(ipc_send_request_bare(c, "", 0, "x", 1), IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipc_send_request_bare(c, NULL, 0, "x", 1), IPC_ERR_NULL_ARG);

    /* A bare queue is plain: a reliable bare worker is refused, clearly. */
    CHECK_OK(ipc_worker_options_set_reliable(o, true));
    CHECK_RC(ipc_worker_new(c, lists, NULL, 2, o, take_cb, &t, NULL, &w), IPC_ERR_INVALID_ARGUMENT);
    CHECK(last_error_has("bare") && last_error_has("reliable"));
    CHECK(w == NULL);
    ipc_worker_options_free(o);
    pthread_mutex_destroy(&t.mu);
}

/* ---- RPC on the redis-ipc wire --------------------------------------------------------- */

/* A fleet caller played by hand: SUBSCRIBE its reply channel (confirmed), LPUSH the
 * envelope, wait up to `wait` ms for the reply. 1 with the reply in `reply`, 0 if none. */
static int fleet_call(ipc_client *raw, const char *list, const char *method, const char *payload,
                      int64_t deadline, char *reply, size_t cap, long wait) {
    char id[33], channel[256], env[1024];
    struct inbox *in = malloc(sizeof *in);
    ipc_subscription *s;
    int i, ok;
    static const char hex[] = "0123456789abcdef";
    for (i = 0; i < 32; i++) id[i] = hex[rand() % 16];
    id[32] = '\0';
    snprintf(channel, sizeof channel, "%s:reply:%s", list, id);
    if (method)
        snprintf(env, sizeof env,
                 "{\"id\":\"%s\",\"method\":\"%s\",\"reply_channel\":\"%s\",\"deadline\":%" PRId64
                 ",\"payload\":%s}",
                 id, method, channel, deadline, payload);
    else
        snprintf(env, sizeof env,
                 "{\"id\":\"%s\",\"reply_channel\":\"%s\",\"deadline\":%" PRId64 ",\"payload\":%s}",
                 id, channel, deadline, payload);
    inbox_init(in);
    s = listen_on(raw, channel, in);
    CHECK_OK(run(raw, "LPUSH", list, env, NULL));
    WAIT_UNTIL(ok, inbox_count(in) > 0, wait);
    if (ok) {
        pthread_mutex_lock(&in->mu);
        snprintf(reply, cap, "%s", in->payload[0]);
        pthread_mutex_unlock(&in->mu);
    }
    ipc_subscription_free(s);
    pthread_mutex_destroy(&in->mu);
    free(in);
    return ok;
}

struct speed {
    volatile long calls;
    volatile long freed;
    pthread_mutex_t mu;
    char method[64];
    char payloads[64][128];
};

/* {"kmh":N} -> {"speed":2N}; {"fail":true} -> an error; {"slow":MS} sleeps MS first;
 * anything else -> the text "not json" (not JSON: goes back as an error reply). */
static int speed_cb(void *userdata, const ipc_call_info *call, ipc_rpc_reply *reply,
                    ipc_error_out *err) {
    struct speed *sp = userdata;
    char payload[128], out[64];
    const char *p;
    long n = add(&sp->calls, 1);
    size_t len = call->payload_len < sizeof payload - 1 ? call->payload_len : sizeof payload - 1;
    memcpy(payload, call->payload, len);
    payload[len] = '\0';
    pthread_mutex_lock(&sp->mu);
    if (call->method_len < sizeof sp->method) {
        memcpy(sp->method, call->method, call->method_len);
        sp->method[call->method_len] = '\0';
    }
    if (n < 64) snprintf(sp->payloads[n], sizeof sp->payloads[0], "%s", payload);
    pthread_mutex_unlock(&sp->mu);
    if (strstr(payload, "\"fail\":true")) {
        CHECK_OK(ipc_error_set(err, "cannot do that"));
        return 1;
    }
    if ((p = strstr(payload, "\"slow\":")) != NULL) sleep_ms(strtol(p + 7, NULL, 10));
    if ((p = strstr(payload, "\"kmh\":")) != NULL) {
        snprintf(out, sizeof out, "{\"speed\":%ld}", strtol(p + 6, NULL, 10) * 2);
        CHECK_OK(ipc_rpc_reply_set(reply, out, strlen(out)));
        return 0;
    }
    if (strstr(payload, "\"nothing\"")) return 0; /* no reply set: JSON null */
    CHECK_OK(ipc_rpc_reply_set(reply, "not json", 8));
    return 0;
}

static void speed_free(void *userdata) {
    struct speed *sp = userdata;
    add(&sp->freed, 1);
}

static int ping_cb(void *userdata, const ipc_call_info *call, ipc_rpc_reply *reply,
                   ipc_error_out *err) {
    (void)userdata;
    (void)call;
    (void)err;
    return ipc_rpc_reply_set(reply, "\"pong\"", 6) == IPC_OK ? 0 : 1;
}

static int echo_cb(void *userdata, const ipc_call_info *call, ipc_rpc_reply *reply,
                   ipc_error_out *err) {
    add((volatile long *)userdata, 1);
    (void)err;
    return ipc_rpc_reply_set(reply, call->payload, call->payload_len) == IPC_OK ? 0 : 1;
}

static ipc_worker_options *fleet_server_options(size_t concurrency) {
    ipc_worker_options *o = NULL;
    CHECK_OK(ipc_worker_options_new(&o));
    CHECK_OK(ipc_worker_options_set_protocol(o, IPC_PROTOCOL_REDIS_IPC));
    CHECK_OK(ipc_worker_options_set_concurrency(o, concurrency));
    CHECK_OK(ipc_worker_options_set_block_timeout_ms(o, 100));
    CHECK_OK(ipc_worker_options_set_report_cb(o, quiet, NULL, NULL));
    return o;
}

static ipc_call_options *fleet_call_options(uint64_t timeout_ms) {
    ipc_call_options *o = NULL;
    CHECK_OK(ipc_call_options_new(&o));
    CHECK_OK(ipc_call_options_set_protocol(o, IPC_PROTOCOL_REDIS_IPC));
    CHECK_OK(ipc_call_options_set_timeout_ms(o, timeout_ms));
    return o;
}

struct caller {
    ipc_client *c;
    const char *list;
    const char *method;
    char payload[64];
    uint64_t timeout_ms;
    ipc_result rc;
    char reply[256];
    char error[512];
};

static void *caller_main(void *arg) {
    struct caller *k = arg;
    ipc_call_options *o = fleet_call_options(k->timeout_ms);
    char *buf = NULL;
    size_t len = 0;
    k->rc = ipc_call(k->c, k->list, strlen(k->list), k->method, strlen(k->method), k->payload,
                     strlen(k->payload), o, &buf, &len);
    if (k->rc == IPC_OK) {
        snprintf(k->reply, sizeof k->reply, "%.*s", (int)len, buf);
        ipc_buf_free(buf, len);
    } else {
        snprintf(k->error, sizeof k->error, "%s", ipc_last_error_message());
    }
    ipc_call_options_free(o);
    return NULL;
}

static void test_rpc_fleet_calls_c(ipc_client *c, ipc_client *raw) {
    char list[128], rpc[128], reply[512];
    struct speed sp;
    ipc_worker_options *o = fleet_server_options(1);
    ipc_server *srv = NULL;
    ipc_rpc_method methods[2];
    volatile long echoes = 0;
    int64_t deadline = wall_ms() + 5000;
    long before;

    snprintf(list, sizeof list, "%s", name("motion:speed"));
    snprintf(rpc, sizeof rpc, "%s", name("motion:rpc"));
    memset(&sp, 0, sizeof sp);
    pthread_mutex_init(&sp.mu, NULL);

    /* One list, one handler (ipc_serve): the fleet's caller, without a method. */
    CHECK_OK(ipc_serve(c, list, strlen(list), o, speed_cb, &sp, speed_free, &srv));
    CHECK(fleet_call(raw, list, NULL, "{\"kmh\":21}", deadline, reply, sizeof reply, 5000));
    CHECK(strcmp(reply, "{\"ok\":true,\"payload\":{\"speed\":42}}") == 0);
    CHECK(strcmp(sp.method, "") == 0);
    /* With a method: the handler sees it. */
    CHECK(fleet_call(raw, list, "plan", "{\"kmh\":1}", deadline, reply, sizeof reply, 5000));
    CHECK(strcmp(reply, "{\"ok\":true,\"payload\":{\"speed\":2}}") == 0);
    pthread_mutex_lock(&sp.mu);
    CHECK(strcmp(sp.method, "plan") == 0);
    pthread_mutex_unlock(&sp.mu);
    /* The error form. */
    CHECK(fleet_call(raw, list, NULL, "{\"fail\":true}", deadline, reply, sizeof reply, 5000));
    CHECK(strcmp(reply, "{\"ok\":false,\"error\":\"cannot do that\"}") == 0);
    /* No reply set (0 bytes) is JSON null. */
    CHECK(fleet_call(raw, list, NULL, "\"nothing\"", deadline, reply, sizeof reply, 5000));
    CHECK(strcmp(reply, "{\"ok\":true,\"payload\":null}") == 0);
    /* A reply that is not JSON goes back as an error reply. */
    CHECK(fleet_call(raw, list, NULL, "[]", deadline, reply, sizeof reply, 5000));
    {
        const char *want = "{\"ok\":false,\"error\":\"the handler's reply is not JSON";
        CHECK(strncmp(reply, want, strlen(want)) == 0);
    }
    /* An expired deadline: dropped without a reply, the handler never runs. */
    before = load(&sp.calls);
    CHECK(!fleet_call(raw, list, NULL, "{\"kmh\":3}", wall_ms() - 10, reply, sizeof reply, 500));
    CHECK(load(&sp.calls) == before);
    CHECK(int_of(raw, "LLEN", list, NULL) == 0);
    CHECK_OK(ipc_server_stop(srv, 5000));
    CHECK(load(&sp.freed) == 1);
    ipc_server_free(srv);
    srv = NULL;
    CHECK(load(&sp.freed) == 1);

    /* Several methods (ipc_serve_methods): dispatch, and the fleet's unknown-method text. */
    methods[0].name = "ping";
    methods[0].name_len = 4;
    methods[0].cb = ping_cb;
    methods[1].name = "echo";
    methods[1].name_len = 4;
    methods[1].cb = echo_cb;
    CHECK_OK(ipc_serve_methods(c, rpc, strlen(rpc), methods, 2, o, (void *)&echoes, NULL, &srv));
    CHECK(fleet_call(raw, rpc, "ping", "null", deadline, reply, sizeof reply, 5000));
    CHECK(strcmp(reply, "{\"ok\":true,\"payload\":\"pong\"}") == 0);
    CHECK(fleet_call(raw, rpc, "echo", "{\"a\":[1,2]}", deadline, reply, sizeof reply, 5000));
    CHECK(strcmp(reply, "{\"ok\":true,\"payload\":{\"a\":[1,2]}}") == 0);
    CHECK(fleet_call(raw, rpc, "jump", "null", deadline, reply, sizeof reply, 5000));
    CHECK(strcmp(reply, "{\"ok\":false,\"error\":\"unknown method: jump\"}") == 0);
    CHECK(load(&echoes) == 1);
    /* The same server from a C caller on the same wire. */
    {
        struct caller k;
        memset(&k, 0, sizeof k);
        k.c = c;
        k.list = rpc;
        k.method = "jump";
        snprintf(k.payload, sizeof k.payload, "{}");
        k.timeout_ms = 5000;
        caller_main(&k);
        CHECK(k.rc == IPC_ERR_REMOTE && strstr(k.error, "unknown method: jump") != NULL);
        k.method = "ping";
        caller_main(&k);
        CHECK(k.rc == IPC_OK && strcmp(k.reply, "\"pong\"") == 0);
    }
    ipc_server_free(srv);
    srv = NULL;

    /* Bad method tables. */
    methods[1].cb = NULL;
    CHECK_RC(ipc_serve_methods(c, rpc, strlen(rpc), methods, 2, o, NULL, NULL, &srv),
             IPC_ERR_NULL_ARG);
    CHECK(last_error_has("methods[1].cb"));
    methods[1].cb = echo_cb;
    methods[1].name = "\xff";
    methods[1].name_len = 1;
    CHECK_RC(ipc_serve_methods(c, rpc, strlen(rpc), methods, 2, o, NULL, NULL, &srv),
             IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipc_serve_methods(c, rpc, strlen(rpc), NULL, 1, o, NULL, NULL, &srv),
             IPC_ERR_NULL_ARG);
    CHECK(srv == NULL);
    CHECK_RC(ipc_worker_options_set_protocol(o, 7), IPC_ERR_INVALID_ARGUMENT);
    CHECK(last_error_has("ipc_protocol"));
    ipc_worker_options_free(o);
    pthread_mutex_destroy(&sp.mu);
}

/* The envelope a C caller pushed, popped by a fleet server played by hand: checked byte for
 * byte against the fleet's form; the reply channel is written to `channel`. */
static int pop_envelope(ipc_client *raw, const char *list, const char *method,
                        const char *payload, int64_t timeout_ms, char *channel, size_t cap) {
    ipc_reply *r = NULL;
    char env[1024], want[1024], id[64];
    const char *p, *q;
    int64_t deadline, now;
    int ok = 0;
    size_t i;
    if (cmd(raw, &r, "BRPOP", list, "5", NULL) != IPC_OK || ipc_reply_len(r) != 2 ||
        !reply_text(ipc_reply_element(r, 1), env, sizeof env)) {
        ipc_reply_free(r);
        return 0;
    }
    ipc_reply_free(r);
    now = wall_ms();
    /* {"id":"<32 hex>",["method":"<m>",]"reply_channel":"<list>:reply:<id>","deadline":<ms>,
     *  "payload":<json>} */
    if (strncmp(env, "{\"id\":\"", 7) != 0) goto out;
    p = env + 7;
    q = strchr(p, '"');
    if (q == NULL || q - p != 32) goto out;
    memcpy(id, p, 32);
    id[32] = '\0';
    for (i = 0; i < 32; i++)
        if (!strchr("0123456789abcdef", id[i])) goto out;
    p = strstr(env, "\"deadline\":");
    if (p == NULL) goto out;
    deadline = strtoll(p + 11, NULL, 10);
    if (deadline <= now || deadline > now + timeout_ms + 100) goto out;
    snprintf(channel, cap, "%s:reply:%s", list, id);
    if (method)
        snprintf(want, sizeof want,
                 "{\"id\":\"%s\",\"method\":\"%s\",\"reply_channel\":\"%s\",\"deadline\":%" PRId64
                 ",\"payload\":%s}",
                 id, method, channel, deadline, payload);
    else
        snprintf(want, sizeof want,
                 "{\"id\":\"%s\",\"reply_channel\":\"%s\",\"deadline\":%" PRId64 ",\"payload\":%s}",
                 id, channel, deadline, payload);
    ok = strcmp(env, want) == 0;
out:
    if (!ok) fprintf(stderr, "  unexpected envelope: %s\n", env);
    return ok;
}

static void test_rpc_c_calls_fleet(ipc_client *c, ipc_client *raw) {
    char list[128], nobody[128], channel[256];
    struct caller k;
    pthread_t th;
    ipc_call_options *o = fleet_call_options(5000);
    char *buf = NULL;
    size_t len = 0;

    snprintf(list, sizeof list, "%s", name("nav:route"));
    snprintf(nobody, sizeof nobody, "%s", name("nav:nobody"));

    /* With a method: the exact envelope, then the fleet's reply. */
    memset(&k, 0, sizeof k);
    k.c = c;
    k.list = list;
    k.method = "plan";
    snprintf(k.payload, sizeof k.payload, "{\"to\":\"home\"}");
    k.timeout_ms = 5000;
    CHECK(pthread_create(&th, NULL, caller_main, &k) == 0);
    CHECK(pop_envelope(raw, list, "plan", "{\"to\":\"home\"}", 5000, channel, sizeof channel));
    CHECK_OK(run(raw, "PUBLISH", channel, "{\"ok\":true,\"payload\":[1,2,3]}", NULL));
    pthread_join(th, NULL);
    CHECK(k.rc == IPC_OK && strcmp(k.reply, "[1,2,3]") == 0);

    /* Without a method the field is left out; the error form is IPC_ERR_REMOTE. */
    k.method = "";
    snprintf(k.payload, sizeof k.payload, "1");
    CHECK(pthread_create(&th, NULL, caller_main, &k) == 0);
    CHECK(pop_envelope(raw, list, NULL, "1", 5000, channel, sizeof channel));
    CHECK_OK(run(raw, "PUBLISH", channel, "{\"ok\":false,\"error\":\"no route\"}", NULL));
    pthread_join(th, NULL);
    CHECK(k.rc == IPC_ERR_REMOTE);
    CHECK(strlen(k.error) >= 8 && strcmp(k.error + strlen(k.error) - 8, "no route") == 0);

    /* A reply without a payload is JSON null. */
    CHECK(pthread_create(&th, NULL, caller_main, &k) == 0);
    CHECK(pop_envelope(raw, list, NULL, "1", 5000, channel, sizeof channel));
    CHECK_OK(run(raw, "PUBLISH", channel, "{\"ok\":true}", NULL));
    pthread_join(th, NULL);
    CHECK(k.rc == IPC_OK && strcmp(k.reply, "null") == 0);

    /* Nobody answers: a timeout, and the request is taken back. */
    ipc_call_options_free(o);
    o = fleet_call_options(200);
    CHECK_RC(ipc_call(c, nobody, strlen(nobody), "", 0, "1", 1, o, &buf, &len), IPC_ERR_TIMEOUT);
    CHECK(int_of(raw, "LLEN", nobody, NULL) == 0);
    /* Refused before anything is sent: a payload that is not JSON, fail-fast. */
    CHECK_RC(ipc_call(c, nobody, strlen(nobody), "", 0, "not json", 8, o, &buf, &len),
             IPC_ERR_INVALID_ARGUMENT);
    CHECK(last_error_has("not JSON"));
    CHECK_OK(ipc_call_options_set_fail_fast(o, true));
    CHECK_RC(ipc_call(c, nobody, strlen(nobody), "", 0, "1", 1, o, &buf, &len),
             IPC_ERR_INVALID_ARGUMENT);
    CHECK(last_error_has("fail_fast"));
    CHECK(int_of(raw, "LLEN", nobody, NULL) == 0);
    CHECK(buf == NULL && len == 0);
    CHECK_RC(ipc_call_options_set_protocol(o, -1), IPC_ERR_INVALID_ARGUMENT);
    ipc_call_options_free(o);
}

/* 16 C callers at once against a C server on the fleet's wire: each gets its own reply. A
 * call whose deadline passes while it waits behind a slow one gets no reply and is not run. */
static void test_rpc_concurrent_and_deadline(ipc_client *c) {
    enum { N = 16 };
    char list[128];
    struct caller k[N], slow, late;
    pthread_t th[N], ts;
    struct speed sp;
    ipc_worker_options *o = fleet_server_options(4);
    ipc_server *srv = NULL;
    int i, late_ran = 0;

    snprintf(list, sizeof list, "%s", name("motion:many"));
    memset(&sp, 0, sizeof sp);
    pthread_mutex_init(&sp.mu, NULL);
    CHECK_OK(ipc_serve(c, list, strlen(list), o, speed_cb, &sp, NULL, &srv));
    for (i = 0; i < N; i++) {
        memset(&k[i], 0, sizeof k[i]);
        k[i].c = c;
        k[i].list = list;
        k[i].method = "";
        snprintf(k[i].payload, sizeof k[i].payload, "{\"kmh\":%d}", i);
        k[i].timeout_ms = 10000;
        CHECK(pthread_create(&th[i], NULL, caller_main, &k[i]) == 0);
    }
    for (i = 0; i < N; i++) {
        char want[64];
        pthread_join(th[i], NULL);
        snprintf(want, sizeof want, "{\"speed\":%d}", 2 * i);
        CHECK(k[i].rc == IPC_OK && strcmp(k[i].reply, want) == 0);
    }
    CHECK(load(&sp.calls) == N);
    ipc_server_free(srv);
    srv = NULL;
    ipc_worker_options_free(o);

    /* One loop: a slow call holds it while a short one's deadline passes in the list. */
    o = fleet_server_options(1);
    sp.calls = 0;
    CHECK_OK(ipc_serve(c, list, strlen(list), o, speed_cb, &sp, NULL, &srv));
    memset(&slow, 0, sizeof slow);
    slow.c = c;
    slow.list = list;
    slow.method = "";
    snprintf(slow.payload, sizeof slow.payload, "{\"slow\":700,\"kmh\":1}");
    slow.timeout_ms = 5000;
    CHECK(pthread_create(&ts, NULL, caller_main, &slow) == 0);
    sleep_ms(100);
    memset(&late, 0, sizeof late);
    late.c = c;
    late.list = list;
    late.method = "";
    snprintf(late.payload, sizeof late.payload, "{\"late\":1,\"kmh\":5}");
    late.timeout_ms = 150;
    caller_main(&late);
    CHECK(late.rc == IPC_ERR_TIMEOUT);
    pthread_join(ts, NULL);
    CHECK(slow.rc == IPC_OK && strcmp(slow.reply, "{\"speed\":2}") == 0);
    sleep_ms(300);
    pthread_mutex_lock(&sp.mu);
    for (i = 0; i < sp.calls && i < 64; i++)
        if (strstr(sp.payloads[i], "late")) late_ran = 1;
    pthread_mutex_unlock(&sp.mu);
    CHECK(!late_ran);
    CHECK(int_of(c, "LLEN", list, NULL) == 0);
    ipc_server_free(srv);
    ipc_worker_options_free(o);
    pthread_mutex_destroy(&sp.mu);
}

/* ---- hash state ----------------------------------------------------------------------- */

struct seen {
    pthread_mutex_t mu;
    long n;
    char log[64][128];
    volatile long freed;
};

static void seen_push(struct seen *s, const char *text) {
    pthread_mutex_lock(&s->mu);
    if (s->n < 64) snprintf(s->log[s->n], sizeof s->log[0], "%s", text);
    s->n++;
    pthread_mutex_unlock(&s->mu);
}

static void seen_field(void *userdata, const char *field, size_t flen, const char *value,
                       size_t vlen) {
    char text[128];
    if (value)
        snprintf(text, sizeof text, "%.*s=%.*s", (int)flen, field, (int)vlen, value);
    else
        snprintf(text, sizeof text, "%.*s=<gone>", (int)flen, field);
    seen_push(userdata, text);
}

static void seen_event(void *userdata, const char *payload, size_t len) {
    char text[128];
    snprintf(text, sizeof text, "event:%.*s", (int)len, payload);
    seen_push(userdata, text);
}

static void seen_free(void *userdata) {
    struct seen *s = userdata;
    add(&s->freed, 1);
}

static long seen_count(struct seen *s) {
    long n;
    pthread_mutex_lock(&s->mu);
    n = s->n;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static int seen_has(struct seen *s, const char *text) {
    long i;
    int found = 0;
    pthread_mutex_lock(&s->mu);
    for (i = 0; i < s->n && i < 64; i++)
        if (strcmp(s->log[i], text) == 0) found = 1;
    pthread_mutex_unlock(&s->mu);
    return found;
}

static int seen_at(struct seen *s, long i, const char *text) {
    int same;
    pthread_mutex_lock(&s->mu);
    same = i < s->n && i < 64 && strcmp(s->log[i], text) == 0;
    pthread_mutex_unlock(&s->mu);
    return same;
}

static int seen_last(struct seen *s, const char *text) {
    int same;
    pthread_mutex_lock(&s->mu);
    same = s->n > 0 && s->n <= 64 && strcmp(s->log[s->n - 1], text) == 0;
    pthread_mutex_unlock(&s->mu);
    return same;
}

static void seen_init(struct seen *s) {
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
}

static void test_hash_watch_fleet(ipc_client *c, ipc_client *raw) {
    char keycard[128], dedupe[128], battery[128], bchan[128];
    struct seen s;
    ipc_hash_watch_options *o = NULL;
    ipc_hash_watcher *w = NULL;
    int ok, i;

    snprintf(keycard, sizeof keycard, "%s", name("keycard"));
    snprintf(dedupe, sizeof dedupe, "%s", name("dedupe"));
    snprintf(battery, sizeof battery, "%s", name("battery:0"));
    snprintf(bchan, sizeof bchan, "%s", name("battery"));

    /* Every notification, with events. */
    seen_init(&s);
    CHECK_OK(run(raw, "HSET", keycard, "uid", "04ab", NULL));
    CHECK_OK(ipc_hash_watch_options_new(&o));
    CHECK_OK(ipc_hash_watch_options_set_every_notification(o, true));
    CHECK_OK(ipc_hash_watch(c, keycard, strlen(keycard), o, seen_field, seen_event, &s, seen_free,
                            &w));
    WAIT_UNTIL(ok, seen_count(&s) == 1, 5000);
    CHECK(ok && seen_at(&s, 0, "uid=04ab"));
    /* The same card tapped twice: two notifications, two deliveries. */
    for (i = 0; i < 2; i++) {
        CHECK_OK(run(raw, "HSET", keycard, "uid", "04ab", NULL));
        CHECK_OK(run(raw, "PUBLISH", keycard, "uid", NULL));
    }
    WAIT_UNTIL(ok, seen_count(&s) == 3, 5000);
    CHECK(ok && seen_at(&s, 1, "uid=04ab") && seen_at(&s, 2, "uid=04ab"));
    /* An event on the hash's channel. */
    CHECK_OK(run(raw, "PUBLISH", keycard, "seatbox:opened", NULL));
    WAIT_UNTIL(ok, seen_last(&s, "event:seatbox:opened"), 5000);
    CHECK(ok);
    /* The fleet's replace-all: DEL, HSET, PUBLISH replaced: re-read, the deletion reported. */
    CHECK_OK(run(raw, "DEL", keycard, NULL));
    CHECK_OK(run(raw, "HSET", keycard, "owner", "ann", NULL));
    CHECK_OK(run(raw, "PUBLISH", keycard, "replaced", NULL));
    WAIT_UNTIL(ok, seen_has(&s, "owner=ann") && seen_has(&s, "uid=<gone>"), 5000);
    CHECK(ok);
    /* The fleet's clear: DEL, PUBLISH cleared. */
    CHECK_OK(run(raw, "DEL", keycard, NULL));
    CHECK_OK(run(raw, "PUBLISH", keycard, "cleared", NULL));
    WAIT_UNTIL(ok, seen_last(&s, "owner=<gone>"), 5000);
    CHECK(ok);
    CHECK(seen_count(&s) == 7);
    CHECK_OK(ipc_hash_watcher_stop(w, 5000));
    CHECK(load(&s.freed) == 1);
    ipc_hash_watcher_free(w);
    w = NULL;
    CHECK(load(&s.freed) == 1);
    ipc_hash_watch_options_free(o);
    o = NULL;
    pthread_mutex_destroy(&s.mu);

    /* Without every notification a repeated value is delivered once (redipc's default);
     * events still arrive. */
    seen_init(&s);
    CHECK_OK(run(raw, "HSET", dedupe, "a", "1", NULL));
    CHECK_OK(ipc_hash_watch(c, dedupe, strlen(dedupe), NULL, seen_field, seen_event, &s, NULL, &w));
    WAIT_UNTIL(ok, seen_count(&s) == 1, 5000);
    CHECK(ok);
    CHECK_OK(run(raw, "PUBLISH", dedupe, "a", NULL));
    CHECK_OK(run(raw, "PUBLISH", dedupe, "ping", NULL));
    WAIT_UNTIL(ok, seen_count(&s) == 2, 5000);
    CHECK(ok && seen_at(&s, 0, "a=1") && seen_at(&s, 1, "event:ping"));
    ipc_hash_watcher_free(w);
    w = NULL;
    pthread_mutex_destroy(&s.mu);

    /* A custom channel; without an event callback, events are ignored. */
    seen_init(&s);
    CHECK_OK(ipc_hash_watch_options_new(&o));
    CHECK_OK(ipc_hash_watch_options_set_initial_sync(o, false));
    CHECK_OK(ipc_hash_watch_options_set_channel(o, bchan, strlen(bchan)));
    CHECK_OK(ipc_hash_watch(c, battery, strlen(battery), o, seen_field, NULL, &s, NULL, &w));
    CHECK_OK(run(raw, "PUBLISH", bchan, "nothing-here", NULL));
    CHECK_OK(run(raw, "HSET", battery, "charge", "80", NULL));
    CHECK_OK(run(raw, "PUBLISH", bchan, "charge", NULL));
    WAIT_UNTIL(ok, seen_count(&s) == 1, 5000);
    CHECK(ok && seen_at(&s, 0, "charge=80"));
    CHECK_OK(run(raw, "PUBLISH", battery, "charge", NULL)); /* not the channel followed */
    sleep_ms(100);
    CHECK(seen_count(&s) == 1);
    ipc_hash_watcher_free(w);
    w = NULL;
    CHECK_OK(ipc_hash_watch_options_set_channel(o, "", 0));
    CHECK_RC(ipc_hash_watch(c, battery, strlen(battery), o, seen_field, NULL, &s, NULL, &w),
             IPC_ERR_INVALID_ARGUMENT);
    CHECK(w == NULL);
    ipc_hash_watch_options_free(o);
    pthread_mutex_destroy(&s.mu);
}

static void test_hash_writes_fleet(ipc_client *c, ipc_client *raw) {
    char vehicle[128], blinker[128], ts[64];
    struct inbox *in = malloc(sizeof *in);
    ipc_subscription *s1, *s2;
    ipc_hash_write_options *o = NULL;
    ipc_field fs[2];
    int64_t before, stamp;
    bool existed = false;
    long i = 0;

    snprintf(vehicle, sizeof vehicle, "%s", name("vehicle"));
    snprintf(blinker, sizeof blinker, "%s", name("blinker"));
    inbox_init(in);
    s1 = listen_on(raw, vehicle, in);
    s2 = listen_on(raw, blinker, in);

    /* A timestamped write (Unix ms): the field, <field>:timestamp, one announcement. */
    CHECK_OK(ipc_hash_write_options_new(&o));
    CHECK_OK(ipc_hash_write_options_set_timestamp(o, IPC_TIMESTAMP_UNIX_MS));
    before = wall_ms();
    CHECK_OK(ipc_hash_set(c, vehicle, strlen(vehicle), "state", 5, "ready", 5, o));
    CHECK(inbox_is(in, i++, vehicle, "state", 2000));
    CHECK(hget(raw, vehicle, "state:timestamp", ts, sizeof ts));
    stamp = strtoll(ts, NULL, 10);
    CHECK(stamp >= before && stamp <= wall_ms());
    /* RFC 3339, UTC, milliseconds: 2026-12-04T21:40:00.123Z */
    CHECK_OK(ipc_hash_write_options_set_timestamp(o, IPC_TIMESTAMP_RFC3339));
    CHECK_OK(ipc_hash_set(c, vehicle, strlen(vehicle), "state", 5, "parked", 6, o));
    CHECK(inbox_is(in, i++, vehicle, "state", 2000));
    CHECK(hget(raw, vehicle, "state:timestamp", ts, sizeof ts));
    CHECK(strlen(ts) == 24 && ts[4] == '-' && ts[10] == 'T' && ts[19] == '.' && ts[23] == 'Z');
    CHECK_RC(ipc_hash_write_options_set_timestamp(o, 3), IPC_ERR_INVALID_ARGUMENT);
    CHECK(last_error_has("ipc_timestamp_format"));
    ipc_hash_write_options_free(o);
    o = NULL;

    /* Several fields announced with one chosen word, on another channel. */
    CHECK_OK(ipc_hash_write_options_new(&o));
    CHECK_OK(ipc_hash_write_options_set_channel(o, blinker, strlen(blinker)));
    CHECK_OK(ipc_hash_write_options_set_announce(o, "blinker:state", 13));
    fs[0].name = "blinker:left";
    fs[0].name_len = 12;
    fs[0].value = "on";
    fs[0].value_len = 2;
    fs[1].name = "blinker:right";
    fs[1].name_len = 13;
    fs[1].value = "off";
    fs[1].value_len = 3;
    CHECK_OK(ipc_hash_set_many(c, vehicle, strlen(vehicle), fs, 2, o));
    CHECK(inbox_is(in, i++, blinker, "blinker:state", 2000));
    CHECK(hget(raw, vehicle, "blinker:left", ts, sizeof ts) && strcmp(ts, "on") == 0);
    /* A delete announced on the other channel (the announcement word does not apply). */
    CHECK_OK(ipc_hash_delete(c, vehicle, strlen(vehicle), "blinker:right", 13, o, &existed));
    CHECK(existed);
    CHECK(inbox_is(in, i++, blinker, "blinker:right", 2000));
    ipc_hash_write_options_free(o);
    o = NULL;

    /* Replace-all and clear in the fleet's words. */
    CHECK_OK(ipc_hash_write_options_new(&o));
    CHECK_OK(ipc_hash_write_options_set_announce(o, "replaced", 8));
    fs[0].name = "state";
    fs[0].name_len = 5;
    fs[0].value = "off";
    fs[0].value_len = 3;
    CHECK_OK(ipc_hash_replace_all(c, vehicle, strlen(vehicle), fs, 1, o));
    CHECK(inbox_is(in, i++, vehicle, "replaced", 2000));
    CHECK(int_of(raw, "HLEN", vehicle, NULL) == 1);
    ipc_hash_write_options_free(o);
    o = NULL;
    CHECK_OK(ipc_hash_clear(c, vehicle, strlen(vehicle), NULL));
    CHECK(inbox_is(in, i++, vehicle, "cleared", 2000));
    CHECK(int_of(raw, "EXISTS", vehicle, NULL) == 0);
    /* redipc's defaults still talk to redipc watchers: "*" for a replace-all, the field
     * for a set, on the hash's own channel. */
    fs[0].name = "a";
    fs[0].name_len = 1;
    fs[0].value = "1";
    fs[0].value_len = 1;
    CHECK_OK(ipc_hash_replace_all(c, vehicle, strlen(vehicle), fs, 1, NULL));
    CHECK(inbox_is(in, i++, vehicle, "*", 2000));
    CHECK_OK(ipc_hash_set(c, vehicle, strlen(vehicle), "b", 1, "2", 1, NULL));
    CHECK(inbox_is(in, i++, vehicle, "b", 2000));
    CHECK(int_of(raw, "HEXISTS", vehicle, "b:timestamp") == 0);
    sleep_ms(100);
    CHECK(inbox_count(in) == i);

    CHECK_RC(ipc_hash_clear(c, "", 0, NULL), IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipc_hash_clear(NULL, vehicle, strlen(vehicle), NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_hash_write_options_new(NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_hash_write_options_set_channel(NULL, "x", 1), IPC_ERR_NULL_ARG);
    ipc_hash_write_options_free(NULL);
    ipc_subscription_free(s1);
    ipc_subscription_free(s2);
    pthread_mutex_destroy(&in->mu);
    free(in);
}

/* ---- faults --------------------------------------------------------------------------- */

static void test_faults(ipc_client *c, ipc_client *raw) {
    char group[128], set[160], got[128], f[8][64];
    struct inbox *in = malloc(sizeof *in);
    ipc_subscription *s;
    ipc_reply *r = NULL;
    bool is_new = false, was_set = false;
    size_t e, j, mine = 0;

    snprintf(group, sizeof group, "%s", name("battery:0"));
    snprintf(set, sizeof set, "%s:fault", group);
    inbox_init(in);
    s = listen_on(raw, group, in);

    CHECK_OK(ipc_fault_set(c, group, strlen(group), 35, "too hot", 7, &is_new));
    CHECK(is_new);
    CHECK_OK(ipc_fault_set(c, group, strlen(group), 35, "too hot", 7, &is_new));
    CHECK(!is_new); /* idempotent */
    CHECK_OK(cmd(raw, &r, "SMEMBERS", set, NULL));
    CHECK(ipc_reply_len(r) == 1);
    CHECK(reply_text(ipc_reply_element(r, 0), got, sizeof got) && strcmp(got, "35") == 0);
    ipc_reply_free(r);
    r = NULL;
    CHECK(inbox_is(in, 0, group, "fault", 2000));
    CHECK_OK(ipc_fault_clear(c, group, strlen(group), 35, &was_set));
    CHECK(was_set);
    CHECK_OK(ipc_fault_clear(c, group, strlen(group), 35, &was_set));
    CHECK(!was_set);
    CHECK(inbox_is(in, 1, group, "fault", 2000));
    sleep_ms(200);
    CHECK(inbox_count(in) == 2); /* one message each */
    CHECK(int_of(raw, "SCARD", set, NULL) == 0);

    /* The stream: XADD events:faults ... group g code 35 description "too hot", then
     * group g code -35 (entries of other runs' groups are skipped). */
    CHECK_OK(cmd(raw, &r, "XRANGE", "events:faults", "-", "+", NULL));
    for (e = 0; e < ipc_reply_len(r); e++) {
        const ipc_reply *fields = ipc_reply_element(ipc_reply_element(r, e), 1);
        size_t n = ipc_reply_len(fields);
        for (j = 0; j < n && j < 8; j++)
            if (!reply_text(ipc_reply_element(fields, j), f[j], sizeof f[j])) f[j][0] = '\0';
        if (n < 2 || strcmp(f[0], "group") != 0 || strcmp(f[1], group) != 0) continue;
        if (mine == 0)
            CHECK(n == 6 && strcmp(f[2], "code") == 0 && strcmp(f[3], "35") == 0 &&
                  strcmp(f[4], "description") == 0 && strcmp(f[5], "too hot") == 0);
        else
            CHECK(n == 4 && strcmp(f[2], "code") == 0 && strcmp(f[3], "-35") == 0);
        mine++;
    }
    CHECK(mine == 2);
    ipc_reply_free(r);
    r = NULL;
    CHECK(int_of(raw, "XLEN", "events:faults", NULL) >= 2);

    CHECK_RC(ipc_fault_set(c, group, strlen(group), 0, "x", 1, &is_new), IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipc_fault_clear(c, group, strlen(group), -3, &was_set), IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipc_fault_set(c, "", 0, 1, "x", 1, &is_new), IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipc_fault_set(c, group, strlen(group), 1, "x", 1, NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_fault_clear(c, group, strlen(group), 1, NULL), IPC_ERR_NULL_ARG);
    ipc_subscription_free(s);
    pthread_mutex_destroy(&in->mu);
    free(in);
}

/* ---- a server without CONFIG ----------------------------------------------------------- */

static void nop_key(void *userdata, const char *key, size_t len, const char *event) {
    (void)userdata;
    (void)key;
    (void)len;
    (void)event;
}

static void test_no_config(const char *url) {
    ipc_client *c = NULL;
    ipc_key_watch *kw = NULL;
    const char *events[1] = {"set"};
    char got[64];
    ipc_reply *r = NULL;
    bool is_new = false;

    CHECK_OK(ipc_client_new(url, NULL, &c));
    if (c == NULL) return;
    CHECK_OK(run(c, "SET", name("k"), "v", NULL));
    CHECK_OK(cmd(c, &r, "GET", name("k"), NULL));
    CHECK(reply_text(r, got, sizeof got) && strcmp(got, "v") == 0);
    ipc_reply_free(r);
    CHECK_OK(ipc_send_request_bare(c, name("q"), strlen(name("q")), "x", 1));
    CHECK_OK(ipc_fault_set(c, name("g"), strlen(name("g")), 1, "d", 1, &is_new));
    CHECK(is_new);
    CHECK_RC(ipc_watch_keys(c, "k*", 2, events, 1, true, nop_key, NULL, NULL, &kw),
             IPC_ERR_UNSUPPORTED);
    CHECK(last_error_has("CONFIG") && last_error_has("notify-keyspace-events"));
    CHECK(kw == NULL);
    ipc_client_free(c);
}

int main(int argc, char **argv) {
    ipc_client *c = NULL, *raw = NULL;
    if (argc < 2) {
        fprintf(stderr, "usage: %s URL [NOCONFIG_URL]\n", argv[0]);
        return 2;
    }
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    snprintf(prefix, sizeof prefix, "fleet:%ld:%d:", (long)getpid(), rand() % 100000);
    CHECK_OK(ipc_client_new(argv[1], NULL, &c));
    CHECK_OK(ipc_client_new(argv[1], NULL, &raw)); /* the fleet's side */
    if (c == NULL || raw == NULL) return check_summary();

    test_bare_queues(c, raw);
    test_rpc_fleet_calls_c(c, raw);
    test_rpc_c_calls_fleet(c, raw);
    test_rpc_concurrent_and_deadline(c);
    test_hash_watch_fleet(c, raw);
    test_hash_writes_fleet(c, raw);
    test_faults(c, raw);
    if (argc > 2) test_no_config(argv[2]);

    ipc_client_free(raw);
    ipc_client_free(c);
    return check_summary();
}
