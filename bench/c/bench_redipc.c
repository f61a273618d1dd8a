/*
 * redipc C API side of the benchmark (links libredipc). Same command line and workloads as
 * bench_hiredis.c (see common.h). Workloads that need newer parts of the C API live in
 * their own files and are compiled in when the header has them (bench/c/build.sh); without
 * them the workload prints a "skipped" line saying which function is missing.
 *
 * BENCH_DIRECT=N in the environment sets the client's direct connections (0: every call
 * takes the auto-pipelined connection; bench/device compares the two).
 */
#include "bench_redipc.h"

#include <pthread.h>

ipc_client *redipc_connect(const bench_args *a) {
    char url[512];
    if (a->sock) snprintf(url, sizeof url, "unix://%s", a->sock);
    else snprintf(url, sizeof url, "%s://%s:%d/0", a->tls_ca ? "rediss" : "redis", a->host, a->port);
    ipc_options *o = NULL;
    redipc_check(ipc_options_new(&o), "ipc_options_new");
    redipc_check(ipc_options_set_response_timeout_ms(o, (uint64_t)(a->timeout_s * 1000)), "options");
    if (a->tls_ca) redipc_check(ipc_options_set_tls_ca_file(o, a->tls_ca), "ipc_options_set_tls_ca_file");
    const char *direct = getenv("BENCH_DIRECT");
    if (direct) redipc_check(ipc_options_set_direct_connections(o, (uint32_t)atoi(direct)), "direct");
    ipc_client *c = NULL;
    redipc_check(ipc_client_new(url, o, &c), "ipc_client_new");
    ipc_options_free(o);
    return c;
}

static bench_result run_get(ipc_client *c, const bench_spec *sp, int timed) {
    char key[128];
    redipc_key(key, sizeof key, sp, "k");
    size_t klen = strlen(key);
    char *val = bench_value(sp->size);
    redipc_check(ipc_set(c, key, klen, val, sp->size, 0), "SET");
    double *lat = timed ? bench_xmalloc(sizeof(double) * (size_t)sp->n) : NULL;
    double c0 = bench_cpu(), t0 = bench_now();
    for (long i = 0; i < sp->n; i++) {
        double s = timed ? bench_now() : 0;
        char *buf = NULL;
        size_t len = 0;
        bool found = false;
        redipc_check(ipc_get(c, key, klen, &buf, &len, &found), "GET");
        if (!found || len != sp->size) bench_die("GET: bad reply");
        ipc_buf_free(buf, len);
        if (timed) lat[i] = (bench_now() - s) * 1e6;
    }
    bench_result res = {sp->n, bench_now() - t0, bench_cpu() - c0, -1, -1, NULL};
    if (timed) {
        res.p50_us = bench_quantile(lat, sp->n, 0.50);
        res.p99_us = bench_quantile(lat, sp->n, 0.99);
        free(lat);
    }
    free(val);
    return res;
}

struct mt_arg {
    ipc_client *c;
    const char *key;
    size_t klen, size;
    long n;
    pthread_barrier_t *go;
};

static void *mt_get(void *p) {
    struct mt_arg *m = p;
    pthread_barrier_wait(m->go);
    for (long i = 0; i < m->n; i++) {
        char *buf = NULL;
        size_t len = 0;
        bool found = false;
        redipc_check(ipc_get(m->c, m->key, m->klen, &buf, &len, &found), "GET");
        if (!found || len != m->size) bench_die("GET: bad reply");
        ipc_buf_free(buf, len);
    }
    return NULL;
}

/* DEPTH threads share the client, N / DEPTH GETs each, all started at once. */
static bench_result run_threads(ipc_client *c, const bench_spec *sp) {
    char key[128];
    redipc_key(key, sizeof key, sp, "k");
    char *val = bench_value(sp->size);
    redipc_check(ipc_set(c, key, strlen(key), val, sp->size, 0), "SET");
    long t = sp->depth > 0 ? sp->depth : 1;
    pthread_t *th = bench_xmalloc(sizeof(pthread_t) * (size_t)t);
    struct mt_arg *args = bench_xmalloc(sizeof(struct mt_arg) * (size_t)t);
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, (unsigned)t + 1);
    for (long i = 0; i < t; i++) {
        args[i] = (struct mt_arg){c, key, strlen(key), sp->size, sp->n / t, &go};
        if (pthread_create(&th[i], NULL, mt_get, &args[i]) != 0) bench_die("pthread_create");
    }
    pthread_barrier_wait(&go);
    double c0 = bench_cpu(), t0 = bench_now();
    for (long i = 0; i < t; i++) pthread_join(th[i], NULL);
    bench_result res = {(sp->n / t) * t, bench_now() - t0, bench_cpu() - c0, -1, -1, NULL};
    pthread_barrier_destroy(&go);
    free(th);
    free(args);
    free(val);
    return res;
}

