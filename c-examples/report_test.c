/* report_test.c: typed reports (ipc_report) reaching C report callbacks, against a running
 * server.
 *
 *   ./report_test URL          URL: redis://127.0.0.1:PORT/0 or unix:///path/redis.sock
 *
 * A report of each kind, with its fields: handler failed (worker, reliable and plain; stream
 * consumer with group and entry id), dead lettered, recovered (the requests of a worker
 * process that died), connection lost and restored (CLIENT KILL TYPE normal), read failed (a
 * hash watcher whose hash turned into a string). Per-handle callbacks (worker, consumer and
 * hash watch options) and the client-wide one (ipc_options_set_report_cb), and the report
 * callbacks' userdata_free, exactly once.
 *
 * Prints "N passed, M failed" last and exits non-zero on any failure.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

static char prefix[64];
static const char *self_path;

/* ---- recording reports ---------------------------------------------------------------- */

#define MAX_REPORTS 256
#define TEXT 256

struct rec {
    ipc_report_kind kind;
    ipc_report_source source;
    char name[TEXT], group[TEXT], item[TEXT], error_message[TEXT], during[TEXT], text[TEXT];
    int has_group, has_item, has_during;
    uint32_t attempt, max_attempts;
    uint64_t count;
    ipc_result error;
};

struct reports {
    pthread_mutex_t mu;
    struct rec r[MAX_REPORTS];
    int n;
    volatile long freed;
};

static void reports_init(struct reports *rs) {
    memset(rs, 0, sizeof *rs);
    pthread_mutex_init(&rs->mu, NULL);
}

static void copy(char *dst, const char *src, size_t len) {
    if (len >= TEXT) len = TEXT - 1;
    if (src != NULL && len > 0) memcpy(dst, src, len);
    dst[len] = '\0';
}

static void record(void *userdata, const ipc_report *r) {
    struct reports *rs = userdata;
    struct rec *x;
    pthread_mutex_lock(&rs->mu);
    if (rs->n < MAX_REPORTS) {
        x = &rs->r[rs->n++];
        x->kind = r->kind;
        x->source = r->source;
        copy(x->name, r->name, r->name_len);
        x->has_group = r->group != NULL;
        copy(x->group, r->group, r->group_len);
        x->has_item = r->item != NULL;
        if (r->item != NULL) copy(x->item, r->item, strlen(r->item));
        x->has_during = r->during != NULL;
        if (r->during != NULL) copy(x->during, r->during, strlen(r->during));
        x->attempt = r->attempt;
        x->max_attempts = r->max_attempts;
        x->count = r->count;
        x->error = r->error;
        copy(x->error_message, r->error_message, strlen(r->error_message));
        copy(x->text, r->text, strlen(r->text));
    }
    pthread_mutex_unlock(&rs->mu);
}

static void reports_free(void *userdata) {
    struct reports *rs = userdata;
    add(&rs->freed, 1);
}

/* The callback's userdata_free ran exactly once: it runs when nothing can report any more,
 * which may be shortly after the last handle was freed (on a library thread). */
#define released(rs)                                   \
    do {                                               \
        int released_ok_;                              \
        WAIT_UNTIL(released_ok_, load(&(rs)->freed) >= 1, 5000); \
        CHECK(released_ok_);                           \
        sleep_ms(20);                                  \
        CHECK(load(&(rs)->freed) == 1);                \
    } while (0)

/* The first recorded report of `kind` (copied into *out); whether there is one. */
static int find(struct reports *rs, ipc_report_kind kind, struct rec *out) {
    int i, found = 0;
    pthread_mutex_lock(&rs->mu);
    for (i = 0; i < rs->n && !found; i++) {
        if (rs->r[i].kind == kind) {
            *out = rs->r[i];
            found = 1;
        }
    }
    pthread_mutex_unlock(&rs->mu);
    return found;
}

static int count_of(struct reports *rs, ipc_report_kind kind) {
    int i, n = 0;
    pthread_mutex_lock(&rs->mu);
    for (i = 0; i < rs->n; i++) n += rs->r[i].kind == kind;
    pthread_mutex_unlock(&rs->mu);
    return n;
}

