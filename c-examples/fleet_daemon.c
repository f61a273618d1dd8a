/* fleet_daemon.c: a C daemon that joins a redis-ipc fleet (the librescoot/rescoot style of
 * embedded boards) without anyone changing the other daemons. It speaks only the fleet's
 * conventions, so the other side may be Go (redis-ipc), hiredis, redis-cli or redipc:
 *
 *   fleet_daemon URL [PREFIX]
 *
 *   URL     redis://host:port/db or unix:///path/to/redis.sock
 *   PREFIX  the name of this vehicle's keys (default "scooter")
 *
 * What it serves (P is PREFIX):
 *
 *   P:state     a bare request queue (the list itself: `LPUSH P:state lock`): "lock",
 *               "unlock". Locking while the seatbox is open is refused and raises a fault.
 *   P:seatbox   a bare request queue: "open", "close". One worker pops both lists.
 *   P:vehicle   the status hash, written in the fleet's words: each change is `HSET` of the
 *               field and `<field>:timestamp` (RFC 3339) then `PUBLISH P:vehicle <field>`;
 *               the first write replaces the hash and announces `replaced`. Fields: "state"
 *               ("unlocked", "locked") and "seatbox:lock" ("closed", "open"). Opening the
 *               seatbox also publishes the event "seatbox:opened" on the hash's channel.
 *   P:rpc       JSON RPC on the redis-ipc wire: method "get-state" answers
 *               {"state":"...","seatbox":"..."}, "ping" answers "pong"; any other method
 *               gets the fleet's error "unknown method: <m>".
 *   faults      group P:vehicle, code 23 "cannot lock: seatbox open": raised when a lock is
 *               refused (SADD P:vehicle:fault 23, XADD events:faults ..., PUBLISH P:vehicle
 *               fault), cleared when the seatbox is closed.
 *
 * Output: "ready" once everything runs; then one line per request ("command LIST PAYLOAD"),
 * per status change ("status FIELD VALUE"), per fault ("fault set 23", "fault cleared 23"),
 * per RPC call ("rpc METHOD"), and for a request it does not know ("unknown LIST PAYLOAD");
 * "stopped" after SIGINT or SIGTERM. Exit status: 0 after a clean stop, 1 on a redipc
 * error (printed to stderr), 2 on bad usage.
 *
 * Try it (with a private redis-server):
 *   ./build/fleet_daemon unix:///tmp/redis.sock &
 *   redis-cli -s /tmp/redis.sock LPUSH scooter:seatbox open
 *   redis-cli -s /tmp/redis.sock LPUSH scooter:state lock       # refused: fault 23
 *   redis-cli -s /tmp/redis.sock SMEMBERS scooter:vehicle:fault
 *   redis-cli -s /tmp/redis.sock HGETALL scooter:vehicle
 */
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redipc.h"

#define FAULT_SEATBOX_OPEN 23

struct vehicle {
    ipc_client *client;
    ipc_hash_write_options *stamped; /* <field>:timestamp in RFC 3339 */
    char state_list[128], seatbox_list[128], hash[128], rpc_list[128];
    pthread_mutex_t mu; /* the fields below, and stdout */
    char state[16];
    char seatbox[16];
};

static void say(struct vehicle *v, const char *fmt, ...) {
    va_list ap;
    pthread_mutex_lock(&v->mu);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
    pthread_mutex_unlock(&v->mu);
}

static int failed(const char *what, ipc_result rc) {
    fprintf(stderr, "fleet_daemon: %s: %s: %s\n", what, ipc_result_name(rc),
            ipc_last_error_message());
    return 1;
}

/* Fail the request with the text of the library's last error (the worker reports it). The
 * text is copied first: it is valid only until the next redipc call on this thread. */
static int fail_with_last_error(ipc_error_out *err) {
    char text[512];
    ipc_result rc;
    snprintf(text, sizeof text, "%s", ipc_last_error_message());
    rc = ipc_error_set(err, text);
    (void)rc; /* only fails for NULL arguments */
    return 1;
}

/* Write one status field the fleet's way (field, field:timestamp, PUBLISH hash field). */
static int publish_status(struct vehicle *v, const char *field, const char *value,
                          ipc_error_out *err) {
    ipc_result rc = ipc_hash_set(v->client, v->hash, strlen(v->hash), field, strlen(field),
                                 value, strlen(value), v->stamped);
    if (rc != IPC_OK) return fail_with_last_error(err);
    say(v, "status %s %s", field, value);
    return 0;
}

