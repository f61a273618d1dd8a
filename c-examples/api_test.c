/* api_test.c: exercises every function of redipc.h against a running server.
 *
 *   ./api_test URL          URL: redis://127.0.0.1:PORT/0 or unix:///path/redis.sock
 *
 * Environment: REDIPC_TEST_QUICK=1 skips the large values (for runs under valgrind).
 * Prints "N passed, M failed" last and exits non-zero on any failure.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static char prefix[64];

/* The key `name` under this run's prefix (one of a few rotating static buffers). */
static const char *key(const char *name) {
    static char bufs[64][128];
    static int next = 0;
    char *b = bufs[next++ % 64];
    snprintf(b, sizeof bufs[0], "%s%s", prefix, name);
    return b;
}

static int last_error_has(const char *text) {
    return strstr(ipc_last_error_message(), text) != NULL;
}

/* Send a command given as NUL-terminated strings, ended by NULL (argvlen = NULL path). */
static ipc_result cmd(ipc_client *c, ipc_reply **out, ...) {
    const char *argv[16];
    size_t argc = 0;
    va_list ap;
    va_start(ap, out);
    for (;;) {
        const char *a = va_arg(ap, const char *);
        if (a == NULL || argc == 16) break;
        argv[argc++] = a;
    }
    va_end(ap);
    return ipc_command(c, argv, NULL, argc, out);
}

/* Whether a reply is a string-like reply holding exactly s. */
static int reply_is(const ipc_reply *r, ipc_reply_kind kind, const char *s) {
    const char *p = NULL;
    size_t n = 0;
    if (ipc_reply_type(r) != kind) return 0;
    if (ipc_reply_string(r, &p, &n) != IPC_OK) return 0;
    return bytes_eq(p, n, s);
}

static void test_names_and_version(void) {
    char expected[64];
    snprintf(expected, sizeof expected, "%d.%d.%d", IPC_VERSION_MAJOR, IPC_VERSION_MINOR,
             IPC_VERSION_PATCH);
    CHECK(strcmp(ipc_version(), expected) == 0);
    CHECK(strcmp(ipc_result_name(IPC_OK), "IPC_OK") == 0);
    CHECK(strcmp(ipc_result_name(IPC_ERR_CONNECTION), "IPC_ERR_CONNECTION") == 0);
    CHECK(strcmp(ipc_result_name(IPC_ERR_TIMEOUT), "IPC_ERR_TIMEOUT") == 0);
    CHECK(strcmp(ipc_result_name(IPC_ERR_SERVER), "IPC_ERR_SERVER") == 0);
    CHECK(strcmp(ipc_result_name(IPC_ERR_PROTOCOL), "IPC_ERR_PROTOCOL") == 0);
    CHECK(strcmp(ipc_result_name(IPC_ERR_CLOSED), "IPC_ERR_CLOSED") == 0);
    CHECK(strcmp(ipc_result_name(IPC_ERR_INVALID_ARGUMENT), "IPC_ERR_INVALID_ARGUMENT") == 0);
    CHECK(strcmp(ipc_result_name(IPC_ERR_NULL_ARG), "IPC_ERR_NULL_ARG") == 0);
    CHECK(strcmp(ipc_result_name(IPC_ERR_UNSUPPORTED), "IPC_ERR_UNSUPPORTED") == 0);
    CHECK(strcmp(ipc_result_name(IPC_ERR_WATCH), "IPC_ERR_WATCH") == 0);
    CHECK(strcmp(ipc_result_name(IPC_ERR_TX_ABORTED), "IPC_ERR_TX_ABORTED") == 0);
    CHECK(strcmp(ipc_result_name(IPC_ERR_HANDLER), "IPC_ERR_HANDLER") == 0);
    CHECK(strcmp(ipc_result_name(IPC_ERR_PANIC), "IPC_ERR_PANIC") == 0);
    CHECK(strcmp(ipc_result_name(IPC_ERR_INTERNAL), "IPC_ERR_INTERNAL") == 0);
    CHECK(strcmp(ipc_result_name(12345), "IPC_ERR_UNKNOWN") == 0);
    CHECK(strcmp(ipc_result_name(-1), "IPC_ERR_UNKNOWN") == 0);
    CHECK(IPC_OK == 0 && IPC_ERR_CONNECTION == 100 && IPC_ERR_TIMEOUT == 200 &&
          IPC_ERR_SERVER == 300 && IPC_ERR_PROTOCOL == 400 && IPC_ERR_CLOSED == 500 &&
          IPC_ERR_INVALID_ARGUMENT == 600 && IPC_ERR_NULL_ARG == 601 &&
          IPC_ERR_UNSUPPORTED == 602 && IPC_ERR_WATCH == 700 && IPC_ERR_TX_ABORTED == 701 &&
          IPC_ERR_REMOTE == 800 && IPC_ERR_NO_SERVER == 801 && IPC_ERR_HANDLER == 802 &&
          IPC_ERR_PANIC == 900 && IPC_ERR_INTERNAL == 901);
    CHECK(strcmp(ipc_reply_kind_name(IPC_REPLY_NIL), "IPC_REPLY_NIL") == 0);
    CHECK(strcmp(ipc_reply_kind_name(IPC_REPLY_PUSH), "IPC_REPLY_PUSH") == 0);
    CHECK(strcmp(ipc_reply_kind_name(99), "IPC_REPLY_UNKNOWN") == 0);
    CHECK(strcmp(ipc_last_error_code(), "") == 0);
}