/* Wait up to `ms` for a report of `kind`; whether it came (copied into *out). */
static int wait_report(struct reports *rs, ipc_report_kind kind, struct rec *out, double ms) {
    int ok;
    WAIT_UNTIL(ok, find(rs, kind, out), ms);
    return ok;
}

static const char *name(const char *n) {
    static char bufs[16][128];
    static int next = 0;
    char *b = bufs[next++ % 16];
    snprintf(b, sizeof bufs[0], "%s%s", prefix, n);
    return b;
}

static ipc_result cmd(ipc_client *c, const char *a0, const char *a1, const char *a2,
                      const char *a3) {
    const char *args[4];
    size_t n = 0;
    ipc_reply *r = NULL;
    ipc_result rc;
    args[n++] = a0;
    if (a1) args[n++] = a1;
    if (a2) args[n++] = a2;
    if (a3) args[n++] = a3;
    rc = ipc_command(c, args, NULL, n, &r);
    ipc_reply_free(r);
    return rc;
}

/* ---- handlers ------------------------------------------------------------------------- */

static int failing_request(void *userdata, const ipc_request *req, ipc_error_out *err) {
    (void)userdata;
    (void)req;
    return ipc_error_set(err, "nope") == IPC_OK ? 1 : 2;
}

static int ok_request(void *userdata, const ipc_request *req, ipc_error_out *err) {
    (void)req;
    (void)err;
    add(userdata, 1);
    return 0;
}

static int failing_entry(void *userdata, const ipc_entry *e, ipc_error_out *err) {
    (void)userdata;
    (void)e;
    return ipc_error_set(err, "bad entry") == IPC_OK ? 1 : 2;
}

static void nop_field(void *userdata, const char *f, size_t fl, const char *v, size_t vl) {
    (void)f;
    (void)fl;
    (void)v;
    (void)vl;
    add(userdata, 1);
}

/* ---- tests ---------------------------------------------------------------------------- */

/* A reliable worker's failures: HANDLER_FAILED (attempt 1 of 2), then DEAD_LETTERED. */
static void test_handler_failed_and_dead_lettered(ipc_client *c) {
    const char *q = name("reliable");
    size_t ql = strlen(q);
    struct reports rs;
    ipc_worker_options *o = NULL;
    ipc_worker *w = NULL;
    struct rec r;
    reports_init(&rs);
    CHECK_OK(ipc_worker_options_new(&o));
    CHECK_OK(ipc_worker_options_set_reliable(o, true));
    CHECK_OK(ipc_worker_options_set_max_attempts(o, 2));
    CHECK_OK(ipc_worker_options_set_block_timeout_ms(o, 100));
    CHECK_OK(ipc_worker_options_set_report_cb(o, record, &rs, reports_free));
    CHECK_OK(ipc_worker_new(c, &q, &ql, 1, o, failing_request, NULL, NULL, &w));
    ipc_worker_options_free(o);
    CHECK(load(&rs.freed) == 0); /* the worker still reports there */
    CHECK_OK(ipc_send_request(c, q, ql, "job", 3));

    CHECK(wait_report(&rs, IPC_REPORT_HANDLER_FAILED, &r, 10000));
    CHECK(r.source == IPC_SOURCE_WORKER && strcmp(r.name, q) == 0);
    CHECK(r.error == IPC_ERR_HANDLER && strstr(r.error_message, "nope") != NULL);
    CHECK(r.attempt == 1 && r.max_attempts == 2);
    CHECK(!r.has_group && !r.has_during);
    CHECK(strstr(r.text, "handler failed on queue") != NULL && strstr(r.text, "nope") != NULL);

    /* The last attempt's failure is the dead-letter report, with its error. */
    CHECK(wait_report(&rs, IPC_REPORT_DEAD_LETTERED, &r, 10000));
    CHECK(r.source == IPC_SOURCE_WORKER && strcmp(r.name, q) == 0);
    CHECK(r.count == 1 && r.attempt == 2 && r.max_attempts == 2);
    CHECK(r.error == IPC_ERR_HANDLER && strstr(r.error_message, "nope") != NULL);
    CHECK(count_of(&rs, IPC_REPORT_HANDLER_FAILED) == 1);

    CHECK_OK(ipc_worker_stop(w, 5000));
    ipc_worker_free(w);
    released(&rs); /* options and worker gone: once */
}

