/*
 * Idle footprint of a redipc C client with one subscription (issue 18; see idle.h): the
 * default options, or --health-check-ms MS. The subscription's callback path (library
 * dispatcher threads) is the one an application gets without poll mode.
 */
#include "idle.h"

#include <redipc.h>

static void check(ipc_result rc, const char *what) {
    if (rc != IPC_OK) {
        fprintf(stderr, "idle_redipc: %s: %s: %s\n", what, ipc_result_name(rc), ipc_last_error_message());
        exit(1);
    }
}

static void on_message(void *userdata, const ipc_message *msg) {
    (void)userdata;
    (void)msg;
}

int main(int argc, char **argv) {
    idle_args a;
    idle_parse_args(argc, argv, &a);
    char url[512];
    if (a.sock) snprintf(url, sizeof url, "unix://%s", a.sock);
    else snprintf(url, sizeof url, "redis://%s:%d/0", a.host, a.port);
    ipc_options *o = NULL;
    check(ipc_options_new(&o), "ipc_options_new");
    if (a.health_check_ms >= 0)
        check(ipc_options_set_health_check_interval_ms(o, (uint64_t)a.health_check_ms),
              "ipc_options_set_health_check_interval_ms");
    ipc_client *c = NULL;
    check(ipc_client_new(url, o, &c), "ipc_client_new");
    ipc_options_free(o);
    const char *names[1] = {IDLE_CHANNEL};
    size_t lens[1] = {strlen(IDLE_CHANNEL)};
    ipc_subscription *sub = NULL;
    /* Returns once the server confirmed the subscription. */
    check(ipc_subscribe(c, IPC_SUB_CHANNEL, names, lens, 1, NULL, on_message, NULL, NULL, &sub), "ipc_subscribe");
    idle_ready();
    for (;;) pause(); /* until SIGTERM */
}
