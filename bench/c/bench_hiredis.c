/*
 * hiredis (synchronous API) side of the benchmark: redisCommand for single commands,
 * redisAppendCommand + redisGetReply for pipelines and transactions, redisGetReply for a
 * subscriber. Also the common publisher of the pub/sub workload (`pub`), used for every
 * subscriber so that all of them get the same stream. See common.h for the command line.
 */
#include "common.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>
#include <sys/time.h>
#include <unistd.h>

static redisContext *connect_to(const bench_args *a) {
    struct timeval tv = {5, 0};
    redisContext *c = a->sock ? redisConnectUnixWithTimeout(a->sock, tv)
                              : redisConnectWithTimeout(a->host, a->port, tv);
    if (!c || c->err) bench_die("hiredis connect: %s", c ? c->errstr : "out of memory");
    struct timeval io = {(long)a->timeout_s, 0};
    if (redisSetTimeout(c, io) != REDIS_OK) bench_die("redisSetTimeout: %s", c->errstr);
    return c;
}

static redisReply *cmd(redisContext *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (!r) bench_die("hiredis: %s", c->errstr);
    if (r->type == REDIS_REPLY_ERROR) bench_die("hiredis: server error %s", r->str);
    return r;
}

static void ok(redisContext *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (!r) bench_die("hiredis: %s", c->errstr);
    if (r->type == REDIS_REPLY_ERROR) bench_die("hiredis: server error %s", r->str);
    freeReplyObject(r);
}

static redisReply *get_reply(redisContext *c) {
    void *r = NULL;
    if (redisGetReply(c, &r) != REDIS_OK || !r) bench_die("hiredis: %s", c->errstr);
    return r;
}

static void key_of(char *buf, size_t cap, const bench_spec *sp, const char *what) {
    snprintf(buf, cap, "bench:%s:%s", sp->label, what);
}