/* A plain worker's failure goes to the client-wide callback (the worker has none). */
static void test_client_wide(const char *url) {
    const char *q = name("plain");
    size_t ql = strlen(q);
    struct reports rs;
    ipc_options *opts = NULL;
    ipc_client *c = NULL;
    ipc_worker *w = NULL;
    struct rec r;
    reports_init(&rs);
    CHECK_OK(ipc_options_new(&opts));
    CHECK_OK(ipc_options_set_report_cb(opts, record, &rs, reports_free));
    CHECK_OK(ipc_client_new(url, opts, &c));
    ipc_options_free(opts);
    if (c == NULL) return;
    CHECK(load(&rs.freed) == 0);
    CHECK_OK(ipc_worker_new(c, &q, &ql, 1, NULL, failing_request, NULL, NULL, &w));
    CHECK_OK(ipc_send_request(c, q, ql, "x", 1));
    CHECK(wait_report(&rs, IPC_REPORT_HANDLER_FAILED, &r, 10000));
    CHECK(r.source == IPC_SOURCE_WORKER && r.max_attempts == 0);
    CHECK(strstr(r.text, "not retried") != NULL);
    ipc_worker_free(w);
    CHECK(load(&rs.freed) == 0); /* the client can still report */
    ipc_client_free(c);
    released(&rs);
}

/* A stream consumer's failure names the group and the entry. */
static void test_stream_consumer(ipc_client *c) {
    const char *s = name("stream");
    struct reports rs;
    ipc_consumer_options *o = NULL;
    ipc_stream_consumer *k = NULL;
    ipc_field f;
    char id[IPC_STREAM_ID_MAX];
    struct rec r;
    reports_init(&rs);
    f.name = "a";
    f.name_len = 1;
    f.value = "1";
    f.value_len = 1;
    CHECK_OK(ipc_stream_publish(c, s, strlen(s), &f, 1, -1, id, sizeof id));
    CHECK_OK(ipc_consumer_options_new(&o));
    CHECK_OK(ipc_consumer_options_set_block_ms(o, 100));
    CHECK_OK(ipc_consumer_options_set_report_cb(o, record, &rs, reports_free));
    CHECK_OK(ipc_stream_consume(c, s, strlen(s), "grp", 3, "me", 2, o, failing_entry, NULL, NULL,
                                &k));
    ipc_consumer_options_free(o);
    CHECK(wait_report(&rs, IPC_REPORT_HANDLER_FAILED, &r, 10000));
    CHECK(r.source == IPC_SOURCE_STREAM_CONSUMER && strcmp(r.name, s) == 0);
    CHECK(r.has_group && strcmp(r.group, "grp") == 0);
    CHECK(r.has_item && strcmp(r.item, id) == 0);
    CHECK(r.attempt == 1 && r.error == IPC_ERR_HANDLER);
    CHECK(strstr(r.error_message, "bad entry") != NULL);
    ipc_stream_consumer_free(k);
    released(&rs);
}

/* The child: a reliable worker whose handler kills the process while it holds a request. */
static int die_in_handler(void *userdata, const ipc_request *req, ipc_error_out *err) {
    (void)userdata;
    (void)req;
    (void)err;
    _exit(3);
}

static int die_worker_main(const char *url, const char *q) {
    ipc_client *c = NULL;
    ipc_worker_options *o = NULL;
    ipc_worker *w = NULL;
    size_t ql = strlen(q);
    if (ipc_client_new(url, NULL, &c) != IPC_OK) return 1;
    if (ipc_worker_options_new(&o) != IPC_OK || ipc_worker_options_set_reliable(o, true) ||
        ipc_worker_options_set_lease_ms(o, 200) || ipc_worker_options_set_block_timeout_ms(o, 100))
        return 1;
    if (ipc_worker_new(c, &q, &ql, 1, o, die_in_handler, NULL, NULL, &w) != IPC_OK) return 1;
    sleep_ms(20000); /* the handler exits long before */
    return 2;
}