static bench_result run_set(ipc_client *c, const bench_spec *sp) {
    char key[128];
    redipc_key(key, sizeof key, sp, "k");
    size_t klen = strlen(key);
    char *val = bench_value(sp->size);
    double c0 = bench_cpu(), t0 = bench_now();
    for (long i = 0; i < sp->n; i++) redipc_check(ipc_set(c, key, klen, val, sp->size, 0), "SET");
    bench_result res = {sp->n, bench_now() - t0, bench_cpu() - c0, -1, -1, NULL};
    free(val);
    return res;
}

static bench_result run_hgetall(ipc_client *c, const bench_spec *sp) {
    char key[128];
    redipc_key(key, sizeof key, sp, "h");
    size_t klen = strlen(key);
    long fields = sp->depth > 0 ? sp->depth : 100;
    char *val = bench_value(sp->size);
    int64_t n = 0;
    redipc_check(ipc_del(c, key, klen, &n), "DEL");
    for (long i = 0; i < fields; i++) {
        char f[32];
        snprintf(f, sizeof f, "f%ld", i);
        redipc_check(ipc_hset(c, key, klen, f, strlen(f), val, sp->size, &n), "HSET");
    }
    const char *argv[2] = {"HGETALL", key};
    size_t lens[2] = {7, klen};
    size_t total = 0;
    double c0 = bench_cpu(), t0 = bench_now();
    for (long i = 0; i < sp->n; i++) {
        ipc_reply *r = NULL;
        redipc_check(ipc_command(c, argv, lens, 2, &r), "HGETALL");
        size_t m = ipc_reply_len(r);
        if (m != (size_t)(2 * fields)) bench_die("HGETALL: bad reply (%zu elements)", m);
        for (size_t e = 0; e < m; e++) {
            const char *p = NULL;
            size_t l = 0;
            redipc_check(ipc_reply_string(ipc_reply_element(r, e), &p, &l), "HGETALL element");
            total += l;
        }
        ipc_reply_free(r);
    }
    bench_result res = {sp->n, bench_now() - t0, bench_cpu() - c0, -1, -1, NULL};
    if (total == 0) bench_die("HGETALL: empty");
    free(val);
    return res;
}

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long want, got;
    size_t size;
    int bad;
    double t0, c0, t1, c1;
} sub_state;

static void on_message(void *userdata, const ipc_message *msg) {
    sub_state *s = userdata;
    if (msg->kind != IPC_EVENT_MESSAGE) return;
    if (msg->payload_len != s->size) s->bad = 1;
    long got = ++s->got;
    if (got == 1) {
        s->t0 = bench_now();
        s->c0 = bench_cpu();
    } else if (got == s->want) {
        double t1 = bench_now(), c1 = bench_cpu();
        pthread_mutex_lock(&s->mu);
        s->t1 = t1;
        s->c1 = c1;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
    }
}

