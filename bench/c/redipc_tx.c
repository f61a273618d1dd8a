/* redipc C: MULTI/EXEC transactions (ipc_batch_* with atomic). Each transaction is built anew, as hiredis
 * formats each one anew with redisAppendCommand. */
#include "bench_redipc.h"

bench_result redipc_run_multi(ipc_client *c, const bench_args *a, const bench_spec *sp) {
    (void)a;
    char key[128];
    redipc_key(key, sizeof key, sp, "ctr");
    size_t klen = strlen(key);
    int64_t n = 0;
    redipc_check(ipc_del(c, key, klen, &n), "DEL");
    long depth = sp->depth > 0 ? sp->depth : 100;
    long batches = sp->n / depth;
    if (batches < 1) batches = 1;
    const char *argv[2] = {"INCR", key};
    size_t lens[2] = {4, klen};
    ipc_batch *tx = NULL;
    redipc_check(ipc_batch_new(c, true, &tx), "ipc_batch_new");
    double c0 = bench_cpu(), t0 = bench_now();
    for (long b = 0; b < batches; b++) {
        redipc_check(ipc_batch_clear(tx), "ipc_batch_clear");
        for (long i = 0; i < depth; i++) redipc_check(ipc_batch_add(tx, argv, lens, 2), "ipc_batch_add");
        ipc_reply *r = NULL;
        redipc_check(ipc_batch_exec(tx, &r), "ipc_batch_exec");
        if (ipc_reply_len(r) != (size_t)depth) bench_die("EXEC: %zu replies", ipc_reply_len(r));
        ipc_reply_free(r);
    }
    bench_result res = {batches * depth, bench_now() - t0, bench_cpu() - c0, -1, -1, NULL};
    ipc_batch_free(tx);
    int64_t v = 0;
    redipc_check(ipc_incrby(c, key, klen, 0, &v), "INCRBY");
    if (v != batches * depth) bench_die("multi: wrong count %lld", (long long)v);
    return res;
}
