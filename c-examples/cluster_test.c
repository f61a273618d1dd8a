/* cluster_test.c: the C API against a Redis Cluster (three primaries, three replicas,
 * started by run-tests.sh with scripts/lib/cluster.sh).
 *
 *   ./cluster_test CLUSTER_URL STANDALONE_URL
 *
 * CLUSTER_URL lists the nodes (redis://127.0.0.1:P1,127.0.0.1:P2,.../); STANDALONE_URL is a
 * plain server. Covers: the mode option (auto finds the cluster from a seed list whose
 * first node is dead, IPC_CLUSTER_ON against a standalone server is IPC_ERR_UNSUPPORTED,
 * a bad mode number is IPC_ERR_INVALID_ARGUMENT; reading from replicas); 5,000 keys over the slots from 4 threads
 * sharing one client, read back; MGET and DEL over several slots (split and merged, in the
 * keys' order); a cross-slot MSET and a cross-slot transaction refused with
 * IPC_ERR_INVALID_ARGUMENT naming the keys, nothing written; a 1,000-command pipeline over
 * every node in order; a one-slot transaction; redirects counted in ipc_client_stats();
 * per-node statistics and a hash tag for a chosen node; shard channels on every primary
 * (IPC_SUB_SHARD, ipc_spublish()), in order per channel, nothing left after the free.
 * Prints "N passed, M failed" last and exits non-zero on any failure.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static const char *url;

static ipc_result cmd(ipc_client *c, ipc_reply **out, size_t argc, const char **argv) {
    return ipc_command(c, argv, NULL, argc, out);
}

static int bulk_is(const ipc_reply *r, const char *s) {
    const char *p = NULL;
    size_t n = 0;
    return r != NULL && ipc_reply_type(r) == IPC_REPLY_BULK && ipc_reply_string(r, &p, &n) == IPC_OK &&
           bytes_eq(p, n, s);
}

static int int_is(const ipc_reply *r, int64_t want) {
    int64_t v = 0;
    return r != NULL && ipc_reply_integer(r, &v) == IPC_OK && v == want;
}

static void *writer(void *arg) {
    ipc_client *c = (ipc_client *)((void **)arg)[0];
    long t = (long)((void **)arg)[1];
    long *errors = (long *)((void **)arg)[2];
    char k[64], v[32];
    for (long i = t; i < 5000; i += 4) {
        snprintf(k, sizeof k, "c:spread:%ld", i);
        snprintf(v, sizeof v, "%ld", i);
        if (ipc_set(c, k, strlen(k), v, strlen(v), 0) != IPC_OK) add(errors, 1);
    }
    return NULL;
}

static void mode_option(const char *standalone_url) {
    ipc_options *o = NULL;
    ipc_client *c = NULL;
    char seeds[512];
    CHECK_OK(ipc_options_new(&o));
    CHECK_RC(ipc_options_set_cluster(o, 7), IPC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(ipc_last_error_message(), "IPC_CLUSTER_AUTO") != NULL);
    /* Cluster mode on a standalone server: refused, saying why. */
    CHECK_OK(ipc_options_set_cluster(o, IPC_CLUSTER_ON));
    CHECK_RC(ipc_client_new(standalone_url, o, &c), IPC_ERR_UNSUPPORTED);
    CHECK(strstr(ipc_last_error_message(), "not a cluster node") != NULL);
    CHECK(c == NULL);
    /* A seed list whose first node does not answer: the next one is used (port 1 is
     * closed on any test machine). */
    snprintf(seeds, sizeof seeds, "redis://127.0.0.1:1,%s", url + strlen("redis://"));
    CHECK_OK(ipc_client_new(seeds, o, &c));
    if (c != NULL) {
        CHECK_OK(ipc_set(c, "c:seed", 6, "1", 1, 0));
        ipc_client_free(c);
        c = NULL;
    }
    /* Reading from replicas: the value comes back (once replicated). */
    CHECK_OK(ipc_options_set_read_from_replicas(o, true));
    CHECK_OK(ipc_client_new(url, o, &c));
    if (c != NULL) {
        bool found = false;
        double deadline = now_ms() + 5000;
        while (!found && now_ms() < deadline) {
            char *v = NULL;
            size_t n = 0;
            CHECK_OK(ipc_get(c, "c:seed", 6, &v, &n, &found));
            if (found) CHECK(bytes_eq(v, n, "1"));
            ipc_buf_free(v, n);
            if (!found) sleep_ms(10);
        }
        CHECK(found);
        ipc_client_free(c);
    }
    ipc_options_free(o);
}

