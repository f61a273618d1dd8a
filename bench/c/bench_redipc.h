/*
 * The redipc C bench: the parts shared between bench_redipc.c and the workloads that use
 * newer parts of the C API (redipc_pipeline.c, redipc_tx.c, redipc_queue.c, redipc_rpc.c),
 * each compiled only when include/redipc.h has its functions (see bench/c/build.sh, which
 * defines HAVE_IPC_PIPELINE, HAVE_IPC_TX, HAVE_IPC_QUEUE, HAVE_IPC_RPC).
 */
#ifndef BENCH_REDIPC_H
#define BENCH_REDIPC_H

#include "common.h"

#include <redipc.h>

static inline void redipc_check(ipc_result rc, const char *what) {
    if (rc != IPC_OK) bench_die("%s: %s: %s", what, ipc_result_name(rc), ipc_last_error_message());
}

static inline void redipc_key(char *buf, size_t cap, const bench_spec *sp, const char *what) {
    snprintf(buf, cap, "bench:%s:%s", sp->label, what);
}

/* Connects a new client to the server of `a` (the same URL every workload uses). */
ipc_client *redipc_connect(const bench_args *a);

#ifdef HAVE_IPC_PIPELINE
bench_result redipc_run_pipe(ipc_client *c, const bench_args *a, const bench_spec *sp);
#endif
#ifdef HAVE_IPC_TX
bench_result redipc_run_multi(ipc_client *c, const bench_args *a, const bench_spec *sp);
#endif
#ifdef HAVE_IPC_QUEUE
bench_result redipc_run_queue(ipc_client *c, const bench_args *a, const bench_spec *sp);
#endif
#ifdef HAVE_IPC_RPC
bench_result redipc_run_rpc(ipc_client *c, const bench_args *a, const bench_spec *sp);
bench_result redipc_run_serve(ipc_client *c, const bench_args *a, const bench_spec *sp);
#endif

#endif
