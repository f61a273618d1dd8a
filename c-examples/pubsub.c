/* pubsub.c: publish and subscribe from C, with the subscriber in poll mode inside its own
 * poll() loop (the shape of an embedded daemon's event loop).
 *
 *   pubsub sub URL CHANNEL [COUNT]
 *       Subscribe to CHANNEL with a poll-mode client: no library thread runs user code;
 *       the program poll()s the descriptor from ipc_client_fd() (with a 1 s timeout) and
 *       calls ipc_client_poll() when it is readable, which runs the callback here.
 *       Prints one line per event:
 *           activated <channel>          the server confirmed the subscription (ready)
 *           message <channel> <payload>  a message (channel and payload printed raw)
 *           disconnected <error text>    the connection broke; the library reconnects
 *           reactivated <channel>        subscribed again after a reconnect
 *       Exits 0 after COUNT messages; without COUNT it runs until SIGINT or SIGTERM.
 *
 *   pubsub pub URL CHANNEL COUNT [PREFIX]
 *       Publish COUNT messages "PREFIX0" .. "PREFIX<COUNT-1>" (PREFIX defaults to "msg")
 *       on CHANNEL, one at a time, printing one line per message:
 *           published <payload> <receivers>
 *       where receivers is the number of subscribed connections that got it.
 *
 *   URL: redis://host:port/db or unix:///path/to/redis.sock
 *
 * Both flush stdout after every line, so another program can read them as they come.
 * Exit status: 0 on success, 1 on a redipc error (printed to stderr), 2 on bad usage.
 *
 * Example (two terminals):
 *   ./build/pubsub sub redis://127.0.0.1:6379/0 news 3
 *   ./build/pubsub pub redis://127.0.0.1:6379/0 news 3 hello
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redipc.h"

static volatile sig_atomic_t stop_requested = 0;

static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

static int usage(void) {
    fprintf(stderr,
            "usage: pubsub sub URL CHANNEL [COUNT]\n"
            "       pubsub pub URL CHANNEL COUNT [PREFIX]\n");
    return 2;
}

static int fail(const char *what, ipc_result rc) {
    fprintf(stderr, "pubsub: %s: %s: %s\n", what, ipc_result_name(rc), ipc_last_error_message());
    return 1;
}

/* A non-negative count from text; -1 if it is not one. */
static long parse_count(const char *s) {
    char *end = NULL;
    long n;
    errno = 0;
    n = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || n < 0) return -1;
    return n;
}

/* What the subscriber's callback updates; it runs on this program's only thread, inside
 * ipc_client_poll(), so no locking is needed. */
struct sub_state {
    long messages;
};

static void print_line(const char *word, const char *a, size_t alen, const char *b,
                       size_t blen) {
    fputs(word, stdout);
    if (a != NULL) {
        fputc(' ', stdout);
        fwrite(a, 1, alen, stdout);
    }
    if (b != NULL) {
        fputc(' ', stdout);
        fwrite(b, 1, blen, stdout);
    }
    fputc('\n', stdout);
    fflush(stdout);
}

static void on_event(void *userdata, const ipc_message *msg) {
    struct sub_state *st = userdata;
    switch (msg->kind) {
    case IPC_EVENT_MESSAGE:
        st->messages++;
        print_line("message", msg->channel, msg->channel_len, msg->payload, msg->payload_len);
        break;
    case IPC_EVENT_ACTIVATED:
        print_line("activated", msg->channel, msg->channel_len, NULL, 0);
        break;
    case IPC_EVENT_REACTIVATED:
        print_line("reactivated", msg->channel, msg->channel_len, NULL, 0);
        break;
    case IPC_EVENT_DISCONNECTED:
        print_line("disconnected", msg->payload, msg->payload_len, NULL, 0);
        break;
    }
}

static int run_sub(const char *url, const char *channel, long count) {
    ipc_options *opts = NULL;
    ipc_client *client = NULL;
    ipc_subscription *sub = NULL;
    struct sub_state st = {0};
    struct sigaction sa;
    ipc_result rc;
    int fd = -1, status = 0;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    if ((rc = ipc_options_new(&opts)) != IPC_OK) return fail("ipc_options_new", rc);
    if ((rc = ipc_options_set_poll_mode(opts, true)) != IPC_OK) {
        ipc_options_free(opts);
        return fail("ipc_options_set_poll_mode", rc);
    }
    rc = ipc_client_new(url, opts, &client);
    ipc_options_free(opts);
    if (rc != IPC_OK) return fail("ipc_client_new", rc);

    if ((rc = ipc_client_fd(client, &fd)) != IPC_OK) {
        status = fail("ipc_client_fd", rc);
        goto out;
    }
    /* Returns once the server confirmed; the "activated" line comes from the first poll. */
    if ((rc = ipc_subscribe(client, IPC_SUB_CHANNEL, &channel, NULL, 1, NULL, on_event, &st, NULL, &sub)) != IPC_OK) {
        status = fail("ipc_subscribe", rc);
        goto out;
    }

    while (!stop_requested && (count < 0 || st.messages < count)) {
        struct pollfd pfd;
        int ready;
        pfd.fd = fd;
        pfd.events = POLLIN;
        pfd.revents = 0;
        ready = poll(&pfd, 1, 1000);
        if (ready < 0) {
            if (errno == EINTR) continue;
            perror("pubsub: poll");
            status = 1;
            break;
        }
        if (ready > 0) {
            size_t n = 0;
            /* Work is waiting: run the callbacks now, without waiting for more. */
            if ((rc = ipc_client_poll(client, 0, &n)) != IPC_OK) {
                status = fail("ipc_client_poll", rc);
                break;
            }
        }
        /* On a timeout: nothing to do; a real daemon would run its timers here. */
    }

out:
    ipc_subscription_free(sub);
    ipc_client_free(client);
    return status;
}

static int run_pub(const char *url, const char *channel, long count, const char *prefix) {
    ipc_client *client = NULL;
    ipc_result rc;
    long i;
    char payload[512];
    int status = 0;

    if ((rc = ipc_client_new(url, NULL, &client)) != IPC_OK) return fail("ipc_client_new", rc);
    for (i = 0; i < count; i++) {
        int64_t receivers = 0;
        int len = snprintf(payload, sizeof payload, "%s%ld", prefix, i);
        if (len < 0 || (size_t)len >= sizeof payload) {
            fprintf(stderr, "pubsub: PREFIX is too long\n");
            status = 2;
            break;
        }
        rc = ipc_publish(client, channel, strlen(channel), payload, (size_t)len,
                         &receivers);
        if (rc != IPC_OK) {
            status = fail("ipc_publish", rc);
            break;
        }
        printf("published %s %" PRId64 "\n", payload, receivers);
        fflush(stdout);
    }
    ipc_client_free(client);
    return status;
}

int main(int argc, char **argv) {
    if (argc >= 4 && strcmp(argv[1], "sub") == 0 && argc <= 5) {
        long count = -1;
        if (argc == 5 && (count = parse_count(argv[4])) < 0) return usage();
        return run_sub(argv[2], argv[3], count);
    }
    if (argc >= 5 && strcmp(argv[1], "pub") == 0 && argc <= 6) {
        long count = parse_count(argv[4]);
        if (count < 0) return usage();
        return run_pub(argv[2], argv[3], count, argc == 6 ? argv[5] : "msg");
    }
    return usage();
}
