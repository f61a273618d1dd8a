/* threads.c: 8 threads share one ipc_client and each sends 10,000 commands (INCR of its
 * own counter, SET and GET of its own key, and some ipc_command calls), checking every
 * reply. Prints "N passed, M failed" last and exits non-zero on any failure.
 *
 *   ./threads URL
 *
 * Environment: REDIPC_TEST_QUICK=1 runs 500 commands per thread instead.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "redipc.h"

#define THREADS 8

struct worker {
    ipc_client *client;
    int id;
    long commands;
    long passed;
    long failed;
    char counter[96];
    char key[96];
};

#define WCHECK(w, cond)                                                                \
    do {                                                                               \
        if (cond) {                                                                    \
            (w)->passed++;                                                             \
        } else {                                                                       \
            (w)->failed++;                                                             \
            if ((w)->failed <= 5)                                                      \
                fprintf(stderr, "thread %d: %s:%d: FAILED: %s (%s)\n", (w)->id, __FILE__, \
                        __LINE__, #cond, ipc_last_error_message());                    \
        }                                                                              \
    } while (0)

static void *run(void *arg) {
    struct worker *w = arg;
    int64_t n = 0, expected = 0;
    long i, sent = 0;
    char value[64];
    char *buf = NULL;
    size_t len = 0;
    bool found = false;
    int64_t removed = 0;

    WCHECK(w, ipc_del(w->client, w->counter, strlen(w->counter), &removed) == IPC_OK);
    sent++;
    for (i = 0; sent < w->commands; i++) {
        switch (i % 4) {
        case 0: /* INCR of the thread's own counter: the count goes up by exactly one */
            WCHECK(w, ipc_incr(w->client, w->counter, strlen(w->counter), &n) == IPC_OK);
            expected++;
            WCHECK(w, n == expected);
            break;
        case 1: /* SET a value only this thread writes */
            snprintf(value, sizeof value, "thread-%d-value-%ld", w->id, i);
            WCHECK(w, ipc_set(w->client, w->key, strlen(w->key), value,
                              strlen(value), 0) == IPC_OK);
            break;
        case 2: /* GET it back */
            WCHECK(w, ipc_get(w->client, w->key, strlen(w->key), &buf, &len, &found) == IPC_OK);
            WCHECK(w, found && len == strlen(value) && memcmp(buf, value, len) == 0);
            ipc_buf_free(buf, len);
            buf = NULL;
            break;
        default: { /* the generic path: GET through ipc_command */
            const char *argv[2];
            ipc_reply *r = NULL;
            const char *p = NULL;
            size_t plen = 0;
            argv[0] = "GET";
            argv[1] = w->counter;
            WCHECK(w, ipc_command(w->client, argv, NULL, 2, &r) == IPC_OK);
            WCHECK(w, r != NULL && ipc_reply_type(r) == IPC_REPLY_BULK &&
                          ipc_reply_string(r, &p, &plen) == IPC_OK);
            if (p != NULL) {
                char text[32];
                snprintf(text, sizeof text, "%" PRId64, expected);
                WCHECK(w, plen == strlen(text) && memcmp(p, text, plen) == 0);
            }
            ipc_reply_free(r);
            break;
        }
        }
        sent++;
    }
    return NULL;
}

int main(int argc, char **argv) {
    ipc_client *client = NULL;
    ipc_result rc;
    pthread_t tids[THREADS];
    struct worker workers[THREADS];
    const char *quick = getenv("REDIPC_TEST_QUICK");
    long per_thread = (quick != NULL && strcmp(quick, "1") == 0) ? 500 : 10000;
    long passed = 0, failed = 0, total = 0;
    int t;

    if (argc < 2) {
        fprintf(stderr, "usage: %s URL\n", argv[0]);
        return 2;
    }
    rc = ipc_client_new(argv[1], NULL, &client);
    if (rc != IPC_OK) {
        fprintf(stderr, "connect: %s: %s\n", ipc_result_name(rc), ipc_last_error_message());
        printf("0 passed, 1 failed\n");
        return 1;
    }
    for (t = 0; t < THREADS; t++) {
        memset(&workers[t], 0, sizeof workers[t]);
        workers[t].client = client;
        workers[t].id = t;
        workers[t].commands = per_thread;
        snprintf(workers[t].counter, sizeof workers[t].counter, "threads:%ld:%d:counter",
                 (long)getpid(), t);
        snprintf(workers[t].key, sizeof workers[t].key, "threads:%ld:%d:key", (long)getpid(), t);
        if (pthread_create(&tids[t], NULL, run, &workers[t]) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            return 1;
        }
    }
    for (t = 0; t < THREADS; t++) {
        pthread_join(tids[t], NULL);
        passed += workers[t].passed;
        failed += workers[t].failed;
        total += workers[t].commands;
    }
    /* every thread's counter holds exactly its number of INCRs */
    for (t = 0; t < THREADS; t++) {
        int64_t n = -1;
        int64_t removed = 0;
        long incrs = (workers[t].commands - 1 + 3) / 4;
        rc = ipc_incrby(client, workers[t].counter, strlen(workers[t].counter), 0, &n);
        if (rc == IPC_OK && n == incrs) {
            passed++;
        } else {
            failed++;
            fprintf(stderr, "thread %d: counter %" PRId64 ", expected %ld\n", t, n, incrs);
        }
        if (ipc_del(client, workers[t].counter, strlen(workers[t].counter), &removed) != IPC_OK ||
            ipc_del(client, workers[t].key, strlen(workers[t].key), &removed) != IPC_OK)
            failed++;
    }
    ipc_client_free(client);
    fprintf(stderr, "%d threads x %ld commands on one client\n", THREADS, per_thread);
    (void)total;
    printf("%ld passed, %ld failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