static bench_result run_get(redisContext *c, const bench_spec *sp, int timed) {
    char key[128];
    key_of(key, sizeof key, sp, "k");
    char *val = bench_value(sp->size);
    ok(c, "SET %s %b", key, val, sp->size);
    double *lat = timed ? bench_xmalloc(sizeof(double) * (size_t)sp->n) : NULL;
    size_t klen = strlen(key);
    double c0 = bench_cpu(), t0 = bench_now();
    for (long i = 0; i < sp->n; i++) {
        double s = timed ? bench_now() : 0;
        redisReply *r = redisCommand(c, "GET %b", key, klen);
        if (!r) bench_die("GET: %s", c->errstr);
        if (r->type != REDIS_REPLY_STRING || (size_t)r->len != sp->size) bench_die("GET: bad reply");
        freeReplyObject(r);
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
    const bench_args *a;
    const char *key;
    size_t size;
    long n;
    pthread_barrier_t *go;
};

static void *mt_get(void *p) {
    struct mt_arg *m = p;
    redisContext *c = connect_to(m->a);
    pthread_barrier_wait(m->go);
    for (long i = 0; i < m->n; i++) {
        redisReply *r = cmd(c, "GET %s", m->key);
        if (r->type != REDIS_REPLY_STRING || (size_t)r->len != m->size) bench_die("GET: bad reply");
        freeReplyObject(r);
    }
    redisFree(c);
    return NULL;
}

/* DEPTH threads, a connection each (opened before the start), N / DEPTH GETs each. */
static bench_result run_threads(redisContext *c, const bench_spec *sp, const bench_args *a) {
    char key[128];
    key_of(key, sizeof key, sp, "k");
    char *val = bench_value(sp->size);
    ok(c, "SET %s %b", key, val, sp->size);
    long t = sp->depth > 0 ? sp->depth : 1;
    pthread_t *th = bench_xmalloc(sizeof(pthread_t) * (size_t)t);
    struct mt_arg *args = bench_xmalloc(sizeof(struct mt_arg) * (size_t)t);
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, (unsigned)t + 1);
    for (long i = 0; i < t; i++) {
        args[i] = (struct mt_arg){a, key, sp->size, sp->n / t, &go};
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

static bench_result run_set(redisContext *c, const bench_spec *sp) {
    char key[128];
    key_of(key, sizeof key, sp, "k");
    char *val = bench_value(sp->size);
    size_t klen = strlen(key);
    double c0 = bench_cpu(), t0 = bench_now();
    for (long i = 0; i < sp->n; i++) {
        redisReply *r = redisCommand(c, "SET %b %b", key, klen, val, sp->size);
        if (!r) bench_die("SET: %s", c->errstr);
        if (r->type != REDIS_REPLY_STATUS) bench_die("SET: bad reply");
        freeReplyObject(r);
    }
    bench_result res = {sp->n, bench_now() - t0, bench_cpu() - c0, -1, -1, NULL};
    free(val);
    return res;
}

static bench_result run_pipe(redisContext *c, const bench_spec *sp) {
    char key[128];
    key_of(key, sizeof key, sp, "k");
    char *val = bench_value(sp->size);
    ok(c, "SET %s %b", key, val, sp->size);
    long depth = sp->depth > 0 ? sp->depth : 16;
    long batches = sp->n / depth;
    if (batches < 1) batches = 1;
    size_t klen = strlen(key);
    double c0 = bench_cpu(), t0 = bench_now();
    for (long b = 0; b < batches; b++) {
        for (long i = 0; i < depth; i++)
            if (redisAppendCommand(c, "GET %b", key, klen) != REDIS_OK) bench_die("append: %s", c->errstr);
        for (long i = 0; i < depth; i++) {
            redisReply *r = get_reply(c);
            if (r->type != REDIS_REPLY_STRING) bench_die("pipelined GET: bad reply");
            freeReplyObject(r);
        }
    }
    bench_result res = {batches * depth, bench_now() - t0, bench_cpu() - c0, -1, -1, NULL};
    free(val);
    return res;
}

static bench_result run_multi(redisContext *c, const bench_spec *sp) {
    char key[128];
    key_of(key, sizeof key, sp, "ctr");
    ok(c, "DEL %s", key);
    long depth = sp->depth > 0 ? sp->depth : 100;
    long batches = sp->n / depth;
    if (batches < 1) batches = 1;
    size_t klen = strlen(key);
    double c0 = bench_cpu(), t0 = bench_now();
    for (long b = 0; b < batches; b++) {
        if (redisAppendCommand(c, "MULTI") != REDIS_OK) bench_die("append: %s", c->errstr);
        for (long i = 0; i < depth; i++)
            if (redisAppendCommand(c, "INCR %b", key, klen) != REDIS_OK) bench_die("append: %s", c->errstr);
        if (redisAppendCommand(c, "EXEC") != REDIS_OK) bench_die("append: %s", c->errstr);
        for (long i = 0; i < depth + 1; i++) freeReplyObject(get_reply(c)); /* OK, QUEUED... */
        redisReply *r = get_reply(c);
        if (r->type != REDIS_REPLY_ARRAY || (long)r->elements != depth) bench_die("EXEC: bad reply");
        freeReplyObject(r);
    }
    bench_result res = {batches * depth, bench_now() - t0, bench_cpu() - c0, -1, -1, NULL};
    redisReply *r = cmd(c, "GET %s", key);
    if (r->type != REDIS_REPLY_STRING || atol(r->str) != batches * depth) bench_die("multi: wrong count");
    freeReplyObject(r);
    return res;
}

static bench_result run_hgetall(redisContext *c, const bench_spec *sp) {
    char key[128];
    key_of(key, sizeof key, sp, "h");
    ok(c, "DEL %s", key);
    long fields = sp->depth > 0 ? sp->depth : 100;
    char *val = bench_value(sp->size);
    for (long i = 0; i < fields; i++) ok(c, "HSET %s f%ld %b", key, i, val, sp->size);
    size_t klen = strlen(key);
    size_t total = 0;
    double c0 = bench_cpu(), t0 = bench_now();
    for (long i = 0; i < sp->n; i++) {
        redisReply *r = redisCommand(c, "HGETALL %b", key, klen);
        if (!r) bench_die("HGETALL: %s", c->errstr);
        if (r->type != REDIS_REPLY_ARRAY || (long)r->elements != 2 * fields) bench_die("HGETALL: bad reply");
        for (size_t e = 0; e < r->elements; e++) total += (size_t)r->element[e]->len;
        freeReplyObject(r);
    }
    bench_result res = {sp->n, bench_now() - t0, bench_cpu() - c0, -1, -1, NULL};
    if (total == 0) bench_die("HGETALL: empty");
    free(val);
    return res;
}

static bench_result run_sub(redisContext *c, const bench_spec *sp) {
    freeReplyObject(cmd(c, "SUBSCRIBE %s", BENCH_CHANNEL));
    fprintf(stderr, "READY\n"); /* the harness pauses us, publishes, and resumes us */
    long got = 0;
    double t0 = 0, c0 = 0, t1 = 0, c1 = 0;
    const char *note = NULL;
    while (got < sp->n) {
        void *rv = NULL;
        if (redisGetReply(c, &rv) != REDIS_OK || !rv) {
            note = "timed out before every message arrived";
            break;
        }
        redisReply *r = rv;
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 && !strcmp(r->element[0]->str, "message")) {
            if ((size_t)r->element[2]->len != sp->size) bench_die("sub: bad payload");
            if (++got == 1) {
                t0 = bench_now();
                c0 = bench_cpu();
            }
        }
        freeReplyObject(r);
    }
    t1 = bench_now();
    c1 = bench_cpu();
    bench_result res = {got > 1 ? got - 1 : 0, t1 - t0, c1 - c0, -1, -1, note};
    return res;
}

/* The common publisher: waits for a subscriber, then publishes N messages of SIZE bytes in
 * pipelines of DEPTH. */
static bench_result run_pub(redisContext *c, const bench_spec *sp, const bench_args *a) {
    double deadline = bench_now() + a->timeout_s;
    for (;;) {
        redisReply *r = cmd(c, "PUBSUB NUMSUB %s", BENCH_CHANNEL);
        long subs = (r->type == REDIS_REPLY_ARRAY && r->elements == 2) ? (long)r->element[1]->integer : 0;
        freeReplyObject(r);
        if (subs >= 1) break;
        if (bench_now() > deadline) bench_die("pub: no subscriber");
        usleep(1000);
    }
    usleep(20000); /* let a subscriber that just subscribed settle */
    char *val = bench_value(sp->size);
    long depth = sp->depth > 0 ? sp->depth : 100;
    long sent = 0;
    double c0 = bench_cpu(), t0 = bench_now();
    while (sent < sp->n) {
        long k = sp->n - sent < depth ? sp->n - sent : depth;
        for (long i = 0; i < k; i++)
            if (redisAppendCommand(c, "PUBLISH %s %b", BENCH_CHANNEL, val, sp->size) != REDIS_OK)
                bench_die("append: %s", c->errstr);
        for (long i = 0; i < k; i++) freeReplyObject(get_reply(c));
        sent += k;
    }
    bench_result res = {sent, bench_now() - t0, bench_cpu() - c0, -1, -1, NULL};
    free(val);
    return res;
}

static bench_result run_queue(redisContext *c, const bench_spec *sp) {
    char key[128];
    key_of(key, sizeof key, sp, "q");
    ok(c, "DEL %s", key);
    char *val = bench_value(sp->size);
    long left = sp->n;
    while (left > 0) {
        long k = left < 1000 ? left : 1000;
        for (long i = 0; i < k; i++)
            if (redisAppendCommand(c, "LPUSH %s %b", key, val, sp->size) != REDIS_OK) bench_die("append");
        for (long i = 0; i < k; i++) freeReplyObject(get_reply(c));
        left -= k;
    }
    size_t klen = strlen(key);
    double t0 = 0, c0 = 0;
    for (long i = 0; i < sp->n; i++) {
        redisReply *r = redisCommand(c, "BRPOP %b 1", key, klen);
        if (!r) bench_die("BRPOP: %s", c->errstr);
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) bench_die("BRPOP: queue ran dry");
        freeReplyObject(r);
        if (i == 0) {
            t0 = bench_now();
            c0 = bench_cpu();
        }
    }
    bench_result res = {sp->n - 1, bench_now() - t0, bench_cpu() - c0, -1, -1, NULL};
    free(val);
    return res;
}

