/*
 * Shared by the C bench programs (bench_redipc.c, bench_hiredis.c): the command line,
 * clocks, CPU time, latency percentiles, and the JSON line every measurement prints.
 *
 * Command line (the same for every bench program, C or Python):
 *
 *   PROGRAM (--sock PATH | --host HOST --port PORT) [--tls-ca PATH] [--timeout S] SPEC...
 *
 * --tls-ca PATH connects with TLS (rediss://HOST:PORT) and trusts the CA certificates in the
 * PEM file PATH; the JSON lines then say "transport": "tls" (bench/tls). bench_hiredis
 * (Debian's hiredis has no TLS) prints a skipped line for every SPEC instead.
 *
 * where each SPEC is LABEL:WORKLOAD:N:SIZE:DEPTH, run in order, one JSON line each:
 *   get / set     N sequential GETs / SETs of a SIZE-byte value
 *   rtt           N sequential GETs, each timed: p50 / p99 round trip
 *   pipe          N GETs in pipelines of DEPTH commands
 *   multi         N INCRs in MULTI/EXEC blocks of DEPTH (100) INCRs
 *   hgetall       N HGETALLs of a DEPTH-field (100) hash with SIZE-byte values
 *   sub           subscribe, receive N SIZE-byte messages (rate from first to last)
 *   pub           wait for a subscriber, publish N messages in pipelines of DEPTH
 *   queue         LPUSH N items (untimed), then drain them one by one (first to last)
 *   rpc / serve   RPC round trips (redipc only)
 *   threads       N GETs of a SIZE-byte value by DEPTH threads at once (N / DEPTH each):
 *                 redipc's threads share one client, hiredis's have a connection each
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define BENCH_CHANNEL "bench:ch"

typedef struct {
    const char *label;
    const char *workload;
    long n;
    size_t size;
    long depth;
} bench_spec;

typedef struct {
    const char *sock;
    const char *host;
    int port;
    const char *tls_ca; /* NULL: plain TCP (or the unix socket) */
    double timeout_s;
    int nspecs;
    bench_spec specs[64];
} bench_args;

/* One measurement's result; fields < 0 are not reported. */
typedef struct {
    long ops;
    double wall_s;
    double cpu_s;
    double p50_us;
    double p99_us;
    const char *note;
} bench_result;

static inline double bench_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* user+sys CPU time of the whole process (every thread), in seconds. */
static inline double bench_cpu(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

static inline void bench_die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static inline void *bench_xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) bench_die("out of memory");
    return p;
}

static inline void bench_parse_args(int argc, char **argv, bench_args *a) {
    memset(a, 0, sizeof *a);
    a->host = "127.0.0.1";
    a->timeout_s = 60.0;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "--sock") && i + 1 < argc) {
            a->sock = argv[++i];
        } else if (!strcmp(s, "--host") && i + 1 < argc) {
            a->host = argv[++i];
        } else if (!strcmp(s, "--port") && i + 1 < argc) {
            a->port = atoi(argv[++i]);
        } else if (!strcmp(s, "--tls-ca") && i + 1 < argc) {
            a->tls_ca = argv[++i];
        } else if (!strcmp(s, "--timeout") && i + 1 < argc) {
            a->timeout_s = atof(argv[++i]);
        } else if (s[0] == '-') {
            bench_die("unknown option %s", s);
        } else {
            if (a->nspecs == 64) bench_die("too many specs");
            bench_spec *sp = &a->specs[a->nspecs++];
            char *copy = strdup(s);
            if (!copy) bench_die("out of memory");
            char *f[5];
            int k = 0;
            char *save = NULL;
            for (char *t = strtok_r(copy, ":", &save); t && k < 5; t = strtok_r(NULL, ":", &save)) f[k++] = t;
            if (k != 5) bench_die("bad spec %s (LABEL:WORKLOAD:N:SIZE:DEPTH)", s);
            sp->label = f[0];
            sp->workload = f[1];
            sp->n = atol(f[2]);
            sp->size = (size_t)atol(f[3]);
            sp->depth = atol(f[4]);
            if (sp->n <= 0) bench_die("bad N in %s", s);
        }
    }
    if (!a->sock && !a->port) bench_die("give --sock PATH or --port PORT");
    if (a->sock && a->tls_ca) bench_die("--tls-ca needs --port (TLS is over TCP)");
    if (a->nspecs == 0) bench_die("no SPEC given");
}

static int bench_cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* Sorts `v` and returns its q-quantile (0..1), nearest-rank. */
static inline double bench_quantile(double *v, long n, double q) {
    if (n <= 0) return -1;
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    long i = (long)(q * (double)n);
    if (i >= n) i = n - 1;
    return v[i];
}

static inline void bench_emit(const char *impl, const bench_args *a, const bench_spec *sp,
                              const bench_result *r) {
    double rate = r->wall_s > 0 ? (double)r->ops / r->wall_s : 0;
    printf("{\"impl\": \"%s\", \"label\": \"%s\", \"workload\": \"%s\", \"transport\": \"%s\", "
           "\"n\": %ld, \"size\": %zu, \"depth\": %ld, \"ops\": %ld, \"wall_s\": %.6f, "
           "\"cpu_s\": %.6f, \"ops_per_s\": %.1f, \"cpu_us_per_op\": %.4f",
           impl, sp->label, sp->workload, a->sock ? "unix" : a->tls_ca ? "tls" : "tcp", sp->n, sp->size, sp->depth,
           r->ops, r->wall_s, r->cpu_s, rate, r->ops > 0 ? r->cpu_s * 1e6 / (double)r->ops : 0.0);
    if (r->p50_us >= 0) printf(", \"p50_us\": %.2f, \"p99_us\": %.2f", r->p50_us, r->p99_us);
    if (r->note) printf(", \"note\": \"%s\"", r->note);
    printf("}\n");
    fflush(stdout);
}

/* A SIZE-byte value of printable bytes. */
static inline char *bench_value(size_t size) {
    char *v = bench_xmalloc(size + 1);
    for (size_t i = 0; i < size; i++) v[i] = (char)('a' + (int)(i % 26));
    v[size] = 0;
    return v;
}

#endif
