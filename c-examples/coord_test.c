/* coord_test.c: the coordination primitives of the C API against a running server: Lua
 * scripts (ipc_script_*, ipc_batch_add_script), rate limiters (ipc_rate_limiter_*),
 * semaphores with leases (ipc_semaphore_*, ipc_permit_*), delayed requests
 * (ipc_send_request_delayed, ipc_send_request_at, ipc_queue_counts.delayed) and the service
 * registry (ipc_services, ipc_service_instances, ipc_worker_options_set_version and
 * _add_metadata).
 *
 *   ./coord_test URL          URL: redis://127.0.0.1:PORT/0 or unix:///path/redis.sock
 *
 * Covers: a script's result, binary keys and arguments, its errors (IPC_ERR_SERVER with the
 * script's code), SCRIPT FLUSH between two runs invisible to the caller, EVALSHA used once
 * loaded (INFO commandstats), scripts in a pipeline (also after SCRIPT FLUSH) and in a
 * transaction; a rate limiter's allowed/refused with the retry-after, acquire_wait sleeping
 * about that long, giving up early with a timeout, the default burst, and three processes
 * sharing one limiter: in every 2 s window (server time) no more than burst + 2 * rate
 * allowed; a semaphore of 3 permits taken by 8 threads in 2 processes, never more than 3
 * holders (a Redis counter of holders and its maximum), a holder killed with SIGKILL whose
 * permit comes back after its lease (while alive it keeps it by extending), IPC_ERR_TIMEOUT,
 * try-once, extend and release (also after the lease ended), free releasing; fairness: 6
 * threads looping on one permit each get at least half the mean number of turns, no wait
 * longer than 1.5 s (first come, first served); delayed requests to an idle C worker
 * arriving no earlier than due and at most 150 ms late, counted as delayed until then; 100
 * delayed requests none lost while reliable workers in child processes are SIGKILLed every
 * 120 ms as they come due (and replaced): all handled, none dead, delayed 0; a server
 * announcing version and metadata listed by ipc_services and ipc_service_instances with
 * every field, gone after stop; a server in a child process SIGKILLed: listed (its pid and
 * version) until the expiry it announced, gone with its service within 3.5 s (TTL 3 s), a
 * fail-fast call then IPC_ERR_NO_SERVER at once; NULL arguments and invalid values (clear
 * codes, no crash).
 *
 * The children (this program run again, by fork and exec) take their part from argv[1]:
 * `child-rate`, `child-sem`, `child-holder`, `child-dworker`, `child-server`.
 *
 * Environment: REDIPC_TEST_QUICK=1 (runs under valgrind) allows the fairness test's longest
 * wait up to 3 s instead of 1.5 s; nothing else changes (the children run natively).
 * Prints "N passed, M failed" last and exits non-zero on any failure.
 */
#include <inttypes.h>
#include <math.h> /* NAN, INFINITY */
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static const char *url;
static const char *self;
static char prefix[64];
static int quick = 0; /* REDIPC_TEST_QUICK=1: under valgrind */

/* ---- small helpers ------------------------------------------------------------------ */

/* The name `n` under this run's prefix (one of a few rotating static buffers). */
static const char *name(const char *n) {
    static char bufs[32][128];
    static int next = 0;
    char *b = bufs[next++ % 32];
    snprintf(b, sizeof bufs[0], "%s%s", prefix, n);
    return b;
}

static double wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static int last_error_has(const char *text) {
    return strstr(ipc_last_error_message(), text) != NULL;
}

/* ipc_command with NUL-terminated arguments, ending with NULL. */
static ipc_result cmd(ipc_client *c, ipc_reply **out, ...) {
    const char *argv[8];
    size_t argc = 0;
    va_list ap;
    va_start(ap, out);
    for (;;) {
        const char *a = va_arg(ap, const char *);
        if (a == NULL || argc == 8) break;
        argv[argc++] = a;
    }
    va_end(ap);
    return ipc_command(c, argv, NULL, argc, out);
}

/* A command whose integer reply is returned; -1 on error. */
static long long cmd_int(ipc_client *c, const char *a0, const char *a1, const char *a2) {
    ipc_reply *r = NULL;
    int64_t v = -1;
    if (cmd(c, &r, a0, a1, a2, NULL) != IPC_OK) return -1;
    if (ipc_reply_integer(r, &v) != IPC_OK) v = -1;
    ipc_reply_free(r);
    return (long long)v;
}

/* The integer `field` of INFO commandstats' line for `command` (calls=N); -1 if absent. */
static long commandstat(ipc_client *c, const char *command) {
    ipc_reply *r = NULL;
    const char *p = NULL;
    size_t n = 0;
    char key[64], *text;
    long calls = -1;
    if (cmd(c, &r, "INFO", "commandstats", NULL) != IPC_OK) return -1;
    if (ipc_reply_string(r, &p, &n) == IPC_OK && (text = malloc(n + 1)) != NULL) {
        const char *at;
        memcpy(text, p, n);
        text[n] = '\0';
        snprintf(key, sizeof key, "cmdstat_%s:calls=", command);
        at = strstr(text, key);
        calls = at == NULL ? 0 : strtol(at + strlen(key), NULL, 10);
        free(text);
    }
    ipc_reply_free(r);
    return calls;
}

/* Element i of an array reply as a string equal to s. */
static int element_is(const ipc_reply *r, size_t i, const char *s, size_t len) {
    const ipc_reply *e = ipc_reply_element(r, i);
    const char *p = NULL;
    size_t n = 0;
    return e != NULL && ipc_reply_string(e, &p, &n) == IPC_OK && n == len && memcmp(p, s, n) == 0;
}

static int element_int(const ipc_reply *r, size_t i, int64_t want) {
    const ipc_reply *e = ipc_reply_element(r, i);
    int64_t v = 0;
    return e != NULL && ipc_reply_integer(e, &v) == IPC_OK && v == want;
}

static ipc_script *script(const char *source) {
    ipc_script *s = NULL;
    CHECK_OK(ipc_script_new(source, strlen(source), &s));
    return s;
}

/* Run this program again as a child with `args` (NULL-terminated); its pid, or -1. */
static pid_t spawn(const char *const *args) {
    char *argv[12];
    size_t i;
    pid_t pid;
    argv[0] = (char *)self;
    for (i = 0; args[i] != NULL && i < 10; i++) argv[i + 1] = (char *)args[i];
    argv[i + 1] = NULL;
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        execv(self, argv);
        _exit(127);
    }
    return pid;
}