static void spread(ipc_client *c) {
    pthread_t th[4];
    void *args[4][3];
    long errors = 0;
    for (long t = 0; t < 4; t++) {
        args[t][0] = c;
        args[t][1] = (void *)t;
        args[t][2] = &errors;
        pthread_create(&th[t], NULL, writer, args[t]);
    }
    for (int t = 0; t < 4; t++) pthread_join(th[t], NULL);
    CHECK(load(&errors) == 0);
    long wrong = 0;
    for (long i = 0; i < 5000; i += 3) {
        char k[64], want[32];
        char *v = NULL;
        size_t n = 0;
        bool found = false;
        snprintf(k, sizeof k, "c:spread:%ld", i);
        snprintf(want, sizeof want, "%ld", i);
        if (ipc_get(c, k, strlen(k), &v, &n, &found) != IPC_OK || !found || !bytes_eq(v, n, want)) wrong++;
        ipc_buf_free(v, n);
    }
    CHECK(wrong == 0);
}

static void multi_key(ipc_client *c) {
    const char *mset[] = {"MSET", "c:cross:a", "1", "c:cross:b", "2"};
    const char *mget[] = {"MGET", "c:m:1", "c:m:2", "c:m:3", "c:m:4", "c:m:5", "c:m:6"};
    const char *del[] = {"DEL", "c:m:1", "c:m:2", "c:m:3", "c:m:4", "c:m:5", "c:m:6"};
    ipc_reply *r = NULL;
    uint16_t sa = 0, sb = 0;
    CHECK_OK(ipc_keyslot("c:cross:a", 9, &sa));
    CHECK_OK(ipc_keyslot("c:cross:b", 9, &sb));
    CHECK(sa != sb);
    CHECK_RC(cmd(c, &r, 5, mset), IPC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(ipc_last_error_message(), "c:cross:a (slot") != NULL);
    CHECK(strstr(ipc_last_error_message(), "nothing was sent") != NULL);
    CHECK(r == NULL);
    for (int i = 1; i <= 6; i += 2) {
        char v[12];
        snprintf(v, sizeof v, "%d", i);
        CHECK_OK(ipc_set(c, mget[i], strlen(mget[i]), v, strlen(v), 0));
    }
    CHECK_OK(cmd(c, &r, 7, mget));
    if (r != NULL) {
        CHECK(ipc_reply_len(r) == 6);
        CHECK(bulk_is(ipc_reply_element(r, 0), "1"));
        CHECK(ipc_reply_type(ipc_reply_element(r, 1)) == IPC_REPLY_NIL);
        CHECK(bulk_is(ipc_reply_element(r, 2), "3"));
        CHECK(bulk_is(ipc_reply_element(r, 4), "5"));
        CHECK(ipc_reply_type(ipc_reply_element(r, 5)) == IPC_REPLY_NIL);
        ipc_reply_free(r);
        r = NULL;
    }
    CHECK_OK(cmd(c, &r, 7, del));
    CHECK(int_is(r, 3));
    ipc_reply_free(r);
}

static void batches(ipc_client *c) {
    ipc_batch *p = NULL, *tx = NULL;
    ipc_reply *r = NULL;
    char k[64], v[32];
    CHECK_OK(ipc_batch_new(c, false, &p));
    for (int i = 0; i < 1000; i++) {
        const char *argv[3] = {"SET", k, v};
        snprintf(k, sizeof k, "c:batch:%d", i);
        snprintf(v, sizeof v, "%d", i);
        CHECK_OK(ipc_batch_add(p, argv, NULL, 3));
    }
    CHECK_OK(ipc_batch_exec(p, &r));
    CHECK(r != NULL && ipc_reply_len(r) == 1000);
    ipc_reply_free(r);
    ipc_batch_free(p);
    CHECK_OK(ipc_batch_new(c, false, &p));
    for (int i = 0; i < 1000; i++) {
        const char *argv[2] = {"GET", k};
        snprintf(k, sizeof k, "c:batch:%d", i);
        CHECK_OK(ipc_batch_add(p, argv, NULL, 2));
    }
    CHECK_OK(ipc_batch_exec(p, &r));
    long wrong = 0;
    for (int i = 0; r != NULL && i < 1000; i++) {
        snprintf(v, sizeof v, "%d", i);
        if (!bulk_is(ipc_reply_element(r, (size_t)i), v)) wrong++;
    }
    CHECK(r != NULL && wrong == 0);
    ipc_reply_free(r);
    ipc_batch_free(p);

    /* A transaction: one slot (a hash tag), else refused before anything is sent. */
    const char *a[] = {"INCR", "{c:acct}:a"};
    const char *b[] = {"INCR", "{c:acct}:b"};
    const char *x[] = {"INCR", "c:tx:x"};
    const char *y[] = {"INCR", "c:tx:y"};
    CHECK_OK(ipc_batch_new(c, true, &tx));
    CHECK_OK(ipc_batch_add(tx, a, NULL, 2));
    CHECK_OK(ipc_batch_add(tx, b, NULL, 2));
    CHECK_OK(ipc_batch_exec(tx, &r));
    CHECK(r != NULL && ipc_reply_len(r) == 2 && int_is(ipc_reply_element(r, 0), 1));
    ipc_reply_free(r);
    r = NULL;
    ipc_batch_free(tx);
    CHECK_OK(ipc_batch_new(c, true, &tx));
    CHECK_OK(ipc_batch_add(tx, x, NULL, 2));
    CHECK_OK(ipc_batch_add(tx, y, NULL, 2));
    CHECK_RC(ipc_batch_exec(tx, &r), IPC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(ipc_last_error_message(), "one slot") != NULL);
    ipc_batch_free(tx);
    const char *exists[] = {"EXISTS", "c:tx:x", "c:tx:y"};
    CHECK_OK(cmd(c, &r, 3, exists));
    CHECK(int_is(r, 0));
    ipc_reply_free(r);
}

