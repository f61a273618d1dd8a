/* sentinel_test.c: Redis Sentinel from C: a client made from a redis-sentinel:// URL finds
 * the master, follows it through `SENTINEL FAILOVER` (commands recover within 10 s, the
 * subscription is restored with events and gets what is published after), and discovery
 * errors are clear and show no password.
 *
 *   ./sentinel_test SENTINEL_PORT1,SENTINEL_PORT2,SENTINEL_PORT3
 *   (sentinels on 127.0.0.1 watching the master "mymaster", which has one replica)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

typedef struct {
    volatile long messages, reactivated, disconnected;
} events;

static void on_event(void *userdata, const ipc_message *m) {
    events *e = userdata;
    if (m->kind == IPC_EVENT_MESSAGE) add(&e->messages, 1);
    if (m->kind == IPC_EVENT_REACTIVATED) add(&e->reactivated, 1);
    if (m->kind == IPC_EVENT_DISCONNECTED) add(&e->disconnected, 1);
}

/* A command; its reply (freed by the caller) or NULL. */
static ipc_reply *cmd(ipc_client *c, int n, const char *a0, const char *a1, const char *a2) {
    const char *args[3] = {a0, a1, a2};
    ipc_reply *r = NULL;
    if (ipc_command(c, args, NULL, (size_t)n, &r) != IPC_OK) return NULL;
    return r;
}

/* The master's port as the sentinel at `sentinel` says, or -1. */
static long master_port(ipc_client *sentinel) {
    ipc_reply *r = cmd(sentinel, 3, "SENTINEL", "get-master-addr-by-name", "mymaster");
    long port = -1;
    const ipc_reply *p = NULL;
    const char *s = NULL;
    size_t len = 0;
    if (r && ipc_reply_len(r) == 2 && (p = ipc_reply_element(r, 1)) != NULL &&
        ipc_reply_string(p, &s, &len) == IPC_OK &&
        len < 16) {
        char buf[16];
        memcpy(buf, s, len);
        buf[len] = 0;
        port = strtol(buf, NULL, 10);
    }
    ipc_reply_free(r);
    return port;
}

/* Whether a replica of the master `c` has everything written to it (`WAIT 1`). */
static int synced(ipc_client *c) {
    ipc_reply *r = cmd(c, 3, "WAIT", "1", "1000");
    int64_t n = 0;
    int ok = r && ipc_reply_integer(r, &n) == IPC_OK && n >= 1;
    ipc_reply_free(r);
    return ok;
}

/* Whether sentinel:k holds the one character `want` on `c`. */
static int holds(ipc_client *c, char want) {
    char *buf = NULL;
    size_t len = 0;
    bool found = false;
    if (ipc_get(c, "sentinel:k", 10, &buf, &len, &found) != IPC_OK) return 0;
    int ok = found && len == 1 && buf[0] == want;
    ipc_buf_free(buf, len);
    return ok;
}