static int child_status(pid_t pid) {
    int status = 0;
    if (waitpid(pid, &status, 0) != pid) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* ---- scripts ------------------------------------------------------------------------- */

static const char *const ECHO_SOURCE = "return {KEYS[1] or '', ARGV[1] or '', #KEYS, #ARGV}";

static void test_scripts(ipc_client *c) {
    ipc_script *echo = script(ECHO_SOURCE);
    ipc_script *get = script("return redis.call('GET', KEYS[1])");
    ipc_script *fail = script("return redis.error_reply('MYERR boom')");
    ipc_script *broken = script("return +");
    ipc_script *s = NULL;
    ipc_reply *r = NULL, *load = NULL;
    ipc_batch *b = NULL;
    const char *keys[2] = {"k\0x", "k2"};
    size_t key_lens[2] = {3, 2};
    const char *args[1] = {"a\0b"};
    size_t arg_lens[1] = {3};
    const char *sha = ipc_script_sha(echo);
    const char *p = NULL;
    const char *k = name("script:k");
    size_t n = 0, i;
    long evalsha, eval;
    int hex = 1;

    /* The SHA1 is what SCRIPT LOAD says. */
    CHECK(strlen(sha) == 40);
    for (i = 0; i < 40 && sha[i] != '\0'; i++) {
        if (!((sha[i] >= '0' && sha[i] <= '9') || (sha[i] >= 'a' && sha[i] <= 'f'))) hex = 0;
    }
    CHECK(hex);
    CHECK_OK(cmd(c, &load, "SCRIPT", "LOAD", ECHO_SOURCE, NULL));
    CHECK(load != NULL && ipc_reply_string(load, &p, &n) == IPC_OK && bytes_eq(p, n, sha));
    ipc_reply_free(load);

    /* A run, with binary keys and arguments. */
    CHECK_OK(cmd(c, &r, "SCRIPT", "FLUSH", NULL));
    ipc_reply_free(r);
    r = NULL;
    CHECK_OK(ipc_script_run(c, echo, keys, key_lens, 2, args, arg_lens, 1, &r));
    CHECK(r != NULL && ipc_reply_len(r) == 4);
    CHECK(element_is(r, 0, "k\0x", 3) && element_is(r, 1, "a\0b", 3));
    CHECK(element_int(r, 2, 2) && element_int(r, 3, 1));
    ipc_reply_free(r);
    r = NULL;

    /* SCRIPT FLUSH between two runs: the second still answers (EVAL after NOSCRIPT). */
    CHECK_OK(cmd(c, &r, "SCRIPT", "FLUSH", NULL));
    ipc_reply_free(r);
    r = NULL;
    CHECK_OK(cmd(c, &r, "SCRIPT", "EXISTS", sha, NULL));
    CHECK(r != NULL && element_int(r, 0, 0));
    ipc_reply_free(r);
    r = NULL;
    CHECK_OK(ipc_script_run(c, echo, keys, NULL, 2, NULL, NULL, 0, &r));
    CHECK(r != NULL && ipc_reply_len(r) == 4 && element_is(r, 0, "k", 1) && element_int(r, 3, 0));
    ipc_reply_free(r);
    r = NULL;
    CHECK_OK(cmd(c, &r, "SCRIPT", "EXISTS", sha, NULL));
    CHECK(r != NULL && element_int(r, 0, 1));
    ipc_reply_free(r);
    r = NULL;
    /* Loaded now: the next run is one EVALSHA, no EVAL. */
    evalsha = commandstat(c, "evalsha");
    eval = commandstat(c, "eval");
    CHECK_OK(ipc_script_run(c, echo, NULL, NULL, 0, NULL, NULL, 0, &r));
    CHECK(r != NULL && element_int(r, 2, 0));
    ipc_reply_free(r);
    r = NULL;
    CHECK(commandstat(c, "evalsha") == evalsha + 1);
    CHECK(commandstat(c, "eval") == eval);

    /* The script's own errors. */
    CHECK_RC(ipc_script_run(c, fail, NULL, NULL, 0, NULL, NULL, 0, &r), IPC_ERR_SERVER);
    CHECK(strcmp(ipc_last_error_code(), "MYERR") == 0 && last_error_has("boom"));
    CHECK_RC(ipc_script_run(c, broken, NULL, NULL, 0, NULL, NULL, 0, &r), IPC_ERR_SERVER);
    CHECK(r == NULL);

    /* In a pipeline, with the script known (EVALSHA), then after SCRIPT FLUSH. */
    CHECK_OK(ipc_batch_new(c, false, &b));
    {
        const char *set[3] = {"SET", k, "v1"};
        CHECK_OK(ipc_batch_add(b, set, NULL, 3));
    }
    CHECK_OK(ipc_batch_add_script(b, get, &k, NULL, 1, NULL, NULL, 0));
    CHECK_OK(ipc_batch_add_script(b, echo, keys, key_lens, 2, args, arg_lens, 1));
    CHECK(ipc_batch_len(b) == 3);
    CHECK_OK(ipc_batch_exec(b, &r));
    CHECK(r != NULL && ipc_reply_len(r) == 3 && element_is(r, 1, "v1", 2));
    CHECK(r != NULL && element_is(ipc_reply_element(r, 2), 1, "a\0b", 3));
    ipc_reply_free(r);
    r = NULL;
    ipc_batch_free(b);
    b = NULL;
    CHECK_OK(cmd(c, &r, "SCRIPT", "FLUSH", NULL));
    ipc_reply_free(r);
    r = NULL;
    CHECK_OK(ipc_batch_new(c, false, &b));
    CHECK_OK(ipc_batch_add_script(b, get, &k, NULL, 1, NULL, NULL, 0));
    {
        const char *set[3] = {"SET", k, "v2"};
        CHECK_OK(ipc_batch_add(b, set, NULL, 3));
    }
    CHECK_OK(ipc_batch_exec(b, &r));
    /* The NOSCRIPT entry ran again as EVAL after the pipeline: it saw the later SET. */
    CHECK(r != NULL && ipc_reply_len(r) == 2 && element_is(r, 0, "v2", 2));
    CHECK(r != NULL && ipc_reply_type(ipc_reply_element(r, 0)) == IPC_REPLY_BULK);
    ipc_reply_free(r);
    r = NULL;
    ipc_batch_free(b);
    b = NULL;

    /* In a transaction (EVAL with the source). */
    CHECK_OK(cmd(c, &r, "SCRIPT", "FLUSH", NULL));
    ipc_reply_free(r);
    r = NULL;
    CHECK_OK(ipc_batch_new(c, true, &b));
    CHECK_OK(ipc_batch_add_script(b, get, &k, NULL, 1, NULL, NULL, 0));
    CHECK_OK(ipc_batch_add_script(b, fail, NULL, NULL, 0, NULL, NULL, 0));
    CHECK_OK(ipc_batch_exec(b, &r));
    CHECK(r != NULL && ipc_reply_len(r) == 2 && element_is(r, 0, "v2", 2));
    CHECK(r != NULL && ipc_reply_type(ipc_reply_element(r, 1)) == IPC_REPLY_ERROR);
    ipc_reply_free(r);
    r = NULL;
    ipc_batch_free(b);

    /* Bad input. */
    CHECK_RC(ipc_script_new(NULL, 0, &s), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_script_new("return 1", 8, NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_script_new("return '\xff'", 11, &s), IPC_ERR_INVALID_ARGUMENT);
    CHECK(s == NULL && last_error_has("UTF-8"));
    CHECK(ipc_script_sha(NULL) != NULL && ipc_script_sha(NULL)[0] == '\0');
    CHECK(last_error_has("script"));
    CHECK_RC(ipc_script_run(NULL, echo, NULL, NULL, 0, NULL, NULL, 0, &r), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_script_run(c, NULL, NULL, NULL, 0, NULL, NULL, 0, &r), IPC_ERR_NULL_ARG);
    CHECK(last_error_has("`script`"));
    CHECK_RC(ipc_script_run(c, echo, NULL, NULL, 1, NULL, NULL, 0, &r), IPC_ERR_NULL_ARG);
    CHECK(last_error_has("`keys`"));
    CHECK_RC(ipc_script_run(c, echo, NULL, NULL, 0, NULL, NULL, 2, &r), IPC_ERR_NULL_ARG);
    CHECK(last_error_has("`args`"));
    {
        const char *holes[2] = {"x", NULL};
        CHECK_RC(ipc_script_run(c, echo, holes, NULL, 2, NULL, NULL, 0, &r), IPC_ERR_NULL_ARG);
        CHECK(last_error_has("keys[1]"));
    }
    CHECK_RC(ipc_script_run(c, echo, NULL, NULL, 0, NULL, NULL, 0, NULL), IPC_ERR_NULL_ARG);
    CHECK(r == NULL);
    CHECK_RC(ipc_batch_add_script(NULL, echo, NULL, NULL, 0, NULL, NULL, 0), IPC_ERR_NULL_ARG);
    ipc_script_free(NULL);

    ipc_script_free(echo);
    ipc_script_free(get);
    ipc_script_free(fail);
    ipc_script_free(broken);
}

/* ---- rate limiters ------------------------------------------------------------------- */

/* Records the server's time of each allowed acquire: "seconds microseconds". */
static const char *const LOG_SOURCE =
    "local t = redis.call('TIME') return redis.call('RPUSH', KEYS[1], t[1] .. ' ' .. t[2])";

enum { RATE = 20, BURST = 5, WINDOW_S = 2, SHARED_MS = 2600 };

/* child-rate NAME LOG REFUSED MODE: take units of the shared limiter for SHARED_MS, logging
 * each allowed one with the server's time; MODE "poll" tries again 1 ms after a refusal
 * (counting refusals in REFUSED), "wait" uses acquire_wait. */
static int child_rate(const char *lname, const char *log, const char *refused, const char *mode) {
    ipc_client *c = NULL;
    ipc_rate_limiter *rl = NULL;
    ipc_script *logger = NULL;
    double end;
    long refusals = 0;
    char buf[32];
    int bad = 0;
    if (ipc_client_new(url, NULL, &c) != IPC_OK) return 3;
    if (ipc_rate_limiter_new(c, lname, strlen(lname), RATE, 1000, BURST, &rl) != IPC_OK) return 4;
    if (ipc_script_new(LOG_SOURCE, strlen(LOG_SOURCE), &logger) != IPC_OK) return 5;
    end = now_ms() + SHARED_MS;
    while (now_ms() < end && bad == 0) {
        bool ok = false;
        uint64_t retry = 0;
        if (strcmp(mode, "poll") == 0) {
            if (ipc_rate_limiter_acquire(rl, 1, &ok, &retry) != IPC_OK) bad = 6;
            if (!ok && (retry == 0 || retry > 1000000 / RATE)) bad = 7;
            if (!ok) {
                refusals++;
                sleep_ms(1);
            }
        } else if (ipc_rate_limiter_acquire_wait(rl, 1, 200, &ok) != IPC_OK) {
            bad = 8;
        }
        if (ok) {
            ipc_reply *r = NULL;
            if (ipc_script_run(c, logger, &log, NULL, 1, NULL, NULL, 0, &r) != IPC_OK) bad = 9;
            ipc_reply_free(r);
        }
    }
    snprintf(buf, sizeof buf, "%ld", refusals);
    {
        ipc_reply *r = NULL;
        if (cmd(c, &r, "INCRBY", refused, buf, NULL) != IPC_OK) bad = 10;
        ipc_reply_free(r);
    }
    ipc_script_free(logger);
    ipc_rate_limiter_free(rl);
    ipc_client_free(c);
    return bad;
}

static int cmp_ll(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

static void test_rate_limiter_shared(ipc_client *c) {
    const char *lname = name("rate:shared");
    const char *log = name("rate:log");
    const char *refused = name("rate:refused");
    const char *modes[3] = {"poll", "wait", "wait"};
    pid_t pids[3];
    ipc_reply *r = NULL;
    long long *t = NULL;
    size_t n = 0, i, j = 0, most = 0;
    long long refusals;
    for (i = 0; i < 3; i++) {
        const char *args[] = {"child-rate", url, lname, log, refused, modes[i], NULL};
        pids[i] = spawn(args);
        CHECK(pids[i] > 0);
    }
    for (i = 0; i < 3; i++) {
        int st = pids[i] > 0 ? child_status(pids[i]) : -1;
        CHECK(st == 0);
        if (st != 0) fprintf(stderr, "child-rate %s exited %d\n", modes[i], st);
    }
    CHECK_OK(cmd(c, &r, "LRANGE", log, "0", "-1", NULL));
    n = r == NULL ? 0 : ipc_reply_len(r);
    t = calloc(n + 1, sizeof *t);
    for (i = 0; t != NULL && i < n; i++) {
        const char *p = NULL;
        size_t len = 0;
        char buf[64];
        long long s = 0, us = 0;
        if (ipc_reply_string(ipc_reply_element(r, i), &p, &len) == IPC_OK && len < sizeof buf) {
            memcpy(buf, p, len);
            buf[len] = '\0';
            sscanf(buf, "%lld %lld", &s, &us);
        }
        t[i] = s * 1000000 + us;
    }
    ipc_reply_free(r);
    if (t != NULL) {
        qsort(t, n, sizeof *t, cmp_ll);
        /* The most allowed in any window of WINDOW_S seconds (server time). */
        for (i = 0; i < n; i++) {
            while (j < n && t[j] - t[i] <= (long long)WINDOW_S * 1000000) j++;
            if (j - i > most) most = j - i;
        }
    }
    refusals = cmd_int(c, "INCRBY", refused, "0");
    printf("rate limiter shared by 3 processes: %zu allowed in %d ms, at most %zu in %d s "
           "(limit %d), %lld refusals\n",
           n, SHARED_MS, most, WINDOW_S, BURST + RATE * WINDOW_S, refusals);
    CHECK(most <= (size_t)(BURST + RATE * WINDOW_S));
    /* ...and the processes did compete for it: close to the limit, with refusals. */
    CHECK(most >= (size_t)(BURST + RATE * WINDOW_S) * 8 / 10);
    CHECK(refusals > 0);
    free(t);
}

static void test_rate_limiter(ipc_client *c) {
    ipc_rate_limiter *rl = NULL, *dflt = NULL, *x = NULL;
    const char *n1 = name("rate:one");
    const char *n2 = name("rate:default");
    bool ok = true, acquired = false;
    uint64_t retry = 12345;
    double t0, waited;
    int i, allowed = 0;

    /* 10 per second, one at a time: allowed, then refused for about 100 ms. */
    CHECK_OK(ipc_rate_limiter_new(c, n1, strlen(n1), 10, 1000, 1, &rl));
    CHECK_OK(ipc_rate_limiter_acquire(rl, 1, &ok, &retry));
    CHECK(ok && retry == 0);
    CHECK_OK(ipc_rate_limiter_acquire(rl, 1, &ok, &retry));
    CHECK(!ok && retry > 50000 && retry <= 100000);
    /* acquire_wait sleeps about that long. */
    t0 = now_ms();
    CHECK_OK(ipc_rate_limiter_acquire_wait(rl, 1, -1, &acquired));
    waited = now_ms() - t0;
    CHECK(acquired);
    CHECK(waited >= (double)retry / 1000.0 - 15 && waited <= (double)retry / 1000.0 + 60);
    printf("retry-after %.1f ms, acquire_wait waited %.1f ms\n", (double)retry / 1000.0, waited);
    /* A timeout shorter than the wait gives up at once, without sleeping in vain. */
    t0 = now_ms();
    acquired = true;
    CHECK_OK(ipc_rate_limiter_acquire_wait(rl, 1, 10, &acquired));
    CHECK(!acquired && now_ms() - t0 < (quick ? 90 : 50)); /* it would sleep ~100 ms */
    /* Try-once. */
    CHECK_OK(ipc_rate_limiter_acquire_wait(rl, 1, 0, &acquired));
    CHECK(!acquired);

    /* burst 0: the default, the rate (5) at once, then refused. */
    CHECK_OK(ipc_rate_limiter_new(c, n2, strlen(n2), 5, 1000, 0, &dflt));
    for (i = 0; i < 6; i++) {
        CHECK_OK(ipc_rate_limiter_acquire(dflt, 1, &ok, &retry));
        allowed += ok ? 1 : 0;
    }
    CHECK(allowed == 5 && !ok && retry > 0);
    CHECK_RC(ipc_rate_limiter_acquire(dflt, 6, &ok, &retry), IPC_ERR_INVALID_ARGUMENT);
    CHECK(last_error_has("burst"));
    CHECK_RC(ipc_rate_limiter_acquire(dflt, 0, &ok, &retry), IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipc_rate_limiter_acquire_wait(dflt, 0, -1, &acquired), IPC_ERR_INVALID_ARGUMENT);

    /* Invalid values and NULL arguments. */
    CHECK_RC(ipc_rate_limiter_new(c, n1, strlen(n1), 0, 1000, 0, &x), IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipc_rate_limiter_new(c, n1, strlen(n1), -1, 1000, 0, &x), IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipc_rate_limiter_new(c, n1, strlen(n1), NAN, 1000, 0, &x), IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipc_rate_limiter_new(c, n1, strlen(n1), INFINITY, 1000, 0, &x),
             IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipc_rate_limiter_new(c, n1, strlen(n1), 10, 0, 0, &x), IPC_ERR_INVALID_ARGUMENT);
    CHECK(last_error_has("period"));
    CHECK_RC(ipc_rate_limiter_new(c, "", 0, 10, 1000, 0, &x), IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipc_rate_limiter_new(c, "a{b}", 4, 10, 1000, 0, &x), IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipc_rate_limiter_new(NULL, n1, strlen(n1), 10, 1000, 0, &x), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_rate_limiter_new(c, NULL, 0, 10, 1000, 0, &x), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_rate_limiter_new(c, n1, strlen(n1), 10, 1000, 0, NULL), IPC_ERR_NULL_ARG);
    CHECK(x == NULL);
    CHECK_RC(ipc_rate_limiter_acquire(NULL, 1, &ok, &retry), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_rate_limiter_acquire(rl, 1, NULL, &retry), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_rate_limiter_acquire(rl, 1, &ok, NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_rate_limiter_acquire_wait(NULL, 1, 0, &acquired), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_rate_limiter_acquire_wait(rl, 1, 0, NULL), IPC_ERR_NULL_ARG);
    ipc_rate_limiter_free(NULL);

    ipc_rate_limiter_free(rl);
    ipc_rate_limiter_free(dflt);
}

/* ---- semaphores ---------------------------------------------------------------------- */

/* KEYS: holders, max, total. Counts one more holder; keeps the maximum. */
static const char *const ENTER_SOURCE =
    "local v = redis.call('INCR', KEYS[1]) "
    "if v > tonumber(redis.call('GET', KEYS[2]) or '0') then redis.call('SET', KEYS[2], v) end "
    "redis.call('INCR', KEYS[3]) return v";

enum { PERMITS = 3, THREADS = 4, CONTEND_MS = 1500 };

struct contend {
    ipc_client *c;
    ipc_semaphore *sem;
    ipc_script *enter;
    const char *keys[3];
    volatile long errors;
    volatile long over;
    volatile long threads;
};

static void *contend_thread(void *arg) {
    struct contend *k = arg;
    double end = now_ms() + CONTEND_MS;
    unsigned seed = (unsigned)add(&k->threads, 1) * 7919u + 1u;
    while (now_ms() < end) {
        ipc_permit *p = NULL;
        ipc_reply *r = NULL;
        int64_t holders = 0;
        bool held = false;
        const char *decr[2] = {"DECR", k->keys[0]};
        if (ipc_semaphore_acquire(k->sem, 5000, &p) != IPC_OK) {
            add(&k->errors, 1);
            continue;
        }
        if (ipc_script_run(k->c, k->enter, k->keys, NULL, 3, NULL, NULL, 0, &r) != IPC_OK ||
            ipc_reply_integer(r, &holders) != IPC_OK) {
            add(&k->errors, 1);
        }
        ipc_reply_free(r);
        if (holders > PERMITS) add(&k->over, 1);
        seed = seed * 1103515245u + 12345u;
        sleep_ms(2 + (long)((seed >> 16) % 8));
        r = NULL;
        if (ipc_command(k->c, decr, NULL, 2, &r) != IPC_OK) add(&k->errors, 1);
        ipc_reply_free(r);
        if (ipc_permit_release(p, &held) != IPC_OK || !held) add(&k->errors, 1);
        ipc_permit_free(p);
    }
    return NULL;
}

/* THREADS threads taking permits of `sname` for CONTEND_MS; 0 when all went well. */
static long contend(ipc_client *c, const char *sname, const char *holders, const char *max,
                    const char *total) {
    struct contend k;
    pthread_t th[THREADS];
    int i, started = 0;
    memset(&k, 0, sizeof k);
    k.c = c;
    k.keys[0] = holders;
    k.keys[1] = max;
    k.keys[2] = total;
    if (ipc_semaphore_new(c, sname, strlen(sname), PERMITS, 5000, &k.sem) != IPC_OK) return -1;
    if (ipc_script_new(ENTER_SOURCE, strlen(ENTER_SOURCE), &k.enter) != IPC_OK) return -1;
    for (i = 0; i < THREADS; i++) {
        if (pthread_create(&th[i], NULL, contend_thread, &k) == 0) started++;
    }
    for (i = 0; i < started; i++) pthread_join(th[i], NULL);
    ipc_script_free(k.enter);
    ipc_semaphore_free(k.sem);
    return started == THREADS ? load(&k.errors) + load(&k.over) * 1000 : -1;
}

/* child-sem NAME HOLDERS MAX TOTAL: THREADS more contenders, in another process. */
static int child_sem(const char *sname, const char *holders, const char *max,
                     const char *total) {
    ipc_client *c = NULL;
    long r;
    if (ipc_client_new(url, NULL, &c) != IPC_OK) return 3;
    r = contend(c, sname, holders, max, total);
    ipc_client_free(c);
    return r == 0 ? 0 : 4;
}

/* child-holder NAME FLAG: take the one permit, say so in FLAG (its id), and keep it by
 * extending its 600 ms lease every 150 ms, until killed. */
static int child_holder(const char *sname, const char *flag) {
    ipc_client *c = NULL;
    ipc_semaphore *sem = NULL;
    ipc_permit *p = NULL;
    ipc_reply *r = NULL;
    if (ipc_client_new(url, NULL, &c) != IPC_OK) return 3;
    if (ipc_semaphore_new(c, sname, strlen(sname), 1, 600, &sem) != IPC_OK) return 4;
    if (ipc_semaphore_acquire(sem, 5000, &p) != IPC_OK) return 5;
    if (cmd(c, &r, "SET", flag, ipc_permit_id(p), NULL) != IPC_OK) return 6;
    ipc_reply_free(r);
    for (;;) {
        bool held = false;
        sleep_ms(150);
        if (ipc_permit_extend(p, 600, &held) != IPC_OK || !held) return 7;
    }
}

static void test_semaphore_contention(ipc_client *c) {
    const char *sname = name("sem:contend");
    const char *holders = name("sem:holders");
    const char *max = name("sem:max");
    const char *total = name("sem:total");
    const char *args[] = {"child-sem", url, sname, holders, max, total, NULL};
    ipc_semaphore *sem = NULL;
    uint64_t held = 99;
    pid_t pid = spawn(args);
    long mine;
    CHECK(pid > 0);
    mine = contend(c, sname, holders, max, total);
    CHECK(mine == 0);
    CHECK(pid > 0 && child_status(pid) == 0);
    printf("semaphore of %d permits, %d threads in 2 processes: %lld acquisitions, at most "
           "%lld holders at once\n",
           PERMITS, 2 * THREADS, cmd_int(c, "INCRBY", total, "0"), cmd_int(c, "INCRBY", max, "0"));
    CHECK(cmd_int(c, "INCRBY", max, "0") == PERMITS); /* reached, never passed */
    CHECK(cmd_int(c, "INCRBY", total, "0") >= 20);
    CHECK(cmd_int(c, "INCRBY", holders, "0") == 0);
    CHECK_OK(ipc_semaphore_new(c, sname, strlen(sname), PERMITS, 5000, &sem));
    CHECK_OK(ipc_semaphore_held(sem, &held));
    CHECK(held == 0);
    ipc_semaphore_free(sem);
}

static void test_semaphore_dead_holder(ipc_client *c) {
    const char *sname = name("sem:dead");
    const char *flag = name("sem:dead:holder");
    const char *args[] = {"child-holder", url, sname, flag, NULL};
    ipc_semaphore *sem = NULL;
    ipc_permit *p = NULL;
    uint64_t held = 0;
    double t0, waited;
    int ok;
    pid_t pid;
    CHECK_OK(ipc_semaphore_new(c, sname, strlen(sname), 1, 600, &sem));
    pid = spawn(args);
    CHECK(pid > 0);
    if (pid <= 0) {
        ipc_semaphore_free(sem);
        return;
    }
    WAIT_UNTIL(ok, cmd_int(c, "EXISTS", flag, NULL) == 1, 5000);
    CHECK(ok);
    /* Longer than its lease: the live holder keeps it by extending. */
    sleep_ms(900);
    CHECK_RC(ipc_semaphore_acquire(sem, 0, &p), IPC_ERR_TIMEOUT);
    CHECK(p == NULL);
    CHECK_OK(ipc_semaphore_held(sem, &held));
    CHECK(held == 1);
    /* Killed, it gives the permit back when its lease ends (within 600 ms). */
    kill(pid, SIGKILL);
    CHECK(child_status(pid) == 128 + SIGKILL);
    t0 = now_ms();
    CHECK_OK(ipc_semaphore_acquire(sem, 3000, &p));
    waited = now_ms() - t0;
    printf("a SIGKILLed holder's permit came back after %.0f ms (lease 600 ms)\n", waited);
    CHECK(p != NULL && waited >= 300 && waited <= 600 + 250);
    if (p != NULL) {
        char *v = NULL;
        size_t vl = 0;
        bool found = false;
        CHECK_OK(ipc_get(c, flag, strlen(flag), &v, &vl, &found));
        CHECK(found && !bytes_eq(v, vl, ipc_permit_id(p)));
        ipc_buf_free(v, vl);
    }
    ipc_permit_free(p);
    ipc_semaphore_free(sem);
}

static void test_semaphore(ipc_client *c) {
    const char *sname = name("sem:one");
    const char *short_name = name("sem:short");
    ipc_semaphore *sem = NULL, *brief = NULL, *x = NULL;
    ipc_permit *p = NULL, *q = NULL;
    uint64_t held = 99;
    bool still = false, was = false;
    const char *id;
    double t0, waited;

    CHECK_OK(ipc_semaphore_new(c, sname, strlen(sname), 1, 5000, &sem));
    CHECK_OK(ipc_semaphore_acquire(sem, -1, &p));
    id = ipc_permit_id(p);
    CHECK(id != NULL && strlen(id) == 32);
    CHECK_OK(ipc_semaphore_held(sem, &held));
    CHECK(held == 1);
    /* None left: try-once and a timeout give IPC_ERR_TIMEOUT. */
    t0 = now_ms();
    CHECK_RC(ipc_semaphore_acquire(sem, 0, &q), IPC_ERR_TIMEOUT);
    CHECK(now_ms() - t0 < 100);
    t0 = now_ms();
    CHECK_RC(ipc_semaphore_acquire(sem, 200, &q), IPC_ERR_TIMEOUT);
    waited = now_ms() - t0;
    CHECK(q == NULL && waited >= 190 && waited < 700);
    /* Extend, release, release again, extend after release. */
    CHECK_OK(ipc_permit_extend(p, 5000, &still));
    CHECK(still);
    CHECK_RC(ipc_permit_extend(p, 0, &still), IPC_ERR_INVALID_ARGUMENT);
    CHECK_OK(ipc_permit_release(p, &was));
    CHECK(was);
    CHECK(strcmp(ipc_permit_id(p), id) == 0);
    CHECK_OK(ipc_permit_release(p, &was));
    CHECK(!was);
    still = true;
    CHECK_OK(ipc_permit_extend(p, 5000, &still));
    CHECK(!still);
    ipc_permit_free(p);
    p = NULL;
    /* Free releases a held permit. */
    CHECK_OK(ipc_semaphore_acquire(sem, 1000, &p));
    ipc_permit_free(p);
    p = NULL;
    CHECK_OK(ipc_semaphore_held(sem, &held));
    CHECK(held == 0);
    /* A permit whose lease ended is no longer ours, and another can take it. */
    CHECK_OK(ipc_semaphore_new(c, short_name, strlen(short_name), 1, 100, &brief));
    CHECK_OK(ipc_semaphore_acquire(brief, 0, &p));
    sleep_ms(250);
    still = true;
    CHECK_OK(ipc_permit_extend(p, 1000, &still));
    CHECK(!still);
    CHECK_OK(ipc_semaphore_acquire(brief, 0, &q));
    CHECK_OK(ipc_permit_release(p, &was));
    CHECK(!was);
    /* A permit outlives its semaphore handle. */
    ipc_semaphore_free(brief);
    CHECK_OK(ipc_permit_release(q, &was));
    CHECK(was);
    ipc_permit_free(q);
    ipc_permit_free(p);

    /* Invalid values and NULL arguments. */
    CHECK_RC(ipc_semaphore_new(c, sname, strlen(sname), 0, 5000, &x), IPC_ERR_INVALID_ARGUMENT);
    CHECK(last_error_has("permit"));
    CHECK_RC(ipc_semaphore_new(c, sname, strlen(sname), 1, 0, &x), IPC_ERR_INVALID_ARGUMENT);
    CHECK(last_error_has("lease"));
    CHECK_RC(ipc_semaphore_new(c, "", 0, 1, 5000, &x), IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipc_semaphore_new(c, "a{b", 3, 1, 5000, &x), IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipc_semaphore_new(NULL, sname, strlen(sname), 1, 5000, &x), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_semaphore_new(c, NULL, 0, 1, 5000, &x), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_semaphore_new(c, sname, strlen(sname), 1, 5000, NULL), IPC_ERR_NULL_ARG);
    CHECK(x == NULL);
    CHECK_RC(ipc_semaphore_acquire(NULL, 0, &p), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_semaphore_acquire(sem, 0, NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_semaphore_held(NULL, &held), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_semaphore_held(sem, NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_permit_extend(NULL, 100, &still), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_permit_release(NULL, &was), IPC_ERR_NULL_ARG);
    CHECK(ipc_permit_id(NULL) != NULL && ipc_permit_id(NULL)[0] == '\0');
    CHECK(last_error_has("permit"));
    ipc_permit_free(NULL);
    ipc_semaphore_free(NULL);
    ipc_semaphore_free(sem);
}

/* Fairness: FAIR_THREADS threads loop on a semaphore of one permit for FAIR_MS (taking it,
 * holding it 5-10 ms, giving it back); waiters are served first come, first served, so each
 * gets about its share and no wait is long. */
enum { FAIR_THREADS = 6, FAIR_MS = 2000, FAIR_LEASE_MS = 3000 };

struct fair {
    ipc_semaphore *sem;
    double end;
    volatile long holders;
    volatile long over;
    volatile long errors;
};

struct fair_thread {
    struct fair *f;
    long count;
    double longest; /* ms, the longest single acquire */
    unsigned seed;
};

static void *fair_thread(void *arg) {
    struct fair_thread *t = arg;
    struct fair *f = t->f;
    while (now_ms() < f->end) {
        ipc_permit *p = NULL;
        bool held = false;
        double t0 = now_ms(), waited;
        if (ipc_semaphore_acquire(f->sem, 10000, &p) != IPC_OK) {
            add(&f->errors, 1);
            continue;
        }
        waited = now_ms() - t0;
        if (waited > t->longest) t->longest = waited;
        if (add(&f->holders, 1) != 0) add(&f->over, 1);
        t->seed = t->seed * 1103515245u + 12345u;
        sleep_ms(5 + (long)((t->seed >> 16) % 6));
        add(&f->holders, -1);
        if (ipc_permit_release(p, &held) != IPC_OK || !held) add(&f->errors, 1);
        ipc_permit_free(p);
        t->count++;
    }
    return NULL;
}

static void test_semaphore_fairness(ipc_client *c) {
    const char *sname = name("sem:fair");
    struct fair f;
    struct fair_thread t[FAIR_THREADS];
    pthread_t th[FAIR_THREADS];
    char counts[FAIR_THREADS * 12 + 1];
    size_t at = 0;
    long total = 0, least = -1;
    double mean, longest = 0;
    int i, started = 0;
    uint64_t held = 99;

    memset(&f, 0, sizeof f);
    memset(t, 0, sizeof t);
    CHECK_OK(ipc_semaphore_new(c, sname, strlen(sname), 1, FAIR_LEASE_MS, &f.sem));
    if (f.sem == NULL) return;
    f.end = now_ms() + FAIR_MS;
    for (i = 0; i < FAIR_THREADS; i++) {
        t[i].f = &f;
        t[i].seed = (unsigned)i * 7919u + 17u;
        if (pthread_create(&th[i], NULL, fair_thread, &t[i]) != 0) break;
        started++;
    }
    CHECK(started == FAIR_THREADS);
    for (i = 0; i < started; i++) pthread_join(th[i], NULL);
    counts[0] = '\0';
    for (i = 0; i < started; i++) {
        total += t[i].count;
        if (least < 0 || t[i].count < least) least = t[i].count;
        if (t[i].longest > longest) longest = t[i].longest;
        at += (size_t)snprintf(counts + at, sizeof counts - at, " %ld", t[i].count);
    }
    mean = started > 0 ? (double)total / started : 0;
    printf("semaphore of 1 permit, %d threads for %d ms: acquisitions per thread%s (mean "
           "%.1f), longest wait %.0f ms\n",
           started, FAIR_MS, counts, mean, longest);
    CHECK(load(&f.errors) == 0 && load(&f.over) == 0);
    /* Everyone got its turn: at least half the mean each, no wait near the timeout. */
    CHECK(total >= 50);
    CHECK(least >= 0 && (double)least >= mean / 2);
    CHECK(longest < (quick ? 3000 : 1500));
    CHECK_OK(ipc_semaphore_held(f.sem, &held));
    CHECK(held == 0);
    ipc_semaphore_free(f.sem);
}

/* ---- delayed requests ---------------------------------------------------------------- */

enum { DELAYED = 4 };

struct arrivals {
    double at[DELAYED]; /* wall-clock ms, 0 until it came */
    volatile long count;
    volatile long bad;
};

static int delayed_handler(void *userdata, const ipc_request *req, ipc_error_out *err) {
    struct arrivals *a = userdata;
    double now = wall_ms();
    (void)err;
    if (req->payload_len == 2 && req->payload[0] == 'd' && req->payload[1] >= '0' &&
        req->payload[1] < '0' + DELAYED && a->at[req->payload[1] - '0'] == 0) {
        a->at[req->payload[1] - '0'] = now;
    } else {
        add(&a->bad, 1);
    }
    add(&a->count, 1);
    return 0;
}

static void test_delayed(ipc_client *c) {
    const char *q = name("delayed");
    const char *idle = name("delayed:idle");
    const char *queues[1];
    static struct arrivals a;
    ipc_worker *w = NULL;
    ipc_queue_counts qc;
    double before[DELAYED], after[DELAYED];
    const uint64_t delay[DELAYED] = {300, 600, 450, 0};
    double due_at = 0;
    int i, ok;

    /* With no worker, they wait in the delayed set and are counted there. */
    CHECK_OK(ipc_send_request_delayed(c, idle, strlen(idle), "x", 1, 60000));
    CHECK_OK(ipc_send_request_at(c, idle, strlen(idle), "y", 1, (uint64_t)wall_ms() + 60000));
    memset(&qc, 0xff, sizeof qc);
    CHECK_OK(ipc_queue_stats(c, idle, strlen(idle), &qc));
    CHECK(qc.delayed == 2 && qc.pending == 0 && qc.inflight == 0 && qc.dead == 0);

    /* An idle worker (blocked in its pop) gets each when due, not earlier, at most 150 ms
     * late. */
    memset(&a, 0, sizeof a);
    queues[0] = q;
    CHECK_OK(ipc_worker_new(c, queues, NULL, 1, NULL, delayed_handler, &a, NULL, &w));
    sleep_ms(300);
    for (i = 0; i < DELAYED; i++) {
        char payload[3] = {'d', (char)('0' + i), '\0'};
        before[i] = wall_ms();
        if (i == 2) {
            due_at = (double)(uint64_t)before[i] + (double)delay[i];
            CHECK_OK(ipc_send_request_at(c, q, strlen(q), payload, 2, (uint64_t)due_at));
        } else {
            CHECK_OK(ipc_send_request_delayed(c, q, strlen(q), payload, 2, delay[i]));
        }
        after[i] = wall_ms();
    }
    memset(&qc, 0xff, sizeof qc);
    CHECK_OK(ipc_queue_stats(c, q, strlen(q), &qc));
    /* The three future ones at least (the one due at once may be moved already). */
    CHECK(qc.delayed >= 3 && qc.delayed + qc.pending <= 4);
    printf("counts after the sends: delayed %" PRIu64 ", pending %" PRIu64 "\n", qc.delayed, qc.pending);
    WAIT_UNTIL(ok, load(&a.count) >= DELAYED, 3000);
    CHECK(ok && load(&a.bad) == 0);
    for (i = 0; i < DELAYED; i++) {
        double early = i == 2 ? due_at : before[i] + (double)delay[i];
        double late = i == 2 ? due_at : after[i] + (double)delay[i];
        printf("delayed %" PRIu64 " ms: arrived %.1f ms after it was due\n", delay[i],
               a.at[i] - early);
        CHECK(a.at[i] >= early - 1.5);
        CHECK(a.at[i] <= late + 150);
    }
    memset(&qc, 0xff, sizeof qc);
    CHECK_OK(ipc_queue_stats(c, q, strlen(q), &qc));
    CHECK(qc.delayed == 0 && qc.pending == 0);
    CHECK_OK(ipc_worker_stop(w, 5000));
    ipc_worker_free(w);

    /* Bad input. */
    CHECK_RC(ipc_send_request_delayed(c, "", 0, "x", 1, 10), IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipc_send_request_delayed(c, "a{b", 3, "x", 1, 10), IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipc_send_request_delayed(NULL, q, strlen(q), "x", 1, 10), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_send_request_delayed(c, NULL, 0, "x", 1, 10), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_send_request_delayed(c, q, strlen(q), NULL, 0, 10), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_send_request_at(c, "", 0, "x", 1, 0), IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipc_send_request_at(c, q, strlen(q), NULL, 1, 0), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_queue_stats(c, q, strlen(q), NULL), IPC_ERR_NULL_ARG);
}

/* Delayed requests survive workers killed as they come due: reliable workers (lease
 * KILL_LEASE_MS) in child processes, one SIGKILLed every KILL_EVERY_MS and replaced by a fresh
 * one; every request ends in the set of done ones, none in the dead letters. */
enum { KILL_LEASE_MS = 500, KILL_EVERY_MS = 120, KILLS = 10 };

/* KEYS: done, calls, again. ARGV: payload, attempt. */
static const char *const DONE_SOURCE =
    "redis.call('INCR', KEYS[2]) "
    "if ARGV[2] ~= '0' then redis.call('INCR', KEYS[3]) end "
    "return redis.call('SADD', KEYS[1], ARGV[1])";

struct dworker {
    ipc_client *c;
    ipc_script *done;
    const char *keys[3];
};

/* Takes 10 ms (so that a kill finds a request in flight), then adds the payload to the done
 * set, counting the calls and those of requests handed out again. */
static int dworker_handler(void *userdata, const ipc_request *req, ipc_error_out *err) {
    struct dworker *d = userdata;
    ipc_reply *r = NULL;
    const char *args[2];
    size_t lens[2];
    char attempt[16];
    ipc_result rc;
    sleep_ms(10);
    snprintf(attempt, sizeof attempt, "%" PRIu32, req->attempt);
    args[0] = req->payload;
    lens[0] = req->payload_len;
    args[1] = attempt;
    lens[1] = strlen(attempt);
    rc = ipc_script_run(d->c, d->done, d->keys, NULL, 3, args, lens, 2, &r);
    ipc_reply_free(r);
    if (rc != IPC_OK && ipc_error_set(err, "could not add it to the done set") != IPC_OK) return 2;
    return rc == IPC_OK ? 0 : 1;
}

/* child-dworker QUEUE DONE CALLS AGAIN: a reliable worker of QUEUE (see dworker_handler)
 * until killed. */
static int child_dworker(const char *q, const char *done, const char *calls, const char *again) {
    static struct dworker d;
    ipc_worker_options *o = NULL;
    ipc_worker *w = NULL;
    if (ipc_client_new(url, NULL, &d.c) != IPC_OK) return 3;
    if (ipc_script_new(DONE_SOURCE, strlen(DONE_SOURCE), &d.done) != IPC_OK) return 4;
    d.keys[0] = done;
    d.keys[1] = calls;
    d.keys[2] = again;
    /* Deaths count as attempts: enough of them that no request becomes a dead letter. */
    if (ipc_worker_options_new(&o) != IPC_OK ||
        ipc_worker_options_set_reliable(o, true) != IPC_OK ||
        ipc_worker_options_set_lease_ms(o, KILL_LEASE_MS) != IPC_OK ||
        ipc_worker_options_set_max_attempts(o, 50) != IPC_OK ||
        ipc_worker_options_set_block_timeout_ms(o, 100) != IPC_OK)
        return 5;
    if (ipc_worker_new(d.c, &q, NULL, 1, o, dworker_handler, &d, NULL, &w) != IPC_OK) return 6;
    ipc_worker_options_free(o);
    for (;;) sleep_ms(1000);
}

static int queue_idle(ipc_client *c, const char *q) {
    ipc_queue_counts qc;
    memset(&qc, 0xff, sizeof qc);
    return ipc_queue_stats(c, q, strlen(q), &qc) == IPC_OK && qc.pending == 0 &&
           qc.inflight == 0 && qc.delayed == 0 && qc.dead == 0;
}

static void test_delayed_killed_workers(ipc_client *c) {
    const char *q = name("delayed:killed");
    const char *done = name("delayed-done");
    const char *calls = name("delayed-done:calls");
    const char *again = name("delayed-done:again");
    const char *args[] = {"child-dworker", url, q, done, calls, again, NULL};
    const long n = 100;
    pid_t pids[2];
    ipc_queue_counts qc;
    double t0, drained = 0;
    long long by_end;
    long i, sent = 0, bad_exits = 0, kills = 0;
    int k, ok;

    /* Due 200 to 400 ms from now, spread evenly. */
    for (i = 0; i < n; i++) {
        char payload[24];
        snprintf(payload, sizeof payload, "r%03ld", i);
        if (ipc_send_request_delayed(c, q, strlen(q), payload, strlen(payload),
                                     (uint64_t)(200 + i * 200 / (n - 1))) == IPC_OK)
            sent++;
    }
    CHECK(sent == n);
    t0 = now_ms();
    for (k = 0; k < 2; k++) {
        pids[k] = spawn(args);
        CHECK(pids[k] > 0);
    }
    /* A kill every KILL_EVERY_MS, the two in turn, each replaced at once. */
    for (k = 0; k < KILLS; k++) {
        double at = t0 + (double)KILL_EVERY_MS * (k + 1), left = at - now_ms();
        int j = k % 2;
        if (left > 0) sleep_ms((long)left);
        if (pids[j] > 0) {
            kill(pids[j], SIGKILL);
            if (child_status(pids[j]) != 128 + SIGKILL) bad_exits++;
            kills++;
        }
        pids[j] = spawn(args);
        CHECK(pids[j] > 0);
    }
    /* The last two left alive: every request done, and nothing left anywhere (the requests of
     * the killed ones were put back when their leases ran out). */
    by_end = cmd_int(c, "SCARD", done, NULL);
    WAIT_UNTIL(ok, cmd_int(c, "SCARD", done, NULL) >= n, 15000);
    drained = now_ms() - t0;
    CHECK(ok);
    WAIT_UNTIL(ok, queue_idle(c, q), 5000);
    CHECK(ok);
    memset(&qc, 0xff, sizeof qc);
    CHECK_OK(ipc_queue_stats(c, q, strlen(q), &qc));
    CHECK(qc.delayed == 0 && qc.dead == 0 && qc.pending == 0 && qc.inflight == 0);
    for (k = 0; k < 2; k++) {
        if (pids[k] <= 0) continue;
        kill(pids[k], SIGKILL);
        if (child_status(pids[k]) != 128 + SIGKILL) bad_exits++;
    }
    CHECK(bad_exits == 0);
    printf("%ld delayed requests due in 200-400 ms, a worker SIGKILLed every %d ms (%ld kills): "
           "%lld done when the kills ended, all %lld after %.0f ms; %lld handler calls, %lld of "
           "them for requests handed out again after a death\n",
           n, KILL_EVERY_MS, kills, by_end, cmd_int(c, "SCARD", done, NULL), drained,
           cmd_int(c, "INCRBY", calls, "0"), cmd_int(c, "INCRBY", again, "0"));
    CHECK(cmd_int(c, "SCARD", done, NULL) == n);
    CHECK(cmd_int(c, "INCRBY", calls, "0") >= n);
}

/* ---- the service registry ------------------------------------------------------------ */

static int echo_handler(void *userdata, const ipc_call_info *call, ipc_rpc_reply *reply,
                        ipc_error_out *err) {
    (void)userdata;
    (void)err;
    return ipc_rpc_reply_set(reply, call->payload, call->payload_len) == IPC_OK ? 0 : 1;
}

/* Whether `svc` is among the services. */
static int listed(ipc_client *c, const char *svc) {
    ipc_service_names *names = NULL;
    size_t i, n;
    int found = 0;
    if (ipc_services(c, &names) != IPC_OK) return -1;
    n = ipc_service_names_len(names);
    for (i = 0; i < n; i++) {
        const char *p = NULL;
        size_t len = 0;
        if (ipc_service_names_get(names, i, &p, &len) == IPC_OK && bytes_eq(p, len, svc)) found = 1;
    }
    ipc_service_names_free(names);
    return found;
}

static size_t instance_count(ipc_client *c, const char *svc) {
    ipc_instances *list = NULL;
    size_t n;
    if (ipc_service_instances(c, svc, strlen(svc), &list) != IPC_OK) return 999;
    n = ipc_instances_len(list);
    ipc_instances_free(list);
    return n;
}

static void test_registry(ipc_client *c) {
    const char *svc = name("registry");
    ipc_worker_options *o = NULL;
    ipc_server *s1 = NULL, *s2 = NULL;
    ipc_instances *list = NULL;
    ipc_service_names *names = NULL;
    char host[256];
    double started = wall_ms();
    size_t i, n;
    int with_version = 0, plain = 0;

    memset(host, 0, sizeof host);
    gethostname(host, sizeof host - 1);
    CHECK_OK(ipc_worker_options_new(&o));
    CHECK_OK(ipc_worker_options_set_version(o, "1.2.3"));
    CHECK_OK(ipc_worker_options_add_metadata(o, "zone", "eu-west"));
    CHECK_OK(ipc_worker_options_add_metadata(o, "role", ""));
    CHECK_OK(ipc_serve(c, svc, strlen(svc), o, echo_handler, NULL, NULL, &s1));
    CHECK_OK(ipc_serve(c, svc, strlen(svc), NULL, echo_handler, NULL, NULL, &s2));
    ipc_worker_options_free(o);

    CHECK(listed(c, svc) == 1);
    CHECK_OK(ipc_service_instances(c, svc, strlen(svc), &list));
    n = ipc_instances_len(list);
    CHECK(n == 2);
    for (i = 0; i < n; i++) {
        const ipc_instance *in = ipc_instances_get(list, i);
        CHECK(in != NULL);
        if (in == NULL) continue;
        CHECK(bytes_eq(in->service, in->service_len, svc));
        CHECK(in->id != NULL && strlen(in->id) > 0);
        CHECK(in->host != NULL && strcmp(in->host, host) == 0);
        CHECK(in->pid == (uint32_t)getpid());
        CHECK((double)in->started_ms >= started - 1000 && (double)in->started_ms <= wall_ms());
        CHECK(in->expires_in_ms > 0 && in->expires_in_ms <= 3000);
        CHECK(in->metadata != NULL);
        if (in->version != NULL && strcmp(in->version, "1.2.3") == 0) {
            with_version++;
            CHECK(in->metadata_count == 2);
            if (in->metadata_count == 2) {
                const ipc_field *f = in->metadata;
                CHECK(bytes_eq(f[0].name, f[0].name_len, "zone"));
                CHECK(bytes_eq(f[0].value, f[0].value_len, "eu-west"));
                CHECK(strcmp(f[0].value, "eu-west") == 0); /* NUL-terminated too */
                CHECK(bytes_eq(f[1].name, f[1].name_len, "role"));
                CHECK(f[1].value != NULL && f[1].value_len == 0 && f[1].value[0] == '\0');
            }
        } else if (in->version != NULL && in->version[0] == '\0') {
            plain++;
            CHECK(in->metadata_count == 0);
        }
    }
    CHECK(with_version == 1 && plain == 1);
    CHECK(ipc_instances_get(list, n) == NULL && last_error_has("out of range"));
    ipc_instances_free(list);
    list = NULL;

    /* A stopped server is withdrawn at once; the service goes with the last. */
    CHECK_OK(ipc_server_stop(s1, 5000));
    CHECK(instance_count(c, svc) == 1);
    CHECK(listed(c, svc) == 1);
    ipc_server_free(s2);
    CHECK(instance_count(c, svc) == 0);
    CHECK(listed(c, svc) == 0);
    ipc_server_free(s1);

    /* Nobody serves it: an empty list. */
    CHECK(instance_count(c, name("registry:nobody")) == 0);

    /* Bad input. */
    CHECK_RC(ipc_service_instances(c, "", 0, &list), IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipc_service_instances(c, "a{b", 3, &list), IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipc_service_instances(NULL, svc, strlen(svc), &list), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_service_instances(c, svc, strlen(svc), NULL), IPC_ERR_NULL_ARG);
    CHECK(list == NULL);
    CHECK_RC(ipc_services(NULL, &names), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_services(c, NULL), IPC_ERR_NULL_ARG);
    CHECK_OK(ipc_services(c, &names));
    {
        const char *p = NULL;
        size_t len = 0;
        CHECK_RC(ipc_service_names_get(names, ipc_service_names_len(names), &p, &len),
                 IPC_ERR_INVALID_ARGUMENT);
        CHECK_RC(ipc_service_names_get(names, 0, NULL, &len), IPC_ERR_NULL_ARG);
        CHECK_RC(ipc_service_names_get(NULL, 0, &p, &len), IPC_ERR_NULL_ARG);
    }
    ipc_service_names_free(names);
    CHECK(ipc_service_names_len(NULL) == 0);
    CHECK(ipc_instances_len(NULL) == 0);
    CHECK(ipc_instances_get(NULL, 0) == NULL);
    ipc_service_names_free(NULL);
    ipc_instances_free(NULL);
    CHECK_RC(ipc_worker_options_set_version(NULL, "1"), IPC_ERR_NULL_ARG);
    CHECK_OK(ipc_worker_options_new(&o));
    CHECK_RC(ipc_worker_options_set_version(o, NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_worker_options_set_version(o, "\xff"), IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipc_worker_options_add_metadata(o, "k", NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_worker_options_add_metadata(o, NULL, "v"), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_worker_options_add_metadata(o, "k", "\xfe"), IPC_ERR_INVALID_ARGUMENT);
    ipc_worker_options_free(o);
}

/* child-server SERVICE VERSION: serve SERVICE (echo), announcing VERSION, until killed. */
static int child_server(const char *svc, const char *version) {
    ipc_client *c = NULL;
    ipc_worker_options *o = NULL;
    ipc_server *s = NULL;
    if (ipc_client_new(url, NULL, &c) != IPC_OK) return 3;
    if (ipc_worker_options_new(&o) != IPC_OK ||
        ipc_worker_options_set_version(o, version) != IPC_OK)
        return 4;
    if (ipc_serve(c, svc, strlen(svc), o, echo_handler, NULL, NULL, &s) != IPC_OK) return 5;
    ipc_worker_options_free(o);
    for (;;) sleep_ms(1000);
}

/* Whether an instance of `svc` with process id `pid` is listed: 1 (its version in
 * `version`, how long it stays listed in `*expires_ms`), 0, or -1 on an error. */
static int instance_of(ipc_client *c, const char *svc, pid_t pid, char *version, size_t cap,
                       uint64_t *expires_ms) {
    ipc_instances *list = NULL;
    size_t i, n;
    int found = 0;
    if (ipc_service_instances(c, svc, strlen(svc), &list) != IPC_OK) return -1;
    n = ipc_instances_len(list);
    for (i = 0; i < n; i++) {
        const ipc_instance *in = ipc_instances_get(list, i);
        if (in == NULL || in->pid != (uint32_t)pid) continue;
        found = 1;
        snprintf(version, cap, "%s", in->version);
        *expires_ms = in->expires_in_ms;
    }
    ipc_instances_free(list);
    return found;
}

/* A server killed with SIGKILL (no withdrawal) leaves the registry when its TTL (3 s) runs
 * out: not before the expiry it announced, at most 3.5 s after the kill; a fail-fast call
 * then fails with IPC_ERR_NO_SERVER at once. */
static void test_registry_killed_server(ipc_client *c) {
    const char *svc = name("registry:killed");
    const char *args[] = {"child-server", url, svc, "4.5.6", NULL};
    ipc_call_options *o = NULL;
    char version[32] = "";
    char *reply = NULL;
    size_t reply_len = 0;
    uint64_t expires = 0;
    double t_list, t_kill, gone = -1, unlisted = -1, took;
    ipc_result rc;
    int ok;
    pid_t pid = spawn(args);
    CHECK(pid > 0);
    if (pid <= 0) return;
    CHECK_OK(ipc_call_options_new(&o));
    CHECK_OK(ipc_call_options_set_fail_fast(o, true));
    CHECK_OK(ipc_call_options_set_timeout_ms(o, 3000));

    /* Listed with the child's pid and version; it answers. */
    WAIT_UNTIL(ok, instance_of(c, svc, pid, version, sizeof version, &expires) == 1, 10000);
    CHECK(ok);
    CHECK(strcmp(version, "4.5.6") == 0);
    CHECK(listed(c, svc) == 1);
    CHECK_OK(ipc_call(c, svc, strlen(svc), "", 0, "ping", 4, o, &reply, &reply_len));
    CHECK(bytes_eq(reply, reply_len, "ping"));
    ipc_buf_free(reply, reply_len);
    reply = NULL;

    /* Killed: listed until the expiry it last announced, then gone with its service. */
    t_list = now_ms();
    CHECK(instance_of(c, svc, pid, version, sizeof version, &expires) == 1);
    CHECK(expires > 0 && expires <= 3000);
    kill(pid, SIGKILL);
    t_kill = now_ms();
    CHECK(child_status(pid) == 128 + SIGKILL);
    while (now_ms() - t_kill < 5000 && (gone < 0 || unlisted < 0)) {
        if (gone < 0 && instance_count(c, svc) == 0) gone = now_ms();
        if (unlisted < 0 && listed(c, svc) == 0) unlisted = now_ms();
        sleep_ms(10);
    }
    printf("a SIGKILLed server left the registry %.0f ms after the kill (it had %" PRIu64
           " ms left, TTL 3000 ms), its service %.0f ms after\n",
           gone - t_kill, expires, unlisted - t_kill);
    CHECK(gone > 0 && gone - t_kill <= 3500);
    CHECK(gone > 0 && gone - t_list >= (double)expires - 20);
    CHECK(unlisted > 0 && unlisted - t_kill <= 3500);
    CHECK(instance_of(c, svc, pid, version, sizeof version, &expires) == 0);

    /* Fail-fast: no live server, IPC_ERR_NO_SERVER at once (not after the 3 s timeout). */
    took = now_ms();
    rc = ipc_call(c, svc, strlen(svc), "", 0, "ping", 4, o, &reply, &reply_len);
    took = now_ms() - took;
    CHECK_RC(rc, IPC_ERR_NO_SERVER);
    CHECK(reply == NULL);
    CHECK(took < 1000);
    printf("fail-fast call after it left: %s in %.1f ms\n", ipc_result_name(rc), took);
    ipc_call_options_free(o);
}

int main(int argc, char **argv) {
    ipc_client *c = NULL;
    const char *quick_env = getenv("REDIPC_TEST_QUICK");
    quick = quick_env != NULL && strcmp(quick_env, "1") == 0;
    self = argv[0];
    if (argc >= 3 && strncmp(argv[1], "child-", 6) == 0) {
        url = argv[2];
        if (strcmp(argv[1], "child-rate") == 0 && argc == 7)
            return child_rate(argv[3], argv[4], argv[5], argv[6]);
        if (strcmp(argv[1], "child-sem") == 0 && argc == 7)
            return child_sem(argv[3], argv[4], argv[5], argv[6]);
        if (strcmp(argv[1], "child-holder") == 0 && argc == 5)
            return child_holder(argv[3], argv[4]);
        if (strcmp(argv[1], "child-dworker") == 0 && argc == 7)
            return child_dworker(argv[3], argv[4], argv[5], argv[6]);
        if (strcmp(argv[1], "child-server") == 0 && argc == 5)
            return child_server(argv[3], argv[4]);
        return 2;
    }
    if (argc < 2) {
        fprintf(stderr, "usage: %s URL\n", argv[0]);
        return 2;
    }
    url = argv[1];
    snprintf(prefix, sizeof prefix, "coord:%ld:", (long)getpid());
    CHECK_OK(ipc_client_new(url, NULL, &c));
    if (c == NULL) return check_summary();

    test_scripts(c);
    test_rate_limiter(c);
    test_rate_limiter_shared(c);
    test_semaphore(c);
    test_semaphore_contention(c);
    test_semaphore_dead_holder(c);
    test_semaphore_fairness(c);
    test_delayed(c);
    test_delayed_killed_workers(c);
    test_registry(c);
    test_registry_killed_server(c);

    ipc_client_free(c);
    return check_summary();
}
