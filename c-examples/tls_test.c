/* tls_test.c: TLS (rediss://) from C against private redis-servers listening with TLS, with
 * certificates made for this run (scripts/lib/tls-certs.sh): commands, pub/sub and its
 * reconnect after CLIENT KILL, PEM given as files and as data, a wrong CA, a name mismatch
 * with and without the server-name override, insecure mode, mutual TLS with and without a
 * client certificate, and settings that are refused.
 *
 *   ./tls_test TLS_PORT MTLS_PORT CERTS_DIR PLAIN_URL
 *   (the first server also listens on 127.0.0.2; the second requires client certificates)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static const char *certs;
static char path_buf[4][1024];

static const char *cert_path(int slot, const char *name) {
    snprintf(path_buf[slot], sizeof path_buf[slot], "%s/%s", certs, name);
    return path_buf[slot];
}

/* Options trusting the test CA (from its file). */
static ipc_options *with_ca(void) {
    ipc_options *o = NULL;
    if (ipc_options_new(&o) != IPC_OK) return NULL;
    if (ipc_options_set_tls_ca_file(o, cert_path(0, "ca.crt")) != IPC_OK) return NULL;
    if (ipc_options_set_connect_timeout_ms(o, 3000) != IPC_OK) return NULL;
    return o;
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char buf[16384];
    *len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return buf;
}

typedef struct {
    volatile long messages, activated, reactivated, disconnected;
} events;

static void on_event(void *userdata, const ipc_message *m) {
    events *e = userdata;
    switch (m->kind) {
    case IPC_EVENT_MESSAGE: add(&e->messages, 1); break;
    case IPC_EVENT_ACTIVATED: add(&e->activated, 1); break;
    case IPC_EVENT_REACTIVATED: add(&e->reactivated, 1); break;
    case IPC_EVENT_DISCONNECTED: add(&e->disconnected, 1); break;
    default: break;
    }
}

static int cmd(ipc_client *c, const char *a0, const char *a1, const char *a2, const char *a3) {
    const char *args[4] = {a0, a1, a2, a3};
    size_t n = a3 ? 4 : a2 ? 3 : a1 ? 2 : 1;
    ipc_reply *r = NULL;
    ipc_result rc = ipc_command(c, args, NULL, n, &r);
    ipc_reply_free(r);
    return rc == IPC_OK;
}

/* Whether connecting to `url` with `o` fails with `want` and a message holding `text`. */
static int fails_with(const char *url, ipc_options *o, ipc_result want, const char *text) {
    ipc_client *c = NULL;
    ipc_result rc = ipc_client_new(url, o, &c);
    int ok = rc == want && strstr(ipc_last_error_message(), text) != NULL;
    if (!ok) fprintf(stderr, "wanted %s with \"%s\", got %s: %s\n", ipc_result_name(want), text,
                     ipc_result_name(rc), ipc_last_error_message());
    ipc_client_free(c);
    ipc_options_free(o);
    return ok;
}

