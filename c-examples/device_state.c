/* device_state.c: a device daemon publishing its state into a Redis hash (the
 * unu/librescoot device-state pattern): other processes watch the hash with a hash
 * watcher (ipc_hash_watch() in C, Client.hash_watch() in Python) and see every change.
 *
 *   device_state URL HASH [SECONDS]
 *
 *   URL      redis://host:port/db or unix:///path/to/redis.sock
 *   HASH     the hash to publish into, e.g. "scooter:state"
 *   SECONDS  how long to run (default 5; 0 publishes the first values and exits)
 *
 * Four times a second it samples a simulated battery and speed and publishes them with
 * ipc_hash_set_if_changed(): the field is written, and its name published on the channel
 * HASH, only when the value changed, in one atomic step. Fields (decimal strings):
 *
 *   battery   charge in percent: starts at 100 and drops by one every second
 *   speed     km/h: 0, 10, 20, 30, 40, then 0 again, changing every other sample (so
 *             every other sample is a repeat that publishes nothing)
 *
 * Output: one line per value published, flushed at once, "FIELD VALUE" (for example
 * "battery 97"), and at the end "done: S samples, P published, U unchanged".
 * SIGINT or SIGTERM ends it early (after the current sample). Exit status: 0 on success,
 * 1 on a redipc error (printed to stderr), 2 on bad usage.
 *
 * Example (with the Python dashboard of the examples watching the same hash):
 *   ./build/device_state redis://127.0.0.1:6379/0 scooter:state 10
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "redipc.h"

#define SAMPLES_PER_SECOND 4

static volatile sig_atomic_t stop_requested = 0;

static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

static void sleep_ms(long ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !stop_requested) {
    }
}

/* Publish FIELD=VALUE if it changed; counts into *published / *unchanged. */
static int publish(ipc_client *c, const char *hash, const char *field, long value,
                   long *published, long *unchanged) {
    char text[32];
    bool changed = false;
    ipc_result rc;
    snprintf(text, sizeof text, "%ld", value);
    rc = ipc_hash_set_if_changed(c, hash, strlen(hash), field, strlen(field),
                                 text, strlen(text), &changed);
    if (rc != IPC_OK) {
        fprintf(stderr, "device_state: %s: %s\n", ipc_result_name(rc), ipc_last_error_message());
        return -1;
    }
    if (changed) {
        printf("%s %s\n", field, text);
        fflush(stdout);
        (*published)++;
    } else {
        (*unchanged)++;
    }
    return 0;
}

int main(int argc, char **argv) {
    const char *url, *hash;
    long seconds = 5, samples, i, published = 0, unchanged = 0;
    ipc_client *c = NULL;
    ipc_result rc;
    struct sigaction sa;
    char *end = NULL;

    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: %s URL HASH [SECONDS]\n", argv[0]);
        return 2;
    }
    url = argv[1];
    hash = argv[2];
    if (argc == 4) {
        seconds = strtol(argv[3], &end, 10);
        if (end == argv[3] || *end != '\0' || seconds < 0) {
            fprintf(stderr, "device_state: SECONDS must be a number >= 0, not %s\n", argv[3]);
            return 2;
        }
    }
    if (hash[0] == '\0') {
        fprintf(stderr, "device_state: HASH must not be empty\n");
        return 2;
    }

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    rc = ipc_client_new(url, NULL, &c);
    if (rc != IPC_OK) {
        fprintf(stderr, "device_state: %s: %s\n", ipc_result_name(rc), ipc_last_error_message());
        return 1;
    }

    samples = seconds * SAMPLES_PER_SECOND + 1;
    for (i = 0; i < samples && !stop_requested; i++) {
        long battery = 100 - i / SAMPLES_PER_SECOND;
        long speed = (i / 2) % 5 * 10;
        if (battery < 0) battery = 0;
        if (publish(c, hash, "battery", battery, &published, &unchanged) != 0 ||
            publish(c, hash, "speed", speed, &published, &unchanged) != 0) {
            ipc_client_free(c);
            return 1;
        }
        if (i + 1 < samples) sleep_ms(1000 / SAMPLES_PER_SECOND);
    }
    printf("done: %ld samples, %ld published, %ld unchanged\n", i, published, unchanged);
    ipc_client_free(c);
    return 0;
}