static int fault(struct vehicle *v, bool raise, ipc_error_out *err) {
    bool changed = false;
    ipc_result rc =
        raise ? ipc_fault_set(v->client, v->hash, strlen(v->hash), FAULT_SEATBOX_OPEN,
                              "cannot lock: seatbox open", 25, &changed)
              : ipc_fault_clear(v->client, v->hash, strlen(v->hash), FAULT_SEATBOX_OPEN, &changed);
    if (rc != IPC_OK) return fail_with_last_error(err);
    if (changed) say(v, "fault %s %d", raise ? "set" : "cleared", FAULT_SEATBOX_OPEN);
    return 0;
}

/* Both bare lists: P:state ("lock", "unlock") and P:seatbox ("open", "close"). */
static int on_request(void *userdata, const ipc_request *req, ipc_error_out *err) {
    struct vehicle *v = userdata;
    char list[128], cmd[32], state[16], seatbox[16];
    snprintf(list, sizeof list, "%.*s", (int)req->queue_len, req->queue);
    snprintf(cmd, sizeof cmd, "%.*s", (int)req->payload_len, req->payload);
    say(v, "command %s %s", list, cmd);
    pthread_mutex_lock(&v->mu);
    snprintf(state, sizeof state, "%s", v->state);
    snprintf(seatbox, sizeof seatbox, "%s", v->seatbox);
    pthread_mutex_unlock(&v->mu);

    if (strcmp(list, v->state_list) == 0 && strcmp(cmd, "lock") == 0) {
        if (strcmp(seatbox, "open") == 0) return fault(v, true, err);
        snprintf(state, sizeof state, "locked");
    } else if (strcmp(list, v->state_list) == 0 && strcmp(cmd, "unlock") == 0) {
        snprintf(state, sizeof state, "unlocked");
    } else if (strcmp(list, v->seatbox_list) == 0 && strcmp(cmd, "open") == 0) {
        snprintf(seatbox, sizeof seatbox, "open");
    } else if (strcmp(list, v->seatbox_list) == 0 && strcmp(cmd, "close") == 0) {
        snprintf(seatbox, sizeof seatbox, "closed");
    } else {
        say(v, "unknown %s %s", list, cmd); /* the fleet's daemons log and drop it */
        return 0;
    }

    pthread_mutex_lock(&v->mu);
    snprintf(v->state, sizeof v->state, "%s", state);
    snprintf(v->seatbox, sizeof v->seatbox, "%s", seatbox);
    pthread_mutex_unlock(&v->mu);
    if (strcmp(list, v->state_list) == 0) return publish_status(v, "state", state, err);
    if (publish_status(v, "seatbox:lock", seatbox, err) != 0) return 1;
    if (strcmp(seatbox, "open") == 0) {
        /* An event on the hash's channel: watchers that know the fleet get it as such. */
        int64_t receivers = 0;
        ipc_result rc = ipc_publish(v->client, v->hash, strlen(v->hash), "seatbox:opened", 14,
                                    &receivers);
        return rc == IPC_OK ? 0 : fail_with_last_error(err);
    }
    return fault(v, false, err); /* closed: the reason for the fault is gone */
}

/* RPC "get-state": {"state":"...","seatbox":"..."} (JSON text; no JSON library needed). */
static int rpc_get_state(void *userdata, const ipc_call_info *call, ipc_rpc_reply *reply,
                         ipc_error_out *err) {
    struct vehicle *v = userdata;
    char json[96];
    (void)call;
    (void)err;
    say(v, "rpc get-state");
    pthread_mutex_lock(&v->mu);
    snprintf(json, sizeof json, "{\"state\":\"%s\",\"seatbox\":\"%s\"}", v->state, v->seatbox);
    pthread_mutex_unlock(&v->mu);
    return ipc_rpc_reply_set(reply, json, strlen(json)) == IPC_OK ? 0 : 1;
}

static int rpc_ping(void *userdata, const ipc_call_info *call, ipc_rpc_reply *reply,
                    ipc_error_out *err) {
    (void)call;
    (void)err;
    say(userdata, "rpc ping");
    return ipc_rpc_reply_set(reply, "\"pong\"", 6) == IPC_OK ? 0 : 1;
}