/* Redis Cluster slots, computed locally (the values of `CLUSTER KEYSLOT`). */
static void test_keyslot(void) {
    uint16_t slot = 9999;
    const char *tag = NULL;
    char key[64];
    CHECK_OK(ipc_keyslot("foo", 3, &slot));
    CHECK(slot == 12182);
    CHECK_OK(ipc_keyslot("bar", 3, &slot));
    CHECK(slot == 5061);
    CHECK_OK(ipc_keyslot("", 0, &slot));
    CHECK(slot == 0);
    {
        uint16_t a = 0, b = 1;
        CHECK_OK(ipc_keyslot("{user1000}.following", 21, &a));
        CHECK_OK(ipc_keyslot("user1000", 8, &b));
        CHECK(a == b);
    }
    CHECK_RC(ipc_keyslot(NULL, 3, &slot), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_keyslot("foo", 3, NULL), IPC_ERR_NULL_ARG);
    /* A tag for a chosen slot: "{TAG}:jobs" lands there. */
    for (uint16_t want = 0; want < 16384; want += 4093) {
        CHECK_OK(ipc_hash_tag_for_slot(want, &tag));
        CHECK(tag != NULL && strlen(tag) > 0);
        if (tag == NULL) continue;
        snprintf(key, sizeof key, "{%s}:jobs", tag);
        CHECK_OK(ipc_keyslot(key, strlen(key), &slot));
        CHECK(slot == want);
    }
    tag = NULL;
    CHECK_RC(ipc_hash_tag_for_slot(16384, &tag), IPC_ERR_INVALID_ARGUMENT);
    CHECK(tag == NULL);
    CHECK_RC(ipc_hash_tag_for_slot(1, NULL), IPC_ERR_NULL_ARG);
}

/* NULL for every pointer argument of every function: IPC_ERR_NULL_ARG (or a neutral value
 * and a last error), outputs untouched, no crash. `c` is a connected client. */