/* A hand-rolled RPC over Redis with hiredis, as the floor for redipc's RPC round trip: the
 * caller LPUSHes "REPLY-CHANNEL|payload" and waits for the reply on its own subscribed
 * connection; the server BRPOPs and PUBLISHes the payload back. No envelope, no deadline,
 * no registry: the least work an RPC over Redis can do. `serve` runs until SIGTERM. */
static volatile sig_atomic_t serve_stop;

static void on_term(int sig) {
    (void)sig;
    serve_stop = 1;
}

static bench_result run_serve(redisContext *c) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term; /* no SA_RESTART: a blocked read returns at once */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    fprintf(stderr, "READY\n");
    long handled = 0;
    double c0 = bench_cpu(), t0 = bench_now();
    while (!serve_stop) {
        redisReply *r = redisCommand(c, "BRPOP bench:rpc:q 1");
        if (!r) {
            if (serve_stop) break;
            bench_die("BRPOP: %s", c->errstr);
        }
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
            const char *item = r->element[1]->str;
            const char *bar = memchr(item, '|', (size_t)r->element[1]->len);
            if (!bar) bench_die("serve: bad request");
            size_t chlen = (size_t)(bar - item), plen = (size_t)r->element[1]->len - chlen - 1;
            freeReplyObject(cmd(c, "PUBLISH %b %b", item, chlen, bar + 1, plen));
            handled++;
        }
        freeReplyObject(r);
    }
    bench_result res = {handled, bench_now() - t0, bench_cpu() - c0, -1, -1, NULL};
    return res;
}