/* Per-node statistics and a tag per primary: ipc_client_node_stats() lists the
 * primaries (16384 slots between them) and the replicas it knows; keys with the tag
 * ipc_cluster_hash_tag_for_node() gives for a primary go to that primary (its commands
 * count, no redirect); an unknown address and a standalone client are refused. */
static void nodes(ipc_client *c, const char *standalone_url) {
    ipc_node_counts n[8] = {{.size = sizeof n[0]}}, one[2] = {{.size = sizeof one[0]}};
    size_t len = 0, i, primaries = 0;
    uint32_t slots = 0;
    ipc_client *s = NULL;
    const char *tag = NULL;
    CHECK_RC(ipc_client_node_stats(c, NULL, 0, &len), IPC_ERR_BUFFER_TOO_SMALL);
    CHECK(len >= 3 && len <= 6);
    CHECK_RC(ipc_client_node_stats(c, n, 1, &len), IPC_ERR_BUFFER_TOO_SMALL);
    CHECK_OK(ipc_client_node_stats(c, n, 8, &len));
    for (i = 0; i < len && i < 8; i++) {
        CHECK(n[i].size == sizeof n[0] && strlen(n[i].addr) > 0);
        if (!n[i].primary) continue;
        primaries++;
        slots += n[i].slots;
        CHECK_OK(ipc_cluster_hash_tag_for_node(c, n[i].addr, &tag));
        if (tag != NULL) {
            char key[64];
            uint64_t before = n[i].commands;
            ipc_node_counts after[8] = {{.size = sizeof after[0]}};
            size_t alen = 0;
            snprintf(key, sizeof key, "{%s}:c:node", tag);
            for (int j = 0; j < 20; j++) CHECK_OK(ipc_set(c, key, strlen(key), "v", 1, 0));
            CHECK_OK(ipc_client_node_stats(c, after, 8, &alen));
            CHECK(alen == len && strcmp(after[i].addr, n[i].addr) == 0);
            /* 20 SETs, and the node connection's handshake if it was opened now. */
            CHECK(after[i].commands >= before + 20 && after[i].commands <= before + 24);
            CHECK(after[i].connected && after[i].redirects == 0 && after[i].bytes_out > n[i].bytes_out);
        }
    }
    CHECK(primaries == 3 && slots == 16384);
    CHECK_RC(ipc_cluster_hash_tag_for_node(c, "127.0.0.1:1", &tag), IPC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(ipc_last_error_message(), "its primaries") != NULL);
    CHECK_RC(ipc_client_node_stats(c, n, 8, NULL), IPC_ERR_NULL_ARG);
    n[0].size = 8;
    CHECK_RC(ipc_client_node_stats(c, n, 8, &len), IPC_ERR_INVALID_ARGUMENT);
    CHECK_OK(ipc_client_new(standalone_url, NULL, &s));
    if (s != NULL) {
        CHECK_OK(ipc_client_node_stats(s, one, 2, &len));
        CHECK(len == 1 && one[0].primary && one[0].slots == 0 && one[0].connected);
        CHECK_RC(ipc_cluster_hash_tag_for_node(s, "127.0.0.1:1", &tag), IPC_ERR_UNSUPPORTED);
        ipc_client_free(s);
    }
}

/* What the shard subscription's callback saw (one call at a time: no lock needed for the
 * arrays; the counters are read by the main thread). */
