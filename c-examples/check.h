/* check.h: the few assertion helpers of the C tests. Each CHECK counts one passed or
 * failed check; a test program ends with check_summary(), which prints the line
 * "N passed, M failed" that the test runner reads, and returns the exit status. */
#ifndef REDIPC_CHECK_H
#define REDIPC_CHECK_H

#include <stdio.h>
#include <string.h>

#include "redipc.h"

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
static int bytes_eq(const void *ptr, size_t len, const char *s) {
    return ptr != NULL && len == strlen(s) && memcmp(ptr, s, len) == 0;
}

static int check_summary(void) {
    printf("%lu passed, %lu failed\n", check_passed, check_failed);
    return check_failed == 0 ? 0 : 1;
}

#endif