static bench_result run_rpc(redisContext *c, const bench_spec *sp, const bench_args *a) {
    redisContext *sub = connect_to(a);
    char chan[64];
    snprintf(chan, sizeof chan, "bench:rpc:reply:%d", (int)getpid());
    freeReplyObject(cmd(sub, "SUBSCRIBE %s", chan));
    size_t clen = strlen(chan);
    size_t reqlen = clen + 1 + sp->size;
    char *req = bench_xmalloc(reqlen);
    memcpy(req, chan, clen);
    req[clen] = '|';
    memset(req + clen + 1, 'x', sp->size);
    double *lat = bench_xmalloc(sizeof(double) * (size_t)sp->n);
    double c0 = 0, t0 = 0;
    for (long i = -50; i < sp->n; i++) { /* 50 untimed calls first */
        if (i == 0) {
            c0 = bench_cpu();
            t0 = bench_now();
        }
        double s = bench_now();
        freeReplyObject(cmd(c, "LPUSH bench:rpc:q %b", req, reqlen));
        redisReply *m = get_reply(sub);
        if (m->type != REDIS_REPLY_ARRAY || m->elements != 3 || (size_t)m->element[2]->len != sp->size)
            bench_die("rpc: bad reply");
        freeReplyObject(m);
        if (i >= 0) lat[i] = (bench_now() - s) * 1e6;
    }
    bench_result res = {sp->n, bench_now() - t0, bench_cpu() - c0, -1, -1, "hand-rolled: LPUSH + BRPOP + PUBLISH"};
    res.p50_us = bench_quantile(lat, sp->n, 0.50);
    res.p99_us = bench_quantile(lat, sp->n, 0.99);
    free(lat);
    free(req);
    redisFree(sub);
    return res;
}

int main(int argc, char **argv) {
    bench_args a;
    bench_parse_args(argc, argv, &a);
    if (a.tls_ca) { /* Debian's hiredis 0.14 has no TLS (hiredis_ssl came with 1.0) */
        for (int i = 0; i < a.nspecs; i++)
            printf("{\"impl\": \"hiredis\", \"label\": \"%s\", \"workload\": \"%s\", \"skipped\": "
                   "\"TLS: this bench links hiredis without hiredis_ssl\"}\n",
                   a.specs[i].label, a.specs[i].workload);
        return 0;
    }
    redisContext *c = connect_to(&a);
    for (int i = 0; i < a.nspecs; i++) {
        const bench_spec *sp = &a.specs[i];
        const char *w = sp->workload;
        bench_result r;
        if (!strcmp(w, "get")) r = run_get(c, sp, 0);
        else if (!strcmp(w, "rtt")) r = run_get(c, sp, 1);
        else if (!strcmp(w, "set")) r = run_set(c, sp);
        else if (!strcmp(w, "threads")) r = run_threads(c, sp, &a);
        else if (!strcmp(w, "pipe")) r = run_pipe(c, sp);
        else if (!strcmp(w, "multi")) r = run_multi(c, sp);
        else if (!strcmp(w, "hgetall")) r = run_hgetall(c, sp);
        else if (!strcmp(w, "sub")) r = run_sub(c, sp);
        else if (!strcmp(w, "pub")) r = run_pub(c, sp, &a);
        else if (!strcmp(w, "queue")) r = run_queue(c, sp);
        else if (!strcmp(w, "serve")) r = run_serve(c);
        else if (!strcmp(w, "rpc")) r = run_rpc(c, sp, &a);
        else {
            printf("{\"impl\": \"hiredis\", \"label\": \"%s\", \"workload\": \"%s\", \"skipped\": \"not supported\"}\n",
                   sp->label, w);
            continue;
        }
        bench_emit("hiredis", &a, sp, &r);
    }
    redisFree(c);
    return 0;
}