#define SHARDS 3
#define SHARD_MSGS 100
static struct {
    char channel[SHARDS][64];
    volatile long activated, messages, wrong;
    long next[SHARDS]; /* the payload expected next on each channel */
} shard;

static void on_shard(void *userdata, const ipc_message *m) {
    (void)userdata;
    if (m->sub_kind != IPC_SUB_SHARD) add(&shard.wrong, 1);
    if (m->kind == IPC_EVENT_ACTIVATED) {
        add(&shard.activated, 1);
        return;
    }
    if (m->kind != IPC_EVENT_MESSAGE) {
        add(&shard.wrong, 1);
        return;
    }
    for (int i = 0; i < SHARDS; i++) {
        if (!bytes_eq(m->channel, m->channel_len, shard.channel[i])) continue;
        char want[24];
        snprintf(want, sizeof want, "%ld", shard.next[i]++);
        if (!bytes_eq(m->payload, m->payload_len, want)) add(&shard.wrong, 1);
        add(&shard.messages, 1);
        return;
    }
    add(&shard.wrong, 1);
}

/* Shard channels on each primary (placed with ipc_cluster_hash_tag_for_node): one
 * IPC_SUB_SHARD subscription gets an activation per channel, then every ipc_spublish() of
 * another client, in order per channel; once it is freed nobody receives them. */
static void shard_pubsub(ipc_client *c) {
    ipc_node_counts n[8] = {{.size = sizeof n[0]}};
    size_t len = 0, k = 0;
    const char *names[SHARDS];
    ipc_client *pub = NULL;
    ipc_subscription *sub = NULL;
    int ok = 0;
    int64_t receivers = -1;
    CHECK_OK(ipc_client_node_stats(c, n, 8, &len));
    for (size_t i = 0; i < len && i < 8 && k < SHARDS; i++) {
        const char *tag = NULL;
        if (!n[i].primary) continue;
        CHECK_OK(ipc_cluster_hash_tag_for_node(c, n[i].addr, &tag));
        if (tag == NULL) return;
        snprintf(shard.channel[k], sizeof shard.channel[k], "{%s}:c:shard", tag);
        names[k] = shard.channel[k];
        k++;
    }
    CHECK(k == SHARDS);
    if (k != SHARDS) return;
    CHECK_OK(ipc_subscribe(c, IPC_SUB_SHARD, names, NULL, SHARDS, NULL, on_shard, NULL, NULL, &sub));
    if (sub == NULL) return;
    WAIT_UNTIL(ok, load(&shard.activated) == SHARDS, 5000);
    CHECK(ok);
    CHECK_OK(ipc_client_new(url, NULL, &pub));
    if (pub != NULL) {
        for (int m = 0; m < SHARD_MSGS; m++) {
            for (int i = 0; i < SHARDS; i++) {
                char payload[24];
                snprintf(payload, sizeof payload, "%d", m);
                receivers = -1;
                CHECK_OK(ipc_spublish(pub, names[i], strlen(names[i]), payload, strlen(payload), &receivers));
                if (receivers != 1) CHECK(receivers == 1);
            }
        }
        WAIT_UNTIL(ok, load(&shard.messages) == SHARDS * SHARD_MSGS, 5000);
        CHECK(ok);
        CHECK(load(&shard.wrong) == 0);
        ipc_subscription_free(sub);
        sub = NULL;
        /* Unsubscribed from every node: no receiver is left. */
        WAIT_UNTIL(ok,
                   ipc_spublish(pub, names[0], strlen(names[0]), "x", 1, &receivers) == IPC_OK &&
                       receivers == 0 &&
                       ipc_spublish(pub, names[2], strlen(names[2]), "x", 1, &receivers) == IPC_OK &&
                       receivers == 0,
                   3000);
        CHECK(ok);
        ipc_client_free(pub);
    }
    if (sub != NULL) ipc_subscription_free(sub);
    printf("shard pub/sub: %ld messages over %d primaries\n", load(&shard.messages), SHARDS);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s CLUSTER_URL STANDALONE_URL\n", argv[0]);
        return 2;
    }
    url = argv[1];
    ipc_client *c = NULL;
    CHECK_OK(ipc_client_new(url, NULL, &c));
    if (c == NULL) return check_summary();
    mode_option(argv[2]);
    spread(c);
    multi_key(c);
    batches(c);
    nodes(c, argv[2]);
    shard_pubsub(c);
    ipc_client_counts st = {.size = sizeof st};
    CHECK_OK(ipc_client_stats(c, &st));
    CHECK(st.size == sizeof st);
    printf("redirects: %" PRIu64 "\n", st.redirects);
    ipc_client_free(c);
    return check_summary();
}
