/* redipc C: RPC round trips. `serve` answers calls to the service "bench" with an echo
 * until SIGTERM; `rpc` times N sequential ipc_call()s (after 50 untimed ones) for p50/p99. */
#include "bench_redipc.h"

#include <signal.h>

static int echo(void *userdata, const ipc_call_info *call, ipc_rpc_reply *reply,
                ipc_error_out *err) {
    (void)userdata;
    (void)err;
    return ipc_rpc_reply_set(reply, call->payload, call->payload_len) == IPC_OK ? 0 : 1;
}

bench_result redipc_run_serve(ipc_client *c, const bench_args *a, const bench_spec *sp) {
    (void)a;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* the library's threads inherit the mask */
    ipc_server *srv = NULL;
    redipc_check(ipc_serve(c, "bench", 5, NULL, echo, NULL, NULL, &srv), "ipc_serve");
    fprintf(stderr, "READY\n");
    double c0 = bench_cpu(), t0 = bench_now();
    int sig = 0;
    sigwait(&set, &sig);
    ipc_worker_counts counts;
    memset(&counts, 0, sizeof counts);
    redipc_check(ipc_server_stats(srv, &counts), "ipc_server_stats");
    bench_result res = {(long)counts.handled, bench_now() - t0, bench_cpu() - c0, -1, -1, NULL};
    redipc_check(ipc_server_stop(srv, 1000), "ipc_server_stop");
    ipc_server_free(srv);
    (void)sp;
    return res;
}

bench_result redipc_run_rpc(ipc_client *c, const bench_args *a, const bench_spec *sp) {
    char *val = bench_value(sp->size);
    ipc_call_options *o = NULL;
    redipc_check(ipc_call_options_new(&o), "ipc_call_options_new");
    redipc_check(ipc_call_options_set_timeout_ms(o, (uint64_t)(a->timeout_s * 1000)), "timeout");
    for (int i = 0; i < 50; i++) {
        char *rep = NULL;
        size_t rlen = 0;
        redipc_check(ipc_call(c, "bench", 5, "", 0, val, sp->size, o, &rep, &rlen), "ipc_call");
        ipc_buf_free(rep, rlen);
    }
    double *lat = bench_xmalloc(sizeof(double) * (size_t)sp->n);
    double c0 = bench_cpu(), t0 = bench_now();
    for (long i = 0; i < sp->n; i++) {
        double s = bench_now();
        char *rep = NULL;
        size_t rlen = 0;
        redipc_check(ipc_call(c, "bench", 5, "", 0, val, sp->size, o, &rep, &rlen), "ipc_call");
        if (rlen != sp->size) bench_die("rpc: bad reply");
        ipc_buf_free(rep, rlen);
        lat[i] = (bench_now() - s) * 1e6;
    }
    bench_result res = {sp->n, bench_now() - t0, bench_cpu() - c0, -1, -1, NULL};
    res.p50_us = bench_quantile(lat, sp->n, 0.50);
    res.p99_us = bench_quantile(lat, sp->n, 0.99);
    free(lat);
    free(val);
    ipc_call_options_free(o);
    return res;
}