static void test_null_arguments(ipc_client *c) {
    ipc_options *opts = NULL;
    ipc_client *client = NULL;
    ipc_reply *reply = NULL;
    char *buf = (char *)"sentinel";
    size_t len = 777;
    bool found = true, b = true;
    int64_t i = 777;
    double d = 7.5;
    const char *p = "sentinel";
    const char *argv[2] = {"PING", NULL};
    const char *k = key("nulls");
    const char *v = "v";

    /* _free(NULL) is a no-op */
    ipc_options_free(NULL);
    ipc_client_free(NULL);
    ipc_reply_free(NULL);
    ipc_buf_free(NULL, 0);
    ipc_buf_free(NULL, 10);
    CHECK(1);

    CHECK_RC(ipc_options_new(NULL), IPC_ERR_NULL_ARG);
    CHECK(last_error_has("ipc_options_new: argument `out` is NULL"));
    CHECK_OK(ipc_options_new(&opts));
    CHECK(strcmp(ipc_last_error_message(), "") == 0);
    CHECK_RC(ipc_options_set_connect_timeout_ms(NULL, 1), IPC_ERR_NULL_ARG);
    CHECK(last_error_has("`opts`"));
    CHECK_RC(ipc_options_set_response_timeout_ms(NULL, 1), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_options_set_client_name(NULL, "x"), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_options_set_client_name(opts, NULL), IPC_ERR_NULL_ARG);
    CHECK(last_error_has("`name`"));
    CHECK_RC(ipc_options_set_database(NULL, 0), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_options_set_username(NULL, "u"), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_options_set_username(opts, NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_options_set_password(NULL, "p"), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_options_set_password(opts, NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_options_set_key_prefix(NULL, "x:"), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_options_set_key_prefix(opts, NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_options_set_io_threads(NULL, 0), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_options_set_resp3(NULL, true), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_options_set_max_value_size(NULL, 1), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_options_set_reconnect_min_delay_ms(NULL, 1), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_options_set_reconnect_max_delay_ms(NULL, 1), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_options_set_reconnect_max_attempts(NULL, 1), IPC_ERR_NULL_ARG);
    ipc_options_free(opts);

    CHECK_RC(ipc_client_new(NULL, NULL, &client), IPC_ERR_NULL_ARG);
    CHECK(client == NULL && last_error_has("`url`"));
    CHECK_RC(ipc_client_new("redis://127.0.0.1:1", NULL, NULL), IPC_ERR_NULL_ARG);
    CHECK(last_error_has("`out`"));
    CHECK_RC(ipc_client_close(NULL), IPC_ERR_NULL_ARG);
    CHECK(ipc_client_is_connected(NULL) == false);
    CHECK(last_error_has("ipc_client_is_connected: argument `client` is NULL"));

    CHECK_RC(ipc_command(NULL, argv, NULL, 1, &reply), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_command(c, NULL, NULL, 1, &reply), IPC_ERR_NULL_ARG);
    CHECK(last_error_has("`args`"));
    CHECK_RC(ipc_command(c, argv, NULL, 1, NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_command(c, argv, NULL, 2, &reply), IPC_ERR_NULL_ARG); /* argv[1] == NULL */
    CHECK(last_error_has("`args[1]`"));
    CHECK(reply == NULL);

    CHECK_RC(ipc_get(NULL, k, 1, &buf, &len, &found), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_get(c, NULL, 1, &buf, &len, &found), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_get(c, k, 1, NULL, &len, &found), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_get(c, k, 1, &buf, NULL, &found), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_get(c, k, 1, &buf, &len, NULL), IPC_ERR_NULL_ARG);
    CHECK(last_error_has("ipc_get: argument `found` is NULL"));
    CHECK(strcmp((const char *)buf, "sentinel") == 0 && len == 777 && found == true);

    CHECK_RC(ipc_set(NULL, k, 1, v, 1, 0), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_set(c, NULL, 1, v, 1, 0), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_set(c, k, 1, NULL, 1, 0), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_set(c, k, 1, NULL, 0, 0), IPC_ERR_NULL_ARG); /* even for length 0 */
    CHECK_RC(ipc_set_ex(NULL, k, 1, v, 1, 0, 0, &b), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_set_ex(c, NULL, 1, v, 1, 0, 0, &b), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_set_ex(c, k, 1, NULL, 1, 0, 0, &b), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_set_ex(c, k, 1, v, 1, 0, 0, NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_incr(NULL, k, 1, &i), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_incr(c, NULL, 1, &i), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_incr(c, k, 1, NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_incrby(NULL, k, 1, 2, &i), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_incrby(c, NULL, 1, 2, &i), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_incrby(c, k, 1, 2, NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_del(NULL, k, 1, &i), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_del(c, NULL, 1, &i), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_del(c, k, 1, NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_hget(NULL, k, 1, "f", 1, &buf, &len, &found), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_hget(c, NULL, 1, "f", 1, &buf, &len, &found), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_hget(c, k, 1, NULL, 1, &buf, &len, &found), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_hget(c, k, 1, "f", 1, NULL, &len, &found), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_hget(c, k, 1, "f", 1, &buf, NULL, &found), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_hget(c, k, 1, "f", 1, &buf, &len, NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_hset(NULL, k, 1, "f", 1, v, 1, &i), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_hset(c, NULL, 1, "f", 1, v, 1, &i), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_hset(c, k, 1, NULL, 1, v, 1, &i), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_hset(c, k, 1, "f", 1, NULL, 1, &i), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_hset(c, k, 1, "f", 1, v, 1, NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_publish(NULL, "ch", 2, v, 1, &i), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_publish(c, NULL, 2, v, 1, &i), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_publish(c, "ch", 2, NULL, 1, &i), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_publish(c, "ch", 2, v, 1, NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_ping(NULL), IPC_ERR_NULL_ARG);
    CHECK(i == 777);

    /* reply accessors */
    CHECK_OK(cmd(c, &reply, "PING", NULL));
    CHECK(ipc_reply_type(NULL) == IPC_REPLY_NIL && last_error_has("`reply`"));
    CHECK_RC(ipc_reply_integer(NULL, &i), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_reply_integer(reply, NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_reply_double(NULL, &d), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_reply_double(reply, NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_reply_bool(NULL, &b), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_reply_bool(reply, NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_reply_string(NULL, &p, &len), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_reply_string(reply, NULL, &len), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_reply_string(reply, &p, NULL), IPC_ERR_NULL_ARG);
    CHECK(ipc_reply_len(NULL) == 0 && last_error_has("ipc_reply_len"));
    CHECK(ipc_reply_element(NULL, 0) == NULL && last_error_has("ipc_reply_element"));
    CHECK(i == 777 && d == 7.5 && b == true && len == 777);
    ipc_reply_free(reply);
}

static void test_options_and_connect_errors(const char *url) {
    ipc_options *opts = NULL;
    ipc_client *client = NULL;
    double t0;
    const char bad_utf8[] = {(char)0xff, (char)0xfe, 0};

    CHECK_OK(ipc_options_new(&opts));
    CHECK_OK(ipc_options_set_connect_timeout_ms(opts, 1000));
    CHECK_OK(ipc_options_set_response_timeout_ms(opts, 3000));
    CHECK_OK(ipc_options_set_client_name(opts, "redipc-api-test"));
    CHECK_OK(ipc_options_set_database(opts, 0));
    CHECK_OK(ipc_options_set_key_prefix(opts, "apitest:"));
    CHECK_OK(ipc_options_set_io_threads(opts, 0));
    CHECK_OK(ipc_options_set_resp3(opts, true));
    CHECK_OK(ipc_options_set_max_value_size(opts, 64u * 1024 * 1024));
    CHECK_OK(ipc_options_set_reconnect_min_delay_ms(opts, 5));
    CHECK_OK(ipc_options_set_reconnect_max_delay_ms(opts, 500));
    CHECK_OK(ipc_options_set_reconnect_max_attempts(opts, 0));
    CHECK_RC(ipc_options_set_client_name(opts, bad_utf8), IPC_ERR_INVALID_ARGUMENT);
    CHECK(last_error_has("UTF-8"));
    CHECK_RC(ipc_options_set_username(opts, bad_utf8), IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipc_options_set_password(opts, bad_utf8), IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipc_options_set_key_prefix(opts, bad_utf8), IPC_ERR_INVALID_ARGUMENT);
    /* setters only store: values are checked by the function that uses the options */
    CHECK_OK(ipc_options_set_connect_timeout_ms(opts, 0));
    CHECK_RC(ipc_client_new(url, opts, &client), IPC_ERR_INVALID_ARGUMENT);
    CHECK(client == NULL && last_error_has("timeouts must be greater than zero"));
    CHECK_OK(ipc_options_set_connect_timeout_ms(opts, 1000));
    /* the health check off: only over a unix socket (a TCP connection can be half-open) */
    CHECK_OK(ipc_options_set_health_check_interval_ms(opts, 0));
    if (strncmp(url, "unix", 4) == 0) {
        CHECK_OK(ipc_client_new(url, opts, &client));
        ipc_client_free(client);
        client = NULL;
    } else {
        CHECK_RC(ipc_client_new(url, opts, &client), IPC_ERR_INVALID_ARGUMENT);
        CHECK(last_error_has("unix socket"));
    }
    CHECK_OK(ipc_options_set_health_check_interval_ms(opts, 3000));

    /* invalid URLs */
    CHECK_RC(ipc_client_new("not a url", opts, &client), IPC_ERR_INVALID_ARGUMENT);
    CHECK(client == NULL && last_error_has("invalid URL"));
    CHECK_RC(ipc_client_new("http://127.0.0.1:6379", opts, &client), IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipc_client_new("redis://127.0.0.1:notaport", opts, &client),
             IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipc_client_new(bad_utf8, opts, &client), IPC_ERR_INVALID_ARGUMENT);
    /* TLS options on a redis:// URL would not encrypt: refused (tls_test.c tests TLS) */
    ipc_options *tls_opts = NULL;
    CHECK_OK(ipc_options_new(&tls_opts));
    CHECK_OK(ipc_options_set_tls_insecure(tls_opts, true));
    CHECK_RC(ipc_client_new("redis://127.0.0.1:6380", tls_opts, &client), IPC_ERR_INVALID_ARGUMENT);
    CHECK(last_error_has("rediss://"));
    ipc_options_free(tls_opts);

    /* an unreachable server is reported within the connect timeout */
    t0 = now_ms();
    CHECK_RC(ipc_client_new("redis://127.0.0.1:1", opts, &client), IPC_ERR_CONNECTION);
    CHECK(now_ms() - t0 < 1500.0);
    CHECK(client == NULL && strlen(ipc_last_error_message()) > 0);

    /* invalid option values are refused at connect */
    CHECK_OK(ipc_options_set_client_name(opts, "has space"));
    CHECK_RC(ipc_client_new(url, opts, &client), IPC_ERR_INVALID_ARGUMENT);
    CHECK(client == NULL);
    CHECK_OK(ipc_options_set_client_name(opts, "redipc-api-test"));

    /* a good connection with every option set; options can be freed right away */
    CHECK_OK(ipc_client_new(url, opts, &client));
    ipc_options_free(opts);
    CHECK(client != NULL && ipc_client_is_connected(client));
    if (client != NULL) {
        ipc_reply *r = NULL;
        CHECK_OK(cmd(client, &r, "CLIENT", "GETNAME", NULL));
        CHECK(reply_is(r, IPC_REPLY_BULK, "redipc-api-test"));
        ipc_reply_free(r);
    }
    ipc_client_free(client);
}

static void test_typed_helpers(ipc_client *c) {
    const char *k = key("str");
    const char *counter = key("counter");
    const char *h = key("hash");
    char *buf = NULL;
    size_t len = 0;
    bool found = true, was_set = false;
    int64_t n = 0;
    const char bin_val[] = {'a', 0, 'b', (char)0xff, 0};
    const char bin_key[] = {'k', 0, 'e', 'y'};
    char bkey[160];
    size_t bkeylen;
    ipc_reply *r = NULL;

    CHECK_OK(ipc_ping(c));
    CHECK(strcmp(ipc_last_error_message(), "") == 0); /* cleared by a success */

    CHECK_OK(ipc_set(c, k, strlen(k), "hello", 5, 0));
    CHECK_OK(ipc_get(c, k, strlen(k), &buf, &len, &found));
    CHECK(found && bytes_eq(buf, len, "hello"));
    ipc_buf_free(buf, len);

    /* a missing key: OK, found=false, buf=NULL, len=0 */
    buf = (char *)"x";
    len = 9;
    found = true;
    CHECK_OK(ipc_get(c, key("missing"), strlen(key("missing")), &buf, &len, &found));
    CHECK(!found && buf == NULL && len == 0);

    /* an empty value is found, with a non-NULL buffer */
    CHECK_OK(ipc_set(c, k, strlen(k), "", 0, 0));
    CHECK_OK(ipc_get(c, k, strlen(k), &buf, &len, &found));
    CHECK(found && buf != NULL && len == 0);
    ipc_buf_free(buf, len);

    /* binary keys and values */
    memcpy(bkey, prefix, strlen(prefix));
    memcpy(bkey + strlen(prefix), bin_key, sizeof bin_key);
    bkeylen = strlen(prefix) + sizeof bin_key;
    CHECK_OK(ipc_set(c, bkey, bkeylen, bin_val, sizeof bin_val, 0));
    CHECK_OK(ipc_get(c, bkey, bkeylen, &buf, &len, &found));
    CHECK(found && len == sizeof bin_val && memcmp(buf, bin_val, len) == 0);
    ipc_buf_free(buf, len);
    CHECK_OK(ipc_get(c, bkey, strlen(prefix) + 1, &buf, &len, &found)); /* "k" only */
    CHECK(!found);

    /* TTL */
    CHECK_OK(ipc_set(c, k, strlen(k), "v", 1, 60000));
    CHECK_OK(cmd(c, &r, "PTTL", k, NULL));
    CHECK_OK(ipc_reply_integer(r, &n));
    CHECK(n > 0 && n <= 60000);
    ipc_reply_free(r);

    /* NX / XX */
    CHECK_OK(ipc_set_ex(c, k, strlen(k), "nx", 2, 0, IPC_SET_NX, &was_set));
    CHECK(was_set == false);
    CHECK_OK(ipc_set_ex(c, k, strlen(k), "xx", 2, 0, IPC_SET_XX, &was_set));
    CHECK(was_set == true);
    CHECK_OK(ipc_set_ex(c, key("fresh"), strlen(key("fresh")), "1", 1, 5000,
                        IPC_SET_NX, &was_set));
    CHECK(was_set == true);
    CHECK_OK(ipc_set_ex(c, k, strlen(k), "plain", 5, 0, 0, &was_set));
    CHECK(was_set == true);
    CHECK_RC(ipc_set_ex(c, k, strlen(k), "v", 1, 0, IPC_SET_NX | IPC_SET_XX,
                        &was_set),
             IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipc_set_ex(c, k, strlen(k), "v", 1, 0, 8, &was_set),
             IPC_ERR_INVALID_ARGUMENT);

    /* counters */
    CHECK_OK(ipc_incr(c, counter, strlen(counter), &n));
    CHECK(n == 1);
    CHECK_OK(ipc_incrby(c, counter, strlen(counter), 41, &n));
    CHECK(n == 42);
    CHECK_OK(ipc_incrby(c, counter, strlen(counter), -50, &n));
    CHECK(n == -8);
    n = 5;
    CHECK_RC(ipc_incr(c, k, strlen(k), &n), IPC_ERR_SERVER); /* "plain" is not a number */
    CHECK(n == 5 && strcmp(ipc_last_error_code(), "ERR") == 0);
    CHECK(last_error_has("ERR value is not an integer or out of range"));

    /* DEL */
    CHECK_OK(ipc_del(c, counter, strlen(counter), &n));
    CHECK(n == 1);
    CHECK_OK(ipc_del(c, counter, strlen(counter), &n));
    CHECK(n == 0);

    /* hashes */
    CHECK_OK(ipc_hset(c, h, strlen(h), "f1", 2, "v1", 2, &n));
    CHECK(n == 1);
    CHECK_OK(ipc_hset(c, h, strlen(h), "f1", 2, "v1b", 3, &n));
    CHECK(n == 0);
    CHECK_OK(ipc_hset(c, h, strlen(h), "f2", 2, "v2", 2, &n));
    CHECK_OK(ipc_hget(c, h, strlen(h), "f1", 2, &buf, &len, &found));
    CHECK(found && bytes_eq(buf, len, "v1b"));
    ipc_buf_free(buf, len);
    CHECK_OK(ipc_hget(c, h, strlen(h), "nope", 4, &buf, &len, &found));
    CHECK(!found && buf == NULL && len == 0);

    /* PUBLISH: nobody listens */
    CHECK_OK(ipc_publish(c, key("chan"), strlen(key("chan")), "hi", 2, &n));
    CHECK(n == 0);
}

static void test_wrongtype(ipc_client *c) {
    const char *h = key("hash");
    char *buf = (char *)"sentinel";
    size_t len = 777;
    bool found = true;
    ipc_reply *r = NULL;

    CHECK_RC(ipc_get(c, h, strlen(h), &buf, &len, &found), IPC_ERR_SERVER);
    CHECK(last_error_has("WRONGTYPE Operation against a key holding the wrong kind of value"));
    CHECK(strcmp(ipc_last_error_code(), "WRONGTYPE") == 0);
    CHECK(len == 777 && found == true); /* outputs untouched */

    CHECK_RC(cmd(c, &r, "LPUSH", h, "x", NULL), IPC_ERR_SERVER);
    CHECK(r == NULL);
    CHECK(last_error_has("WRONGTYPE Operation against a key holding the wrong kind of value"));
    CHECK(strcmp(ipc_last_error_code(), "WRONGTYPE") == 0);

    CHECK_RC(cmd(c, &r, "NOSUCHCOMMAND", "x", NULL), IPC_ERR_SERVER);
    CHECK(strcmp(ipc_last_error_code(), "ERR") == 0 && last_error_has("unknown command"));

    /* a success clears the last error */
    CHECK_OK(ipc_ping(c));
    CHECK(strcmp(ipc_last_error_message(), "") == 0 && strcmp(ipc_last_error_code(), "") == 0);
}

static void test_command_and_replies(ipc_client *c) {
    ipc_reply *r = NULL;
    const ipc_reply *e = NULL;
    const char *p = NULL;
    size_t n = 0, i;
    int64_t iv = 0;
    double d = 0;
    bool b = false;
    const char *l = key("list");
    const char *h = key("hash");
    const char *s = key("set");
    const char *z = key("zset");
    int seen_f1 = 0, seen_f2 = 0;

    /* argc 0 and an empty command name */
    CHECK_RC(ipc_command(c, &l, NULL, 0, &r), IPC_ERR_INVALID_ARGUMENT);
    CHECK(r == NULL && last_error_has("empty command"));
    CHECK_RC(ipc_command(c, NULL, NULL, 0, &r), IPC_ERR_INVALID_ARGUMENT);
    {
        const char *argv[] = {""};
        CHECK_RC(ipc_command(c, argv, NULL, 1, &r), IPC_ERR_INVALID_ARGUMENT);
    }

    /* binary-safe arguments with argvlen */
    {
        const char val[] = {'x', 0, 'y'};
        const char *argv[] = {"SET", key("bin"), val};
        size_t argvlen[3];
        argvlen[0] = 3;
        argvlen[1] = strlen(argv[1]);
        argvlen[2] = sizeof val;
        CHECK_OK(ipc_command(c, argv, argvlen, 3, &r));
        CHECK(reply_is(r, IPC_REPLY_STATUS, "OK"));
        ipc_reply_free(r);
        CHECK_OK(cmd(c, &r, "GET", key("bin"), NULL));
        CHECK(ipc_reply_type(r) == IPC_REPLY_BULK);
        CHECK_OK(ipc_reply_string(r, &p, &n));
        CHECK(n == 3 && memcmp(p, val, 3) == 0);
        ipc_reply_free(r);
    }

    /* NIL */
    CHECK_OK(cmd(c, &r, "GET", key("missing"), NULL));
    CHECK(ipc_reply_type(r) == IPC_REPLY_NIL && ipc_reply_len(r) == 0);
    ipc_reply_free(r);

    /* INT, and type mismatches naming the actual type */
    CHECK_OK(cmd(c, &r, "RPUSH", l, "a", "b", "c", NULL));
    CHECK(ipc_reply_type(r) == IPC_REPLY_INT);
    CHECK_OK(ipc_reply_integer(r, &iv));
    CHECK(iv == 3);
    CHECK_RC(ipc_reply_string(r, &p, &n), IPC_ERR_INVALID_ARGUMENT);
    CHECK(last_error_has("IPC_REPLY_INT"));
    CHECK_RC(ipc_reply_double(r, &d), IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipc_reply_bool(r, &b), IPC_ERR_INVALID_ARGUMENT);
    CHECK(ipc_reply_element(r, 0) == NULL && last_error_has("IPC_REPLY_INT"));
    ipc_reply_free(r);

    /* ARRAY */
    CHECK_OK(cmd(c, &r, "LRANGE", l, "0", "-1", NULL));
    CHECK(ipc_reply_type(r) == IPC_REPLY_ARRAY && ipc_reply_len(r) == 3);
    CHECK(reply_is(ipc_reply_element(r, 0), IPC_REPLY_BULK, "a"));
    CHECK(reply_is(ipc_reply_element(r, 2), IPC_REPLY_BULK, "c"));
    CHECK(ipc_reply_element(r, 1) == ipc_reply_element(r, 1)); /* stable pointers */
    CHECK(ipc_reply_element(r, 3) == NULL && last_error_has("out of range"));
    CHECK_RC(ipc_reply_integer(ipc_reply_element(r, 0), &iv), IPC_ERR_INVALID_ARGUMENT);
    CHECK(last_error_has("IPC_REPLY_BULK"));
    /* freeing an element is refused (no crash, no double free) */
    ipc_reply_free((ipc_reply *)ipc_reply_element(r, 0));
    CHECK(last_error_has("element"));
    CHECK(reply_is(ipc_reply_element(r, 0), IPC_REPLY_BULK, "a"));
    ipc_reply_free(r);

    /* MAP (RESP3 HGETALL): keys and values alternate */
    CHECK_OK(cmd(c, &r, "HGETALL", h, NULL));
    CHECK(ipc_reply_type(r) == IPC_REPLY_MAP && ipc_reply_len(r) == 4);
    for (i = 0; i + 1 < ipc_reply_len(r); i += 2) {
        if (reply_is(ipc_reply_element(r, i), IPC_REPLY_BULK, "f1"))
            seen_f1 = reply_is(ipc_reply_element(r, i + 1), IPC_REPLY_BULK, "v1b");
        if (reply_is(ipc_reply_element(r, i), IPC_REPLY_BULK, "f2"))
            seen_f2 = reply_is(ipc_reply_element(r, i + 1), IPC_REPLY_BULK, "v2");
    }
    CHECK(seen_f1 && seen_f2);
    ipc_reply_free(r);

    /* SET (RESP3 SMEMBERS) */
    CHECK_OK(cmd(c, &r, "SADD", s, "m1", "m2", NULL));
    ipc_reply_free(r);
    CHECK_OK(cmd(c, &r, "SMEMBERS", s, NULL));
    CHECK(ipc_reply_type(r) == IPC_REPLY_SET && ipc_reply_len(r) == 2);
    ipc_reply_free(r);

    /* DOUBLE (RESP3 ZSCORE, ZINCRBY) */
    CHECK_OK(cmd(c, &r, "ZADD", z, "1.5", "m", NULL));
    ipc_reply_free(r);
    CHECK_OK(cmd(c, &r, "ZSCORE", z, "m", NULL));
    CHECK(ipc_reply_type(r) == IPC_REPLY_DOUBLE);
    CHECK_OK(ipc_reply_double(r, &d));
    CHECK(d == 1.5);
    CHECK_RC(ipc_reply_integer(r, &iv), IPC_ERR_INVALID_ARGUMENT);
    CHECK(last_error_has("IPC_REPLY_DOUBLE"));
    ipc_reply_free(r);
    CHECK_OK(cmd(c, &r, "ZINCRBY", z, "0.25", "m", NULL));
    CHECK_OK(ipc_reply_double(r, &d));
    CHECK(d == 1.75);
    ipc_reply_free(r);

    /* BOOL (a RESP3 boolean from a script) */
    CHECK_OK(cmd(c, &r, "EVAL", "redis.setresp(3); return true", "0", NULL));
    CHECK(ipc_reply_type(r) == IPC_REPLY_BOOL);
    b = false;
    CHECK_OK(ipc_reply_bool(r, &b));
    CHECK(b == true);
    ipc_reply_free(r);

    /* BIGNUMBER */
    CHECK_OK(cmd(c, &r, "EVAL", "return {big_number='123456789012345678901234567890'}", "0",
                 NULL));
    CHECK(reply_is(r, IPC_REPLY_BIGNUMBER, "123456789012345678901234567890"));
    ipc_reply_free(r);

    /* VERBATIM */
    CHECK_OK(cmd(c, &r, "EVAL", "return {verbatim_string={format='txt', string='hello'}}", "0",
                 NULL));
    CHECK(reply_is(r, IPC_REPLY_VERBATIM, "hello"));
    ipc_reply_free(r);

    /* an error reply inside an array keeps its code and text */
    CHECK_OK(cmd(c, &r, "EVAL", "return {1, redis.error_reply('MYERR boom')}", "0", NULL));
    CHECK(ipc_reply_type(r) == IPC_REPLY_ARRAY && ipc_reply_len(r) == 2);
    e = ipc_reply_element(r, 1);
    CHECK(reply_is(e, IPC_REPLY_ERROR, "MYERR boom"));
    ipc_reply_free(r);

    /* STATUS */
    CHECK_OK(cmd(c, &r, "PING", NULL));
    CHECK(reply_is(r, IPC_REPLY_STATUS, "PONG"));
    CHECK(ipc_reply_len(r) == 0);
    ipc_reply_free(r);
}

static void test_resp2(const char *url) {
    ipc_options *opts = NULL;
    ipc_client *c = NULL;
    ipc_reply *r = NULL;

    CHECK_OK(ipc_options_new(&opts));
    CHECK_OK(ipc_options_set_resp3(opts, false));
    CHECK_OK(ipc_client_new(url, opts, &c));
    ipc_options_free(opts);
    if (c == NULL) return;
    CHECK_OK(cmd(c, &r, "HGETALL", key("hash"), NULL));
    CHECK(ipc_reply_type(r) == IPC_REPLY_ARRAY && ipc_reply_len(r) == 4);
    ipc_reply_free(r);
    CHECK_OK(cmd(c, &r, "ZSCORE", key("zset"), "m", NULL));
    CHECK(reply_is(r, IPC_REPLY_BULK, "1.75"));
    ipc_reply_free(r);
    ipc_client_free(c);
}

static void test_big_values(ipc_client *c, int quick) {
    size_t big = 16u * 1024 * 1024;
    char *val, *buf = NULL;
    size_t len = 0, i;
    bool found = false;
    const char *k = key("big");

    if (quick) return;
    val = malloc(big);
    CHECK(val != NULL);
    if (val == NULL) return;
    for (i = 0; i < big; i++) val[i] = (char)(i * 31 + 7);
    CHECK_OK(ipc_set(c, k, strlen(k), val, big, 0));
    CHECK_OK(ipc_get(c, k, strlen(k), &buf, &len, &found));
    CHECK(found && len == big && buf != NULL && memcmp(buf, val, big) == 0);
    ipc_buf_free(buf, len);
    free(val);
    CHECK_OK(ipc_del(c, k, strlen(k), (int64_t[]){0}));
}

static void test_value_limit(const char *url) {
    ipc_options *opts = NULL;
    ipc_client *c = NULL;
    size_t two_mib = 2u * 1024 * 1024;
    char *val = calloc(two_mib, 1);
    const char *k = key("limited");
    const char *argv[3];
    size_t argvlen[3];
    ipc_reply *r = NULL;
    char *buf = NULL;
    size_t len = 0;
    bool found = false;

    CHECK(val != NULL);
    if (val == NULL) return;
    CHECK_OK(ipc_options_new(&opts));
    CHECK_OK(ipc_options_set_max_value_size(opts, 1024 * 1024));
    CHECK_OK(ipc_client_new(url, opts, &c));
    ipc_options_free(opts);
    if (c == NULL) {
        free(val);
        return;
    }
    CHECK_RC(ipc_set(c, k, strlen(k), val, two_mib, 0), IPC_ERR_INVALID_ARGUMENT);
    CHECK(last_error_has("over the limit"));
    argv[0] = "SET";
    argv[1] = k;
    argv[2] = val;
    argvlen[0] = 3;
    argvlen[1] = strlen(k);
    argvlen[2] = two_mib;
    CHECK_RC(ipc_command(c, argv, argvlen, 3, &r), IPC_ERR_INVALID_ARGUMENT);
    CHECK(r == NULL);
    /* the client still works, and a value under the limit passes */
    CHECK_OK(ipc_ping(c));
    CHECK(ipc_client_is_connected(c));
    CHECK_OK(ipc_set(c, k, strlen(k), val, 1024 * 1024, 0));
    CHECK_OK(ipc_get(c, k, strlen(k), &buf, &len, &found));
    CHECK(found && len == 1024 * 1024);
    ipc_buf_free(buf, len);
    ipc_client_free(c);
    free(val);
}

static void test_timeout_and_close(const char *url) {
    ipc_options *opts = NULL;
    ipc_client *c = NULL;
    ipc_reply *r = NULL;
    double t0;

    /* a reply that does not come within the response timeout: a script that keeps the
       server busy for a second */
    CHECK_OK(ipc_options_new(&opts));
    CHECK_OK(ipc_options_set_response_timeout_ms(opts, 200));
    CHECK_OK(ipc_client_new(url, opts, &c));
    ipc_options_free(opts);
    if (c == NULL) return;
    t0 = now_ms();
    CHECK_RC(cmd(c, &r, "EVAL",
                 "local t = redis.call('TIME'); local s = t[1] * 1000000 + t[2]; "
                 "repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] - s > 1000000",
                 "0", NULL),
             IPC_ERR_TIMEOUT);
    CHECK(now_ms() - t0 < 900.0);
    CHECK(r == NULL && strlen(ipc_last_error_message()) > 0);
    /* a blocking command gets its own block time (plus the response timeout): nil, not
       a timeout */
    t0 = now_ms();
    CHECK_OK(cmd(c, &r, "BLPOP", key("never"), "0.5", NULL));
    CHECK(r != NULL && ipc_reply_type(r) == IPC_REPLY_NIL);
    CHECK(now_ms() - t0 >= 450.0);
    ipc_reply_free(r);
    r = NULL;
    /* state changers are refused on the shared connection */
    CHECK_RC(cmd(c, &r, "SUBSCRIBE", "x", NULL), IPC_ERR_INVALID_ARGUMENT);
    CHECK_RC(cmd(c, &r, "MULTI", NULL), IPC_ERR_INVALID_ARGUMENT);
    ipc_client_free(c);

    /* a closed client */
    c = NULL;
    CHECK_OK(ipc_client_new(url, NULL, &c));
    if (c == NULL) return;
    CHECK_OK(ipc_client_close(c));
    CHECK_OK(ipc_client_close(c));
    CHECK(!ipc_client_is_connected(c));
    CHECK_RC(ipc_ping(c), IPC_ERR_CLOSED);
    CHECK_RC(cmd(c, &r, "GET", key("str"), NULL), IPC_ERR_CLOSED);
    ipc_client_free(c);
}

/* ipc_client_close() from another thread ends a call in flight, even a BLPOP that would
   wait forever: the daemon's shutdown path. */
struct blocked_call {
    ipc_client *c;
    volatile long done;
    int rc;
};

static void *blpop_forever(void *arg) {
    struct blocked_call *b = arg;
    ipc_reply *r = NULL;
    b->rc = cmd(b->c, &r, "BLPOP", key("never-pushed"), "0", NULL);
    ipc_reply_free(r);
    add(&b->done, 1);
    return NULL;
}

/* Whether LRANGE k 0 -1 is n items, the first being `first`. */
static int list_is(ipc_client *c, const char *k, const char *first, size_t n) {
    ipc_reply *r = NULL;
    const char *s = NULL;
    size_t len = 0;
    int is = 0;
    if (cmd(c, &r, "LRANGE", k, "0", "-1", NULL) == IPC_OK && ipc_reply_len(r) == n && n > 0 &&
        ipc_reply_string(ipc_reply_element(r, 0), &s, &len) == IPC_OK)
        is = len == strlen(first) && memcmp(s, first, len) == 0;
    ipc_reply_free(r);
    return is;
}

/* A blocking pop that times out loses nothing: the server is paused past the call's limit
   (a block time of 0.1 s plus a response timeout of 0.6 s); the pop runs when the pause
   ends, and what it took is put back at the head of the list. */
static void test_a_timed_out_pop_loses_nothing(const char *url) {
    ipc_options *opts = NULL;
    ipc_client *c = NULL, *p = NULL;
    ipc_reply *r = NULL;
    int ok;
    CHECK_OK(ipc_options_new(&opts));
    CHECK_OK(ipc_options_set_response_timeout_ms(opts, 600));
    CHECK_OK(ipc_client_new(url, opts, &c));
    ipc_options_free(opts);
    CHECK_OK(ipc_client_new(url, NULL, &p));
    if (c == NULL || p == NULL) {
        ipc_client_free(c);
        ipc_client_free(p);
        return;
    }
    CHECK_OK(cmd(p, &r, "RPUSH", key("popped"), "first", "m", "n", NULL));
    ipc_reply_free(r);
    r = NULL;
    /* its connection for blocking commands made first (the pause would hold its dial) */
    CHECK_OK(cmd(c, &r, "BLPOP", key("popped"), "1", NULL));
    ipc_reply_free(r);
    r = NULL;
    CHECK_OK(cmd(p, &r, "CLIENT", "PAUSE", "1000", "ALL", NULL));
    ipc_reply_free(r);
    r = NULL;
    CHECK_RC(cmd(c, &r, "BLPOP", key("popped"), "0.1", NULL), IPC_ERR_TIMEOUT);
    WAIT_UNTIL(ok, list_is(p, key("popped"), "m", 2), 3000);
    CHECK(ok);
    ipc_client_free(c);
    ipc_client_free(p);
}

/* An ACL user limited to some keys and channels: a command outside its rights is
 * IPC_ERR_SERVER with the code NOPERM, the client goes on; the password never shows. */
static void test_acl_user(ipc_client *admin, const char *url) {
    char user[64], pattern[80], channels[80], key[80], pass[64];
    snprintf(user, sizeof user, "apitest-acl-%d", (int)getpid());
    snprintf(pass, sizeof pass, "Acl-Pa55-%d", (int)getpid());
    snprintf(pattern, sizeof pattern, "~%s:*", user);
    snprintf(channels, sizeof channels, "&%s:*", user);
    snprintf(key, sizeof key, "%s:k", user);
    char pw_arg[80];
    snprintf(pw_arg, sizeof pw_arg, ">%s", pass);
    const char *setuser[] = {"ACL", "SETUSER", user, "on", pw_arg, pattern, channels, "+@all"};
    ipc_reply *r = NULL;
    CHECK_OK(ipc_command(admin, setuser, NULL, 8, &r));
    ipc_reply_free(r);
    ipc_options *o = NULL;
    CHECK_OK(ipc_options_new(&o));
    CHECK_OK(ipc_options_set_username(o, user));
    CHECK_OK(ipc_options_set_password(o, pass));
    ipc_client *c = NULL;
    CHECK_OK(ipc_client_new(url, o, &c));
    ipc_options_free(o);
    if (c) {
        CHECK_OK(ipc_set(c, key, strlen(key), "v", 1, 0));
        CHECK_RC(ipc_set(c, "apitest:forbidden", 17, "v", 1, 0), IPC_ERR_SERVER);
        CHECK(strcmp(ipc_last_error_code(), "NOPERM") == 0);
        CHECK(strstr(ipc_last_error_message(), pass) == NULL);
        char *buf = NULL;
        size_t len = 0;
        bool found = false;
        CHECK_OK(ipc_get(c, key, strlen(key), &buf, &len, &found));
        CHECK(found && len == 1);
        ipc_buf_free(buf, len);
        ipc_client_free(c);
    }
    const char *deluser[] = {"ACL", "DELUSER", user};
    CHECK_OK(ipc_command(admin, deluser, NULL, 3, &r));
    ipc_reply_free(r);
    const char *del[] = {"DEL", key};
    CHECK_OK(ipc_command(admin, del, NULL, 2, &r));
    ipc_reply_free(r);
}

static void test_close_ends_a_call_in_flight(const char *url) {
    struct blocked_call b = {NULL, 0, -1};
    pthread_t t;
    int ok;
    CHECK_OK(ipc_client_new(url, NULL, &b.c));
    if (b.c == NULL) return;
    CHECK(pthread_create(&t, NULL, blpop_forever, &b) == 0);
    sleep_ms(200); /* blocked on the server now */
    CHECK(load(&b.done) == 0);
    CHECK_OK(ipc_client_close(b.c));
    WAIT_UNTIL(ok, load(&b.done) == 1, 2000);
    CHECK(ok);
    if (!ok) return; /* the thread still uses the client: do not free it */
    pthread_join(t, NULL);
    CHECK(b.rc == IPC_ERR_CLOSED);
    ipc_client_free(b.c);
}

int main(int argc, char **argv) {
    const char *url;
    ipc_client *c = NULL;
    const char *quick_env = getenv("REDIPC_TEST_QUICK");
    int quick = quick_env != NULL && strcmp(quick_env, "1") == 0;

    if (argc < 2) {
        fprintf(stderr, "usage: %s URL\n", argv[0]);
        return 2;
    }
    url = argv[1];
    snprintf(prefix, sizeof prefix, "api_test:%ld:", (long)getpid());

    test_names_and_version();
    test_keyslot();
    test_options_and_connect_errors(url);

    CHECK_OK(ipc_client_new(url, NULL, &c));
    if (c == NULL) return check_summary();
    test_null_arguments(c);
    test_typed_helpers(c);
    test_wrongtype(c);
    test_command_and_replies(c);
    test_resp2(url);
    test_big_values(c, quick);
    test_value_limit(url);
    test_timeout_and_close(url);
    test_a_timed_out_pop_loses_nothing(url);
    test_close_ends_a_call_in_flight(url);
    test_acl_user(c, url);
    ipc_client_free(c);
    return check_summary();
}
