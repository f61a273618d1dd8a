/* hello.c: connect to Redis through redipc, SET, GET and INCR a key, print the results.
 *
 *   ./hello redis://127.0.0.1:6379/0      (or unix:///path/to/redis.sock)
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "redipc.h"

/* Print the failed call and the library's explanation, and return 1. */
static int fail(const char *what, ipc_result rc) {
    fprintf(stderr, "%s: %s: %s\n", what, ipc_result_name(rc), ipc_last_error_message());
    return 1;
}

int main(int argc, char **argv) {
    const char *url = argc > 1 ? argv[1] : "redis://127.0.0.1:6379/0";
    ipc_client *client = NULL;
    ipc_result rc;
    const char *key = "hello:greeting";
    const char *value = "Hello from C";
    char *buf = NULL;
    size_t len = 0;
    bool found = false;
    int64_t counter = 0;
    int status = 0;

    printf("redipc %s (header %d.%d.%d)\n", ipc_version(), IPC_VERSION_MAJOR,
           IPC_VERSION_MINOR, IPC_VERSION_PATCH);

    rc = ipc_client_new(url, NULL, &client);
    if (rc != IPC_OK) return fail("connect", rc);

    rc = ipc_set(client, key, strlen(key), value, strlen(value), 0);
    if (rc != IPC_OK) { status = fail("SET", rc); goto out; }
    printf("SET %s \"%s\"\n", key, value);

    rc = ipc_get(client, key, strlen(key), &buf, &len, &found);
    if (rc != IPC_OK) { status = fail("GET", rc); goto out; }
    if (found) {
        printf("GET %s -> \"%.*s\" (%zu bytes)\n", key, (int)len, buf, len);
    } else {
        printf("GET %s -> (nil)\n", key);
    }
    ipc_buf_free(buf, len);

    rc = ipc_incr(client, "hello:counter", strlen("hello:counter"), &counter);
    if (rc != IPC_OK) { status = fail("INCR", rc); goto out; }
    printf("INCR hello:counter -> %" PRId64 "\n", counter);

out:
    ipc_client_free(client);
    return status;
}