static ipc_client *connect_to(const char *url) {
    ipc_client *c = NULL;
    ipc_options *o = NULL;
    if (ipc_options_new(&o) != IPC_OK) return NULL;
    if (ipc_options_set_connect_timeout_ms(o, 2000) != IPC_OK ||
        ipc_client_new(url, o, &c) != IPC_OK)
        c = NULL;
    ipc_options_free(o);
    return c;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s SENTINEL_PORT1,SENTINEL_PORT2,...\n", argv[0]);
        return 2;
    }
    char url[512], hosts[400] = "", first[64];
    char ports[256];
    snprintf(ports, sizeof ports, "%s", argv[1]);
    for (char *p = strtok(ports, ","); p; p = strtok(NULL, ",")) {
        if (!hosts[0]) snprintf(first, sizeof first, "redis://127.0.0.1:%s", p);
        size_t n = strlen(hosts);
        snprintf(hosts + n, sizeof hosts - n, "%s127.0.0.1:%s", n ? "," : "", p);
    }
    snprintf(url, sizeof url, "redis-sentinel://%s/0#mymaster", hosts);
    int ok;

    ipc_client *sentinel = connect_to(first);
    CHECK(sentinel != NULL);
    long old = master_port(sentinel);
    CHECK(old > 0);

    ipc_options *o = NULL;
    CHECK_OK(ipc_options_new(&o));
    CHECK_OK(ipc_options_set_health_check_interval_ms(o, 300));
    CHECK_OK(ipc_options_set_response_timeout_ms(o, 10000));
    ipc_client *c = NULL;
    CHECK_OK(ipc_client_new(url, o, &c));
    ipc_options_free(o);
    if (!c) return check_summary();
    CHECK_OK(ipc_set(c, "sentinel:k", 10, "1", 1, 0));
    events ev = {0};
    const char *ch = "sentinel:news";
    ipc_subscription *sub = NULL;
    CHECK_OK(ipc_subscribe(c, IPC_SUB_CHANNEL, &ch, NULL, 1, NULL, on_event, &ev, NULL, &sub));

    /* Replicated first (replication is asynchronous), then the failover. */
    char old_url[64];
    snprintf(old_url, sizeof old_url, "redis://127.0.0.1:%ld", old);
    ipc_client *old_master = connect_to(old_url);
    CHECK(old_master != NULL);
    WAIT_UNTIL(ok, synced(old_master), 20000);
    CHECK(ok);
    ipc_client_free(old_master);
    ipc_reply *r = cmd(sentinel, 3, "SENTINEL", "FAILOVER", "mymaster");
    CHECK(r != NULL);
    ipc_reply_free(r);
    long now = -1;
    WAIT_UNTIL(ok, (now = master_port(sentinel)) > 0 && now != old, 20000);
    CHECK(ok);
    /* Until the old master is demoted a write may still land there (Sentinel's window;
     * the client leaves it on +switch-master): written until it is on the new master. */
    double t0 = now_ms();
    char new_url[64];
    snprintf(new_url, sizeof new_url, "redis://127.0.0.1:%ld", now);
    ipc_client *new_master = connect_to(new_url);
    CHECK(new_master != NULL);
    WAIT_UNTIL(ok, ipc_set(c, "sentinel:k", 10, "2", 1, 0) == IPC_OK && holds(new_master, '2'),
               10000);
    CHECK(ok);
    fprintf(stderr, "writes on the new master %.0f ms after the sentinels named it\n",
            now_ms() - t0);
    ipc_client_free(new_master);
    WAIT_UNTIL(ok, load(&ev.reactivated) >= 1, 10000);
    CHECK(ok);
    int64_t receivers = 0;
    CHECK_OK(ipc_publish(c, ch, strlen(ch), "after", 5, &receivers));
    WAIT_UNTIL(ok, load(&ev.messages) >= 1, 5000);
    CHECK(ok);
    ipc_subscription_free(sub);
    ipc_client_free(c);
    ipc_client_free(sentinel);

    /* Discovery errors: clear, and no password in them. */
    const char *secret = "s3nt1nel-Pa55";
    char bad[512]; /* room for `hosts` (400) and the rest: -O1 builds check snprintf sizes */
    snprintf(bad, sizeof bad, "redis-sentinel://:%s@127.0.0.1:1/0#mymaster", secret);
    CHECK_OK(ipc_options_new(&o));
    CHECK_OK(ipc_options_set_connect_timeout_ms(o, 500));
    CHECK_OK(ipc_options_set_sentinel_password(o, secret));
    CHECK_OK(ipc_options_set_sentinel_username(o, "watcher"));
    CHECK_RC(ipc_client_new(bad, o, &c), IPC_ERR_CONNECTION);
    CHECK(strstr(ipc_last_error_message(), "sentinel") != NULL);
    CHECK(strstr(ipc_last_error_message(), secret) == NULL);
    snprintf(bad, sizeof bad, "redis-sentinel://:%s@%s/0#nobody", secret, hosts);
    CHECK_RC(ipc_client_new(bad, NULL, &c), IPC_ERR_CONNECTION);
    CHECK(strstr(ipc_last_error_message(), "does not know the master") != NULL);
    CHECK(strstr(ipc_last_error_message(), secret) == NULL);
    /* Sentinel credentials these sentinels (no password) refuse. */
    CHECK_RC(ipc_client_new(url, o, &c), IPC_ERR_CONNECTION);
    CHECK(strstr(ipc_last_error_message(), "WRONGPASS") != NULL);
    CHECK(strstr(ipc_last_error_message(), secret) == NULL);
    CHECK_RC(ipc_client_new("redis-sentinel://127.0.0.1:1/0", o, &c), IPC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(ipc_last_error_message(), "#") != NULL);
    CHECK_RC(ipc_options_set_sentinel_password(o, NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_options_set_sentinel_username(NULL, "x"), IPC_ERR_NULL_ARG);
    ipc_options_free(o);
    return check_summary();
}