int main(int argc, char **argv) {
    static struct vehicle v;
    const char *prefix = argc > 2 ? argv[2] : "scooter";
    const char *lists[2];
    ipc_worker_options *wopts = NULL;
    ipc_worker *worker = NULL;
    ipc_server *server = NULL;
    ipc_rpc_method methods[2];
    ipc_field initial[2];
    ipc_hash_write_options *replace = NULL;
    ipc_result rc;
    sigset_t stop;
    int sig = 0, status = 1;

    if (argc < 2 || argc > 3 || prefix[0] == '\0') {
        fprintf(stderr, "usage: %s URL [PREFIX]\n", argv[0]);
        return 2;
    }
    /* Block the stop signals in every thread (the library's inherit the mask); the main
     * thread waits for them with sigwait(). */
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    pthread_mutex_init(&v.mu, NULL);
    snprintf(v.state_list, sizeof v.state_list, "%s:state", prefix);
    snprintf(v.seatbox_list, sizeof v.seatbox_list, "%s:seatbox", prefix);
    snprintf(v.hash, sizeof v.hash, "%s:vehicle", prefix);
    snprintf(v.rpc_list, sizeof v.rpc_list, "%s:rpc", prefix);
    snprintf(v.state, sizeof v.state, "unlocked");
    snprintf(v.seatbox, sizeof v.seatbox, "closed");

    if ((rc = ipc_client_new(argv[1], NULL, &v.client)) != IPC_OK) return failed("connect", rc);
    if ((rc = ipc_hash_write_options_new(&v.stamped)) != IPC_OK ||
        (rc = ipc_hash_write_options_set_timestamp(v.stamped, IPC_TIMESTAMP_RFC3339)) != IPC_OK ||
        (rc = ipc_hash_write_options_new(&replace)) != IPC_OK ||
        (rc = ipc_hash_write_options_set_timestamp(replace, IPC_TIMESTAMP_RFC3339)) != IPC_OK ||
        (rc = ipc_hash_write_options_set_announce(replace, "replaced", 8)) != IPC_OK) {
        failed("hash write options", rc);
        goto out;
    }

    /* The initial status: replace the whole hash, announced as the fleet does. */
    initial[0].name = "state";
    initial[0].name_len = 5;
    initial[0].value = v.state;
    initial[0].value_len = strlen(v.state);
    initial[1].name = "seatbox:lock";
    initial[1].name_len = 12;
    initial[1].value = v.seatbox;
    initial[1].value_len = strlen(v.seatbox);
    if ((rc = ipc_hash_replace_all(v.client, v.hash, strlen(v.hash), initial, 2, replace)) !=
        IPC_OK) {
        failed("initial status", rc);
        goto out;
    }
    /* A fresh start has no fault pending. */
    if ((rc = ipc_fault_clear(v.client, v.hash, strlen(v.hash), FAULT_SEATBOX_OPEN,
                              &(bool){false})) != IPC_OK) {
        failed("fault clear", rc);
        goto out;
    }

    /* One worker pops both bare lists (one BRPOP, FIFO per list). */
    if ((rc = ipc_worker_options_new(&wopts)) != IPC_OK ||
        (rc = ipc_worker_options_set_bare(wopts, true)) != IPC_OK) {
        failed("worker options", rc);
        goto out;
    }
    lists[0] = v.state_list;
    lists[1] = v.seatbox_list;
    if ((rc = ipc_worker_new(v.client, lists, NULL, 2, wopts, on_request, &v, NULL, &worker)) !=
        IPC_OK) {
        failed("worker", rc);
        goto out;
    }

    /* JSON RPC on the fleet's wire, one handler per method. */
    if ((rc = ipc_worker_options_set_bare(wopts, false)) != IPC_OK ||
        (rc = ipc_worker_options_set_protocol(wopts, IPC_PROTOCOL_REDIS_IPC)) != IPC_OK) {
        failed("server options", rc);
        goto out;
    }
    methods[0].name = "get-state";
    methods[0].name_len = 9;
    methods[0].cb = rpc_get_state;
    methods[1].name = "ping";
    methods[1].name_len = 4;
    methods[1].cb = rpc_ping;
    if ((rc = ipc_serve_methods(v.client, v.rpc_list, strlen(v.rpc_list), methods, 2, wopts, &v,
                                NULL, &server)) != IPC_OK) {
        failed("rpc server", rc);
        goto out;
    }

    say(&v, "ready");
    sigwait(&stop, &sig);
    status = 0;
    if ((rc = ipc_worker_stop(worker, 5000)) != IPC_OK) status = failed("stop worker", rc);
    if ((rc = ipc_server_stop(server, 5000)) != IPC_OK) status = failed("stop server", rc);
    say(&v, "stopped");
out:
    ipc_server_free(server);
    ipc_worker_free(worker);
    ipc_worker_options_free(wopts);
    ipc_hash_write_options_free(replace);
    ipc_hash_write_options_free(v.stamped);
    ipc_client_free(v.client);
    pthread_mutex_destroy(&v.mu);
    return status;
}