/* The requests of a worker process that died are put back by a live worker: RECOVERED. */
static void test_recovered(ipc_client *c, const char *url) {
    const char *q = name("recover");
    size_t ql = strlen(q);
    struct reports rs;
    ipc_worker_options *o = NULL;
    ipc_worker *w = NULL;
    volatile long handled = 0;
    struct rec r;
    pid_t pid;
    int status = 0, ok;
    reports_init(&rs);
    CHECK_OK(ipc_send_request(c, q, ql, "job", 3));
    pid = fork();
    if (pid == 0) {
        char *args[] = {(char *)self_path, "--die-worker", (char *)url, (char *)q, NULL};
        execv(self_path, args);
        _exit(127);
    }
    CHECK(pid > 0);
    if (pid <= 0) return;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 3); /* died holding the request */

    CHECK_OK(ipc_worker_options_new(&o));
    CHECK_OK(ipc_worker_options_set_reliable(o, true));
    CHECK_OK(ipc_worker_options_set_lease_ms(o, 200));
    CHECK_OK(ipc_worker_options_set_block_timeout_ms(o, 100));
    CHECK_OK(ipc_worker_options_set_report_cb(o, record, &rs, reports_free));
    CHECK_OK(ipc_worker_new(c, &q, &ql, 1, o, ok_request, (void *)&handled, NULL, &w));
    ipc_worker_options_free(o);
    CHECK(wait_report(&rs, IPC_REPORT_RECOVERED, &r, 10000));
    CHECK(r.source == IPC_SOURCE_WORKER && strcmp(r.name, q) == 0 && r.count == 1);
    CHECK(strstr(r.text, "dead worker") != NULL);
    WAIT_UNTIL(ok, load(&handled) == 1, 10000); /* and handled here */
    CHECK(ok);
    ipc_worker_free(w);
    released(&rs);
}

/* CLIENT KILL TYPE normal breaks a worker's connection: CONNECTION_LOST (what it was doing
 * and why), then CONNECTION_RESTORED. */
static void test_connection_lost_and_restored(ipc_client *c, const char *url) {
    const char *q = name("kill");
    size_t ql = strlen(q);
    struct reports rs;
    ipc_options *opts = NULL;
    ipc_client *wc = NULL;
    ipc_worker_options *o = NULL;
    ipc_worker *w = NULL;
    volatile long handled = 0;
    struct rec r;
    int ok;
    reports_init(&rs);
    /* The worker's client reports to `rs`; its own options have no callback. */
    CHECK_OK(ipc_options_new(&opts));
    CHECK_OK(ipc_options_set_report_cb(opts, record, &rs, reports_free));
    CHECK_OK(ipc_client_new(url, opts, &wc));
    ipc_options_free(opts);
    if (wc == NULL) return;
    CHECK_OK(ipc_worker_options_new(&o));
    CHECK_OK(ipc_worker_options_set_block_timeout_ms(o, 100));
    CHECK_OK(ipc_worker_new(wc, &q, &ql, 1, o, ok_request, (void *)&handled, NULL, &w));
    ipc_worker_options_free(o);
    sleep_ms(200); /* the loop sits in its blocking pop */
    CHECK_OK(cmd(c, "CLIENT", "KILL", "TYPE", "normal"));
    CHECK(wait_report(&rs, IPC_REPORT_CONNECTION_LOST, &r, 10000));
    CHECK(r.source == IPC_SOURCE_WORKER && strcmp(r.name, q) == 0);
    CHECK(r.has_during && strlen(r.during) > 0);
    CHECK(r.error != IPC_OK && strlen(r.error_message) > 0);
    CHECK(strstr(r.text, "failed; retrying") != NULL);
    CHECK(wait_report(&rs, IPC_REPORT_CONNECTION_RESTORED, &r, 10000));
    CHECK(r.source == IPC_SOURCE_WORKER && r.error == IPC_OK && strcmp(r.error_message, "") == 0);
    /* and it works again */
    CHECK_OK(ipc_send_request(wc, q, ql, "after", 5));
    WAIT_UNTIL(ok, load(&handled) == 1, 10000);
    CHECK(ok);
    ipc_worker_free(w);
    ipc_client_free(wc);
    released(&rs);
}

