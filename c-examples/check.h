/* check.h: the assertion, time and waiting helpers of the C tests. Each CHECK counts one passed or
 * failed check; a test program ends with check_summary(), which prints the line
 * "N passed, M failed" that the test runner reads, and returns the exit status. */
#ifndef REDIPC_CHECK_H
#define REDIPC_CHECK_H

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "redipc.h"

/* Time, sleeping and atomic counters shared by the tests. */
static inline double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static inline void sleep_ms(long ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static inline long load(volatile long *p) { return __sync_fetch_and_add(p, 0); }
static inline long add(volatile long *p, long v) { return __sync_fetch_and_add(p, v); }

/* Poll `cond` every 2 ms until it holds or `ms` passed; `ok` says whether it held. A
 * deadline passing is a failure of the test, never a synchronization. */
#define WAIT_UNTIL(ok, cond, ms)                        \
    do {                                                \
        double wait_deadline_ = now_ms() + (ms);        \
        (ok) = 0;                                       \
        for (;;) {                                      \
            if (cond) {                                 \
                (ok) = 1;                               \
                break;                                  \
            }                                           \
            if (now_ms() > wait_deadline_) break;       \
            sleep_ms(2);                                \
        }                                               \
    } while (0)

static unsigned long check_passed = 0;
static unsigned long check_failed = 0;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (cond) {                                                                  \
            check_passed++;                                                          \
        } else {                                                                     \
            check_failed++;                                                          \
            fprintf(stderr, "%s:%d: FAILED: %s (last error: %s)\n", __FILE__, __LINE__, \
                    #cond, ipc_last_error_message());                                \
        }                                                                            \
    } while (0)

/* Check that `expr` returns `expected` (an ipc_result). */
#define CHECK_RC(expr, expected)                                                      \
    do {                                                                              \
        ipc_result check_rc_ = (expr);                                                \
        if (check_rc_ == (expected)) {                                                \
            check_passed++;                                                           \
        } else {                                                                      \
            check_failed++;                                                           \
            fprintf(stderr, "%s:%d: FAILED: %s returned %s, expected %s (%s)\n",      \
                    __FILE__, __LINE__, #expr, ipc_result_name(check_rc_),            \
                    ipc_result_name(expected), ipc_last_error_message());             \
        }                                                                             \
    } while (0)

#define CHECK_OK(expr) CHECK_RC(expr, IPC_OK)

/* Whether (ptr, len) holds exactly the NUL-terminated string s. */
static inline int bytes_eq(const void *ptr, size_t len, const char *s) {
    return ptr != NULL && len == strlen(s) && memcmp(ptr, s, len) == 0;
}

static inline int check_summary(void) {
    printf("%lu passed, %lu failed\n", check_passed, check_failed);
    return check_failed == 0 ? 0 : 1;
}

#endif
