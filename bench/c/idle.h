/*
 * Shared by the idle-footprint programs (idle_redipc.c, idle_hiredis.c; issue 18): each
 * connects, subscribes to one channel, prints "READY PID" on stdout once the server has
 * confirmed the subscription, and then does nothing until it is killed. Its driver
 * (bench/harness.py, the footprint section) reads /proc/PID/status (VmRSS) and the
 * voluntary context switches of every thread (/proc/PID/task/TID/status) at the start
 * and the end of an idle window. The main thread is blocked the whole window (pause() or a
 * read), so every switch counted is the client library's.
 *
 *   PROGRAM (--sock PATH | --host HOST --port PORT) [--health-check-ms MS]
 *
 * --health-check-ms MS (redipc only): ipc_options_set_health_check_interval_ms (0: off,
 * allowed over a unix socket only); without it, the library's default options.
 * The program ends with its parent (PR_SET_PDEATHSIG), so a killed driver leaves none behind.
 */
#ifndef BENCH_IDLE_H
#define BENCH_IDLE_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#define IDLE_CHANNEL "bench:idle"

typedef struct {
    const char *sock;
    const char *host;
    int port;
    long health_check_ms; /* -1: the library's default */
} idle_args;

static inline void idle_die(const char *fmt, const char *what) {
    fprintf(stderr, "idle: ");
    fprintf(stderr, fmt, what);
    fprintf(stderr, "\n");
    exit(1);
}

static inline void idle_parse_args(int argc, char **argv, idle_args *a) {
    memset(a, 0, sizeof *a);
    a->host = "127.0.0.1";
    a->health_check_ms = -1;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "--sock") && i + 1 < argc) a->sock = argv[++i];
        else if (!strcmp(s, "--host") && i + 1 < argc) a->host = argv[++i];
        else if (!strcmp(s, "--port") && i + 1 < argc) a->port = atoi(argv[++i]);
        else if (!strcmp(s, "--health-check-ms") && i + 1 < argc) a->health_check_ms = atol(argv[++i]);
        else idle_die("unknown argument %s", s);
    }
    if (!a->sock && !a->port) idle_die("%s", "give --sock PATH or --port PORT");
    /* Die with the driver: nothing is left subscribed (or reconnecting) if it is killed. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() == 1) exit(1);
}

static inline void idle_ready(void) {
    printf("READY %ld\n", (long)getpid());
    fflush(stdout);
}

#endif