/* Subscriber with the callback path: the library's dispatcher thread runs on_message. */
static bench_result run_sub(ipc_client *c, const bench_args *a, const bench_spec *sp) {
    static sub_state s; /* read by the callback thread until the subscription is freed */
    memset(&s, 0, sizeof s);
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.cv, NULL);
    s.want = sp->n;
    s.size = sp->size;
    ipc_subscribe_options *so = NULL;
    redipc_check(ipc_subscribe_options_new(&so), "ipc_subscribe_options_new");
    const char *names[1] = {BENCH_CHANNEL};
    size_t lens[1] = {strlen(BENCH_CHANNEL)};
    ipc_subscription *sub = NULL;
    redipc_check(ipc_subscribe(c, IPC_SUB_CHANNEL, names, lens, 1, so, on_message, &s, NULL, &sub),
                 "ipc_subscribe");
    ipc_subscribe_options_free(so);
    fprintf(stderr, "READY\n"); /* the harness pauses us, publishes, and resumes us */
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += (time_t)a->timeout_s;
    pthread_mutex_lock(&s.mu);
    int rc = 0;
    while (s.t1 == 0 && rc == 0) rc = pthread_cond_timedwait(&s.cv, &s.mu, &dl);
    pthread_mutex_unlock(&s.mu);
    ipc_subscription_free(sub); /* no callback runs after this */
    const char *note = NULL;
    if (s.t1 == 0) {
        note = "timed out before every message arrived";
        s.t1 = bench_now();
        s.c1 = bench_cpu();
    }
    if (s.bad) bench_die("sub: bad payload");
    bench_result res = {s.got > 1 ? s.got - 1 : 0, s.t1 - s.t0, s.c1 - s.c0, -1, -1, note};
    return res;
}

/* Stand-in publisher (the harness prefers bench_hiredis): N sequential ipc_publish()es. */
static bench_result run_pub(ipc_client *c, const bench_spec *sp) {
    char *val = bench_value(sp->size);
    double c0 = bench_cpu(), t0 = bench_now();
    for (long i = 0; i < sp->n; i++) {
        int64_t receivers = 0;
        redipc_check(ipc_publish(c, BENCH_CHANNEL, strlen(BENCH_CHANNEL), val, sp->size, &receivers),
                     "PUBLISH");
    }
    bench_result res = {sp->n, bench_now() - t0, bench_cpu() - c0, -1, -1, NULL};
    free(val);
    return res;
}

static void skipped(const bench_spec *sp, const char *why) {
    printf("{\"impl\": \"redipc-c\", \"label\": \"%s\", \"workload\": \"%s\", \"skipped\": \"%s\"}\n", sp->label,
           sp->workload, why);
    fflush(stdout);
}

int main(int argc, char **argv) {
    bench_args a;
    bench_parse_args(argc, argv, &a);
    ipc_client *c = redipc_connect(&a);
    for (int i = 0; i < a.nspecs; i++) {
        const bench_spec *sp = &a.specs[i];
        const char *w = sp->workload;
        bench_result r;
        if (!strcmp(w, "get")) r = run_get(c, sp, 0);
        else if (!strcmp(w, "rtt")) r = run_get(c, sp, 1);
        else if (!strcmp(w, "set")) r = run_set(c, sp);
        else if (!strcmp(w, "threads")) r = run_threads(c, sp);
        else if (!strcmp(w, "hgetall")) r = run_hgetall(c, sp);
        else if (!strcmp(w, "sub")) r = run_sub(c, &a, sp);
        else if (!strcmp(w, "pub")) r = run_pub(c, sp);
        else if (!strcmp(w, "pipe")) {
#ifdef HAVE_IPC_PIPELINE
            r = redipc_run_pipe(c, &a, sp);
#else
            skipped(sp, "the C API has no pipelines yet (ipc_batch_*)");
            continue;
#endif
        } else if (!strcmp(w, "multi")) {
#ifdef HAVE_IPC_TX
            r = redipc_run_multi(c, &a, sp);
#else
            skipped(sp, "the C API has no transactions yet (ipc_batch_*)");
            continue;
#endif
        } else if (!strcmp(w, "queue")) {
#ifdef HAVE_IPC_QUEUE
            r = redipc_run_queue(c, &a, sp);
#else
            skipped(sp, "the C API has no queues yet (ipc_send_request, ipc_worker_*)");
            continue;
#endif
        } else if (!strcmp(w, "rpc") || !strcmp(w, "serve")) {
#ifdef HAVE_IPC_RPC
            r = !strcmp(w, "rpc") ? redipc_run_rpc(c, &a, sp) : redipc_run_serve(c, &a, sp);
#else
            skipped(sp, "the C API has no RPC yet (ipc_call, ipc_serve)");
            continue;
#endif
        } else {
            skipped(sp, "unknown workload");
            continue;
        }
        bench_emit("redipc-c", &a, sp, &r);
    }
    ipc_client_free(c);
    return 0;
}