static int connects(const char *url, ipc_options *o) {
    ipc_client *c = NULL;
    ipc_result rc = ipc_client_new(url, o, &c);
    if (rc != IPC_OK) fprintf(stderr, "connect %s: %s\n", url, ipc_last_error_message());
    int ok = rc == IPC_OK && cmd(c, "PING", NULL, NULL, NULL);
    ipc_client_free(c);
    ipc_options_free(o);
    return ok;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s TLS_PORT MTLS_PORT CERTS_DIR PLAIN_URL\n", argv[0]);
        return 2;
    }
    char url[128], other_ip[128], mtls[128];
    snprintf(url, sizeof url, "rediss://127.0.0.1:%s/0", argv[1]);
    snprintf(other_ip, sizeof other_ip, "rediss://127.0.0.2:%s/0", argv[1]);
    snprintf(mtls, sizeof mtls, "rediss://127.0.0.1:%s/0", argv[2]);
    certs = argv[3];
    const char *plain = argv[4];
    int ok;

    /* Commands and pub/sub over TLS, and the reconnects after CLIENT KILL. */
    ipc_options *o = with_ca();
    ipc_client *c = NULL;
    CHECK_OK(ipc_client_new(url, o, &c));
    ipc_options_free(o);
    CHECK_OK(ipc_set(c, "tls:k", 5, "v", 1, 0));
    char *buf = NULL;
    size_t len = 0;
    bool found = false;
    CHECK_OK(ipc_get(c, "tls:k", 5, &buf, &len, &found));
    CHECK(found && len == 1 && buf[0] == 'v');
    ipc_buf_free(buf, len);
    events ev = {0};
    const char *ch = "tls:news";
    ipc_subscription *sub = NULL;
    CHECK_OK(ipc_subscribe(c, IPC_SUB_CHANNEL, &ch, NULL, 1, NULL, on_event, &ev, NULL, &sub));
    WAIT_UNTIL(ok, load(&ev.activated) == 1, 5000);
    CHECK(ok);
    int64_t receivers = 0;
    CHECK_OK(ipc_publish(c, ch, strlen(ch), "one", 3, &receivers));
    WAIT_UNTIL(ok, load(&ev.messages) == 1, 5000);
    CHECK(ok);
    CHECK(cmd(c, "CLIENT", "KILL", "TYPE", "pubsub"));
    WAIT_UNTIL(ok, load(&ev.reactivated) == 1, 5000);
    CHECK(ok);
    CHECK(load(&ev.disconnected) == 1);
    CHECK_OK(ipc_publish(c, ch, strlen(ch), "two", 3, &receivers));
    WAIT_UNTIL(ok, load(&ev.messages) == 2, 5000);
    CHECK(ok);
    ipc_client *killer = NULL;
    CHECK_OK(ipc_client_new(plain, NULL, &killer));
    CHECK(cmd(killer, "CLIENT", "KILL", "TYPE", "normal"));
    ipc_client_free(killer);
    WAIT_UNTIL(ok, cmd(c, "PING", NULL, NULL, NULL), 5000);
    CHECK(ok);
    ipc_subscription_free(sub);
    ipc_client_free(c);

    /* The CA given as PEM data; insecure without a CA. */
    o = NULL;
    CHECK_OK(ipc_options_new(&o));
    char *pem = read_file(cert_path(1, "ca.crt"), &len);
    CHECK(pem != NULL);
    CHECK_OK(ipc_options_set_tls_ca_pem(o, pem, len));
    CHECK(connects(url, o));
    CHECK_OK(ipc_options_new(&o));
    CHECK_OK(ipc_options_set_tls_insecure(o, true));
    CHECK(connects(url, o));

    /* A wrong CA, the system's roots, a name mismatch and its override. */
    CHECK_OK(ipc_options_new(&o));
    CHECK_OK(ipc_options_set_tls_ca_file(o, cert_path(1, "other-ca.crt")));
    CHECK(fails_with(url, o, IPC_ERR_CONNECTION, "unknown issuer"));
    CHECK(fails_with(url, NULL, IPC_ERR_CONNECTION, "unknown issuer"));
    CHECK(fails_with(other_ip, with_ca(), IPC_ERR_CONNECTION, "name mismatch"));
    o = with_ca();
    CHECK_OK(ipc_options_set_tls_server_name(o, "localhost"));
    CHECK(connects(other_ip, o));

    /* Mutual TLS: refused without a client certificate; files, then PEM data. */
    CHECK(fails_with(mtls, with_ca(), IPC_ERR_CONNECTION, "client certificate"));
    o = with_ca();
    CHECK_OK(ipc_options_set_tls_cert_file(o, cert_path(1, "client.crt")));
    CHECK_OK(ipc_options_set_tls_key_file(o, cert_path(2, "client.key")));
    CHECK(connects(mtls, o));
    o = with_ca();
    size_t key_len = 0;
    char key[4096];
    char *k = read_file(cert_path(2, "client.key"), &key_len);
    CHECK(k != NULL && key_len < sizeof key);
    memcpy(key, k, key_len);
    pem = read_file(cert_path(1, "client.crt"), &len);
    CHECK_OK(ipc_options_set_tls_cert_pem(o, pem, len));
    CHECK_OK(ipc_options_set_tls_key_pem(o, key, key_len));
    CHECK(connects(mtls, o));

    /* Refused settings: TLS options on redis://, a missing file, a key without its
     * certificate, a bad key (its text never in the message), NULL arguments. */
    CHECK(fails_with(plain, with_ca(), IPC_ERR_INVALID_ARGUMENT, "not rediss://"));
    CHECK_OK(ipc_options_new(&o));
    CHECK_OK(ipc_options_set_tls_ca_file(o, "/nonexistent/redipc-ca.pem"));
    CHECK(fails_with(url, o, IPC_ERR_INVALID_ARGUMENT, "redipc-ca.pem"));
    o = with_ca();
    CHECK_OK(ipc_options_set_tls_key_file(o, cert_path(2, "client.key")));
    CHECK(fails_with(mtls, o, IPC_ERR_INVALID_ARGUMENT, "needs its"));
    o = with_ca();
    const char *bad = "-----BEGIN PRIVATE KEY-----\nS3cr3tKeyMaterial\n-----END PRIVATE KEY-----\n";
    CHECK_OK(ipc_options_set_tls_cert_file(o, cert_path(1, "client.crt")));
    CHECK_OK(ipc_options_set_tls_key_pem(o, bad, strlen(bad)));
    CHECK(fails_with(mtls, o, IPC_ERR_INVALID_ARGUMENT, "client key"));
    CHECK(strstr(ipc_last_error_message(), "S3cr3t") == NULL);
    CHECK_OK(ipc_options_new(&o));
    CHECK_RC(ipc_options_set_tls_ca_file(o, NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_options_set_tls_ca_pem(o, NULL, 10), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_options_set_tls_server_name(o, NULL), IPC_ERR_NULL_ARG);
    CHECK_RC(ipc_options_set_tls_insecure(NULL, true), IPC_ERR_NULL_ARG);
    ipc_options_free(o);
    return check_summary();
}
