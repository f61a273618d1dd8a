/*
 * Idle footprint of a hiredis client with one subscription (issue 18; see idle.h): SUBSCRIBE,
 * then block reading the connection (no timeout) as a hiredis subscriber does.
 */
#include "idle.h"

#include <hiredis/hiredis.h>

int main(int argc, char **argv) {
    idle_args a;
    idle_parse_args(argc, argv, &a);
    if (a.health_check_ms >= 0) idle_die("%s", "--health-check-ms: hiredis has no health check");
    redisContext *c = a.sock ? redisConnectUnix(a.sock) : redisConnect(a.host, a.port);
    if (!c || c->err) idle_die("connect: %s", c ? c->errstr : "out of memory");
    redisReply *r = redisCommand(c, "SUBSCRIBE %s", IDLE_CHANNEL);
    if (!r) idle_die("SUBSCRIBE: %s", c->errstr);
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3) idle_die("%s", "SUBSCRIBE: unexpected reply");
    freeReplyObject(r);
    idle_ready();
    for (;;) { /* until SIGTERM; a message (none is sent) is read and dropped */
        void *m = NULL;
        if (redisGetReply(c, &m) != REDIS_OK) idle_die("read: %s", c->errstr);
        freeReplyObject(m);
    }
}