/* A hash watcher that cannot read its hash: READ_FAILED, and it reads again when it can. */
static void test_read_failed(ipc_client *c) {
    const char *h = name("hash");
    size_t hl = strlen(h);
    struct reports rs;
    ipc_hash_watch_options *o = NULL;
    ipc_hash_watcher *w = NULL;
    volatile long calls = 0;
    int64_t n;
    struct rec r;
    int ok;
    reports_init(&rs);
    CHECK_OK(ipc_hash_set(c, h, hl, "f", 1, "1", 1, NULL));
    CHECK_OK(ipc_hash_watch_options_new(&o));
    CHECK_OK(ipc_hash_watch_options_set_report_cb(o, record, &rs, reports_free));
    CHECK_OK(ipc_hash_watch(c, h, hl, o, nop_field, NULL, (void *)&calls, NULL, &w));
    ipc_hash_watch_options_free(o);
    WAIT_UNTIL(ok, load(&calls) == 1, 5000); /* the initial sync */
    CHECK(ok);
    /* The hash becomes a string, and a full re-read is announced. */
    CHECK_OK(cmd(c, "DEL", h, NULL, NULL));
    CHECK_OK(cmd(c, "SET", h, "not a hash", NULL));
    CHECK_OK(ipc_publish(c, h, hl, "*", 1, &n));
    CHECK(wait_report(&rs, IPC_REPORT_READ_FAILED, &r, 10000));
    CHECK(r.source == IPC_SOURCE_HASH_WATCHER && strcmp(r.name, h) == 0);
    CHECK(r.error == IPC_ERR_SERVER && strstr(r.error_message, "WRONGTYPE") != NULL);
    CHECK(strstr(r.text, "read again") != NULL);
    /* Repaired: the retry reads it whole and delivers the change. */
    CHECK_OK(cmd(c, "DEL", h, NULL, NULL));
    CHECK_OK(ipc_hash_set(c, h, hl, "f", 1, "2", 1, NULL));
    WAIT_UNTIL(ok, load(&calls) >= 2, 10000);
    CHECK(ok);
    ipc_hash_watcher_free(w);
    released(&rs);
}

/* NULL options handles are refused; a NULL callback restores the default. */
static void test_setters(void) {
    ipc_options *o = NULL;
    CHECK_RC(ipc_options_set_report_cb(NULL, record, NULL, NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_worker_options_set_report_cb(NULL, record, NULL, NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_consumer_options_set_report_cb(NULL, record, NULL, NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_hash_watch_options_set_report_cb(NULL, record, NULL, NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_subscribe_options_set_report_cb(NULL, record, NULL, NULL), IPC_ERR_NULL_ARG);
    CHECK_OK(ipc_options_new(&o));
    {
        struct reports rs;
        reports_init(&rs);
        CHECK_OK(ipc_options_set_report_cb(o, record, &rs, reports_free));
        /* replaced: the first callback's userdata is released at once */
        CHECK_OK(ipc_options_set_report_cb(o, NULL, &rs, reports_free));
        CHECK(load(&rs.freed) == 1);
    }
    ipc_options_free(o);
}

int main(int argc, char **argv) {
    const char *url;
    ipc_client *c = NULL;
    self_path = argv[0];
    if (argc == 4 && strcmp(argv[1], "--die-worker") == 0) return die_worker_main(argv[2], argv[3]);
    if (argc < 2) {
        fprintf(stderr, "usage: %s URL\n", argv[0]);
        return 2;
    }
    url = argv[1];
    snprintf(prefix, sizeof prefix, "report_test:%ld:", (long)getpid());
    CHECK_OK(ipc_client_new(url, NULL, &c));
    if (c == NULL) return check_summary();
    test_setters();
    test_handler_failed_and_dead_lettered(c);
    test_client_wide(url);
    test_stream_consumer(c);
    test_recovered(c, url);
    test_read_failed(c);
    test_connection_lost_and_restored(c, url);
    ipc_client_free(c);
    return check_summary();
}
