/* redipc C: request queue drained by one plain worker (ipc_worker_new; DEPTH > 0 sets its
 * prefetch, else the default: up to 16 requests per round trip when the queue is busy). The queue is filled
 * first (untimed) with LPUSH of 1000 values per command into its pending list. */
#include "bench_redipc.h"

#include <pthread.h>

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long want, got;
    size_t size;
    int bad, done;
    double t0, c0, t1, c1;
} queue_state;

static int on_request(void *userdata, const ipc_request *req, ipc_error_out *err) {
    (void)err;
    queue_state *s = userdata;
    if (req->payload_len != s->size) s->bad = 1;
    long got = ++s->got; /* one loop (concurrency 1): calls never overlap */
    if (got == 1) {
        s->t0 = bench_now();
        s->c0 = bench_cpu();
    } else if (got == s->want) {
        double t1 = bench_now(), c1 = bench_cpu();
        pthread_mutex_lock(&s->mu);
        s->t1 = t1;
        s->c1 = c1;
        s->done = 1;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
    }
    return 0;
}

bench_result redipc_run_queue(ipc_client *c, const bench_args *a, const bench_spec *sp) {
    char name[128], pending[192];
    snprintf(name, sizeof name, "bench-%s", sp->label);
    snprintf(pending, sizeof pending, "ipc:{q:%s}:pending", name);
    int64_t n = 0;
    redipc_check(ipc_del(c, pending, strlen(pending), &n), "DEL");
    char *val = bench_value(sp->size);
    const char **argv = bench_xmalloc(sizeof(char *) * 1002);
    size_t *lens = bench_xmalloc(sizeof(size_t) * 1002);
    argv[0] = "LPUSH";
    lens[0] = 5;
    argv[1] = pending;
    lens[1] = strlen(pending);
    for (long left = sp->n; left > 0;) {
        long k = left < 1000 ? left : 1000;
        for (long i = 0; i < k; i++) {
            argv[2 + i] = val;
            lens[2 + i] = sp->size;
        }
        ipc_reply *r = NULL;
        redipc_check(ipc_command(c, argv, lens, (size_t)(2 + k), &r), "LPUSH");
        ipc_reply_free(r);
        left -= k;
    }
    free(argv);
    free(lens);

    static queue_state s; /* used by the worker thread until the worker is freed */
    memset(&s, 0, sizeof s);
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.cv, NULL);
    s.want = sp->n;
    s.size = sp->size;
    ipc_worker_options *o = NULL;
    redipc_check(ipc_worker_options_new(&o), "ipc_worker_options_new");
    redipc_check(ipc_worker_options_set_block_timeout_ms(o, 100), "block timeout");
    if (sp->depth > 0) redipc_check(ipc_worker_options_set_prefetch(o, (size_t)sp->depth), "prefetch");
    const char *queues[1] = {name};
    ipc_worker *w = NULL;
    redipc_check(ipc_worker_new(c, queues, NULL, 1, o, on_request, &s, NULL, &w), "ipc_worker_new");
    ipc_worker_options_free(o);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += (time_t)a->timeout_s;
    pthread_mutex_lock(&s.mu);
    int rc = 0;
    while (!s.done && rc == 0) rc = pthread_cond_timedwait(&s.cv, &s.mu, &dl);
    pthread_mutex_unlock(&s.mu);
    ipc_worker_free(w);
    const char *note = NULL;
    if (!s.done) {
        note = "timed out before the queue was drained";
        s.t1 = bench_now();
        s.c1 = bench_cpu();
    }
    if (s.bad) bench_die("queue: bad payload");
    free(val);
    bench_result res = {s.got > 1 ? s.got - 1 : 0, s.t1 - s.t0, s.c1 - s.c0, -1, -1, note};
    return res;
}
