/* rpc_echo.c: a tiny RPC server and caller on the C API, the C side of the cross-language
 * RPC tests (a Python caller against this server, this caller against a Python server).
 *
 * Usage:
 *
 *   rpc_echo serve URL SERVICE
 *       Serves SERVICE (concurrency 4). Every call is answered with its payload upper-cased
 *       (ASCII letters only; other bytes unchanged, binary-safe), whatever the method, except
 *       method "fail", which is answered with the remote error "failed on purpose".
 *       Prints the line "ready" on stdout (flushed) once it serves. Runs until SIGTERM or
 *       SIGINT, or until it reads a line "quit" on stdin (EOF on stdin does not stop it);
 *       then stops (waiting up to 5 s for running calls), prints "stopped" and exits 0.
 *       Exit 1 if it cannot connect or serve (the error on stderr).
 *
 *   rpc_echo call URL SERVICE PAYLOAD [METHOD [TIMEOUT_MS]]
 *       Calls SERVICE with PAYLOAD (a string; "" for 0 bytes) and METHOD (default none; ""
 *       for none), waiting up to TIMEOUT_MS (default 5000).
 *       Success: prints the reply bytes followed by "\n" on stdout, exit 0.
 *       Failure: prints one line "ERROR <IPC_ERR_NAME> <message>" on stdout, exit 1
 *       (for a remote error: "ERROR IPC_ERR_REMOTE ipc_call: call SERVICE.fail: failed on
 *       purpose"; with no server: "ERROR IPC_ERR_NO_SERVER ...").
 *
 *   Exit 2 for a usage error. URL: redis://HOST:PORT/DB or unix:///path/redis.sock.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "redipc.h"

static int usage(void) {
    fprintf(stderr,
            "usage: rpc_echo serve URL SERVICE\n"
            "       rpc_echo call URL SERVICE PAYLOAD [METHOD [TIMEOUT_MS]]\n");
    return 2;
}

/* The handler: upper-case the payload; method "fail" answers with a remote error. */
static int echo_handler(void *userdata, const ipc_call_info *call, ipc_rpc_reply *reply,
                        ipc_error_out *err) {
    char *up;
    size_t i;
    int rc;
    (void)userdata;
    if (call->method_len == 4 && memcmp(call->method, "fail", 4) == 0) {
        if (ipc_error_set(err, "failed on purpose") != IPC_OK) return 2;
        return 1;
    }
    up = malloc(call->payload_len + 1);
    if (up == NULL) {
        if (ipc_error_set(err, "out of memory") != IPC_OK) return 2;
        return 1;
    }
    for (i = 0; i < call->payload_len; i++) {
        char c = call->payload[i];
        up[i] = (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
    }
    rc = ipc_rpc_reply_set(reply, up, call->payload_len) != IPC_OK;
    free(up);
    return rc;
}

/* Reads stdin; on a line "quit", sends the process SIGTERM (which main waits for). */
static void *stdin_reader(void *arg) {
    char line[256];
    (void)arg;
    while (fgets(line, sizeof line, stdin) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        if (strcmp(line, "quit") == 0) {
            kill(getpid(), SIGTERM);
            break;
        }
    }
    return NULL;
}

static int serve(const char *url, const char *service) {
    sigset_t set;
    int sig = 0;
    pthread_t reader;
    ipc_client *client = NULL;
    ipc_worker_options *opts = NULL;
    ipc_server *server = NULL;
    ipc_result rc;

    /* Block the signals in every thread (the library's threads inherit the mask, so they
     * are made after this) and take them with sigwait() below. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0) {
        fprintf(stderr, "pthread_sigmask failed\n");
        return 1;
    }
    rc = ipc_client_new(url, NULL, &client);
    if (rc != IPC_OK) {
        fprintf(stderr, "connect: %s %s\n", ipc_result_name(rc), ipc_last_error_message());
        return 1;
    }
    rc = ipc_worker_options_new(&opts);
    if (rc == IPC_OK) rc = ipc_worker_options_set_concurrency(opts, 4);
    if (rc == IPC_OK)
        rc = ipc_serve(client, service, strlen(service), opts, echo_handler, NULL, NULL, &server);
    ipc_worker_options_free(opts);
    if (rc != IPC_OK) {
        fprintf(stderr, "serve: %s %s\n", ipc_result_name(rc), ipc_last_error_message());
        ipc_client_free(client);
        return 1;
    }
    if (pthread_create(&reader, NULL, stdin_reader, NULL) == 0) pthread_detach(reader);
    printf("ready\n");
    fflush(stdout);

    while (sigwait(&set, &sig) != 0) {
    }
    rc = ipc_server_stop(server, 5000);
    if (rc != IPC_OK) {
        fprintf(stderr, "stop: %s %s\n", ipc_result_name(rc), ipc_last_error_message());
    }
    ipc_server_free(server);
    ipc_client_free(client);
    printf("stopped\n");
    fflush(stdout);
    return 0;
}

static int call(const char *url, const char *service, const char *payload, const char *method,
                uint64_t timeout_ms) {
    ipc_client *client = NULL;
    ipc_call_options *opts = NULL;
    char *reply = NULL;
    size_t len = 0;
    ipc_result rc = ipc_client_new(url, NULL, &client);
    if (rc == IPC_OK) rc = ipc_call_options_new(&opts);
    if (rc == IPC_OK) rc = ipc_call_options_set_timeout_ms(opts, timeout_ms);
    if (rc == IPC_OK) {
        rc = ipc_call(client, service, strlen(service), method, strlen(method), payload,
                      strlen(payload), opts, &reply, &len);
    }
    ipc_call_options_free(opts);
    if (rc != IPC_OK) {
        printf("ERROR %s %s\n", ipc_result_name(rc), ipc_last_error_message());
        ipc_client_free(client);
        return 1;
    }
    fwrite(reply, 1, len, stdout);
    printf("\n");
    ipc_buf_free(reply, len);
    ipc_client_free(client);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "serve") == 0) return serve(argv[2], argv[3]);
    if (argc >= 5 && argc <= 7 && strcmp(argv[1], "call") == 0) {
        const char *method = argc >= 6 ? argv[5] : "";
        uint64_t timeout_ms = 5000;
        if (argc == 7) {
            char *end = NULL;
            timeout_ms = strtoull(argv[6], &end, 10);
            if (end == argv[6] || *end != '\0' || timeout_ms == 0) return usage();
        }
        return call(argv[2], argv[3], argv[4], method, timeout_ms);
    }
    return usage();
}
