/* redipc C: pipelines (ipc_batch_* without atomic). Each batch is built anew, as hiredis formats each
 * batch anew with redisAppendCommand. */
#include "bench_redipc.h"

bench_result redipc_run_pipe(ipc_client *c, const bench_args *a, const bench_spec *sp) {
    (void)a;
    char key[128];
    redipc_key(key, sizeof key, sp, "k");
    size_t klen = strlen(key);
    char *val = bench_value(sp->size);
    redipc_check(ipc_set(c, key, klen, val, sp->size, 0), "SET");
    long depth = sp->depth > 0 ? sp->depth : 16;
    long batches = sp->n / depth;
    if (batches < 1) batches = 1;
    const char *argv[2] = {"GET", key};
    size_t lens[2] = {3, klen};
    ipc_batch *p = NULL;
    redipc_check(ipc_batch_new(c, false, &p), "ipc_batch_new");
    double c0 = bench_cpu(), t0 = bench_now();
    for (long b = 0; b < batches; b++) {
        redipc_check(ipc_batch_clear(p), "ipc_batch_clear");
        for (long i = 0; i < depth; i++) redipc_check(ipc_batch_add(p, argv, lens, 2), "ipc_batch_add");
        ipc_reply *r = NULL;
        redipc_check(ipc_batch_exec(p, &r), "ipc_batch_exec");
        if (ipc_reply_len(r) != (size_t)depth) bench_die("pipeline: %zu replies", ipc_reply_len(r));
        const char *s = NULL;
        size_t l = 0;
        redipc_check(ipc_reply_string(ipc_reply_element(r, 0), &s, &l), "pipeline reply");
        if (l != sp->size) bench_die("pipeline: bad reply");
        ipc_reply_free(r);
    }
    bench_result res = {batches * depth, bench_now() - t0, bench_cpu() - c0, -1, -1, NULL};
    ipc_batch_free(p);
    free(val);
    return res;
}
